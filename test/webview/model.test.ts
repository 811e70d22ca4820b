/** The webview's graph model and heatmap metrics, in Node, on small named fixture graphs. */
import * as assert from 'node:assert/strict';
import { interpolateRdBu, interpolateYlOrRd } from 'd3';
import type { GraphJson, ProfileJson } from '../../webview/contract';
import { buildCompare, buildHeatmap, formatValue, metricValue, nodeTotals } from '../../webview/metrics';
import { buildGraphModel, countVisible, formatShape, initialCollapsed, ROOT_GROUP, searchNodes, visibleGraph } from '../../webview/model';

/** Two residual blocks, dynamo-style scopes (innermost scope = the op itself), one kernel on b1's matmul. */
function twoBlocks(): GraphJson {
  const node = (id: string, op: string, inputs: string[], scope: string[], extra: object = {}) => ({
    id,
    op,
    name: `node_${op}_${id}`,
    inputs,
    outputs: [`t_${id}`],
    attrs: {},
    sourceNodes: [`node_${op}_${id}`],
    scope,
    ...extra,
  });
  return {
    format: 'ait-graph',
    version: 1,
    model: { name: 'two_blocks', producer: { name: 't', version: '0' }, irVersion: 10, opsets: { '': 18 }, weights: 'none' },
    symbols: [],
    removed: [],
    name: 'g',
    inputs: ['x'],
    outputs: ['t_n5'],
    tensors: {
      x: { dtype: 'float32', shape: ['batch', 4], kind: 'input', maxBytes: 64 },
      t_n0: { dtype: null, shape: null, kind: 'activation', maxBytes: null },
    },
    nodes: [
      node('n0', 'MatMul', ['x'], ['blocks', 'blocks.0', 'blocks.0.fc', 'linear']),
      node('n1', 'Relu', ['t_n0'], ['blocks', 'blocks.0', 'blocks.0.act', 'relu']),
      node('n2', 'Add', ['t_n1', 'x'], ['blocks', 'blocks.0']),
      node('n3', 'MatMul', ['t_n2'], ['blocks', 'blocks.1', 'blocks.1.fc', 'linear_1'], {
        kernel: { library: 'cutlass', name: 'cutlass3x_sm90_gemm_128x128x64', config: { tile: [128, 128, 64] } },
        cost: { flops: 2e9, bytes: 1e7, batch: 1 },
      }),
      node('n4', 'Relu', ['t_n3'], ['blocks', 'blocks.1', 'blocks.1.act', 'relu_1']),
      node('n5', 'Add', ['t_n4', 't_n2'], ['blocks', 'blocks.1']),
    ],
  };
}

function profile(ops: Record<string, number>): ProfileJson {
  return {
    format: 'ait-profile',
    version: 1,
    graph: { model: 'two_blocks' },
    gpu: { name: 'test', peakTflops: 100, peakGbPerS: 1000 },
    date: '2025-01-01T00:00:00Z',
    runs: 10,
    batch: 1,
    ops: Object.fromEntries(Object.entries(ops).map(([id, meanMs]) => [id, { meanMs }])),
  };
}

describe('webview model', () => {
  it('groups by scope, dropping single-node and single-child groups', () => {
    const m = buildGraphModel(twoBlocks());
    // blocks.0.fc/linear holds one node: dissolved into blocks.0; `blocks` holds two groups and stays.
    assert.deepEqual([...m.groups.keys()].sort(), [ROOT_GROUP, 'g:blocks', 'g:blocks/blocks.0', 'g:blocks/blocks.1'].sort());
    assert.deepEqual(m.groups.get('g:blocks/blocks.0')!.nodes.sort(), ['n0', 'n1', 'n2']);
    assert.equal(m.groups.get('g:blocks/blocks.0')!.name, '0');
    assert.equal(m.groups.get('g:blocks')!.size, 6);
    assert.equal(m.nodeById.get('n0')!.group, 'g:blocks/blocks.0');
  });

  it('builds edges from producers to consumers, and merges them between collapsed groups', () => {
    const m = buildGraphModel(twoBlocks());
    assert.equal(m.edges.length, 6); // n0→n1, n1→n2, n2→n3, n3→n4, n4→n5, n2→n5 (x is a graph input)
    const v = visibleGraph(m, new Set(['g:blocks/blocks.0', 'g:blocks/blocks.1']));
    assert.deepEqual(v.items.map((i) => i.id).sort(), ['g:blocks/blocks.0', 'g:blocks/blocks.1']);
    assert.deepEqual(
      v.containers.map((c) => c.id),
      ['g:blocks'],
    );
    assert.equal(v.edges.length, 1, 'n2→n3 and n2→n5 become one edge');
    assert.deepEqual(v.edges[0].tensors, ['t_n2']);
  });

  it('opens big graphs collapsed level by level within the budget', () => {
    const m = buildGraphModel(twoBlocks());
    assert.equal(initialCollapsed(m, 6).size, 0, 'small enough: all expanded');
    const c = initialCollapsed(m, 3);
    assert.deepEqual([...c].sort(), ['g:blocks/blocks.0', 'g:blocks/blocks.1']);
    assert.equal(countVisible(m, c), 2);
  });

  it('searches ids, names, ops and kernel names', () => {
    const m = buildGraphModel(twoBlocks());
    assert.deepEqual(searchNodes(m, 'CUTLASS3X_SM90'), ['n3']);
    assert.deepEqual(searchNodes(m, 'relu'), ['n1', 'n4']);
    assert.deepEqual(searchNodes(m, '  '), []);
  });
});

describe('webview heatmap metrics', () => {
  it('colours the slowest node hottest; groups get sums', () => {
    const m = buildGraphModel(twoBlocks());
    const h = buildHeatmap(m, profile({ n0: 1, n1: 0.5, n2: 0.25, n3: 4, n4: 0.5, n5: 0.25 }), 'time');
    assert.equal(h.legend.maxItem, 'n3');
    assert.equal(h.legend.max, 4);
    assert.equal(h.colorOf.get('n3'), interpolateYlOrRd(1));
    assert.equal(h.valueOf.get('g:blocks/blocks.0'), 1.75);
    assert.equal(h.valueOf.get('g:blocks'), 6.5);
  });

  it('derives TFLOP/s and roofline fraction from graph.json cost', () => {
    const m = buildGraphModel(twoBlocks());
    const p = profile({ n3: 0.1 });
    const t = nodeTotals(m, p, 'n3')!;
    assert.equal(metricValue('tflops', t, 0.1), 2e9 / (0.1e-3 * 1e12)); // 20 TFLOP/s
    // ideal = max(2e9 / 100e12 s, 1e7 / 1000e9 s) = 0.02 ms → 20 % of the roofline
    assert.ok(Math.abs(metricValue('roofline', t, 0.1)! - 0.2) < 1e-12);
    assert.equal(metricValue('share', t, 0.4), 25);
  });

  it('compares two profiles by ratio, red for slower', () => {
    const m = buildGraphModel(twoBlocks());
    const before = profile({ n0: 1, n3: 1, n5: 1 });
    const after = profile({ n0: 2, n3: 0.5, n5: 1 });
    const c = buildCompare(m, before, after);
    assert.equal(c.valueOf.get('n0'), 2);
    assert.equal(c.colorOf.get('n0'), interpolateRdBu(0));
    assert.equal(c.colorOf.get('n3'), interpolateRdBu(1));
    assert.equal(c.colorOf.get('n5'), interpolateRdBu(0.5));
  });

  it('formats values with their unit', () => {
    assert.equal(formatValue(20, 'ms'), '20.0 ms');
    assert.equal(formatValue(0.00012, 'ms'), '1.20e-4 ms');
    assert.equal(formatValue(12.345, '%'), '12.3 %');
  });
});

describe('webview tensor text', () => {
  it('names fp32 GPU storage (storage-precision pass) next to dtype and shape', () => {
    assert.equal(formatShape({ dtype: 'float32', shape: ['n', 4], kind: 'activation', maxBytes: null }), 'float32[n, 4]');
    assert.equal(
      formatShape({ dtype: 'float32', shape: ['n', 4], kind: 'activation', maxBytes: null, storage: 'float32' }),
      'float32[n, 4] (fp32 on the GPU)',
    );
  });
});
