/**
 * Removes nodes whose outputs shape inference already computed (their outputs become constant tensors), and
 * nodes whose outputs nobody reads. Shape inference does the evaluation; this pass only cleans up.
 */
import { Graph, subgraphsOf } from '../ir/graph';
import { Pass } from './pass';

export const foldConstantsPass: Pass = {
  name: 'fold-constants',
  description: 'drop nodes whose outputs are compile-time constants, and dead nodes',
  run(graph, ctx) {
    removeFolded(graph, ctx.removed);
    removeDead(graph, ctx.removed);
  },
};

function removeFolded(graph: Graph, removed: { onnxNode: string; reason: string }[]): void {
  graph.nodes = graph.nodes.filter((n) => {
    if (subgraphsOf(n).length) return true;
    const outs = n.outputs.filter((o) => o);
    const allConstant = outs.length > 0 && outs.every((o) => graph.tensors.get(o)?.value !== undefined && !graph.outputs.includes(o));
    if (!allConstant) return true;
    for (const o of outs) graph.tensors.get(o)!.kind = 'constant';
    for (const s of n.sourceNodes) removed.push({ onnxNode: s, reason: 'folded to a constant' });
    return false;
  });
}

/** Removes nodes none of whose outputs are read (recording them), then unused constants. */
export function removeDead(graph: Graph, removed: { onnxNode: string; reason: string }[]): void {
  const before = new Set(graph.nodes);
  graph.removeDeadNodes();
  const after = new Set(graph.nodes);
  for (const n of before) if (!after.has(n)) for (const s of n.sourceNodes) removed.push({ onnxNode: s, reason: 'result unused' });
}
