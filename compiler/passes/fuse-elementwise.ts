/**
 * Chains of elementwise ops → one `elementwise` op whose `body` attribute holds the chain as a small graph.
 *
 * A group grows upwards from an elementwise node through producers that are elementwise and whose output only
 * the group reads; the group has one output (its last node's). Groups of one node are left as they are.
 */
import { Graph, Node } from '../ir/graph';
import { FUSED_DOMAIN } from '../ops/fused';
import { ELEMENTWISE_OPS } from '../ops/op-classes';
import { Pass } from './pass';
import { absorb } from './rewrite';

export { ELEMENTWISE_OPS };

export const fuseElementwisePass: Pass = {
  name: 'fuse-elementwise',
  description: 'chains of elementwise ops → one elementwise kernel',
  run(graph) {
    const grouped = new Set<Node>();
    for (const root of [...graph.nodes].reverse()) {
      if (!graph.nodes.includes(root) || !isElementwise(graph, root) || grouped.has(root)) continue;
      const group = growGroup(graph, root, grouped);
      if (group.length < 2) continue;
      for (const n of group) grouped.add(n);
      fuseGroup(graph, root, group);
    }
  },
};

function isElementwise(graph: Graph, node: Node): boolean {
  if (node.domain !== '' || !ELEMENTWISE_OPS.has(node.op) || node.outputs.length !== 1) return false;
  // only float data paths; shape arithmetic on integers has been folded or is not worth a kernel
  const dt = graph.lookupTensor(node.outputs[0])?.dtype;
  return dt === 'float32' || dt === 'float16' || dt === 'bfloat16';
}

function growGroup(graph: Graph, root: Node, taken: Set<Node>): Node[] {
  const producers = graph.producers();
  const consumers = graph.consumers();
  const group = new Set<Node>([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of [...group])
      for (const input of n.inputs) {
        const p = input ? producers.get(input) : undefined;
        if (!p || group.has(p) || taken.has(p) || !isElementwise(graph, p) || graph.outputs.includes(input)) continue;
        const readers = consumers.get(input) ?? [];
        if (readers.every((r) => group.has(r))) {
          group.add(p);
          grew = true;
        }
      }
  }
  // keep graph order
  return graph.nodes.filter((n) => group.has(n));
}

function fuseGroup(graph: Graph, root: Node, group: Node[]): void {
  const inside = new Set(group.flatMap((n) => n.outputs));
  const inputs: string[] = [];
  for (const n of group) for (const i of n.inputs) if (i && !inside.has(i) && !inputs.includes(i)) inputs.push(i);
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
  const gone = new Set(group);
  const at = graph.nodes.indexOf(root);
  graph.nodes[at] = fused;
  graph.nodes = graph.nodes.filter((n) => !gone.has(n));
}
