/**
 * Op family: shape — ops that move, select or describe elements without arithmetic on them (Shape, Reshape,
 * Transpose, Slice, Gather, Concat, …), plus Constant/Identity/Dropout and the scatter/cumulative ops.
 *
 * Inference keeps dims symbolic where it can and propagates `shapeValue` through the small integer tensors that
 * carry shape arithmetic (Shape → Gather → Unsqueeze → Concat → Reshape), so that the TorchScript exporter's
 * chains resolve to symbolic shapes. Evaluation is by flat index maps: each op computes, for every output
 * element, the input element it copies (`takeElements`), which covers every dtype including strings.
 */
import { DType } from '../ir/dtype';
import { Node, attrFloat, attrInt, attrInts, attrString, attrTensor } from '../ir/graph';
import { Dim, SymbolTable, allConcrete, dimAdd, dimEquals, dimMul, dimProduct, dimSub, dimToString, isConcrete } from '../ir/symbolic';
import { TensorValue, castValue, makeTensor, numel, numeric, storageFor, stridesOf } from '../ir/tensor';
import { broadcastShapes, broadcastStrides } from './broadcast';
import { FUSED_DOMAIN } from './fused';
import { InferContext, OpDefinition, OutputType, nodeError, registerOps } from './registry';

// ---- helpers shared with the other families of this branch (logic, resize, detection, control) ----

/** Values at or beyond this magnitude in Slice bounds mean "to the end" (INT64_MAX/MIN as doubles). */
const HUGE = 2 ** 31;

/** Normalizes a possibly negative axis against `rank`; fails naming the node when out of range. */
export function normalizeAxis(node: Node, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank || !Number.isInteger(a)) throw nodeError(node, 'shape.invalid', `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Concrete integer contents of input i (from its value), or undefined when not known at compile time. */
export function constInts(ctx: InferContext, i: number): number[] | undefined {
  const v = ctx.value(i);
  if (!v || Array.isArray(v.data)) return undefined;
  return Array.from(v.data as ArrayLike<number>);
}

/** Integer contents of an evaluated input (undefined when the input is omitted). */
export function intsOfValue(v: TensorValue | undefined): number[] | undefined {
  return v ? Array.from(numeric(v)) : undefined;
}

/** An output that carries shape arithmetic: its symbolic contents, and its value when every dim is concrete. */
export function shapeArithmeticOutput(dtype: DType, shape: Dim[], dims: Dim[]): OutputType {
  const out: OutputType = { dtype, shape, shapeValue: dims };
  if (allConcrete(dims) && allConcrete(shape))
    out.value = makeTensor(
      dtype,
      shape,
      dims.map((d) => castValue(d, dtype)),
    );
  return out;
}

/** A tensor of `shape` whose element k is `src`'s element `index[k]` (index -1: `fill`). Works for every dtype. */
export function takeElements(src: TensorValue, shape: number[], index: ArrayLike<number>, fill = 0): TensorValue {
  const n = index.length;
  if (Array.isArray(src.data)) {
    const from = src.data;
    return { dtype: src.dtype, shape, data: Array.from({ length: n }, (_, k) => (index[k] < 0 ? '' : from[index[k]])) };
  }
  const from = src.data;
  const out = storageFor(src.dtype, n);
  for (let k = 0; k < n; k++) out[k] = index[k] < 0 ? fill : from[index[k]];
  return { dtype: src.dtype, shape, data: out };
}

/** Same elements, new shape (shares the data). */
export function reshaped(v: TensorValue, shape: number[]): TensorValue {
  return { dtype: v.dtype, shape, data: v.data };
}

/** Calls fn(flatIndex, multiIndex) for every element of a concrete shape, in row-major order. */
export function forEachIndex(shape: readonly number[], fn: (flat: number, index: number[]) => void): void {
  const total = numel(shape);
  const index = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < total; flat++) {
    fn(flat, index);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
}

/** The smaller of two dims: exact when the bounds decide it, else an opaque `min(a, b)` symbol. */
export function dimMin(symbols: SymbolTable, a: Dim, b: Dim): Dim {
  if (isConcrete(a) && isConcrete(b)) return Math.min(a, b);
  if (dimEquals(a, b)) return a;
  // min(min(x, y), x) = min(x, y)
  if (isArgumentOf(symbols, 'min', a, b)) return a;
  if (isArgumentOf(symbols, 'min', b, a)) return b;
  const diff = symbols.bounds(dimSub(b, a));
  if (diff.min >= 0) return a;
  if (diff.max <= 0) return b;
  const ba = symbols.bounds(a);
  const bb = symbols.bounds(b);
  return symbols.opaque(
    `min(${dimToString(a)}, ${dimToString(b)})`,
    Math.min(ba.min, bb.min),
    Math.min(ba.max, bb.max),
    'min of two dims',
    {
      kind: 'min',
      args: [a, b],
    },
  );
}

/** Whether `outer` is a `kind` (min/max) symbol with `inner` among its arguments. */
function isArgumentOf(symbols: SymbolTable, kind: 'min' | 'max', outer: Dim, inner: Dim): boolean {
  if (isConcrete(outer) || outer.terms.size !== 1 || outer.symbols.length !== 1 || String(outer) !== outer.symbols[0]) return false;
  const definition = symbols.get(outer.symbols[0])?.definition;
  return definition?.kind === kind && definition.args.some((arg) => dimEquals(arg, inner));
}

/** max(a, b) of two dims: one of them when their bounds decide it, else an opaque `max` symbol. */
export function dimMax(symbols: SymbolTable, a: Dim, b: Dim): Dim {
  if (isConcrete(a) && isConcrete(b)) return Math.max(a, b);
  if (dimEquals(a, b)) return a;
  if (isArgumentOf(symbols, 'max', a, b)) return a;
  if (isArgumentOf(symbols, 'max', b, a)) return b;
  const diff = symbols.bounds(dimSub(b, a));
  if (diff.min >= 0) return b;
  if (diff.max <= 0) return a;
  const ba = symbols.bounds(a);
  const bb = symbols.bounds(b);
  return symbols.opaque(
    `max(${dimToString(a)}, ${dimToString(b)})`,
    Math.max(ba.min, bb.min),
    Math.max(ba.max, bb.max),
    'max of two dims',
    {
      kind: 'max',
      args: [a, b],
    },
  );
}

/** Elements of a shape, for bounding data-dependent dims (its largest possible value). */
function maxElements(ctx: InferContext, shape: Dim[]): number {
  return ctx.symbols.maxOf(dimProduct(shape));
}

function checkConcrete(ctx: InferContext, dims: Dim[] | undefined, what: string): number[] {
  if (!dims || !allConcrete(dims)) ctx.fail(`${what} must be known at compile time`);
  return dims;
}

// ---- Shape, Size ----

const shapeOp: OpDefinition = {
  op: 'Shape',
  shapeOnly: true,
  infer(ctx) {
    const shape = ctx.shape(0);
    const [start, end] = shapeRange(ctx.node, shape.length);
    const dims = shape.slice(start, end);
    return [shapeArithmeticOutput('int64', [dims.length], dims)];
  },
  evaluate(node, [x]) {
    const [start, end] = shapeRange(node, x!.shape.length);
    const dims = x!.shape.slice(start, end);
    return [makeTensor('int64', [dims.length], dims)];
  },
};

function shapeRange(node: Node, rank: number): [number, number] {
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  return [clamp(attrInt(node, 'start', 0)), clamp(attrInt(node, 'end', rank))];
}

const sizeOp: OpDefinition = {
  op: 'Size',
  shapeOnly: true,
  infer: (ctx) => [shapeArithmeticOutput('int64', [], [dimProduct(ctx.shape(0))])],
  evaluate: (_node, [x]) => [makeTensor('int64', [], [numel(x!.shape)])],
};

// ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity ----

/** Resolves a Reshape target (0 = copy, -1 = inferred) against the input shape. */
function reshapeTarget(node: Node, symbols: SymbolTable, input: Dim[], target: Dim[], allowZero: boolean): Dim[] {
  const out = target.map((d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= input.length) throw nodeError(node, 'shape.invalid', `shape entry ${i} is 0 (copy), but the input has rank ${input.length}`);
      return input[i];
    }
    return d;
  });
  const inferred = out.flatMap((d, i) => (d === -1 ? [i] : []));
  if (inferred.length > 1) throw nodeError(node, 'shape.invalid', `the target shape [${target.map(dimToString)}] has more than one -1`);
  const total = dimProduct(input);
  const bad = (why: string) =>
    nodeError(
      node,
      'shape.reshape-size',
      `cannot reshape [${input.map(dimToString).join(', ')}] (${dimToString(total)} elements) to [${target.map(dimToString).join(', ')}]: ${why}`,
    );
  if (out.some((d) => isConcrete(d) && d < -1)) throw bad('negative dims other than -1');
  if (inferred.length === 1) {
    const known = dimProduct(out.filter((_, i) => i !== inferred[0]));
    if (known === 0) throw bad('the -1 dim is ambiguous when another dim is 0');
    if (isConcrete(total) && isConcrete(known) && total % known !== 0) throw bad(`${total} is not divisible by ${known}`);
    out[inferred[0]] = symbols.floorDiv(total, known);
  } else {
    const product = dimProduct(out);
    if (isConcrete(total) && isConcrete(product) && total !== product) throw bad(`the target has ${product} elements`);
  }
  return out;
}

const reshapeOp: OpDefinition = {
  op: 'Reshape',
  infer(ctx) {
    const input = ctx.shape(0);
    const allowZero = attrInt(ctx.node, 'allowzero', 0) === 1;
    let target = ctx.node.attrs.shape && ctx.opset < 5 ? attrInts(ctx.node, 'shape') : ctx.dims(1);
    if (!target) {
      // The target is only known at run time: its length is known, each dim is data-dependent.
      const targetShape = ctx.shape(1);
      if (targetShape.length !== 1 || !isConcrete(targetShape[0])) return ctx.fail('the shape input must be a 1-D tensor of known length');
      const bound = maxElements(ctx, input);
      target = Array.from({ length: targetShape[0] }, () => ctx.dataDependentDim('reshape', 0, bound));
      return [{ dtype: ctx.dtype(0), shape: target }];
    }
    const shape = reshapeTarget(ctx.node, ctx.symbols, input, target, allowZero);
    return [passShapeValue(ctx, { dtype: ctx.dtype(0), shape })];
  },
  evaluate(node, [x, target]) {
    const t = target ? intsOfValue(target)! : attrInts(node, 'shape');
    const shape = reshapeTarget(node, new SymbolTable(), x!.shape, t, attrInt(node, 'allowzero', 0) === 1) as number[];
    return [reshaped(x!, shape)];
  },
};

/** Ops that keep the elements in order keep the input's symbolic contents when the output is small (rank ≤ 1). */
function passShapeValue(ctx: InferContext, out: OutputType): OutputType {
  const dims = ctx.input(0)?.shapeValue;
  if (dims && out.shape.length <= 1 && (out.shape.length === 0 ? dims.length === 1 : dimEquals(out.shape[0], dims.length)))
    return shapeArithmeticOutput(out.dtype, out.shape, dims);
  return out;
}

function flattenShape(node: Node, shape: Dim[]): [Dim, Dim] {
  const rank = shape.length;
  const raw = attrInt(node, 'axis', 1);
  const axis = raw < 0 ? raw + rank : raw;
  if (axis < 0 || axis > rank) throw nodeError(node, 'shape.invalid', `axis ${raw} is out of range for rank ${rank}`);
  return [dimProduct(shape.slice(0, axis)), dimProduct(shape.slice(axis))];
}

const flattenOp: OpDefinition = {
  op: 'Flatten',
  infer: (ctx) => [{ dtype: ctx.dtype(0), shape: flattenShape(ctx.node, ctx.shape(0)) }],
  evaluate: (node, [x]) => [reshaped(x!, flattenShape(node, x!.shape) as number[])],
};

/** Squeeze/Unsqueeze axes: the attribute before opset 13, the second input from 13 on. */
function axesOf(node: Node, opset: number, given: number[] | undefined): number[] | undefined {
  if (opset < 13 || node.attrs.axes) return node.attrs.axes ? attrInts(node, 'axes') : undefined;
  return given;
}

function squeezeShape(node: Node, shape: Dim[], axes: number[] | undefined): Dim[] {
  if (!axes) return shape.filter((d) => d !== 1);
  const drop = new Set(axes.map((a) => normalizeAxis(node, a, shape.length)));
  for (const a of drop) {
    const d = shape[a];
    if (isConcrete(d) && d !== 1) throw nodeError(node, 'shape.invalid', `cannot squeeze axis ${a}: its size is ${d}, not 1`);
  }
  return shape.filter((_, i) => !drop.has(i));
}

function unsqueezeShape(node: Node, shape: Dim[], axes: number[]): Dim[] {
  const rank = shape.length + axes.length;
  const add = new Set(axes.map((a) => normalizeAxis(node, a, rank)));
  if (add.size !== axes.length) throw nodeError(node, 'shape.invalid', `axes [${axes}] repeat an axis`);
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(add.has(i) ? 1 : shape[k++]);
  return out;
}

const squeezeOp: OpDefinition = {
  op: 'Squeeze',
  infer(ctx) {
    const given = ctx.inputCount > 1 ? checkConcrete(ctx, ctx.dims(1), 'the axes input') : undefined;
    const shape = squeezeShape(ctx.node, ctx.shape(0), axesOf(ctx.node, ctx.opset, given));
    return [passShapeValue(ctx, { dtype: ctx.dtype(0), shape })];
  },
  evaluate(node, [x, axes]) {
    return [reshaped(x!, squeezeShape(node, x!.shape, axesOf(node, 99, intsOfValue(axes))) as number[])];
  },
};

const unsqueezeOp: OpDefinition = {
  op: 'Unsqueeze',
  infer(ctx) {
    const given = ctx.inputCount > 1 ? checkConcrete(ctx, ctx.dims(1), 'the axes input') : undefined;
    const axes = axesOf(ctx.node, ctx.opset, given);
    if (!axes) return ctx.fail('axes are required');
    return [passShapeValue(ctx, { dtype: ctx.dtype(0), shape: unsqueezeShape(ctx.node, ctx.shape(0), axes) })];
  },
  evaluate(node, [x, axes]) {
    const a = axesOf(node, 99, intsOfValue(axes));
    if (!a) throw nodeError(node, 'run.invalid', 'axes are required');
    return [reshaped(x!, unsqueezeShape(node, x!.shape, a) as number[])];
  },
};

const identityOp: OpDefinition = {
  op: 'Identity',
  infer(ctx) {
    const t = ctx.input(0);
    if (t?.valueType === 'sequence') return [{ dtype: t.dtype ?? 'float32', shape: [], valueType: 'sequence' }];
    return [{ dtype: ctx.dtype(0), shape: ctx.shape(0), shapeValue: t?.shapeValue, value: t?.value }];
  },
  evaluate: (_node, [x]) => [x!],
};

const dropoutOp: OpDefinition = {
  op: 'Dropout',
  infer(ctx) {
    // Inference mode: the output is the input; the optional mask is all true.
    const shape = ctx.shape(0);
    return [
      { dtype: ctx.dtype(0), shape, shapeValue: ctx.input(0)?.shapeValue },
      { dtype: 'bool', shape },
    ];
  },
  evaluate: (_node, [x]) => [x!, makeTensor('bool', x!.shape, new Array<number>(numel(x!.shape)).fill(1))],
};

// ---- Transpose ----

function permOf(node: Node, rank: number): number[] {
  const perm = attrInts(
    node,
    'perm',
    Array.from({ length: rank }, (_, i) => rank - 1 - i),
  );
  if (perm.length !== rank || new Set(perm.map((p) => normalizeAxis(node, p, rank))).size !== rank)
    throw nodeError(node, 'shape.invalid', `perm [${perm}] is not a permutation of ${rank} axes`);
  return perm.map((p) => normalizeAxis(node, p, rank));
}

const transposeOp: OpDefinition = {
  op: 'Transpose',
  infer(ctx) {
    const shape = ctx.shape(0);
    return [{ dtype: ctx.dtype(0), shape: permOf(ctx.node, shape.length).map((p) => shape[p]) }];
  },
  evaluate(node, [x]) {
    const perm = permOf(node, x!.shape.length);
    const outShape = perm.map((p) => x!.shape[p]);
    const inStrides = stridesOf(x!.shape);
    const index = new Float64Array(numel(outShape));
    forEachIndex(outShape, (flat, idx) => {
      let src = 0;
      for (let d = 0; d < idx.length; d++) src += idx[d] * inStrides[perm[d]];
      index[flat] = src;
    });
    return [takeElements(x!, outShape, index)];
  },
};

// ---- Concat, Split ----

const concatOp: OpDefinition = {
  op: 'Concat',
  infer(ctx) {
    const shapes = ctx.node.inputs.map((_, i) => ctx.shape(i));
    const rank = shapes[0].length;
    const axis = normalizeAxis(ctx.node, attrInt(ctx.node, 'axis'), Math.max(rank, 1));
    const out = [...shapes[0]];
    for (let k = 1; k < shapes.length; k++) {
      const s = shapes[k];
      if (s.length !== rank) ctx.fail(`input ${k} has rank ${s.length}, input 0 has rank ${rank}`);
      for (let d = 0; d < rank; d++) {
        if (d === axis) out[d] = dimAdd(out[d], s[d]);
        else if (isConcrete(out[d]) && isConcrete(s[d]) && out[d] !== s[d])
          ctx.fail(`input ${k} has size ${s[d]} on axis ${d}, input 0 has ${out[d]}`);
        else if (!isConcrete(out[d]) && isConcrete(s[d])) out[d] = s[d];
      }
    }
    const dtype = ctx.dtype(0);
    if (rank === 1) {
      const parts = ctx.node.inputs.map((_, i) => ctx.dims(i));
      if (parts.every((p) => p !== undefined)) return [shapeArithmeticOutput(dtype, out, parts.flat())];
    }
    return [{ dtype, shape: out }];
  },
  evaluate(node, inputs) {
    const xs = inputs.map((x) => x!);
    const rank = xs[0].shape.length;
    const axis = normalizeAxis(node, attrInt(node, 'axis'), rank);
    const outShape = [...xs[0].shape];
    outShape[axis] = xs.reduce((a, x) => a + x.shape[axis], 0);
    // Copy block by block: an outer loop over the dims before the axis, then each input's contiguous block.
    const outer = numel(outShape.slice(0, axis));
    const inner = numel(outShape.slice(axis + 1));
    const total = numel(outShape);
    if (xs.some((x) => Array.isArray(x.data))) {
      const data: string[] = [];
      for (let o = 0; o < outer; o++)
        for (const x of xs) data.push(...(x.data as string[]).slice(o * x.shape[axis] * inner, (o + 1) * x.shape[axis] * inner));
      return [{ dtype: xs[0].dtype, shape: outShape, data }];
    }
    const out = storageFor(xs[0].dtype, total);
    let pos = 0;
    for (let o = 0; o < outer; o++)
      for (const x of xs) {
        const block = x.shape[axis] * inner;
        out.set(numeric(x).subarray(o * block, (o + 1) * block), pos);
        pos += block;
      }
    return [{ dtype: xs[0].dtype, shape: outShape, data: out }];
  },
};

/** Sizes of Split's outputs along the axis. */
function splitSizes(
  ctx: { node: Node; opset: number; symbols: SymbolTable },
  dim: Dim,
  outputs: number,
  given: number[] | undefined,
): Dim[] {
  const node = ctx.node;
  const sizes = given ?? (node.attrs.split ? attrInts(node, 'split') : undefined);
  if (sizes) {
    if (sizes.length !== outputs) throw nodeError(node, 'shape.invalid', `split has ${sizes.length} sizes for ${outputs} outputs`);
    const sum = sizes.reduce((a, b) => a + b, 0);
    if (isConcrete(dim) && sum !== dim)
      throw nodeError(node, 'shape.invalid', `split sizes [${sizes}] add up to ${sum}, the axis has ${dim}`);
    return sizes;
  }
  const n = node.attrs.num_outputs ? attrInt(node, 'num_outputs') : outputs;
  if (isConcrete(dim)) {
    // Opset 18: ceil(dim / n) each, the last one smaller; before 18 the split must be even.
    const each = Math.ceil(dim / n);
    if (ctx.opset < 18 && dim % n !== 0) throw nodeError(node, 'shape.invalid', `axis size ${dim} does not split evenly into ${n} outputs`);
    return Array.from({ length: n }, (_, i) => Math.max(0, Math.min(each, dim - each * i)));
  }
  const each = ctx.symbols.floorDiv(dim, n);
  return Array.from({ length: n }, () => each);
}

const splitOp: OpDefinition = {
  op: 'Split',
  infer(ctx) {
    const shape = ctx.shape(0);
    const axis = normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', 0), shape.length);
    const given = ctx.inputCount > 1 ? checkConcrete(ctx, ctx.dims(1), 'the split input') : undefined;
    const sizes = splitSizes(ctx, shape[axis], ctx.node.outputs.length, given);
    const dims = shape.length === 1 ? ctx.input(0)?.shapeValue : undefined;
    let offset = 0;
    return sizes.map((size) => {
      const s = [...shape];
      s[axis] = size;
      if (dims && isConcrete(size)) {
        const part = dims.slice(offset, offset + size);
        offset += size;
        return shapeArithmeticOutput(ctx.dtype(0), s, part);
      }
      return { dtype: ctx.dtype(0), shape: s };
    });
  },
  evaluate(node, [x, split]) {
    const axis = normalizeAxis(node, attrInt(node, 'axis', 0), x!.shape.length);
    const sizes = splitSizes(
      { node, opset: 18, symbols: new SymbolTable() },
      x!.shape[axis],
      node.outputs.length,
      intsOfValue(split),
    ) as number[];
    let start = 0;
    return sizes.map((size) => {
      const out = sliceValue(x!, [start], [start + size], [axis], [1]);
      start += size;
      return out;
    });
  },
};

// ---- Slice ----

interface SliceParams {
  /** undefined: only known at run time (the sliced length becomes data-dependent). */
  starts: (Dim | undefined)[];
  ends: (Dim | undefined)[];
  axes: number[];
  steps: number[];
}

function sliceParams(ctx: InferContext): SliceParams {
  const rank = ctx.shape(0).length;
  // before opset 10 the bounds are attributes (canonicalize turns them into inputs: either form may come here)
  if (ctx.inputCount === 1) {
    const starts = attrInts(ctx.node, 'starts');
    const axes = attrInts(
      ctx.node,
      'axes',
      starts.map((_, i) => i),
    );
    return {
      starts,
      ends: attrInts(ctx.node, 'ends'),
      axes: axes.map((a) => normalizeAxis(ctx.node, a, rank)),
      steps: starts.map(() => 1),
    };
  }
  const count = ctx.shape(1)[0];
  if (!isConcrete(count)) ctx.fail('starts must be a 1-D tensor of known length');
  const unknown = () => new Array<Dim | undefined>(count).fill(undefined);
  const starts = ctx.dims(1) ?? unknown();
  const ends = ctx.dims(2) ?? unknown();
  const axes = ctx.inputCount > 3 ? checkConcrete(ctx, ctx.dims(3), 'the axes input') : starts.map((_, i) => i);
  const steps = ctx.inputCount > 4 ? checkConcrete(ctx, ctx.dims(4), 'the steps input') : starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length)
    ctx.fail('starts, ends, axes and steps must have the same length');
  if (steps.some((s) => s === 0)) ctx.fail('a step is 0');
  return { starts, ends, axes: axes.map((a) => normalizeAxis(ctx.node, a, rank)), steps };
}

/** ONNX's clamping of one axis's slice for a concrete dim: [start, count]. */
function sliceAxis(dim: number, start: number, end: number, step: number): [number, number] {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  return [s, Math.max(0, Math.ceil((e - s) / step))];
}

/** Output length of one sliced axis, symbolic where the dim or the bounds are. */
function slicedLength(ctx: InferContext, dim: Dim, start: Dim | undefined, end: Dim | undefined, step: number): Dim {
  if (start === undefined || end === undefined) return ctx.dataDependentDim('slice', 0, ctx.symbols.maxOf(dim));
  if (isConcrete(dim) && isConcrete(start) && isConcrete(end)) return sliceAxis(dim, start, end, step)[1];
  const sym = ctx.symbols;
  if (step === 1) {
    const lo = isConcrete(start) ? (start < 0 ? dimAdd(dim, start) : dimMin(sym, start, dim)) : start;
    let hi: Dim;
    if (isConcrete(end)) hi = end >= HUGE ? dim : end < 0 ? dimAdd(dim, end) : dimMin(sym, end, dim);
    else hi = dimEquals(end, dim) ? dim : dimMin(sym, end, dim);
    const len = dimSub(hi, lo);
    if (isConcrete(len)) return Math.max(0, len);
    if (sym.bounds(len).min >= 0) return len;
  }
  if (step === -1 && isConcrete(start) && isConcrete(end) && (start === -1 || start >= HUGE) && end <= -HUGE) return dim; // x[::-1]
  return ctx.dataDependentDim('slice', 0, sym.maxOf(dim));
}

const sliceOp: OpDefinition = {
  op: 'Slice',
  infer(ctx) {
    const shape = ctx.shape(0);
    const p = sliceParams(ctx);
    const out = [...shape];
    p.axes.forEach((axis, k) => (out[axis] = slicedLength(ctx, shape[axis], p.starts[k], p.ends[k], p.steps[k])));
    const dims = ctx.input(0)?.shapeValue;
    if (
      shape.length === 1 &&
      dims &&
      p.starts[0] !== undefined &&
      p.ends[0] !== undefined &&
      isConcrete(p.starts[0]) &&
      isConcrete(p.ends[0])
    ) {
      const [s, n] = sliceAxis(dims.length, p.starts[0], p.ends[0], p.steps[0]);
      return [
        shapeArithmeticOutput(
          ctx.dtype(0),
          out,
          Array.from({ length: n }, (_, i) => dims[s + i * p.steps[0]]),
        ),
      ];
    }
    return [{ dtype: ctx.dtype(0), shape: out }];
  },
  evaluate(node, [x, starts, ends, axes, steps]) {
    if (!starts) {
      const s = attrInts(node, 'starts');
      return [
        sliceValue(
          x!,
          s,
          attrInts(node, 'ends'),
          attrInts(
            node,
            'axes',
            s.map((_, i) => i),
          ),
          s.map(() => 1),
        ),
      ];
    }
    const s = intsOfValue(starts)!;
    return [sliceValue(x!, s, intsOfValue(ends)!, intsOfValue(axes) ?? s.map((_, i) => i), intsOfValue(steps) ?? s.map(() => 1))];
  },
};

export function sliceValue(x: TensorValue, starts: number[], ends: number[], axes: number[], steps: number[]): TensorValue {
  const rank = x.shape.length;
  const begin = new Array<number>(rank).fill(0);
  const step = new Array<number>(rank).fill(1);
  const outShape = [...x.shape];
  axes.forEach((a0, k) => {
    const a = a0 < 0 ? a0 + rank : a0;
    const [s, n] = sliceAxis(x.shape[a], starts[k], ends[k], steps[k]);
    begin[a] = s;
    step[a] = steps[k];
    outShape[a] = n;
  });
  const strides = stridesOf(x.shape);
  const index = new Float64Array(numel(outShape));
  forEachIndex(outShape, (flat, idx) => {
    let src = 0;
    for (let d = 0; d < rank; d++) src += (begin[d] + idx[d] * step[d]) * strides[d];
    index[flat] = src;
  });
  return takeElements(x, outShape, index);
}

// ---- Roll (ours) ----

/**
 * `ait.Roll(x)` attrs `axes`, `shifts` (one per axis): torch.roll, a cyclic shift along each axis, out[.., i, ..] =
 * x[.., (i − shift) mod n, ..] on every listed axis (n its size, concrete). Exporters write it per axis as Concat of
 * Slices of x (cat(x[:, s:], x[:, :s]) is a roll by −s); passes/roll.ts rewrites those into this op.
 */
const rollOp: OpDefinition = {
  op: 'Roll',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const shape = ctx.shape(0);
    const { axes, shifts } = rollParams(ctx.node, shape.length);
    axes.forEach((a, k) => {
      if (!isConcrete(shape[a])) ctx.fail(`rolled axis ${a} has the run-time size ${dimToString(shape[a])}`);
      if (!Number.isInteger(shifts[k])) ctx.fail(`shift ${shifts[k]} is not an integer`);
    });
    return [{ dtype: ctx.dtype(0), shape: [...shape] }];
  },
  evaluate(node, [x]) {
    const shape = x!.shape;
    const { axes, shifts } = rollParams(node, shape.length);
    const shift = new Array<number>(shape.length).fill(0);
    axes.forEach((a, k) => (shift[a] = rollShift(shifts[k], shape[a])));
    const strides = stridesOf(shape);
    const index = new Float64Array(numel(shape));
    forEachIndex(shape, (flat, idx) => {
      let src = 0;
      for (let d = 0; d < shape.length; d++) {
        const i = idx[d] - shift[d];
        src += (i < 0 ? i + shape[d] : i) * strides[d];
      }
      index[flat] = src;
    });
    return [takeElements(x!, [...shape], index)];
  },
};

/** Roll's axes (normalized, distinct) and shifts, as given. */
export function rollParams(node: Node, rank: number): { axes: number[]; shifts: number[] } {
  const axes = attrInts(node, 'axes').map((a) => normalizeAxis(node, a, rank));
  const shifts = attrInts(node, 'shifts');
  if (shifts.length !== axes.length) throw nodeError(node, 'shape.invalid', `${shifts.length} shifts for ${axes.length} axes`);
  if (new Set(axes).size !== axes.length) throw nodeError(node, 'shape.invalid', `axes [${axes.join(', ')}] repeat an axis`);
  return { axes, shifts };
}

/** A shift of an axis of size n as the equivalent one in [0, n). */
export function rollShift(shift: number, n: number): number {
  return n > 0 ? ((shift % n) + n) % n : 0;
}

// ---- Gather, GatherElements, GatherND ----

const gatherOp: OpDefinition = {
  op: 'Gather',
  infer(ctx) {
    const data = ctx.shape(0);
    const indices = ctx.shape(1);
    const indexType = ctx.input(1)?.dtype;
    if (indexType && indexType !== 'int32' && indexType !== 'int64') ctx.fail(`indices must be int32 or int64, not ${indexType}`);
    const axis = normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', 0), data.length);
    const shape = [...data.slice(0, axis), ...indices, ...data.slice(axis + 1)];
    const dims = data.length === 1 ? ctx.input(0)?.shapeValue : undefined;
    const picks = constInts(ctx, 1);
    if (dims && picks && indices.length <= 1) {
      const n = dims.length;
      const selected = picks.map((i) => {
        if (i < -n || i >= n) ctx.fail(`index ${i} is out of range for axis size ${n}`);
        return dims[i < 0 ? i + n : i];
      });
      return [shapeArithmeticOutput(ctx.dtype(0), shape, selected)];
    }
    return [{ dtype: ctx.dtype(0), shape }];
  },
  evaluate(node, [data, indices]) {
    const x = data!;
    const axis = normalizeAxis(node, attrInt(node, 'axis', 0), x.shape.length);
    const idx = numeric(indices!);
    const n = x.shape[axis];
    const outer = numel(x.shape.slice(0, axis));
    const inner = numel(x.shape.slice(axis + 1));
    const outShape = [...x.shape.slice(0, axis), ...indices!.shape, ...x.shape.slice(axis + 1)];
    const index = new Float64Array(numel(outShape));
    let k = 0;
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < idx.length; j++) {
        let i = idx[j];
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw nodeError(node, 'run.index', `index ${idx[j]} is out of range for axis size ${n}`);
        for (let q = 0; q < inner; q++) index[k++] = (o * n + i) * inner + q;
      }
    return [takeElements(x, outShape, index)];
  },
};

const gatherElementsOp: OpDefinition = {
  op: 'GatherElements',
  infer(ctx) {
    if (ctx.shape(0).length !== ctx.shape(1).length) ctx.fail('data and indices must have the same rank');
    return [{ dtype: ctx.dtype(0), shape: ctx.shape(1) }];
  },
  evaluate(node, [data, indices]) {
    const x = data!;
    const axis = normalizeAxis(node, attrInt(node, 'axis', 0), x.shape.length);
    const idx = numeric(indices!);
    const strides = stridesOf(x.shape);
    const n = x.shape[axis];
    const index = new Float64Array(idx.length);
    forEachIndex(indices!.shape, (flat, at) => {
      let i = idx[flat];
      if (i < 0) i += n;
      if (i < 0 || i >= n) throw nodeError(node, 'run.index', `index ${idx[flat]} is out of range for axis size ${n}`);
      let src = 0;
      for (let d = 0; d < at.length; d++) src += (d === axis ? i : at[d]) * strides[d];
      index[flat] = src;
    });
    return [takeElements(x, [...indices!.shape], index)];
  },
};

const gatherNDOp: OpDefinition = {
  op: 'GatherND',
  infer(ctx) {
    const data = ctx.shape(0);
    const indices = ctx.shape(1);
    const batch = attrInt(ctx.node, 'batch_dims', 0);
    const last = indices[indices.length - 1];
    if (!isConcrete(last)) return ctx.fail('the last dim of indices must be known');
    return [{ dtype: ctx.dtype(0), shape: [...indices.slice(0, -1), ...data.slice(batch + last)] }];
  },
  evaluate(node, [data, indices]) {
    const x = data!;
    const batch = attrInt(node, 'batch_dims', 0);
    const ish = indices!.shape;
    const last = ish[ish.length - 1];
    const idx = numeric(indices!);
    const outShape = [...ish.slice(0, -1), ...x.shape.slice(batch + last)];
    const strides = stridesOf(x.shape);
    const inner = numel(x.shape.slice(batch + last));
    const tuples = numel(ish.slice(0, -1));
    const perBatch = numel(ish.slice(batch, -1));
    const batchStride = numel(x.shape.slice(batch));
    const index = new Float64Array(tuples * inner);
    for (let t = 0; t < tuples; t++) {
      let base = Math.floor(t / perBatch) * batchStride;
      for (let j = 0; j < last; j++) {
        const n = x.shape[batch + j];
        let i = idx[t * last + j];
        if (i < 0) i += n;
        if (i < 0 || i >= n) throw nodeError(node, 'run.index', `index ${idx[t * last + j]} is out of range for axis size ${n}`);
        base += i * strides[batch + j];
      }
      for (let q = 0; q < inner; q++) index[t * inner + q] = base + q;
    }
    return [takeElements(x, outShape, index)];
  },
};

// ---- Expand, Tile, ConstantOfShape, Range ----

/** Target dims of a shape input (unknown contents: data-dependent dims, one per element). */
function targetDims(ctx: InferContext, i: number, bound: number): Dim[] {
  const dims = ctx.dims(i);
  if (dims) return dims;
  const s = ctx.shape(i);
  if (s.length !== 1 || !isConcrete(s[0])) ctx.fail(`input ${i} (a shape) must be 1-D with a known length`);
  return Array.from({ length: s[0] }, () => ctx.dataDependentDim('dim', 0, bound));
}

const expandOp: OpDefinition = {
  op: 'Expand',
  infer(ctx) {
    const target = targetDims(ctx, 1, 2 ** 31);
    const shape = broadcastShapes([ctx.shape(0), target]);
    if (typeof shape === 'string') return ctx.fail(shape);
    return [{ dtype: ctx.dtype(0), shape }];
  },
  evaluate(node, [x, shape]) {
    const out = broadcastShapes([x!.shape, intsOfValue(shape)!]);
    if (typeof out === 'string') throw nodeError(node, 'run.invalid', out);
    return [broadcastTo(x!, out as number[])];
  },
};

export function broadcastTo(x: TensorValue, outShape: number[]): TensorValue {
  const strides = broadcastStrides(x.shape, outShape);
  const index = new Float64Array(numel(outShape));
  forEachIndex(outShape, (flat, idx) => {
    let src = 0;
    for (let d = 0; d < idx.length; d++) src += idx[d] * strides[d];
    index[flat] = src;
  });
  return takeElements(x, outShape, index);
}

const tileOp: OpDefinition = {
  op: 'Tile',
  infer(ctx) {
    const shape = ctx.shape(0);
    const repeats = targetDims(ctx, 1, 2 ** 31);
    if (repeats.length !== shape.length) ctx.fail(`repeats has ${repeats.length} entries for rank ${shape.length}`);
    return [{ dtype: ctx.dtype(0), shape: shape.map((d, i) => dimMul(d, repeats[i])) }];
  },
  evaluate(_node, [x, repeats]) {
    const r = intsOfValue(repeats)!;
    const outShape = x!.shape.map((d, i) => d * r[i]);
    const strides = stridesOf(x!.shape);
    const index = new Float64Array(numel(outShape));
    forEachIndex(outShape, (flat, idx) => {
      let src = 0;
      for (let d = 0; d < idx.length; d++) src += (idx[d] % x!.shape[d]) * strides[d];
      index[flat] = src;
    });
    return [takeElements(x!, outShape, index)];
  },
};

function fillValue(node: Node): TensorValue {
  return attrTensor(node, 'value') ?? makeTensor('float32', [1], [0]);
}

const constantOfShapeOp: OpDefinition = {
  op: 'ConstantOfShape',
  infer(ctx) {
    const shape = targetDims(ctx, 0, 2 ** 31);
    const fill = fillValue(ctx.node);
    const dtype = fill.dtype;
    if (shape.length <= 1 && allConcrete(shape) && numel(shape) <= 64)
      return [shapeArithmeticOutput(dtype, shape, new Array<Dim>(numel(shape)).fill(numeric(fill)[0]))];
    return [{ dtype, shape }];
  },
  evaluate(node, [shape]) {
    const fill = fillValue(node);
    const dims = intsOfValue(shape)!;
    return [makeTensor(fill.dtype, dims, new Array<number>(numel(dims)).fill(numeric(fill)[0]))];
  },
};

function rangeLength(start: number, limit: number, delta: number): number {
  return Math.max(Math.ceil((limit - start) / delta), 0);
}

const rangeOp: OpDefinition = {
  op: 'Range',
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const [start, limit, delta] = [0, 1, 2].map((i) => ctx.dims(i)?.[0]);
    if (delta === 0) ctx.fail('delta is 0');
    if (start !== undefined && limit !== undefined && delta !== undefined) {
      if (isConcrete(start) && isConcrete(limit) && isConcrete(delta)) return [{ dtype, shape: [rangeLength(start, limit, delta)] }];
      // Range(0, n, 1) over a symbolic n has n elements (its contents are 0..n-1).
      if (start === 0 && delta === 1) return [{ dtype, shape: [limit] }];
    }
    const bound = limit !== undefined ? ctx.symbols.maxOf(limit) : 2 ** 31;
    return [{ dtype, shape: [ctx.dataDependentDim('range', 0, Number.isFinite(bound) ? bound : 2 ** 31)] }];
  },
  evaluate(node, [start, limit, delta]) {
    const [s, l, d] = [start, limit, delta].map((v) => numeric(v!)[0]);
    if (d === 0) throw nodeError(node, 'run.invalid', 'delta is 0');
    const n = rangeLength(s, l, d);
    return [
      makeTensor(
        start!.dtype,
        [n],
        Array.from({ length: n }, (_, i) => castValue(s + i * d, start!.dtype)),
      ),
    ];
  },
};

// ---- Constant ----

function constantValue(node: Node): TensorValue {
  const a = node.attrs;
  if (a.value) return attrTensor(node, 'value')!;
  if (a.value_float) return makeTensor('float32', [], [attrFloat(node, 'value_float')]);
  if (a.value_floats) {
    const v = a.value_floats.type === 'floats' ? a.value_floats.value : [];
    return makeTensor('float32', [v.length], v);
  }
  if (a.value_int) return makeTensor('int64', [], [attrInt(node, 'value_int')]);
  if (a.value_ints) {
    const v = attrInts(node, 'value_ints');
    return makeTensor('int64', [v.length], v);
  }
  if (a.value_string) return { dtype: 'string', shape: [], data: [attrString(node, 'value_string')] };
  if (a.value_strings) {
    const v = a.value_strings.type === 'strings' ? a.value_strings.value : [];
    return { dtype: 'string', shape: [v.length], data: [...v] };
  }
  throw nodeError(
    node,
    'op.bad-attribute',
    'has none of the value attributes (value, value_float(s), value_int(s), value_string(s)); sparse_value is not supported',
  );
}

const constantOp: OpDefinition = {
  op: 'Constant',
  infer(ctx) {
    const value = constantValue(ctx.node);
    return [{ dtype: value.dtype, shape: [...value.shape], value }];
  },
  evaluate: (node) => [constantValue(node)],
};

// ---- Pad ----

interface PadParams {
  pads: Dim[];
  mode: string;
  axes: number[];
}

function padParams(node: Node, opset: number, rank: number, padsInput: Dim[] | undefined, axesInput: number[] | undefined): PadParams {
  const mode = attrString(node, 'mode', 'constant');
  const pads = opset < 11 ? attrInts(node, 'pads') : padsInput;
  if (!pads) throw nodeError(node, 'shape.invalid', 'the pads input must be known at compile time (constants or shape arithmetic)');
  const axes = (axesInput ?? Array.from({ length: rank }, (_, i) => i)).map((a) => normalizeAxis(node, a, rank));
  if (pads.length !== 2 * axes.length) throw nodeError(node, 'shape.invalid', `pads has ${pads.length} entries for ${axes.length} axes`);
  return { pads, mode, axes };
}

const padOp: OpDefinition = {
  op: 'Pad',
  infer(ctx) {
    const shape = ctx.shape(0);
    const axesInput = ctx.inputCount > 3 ? checkConcrete(ctx, ctx.dims(3), 'the axes input') : undefined;
    const p = padParams(ctx.node, ctx.opset, shape.length, ctx.dims(1), axesInput);
    const out = [...shape];
    const n = p.axes.length;
    p.axes.forEach((a, k) => (out[a] = dimAdd(dimAdd(shape[a], p.pads[k]), p.pads[k + n])));
    return [{ dtype: ctx.dtype(0), shape: out }];
  },
  evaluate(node, [x, pads, constant, axes]) {
    const rank = x!.shape.length;
    const opset = pads ? 11 : 10;
    const p = padParams(node, opset, rank, intsOfValue(pads), intsOfValue(axes));
    const begin = new Array<number>(rank).fill(0);
    const outShape = [...x!.shape];
    const n = p.axes.length;
    p.axes.forEach((a, k) => {
      begin[a] = p.pads[k] as number;
      outShape[a] += (p.pads[k] as number) + (p.pads[k + n] as number);
    });
    const fill = constant ? numeric(constant)[0] : attrFloat(node, 'value', 0);
    const strides = stridesOf(x!.shape);
    const index = new Float64Array(numel(outShape));
    forEachIndex(outShape, (flat, idx) => {
      let src = 0;
      for (let d = 0; d < rank; d++) {
        let i = idx[d] - begin[d];
        const size = x!.shape[d];
        if (i < 0 || i >= size) {
          if (p.mode === 'constant') {
            src = -1;
            break;
          }
          if (p.mode === 'edge') i = Math.min(Math.max(i, 0), size - 1);
          else if (p.mode === 'reflect') {
            const period = 2 * (size - 1) || 1;
            i = ((i % period) + period) % period;
            if (i >= size) i = period - i;
          } else if (p.mode === 'wrap') i = ((i % size) + size) % size;
          else throw nodeError(node, 'run.unsupported', `mode '${p.mode}' is not supported`);
        }
        src += i * strides[d];
      }
      index[flat] = src;
    });
    return [takeElements(x!, outShape, index, fill)];
  },
};

// ---- ScatterElements, ScatterND, CumSum, Trilu ----

function combine(node: Node, reduction: string): (a: number, b: number) => number {
  switch (reduction) {
    case 'none':
      return (_a, b) => b;
    case 'add':
      return (a, b) => a + b;
    case 'mul':
      return (a, b) => a * b;
    case 'max':
      return Math.max;
    case 'min':
      return Math.min;
    default:
      throw nodeError(node, 'op.bad-attribute', `reduction '${reduction}' is not one of none, add, mul, max, min`);
  }
}

const sameAsInput0 = (ctx: InferContext): OutputType[] => [{ dtype: ctx.dtype(0), shape: ctx.shape(0) }];

/**
 * ScatterElements' operands: data, indices and updates of one rank; indices and updates of one shape, each of its
 * dims at most data's except along the axis (onnxruntime's rule: the non-axis coordinates index data directly).
 */
function checkScatterElements(ctx: InferContext): void {
  const data = ctx.shape(0);
  const indices = ctx.shape(1);
  const updates = ctx.shape(2);
  const axis = normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', 0), data.length);
  combine(ctx.node, attrString(ctx.node, 'reduction', 'none'));
  const indexType = ctx.dtype(1);
  if (indexType !== 'int64' && indexType !== 'int32') ctx.fail(`indices must be int32 or int64, not ${indexType}`);
  if (indices.length !== data.length || updates.length !== data.length)
    ctx.fail(`data, indices and updates must have one rank (they have ${data.length}, ${indices.length}, ${updates.length})`);
  indices.forEach((d, i) => {
    const u = updates[i];
    if (isConcrete(d) && isConcrete(u) ? d !== u : !dimEquals(d, u))
      ctx.fail(`indices [${indices.map(dimToString).join(', ')}] and updates [${updates.map(dimToString).join(', ')}] differ in shape`);
    if (i !== axis && isConcrete(d) && isConcrete(data[i]) && d > data[i])
      ctx.fail(`indices dim ${i} is ${d}, larger than data's ${data[i]} (only the axis ${axis} may differ)`);
  });
}

const scatterElementsOp: OpDefinition = {
  op: 'ScatterElements',
  infer(ctx) {
    checkScatterElements(ctx);
    return sameAsInput0(ctx);
  },
  evaluate(node, [data, indices, updates]) {
    const x = data!;
    const axis = normalizeAxis(node, attrInt(node, 'axis', 0), x.shape.length);
    const f = combine(node, attrString(node, 'reduction', 'none'));
    indices!.shape.forEach((d, i) => {
      if (i !== axis && d > x.shape[i])
        throw nodeError(node, 'run.index', `indices dim ${i} is ${d}, larger than data's ${x.shape[i]} (only the axis may differ)`);
    });
    const out = makeTensor(x.dtype, x.shape, numeric(x));
    const o = numeric(out);
    const idx = numeric(indices!);
    const up = numeric(updates!);
    const strides = stridesOf(x.shape);
    const n = x.shape[axis];
    forEachIndex(indices!.shape, (flat, at) => {
      let i = idx[flat];
      if (i < 0) i += n;
      if (i < 0 || i >= n) throw nodeError(node, 'run.index', `index ${idx[flat]} is out of range for axis size ${n}`);
      let dst = 0;
      for (let d = 0; d < at.length; d++) dst += (d === axis ? i : at[d]) * strides[d];
      o[dst] = castValue(f(o[dst], up[flat]), x.dtype);
    });
    return [out];
  },
};

/**
 * ScatterND's operands: indices int64 [..., k] with k (known) at most data's rank; updates of shape
 * indices.shape[:-1] + data.shape[k:].
 */
function checkScatterND(ctx: InferContext): void {
  const data = ctx.shape(0);
  const indices = ctx.shape(1);
  const updates = ctx.shape(2);
  combine(ctx.node, attrString(ctx.node, 'reduction', 'none'));
  if (ctx.dtype(1) !== 'int64') ctx.fail(`indices must be int64, not ${ctx.dtype(1)}`);
  if (indices.length === 0) ctx.fail('indices must have rank 1 or more (the last axis holds the index tuples)');
  const k = indices[indices.length - 1];
  if (!isConcrete(k)) ctx.fail(`the index tuple length (indices' last dim ${dimToString(k)}) must be known`);
  if ((k as number) > data.length) ctx.fail(`index tuples of ${k} entries for data of rank ${data.length}`);
  const expected = [...indices.slice(0, -1), ...data.slice(k as number)];
  const same =
    expected.length === updates.length &&
    expected.every((d, i) => (isConcrete(d) && isConcrete(updates[i]) ? d === updates[i] : dimEquals(d, updates[i])));
  if (!same)
    ctx.fail(
      `updates [${updates.map(dimToString).join(', ')}] must have shape indices[:-1] + data[${k}:] = [${expected.map(dimToString).join(', ')}]`,
    );
}

const scatterNDOp: OpDefinition = {
  op: 'ScatterND',
  infer(ctx) {
    checkScatterND(ctx);
    return sameAsInput0(ctx);
  },
  evaluate(node, [data, indices, updates]) {
    const x = data!;
    const f = combine(node, attrString(node, 'reduction', 'none'));
    const out = makeTensor(x.dtype, x.shape, numeric(x));
    const o = numeric(out);
    const idx = numeric(indices!);
    const up = numeric(updates!);
    const ish = indices!.shape;
    const last = ish[ish.length - 1];
    const strides = stridesOf(x.shape);
    const inner = numel(x.shape.slice(last));
    const tuples = numel(ish.slice(0, -1));
    // tuples applied in order: with reduction none the last of duplicate tuples wins (as onnxruntime, and the kernels)
    for (let t = 0; t < tuples; t++) {
      let base = 0;
      for (let j = 0; j < last; j++) {
        let i = idx[t * last + j];
        if (i < 0) i += x.shape[j];
        if (i < 0 || i >= x.shape[j])
          throw nodeError(node, 'run.index', `index ${idx[t * last + j]} is out of range for axis ${j} of size ${x.shape[j]}`);
        base += i * strides[j];
      }
      for (let q = 0; q < inner; q++) o[base + q] = castValue(f(o[base + q], up[t * inner + q]), x.dtype);
    }
    return [out];
  },
};

const cumSumOp: OpDefinition = {
  op: 'CumSum',
  infer: sameAsInput0,
  evaluate(node, [x, axisInput]) {
    const shape = x!.shape;
    const axis = normalizeAxis(node, numeric(axisInput!)[0], shape.length);
    const exclusive = attrInt(node, 'exclusive', 0) === 1;
    const reverse = attrInt(node, 'reverse', 0) === 1;
    const src = numeric(x!);
    const out = storageFor(x!.dtype, src.length);
    const n = shape[axis];
    const inner = numel(shape.slice(axis + 1));
    const outer = numel(shape.slice(0, axis));
    for (let o = 0; o < outer; o++)
      for (let q = 0; q < inner; q++) {
        let acc = 0;
        for (let k = 0; k < n; k++) {
          const i = reverse ? n - 1 - k : k;
          const at = (o * n + i) * inner + q;
          if (exclusive) {
            out[at] = acc;
            acc += src[at];
          } else {
            acc += src[at];
            out[at] = acc;
          }
        }
      }
    return [{ dtype: x!.dtype, shape: [...shape], data: out }];
  },
};

const triluOp: OpDefinition = {
  op: 'Trilu',
  infer: sameAsInput0,
  evaluate(node, [x, kInput]) {
    const k = kInput ? numeric(kInput)[0] : 0;
    const upper = attrInt(node, 'upper', 1) === 1;
    const shape = x!.shape;
    const index = new Float64Array(numel(shape));
    forEachIndex(shape, (flat, idx) => {
      const diff = idx[idx.length - 1] - idx[idx.length - 2];
      index[flat] = (upper ? diff >= k : diff <= k) ? flat : -1;
    });
    return [takeElements(x!, [...shape], index, 0)];
  },
};

/**
 * DepthToSpace (DCR: the channel index is (i·b + j)·C' + c; CRD: c·b² + i·b + j) and SpaceToDepth (DCR order):
 * out[n, c, h·b + i, w·b + j] of DepthToSpace reads that channel at [h, w]; SpaceToDepth is its inverse.
 */
function pixelShuffleOp(op: 'DepthToSpace' | 'SpaceToDepth'): OpDefinition {
  const toSpace = op === 'DepthToSpace';
  return {
    op,
    infer(ctx) {
      const shape = ctx.shape(0);
      const b = attrInt(ctx.node, 'blocksize', 0);
      if (b < 1) ctx.fail(`blocksize must be positive, got ${b}`);
      if (shape.length !== 4) ctx.fail(`needs a 4-D [N, C, H, W] input, got rank ${shape.length}`);
      const mode = attrString(ctx.node, 'mode', 'DCR');
      if (mode !== 'DCR' && mode !== 'CRD') ctx.fail(`mode must be DCR or CRD, got '${mode}'`);
      const [n, c, h, w] = shape;
      const divided = (d: Dim, k: number, what: string): Dim => {
        if (isConcrete(d)) {
          if (d % k !== 0) ctx.fail(`${what} ${d} is not divisible by ${k}`);
          return d / k;
        }
        return ctx.symbols.floorDiv(d, k);
      };
      const out = toSpace
        ? [n, divided(c, b * b, 'channels'), dimMul(h, b), dimMul(w, b)]
        : [n, dimMul(c, b * b), divided(h, b, 'height'), divided(w, b, 'width')];
      return [{ dtype: ctx.dtype(0), shape: out }];
    },
    evaluate(node, [x]) {
      const b = attrInt(node, 'blocksize', 0);
      const crd = attrString(node, 'mode', 'DCR') === 'CRD';
      const [n, c, h, w] = x!.shape;
      const outShape = toSpace ? [n, c / (b * b), h * b, w * b] : [n, c * b * b, h / b, w / b];
      const index = new Float64Array(numel(outShape));
      forEachIndex(outShape, (flat, [on, oc, oh, ow]) => {
        let src: number[];
        if (toSpace) {
          const [i, j, cc] = [oh % b, ow % b, outShape[1]];
          src = [on, crd ? oc * b * b + i * b + j : (i * b + j) * cc + oc, Math.floor(oh / b), Math.floor(ow / b)];
        } else {
          const [block, ic] = [Math.floor(oc / c), oc % c];
          src = [on, ic, oh * b + Math.floor(block / b), ow * b + (block % b)];
        }
        index[flat] = ((src[0] * c + src[1]) * h + src[2]) * w + src[3];
      });
      return [takeElements(x!, outShape, index)];
    },
  };
}

registerOps([
  pixelShuffleOp('DepthToSpace'),
  pixelShuffleOp('SpaceToDepth'),
  shapeOp,
  sizeOp,
  reshapeOp,
  flattenOp,
  squeezeOp,
  unsqueezeOp,
  identityOp,
  dropoutOp,
  transposeOp,
  concatOp,
  splitOp,
  sliceOp,
  rollOp,
  gatherOp,
  gatherElementsOp,
  gatherNDOp,
  expandOp,
  tileOp,
  constantOfShapeOp,
  rangeOp,
  constantOp,
  padOp,
  scatterElementsOp,
  scatterNDOp,
  cumSumOp,
  triluOp,
]);
