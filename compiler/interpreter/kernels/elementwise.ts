/**
 * Elementwise kernels of the reference interpreter: map over one tensor, and combine two tensors under
 * NumPy broadcasting. Results are stored in the output dtype's storage (Float32Array rounds float32 math).
 */
import { DType } from '../../ir/dtype';
import { NumericData, TensorValue, numel, numeric, storageFor } from '../../ir/tensor';
import { broadcastStrides } from '../../ops/broadcast';

/** The broadcast shape of concrete shapes; throws an Error naming both shapes when they do not broadcast. */
export function broadcastConcrete(shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes)
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else if (out[o] !== d) throw new Error(`shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')} do not broadcast`);
    }
  return out;
}

export function mapUnary(x: TensorValue, f: (v: number) => number, dtype: DType = x.dtype): TensorValue {
  const src = numeric(x);
  const out = storageFor(dtype, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f(src[i]);
  return { dtype, shape: [...x.shape], data: out };
}

/** out[i] = f(a[ia], b[ib]) over the broadcast shape of a and b. */
export function broadcastBinary(a: TensorValue, b: TensorValue, dtype: DType, f: (x: number, y: number) => number): TensorValue {
  const shape = broadcastConcrete([a.shape, b.shape]);
  const total = numel(shape);
  const out = storageFor(dtype, total);
  const ad = numeric(a);
  const bd = numeric(b);
  if (ad.length === total && bd.length === total) {
    for (let i = 0; i < total; i++) out[i] = f(ad[i], bd[i]);
  } else if (bd.length === 1 && ad.length === total) {
    const y = bd[0];
    for (let i = 0; i < total; i++) out[i] = f(ad[i], y);
  } else if (ad.length === 1 && bd.length === total) {
    const x = ad[0];
    for (let i = 0; i < total; i++) out[i] = f(x, bd[i]);
  } else if (total > 0) {
    broadcastLoop(shape, ad, broadcastStrides(a.shape, shape), bd, broadcastStrides(b.shape, shape), out, f);
  }
  return { dtype, shape, data: out };
}

/** The general case: an outer odometer over all but the last dim, a strided inner loop over the last. */
function broadcastLoop(
  shape: number[],
  ad: NumericData,
  sa: number[],
  bd: NumericData,
  sb: number[],
  out: NumericData,
  f: (x: number, y: number) => number,
): void {
  const rank = shape.length;
  const inner = shape[rank - 1];
  const ia = sa[rank - 1];
  const ib = sb[rank - 1];
  const counter = new Array<number>(rank).fill(0);
  let offA = 0;
  let offB = 0;
  const total = numel(shape);
  for (let o = 0; o < total; o += inner) {
    let pa = offA;
    let pb = offB;
    for (let j = 0; j < inner; j++, pa += ia, pb += ib) out[o + j] = f(ad[pa], bd[pb]);
    for (let d = rank - 2; d >= 0; d--) {
      counter[d]++;
      offA += sa[d];
      offB += sb[d];
      if (counter[d] < shape[d]) break;
      offA -= sa[d] * shape[d];
      offB -= sb[d] * shape[d];
      counter[d] = 0;
    }
  }
}
