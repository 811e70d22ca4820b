/**
 * The IR: a graph of nodes over named tensors.
 *
 * Nodes keep ONNX's op types and attribute names until the optimizer rewrites them into fused ops. Each node
 * records the ONNX nodes it came from, so that every later form (fused graph, generated code, profile) can be
 * traced back to what the user exported.
 */
import { CompileError, error, fail } from '../diagnostics';
import { DType } from './dtype';
import { Dim, SymbolTable } from './symbolic';
import { TensorValue } from './tensor';

export type TensorKind = 'input' | 'output' | 'param' | 'constant' | 'activation';

export interface TensorInfo {
  name: string;
  /** Unknown (undefined) until shape inference has run. */
  dtype?: DType;
  shape?: Dim[];
  kind: TensorKind;
  /** Compile-time value: constants, folded tensors, and parameters whose weights are present. */
  value?: TensorValue;
  /** For parameters: whether the weights are in the model ('absent' when the external data file is missing). */
  weights?: 'present' | 'absent';
  /** Where an absent parameter's data was supposed to come from (external data file, offset, length). */
  external?: { location: string; offset: number; length: number };
  /**
   * Symbolic contents of a small integer tensor that feeds shape arithmetic (e.g. Shape(x) = [B, 3, 224, 224]).
   * Lets Reshape/Expand/Slice resolve shapes built from Shape/Gather/Concat chains before they fold.
   */
  shapeValue?: Dim[];
  /**
   * GPU storage of a float32/float64 tensor when it is not fp16: 'float32' for values fp16 cannot hold (box
   * coordinates, class offsets; set by passes/storage-precision.ts). Absent: fp16 storage.
   */
  storage?: 'float32';
  /** ONNX value type when it is not a tensor: 'sequence' (SequenceConstruct, Loop scan outputs of sequences). */
  valueType?: 'tensor' | 'sequence' | 'optional';
}

export type AttrValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: TensorValue }
  | { type: 'tensors'; value: TensorValue[] }
  | { type: 'graph'; value: Graph }
  | { type: 'graphs'; value: Graph[] };

export type Attributes = Record<string, AttrValue>;

export interface Node {
  /** Unique within the graph; stable across serialization (graph.json node ids). */
  id: string;
  /** ONNX op type, or a fused op's name after optimization. */
  op: string;
  /** ONNX domain ('' for the default domain). */
  domain: string;
  /** Human-readable name (the ONNX node name when there is one). */
  name: string;
  /** Input tensor names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Attributes;
  /** Names of the ONNX nodes this node stands for (one for imported nodes; several after fusion). */
  sourceNodes: string[];
  /** Module hierarchy the node belongs to (e.g. ['layer1', '0', 'conv1']), from names or exporter metadata. */
  scope: string[];
  /** Exporter metadata kept for display (stack trace, class hierarchy). */
  metadata?: Record<string, string>;
  /** For `ait.symbolic_value` nodes: the value, as expressions of the model's symbols. */
  symbolicValue?: Dim[];
  /**
   * What the node is at run time (set by the cost pass): a kernel launched per inference, a view (no data moves),
   * weight preparation (runs once, at compile time when weights are present, else when they are bound), or shape
   * arithmetic evaluated on the host from the batch.
   */
  role?: 'kernel' | 'view' | 'weight-preparation' | 'shape';
  /** FLOPs and minimum bytes moved at a given batch (set by the cost pass). */
  cost?: { flops: number; bytes: number; batch: number };
  /** Kernel chosen by a backend (library, instance name, configuration, candidates). */
  kernel?: Record<string, unknown>;
  /** Whether the target backend supports this node, and why not. */
  status?: { supported: boolean; reason?: string };
  /** With `ait compile --partition`: the index of the segment (partition.json) that runs this node. */
  segment?: number;
  /**
   * A node of an If's branch inlined into the graph (passes/inline-if.ts): it runs only when the boolean tensor
   * `condition` is `taken` (true: then_branch, false: else_branch).
   */
  guard?: { condition: string; taken: boolean };
}

export interface OnnxModelInfo {
  irVersion: number;
  opsets: Record<string, number>;
  producerName: string;
  producerVersion: string;
  /** The file the model was read from, when it came from a file. */
  path?: string;
  modelBytes: number;
}

export class Graph {
  name: string;
  readonly tensors = new Map<string, TensorInfo>();
  nodes: Node[] = [];
  inputs: string[] = [];
  outputs: string[] = [];
  readonly symbols: SymbolTable;
  /** Opset versions by domain ('' = ai.onnx). Shared by subgraphs. */
  opsets: Record<string, number>;
  /** The enclosing graph, for If/Loop bodies that read outer-scope tensors. */
  readonly parent?: Graph;
  private nextId = 0;

  constructor(name: string, options: { symbols?: SymbolTable; opsets?: Record<string, number>; parent?: Graph } = {}) {
    this.name = name;
    this.symbols = options.symbols ?? options.parent?.symbols ?? new SymbolTable();
    this.opsets = options.opsets ?? options.parent?.opsets ?? { '': 18 };
    this.parent = options.parent;
  }

  get opset(): number {
    return this.opsets[''] ?? this.opsets['ai.onnx'] ?? 18;
  }

  /**
   * Ids handed out by newNodeId or seen on a node of `nodes` (a superset of the ids in use: an id is never
   * handed out twice, even after its node is removed). Kept in step with `nodes` by syncNodeIds.
   */
  private readonly knownIds = new Set<string>();
  private knownIdsOf?: Node[];
  private knownIdsLength = 0;

  /** A node id that is not used yet in this graph. O(1) amortized: `nodes` is not rescanned per call. */
  newNodeId(prefix = 'n'): string {
    this.syncNodeIds();
    let id: string;
    do id = `${prefix}${this.nextId++}`;
    while (this.knownIds.has(id));
    this.knownIds.add(id);
    return id;
  }

  /**
   * Notes the ids of nodes added since the last call: all of them when `nodes` was replaced by another array
   * (passes do that in O(n) anyway) or shrank, else those appended at its end. Nodes spliced into the middle of
   * the same array are expected to carry ids from newNodeId (every pass does so), which are already known.
   */
  private syncNodeIds(): void {
    const nodes = this.nodes;
    const from = nodes === this.knownIdsOf && nodes.length >= this.knownIdsLength ? this.knownIdsLength : 0;
    for (let i = from; i < nodes.length; i++) this.knownIds.add(nodes[i].id);
    this.knownIdsOf = nodes;
    this.knownIdsLength = nodes.length;
  }

  /** A tensor name that is not used yet, derived from `base`. */
  newTensorName(base: string): string {
    if (!this.lookupTensor(base)) return base;
    for (let i = 1; ; i++) {
      const name = `${base}_${i}`;
      if (!this.lookupTensor(name)) return name;
    }
  }

  addTensor(info: TensorInfo): TensorInfo {
    this.tensors.set(info.name, info);
    return info;
  }

  tensor(name: string): TensorInfo {
    const t = this.lookupTensor(name);
    if (!t) fail('graph.unknown-tensor', `tensor '${name}' is not defined in graph '${this.name}'`, { tensor: name });
    return t;
  }

  /** Finds a tensor here or in an enclosing graph. */
  lookupTensor(name: string): TensorInfo | undefined {
    return this.tensors.get(name) ?? this.parent?.lookupTensor(name);
  }

  /** Map from tensor name to the node producing it (this graph only). */
  producers(): Map<string, Node> {
    const m = new Map<string, Node>();
    for (const n of this.nodes) for (const o of n.outputs) if (o) m.set(o, n);
    return m;
  }

  /** Map from tensor name to the nodes reading it (this graph only). */
  consumers(): Map<string, Node[]> {
    const m = new Map<string, Node[]>();
    for (const n of this.nodes)
      for (const i of n.inputs)
        if (i) {
          const list = m.get(i);
          if (list) list.push(n);
          else m.set(i, [n]);
        }
    return m;
  }

  /** Tensors a node of this graph (or of its subgraphs) reads that are defined outside this graph. */
  outerReads(): Set<string> {
    const defined = new Set<string>([...this.inputs, ...this.tensors.keys()]);
    const reads = new Set<string>();
    for (const n of this.nodes) {
      for (const i of n.inputs) if (i && !defined.has(i)) reads.add(i);
      for (const g of subgraphsOf(n)) for (const r of g.outerReads()) if (!defined.has(r)) reads.add(r);
    }
    return reads;
  }

  /**
   * Orders the nodes so that every node comes after the producers of its inputs (stable: keeps the existing
   * order where it is already valid). Throws a CompileError naming the nodes of a cycle.
   */
  sortTopologically(): void {
    const producer = this.producers();
    const state = new Map<Node, 1 | 2>(); // 1 = on the stack, 2 = done
    const order: Node[] = [];
    const visit = (start: Node) => {
      const stack: { node: Node; next: number; deps: Node[] }[] = [];
      const push = (node: Node) => {
        state.set(node, 1);
        const deps: Node[] = [];
        const reads = [...node.inputs];
        for (const g of subgraphsOf(node)) reads.push(...g.outerReads());
        for (const i of reads) {
          const p = i ? producer.get(i) : undefined;
          if (p && p !== node) deps.push(p);
          else if (p === node) throw cycleError([node]);
        }
        stack.push({ node, next: 0, deps });
      };
      push(start);
      while (stack.length) {
        const top = stack[stack.length - 1];
        if (top.next < top.deps.length) {
          const dep = top.deps[top.next++];
          const s = state.get(dep);
          if (s === 1) {
            const from = stack.findIndex((f) => f.node === dep);
            throw cycleError(stack.slice(from).map((f) => f.node));
          }
          if (s === undefined) push(dep);
        } else {
          stack.pop();
          state.set(top.node, 2);
          order.push(top.node);
        }
      }
    };
    for (const n of this.nodes) if (!state.has(n)) visit(n);
    this.nodes = order;
  }

  /** Removes nodes whose outputs nobody reads (and that are not graph outputs), and tensors no longer used. */
  removeDeadNodes(): number {
    const before = this.nodes.length;
    const live = new Set(this.outputs);
    const keep: Node[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (n.outputs.some((o) => o && live.has(o))) {
        keep.push(n);
        for (const x of n.inputs) if (x) live.add(x);
        for (const g of subgraphsOf(n)) for (const r of g.outerReads()) live.add(r);
      }
    }
    this.nodes = keep.reverse();
    for (const [name, t] of this.tensors) if (!live.has(name) && t.kind !== 'input') this.tensors.delete(name);
    return before - this.nodes.length;
  }
}

function cycleError(nodes: Node[]): CompileError {
  const names = nodes.map((n) => `'${n.name}'`).join(' -> ');
  return new CompileError(
    error('graph.cycle', `the graph has a cycle: ${names} -> '${nodes[0].name}'`, { onnxNode: nodes[0].name, nodeId: nodes[0].id }),
  );
}

export function subgraphsOf(node: Node): Graph[] {
  const out: Graph[] = [];
  for (const a of Object.values(node.attrs)) {
    if (a.type === 'graph') out.push(a.value);
    else if (a.type === 'graphs') out.push(...a.value);
  }
  return out;
}

// ---- attribute accessors: errors name the node ----

function attrError(node: Node, name: string, want: string): never {
  fail('op.bad-attribute', `${node.op} node '${node.name}': attribute '${name}' must be ${want}`, { onnxNode: node.name, nodeId: node.id });
}

export function attrInt(node: Node, name: string, fallback?: number): number {
  const a = node.attrs[name];
  if (!a) return fallback ?? attrError(node, name, 'given (an int)');
  if (a.type !== 'int') attrError(node, name, 'an int');
  return a.value;
}

export function attrFloat(node: Node, name: string, fallback?: number): number {
  const a = node.attrs[name];
  if (!a) return fallback ?? attrError(node, name, 'given (a float)');
  if (a.type === 'float' || a.type === 'int') return a.value;
  return attrError(node, name, 'a float');
}

export function attrString(node: Node, name: string, fallback?: string): string {
  const a = node.attrs[name];
  if (!a) return fallback ?? attrError(node, name, 'given (a string)');
  if (a.type !== 'string') attrError(node, name, 'a string');
  return a.value;
}

export function attrInts(node: Node, name: string, fallback?: number[]): number[] {
  const a = node.attrs[name];
  if (!a) return fallback ?? attrError(node, name, 'given (a list of ints)');
  if (a.type === 'ints') return a.value;
  if (a.type === 'int') return [a.value];
  return attrError(node, name, 'a list of ints');
}

export function attrFloats(node: Node, name: string, fallback?: number[]): number[] {
  const a = node.attrs[name];
  if (!a) return fallback ?? attrError(node, name, 'given (a list of floats)');
  if (a.type !== 'floats') attrError(node, name, 'a list of floats');
  return a.value;
}

export function attrTensor(node: Node, name: string): TensorValue | undefined {
  const a = node.attrs[name];
  if (!a) return undefined;
  if (a.type !== 'tensor') attrError(node, name, 'a tensor');
  return a.value;
}

export function attrGraph(node: Node, name: string): Graph {
  const a = node.attrs[name];
  if (!a || a.type !== 'graph') attrError(node, name, 'a graph');
  return a.value;
}
