/** The provisional (main-thread) layout, in Node: the same boxes and edges as ELK gets, placed without overlaps. */
import * as assert from 'node:assert/strict';
import type { GraphJson } from '../../webview/contract';
import { GROUP_HEADER, NODE_HEIGHT, NODE_WIDTH, type LaidOutBox, type LaidOutGraph } from '../../webview/geometry';
import { buildGraphModel, initialCollapsed, ROOT_GROUP, visibleGraph, type VisibleGraph } from '../../webview/model';
import { provisionalLayout } from '../../webview/provisional-layout';
import { syntheticGraph } from './fixtures';

/** A diamond inside one scope (fan-out to two branches, join) feeding a node in another scope, then back out. */
function diamond(): GraphJson {
  const node = (id: string, inputs: string[], scope: string[]) => ({
    id,
    op: 'Relu',
    name: `/${scope.join('/')}/${id}`,
    inputs,
    outputs: [`t_${id}`],
    attrs: {},
    sourceNodes: [id],
    scope,
  });
  return {
    ...syntheticGraph(1, 1),
    outputs: ['t_e'],
    nodes: [
      node('a', ['input'], ['left', 'left.in']),
      node('b1', ['t_a'], ['left', 'left.branch']),
      node('b2', ['t_a'], ['left', 'left.branch']),
      node('j', ['t_b1', 't_b2'], ['left']),
      node('r', ['t_j'], ['right', 'right.x']),
      node('r2', ['t_r'], ['right', 'right.x']),
      node('e', ['t_r2', 't_a'], []),
    ],
  };
}

/** Checks what the renderer and the switch to ELK's layout rely on; returns the boxes by id. */
function checkLayout(visible: VisibleGraph, layout: LaidOutGraph, opts = { edgesClear: true }): Map<string, LaidOutBox> {
  assert.equal(layout.engine, 'provisional');
  const boxes = new Map(layout.boxes.map((b) => [b.id, b]));
  assert.equal(boxes.size, layout.boxes.length, 'box ids are unique');
  // The same boxes as ELK gets: every leaf item and every expanded group, containers first.
  assert.deepEqual(new Set(boxes.keys()), new Set([...visible.items, ...visible.containers].map((i) => i.id)));
  const firstLeaf = layout.boxes.findIndex((b) => b.kind !== 'container');
  assert.ok(
    layout.boxes.slice(firstLeaf).every((b) => b.kind !== 'container'),
    'containers are drawn first',
  );
  for (const item of visible.items) {
    const b = boxes.get(item.id)!;
    assert.equal(b.kind, item.kind);
    if (item.kind === 'node') assert.deepEqual([b.width, b.height], [NODE_WIDTH, NODE_HEIGHT]);
  }
  // Each box lies inside its group, below the group's header; siblings do not overlap.
  const siblings = new Map<string, LaidOutBox[]>();
  for (const item of [...visible.containers, ...visible.items]) {
    const b = boxes.get(item.id)!;
    if (item.parent !== ROOT_GROUP) {
      const p = boxes.get(item.parent)!;
      assert.ok(b.x >= p.x && b.x + b.width <= p.x + p.width, `${item.id} inside ${item.parent} horizontally`);
      assert.ok(b.y >= p.y + GROUP_HEADER && b.y + b.height <= p.y + p.height, `${item.id} inside ${item.parent} vertically`);
    }
    assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.width <= layout.width && b.y + b.height <= layout.height, `${item.id} inside the graph`);
    siblings.set(item.parent, [...(siblings.get(item.parent) ?? []), b]);
  }
  for (const group of siblings.values())
    for (let i = 0; i < group.length; i++)
      for (let j = i + 1; j < group.length; j++) {
        const [a, b] = [group[i], group[j]];
        const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;
        assert.ok(apart, `${a.id} and ${b.id} do not overlap`);
      }
  // Every visible edge, from its source's bottom to its target's top, target below source (the graph is a DAG).
  assert.deepEqual(
    layout.edges.map((e) => [e.id, e.source, e.target]),
    visible.edges.map((e) => [e.id, e.source, e.target]),
  );
  for (const e of layout.edges) {
    const s = boxes.get(e.source)!;
    const t = boxes.get(e.target)!;
    assert.deepEqual(e.points[0], [s.x + s.width / 2, s.y + s.height]);
    assert.deepEqual(e.points.at(-1), [t.x + t.width / 2, t.y]);
    assert.ok(t.y >= s.y + s.height, `${e.source} → ${e.target} points down`);
    // No edge hides behind a box it does not connect: sample its polyline (O(edges × boxes): small graphs only).
    for (let k = 1; opts.edgesClear && k < e.points.length; k++) {
      const [[x0, y0], [x1, y1]] = [e.points[k - 1], e.points[k]];
      for (let u = 0; u <= 1; u += 0.05) {
        const [x, y] = [x0 + u * (x1 - x0), y0 + u * (y1 - y0)];
        const under = layout.boxes.find(
          (b) =>
            b.kind !== 'container' &&
            b.id !== e.source &&
            b.id !== e.target &&
            x > b.x &&
            x < b.x + b.width &&
            y > b.y &&
            y < b.y + b.height,
        );
        assert.equal(under, undefined, `${e.source} → ${e.target} passes under ${under?.id}`);
      }
    }
  }
  return boxes;
}

describe('webview provisional layout', () => {
  it('places a diamond across nested groups: branches side by side, each box inside its group', () => {
    const model = buildGraphModel(diamond());
    const visible = visibleGraph(model, new Set());
    assert.ok(visible.containers.length >= 3, 'nested groups are expanded');
    const boxes = checkLayout(visible, provisionalLayout(visible));
    const [b1, b2] = [boxes.get('b1')!, boxes.get('b2')!];
    assert.equal(b1.y, b2.y, 'the two branches share a rank');
    assert.ok(boxes.get('j')!.y > b1.y && boxes.get('e')!.y > boxes.get('r2')!.y);
    const skip = provisionalLayout(visible).edges.find((e) => e.source === 'a' && e.target === 'e')!;
    assert.ok(skip.points.length > 2, 'the edge that skips the branches goes around them');
  });

  it('draws collapsed groups as boxes with the edges between them', () => {
    const model = buildGraphModel(diamond());
    const collapsed = new Set([...model.groups.keys()].filter((g) => g !== ROOT_GROUP));
    const visible = visibleGraph(model, collapsed);
    const boxes = checkLayout(visible, provisionalLayout(visible));
    assert.ok([...boxes.values()].some((b) => b.kind === 'group'));
    assert.ok(visible.edges.length > 0);
  });

  it('lays out a 5,000-node graph, opened collapsed and fully expanded, in linear time', () => {
    const model = buildGraphModel(syntheticGraph(50, 100));
    for (const collapsed of [initialCollapsed(model, 160), new Set<string>()]) {
      const visible = visibleGraph(model, collapsed);
      const layout = provisionalLayout(visible);
      checkLayout(visible, layout, { edgesClear: visible.items.length < 500 });
      // Generous: a few ms here; a quadratic placement would take seconds.
      assert.ok(layout.layoutMs < 1000, `${visible.items.length} boxes in ${layout.layoutMs.toFixed(0)} ms`);
    }
  });
});
