/**
 * Op family: gemm — Gemm (transA/transB, alpha, beta, C broadcast) and MatMul (NumPy matmul: 1-D promotion,
 * broadcast batch dims, symbolic dims).
 */
import { DType } from '../ir/dtype';
import { Node, attrFloat, attrInt } from '../ir/graph';
import { Dim, dimEquals } from '../ir/symbolic';
import { NumericData, TensorValue, numel, numeric, storageFor } from '../ir/tensor';
import { broadcastBinary, broadcastConcrete } from '../interpreter/kernels/elementwise';
import { MatrixView, gemmAccumulate } from '../interpreter/kernels/gemm';
import { broadcastShapes, broadcastStrides } from './broadcast';
import { InferContext, OpDefinition, nodeError, registerOps } from './registry';

function requireInput(node: Node, inputs: (TensorValue | undefined)[], i: number): TensorValue {
  const v = inputs[i];
  if (!v) throw nodeError(node, 'run.missing-input', `input ${i} is missing`);
  return v;
}

function sameDtype(ctx: InferContext): DType {
  const a = ctx.dtype(0);
  const b = ctx.dtype(1);
  if (a !== b) ctx.fail(`input 1 is ${b} but input 0 is ${a}; the inputs must have one type`);
  return a;
}

function checkInner(ctx: InferContext, ka: Dim, kb: Dim, what: string): void {
  if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) ctx.fail(`${what}: the inner dims differ (${ka} vs ${kb})`);
}

/**
 * C[M×N] += A·B for any storage: the blocked float32 kernel when all three are Float32Array, a plain loop
 * otherwise (float64 and integer tensors).
 */
export function matmulInto(
  M: number,
  N: number,
  K: number,
  a: MatrixView | NumericView,
  b: MatrixView | NumericView,
  c: NumericData,
  cOffset: number,
): void {
  if (a.data instanceof Float32Array && b.data instanceof Float32Array && c instanceof Float32Array) {
    gemmAccumulate(M, N, K, a as MatrixView, b as MatrixView, c, cOffset, N);
    return;
  }
  const A = a.data;
  const B = b.data;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a.offset + i * a.rowStride + k * a.colStride] * B[b.offset + k * b.rowStride + j * b.colStride];
      c[cOffset + i * N + j] += s;
    }
}

/** A strided 2-D view into either storage type. */
export interface NumericView {
  data: NumericData;
  offset: number;
  rowStride: number;
  colStride: number;
}

function transposeView(v: NumericView): NumericView {
  return { data: v.data, offset: v.offset, rowStride: v.colStride, colStride: v.rowStride };
}

// ---- MatMul ----

const matmul: OpDefinition = {
  op: 'MatMul',
  infer(ctx) {
    const dtype = sameDtype(ctx);
    const a = ctx.shape(0);
    const b = ctx.shape(1);
    if (a.length === 0 || b.length === 0) ctx.fail('MatMul does not take scalars');
    const a2 = a.length === 1 ? [1, a[0]] : a;
    const b2 = b.length === 1 ? [b[0], 1] : b;
    checkInner(ctx, a2[a2.length - 1], b2[b2.length - 2], `A is ${shapeText(a)} and B is ${shapeText(b)}`);
    const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
    if (typeof batch === 'string') return ctx.fail(`batch dims: ${batch}`);
    const shape: Dim[] = [...batch];
    if (a.length > 1) shape.push(a2[a2.length - 2]);
    if (b.length > 1) shape.push(b2[b2.length - 1]);
    return [{ dtype, shape }];
  },
  evaluate(node, inputs) {
    const a = requireInput(node, inputs, 0);
    const b = requireInput(node, inputs, 1);
    const aShape = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
    const bShape = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
    const M = aShape[aShape.length - 2];
    const K = aShape[aShape.length - 1];
    const N = bShape[bShape.length - 1];
    if (bShape[bShape.length - 2] !== K)
      throw nodeError(node, 'run.shape-mismatch', `A is [${a.shape.join(', ')}] and B is [${b.shape.join(', ')}]: the inner dims differ`);
    const aBatch = aShape.slice(0, -2);
    const bBatch = bShape.slice(0, -2);
    const batch = broadcastConcrete([aBatch, bBatch]);
    const batches = numel(batch);
    const out = storageFor(a.dtype, batches * M * N);
    const aStrides = broadcastStrides(aBatch, batch);
    const bStrides = broadcastStrides(bBatch, batch);
    const ad = numeric(a);
    const bd = numeric(b);
    const index = new Array<number>(batch.length).fill(0);
    for (let t = 0; t < batches; t++) {
      let aOff = 0;
      let bOff = 0;
      for (let d = 0; d < batch.length; d++) {
        aOff += index[d] * aStrides[d];
        bOff += index[d] * bStrides[d];
      }
      matmulInto(
        M,
        N,
        K,
        { data: ad, offset: aOff * M * K, rowStride: K, colStride: 1 },
        { data: bd, offset: bOff * K * N, rowStride: N, colStride: 1 },
        out,
        t * M * N,
      );
      for (let d = batch.length - 1; d >= 0 && ++index[d] === batch[d]; d--) index[d] = 0;
    }
    const shape = [...batch];
    if (a.shape.length > 1) shape.push(M);
    if (b.shape.length > 1) shape.push(N);
    return [{ dtype: a.dtype, shape, data: out }];
  },
};

function shapeText(shape: Dim[]): string {
  return `[${shape.map(String).join(', ')}]`;
}

// ---- Gemm ----

const gemm: OpDefinition = {
  op: 'Gemm',
  infer(ctx) {
    const dtype = sameDtype(ctx);
    const a = ctx.shape(0);
    const b = ctx.shape(1);
    if (a.length !== 2 || b.length !== 2) ctx.fail(`A and B must be 2-D, got ${shapeText(a)} and ${shapeText(b)}`);
    const transA = attrInt(ctx.node, 'transA', 0) !== 0;
    const transB = attrInt(ctx.node, 'transB', 0) !== 0;
    const [M, Ka] = transA ? [a[1], a[0]] : a;
    const [Kb, N] = transB ? [b[1], b[0]] : b;
    checkInner(
      ctx,
      Ka,
      Kb,
      `A is ${shapeText(a)}${transA ? ' (transposed)' : ''} and B is ${shapeText(b)}${transB ? ' (transposed)' : ''}`,
    );
    if (ctx.input(2)) {
      const c = ctx.shape(2);
      const joined = broadcastShapes([c, [M, N]]);
      if (typeof joined === 'string' || joined.length !== 2 || !dimEquals(joined[0], M) || !dimEquals(joined[1], N))
        if (typeof M === 'number' && typeof N === 'number') ctx.fail(`C ${shapeText(c)} does not broadcast to [${M}, ${N}]`);
    }
    return [{ dtype, shape: [M, N] }];
  },
  evaluate(node, inputs) {
    const a = requireInput(node, inputs, 0);
    const b = requireInput(node, inputs, 1);
    const transA = attrInt(node, 'transA', 0) !== 0;
    const transB = attrInt(node, 'transB', 0) !== 0;
    const alpha = attrFloat(node, 'alpha', 1);
    const beta = attrFloat(node, 'beta', 1);
    const [M, K] = transA ? [a.shape[1], a.shape[0]] : a.shape;
    const N = transB ? b.shape[0] : b.shape[1];
    const av: NumericView = { data: numeric(a), offset: 0, rowStride: a.shape[1], colStride: 1 };
    const bv: NumericView = { data: numeric(b), offset: 0, rowStride: b.shape[1], colStride: 1 };
    const out = storageFor(a.dtype, M * N);
    matmulInto(M, N, K, transA ? transposeView(av) : av, transB ? transposeView(bv) : bv, out, 0);
    let y: TensorValue = { dtype: a.dtype, shape: [M, N], data: out };
    if (alpha !== 1) for (let i = 0; i < out.length; i++) out[i] *= alpha;
    const c = inputs[2];
    if (c && beta !== 0) y = broadcastBinary(y, c, a.dtype, beta === 1 ? (v, w) => v + w : (v, w) => v + beta * w);
    return [y];
  },
};

/**
 * An Einsum equation with '...' expanded: the letters of each operand and of the output (explicit or implicit), and
 * the letters that stand for the ellipsis dims (right-aligned across operands; they broadcast: a size-1 dim takes the
 * other operands' size).
 */
export interface EinsumEquation {
  inputs: string[];
  output: string;
  ellipsis: string;
}

const ELLIPSIS_POOL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Parses an equation for operands of the given ranks; '...' becomes letters the equation does not use (as many as
 * the most ellipsis dims of any operand, right-aligned). A message says why one is not taken (repeated output
 * letters, bad characters, ranks that do not match).
 */
export function parseEinsum(equation: string, ranks: readonly number[]): EinsumEquation | string {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  const given = lhs.split(',');
  if (given.length !== ranks.length) return `Einsum '${equation}' names ${given.length} operands but the node has ${ranks.length}`;
  const letters = (t: string) => t.replace('...', '');
  if (![...given, rhs ?? ''].every((t) => /^[a-zA-Z]*(\.\.\.)?[a-zA-Z]*$/.test(t)))
    return `Einsum '${equation}' is not letters, commas, at most one '...' per term and '->'`;
  const used = new Set(eq.replace(/[^a-zA-Z]/g, ''));
  // ellipsis dims per operand, and the letters that name them (the last ones for operands with fewer)
  let count = 0;
  for (let k = 0; k < given.length; k++) {
    const explicit = letters(given[k]).length;
    if (!given[k].includes('...')) {
      if (explicit !== ranks[k]) return `Einsum '${equation}': operand ${k} has rank ${ranks[k]} but '${given[k]}' names ${explicit} axes`;
    } else if (ranks[k] < explicit)
      return `Einsum '${equation}': operand ${k} has rank ${ranks[k]}, fewer than the ${explicit} axes '${given[k]}' names`;
    else count = Math.max(count, ranks[k] - explicit);
  }
  const pool = [...ELLIPSIS_POOL].filter((c) => !used.has(c));
  if (pool.length < count) return `Einsum '${equation}': too many letters to name the ${count} dims of '...'`;
  const ellipsis = pool.slice(0, count).join('');
  const inputs = given.map((t, k) => t.replace('...', ellipsis.slice(count - (ranks[k] - letters(t).length))));
  let output: string;
  if (rhs === undefined) {
    const counts = new Map<string, number>();
    for (const c of inputs.join('')) if (!ellipsis.includes(c)) counts.set(c, (counts.get(c) ?? 0) + 1);
    output =
      ellipsis +
      [...counts]
        .filter(([, n]) => n === 1)
        .map(([c]) => c)
        .sort()
        .join('');
  } else {
    if (rhs.includes('...') && !lhs.includes('...')) return `Einsum '${equation}': '...' in the output but in no operand`;
    output = rhs.replace('...', ellipsis);
  }
  if (new Set(output).size !== output.length) return `Einsum '${equation}' repeats a letter in the output`;
  for (const c of output) if (!inputs.some((t) => t.includes(c))) return `Einsum '${equation}': output letter '${c}' is in no operand`;
  return { inputs, output, ellipsis };
}

/**
 * The size of every letter: equal wherever it appears, except an ellipsis letter of size 1 in one operand, which
 * broadcasts; a message when sizes disagree.
 */
export function einsumSizes(eq: EinsumEquation, shapes: readonly (readonly Dim[])[]): Map<string, Dim> | string {
  const dims = new Map<string, Dim>();
  for (let k = 0; k < eq.inputs.length; k++) {
    const letters = eq.inputs[k];
    if (shapes[k].length !== letters.length)
      return `operand ${k} has rank ${shapes[k].length} but '${letters}' names ${letters.length} axes`;
    for (let a = 0; a < letters.length; a++) {
      const c = letters[a];
      const d = shapes[k][a];
      const seen = dims.get(c);
      if (seen === undefined || dimEquals(seen, d)) dims.set(c, d);
      else if (eq.ellipsis.includes(c) && (seen === 1 || d === 1)) dims.set(c, seen === 1 ? d : seen);
      else return `letter '${c}' is ${String(seen)} and ${String(d)}`;
    }
  }
  return dims;
}

const einsumEquation = (node: Node, ranks: readonly number[]) => parseEinsum(String(node.attrs.equation?.value ?? ''), ranks);

const einsum: OpDefinition = {
  op: 'Einsum',
  infer(ctx: InferContext) {
    const shapes = Array.from({ length: ctx.inputCount }, (_, k) => ctx.shape(k));
    const eq = einsumEquation(
      ctx.node,
      shapes.map((s) => s.length),
    );
    if (typeof eq === 'string') ctx.fail(eq);
    const dims = einsumSizes(eq, shapes);
    if (typeof dims === 'string') ctx.fail(dims);
    return [{ dtype: ctx.dtype(0), shape: [...eq.output].map((c) => dims.get(c)!) }];
  },
  evaluate(node, inputs) {
    const eq = einsumEquation(
      node,
      inputs.map((v) => v!.shape.length),
    );
    if (typeof eq === 'string') throw nodeError(node, 'op.bad-attribute', eq);
    const sizes = einsumSizes(
      eq,
      inputs.map((v) => v!.shape),
    );
    if (typeof sizes === 'string') throw nodeError(node, 'run.shape', sizes);
    const size = sizes as Map<string, number>;
    const letters = [...size.keys()];
    const outShape = [...eq.output].map((c) => size.get(c)!);
    const out = storageFor(inputs[0]!.dtype, numel(outShape)) as NumericData;
    const data = inputs.map((v) => numeric(v!));
    // a broadcast (size-1) axis is read at 0: stride 0
    const strides = eq.inputs.map((t, k) => {
      const shape = inputs[k]!.shape;
      return [...t].map((c, a) => (shape[a] === 1 && size.get(c) !== 1 ? 0 : shape.slice(a + 1).reduce((x, y) => x * y, 1)));
    });
    const at = new Map<string, number>(letters.map((c) => [c, 0]));
    const total = letters.reduce((n, c) => n * size.get(c)!, 1);
    for (let flat = 0; flat < total; flat++) {
      let rest = flat;
      for (let i = letters.length - 1; i >= 0; i--) {
        const n = size.get(letters[i])!;
        at.set(letters[i], rest % n);
        rest = Math.floor(rest / n);
      }
      let product = 1;
      eq.inputs.forEach((t, k) => {
        let offset = 0;
        for (let a = 0; a < t.length; a++) offset += at.get(t[a])! * strides[k][a];
        product *= data[k][offset];
      });
      let o = 0;
      for (const c of eq.output) o = o * size.get(c)! + at.get(c)!;
      out[o] += product;
    }
    return [{ dtype: inputs[0]!.dtype, shape: outShape, data: out }];
  },
};

registerOps([matmul, gemm, einsum]);
