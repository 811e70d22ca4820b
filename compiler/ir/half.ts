/**
 * IEEE binary16 storage rounding: what storing a float32 value in an fp16 buffer does (round to nearest even;
 * beyond the largest finite half, 65504, a value becomes ±Inf). Used by the interpreter's fp16 storage mode to
 * predict, on the CPU, the values the GPU's fp16 activations hold.
 */

/** Largest finite fp16 value. */
export const FP16_MAX = 65504;
/** Smallest positive normal fp16 value (2^-14); below it fp16 holds subnormals, 2^-24 apart. */
export const FP16_MIN_NORMAL = 2 ** -14;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A float32 value rounded to the nearest fp16 value (as a number); overflow gives ±Inf, NaN stays NaN. */
export function roundToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const exponent = (x >>> 23) & 0xff;
  if (exponent === 0xff) return f32[0]; // Inf, NaN
  const e = exponent - 112; // fp16 biased exponent
  const sign = x & 0x80000000 ? -1 : 1;
  if (e >= 0x1f) return sign * Infinity;
  if (e <= 0) {
    // fp16 subnormals: multiples of 2^-24, round half to even
    const scaled = Math.abs(f32[0]) * 2 ** 24;
    let q = Math.floor(scaled);
    const r = scaled - q;
    if (r > 0.5 || (r === 0.5 && q & 1)) q++;
    return sign * q * 2 ** -24;
  }
  // normal: keep 10 mantissa bits, round half to even (a carry into the exponent is correct, and may overflow)
  const remainder = x & 0x1fff;
  let bits = x & ~0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && x & 0x2000)) bits = (bits + 0x2000) >>> 0;
  u32[0] = bits;
  const v = f32[0];
  return Math.abs(v) > FP16_MAX ? sign * Infinity : v;
}

/** Rounds every element to fp16 in place. */
export function roundArrayToHalf(data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) data[i] = roundToHalf(data[i]);
  return data;
}
