/**
 * Partitioning (`ait compile --partition`): the ONNX graph split into segments the target compiles and segments
 * that run elsewhere (onnxruntime), so that a model with nodes the target cannot run still runs.
 *
 * The split is made on the ONNX-level graph (imported and shape-inferred), so that every tensor crossing a segment
 * border is a tensor of the user's model, in its exported layout and under its own name; each segment is then an
 * ONNX model of its own (extract.ts). Which ONNX node goes where comes from the optimized graph's support check
 * (`classOf`, see compile-partitioned.ts):
 *   - `compiled`: part of a kernel node the target runs;
 *   - `fallback`: part of a node the target cannot run;
 *   - `flexible`: no kernel of its own (a view, a no-op the optimizer removed): joins the segment of its inputs;
 *   - `shape`: every output is a compile-time value or shape arithmetic (Shape → Gather → Concat): owned by no
 *     segment, recomputed (or embedded as a constant) in every segment that reads it, so that a compiled segment
 *     sees its shapes as constants rather than as run-time tensors.
 *
 * Segments are assigned greedily in topological order: a node goes to the earliest segment of its kind whose index
 * is at least that of every segment its inputs come from, else to a new segment at the end. Every edge therefore
 * goes from a segment to itself or a later one: the segments run in index order and none depends on itself through
 * another (no cycle), while independent branches with the same kind share a segment (few segments).
 */
import { Graph, Node, subgraphsOf } from '../ir/graph';
import { numel } from '../ir/tensor';

export type NodeClass = 'compiled' | 'fallback' | 'flexible' | 'shape';
export type SegmentKind = 'compiled' | 'fallback';

export interface PlannedSegment {
  index: number;
  kind: SegmentKind;
  /** Nodes this segment computes for the others (their outputs may cross). */
  owned: Node[];
  /** Everything the segment's model holds, in graph order: owned nodes and the shape nodes it recomputes. */
  nodes: Node[];
  /** Tensors that come from earlier segments or the model's inputs. */
  inputs: string[];
  /** Tensors later segments read, and model outputs. */
  outputs: string[];
  /** Initializers the segment's nodes read. */
  initializers: string[];
  /** Folded values (compile-time constants of the whole model) the segment reads, embedded as initializers. */
  constants: string[];
}

/** Folded values up to this many elements are embedded where read rather than recomputed. */
const MAX_EMBEDDED_ELEMENTS = 1 << 16;

/** Tensors a node reads: its inputs and what its subgraphs (If/Loop bodies) read from outside. */
export function readsOf(node: Node): string[] {
  const reads = node.inputs.filter((i) => i !== '');
  for (const g of subgraphsOf(node)) reads.push(...g.outerReads());
  return [...new Set(reads)];
}

/**
 * Splits `graph` (an ONNX-level graph after shape inference, nodes in topological order) into segments. Returns
 * them in execution order; every segment has at least one owned node.
 */
export function planSegments(graph: Graph, classOf: (node: Node) => NodeClass): PlannedSegment[] {
  const classes = new Map<Node, NodeClass>(graph.nodes.map((n) => [n, classOf(n)]));
  const segmentOfTensor = new Map<string, number>(); // -1: model input, initializer or constant
  const kinds: SegmentKind[] = [];
  const owned: Node[][] = [];

  for (const node of graph.nodes) {
    let m = -1;
    for (const t of readsOf(node)) m = Math.max(m, segmentOfTensor.get(t) ?? -1);
    const cls = classes.get(node)!;
    let seg: number;
    if (cls === 'shape') {
      for (const o of node.outputs) if (o) segmentOfTensor.set(o, m);
      continue;
    }
    if (cls === 'flexible') {
      seg = Math.max(m, 0);
      if (seg >= kinds.length) {
        kinds.push('compiled');
        owned.push([]);
      }
    } else {
      seg = kinds.findIndex((k, j) => j >= m && k === cls);
      if (seg < 0) {
        seg = kinds.length;
        kinds.push(cls);
        owned.push([]);
      }
    }
    owned[seg].push(node);
    for (const o of node.outputs) if (o) segmentOfTensor.set(o, seg);
  }

  return closeSegments(graph, kinds, owned);
}

/**
 * Segments from the nodes each owns (`owned[k]`, of kind `kinds[k]`; every edge from a segment to itself or a later
 * one, except where the caller checks otherwise, as `ait compile --module` does): each one's closure (its owned
 * nodes plus the shape nodes it recomputes), the tensors it reads from elsewhere and those the others read from it.
 * Nodes owned by no segment are shape nodes (recomputed or embedded where read).
 */
export function closeSegments(graph: Graph, kinds: SegmentKind[], owned: Node[][]): PlannedSegment[] {
  const producer = graph.producers();
  const initializers = new Set([...graph.tensors.values()].filter((t) => t.kind === 'param').map((t) => t.name));
  const segmentOfNode = new Map<Node, number>();
  owned.forEach((nodes, k) => nodes.forEach((n) => segmentOfNode.set(n, k)));
  // Closures: each segment's nodes plus the shape nodes it recomputes; what it reads from elsewhere.
  const order = new Map(graph.nodes.map((n, i) => [n, i]));
  const segments: PlannedSegment[] = owned.map((nodes, index) => ({
    index,
    kind: kinds[index],
    owned: nodes,
    nodes: [],
    inputs: [],
    outputs: [],
    initializers: [],
    constants: [],
  }));
  const readers = new Map<string, Set<number>>(); // tensor → segments that read it as an input
  for (const s of segments) {
    const members = new Set<Node>(s.owned);
    const inputs = new Set<string>();
    const inits = new Set<string>();
    const constants = new Set<string>();
    const visit = (t: string, stack: Node[]) => {
      const p = producer.get(t);
      if (p && members.has(p)) return;
      if (!p) {
        if (initializers.has(t)) inits.add(t);
        else inputs.add(t); // a model input
        return;
      }
      const info = graph.tensors.get(t);
      if (segmentOfNode.has(p)) inputs.add(t);
      else if (info?.value && !Array.isArray(info.value.data) && numel(info.value.shape) <= MAX_EMBEDDED_ELEMENTS) constants.add(t);
      else {
        members.add(p);
        stack.push(p);
      }
    };
    const stack = [...s.owned];
    while (stack.length) for (const t of readsOf(stack.pop()!)) visit(t, stack);
    s.nodes = [...members].sort((a, b) => order.get(a)! - order.get(b)!);
    s.inputs = sortedByOrder([...inputs], graph, producer, order);
    s.initializers = [...inits].sort();
    s.constants = [...constants].sort();
    for (const t of inputs) {
      if (!readers.has(t)) readers.set(t, new Set());
      readers.get(t)!.add(s.index);
    }
  }
  // Model outputs that no owned node produces (shape arithmetic, a constant): recomputed by the last segment.
  const last = segments[segments.length - 1];
  const outputsOf = new Map<number, Set<string>>(segments.map((s) => [s.index, new Set<string>()]));
  for (const o of graph.outputs) {
    const p = producer.get(o);
    if (p && segmentOfNode.has(p)) outputsOf.get(segmentOfNode.get(p)!)!.add(o);
    else if (p && last && !last.nodes.includes(p)) {
      const members = new Set(last.nodes);
      const pending = [p];
      while (pending.length) {
        const n = pending.pop()!;
        if (members.has(n)) continue;
        members.add(n);
        for (const t of readsOf(n)) {
          const q = producer.get(t);
          if (q && !members.has(q)) {
            if (segmentOfNode.has(q)) {
              if (!last.inputs.includes(t)) last.inputs.push(t);
              if (!readers.has(t)) readers.set(t, new Set());
              readers.get(t)!.add(last.index);
            } else pending.push(q);
          } else if (!q && initializers.has(t) && !last.initializers.includes(t)) last.initializers.push(t);
          else if (!q && !initializers.has(t) && !last.inputs.includes(t)) last.inputs.push(t);
        }
      }
      last.nodes = [...members].sort((a, b) => order.get(a)! - order.get(b)!);
      outputsOf.get(last.index)!.add(o);
    } else if (p && last) outputsOf.get(last.index)!.add(o);
  }
  for (const [t, segs] of readers) {
    const p = producer.get(t);
    const from = p ? segmentOfNode.get(p) : undefined;
    if (from !== undefined && [...segs].some((k) => k !== from)) outputsOf.get(from)!.add(t);
  }
  for (const s of segments) s.outputs = sortedByOrder([...outputsOf.get(s.index)!], graph, producer, order);
  return segments;
}

/** Tensors in the order their producers run (model inputs first, in the model's order). */
function sortedByOrder(names: string[], graph: Graph, producer: Map<string, Node>, order: Map<Node, number>): string[] {
  const rank = (t: string) => {
    const p = producer.get(t);
    return p ? order.get(p)! : graph.inputs.indexOf(t) - graph.inputs.length - 1;
  };
  return names.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
}
