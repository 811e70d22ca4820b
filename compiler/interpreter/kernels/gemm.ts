/**
 * The interpreter's float32 GEMM: C[M×N] += A[M×K] · B[K×N], shared by MatMul, Gemm and Conv (im2col).
 *
 * A and B are read through (offset, row stride, column stride) views, so transposed operands need no copy.
 * Blocking: B is packed into 4-column panels per (K block × N block) that stay in L2; each 4-row slice of A is
 * packed per K block; a 4×4 tile of C is accumulated in sixteen local variables (registers, in double
 * precision) over the K block. Plain JavaScript reaches about 2–3 GFLOP/s this way, against about 1 for the
 * naive triple loop.
 */

/** A strided 2-D view into a Float32Array: element (r, c) is data[offset + r*rowStride + c*colStride]. */
export interface MatrixView {
  data: Float32Array;
  offset: number;
  rowStride: number;
  colStride: number;
}

export function rowMajor(data: Float32Array, offset: number, columns: number): MatrixView {
  return { data, offset, rowStride: columns, colStride: 1 };
}

export function transposed(view: MatrixView): MatrixView {
  return { data: view.data, offset: view.offset, rowStride: view.colStride, colStride: view.rowStride };
}

const K_BLOCK = 256;
const N_BLOCK = 256;
let packedB = new Float32Array(K_BLOCK * N_BLOCK);
const packedA = new Float32Array(K_BLOCK * 4);

/** C (row-major, row stride ldc, from cOffset) += A · B. C must be initialised (zeros, or a bias). */
export function gemmAccumulate(
  M: number,
  N: number,
  K: number,
  a: MatrixView,
  b: MatrixView,
  c: Float32Array,
  cOffset: number,
  ldc: number,
): void {
  if (M === 0 || N === 0 || K === 0) return;
  if (packedB.length < K_BLOCK * N_BLOCK) packedB = new Float32Array(K_BLOCK * N_BLOCK);
  const A = a.data;
  const B = b.data;
  for (let j0 = 0; j0 < N; j0 += N_BLOCK) {
    const nb = Math.min(N_BLOCK, N - j0);
    const panels = (nb + 3) >> 2;
    for (let k0 = 0; k0 < K; k0 += K_BLOCK) {
      const kb = Math.min(K_BLOCK, K - k0);
      // Pack B[k0:k0+kb, j0:j0+nb] as panels of 4 columns, k-major inside a panel (zero-padded at the edge).
      // Rows of B are read in order (the cache-friendly way for row-major B); panel edges are zero-padded.
      for (let k = 0; k < kb; k++) {
        const src = b.offset + (k0 + k) * b.rowStride + j0 * b.colStride;
        for (let j = 0; j < nb; j++) packedB[((j >> 2) * kb + k) * 4 + (j & 3)] = B[src + j * b.colStride];
        for (let j = nb; j < panels * 4; j++) packedB[((j >> 2) * kb + k) * 4 + (j & 3)] = 0;
      }
      for (let i0 = 0; i0 < M; i0 += 4) {
        const rows = Math.min(4, M - i0);
        for (let t = 0; t < 4; t++) {
          if (t < rows) {
            let src = a.offset + (i0 + t) * a.rowStride + k0 * a.colStride;
            for (let k = 0; k < kb; k++, src += a.colStride) packedA[k * 4 + t] = A[src];
          } else for (let k = 0; k < kb; k++) packedA[k * 4 + t] = 0;
        }
        for (let p = 0; p < panels; p++)
          tile4x4(packedA, packedB, p * kb * 4, kb, c, cOffset + i0 * ldc + j0 + p * 4, ldc, rows, Math.min(4, nb - p * 4));
      }
    }
  }
}

// prettier-ignore -- the 4×4 register tile reads best one row per line
function tile4x4(
  pa: Float32Array,
  pb: Float32Array,
  bBase: number,
  kb: number,
  c: Float32Array,
  cBase: number,
  ldc: number,
  rows: number,
  cols: number,
): void {
  let c00 = 0,
    c01 = 0,
    c02 = 0,
    c03 = 0,
    c10 = 0,
    c11 = 0,
    c12 = 0,
    c13 = 0;
  let c20 = 0,
    c21 = 0,
    c22 = 0,
    c23 = 0,
    c30 = 0,
    c31 = 0,
    c32 = 0,
    c33 = 0;
  for (let k = 0, ap = 0, bp = bBase; k < kb; k++, ap += 4, bp += 4) {
    const a0 = pa[ap],
      a1 = pa[ap + 1],
      a2 = pa[ap + 2],
      a3 = pa[ap + 3];
    const b0 = pb[bp],
      b1 = pb[bp + 1],
      b2 = pb[bp + 2],
      b3 = pb[bp + 3];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
  }
  if (rows === 4 && cols === 4) {
    let o = cBase;
    c[o] += c00;
    c[o + 1] += c01;
    c[o + 2] += c02;
    c[o + 3] += c03;
    o += ldc;
    c[o] += c10;
    c[o + 1] += c11;
    c[o + 2] += c12;
    c[o + 3] += c13;
    o += ldc;
    c[o] += c20;
    c[o + 1] += c21;
    c[o + 2] += c22;
    c[o + 3] += c23;
    o += ldc;
    c[o] += c30;
    c[o + 1] += c31;
    c[o + 2] += c32;
    c[o + 3] += c33;
    return;
  }
  const tile = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
  for (let r = 0; r < rows; r++) for (let t = 0; t < cols; t++) c[cBase + r * ldc + t] += tile[r * 4 + t];
}
