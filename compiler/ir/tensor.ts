/**
 * Compile-time tensor values: constants, folded tensors, parameters whose weights are present, and the
 * reference interpreter's activations.
 *
 * Storage: float64 and every integer/bool type use Float64Array (exact for integers up to 2^53, which covers
 * shapes, indices and masks); the other float types (float32, float16, bfloat16, float8) are widened to
 * Float32Array; strings are kept as string[].
 */
import { DType, isFloatType } from './dtype';

export type NumericData = Float32Array | Float64Array;

export interface TensorValue {
  dtype: DType;
  shape: number[];
  data: NumericData | string[];
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The array type that holds elements of `dtype`. */
export function storageFor(dtype: DType, length: number): NumericData {
  return isFloatType(dtype) && dtype !== 'float64' ? new Float32Array(length) : new Float64Array(length);
}

export function makeTensor(dtype: DType, shape: number[], data?: ArrayLike<number>): TensorValue {
  const n = numel(shape);
  const out = storageFor(dtype, n);
  if (data) {
    if (data.length !== n) throw new Error(`tensor data has ${data.length} elements, shape [${shape}] needs ${n}`);
    out.set(data);
  }
  return { dtype, shape: [...shape], data: out };
}

export function scalar(dtype: DType, value: number): TensorValue {
  return makeTensor(dtype, [], [value]);
}

/** Numeric data of a tensor; strings are an error (no op of ours computes on strings). */
export function numeric(t: TensorValue): NumericData {
  if (Array.isArray(t.data)) throw new Error('string tensor used where numbers are needed');
  return t.data as NumericData;
}

/** Rounds a value as storing it in `dtype` would (integer types truncate toward zero; bool is 0/1). */
export function castValue(v: number, dtype: DType): number {
  switch (dtype) {
    case 'bool':
      return v !== 0 ? 1 : 0;
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return Math.fround(v);
    case 'float64':
      return v;
    default:
      if (/^u?int/.test(dtype)) return Number.isFinite(v) ? Math.trunc(v) : v;
      return v;
  }
}

/** Row-major strides. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** A small deterministic PRNG (mulberry32) for seeded random weights and test inputs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
