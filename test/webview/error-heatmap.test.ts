/**
 * The numerical-error heatmap in real (headless) Chromium: `ait verify --out DIR` on a model whose block 3 overflows
 * fp16, then `ait graph DIR --profile DIR/profile-verify.json`. The page opens on the relative-error metric (the
 * profile has errors and no times), colours the nodes with NaN/Inf hottest, and the legend names the first of them
 * and counts the fp16 overflows.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { interpolateYlOrRd } from 'd3';
import type { Browser, Page } from 'playwright-core';
import type { PerNodeReport } from '../../compiler/verify/local';
import { buildModel, tensor, type ModelSpec } from '../helpers/onnx-builder';
import { ait, ARTIFACTS_DIR, buildDist, launchChromium } from './browser';

/** Four blocks of 1×1 conv (×40, a little channel mixing) + Relu: block 3's values pass 65504. */
function overflowChain(): ModelSpec {
  const c = 8;
  const weight = (name: string) => {
    const w = new Array<number>(c * c).fill(0);
    for (let i = 0; i < c; i++) [w[i * c + i], w[i * c + ((i + 1) % c)]] = [40, 0.4];
    return { ...tensor('float32', [c, c, 1, 1], w), name };
  };
  const nodes: ModelSpec['nodes'] = [];
  let x = 'x';
  for (let b = 1; b <= 4; b++) {
    nodes.push({ op: 'Conv', inputs: [x, `w${b}`], outputs: [`c${b}`], name: `/block${b}/conv/Conv` });
    nodes.push({ op: 'Relu', inputs: [`c${b}`], outputs: [`r${b}`], name: `/block${b}/act/Relu` });
    x = `r${b}`;
  }
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', c, 6, 6] }],
    initializers: [1, 2, 3, 4].map((b) => weight(`w${b}`)),
    nodes,
    outputs: [x],
  };
}

describe('webview graph page: numerical error heatmap (ait verify)', function () {
  let browser: Browser;
  let page: Page;
  let report: PerNodeReport;

  before(async function () {
    buildDist();
    const dir = path.join(ARTIFACTS_DIR, 'error-heatmap');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const model = path.join(dir, 'overflow.onnx');
    fs.writeFileSync(model, buildModel(overflowChain()));
    const out = path.join(dir, 'verify');
    const v = ait(['verify', model, '--json', '--out', out]);
    assert.equal(v.status, 1, v.output); // the overflow fails the check
    report = JSON.parse(fs.readFileSync(path.join(out, 'verify-per-node.json'), 'utf8')) as PerNodeReport;
    const html = path.join(dir, 'error.html');
    const r = ait(['graph', out, '--profile', path.join(out, 'profile-verify.json'), '--html', html]);
    assert.equal(r.status, 0, r.output);
    browser = await launchChromium(this);
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    (page as Page & { errors: string[] }).errors = errors;
    await page.goto(`file://${html}?theme=light`);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState === 'done', null, {
      timeout: 110_000,
    });
  });
  after(async () => {
    if (page) assert.deepEqual((page as Page & { errors: string[] }).errors, [], 'no errors in the page console');
    await browser?.close();
  });

  it('opens on relative error, colours NaN/Inf nodes hottest and names the first overflowing node in the legend', async () => {
    assert.equal(await page.$eval('#ait-metric', (el) => (el as HTMLSelectElement).value), 'errorRel');
    assert.equal(await page.textContent('.legend .legend-title'), 'Numerical error (relative L2)');
    assert.equal(await page.textContent('[data-field="legend-max"]'), 'NaN/Inf');
    assert.match((await page.textContent('[data-field="legend-note"]'))!, /beyond the fp16 range/);
    const first = report.firstOverflow!;
    assert.ok(first, 'the report names an overflow');
    assert.equal(await page.textContent('.legend-hottest a[data-node]'), first.name);

    const fills = await page.$$eval('[data-node-id] rect.frame', (els) =>
      Object.fromEntries(els.map((e) => [(e.parentElement as HTMLElement).dataset.nodeId!, getComputedStyle(e).fill])),
    );
    const compared = report.nodes.filter((r) => r.relativeL2 !== undefined);
    const hottest = interpolateYlOrRd(1);
    for (const r of compared) {
      const nonFinite = r.relativeL2 === null;
      assert.equal(fills[r.id] === hottest, nonFinite, `${r.name}: fill ${fills[r.id]}, relative L2 ${r.relativeL2}`);
      assert.ok(fills[r.id], `${r.name} is coloured`);
    }
    assert.ok(compared.filter((r) => r.relativeL2 === null).length >= 2, 'blocks 3 and 4 hold NaN/Inf');
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'error-heatmap.png') });
  });

  it('shows the error in the node details', async () => {
    await page.click(`[data-node-id="${report.firstOverflow!.id}"]`);
    const details = (await page.textContent('.details'))!;
    assert.match(details, /relative L2 error NaN\/Inf/);
    assert.match(details, /values beyond the fp16 range/);
  });
});
