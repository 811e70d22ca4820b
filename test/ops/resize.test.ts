import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom } from '../../compiler/ir/tensor';
import { buildModel, inferModel, input, nodeModel, tensor } from '../helpers/onnx-builder';

const f32 = (dims: number[], values: number[]) => tensor('float32', dims, values);
const i64 = (dims: number[], values: number[]) => tensor('int64', dims, values);

/** Resize's output on `x` by our reference evaluator and by onnxruntime, for the same model bytes. */
async function bothWays(spec: ReturnType<typeof nodeModel>, shape: number[]) {
  const rand = seededRandom(7);
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 10 - 5);
  const m = inferModel(spec);
  assert.deepEqual(m.errors, []);
  const [ours] = runGraph(m.graph, [makeTensor('float32', shape, data)]);
  const session = await ort.InferenceSession.create(buildModel(spec));
  const theirs = (await session.run({ in0: new ort.Tensor('float32', data, shape) })).out0;
  return { ours, theirs, inferred: m.tensor('out0').shape };
}

describe('ops/resize', () => {
  describe('shape inference', () => {
    it('scales: floor(dim × scale); symbolic dims stay symbolic for integer and 1/k scales', () => {
      const x = input('float32', ['B', 3, 'H', 20]);
      const up = inferModel(nodeModel('Resize', [x, undefined, f32([4], [1, 1, 2, 1.5])], { attrs: { mode: 'nearest' } }));
      assert.equal(up.shape('out0'), '[B, 3, 2*H, 30]');
      const down = inferModel(nodeModel('Resize', [x, undefined, f32([4], [1, 1, 0.5, 0.5])], { attrs: { mode: 'linear' } }));
      const [, , h, w] = down.tensor('out0').shape!;
      assert.equal(w, 10);
      assert.equal(String(h), 'floor((H)/(2))');
      const odd = inferModel(nodeModel('Resize', [x, undefined, f32([4], [1, 1, 1.5, 1])], { attrs: { mode: 'cubic' } }));
      const oddH = odd.tensor('out0').shape![2];
      assert.deepEqual(odd.graph.symbols.bounds(oddH), { min: 1, max: 384 });
    });

    it('sizes (with an empty scales input, as exporters write it) and symbolic sizes from shape arithmetic', () => {
      const m = inferModel(nodeModel('Resize', [input('float32', [1, 4, 7, 7]), f32([0], []), f32([0], []), i64([4], [1, 4, 14, 21])]));
      assert.equal(m.shape('out0'), '[1, 4, 14, 21]');
      const sym = inferModel({
        inputs: [
          { name: 'x', dtype: 'float32', dims: ['B', 8, 16, 16] },
          { name: 'like', dtype: 'float32', dims: ['B', 8, 'H', 'W'] },
        ],
        nodes: [
          { op: 'Shape', inputs: ['like'], outputs: ['s'] },
          { op: 'Resize', inputs: ['x', '', '', 's'], outputs: ['y'], attrs: { mode: 'linear' } },
        ],
        outputs: ['y'],
      });
      assert.equal(sym.shape('y'), '[B, 8, H, W]');
    });

    it('Upsample (opset 9) takes scales from its input', () => {
      const m = inferModel(nodeModel('Upsample', [input('float32', ['B', 3, 5, 5]), f32([4], [1, 1, 2, 2])], { opset: 9 }));
      assert.equal(m.shape('out0'), '[B, 3, 10, 10]');
    });

    it('names the node when neither scales nor sizes is given', () => {
      const m = inferModel(nodeModel('Resize', [input('float32', [1, 1, 2, 2]), f32([0], []), f32([0], [])], { name: 'up' }));
      assert.match(m.errors[0].message, /Resize node 'up': neither scales nor sizes is given/);
    });
  });

  describe('evaluation matches onnxruntime', () => {
    const modes: [string, Record<string, string | number>][] = [
      ['linear, half_pixel', { mode: 'linear', coordinate_transformation_mode: 'half_pixel' }],
      ['linear, pytorch_half_pixel', { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' }],
      ['linear, align_corners', { mode: 'linear', coordinate_transformation_mode: 'align_corners' }],
      ['linear, asymmetric', { mode: 'linear', coordinate_transformation_mode: 'asymmetric' }],
      ['nearest, asymmetric, floor', { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }],
      ['nearest, half_pixel, round_prefer_floor', { mode: 'nearest' }],
      [
        'nearest, align_corners, round_prefer_ceil',
        { mode: 'nearest', coordinate_transformation_mode: 'align_corners', nearest_mode: 'round_prefer_ceil' },
      ],
      ['cubic, half_pixel', { mode: 'cubic' }],
      ['cubic, pytorch_half_pixel, a = -0.5', { mode: 'cubic', coordinate_transformation_mode: 'pytorch_half_pixel', cubic_coeff_a: -0.5 }],
      ['cubic, align_corners', { mode: 'cubic', coordinate_transformation_mode: 'align_corners' }],
      ['cubic, half_pixel, exclude_outside', { mode: 'cubic', exclude_outside: 1 }],
    ];
    for (const [label, attrs] of modes) {
      it(`${label}: up by scales and down by sizes`, async () => {
        const shape = [2, 3, 5, 6];
        const up = await bothWays(nodeModel('Resize', [input('float32', shape), undefined, f32([4], [1, 1, 2, 1.5])], { attrs }), shape);
        assert.deepEqual(up.ours.shape, [...up.theirs.dims]);
        assert.deepEqual(up.inferred, [2, 3, 10, 9]);
        assertClose(up.ours.data as Float32Array, up.theirs.data as Float32Array);
        const down = await bothWays(
          nodeModel('Resize', [input('float32', shape), f32([0], []), f32([0], []), i64([4], [2, 3, 3, 4])], { attrs }),
          shape,
        );
        assert.deepEqual(down.ours.shape, [2, 3, 3, 4]);
        assertClose(down.ours.data as Float32Array, down.theirs.data as Float32Array);
      });
    }
  });
});

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++)
    if (Math.abs(actual[i] - expected[i]) > tolerance) assert.fail(`element ${i}: ${actual[i]} vs onnxruntime ${expected[i]}`);
}
