/**
 * graph.json: the IR as JSON, read by the webview, the extension and tools. Versioned; the format is
 * documented in docs/graph-format.md — change both together.
 */
import { AttrValue, Graph, Node, OnnxModelInfo, TensorInfo } from './graph';
import { dtypeBytes } from './dtype';
import { dimToString, Dim } from './symbolic';

export const GRAPH_FORMAT = 'ait-graph';
export const GRAPH_FORMAT_VERSION = 1;

export type JsonDim = number | string;

export interface GraphJsonTensor {
  dtype: string | null;
  shape: JsonDim[] | null;
  kind: TensorInfo['kind'];
  weights?: 'present' | 'absent';
  /** Bytes at the symbols' largest values (null when a dim is unbounded or the dtype unknown). */
  maxBytes: number | null;
  /** GPU storage when a float tensor is not fp16 (passes/storage-precision.ts). */
  storage?: 'float32';
  /** Small compile-time values (≤ 16 elements), for display. */
  value?: number[];
}

export interface GraphJsonNode {
  id: string;
  op: string;
  domain?: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, unknown>;
  sourceNodes: string[];
  scope: string[];
  subgraphs?: Record<string, GraphJsonBody | GraphJsonBody[]>;
  /** Free-form per-node fields added by later stages: epilogue, cost, kernel, status (see docs/graph-format.md). */
  [extra: string]: unknown;
}

export interface GraphJsonBody {
  name: string;
  inputs: string[];
  outputs: string[];
  tensors: Record<string, GraphJsonTensor>;
  nodes: GraphJsonNode[];
}

export interface GraphJson extends GraphJsonBody {
  format: typeof GRAPH_FORMAT;
  version: number;
  model: {
    name: string;
    path?: string;
    producer: { name: string; version: string };
    irVersion: number;
    opsets: Record<string, number>;
    weights: 'present' | 'absent' | 'partial' | 'none';
  };
  symbols: { name: string; min: number; max: number; origin: string }[];
  /** ONNX nodes that are no longer in the graph, and why (constant folding, no-op removal, …). */
  removed: { onnxNode: string; reason: string }[];
  /** Stage-specific top-level sections (memory plan, target, …): see docs/graph-format.md. */
  [extra: string]: unknown;
}

export function jsonDim(d: Dim): JsonDim {
  return typeof d === 'number' ? d : dimToString(d);
}

function attrToJson(a: AttrValue): unknown {
  switch (a.type) {
    case 'tensor':
      return { tensor: { dtype: a.value.dtype, shape: a.value.shape, value: smallValue(a.value.data, a.value.shape) } };
    case 'tensors':
      return a.value.map((t) => ({ tensor: { dtype: t.dtype, shape: t.shape } }));
    case 'graph':
    case 'graphs':
      return { subgraph: true };
    default:
      return a.value;
  }
}

function smallValue(data: ArrayLike<number> | string[], shape: number[]): number[] | undefined {
  const n = shape.reduce((a, b) => a * b, 1);
  if (Array.isArray(data) || n > 16) return undefined;
  return Array.from(data as ArrayLike<number>);
}

function tensorToJson(graph: Graph, t: TensorInfo): GraphJsonTensor {
  let maxBytes: number | null = null;
  if (t.dtype && t.shape) {
    let n = 1;
    for (const d of t.shape) n *= graph.symbols.maxOf(d);
    maxBytes = Number.isFinite(n) ? dtypeBytes(t.dtype, n) : null;
  }
  const out: GraphJsonTensor = { dtype: t.dtype ?? null, shape: t.shape ? t.shape.map(jsonDim) : null, kind: t.kind, maxBytes };
  if (t.weights) out.weights = t.weights;
  if (t.storage) out.storage = t.storage;
  if (t.value && (t.kind === 'constant' || t.kind === 'param')) {
    const v = smallValue(t.value.data as ArrayLike<number>, t.value.shape);
    if (v) out.value = v;
  }
  return out;
}

export function nodeToJson(node: Node): GraphJsonNode {
  const attrs: Record<string, unknown> = {};
  const subgraphs: Record<string, GraphJsonBody | GraphJsonBody[]> = {};
  for (const [k, a] of Object.entries(node.attrs)) {
    if (a.type === 'graph') subgraphs[k] = bodyToJson(a.value);
    else if (a.type === 'graphs') subgraphs[k] = a.value.map(bodyToJson);
    else attrs[k] = attrToJson(a);
  }
  const out: GraphJsonNode = {
    id: node.id,
    op: node.op,
    name: node.name,
    inputs: node.inputs,
    outputs: node.outputs,
    attrs,
    sourceNodes: node.sourceNodes,
    scope: node.scope,
  };
  if (node.domain) out.domain = node.domain;
  if (Object.keys(subgraphs).length) out.subgraphs = subgraphs;
  const epilogue = node.attrs.epilogue;
  if (epilogue && epilogue.type === 'strings') out.epilogue = epilogue.value;
  if (node.role) out.role = node.role;
  if (node.cost) out.cost = node.cost;
  if (node.kernel) out.kernel = node.kernel;
  if (node.status) out.status = node.status;
  if (node.segment !== undefined) out.segment = node.segment;
  if (node.metadata?.['pkg.torch.onnx.stack_trace']) out.stackTrace = node.metadata['pkg.torch.onnx.stack_trace'];
  return out;
}

export function bodyToJson(graph: Graph): GraphJsonBody {
  const tensors: Record<string, GraphJsonTensor> = {};
  const used = new Set<string>([...graph.inputs, ...graph.outputs]);
  for (const n of graph.nodes) for (const x of [...n.inputs, ...n.outputs]) if (x) used.add(x);
  for (const name of used) {
    const t = graph.tensors.get(name);
    if (t) tensors[name] = tensorToJson(graph, t);
  }
  return { name: graph.name, inputs: graph.inputs, outputs: graph.outputs, tensors, nodes: graph.nodes.map(nodeToJson) };
}

export interface SerializeOptions {
  modelName: string;
  info: OnnxModelInfo;
  removed?: { onnxNode: string; reason: string }[];
  /** Extra top-level sections (memory plan, target, …). */
  sections?: Record<string, unknown>;
}

export function graphToJson(graph: Graph, options: SerializeOptions): GraphJson {
  // The model's initializers (weights derived by the passes, e.g. a transposed conv weight, have no `weights` mark).
  const params = [...graph.tensors.values()].filter((t) => t.kind === 'param' && t.weights !== undefined);
  const present = params.filter((t) => t.weights === 'present').length;
  const weights = params.length === 0 ? 'none' : present === params.length ? 'present' : present === 0 ? 'absent' : 'partial';
  return {
    format: GRAPH_FORMAT,
    version: GRAPH_FORMAT_VERSION,
    model: {
      name: options.modelName,
      path: options.info.path,
      producer: { name: options.info.producerName, version: options.info.producerVersion },
      irVersion: options.info.irVersion,
      opsets: options.info.opsets,
      weights,
    },
    symbols: graph.symbols.all().map((s) => ({ name: s.name, min: s.min, max: Number.isFinite(s.max) ? s.max : -1, origin: s.origin })),
    removed: options.removed ?? [],
    ...bodyToJson(graph),
    ...(options.sections ?? {}),
  };
}
