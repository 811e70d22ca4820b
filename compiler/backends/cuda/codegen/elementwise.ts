/**
 * Elementwise lowering: a chain of ONNX elementwise ops (an `elementwise` node's body, a lone ONNX op, or the part
 * of a GEMM epilogue CUTLASS does not run) becomes ait::kernels::ew functors applied left to right to a running
 * value; a body whose ops read more than the previous result (a DAG: box decoding, masks built from two comparisons,
 * Clip with tensor bounds) becomes an ew::Dag, a straight-line program whose values stay in registers. Inputs are
 * read in full, per inner vector (a bias), per outer row, per leading index (kMiddle), as a scalar, or, for any other
 * broadcast, through strides over the output's axes (kStrided). An input slot that is a Concat never materialized
 * (ops/fused.ts ConcatSlot) is read from its pieces (kConcat): each element from the piece holding its coordinate.
 */
import { isFloatType, isIntegerType } from '../../../ir/dtype';
import { Graph, Node, attrFloat, attrGraph, attrInt } from '../../../ir/graph';
import { elementwiseSlotsOf } from '../../../ops/fused';
import { Dim, dimEquals } from '../../../ir/symbolic';
import { numel, numeric } from '../../../ir/tensor';
import { CodegenContext, Unsupported } from './context';
import { cppFloat, cppInt } from './cpp';

/** Axes of a kStrided read after merging (ew::kMaxBroadcastRank in kernels/elementwise.cuh). */
export const MAX_BROADCAST_RANK = 6;

export interface ElementwiseInput {
  tensor: string;
  broadcast: 'kFull' | 'kInner' | 'kOuter' | 'kScalar' | 'kMiddle' | 'kStrided' | 'kConcat';
  /** For kStrided in the mixed kernel: the input's stride per output axis (0 where it broadcasts), as C++ expressions. */
  strides?: string[];
  /** For kInner / kOuter / kMiddle: a C++ expression of the inner extent. */
  inner: string;
  /** For kMiddle: a C++ expression of the output elements per leading index (middle extent × inner). */
  span?: string;
  /** For kStrided: the output's merged axes and the input's stride along each (C++ expressions; '0' on a broadcast axis). */
  strided?: { shape: string[]; strides: string[] };
  /**
   * For kConcat (inner: the output's elements per coordinate of the axis; span: the axis's extent times inner): the
   * pieces' pointers (C++), their first coordinates and extents along the axis, and their GPU types.
   */
  concat?: { pointers: string[]; starts: number[]; extents: number[]; types: string[] };
}

/** ew::Storage of a concat piece in the mixed kernel, by GPU type (concat slots hold float data only). */
const CONCAT_STORAGE: Record<string, string> = { half: 'ew::Storage::kHalf', float: 'ew::Storage::kFloat' };

/**
 * The kConcat read of a concat slot: the output's shape must be the slot's (the pass only forms slots read in full),
 * and every piece float data (Unsupported otherwise).
 */
export function concatInputOf(
  ctx: CodegenContext,
  node: Node,
  slot: { tensor: string; inputs: string[]; concat?: { axis: number; extents: number[] } },
  slotShape: readonly Dim[],
  outShape: readonly Dim[],
  pointers = true,
): ElementwiseInput {
  const { axis, extents } = slot.concat!;
  if (slotShape.length !== outShape.length || slotShape.some((d, i) => !dimEquals(d, outShape[i])))
    throw new Unsupported(`concat slot '${slot.tensor}' [${slotShape.join(',')}] is broadcast to [${outShape.join(',')}]`);
  const types = slot.inputs.map((t) => ctx.typeOf(t));
  const bad = types.find((t) => !(t in CONCAT_STORAGE));
  if (bad) throw new Unsupported(`concat slot '${slot.tensor}' has a piece of GPU type ${bad} (float pieces only)`);
  const starts: number[] = [];
  extents.reduce((at, e) => (starts.push(at), at + e), 0);
  return {
    tensor: slot.tensor,
    broadcast: 'kConcat',
    inner: ctx.product(outShape.slice(axis + 1), node),
    span: ctx.product(outShape.slice(axis), node),
    // pointers = false: a lowering predicate's check (no memory plan to place the pieces yet)
    concat: { pointers: slot.inputs.map((t) => (pointers ? ctx.pointer(t) : t)), starts, extents: [...extents], types },
  };
}

/**
 * The shape of each input slot of an elementwise node: its tensor's, or for a concat slot its first piece's with the
 * pieces' extents summed on the axis (from the graph's shapes, as the output's: a later inference may rename symbols).
 */
export function slotShapesOf(ctx: CodegenContext, node: Node): Dim[][] {
  return elementwiseSlotsOf(node).map((slot) => {
    const shape = [...ctx.shapeOf(slot.inputs[0])];
    if (slot.concat) shape[slot.concat.axis] = slot.concat.extents.reduce((a, b) => a + b, 0);
    return shape;
  });
}

/**
 * `args.concat = {…}` of a launch whose inputs include kConcat reads (the table of ConcatPieces in
 * kernels/elementwise.cuh), and the number of pieces; none when no input is one.
 */
function concatTable(inputs: readonly ElementwiseInput[], mixed: boolean): { statements: string[]; pieces: number } {
  const first: number[] = [];
  const count: number[] = [];
  const pieces: { pointer: string; start: number; extent: number; type: string }[] = [];
  for (const i of inputs) {
    first.push(i.concat ? pieces.length : 0);
    count.push(i.concat ? i.concat.pointers.length : 0);
    i.concat?.pointers.forEach((pointer, p) =>
      pieces.push({ pointer, start: i.concat!.starts[p], extent: i.concat!.extents[p], type: i.concat!.types[p] }),
    );
  }
  if (!pieces.length) return { statements: [], pieces: 0 };
  const comments = inputs.flatMap((i, k) =>
    i.concat ? [`// input ${k}: a Concat of ${i.concat.pointers.length} pieces, never written (each element read from its piece)`] : [],
  );
  return {
    pieces: pieces.length,
    statements: [
      ...comments,
      `args.concat = {{${first.join(', ')}}, {${count.join(', ')}},`,
      // one line per piece pointer (each statement line is indented by the caller)
      ...pieces.map((p, j) => `               ${j === 0 ? '{' : ' '}${p.pointer}${j === pieces.length - 1 ? '}' : ''},`),
      `               {${pieces.map((p) => p.start).join(', ')}},`,
      `               {${pieces.map((p) => p.extent).join(', ')}}${mixed ? `,\n               {${pieces.map((p) => CONCAT_STORAGE[p.type]).join(', ')}}` : ''}};`,
    ],
  };
}

/** A run of output axes [from, to) along which an input is either read in full or broadcast. */
export interface AxisRun {
  from: number;
  to: number;
  broadcast: boolean;
}

/**
 * The output's axes merged into runs along which the input (right-aligned, padded with ones) is all read or all
 * broadcast; axes of extent 1 join any run. Two neighbouring axes of the same kind are one axis of a strided read.
 */
export function broadcastRuns(padded: readonly Dim[], out: readonly Dim[]): AxisRun[] {
  const runs: AxisRun[] = [];
  out.forEach((d, i) => {
    if (dimEquals(d, 1)) {
      if (runs.length) runs[runs.length - 1].to = i + 1;
      return;
    }
    const broadcast = !dimEquals(padded[i], d);
    const last = runs[runs.length - 1];
    if (last && last.broadcast === broadcast) last.to = i + 1;
    else runs.push({ from: runs.length ? i : 0, to: i + 1, broadcast });
  });
  return runs;
}

/**
 * How an input of shape `shape` is read for an output of shape `out` (right-aligned broadcasting), and for kInner /
 * kOuter / kMiddle the first output axis of the inner extent (kMiddle: and of the span, the extent per leading index); Unsupported for a broadcast the kernel does not take.
 */
export function broadcastKind(
  shape: readonly Dim[],
  out: readonly Dim[],
): { broadcast: ElementwiseInput['broadcast']; innerFrom?: number; spanFrom?: number; runs?: AxisRun[] } {
  const padded: Dim[] = [...Array(Math.max(0, out.length - shape.length)).fill(1), ...shape];
  if (padded.every((d) => dimEquals(d, 1))) return { broadcast: 'kScalar' };
  if (padded.length === out.length && padded.every((d, i) => dimEquals(d, out[i]))) return { broadcast: 'kFull' };
  // leading ones, then equal to the output: a vector along the innermost axes
  const firstReal = padded.findIndex((d) => !dimEquals(d, 1));
  if (padded.slice(firstReal).every((d, i) => dimEquals(d, out[firstReal + i]))) return { broadcast: 'kInner', innerFrom: firstReal };
  // equal to the output, then trailing ones: one value per outer row
  const lastReal = padded.length - 1 - [...padded].reverse().findIndex((d) => !dimEquals(d, 1));
  if (padded.slice(0, lastReal + 1).every((d, i) => dimEquals(d, out[i]))) return { broadcast: 'kOuter', innerFrom: lastReal + 1 };
  // equal to the output on leading and trailing axes, ones between: one block per leading index ([N,1,1,C] of NHWC)
  const firstOne = padded.findIndex((d, i) => !dimEquals(d, out[i]));
  const lastOne = padded.length - 1 - [...padded].reverse().findIndex((d, i) => !dimEquals(d, out[out.length - 1 - i]));
  if (
    padded.length === out.length &&
    firstOne > 0 &&
    lastOne < padded.length - 1 &&
    padded.slice(firstOne, lastOne + 1).every((d) => dimEquals(d, 1))
  )
    return { broadcast: 'kMiddle', innerFrom: lastOne + 1, spanFrom: firstOne };
  if (padded.length !== out.length || padded.some((d, i) => !dimEquals(d, 1) && !dimEquals(d, out[i])))
    throw new Unsupported(`[${shape.join(',')}] does not broadcast to [${out.join(',')}]`);
  const runs = broadcastRuns(padded, out);
  if (runs.length > MAX_BROADCAST_RANK)
    throw new Unsupported(
      `broadcast of [${shape.join(',')}] to [${out.join(',')}] alternates over ${runs.length} axis runs (the kernel takes ${MAX_BROADCAST_RANK})`,
    );
  return { broadcast: 'kStrided', runs };
}

/** The largest output rank of a kStrided broadcast in the mixed kernel (kMaxRank of kernels/elementwise.cuh). */
export const MAX_STRIDED_RANK = 6;

/**
 * How an input of shape `shape` is read for an output of shape `out` (right-aligned broadcasting). A broadcast none
 * of the fixed kinds takes is read with strides: over merged axis runs (`strided`, the fp16 kernel), or with
 * `mixed`, per output axis (`strides`, the mixed-type kernel's form).
 */
export function broadcastOf(
  ctx: CodegenContext,
  node: Node,
  shape: readonly Dim[],
  out: readonly Dim[],
  mixed = false,
): Omit<ElementwiseInput, 'tensor'> {
  if (mixed && !fixedBroadcast(shape, out)) {
    if (out.length > MAX_STRIDED_RANK)
      throw new Unsupported(`broadcast to rank ${out.length} exceeds the kernel's rank ${MAX_STRIDED_RANK}`);
    const padded: Dim[] = [...Array(Math.max(0, out.length - shape.length)).fill(1), ...shape];
    const strides = padded.map((d, i) => (dimEquals(d, 1) && !dimEquals(out[i], 1) ? '0' : ctx.product(padded.slice(i + 1), node)));
    return { broadcast: 'kStrided', inner: '1', strides };
  }
  const { broadcast, innerFrom, spanFrom, runs } = broadcastKind(shape, out);
  if (runs) {
    // stride of a run read in full: the product of the input's extents after it (all read runs to its right)
    const strides = runs.map((r, k) =>
      r.broadcast
        ? '0'
        : ctx.product(
            runs.slice(k + 1).flatMap((later) => (later.broadcast ? [] : out.slice(later.from, later.to))),
            node,
          ),
    );
    return { broadcast, inner: '1', strided: { shape: runs.map((r) => ctx.product(out.slice(r.from, r.to), node)), strides } };
  }
  const inner = innerFrom === undefined ? '1' : ctx.product(out.slice(innerFrom), node);
  return spanFrom === undefined ? { broadcast, inner } : { broadcast, inner, span: ctx.product(out.slice(spanFrom), node) };
}

/** Whether one of the fixed broadcast kinds (not kStrided) reads `shape` for `out`. */
export function fixedBroadcast(shape: readonly Dim[], out: readonly Dim[]): boolean {
  try {
    return broadcastKind(shape, out).runs === undefined;
  } catch (e) {
    if (e instanceof Unsupported) return false;
    throw e;
  }
}

const BINARY: Record<string, { running: string; operand: string } | undefined> = {
  // running OP input, and input OP running (functor names of kernels/elementwise.cuh)
  Add: { running: 'AddInput', operand: 'AddInput' },
  Mul: { running: 'MulInput', operand: 'MulInput' },
  Max: { running: 'MaxInput', operand: 'MaxInput' },
  Min: { running: 'MinInput', operand: 'MinInput' },
  Sub: { running: 'SubInput', operand: 'InputSub' },
  Div: { running: 'DivInput', operand: '' },
};

const UNARY: Record<string, string> = {
  Relu: 'ew::Relu{}',
  Sigmoid: 'ew::Sigmoid{}',
  Tanh: 'ew::Tanh{}',
  Exp: 'ew::Exp{}',
  Sqrt: 'ew::Sqrt{}',
  Reciprocal: 'ew::Reciprocal{}',
  Neg: 'ew::Neg{}',
  Abs: 'ew::Abs{}',
  Erf: 'ew::Erf{}',
  HardSwish: 'ew::HardSwish{}',
  Tan: 'ew::Tan{}',
  Asin: 'ew::Asin{}',
  Acos: 'ew::Acos{}',
  Atan: 'ew::Atan{}',
  Sinh: 'ew::Sinh{}',
  Cosh: 'ew::Cosh{}',
  Asinh: 'ew::Asinh{}',
  Acosh: 'ew::Acosh{}',
  Atanh: 'ew::Atanh{}',
  Softsign: 'ew::Softsign{}',
};

/** Ops of the general forms (ew::Binary over operands that are the running value, an input or a constant). */
const GENERAL_BINARY: Record<string, string> = {
  Add: 'Add',
  Sub: 'Sub',
  Mul: 'Mul',
  Div: 'Div',
  Max: 'Max',
  Min: 'Min',
  Equal: 'Equal',
  Less: 'Less',
  LessOrEqual: 'LessOrEqual',
  Greater: 'Greater',
  GreaterOrEqual: 'GreaterOrEqual',
  And: 'And',
  Or: 'Or',
  Xor: 'Xor',
};

/** Unary ops of integer chains (the rest of UNARY is float math). */
const INTEGER_UNARY = new Set(['Neg', 'Abs']);

/** Ops outside UNARY whose functors are float math only. */
const FLOAT_ONLY = new Set([
  'Floor',
  'Ceil',
  'Round',
  'Log',
  'Sin',
  'Cos',
  'Softplus',
  'Mish',
  'Shrink',
  'Elu',
  'Selu',
  'Gelu',
  'LeakyRelu',
  'HardSigmoid',
  'Pow',
  'Celu',
  'ThresholdedRelu',
]);

/** ONNX ops an elementwise chain has a functor for (chainOf); other elementwise ops have no CUDA lowering. */
export const ELEMENTWISE_FUNCTOR_OPS: ReadonlySet<string> = new Set([
  ...Object.keys(UNARY),
  ...Object.keys(BINARY),
  ...Object.keys(GENERAL_BINARY),
  'Gelu',
  'LeakyRelu',
  'HardSigmoid',
  'Clip',
  'Pow',
  'Mod',
  'Where',
  'Not',
  'IsNaN',
  'IsInf',
  'Cast',
  'Floor',
  'Ceil',
  'Round',
  'Log',
  'Sin',
  'Cos',
  'Softplus',
  'Mish',
  'Shrink',
  'Elu',
  'Selu',
  'Sign',
  'PRelu',
  'Celu',
  'ThresholdedRelu',
]);

/** The math type of a chain: 'float' when any tensor it reads or writes is a float, else 'int' (int64 math). */
export type ComputeType = 'float' | 'int';

export function computeTypeOf(graph: Graph, tensors: readonly string[]): ComputeType {
  return tensors.some((t) => {
    const dtype = t ? graph.lookupTensor(t)?.dtype : undefined;
    return dtype !== undefined && isFloatType(dtype);
  })
    ? 'float'
    : 'int';
}

/** The C++ value type of a compute type. */
export const COMPUTE_CPP: Record<ComputeType, string> = { float: 'float', int: 'int64_t' };

/** Functors of a GEMM/conv epilogue step that has no operand. */
export function activationFunctor(step: string): string {
  const [name, ...params] = step.split(':');
  switch (name) {
    case 'relu':
      return 'ew::Relu{}';
    case 'gelu':
      return 'ew::Gelu{}';
    case 'gelu_tanh':
      return 'ew::GeluTanh{}';
    case 'sigmoid':
      return 'ew::Sigmoid{}';
    case 'silu':
      return 'ew::Silu{}';
    case 'tanh':
      return 'ew::Tanh{}';
    case 'hardswish':
      return 'ew::HardSwish{}';
    case 'hardsigmoid':
      return `ew::HardSigmoid{${cppFloat(Number(params[0] ?? 0.2))}, ${cppFloat(Number(params[1] ?? 0.5))}}`;
    case 'leaky_relu':
      return `ew::LeakyRelu{${cppFloat(Number(params[0] ?? 0.01))}}`;
    case 'clip':
      return `ew::Clip{${cppFloat(Number(params[0] ?? -Infinity))}, ${cppFloat(Number(params[1] ?? Infinity))}}`;
    default:
      throw new Unsupported(`epilogue step '${step}' has no elementwise functor`);
  }
}

/**
 * A scalar compile-time constant read by a body node, or undefined. A fused body declares the tensors it reads from
 * outside as inputs without values (they are the fused node's inputs), so those are looked up in the enclosing graph.
 */
function scalarConstant(graph: Graph, name: string): number | undefined {
  const value = graph.lookupTensor(name)?.value ?? graph.parent?.lookupTensor(name)?.value;
  return value && numel(value.shape) === 1 ? numeric(value)[0] : undefined;
}

/** One step of a body: the functors computing one ONNX node's value, and the node. */
interface BodyStep {
  node: Node;
  functors: string[];
}

/**
 * The steps of a graph of elementwise ops whose inputs are `inputs` (in order), and whether they form a chain. Slot k
 * < inputs.length is input k; step j's value is slot inputs.length + j (ew::Dag in kernels/elementwise.cuh). Each
 * step starts from the previous step's value (the running value) when its node reads it, else from a slot it reads
 * (`ew::Input<s>{}` first); its other operands are slots (`ew::In<s>`) or scalar constants. The body is a chain when
 * every step after the first reads the previous result and no step reads an earlier step's value.
 */
function bodyStepsOf(body: Graph, inputs: readonly string[], compute: ComputeType): { steps: BodyStep[]; chain: boolean } {
  const integer = compute === 'int';
  const slots = new Map<string, number>();
  inputs.forEach((t, k) => {
    if (!slots.has(t)) slots.set(t, k);
  });
  const steps: BodyStep[] = [];
  let chain = true;
  let previous: string | undefined;
  for (const n of body.nodes) {
    const functors: string[] = [];
    const operands = n.inputs.filter((i) => i !== '');
    let running = previous;
    if (running === undefined || !operands.includes(running)) {
      // a step that does not read the previous result starts from a slot it reads
      const first = operands.find((t) => slots.has(t));
      if (first === undefined) throw new Unsupported(`elementwise body has ${n.op} '${n.name}' on constants only`);
      if (running !== undefined) chain = false;
      functors.push(`ew::Input<${slots.get(first)!}>{}`);
      running = first;
    }
    /** The slot of a tensor other than the running value (an input or an earlier step's value), or -1. */
    const slotOf = (t: string): number => {
      const s = slots.get(t);
      if (s === undefined) return -1;
      if (s >= inputs.length) chain = false;
      return s;
    };
    functors.push(...nodeFunctors(body, n, running, slotOf, integer));
    slots.set(n.outputs[0], inputs.length + steps.length);
    steps.push({ node: n, functors });
    previous = n.outputs[0];
  }
  return { steps, chain };
}

/** The functors of one node applied to the running value `running` (slotOf: another operand's slot, or -1). */
function nodeFunctors(body: Graph, n: Node, running: string, slotOf: (t: string) => number, integer: boolean): string[] {
  const operands = n.inputs.filter((i) => i !== '');
  const other = operands.filter((t) => t !== running);
  const runningFirst = operands[0] === running;
  const outType = body.lookupTensor(n.outputs[0])?.dtype ?? 'float32';
  /** An operand of a general form: [type, brace initializer]. */
  const operand = (t: string): [string, string] => {
    if (t === running) return ['ew::Running', '{}'];
    const k = slotOf(t);
    if (k >= 0) return [`ew::In<${k}>`, '{}'];
    const constant = scalarConstant(body, t);
    if (constant === undefined) throw new Unsupported(`${n.op} '${n.name}' reads '${t}', a non-scalar constant`);
    return constantOperand(constant, integer);
  };
  const general = (form: string, operandNames: readonly string[], op = n.op) => {
    const parts = operandNames.map(operand);
    return `${form}<${[...(form === 'ew::Select' ? [] : [`ew::op::${GENERAL_BINARY[op] ?? op}`]), ...parts.map((p) => p[0])].join(', ')}>{${parts.map((p) => p[1]).join(', ')}}`;
  };
  if (integer && isIntegerType(outType) && ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min'].includes(n.op)) {
    if (n.inputs.length !== 2) throw new Unsupported(`${n.op} '${n.name}' with ${n.inputs.length} operands`);
    return [general('ew::Binary', n.inputs)];
  }
  if (!integer && isIntegerType(outType) && ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Mod', 'Neg', 'Abs', 'Sign', 'Clip'].includes(n.op))
    throw new Unsupported(`integer ${n.op} '${n.name}' inside a chain computed in float`);
  if (integer && !INTEGER_UNARY.has(n.op) && (n.op in UNARY || FLOAT_ONLY.has(n.op))) throw new Unsupported(`${n.op} on integer data`);
  switch (n.op) {
    case 'Mod': {
      const fmod = n.attrs.fmod?.value === 1;
      if (!integer && !fmod) throw new Unsupported('float Mod needs fmod=1');
      return [general('ew::Binary', n.inputs, fmod ? 'FMod' : 'Mod')];
    }
    case 'Where':
      return [general('ew::Select', n.inputs)];
    case 'Not':
      return ['ew::Not{}'];
    case 'IsNaN':
      return ['ew::IsNaN{}'];
    case 'IsInf':
      return [`ew::IsInf{${attrInt(n, 'detect_positive', 1) ? 'true' : 'false'}, ${attrInt(n, 'detect_negative', 1) ? 'true' : 'false'}}`];
    case 'Floor':
    case 'Ceil':
    case 'Round':
    case 'Log':
    case 'Sin':
    case 'Cos':
    case 'Softplus':
    case 'Mish':
      return [`ew::${n.op}{}`];
    case 'Shrink':
      return [`ew::Shrink{${cppFloat(attrFloat(n, 'lambd', 0.5))}, ${cppFloat(attrFloat(n, 'bias', 0))}}`];
    case 'Sign':
      return ['ew::Sign{}'];
    case 'Elu':
      return [`ew::Elu{${cppFloat(attrFloat(n, 'alpha', 1))}}`];
    case 'Celu':
      return [`ew::Celu{${cppFloat(attrFloat(n, 'alpha', 1))}}`];
    case 'ThresholdedRelu':
      return [`ew::ThresholdedRelu{${cppFloat(attrFloat(n, 'alpha', 1))}}`];
    case 'Selu':
      return [
        `ew::Selu{${cppFloat(attrFloat(n, 'alpha', 1.67326319217681884765625))}, ${cppFloat(attrFloat(n, 'gamma', 1.05070102214813232421875))}}`,
      ];
    case 'PRelu':
      return [general('ew::Binary', n.inputs)];
    case 'Cast':
      // float storage is fp16 whatever the float type: a cast between floats moves nothing
      if (outType === 'bool') return ['ew::ToBool{}'];
      if (isIntegerType(outType) && !integer) return ['ew::Trunc{}'];
      if (outType === 'int32' && integer) return ['ew::ToInt32{}'];
      return [];
    case 'Gelu':
      return [n.attrs.approximate?.value === 'tanh' ? 'ew::GeluTanh{}' : 'ew::Gelu{}'];
    case 'LeakyRelu':
      return [`ew::LeakyRelu{${cppFloat(attrFloat(n, 'alpha', 0.01))}}`];
    case 'HardSigmoid':
      return [`ew::HardSigmoid{${cppFloat(attrFloat(n, 'alpha', 0.2))}, ${cppFloat(attrFloat(n, 'beta', 0.5))}}`];
    case 'Clip':
      return [clipFunctor(body, n, operand, integer)];
    case 'Pow': {
      const exponent = other.length === 1 && runningFirst ? scalarConstant(body, other[0]) : undefined;
      if (exponent !== undefined) return [`ew::PowConst{${cppFloat(exponent)}}`];
      if (operands.length !== 2) throw new Unsupported(`Pow '${n.name}' with ${operands.length} operands`);
      return [general('ew::Binary', operands)];
    }
  }
  if (n.op in GENERAL_BINARY && !(n.op in BINARY)) return [general('ew::Binary', n.inputs)];
  if (n.op in UNARY) return [UNARY[n.op]];
  const spec = BINARY[n.op];
  if (!spec) throw new Unsupported(`${n.op} has no elementwise functor yet`);
  if (other.length !== 1) {
    // x OP x
    if (operands.length === 2 && operands[0] === operands[1] && n.op === 'Mul') return ['ew::PowConst{2.0f}'];
    throw new Unsupported(`${n.op} '${n.name}' has no second operand`);
  }
  const k = slotOf(other[0]);
  if (k >= 0) {
    if (runningFirst) return [`ew::${spec.running}<${k}>{}`];
    if (n.op === 'Div') return ['ew::Reciprocal{}', `ew::MulInput<${k}>{}`];
    return [`ew::${spec.operand}<${k}>{}`];
  }
  const constant = scalarConstant(body, other[0]);
  if (constant === undefined) throw new Unsupported(`${n.op} '${n.name}' reads '${other[0]}', a non-scalar constant`);
  switch (n.op) {
    case 'Add':
      return [`ew::AddConst{${cppFloat(constant)}}`];
    case 'Mul':
      return [`ew::MulConst{${cppFloat(constant)}}`];
    case 'Sub':
      return runningFirst ? [`ew::AddConst{${cppFloat(-constant)}}`] : ['ew::Neg{}', `ew::AddConst{${cppFloat(constant)}}`];
    case 'Div':
      return runningFirst ? [`ew::MulConst{${cppFloat(1 / constant)}}`] : ['ew::Reciprocal{}', `ew::MulConst{${cppFloat(constant)}}`];
    case 'Max':
      return [`ew::Clip{${cppFloat(constant)}, INFINITY}`];
    default:
      return [`ew::Clip{-INFINITY, ${cppFloat(constant)}}`];
  }
}

/** A constant operand of a general form: [type, brace initializer]. */
function constantOperand(value: number, integer: boolean): [string, string] {
  return integer ? ['ew::Const<int64_t>', `{${cppInt(value)}}`] : ['ew::Const<float>', `{${cppFloat(value)}}`];
}

/**
 * Clip(x, min, max): bounds from the inputs (opset 11+; absent is unbounded) or the attributes (opset 6). Constant
 * float bounds are ew::Clip; otherwise Min(Max(x, min), max) over the bounds' slots (tensor bounds, any broadcast
 * the kernel reads) or integer constants.
 */
function clipFunctor(body: Graph, n: Node, operand: (t: string) => [string, string], integer: boolean): string {
  const bound = (index: number, attr: 'min' | 'max'): number | string | undefined => {
    const t = n.inputs[index];
    if (t) return scalarConstant(body, t) ?? t;
    return n.attrs[attr] ? attrFloat(n, attr) : undefined;
  };
  const low = bound(1, 'min');
  const high = bound(2, 'max');
  if (!integer && typeof low !== 'string' && typeof high !== 'string')
    return `ew::Clip{${cppFloat(low ?? -Infinity)}, ${cppFloat(high ?? Infinity)}}`;
  let expr: [string, string] = ['ew::Running', '{}'];
  for (const [op, value] of [
    ['Max', low],
    ['Min', high],
  ] as const) {
    if (value === undefined) continue;
    const b = typeof value === 'string' ? operand(value) : constantOperand(value, integer);
    expr = [`ew::Binary<ew::op::${op}, ${expr[0]}, ${b[0]}>`, `{${expr[1]}, ${b[1]}}`];
  }
  return `${expr[0]}${expr[1]}`;
}

/**
 * The functors of a graph of elementwise ops whose inputs are `inputs` (in order, Input<k> reads inputs[k]): the
 * chain when every node reads the previous node's output and inputs or scalar constants besides, else one
 * `ew::make_dag<inputs>(step, …)` (a straight-line program, values kept in slots; see bodyStepsOf).
 */
export function chainOf(body: Graph, inputs: readonly string[], compute: ComputeType = 'float'): string[] {
  const { steps, chain } = bodyStepsOf(body, inputs, compute);
  if (chain) return steps.flatMap((s) => s.functors);
  const lines = steps.map((s, j) => {
    let functors = s.functors;
    // a step that loads slot k and applies one general form reads the slot in place (ew::Running and ew::In<k> are
    // both empty operands initialized by {}): Binary<op::Div, In<0>, In<1>> rather than a chain of two
    const load = functors.length === 2 ? /^ew::Input<(\d+)>\{\}$/.exec(functors[0]) : null;
    if (load && /^ew::(Binary|Select)</.test(functors[1])) functors = [functors[1].replaceAll('ew::Running', `ew::In<${load[1]}>`)];
    const functor = functors.length === 1 ? functors[0] : `ew::make_chain(${functors.join(', ')})`;
    // the comment names our slot and the op type (an op of ELEMENTWISE_FUNCTOR_OPS), never a name from the model
    return `        /* ${inputs.length + j}: ${s.node.op} */ ${functor}`;
  });
  return [`ew::make_dag<${inputs.length}>(\n${lines.join(',\n')})`];
}

/** Whether chainOf gave a DAG (one `ew::make_dag` functor) rather than a chain. */
export function isDag(chain: readonly string[]): boolean {
  return chain.length === 1 && chain[0].startsWith('ew::make_dag<');
}

/** The C++ functor of a chain (chainOf): `ew::make_chain(…)`, or the DAG itself. */
export function functorOf(chain: readonly string[]): string {
  return isDag(chain) ? chain[0] : `ew::make_chain(${chain.join(', ')})`;
}

/** The graph of a fused `elementwise` node, or a one-node graph around a lone ONNX elementwise op. */
function bodyOf(node: Node, graph: Graph): Graph {
  if (node.op === 'elementwise') return attrGraph(node, 'body');
  const body = new Graph(`${node.name}/body`, { parent: graph });
  body.nodes = [node];
  return body;
}

/** The math type of a fused `elementwise` node or a lone ONNX elementwise op (every tensor it reads or writes). */
export function computeTypeOfNode(node: Node, graph: Graph): ComputeType {
  const body = bodyOf(node, graph);
  return computeTypeOf(body, [...node.inputs, ...body.nodes.flatMap((n) => [...n.inputs, ...n.outputs])]);
}

/** The chain of a fused `elementwise` node or a lone ONNX elementwise op (Input<k> reads input slot k). */
export function chainOfNode(node: Node, graph: Graph): string[] {
  return chainOf(
    bodyOf(node, graph),
    elementwiseSlotsOf(node).map((s) => s.tensor),
    computeTypeOfNode(node, graph),
  );
}

/**
 * Statements launching the mixed-type elementwise kernel: inputs of their own storage types (`types`, C++), math in
 * `compute`, an output of `outputType`; any broadcast (kStrided reads over `outShape`, C++ dims).
 */
export function mixedElementwiseStatements(
  inputs: readonly ElementwiseInput[],
  inputPointers: readonly string[],
  types: readonly string[],
  outputPointer: string,
  outputType: string,
  count: string,
  outShape: readonly string[],
  chain: readonly string[],
  compute: ComputeType,
): string[] {
  const n = inputs.length;
  const strided = inputs.some((i) => i.broadcast === 'kStrided');
  const table = concatTable(inputs, true);
  return [
    'namespace ew = ait::kernels::ew;',
    `ew::MixedArgs<${outputType}, ${n}${table.pieces ? `, ${table.pieces}` : ''}> args{{${inputPointers.join(', ')}},`,
    `                                   {${inputs.map((i) => `ew::Broadcast::${i.broadcast}`).join(', ')}},`,
    `                                   {${inputs.map((i) => i.inner).join(', ')}},`,
    `                                   {${inputs.map((i) => i.span ?? '0').join(', ')}},`,
    `                                   ${outputPointer},`,
    `                                   ${count},`,
    strided
      ? `                                   ${outShape.length}, {${outShape.join(', ')}}, {${inputs.map((i) => `{${(i.strides ?? []).join(', ')}}`).join(', ')}}};`
      : '                                   0, {}, {}};',
    ...table.statements,
    // parenthesized: the template argument list's commas would split the macro's argument
    `AIT_RETURN_IF_CUDA_ERROR((ait::kernels::launch_mixed_elementwise<${[COMPUTE_CPP[compute], ...types].join(', ')}>(args, ${functorOf(chain)}, c.stream)));`,
  ];
}

/** Statements launching the fused elementwise kernel (inside a launch function, `c` the LaunchContext). */
export function elementwiseStatements(
  inputs: readonly ElementwiseInput[],
  inputPointers: readonly string[],
  outputPointer: string,
  count: string,
  chain: readonly string[],
): string[] {
  const n = inputs.length;
  const table = concatTable(inputs, false);
  return [
    'namespace ew = ait::kernels::ew;',
    `ew::ElementwiseArgs<__half, ${n}${table.pieces ? `, ${table.pieces}` : ''}> args{{${inputPointers.join(', ')}},`,
    `                                   {${inputs.map((i) => `ew::Broadcast::${i.broadcast}`).join(', ')}},`,
    `                                   {${inputs.map((i) => i.inner).join(', ')}},`,
    `                                   ${outputPointer},`,
    `                                   ${count}${inputs.some((i) => i.span) ? `,\n                                   {${inputs.map((i) => i.span ?? '0').join(', ')}}` : ''}};`,
    ...inputs.flatMap((i, k) =>
      i.strided
        ? [`args.strided[${k}] = {${i.strided.shape.length}, {${i.strided.shape.join(', ')}}, {${i.strided.strides.join(', ')}}};`]
        : [],
    ),
    ...table.statements,
    `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_fused_elementwise(args, ${functorOf(chain)}, c.stream));`,
  ];
}
