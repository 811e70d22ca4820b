/**
 * Graph webview benchmark (not a test): layout and first-render times, and pan/zoom frame times, in headless
 * Chromium, for ResNet-50, ViT-L/16-384 (compiled by `ait compile`) and a synthetic 5,000-node graph.
 *
 *   npm run bench:webview [-- --repeat N] [-- --out FILE.json]
 *
 * Each page is opened N times (default 5) in a fresh tab; the opening times are medians over those loads, the
 * pan and expand-all figures come from the last load. First render: navigation start → the first frame with the
 * graph drawn (every visible box and edge: the provisional layout counts, it draws them all; checked below).
 * Prints a table and the load average (the machine is shared), and writes JSON (default
 * .test-artifacts/bench-webview.json). Needs /usr/bin/chromium (apt-get install chromium) and ../shared/models
 * for the real models (skipped when absent).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium, type Page } from 'playwright-core';
import type { GraphJson } from '../webview/contract';
import { syntheticGraph } from '../test/webview/fixtures';

const ROOT = path.resolve(__dirname, '..');
const MODELS_DIR = path.resolve(ROOT, '..', 'shared', 'models');
const CHROMIUM = process.env.AIT_CHROMIUM ?? '/usr/bin/chromium';
const outArg = process.argv.indexOf('--out');
const repeatArg = process.argv.indexOf('--repeat');
const REPEAT = repeatArg > 0 ? Number(process.argv[repeatArg + 1]) : 5;
const OUT = outArg > 0 ? process.argv[outArg + 1] : path.join(ROOT, '.test-artifacts', 'bench-webview.json');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-bench-webview-'));

function run(args: string[]): void {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0 && !args.includes('compile')) throw new Error(`${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
}

async function waitLayout(page: Page): Promise<void> {
  await page.waitForFunction(() => document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState === 'done', null, {
    timeout: 600_000,
  });
}

/** Pans for `frames` animation frames (one transform change per frame); returns the frame intervals in ms. */
async function panFrames(page: Page, frames: number): Promise<number[]> {
  return page.evaluate(async (n) => {
    const app = (window as unknown as { aitGraph: { benchPanFrameMs(dx: number): number } }).aitGraph;
    const gaps: number[] = [];
    let last = await new Promise<number>((r) => requestAnimationFrame(r));
    for (let i = 0; i < n; i++) {
      app.benchPanFrameMs(i % 2 ? 7 : -7);
      const now = await new Promise<number>((r) => requestAnimationFrame(r));
      gaps.push(now - last);
      last = now;
    }
    return gaps;
  }, frames);
}

/** Longest gap between animation frames while a layout runs (shows whether the main thread stays free). */
async function expandAllWatchingFrames(page: Page): Promise<{ layoutMs: number; maxFrameGapMs: number; boxes: number; renderer: string }> {
  // Plain script text: tsx's named-function helpers do not exist in the page.
  await page.evaluate(`(() => {
    window.__gaps = [];
    window.__watch = true;
    let last = performance.now();
    const tick = (now) => {
      window.__gaps.push(now - last);
      last = now;
      if (window.__watch) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  })()`);
  const drawnBefore = (await page.evaluate('window.aitGraph.layoutLog.length')) as number;
  await page.click('#ait-expand');
  // The frames while the worker lays out (a provisional layout drawn meanwhile included): stop watching when
  // ELK's result has been drawn (a new 'elk' entry in the app's layout log).
  const gaps = (await page.evaluate(`new Promise((resolve) => {
    const check = () => {
      const state = document.querySelector('.ait-graph-app').dataset.layoutState;
      if (window.aitGraph.layoutLog.slice(${drawnBefore}).some((l) => l.engine === 'elk') || state === 'error') {
        window.__watch = false;
        resolve(window.__gaps.slice(1, -1));
      } else setTimeout(check, 5);
    };
    check();
  })`)) as number[];
  await waitLayout(page);
  const info = await page.evaluate(() => {
    const d = document.querySelector<HTMLElement>('.ait-graph-app')!.dataset;
    return {
      layoutMs: Number(d.layoutMs),
      renderer: d.renderer!,
      boxes: Number(/(\d+) boxes/.exec(document.querySelector('.status')!.textContent!)?.[1] ?? 0),
    };
  });
  return { ...info, maxFrameGapMs: gaps.length ? Math.max(...gaps) : 0 };
}

/** The marks and layout figures of the page just opened; checks that the first frame drew every visible box. */
async function openingFigures(page: Page): Promise<Opening> {
  const o = (await page.evaluate(`(() => {
    const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
    const app = window.aitGraph;
    const d = document.querySelector('.ait-graph-app').dataset;
    return {
      appStartMs: mark('ait-app-start'),
      dataParsedMs: mark('ait-data-parsed'),
      modelBuiltMs: mark('ait-model-built'),
      firstRenderMs: mark('ait-first-render'),
      elkRenderMs: mark('ait-first-elk-render'),
      elkLayoutMs: Number(d.layoutMs),
      log: app.layoutLog,
    };
  })()`)) as Omit<Opening, 'firstRenderEngine' | 'boxes' | 'provisionalLayoutMs'> & {
    log: { engine: string; boxes: number; layoutMs: number }[];
  };
  const [first, ...rest] = o.log;
  const elk = rest.find((l) => l.engine === 'elk') ?? first;
  if (first.boxes !== elk.boxes) throw new Error(`the first frame drew ${first.boxes} boxes, ELK's layout ${elk.boxes}`);
  return {
    appStartMs: o.appStartMs,
    dataParsedMs: o.dataParsedMs,
    modelBuiltMs: o.modelBuiltMs,
    firstRenderMs: o.firstRenderMs,
    elkRenderMs: o.elkRenderMs,
    elkLayoutMs: o.elkLayoutMs,
    firstRenderEngine: first.engine,
    provisionalLayoutMs: first.engine === 'provisional' ? first.layoutMs : null,
    boxes: elk.boxes,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))];

/** One opening of a page: performance marks (ms since navigation start) and layout figures. */
interface Opening {
  appStartMs: number;
  dataParsedMs: number;
  modelBuiltMs: number;
  firstRenderMs: number;
  firstRenderEngine: string;
  provisionalLayoutMs: number | null;
  elkRenderMs: number;
  elkLayoutMs: number;
  boxes: number;
}

interface Row {
  graph: string;
  nodes: number;
  loads: number;
  /** Medians over the loads. */
  appStartMs: number;
  dataParsedMs: number;
  modelBuiltMs: number;
  firstRenderMs: number;
  firstRenderMinMs: number;
  firstRenderMaxMs: number;
  firstRenderEngine: string;
  provisionalLayoutMs: number | null;
  elkRenderMs: number;
  firstLayoutMs: number;
  firstBoxes: number;
  panFrameMedianMs: number;
  panFrameP95Ms: number;
  expandedLayoutMs: number;
  expandedBoxes: number;
  expandedRenderer: string;
  maxFrameGapDuringLayoutMs: number;
  expandedPanFrameMedianMs: number;
  expandedPanFrameP95Ms: number;
}

async function main(): Promise<void> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium`);
  run([path.join(ROOT, 'scripts', 'build.mjs')]);
  const pages: { graph: string; html: string; nodes: number }[] = [];
  for (const model of ['resnet50', 'vit_large_patch16_384']) {
    const onnx = path.join(MODELS_DIR, `${model}.onnx`);
    if (!fs.existsSync(onnx)) {
      console.log(`skipped ${model}: ${onnx} not found`);
      continue;
    }
    const dir = path.join(WORK, model);
    run([path.join(ROOT, 'dist', 'cli.js'), 'compile', onnx, '--out', dir]);
    const html = path.join(WORK, `${model}.html`);
    run([path.join(ROOT, 'dist', 'cli.js'), 'graph', dir, '--html', html, '--theme', 'dark']);
    pages.push({
      graph: model,
      html,
      nodes: (JSON.parse(fs.readFileSync(path.join(dir, 'graph.json'), 'utf8')) as GraphJson).nodes.length,
    });
  }
  const synthetic = syntheticGraph(50, 100);
  const synthDir = path.join(WORK, 'synthetic');
  fs.mkdirSync(synthDir, { recursive: true });
  fs.writeFileSync(path.join(synthDir, 'graph.json'), JSON.stringify(synthetic));
  const synthHtml = path.join(WORK, 'synthetic.html');
  run([path.join(ROOT, 'dist', 'cli.js'), 'graph', synthDir, '--html', synthHtml, '--theme', 'dark']);
  pages.push({ graph: 'synthetic 5,000 nodes', html: synthHtml, nodes: synthetic.nodes.length });

  const loadBefore = os.loadavg();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--headless',
    ],
  });
  const version = browser.version();
  const rows: Row[] = [];
  try {
    for (const p of pages) {
      const openings: Opening[] = [];
      let page: Page | null = null;
      for (let i = 0; i < REPEAT; i++) {
        await page?.close();
        page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        await page.goto(`file://${p.html}`);
        await waitLayout(page);
        await page.waitForFunction(() => performance.getEntriesByName('ait-first-elk-render').length > 0);
        openings.push(await openingFigures(page));
      }
      page = page!;
      const m = (f: (o: Opening) => number) => median(openings.map(f));
      const firstRenders = openings.map((o) => o.firstRenderMs);
      const first = {
        loads: openings.length,
        appStartMs: m((o) => o.appStartMs),
        dataParsedMs: m((o) => o.dataParsedMs),
        modelBuiltMs: m((o) => o.modelBuiltMs),
        firstRenderMs: median(firstRenders),
        firstRenderMinMs: Math.min(...firstRenders),
        firstRenderMaxMs: Math.max(...firstRenders),
        firstRenderEngine: [...new Set(openings.map((o) => o.firstRenderEngine))].join('/'),
        provisionalLayoutMs: openings.every((o) => o.provisionalLayoutMs !== null) ? m((o) => o.provisionalLayoutMs!) : null,
        elkRenderMs: m((o) => o.elkRenderMs),
        firstLayoutMs: m((o) => o.elkLayoutMs),
        firstBoxes: openings[0].boxes,
      };
      const pan = await panFrames(page, 60);
      const expanded = await expandAllWatchingFrames(page);
      const expandedPan = await panFrames(page, 60);
      rows.push({
        graph: p.graph,
        nodes: p.nodes,
        ...first,
        panFrameMedianMs: median(pan),
        panFrameP95Ms: p95(pan),
        expandedLayoutMs: expanded.layoutMs,
        expandedBoxes: expanded.boxes,
        expandedRenderer: expanded.renderer,
        maxFrameGapDuringLayoutMs: expanded.maxFrameGapMs,
        expandedPanFrameMedianMs: median(expandedPan),
        expandedPanFrameP95Ms: p95(expandedPan),
      });
      await page.close();
    }
  } finally {
    await browser.close();
  }
  const f = (x: number | null, width = 7) => (x === null ? '-' : x.toFixed(0)).padStart(width);
  const load = `load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} after`;
  console.log(`\nheadless Chromium ${version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), no GPU; ${load}`);
  console.log(`opening: medians of ${REPEAT} loads, ms since navigation start`);
  console.log(
    'graph                   nodes  boxes | app start  data parsed  model | first render (min–max)  by           | provisional layout | ELK drawn  ELK layout',
  );
  for (const r of rows) {
    console.log(
      `${r.graph.padEnd(22)} ${String(r.nodes).padStart(6)} ${String(r.firstBoxes).padStart(6)} | ${f(r.appStartMs, 9)} ${f(r.dataParsedMs, 12)} ${f(r.modelBuiltMs, 6)} | ${f(r.firstRenderMs, 12)} (${f(r.firstRenderMinMs, 0)}–${f(r.firstRenderMaxMs, 0)})`.padEnd(
        96,
      ) + ` ${r.firstRenderEngine.padEnd(12)} | ${f(r.provisionalLayoutMs, 18)} | ${f(r.elkRenderMs, 9)} ${f(r.firstLayoutMs, 11)}`,
    );
  }
  console.log('\ngraph                   pan p50  p95 | expand all: layout  boxes  renderer  max frame gap | pan p50  p95');
  for (const r of rows) {
    console.log(
      `${r.graph.padEnd(22)} ${f(r.panFrameMedianMs)} ${f(r.panFrameP95Ms, 4)} |    ${f(r.expandedLayoutMs)} ${String(r.expandedBoxes).padStart(6)}  ${r.expandedRenderer.padEnd(8)} ${f(r.maxFrameGapDuringLayoutMs)}       | ${f(r.expandedPanFrameMedianMs)} ${f(r.expandedPanFrameP95Ms, 4)}`,
    );
  }
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(
    OUT,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        chromium: version,
        cpus: os.cpus().length,
        loadBefore,
        loadAfter: os.loadavg(),
        repeat: REPEAT,
        rows,
      },
      null,
      2,
    ),
  );
  console.log(`wrote ${OUT}`);
  fs.rmSync(WORK, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
