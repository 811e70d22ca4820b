/**
 * Op definitions: one typed definition per op, holding everything the compiler knows about it —
 * shape/type inference, the CPU reference implementation (used by constant folding and the interpreter),
 * and its cost. Families live in their own files (elementwise.ts, conv.ts, shape.ts, …) and register here.
 *
 * A backend's lowering is checked against this table: an op with no definition is reported as unknown,
 * with the node that uses it.
 */
import { CompileError, error } from '../diagnostics';
import { DType } from '../ir/dtype';
import { Graph, Node, TensorInfo } from '../ir/graph';
import { Dim, SymbolTable } from '../ir/symbolic';
import { MAX_DIM } from '../ir/limits';
import { TensorValue } from '../ir/tensor';

/** What inference knows about one output. */
export interface OutputType {
  dtype: DType;
  shape: Dim[];
  /** Set when the output's value is known at compile time (constant folding). */
  value?: TensorValue;
  /** Symbolic contents of a small integer output (shape arithmetic). */
  shapeValue?: Dim[];
  valueType?: TensorInfo['valueType'];
}

/** Passed to an op's `infer`. Inputs are by position; an omitted optional input is undefined. */
export interface InferContext {
  readonly node: Node;
  readonly graph: Graph;
  readonly symbols: SymbolTable;
  readonly opset: number;
  /** Number of inputs given (trailing omitted inputs not counted). */
  readonly inputCount: number;
  input(i: number): TensorInfo | undefined;
  /** Shape of input i; throws a node-named error when it is missing or unknown. */
  shape(i: number): Dim[];
  dtype(i: number): DType;
  /** Compile-time value of input i, if known. */
  value(i: number): TensorValue | undefined;
  /** Symbolic contents of a small integer input: its value, or its shapeValue. */
  dims(i: number): Dim[] | undefined;
  /** Throws a CompileError that names the node. */
  fail(message: string): never;
  /** A fresh data-dependent symbol with bounds, named after this node. */
  dataDependentDim(what: string, min: number, max: number): Dim;
}

export interface OpDefinition {
  /** ONNX op type (or an internal fused op name). */
  op: string;
  /** ONNX domain; '' for ai.onnx. */
  domain?: string;
  /** Output dtypes and shapes (and values/shapeValues where cheap to know). */
  infer(ctx: InferContext): OutputType[];
  /**
   * CPU reference: computes outputs from input values. Used by constant folding and by the interpreter.
   * Omitted for ops that cannot be evaluated on the CPU here (they stop folding, and the interpreter reports them).
   */
  evaluate?(node: Node, inputs: (TensorValue | undefined)[], env: EvalEnv): TensorValue[];
  /** True when the outputs depend on data only through shapes (Shape, Size): folding needs no input values. */
  shapeOnly?: boolean;
}

/** What evaluate may need beyond its inputs: subgraph execution (If/Loop) and the outer scope. */
export interface EvalEnv {
  runSubgraph(graph: Graph, inputs: TensorValue[], outer: (name: string) => TensorValue | undefined): TensorValue[];
  lookup(name: string): TensorValue | undefined;
  /** Value of a model symbol in this run (bound from the actual input shapes), when known. */
  symbol?(name: string): number | undefined;
  /** The ai.onnx opset of the graph being run, where an op's meaning depends on it (PRelu before 7). */
  opset?: number;
}

const definitions = new Map<string, OpDefinition>();

function key(domain: string | undefined, op: string): string {
  return `${domain === 'ai.onnx' ? '' : (domain ?? '')}::${op}`;
}

export function registerOp(def: OpDefinition): void {
  definitions.set(key(def.domain, def.op), def);
}

export function registerOps(defs: OpDefinition[]): void {
  for (const d of defs) registerOp(d);
}

export function findOp(node: Pick<Node, 'op' | 'domain'>): OpDefinition | undefined {
  return definitions.get(key(node.domain, node.op));
}

export function knownOps(): string[] {
  return [...definitions.keys()].map((k) => k.replace(/^::/, ''));
}

export function nodeError(node: Node, code: string, message: string): CompileError {
  return new CompileError(error(code, `${node.op} node '${node.name}': ${message}`, { onnxNode: node.name, nodeId: node.id }));
}

/**
 * Attribute sanity for op rules: every value of int attribute `name` must be an integer in [min, max] (a kernel or
 * stride of 0, a negative pad or dilation make no window). Throws op.bad-attribute naming the node and attribute.
 */
export function checkIntAttribute(node: Node, name: string, values: number | readonly number[], min: number, max = MAX_DIM): void {
  const list = typeof values === 'number' ? [values] : values;
  const bad = list.find((v) => !Number.isInteger(v) || v < min || v > max);
  if (bad === undefined) return;
  const shown = typeof values === 'number' ? String(values) : `[${list.join(', ')}]`;
  throw nodeError(
    node,
    'op.bad-attribute',
    `attribute '${name}' is ${shown}: each value must be an integer ${max === MAX_DIM ? `of at least ${min}` : `in ${min}..${max}`}`,
  );
}

/**
 * A backend's lowering of one op, registered under the op's name: `supports` says whether a node of the op can be
 * lowered (undefined) or why not (the reason users see); `lower` is the backend's own lowering function. A target is
 * "supported" for a node exactly when its backend has a lowering for the node's op whose predicate accepts the node
 * (backends/support.ts), so inspect, compile, the Problems panel and the graph view read one answer.
 */
export interface OpLowering<Lower = unknown> {
  supports?(graph: Graph, node: Node): string | undefined;
  lower: Lower;
}

const lowerings = new Map<string, Map<string, OpLowering>>();

/** Registers `lowering` for each op of `ops` (in `domain`, default ai.onnx) on backend `backend` (e.g. 'cuda'). */
export function registerLowering<Lower>(backend: string, ops: string | readonly string[], lowering: OpLowering<Lower>, domain = ''): void {
  let table = lowerings.get(backend);
  if (!table) lowerings.set(backend, (table = new Map()));
  for (const op of typeof ops === 'string' ? [ops] : ops) {
    const k = key(domain, op);
    if (table.has(k)) throw new Error(`backend '${backend}' has two lowerings for op '${op}'`);
    table.set(k, lowering as OpLowering);
  }
}

export function findLowering<Lower>(backend: string, node: Pick<Node, 'op' | 'domain'>): OpLowering<Lower> | undefined {
  return lowerings.get(backend)?.get(key(node.domain, node.op)) as OpLowering<Lower> | undefined;
}

/** Every lowering registered for `backend`, by op and domain ('' for ai.onnx). */
export function registeredLowerings(backend: string): { op: string; domain: string; lowering: OpLowering }[] {
  return [...(lowerings.get(backend) ?? [])].map(([k, lowering]) => {
    const [domain, op] = k.split('::');
    return { op, domain, lowering };
  });
}
