import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom } from '../../compiler/ir/tensor';
import { AttrSpec, buildModel, inferModel, input, nodeModel, tensor } from '../helpers/onnx-builder';

interface Case {
  name: string;
  x: number[];
  /** [C, M/group, kh, kw] */
  w: number[];
  bias?: boolean;
  attrs: Record<string, AttrSpec>;
}

/** ConvTranspose's output by our reference evaluator and by onnxruntime, for the same model bytes. */
async function bothWays(c: Case) {
  const rand = seededRandom(11);
  const values = (shape: number[]) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1);
  const xData = Float32Array.from(values(c.x));
  const group = typeof c.attrs.group === 'number' ? c.attrs.group : 1;
  const weight = tensor('float32', c.w, values(c.w));
  const bias = c.bias ? tensor('float32', [c.w[1] * group], values([c.w[1] * group])) : undefined;
  const spec = nodeModel('ConvTranspose', [input('float32', c.x), weight, bias], { attrs: c.attrs });
  const m = inferModel(spec);
  assert.deepEqual(m.errors, []);
  const [ours] = runGraph(m.graph, [makeTensor('float32', c.x, xData)]);
  const session = await ort.InferenceSession.create(buildModel(spec));
  const theirs = (await session.run({ in0: new ort.Tensor('float32', xData, c.x) })).out0;
  return { ours, theirs, inferred: m.tensor('out0').shape };
}

describe('ops/ConvTranspose matches onnxruntime', () => {
  const cases: Case[] = [
    { name: 'stride 1, no pads, bias', x: [1, 3, 5, 4], w: [3, 2, 3, 3], bias: true, attrs: {} },
    { name: "stride 2, kernel 2 (Mask R-CNN's mask head form)", x: [2, 8, 4, 3], w: [8, 5, 2, 2], bias: true, attrs: { strides: [2, 2] } },
    {
      name: 'stride 2, pads, output_padding',
      x: [1, 4, 5, 6],
      w: [4, 3, 3, 3],
      bias: true,
      attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] },
    },
    { name: 'stride 3 × 2, asymmetric pads', x: [2, 3, 4, 5], w: [3, 4, 4, 3], attrs: { strides: [3, 2], pads: [2, 0, 1, 2] } },
    {
      name: 'dilation 2 × 3, stride 2',
      x: [1, 3, 4, 4],
      w: [3, 2, 3, 2],
      bias: true,
      attrs: { strides: [2, 1], dilations: [2, 3], pads: [1, 1, 0, 2] },
    },
    {
      name: 'groups 2, stride 2, output_padding',
      x: [1, 6, 3, 4],
      w: [6, 2, 3, 3],
      bias: true,
      attrs: { group: 2, strides: [2, 2], output_padding: [1, 1] },
    },
    {
      name: 'groups 3 (depthwise-like, 1 out channel each)',
      x: [2, 3, 4, 4],
      w: [3, 1, 2, 3],
      attrs: { group: 3, strides: [1, 2], pads: [0, 1, 1, 0] },
    },
    { name: 'output_shape (pads derived, odd total)', x: [1, 2, 3, 3], w: [2, 3, 3, 3], attrs: { strides: [2, 2], output_shape: [6, 7] } },
    { name: 'auto_pad SAME_UPPER (odd total pad)', x: [1, 2, 3, 4], w: [2, 2, 4, 3], attrs: { strides: [2, 2], auto_pad: 'SAME_UPPER' } },
    { name: 'auto_pad SAME_LOWER (odd total pad)', x: [1, 2, 3, 4], w: [2, 2, 4, 3], attrs: { strides: [2, 2], auto_pad: 'SAME_LOWER' } },
    {
      name: 'output_shape past the full size (extra positions hold the bias)',
      x: [1, 2, 3, 3],
      w: [2, 3, 3, 3],
      bias: true,
      attrs: { strides: [2, 2], output_shape: [8, 7] },
    },
    { name: 'auto_pad VALID, stride 3', x: [1, 2, 3, 2], w: [2, 3, 2, 2], bias: true, attrs: { strides: [3, 3], auto_pad: 'VALID' } },
    { name: '1-D, stride 2, pads', x: [2, 3, 7], w: [3, 2, 4], bias: true, attrs: { strides: [2], pads: [1, 2] } },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const { ours, theirs, inferred } = await bothWays(c);
      assert.deepEqual(ours.shape, theirs.dims.map(Number));
      assert.deepEqual(inferred, ours.shape);
      const a = ours.data as Float32Array;
      const b = theirs.data as Float32Array;
      assert.equal(a.length, b.length);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i])), `[${i}]: ${a[i]} vs ${b[i]}`);
    });
});
