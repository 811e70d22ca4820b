/**
 * The ScatterND reference (the oracle the CUDA kernels are checked against) against onnxruntime-node: opsets 11-18,
 * every reduction, index tuples of 1 to the full rank (slices down to one element), negative indices, duplicate
 * tuples (the reductions combine them in order; under reduction none the last one wins, as in onnxruntime and the
 * kernels), float32 and int64 data. Bad operands are errors naming the node.
 */
import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { DType } from '../../compiler/ir/dtype';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../compiler/ir/tensor';
import { AttrSpec, buildModel, inferModel, input, nodeModel } from '../helpers/onnx-builder';

function ortTensor(dtype: DType, data: ArrayLike<number>, dims: number[]): ort.Tensor {
  if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (v) => BigInt(v))), dims);
  return new ort.Tensor('float32', Float32Array.from(data), dims);
}

async function both(spec: ReturnType<typeof nodeModel>, inputs: TensorValue[]) {
  const m = inferModel(spec);
  assert.deepEqual(
    m.errors.map((e) => e.message),
    [],
  );
  const [ours] = runGraph(m.graph, inputs);
  const session = await ort.InferenceSession.create(buildModel(spec), { logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = {};
  inputs.forEach((t, i) => (feeds[`in${i}`] = ortTensor(t.dtype, numeric(t), t.shape)));
  const theirs = (await session.run(feeds)).out0;
  return { ours, theirs: { dims: [...theirs.dims], values: Array.from(theirs.data as ArrayLike<number | bigint>, Number) } };
}

describe('ops: ScatterND against onnxruntime', function () {
  this.timeout(60_000);
  const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const cases: { opset: number; data: number[]; indices: number[]; reduction?: string; dtype?: DType; unique?: boolean }[] = [
    { opset: 11, data: [4, 5, 3], indices: [3, 1], unique: true },
    { opset: 13, data: [4, 5, 3], indices: [2, 2, 2], unique: true },
    { opset: 16, data: [4, 5, 3], indices: [7, 1], reduction: 'add' },
    { opset: 16, data: [4, 5, 3], indices: [6, 2], reduction: 'mul' },
    { opset: 18, data: [4, 5, 3], indices: [9, 3], reduction: 'max' },
    { opset: 18, data: [6, 2], indices: [2, 5, 1], reduction: 'min' },
    { opset: 18, data: [5, 4], indices: [12, 2], reduction: 'add', dtype: 'int64' },
    // duplicates under reduction none: onnxruntime applies the tuples in order (the last one wins)
    { opset: 18, data: [4, 5, 3], indices: [10, 2], reduction: 'none' },
    { opset: 16, data: [3, 4], indices: [8, 1], dtype: 'int64' },
  ];
  for (const k of cases)
    it(`opset ${k.opset}: ${k.dtype ?? 'float32'} [${k.data}] indices [${k.indices}], reduction ${k.reduction ?? 'none'}`, async () => {
      const dtype = k.dtype ?? 'float32';
      const random = seededRandom(5);
      const tupleLength = k.indices[k.indices.length - 1];
      const updatesShape = [...k.indices.slice(0, -1), ...k.data.slice(tupleLength)];
      const value = () => (dtype === 'int64' ? Math.floor(random() * 10 - 5) : random() * 2 - 1);
      const data = makeTensor(dtype, k.data, Array.from({ length: count(k.data) }, value));
      const updates = makeTensor(dtype, updatesShape, Array.from({ length: count(updatesShape) }, value));
      const tuples = count(k.indices.slice(0, -1));
      // unique: distinct positions (shuffled), the odd tuples written negative
      const positions = Array.from({ length: count(k.data.slice(0, tupleLength)) }, (_, i) => i).sort(() => random() - 0.5);
      const indexValues: number[] = [];
      for (let t = 0; t < tuples; t++) {
        let position = k.unique ? positions[t] : Math.floor(random() * positions.length);
        const tuple: number[] = [];
        for (let m = tupleLength - 1; m >= 0; m--) {
          const size = k.data[m];
          tuple.unshift((position % size) - (t % 2 ? size : 0));
          position = Math.floor(position / size);
        }
        indexValues.push(...tuple);
      }
      const indices = makeTensor('int64', k.indices, indexValues);
      const attrs: Record<string, AttrSpec> = {};
      if (k.reduction) attrs.reduction = k.reduction;
      const spec = nodeModel('ScatterND', [input(dtype, k.data), input('int64', k.indices), input(dtype, updatesShape)], {
        attrs,
        opset: k.opset,
      });
      const { ours, theirs } = await both(spec, [data, indices, updates]);
      assert.deepEqual(ours.shape, theirs.dims);
      const actual = numeric(ours);
      for (let i = 0; i < theirs.values.length; i++)
        assert.ok(Math.abs(actual[i] - theirs.values[i]) <= 1e-6, `element ${i} is ${actual[i]}, onnxruntime ${theirs.values[i]}`);
    });

  it('an index out of range is an error naming the node', () => {
    const spec = nodeModel('ScatterND', [input('float32', [3, 2]), input('int64', [1, 1]), input('float32', [1, 2])], {
      name: 'put',
      opset: 16,
    });
    const m = inferModel(spec);
    assert.throws(
      () =>
        runGraph(m.graph, [
          makeTensor('float32', [3, 2], [1, 2, 3, 4, 5, 6]),
          makeTensor('int64', [1, 1], [3]),
          makeTensor('float32', [1, 2], [0, 0]),
        ]),
      /ScatterND node 'put'.*index 3 is out of range for axis 0 of size 3/,
    );
  });

  it('operands of the wrong shapes or types are errors naming the node', () => {
    const bad = (data: number[], indices: number[], updates: number[], index: DType = 'int64', attrs: Record<string, AttrSpec> = {}) =>
      inferModel(
        nodeModel('ScatterND', [input('float32', data), input(index, indices), input('float32', updates)], {
          attrs,
          name: 'put',
          opset: 18,
        }),
      ).errors.map((e) => e.message);
    assert.match(
      bad([4, 5], [2, 1], [2, 4]).join(),
      /ScatterND node 'put'.*updates \[2, 4\] must have shape indices\[:-1\] \+ data\[1:\] = \[2, 5\]/,
    );
    assert.match(bad([4, 5], [2, 3], [2]).join(), /ScatterND node 'put'.*index tuples of 3 entries for data of rank 2/);
    assert.match(bad([4, 5], [2, 1], [2, 5], 'int32').join(), /ScatterND node 'put'.*indices must be int64/);
    assert.match(bad([4, 5], [2, 1], [2, 5], 'int64', { reduction: 'mean' }).join(), /ScatterND node 'put'.*reduction 'mean'/);
    assert.deepEqual(bad([4, 5], [7, 2], [7]), []);
  });
});
