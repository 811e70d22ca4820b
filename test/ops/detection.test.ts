import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom } from '../../compiler/ir/tensor';
import { buildModel, inferModel, input, nodeModel, tensor } from '../helpers/onnx-builder';

const f32 = (dims: number[], values: number[]) => tensor('float32', dims, values);
const i64 = (dims: number[], values: number[]) => tensor('int64', dims, values);

describe('ops/detection', () => {
  it('NonZero: [rank, N] with N a data-dependent symbol bounded by the element count; evaluates indices', () => {
    const m = inferModel(nodeModel('NonZero', [input('float32', ['B', 4])], { name: '/rpn/NonZero' }));
    const [rank, n] = m.tensor('out0').shape!;
    assert.equal(rank, 2);
    assert.match(String(n), /^nonzero_/);
    assert.deepEqual(m.graph.symbols.bounds(n), { min: 0, max: 1024 });
    assert.match(m.graph.symbols.get(String(n))!.origin, /NonZero node '\/rpn\/NonZero'/);
    const [y] = runGraph(m.graph, [makeTensor('float32', [2, 4], [0, 1, 0, 2, 3, 0, 0, 0])]);
    assert.deepEqual(y.shape, [2, 3]);
    assert.deepEqual(Array.from(y.data as Float64Array), [0, 0, 1, 1, 3, 0]);
  });

  describe('TopK', () => {
    it('a constant k gives a concrete dim and folds; ties keep the lower index', () => {
      const m = inferModel(nodeModel('TopK', [f32([2, 4], [1, 3, 3, 2, 5, 4, 6, 0]), i64([1], [2])], { outputs: 2 }));
      assert.deepEqual(m.errors, []);
      assert.equal(m.shape('out0'), '[2, 2]');
      assert.deepEqual(m.values('out0'), [3, 3, 6, 5]);
      assert.deepEqual(m.values('out1'), [1, 2, 2, 0]);
      const smallest = inferModel(nodeModel('TopK', [f32([4], [4, 1, 3, 2]), i64([1], [3])], { outputs: 2, attrs: { largest: 0 } }));
      assert.deepEqual(smallest.values('out1'), [1, 3, 2]);
    });

    it('a run-time k is a symbol bounded by the axis length', () => {
      const m = inferModel({
        inputs: [
          { name: 'scores', dtype: 'float32', dims: [1, 4000] },
          { name: 'k', dtype: 'int64', dims: [1] },
        ],
        nodes: [{ op: 'TopK', inputs: ['scores', 'k'], outputs: ['v', 'i'], attrs: { axis: 1 } }],
        outputs: ['v', 'i'],
      });
      const [one, k] = m.tensor('v').shape!;
      assert.equal(one, 1);
      assert.deepEqual(m.graph.symbols.bounds(k), { min: 0, max: 4000 });
      assert.equal(m.tensor('i').dtype, 'int64');
    });

    it('k from shape arithmetic (Shape(x)[0]) stays symbolic', () => {
      const m = inferModel({
        inputs: [{ name: 'scores', dtype: 'float32', dims: ['N'] }],
        initializers: [{ name: 'zero', dtype: 'int64', dims: [1], values: [0] }],
        nodes: [
          { op: 'Shape', inputs: ['scores'], outputs: ['s'] },
          { op: 'Gather', inputs: ['s', 'zero'], outputs: ['k'] },
          { op: 'TopK', inputs: ['scores', 'k'], outputs: ['v', 'i'] },
        ],
        outputs: ['v', 'i'],
      });
      assert.equal(m.shape('v'), '[N]');
    });

    it('NaN is the largest value (PyTorch order): first for largest=1, last for largest=0; -0 ties +0; NaNs by index', () => {
      const x = [1, NaN, 3, -0, 0, NaN, 3, -Infinity, Infinity, 2];
      const indices = (largest: number) => {
        const m = inferModel(nodeModel('TopK', [input('float32', [10]), i64([1], [10])], { outputs: 2, attrs: { largest } }));
        return Array.from(runGraph(m.graph, [makeTensor('float32', [10], x)])[1].data as Float64Array);
      };
      assert.deepEqual(indices(1), [1, 5, 8, 2, 6, 9, 0, 3, 4, 7]);
      assert.deepEqual(indices(0), [7, 3, 4, 0, 9, 2, 6, 8, 1, 5]);
    });

    it('a negative k names the node', () => {
      const m = inferModel(nodeModel('TopK', [input('float32', [3]), i64([1], [-1])], { outputs: 2, name: 'top' }));
      assert.match(m.errors[0].message, /TopK node 'top': k = -1 is negative/);
    });

    it('k larger than the axis names the node', () => {
      const m = inferModel(nodeModel('TopK', [input('float32', [3]), i64([1], [5])], { outputs: 2, name: 'top' }));
      assert.match(m.errors[0].message, /TopK node 'top': k = 5 is larger than the axis size 3/);
    });
  });

  it('NonMaxSuppression: [N, 3] bounded by batches × classes × max boxes per class; evaluates the ONNX example', async () => {
    const boxes = [0, 0, 1, 1, 0, 0.1, 1, 1.1, 0, -0.1, 1, 0.9, 0, 10, 1, 11, 0, 10.1, 1, 11.1, 0, 100, 1, 101];
    const spec = nodeModel('NonMaxSuppression', [
      input('float32', [1, 6, 4]),
      input('float32', [1, 1, 6]),
      i64([1], [3]),
      f32([1], [0.5]),
      f32([1], [0]),
    ]);
    const m = inferModel(spec);
    const [n, three] = m.tensor('out0').shape!;
    assert.equal(three, 3);
    assert.deepEqual(m.graph.symbols.bounds(n), { min: 0, max: 3 });
    const scores = [0.9, 0.75, 0.6, 0.95, 0.5, 0.3];
    const [ours] = runGraph(m.graph, [makeTensor('float32', [1, 6, 4], boxes), makeTensor('float32', [1, 1, 6], scores)]);
    assert.deepEqual(Array.from(ours.data as Float64Array), [0, 0, 3, 0, 0, 0, 0, 0, 5]);
    const session = await ort.InferenceSession.create(buildModel(spec));
    const theirs = await session.run({
      in0: new ort.Tensor('float32', Float32Array.from(boxes), [1, 6, 4]),
      in1: new ort.Tensor('float32', Float32Array.from(scores), [1, 1, 6]),
    });
    assert.deepEqual(Array.from(ours.data as Float64Array), Array.from(theirs.out0.data as BigInt64Array, Number));
  });

  it('RoiAlign: [num_rois, C, output_height, output_width]; evaluation matches onnxruntime', async () => {
    const shape = inferModel(
      nodeModel('RoiAlign', [input('float32', [2, 256, 'H', 'W']), input('float32', ['R', 4]), input('int64', ['R'])], {
        attrs: { output_height: 7, output_width: 7 },
      }),
    );
    assert.equal(shape.shape('out0'), '[R, 256, 7, 7]');

    const spec = nodeModel('RoiAlign', [input('float32', [2, 2, 8, 8]), input('float32', [3, 4]), input('int64', [3])], {
      attrs: { output_height: 3, output_width: 2, sampling_ratio: 2, spatial_scale: 0.5 },
    });
    const rand = seededRandom(3);
    const x = Float32Array.from({ length: 256 }, () => rand());
    const rois = Float32Array.from([0, 0, 10, 12, 2.5, 3, 15, 9, 4, 4, 5, 5]);
    const batch = [1, 0, 1];
    const m = inferModel(spec);
    const [ours] = runGraph(m.graph, [
      makeTensor('float32', [2, 2, 8, 8], x),
      makeTensor('float32', [3, 4], rois),
      makeTensor('int64', [3], batch),
    ]);
    const session = await ort.InferenceSession.create(buildModel(spec));
    const theirs = await session.run({
      in0: new ort.Tensor('float32', x, [2, 2, 8, 8]),
      in1: new ort.Tensor('float32', rois, [3, 4]),
      in2: new ort.Tensor('int64', BigInt64Array.from(batch.map(BigInt)), [3]),
    });
    assert.deepEqual(ours.shape, [3, 2, 3, 2]);
    const expected = theirs.out0.data as Float32Array;
    const actual = ours.data as Float32Array;
    for (let i = 0; i < expected.length; i++)
      assert.ok(Math.abs(actual[i] - expected[i]) < 1e-5, `element ${i}: ${actual[i]} vs ${expected[i]}`);
  });
});
