/**
 * Multi-head attention: softmax(Q·Kᵀ·scale + masks)·V with the head split and merge absorbed, into one `attention`
 * op (compiler/ops/fused.ts).
 *
 * Matched from the Softmax outwards:
 *
 *   scores = MatMul(q·a, kᵀ·b) · c                 (a, b, c optional scalar Mul/Div)
 *   then, towards the Softmax, any of:
 *     Add(scores, bias)                           bias broadcast over the scores' current view (below)
 *     Where(cond, scores, NEG) / Where(cond, NEG, scores)   NEG ≤ -1e4 or -inf: becomes the additive bias
 *                                                 Where(cond, 0, NEG) (an elementwise node, or a constant)
 *     Reshape that only splits/merges the leading dims (Swin's [B·nW,H,S,S] ↔ [B,nW,H,S,S] around its shift mask)
 *   probs  = Softmax(last axis), optionally guarded: Where(IsNaN(probs), 0, probs) (→ zero_masked_rows)
 *   out    = MatMul(probs, v) → Transpose(0,2,1,3) → Reshape [B,S,H·D]
 *
 * A constant lower-triangular mask (additive 0 / ≤ -1e4, or a boolean tril condition) becomes the causal flag.
 * A bias is mapped to the op's [Bk, 1|H, 1|S, 1|S] form: the view's leading dims are split into batch dims and head
 * dims (their product is H); the bias's head dims must be all 1 or all full, its batch dims 1s then full ones (read
 * modulo their product: per window of a batch·windows axis), so one Reshape of the bias gives the op's operand.
 *
 * q, k and v come in three layouts:
 *   packed:    qkv [B,S,3·H·D] → Reshape [B,S,3,H,D] → Transpose(2,0,3,1,4) → Gather(0|1|2)   (one QKV GEMM: ViT, Swin)
 *   separate:  x [B,S,H·D] → Reshape [B,S,H,D] → Transpose(0,2,1,3) (k: (0,2,3,1)) per q, k, v   (BERT)
 *              (the three x being one Split of [B,S,3·H·D] on its last axis, as GPT-2's c_attn: packed on that)
 *   kv_packed: q separate, and kv [B,Sk,2·H·D] → Reshape [B,Sk,2,H,D] → Transpose(2,0,3,1,4) → Gather(0|1) (PVT v2)
 *   per head:  qkv [B,S,H·(D+D+Dv)] → Reshape [B,S,H,D+D+Dv] → Split(last axis) → q, k, v → Transposes as separate
 *              (packed, attr per_head), or kv [B,Sk,H·(D+Dv)] split so into k, v with q separate (kv_packed, per_head):
 *              LeViT, EfficientFormer, whose v heads are wider (attr value_head_dim Dv ≠ D; also for separate q, k, v)
 * where separate inputs and the per-head qkv/kv may be rows [B·S, ·] (a Reshape to [B,S,·] is added: a view);
 * with scalar Mul/Div anywhere along them. With one head the head split may be a single Reshape [B,S,D] →
 * [B,1,S,D] (and the merge a Reshape [B,1,S,D] → [B,S,D]): the exporters' and canonicalization's form of a
 * transpose that moves a size-1 axis. Keys and values may be shorter or longer than the queries (Sk ≠ S:
 * cross-attention, PVT/SegFormer's spatial-reduction attention, keys from a strided conv of the tokens); a causal
 * mask needs Sk = S. Anything else stays unfused: batched GEMM, elementwise, softmax, batched GEMM.
 */
import { Graph, Node, attrInt, attrInts } from '../ir/graph';
import { DType } from '../ir/dtype';
import { Dim, dimEquals, dimProduct, isConcrete } from '../ir/symbolic';
import { TensorValue, makeTensor, numeric } from '../ir/tensor';
import { FUSED_DOMAIN } from '../ops/fused';
import { Pass } from './pass';
import { absorb, addConstant, scalarValue, soleConsumer, valueOf } from './rewrite';

export const fuseAttentionPass: Pass = {
  name: 'fuse-attention',
  description: 'Q·Kᵀ·scale (+ bias/mask, causal) → softmax → ·V with head split/merge reshapes and transposes → one attention op',
  run(graph) {
    for (const softmax of graph.nodes.filter((n) => n.op === 'Softmax')) matchAttention(graph, softmax);
  },
};

/** A fill value that masks a score: -inf, or a large negative number (HF's -1e4, -1e9, finfo.min). */
const MASK_FILL = -1e4;

interface Trace {
  tensor: string;
  scale: number;
  nodes: Node[];
}

/** A bias met on the way from the Softmax to Q·Kᵀ: `tensor` added to the scores while they had shape `view`. */
interface PendingBias {
  tensor: string;
  view: Dim[];
}

/** Where a [B,H,S,D] operand of the attention reads from. */
interface Source {
  layout: 'packed' | 'kv' | 'separate' | 'head_split' | 'kv_head_split';
  /** packed: qkv [B,S,3·H·D]; kv: [B,Sk,2·H·D]; separate: [B,S,H·D]; head_split: [B,S,H·(D+D+Dv)]; kv_head_split:
   * [B,Sk,H·(D+Dv)]; separate and the head splits may also be [B·S, ·] rows (a Reshape makes them [B,S,·]) */
  tensor: string;
  which: number; // q 0, k 1, v 2
  nodes: Node[]; // the Gather, or the Reshape
  /** packed, kv: the shared Reshape and Transpose(2,0,3,1,4); head splits: the shared Reshape and Split */
  shared?: Node[];
  /** its head dim (D for q and k, Dv for v) */
  dim: Dim;
}

function matchAttention(graph: Graph, softmax: Node): boolean {
  const producers = graph.producers();
  const consumers = graph.consumers();
  const single = (t: string) => soleConsumer(graph, consumers, t);
  const shapeOf = (t: string) => graph.lookupTensor(t)?.shape;
  const rank = shapeOf(softmax.inputs[0])?.length ?? 0;
  const axis = attrInt(softmax, 'axis', graph.opset >= 13 ? -1 : 1);
  if (rank < 3 || (axis + rank) % rank !== rank - 1) return false;

  /** Follows single-reader scalar Mul/Div (and, with `perm`, Transpose) chains upwards from `t`. */
  const strip = (t: string, perm?: number[]): Trace & { perm: number[] } => {
    let scale = 1;
    const nodes: Node[] = [];
    let p = perm ? [...perm] : [];
    for (;;) {
      const n = producers.get(t);
      if (!n || single(t) === undefined) break;
      if (n.op === 'Transpose' && perm) {
        const a = attrInts(n, 'perm');
        if (a.length !== p.length) break;
        p = p.map((i) => a[i]);
        t = n.inputs[0];
        nodes.push(n);
        continue;
      }
      if (n.op === 'Reshape' && perm && p.length === 4 && swapsUnitAxes(shapeOf(n.inputs[0]), shapeOf(n.outputs[0]))) {
        // [B,S,1,D] ↔ [B,1,S,D]: Transpose(0,2,1,3) as canonicalization writes it for one head
        p = p.map((i) => [0, 2, 1, 3][i]);
        t = n.inputs[0];
        nodes.push(n);
        continue;
      }
      if (n.op !== 'Mul' && n.op !== 'Div') break;
      const s1 = scalarValue(graph, n.inputs[1]);
      const s0 = n.op === 'Mul' ? scalarValue(graph, n.inputs[0]) : undefined;
      if (s1 !== undefined) {
        scale *= n.op === 'Mul' ? s1 : 1 / s1;
        t = n.inputs[0];
      } else if (s0 !== undefined) {
        scale *= s0;
        t = n.inputs[1];
      } else break;
      nodes.push(n);
    }
    return { tensor: t, scale, nodes, perm: p };
  };

  // ── probabilities: Softmax, optionally guarded by Where(IsNaN(p), 0, p) ──
  const probs = softmax.outputs[0];
  let pv: Node | undefined;
  let zeroMaskedRows = false;
  const guard: Node[] = [];
  const readers = consumers.get(probs) ?? [];
  if (graph.outputs.includes(probs)) return false;
  if (readers.length === 1) pv = readers[0];
  else if (readers.length === 2) {
    const isNan = readers.find((n) => n.op === 'IsNaN');
    const where = readers.find((n) => n.op === 'Where');
    if (!isNan || !where || single(isNan.outputs[0]) !== where) return false;
    if (where.inputs[0] !== isNan.outputs[0] || where.inputs[2] !== probs || scalarValue(graph, where.inputs[1]) !== 0) return false;
    pv = single(where.outputs[0]);
    guard.push(isNan, where);
    zeroMaskedRows = true;
  }
  const probsRead = guard.length ? guard[1].outputs[0] : probs;
  if (!pv || pv.op !== 'MatMul' || pv.inputs[0] !== probsRead) return false;

  // ── scores: from the Softmax up to Q·Kᵀ through scales, bias adds, masks and leading-dim reshapes ──
  const scoreNodes: Node[] = [];
  const biases: PendingBias[] = [];
  const masks: { cond: string; scoresWhenTrue: boolean; fill: number; view: Dim[] }[] = [];
  let scoreScale = 1;
  let t = softmax.inputs[0];
  const seqDims = shapeOf(t)!.slice(-2);
  let qk: Node | undefined;
  /** Whether `x` can continue the scores chain (single reader, produced by an op the chain is made of). */
  const chainOp = (x: string) => {
    const n = producers.get(x);
    return !!n && single(x) !== undefined && ['MatMul', 'Mul', 'Div', 'Add', 'Where', 'Reshape'].includes(n.op);
  };
  for (;;) {
    const n = producers.get(t);
    const view = shapeOf(t);
    if (!n || !view || single(t) === undefined) return false;
    if (n.op === 'MatMul') {
      qk = n;
      break;
    }
    if (n.op === 'Mul' || n.op === 'Div') {
      const s = strip(t);
      if (s.nodes.length === 0) return false;
      scoreScale *= s.scale;
      scoreNodes.push(...s.nodes);
      t = s.tensor;
      continue;
    }
    if (n.op === 'Reshape') {
      const from = shapeOf(n.inputs[0]);
      if (!from || from.length < 3 || !dimEquals(from[from.length - 2], seqDims[0]) || !dimEquals(from[from.length - 1], seqDims[1]))
        return false;
      scoreNodes.push(n);
      t = n.inputs[0];
      continue;
    }
    // a scale between a bias and the Softmax would scale the bias too
    if ((n.op === 'Add' || n.op === 'Where') && scoreScale !== 1) return false;
    if (n.op === 'Add') {
      const chain = [0, 1].find((i) => chainOp(n.inputs[i]) && reachesScores(n.inputs[i], 16));
      if (chain === undefined) return false;
      biases.push({ tensor: n.inputs[1 - chain], view });
      scoreNodes.push(n);
      t = n.inputs[chain];
      continue;
    }
    if (n.op === 'Where') {
      const [cond, a, b] = n.inputs;
      const fa = scalarValue(graph, a);
      const fb = scalarValue(graph, b);
      if (fb !== undefined && fb <= MASK_FILL && chainOp(a)) {
        masks.push({ cond, scoresWhenTrue: true, fill: fb, view });
        t = a;
      } else if (fa !== undefined && fa <= MASK_FILL && chainOp(b)) {
        masks.push({ cond, scoresWhenTrue: false, fill: fa, view });
        t = b;
      } else return false;
      if (graph.lookupTensor(cond)?.dtype !== 'bool') return false;
      scoreNodes.push(n);
      continue;
    }
    return false;
  }
  /** Whether `x` is computed from a MatMul through the ops a scores chain is made of (which side of an Add is the scores). */
  function reachesScores(x: string, depth: number): boolean {
    const n = producers.get(x);
    if (!n || depth === 0) return false;
    if (n.op === 'MatMul') return true;
    if (!['Mul', 'Div', 'Add', 'Where', 'Reshape'].includes(n.op)) return false;
    const from = n.op === 'Where' ? n.inputs.slice(1) : n.op === 'Reshape' ? n.inputs.slice(0, 1) : n.inputs;
    return from.some((i) => reachesScores(i, depth - 1));
  }

  const scoresShape = shapeOf(qk.outputs[0]);
  if (!scoresShape || scoresShape.length !== 4) return false;
  const [batchDim, heads, seq, seqK] = scoresShape;
  // seq may be symbolic (a model input's seq: the kernel takes it at run time) when the keys have the same length; keys
  // of another length (spatial reduction, cross-attention) have a fixed one. heads and head_dim are fixed.
  if (!isConcrete(heads)) return false;
  if (!dimEquals(seq, seqK) && !(isConcrete(seq) && isConcrete(seqK) && seqK >= 1)) return false;

  // ── q, k, v ──
  const q = strip(qk.inputs[0], [0, 1, 2, 3]);
  const kT = strip(qk.inputs[1], [0, 1, 2, 3]);
  const v = strip(pv.inputs[1], [0, 1, 2, 3]);
  const sq = sourceOf(q, [0, 2, 1, 3], [0, 1, 2, 3], 0);
  const sk = sourceOf(kT, [0, 2, 3, 1], [0, 1, 3, 2], 1);
  const sv = sourceOf(v, [0, 2, 1, 3], [0, 1, 2, 3], 2);
  if (!sq || !sk || !sv || sk.layout !== sv.layout) return false;
  let layout: 'packed' | 'kv_packed' | 'separate';
  // per head: the packed input is [B,S,H,D+D+Dv] (or kv [B,Sk,H,D+Dv]), split by a Split on its last axis
  let perHead = false;
  if (sq.layout === 'packed' && sk.layout === 'packed') layout = 'packed';
  else if (sq.layout === 'separate' && sk.layout === 'kv') layout = 'kv_packed';
  else if (sq.layout === 'separate' && sk.layout === 'separate') layout = 'separate';
  else if (sq.layout === 'head_split' && sk.layout === 'head_split') [layout, perHead] = ['packed', true];
  else if (sq.layout === 'separate' && sk.layout === 'kv_head_split') [layout, perHead] = ['kv_packed', true];
  else return false;
  // q and k have one head dim; v may have its own (LeViT, EfficientFormer)
  if (!isConcrete(sq.dim) || !isConcrete(sv.dim) || sk.dim !== sq.dim) return false;
  const headDim: number = sq.dim;
  const valueHeadDim: number = sv.dim;
  if (valueHeadDim !== headDim && layout === 'packed' && !perHead) return false; // [B,S,3,H,D] has one D
  if (valueHeadDim !== headDim && layout === 'kv_packed' && !perHead) return false;
  // packed q, k, v (or k, v) are Gathers of one Transpose (outputs of one Split), which goes with them
  if (sk.shared && sk.shared[1] !== sv.shared![1]) return false;
  if (perHead) {
    if (sk.tensor !== sv.tensor || (layout === 'packed' && (sq.tensor !== sk.tensor || sq.shared![1] !== sk.shared![1]))) return false;
    if (layout === 'kv_packed' && !tokenRows(sq.tensor, seq, heads * headDim)) return false;
  } else if (layout === 'packed') {
    if (sq.tensor !== sk.tensor || sq.tensor !== sv.tensor || sq.shared![1] !== sk.shared![1]) return false;
    if ((consumers.get(sq.shared![1].outputs[0]) ?? []).length !== 3) return false;
  } else if (layout === 'kv_packed') {
    if (sk.tensor !== sv.tensor || !tokenRows(sq.tensor, seq, heads * headDim)) return false;
    if ((consumers.get(sk.shared![1].outputs[0]) ?? []).length !== 2) return false;
    if (shapeOf(sk.shared![0].outputs[0])?.[4] !== headDim) return false;
  } else if (
    !tokenRows(sq.tensor, seq, heads * headDim) ||
    !tokenRows(sk.tensor, seqK, heads * headDim) ||
    !tokenRows(sv.tensor, seqK, heads * valueHeadDim)
  )
    return false;

  /** Whether x is [B, length, width] or its rows [B·length, width] (a separate q, k or v, or a head-split input). */
  function tokenRows(x: string, length: Dim, width: Dim): boolean {
    const s = shapeOf(x);
    if (!s || !dimEquals(s[s.length - 1], width)) return false;
    if (s.length === 3) return dimEquals(s[0], batchDim) && dimEquals(s[1], length);
    return s.length === 2 && dimEquals(s[0], dimProduct([batchDim, length]));
  }

  /**
   * The [B,H,S,D] tensor `trace` ends at: packed (Gather `which` of Transpose(2,0,3,1,4) of Reshape [B,S,3,H,D] of
   * qkv, read through `packedPerm`), kv (k or v: Gather `which` - 1 of the same over Reshape [B,Sk,2,H,D] of kv),
   * or separate (Reshape [B,S,H,D] of x [B,S,H·D], read through `separatePerm`; with one head also Reshape
   * [B,1,S,D] of x [B,S,D], read through `packedPerm`, the permutation relative to [B,H,S,D]).
   */
  function sourceOf(trace: Trace & { perm: number[] }, separatePerm: number[], packedPerm: number[], which: number): Source | undefined {
    const n = producers.get(trace.tensor);
    if (!n || single(trace.tensor) === undefined) return undefined;
    const dim = shapeOf(trace.tensor)?.[3];
    if (dim === undefined) return undefined;
    if (n.op === 'Split') {
      // per-head split (LeViT, EfficientFormer): x [B,S,H·W] (or rows [B·S,H·W]) → Reshape [B,S,H,W] → Split on the
      // last axis into q, k, v ([B,S,H,D], [B,S,H,D], [B,S,H,Dv]; which = output) or k, v (which = output + 1)
      const parts = shapeOf(n.inputs[0]);
      const reshape = producers.get(n.inputs[0]);
      if (trace.perm.join() !== separatePerm.join() || !parts || parts.length !== 4 || parts[2] !== heads) return undefined;
      if ((attrInt(n, 'axis', 0) + 4) % 4 !== 3 || reshape?.op !== 'Reshape' || single(n.inputs[0]) === undefined) return undefined;
      const index = n.outputs.indexOf(trace.tensor);
      const kv = n.outputs.length === 2;
      if (kv ? which === 0 || index !== which - 1 : n.outputs.length !== 3 || index !== which) return undefined;
      const length = kv ? seqK : seq;
      if (!dimEquals(parts[0], batchDim) || !dimEquals(parts[1], length) || !isConcrete(parts[3])) return undefined;
      if (!tokenRows(reshape.inputs[0], length, (heads as number) * parts[3])) return undefined;
      return { layout: kv ? 'kv_head_split' : 'head_split', tensor: reshape.inputs[0], which, nodes: [], shared: [reshape, n], dim };
    }
    if (n.op === 'Gather') {
      if (trace.perm.join() !== packedPerm.join() || attrInt(n, 'axis', 0) !== 0) return undefined;
      const index = scalarValue(graph, n.inputs[1]);
      const perm = producers.get(n.inputs[0]);
      if (!perm || perm.op !== 'Transpose' || attrInts(perm, 'perm').join() !== '2,0,3,1,4' || !single(perm.inputs[0])) return undefined;
      const split = producers.get(perm.inputs[0]);
      const splitShape = split && split.op === 'Reshape' ? shapeOf(split.outputs[0]) : undefined;
      const qkvShape = split ? shapeOf(split.inputs[0]) : undefined;
      if (!split || !splitShape || splitShape.length !== 5 || splitShape[3] !== heads) return undefined;
      // [B,S,3,H,D] holds q, k, v (gathered at which); [B,Sk,2,H,D] holds k, v (gathered at which - 1)
      const kv = splitShape[2] === 2;
      if (kv ? which === 0 || index !== which - 1 : splitShape[2] !== 3 || index !== which) return undefined;
      if (!qkvShape || qkvShape.length !== 3 || !dimEquals(qkvShape[0], batchDim) || !dimEquals(qkvShape[1], kv ? seqK : seq))
        return undefined;
      return { layout: kv ? 'kv' : 'packed', tensor: split.inputs[0], which, nodes: [n], shared: [split, perm], dim };
    }
    if (n.op === 'Reshape') {
      // the Reshape splits H·D into H, D (scales between it and the Transposes were taken by strip)
      const to = shapeOf(n.outputs[0]);
      const from = shapeOf(n.inputs[0]);
      if (!to || to.length !== 4 || !from) return undefined;
      // rows [B·S, H·D] (LeViT's q of its subsampling attention) → [B,S,H,D]
      if (from.length === 2 && trace.perm.join() === separatePerm.join() && to[2] === heads && isConcrete(to[3]))
        return tokenRows(n.inputs[0], to[1], (heads as number) * to[3]) && dimEquals(to[0], batchDim)
          ? { layout: 'separate', tensor: n.inputs[0], which, nodes: [n], dim }
          : undefined;
      if (from.length !== 3 || !dimEquals(to[0], from[0])) return undefined;
      if (trace.perm.join() === separatePerm.join() && to[2] === heads && dimEquals(to[1], from[1]))
        return { layout: 'separate', tensor: n.inputs[0], which, nodes: [n], dim };
      // one head: [B,S,D] → [B,1,S,D] is the head split and its transpose at once
      if (heads === 1 && trace.perm.join() === packedPerm.join() && to[1] === 1 && dimEquals(to[2], from[1]))
        return { layout: 'separate', tensor: n.inputs[0], which, nodes: [n], dim };
      return undefined;
    }
    return undefined;
  }

  // q, k, v as outputs 0, 1, 2 of one Split of x [B,S,3·H·D] on its last axis (GPT-2's c_attn): packed on x
  let packedSplit: Node | undefined;
  if (layout === 'separate') {
    const split = producers.get(sq.tensor);
    const x = split && shapeOf(split.inputs[0]);
    // (q|k|v [H·D, H·D, H·Dv]: the op's packed layout takes a value head dim of its own)
    if (
      split?.op === 'Split' &&
      x?.length === 3 &&
      split.outputs.length === 3 &&
      (attrInt(split, 'axis', 0) + 3) % 3 === 2 &&
      [sq, sk, sv].every((src, i) => split.outputs[i] === src.tensor && single(src.tensor))
    ) {
      packedSplit = split;
      layout = 'packed';
      sq.tensor = sk.tensor = sv.tensor = split.inputs[0];
    }
  }

  // ── output: MatMul → Transpose(0,2,1,3) → Reshape [B,S,H·D] (one head: MatMul → Reshape [B,S,D]) ──
  let merge = single(pv.outputs[0]);
  let flatten: Node | undefined;
  if (merge?.op === 'Transpose' && attrInts(merge, 'perm').join() === '0,2,1,3') flatten = single(merge.outputs[0]);
  else if (merge?.op === 'Reshape' && heads === 1) [flatten, merge] = [merge, undefined];
  if (!flatten || flatten.op !== 'Reshape') return false;
  const outShape = shapeOf(flatten.outputs[0]);
  if (!outShape || outShape.length !== 3 || outShape[2] !== heads * valueHeadDim) return false;
  if (!dimEquals(outShape[0], batchDim) || !dimEquals(outShape[1], seq)) return false;

  // ── masks and biases in the op's form ──
  let causal = false;
  const added: Node[] = [];
  const operands: string[] = [];
  const scope = softmax.scope.length ? softmax.scope : flatten.scope;
  const resolve = (tensor: string, view: Dim[]): boolean => {
    const shape = shapeOf(tensor);
    const form = shape && biasForm(shape, view, batchDim, heads, seq, seqK);
    if (!form) return false;
    // a Reshape takes one -1: a bias of two symbolic dims (batch and seq) must already be in the op's form
    const inForm = shape.length === 4 && shape.every((d, i) => dimEquals(d, form[i]));
    if (!inForm && form.filter((d) => !isConcrete(d)).length > 1 && !valueOf(graph, tensor)) return false;
    operands.push(reshapeBias(graph, tensor, form, added, scope));
    return true;
  };
  for (const m of masks) {
    // a computed condition And(…, key ≤ query, …) over position indices (HF's masks with a symbolic seq): the flag
    // takes the causal term, the other terms (the padding mask) stay a mask
    const computed = m.scoresWhenTrue && dimEquals(seq, seqK) ? splitCausal(graph, producers, m.cond, seq, added, scope) : undefined;
    if (computed) {
      causal = true;
      if (computed.rest === undefined) continue;
      m.cond = computed.rest;
    }
    const cond = valueOf(graph, m.cond);
    if (
      cond &&
      seq === seqK &&
      isCausal(
        cond,
        seq,
        (c) => (m.scoresWhenTrue ? c === 0 : c !== 0),
        (c) => (m.scoresWhenTrue ? c !== 0 : c === 0),
      )
    ) {
      causal = true;
      continue;
    }
    const condShape = shapeOf(m.cond);
    if (!condShape || !biasForm(condShape, m.view, batchDim, heads, seq, seqK)) return false;
    if (!resolve(maskToBias(graph, m.cond, m.scoresWhenTrue, m.fill, added, scope), m.view)) return false;
  }
  for (const b of biases) {
    // a bias Where(cond, 0, fill) whose condition holds a causal term over positions (GPT-2's SDPA export): the
    // causal flag, and the bias of the other terms
    const where = producers.get(b.tensor);
    const fill = where?.op === 'Where' ? scalarValue(graph, where.inputs[2]) : undefined;
    if (where && fill !== undefined && fill <= MASK_FILL && scalarValue(graph, where.inputs[1]) === 0 && dimEquals(seq, seqK)) {
      const computed = splitCausal(graph, producers, where.inputs[0], seq, added, scope);
      if (computed) {
        causal = true;
        if (computed.rest === undefined) continue;
        if (!resolve(maskToBias(graph, computed.rest, true, fill, added, scope), b.view)) return false;
        continue;
      }
    }
    const value = valueOf(graph, b.tensor);
    if (
      value &&
      seq === seqK &&
      isCausal(
        value,
        seq,
        (x) => x <= MASK_FILL,
        (x) => x === 0,
      )
    ) {
      causal = true;
      continue;
    }
    if (!resolve(b.tensor, b.view)) return false;
  }
  if (operands.length > 2) return false; // the kernel reads at most two biases

  // q, k, v given as rows [B·S, ·]: a Reshape (a view) to the op's [B, S, ·]; one symbolic dim at most (the -1)
  const rowsOf = (src: Source, length: Dim): string | undefined => {
    const s = shapeOf(src.tensor)!;
    if (s.length === 3) return src.tensor;
    const form = [batchDim, length, s[1]];
    if (form.filter((d) => !isConcrete(d)).length > 1) return undefined;
    return reshapeRows(graph, src.tensor, form, added, scope);
  };
  const qkvInputs = layout === 'packed' ? [sq] : layout === 'kv_packed' ? [sq, sk] : [sq, sk, sv];
  const inputs = qkvInputs.map((src, i) => rowsOf(src, i === 0 ? seq : seqK));
  if (inputs.some((x) => x === undefined)) return false;

  const nodes = [sq, sk, sv].flatMap((s) => s.nodes);
  const shared = sq.shared ?? sk.shared ?? (packedSplit ? [packedSplit] : []);
  const absorbed = [
    ...shared,
    ...nodes,
    ...q.nodes,
    ...kT.nodes,
    ...v.nodes,
    qk,
    ...scoreNodes,
    softmax,
    ...guard,
    pv,
    ...(merge ? [merge] : []),
  ];
  const attention: Node = {
    id: flatten.id,
    op: 'attention',
    domain: FUSED_DOMAIN,
    name: `${softmax.name.replace(/\/(softmax\/)?Softmax$/i, '')}/attention`,
    inputs: [...(inputs as string[]), ...operands],
    outputs: [...flatten.outputs],
    attrs: {
      num_heads: { type: 'int', value: heads },
      head_dim: { type: 'int', value: headDim },
      ...(valueHeadDim !== headDim ? { value_head_dim: { type: 'int' as const, value: valueHeadDim } } : {}),
      ...(perHead ? { per_head: { type: 'int' as const, value: 1 } } : {}),
      scale: { type: 'float', value: q.scale * kT.scale * scoreScale },
      ...(layout !== 'packed' ? { layout: { type: 'string' as const, value: layout } } : {}),
      ...(causal ? { causal: { type: 'int' as const, value: 1 } } : {}),
      ...(zeroMaskedRows ? { zero_masked_rows: { type: 'int' as const, value: 1 } } : {}),
    },
    sourceNodes: [...flatten.sourceNodes],
    scope,
  };
  absorb(attention, ...absorbed);
  const gone = new Set<Node>(absorbed);
  for (const n of absorbed) for (const o of n.outputs) if (o) graph.tensors.delete(o);
  graph.nodes = graph.nodes.filter((n) => !gone.has(n));
  graph.nodes.splice(graph.nodes.indexOf(flatten), 1, ...added, attention);
  return true;
}

/**
 * The op's [Bk, Hk, Ik, Jk] shape for a bias of `shape` added to scores viewed as `view` ([...leading, S, Sk], the
 * leading dims' product B·H), or undefined when the bias does not broadcast that way.
 */
function biasForm(shape: Dim[], view: Dim[], batch: Dim, heads: number, seq: Dim, seqK: Dim): Dim[] | undefined {
  if (shape.length > view.length) return undefined;
  const padded: Dim[] = [...new Array<Dim>(view.length - shape.length).fill(1), ...shape];
  const lead = view.length - 2;
  const [ik, jk] = padded.slice(lead);
  if ((ik !== 1 && !dimEquals(ik, seq)) || (jk !== 1 && !dimEquals(jk, seqK))) return undefined;
  // heads: the shortest suffix of the leading dims whose product is H
  let split = lead;
  let product = 1;
  while (split > 0 && product < heads) {
    const d = view[split - 1];
    if (!isConcrete(d)) return undefined;
    product *= d;
    split--;
  }
  if (product !== heads) return undefined;
  const headDims = padded.slice(split, lead);
  let hk: number;
  if (headDims.every((d) => d === 1)) hk = 1;
  else if (headDims.every((d, i) => dimEquals(d, view[split + i]))) hk = heads;
  else return undefined;
  // batch: 1s, then full dims (read modulo their product)
  const batchDims = padded.slice(0, split);
  let first = batchDims.findIndex((d) => d !== 1);
  if (first < 0) first = split;
  if (!batchDims.slice(first).every((d, i) => dimEquals(d, view[first + i]))) return undefined;
  const bk = first === 0 ? batch : dimProduct(view.slice(first, split));
  if (!dimEquals(dimProduct(view.slice(0, split)), batch)) return undefined;
  if (!isConcrete(bk) && !dimEquals(bk, batch)) return undefined;
  return [bk, hk, ik, jk];
}

/** Whether a Reshape `from` → `to` is Transpose(0,2,1,3) of a 4-D tensor whose axis 1 or 2 has size 1. */
function swapsUnitAxes(from: Dim[] | undefined, to: Dim[] | undefined): boolean {
  if (!from || !to || from.length !== 4 || to.length !== 4 || (from[1] !== 1 && from[2] !== 1)) return false;
  return dimEquals(from[0], to[0]) && dimEquals(from[1], to[2]) && dimEquals(from[2], to[1]) && dimEquals(from[3], to[3]);
}

/**
 * A mask condition (true keeps the score) computed as And(…, key ≤ query, …) over position indices, as HF's
 * masks are when seq is symbolic: LessOrEqual(k, q) (or GreaterOrEqual(q, k)) where k is [1,…,1,S] and q is
 * [1,…,S,1], each Range(start, start + S, 1) (the same start) through Unsqueeze/Reshape and order-keeping Casts; the
 * And tree may sit under an Expand to the scores' shape and hold all-true constants. Returns the other terms (`rest`,
 * their And; undefined when none is left), or undefined when `cond` holds no such term (then nothing changes).
 */
function splitCausal(
  graph: Graph,
  producers: Map<string, Node>,
  cond: string,
  seq: Dim,
  added: Node[],
  scope: string[],
): { rest?: string } | undefined {
  const dtypeOf = (t: string) => graph.lookupTensor(t)?.dtype;
  const shapeOf = (t: string) => graph.lookupTensor(t)?.shape;
  /** Through Expand (the And broadcasts anyway) and bool → bool Casts. */
  const through = (t: string): string => {
    for (let n = producers.get(t); n && (n.op === 'Expand' || (n.op === 'Cast' && dtypeOf(n.inputs[0]) === 'bool')); n = producers.get(t))
      t = n.inputs[0];
    return t;
  };
  const terms: string[] = [];
  const collect = (t: string): void => {
    t = through(t);
    const n = producers.get(t);
    if (n?.op === 'And') n.inputs.forEach(collect);
    else terms.push(t);
  };
  collect(cond);
  /** The start of the Range that position index `t` ([1,…,1,S] on `axis` -1, or [1,…,S,1] on -2) counts from. */
  const positions = (t: string, axisFromEnd: 1 | 2): string | number | undefined => {
    const shape = shapeOf(t);
    if (!shape || shape.length < axisFromEnd) return undefined;
    if (!shape.every((d, i) => (i === shape.length - axisFromEnd ? dimEquals(d, seq) : d === 1))) return undefined;
    for (let n = producers.get(t); n; n = producers.get(t)) {
      if (n.op === 'Range') {
        if (scalarValue(graph, n.inputs[2]) !== 1) return undefined;
        return scalarValue(graph, n.inputs[0]) ?? n.inputs[0];
      }
      // views that only add unit axes keep the element order; integer/float casts keep the order of small indices
      if (n.op !== 'Unsqueeze' && n.op !== 'Reshape' && !(n.op === 'Cast' && dtypeOf(n.inputs[0]) !== 'bool')) return undefined;
      t = n.inputs[0];
    }
    return undefined;
  };
  const isCausalTerm = (t: string): boolean => {
    const n = producers.get(t);
    if (!n || (n.op !== 'LessOrEqual' && n.op !== 'GreaterOrEqual')) return false;
    const [key, query] = n.op === 'LessOrEqual' ? n.inputs : [n.inputs[1], n.inputs[0]];
    const k = positions(key, 1);
    return k !== undefined && k === positions(query, 2);
  };
  const allTrue = (t: string): boolean => {
    const v = valueOf(graph, t);
    return !!v && !Array.isArray(v.data) && Array.from(numeric(v)).every((x) => x !== 0);
  };
  const causalAt = terms.findIndex(isCausalTerm);
  if (causalAt < 0) return undefined;
  const rest = terms.filter((t, i) => i !== causalAt && !allTrue(t));
  if (rest.length === 0) return {};
  let out = rest[0];
  for (const t of rest.slice(1)) {
    const a = shapeOf(out);
    const b = shapeOf(t);
    if (!a || !b) return undefined;
    const rank = Math.max(a.length, b.length);
    const pad = (s: Dim[]) => [...new Array<Dim>(rank - s.length).fill(1), ...s];
    const shape = pad(a).map((d, i) => (d === 1 ? pad(b)[i] : d));
    out = addNode(graph, added, 'And', `${cond}/rest`, [out, t], { base: `${cond}_rest`, dtype: 'bool', shape }, scope);
  }
  return { rest: out };
}

/** Whether `value` ([1,…,1,S,S]) is a causal mask: `masked` above the diagonal (key > query), `kept` elsewhere. */
function isCausal(value: TensorValue, seq: Dim, masked: (x: number) => boolean, kept: (x: number) => boolean): boolean {
  // a constant mask has a constant size: a symbolic seq has none (it stays a bias)
  if (!isConcrete(seq)) return false;
  const shape = value.shape;
  if (shape.length < 2 || shape.slice(0, -2).some((d) => d !== 1) || shape[shape.length - 2] !== seq || shape[shape.length - 1] !== seq)
    return false;
  if (Array.isArray(value.data)) return false;
  const data = numeric(value);
  for (let i = 0; i < seq; i++)
    for (let j = 0; j < seq; j++) if (!(j > i ? masked(data[i * seq + j]) : kept(data[i * seq + j]))) return false;
  return true;
}

/** The additive bias of Where(cond, scores, fill) (or Where(cond, fill, scores)): Where(cond, 0, fill), as a constant when cond is one. */
function maskToBias(graph: Graph, cond: string, scoresWhenTrue: boolean, fill: number, added: Node[], scope: string[]): string {
  const info = graph.lookupTensor(cond)!;
  const known = valueOf(graph, cond);
  if (known && !Array.isArray(known.data)) {
    const c = numeric(known);
    const values = Array.from(c, (x) => ((x !== 0) === scoresWhenTrue ? 0 : fill));
    return addConstant(graph, `${cond}_bias`, makeTensor('float32', known.shape, values));
  }
  const zero = addConstant(graph, `${cond}_zero`, makeTensor('float32', [], [0]));
  const neg = addConstant(graph, `${cond}_fill`, makeTensor('float32', [], [fill]));
  return addNode(
    graph,
    added,
    'Where',
    `${cond}/mask_bias`,
    [cond, ...(scoresWhenTrue ? [zero, neg] : [neg, zero])],
    { base: `${cond}_bias`, dtype: 'float32', shape: info.shape! },
    scope,
  );
}

/** Adds one plain ONNX node of `op` (to `added`, which the fusion inserts) writing a new `dtype` tensor of `shape`. */
function addNode(
  graph: Graph,
  added: Node[],
  op: string,
  name: string,
  inputs: string[],
  output: { base: string; dtype: DType; shape: Dim[] },
  scope: string[],
): string {
  const out = graph.newTensorName(output.base);
  graph.addTensor({ name: out, kind: 'activation', dtype: output.dtype, shape: [...output.shape] });
  added.push({ id: graph.newNodeId(), op, domain: '', name, inputs, outputs: [out], attrs: {}, sourceNodes: [], scope });
  return out;
}

/** Rows [B·S, W] of `tensor` as [B, S, W] (`form`, one symbolic dim at most): a Reshape node (a view). */
function reshapeRows(graph: Graph, tensor: string, form: Dim[], added: Node[], scope: string[]): string {
  const shape = addConstant(
    graph,
    `${tensor}_rows_shape`,
    makeTensor(
      'int64',
      [3],
      form.map((d) => (isConcrete(d) ? d : -1)),
    ),
  );
  const dtype = graph.lookupTensor(tensor)!.dtype!;
  return addNode(graph, added, 'Reshape', `${tensor}/rows_reshape`, [tensor, shape], { base: `${tensor}_rows`, dtype, shape: form }, scope);
}

/** `tensor` in the op's bias shape `form`: itself, a reshaped constant, or a Reshape node (a view). */
function reshapeBias(graph: Graph, tensor: string, form: Dim[], added: Node[], scope: string[]): string {
  const info = graph.lookupTensor(tensor)!;
  if (info.shape!.length === 4 && info.shape!.every((d, i) => dimEquals(d, form[i]))) return tensor;
  const known = valueOf(graph, tensor);
  if (known && form.every(isConcrete)) return addConstant(graph, `${tensor}_bias`, { ...known, shape: form as number[] });
  const shape = addConstant(
    graph,
    `${tensor}_bias_shape`,
    makeTensor(
      'int64',
      [4],
      form.map((d) => (isConcrete(d) ? d : -1)),
    ),
  );
  if (form.filter((d) => !isConcrete(d)).length > 1) throw new Error('attention bias: more than one symbolic dim');
  return addNode(
    graph,
    added,
    'Reshape',
    `${tensor}/bias_reshape`,
    [tensor, shape],
    { base: `${tensor}_bias`, dtype: info.dtype!, shape: form },
    scope,
  );
}
