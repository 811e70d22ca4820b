import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom } from '../../compiler/ir/tensor';
import { buildModel, inferModel, input, nodeModel, tensor } from '../helpers/onnx-builder';
import { optimizeAndCompare } from '../helpers/optimize-compare';

// x [2, 3, 4, 3]: the channel count equals the last dim, so per-channel (opset 6) and numpy (opset 7) slopes differ.
const X = [2, 3, 4, 3];
const SLOPE = [0.1, 0.2, 0.3];
const model = (opset: number) => nodeModel('PRelu', [input('float32', X), tensor('float32', [3], SLOPE)], { opset });

function xValues(): Float32Array {
  const rand = seededRandom(3);
  return Float32Array.from({ length: X.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1);
}

/** PRelu with the slope read at axis `axis` of X. */
function expected(x: Float32Array, axis: number): Float32Array {
  const strides = [X[1] * X[2] * X[3], X[2] * X[3], X[3], 1];
  return x.map((v, i) => (v < 0 ? SLOPE[Math.floor(i / strides[axis]) % X[axis]] * v : v));
}

function close(got: Float32Array, want: Float32Array): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-6, `element ${i}: ${got[i]} vs ${want[i]}`);
}

describe('ops/PRelu slope broadcast by opset', () => {
  it('opset 6: a 1-D slope [C] is one value per channel (axis 1), in import, the interpreter and the optimized graph', () => {
    const m = inferModel(model(6));
    assert.deepEqual(m.errors, []);
    assert.deepEqual(m.tensor('out0').shape, X);
    const x = xValues();
    const [y] = runGraph(m.graph, [makeTensor('float32', X, x)]);
    close(y.data as Float32Array, expected(x, 1));
    // the optimized graph (the slope reshaped to [3, 1, 1] by canonicalize) computes the same
    // (the same x as above: optimized(x) = original(x) = the per-channel result)
    optimizeAndCompare(model(6), [X], (n) => Array.from(xValues().subarray(0, n)));
  });

  it('opset 7: the same slope broadcasts numpy-style (last axis), as onnxruntime computes it', async () => {
    const m = inferModel(model(7));
    assert.deepEqual(m.errors, []);
    const x = xValues();
    const [y] = runGraph(m.graph, [makeTensor('float32', X, x)]);
    close(y.data as Float32Array, expected(x, 3));
    const session = await ort.InferenceSession.create(buildModel(model(7)));
    const theirs = (await session.run({ in0: new ort.Tensor('float32', x, X) })).out0;
    close(y.data as Float32Array, theirs.data as Float32Array);
  });

  it('opset 6: a slope that is not per-channel still has to broadcast', () => {
    const m = inferModel(nodeModel('PRelu', [input('float32', X), tensor('float32', [5], [1, 2, 3, 4, 5])], { opset: 6 }));
    assert.match(JSON.stringify(m.errors), /the_PRelu.*do not broadcast/);
  });
});
