import * as assert from 'node:assert/strict';
import { dimToString } from '../../compiler/ir/symbolic';
import { TensorValue } from '../../compiler/ir/tensor';
import { assertClose, attrs, infer, randomTensor, runOp, singleNodeGraph } from './fixtures';

/** Direct convolution loop (the textbook definition), 2-D. */
function naiveConv2d(
  x: TensorValue,
  w: TensorValue,
  b: TensorValue | undefined,
  o: { strides: number[]; pads: number[]; dilations: number[]; group: number },
): number[] {
  const [N, C, H, W] = x.shape;
  const [M, Cg, KH, KW] = w.shape;
  const [sh, sw] = o.strides;
  const [dh, dw] = o.dilations;
  const OH = Math.floor((H + o.pads[0] + o.pads[2] - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + o.pads[1] + o.pads[3] - dw * (KW - 1) - 1) / sw) + 1;
  const xd = x.data as Float32Array;
  const wd = w.data as Float32Array;
  const out: number[] = [];
  const Mg = M / o.group;
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = b ? (b.data as Float32Array)[m] : 0;
          const g = Math.floor(m / Mg);
          for (let c = 0; c < Cg; c++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const ih = oh * sh - o.pads[0] + i * dh;
                const iw = ow * sw - o.pads[1] + j * dw;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                  s += xd[((n * C + g * Cg + c) * H + ih) * W + iw] * wd[((m * Cg + c) * KH + i) * KW + j];
              }
          out.push(s);
        }
  return out;
}

describe('ops/conv', () => {
  it('Conv 2-D with groups, strides, dilations, asymmetric pads and bias matches a direct loop', () => {
    const x = randomTensor([2, 4, 9, 8], 1);
    const w = randomTensor([6, 2, 3, 2], 2);
    const b = randomTensor([6], 3);
    const o = { strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2], group: 2 };
    const [y] = runOp('Conv', [x, w, b], { attrs: attrs({ strides: o.strides, pads: o.pads, dilations: o.dilations, group: 2 }) });
    const expected = naiveConv2d(x, w, b, o);
    assert.deepEqual(y.shape, [2, 6, 5, 7]);
    assertClose(y.data as Float32Array, expected, 1e-5);
  });

  it('pointwise Conv (the GEMM-only path) and a large channel count exercise the blocked kernel edges', () => {
    const x = randomTensor([1, 300, 5, 7], 4);
    const w = randomTensor([261, 300, 1, 1], 5, 'float32', 0.1);
    const [y] = runOp('Conv', [x, w]);
    assertClose(
      y.data as Float32Array,
      naiveConv2d(x, w, undefined, { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 }),
      1e-5,
    );
  });

  it('Conv 1-D runs as 2-D with a height of 1', () => {
    const x = randomTensor([1, 3, 10], 6);
    const w = randomTensor([4, 3, 3], 7);
    const [y] = runOp('Conv', [x, w], { attrs: attrs({ pads: [2, 1], strides: [2] }) });
    const lifted = (t: TensorValue) => ({ ...t, shape: [t.shape[0], t.shape[1], 1, t.shape[2]] });
    const expected = naiveConv2d(lifted(x), lifted(w), undefined, { strides: [1, 2], pads: [0, 2, 0, 1], dilations: [1, 1], group: 1 });
    assert.deepEqual(y.shape, [1, 4, 6]);
    assertClose(y.data as Float32Array, expected, 1e-5);
  });

  it('auto_pad SAME_UPPER and SAME_LOWER put the odd pad at the end and at the start', () => {
    const x = randomTensor([1, 2, 6, 6], 8);
    const w = randomTensor([3, 2, 2, 2], 9);
    const [upper] = runOp('Conv', [x, w], { attrs: attrs({ auto_pad: 'SAME_UPPER' }) });
    const [lower] = runOp('Conv', [x, w], { attrs: attrs({ auto_pad: 'SAME_LOWER' }) });
    assert.deepEqual(upper.shape, [1, 3, 6, 6]);
    const base = { strides: [1, 1], dilations: [1, 1], group: 1 };
    assertClose(upper.data as Float32Array, naiveConv2d(x, w, undefined, { ...base, pads: [0, 0, 1, 1] }), 1e-5);
    assertClose(lower.data as Float32Array, naiveConv2d(x, w, undefined, { ...base, pads: [1, 1, 0, 0] }), 1e-5);
  });

  it('infers symbolic batch and 3-D shapes', () => {
    const g = singleNodeGraph(
      'Conv',
      [
        { name: 'x', shape: [1, 3, 224, 224] },
        { name: 'w', shape: [64, 3, 7, 7] },
      ],
      {
        attrs: attrs({ strides: [2, 2], pads: [3, 3, 3, 3] }),
      },
    );
    g.tensor('x').shape = [g.symbols.define('B', 1, 256, 'test'), 3, 224, 224];
    infer(g);
    assert.equal(g.tensor('y0').shape!.map(dimToString).join(','), 'B,64,112,112');
    const g3 = singleNodeGraph(
      'Conv',
      [
        { name: 'x', shape: [2, 4, 8, 9, 10] },
        { name: 'w', shape: [5, 4, 3, 3, 3] },
      ],
      { attrs: attrs({ auto_pad: 'SAME_UPPER', strides: [2, 2, 2] }) },
    );
    infer(g3);
    assert.deepEqual(g3.tensor('y0').shape, [2, 5, 4, 5, 5]);
  });

  it('a channel mismatch names the node', () => {
    const g = singleNodeGraph(
      'Conv',
      [
        { name: 'x', shape: [1, 3, 8, 8] },
        { name: 'w', shape: [8, 4, 3, 3] },
      ],
      { name: '/stem/conv1/Conv' },
    );
    assert.throws(() => infer(g), /Conv node '\/stem\/conv1\/Conv': the input has 3 channels but the weight \[8, 4, 3, 3\] expects 4/);
  });

  it('ConvTranspose 2-D matches a direct scatter loop (stride 2, pads, output_padding, bias)', () => {
    const x = randomTensor([1, 3, 4, 5], 10);
    const w = randomTensor([3, 2, 3, 3], 11);
    const b = randomTensor([2], 12);
    const [y] = runOp('ConvTranspose', [x, w, b], { attrs: attrs({ strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] }) });
    const OH = 2 * 3 + 1 + 3 - 2;
    const OW = 2 * 4 + 0 + 3 - 2;
    assert.deepEqual(y.shape, [1, 2, OH, OW]);
    const expected = new Array<number>(2 * OH * OW).fill(0);
    const xd = x.data as Float32Array;
    const wd = w.data as Float32Array;
    for (let c = 0; c < 3; c++)
      for (let ih = 0; ih < 4; ih++)
        for (let iw = 0; iw < 5; iw++)
          for (let m = 0; m < 2; m++)
            for (let i = 0; i < 3; i++)
              for (let j = 0; j < 3; j++) {
                const oh = ih * 2 - 1 + i;
                const ow = iw * 2 - 1 + j;
                if (oh >= 0 && oh < OH && ow >= 0 && ow < OW)
                  expected[(m * OH + oh) * OW + ow] += xd[(c * 4 + ih) * 5 + iw] * wd[((c * 2 + m) * 3 + i) * 3 + j];
              }
    for (let m = 0; m < 2; m++) for (let k = 0; k < OH * OW; k++) expected[m * OH * OW + k] += (b.data as Float32Array)[m];
    assertClose(y.data as Float32Array, expected, 1e-5);
  });

  it('ConvTranspose infers output_shape and symbolic batch', () => {
    const g = singleNodeGraph(
      'ConvTranspose',
      [
        { name: 'x', shape: [1, 8, 14, 14] },
        { name: 'w', shape: [8, 4, 2, 2] },
      ],
      {
        attrs: attrs({ strides: [2, 2], output_shape: [29, 29], group: 2 }),
      },
    );
    g.tensor('x').shape = [g.symbols.define('N', 1, 8, 'test'), 8, 14, 14];
    infer(g);
    assert.equal(g.tensor('y0').shape!.map(dimToString).join(','), 'N,8,29,29');
  });
});
