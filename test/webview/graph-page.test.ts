/**
 * The graph page in real (headless) Chromium: pages built by the real CLI (`ait compile`, then `ait graph`) for
 * the shared models, with kernel/status/cost fixtures added to a copy of graph.json (test/webview/fixtures.ts).
 * Screenshots go to .test-artifacts/webview/.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { interpolateRdBu, interpolateYlOrRd } from 'd3';
import type { Browser, Page } from 'playwright-core';
import type { GraphJson, ProfileJson, ViewNodeJson } from '../../webview/contract';
import { formatValue } from '../../webview/metrics';
import { buildGraphModel } from '../../webview/model';
import { sharedModel } from '../helpers/models';
import { ait, ARTIFACTS_DIR, buildDist, compileToDir, launchChromium } from './browser';
import { fixtureProfile, withBackendFixtures } from './fixtures';

interface BuiltPage {
  html: string;
  graph: GraphJson;
  slowest: string;
  faster: string;
  after: ProfileJson;
}

/** Compiles the model, adds the backend fixtures, writes two profiles and the page (both profiles embedded). */
function buildPage(modelName: string, ctx: Mocha.Context): BuiltPage {
  const model = sharedModel(modelName, ctx);
  const dir = path.join(ARTIFACTS_DIR, modelName);
  fs.rmSync(dir, { recursive: true, force: true });
  const compiled = JSON.parse(fs.readFileSync(compileToDir(model, path.join(dir, 'compile')), 'utf8')) as GraphJson;
  const graph = withBackendFixtures(compiled);
  const fixtureDir = path.join(dir, 'fixture');
  fs.mkdirSync(fixtureDir, { recursive: true });
  fs.writeFileSync(path.join(fixtureDir, 'graph.json'), JSON.stringify(graph));
  // The slowest node: the middle node with the fixture's profiled kernel (a GEMM-like op: a model that compiles whole
  // has the backend's kernels on every other node, without candidates); a second one gets faster "after".
  const withKernel = graph.nodes.filter((n) => (n as ViewNodeJson).kernel?.candidates);
  const slowest = withKernel[Math.floor(withKernel.length / 2)].id;
  const faster = withKernel[0].id;
  const before = fixtureProfile(graph, { slowest, slowestMs: 5 });
  const after = fixtureProfile(graph, { slowest, slowestMs: 5, scaled: { [slowest]: 4, [faster]: 0.25 } });
  const beforeFile = path.join(fixtureDir, 'before.profile.json');
  const afterFile = path.join(fixtureDir, 'after.profile.json');
  fs.writeFileSync(beforeFile, JSON.stringify(before));
  fs.writeFileSync(afterFile, JSON.stringify(after));
  const html = path.join(dir, `${modelName}.html`);
  const r = ait(['graph', fixtureDir, '--profile', beforeFile, '--profile', afterFile, '--html', html]);
  assert.equal(r.status, 0, r.output);
  return { html, graph, slowest, faster, after };
}

async function open(browser: Browser, html: string, theme: 'light' | 'dark' = 'dark'): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  (page as Page & { errors: string[] }).errors = errors;
  await page.goto(`file://${html}?theme=${theme}`);
  await waitLayout(page);
  return page;
}

async function waitLayout(page: Page): Promise<void> {
  await page.waitForFunction(() => document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState === 'done', null, {
    timeout: 110_000,
  });
}

async function expandAll(page: Page): Promise<void> {
  await page.click('#ait-expand');
  await waitLayout(page);
}

/** A collapsed group box that lies entirely inside the graph area (so that clicks land on it). */
async function firstGroupOnScreen(page: Page): Promise<string> {
  const id = await page.evaluate(() => {
    const host = document.querySelector('.graph-host')!.getBoundingClientRect();
    const inside = [...document.querySelectorAll<SVGGElement>('.box.group[data-group-id]')].find((e) => {
      const r = e.getBoundingClientRect();
      return r.top > host.top + 30 && r.bottom < host.bottom - 160 && r.left > host.left && r.right < host.right - 220;
    });
    return inside?.dataset.groupId ?? null;
  });
  assert.ok(id, 'a collapsed group is on screen');
  return id;
}

const nodeIdsOnPage = (page: Page) => page.$$eval('[data-node-id]', (els) => els.map((e) => (e as HTMLElement).dataset.nodeId!));

async function search(page: Page, text: string): Promise<void> {
  await page.fill('#ait-search input', text);
  await waitLayout(page);
}

for (const modelName of ['resnet50', 'vit_base_patch16_224', 'maskrcnn_resnet50_fpn']) {
  describe(`webview graph page: ${modelName}`, function () {
    let browser: Browser;
    let built: BuiltPage;
    let page: Page;

    before(async function () {
      buildDist();
      built = buildPage(modelName, this);
      browser = await launchChromium(this);
      page = await open(browser, built.html);
    });
    after(async () => {
      if (page) assert.deepEqual((page as Page & { errors: string[] }).errors, [], 'no errors in the page console');
      await browser?.close();
    });

    it('draws every graph node (data-node-id) once all groups are expanded', async () => {
      await expandAll(page);
      const ids = await nodeIdsOnPage(page);
      // weight preparation (role 'weight-preparation') is not drawn; every other node is, once
      const drawn = built.graph.nodes.filter((n) => (n as ViewNodeJson).role !== 'weight-preparation');
      if (modelName === 'resnet50') assert.ok(drawn.length < built.graph.nodes.length, 'ResNet-50 has weight preparation nodes to hide');
      assert.equal(ids.length, drawn.length);
      assert.deepEqual(new Set(ids), new Set(drawn.map((n) => n.id)));
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, `${modelName}-expanded.png`) });
    });

    it('draws the unsupported nodes as such', async () => {
      const expected = built.graph.nodes.filter((n) => (n as ViewNodeJson).status?.supported === false).map((n) => n.id);
      const drawn = await page.$$eval('.box.unsupported[data-node-id]', (els) => els.map((e) => (e as HTMLElement).dataset.nodeId!));
      assert.deepEqual(new Set(drawn), new Set(expected));
      // Mask R-CNN compiles whole (its mask-paste Loop is PasteMasks): none is drawn unsupported
      if (modelName === 'maskrcnn_resnet50_fpn') assert.deepEqual(expected, []);
    });

    it('opens the details with the kernel name when a node is clicked', async () => {
      const node = built.graph.nodes.find((n) => n.id === built.slowest) as ViewNodeJson;
      await search(page, node.name); // centres the node on screen
      await page.keyboard.press('Escape');
      await page.locator('.graph-host').focus();
      await page.keyboard.press('Escape');
      assert.equal(await page.isHidden('.details'), true);
      await page.click(`[data-node-id="${node.id}"]`);
      assert.equal(await page.textContent('.details [data-field="kernel-name"]'), node.kernel!.name);
      assert.match((await page.textContent('.details header'))!, new RegExp(node.id));
      // the candidates it beat: fastest first, both chosen instances marked, configurations and per-batch times shown
      assert.equal(await page.textContent('.details h4'), 'Candidates (3), timed at batch 256');
      const rows = await page.$$eval('.details table.candidates tr:not(:first-child)', (trs) =>
        trs.map((tr) => ({ cls: tr.className, text: (tr as HTMLElement).innerText, title: tr.getAttribute('title') })),
      );
      assert.deepEqual(
        rows.map((r) => r.cls),
        ['chosen', 'chosen', ' failed'],
      );
      assert.match(rows[0].text, /sm90 \d+x\d+x\d+, cluster \dx\dx1, cooperative/);
      assert.equal(rows[1].title, `batch 1: ${formatValue(0.01, 'ms')}\nbatch 256: ${formatValue(0.09, 'ms')}`);
      assert.match(rows[2].text, /exceeds shared memory/);
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, `${modelName}-details.png`) });
    });

    it('finds a node by its kernel name', async () => {
      const node = built.graph.nodes.find((n) => n.id === built.slowest) as ViewNodeJson;
      await search(page, node.kernel!.name);
      const expected = built.graph.nodes.filter((n) => (n as ViewNodeJson).kernel?.name === node.kernel!.name).map((n) => n.id);
      const matches = await page.$$eval('.box.match[data-node-id]', (els) => els.map((e) => (e as HTMLElement).dataset.nodeId!));
      assert.deepEqual(new Set(matches), new Set(expected));
      assert.ok(matches.includes(node.id));
      assert.equal(await page.textContent('#ait-count'), `1/${expected.length}`);
    });

    it('colours the slowest node hottest, with its value in the legend', async () => {
      const fills = await page.$$eval('[data-node-id] rect.frame', (els) =>
        Object.fromEntries(els.map((e) => [(e.parentElement as HTMLElement).dataset.nodeId!, getComputedStyle(e).fill])),
      );
      const hottest = interpolateYlOrRd(1);
      assert.equal(fills[built.slowest], hottest);
      const alsoHottest = Object.entries(fills).filter(([id, f]) => f === hottest && id !== built.slowest);
      assert.deepEqual(alsoHottest, [], 'only the slowest node has the hottest colour');
      // The page opens on the last profile ("after"), where the slowest node runs 4 × 5 ms.
      assert.equal(await page.textContent('[data-field="legend-max"]'), '20.0 ms');
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, `${modelName}-heatmap.png`) });
    });

    it('compares two profiles by time ratio', async () => {
      await page.$eval('#ait-compare', (el) => {
        (el as HTMLSelectElement).value = '0';
        el.dispatchEvent(new Event('change'));
      });
      assert.match((await page.textContent('.legend-title'))!, /ratio/);
      const fillOf = (id: string) => page.$eval(`[data-node-id="${id}"] rect.frame`, (e) => getComputedStyle(e).fill);
      assert.equal(await fillOf(built.slowest), interpolateRdBu(0), '4× slower: the reddest');
      assert.equal(await fillOf(built.faster), interpolateRdBu(1), '4× faster: the bluest');
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, `${modelName}-compare.png`) });
      await page.$eval('#ait-compare', (el) => {
        (el as HTMLSelectElement).value = '';
        el.dispatchEvent(new Event('change'));
      });
    });
  });
}

describe('webview graph page: interaction (resnet50)', function () {
  let browser: Browser;
  let built: BuiltPage;

  before(async function () {
    buildDist();
    built = buildPage('resnet50', this);
    browser = await launchChromium(this);
  });
  after(async () => browser?.close());

  it('renders in light and dark themes', async () => {
    const looks: Record<string, { background: string; nodeFill: string }> = {};
    for (const theme of ['light', 'dark'] as const) {
      const page = await open(browser, built.html, theme);
      await page.$eval('#ait-profile', (el) => {
        (el as HTMLSelectElement).value = '';
        el.dispatchEvent(new Event('change'));
      });
      looks[theme] = await page.evaluate(() => ({
        background: getComputedStyle(document.body).backgroundColor,
        nodeFill: getComputedStyle(document.querySelector('[data-node-id] rect.frame')!).fill,
      }));
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, `resnet50-${theme}.png`) });
      await page.close();
    }
    assert.equal(looks.light.background, 'rgb(255, 255, 255)');
    assert.equal(looks.dark.background, 'rgb(30, 30, 30)');
    assert.notEqual(looks.light.nodeFill, looks.dark.nodeFill);
  });

  it('exports the view as SVG and PNG', async () => {
    const page = await open(browser, built.html);
    const [svgDownload] = await Promise.all([page.waitForEvent('download'), page.click('#ait-export-svg')]);
    const svg = fs.readFileSync((await svgDownload.path())!, 'utf8');
    assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.ok(svg.includes(`data-node-id="${built.graph.nodes[0].id}"`));
    assert.match(svg, /--ait-node-bg: ?#|--ait-node-bg: ?rgb/, 'theme colours resolved into the SVG');
    const [pngDownload] = await Promise.all([page.waitForEvent('download'), page.click('#ait-export-png')]);
    const png = fs.readFileSync((await pngDownload.path())!);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(png.length > 5000, `a real image (${png.length} bytes)`);
    fs.writeFileSync(path.join(ARTIFACTS_DIR, 'resnet50-export.svg'), svg);
    fs.writeFileSync(path.join(ARTIFACTS_DIR, 'resnet50-export.png'), png);
    await page.close();
  });

  it('drops labels when zoomed out (level of detail) and brings them back', async () => {
    const page = await open(browser, built.html);
    const box = (await page.locator('.graph-host').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let i = 0; i < 12; i++) await page.mouse.wheel(0, 400);
    await page.waitForFunction(() => document.querySelector('.graph-svg')!.classList.contains('lod-no-labels'));
    const labelDisplay = await page.$eval('[data-node-id] text.title', (e) => getComputedStyle(e).display);
    assert.equal(labelDisplay, 'none');
    for (let i = 0; i < 12; i++) await page.mouse.wheel(0, -400);
    await page.waitForFunction(() => !document.querySelector('.graph-svg')!.classList.contains('lod-no-labels'));
    await page.close();
  });

  it('walks the dataflow with the keyboard', async () => {
    const page = await open(browser, built.html);
    const first = built.graph.nodes[0];
    const consumer = built.graph.nodes.find((n) => n.inputs.includes(first.outputs[0]))!;
    await search(page, first.name);
    await page.locator('.graph-host').focus();
    await page.keyboard.press('ArrowDown');
    assert.match((await page.textContent('.details header'))!, new RegExp(`\\b${consumer.id}\\b`));
    await page.keyboard.press('ArrowUp');
    assert.match((await page.textContent('.details header'))!, new RegExp(`\\b${first.id}\\b`));
    await page.close();
  });
});

describe('webview graph page: groups (vit_large_patch16_384: the fused graph is big enough to open collapsed)', function () {
  let browser: Browser;
  let built: BuiltPage;

  before(async function () {
    buildDist();
    built = buildPage('vit_large_patch16_384', this);
    browser = await launchChromium(this);
  });
  after(async () => browser?.close());

  it('opens a big graph collapsed; groups expand and collapse on click', async () => {
    const page = await open(browser, built.html);
    const initial = (await nodeIdsOnPage(page)).length;
    assert.ok(initial < built.graph.nodes.length, `opens collapsed (${initial} of ${built.graph.nodes.length} nodes drawn)`);
    const group = await firstGroupOnScreen(page);
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'vit-collapsed.png') });
    await page.click(`.box.group[data-group-id="${group}"]`);
    await waitLayout(page);
    const expanded = (await nodeIdsOnPage(page)).length;
    assert.ok(expanded > initial, `expanding ${group} draws its nodes (${initial} → ${expanded})`);
    assert.equal(await page.locator(`.box.container[data-group-id="${group}"]`).count(), 1);
    await page.click(`.box.container[data-group-id="${group}"] .toggle`);
    await waitLayout(page);
    assert.equal((await nodeIdsOnPage(page)).length, initial);
    await page.close();
  });

  it('shows the sum of a collapsed group in the heatmap', async () => {
    const page = await open(browser, built.html);
    const group = await page.$eval('.box.group[data-group-id]', (e) => (e as HTMLElement).dataset.groupId!);
    const valueText = await page.textContent(`.box.group[data-group-id="${group}"] text.value`);
    const model = buildGraphModel(built.graph);
    const under = (id: string): string[] => [...model.groups.get(id)!.nodes, ...model.groups.get(id)!.groups.flatMap(under)];
    const sumMs = under(group).reduce((s, id) => s + (built.after.ops[id]?.meanMs ?? 0), 0);
    assert.equal(valueText, formatValue(sumMs, 'ms'));
    await page.close();
  });
});
