/**
 * What every lowering needs: where each tensor lives at run time (model input/output pointer, weight slot, arena
 * offset from the memory plan, or a view of one of those), its element type on the GPU, and its dims as C++
 * expressions of the run's batch and run-time dims (`c.dims[k]`: input dims such as seq, sizes the data decides).
 * Weights are collected here too: the ONNX initializers kernels read (bound by name), and weights derived from them
 * (layout transforms), either computed now (values present) or at bind time on the device by prepare ops (graph-only
 * models).
 */
import type { KernelProfiling } from '../profiling/selection';
import { CompileError, Diagnostic, error } from '../../../diagnostics';
import { DType } from '../../../ir/dtype';
import { Graph, Node } from '../../../ir/graph';
import { Dim, SymDim, dimToString, isConcrete } from '../../../ir/symbolic';
import { TensorValue } from '../../../ir/tensor';
import { isShapeComputation, isWeightPreparation } from '../../../passes/cost';
import { MemoryPlan } from '../../../passes/memory-plan';
import { isStatic } from '../../../passes/rewrite';

import { VIEW_OPS } from '../../../ops/op-classes';

export { VIEW_OPS };

/**
 * GPU element types. Float tensors are stored as fp16 ('half'), except those the storage-precision pass keeps in
 * fp32 ('float': box coordinates and what computes them, passes/storage-precision.ts; TensorInfo.storage).
 */
export type GpuType = 'half' | 'float' | 'int64' | 'int32' | 'uint8';

export const CPP_TYPE: Record<GpuType, string> = { half: '__half', float: 'float', int64: 'int64_t', int32: 'int32_t', uint8: 'uint8_t' };
export const AIT_DTYPE: Record<GpuType, string> = {
  half: 'ait::DType::kFloat16',
  float: 'ait::DType::kFloat32',
  int64: 'ait::DType::kInt64',
  int32: 'ait::DType::kInt32',
  uint8: 'ait::DType::kUInt8',
};

/** Kernel-name suffix of a GPU type (ait_concat_f16, ait_topk_f32, ait_gather_int64, …). */
export const TYPE_SUFFIX: Record<GpuType, string> = { half: 'f16', float: 'f32', int64: 'int64', int32: 'int32', uint8: 'uint8' };

/** Whether a GPU type holds float data (fp16 or fp32 storage). */
export const isFloatGpuType = (t: GpuType): boolean => t === 'half' || t === 'float';

/** The GPU storage type of a tensor of `dtype`; `storage` is TensorInfo.storage ('float32': an fp32 float tensor). */
export function gpuTypeOf(dtype: DType | undefined, storage?: 'float32'): GpuType | undefined {
  switch (dtype) {
    case 'float32':
    case 'float64':
      return storage === 'float32' ? 'float' : 'half';
    case 'float16':
    case 'bfloat16':
      return 'half';
    case 'int64':
      return 'int64';
    case 'int32':
      return 'int32';
    case 'bool':
    case 'uint8':
      return 'uint8';
    default:
      return undefined;
  }
}

/** A weight of the compiled model. */
export interface WeightEntry {
  name: string;
  type: GpuType;
  shape: number[];
  /** 'bound': by name (an ONNX initializer or a prepared weight shipped in weights.safetensors); 'prepared': by prepare ops. */
  origin: 'bound' | 'prepared';
  /** The data, when known at compile time (written to weights.safetensors). */
  value?: TensorValue;
}

/**
 * An axis of a model input sized by a symbol other than the batch (HF's `seq`): a run-time dim the runtime sets
 * from the input's shape (AITModelSetInputShape; unset: `max`) before the ops run. Its value is in `c.dims[slot]`.
 */
export interface InputDim {
  symbol: string;
  slot: number;
  input: number;
  axis: number;
  /** The symbol's bounds (min at least 1: a size the runtime accepts); the memory plan sizes at `max`. */
  min: number;
  max: number;
}

/** Thrown by a lowering: the node cannot be compiled for the target (becomes a diagnostic with the node's place). */
export class Unsupported extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A name for a C++ comment: no line breaks or comment terminators (names come from the model). */
function cppSafe(name: string): string {
  return name.replace(/[^\w./:-]/g, '_');
}

const checkContexts = new WeakMap<Graph, { nodes: Node[]; count: number; context: CodegenContext }>();

export class CodegenContext {
  readonly weights: WeightEntry[] = [];
  private readonly weightIndex = new Map<string, number>();
  private readonly viewSource = new Map<string, string>();
  /** The symbol that stands for the run's batch (dim of a model input), if the model has one. */
  readonly batchSymbol?: string;
  /** Run-time symbols in slot order (LaunchContext::dims), and those a lowering has computed so far. */
  private readonly runtimeDimOrder: string[] = [];
  private readonly definedRuntime = new Set<string>();
  /** A predicates' context: every run-time size counts as computable. */
  private checking = false;
  /** Model input axes sized by a symbol other than the batch: run-time dims set by the runtime (slots 0..k-1). */
  readonly inputDims: InputDim[] = [];

  constructor(
    readonly graph: Graph,
    readonly plan: MemoryPlan,
    readonly maxBatch: number,
    /** Transposes read in place by the GEMMs that consume them (batched-gemm.ts), by output tensor: they launch nothing. */
    readonly absorbedTransposes: ReadonlyMap<string, Node> = new Map(),
    /** Measured kernel choice and profiler collection (profiling/selection.ts); absent: the heuristics. */
    readonly profiling?: KernelProfiling,
  ) {
    // a view aliases its input's buffer; a view of shape arithmetic has none to alias (its values, when a kernel
    // reads them, are written to a buffer of its own: materializeShapeValues)
    for (const node of graph.nodes)
      if (VIEW_OPS.has(node.op) && node.inputs[0] && !isShapeComputation(graph, node)) this.viewSource.set(node.outputs[0], node.inputs[0]);
    for (const input of graph.inputs) {
      const symbolic = graph.tensor(input).shape?.find((d) => !isConcrete(d)) as SymDim | undefined;
      if (symbolic && symbolic.symbols.length === 1) {
        this.batchSymbol = symbolic.symbols[0];
        break;
      }
    }
    // every other plain symbol of a model input's shape is a run-time dim the runtime sets from the input shapes:
    // their slots come first, in input order (runtimeDimErrors reports the ones without a finite bound)
    graph.inputs.forEach((input, index) =>
      (graph.tensor(input).shape ?? []).forEach((d, axis) => {
        const s = plainSymbol(d);
        if (s === undefined || s === this.batchSymbol) return;
        const info = graph.symbols.get(s);
        if (!info || info.definition || !Number.isFinite(info.max)) return;
        this.runtimeSlot(s);
        this.definedRuntime.add(s);
        const slot = this.runtimeDimOrder.indexOf(s);
        this.inputDims.push({ symbol: s, slot, input: index, axis, min: Math.max(1, info.min), max: info.max });
      }),
    );
  }

  /**
   * Why tensor `name` has no value at compile time, for a lowering that needs one (Resize scales, Pad values): a
   * graph-only model's initializer whose data the file does not carry (directly, or through the ops that reorder it)
   * is told apart from a value the model computes from its inputs.
   */
  whyNotConstant(name: string): string {
    const producers = (this.producerMap ??= this.graph.producers());
    const absent: string[] = [];
    const seen = new Set<string>();
    let fromInputs = false;
    const walk = (t: string) => {
      if (!t || seen.has(t) || seen.size > 64) return;
      seen.add(t);
      const info = this.graph.lookupTensor(t);
      if (info?.weights === 'absent') absent.push(t);
      else if (info?.value) return;
      else if (producers.has(t)) producers.get(t)!.inputs.forEach(walk);
      else fromInputs = true;
    };
    walk(name);
    if (absent.length && !fromInputs)
      return `'${name}' comes from initializer '${absent[0]}', whose data the model file does not carry (its external data is missing): the values decide this op's output, so compile the model with its weights`;
    return `'${name}' is computed at run time (the kernel needs it at compile time)`;
  }
  private producerMap?: Map<string, Node>;

  /** Whether symbol `s` sizes an axis of a model input (other than the batch): a run-time dim the runtime sets. */
  isInputSymbol(s: string): boolean {
    return this.inputDims.some((d) => d.symbol === s);
  }

  /**
   * A context for the lowerings' predicates (lower.ts): the graph's tensors, types and weights, no memory plan (a
   * predicate asks only what the graph knows, never where a tensor lives).
   */
  static forChecks(graph: Graph): CodegenContext {
    // One per graph while its node list is unchanged: building one walks every node, and a predicate runs per node.
    const cached = checkContexts.get(graph);
    if (cached && cached.nodes === graph.nodes && cached.count === graph.nodes.length) return cached.context;
    const context = new CodegenContext(graph, { batch: 1, alignment: 1, arenaBytes: 0, activationBytes: 0, buffers: [], offsets: {} }, 1);
    context.checking = true;
    checkContexts.set(graph, { nodes: graph.nodes, count: graph.nodes.length, context });
    return context;
  }

  /** Whether a node runs once per weight binding (its inputs are all weights or constants). */
  isPreparation(node: Node): boolean {
    return isWeightPreparation(this.graph, node);
  }

  /** Nodes that launch nothing: views, shape arithmetic, symbolic values, transposes absorbed by their readers. */
  isFree(node: Node): boolean {
    return launchesNothing(this.graph, node) || this.absorbedTransposes.get(node.outputs[0]) === node;
  }

  /** The tensor a view aliases (following chains), or the tensor itself. */
  storageOf(name: string): string {
    let current = name;
    while (this.viewSource.has(current) && !this.graph.outputs.includes(current)) current = this.viewSource.get(current)!;
    return current;
  }

  typeOf(name: string): GpuType {
    const t = this.graph.tensor(name);
    const type = gpuTypeOf(t.dtype, t.storage);
    if (!type) throw new Unsupported(`tensor '${name}' has dtype ${t.dtype}, which has no GPU storage type yet`);
    return type;
  }

  shapeOf(name: string): Dim[] {
    const shape = this.graph.tensor(name).shape;
    if (!shape) throw new Unsupported(`tensor '${name}' has no inferred shape`);
    return shape;
  }

  /** A weight, a constant, or the output of a weight-preparation node (computed at bind time). */
  isWeight(name: string): boolean {
    const storage = this.storageOf(name);
    return isStatic(this.graph.lookupTensor(storage)) || this.producedByPreparation(storage);
  }

  /** Registers (once) a weight read by a kernel or a prepare op; returns its index in the weights table. */
  weight(name: string, origin?: 'bound' | 'prepared', value?: TensorValue, shape?: number[], type?: GpuType): number {
    const known = this.weightIndex.get(name);
    if (known !== undefined) return known;
    const info = this.graph.lookupTensor(name);
    const dims = shape ?? this.shapeOf(name);
    if (!dims.every(isConcrete)) throw new Unsupported(`weight '${name}' has a symbolic shape`);
    const entry: WeightEntry = {
      name,
      type: type ?? this.typeOf(name),
      shape: dims as number[],
      origin: origin ?? (this.producedByPreparation(name) ? 'prepared' : 'bound'),
      value: value ?? info?.value,
    };
    if (entry.origin === 'prepared' && entry.value) entry.origin = 'bound';
    this.weightIndex.set(name, this.weights.length);
    this.weights.push(entry);
    return this.weights.length - 1;
  }

  hasWeight(name: string): boolean {
    return this.weightIndex.has(name);
  }

  private producedByPreparation(name: string): boolean {
    const producer = this.graph.nodes.find((n) => n.outputs.includes(name));
    return !!producer && this.isPreparation(producer);
  }

  /**
   * A C++ expression for a tensor's device pointer inside a launch function (`c` is the LaunchContext), typed
   * `const T*` (or `T*` when written).
   */
  pointer(name: string, writable = false): string {
    const derived = this.weightIndex.get(name);
    if (derived !== undefined && !this.graph.lookupTensor(name)) {
      const type = CPP_TYPE[this.weights[derived].type];
      return `static_cast<${writable ? `${type}*` : `const ${type}*`}>(c.weights[${derived}])`;
    }
    const storage = this.storageOf(name);
    const type = CPP_TYPE[this.typeOf(name)];
    const qualified = writable ? `${type}*` : `const ${type}*`;
    const inputIndex = this.graph.inputs.indexOf(storage);
    if (inputIndex >= 0) return `static_cast<${qualified}>(c.inputs[${inputIndex}])`;
    const outputIndex = this.graph.outputs.indexOf(storage);
    if (outputIndex >= 0) return `static_cast<${type}*>(c.outputs[${outputIndex}])`;
    if (this.isWeight(storage)) return `static_cast<${qualified}>(c.weights[${this.weight(storage)}])`;
    const offset = this.plan.offsets[storage];
    if (offset === undefined) throw new Unsupported(`tensor '${storage}' has no place in the memory plan`);
    return `reinterpret_cast<${qualified}>(c.arena + ${offset})`;
  }

  /**
   * A dim as a C++ int64 expression in a launch function: of `batch`, of the run-time dims `c.dims[k]` that earlier
   * ops computed (NonZero's count, …), and of min/max/floor over them (symbols/SymbolDefinition).
   */
  dim(d: Dim, node: Node): string {
    if (isConcrete(d)) return String(d);
    const terms: string[] = [];
    for (const [monomial, coefficient] of d.terms) {
      const symbols = monomial ? monomial.split('\u0000') : [];
      const factors = [
        ...(coefficient !== 1 || symbols.length === 0 ? [String(coefficient)] : []),
        ...symbols.map((s) => this.symbol(s, node)),
      ];
      terms.push(factors.join(' * '));
    }
    return terms.length === 1 ? terms[0] : `(${terms.join(' + ')})`;
  }

  /** How many run-time dims lowerings have computed so far. */
  get definedRuntimeDims(): number {
    return this.definedRuntime.size;
  }

  /** Whether a dim depends on a size the data decides (a run-time symbol, or an expression of one). */
  isRuntimeDim(d: Dim): boolean {
    if (isConcrete(d)) return false;
    return d.symbols.some((s) => {
      const definition = this.graph.symbols.get(s)?.definition;
      if (!definition) return false;
      if (definition.kind === 'runtime') return true;
      return definition.args.some((a) => this.isRuntimeDim(a));
    });
  }

  /** The run-time dims in slot order (input dims first): ModelDescription::dim_names. */
  get runtimeDims(): readonly string[] {
    return this.runtimeDimOrder;
  }

  /**
   * The C++ lvalue that holds run-time symbol `name` (`c.dims[k]`), for the lowering of the node that computes it
   * (it assigns the value on the host before any later op reads it).
   */
  defineRuntimeDim(d: Dim, node: Node): string {
    const name = !isConcrete(d) && d.terms.size === 1 && [...d.terms][0][1] === 1 ? [...d.terms][0][0] : undefined;
    const info = name !== undefined && !name.includes('\u0000') ? this.graph.symbols.get(name) : undefined;
    if (!info || info.definition?.kind !== 'runtime')
      throw new Unsupported(`dim '${dimToString(d)}' of ${node.op} '${node.name}' is not a size known only at run time`);
    this.definedRuntime.add(info.name);
    return this.runtimeSlot(info.name);
  }

  /**
   * The host slot holding If condition `tensor` (0/1) and the statements that read it back from the device, once:
   * the first lowering that asks (in execution order: the first guarded node or the if_select) gets them.
   */
  condition(tensor: string): { slot: string; read: string[] } {
    const key = `if condition ${tensor}`;
    const slot = this.runtimeSlot(key);
    if (this.definedRuntime.has(key)) return { slot, read: [] };
    this.definedRuntime.add(key);
    const type = CPP_TYPE[this.typeOf(tensor)];
    return {
      slot,
      read: [
        `{  // the If condition '${cppSafe(tensor)}' decides which branch runs: read it back once`,
        `  ${type} condition = 0;`,
        `  if (const char* failure = ait::read_device(c, &condition, ${this.pointer(tensor)}, sizeof condition)) return failure;`,
        `  ${slot} = condition != 0;`,
        '}',
      ],
    };
  }

  private runtimeSlot(name: string): string {
    let k = this.runtimeDimOrder.indexOf(name);
    if (k < 0) k = this.runtimeDimOrder.push(name) - 1;
    return `c.dims[${k}]`;
  }

  private symbol(s: string, node: Node): string {
    if (s === this.batchSymbol) return 'batch';
    // a model input's size other than the batch (seq): set by the runtime from the input shapes before the ops run
    if (this.isInputSymbol(s)) return this.runtimeSlot(s);
    const info = this.graph.symbols.get(s);
    const definition = info?.definition;
    const where = { onnxNode: node.sourceNodes[0] ?? node.name, nodeId: node.id };
    if (!definition)
      throw new CompileError(
        error('cuda.symbolic-dim', `dim '${s}' uses symbol '${s}', which is neither the batch nor a bounded dim of a model input`, where),
      );
    switch (definition.kind) {
      case 'min':
      case 'max':
        return definition.args.map((a) => this.dim(a, node)).reduce((a, b) => `std::${definition.kind}<int64_t>(${a}, ${b})`);
      case 'floorDiv': {
        // dims are non-negative: C++ truncation is floor division; a zero divisor gives 0, never a trap
        const [a, b] = definition.args.map((x) => this.dim(x, node));
        return `ait::floor_div(${a}, ${b})`;
      }
      case 'floorScale':
        return `static_cast<int64_t>(static_cast<double>(${this.dim(definition.args[0], node)}) * ${`${Number.isInteger(definition.scale) ? `${definition.scale}.0` : String(definition.scale)}`})`;
      case 'runtime':
        // Lowerings run in graph order, so the node that computes it has been lowered before any reader; the
        // predicates (forChecks) only ask whether a node could be lowered, and accept any run-time size.
        if (!this.checking && !this.definedRuntime.has(s))
          throw new Unsupported(
            `its size '${s}' (${info!.origin}) is known only at run time, and node '${definition.node}' does not compute it on the GPU`,
          );
        return this.runtimeSlot(s);
    }
  }

  /** Product of dims as a C++ expression (folds the constant part). */
  product(dims: readonly Dim[], node: Node): string {
    let constant = 1;
    const symbolic: string[] = [];
    for (const d of dims) {
      if (isConcrete(d)) constant *= d;
      else symbolic.push(this.dim(d, node));
    }
    if (symbolic.length === 0) return String(constant);
    return [...(constant !== 1 ? [String(constant)] : []), ...symbolic].join(' * ');
  }

  /** A dim's value at max batch (for workspace sizing). */
  maxOf(d: Dim): number {
    if (isConcrete(d)) return d;
    let total = 0;
    for (const [monomial, coefficient] of d.terms) {
      const symbols = monomial ? monomial.split('\u0000') : [];
      total +=
        coefficient * symbols.reduce((p, s) => p * (s === this.batchSymbol ? this.maxBatch : (this.graph.symbols.get(s)?.max ?? 1)), 1);
    }
    return total;
  }

  /** A dim's value at a given batch (heuristics). */
  at(d: Dim, batch: number): number {
    if (isConcrete(d)) return d;
    let total = 0;
    for (const [monomial, coefficient] of d.terms) {
      const symbols = monomial ? monomial.split('\u0000') : [];
      total += coefficient * symbols.reduce((p, s) => p * this.symbolAt(s, batch), 1);
    }
    return total;
  }

  /** Whether a dim is the batch itself (not an expression of it). */
  isBatch(d: Dim): boolean {
    if (isConcrete(d) || this.batchSymbol === undefined || d.terms.size !== 1) return false;
    const [[monomial, coefficient]] = [...d.terms];
    return monomial === this.batchSymbol && coefficient === 1;
  }

  /** The axis of a model input/output that takes the run's batch as it is (IoDescription batch_axis), or -1. */
  batchAxisOf(shape: readonly Dim[]): number {
    return shape.findIndex((d) => this.isBatch(d));
  }

  /** A symbol's value at a batch: the batch itself, a derived size (min/max/floor) evaluated, else its bound. */
  private symbolAt(s: string, batch: number): number {
    if (s === this.batchSymbol) return batch;
    const info = this.graph.symbols.get(s);
    const definition = info?.definition;
    switch (definition?.kind) {
      case 'min':
        return Math.min(...definition.args.map((a) => this.at(a, batch)));
      case 'max':
        return Math.max(...definition.args.map((a) => this.at(a, batch)));
      case 'floorDiv': {
        const divisor = this.at(definition.args[1], batch);
        return divisor === 0 ? 0 : Math.floor(this.at(definition.args[0], batch) / divisor);
      }
      case 'floorScale':
        return Math.floor(this.at(definition.args[0], batch) * definition.scale);
      default:
        return info?.max ?? 1;
    }
  }
}

/**
 * A CUDA build's run-time dims from the inputs: the batch (the first symbolic dim of a model input), and every other
 * plain symbol of an input's shape (seq), set by the runtime from the input shapes; the memory plan sizes them at
 * their max. Errors: such a symbol without a finite max, and an input dim that is an expression of symbols no input
 * gives plainly (the runtime could not compute it), each naming the input and the fix (--dim).
 */
export function runtimeDimErrors(graph: Graph): Diagnostic[] {
  const batch = new CodegenContext(graph, { batch: 1, alignment: 1, arenaBytes: 0, activationBytes: 0, buffers: [], offsets: {} }, 1)
    .batchSymbol;
  const plain = new Set<string>();
  for (const input of graph.inputs)
    for (const d of graph.tensor(input).shape ?? []) {
      const s = plainSymbol(d);
      if (s !== undefined) plain.add(s);
    }
  const reported = new Set<string>();
  const errors: Diagnostic[] = [];
  for (const input of graph.inputs)
    (graph.tensor(input).shape ?? []).forEach((d, axis) => {
      if (isConcrete(d)) return;
      for (const s of d.symbols) {
        if (s === batch || reported.has(s)) continue;
        const info = graph.symbols.get(s);
        if (info?.definition) continue;
        const bounded = !!info && Number.isFinite(info.max);
        if (bounded && plain.has(s)) continue;
        reported.add(s);
        const range = info ? ` (${info.min}..${info.max})` : '';
        errors.push(
          error(
            'cuda.symbolic-dim',
            bounded
              ? `model input '${input}' has dim '${dimToString(d)}' at axis ${axis}, an expression of '${s}'${range}, which no input gives ` +
                  `as a dim of its own: the runtime cannot set it. Fix '${s}' to one value with --dim ${s}=${info!.max}..${info!.max}`
              : `model input '${input}' has symbolic dim '${s}'${range} at axis ${axis} with no upper bound: the memory plan ` +
                  `sizes it at its max. Bound it with --dim ${s}=1..N (or fix it: --dim ${s}=N..N)`,
            { tensor: input },
          ),
        );
      }
    });
  return errors;
}

/** The symbol a dim is, when it is one symbol itself (coefficient 1, no other term). */
export function plainSymbol(d: Dim): string | undefined {
  if (isConcrete(d) || d.terms.size !== 1) return undefined;
  const [[monomial, coefficient]] = [...d.terms];
  return coefficient === 1 && monomial !== '' && !monomial.includes('\u0000') ? monomial : undefined;
}

/** Views that are not model outputs, shape arithmetic and symbolic values: no kernel, no lowering. */
function launchesNothing(graph: Graph, node: Node): boolean {
  return (
    (VIEW_OPS.has(node.op) && !graph.outputs.includes(node.outputs[0])) || isShapeComputation(graph, node) || node.op === 'symbolic_value'
  );
}

/** A weight-preparation node whose outputs were all computed at compile time. */
export function isFolded(graph: Graph, node: Node): boolean {
  return node.outputs.every((o) => graph.lookupTensor(o)?.value);
}

/**
 * Whether code generation lowers `node` (generateCuda's walk): weight preparation unless folded, and every other
 * node that launches something. A node it lowers needs a registered lowering that accepts it (support.ts).
 */
export function needsLowering(graph: Graph, node: Node): boolean {
  if (isWeightPreparation(graph, node)) return !isFolded(graph, node);
  return !launchesNothing(graph, node);
}
