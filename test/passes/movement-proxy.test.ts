/**
 * movement.ts checks a chain of movement ops on a proxy tensor whose symbolic dims take a small size. A dim that is 1
 * at that size (L - 1 with L at 2; floor((L - 1) / 2) - 1 after a strided 1-D conv and a 'valid' one) made a
 * Transpose that moves it look like a Reshape; the proxy is now the smallest size that leaves every symbolic dim of
 * the chain above 1. Checked: Slice to L - 1, then Transpose + Squeeze, stays a Transpose, and the optimized graph
 * computes what the original does.
 */
import { strict as assert } from 'node:assert';
import { optimizeImported } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor, numeric, seededRandom } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { inferShapes } from '../../compiler/passes/shape-inference';
import { ModelSpec, buildModel } from '../helpers/onnx-builder';

function model(): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [1, 8, 'L'] }],
    initializers: [
      { name: 'starts', dtype: 'int64', dims: [1], values: [1] },
      { name: 'ends', dtype: 'int64', dims: [1], values: [1 << 30] },
      { name: 'axis', dtype: 'int64', dims: [1], values: [2] },
      { name: 'lead', dtype: 'int64', dims: [1], values: [0] },
    ],
    nodes: [
      { op: 'Slice', inputs: ['x', 'starts', 'ends', 'axis'], outputs: ['s'] },
      { op: 'Transpose', inputs: ['s'], outputs: ['t'], attrs: { perm: [0, 2, 1] } },
      { op: 'Squeeze', inputs: ['t', 'lead'], outputs: ['y'] },
    ],
    outputs: ['y'],
    opset: 17,
  };
}

describe('movement chains: the proxy of symbolic dims', () => {
  it('a Transpose moving a dim that is 1 at the smallest proxy is not taken for a Reshape', () => {
    const { graph, context } = optimizeImported(importOnnxBytes(buildModel(model())), 'm.onnx');
    assert.deepEqual(
      context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    assert.ok(!graph.nodes.some((n) => n.op === 'Reshape'), graph.nodes.map((n) => n.op).join(', '));
    const original = importOnnxBytes(buildModel(model()));
    inferShapes(original.graph);
    for (const L of [5, 12]) {
      const random = seededRandom(L);
      const x = makeTensor(
        'float32',
        [1, 8, L],
        Array.from({ length: 8 * L }, () => random()),
      );
      const [expected] = runGraph(original.graph, [x]);
      const [actual] = runGraph(graph, [x]);
      assert.deepEqual(actual.shape, expected.shape);
      assert.deepEqual(Array.from(numeric(actual)), Array.from(numeric(expected)), `L=${L}`);
    }
  });
});
