import * as assert from 'node:assert/strict';
import { dimToString } from '../../compiler/ir/symbolic';
import { assertClose, attrs, f32, i64, infer, runOp, singleNodeGraph } from './fixtures';

const x = f32([2, 3, 2], [1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6]);

describe('ops/reduce', () => {
  it('ReduceMean reads axes from the attribute before opset 18 and from input 1 after', () => {
    const [old] = runOp('ReduceMean', [x], { opset: 13, attrs: attrs({ axes: [1] }) });
    assert.deepEqual(old.shape, [2, 1, 2]);
    assert.deepEqual([...(old.data as Float32Array)], [3, 4, -3, -4]);
    const [now] = runOp('ReduceMean', [x, i64([2], [-1, 1])], { opset: 18, attrs: attrs({ keepdims: 0 }), constants: [false, true] });
    assert.deepEqual(now.shape, [2]);
    assert.deepEqual([...(now.data as Float32Array)], [3.5, -3.5]);
  });

  it('ReduceSum takes axes as an input from opset 13; noop_with_empty_axes keeps the data', () => {
    const [s] = runOp('ReduceSum', [x, i64([1], [0])], { opset: 13, constants: [false, true] });
    assert.deepEqual([...(s.data as Float32Array)], [0, 0, 0, 0, 0, 0]);
    const [all] = runOp('ReduceSum', [x], { opset: 13, attrs: attrs({ keepdims: 0 }) });
    assert.deepEqual(all.shape, []);
    assert.deepEqual([...(all.data as Float32Array)], [0]);
    const [noop] = runOp('ReduceSum', [x], { opset: 13, attrs: attrs({ noop_with_empty_axes: 1 }) });
    assert.deepEqual([...(noop.data as Float32Array)], [...(x.data as Float32Array)]);
  });

  it('Max, Min, Prod, L2, SumSquare and LogSumExp match their formulas', () => {
    const check = (op: string, expected: number[]) => {
      const [y] = runOp(op, [x], { opset: 13, attrs: attrs({ axes: [2], keepdims: 0 }) });
      assert.deepEqual(y.shape, [2, 3]);
      assertClose(y.data as Float32Array, expected, 1e-6, op);
    };
    const pairs = [
      [1, 2],
      [3, 4],
      [5, 6],
      [-1, -2],
      [-3, -4],
      [-5, -6],
    ];
    check(
      'ReduceMax',
      pairs.map(([a, b]) => Math.max(a, b)),
    );
    check(
      'ReduceMin',
      pairs.map(([a, b]) => Math.min(a, b)),
    );
    check(
      'ReduceProd',
      pairs.map(([a, b]) => a * b),
    );
    check(
      'ReduceL2',
      pairs.map(([a, b]) => Math.hypot(a, b)),
    );
    check(
      'ReduceSumSquare',
      pairs.map(([a, b]) => a * a + b * b),
    );
    check(
      'ReduceLogSumExp',
      pairs.map(([a, b]) => Math.log(Math.exp(a) + Math.exp(b))),
    );
  });

  it('ArgMax/ArgMin with keepdims and select_last_index', () => {
    const t = f32([2, 3], [1, 3, 3, 2, 0, 0]);
    const [first] = runOp('ArgMax', [t], { attrs: attrs({ axis: 1 }) });
    assert.equal(first.dtype, 'int64');
    assert.deepEqual(first.shape, [2, 1]);
    assert.deepEqual([...(first.data as Float64Array)], [1, 0]);
    const [last] = runOp('ArgMin', [t], { attrs: attrs({ axis: 1, keepdims: 0, select_last_index: 1 }) });
    assert.deepEqual(last.shape, [2]);
    assert.deepEqual([...(last.data as Float64Array)], [0, 2]);
  });

  it('infers symbolic shapes, and an out-of-range axis names the node', () => {
    const g = singleNodeGraph('ReduceMean', [{ name: 'x', shape: [1, 2048, 7, 7] }], {
      opset: 13,
      attrs: attrs({ axes: [2, 3], keepdims: 0 }),
    });
    g.tensor('x').shape = [g.symbols.define('B', 1, 256, 'test'), 2048, 7, 7];
    infer(g);
    assert.equal(g.tensor('y0').shape!.map(dimToString).join(','), 'B,2048');
    const bad = singleNodeGraph('ReduceMax', [{ name: 'x', shape: [2, 3] }], { opset: 13, name: 'pool_max', attrs: attrs({ axes: [2] }) });
    assert.throws(() => infer(bad), /ReduceMax node 'pool_max': axis 2 is out of range for rank 2/);
  });
});
