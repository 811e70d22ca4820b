/**
 * An If whose condition is only known at run time (torchvision's `if boxes.numel() == 0` around batched NMS, a
 * detector's empty-detections guard) becomes straight-line code: the nodes of both branches join the graph, each
 * guarded by the condition (Node.guard: run only when the branch is taken), and an `ait.if_select` node gives the
 * If's outputs from the taken branch. The CUDA backend reads the condition back to the host once and wraps each
 * guarded launch in `if`; the reference interpreter skips guarded nodes of the branch not taken.
 *
 * Runs after fusion, so no pass merges a guarded node with an unguarded one (or nodes of different branches).
 * Branch tensors are renamed `<If name>/then|else/<name>` (names unique in the graph; outer-scope reads keep
 * theirs). An If with a constant condition was resolved by inference; an If whose branches hold control flow of
 * their own stays as it is.
 */
import { Graph, Node, attrGraph, subgraphsOf } from '../ir/graph';
import { FUSED_DOMAIN } from '../ops/fused';
import { Pass } from './pass';
import { inferShapes } from './shape-inference';

const BRANCHES: [attr: string, label: string, taken: boolean][] = [
  ['then_branch', 'then', true],
  ['else_branch', 'else', false],
];

/** The If's branches inlined as guarded nodes and an if_select, or undefined when it stays an If. */
function inline(graph: Graph, node: Node): Node[] | undefined {
  const condition = node.inputs[0];
  if (!condition || graph.lookupTensor(condition)?.value) return undefined;
  const bodies = BRANCHES.map(([attr]) => attrGraph(node, attr));
  if (bodies.some((body) => body.nodes.some((n) => subgraphsOf(n).length > 0 || n.guard))) return undefined;
  const nodes: Node[] = [];
  const branchOutputs: string[][] = [];
  BRANCHES.forEach(([, label, taken], b) => {
    const body = bodies[b];
    const rename = new Map<string, string>();
    for (const [name, info] of body.tensors) {
      const renamed = graph.newTensorName(`${node.name}/${label}/${name}`);
      rename.set(name, renamed);
      graph.addTensor({ ...info, name: renamed });
    }
    const r = (t: string) => (t ? (rename.get(t) ?? t) : t);
    for (const n of body.nodes)
      nodes.push({
        ...n,
        id: graph.newNodeId(),
        name: `${node.name}/${label}/${n.name}`,
        inputs: n.inputs.map(r),
        outputs: n.outputs.map(r),
        attrs: { ...n.attrs },
        sourceNodes: [],
        scope: [...node.scope],
        guard: { condition, taken },
      });
    branchOutputs.push(body.outputs.map(r));
  });
  nodes.push({
    id: node.id,
    op: 'if_select',
    domain: FUSED_DOMAIN,
    name: node.name,
    inputs: [condition, ...branchOutputs[0], ...branchOutputs[1]],
    outputs: [...node.outputs],
    attrs: {},
    sourceNodes: node.sourceNodes.length ? [...node.sourceNodes] : [node.name],
    scope: [...node.scope],
  });
  return nodes;
}

export const inlineIfPass: Pass = {
  name: 'inline-if',
  description: "If with a run-time condition: both branches' nodes guarded by the condition, and an if_select of the outputs",
  run(graph, ctx) {
    let changed = false;
    const nodes: Node[] = [];
    for (const node of graph.nodes) {
      const inlined = node.op === 'If' && node.domain === '' ? inline(graph, node) : undefined;
      if (inlined) changed = true;
      nodes.push(...(inlined ?? [node]));
    }
    if (!changed) return;
    graph.nodes = nodes;
    const r = inferShapes(graph);
    ctx.diagnostics.push(...r.diagnostics);
  },
};
