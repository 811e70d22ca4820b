import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom } from '../../compiler/ir/tensor';
import { AttrSpec, buildModel, inferModel, input, nodeModel, tensor } from '../helpers/onnx-builder';

interface Case {
  name: string;
  op: 'Conv' | 'ConvTranspose';
  x: number[];
  /** Conv: [M, C/group, kd, kh, kw]; ConvTranspose: [C, M/group, kd, kh, kw] */
  w: number[];
  bias?: boolean;
  attrs: Record<string, AttrSpec>;
}

/** A 3-D Conv / ConvTranspose by our reference evaluator and by onnxruntime, for the same model bytes. */
async function bothWays(c: Case) {
  const rand = seededRandom(5);
  const values = (shape: number[]) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1);
  const xData = Float32Array.from(values(c.x));
  const group = typeof c.attrs.group === 'number' ? c.attrs.group : 1;
  const outChannels = c.op === 'Conv' ? c.w[0] : c.w[1] * group;
  const weight = tensor('float32', c.w, values(c.w));
  const bias = c.bias ? tensor('float32', [outChannels], values([outChannels])) : undefined;
  const spec = nodeModel(c.op, [input('float32', c.x), weight, bias], { attrs: c.attrs });
  const m = inferModel(spec);
  assert.deepEqual(m.errors, []);
  const [ours] = runGraph(m.graph, [makeTensor('float32', c.x, xData)]);
  const session = await ort.InferenceSession.create(buildModel(spec));
  const theirs = (await session.run({ in0: new ort.Tensor('float32', xData, c.x) })).out0;
  return { ours, theirs, inferred: m.tensor('out0').shape };
}

describe('ops/Conv and ConvTranspose with 3 spatial dims match onnxruntime', () => {
  const cases: Case[] = [
    {
      name: 'Conv 3x3x3, pads 1, bias',
      op: 'Conv',
      x: [1, 3, 4, 5, 6],
      w: [4, 3, 3, 3, 3],
      bias: true,
      attrs: { pads: [1, 1, 1, 1, 1, 1] },
    },
    {
      name: "Conv stem 3x7x7, stride 1x2x2 (r3d_18's)",
      op: 'Conv',
      x: [2, 3, 4, 9, 10],
      w: [5, 3, 3, 7, 7],
      attrs: { strides: [1, 2, 2], pads: [1, 3, 3, 1, 3, 3] },
    },
    {
      name: "Conv 1x3x3 stride 1x2x2 (the spatial half of r2plus1d_18's (2+1)-D block)",
      op: 'Conv',
      x: [1, 4, 5, 6, 6],
      w: [6, 4, 1, 3, 3],
      bias: true,
      attrs: { pads: [0, 1, 1, 0, 1, 1], strides: [1, 2, 2] },
    },
    {
      name: 'Conv dilation 2x1x3, asymmetric pads, stride 2x1x1',
      op: 'Conv',
      x: [1, 2, 7, 5, 8],
      w: [3, 2, 2, 3, 2],
      bias: true,
      attrs: { dilations: [2, 1, 3], pads: [1, 0, 2, 0, 1, 1], strides: [2, 1, 1] },
    },
    { name: 'Conv groups 2', op: 'Conv', x: [1, 4, 3, 4, 5], w: [6, 2, 2, 2, 2], bias: true, attrs: { group: 2 } },
    {
      name: "Conv depthwise 3x3x3 (X3D's), channel multiplier 2",
      op: 'Conv',
      x: [2, 3, 4, 5, 5],
      w: [6, 1, 3, 3, 3],
      attrs: { group: 3, pads: [1, 1, 1, 1, 1, 1], strides: [1, 2, 2] },
    },
    { name: 'Conv pointwise 1x1x1', op: 'Conv', x: [1, 5, 2, 3, 4], w: [3, 5, 1, 1, 1], bias: true, attrs: {} },
    {
      name: 'Conv auto_pad SAME_UPPER, stride 2',
      op: 'Conv',
      x: [1, 2, 5, 4, 5],
      w: [2, 2, 2, 3, 2],
      attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2, 2] },
    },
    {
      name: 'ConvTranspose 3-D stride 2, pads, output_padding, bias',
      op: 'ConvTranspose',
      x: [1, 3, 3, 4, 3],
      w: [3, 2, 3, 3, 2],
      bias: true,
      attrs: { strides: [2, 2, 1], pads: [1, 1, 0, 1, 0, 1], output_padding: [1, 0, 0] },
    },
    {
      name: 'ConvTranspose 3-D groups 2, dilation 2',
      op: 'ConvTranspose',
      x: [2, 4, 2, 3, 3],
      w: [4, 1, 2, 2, 2],
      attrs: { group: 2, dilations: [2, 1, 2] },
    },
  ];
  for (const c of cases)
    it(c.name, async () => {
      const { ours, theirs, inferred } = await bothWays(c);
      assert.deepEqual(ours.shape, [...theirs.dims]);
      assert.deepEqual(inferred, [...theirs.dims]);
      const expected = theirs.data as Float32Array;
      const got = ours.data as Float32Array;
      for (let i = 0; i < expected.length; i++)
        assert.ok(
          Math.abs(got[i] - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i])),
          `${c.name}: element ${i}: ${got[i]} vs ${expected[i]}`,
        );
    });
});
