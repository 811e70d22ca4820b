/**
 * Layer normalization over the last axis → `layernorm`, from LayerNormalization and from its decomposed form:
 *   m = ReduceMean(x, -1); d = x − m; v = ReduceMean(d², -1); y = d / Sqrt(v + ε) · γ + β
 * (d² as Pow(d, 2) or Mul(d, d); the division as Div, or Mul by Reciprocal).
 */
import { Graph, Node, attrFloat, attrInt, attrInts } from '../ir/graph';
import { FUSED_DOMAIN } from '../ops/fused';
import { Pass } from './pass';
import { absorb, isStatic, scalarValue, soleConsumer, valueOf } from './rewrite';

export const fuseLayerNormPass: Pass = {
  name: 'fuse-layernorm',
  description: 'LayerNormalization and its decomposed form → layernorm',
  run(graph) {
    for (const node of [...graph.nodes]) {
      if (node.op === 'LayerNormalization' && node.outputs.slice(1).every((o) => !o)) {
        const rank = graph.lookupTensor(node.inputs[0])?.shape?.length ?? 0;
        if ((attrInt(node, 'axis', -1) + rank) % rank !== rank - 1) continue;
        node.op = 'layernorm';
        node.domain = FUSED_DOMAIN;
        node.outputs = [node.outputs[0]];
        node.attrs = { epsilon: { type: 'float', value: attrFloat(node, 'epsilon', 1e-5) } };
      } else if (node.op === 'ReduceMean') matchDecomposed(graph, node);
    }
  },
};

function lastAxisOnly(graph: Graph, node: Node): boolean {
  const rank = graph.lookupTensor(node.inputs[0])?.shape?.length ?? 0;
  const axesV = node.inputs[1] ? valueOf(graph, node.inputs[1]) : undefined;
  const axes = axesV ? Array.from(axesV.data as ArrayLike<number>) : attrInts(node, 'axes', []);
  return axes.length === 1 && (axes[0] + rank) % rank === rank - 1 && attrInt(node, 'keepdims', 1) === 1;
}

function matchDecomposed(graph: Graph, mean: Node): boolean {
  if (!lastAxisOnly(graph, mean)) return false;
  const consumers = graph.consumers();
  const x = mean.inputs[0];
  const single = (t: string) => soleConsumer(graph, consumers, t);
  const sub = single(mean.outputs[0]);
  if (!sub || sub.op !== 'Sub' || sub.inputs[0] !== x || sub.inputs[1] !== mean.outputs[0]) return false;
  const d = sub.outputs[0];
  const dReaders = consumers.get(d) ?? [];
  if (dReaders.length !== 2) return false;
  const sq = dReaders.find(
    (n) => (n.op === 'Pow' && scalarValue(graph, n.inputs[1]) === 2) || (n.op === 'Mul' && n.inputs[0] === d && n.inputs[1] === d),
  );
  const div = dReaders.find((n) => n !== sq);
  if (!sq || !div) return false;
  const varMean = single(sq.outputs[0]);
  if (!varMean || varMean.op !== 'ReduceMean' || !lastAxisOnly(graph, varMean)) return false;
  const addEps = single(varMean.outputs[0]);
  if (!addEps || addEps.op !== 'Add') return false;
  const eps = scalarValue(graph, addEps.inputs[1]) ?? scalarValue(graph, addEps.inputs[0]);
  if (eps === undefined) return false;
  const sqrt = single(addEps.outputs[0]);
  if (!sqrt || sqrt.op !== 'Sqrt') return false;
  let normalized: Node;
  const absorbed: Node[] = [mean, sub, sq, varMean, addEps, sqrt];
  if (div.op === 'Div' && div.inputs[0] === d && div.inputs[1] === sqrt.outputs[0] && single(sqrt.outputs[0]) === div) normalized = div;
  else if (div.op === 'Mul') {
    const recip = single(sqrt.outputs[0]);
    if (!recip || recip.op !== 'Reciprocal' || !div.inputs.includes(recip.outputs[0])) return false;
    absorbed.push(recip);
    normalized = div;
  } else return false;
  const mulGamma = single(normalized.outputs[0]);
  if (!mulGamma || mulGamma.op !== 'Mul') return false;
  const gamma = mulGamma.inputs[0] === normalized.outputs[0] ? mulGamma.inputs[1] : mulGamma.inputs[0];
  if (!isStatic(graph.lookupTensor(gamma))) return false;
  let last = mulGamma;
  let beta: string | undefined;
  const addBeta = single(mulGamma.outputs[0]);
  if (addBeta && addBeta.op === 'Add') {
    const b = addBeta.inputs[0] === mulGamma.outputs[0] ? addBeta.inputs[1] : addBeta.inputs[0];
    if (isStatic(graph.lookupTensor(b))) {
      beta = b;
      last = addBeta;
    }
  }
  absorbed.push(normalized);
  if (last !== mulGamma) absorbed.push(mulGamma);
  const ln: Node = {
    ...last,
    op: 'layernorm',
    domain: FUSED_DOMAIN,
    inputs: beta ? [x, gamma, beta] : [x, gamma],
    attrs: { epsilon: { type: 'float', value: eps } },
  };
  absorb(ln, ...absorbed);
  for (const n of absorbed) for (const o of n.outputs) graph.tensors.delete(o);
  const gone = new Set(absorbed);
  graph.nodes = graph.nodes.filter((n) => !gone.has(n));
  graph.nodes[graph.nodes.indexOf(last)] = ln;
  return true;
}
