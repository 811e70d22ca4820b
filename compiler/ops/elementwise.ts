/**
 * Op family: elementwise — arithmetic with NumPy broadcasting, unary math and activations, variadic Min/Max/
 * Sum/Mean, Clip and PRelu.
 *
 * Integer tensors whose contents are known symbolically (shape arithmetic such as `Shape(x)[0] * 197`) keep
 * their contents through Add/Sub/Mul/Div as `shapeValue`, so later Reshapes see `B*197` rather than an unknown.
 */
import { DType, isFloatType, isIntegerType } from '../ir/dtype';
import { Node, attrFloat, attrInt, attrString } from '../ir/graph';
import { Dim, dimAdd, dimMul, dimNeg, dimSub } from '../ir/symbolic';
import { dimMax, dimMin, shapeArithmeticOutput } from './shape';
import { TensorValue, numeric } from '../ir/tensor';
import { broadcastBinary, mapUnary } from '../interpreter/kernels/elementwise';
import { broadcastShapes } from './broadcast';
import { InferContext, OpDefinition, OutputType, nodeError, registerOps } from './registry';

// ---- inference helpers ----

function broadcastInfer(ctx: InferContext, indices: number[]): Dim[] {
  const shapes = indices.map((i) => ctx.shape(i));
  const out = broadcastShapes(shapes);
  if (typeof out === 'string') ctx.fail(out);
  return out;
}

function requireSameDtype(ctx: InferContext, indices: number[]): DType {
  const dtype = ctx.dtype(indices[0]);
  for (const i of indices.slice(1)) {
    const other = ctx.dtype(i);
    if (other !== dtype) ctx.fail(`input ${i} is ${other} but input ${indices[0]} is ${dtype}; the inputs must have one type`);
  }
  return dtype;
}

function requireFloat(ctx: InferContext, dtype: DType): void {
  if (!isFloatType(dtype)) ctx.fail(`needs a floating-point input, got ${dtype}`);
}

/** Symbolic contents of an integer binary op's output (rank ≤ 1 shape arithmetic), when both inputs' are known. */
function symbolicContents(ctx: InferContext, shape: Dim[], combine: (a: Dim, b: Dim) => Dim): Dim[] | undefined {
  if (shape.length > 1 || !isIntegerType(ctx.dtype(0))) return undefined;
  const a = ctx.dims(0);
  const b = ctx.dims(1);
  if (!a || !b) return undefined;
  if (a.length !== b.length && a.length !== 1 && b.length !== 1) return undefined;
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) out.push(combine(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i]));
  return out;
}

// ---- evaluation helpers ----

function input(node: Node, inputs: (TensorValue | undefined)[], i: number): TensorValue {
  const v = inputs[i];
  if (!v) throw nodeError(node, 'run.missing-input', `input ${i} is missing`);
  return v;
}

// ---- binary arithmetic ----

type BinaryKernel = (x: number, y: number) => number;

interface BinarySpec {
  op: string;
  /** The kernel for an output dtype (integer division truncates, float math does not). */
  kernel(dtype: DType, node: Node): BinaryKernel;
  /** Shape-arithmetic rule on dims (Add/Sub/Mul/Div). */
  symbolic?: (ctx: InferContext) => (a: Dim, b: Dim) => Dim;
  /** Pow: the exponent may have another type than the base. */
  mixedTypes?: boolean;
}

const truncDiv: BinaryKernel = (x, y) => (y === 0 ? 0 : Math.trunc(x / y));

const BINARY: BinarySpec[] = [
  { op: 'Add', kernel: () => (x, y) => x + y, symbolic: () => dimAdd },
  { op: 'Sub', kernel: () => (x, y) => x - y, symbolic: () => dimSub },
  { op: 'Mul', kernel: () => (x, y) => x * y, symbolic: () => dimMul },
  {
    op: 'Div',
    kernel: (dtype) => (isIntegerType(dtype) ? truncDiv : (x, y) => x / y),
    // Dims are non-negative, so C truncation and floor division agree.
    symbolic: (ctx) => (a, b) => (typeof a === 'number' && typeof b === 'number' ? Math.trunc(a / b) : ctx.symbols.floorDiv(a, b)),
  },
  {
    op: 'Pow',
    kernel: (dtype) => (isIntegerType(dtype) ? (x, y) => Math.trunc(Math.pow(x, y)) : Math.pow),
    mixedTypes: true,
  },
  {
    op: 'Mod',
    kernel: (dtype, node) => {
      const fmod = attrInt(node, 'fmod', 0);
      if (fmod === 1) return (x, y) => x % y; // C fmod: the sign of the dividend
      if (isFloatType(dtype)) throw nodeError(node, 'op.bad-attribute', 'floating-point Mod needs fmod=1');
      return (x, y) => {
        if (y === 0) return 0;
        const r = x % y;
        return r !== 0 && r < 0 !== y < 0 ? r + y : r; // Python-style: the sign of the divisor
      };
    },
  },
];

function binaryDefinition(spec: BinarySpec): OpDefinition {
  return {
    op: spec.op,
    infer(ctx) {
      const dtype = spec.mixedTypes ? ctx.dtype(0) : requireSameDtype(ctx, [0, 1]);
      if (spec.mixedTypes) ctx.dtype(1);
      if (spec.op === 'Mod' && isFloatType(dtype) && attrInt(ctx.node, 'fmod', 0) !== 1) ctx.fail('floating-point Mod needs fmod=1');
      const shape = broadcastInfer(ctx, [0, 1]);
      const out: OutputType = { dtype, shape };
      if (spec.symbolic) {
        const contents = symbolicContents(ctx, shape, spec.symbolic(ctx));
        if (contents) out.shapeValue = contents;
      }
      return [out];
    },
    evaluate(node, inputs) {
      const a = input(node, inputs, 0);
      const b = input(node, inputs, 1);
      return [broadcastBinary(a, b, a.dtype, spec.kernel(a.dtype, node))];
    },
  };
}

// ---- unary math and activations ----

interface UnarySpec {
  op: string;
  /** The kernel, given the node (for attributes) and the dtype. */
  kernel(node: Node, dtype: DType): (v: number) => number;
  /** Only defined on floating-point inputs. */
  floatOnly?: boolean;
  /** Shape-arithmetic rule on dims (Neg). */
  symbolic?: (d: Dim) => Dim;
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * erf(x) in double precision, so that the float32 result is correctly rounded for practical purposes.
 * Uses erf(x) = 2/√π · e^(−x²) · Σ (2x²)ⁿ x / (2n+1)!!, whose terms are all positive (no cancellation).
 * Beyond |x| = 4, 1 − erf(x) < 1.6e-8 is below half an ulp of 1 in float32, so the result is ±1.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const ax = Math.abs(x);
  if (ax >= 4) return x > 0 ? 1 : -1;
  const x2 = 2 * ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 200; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  const r = TWO_OVER_SQRT_PI * Math.exp(-ax * ax) * sum;
  return x < 0 ? -r : r;
}

/** Round half to even, as ONNX Round specifies. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
}

function softplus(v: number): number {
  return v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
}

function sigmoid(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

const UNARY: UnarySpec[] = [
  { op: 'Neg', kernel: () => (v) => -v, symbolic: dimNeg },
  { op: 'Abs', kernel: () => Math.abs },
  { op: 'Reciprocal', kernel: () => (v) => 1 / v, floatOnly: true },
  { op: 'Sqrt', kernel: () => Math.sqrt, floatOnly: true },
  { op: 'Exp', kernel: () => Math.exp, floatOnly: true },
  { op: 'Log', kernel: () => Math.log, floatOnly: true },
  { op: 'Erf', kernel: () => erf, floatOnly: true },
  { op: 'Tanh', kernel: () => Math.tanh, floatOnly: true },
  { op: 'Sigmoid', kernel: () => sigmoid, floatOnly: true },
  { op: 'Relu', kernel: () => (v) => (v > 0 ? v : 0) },
  {
    op: 'LeakyRelu',
    kernel: (node) => {
      const alpha = attrFloat(node, 'alpha', 0.01);
      return (v) => (v >= 0 ? v : alpha * v);
    },
    floatOnly: true,
  },
  {
    op: 'Elu',
    kernel: (node) => {
      const alpha = attrFloat(node, 'alpha', 1);
      return (v) => (v >= 0 ? v : alpha * Math.expm1(v));
    },
    floatOnly: true,
  },
  {
    op: 'Selu',
    kernel: (node) => {
      const alpha = attrFloat(node, 'alpha', 1.67326319217681884765625);
      const gamma = attrFloat(node, 'gamma', 1.05070102214813232421875);
      return (v) => (v > 0 ? gamma * v : gamma * alpha * Math.expm1(v));
    },
    floatOnly: true,
  },
  {
    op: 'HardSigmoid',
    kernel: (node) => {
      const alpha = attrFloat(node, 'alpha', 0.2);
      const beta = attrFloat(node, 'beta', 0.5);
      return (v) => Math.max(0, Math.min(1, alpha * v + beta));
    },
    floatOnly: true,
  },
  { op: 'HardSwish', kernel: () => (v) => v * Math.max(0, Math.min(1, v / 6 + 0.5)), floatOnly: true },
  {
    op: 'Gelu',
    kernel: (node) => {
      const approximate = attrString(node, 'approximate', 'none');
      if (approximate === 'tanh') return (v) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
      if (approximate !== 'none') throw nodeError(node, 'op.bad-attribute', `approximate must be 'none' or 'tanh', got '${approximate}'`);
      return (v) => 0.5 * v * (1 + erf(v * SQRT1_2));
    },
    floatOnly: true,
  },
  { op: 'Softplus', kernel: () => softplus, floatOnly: true },
  { op: 'Mish', kernel: () => (v) => v * Math.tanh(softplus(v)), floatOnly: true },
  {
    op: 'Shrink',
    kernel: (node) => {
      const lambd = attrFloat(node, 'lambd', 0.5);
      const bias = attrFloat(node, 'bias', 0);
      return (v) => (v < -lambd ? v + bias : v > lambd ? v - bias : 0);
    },
  },
  { op: 'Floor', kernel: () => Math.floor, floatOnly: true },
  { op: 'Ceil', kernel: () => Math.ceil, floatOnly: true },
  { op: 'Round', kernel: () => roundHalfEven, floatOnly: true },
  { op: 'Sin', kernel: () => Math.sin, floatOnly: true },
  { op: 'Cos', kernel: () => Math.cos, floatOnly: true },
  { op: 'Sign', kernel: () => (v) => (v > 0 ? 1 : v < 0 ? -1 : v) },
  { op: 'Tan', kernel: () => Math.tan, floatOnly: true },
  { op: 'Asin', kernel: () => Math.asin, floatOnly: true },
  { op: 'Acos', kernel: () => Math.acos, floatOnly: true },
  { op: 'Atan', kernel: () => Math.atan, floatOnly: true },
  { op: 'Sinh', kernel: () => Math.sinh, floatOnly: true },
  { op: 'Cosh', kernel: () => Math.cosh, floatOnly: true },
  { op: 'Asinh', kernel: () => Math.asinh, floatOnly: true },
  { op: 'Acosh', kernel: () => Math.acosh, floatOnly: true },
  { op: 'Atanh', kernel: () => Math.atanh, floatOnly: true },
  { op: 'Softsign', kernel: () => (v) => v / (1 + Math.abs(v)), floatOnly: true },
  {
    op: 'Celu',
    kernel: (node) => {
      const alpha = attrFloat(node, 'alpha', 1);
      return (v) => Math.max(0, v) + Math.min(0, alpha * Math.expm1(v / alpha));
    },
    floatOnly: true,
  },
  {
    op: 'ThresholdedRelu',
    kernel: (node) => {
      const alpha = attrFloat(node, 'alpha', 1);
      return (v) => (v > alpha ? v : 0);
    },
    floatOnly: true,
  },
];

function unaryDefinition(spec: UnarySpec): OpDefinition {
  return {
    op: spec.op,
    infer(ctx) {
      const dtype = ctx.dtype(0);
      if (spec.floatOnly) requireFloat(ctx, dtype);
      if (spec.op === 'Gelu') spec.kernel(ctx.node, dtype); // validates `approximate` at compile time
      const out: OutputType = { dtype, shape: ctx.shape(0) };
      const contents = spec.symbolic && isIntegerType(dtype) ? ctx.dims(0) : undefined;
      if (contents && spec.symbolic && out.shape.length <= 1) out.shapeValue = contents.map(spec.symbolic);
      return [out];
    },
    evaluate(node, inputs) {
      const x = input(node, inputs, 0);
      return [mapUnary(x, spec.kernel(node, x.dtype))];
    },
  };
}

// ---- variadic, Clip, PRelu ----

function variadicDefinition(op: 'Min' | 'Max' | 'Sum' | 'Mean'): OpDefinition {
  const combine: BinaryKernel =
    op === 'Min'
      ? (x, y) => (x < y || Number.isNaN(x) ? x : y)
      : op === 'Max'
        ? (x, y) => (x > y || Number.isNaN(x) ? x : y)
        : (x, y) => x + y;
  return {
    op,
    infer(ctx) {
      if (ctx.inputCount === 0) ctx.fail('needs at least one input');
      const indices = [...Array(ctx.inputCount).keys()];
      const dtype = requireSameDtype(ctx, indices);
      if (op === 'Mean') requireFloat(ctx, dtype);
      const shape = broadcastInfer(ctx, indices);
      // shape arithmetic: min(1000, count) and the like stay symbolic (evaluated on the host when the model runs)
      if ((op === 'Min' || op === 'Max' || op === 'Sum') && isIntegerType(dtype) && shape.length <= 1) {
        const fold = op === 'Min' ? dimMin : op === 'Max' ? dimMax : (_: unknown, a: Dim, b: Dim) => dimAdd(a, b);
        let contents: Dim[] | undefined = ctx.dims(0);
        for (let i = 1; contents && i < ctx.inputCount; i++) {
          const next = ctx.dims(i);
          const acc: Dim[] = contents;
          if (!next || (next.length !== acc.length && next.length !== 1 && acc.length !== 1)) contents = undefined;
          else
            contents = Array.from({ length: Math.max(acc.length, next.length) }, (_, k) =>
              fold(ctx.symbols, acc[acc.length === 1 ? 0 : k], next[next.length === 1 ? 0 : k]),
            );
        }
        if (contents) return [shapeArithmeticOutput(dtype, shape, contents)];
      }
      return [{ dtype, shape }];
    },
    evaluate(node, inputs) {
      const given = inputs.filter((v): v is TensorValue => v !== undefined);
      if (given.length === 0) throw nodeError(node, 'run.missing-input', 'needs at least one input');
      let acc = mapUnary(given[0], (v) => v);
      for (const next of given.slice(1)) acc = broadcastBinary(acc, next, acc.dtype, combine);
      if (op === 'Mean' && given.length > 1) {
        const n = given.length;
        acc = mapUnary(acc, (v) => v / n);
      }
      return [acc];
    },
  };
}

const clip: OpDefinition = {
  op: 'Clip',
  infer(ctx) {
    const dtype = ctx.dtype(0);
    if (ctx.opset >= 11)
      for (const i of [1, 2])
        if (ctx.input(i) && ctx.dtype(i) !== dtype) ctx.fail(`input ${i} is ${ctx.dtype(i)} but the data is ${dtype}`);
    return [{ dtype, shape: ctx.shape(0) }];
  },
  evaluate(node, inputs) {
    const x = input(node, inputs, 0);
    let lo = Number.NEGATIVE_INFINITY;
    let hi = Number.POSITIVE_INFINITY;
    // opset < 11: the bounds are attributes; from 11 they are optional scalar inputs
    lo = attrFloat(node, 'min', lo);
    hi = attrFloat(node, 'max', hi);
    if (inputs[1]) lo = numeric(inputs[1])[0];
    if (inputs[2]) hi = numeric(inputs[2])[0];
    return [mapUnary(x, (v) => (v < lo ? lo : v > hi ? hi : v))];
  },
};

/**
 * PRelu before opset 7 (no numpy broadcasting yet): a 1-D slope of C > 1 values is one per channel, axis 1 of an
 * [N, C, ...] input. canonicalize.ts rewrites it to the numpy form (the slope as [C, 1, ...]).
 */
export function isLegacyChannelSlope(opset: number, x: readonly Dim[], slope: readonly Dim[]): boolean {
  return opset < 7 && x.length > 2 && slope.length === 1 && slope[0] !== 1 && slope[0] === x[1];
}

const prelu: OpDefinition = {
  op: 'PRelu',
  infer(ctx) {
    const dtype = requireSameDtype(ctx, [0, 1]);
    if (isLegacyChannelSlope(ctx.opset, ctx.shape(0), ctx.shape(1))) return [{ dtype, shape: ctx.shape(0) }];
    const shape = broadcastInfer(ctx, [0, 1]);
    if (shape.length !== ctx.shape(0).length) ctx.fail('the slope must broadcast to the shape of X (unidirectional)');
    return [{ dtype, shape: ctx.shape(0) }];
  },
  evaluate(node, inputs, env) {
    const x = input(node, inputs, 0);
    let slope = input(node, inputs, 1);
    if (env?.opset !== undefined && isLegacyChannelSlope(env.opset, x.shape, slope.shape))
      slope = { ...slope, shape: [slope.shape[0], ...x.shape.slice(2).map(() => 1)] };
    return [broadcastBinary(x, slope, x.dtype, (v, s) => (v < 0 ? s * v : v))];
  },
};

registerOps([
  ...BINARY.map(binaryDefinition),
  ...UNARY.map(unaryDefinition),
  ...(['Min', 'Max', 'Sum', 'Mean'] as const).map(variadicDefinition),
  clip,
  prelu,
]);
