/**
 * Cost annotations: per node FLOPs and the fewest bytes it must move through device memory (each input read once,
 * each output written once) at a chosen batch, in the GPU's storage precision (fp16 for float tensors). They feed
 * the heatmaps and roofline figures.
 */
import { Graph, Node, attrInt, subgraphsOf } from '../ir/graph';
import { DType, dtypeBytes } from '../ir/dtype';
import { Dim, evaluateDim } from '../ir/symbolic';
import { attentionQkvInputs, epilogueOf } from '../ops/fused';
import { Pass } from './pass';
import { isStatic } from './rewrite';
import { VIEW_OPS } from '../ops/op-classes';

export interface NodeCost {
  flops: number;
  bytes: number;
  batch: number;
}

/**
 * Nodes that only prepare weights run once (at compile time when the weights are present, else at bind time), not
 * per inference: every input is a weight, a constant, or the output of another weight-preparation node. The last
 * case makes a chain on weights (a position embedding resized, then transposed) one preparation graph-only, as it
 * is one fold with weights, so weights change what folds and nothing else.
 */
export function isWeightPreparation(graph: Graph, node: Node): boolean {
  if (node.inputs.length === 0) return false;
  const prepared = preparedTensors(graph);
  return node.inputs.every((i) => !i || isStatic(graph.lookupTensor(i)) || prepared.has(i));
}

// Per graph while its node list is unchanged (the cost pass, the memory plan, support and codegen ask per node).
const preparedCache = new WeakMap<Graph, { nodes: Node[]; count: number; prepared: Set<string> }>();

/** Outputs of weight-preparation nodes that are not constants yet (graph-only models). */
function preparedTensors(graph: Graph): Set<string> {
  const cached = preparedCache.get(graph);
  if (cached && cached.nodes === graph.nodes && cached.count === graph.nodes.length) return cached.prepared;
  const prepared = new Set<string>();
  const done = new Set<Node>();
  // Nodes are in topological order after every pass, so one sweep finds them all; sweeps repeat while one adds any.
  for (let changed = true; changed;) {
    changed = false;
    for (const node of graph.nodes) {
      if (done.has(node) || node.inputs.length === 0) continue;
      if (!node.inputs.every((i) => !i || isStatic(graph.lookupTensor(i)) || prepared.has(i))) continue;
      done.add(node);
      for (const o of node.outputs) if (o) prepared.add(o);
      changed = true;
    }
  }
  preparedCache.set(graph, { nodes: graph.nodes, count: graph.nodes.length, prepared });
  return prepared;
}

/**
 * Shape arithmetic on symbolic dims (Shape, Gather/Concat of shape values, …): every output is a small integer
 * tensor whose contents are known as expressions of the symbols. The runtime evaluates these on the host from the
 * actual batch; no kernel runs.
 */
export function isShapeComputation(graph: Graph, node: Node): boolean {
  return node.outputs.length > 0 && node.outputs.every((o) => !o || graph.lookupTensor(o)?.shapeValue !== undefined);
}

/** Whether a node launches a kernel per inference (views, weight preparation and shape arithmetic do not). */
export function isKernel(graph: Graph, node: Node): boolean {
  return !VIEW_OPS.has(node.op) && !isWeightPreparation(graph, node) && !isShapeComputation(graph, node);
}

export function roleOf(graph: Graph, node: Node): NonNullable<Node['role']> {
  if (isWeightPreparation(graph, node)) return 'weight-preparation';
  if (isShapeComputation(graph, node)) return 'shape';
  if (VIEW_OPS.has(node.op)) return 'view';
  return 'kernel';
}

/** Value of a dim at `batch`: symbols from model inputs take the batch (within bounds), others their maximum. */
export function dimAt(graph: Graph, d: Dim, batch: number): number {
  return evaluateDim(d, (s) => {
    const info = graph.symbols.get(s);
    if (!info) return batch;
    return info.origin.includes('model input') ? Math.min(Math.max(batch, info.min), info.max) : info.max;
  });
}

export function elementsAt(graph: Graph, name: string, batch: number): number {
  const shape = graph.lookupTensor(name)?.shape;
  if (!shape) return 0;
  return shape.reduce<number>((a, d) => a * dimAt(graph, d, batch), 1);
}

/**
 * Storage bytes on the GPU: float32/float64 tensors are fp16, or fp32 where the storage-precision pass says so
 * (`storage` is TensorInfo.storage).
 */
export function storageBytes(dtype: DType | undefined, elements: number, storage?: 'float32'): number {
  if (!dtype) return 0;
  if (dtype === 'float32' || dtype === 'float64') return elements * (storage === 'float32' ? 4 : 2);
  return dtypeBytes(dtype, elements);
}

export function tensorBytesAt(graph: Graph, name: string, batch: number): number {
  const t = graph.lookupTensor(name);
  return storageBytes(t?.dtype, elementsAt(graph, name, batch), t?.storage);
}

export function nodeCost(graph: Graph, node: Node, batch: number): NodeCost {
  if (!isKernel(graph, node)) return { flops: 0, bytes: 0, batch };
  const out = node.outputs[0] ? elementsAt(graph, node.outputs[0], batch) : 0;
  let bytes = 0;
  for (const i of node.inputs) if (i) bytes += tensorBytesAt(graph, i, batch);
  for (const o of node.outputs) if (o) bytes += tensorBytesAt(graph, o, batch);
  let flops = out;
  const shapeOf = (name: string) => (graph.lookupTensor(name)?.shape ?? []).map((d) => dimAt(graph, d, batch));
  switch (node.op) {
    case 'conv2d': {
      const w = shapeOf(node.inputs[1]); // K R S C/g
      flops = 2 * out * w[1] * w[2] * w[3] + out * epilogueOf(node).length;
      break;
    }
    case 'conv3d': {
      const w = shapeOf(node.inputs[1]); // K T R S C/g
      flops = 2 * out * w[1] * w[2] * w[3] * w[4] + out * epilogueOf(node).length;
      break;
    }
    case 'conv_transpose2d': {
      // every input pixel times every tap of its group's weights: N·H·W · C · KH·KW·M/group multiply-adds
      const x = shapeOf(node.inputs[0]);
      const w = shapeOf(node.inputs[1]); // KH KW M/g C
      flops = 2 * x[0] * x[1] * x[2] * x[3] * w[0] * w[1] * w[2] + out * epilogueOf(node).length;
      break;
    }
    case 'gemm': {
      const a = shapeOf(node.inputs[0]);
      flops = 2 * out * a[a.length - 1] + out * epilogueOf(node).length;
      break;
    }
    case 'MatMul': {
      const a = shapeOf(node.inputs[0]);
      flops = 2 * out * a[a.length - 1];
      break;
    }
    case 'attention': {
      const heads = attrInt(node, 'num_heads');
      const d = attrInt(node, 'head_dim');
      const [b, s] = shapeOf(node.inputs[0]);
      // keys: the k/v input's length (packed qkv: the queries')
      const first = attentionQkvInputs(node);
      const sk = first === 1 ? s : shapeOf(node.inputs[first - 1])[1];
      // Q·Kᵀ over d, P·V over the values' head dim
      const dv = attrInt(node, 'value_head_dim', d);
      flops = 2 * b * heads * s * sk * (d + dv) + 5 * b * heads * s * sk;
      break;
    }
    case 'layernorm':
    case 'LayerNormalization':
    case 'Softmax':
    case 'LogSoftmax':
    case 'LpNormalization':
    case 'InstanceNormalization':
    case 'GroupNormalization':
      flops = 8 * out;
      break;
    case 'elementwise':
      flops = out * subgraphsOf(node)[0].nodes.length;
      break;
    case 'PasteMasks':
      // a bilinear sample (4 taps, 8 multiply-adds) per canvas pixel: an upper bound, pixels outside a box are 0
      flops = 8 * out;
      break;
    case 'pool2d':
    case 'pool3d': {
      const k = node.attrs.kernel;
      flops = out * (k && k.type === 'ints' ? k.value.reduce((a, b) => a * b, 1) : 1);
      break;
    }
    case 'global_pool':
      flops = elementsAt(graph, node.inputs[0], batch);
      break;
    case 'LSTM':
    case 'GRU': {
      // per step, direction and batch entry: four (GRU: three) gates of (input + hidden) multiply-adds per hidden unit
      const w = shapeOf(node.inputs[1]); // dirs, 4H, input
      const r = shapeOf(node.inputs[2]); // dirs, 4H, H
      const x = shapeOf(node.inputs[0]); // seq·batch·input in either layout
      const steps = (x[0] * x[1]) as number;
      flops = 2 * steps * w[0] * w[1] * (w[2] + r[2]) + 10 * steps * w[0] * r[2];
      break;
    }
  }
  return { flops, bytes, batch };
}

export const costPass: Pass = {
  name: 'cost',
  description: 'annotate every node with FLOPs and minimum bytes moved at the chosen batch',
  run(graph, ctx) {
    let flops = 0;
    let bytes = 0;
    let kernels = 0;
    for (const n of graph.nodes) {
      const c = nodeCost(graph, n, ctx.batch);
      n.cost = c;
      n.role = roleOf(graph, n);
      flops += c.flops;
      bytes += c.bytes;
      if (isKernel(graph, n)) kernels++;
    }
    ctx.reports.cost = { batch: ctx.batch, flops, bytes, kernels };
  },
};
