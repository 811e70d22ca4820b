/** Graph rewriting helpers shared by the optimization passes. */
import { Graph, Node, TensorInfo } from '../ir/graph';
import { TensorValue } from '../ir/tensor';
import { PassContext } from './pass';

/** Tensor whose value is known at compile time, or a parameter (value known once weights are bound). */
export function isStatic(t: TensorInfo | undefined): boolean {
  return !!t && (t.kind === 'param' || t.kind === 'constant' || (t.value !== undefined && t.kind !== 'input'));
}

export function valueOf(graph: Graph, name: string): TensorValue | undefined {
  return name ? graph.lookupTensor(name)?.value : undefined;
}

/** A scalar (or all-equal small tensor) constant's value, if `name` is one. */
export function scalarValue(graph: Graph, name: string): number | undefined {
  const v = valueOf(graph, name);
  if (!v || Array.isArray(v.data) || v.data.length === 0 || v.data.length > 64) return undefined;
  const first = v.data[0];
  for (let i = 1; i < v.data.length; i++) if (v.data[i] !== first) return undefined;
  return first;
}

/** Replaces every read of `from` by `to` in this graph and in subgraphs (outer-scope reads). */
export function replaceUses(graph: Graph, from: string, to: string): void {
  for (const n of graph.nodes) {
    for (let i = 0; i < n.inputs.length; i++) if (n.inputs[i] === from) n.inputs[i] = to;
    for (const a of Object.values(n.attrs)) {
      if (a.type === 'graph') replaceOuterUses(a.value, from, to);
      else if (a.type === 'graphs') a.value.forEach((g) => replaceOuterUses(g, from, to));
    }
  }
}

/** replaceUses for many names at once (`renames`: from → to), in one walk over the graph and its subgraphs. */
export function replaceUsesMany(graph: Graph, renames: ReadonlyMap<string, string>): void {
  if (renames.size === 0) return;
  for (const n of graph.nodes) {
    for (let i = 0; i < n.inputs.length; i++) {
      const to = renames.get(n.inputs[i]);
      if (to !== undefined) n.inputs[i] = to;
    }
    for (const a of Object.values(n.attrs)) {
      const subgraphs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
      for (const g of subgraphs) {
        // names the subgraph defines itself shadow the outer ones
        const visible = new Map([...renames].filter(([from]) => !g.tensors.has(from) && !g.inputs.includes(from)));
        replaceUsesMany(g, visible);
      }
    }
  }
}

function replaceOuterUses(g: Graph, from: string, to: string): void {
  if (g.tensors.has(from) || g.inputs.includes(from)) return; // shadowed
  replaceUses(g, from, to);
}

/**
 * Removes `node`, whose output `output` carries the same data as its input `input` (a no-op), keeping graph
 * outputs' names. Records the removal.
 */
export function bypassNode(graph: Graph, node: Node, input: string, output: string, ctx: PassContext, reason: string): boolean {
  const isGraphOutput = graph.outputs.includes(output);
  if (isGraphOutput) {
    // Rename the producer of `input` to write the graph output directly, when that is safe.
    const producer = graph.producers().get(input);
    if (!producer || graph.outputs.includes(input) || graph.inputs.includes(input)) return false;
    const readers = graph.consumers().get(input) ?? [];
    if (readers.some((r) => r !== node)) return false;
    producer.outputs = producer.outputs.map((o) => (o === input ? output : o));
    const outInfo = graph.tensors.get(output)!;
    const inInfo = graph.tensors.get(input);
    if (inInfo) {
      outInfo.dtype = inInfo.dtype;
      outInfo.shape = inInfo.shape;
      graph.tensors.delete(input);
    }
  } else {
    replaceUses(graph, output, input);
    graph.tensors.delete(output);
  }
  removeNode(graph, node, ctx, reason);
  return true;
}

/** Deletes a node and records, for each ONNX node it stood for, why it left the graph. */
export function removeNode(graph: Graph, node: Node, ctx: PassContext, reason: string): void {
  graph.nodes = graph.nodes.filter((n) => n !== node);
  for (const s of node.sourceNodes) ctx.removed.push({ onnxNode: s, reason });
}

/** Merges `absorbed` into `into`: its ONNX source nodes now belong to `into`. The caller deletes `absorbed`. */
export function absorb(into: Node, ...absorbed: Node[]): void {
  const known = new Set(into.sourceNodes);
  for (const a of absorbed)
    for (const s of a.sourceNodes)
      if (!known.has(s)) {
        known.add(s);
        into.sourceNodes.push(s);
      }
}

/**
 * `isLive(node)`: whether `node` is still in graph.nodes, for a pass that walks a snapshot of the nodes while it
 * rewrites the graph. O(1) per call; the set is rebuilt only after graph.nodes was replaced or changed length
 * (which cost O(n) already), so a pass that changes nothing stays linear.
 */
export function liveNodes(graph: Graph): (node: Node) => boolean {
  let of: Node[] | undefined;
  let length = -1;
  let live = new Set<Node>();
  return (node) => {
    if (graph.nodes !== of || graph.nodes.length !== length) {
      of = graph.nodes;
      length = of.length;
      live = new Set(of);
    }
    return live.has(node);
  };
}

/** Single consumer of a tensor, or undefined when it has zero or several, or is a graph output. */
export function soleConsumer(graph: Graph, consumers: Map<string, Node[]>, tensor: string): Node | undefined {
  if (graph.outputs.includes(tensor)) return undefined;
  const list = consumers.get(tensor);
  return list && list.length === 1 ? list[0] : undefined;
}

/** Adds a new constant tensor holding `value`. */
export function addConstant(graph: Graph, base: string, value: TensorValue): string {
  const name = graph.newTensorName(base);
  graph.addTensor({ name, kind: 'constant', dtype: value.dtype, shape: [...value.shape], value });
  return name;
}
