/**
 * Removes nodes whose outputs shape inference already computed (their outputs become constant tensors), and
 * nodes whose outputs nobody reads. Shape inference does the evaluation; this pass only cleans up.
 */
import { Graph, subgraphsOf } from '../ir/graph';
import { dimToString } from '../ir/symbolic';
import { FUSED_DOMAIN } from '../ops/fused';
import { Pass } from './pass';

export const foldConstantsPass: Pass = {
  name: 'fold-constants',
  description: 'drop nodes whose outputs are compile-time constants, and dead nodes',
  run(graph, ctx) {
    removeFolded(graph, ctx.removed);
    collapseShapeArithmetic(graph);
    removeDead(graph, ctx.removed);
  },
};

/**
 * A node whose single integer output is known as expressions of the symbols (Shape of an activation, and the
 * Gather/Concat/… arithmetic on it) becomes an input-free `symbolic_value`: it no longer reads activations, so it
 * holds no tensor alive and blocks no rewrite; the chain that computed it becomes dead.
 */
function collapseShapeArithmetic(graph: Graph): void {
  for (const n of graph.nodes) {
    if (n.op === 'symbolic_value' || n.outputs.length !== 1 || subgraphsOf(n).length) continue;
    const t = graph.tensors.get(n.outputs[0]);
    if (!t || t.value || !t.shapeValue || graph.outputs.includes(t.name) || (t.shape?.length ?? 0) > 1) continue;
    // integer outputs only (symbolic_value is int64): a Cast of shape arithmetic to float stays a Cast of one
    if (t.dtype !== 'int64' && t.dtype !== 'int32') continue;
    if (t.shapeValue.every((d) => typeof d === 'number')) continue;
    // a size only a node's run decides (NonZero's count): the chain keeps reading that node's output, so the node
    // stays alive and its lowering computes the size (codegen/context.ts run-time dims)
    if (t.shapeValue.some((d) => graph.symbols.dependsOnRuntime(d))) continue;
    n.op = 'symbolic_value';
    n.domain = FUSED_DOMAIN;
    n.inputs = [];
    n.attrs = { rank: { type: 'int', value: t.shape?.length ?? 1 }, dims: { type: 'strings', value: t.shapeValue.map(dimToString) } };
    n.symbolicValue = t.shapeValue;
  }
}

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
