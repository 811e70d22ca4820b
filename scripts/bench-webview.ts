/**
 * Graph webview benchmark (not a test): layout and first-render times, and pan/zoom frame times, in headless
 * Chromium, for ResNet-50, ViT-L/16-384 (compiled by `ait compile`) and a synthetic 5,000-node graph.
 *
 *   npm run bench:webview [-- --out FILE.json]
 *
 * Prints a table and writes JSON (default .test-artifacts/bench-webview.json). Needs /usr/bin/chromium
 * (apt-get install chromium) and ../shared/models for the real models (skipped when absent).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium, type Page } from 'playwright-core';
import type { GraphJson } from '../webview/contract';

const ROOT = path.resolve(__dirname, '..');
const MODELS_DIR = path.resolve(ROOT, '..', 'shared', 'models');
const CHROMIUM = process.env.AIT_CHROMIUM ?? '/usr/bin/chromium';
const outArg = process.argv.indexOf('--out');
const OUT = outArg > 0 ? process.argv[outArg + 1] : path.join(ROOT, '.test-artifacts', 'bench-webview.json');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-bench-webview-'));

function run(args: string[]): void {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0 && !args.includes('compile')) throw new Error(`${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
}

/** A synthetic graph shaped like a deep network: `blocks` blocks of `perBlock` nodes (chains, a fan-out and a residual join). */
export function syntheticGraph(blocks: number, perBlock: number): GraphJson {
  const nodes: GraphJson['nodes'] = [];
  const tensors: GraphJson['tensors'] = { input: { dtype: 'float16', shape: [1, 1024], kind: 'input', maxBytes: 2048 } };
  let prev = 'input';
  for (let b = 0; b < blocks; b++) {
    const blockInput = prev;
    for (let i = 0; i < perBlock; i++) {
      const id = `n${nodes.length}`;
      const out = `t${nodes.length}`;
      const sub = `sub.${Math.floor(i / 10)}`;
      // Every tenth node joins the block input back in (residual); the rest chain.
      const inputs = i % 10 === 9 ? [prev, blockInput] : [prev];
      nodes.push({
        id,
        op: i % 10 === 9 ? 'Add' : i % 3 === 0 ? 'MatMul' : 'Relu',
        name: `/blocks.${b}/${sub}/op_${i}`,
        inputs,
        outputs: [out],
        attrs: {},
        sourceNodes: [`op_${b}_${i}`],
        scope: ['blocks', `blocks.${b}`, sub],
      });
      tensors[out] = { dtype: 'float16', shape: [1, 1024], kind: 'activation', maxBytes: 2048 };
      prev = out;
    }
  }
  return {
    format: 'ait-graph',
    version: 1,
    model: {
      name: `synthetic_${blocks * perBlock}`,
      producer: { name: 'bench', version: '0' },
      irVersion: 10,
      opsets: { '': 18 },
      weights: 'none',
    },
    symbols: [],
    removed: [],
    name: 'synthetic',
    inputs: ['input'],
    outputs: [prev],
    tensors,
    nodes,
  };
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
  await page.click('#ait-expand');
  await page.waitForFunction(() => document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState === 'running');
  // The frames during the worker's layout only: stop watching when the result arrives, before drawing.
  const gaps = (await page.evaluate(`new Promise((resolve) => {
    const check = () => {
      if (document.querySelector('.ait-graph-app').dataset.layoutState !== 'running') {
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))];

interface Row {
  graph: string;
  nodes: number;
  firstRenderMs: number;
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
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(`file://${p.html}`);
      await waitLayout(page);
      await page.waitForFunction(() => performance.getEntriesByName('ait-first-render').length > 0);
      const first = await page.evaluate(() => {
        const d = document.querySelector<HTMLElement>('.ait-graph-app')!.dataset;
        return {
          firstRenderMs: performance.getEntriesByName('ait-first-render')[0].startTime,
          firstLayoutMs: Number(d.layoutMs),
          firstBoxes: Number(/(\d+) boxes/.exec(document.querySelector('.status')!.textContent!)?.[1] ?? 0),
        };
      });
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
  const f = (x: number) => x.toFixed(0).padStart(7);
  console.log(`\nheadless Chromium ${version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), no GPU; times in ms`);
  console.log(
    'graph                    nodes  first render  layout  boxes | pan p50  p95 | expand all: layout  boxes  renderer  max frame gap | pan p50  p95',
  );
  for (const r of rows) {
    console.log(
      `${r.graph.padEnd(22)} ${String(r.nodes).padStart(6)} ${f(r.firstRenderMs)}       ${f(r.firstLayoutMs)} ${String(r.firstBoxes).padStart(6)} | ${f(r.panFrameMedianMs)} ${f(r.panFrameP95Ms)} |    ${f(r.expandedLayoutMs)} ${String(r.expandedBoxes).padStart(6)}  ${r.expandedRenderer.padEnd(8)} ${f(r.maxFrameGapDuringLayoutMs)}       | ${f(r.expandedPanFrameMedianMs)} ${f(r.expandedPanFrameP95Ms)}`,
    );
  }
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify({ date: new Date().toISOString(), chromium: version, cpus: os.cpus().length, rows }, null, 2));
  console.log(`wrote ${OUT}`);
  fs.rmSync(WORK, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
