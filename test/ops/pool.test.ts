import * as assert from 'node:assert/strict';
import { dimToString } from '../../compiler/ir/symbolic';
import { assertClose, attrs, f32, infer, randomTensor, runOp, singleNodeGraph } from './fixtures';

describe('ops/pool', () => {
  it('MaxPool with pads and ceil_mode: shape, values and Indices against a direct loop', () => {
    const x = randomTensor([1, 2, 6, 7], 1);
    const [y, indices] = runOp('MaxPool', [x], {
      outputs: 2,
      attrs: attrs({ kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }),
    });
    // height: ceil((6+2-3)/2)+1 = 4; width: ceil((7+2-3)/2)+1 = 4, and the last window starts inside the input
    assert.deepEqual(y.shape, [1, 2, 4, 4]);
    const xd = x.data as Float32Array;
    const expected: number[] = [];
    const expectedIndex: number[] = [];
    for (let c = 0; c < 2; c++)
      for (let oh = 0; oh < 4; oh++)
        for (let ow = 0; ow < 4; ow++) {
          let best = -Infinity;
          let at = -1;
          for (let i = 0; i < 3; i++)
            for (let j = 0; j < 3; j++) {
              const ih = oh * 2 - 1 + i;
              const iw = ow * 2 - 1 + j;
              if (ih < 0 || ih >= 6 || iw < 0 || iw >= 7) continue;
              const k = (c * 6 + ih) * 7 + iw;
              if (xd[k] > best) [best, at] = [xd[k], k];
            }
          expected.push(best);
          expectedIndex.push(at);
        }
    assertClose(y.data as Float32Array, expected, 0);
    assert.deepEqual([...(indices.data as Float64Array)], expectedIndex);
  });

  it('AveragePool counts pads only with count_include_pad', () => {
    const x = f32([1, 1, 2, 2], [1, 2, 3, 4]);
    const common = { kernel_shape: [2, 2], pads: [1, 1, 0, 0] };
    const [excl] = runOp('AveragePool', [x], { attrs: attrs(common) });
    assert.deepEqual([...(excl.data as Float32Array)], [1, 1.5, 2, 2.5]);
    const [incl] = runOp('AveragePool', [x], { attrs: attrs({ ...common, count_include_pad: 1 }) });
    assert.deepEqual([...(incl.data as Float32Array)], [0.25, 0.75, 1, 2.5]);
  });

  it('MaxPool with dilations, and 1-D pooling', () => {
    const x = f32([1, 1, 5], [1, 5, 2, 4, 3]);
    const [d] = runOp('MaxPool', [x], { attrs: attrs({ kernel_shape: [2], dilations: [2] }) });
    assert.deepEqual([...(d.data as Float32Array)], [2, 5, 3]);
  });

  it('GlobalAveragePool and GlobalMaxPool reduce every spatial dim', () => {
    const x = f32([1, 2, 2, 2], [1, 2, 3, 4, -1, -2, -3, -8]);
    const [avg] = runOp('GlobalAveragePool', [x]);
    assert.deepEqual(avg.shape, [1, 2, 1, 1]);
    assert.deepEqual([...(avg.data as Float32Array)], [2.5, -3.5]);
    const [max] = runOp('GlobalMaxPool', [x]);
    assert.deepEqual([...(max.data as Float32Array)], [4, -1]);
  });

  it('infers symbolic batch and SAME padding; a window larger than the input names the node', () => {
    const g = singleNodeGraph('MaxPool', [{ name: 'x', shape: [1, 64, 112, 112] }], {
      attrs: attrs({ kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }),
    });
    g.tensor('x').shape = [g.symbols.define('B', 1, 256, 'test'), 64, 112, 112];
    infer(g);
    assert.equal(g.tensor('y0').shape!.map(dimToString).join(','), 'B,64,56,56');
    const bad = singleNodeGraph('AveragePool', [{ name: 'x', shape: [1, 1, 2, 2] }], {
      name: 'pool5',
      attrs: attrs({ kernel_shape: [3, 3] }),
    });
    assert.throws(() => infer(bad), /AveragePool node 'pool5': the window \(3\) is larger/);
  });
});
