/**
 * Layout rules: how an op commutes with a permutation of its data input. The layout pass (passes/layout.ts) moves
 * the NCHW↔NHWC transposes it creates around convolutions through every op that has a rule here, so that they meet
 * and cancel; it has no case per op or per model.
 *
 * A rule answers for `node` reading `Transpose(x, perm)`: can the node run on `x` instead, and with which attributes
 * and operands? The answer says, per input, whether it is data to permute the same way (broadcast operands are
 * right-aligned, so a per-channel [1,C,1,1] operand becomes [1,1,1,C]), to keep as it is, or to replace by a new
 * constant (axes, pads, scales); and per output, the permutation that turns the new output into the old one.
 * Rules are registered once per op family, by op name.
 */
import { AttrValue, Node, attrInt, attrInts, attrString } from '../ir/graph';
import { Dim } from '../ir/symbolic';
import { TensorValue, makeTensor, numeric } from '../ir/tensor';
import { FUSED_DOMAIN } from './fused';
import { BINARY_ELEMENTWISE_OPS, LOGIC_ELEMENTWISE_OPS, UNARY_ELEMENTWISE_OPS } from './op-classes';

export interface PermuteQuery {
  readonly node: Node;
  /** The node reads Transpose(x, perm): y.shape[i] = x.shape[perm[i]]. */
  readonly perm: readonly number[];
  readonly opset: number;
  shape(i: number): Dim[] | undefined;
  /** Compile-time value of input i, if known. */
  value(i: number): TensorValue | undefined;
}

/**
 * What to do with one input: permute it like the data, keep it, replace it by a new constant, or reorder a vector
 * of `groups` runs of one entry per axis (Resize's sizes/scales/roi) to the new axis order — gathered at run time
 * when its value is not known at compile time (sizes computed from a symbolic batch).
 */
export type InputAction = 'permute' | 'keep' | { value: TensorValue } | { reorder: number[] };

export interface PermuteAnswer {
  /** The node's attributes on the permuted data (all of them). */
  attrs: Record<string, AttrValue>;
  inputs: InputAction[];
  /** Per output: old output = Transpose(new output, outputs[k]). */
  outputs: number[][];
}

export type PermuteRule = (q: PermuteQuery) => PermuteAnswer | 'no';

const rules = new Map<string, PermuteRule>();

const ruleKey = (domain: string, op: string) => `${domain === 'ai.onnx' ? '' : domain}::${op}`;

/** Registers `rule` for each op of `ops` in `domain` ('' for ai.onnx; FUSED_DOMAIN for ops of ours). */
export function registerLayoutRule(ops: Iterable<string>, rule: PermuteRule, domain = ''): void {
  for (const op of ops) rules.set(ruleKey(domain, op), rule);
}

/** The rule of an op (by its domain and name), if it has one. */
export function layoutRuleOf(node: Pick<Node, 'op' | 'domain'>): PermuteRule | undefined {
  return rules.get(ruleKey(node.domain, node.op));
}

/** `perm` applied to an axis of the permuted tensor y gives the axis of x. */
const axisOfX = (perm: readonly number[], axis: number) => perm[axis];
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const ints = (value: number[]): AttrValue => ({ type: 'ints', value });
const int = (value: number): AttrValue => ({ type: 'int', value });
const int64 = (values: number[]): TensorValue => makeTensor('int64', [values.length], values);
const intsOf = (v: TensorValue | undefined): number[] | undefined => (v ? Array.from(numeric(v)) : undefined);

function dataRank(q: PermuteQuery, i = 0): number | undefined {
  return q.shape(i)?.length;
}

/** Elementwise with numpy broadcasting: every operand is data (right-aligned); attributes unchanged. */
const broadcast: PermuteRule = (q) => {
  const rank = q.perm.length;
  for (let i = 0; i < q.node.inputs.length; i++) if (q.node.inputs[i] && (dataRank(q, i) ?? rank + 1) > rank) return 'no';
  return { attrs: q.node.attrs, inputs: q.node.inputs.map(() => 'permute'), outputs: [[...q.perm]] };
};

/** Unary elementwise: input 0 is data, the rest (Clip's bounds) are scalars kept as they are. */
const unary: PermuteRule = (q) => ({
  attrs: q.node.attrs,
  inputs: q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep')),
  outputs: [[...q.perm]],
});

/** An op along one axis (attribute `axis`), shape otherwise unchanged. */
function alongAxis(name: string, fallback: number): PermuteRule {
  return (q) => {
    const rank = dataRank(q) ?? 0;
    const axis = norm(attrInt(q.node, name, fallback), rank);
    return {
      attrs: { ...q.node.attrs, [name]: int(axisOfX(q.perm, axis)) },
      inputs: q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep')),
      outputs: q.node.outputs.map(() => [...q.perm]),
    };
  };
}

/** Concat: every input is data; the axis moves with the permutation. */
const concat: PermuteRule = (q) => {
  const rank = dataRank(q) ?? 0;
  const axis = norm(attrInt(q.node, 'axis'), rank);
  return {
    attrs: { ...q.node.attrs, axis: int(axisOfX(q.perm, axis)) },
    inputs: q.node.inputs.map(() => 'permute'),
    outputs: [[...q.perm]],
  };
};

/** Softmax/LogSoftmax from opset 13 (one axis); before, the input is coerced to 2-D around the axis. */
const softmax: PermuteRule = (q) => {
  if (q.opset < 13) return 'no';
  return alongAxis('axis', -1)(q);
};

/** Normalizations over the trailing axes from `axis` on: the permuted set must again be trailing, in order. */
const layerNorm: PermuteRule = (q) => {
  const rank = dataRank(q) ?? 0;
  const axis = norm(attrInt(q.node, 'axis', -1), rank);
  const moved = q.perm.slice(axis);
  if (!moved.every((a, k) => a === axis + k)) return 'no';
  return { attrs: q.node.attrs, inputs: q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep')), outputs: [[...q.perm]] };
};

/** Reductions: axes (attribute, or input 1 from opset 18 / ReduceSum 13) map through the permutation. */
const reduce: PermuteRule = (q) => {
  const rank = dataRank(q);
  if (rank === undefined) return 'no';
  const fromInput = q.node.inputs.length > 1 && !!q.node.inputs[1];
  const given = fromInput ? intsOf(q.value(1)) : q.node.attrs.axes ? attrInts(q.node, 'axes') : [];
  if (!given) return 'no';
  if (given.length === 0 && attrInt(q.node, 'noop_with_empty_axes', 0) !== 0) return unary(q);
  const axes = given.length ? given.map((a) => norm(a, rank)) : [...Array(rank).keys()];
  const newAxes = axes.map((a) => axisOfX(q.perm, a)).sort((a, b) => a - b);
  const keep = attrInt(q.node, 'keepdims', 1) !== 0;
  let out: number[] = [...q.perm];
  if (!keep) {
    // the old output's axes are y's remaining axes; the new output's are x's remaining axes, in order
    const remainingX = [...Array(rank).keys()].filter((a) => !newAxes.includes(a));
    out = [...Array(rank).keys()].filter((a) => !axes.includes(a)).map((a) => remainingX.indexOf(axisOfX(q.perm, a)));
  }
  const attrs = { ...q.node.attrs };
  const inputs: InputAction[] = q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep'));
  if (fromInput) inputs[1] = { value: int64(newAxes) };
  else if (given.length) attrs.axes = ints(newAxes);
  return { attrs, inputs, outputs: [out] };
};

/** ArgMax/ArgMin: one axis. */
const argReduce: PermuteRule = (q) => {
  const rank = dataRank(q) ?? 0;
  const axis = norm(attrInt(q.node, 'axis', 0), rank);
  const newAxis = axisOfX(q.perm, axis);
  const keep = attrInt(q.node, 'keepdims', 1) !== 0;
  const out = keep
    ? [...q.perm]
    : [...Array(rank).keys()]
        .filter((a) => a !== axis)
        .map((a) => [...Array(rank).keys()].filter((b) => b !== newAxis).indexOf(axisOfX(q.perm, a)));
  return {
    attrs: { ...q.node.attrs, axis: int(newAxis) },
    inputs: [...q.node.inputs.map((_, i): InputAction => (i === 0 ? 'permute' : 'keep'))],
    outputs: [out],
  };
};

/** Split: one axis; sizes (input 1 or attribute) stay in order. */
const split: PermuteRule = (q) => alongAxis('axis', 0)(q);

/** Slice: axes (input 3, default 0..k-1) map through the permutation; starts/ends/steps stay paired with them. */
const slice: PermuteRule = (q) => {
  const rank = dataRank(q);
  if (rank === undefined || q.opset < 10) return 'no';
  const starts = intsOf(q.value(1));
  if (!starts) return 'no';
  const given = q.node.inputs[3] ? intsOf(q.value(3)) : [...starts.keys()];
  if (!given) return 'no';
  const axes = given.map((a) => axisOfX(q.perm, norm(a, rank)));
  const inputs: InputAction[] = [...Array(Math.max(4, q.node.inputs.length)).keys()].map((i) => (i === 0 ? 'permute' : 'keep'));
  inputs[3] = { value: int64(axes) };
  return { attrs: q.node.attrs, inputs, outputs: [[...q.perm]] };
};

/** Pad: pads [b0..b(r-1), e0..e(r-1)] (input 1 from opset 11, else the attribute); axes (input 3, opset 18). */
const pad: PermuteRule = (q) => {
  const rank = dataRank(q);
  if (rank === undefined) return 'no';
  const inputs: InputAction[] = q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep'));
  const attrs = { ...q.node.attrs };
  if (q.node.inputs[3]) {
    const axes = intsOf(q.value(3));
    if (!axes) return 'no';
    inputs[3] = { value: int64(axes.map((a) => axisOfX(q.perm, norm(a, rank)))) };
    return { attrs, inputs, outputs: [[...q.perm]] };
  }
  const given = q.opset >= 11 ? intsOf(q.value(1)) : attrInts(q.node, 'pads');
  if (!given || given.length !== 2 * rank) return 'no';
  const pads = new Array<number>(2 * rank);
  for (let i = 0; i < rank; i++) {
    pads[q.perm[i]] = given[i];
    pads[rank + q.perm[i]] = given[rank + i];
  }
  if (q.opset >= 11) inputs[1] = { value: int64(pads) };
  else attrs.pads = ints(pads);
  return { attrs, inputs, outputs: [[...q.perm]] };
};

/** Resize: roi, scales or sizes (inputs 1..3, one value per axis) permute with the data; or the `axes` attribute. */
const resize: PermuteRule = (q) => {
  const rank = dataRank(q);
  if (rank === undefined || q.opset < 11) return 'no';
  const attrs = { ...q.node.attrs };
  const inputs: InputAction[] = q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep'));
  if (q.node.attrs.axes) {
    attrs.axes = ints(attrInts(q.node, 'axes').map((a) => axisOfX(q.perm, norm(a, rank))));
    return { attrs, inputs, outputs: [[...q.perm]] };
  }
  if (attrString(q.node, 'keep_aspect_ratio_policy', 'stretch') !== 'stretch') return 'no';
  for (let i = 1; i <= 3; i++) {
    if (!q.node.inputs[i]) continue;
    const n = q.shape(i)?.[0];
    if (n === 0) continue; // an empty "absent" input
    const per = i === 1 ? 2 : 1; // roi: starts then ends
    if (n !== per * rank) return 'no';
    // new[perm[a]] = old[a]: the entry for x's axis j is y's entry for the axis that reads it
    const order = new Array<number>(per * rank);
    for (let k = 0; k < per; k++) for (let a = 0; a < rank; a++) order[k * rank + q.perm[a]] = k * rank + a;
    inputs[i] = { reorder: order };
  }
  return { attrs, inputs, outputs: [[...q.perm]] };
};

/**
 * RoiAlign reads X NCHW; on Transpose(x, [0, 3, 1, 2]) of an NHWC x it reads x itself (`channels_last`: C innermost,
 * what its kernel reads with 16-byte loads) and still writes [num_rois, C, out_h, out_w]: rois and batch indices are
 * kept, and the output needs no transpose.
 */
const roiAlign: PermuteRule = (q) => {
  if (q.perm.join() !== '0,3,1,2' || attrInt(q.node, 'channels_last', 0) !== 0) return 'no';
  return {
    attrs: { ...q.node.attrs, channels_last: int(1) },
    inputs: q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep')),
    outputs: [[0, 1, 2, 3]],
  };
};

/**
 * Instance/GroupNormalization read NCHW; on the NHWC→NCHW transpose of channels-last data ([0, r-1, 1, …, r-2]) they
 * read x itself (`channels_last`: C innermost, a group's channels a run at each position) and write it back in x's
 * layout; scale and bias are per channel (or per group) and kept.
 */
const groupNorm: PermuteRule = (q) => {
  const rank = q.perm.length;
  const toNchw = [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
  if (rank < 3 || q.perm.join() !== toNchw.join() || attrInt(q.node, 'channels_last', 0) !== 0) return 'no';
  return {
    attrs: { ...q.node.attrs, channels_last: int(1) },
    inputs: q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep')),
    outputs: [[...q.perm]],
  };
};

/** Roll (ours): each shifted axis maps through the permutation; its shift goes with it. */
const roll: PermuteRule = (q) => {
  const rank = dataRank(q);
  if (rank === undefined) return 'no';
  return {
    attrs: { ...q.node.attrs, axes: ints(attrInts(q.node, 'axes').map((a) => axisOfX(q.perm, norm(a, rank)))) },
    inputs: q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep')),
    outputs: [[...q.perm]],
  };
};

/** Ops that are the identity on layout (Identity, Dropout in inference). */
const passThrough: PermuteRule = (q) => ({
  attrs: q.node.attrs,
  inputs: q.node.inputs.map((_, i) => (i === 0 ? 'permute' : 'keep')),
  outputs: q.node.outputs.map(() => [...q.perm]),
});

registerLayoutRule([...UNARY_ELEMENTWISE_OPS, 'CastLike', 'Not'], unary);
registerLayoutRule(['Identity'], passThrough);
registerLayoutRule(
  [...BINARY_ELEMENTWISE_OPS, ...LOGIC_ELEMENTWISE_OPS].filter((op) => op !== 'Not'),
  broadcast,
);
registerLayoutRule(['Sum', 'Mean', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'Xor'], broadcast);
registerLayoutRule(['Concat'], concat);
registerLayoutRule(['Split'], split);
registerLayoutRule(['Slice'], slice);
registerLayoutRule(['Pad'], pad);
registerLayoutRule(['Roll'], roll, FUSED_DOMAIN);
registerLayoutRule(['Resize'], resize);
registerLayoutRule(['Softmax', 'LogSoftmax'], softmax);
registerLayoutRule(['LayerNormalization'], layerNorm);
registerLayoutRule(
  ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp'],
  reduce,
);
registerLayoutRule(['ArgMax', 'ArgMin'], argReduce);
registerLayoutRule(['LpNormalization'], alongAxis('axis', -1));
registerLayoutRule(['InstanceNormalization', 'GroupNormalization'], groupNorm);
registerLayoutRule(['RoiAlign'], roiAlign);
