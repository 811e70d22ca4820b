/**
 * Op family: logic — casts, comparisons, boolean ops, Where, IsNaN/IsInf. All broadcast NumPy-style.
 *
 * Comparisons on shape arithmetic are decided symbolically where the symbols' bounds allow it (a batch dim B in
 * [1, 256] is never equal to -1), so that the TorchScript exporter's `Where(Equal(shape, -1), 1, shape)` idiom
 * for `expand(-1, …)` folds; Cast and Where carry the symbolic contents through.
 */
import { DType, dtypeFromOnnx } from '../ir/dtype';
import { Node, attrInt } from '../ir/graph';
import { Dim, SymbolTable, dimSub } from '../ir/symbolic';
import { TensorValue, castValue, makeTensor, numel, numeric, storageFor } from '../ir/tensor';
import { broadcastShapes, forEachBroadcast } from './broadcast';
import { InferContext, OpDefinition, OutputType, nodeError, registerOps } from './registry';
import { shapeArithmeticOutput } from './shape';

function broadcastOutput(ctx: InferContext, inputs: number[]): Dim[] {
  const shape = broadcastShapes(inputs.map((i) => ctx.shape(i)));
  if (typeof shape === 'string') return ctx.fail(shape);
  return shape;
}

/** Elementwise over broadcast inputs, for evaluation. */
function mapBroadcast(node: Node, inputs: TensorValue[], dtype: DType, fn: (values: number[]) => number): TensorValue {
  const outShape = broadcastShapes(inputs.map((x) => x.shape));
  if (typeof outShape === 'string') throw nodeError(node, 'run.invalid', outShape);
  const shape = outShape as number[];
  const data = inputs.map(numeric);
  const out = storageFor(dtype, numel(shape));
  const args = new Array<number>(inputs.length);
  forEachBroadcast(
    shape,
    inputs.map((x) => x.shape),
    (o, idx) => {
      for (let k = 0; k < idx.length; k++) args[k] = data[k][idx[k]];
      out[o] = castValue(fn(args), dtype);
    },
  );
  return { dtype, shape, data: out };
}

/** Symbolic contents of inputs broadcast against each other (rank ≤ 1 only). */
function broadcastDims(ctx: InferContext, inputs: number[]): Dim[][] | undefined {
  const dims = inputs.map((i) => ctx.dims(i));
  if (dims.some((d) => d === undefined) || inputs.some((i) => ctx.shape(i).length > 1)) return undefined;
  const n = Math.max(...dims.map((d) => d!.length));
  if (dims.some((d) => d!.length !== n && d!.length !== 1)) return undefined;
  return dims.map((d) => (d!.length === n ? d! : new Array<Dim>(n).fill(d![0])));
}

// ---- Cast, CastLike ----

function castTarget(node: Node): DType {
  const code = attrInt(node, 'to');
  const dtype = dtypeFromOnnx(code);
  if (!dtype) throw nodeError(node, 'op.bad-attribute', `'to' is ${code}, which is not an ONNX data type`);
  return dtype;
}

function castTensor(node: Node, x: TensorValue, dtype: DType): TensorValue {
  if (dtype === 'string' || x.dtype === 'string') {
    if (dtype === x.dtype) return x;
    throw nodeError(node, 'run.unsupported', `casting ${x.dtype} to ${dtype} is not supported`);
  }
  const src = numeric(x);
  const out = storageFor(dtype, src.length);
  for (let i = 0; i < src.length; i++) out[i] = castValue(src[i], dtype);
  return { dtype, shape: [...x.shape], data: out };
}

/** Cast keeps shape arithmetic (concrete entries are converted; symbolic ones stay). */
function castOutput(ctx: InferContext, dtype: DType): OutputType {
  const shape = ctx.shape(0);
  const dims = ctx.input(0)?.shapeValue;
  if (dims && dtype !== 'string' && dtype !== 'bool' && shape.length <= 1)
    return shapeArithmeticOutput(
      dtype,
      shape,
      dims.map((d) => (typeof d === 'number' ? castValue(d, dtype) : d)),
    );
  return { dtype, shape };
}

const castOp: OpDefinition = {
  op: 'Cast',
  infer: (ctx) => [castOutput(ctx, castTarget(ctx.node))],
  evaluate: (node, [x]) => [castTensor(node, x!, castTarget(node))],
};

const castLikeOp: OpDefinition = {
  op: 'CastLike',
  infer: (ctx) => [castOutput(ctx, ctx.dtype(1))],
  evaluate: (node, [x, like]) => [castTensor(node, x!, like!.dtype)],
};

// ---- comparisons ----

type Decision = boolean | undefined;

/** Decides a comparison of two dims from the bounds of their difference (undefined: depends on the data). */
function decide(symbols: SymbolTable, a: Dim, b: Dim, test: (lo: number, hi: number) => Decision): Decision {
  const { min, max } = symbols.bounds(dimSub(a, b));
  return test(min, max);
}

/** For each comparison: the decision from the interval [lo, hi] of a - b, and the numeric test. */
const comparisons: Record<string, { interval: (lo: number, hi: number) => Decision; test: (a: number, b: number) => boolean }> = {
  Equal: { interval: (lo, hi) => (lo === 0 && hi === 0 ? true : lo > 0 || hi < 0 ? false : undefined), test: (a, b) => a === b },
  Less: { interval: (lo, hi) => (hi < 0 ? true : lo >= 0 ? false : undefined), test: (a, b) => a < b },
  LessOrEqual: { interval: (lo, hi) => (hi <= 0 ? true : lo > 0 ? false : undefined), test: (a, b) => a <= b },
  Greater: { interval: (lo, hi) => (lo > 0 ? true : hi <= 0 ? false : undefined), test: (a, b) => a > b },
  GreaterOrEqual: { interval: (lo, hi) => (lo >= 0 ? true : hi < 0 ? false : undefined), test: (a, b) => a >= b },
};

function comparisonOp(op: keyof typeof comparisons): OpDefinition {
  const { interval, test } = comparisons[op];
  return {
    op,
    infer(ctx) {
      const shape = broadcastOutput(ctx, [0, 1]);
      const dims = broadcastDims(ctx, [0, 1]);
      if (dims && shape.length <= 1) {
        const decided = dims[0].map((a, i) => decide(ctx.symbols, a, dims[1][i], interval));
        if (decided.every((d) => d !== undefined) && (shape.length === 0 || decided.length === shape[0]))
          return [{ dtype: 'bool', shape, value: makeTensor('bool', shape as number[], decided.map(Number)) }];
      }
      return [{ dtype: 'bool', shape }];
    },
    evaluate: (node, [a, b]) => [mapBroadcast(node, [a!, b!], 'bool', ([x, y]) => Number(test(x, y)))],
  };
}

// ---- boolean ops ----

function booleanOp(op: string, fn: (a: boolean, b: boolean) => boolean): OpDefinition {
  return {
    op,
    infer: (ctx) => [{ dtype: 'bool', shape: broadcastOutput(ctx, [0, 1]) }],
    evaluate: (node, [a, b]) => [mapBroadcast(node, [a!, b!], 'bool', ([x, y]) => Number(fn(x !== 0, y !== 0)))],
  };
}

const notOp: OpDefinition = {
  op: 'Not',
  infer: (ctx) => [{ dtype: 'bool', shape: ctx.shape(0) }],
  evaluate: (node, [x]) => [mapBroadcast(node, [x!], 'bool', ([v]) => Number(v === 0))],
};

// ---- Where ----

const whereOp: OpDefinition = {
  op: 'Where',
  infer(ctx) {
    const shape = broadcastOutput(ctx, [0, 1, 2]);
    const dtype = ctx.dtype(1);
    const cond = ctx.value(0);
    const dims = cond ? broadcastDims(ctx, [1, 2]) : undefined;
    if (cond && dims && shape.length <= 1) {
      const c = numeric(cond);
      const n = dims[0].length;
      if ((c.length === 1 || c.length === n) && (shape.length === 0 || shape[0] === n)) {
        const picked = dims[0].map((x, i) => (c[c.length === 1 ? 0 : i] ? x : dims[1][i]));
        return [shapeArithmeticOutput(dtype, shape, picked)];
      }
    }
    return [{ dtype, shape }];
  },
  evaluate: (node, [c, x, y]) => [mapBroadcast(node, [c!, x!, y!], x!.dtype, ([cv, xv, yv]) => (cv ? xv : yv))],
};

// ---- IsNaN, IsInf ----

const isNaNOp: OpDefinition = {
  op: 'IsNaN',
  infer: (ctx) => [{ dtype: 'bool', shape: ctx.shape(0) }],
  evaluate: (node, [x]) => [mapBroadcast(node, [x!], 'bool', ([v]) => Number(Number.isNaN(v)))],
};

const isInfOp: OpDefinition = {
  op: 'IsInf',
  infer: (ctx) => [{ dtype: 'bool', shape: ctx.shape(0) }],
  evaluate(node, [x]) {
    const negative = attrInt(node, 'detect_negative', 1) === 1;
    const positive = attrInt(node, 'detect_positive', 1) === 1;
    return [mapBroadcast(node, [x!], 'bool', ([v]) => Number((positive && v === Infinity) || (negative && v === -Infinity)))];
  },
};

registerOps([
  castOp,
  castLikeOp,
  comparisonOp('Equal'),
  comparisonOp('Less'),
  comparisonOp('LessOrEqual'),
  comparisonOp('Greater'),
  comparisonOp('GreaterOrEqual'),
  booleanOp('And', (a, b) => a && b),
  booleanOp('Or', (a, b) => a || b),
  booleanOp('Xor', (a, b) => a !== b),
  notOp,
  whereOp,
  isNaNOp,
  isInfOp,
]);
