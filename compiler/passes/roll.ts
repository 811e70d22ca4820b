/**
 * Cyclic shifts (torch.roll) as one `ait.Roll` node (ops/shape.ts). Exporters write a roll along one axis as a Concat
 * of Slices of one tensor along that axis — torch.roll(x, -s, 1) is cat(x[:, s:], x[:, :s], dim=1) — and a roll over
 * two axes as two of those, one reading the other (Swin's shifted windows: before the window partition and after the
 * reverse). Each Slice and the Concat are a copy of the whole tensor; the Roll is one.
 *
 * A Concat along axis a becomes Roll(X, axes [a], shifts [k]) when:
 *   - every input is the output of a Slice of the same tensor X that nothing else reads (no other node, subgraph or
 *     graph output), listed once;
 *   - each Slice has constant starts, axes and steps, every step 1, and on each axis other than a it keeps the whole
 *     axis (start 0 after ONNX's normalization and clamping, output size equal to X's);
 *   - X's axis a is concrete (size n), and the pieces, in Concat order, are contiguous runs [b_i, b_i + len_i) (ends
 *     read off the Slice's inferred output size) with b_{i+1} = (b_i + len_i) mod n and Σ len_i = n: they cover the
 *     axis once, cyclically, from b_0. The output is then X read from b_0 on, a roll by k = (n − b_0) mod n.
 * Pieces that skip or repeat elements, other steps, Slices of different tensors or with other readers stay as they
 * are. A roll by 0 (the pieces in order from 0) is X itself: the Concat is removed.
 *
 * A Roll whose input is a Roll that nothing else reads merges into it: the shifts add per axis (mod n), so the 2-D
 * roll is one node, and one that adds up to no shift is removed. Symbolic dims (the batch) may be on other axes.
 */
import { Graph, Node, attrInt, attrInts, subgraphsOf } from '../ir/graph';
import { Dim, dimEquals, isConcrete } from '../ir/symbolic';
import { numeric } from '../ir/tensor';
import { FUSED_DOMAIN } from '../ops/fused';
import { rollParams, rollShift } from '../ops/shape';
import { Pass, PassContext } from './pass';
import { absorb, bypassNode, liveNodes, valueOf } from './rewrite';

export const rollPass: Pass = {
  name: 'roll',
  description: 'Concat of Slices that cover an axis cyclically (torch.roll) → one Roll; consecutive Rolls merged',
  run(graph, ctx) {
    let changed = true;
    for (let round = 0; changed && round < 4; round++) {
      changed = concatsToRolls(graph, ctx);
      changed = mergeRolls(graph, ctx) || changed;
    }
  },
};

/** A Slice's constant starts and steps per sliced axis (axes normalized; starts as given); undefined if not constant. */
export function sliceBounds(graph: Graph, node: Node, rank: number): { axis: number; start: number; step: number }[] | undefined {
  const ints = (i: number) => {
    const v = node.inputs[i] ? valueOf(graph, node.inputs[i]) : undefined;
    return v && !Array.isArray(v.data) ? Array.from(numeric(v)) : undefined;
  };
  let starts: number[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (node.inputs.length === 1) {
    // before opset 10: attributes
    starts = attrInts(node, 'starts', []);
    axes = attrInts(
      node,
      'axes',
      starts.map((_, i) => i),
    );
    steps = starts.map(() => 1);
  } else {
    starts = ints(1);
    axes = node.inputs[3] ? ints(3) : starts?.map((_, i) => i);
    steps = node.inputs[4] ? ints(4) : starts?.map(() => 1);
  }
  if (!starts || !axes || !steps || axes.length !== starts.length || steps.length !== starts.length) return undefined;
  const out: { axis: number; start: number; step: number }[] = [];
  for (let k = 0; k < starts.length; k++) {
    const axis = axes[k] < 0 ? axes[k] + rank : axes[k];
    if (axis < 0 || axis >= rank) return undefined;
    out.push({ axis, start: starts[k], step: steps[k] });
  }
  return out;
}

/**
 * Where a step-1 slice of an axis of size `dim` starts after ONNX's normalization (a negative start counts from the
 * end; clamped to [0, dim]); undefined when it depends on a run-time size.
 */
function normalizedStart(start: number, dim: Dim): number | undefined {
  if (start === 0) return 0;
  if (!isConcrete(dim)) return undefined;
  const s = start < 0 ? start + dim : start;
  return Math.min(Math.max(s, 0), dim);
}

/**
 * Whether `node` (a Slice) is the identity: every step 1, every start 0 after normalization, and the output shape
 * equal to the input's (with start 0 and step 1, the same size means the end reaches the end of the axis). Its
 * readers can read its input.
 */
export function isIdentitySlice(graph: Graph, node: Node): boolean {
  if (node.op !== 'Slice' || node.domain !== '') return false;
  const inShape = graph.lookupTensor(node.inputs[0])?.shape;
  const outShape = graph.lookupTensor(node.outputs[0])?.shape;
  if (!inShape || !outShape || inShape.length !== outShape.length) return false;
  if (!inShape.every((d, i) => dimEquals(d, outShape[i]))) return false;
  const bounds = sliceBounds(graph, node, inShape.length);
  return !!bounds && bounds.every((b) => b.step === 1 && normalizedStart(b.start, inShape[b.axis]) === 0);
}

/** Tensors read by a subgraph of some node, or a graph output: a Slice writing one has a reader beyond the Concat. */
function readElsewhere(graph: Graph): Set<string> {
  return new Set<string>([...graph.outputs, ...graph.nodes.flatMap((n) => subgraphsOf(n).flatMap((g) => [...g.outerReads()]))]);
}

/** The roll a Concat of Slices amounts to, or undefined (see the file comment for the conditions). */
export function matchRoll(
  graph: Graph,
  concat: Node,
  producers: Map<string, Node>,
  consumers: Map<string, Node[]>,
  elsewhere: ReadonlySet<string>,
): { x: string; axis: number; shift: number; slices: Node[] } | undefined {
  const inputs = concat.inputs;
  if (concat.op !== 'Concat' || concat.domain !== '' || inputs.length < 2 || inputs.some((i) => !i)) return undefined;
  if (new Set(inputs).size !== inputs.length) return undefined;
  const slices = inputs.map((i) => producers.get(i));
  if (slices.some((s) => s?.op !== 'Slice' || s.domain !== '')) return undefined;
  const x = slices[0]!.inputs[0];
  const xShape = graph.lookupTensor(x)?.shape;
  const outShape = graph.lookupTensor(concat.outputs[0])?.shape;
  if (!xShape || !outShape || xShape.length !== outShape.length) return undefined;
  const rank = xShape.length;
  const axis = attrInt(concat, 'axis') < 0 ? attrInt(concat, 'axis') + rank : attrInt(concat, 'axis');
  const n = xShape[axis];
  if (axis < 0 || axis >= rank || !isConcrete(n) || n <= 0) return undefined;
  let b0: number | undefined; // where the first (non-empty) piece starts
  let next: number | undefined; // where the next piece must start
  let covered = 0;
  for (let k = 0; k < slices.length; k++) {
    const slice = slices[k]!;
    const out = inputs[k];
    if (slice.inputs[0] !== x || elsewhere.has(out) || (consumers.get(out) ?? []).some((r) => r !== concat)) return undefined;
    const shape = graph.lookupTensor(out)?.shape;
    const bounds = sliceBounds(graph, slice, rank);
    if (!shape || shape.length !== rank || !bounds) return undefined;
    if (bounds.some((b) => b.step !== 1)) return undefined;
    // whole on every other axis
    for (let d = 0; d < rank; d++) if (d !== axis && !dimEquals(shape[d], xShape[d])) return undefined;
    if (bounds.some((b) => b.axis !== axis && normalizedStart(b.start, xShape[b.axis]) !== 0)) return undefined;
    const on = bounds.filter((b) => b.axis === axis);
    if (on.length > 1) return undefined;
    const start = on.length ? normalizedStart(on[0].start, n) : 0;
    const len = shape[axis];
    if (start === undefined || !isConcrete(len) || len < 0 || start + len > n) return undefined;
    if (len === 0) continue; // an empty piece adds nothing
    if (next !== undefined && start !== next) return undefined;
    b0 ??= start;
    next = (start + len) % n;
    covered += len;
    if (covered > n) return undefined;
  }
  // contiguous pieces of total length n from b_0: each element once, the output reads X from b_0 on
  if (covered !== n || b0 === undefined) return undefined;
  return { x, axis, shift: rollShift(n - b0, n), slices: slices as Node[] };
}

function concatsToRolls(graph: Graph, ctx: PassContext): boolean {
  let changed = false;
  const producers = graph.producers();
  const consumers = graph.consumers();
  const elsewhere = readElsewhere(graph);
  const isLive = liveNodes(graph);
  const removed = new Set<Node>(); // dropped from graph.nodes once at the end: linear in the graph
  for (const node of [...graph.nodes]) {
    if (node.op !== 'Concat' || !isLive(node)) continue;
    const m = matchRoll(graph, node, producers, consumers, elsewhere);
    if (!m) continue;
    const sliceOutputs = new Set(m.slices.map((s) => s.outputs[0]));
    for (const s of m.slices) removed.add(s);
    for (const t of sliceOutputs) graph.tensors.delete(t);
    absorb(node, ...m.slices);
    node.op = 'Roll';
    node.domain = FUSED_DOMAIN;
    node.inputs = [m.x];
    node.attrs = { axes: { type: 'ints', value: [m.axis] }, shifts: { type: 'ints', value: [m.shift] } };
    if (m.shift === 0) bypassNode(graph, node, m.x, node.outputs[0], ctx, 'roll by 0 (slices in order) removed');
    changed = true;
  }
  if (removed.size > 0) graph.nodes = graph.nodes.filter((n) => !removed.has(n));
  return changed;
}

/** Roll(Roll(x)) with the inner one read only by the outer → one Roll over both's axes. */
function mergeRolls(graph: Graph, ctx: PassContext): boolean {
  let changed = false;
  const producers = graph.producers();
  const consumers = graph.consumers();
  const elsewhere = readElsewhere(graph);
  const isLive = liveNodes(graph);
  const removed = new Set<Node>();
  for (const outer of [...graph.nodes]) {
    if (outer.op !== 'Roll' || outer.domain !== FUSED_DOMAIN || removed.has(outer) || !isLive(outer)) continue;
    const inner = producers.get(outer.inputs[0]);
    if (inner?.op !== 'Roll' || inner.domain !== FUSED_DOMAIN) continue;
    const mid = inner.outputs[0];
    if (elsewhere.has(mid) || (consumers.get(mid) ?? []).some((r) => r !== outer)) continue;
    const shape = graph.lookupTensor(inner.inputs[0])?.shape;
    if (!shape) continue;
    const shift = new Map<number, number>();
    for (const r of [inner, outer]) {
      const { axes, shifts } = rollParams(r, shape.length);
      axes.forEach((a, k) => shift.set(a, rollShift((shift.get(a) ?? 0) + shifts[k], shape[a] as number)));
    }
    const axes = [...shift.keys()].filter((a) => shift.get(a) !== 0).sort((a, b) => a - b);
    absorb(outer, inner);
    outer.inputs = [inner.inputs[0]];
    outer.attrs = { axes: { type: 'ints', value: axes }, shifts: { type: 'ints', value: axes.map((a) => shift.get(a)!) } };
    removed.add(inner);
    graph.tensors.delete(mid);
    if (axes.length === 0) bypassNode(graph, outer, outer.inputs[0], outer.outputs[0], ctx, 'rolls adding up to no shift removed');
    changed = true;
  }
  if (removed.size > 0) graph.nodes = graph.nodes.filter((n) => !removed.has(n));
  return changed;
}
