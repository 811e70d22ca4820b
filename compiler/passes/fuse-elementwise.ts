/**
 * Groups of elementwise ops → one `elementwise` op whose `body` attribute holds the group as a small graph.
 *
 * A group grows upwards from an elementwise node through producers that are elementwise and whose output only
 * the group reads; the group has one output (its last node's). Its body is a DAG: a node may read any input or any
 * earlier node's value (the CUDA backend runs chains as functor chains and other bodies as ew::Dag programs). Groups
 * of one node are left as they are. Weight preparation is not fused: it runs once, and folds when the weights are
 * present.
 *
 * A Concat whose only reader is such a group (or a lone elementwise node, which then becomes a group of one) is not
 * computed: the group reads the Concat's pieces in its place (attribute `concat`, ops/fused.ts ConcatSlot), and the
 * kernel loads each element from the piece that holds it. DenseNet-style "cat, then BatchNorm and ReLU" blocks so
 * skip writing the concatenation and reading it back. A Concat stays when another op or a model output reads it,
 * when its pieces are not float data of its own type, when a piece's extent along the axis is not a compile-time
 * number, when it would give the group more than MAX_CONCAT_PIECES pieces, or when the group's output is not the
 * Concat's shape (the kernels read a concat slot in full, never broadcast).
 *
 * The kernels take their inputs by value, within 4 KB of parameters on every target: a group stops growing, and a
 * Concat stays, where the kernel's parameters would pass ELEMENTWISE_PARAM_BYTES (ops/fused.ts).
 */
import { isFloatType } from '../ir/dtype';
import { Graph, Node, attrGraph, attrInt, subgraphsOf } from '../ir/graph';
import { dimEquals, isConcrete } from '../ir/symbolic';
import {
  ELEMENTWISE_PARAM_BYTES,
  FUSED_DOMAIN,
  MAX_CONCAT_PIECES,
  concatSlotAttribute,
  concatSlotsOf,
  elementwiseParamBytes,
  elementwiseSlotsOf,
} from '../ops/fused';
import { ELEMENTWISE_OPS } from '../ops/op-classes';
import { isShapeComputation, isWeightPreparation } from './cost';
import { Pass } from './pass';
import { absorb } from './rewrite';

export { ELEMENTWISE_OPS };

export const fuseElementwisePass: Pass = {
  name: 'fuse-elementwise',
  description: 'groups of elementwise ops → one elementwise kernel',
  run(graph) {
    // Producers, consumers and positions are computed once: fusing a group only removes nodes that are then
    // `grouped` (never looked at again) and puts a fused node (not elementwise in this sense) in its root's place,
    // so the maps stay right for every later group. graph.nodes is rebuilt once at the end: linear in the graph.
    const producers = graph.producers();
    const consumers = graph.consumers();
    const position = new Map<Node, number>();
    graph.nodes.forEach((n, i) => position.set(n, i));
    const grouped = new Set<Node>();
    const fusedAt = new Map<Node, Node>();
    for (const root of [...graph.nodes].reverse()) {
      if (grouped.has(root) || !isElementwise(graph, root)) continue;
      const group = growGroup(graph, root, grouped, producers, consumers, position);
      if (group.length < 2) continue;
      for (const n of group) grouped.add(n);
      fusedAt.set(root, fuseGroup(graph, root, group));
    }
    if (fusedAt.size > 0) graph.nodes = graph.nodes.flatMap((n) => (fusedAt.has(n) ? [fusedAt.get(n)!] : grouped.has(n) ? [] : [n]));
    absorbConcats(graph);
  },
};

/**
 * Each Concat read only by an elementwise group (or lone elementwise node) becomes a concat slot of that group
 * (see the file comment); the Concat node and its output tensor leave the graph.
 */
function absorbConcats(graph: Graph): void {
  const consumers = graph.consumers();
  const outputs = new Set(graph.outputs);
  // tensors read from inside a subgraph (an If or Loop body): such a reader is not in `consumers`
  const subgraphReads = new Set(
    graph.nodes.filter((n) => n.op !== 'elementwise').flatMap((n) => subgraphsOf(n).flatMap((g) => [...g.outerReads()])),
  );
  const removed = new Set<Node>();
  const replaced = new Map<Node, Node>();
  for (const cat of graph.nodes) {
    if (cat.domain !== '' || cat.op !== 'Concat' || cat.outputs.length !== 1 || isShapeComputation(graph, cat)) continue;
    const out = cat.outputs[0];
    if (outputs.has(out) || subgraphReads.has(out)) continue;
    const readers = [...new Set(consumers.get(out) ?? [])];
    if (readers.length !== 1) continue;
    const original = readers[0];
    const reader = replaced.get(original) ?? original;
    const fusedReader = reader.op === 'elementwise' && reader.domain === FUSED_DOMAIN;
    if (!fusedReader && !isElementwise(graph, reader)) continue;
    if (concatRefusal(graph, cat, reader) !== undefined) continue;
    const fused = fusedReader ? reader : fuseGroup(graph, reader, [reader]);
    readConcatPieces(graph, fused, cat);
    replaced.set(original, fused);
    removed.add(cat);
  }
  if (removed.size > 0) graph.nodes = graph.nodes.flatMap((n) => (removed.has(n) ? [] : [replaced.get(n) ?? n]));
}

/** Why the elementwise node `reader` cannot read Concat `cat`'s pieces in its place; undefined: it can. */
export function concatRefusal(graph: Graph, cat: Node, reader: Node): string | undefined {
  const out = graph.lookupTensor(cat.outputs[0]);
  const result = graph.lookupTensor(reader.outputs[0]);
  if (!out?.shape || !result?.shape || !out.dtype) return 'shapes unknown';
  if (!isFloatType(out.dtype) || (reader.op !== 'elementwise' && mathOf(graph, reader) !== 'float')) return 'not float data';
  const rank = out.shape.length;
  const axis = attrInt(cat, 'axis', 0) < 0 ? attrInt(cat, 'axis', 0) + rank : attrInt(cat, 'axis', 0);
  if (cat.inputs.length < 2 || cat.inputs.some((t) => !t)) return 'fewer than two pieces';
  for (const t of cat.inputs) {
    const info = graph.lookupTensor(t);
    if (info?.dtype !== out.dtype) return `piece '${t}' is ${info?.dtype ?? 'of unknown type'}, the Concat ${out.dtype}`;
    if (!info.shape || info.shape.length !== rank || !isConcrete(info.shape[axis]))
      return `piece '${t}' has no compile-time extent on axis ${axis}`;
  }
  // the kernels read a concat slot in full: element i of the output is element i of the concatenation
  if (result.shape.length !== rank || result.shape.some((d, i) => !dimEquals(d, out.shape![i]))) return 'broadcast to the output';
  // the pieces of all concat slots of one node share the kernel's table of MAX_CONCAT_PIECES
  const already = reader.op === 'elementwise' ? concatSlotsOf(reader).reduce((n, c) => n + c.extents.length, 0) : 0;
  if (already + cat.inputs.length > MAX_CONCAT_PIECES)
    return `${already + cat.inputs.length} concat pieces (the kernel takes ${MAX_CONCAT_PIECES})`;
  // the slot count stays (the Concat's slot becomes a concat slot); its pieces join the kernel's parameters
  const slots = reader.op === 'elementwise' ? elementwiseSlotsOf(reader).length : new Set(reader.inputs.filter((t) => t)).size;
  const nodes = reader.op === 'elementwise' ? attrGraph(reader, 'body').nodes.length : 1;
  const bytes = elementwiseParamBytes(slots, already + cat.inputs.length, nodes);
  if (bytes > ELEMENTWISE_PARAM_BYTES) return `kernel parameters of ${bytes} bytes (at most ${ELEMENTWISE_PARAM_BYTES})`;
  return undefined;
}

/** Makes fused elementwise node `fused` read Concat `cat`'s pieces in place of its output (concatRefusal passed). */
function readConcatPieces(graph: Graph, fused: Node, cat: Node): void {
  const body = attrGraph(fused, 'body');
  const out = cat.outputs[0];
  const rank = graph.lookupTensor(out)!.shape!.length;
  const axis = attrInt(cat, 'axis', 0) < 0 ? attrInt(cat, 'axis', 0) + rank : attrInt(cat, 'axis', 0);
  const slot = body.inputs.indexOf(out);
  if (slot < 0) throw new Error(`elementwise node '${fused.name}' does not read '${out}'`);
  const extents = cat.inputs.map((t) => graph.lookupTensor(t)!.shape![axis] as number);
  const concats = [...concatSlotsOf(fused), { slot, axis, extents }].sort((a, b) => a.slot - b.slot);
  const slots = elementwiseSlotsOf(fused);
  fused.inputs = slots.flatMap((s, k) => (k === slot ? [...cat.inputs] : s.inputs));
  fused.attrs = { ...fused.attrs, concat: { type: 'strings', value: concatSlotAttribute(concats) } };
  absorb(fused, cat);
  graph.tensors.delete(out);
}

function isElementwise(graph: Graph, node: Node): boolean {
  // shape arithmetic (symbolic contents) stays on the host; weight preparation runs once (or folds with the weights)
  return (
    node.domain === '' &&
    ELEMENTWISE_OPS.has(node.op) &&
    node.outputs.length === 1 &&
    !isShapeComputation(graph, node) &&
    !isWeightPreparation(graph, node)
  );
}

/**
 * The math of an elementwise node: 'float' when it reads or writes a float tensor (float data, a comparison or IsNaN of
 * float data, Where choosing floats by a bool mask, a Cast to or from float), else 'int' (integer and bool data). A
 * chain is computed in one of them (codegen/elementwise.ts), so a group only takes nodes of its root's.
 */
function mathOf(graph: Graph, node: Node): 'float' | 'int' {
  const float = [...node.inputs, ...node.outputs].some((t) => {
    const dtype = t ? graph.lookupTensor(t)?.dtype : undefined;
    return dtype !== undefined && isFloatType(dtype);
  });
  return float ? 'float' : 'int';
}

function growGroup(
  graph: Graph,
  root: Node,
  taken: Set<Node>,
  producers: Map<string, Node>,
  consumers: Map<string, Node[]>,
  position: Map<Node, number>,
): Node[] {
  // A worklist: a producer is looked at again whenever one of its readers joins the group.
  const group = new Set<Node>([root]);
  const work = [root];
  const outputs = new Set(graph.outputs);
  const math = mathOf(graph, root);
  while (work.length) {
    const n = work.pop()!;
    for (const input of n.inputs) {
      const p = input ? producers.get(input) : undefined;
      if (!p || group.has(p) || taken.has(p) || !isElementwise(graph, p) || outputs.has(input) || mathOf(graph, p) !== math) continue;
      const readers = consumers.get(input) ?? [];
      if (readers.every((r) => group.has(r)) && groupParamBytes([...group, p]) <= ELEMENTWISE_PARAM_BYTES) {
        group.add(p);
        work.push(p);
      }
    }
  }
  // keep graph order
  return [...group].sort((a, b) => position.get(a)! - position.get(b)!);
}

/** The kernel-parameter bytes (an upper bound) of the elementwise kernel of `group`, before any Concat joins it. */
function groupParamBytes(group: readonly Node[]): number {
  const inside = new Set(group.flatMap((n) => n.outputs));
  const inputs = new Set(group.flatMap((n) => n.inputs.filter((i) => i && !inside.has(i))));
  return elementwiseParamBytes(inputs.size, 0, group.length);
}

/** The fused node standing for `group` (the caller puts it in the root's place and drops the group's nodes). */
function fuseGroup(graph: Graph, root: Node, group: Node[]): Node {
  const inside = new Set(group.flatMap((n) => n.outputs));
  const inputs = [...new Set(group.flatMap((n) => n.inputs.filter((i) => i && !inside.has(i))))];
  const body = new Graph(`${root.name}/body`, { parent: graph });
  body.inputs = [...inputs];
  for (const i of inputs) {
    const t = graph.lookupTensor(i)!;
    body.addTensor({ name: i, kind: 'input', dtype: t.dtype, shape: t.shape });
  }
  for (const n of group)
    for (const o of n.outputs) {
      const t = graph.tensors.get(o)!;
      body.addTensor({ ...t, kind: o === root.outputs[0] ? 'output' : 'activation' });
      if (o !== root.outputs[0]) graph.tensors.delete(o);
    }
  body.nodes = group.map((n) => ({ ...n }));
  body.outputs = [root.outputs[0]];
  const fused: Node = {
    id: root.id,
    op: 'elementwise',
    domain: FUSED_DOMAIN,
    name: `${root.name}/fused`,
    inputs,
    outputs: [root.outputs[0]],
    attrs: { body: { type: 'graph', value: body } },
    sourceNodes: [],
    scope: root.scope,
  };
  absorb(fused, ...group);
  return fused;
}
