/** Numerical comparison helpers for tests. */
export function relativeL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i] - expected[i];
    num += d * d;
    den += expected[i] * expected[i];
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
