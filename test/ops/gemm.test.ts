import * as assert from 'node:assert/strict';
import { gemmAccumulate, rowMajor, transposed } from '../../compiler/interpreter/kernels/gemm';
import { dimToString } from '../../compiler/ir/symbolic';
import { assertClose, attrs, f32, infer, randomTensor, runOp, singleNodeGraph } from './fixtures';

function naiveMatmul(a: Float32Array, aOff: number, b: Float32Array, bOff: number, M: number, N: number, K: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[aOff + i * K + k] * b[bOff + k * N + j];
      out.push(s);
    }
  return out;
}

describe('ops/gemm', () => {
  it('the blocked kernel is exact at block and tile edges (M, N, K not multiples of 4 or of the blocks)', () => {
    const [M, N, K] = [7, 263, 301];
    const a = randomTensor([M, K], 1).data as Float32Array;
    const b = randomTensor([K, N], 2).data as Float32Array;
    const c = new Float32Array(M * N).fill(1);
    gemmAccumulate(M, N, K, rowMajor(a, 0, K), rowMajor(b, 0, N), c, 0, N);
    assertClose(
      c,
      naiveMatmul(a, 0, b, 0, M, N, K).map((v) => v + 1),
      1e-5,
    );
    // a transposed view reads B as Bᵀ without a copy
    const bt = new Float32Array(N * K);
    for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bt[j * K + k] = b[k * N + j];
    const c2 = new Float32Array(M * N);
    gemmAccumulate(M, N, K, rowMajor(a, 0, K), transposed(rowMajor(bt, 0, K)), c2, 0, N);
    assertClose(c2, naiveMatmul(a, 0, b, 0, M, N, K), 1e-5);
  });

  it('MatMul broadcasts batch dims ([2,1,3,4] x [3,4,5])', () => {
    const a = randomTensor([2, 1, 3, 4], 3);
    const b = randomTensor([3, 4, 5], 4);
    const [y] = runOp('MatMul', [a, b]);
    assert.deepEqual(y.shape, [2, 3, 3, 5]);
    const expected: number[] = [];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) expected.push(...naiveMatmul(a.data as Float32Array, i * 12, b.data as Float32Array, j * 20, 3, 5, 4));
    assertClose(y.data as Float32Array, expected, 1e-6);
  });

  it('MatMul promotes 1-D operands and drops the added dim', () => {
    const [v] = runOp('MatMul', [f32([2], [1, 2]), f32([2, 3], [1, 2, 3, 4, 5, 6])]);
    assert.deepEqual(v.shape, [3]);
    assert.deepEqual([...(v.data as Float32Array)], [9, 12, 15]);
    const [w] = runOp('MatMul', [f32([2, 2], [1, 2, 3, 4]), f32([2], [1, 1])]);
    assert.deepEqual(w.shape, [2]);
    assert.deepEqual([...(w.data as Float32Array)], [3, 7]);
  });

  it('MatMul infers symbolic dims and names the node on an inner-dim mismatch', () => {
    const g = singleNodeGraph('MatMul', [
      { name: 'a', shape: [1, 197, 768] },
      { name: 'b', shape: [768, 2304] },
    ]);
    g.tensor('a').shape = [g.symbols.define('B', 1, 64, 'test'), 197, 768];
    infer(g);
    assert.equal(g.tensor('y0').shape!.map(dimToString).join(','), 'B,197,2304');
    const bad = singleNodeGraph(
      'MatMul',
      [
        { name: 'a', shape: [4, 768] },
        { name: 'b', shape: [512, 10] },
      ],
      { name: 'head/MatMul' },
    );
    assert.throws(() => infer(bad), /MatMul node 'head\/MatMul'.*inner dims differ \(768 vs 512\)/);
  });

  it('Gemm with transA, transB, alpha, beta and a broadcast C', () => {
    const a = randomTensor([4, 3], 5); // transA: A is [K=4, M=3]
    const b = randomTensor([5, 4], 6); // transB: B is [N=5, K=4]
    const c = randomTensor([5], 7);
    const [y] = runOp('Gemm', [a, b, c], {
      attrs: { ...attrs({ transA: 1, transB: 1 }), alpha: { type: 'float', value: 0.5 }, beta: { type: 'float', value: 2 } },
    });
    assert.deepEqual(y.shape, [3, 5]);
    const ad = a.data as Float32Array;
    const bd = b.data as Float32Array;
    const cd = c.data as Float32Array;
    const expected: number[] = [];
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 5; j++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += ad[k * 3 + i] * bd[j * 4 + k];
        expected.push(0.5 * s + 2 * cd[j]);
      }
    assertClose(y.data as Float32Array, expected, 1e-6);
  });
});
