/**
 * canonicalize's no-op removal: a chain of no-ops of any length goes in one walk (later readers renamed as they
 * are reached, subgraphs once at the end), a no-op writing a graph output keeps that output's name, an outer name
 * read inside an If branch follows the rename, a Pad by zeros goes, and the graph still computes what it did
 * (interpreter).
 */
import { strict as assert } from 'node:assert';
import { optimizeAndCompare } from '../helpers/optimize-compare';
import type { GraphSpec, NodeSpec } from '../helpers/onnx-builder';

const random = (n: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 2);

describe('canonicalize: no-op removal', () => {
  it('removes a long chain of Identity/Dropout/x*1/x+0 read twice, keeping the graph output name', () => {
    const nodes: NodeSpec[] = [];
    let y = 'x';
    for (let i = 0; i < 200; i++) {
      const op = ['Identity', 'Dropout', 'Mul', 'Add'][i % 4];
      const inputs = op === 'Mul' ? [y, 'one'] : op === 'Add' ? ['zero', y] : [y];
      nodes.push({ op, name: `noop_${i}`, inputs, outputs: [`c${i}`] });
      y = `c${i}`;
    }
    nodes.push({ op: 'Relu', name: 'relu', inputs: [y], outputs: ['r'] });
    // an If reads the chain's end from the outer scope (renamed in its branches too), beside the Relu that reads it
    const branch = (name: string, op: string): GraphSpec => ({
      name,
      inputs: [],
      nodes: [
        { op: 'Identity', inputs: [y], outputs: [`${name}_id`] },
        { op, inputs: [`${name}_id`], outputs: [`${name}_out`] },
      ],
      outputs: [`${name}_out`],
    });
    nodes.push({
      op: 'If',
      name: 'choose',
      inputs: ['c'],
      outputs: ['f'],
      attrs: { then_branch: branch('then', 'Sigmoid'), else_branch: branch('else', 'Tanh') },
    });
    nodes.push({ op: 'Add', name: 'sum', inputs: ['r', 'f'], outputs: ['s'] });
    nodes.push({ op: 'Identity', name: 'to_output', inputs: ['s'], outputs: ['out'] }); // a no-op writing a graph output
    const graph = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: [2, 8] }],
        initializers: [
          { name: 'one', dtype: 'float32', dims: [], values: [1] },
          { name: 'zero', dtype: 'float32', dims: [], values: [0] },
          { name: 'c', dtype: 'bool', dims: [], values: [1] },
        ],
        nodes,
        outputs: ['out'],
      },
      [[2, 8]],
      random,
    );
    assert.deepEqual(graph.outputs, ['out']);
    assert.ok(!graph.nodes.some((n) => n.name.startsWith('noop_')), 'every no-op of the chain is gone');
    assert.ok(graph.nodes.length <= 4, graph.nodes.map((n) => `${n.op} ${n.name}`).join(', '));
  });

  it('removes a Pad by zeros (a window pad the input already fits) and keeps a Pad that pads', () => {
    const graph = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: [2, 7, 7, 4] }],
        initializers: [
          { name: 'zeros', dtype: 'int64', dims: [8], values: [0, 0, 0, 0, 0, 0, 0, 0] },
          { name: 'pads', dtype: 'int64', dims: [8], values: [0, 1, 1, 0, 0, 1, 1, 0] },
        ],
        nodes: [
          { op: 'Pad', name: 'window_pad', inputs: ['x', 'zeros'], outputs: ['p'] },
          { op: 'Relu', name: 'relu', inputs: ['p'], outputs: ['r'] },
          { op: 'Pad', name: 'real_pad', inputs: ['r', 'pads'], outputs: ['y'], attrs: { mode: 'reflect' } },
        ],
        outputs: ['y'],
      },
      [[2, 7, 7, 4]],
      random,
    );
    assert.deepEqual(
      graph.nodes.filter((n) => n.op === 'Pad').map((n) => n.name),
      ['real_pad'],
    );
  });

  it('folds a zero Pad of the spatial axes into the Conv that reads it, and keeps a reflect Pad', () => {
    const weights = (n: number) => Array.from({ length: n }, (_, i) => Math.cos(i * 1.7) * 0.3);
    const graph = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: [1, 4, 6, 6] }],
        initializers: [
          { name: 'pads', dtype: 'int64', dims: [8], values: [0, 0, 1, 2, 0, 0, 2, 0] },
          { name: 'reflect_pads', dtype: 'int64', dims: [8], values: [0, 0, 1, 1, 0, 0, 1, 1] },
          { name: 'w', dtype: 'float32', dims: [8, 4, 3, 3], values: weights(288) },
          { name: 'w2', dtype: 'float32', dims: [8, 8, 3, 3], values: weights(576) },
        ],
        nodes: [
          { op: 'Pad', name: 'zero_pad', inputs: ['x', 'pads'], outputs: ['p'] },
          { op: 'Conv', name: 'conv', inputs: ['p', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 0, 0, 1] } },
          { op: 'Pad', name: 'reflect_pad', inputs: ['c', 'reflect_pads'], outputs: ['q'], attrs: { mode: 'reflect' } },
          { op: 'Conv', name: 'conv2', inputs: ['q', 'w2'], outputs: ['y'], attrs: { kernel_shape: [3, 3] } },
        ],
        outputs: ['y'],
      },
      [[1, 4, 6, 6]],
      random,
    );
    assert.deepEqual(
      graph.nodes.filter((n) => n.op === 'Pad').map((n) => n.name),
      ['reflect_pad'],
    );
    const conv = graph.nodes.find((n) => n.sourceNodes.includes('zero_pad'));
    assert.ok(conv, 'the zero Pad was absorbed by a conv');
    assert.deepEqual(conv.attrs.pads, { type: 'ints', value: [2, 2, 2, 1] });
  });
});
