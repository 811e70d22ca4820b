/**
 * Segment colours in real (headless) Chromium: `ait compile --partition` on conv → Resize along the batch axis (no CUDA kernel takes it) → conv, then
 * `ait graph DIR`. With no profile, nodes are filled by segment (compiled segments cool, the onnxruntime one warm)
 * and the legend lists the segments with their kind and node count.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildModel, tensor, type ModelSpec } from '../helpers/onnx-builder';
import { ait, ARTIFACTS_DIR, buildDist, launchChromium } from './browser';

function padModel(): ModelSpec {
  const w = (name: string, dims: number[]) => ({
    ...tensor(
      'float32',
      dims,
      Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => ((i % 7) - 3) / 20),
    ),
    name,
  });
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [1, 8, 16, 16] }],
    initializers: [w('w1', [16, 8, 3, 3]), w('w2', [8, 16, 3, 3]), { ...tensor('float32', [4], [2, 1, 1, 1]), name: 'scales' }],
    nodes: [
      { op: 'Conv', name: '/stem/Conv', inputs: ['x', 'w1'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: '/stem/Relu', inputs: ['c1'], outputs: ['r1'] },
      { op: 'Resize', name: '/up/Resize', inputs: ['r1', '', 'scales'], outputs: ['p'], attrs: { mode: 'nearest' } },
      { op: 'Conv', name: '/head/Conv', inputs: ['p', 'w2'], outputs: ['y'] },
    ],
    outputs: ['y'],
  };
}

describe('webview graph page: segments of a partitioned build', function () {
  let browser: Browser;
  let page: Page;
  let graph: { nodes: { id: string; op: string; segment?: number }[] };
  const errors: string[] = [];

  before(async function () {
    buildDist();
    const dir = path.join(ARTIFACTS_DIR, 'partition-segments');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const model = path.join(dir, 'pad.onnx');
    fs.writeFileSync(model, buildModel(padModel()));
    const out = path.join(dir, 'build');
    const c = ait(['compile', model, '--partition', '--out', out]);
    assert.equal(c.status, 0, c.output);
    assert.match(c.output, /3 segments \(2 compiled, 1 in onnxruntime/);
    graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const html = path.join(dir, 'segments.html');
    const r = ait(['graph', out, '--html', html]);
    assert.equal(r.status, 0, r.output);
    browser = await launchChromium(this);
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    await page.goto(`file://${html}?theme=light`);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState === 'done', null, {
      timeout: 110_000,
    });
  });
  after(async () => {
    if (page) assert.deepEqual(errors, [], 'no errors in the page console');
    await browser?.close();
  });

  it('fills nodes by segment and lists the segments in the legend', async () => {
    assert.equal(await page.textContent('.legend .legend-title'), 'Segments (ait compile --partition)');
    const entries = await page.$$eval('.legend-segment', (els) => els.map((e) => e.textContent));
    assert.deepEqual(
      entries.map((t) => t!.replace(/ · \d+ nodes?$/, '')),
      ['0 · compiled', '1 · onnxruntime', '2 · compiled'],
    );
    const fills = await page.$$eval('[data-node-id] rect.frame', (els) =>
      Object.fromEntries(els.map((e) => [(e.parentElement as HTMLElement).dataset.nodeId!, getComputedStyle(e).fill])),
    );
    const swatch = await page.$$eval('.legend-swatch', (els) => els.map((e) => getComputedStyle(e).backgroundColor));
    const drawn = graph.nodes.filter((n) => fills[n.id] !== undefined && n.segment !== undefined);
    assert.ok(drawn.some((n) => n.op === 'Resize'));
    for (const n of drawn) assert.equal(fills[n.id], swatch[n.segment!], `${n.op} ${n.id} in segment ${n.segment}`);
    assert.notEqual(swatch[0], swatch[1]);
    assert.notEqual(swatch[0], swatch[2]);
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'partition-segments.png') });
  });
});
