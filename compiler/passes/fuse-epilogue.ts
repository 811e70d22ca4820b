/**
 * Conv and GEMM fusion with explicit epilogues.
 *
 *   Gemm(A, B, C) and MatMul(A, W static 2-D) → gemm; then, for conv2d, conv_transpose2d and gemm alike, the ops
 *   that follow are absorbed while the intermediate has a single reader: Add/Mul with a per-output-channel static
 *   operand (bias, scale), activations (Relu, Gelu, Sigmoid, Tanh, LeakyRelu, Clip, HardSwish, HardSigmoid,
 *   x·sigmoid(x)), and one residual Add of an activation of the same shape (then any activation after it).
 *
 * The fused node moves to the position of the last op it absorbed, where every operand it reads is computed.
 */
import { Graph, Node, attrFloat, attrInt, attrString } from '../ir/graph';
import { shapeEquals, isConcrete, Dim } from '../ir/symbolic';
import { makeTensor } from '../ir/tensor';
import { EPILOGUE_OPERAND_STEPS, FUSED_DOMAIN, epilogueOf } from '../ops/fused';
import { Pass } from './pass';
import { absorb, addConstant, isStatic, scalarValue } from './rewrite';

export const fuseGemmPass: Pass = {
  name: 'fuse-gemm',
  description: 'Gemm / MatMul with a static weight → gemm, with bias, activation and residual epilogues',
  run(graph) {
    for (const node of [...graph.nodes]) toGemm(graph, node);
    const edits = new EpilogueEdits(graph);
    for (const node of [...graph.nodes]) if (node.op === 'gemm' && !edits.removed.has(node)) absorbEpilogue(graph, node, edits);
    edits.apply(graph);
  },
};

export const fuseConvPass: Pass = {
  name: 'fuse-conv',
  description: 'conv2d / conv3d / conv_transpose2d + bias + activation + residual add (+ activation) into one op',
  run(graph) {
    const edits = new EpilogueEdits(graph);
    for (const node of [...graph.nodes])
      if (
        (node.op === 'conv2d' || node.op === 'conv3d' || node.op === 'conv_transpose2d') &&
        node.domain === FUSED_DOMAIN &&
        !edits.removed.has(node)
      )
        absorbEpilogue(graph, node, edits);
    edits.apply(graph);
  },
};

/**
 * What epilogue fusion changes, kept as it goes so that each absorbed op costs time in its own size, not the
 * graph's: the readers of every tensor, the nodes absorbed, and where each fused node moves. graph.nodes is
 * rewritten once, by apply().
 */
export class EpilogueEdits {
  private readonly readersOf = new Map<string, Set<Node>>();
  /** Nodes absorbed into a fused node. */
  readonly removed = new Set<Node>();
  /** fused node → the absorbed node whose position it takes */
  private readonly moves = new Map<Node, Node>();

  constructor(graph: Graph) {
    for (const n of graph.nodes) for (const i of n.inputs) if (i) this.read(n, i);
  }

  readers(tensor: string): Node[] {
    return [...(this.readersOf.get(tensor) ?? [])];
  }

  read(node: Node, tensor: string): void {
    const set = this.readersOf.get(tensor);
    if (set) set.add(node);
    else this.readersOf.set(tensor, new Set([node]));
  }

  /** `absorbed` leaves the graph; when `into` is given, `into` takes its position. */
  remove(absorbed: Node, into?: Node): void {
    for (const i of absorbed.inputs) if (i) this.readersOf.get(i)?.delete(absorbed);
    this.removed.add(absorbed);
    if (into) this.moves.set(into, absorbed);
  }

  apply(graph: Graph): void {
    if (this.removed.size === 0) return;
    const at = new Map<Node, Node>();
    for (const [node, place] of this.moves) at.set(place, node);
    graph.nodes = graph.nodes.flatMap((n) => (at.has(n) ? [at.get(n)!] : this.removed.has(n) || this.moves.has(n) ? [] : [n]));
  }
}

function toGemm(graph: Graph, node: Node): void {
  if (node.op === 'Gemm') {
    if (attrInt(node, 'transA', 0) !== 0 || attrFloat(node, 'alpha', 1) !== 1) return;
    const c = node.inputs[2];
    const beta = attrFloat(node, 'beta', 1);
    const inputs = [node.inputs[0], node.inputs[1]];
    const epilogue: string[] = [];
    if (c) {
      if (beta !== 1) return;
      const vec = channelVector(graph, c, outChannels(graph, node));
      if (!vec) return;
      inputs.push(vec);
      epilogue.push('bias');
    }
    node.op = 'gemm';
    node.domain = FUSED_DOMAIN;
    node.inputs = inputs;
    node.attrs = { trans_b: { type: 'int', value: attrInt(node, 'transB', 0) }, epilogue: { type: 'strings', value: epilogue } };
  } else if (node.op === 'MatMul') {
    const w = graph.lookupTensor(node.inputs[1]);
    const a = graph.lookupTensor(node.inputs[0]);
    if (!isStatic(w) || w!.shape?.length !== 2 || (a?.shape?.length ?? 0) < 2) return;
    node.op = 'gemm';
    node.domain = FUSED_DOMAIN;
    node.attrs = { trans_b: { type: 'int', value: 0 }, epilogue: { type: 'strings', value: [] } };
  }
}

function outChannels(graph: Graph, node: Node): Dim | undefined {
  const s = graph.lookupTensor(node.outputs[0])?.shape;
  return s?.[s.length - 1];
}

/**
 * A static operand that holds one value per output channel (shape [N], [1,…,1,N]) or a scalar, as a 1-D
 * tensor name (reshaped by a foldable node when needed); undefined otherwise.
 */
function channelVector(graph: Graph, name: string, channels: Dim | undefined): string | undefined {
  const t = graph.lookupTensor(name);
  if (!isStatic(t) || !t!.shape || channels === undefined || !isConcrete(channels)) return undefined;
  const shape = t!.shape;
  const n = shape.reduce<number>((a, d) => a * (isConcrete(d) ? d : NaN), 1);
  const lastOk = shape.length === 0 || shape[shape.length - 1] === channels || n === 1;
  if (!lastOk || !(n === channels || n === 1)) return undefined;
  if (shape.length === 1 && n === channels) return name;
  // reshape to [channels] (broadcast a scalar) with a foldable node
  const out = graph.newTensorName(`${name}_vec`);
  if (t!.value && !Array.isArray(t!.value.data)) {
    const data = t!.value.data;
    const vec = makeTensor(t!.value.dtype, [channels], n === 1 ? new Array(channels).fill(data[0]) : Array.from(data));
    graph.addTensor({
      name: out,
      kind: t!.kind === 'param' ? 'param' : 'constant',
      dtype: t!.dtype,
      shape: [channels],
      value: vec,
      weights: t!.kind === 'param' ? 'present' : undefined,
    });
    return out;
  }
  if (n !== channels) return undefined; // a scalar parameter without a value: leave it
  graph.addTensor({ name: out, kind: 'param', dtype: t!.dtype, shape: [channels] });
  const shapeConst = addConstant(graph, `${out}_shape`, makeTensor('int64', [1], [channels]));
  const producerIndex = graph.nodes.findIndex((n2) => n2.outputs.includes(name));
  graph.nodes.splice(producerIndex + 1, 0, {
    id: graph.newNodeId(),
    op: 'Reshape',
    domain: '',
    name: `${name}/to_vector`,
    inputs: [name, shapeConst],
    outputs: [out],
    attrs: {},
    sourceNodes: [],
    scope: [],
  });
  return out;
}

const ACTIVATIONS: Record<string, (graph: Graph, n: Node) => string | undefined> = {
  Relu: () => 'relu',
  Sigmoid: () => 'sigmoid',
  Tanh: () => 'tanh',
  HardSwish: () => 'hardswish',
  Gelu: (_g, n) => (attrString(n, 'approximate', 'none') === 'tanh' ? 'gelu_tanh' : 'gelu'),
  LeakyRelu: (_g, n) => `leaky_relu:${attrFloat(n, 'alpha', 0.01)}`,
  HardSigmoid: (_g, n) => `hardsigmoid:${attrFloat(n, 'alpha', 0.2)}:${attrFloat(n, 'beta', 0.5)}`,
  Clip: (g, n) => {
    const lo = n.inputs[1] ? scalarValue(g, n.inputs[1]) : n.attrs.min ? attrFloat(n, 'min') : -Infinity;
    const hi = n.inputs[2] ? scalarValue(g, n.inputs[2]) : n.attrs.max ? attrFloat(n, 'max') : Infinity;
    return lo === undefined || hi === undefined ? undefined : `clip:${lo}:${hi}`;
  },
};

/**
 * Absorbs the ops after `node` (conv2d, conv_transpose2d or gemm) into its epilogue. Passes share one EpilogueEdits
 * over all their nodes (and apply it at the end); without one, the graph is updated before this returns.
 */
export function absorbEpilogue(graph: Graph, node: Node, shared?: EpilogueEdits): void {
  const edits = shared ?? new EpilogueEdits(graph);
  const epilogue = [...epilogueOf(node)];
  let hasResidual = epilogue.includes('residual_add');
  for (;;) {
    const y = node.outputs[0];
    const readers = edits.readers(y);
    // x · sigmoid(x): y is read by a Sigmoid and by the Mul of both
    const siluMul =
      readers.length === 2
        ? readers.find((m) => m.op === 'Mul' && readers.some((s) => s.op === 'Sigmoid' && m.inputs.includes(s.outputs[0])))
        : undefined;
    const r = siluMul ?? (readers.length === 1 && !graph.outputs.includes(y) ? readers[0] : undefined);
    if (!r || r.outputs.length !== 1 || graph.outputs.includes(y)) break;
    const other = r.inputs.length === 2 ? (r.inputs[0] === y ? r.inputs[1] : r.inputs[0]) : undefined;
    let step: string | undefined;
    let operand: string | undefined;
    if (r === siluMul) {
      const sig = readers.find((s) => s.op === 'Sigmoid')!;
      if (edits.readers(sig.outputs[0]).length !== 1) break;
      step = 'silu';
      absorb(node, sig);
      edits.remove(sig);
      graph.tensors.delete(sig.outputs[0]);
    } else if (ACTIVATIONS[r.op] && r.inputs[0] === y) step = ACTIVATIONS[r.op](graph, r);
    else if ((r.op === 'Add' || r.op === 'Mul') && other && other !== y) {
      const vec = channelVector(graph, other, outChannels(graph, node));
      if (vec) {
        step = r.op === 'Add' ? 'bias' : 'scale';
        operand = vec;
      } else if (r.op === 'Add' && !hasResidual && !isStatic(graph.lookupTensor(other))) {
        const ys = graph.lookupTensor(y)?.shape;
        const os = graph.lookupTensor(other)?.shape;
        const outS = graph.lookupTensor(r.outputs[0])?.shape;
        if (ys && os && outS && shapeEquals(ys, os) && shapeEquals(ys, outS)) {
          step = 'residual_add';
          operand = other;
          hasResidual = true;
        }
      }
    }
    if (!step) break;
    epilogue.push(step);
    if (operand) {
      if (!EPILOGUE_OPERAND_STEPS.has(step)) throw new Error('epilogue operand for a step without one');
      node.inputs.push(operand);
      edits.read(node, operand);
    }
    // the fused node takes r's place and output
    graph.tensors.delete(y);
    node.outputs = [...r.outputs];
    absorb(node, r);
    edits.remove(r, node);
  }
  node.attrs.epilogue = { type: 'strings', value: epilogue };
  if (!shared) edits.apply(graph);
}
