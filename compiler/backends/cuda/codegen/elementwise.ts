/**
 * Elementwise lowering: a chain of ONNX elementwise ops (an `elementwise` node's body, a lone ONNX op, or the part
 * of a GEMM epilogue CUTLASS does not run) becomes ait::kernels::ew functors applied left to right to a running
 * value, over inputs that are read in full, per inner vector (a bias), per outer row, per leading index (kMiddle), as
 * a scalar, or, for any other broadcast, through strides over the output's axes (kStrided).
 */
import { isFloatType, isIntegerType } from '../../../ir/dtype';
import { Graph, Node, attrFloat, attrGraph, attrInt } from '../../../ir/graph';
import { Dim, dimEquals } from '../../../ir/symbolic';
import { numel, numeric } from '../../../ir/tensor';
import { CodegenContext, Unsupported } from './context';
import { cppFloat, cppInt } from './cpp';

/** Axes of a kStrided read after merging (ew::kMaxBroadcastRank in kernels/elementwise.cuh). */
export const MAX_BROADCAST_RANK = 6;

export interface ElementwiseInput {
  tensor: string;
  broadcast: 'kFull' | 'kInner' | 'kOuter' | 'kScalar' | 'kMiddle' | 'kStrided';
  /** For kStrided in the mixed kernel: the input's stride per output axis (0 where it broadcasts), as C++ expressions. */
  strides?: string[];
  /** For kInner / kOuter / kMiddle: a C++ expression of the inner extent. */
  inner: string;
  /** For kMiddle: a C++ expression of the output elements per leading index (middle extent × inner). */
  span?: string;
  /** For kStrided: the output's merged axes and the input's stride along each (C++ expressions; '0' on a broadcast axis). */
  strided?: { shape: string[]; strides: string[] };
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

/** A scalar compile-time constant read by a body node, or undefined. */
function scalarConstant(graph: Graph, name: string): number | undefined {
  const value = graph.lookupTensor(name)?.value;
  return value && numel(value.shape) === 1 ? numeric(value)[0] : undefined;
}

/**
 * The functor chain of a graph of elementwise ops whose inputs are `inputs` (in order, Input<k> reads inputs[k]).
 * The graph must be a chain: every node reads the previous node's output and at most one other input or scalar.
 */
export function chainOf(body: Graph, inputs: readonly string[], compute: ComputeType = 'float'): string[] {
  const chain: string[] = [];
  let running: string | undefined;
  const inputIndex = (t: string) => inputs.indexOf(t);
  const integer = compute === 'int';
  /** An operand of a general form: [type, brace initializer]. */
  const operand = (n: Node, t: string): [string, string] => {
    if (t === running) return ['ew::Running', '{}'];
    const k = inputIndex(t);
    if (k >= 0) return [`ew::In<${k}>`, '{}'];
    const constant = scalarConstant(body, t);
    if (constant === undefined) throw new Unsupported(`${n.op} '${n.name}' reads '${t}', a non-scalar constant`);
    return integer ? ['ew::Const<int64_t>', `{${cppInt(constant)}}`] : ['ew::Const<float>', `{${cppFloat(constant)}}`];
  };
  const general = (n: Node, form: string, operands: readonly string[]) => {
    const parts = operands.map((t) => operand(n, t));
    return `${form}<${[...(form === 'ew::Select' ? [] : [`ew::op::${GENERAL_BINARY[n.op] ?? n.op}`]), ...parts.map((p) => p[0])].join(', ')}>{${parts.map((p) => p[1]).join(', ')}}`;
  };
  for (const n of body.nodes) {
    const operands = n.inputs.filter((i) => i !== '');
    const other = operands.filter((t) => t !== running);
    if (running !== undefined && operands.length > 0 && !operands.includes(running))
      throw new Unsupported(`elementwise body is not a chain (${n.op} '${n.name}' does not read the previous result)`);
    if (running === undefined) {
      // start the chain from the first input operand
      const first = operands.find((t) => inputIndex(t) >= 0);
      if (first === undefined) throw new Unsupported(`elementwise body starts with ${n.op} on constants`);
      chain.push(`ew::Input<${inputIndex(first)}>{}`);
      running = first;
      other.splice(other.indexOf(first), 1);
    }
    const runningFirst = operands[0] === running;
    const outType = body.lookupTensor(n.outputs[0])?.dtype ?? 'float32';
    if (integer && isIntegerType(outType) && ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min'].includes(n.op)) {
      if (n.inputs.length !== 2) throw new Unsupported(`${n.op} '${n.name}' with ${n.inputs.length} operands`);
      chain.push(general(n, 'ew::Binary', n.inputs));
    } else if (!integer && isIntegerType(outType) && ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Mod', 'Neg', 'Abs'].includes(n.op))
      throw new Unsupported(`integer ${n.op} '${n.name}' inside a chain computed in float`);
    else if (integer && !INTEGER_UNARY.has(n.op) && n.op in UNARY) throw new Unsupported(`${n.op} on integer data`);
    else if (n.op === 'Mod') {
      const fmod = n.attrs.fmod?.value === 1;
      if (!integer && !fmod) throw new Unsupported('float Mod needs fmod=1');
      chain.push(general({ ...n, op: fmod ? 'FMod' : 'Mod' }, 'ew::Binary', n.inputs));
    } else if (n.op in GENERAL_BINARY && !(n.op in BINARY)) chain.push(general(n, 'ew::Binary', n.inputs));
    else if (n.op === 'Where') chain.push(general(n, 'ew::Select', n.inputs));
    else if (n.op === 'Not') chain.push('ew::Not{}');
    else if (n.op === 'IsNaN') chain.push('ew::IsNaN{}');
    else if (n.op === 'IsInf')
      chain.push(
        `ew::IsInf{${attrInt(n, 'detect_positive', 1) ? 'true' : 'false'}, ${attrInt(n, 'detect_negative', 1) ? 'true' : 'false'}}`,
      );
    else if (n.op === 'Floor' || n.op === 'Ceil') {
      if (integer) throw new Unsupported(`${n.op} on integer data`);
      chain.push(`ew::${n.op}{}`);
    } else if (n.op === 'Cast') {
      // float storage is fp16 whatever the float type: a cast between floats moves nothing
      if (outType === 'bool') chain.push('ew::ToBool{}');
      else if (isIntegerType(outType) && !integer) chain.push('ew::Trunc{}');
      else if (outType === 'int32' && integer) chain.push('ew::ToInt32{}');
    } else if (n.op in UNARY) chain.push(UNARY[n.op]);
    else if (n.op === 'Gelu') chain.push(n.attrs.approximate?.value === 'tanh' ? 'ew::GeluTanh{}' : 'ew::Gelu{}');
    else if (n.op === 'LeakyRelu') chain.push(`ew::LeakyRelu{${cppFloat(attrFloat(n, 'alpha', 0.01))}}`);
    else if (n.op === 'HardSigmoid')
      chain.push(`ew::HardSigmoid{${cppFloat(attrFloat(n, 'alpha', 0.2))}, ${cppFloat(attrFloat(n, 'beta', 0.5))}}`);
    else if (n.op === 'Clip') {
      const low = n.inputs[1] ? scalarConstant(body, n.inputs[1]) : -Infinity;
      const high = n.inputs[2] ? scalarConstant(body, n.inputs[2]) : Infinity;
      if (low === undefined || high === undefined) throw new Unsupported('Clip with non-constant bounds');
      chain.push(`ew::Clip{${cppFloat(low)}, ${cppFloat(high)}}`);
    } else if (n.op === 'Pow') {
      const exponent = other.length === 1 ? scalarConstant(body, other[0]) : undefined;
      if (exponent === undefined || !runningFirst) throw new Unsupported('Pow with a non-constant exponent');
      chain.push(`ew::PowConst{${cppFloat(exponent)}}`);
    } else if (BINARY[n.op]) {
      const spec = BINARY[n.op]!;
      if (other.length !== 1) {
        // x OP x
        if (operands.length === 2 && operands[0] === operands[1] && n.op === 'Mul') chain.push('ew::PowConst{2.0f}');
        else throw new Unsupported(`${n.op} '${n.name}' has no second operand`);
      } else {
        const k = inputIndex(other[0]);
        const constant = k < 0 ? scalarConstant(body, other[0]) : undefined;
        if (k >= 0) {
          if (runningFirst) chain.push(`ew::${spec.running}<${k}>{}`);
          else if (n.op === 'Div') chain.push('ew::Reciprocal{}', `ew::MulInput<${k}>{}`);
          else chain.push(`ew::${spec.operand}<${k}>{}`);
        } else if (constant !== undefined) {
          if (n.op === 'Add') chain.push(`ew::AddConst{${cppFloat(constant)}}`);
          else if (n.op === 'Mul') chain.push(`ew::MulConst{${cppFloat(constant)}}`);
          else if (n.op === 'Sub')
            chain.push(...(runningFirst ? [`ew::AddConst{${cppFloat(-constant)}}`] : ['ew::Neg{}', `ew::AddConst{${cppFloat(constant)}}`]));
          else if (n.op === 'Div')
            chain.push(
              ...(runningFirst ? [`ew::MulConst{${cppFloat(1 / constant)}}`] : ['ew::Reciprocal{}', `ew::MulConst{${cppFloat(constant)}}`]),
            );
          else if (n.op === 'Max') chain.push(`ew::Clip{${cppFloat(constant)}, INFINITY}`);
          else chain.push(`ew::Clip{-INFINITY, ${cppFloat(constant)}}`);
        } else throw new Unsupported(`${n.op} '${n.name}' reads '${other[0]}', a non-scalar constant`);
      }
    } else throw new Unsupported(`${n.op} has no elementwise functor yet`);
    running = n.outputs[0];
  }
  return chain;
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

/** The chain of a fused `elementwise` node or a lone ONNX elementwise op. */
export function chainOfNode(node: Node, graph: Graph): string[] {
  return chainOf(bodyOf(node, graph), node.inputs, computeTypeOfNode(node, graph));
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
  return [
    'namespace ew = ait::kernels::ew;',
    `ew::MixedArgs<${outputType}, ${n}> args{{${inputPointers.join(', ')}},`,
    `                                   {${inputs.map((i) => `ew::Broadcast::${i.broadcast}`).join(', ')}},`,
    `                                   {${inputs.map((i) => i.inner).join(', ')}},`,
    `                                   {${inputs.map((i) => i.span ?? '0').join(', ')}},`,
    `                                   ${outputPointer},`,
    `                                   ${count},`,
    strided
      ? `                                   ${outShape.length}, {${outShape.join(', ')}}, {${inputs.map((i) => `{${(i.strides ?? []).join(', ')}}`).join(', ')}}};`
      : '                                   0, {}, {}};',
    // parenthesized: the template argument list's commas would split the macro's argument
    `AIT_RETURN_IF_CUDA_ERROR((ait::kernels::launch_mixed_elementwise<${[COMPUTE_CPP[compute], ...types].join(', ')}>(args, ew::make_chain(${chain.join(', ')}), c.stream)));`,
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
  return [
    'namespace ew = ait::kernels::ew;',
    `ew::ElementwiseArgs<__half, ${n}> args{{${inputPointers.join(', ')}},`,
    `                                   {${inputs.map((i) => `ew::Broadcast::${i.broadcast}`).join(', ')}},`,
    `                                   {${inputs.map((i) => i.inner).join(', ')}},`,
    `                                   ${outputPointer},`,
    `                                   ${count}${inputs.some((i) => i.span) ? `,\n                                   {${inputs.map((i) => i.span ?? '0').join(', ')}}` : ''}};`,
    ...inputs.flatMap((i, k) =>
      i.strided
        ? [`args.strided[${k}] = {${i.strided.shape.length}, {${i.strided.shape.join(', ')}}, {${i.strided.strides.join(', ')}}};`]
        : [],
    ),
    `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_fused_elementwise(args, ew::make_chain(${chain.join(', ')}), c.stream));`,
  ];
}
