/**
 * First render in real (headless) Chromium: the page draws the provisional layout at once, with every visible
 * box, then replaces it by ELK's layout; nodes keep their `data-node-id` through the switch.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildGraphModel, initialCollapsed, visibleGraph } from '../../webview/model';
import { ait, ARTIFACTS_DIR, buildDist, launchChromium } from './browser';
import { syntheticGraph } from './fixtures';

interface DrawnLayout {
  engine: string;
  nodeIds: string[];
  groupIds: string[];
  /** `transform` of each box (node or collapsed group), by id. */
  positions: Record<string, string>;
  edges: number;
}

/** Records the drawing each time the page finishes a layout (the data-layout-state change), before the next task. */
const RECORD_DRAWINGS = `
  window.__drawn = [];
  new MutationObserver(() => {
    const app = document.querySelector('.ait-graph-app');
    const state = app?.dataset.layoutState;
    if (state !== 'provisional' && state !== 'done') return;
    const nodes = [...document.querySelectorAll('[data-node-id]')];
    const groups = [...document.querySelectorAll('.box.group[data-group-id]')];
    window.__drawn.push({
      engine: app.dataset.layoutEngine,
      nodeIds: nodes.map((e) => e.dataset.nodeId),
      groupIds: groups.map((e) => e.dataset.groupId),
      positions: Object.fromEntries([...nodes, ...groups].map((e) => [e.dataset.nodeId ?? e.dataset.groupId, e.getAttribute('transform')])),
      edges: document.querySelectorAll('path.edge').length,
    });
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-layout-state'] });
`;

describe('webview first render: provisional layout, then ELK', function () {
  let browser: Browser;
  let page: Page;
  const graph = syntheticGraph(12, 30); // 360 nodes: opens collapsed, with expanded containers around groups

  before(async function () {
    buildDist();
    const dir = path.join(ARTIFACTS_DIR, 'first-render');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'graph.json'), JSON.stringify(graph));
    const html = path.join(dir, 'synthetic.html');
    const r = ait(['graph', dir, '--html', html]);
    assert.equal(r.status, 0, r.output);
    browser = await launchChromium(this);
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    (page as Page & { errors: string[] }).errors = errors;
    await page.addInitScript(RECORD_DRAWINGS);
    await page.goto(`file://${html}`);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState === 'done', null, {
      timeout: 110_000,
    });
  });
  after(async () => {
    if (page) assert.deepEqual((page as Page & { errors: string[] }).errors, [], 'no errors in the page console');
    await browser?.close();
  });

  it('draws every visible box and edge provisionally first, then replaces it by ELK with the same node ids', async () => {
    const drawn = (await page.evaluate('window.__drawn')) as DrawnLayout[];
    assert.deepEqual(
      drawn.map((d) => d.engine),
      ['provisional', 'elk'],
    );
    const [provisional, elk] = drawn;
    const model = buildGraphModel(graph);
    const visible = visibleGraph(model, initialCollapsed(model, 160));
    const expectedNodes = visible.items.filter((i) => i.kind === 'node').map((i) => i.id);
    const expectedGroups = visible.items.filter((i) => i.kind === 'group').map((i) => i.id);
    assert.ok(expectedGroups.length > 1, 'the page opens with collapsed groups');
    for (const d of drawn) {
      assert.deepEqual(new Set(d.nodeIds), new Set(expectedNodes), `${d.engine}: every visible node, by id`);
      assert.deepEqual(new Set(d.groupIds), new Set(expectedGroups), `${d.engine}: every collapsed group`);
      assert.equal(d.edges, visible.edges.length, `${d.engine}: every visible edge`);
    }
    // Replaced, not just redrawn: ELK places the boxes elsewhere.
    assert.ok(
      Object.keys(provisional.positions).some((id) => provisional.positions[id] !== elk.positions[id]),
      'ELK layout moved at least one box',
    );
    const marks = (await page.evaluate(() =>
      ['ait-first-render', 'ait-first-elk-render'].map((n) => performance.getEntriesByName(n)[0]?.startTime),
    )) as number[];
    assert.ok(marks[0] > 0 && marks[1] > marks[0], `first render (${marks[0]?.toFixed(0)} ms) before ELK's (${marks[1]?.toFixed(0)} ms)`);
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'first-render-elk.png') });
  });

  it('keeps node ids when a group expands after the first render', async () => {
    const group = await page.$eval('.box.group[data-group-id]', (e) => (e as HTMLElement).dataset.groupId!);
    const before = await page.$$eval('[data-node-id]', (els) => els.map((e) => (e as HTMLElement).dataset.nodeId!));
    await page.evaluate(`window.__drawn = []`);
    await page.click(`.box.group[data-group-id="${group}"]`);
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState === 'done');
    const drawn = (await page.evaluate('window.__drawn')) as DrawnLayout[];
    assert.equal(drawn.at(-1)!.engine, 'elk');
    const model = buildGraphModel(graph);
    const inside = (id: string): string[] => [...model.groups.get(id)!.nodes, ...model.groups.get(id)!.groups.flatMap(inside)];
    const after = new Set(drawn.at(-1)!.nodeIds);
    for (const id of before) assert.ok(after.has(id), `${id} still drawn`);
    assert.ok(
      inside(group).some((id) => after.has(id)),
      `the nodes of ${group} are drawn`,
    );
    // Any provisional drawing in between showed the same boxes as ELK's.
    for (const d of drawn) assert.deepEqual(new Set(d.nodeIds), after, `${d.engine}: same nodes`);
  });
});
