/**
 * `ait inspect`: a model's summary — inputs/outputs with shapes, op histogram, parameters, weights,
 * opsets, producer, and every unknown op with its node — after import and shape inference. What the GPU target
 * cannot run is answered as compile answers it: supportOf (the registered lowerings) on the optimized graph.
 */
import './ops/index';
import { Diagnostic } from './diagnostics';
import { Graph, subgraphsOf } from './ir/graph';
import { dtypeBytes } from './ir/dtype';
import { shapeToString } from './ir/symbolic';
import { ImportOptions, ImportedModel, importOnnxFile } from './onnx/import';
import { inferShapes } from './passes/shape-inference';
import { onnxOpSupport, supportOf } from './backends/support';
import { optimizeModel } from './compile';
import { DEFAULT_TARGET } from './targets';

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: string;
}

export interface ModelSummary {
  file: string;
  producer: string;
  irVersion: number;
  opsets: Record<string, number>;
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  nodeCount: number;
  /** Nodes inside If/Loop bodies. */
  subgraphNodeCount: number;
  opHistogram: Record<string, number>;
  parameters: { count: number; elements: number; bytes: number; weights: 'present' | 'absent' | 'partial' | 'none' };
  symbols: { name: string; min: number; max: number; origin: string }[];
  /** Ops the compiler has no definition for, with the nodes using them. */
  unknownOps: { op: string; nodes: string[] }[];
  /** Ops the GPU target (cuda) cannot run yet, with their nodes and why (control flow, data-dependent shapes, …). */
  unsupportedOps: { op: string; reason: string; nodes: string[] }[];
  /** Tensors left without a shape (should be empty for every supported model). */
  unshapedTensors: string[];
  foldedNodeCount: number;
  diagnostics: Diagnostic[];
}

export function inspectModel(file: string, options: ImportOptions = {}): { summary: ModelSummary; model: ImportedModel } {
  const model = importOnnxFile(file, options);
  const graph = model.graph;
  const inference = inferShapes(graph);
  const diagnostics = [...model.diagnostics, ...inference.diagnostics];

  const histogram: Record<string, number> = {};
  let subgraphNodeCount = 0;
  const unknown = new Map<string, string[]>();
  const unshaped: string[] = [];
  const optimized = unsupportedAfterOptimization(file, options);
  const unsupported = optimized ?? new Map<string, { reason: string; nodes: string[] }>();
  const visit = (g: Graph, nested: boolean) => {
    for (const n of g.nodes) {
      const support = optimized ? { supported: true } : onnxOpSupport(n.op, n.domain);
      if (!support.supported && !nested) {
        const key = (n.domain ? `${n.domain}.` : '') + n.op;
        const entry = unsupported.get(key) ?? { reason: support.reason ?? '', nodes: [] };
        entry.nodes.push(n.name);
        unsupported.set(key, entry);
      }
      const op = (n.domain ? `${n.domain}.` : '') + n.op;
      if (!nested) histogram[op] = (histogram[op] ?? 0) + 1;
      else subgraphNodeCount++;
      for (const o of n.outputs) {
        const t = o ? g.tensors.get(o) : undefined;
        if (t && !t.shape && t.valueType !== 'sequence') unshaped.push(o);
      }
      for (const s of subgraphsOf(n)) visit(s, true);
    }
  };
  visit(graph, false);
  for (const d of inference.diagnostics)
    if (d.code === 'op.unknown') {
      const m = /op '([^']+)'/.exec(d.message);
      const op = m ? m[1] : '?';
      unknown.set(op, [...(unknown.get(op) ?? []), d.location?.onnxNode ?? '?']);
    }

  const params = [...graph.tensors.values()].filter((t) => t.kind === 'param');
  let elements = 0;
  let bytes = 0;
  for (const p of params) {
    const n = (p.shape ?? []).reduce<number>((a, d) => a * (typeof d === 'number' ? d : 0), 1);
    elements += n;
    bytes += p.dtype ? dtypeBytes(p.dtype, n) : 0;
  }
  const present = params.filter((p) => p.weights === 'present').length;
  const describe = (name: string): TensorSummary => {
    const t = graph.lookupTensor(name);
    return { name, dtype: t?.dtype ?? '?', shape: shapeToString(t?.shape) };
  };
  const summary: ModelSummary = {
    file,
    producer: `${model.info.producerName} ${model.info.producerVersion}`.trim(),
    irVersion: model.info.irVersion,
    opsets: model.info.opsets,
    inputs: graph.inputs.map(describe),
    outputs: graph.outputs.map(describe),
    nodeCount: graph.nodes.length,
    subgraphNodeCount,
    opHistogram: Object.fromEntries(Object.entries(histogram).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    parameters: {
      count: params.length,
      elements,
      bytes,
      weights: params.length === 0 ? 'none' : present === params.length ? 'present' : present === 0 ? 'absent' : 'partial',
    },
    symbols: graph.symbols.all().map(({ name, min, max, origin }) => ({ name, min, max, origin })),
    unknownOps: [...unknown].map(([op, nodes]) => ({ op, nodes })),
    unsupportedOps: [...unsupported].filter(([op]) => !unknown.has(op)).map(([op, e]) => ({ op, reason: e.reason, nodes: e.nodes })),
    unshapedTensors: unshaped,
    foldedNodeCount: inference.foldedNodes.size,
    diagnostics,
  };
  return { summary, model };
}

/**
 * The nodes the default target cannot run, found as `ait compile` finds them: the model optimized, then supportOf
 * on every node (keyed by op, with the ONNX nodes each came from). Undefined where the optimizer cannot run (errors
 * in import or shape inference, or a pass that fails): inspect then answers per ONNX op (onnxOpSupport).
 */
function unsupportedAfterOptimization(file: string, options: ImportOptions): Map<string, { reason: string; nodes: string[] }> | undefined {
  let graph: Graph;
  try {
    const result = optimizeModel(file, options);
    if (result.context.diagnostics.some((d) => d.severity === 'error')) return undefined;
    graph = result.graph;
  } catch {
    return undefined;
  }
  const unsupported = new Map<string, { reason: string; nodes: string[] }>();
  for (const node of graph.nodes) {
    let support: { supported: boolean; reason?: string };
    try {
      support = supportOf(graph, node, DEFAULT_TARGET);
    } catch {
      return undefined;
    }
    if (support.supported) continue;
    const key = (node.domain ? `${node.domain}.` : '') + node.op;
    const entry = unsupported.get(key) ?? { reason: support.reason ?? '', nodes: [] };
    entry.nodes.push(...(node.sourceNodes.length ? node.sourceNodes : [node.name]));
    unsupported.set(key, entry);
  }
  return unsupported;
}
