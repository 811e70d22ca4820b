/**
 * Multi-head attention: softmax(Q·Kᵀ·scale)·V with the head split and merge absorbed, into one `attention` op.
 *
 * Matched from the Softmax outwards, for both exporters' ViT graphs (after canonicalization turned the q/k/v
 * Slice+Squeeze / Split+Squeeze into Gathers):
 *
 *   qkv [B,S,3·H·D] → Reshape [B,S,3,H,D] → Transpose(2,0,3,1,4) → Gather(0|1|2) → q, k, v  [B,H,S,D]
 *   scores = MatMul(q·a, Transpose(k·b, swap last two)) · c      (a, b, c optional scalar Mul/Div)
 *   out    = MatMul(Softmax(scores), v) → Transpose(0,2,1,3) → Reshape [B,S,H·D]
 */
import { Graph, Node, attrInt, attrInts } from '../ir/graph';
import { isConcrete } from '../ir/symbolic';
import { FUSED_DOMAIN } from '../ops/fused';
import { Pass } from './pass';
import { absorb, scalarValue, soleConsumer, valueOf } from './rewrite';

export const fuseAttentionPass: Pass = {
  name: 'fuse-attention',
  description: 'Q·Kᵀ·scale → softmax → ·V with head split/merge reshapes and transposes → one attention op',
  run(graph) {
    for (const softmax of graph.nodes.filter((n) => n.op === 'Softmax')) matchAttention(graph, softmax);
  },
};

interface Trace {
  tensor: string;
  scale: number;
  nodes: Node[];
}

function matchAttention(graph: Graph, softmax: Node): boolean {
  const producers = graph.producers();
  const consumers = graph.consumers();
  const single = (t: string) => soleConsumer(graph, consumers, t);
  const rank = graph.lookupTensor(softmax.inputs[0])?.shape?.length ?? 0;
  if (rank !== 4 || ((attrInt(softmax, 'axis', -1) + rank) % rank !== 3 && graph.opset >= 13)) return false;

  /** Follows scalar Mul/Div (single-reader) chains upwards from `t`. */
  const stripScale = (t: string): Trace => {
    let scale = 1;
    const nodes: Node[] = [];
    for (;;) {
      const p = producers.get(t);
      if (!p || (p.op !== 'Mul' && p.op !== 'Div') || single(t) === undefined) break;
      const s1 = scalarValue(graph, p.inputs[1]);
      const s0 = p.op === 'Mul' ? scalarValue(graph, p.inputs[0]) : undefined;
      if (s1 !== undefined) {
        scale *= p.op === 'Mul' ? s1 : 1 / s1;
        t = p.inputs[0];
      } else if (s0 !== undefined) {
        scale *= s0;
        t = p.inputs[1];
      } else break;
      nodes.push(p);
    }
    return { tensor: t, scale, nodes };
  };

  const scores = stripScale(softmax.inputs[0]);
  const qk = producers.get(scores.tensor);
  if (!qk || qk.op !== 'MatMul' || single(scores.tensor) === undefined) return false;
  const q = stripScale(qk.inputs[0]);
  const kT = stripScale(qk.inputs[1]);
  const kTranspose = producers.get(kT.tensor);
  if (!kTranspose || kTranspose.op !== 'Transpose' || attrInts(kTranspose, 'perm').join() !== '0,1,3,2' || !single(kT.tensor)) return false;
  const k = stripScale(kTranspose.inputs[0]);

  const pv = single(softmax.outputs[0]);
  if (!pv || pv.op !== 'MatMul' || pv.inputs[0] !== softmax.outputs[0]) return false;
  const v = { tensor: pv.inputs[1], scale: 1, nodes: [] as Node[] };

  // q, k, v: Gather(axis 0, index 0|1|2) of one Transpose(2,0,3,1,4) of one Reshape [B,S,3,H,D] of qkv
  const gatherOf = (t: string, index: number): Node | undefined => {
    const g = producers.get(t);
    if (!g || g.op !== 'Gather' || attrInt(g, 'axis', 0) !== 0 || scalarValue(graph, g.inputs[1]) !== index) return undefined;
    return g;
  };
  const gq = gatherOf(q.tensor, 0);
  const gk = gatherOf(k.tensor, 1);
  const gv = gatherOf(v.tensor, 2);
  if (!gq || !gk || !gv || gq.inputs[0] !== gk.inputs[0] || gq.inputs[0] !== gv.inputs[0]) return false;
  const permuted = gq.inputs[0];
  if ((consumers.get(permuted) ?? []).length !== 3) return false;
  const perm = producers.get(permuted);
  if (!perm || perm.op !== 'Transpose' || attrInts(perm, 'perm').join() !== '2,0,3,1,4' || !single(perm.inputs[0])) return false;
  const split = producers.get(perm.inputs[0]);
  if (!split || split.op !== 'Reshape') return false;
  const splitShape = graph.lookupTensor(split.outputs[0])?.shape;
  const qkvShape = graph.lookupTensor(split.inputs[0])?.shape;
  if (!splitShape || splitShape.length !== 5 || splitShape[2] !== 3 || !qkvShape || qkvShape.length !== 3) return false;
  const heads = splitShape[3];
  const headDim = splitShape[4];
  if (!isConcrete(heads) || !isConcrete(headDim)) return false;
  // every q/k/v reader chain must be single-reader
  for (const t of [q.tensor, k.tensor, gv.outputs[0]]) if (!single(t)) return false;

  // output: MatMul → Transpose(0,2,1,3) → Reshape [B,S,H·D]
  const merge = single(pv.outputs[0]);
  if (!merge || merge.op !== 'Transpose' || attrInts(merge, 'perm').join() !== '0,2,1,3') return false;
  const flatten = single(merge.outputs[0]);
  if (!flatten || flatten.op !== 'Reshape') return false;
  const outShape = graph.lookupTensor(flatten.outputs[0])?.shape;
  if (!outShape || outShape.length !== 3 || outShape[2] !== heads * headDim) return false;
  // the Reshape's shape input may be a computed tensor (TorchScript): it is absorbed if nothing else reads it
  void valueOf;

  const absorbed = [split, perm, gq, gk, gv, ...q.nodes, ...k.nodes, kTranspose, ...kT.nodes, qk, ...scores.nodes, softmax, pv, merge];
  const attention: Node = {
    id: flatten.id,
    op: 'attention',
    domain: FUSED_DOMAIN,
    name: `${softmax.name.replace(/\/Softmax$/, '')}/attention`,
    inputs: [split.inputs[0]],
    outputs: [...flatten.outputs],
    attrs: {
      num_heads: { type: 'int', value: heads },
      head_dim: { type: 'int', value: headDim },
      scale: { type: 'float', value: q.scale * k.scale * kT.scale * scores.scale },
    },
    sourceNodes: [...flatten.sourceNodes],
    scope: softmax.scope.length ? softmax.scope : flatten.scope,
  };
  absorb(attention, ...absorbed);
  const gone = new Set<Node>(absorbed);
  for (const n of absorbed) for (const o of n.outputs) if (o) graph.tensors.delete(o);
  graph.nodes = graph.nodes.filter((n) => !gone.has(n));
  graph.nodes[graph.nodes.indexOf(flatten)] = attention;
  return true;
}
