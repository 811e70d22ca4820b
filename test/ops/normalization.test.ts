import * as assert from 'node:assert/strict';
import { assertClose, attrs, f32, infer, randomTensor, runOp, singleNodeGraph } from './fixtures';

describe('ops/normalization', () => {
  it('Softmax (opset 13, one axis) sums to 1 along the axis and matches exp(x)/Σexp(x)', () => {
    const x = randomTensor([2, 3, 4], 1, 'float32', 5);
    const [y] = runOp('Softmax', [x], { opset: 13, attrs: attrs({ axis: 1 }) });
    const xd = x.data as Float32Array;
    const yd = y.data as Float32Array;
    for (let n = 0; n < 2; n++)
      for (let k = 0; k < 4; k++) {
        const idx = [0, 1, 2].map((c) => (n * 3 + c) * 4 + k);
        const sum = idx.reduce((s, i) => s + Math.exp(xd[i]), 0);
        assertClose(
          idx.map((i) => yd[i]),
          idx.map((i) => Math.exp(xd[i]) / sum),
          1e-6,
        );
      }
  });

  it('Softmax before opset 13 flattens to 2-D at the axis', () => {
    const x = randomTensor([2, 3, 4], 2);
    const [y] = runOp('Softmax', [x], { opset: 11, attrs: attrs({ axis: 1 }) });
    const xd = x.data as Float32Array;
    const yd = y.data as Float32Array;
    for (let n = 0; n < 2; n++) {
      let sum = 0;
      for (let i = 0; i < 12; i++) sum += Math.exp(xd[n * 12 + i]);
      const total = Array.from(yd.slice(n * 12, n * 12 + 12)).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-6);
      assertClose(
        yd.slice(n * 12, n * 12 + 12),
        Array.from(xd.slice(n * 12, n * 12 + 12), (v) => Math.exp(v) / sum),
        1e-6,
      );
    }
  });

  it('LogSoftmax equals log(Softmax), stably for large inputs', () => {
    const x = f32([1, 3], [1000, 1001, 1002]);
    const [y] = runOp('LogSoftmax', [x], { opset: 13 });
    const lse = 1002 + Math.log(Math.exp(-2) + Math.exp(-1) + 1);
    assertClose(y.data as Float32Array, [1000 - lse, 1001 - lse, 1002 - lse], 1e-6);
  });

  it('LayerNormalization over the last two axes, with Mean and InvStdDev outputs', () => {
    const x = randomTensor([2, 3, 4], 3);
    const scale = randomTensor([3, 4], 4);
    const bias = randomTensor([3, 4], 5);
    const [y, mean, inv] = runOp('LayerNormalization', [x, scale, bias], {
      outputs: 3,
      attrs: { ...attrs({ axis: -2 }), epsilon: { type: 'float', value: 1e-3 } },
    });
    assert.deepEqual(mean.shape, [2, 1, 1]);
    const xd = x.data as Float32Array;
    for (let n = 0; n < 2; n++) {
      const row = Array.from(xd.slice(n * 12, n * 12 + 12));
      const m = row.reduce((a, b) => a + b, 0) / 12;
      const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / 12;
      const r = 1 / Math.sqrt(v + 1e-3);
      assertClose([(mean.data as Float32Array)[n], (inv.data as Float32Array)[n]], [m, r], 1e-6);
      const expected = row.map((val, i) => (val - m) * r * (scale.data as Float32Array)[i] + (bias.data as Float32Array)[i]);
      assertClose((y.data as Float32Array).slice(n * 12, n * 12 + 12), expected, 1e-5);
    }
  });

  it('BatchNormalization applies (x - mean) / sqrt(var + eps) * scale + bias per channel', () => {
    const x = f32([1, 2, 2], [1, 2, 3, 4]);
    const [y] = runOp('BatchNormalization', [x, f32([2], [2, 1]), f32([2], [0, 1]), f32([2], [1, 3]), f32([2], [4, 1])], {
      attrs: { epsilon: { type: 'float', value: 0 } },
    });
    assertClose(y.data as Float32Array, [0, 1, 1, 2], 1e-6);
  });

  it('InstanceNormalization and GroupNormalization (per-channel scale) normalize their groups', () => {
    const x = randomTensor([1, 4, 3], 6);
    const ones = f32([4], [1, 1, 1, 1]);
    const zeros = f32([4], [0, 0, 0, 0]);
    const [inst] = runOp('InstanceNormalization', [x, ones, zeros], { attrs: { epsilon: { type: 'float', value: 0 } } });
    const [group] = runOp('GroupNormalization', [x, f32([4], [1, 1, 2, 2]), zeros], {
      opset: 21,
      attrs: { ...attrs({ num_groups: 2 }), epsilon: { type: 'float', value: 0 } },
    });
    const xd = x.data as Float32Array;
    const normalize = (vals: number[]) => {
      const m = vals.reduce((a, b) => a + b, 0) / vals.length;
      const s = Math.sqrt(vals.reduce((a, b) => a + (b - m) ** 2, 0) / vals.length);
      return vals.map((v) => (v - m) / s);
    };
    const expectedInst = [0, 1, 2, 3].flatMap((c) => normalize(Array.from(xd.slice(c * 3, c * 3 + 3))));
    assertClose(inst.data as Float32Array, expectedInst, 1e-5);
    const expectedGroup = [...normalize(Array.from(xd.slice(0, 6))), ...normalize(Array.from(xd.slice(6, 12))).map((v) => 2 * v)];
    assertClose(group.data as Float32Array, expectedGroup, 1e-5);
  });

  it('errors name the node: BatchNorm with a wrong channel count', () => {
    const g = singleNodeGraph(
      'BatchNormalization',
      [{ name: 'x', shape: [1, 8, 4, 4] }, ...['s', 'b', 'm', 'v'].map((name) => ({ name, shape: [4] }))],
      { name: 'bn1' },
    );
    assert.throws(() => infer(g), /BatchNormalization node 'bn1': scale \(input 1\) has shape \[4\], expected \[8\]/);
  });
});
