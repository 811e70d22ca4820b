/**
 * The references of RoiAlign, ScatterElements and ConstantOfShape (the oracle the CUDA kernels are checked against)
 * against onnxruntime-node: RoiAlign in opset 10 (output_half_pixel, no attribute) and 16/17 (both transformations),
 * avg and max (onnxruntime's max of weighted corners), fixed and adaptive sampling, rois inside, across the border,
 * outside, inverted and tiny; ScatterElements in opsets 11-18 with every reduction, int32/int64 indices, negative and
 * duplicate indices; ConstantOfShape of every GPU dtype. Bad operands are errors naming the node.
 */
import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { DType } from '../../compiler/ir/dtype';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../compiler/ir/tensor';
import { AttrSpec, attr, buildModel, inferModel, input, nodeModel, tensor } from '../helpers/onnx-builder';

function ortTensor(dtype: DType, data: ArrayLike<number>, dims: number[]): ort.Tensor {
  if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (v) => BigInt(v))), dims);
  if (dtype === 'int32') return new ort.Tensor('int32', Int32Array.from(data), dims);
  return new ort.Tensor('float32', Float32Array.from(data), dims);
}

/** The interpreter's and onnxruntime's out0 of a one-node model on the same inputs. */
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

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${what}: element ${i} is ${actual[i]}, onnxruntime ${expected[i]}`);
}

describe('ops: RoiAlign, ScatterElements, ConstantOfShape against onnxruntime', function () {
  this.timeout(60_000);

  describe('RoiAlign', () => {
    const [n, c, h, w] = [2, 3, 9, 11];
    const random = seededRandom(7);
    const x = makeTensor(
      'float32',
      [n, c, h, w],
      Array.from({ length: n * c * h * w }, () => random() * 2 - 1),
    );
    // inside, across the border, mostly outside (-3..6 × -2..30), tiny, inverted (x2 < x1, y2 < y1), off the map
    const boxes = [0, 0, 10, 12, 2.5, 3, 15, 9, 4, 4, 5, 5, -3, -2, 6, 30, 7.2, 1.1, 7.3, 1.2, 14, 12, 3, 2, 40, 40, 50, 50];
    const numRois = boxes.length / 4;
    const rois = makeTensor('float32', [numRois, 4], boxes);
    const batch = makeTensor(
      'int64',
      [numRois],
      Array.from({ length: numRois }, (_, i) => i % n),
    );
    const spec = (opset: number, attrs: Record<string, AttrSpec>) =>
      nodeModel('RoiAlign', [input('float32', [n, c, h, w]), input('float32', [numRois, 4]), input('int64', [numRois])], {
        attrs: { output_height: 3, output_width: 4, spatial_scale: 0.5, ...attrs },
        opset,
      });

    for (const opset of [10, 16, 17])
      for (const mode of ['avg', 'max'])
        for (const samplingRatio of [0, 2])
          for (const transform of opset >= 16 ? [undefined, 'half_pixel', 'output_half_pixel'] : [undefined])
            it(`opset ${opset}, ${mode}, sampling_ratio ${samplingRatio}, ${transform ?? 'default transformation'}`, async () => {
              const attrs: Record<string, AttrSpec> = { mode, sampling_ratio: samplingRatio };
              if (transform) attrs.coordinate_transformation_mode = transform;
              const { ours, theirs } = await both(spec(opset, attrs), [x, rois, batch]);
              assert.deepEqual(ours.shape, theirs.dims);
              assertClose(numeric(ours), theirs.values, 1e-5, `${mode} ${transform ?? ''}`);
            });

    it('opset 10 without the attribute is output_half_pixel, written on the node (the reference has no opset)', () => {
      const m = inferModel(spec(10, {}));
      assert.equal(m.graph.nodes[0].attrs.coordinate_transformation_mode?.value, 'output_half_pixel');
      const m16 = inferModel(spec(16, {}));
      assert.equal(m16.graph.nodes[0].attrs.coordinate_transformation_mode, undefined);
    });

    it('channels_last (set by the layout pass) reads X as [N, H, W, C] and computes the same [R, C, oh, ow]', () => {
      for (const mode of ['avg', 'max']) {
        const m = inferModel(spec(16, { mode, sampling_ratio: 0 }));
        const [nchw] = runGraph(m.graph, [x, rois, batch]);
        const xs = numeric(x);
        const nhwc = makeTensor('float32', [n, h, w, c], new Float64Array(xs.length));
        const dst = numeric(nhwc);
        for (let b = 0; b < n; b++)
          for (let ch = 0; ch < c; ch++)
            for (let y = 0; y < h; y++)
              for (let xx = 0; xx < w; xx++) dst[((b * h + y) * w + xx) * c + ch] = xs[((b * c + ch) * h + y) * w + xx];
        const node = m.graph.nodes[0];
        node.attrs.channels_last = { type: 'int', value: 1 };
        m.graph.tensor(node.inputs[0]).shape = [n, h, w, c];
        const [fromNhwc] = runGraph(m.graph, [nhwc, rois, batch]);
        assert.deepEqual(fromNhwc.shape, nchw.shape);
        assertClose(numeric(fromNhwc), numeric(nchw), 1e-12, `${mode} channels_last`);
      }
    });

    it('bad attributes and operands are errors naming the node', () => {
      const bad = (attrs: Record<string, AttrSpec>, batchType: DType = 'int64', roiDims = [numRois, 4]) =>
        inferModel(
          nodeModel('RoiAlign', [input('float32', [n, c, h, w]), input('float32', roiDims), input(batchType, [roiDims[0]])], {
            attrs,
            name: 'pooler',
            opset: 16,
          }),
        ).errors.map((e) => e.message);
      assert.match(bad({ output_height: 0 }).join(), /RoiAlign node 'pooler'.*output_height/);
      assert.match(bad({ sampling_ratio: -1 }).join(), /RoiAlign node 'pooler'.*sampling_ratio/);
      assert.match(bad({ mode: 'median' }).join(), /RoiAlign node 'pooler'.*mode 'median'/);
      assert.match(bad({ coordinate_transformation_mode: 'asymmetric' }).join(), /RoiAlign node 'pooler'.*asymmetric/);
      assert.match(bad({}, 'int32').join(), /RoiAlign node 'pooler'.*batch_indices must be int64/);
      assert.match(bad({}, 'int64', [numRois, 5]).join(), /RoiAlign node 'pooler'.*\[num_rois, 4\]/);
      assert.match(bad({ spatial_scale: attr.float(1) }, 'int64', [numRois, 4]).join(), /^$/);
    });

    it('a batch index out of range is a run-time error naming the node', () => {
      const m = inferModel(spec(16, {}));
      assert.throws(
        () => runGraph(m.graph, [x, rois, makeTensor('int64', [numRois], new Array(numRois).fill(n))]),
        /RoiAlign node 'the_RoiAlign'.*batch index 2/,
      );
    });
  });

  describe('ScatterElements', () => {
    const cases: { opset: number; data: number[]; updates: number[]; axis: number; reduction?: string; index: DType; dtype?: DType }[] = [
      { opset: 11, data: [4, 5, 3], updates: [3, 5, 2], axis: 0, index: 'int64' },
      { opset: 13, data: [4, 5, 3], updates: [3, 2, 3], axis: 1, index: 'int32' },
      { opset: 16, data: [4, 5, 3], updates: [6, 5, 3], axis: 0, reduction: 'add', index: 'int64' },
      { opset: 16, data: [4, 5, 3], updates: [2, 5, 7], axis: -1, reduction: 'mul', index: 'int64' },
      { opset: 18, data: [4, 5, 3], updates: [6, 5, 3], axis: 0, reduction: 'max', index: 'int64' },
      { opset: 18, data: [4, 5, 3], updates: [6, 5, 3], axis: 0, reduction: 'min', index: 'int32' },
      { opset: 18, data: [4, 5, 3], updates: [6, 5, 3], axis: 0, reduction: 'add', index: 'int64', dtype: 'int64' },
      { opset: 18, data: [4, 5, 3], updates: [4, 7, 2], axis: 1, reduction: 'none', index: 'int64', dtype: 'int64' },
      // Mask R-CNN's form: whole rows put into their slots of a zero tensor along axis 0
      { opset: 17, data: [6, 4, 2, 2], updates: [3, 4, 2, 2], axis: 0, index: 'int64' },
    ];
    for (const k of cases)
      it(`opset ${k.opset}: ${k.dtype ?? 'float32'} [${k.data}] ← [${k.updates}] along ${k.axis}, ${k.index} indices, reduction ${k.reduction ?? 'none'}`, async () => {
        const dtype = k.dtype ?? 'float32';
        const random = seededRandom(11);
        const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
        const axis = k.axis < 0 ? k.axis + k.data.length : k.axis;
        const value = () => (dtype === 'int64' ? Math.floor(random() * 10 - 5) : random() * 2 - 1);
        const data = makeTensor(dtype, k.data, Array.from({ length: count(k.data) }, value));
        const updates = makeTensor(dtype, k.updates, Array.from({ length: count(k.updates) }, value));
        // negative and duplicate indices included
        const indices = makeTensor(
          k.index,
          k.updates,
          Array.from({ length: count(k.updates) }, () => Math.floor(random() * 2 * k.data[axis]) - k.data[axis]),
        );
        const attrs: Record<string, AttrSpec> = { axis: k.axis };
        if (k.reduction) attrs.reduction = k.reduction;
        const spec = nodeModel('ScatterElements', [input(dtype, k.data), input(k.index, k.updates), input(dtype, k.updates)], {
          attrs,
          opset: k.opset,
        });
        const { ours, theirs } = await both(spec, [data, indices, updates]);
        assert.deepEqual(ours.shape, theirs.dims);
        assertClose(numeric(ours), theirs.values, 1e-6, 'scatter');
      });

    it('operands of the wrong shapes or types are errors naming the node', () => {
      const bad = (data: number[], indices: number[], updates: number[], index: DType = 'int64', attrs: Record<string, AttrSpec> = {}) =>
        inferModel(
          nodeModel('ScatterElements', [input('float32', data), input(index, indices), input('float32', updates)], {
            attrs,
            name: 'put',
            opset: 18,
          }),
        ).errors.map((e) => e.message);
      assert.match(bad([4, 5], [6, 5], [6, 5], 'int64', { axis: 1 }).join(), /ScatterElements node 'put'.*indices dim 0 is 6/);
      assert.match(bad([4, 5], [2, 5], [2, 4]).join(), /ScatterElements node 'put'.*differ in shape/);
      assert.match(bad([4, 5], [2], [2]).join(), /ScatterElements node 'put'.*one rank/);
      assert.match(bad([4, 5], [2, 5], [2, 5], 'float32').join(), /ScatterElements node 'put'.*int32 or int64/);
      assert.match(bad([4, 5], [2, 5], [2, 5], 'int64', { reduction: 'mean' }).join(), /ScatterElements node 'put'.*reduction 'mean'/);
      assert.deepEqual(bad([4, 5], [7, 5], [7, 5]), []);
    });
  });

  describe('ConstantOfShape', () => {
    const cases: [ReturnType<typeof tensor> | undefined, number[]][] = [
      [undefined, [2, 3]],
      [tensor('int64', [1], [7]), [3]],
      [tensor('float32', [1], [2.5]), []],
      [tensor('bool', [1], [1]), [2, 0]],
      [tensor('int32', [1], [-4]), [1, 2, 2]],
    ];
    for (const [value, shape] of cases)
      it(`${value?.dtype ?? 'default float32 0'} over [${shape}]`, async () => {
        const spec = nodeModel('ConstantOfShape', [input('int64', [shape.length])], { attrs: value ? { value } : {} });
        const { ours, theirs } = await both(spec, [makeTensor('int64', [shape.length], shape)]);
        assert.deepEqual(ours.shape, theirs.dims);
        assert.equal(ours.dtype, value?.dtype ?? 'float32');
        assert.deepEqual(Array.from(numeric(ours)), theirs.values);
      });
  });
});
