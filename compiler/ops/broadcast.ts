/** Multidirectional (NumPy-style) broadcasting of shapes and element indexing. */
import { Dim, dimEquals } from '../ir/symbolic';

/** Broadcast result shape, or an error message. */
export function broadcastShapes(shapes: Dim[][]): Dim[] | string {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      if (k < 0) continue;
      const e = s[k];
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (!dimEquals(d, e)) {
        // A symbolic dim against a concrete one: trust the concrete (the symbol must equal it or be 1).
        if (typeof d !== 'number' && typeof e === 'number') d = e;
        else if (typeof d === 'number' && typeof e === 'number')
          return `shapes [${shapes.map((x) => x.join(',')).join('] and [')}] do not broadcast (dim ${i}: ${d} vs ${e})`;
      }
    }
    out.push(d);
  }
  return out;
}

/**
 * For a concrete output shape and an input shape that broadcasts to it, the input's strides in output index
 * space (0 where the input is broadcast).
 */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] {
  const rank = outShape.length;
  const strides = new Array<number>(rank).fill(0);
  let acc = 1;
  for (let i = inShape.length - 1; i >= 0; i--) {
    const o = rank - inShape.length + i;
    strides[o] = inShape[i] === 1 && outShape[o] !== 1 ? 0 : acc;
    acc *= inShape[i];
  }
  return strides;
}

/** Calls fn(outIndex, inIndex0, inIndex1, …) for every element of outShape. */
export function forEachBroadcast(
  outShape: readonly number[],
  inShapes: readonly (readonly number[])[],
  fn: (o: number, idx: number[]) => void,
): void {
  const rank = outShape.length;
  const strides = inShapes.map((s) => broadcastStrides(s, outShape));
  const total = outShape.reduce((a, b) => a * b, 1);
  const counter = new Array<number>(rank).fill(0);
  const idx = new Array<number>(inShapes.length).fill(0);
  for (let o = 0; o < total; o++) {
    fn(o, idx);
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]++;
      for (let k = 0; k < idx.length; k++) idx[k] += strides[k][d];
      if (counter[d] < outShape[d]) break;
      for (let k = 0; k < idx.length; k++) idx[k] -= strides[k][d] * outShape[d];
      counter[d] = 0;
    }
  }
}
