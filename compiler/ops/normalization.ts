/**
 * Op family: normalization — BatchNormalization (inference), LayerNormalization, Softmax/LogSoftmax, LpNormalization,
 * LRN, InstanceNormalization, GroupNormalization. Statistics are accumulated in double precision.
 */
import { isFloatType } from '../ir/dtype';
import { Node, attrFloat, attrInt } from '../ir/graph';
import { Dim } from '../ir/symbolic';
import { NumericData, TensorValue, makeTensor, numel, numeric, storageFor } from '../ir/tensor';
import { broadcastBinary } from '../interpreter/kernels/elementwise';
import { InferContext, OpDefinition, OutputType, nodeError, registerOps } from './registry';
import { normalizeAxis } from './reduce';

function requireInput(node: Node, inputs: (TensorValue | undefined)[], i: number): TensorValue {
  const v = inputs[i];
  if (!v) throw nodeError(node, 'run.missing-input', `input ${i} is missing`);
  return v;
}

function requireFloat(ctx: InferContext): void {
  if (!isFloatType(ctx.dtype(0))) ctx.fail(`needs a floating-point input, got ${ctx.dtype(0)}`);
}

/** Checks that a per-channel parameter (input i) is 1-D with `channels` elements when both are concrete. */
function checkPerChannel(ctx: InferContext, i: number, channels: Dim, what: string): void {
  if (!ctx.input(i)) return;
  const s = ctx.shape(i);
  if (s.length !== 1 || (typeof s[0] === 'number' && typeof channels === 'number' && s[0] !== channels))
    ctx.fail(`${what} (input ${i}) has shape [${s.map(String).join(', ')}], expected [${String(channels)}]`);
}

/** A parameter expanded by broadcasting to `shape` (LayerNormalization's scale and bias). */
function expandTo(p: TensorValue, shape: number[]): NumericData {
  if (numel(p.shape) === numel(shape)) return numeric(p);
  return numeric(broadcastBinary(makeTensor('float32', shape), p, 'float32', (_, v) => v));
}

// ---- BatchNormalization ----

const batchNormalization: OpDefinition = {
  op: 'BatchNormalization',
  infer(ctx) {
    requireFloat(ctx);
    const x = ctx.shape(0);
    if (x.length < 2) ctx.fail(`the input must be [N, C, ...], got rank ${x.length}`);
    if (attrInt(ctx.node, 'training_mode', 0) !== 0) ctx.fail('training_mode=1 is not supported (inference only)');
    ['scale', 'bias', 'mean', 'var'].forEach((what, k) => checkPerChannel(ctx, k + 1, x[1], what));
    return [{ dtype: ctx.dtype(0), shape: x }];
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => numeric(requireInput(node, inputs, i)));
    const eps = attrFloat(node, 'epsilon', 1e-5);
    const channels = x.shape[1];
    const inner = numel(x.shape.slice(2));
    const xd = numeric(x);
    const out = storageFor(x.dtype, xd.length);
    for (let n = 0; n < x.shape[0]; n++)
      for (let c = 0; c < channels; c++) {
        const k = scale[c] / Math.sqrt(variance[c] + eps);
        const shift = bias[c] - mean[c] * k;
        for (let i = (n * channels + c) * inner, end = i + inner; i < end; i++) out[i] = xd[i] * k + shift;
      }
    return [{ dtype: x.dtype, shape: [...x.shape], data: out }];
  },
};

// ---- LayerNormalization ----

const layerNormalization: OpDefinition = {
  op: 'LayerNormalization',
  infer(ctx) {
    requireFloat(ctx);
    const x = ctx.shape(0);
    const axis = normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', -1), x.length);
    const outputs: OutputType[] = [{ dtype: ctx.dtype(0), shape: x }];
    const statsShape = x.map((d, i) => (i < axis ? d : 1));
    const stashType = attrInt(ctx.node, 'stash_type', 1) === 1 ? 'float32' : ctx.dtype(0);
    outputs.push({ dtype: stashType, shape: statsShape }, { dtype: stashType, shape: [...statsShape] });
    return outputs;
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const axis = normalizeAxis(node, attrInt(node, 'axis', -1), x.shape.length);
    const eps = attrFloat(node, 'epsilon', 1e-5);
    const normShape = x.shape.slice(axis);
    const inner = numel(normShape);
    const outer = numel(x.shape.slice(0, axis));
    const scale = expandTo(requireInput(node, inputs, 1), normShape);
    const bias = inputs[2] ? expandTo(inputs[2], normShape) : undefined;
    const xd = numeric(x);
    const out = storageFor(x.dtype, xd.length);
    const means = new Float32Array(outer);
    const invStd = new Float32Array(outer);
    for (let o = 0; o < outer; o++) {
      const base = o * inner;
      let sum = 0;
      for (let i = 0; i < inner; i++) sum += xd[base + i];
      const mean = sum / inner;
      let sq = 0;
      for (let i = 0; i < inner; i++) {
        const d = xd[base + i] - mean;
        sq += d * d;
      }
      const inv = 1 / Math.sqrt(sq / inner + eps);
      means[o] = mean;
      invStd[o] = inv;
      if (bias) for (let i = 0; i < inner; i++) out[base + i] = (xd[base + i] - mean) * inv * scale[i] + bias[i];
      else for (let i = 0; i < inner; i++) out[base + i] = (xd[base + i] - mean) * inv * scale[i];
    }
    const statsShape = x.shape.map((d, i) => (i < axis ? d : 1));
    return [
      { dtype: x.dtype, shape: [...x.shape], data: out },
      { dtype: 'float32', shape: statsShape, data: means },
      { dtype: 'float32', shape: [...statsShape], data: invStd },
    ];
  },
};

// ---- Softmax / LogSoftmax ----

/**
 * Softmax geometry: before opset 13 the input is flattened to 2-D at `axis` (default 1) and normalized over
 * the whole second part; from 13 it is normalized along the single `axis` (default -1).
 */
function softmaxGeometry(node: Node, shape: number[], opset: number): { outer: number; n: number; inner: number } {
  const legacy = opset < 13;
  const axis = normalizeAxis(node, attrInt(node, 'axis', legacy ? 1 : -1), shape.length);
  if (legacy) return { outer: numel(shape.slice(0, axis)), n: numel(shape.slice(axis)), inner: 1 };
  return { outer: numel(shape.slice(0, axis)), n: shape[axis], inner: numel(shape.slice(axis + 1)) };
}

/**
 * EvalEnv does not carry the opset, so inference records the legacy (opset < 13) nodes here for evaluate;
 * a node never inferred is evaluated with the current semantics.
 */
const legacySoftmaxNodes = new WeakSet<Node>();

function softmaxDefinition(op: 'Softmax' | 'LogSoftmax'): OpDefinition {
  return {
    op,
    infer(ctx) {
      requireFloat(ctx);
      const x = ctx.shape(0);
      const axis = attrInt(ctx.node, 'axis', ctx.opset < 13 ? 1 : -1);
      normalizeAxis(ctx.node, axis, x.length);
      if (ctx.opset < 13) legacySoftmaxNodes.add(ctx.node);
      return [{ dtype: ctx.dtype(0), shape: x }];
    },
    evaluate(node, inputs) {
      const x = requireInput(node, inputs, 0);
      const { outer, n, inner } = softmaxGeometry(node, x.shape, legacySoftmaxNodes.has(node) ? 12 : 13);
      const xd = numeric(x);
      const out = storageFor(x.dtype, xd.length);
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          const base = o * n * inner + i;
          let max = Number.NEGATIVE_INFINITY;
          for (let k = 0; k < n; k++) max = Math.max(max, xd[base + k * inner]);
          let sum = 0;
          for (let k = 0; k < n; k++) sum += Math.exp(xd[base + k * inner] - max);
          if (op === 'Softmax') for (let k = 0; k < n; k++) out[base + k * inner] = Math.exp(xd[base + k * inner] - max) / sum;
          else {
            const logSum = Math.log(sum);
            for (let k = 0; k < n; k++) out[base + k * inner] = xd[base + k * inner] - max - logSum;
          }
        }
      return [{ dtype: x.dtype, shape: [...x.shape], data: out }];
    },
  };
}

// ---- LpNormalization ----

/** x / ‖x‖_p along `axis` (default -1), p = 1 or 2; a zero norm gives 0 (as onnxruntime). */
const lpNormalization: OpDefinition = {
  op: 'LpNormalization',
  infer(ctx) {
    requireFloat(ctx);
    const x = ctx.shape(0);
    normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', -1), x.length);
    const p = attrInt(ctx.node, 'p', 2);
    if (p !== 1 && p !== 2) ctx.fail(`p must be 1 or 2, got ${p}`);
    return [{ dtype: ctx.dtype(0), shape: x }];
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const axis = normalizeAxis(node, attrInt(node, 'axis', -1), x.shape.length);
    const p = attrInt(node, 'p', 2);
    const outer = numel(x.shape.slice(0, axis));
    const n = x.shape[axis];
    const inner = numel(x.shape.slice(axis + 1));
    const xd = numeric(x);
    const out = storageFor(x.dtype, xd.length);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const base = o * n * inner + i;
        let sum = 0;
        for (let k = 0; k < n; k++) sum += p === 1 ? Math.abs(xd[base + k * inner]) : xd[base + k * inner] ** 2;
        const norm = p === 1 ? sum : Math.sqrt(sum);
        for (let k = 0; k < n; k++) out[base + k * inner] = norm === 0 ? 0 : xd[base + k * inner] / norm;
      }
    return [{ dtype: x.dtype, shape: [...x.shape], data: out }];
  },
};

// ---- LRN ----

/**
 * Local response normalization across channels (axis 1): y = x / (bias + alpha / size · Σ x²)^beta over channels
 * c − ⌊(size − 1) / 2⌋ … c + ⌈(size − 1) / 2⌉ (those inside the tensor).
 */
const lrn: OpDefinition = {
  op: 'LRN',
  infer(ctx) {
    requireFloat(ctx);
    const x = ctx.shape(0);
    if (x.length < 3) ctx.fail(`needs an input of rank 3 or more ([N, C, ...]), got rank ${x.length}`);
    if (!ctx.node.attrs.size) ctx.fail('the size attribute is required');
    if (attrInt(ctx.node, 'size') < 1) ctx.fail(`size must be positive, got ${attrInt(ctx.node, 'size')}`);
    return [{ dtype: ctx.dtype(0), shape: x }];
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const { size, alpha, beta, bias } = lrnAttributes(node);
    const channels = x.shape[1];
    const inner = numel(x.shape.slice(2));
    const outer = x.shape[0];
    const before = Math.floor((size - 1) / 2);
    const after = size - 1 - before;
    const xd = numeric(x);
    const out = storageFor(x.dtype, xd.length);
    for (let o = 0; o < outer; o++)
      for (let c = 0; c < channels; c++)
        for (let q = 0; q < inner; q++) {
          let sum = 0;
          for (let k = Math.max(0, c - before); k <= Math.min(channels - 1, c + after); k++) sum += xd[(o * channels + k) * inner + q] ** 2;
          const i = (o * channels + c) * inner + q;
          out[i] = xd[i] / (bias + (alpha / size) * sum) ** beta;
        }
    return [{ dtype: x.dtype, shape: [...x.shape], data: out }];
  },
};

export function lrnAttributes(node: Node): { size: number; alpha: number; beta: number; bias: number } {
  return {
    size: attrInt(node, 'size'),
    alpha: attrFloat(node, 'alpha', 1e-4),
    beta: attrFloat(node, 'beta', 0.75),
    bias: attrFloat(node, 'bias', 1),
  };
}

// ---- InstanceNormalization / GroupNormalization ----

/**
 * Normalizes each of `groups` consecutive slices of every image (instance norm: one group per channel), then
 * applies a per-channel affine transform.
 */
function groupNorm(
  x: TensorValue,
  groups: number,
  eps: number,
  scaleOf: (c: number) => number,
  biasOf: (c: number) => number,
  channelsLast = false,
): TensorValue {
  const batch = x.shape[0];
  const channels = channelsLast ? x.shape[x.shape.length - 1] : x.shape[1];
  const spatial = numel(channelsLast ? x.shape.slice(1, -1) : x.shape.slice(2));
  const perGroup = channels / groups;
  // element (channel c, position s) of image n
  const at = (n: number, c: number, s: number) => (channelsLast ? (n * spatial + s) * channels + c : (n * channels + c) * spatial + s);
  const xd = numeric(x);
  const out = storageFor(x.dtype, xd.length);
  for (let n = 0; n < batch; n++)
    for (let g = 0; g < groups; g++) {
      const count = perGroup * spatial;
      let sum = 0;
      for (let c = g * perGroup; c < (g + 1) * perGroup; c++) for (let s = 0; s < spatial; s++) sum += xd[at(n, c, s)];
      const mean = sum / count;
      let sq = 0;
      for (let c = g * perGroup; c < (g + 1) * perGroup; c++) for (let s = 0; s < spatial; s++) sq += (xd[at(n, c, s)] - mean) ** 2;
      const inv = 1 / Math.sqrt(sq / count + eps);
      for (let c = g * perGroup; c < (g + 1) * perGroup; c++) {
        const k = scaleOf(c) * inv;
        const b = biasOf(c);
        for (let s = 0; s < spatial; s++) out[at(n, c, s)] = (xd[at(n, c, s)] - mean) * k + b;
      }
    }
  return { dtype: x.dtype, shape: [...x.shape], data: out };
}

/**
 * The channel axis of Instance/GroupNormalization: 1, or the last with `channels_last` (set by the layout pass on
 * NHWC data: [N, spatial..., C]).
 */
export function normChannelAxis(node: Node, rank: number): number {
  return attrInt(node, 'channels_last', 0) ? rank - 1 : 1;
}

const instanceNormalization: OpDefinition = {
  op: 'InstanceNormalization',
  infer(ctx) {
    requireFloat(ctx);
    const x = ctx.shape(0);
    if (x.length < 3) ctx.fail(`the input must be [N, C, spatial...], got rank ${x.length}`);
    const c = x[normChannelAxis(ctx.node, x.length)];
    checkPerChannel(ctx, 1, c, 'scale');
    checkPerChannel(ctx, 2, c, 'bias');
    return [{ dtype: ctx.dtype(0), shape: x }];
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const scale = numeric(requireInput(node, inputs, 1));
    const bias = numeric(requireInput(node, inputs, 2));
    const channelsLast = attrInt(node, 'channels_last', 0) !== 0;
    return [
      groupNorm(
        x,
        x.shape[normChannelAxis(node, x.shape.length)],
        attrFloat(node, 'epsilon', 1e-5),
        (c) => scale[c],
        (c) => bias[c],
        channelsLast,
      ),
    ];
  },
};

const groupNormalization: OpDefinition = {
  op: 'GroupNormalization',
  infer(ctx) {
    requireFloat(ctx);
    const x = ctx.shape(0);
    if (x.length < 3) ctx.fail(`the input must be [N, C, spatial...], got rank ${x.length}`);
    const groups = attrInt(ctx.node, 'num_groups');
    const c = x[normChannelAxis(ctx.node, x.length)];
    if (typeof c === 'number' && c % groups !== 0) ctx.fail(`${c} channels do not divide into num_groups=${groups}`);
    return [{ dtype: ctx.dtype(0), shape: x }];
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const groups = attrInt(node, 'num_groups');
    const scale = numeric(requireInput(node, inputs, 1));
    const bias = numeric(requireInput(node, inputs, 2));
    const channels = x.shape[normChannelAxis(node, x.shape.length)];
    if (channels % groups !== 0)
      throw nodeError(node, 'run.shape-mismatch', `${channels} channels do not divide into num_groups=${groups}`);
    // Opset 18 had per-group scale/bias; opset 21 made them per-channel. The length tells which.
    const perChannel = scale.length === channels;
    const perGroup = channels / groups;
    const at = (v: NumericData) => (c: number) => v[perChannel ? c : Math.floor(c / perGroup)];
    return [groupNorm(x, groups, attrFloat(node, 'epsilon', 1e-5), at(scale), at(bias), attrInt(node, 'channels_last', 0) !== 0)];
  },
};

registerOps([
  batchNormalization,
  layerNormalization,
  softmaxDefinition('Softmax'),
  softmaxDefinition('LogSoftmax'),
  lpNormalization,
  lrn,
  instanceNormalization,
  groupNormalization,
]);
