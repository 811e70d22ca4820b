/**
 * Op family: reduce — ReduceMean/Sum/Max/Min/Prod/L1/L2/LogSumExp/SumSquare and ArgMax/ArgMin.
 *
 * Axes are an attribute before opset 18 (ReduceSum: before 13) and an optional input after; keepdims and
 * noop_with_empty_axes follow the spec. Accumulation is in double precision.
 */
import { isFloatType, isIntegerType } from '../ir/dtype';
import { Node, attrInt, attrInts } from '../ir/graph';
import { Dim, SymbolTable, dimAdd, dimMul } from '../ir/symbolic';
import { NumericData, TensorValue, numel, numeric, storageFor, stridesOf } from '../ir/tensor';
import { InferContext, OpDefinition, nodeError, registerOps } from './registry';
import { dimMax, dimMin, shapeArithmeticOutput } from './shape';

/** Normalizes a possibly negative axis; throws a node-named error when it is out of range. */
export function normalizeAxis(node: Node, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= Math.max(rank, 1)) throw nodeError(node, 'op.bad-axis', `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

interface Reducer {
  op: string;
  init: number;
  step(acc: number, v: number): number;
  finish(acc: number, count: number): number;
}

const REDUCERS: Reducer[] = [
  { op: 'ReduceSum', init: 0, step: (a, v) => a + v, finish: (a) => a },
  { op: 'ReduceMean', init: 0, step: (a, v) => a + v, finish: (a, n) => a / n },
  { op: 'ReduceMax', init: Number.NEGATIVE_INFINITY, step: (a, v) => (v > a || Number.isNaN(v) ? v : a), finish: (a) => a },
  { op: 'ReduceMin', init: Number.POSITIVE_INFINITY, step: (a, v) => (v < a || Number.isNaN(v) ? v : a), finish: (a) => a },
  { op: 'ReduceProd', init: 1, step: (a, v) => a * v, finish: (a) => a },
  { op: 'ReduceL1', init: 0, step: (a, v) => a + Math.abs(v), finish: (a) => a },
  { op: 'ReduceL2', init: 0, step: (a, v) => a + v * v, finish: (a) => Math.sqrt(a) },
  { op: 'ReduceSumSquare', init: 0, step: (a, v) => a + v * v, finish: (a) => a },
  { op: 'ReduceLogSumExp', init: 0, step: (a, v) => a + Math.exp(v), finish: (a) => Math.log(a) },
];

/** Reductions of integer shape arithmetic that stay symbolic (dims are non-negative integers). */
const SYMBOLIC_FOLD: Record<string, (symbols: SymbolTable, a: Dim, b: Dim) => Dim> = {
  ReduceMin: dimMin,
  ReduceMax: dimMax,
  ReduceSum: (_, a, b) => dimAdd(a, b),
  ReduceProd: (_, a, b) => dimMul(a, b),
};

/** The opset from which an op reads its axes from input 1. */
function axesAsInputFrom(op: string): number {
  return op === 'ReduceSum' ? 13 : 18;
}

/** Axes to reduce (normalized, sorted), or 'none' for noop_with_empty_axes with no axes. */
function reduceAxes(node: Node, rank: number, axes: number[] | undefined): number[] | 'none' {
  if (!axes || axes.length === 0) {
    if (attrInt(node, 'noop_with_empty_axes', 0) !== 0) return 'none';
    return [...Array(rank).keys()];
  }
  return [...new Set(axes.map((a) => normalizeAxis(node, a, rank)))].sort((a, b) => a - b);
}

/** The axes as the node's opset defines them: input 1 (from opset 18; ReduceSum 13) or the attribute. */
function givenAxes(ctx: InferContext): number[] | undefined {
  if (ctx.opset >= axesAsInputFrom(ctx.node.op)) {
    if (!ctx.input(1)) return undefined;
    const v = ctx.dims(1);
    if (!v || !v.every((d): d is number => typeof d === 'number')) return ctx.fail('the axes input must be known at compile time');
    return v;
  }
  return ctx.node.attrs.axes ? attrInts(ctx.node, 'axes') : undefined;
}

function reduceDefinition(r: Reducer): OpDefinition {
  return {
    op: r.op,
    infer(ctx: InferContext) {
      const shape = ctx.shape(0);
      const axes = reduceAxes(ctx.node, shape.length, givenAxes(ctx));
      const dtype = ctx.dtype(0);
      if ((r.op === 'ReduceMean' || r.op === 'ReduceLogSumExp' || r.op === 'ReduceL2') && !isFloatType(dtype) && !/int/.test(dtype))
        ctx.fail(`needs a numeric input, got ${dtype}`);
      if (axes === 'none') return [{ dtype, shape }];
      const keep = attrInt(ctx.node, 'keepdims', 1) !== 0;
      const out: Dim[] = [];
      shape.forEach((d, i) => {
        if (!axes.includes(i)) out.push(d);
        else if (keep) out.push(1);
      });
      const contents = shape.length <= 1 && isIntegerType(dtype) ? ctx.dims(0) : undefined;
      const fold = SYMBOLIC_FOLD[r.op];
      if (contents && contents.length > 0 && fold)
        // shape arithmetic (the min of a constant and a count, the product of a shape): stays a host expression
        return [shapeArithmeticOutput(dtype, out, [contents.reduce((a, b) => fold(ctx.symbols, a, b))])];
      return [{ dtype, shape: out }];
    },
    evaluate(node, inputs) {
      const x = inputs[0];
      if (!x) throw nodeError(node, 'run.missing-input', 'input 0 is missing');
      // Inference has checked the opset's convention: a node has either the axes input or the attribute.
      const given = inputs[1] ? Array.from(numeric(inputs[1])) : node.attrs.axes ? attrInts(node, 'axes') : undefined;
      const axes = reduceAxes(node, x.shape.length, given);
      if (axes === 'none') return [{ dtype: x.dtype, shape: [...x.shape], data: numeric(x).slice() }];
      const keep = attrInt(node, 'keepdims', 1) !== 0;
      const { data, shape } = reduce(x, axes, keep, r);
      return [{ dtype: x.dtype, shape, data }];
    },
  };
}

/** Reduces `axes` of x; the output keeps reduced dims as 1 when `keep`. */
export function reduce(
  x: TensorValue,
  axes: number[],
  keep: boolean,
  r: Pick<Reducer, 'init' | 'step' | 'finish'>,
): { data: NumericData; shape: number[] } {
  const shape = x.shape;
  const keptShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outShape = keep ? keptShape : shape.filter((_, i) => !axes.includes(i));
  const outCount = numel(keptShape);
  const acc = new Float64Array(outCount).fill(r.init);
  const outStrides = stridesOf(keptShape).map((s, i) => (axes.includes(i) ? 0 : s));
  const xd = numeric(x);
  const rank = shape.length;
  const total = xd.length;
  if (rank > 0 && total > 0) {
    // Odometer over the input with the matching output offset; the last dim is the inner loop.
    const inner = shape[rank - 1];
    const innerStride = outStrides[rank - 1];
    const counter = new Array<number>(rank).fill(0);
    let o = 0;
    for (let i = 0; i < total; i += inner) {
      for (let j = 0, oo = o; j < inner; j++, oo += innerStride) acc[oo] = r.step(acc[oo], xd[i + j]);
      for (let d = rank - 2; d >= 0; d--) {
        counter[d]++;
        o += outStrides[d];
        if (counter[d] < shape[d]) break;
        o -= outStrides[d] * shape[d];
        counter[d] = 0;
      }
    }
  } else if (rank === 0) acc[0] = r.step(r.init, xd[0]);
  const count = outCount === 0 ? 0 : total / outCount;
  const data = storageFor(x.dtype, outCount);
  for (let i = 0; i < outCount; i++) data[i] = r.finish(acc[i], count);
  return { data, shape: outShape };
}

function argDefinition(op: 'ArgMax' | 'ArgMin'): OpDefinition {
  return {
    op,
    infer(ctx) {
      const shape = ctx.shape(0);
      const axis = normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', 0), shape.length);
      const keep = attrInt(ctx.node, 'keepdims', 1) !== 0;
      const out = keep ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis);
      return [{ dtype: 'int64', shape: out }];
    },
    evaluate(node, inputs) {
      const x = inputs[0];
      if (!x) throw nodeError(node, 'run.missing-input', 'input 0 is missing');
      const axis = normalizeAxis(node, attrInt(node, 'axis', 0), x.shape.length);
      const keep = attrInt(node, 'keepdims', 1) !== 0;
      const last = attrInt(node, 'select_last_index', 0) !== 0;
      const outer = numel(x.shape.slice(0, axis));
      const n = x.shape[axis];
      const inner = numel(x.shape.slice(axis + 1));
      const xd = numeric(x);
      const out = new Float64Array(outer * inner);
      const better =
        op === 'ArgMax' ? (v: number, b: number) => v > b || (last && v === b) : (v: number, b: number) => v < b || (last && v === b);
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          let best = xd[o * n * inner + i];
          let at = 0;
          for (let k = 1; k < n; k++) {
            const v = xd[(o * n + k) * inner + i];
            if (better(v, best)) {
              best = v;
              at = k;
            }
          }
          out[o * inner + i] = at;
        }
      const shape = keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
      return [{ dtype: 'int64', shape, data: out }];
    },
  };
}

registerOps([...REDUCERS.map(reduceDefinition), argDefinition('ArgMax'), argDefinition('ArgMin')]);
