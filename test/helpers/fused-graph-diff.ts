/**
 * Compares the fused graphs (graph.json) of one model compiled graph-only and compiled with its weights.
 *
 * Weights may only change what folds in weight preparation: every kernel, view and shape node must be the same
 * (op, the ONNX nodes it stands for, epilogue, kernel library and name, output shapes and dtypes, support status);
 * the with-weights graph may drop weight-preparation nodes (folded at compile time), and any it keeps the
 * graph-only one has too. Node ids and tensor names of folded weights are free to differ.
 */
import type { GraphJson, GraphJsonNode } from '../../compiler/ir/serialize';

/** What must agree between the two builds for one node. */
function nodeKey(node: GraphJsonNode): string {
  return `${node.role ?? '?'} ${node.op} [${node.sourceNodes.join(', ')}]`;
}

function nodeDetail(graph: GraphJson, node: GraphJsonNode): string {
  const kernel = node.kernel as { library?: string; name?: string } | undefined;
  const status = node.status as { supported: boolean; reason?: string } | undefined;
  const outputs = node.outputs.map((o) => {
    const t = graph.tensors[o];
    return t ? `${t.dtype}[${(t.shape ?? []).join(',')}]` : '?';
  });
  return [
    `epilogue ${JSON.stringify(node.epilogue ?? [])}`,
    `kernel ${kernel ? `${kernel.library}:${kernel.name}` : '-'}`,
    `outputs ${outputs.join(' ')}`,
    status && !status.supported ? `unsupported (${status.reason})` : 'supported',
  ].join('; ');
}

/** The differences between the graph-only build and the with-weights build; empty when they agree. */
export function fusedGraphDifferences(graphOnly: GraphJson, withWeights: GraphJson): string[] {
  const index = (graph: GraphJson, prep: boolean) => {
    const byKey = new Map<string, GraphJsonNode[]>();
    for (const n of graph.nodes) {
      if ((n.role === 'weight-preparation') !== prep) continue;
      const k = prep ? `${nodeKey(n)}: ${nodeDetail(graph, n)}` : nodeKey(n);
      byKey.set(k, [...(byKey.get(k) ?? []), n]);
    }
    return byKey;
  };
  const out: string[] = [];
  // Kernels, views and shape arithmetic: the same nodes, node for node.
  const a = index(graphOnly, false);
  const b = index(withWeights, false);
  for (const [key, nodes] of a) {
    const others = b.get(key) ?? [];
    if (others.length !== nodes.length) out.push(`${key}: ${nodes.length} graph-only, ${others.length} with weights`);
    for (let i = 0; i < Math.min(nodes.length, others.length); i++) {
      const da = nodeDetail(graphOnly, nodes[i]);
      const db = nodeDetail(withWeights, others[i]);
      if (da !== db) out.push(`${key}: graph-only ${da} | with weights ${db}`);
    }
  }
  for (const [key, nodes] of b)
    if (!a.has(key)) out.push(`${key}: only with weights (${nodes.length}): ${nodeDetail(withWeights, nodes[0])}`);
  // Weight preparation: what is left with weights (not folded) is prepared graph-only too.
  const prepA = index(graphOnly, true);
  for (const [key, nodes] of index(withWeights, true))
    if (nodes.length > (prepA.get(key)?.length ?? 0))
      out.push(`${key}: weight preparation left with weights (${nodes.length}), ${prepA.get(key)?.length ?? 0} graph-only`);
  return out;
}
