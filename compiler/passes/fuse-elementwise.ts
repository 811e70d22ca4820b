/**
 * Groups of elementwise ops → one `elementwise` op whose `body` attribute holds the group as a small graph.
 *
 * A group grows upwards from an elementwise node through producers that are elementwise and whose output only
 * the group reads; the group has one output (its last node's). Its body is a DAG: a node may read any input or any
 * earlier node's value (the CUDA backend runs chains as functor chains and other bodies as ew::Dag programs). Groups
 * of one node are left as they are. Weight preparation is not fused: it runs once, and folds when the weights are
 * present.
 */
import { isFloatType } from '../ir/dtype';
import { Graph, Node } from '../ir/graph';
import { FUSED_DOMAIN } from '../ops/fused';
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
  },
};

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
      if (readers.every((r) => group.has(r))) {
        group.add(p);
        work.push(p);
      }
    }
  }
  // keep graph order
  return [...group].sort((a, b) => position.get(a)! - position.get(b)!);
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
