/**
 * Fused ops (domain 'ait'): the kernel-sized ops the optimizer produces. Each has shape inference and a CPU
 * reference assembled from the ONNX ops' references, so that an optimized graph can be checked against the
 * original by the interpreter.
 *
 *   conv2d      NHWC convolution: inputs [x NHWC, w KRSC (OHWI), …epilogue operands]; attrs strides, pads
 *               [top,left,bottom,right], dilations, group, epilogue
 *   conv3d      NDHWC convolution (the 5-D Conv of video networks): inputs [x NDHWC, w ODHWI [K, T, R, S, C/group],
 *               …epilogue operands]; attrs strides [d, h, w], pads [front, top, left, back, bottom, right],
 *               dilations [d, h, w], group, epilogue
 *   conv_transpose2d  NHWC transposed convolution (ONNX ConvTranspose, 2-D): inputs [x NHWC, w [KH, KW, M/group, C]
 *               (ONNX's [C, M/group, KH, KW] transposed: for group 1, row (i, j, m) of the GEMM x · wᵀ; output
 *               channel g·M/group + m' reads row (i, j, m'), columns of group g), …epilogue operands]; attrs strides,
 *               pads [top,left,bottom,right], dilations, output_padding [h, w] (rows/columns added at the end), group,
 *               epilogue. out = (in − 1)·stride + (k − 1)·dilation + 1 − pads + output_padding
 *   gemm        [a (…,M,K), b ([N,K] when trans_b=1, else [K,N]), …epilogue operands] → (…,M,N); attrs trans_b, epilogue
 *   attention   softmax(Q·Kᵀ·scale + biases, causal)·V over heads → [B,S,H·D]. Inputs: attr layout 'packed' (default):
 *               [qkv [B,S,3·H·D] (q|k|v, each H×D), …biases]; 'kv_packed': [q [B,S,H·D], kv [B,Sk,2·H·D] (k|v),
 *               …biases]; 'separate': [q [B,S,H·D], k, v (each [B,Sk,H·D]), …biases]. Sk (keys = values) may differ
 *               from S (cross-attention, PVT/SegFormer's spatial-reduction attention); packed has Sk = S.
 *               value_head_dim Dv (default head_dim D): v's head dim, output [B,S,H·Dv], v's widths above H·Dv
 *               (packed [B,S,H·D|H·D|H·Dv]). per_head 1: the packed input is split per head, qkv [B,S,H·(D+D+Dv)]
 *               (head h's q|k|v together) or kv [B,Sk,H·(D+Dv)] (LeViT, EfficientFormer; attentionOperands).
 *               A bias is [Bk, 1|H, 1|S, 1|Sk] added to the scores [B,H,S,Sk] at [b mod Bk, h, i, j] (size-1 axes
 *               broadcast; Bk divides B: 1, B, or Swin's nW windows over B = batch·nW). attrs num_heads, head_dim,
 *               scale, causal (key j > query i masked; Sk = S only), zero_masked_rows (a row with every key masked
 *               gives 0, as a Where(IsNaN(p), 0, p) guard makes it; otherwise NaN, as softmax of all -inf does).
 *   layernorm   over the last axis: [x, gamma, beta?]; attrs epsilon
 *   elementwise elementwise ONNX ops (a DAG with one output) held as a subgraph attribute `body`
 *   pool2d      NHWC max/avg pooling; attrs kind, kernel, strides, pads, ceil_mode, count_include_pad
 *   pool3d      NDHWC max/avg pooling; attrs as pool2d over [d, h, w] (pads [front, top, left, back, bottom, right])
 *   global_pool NHWC (or NDHWC) mean/max over the spatial axes → [N, C] (attr keep_spatial: → [N,1,1,C] / [N,1,1,1,C])
 *   transpose_pad  Transpose by attr perm, then the last axis zero-padded up to attr channels (a model input
 *               NCHW → NHWC with C padded to 8 for the convolution kernels; also the stem weights OIHW → OHWI)
 *
 * Epilogue steps, applied in order to the accumulator (operands are the node's inputs after the first two, in the
 * order steps consume them): bias (per output channel), scale (per output channel multiply), residual_add,
 * relu, gelu, gelu_tanh, sigmoid, silu, tanh, hardswish, hardsigmoid, leaky_relu:ALPHA, clip:MIN:MAX.
 */
import { attrFloat, attrInt, attrInts, attrString, attrGraph, Node } from '../ir/graph';
import { Dim, dimAdd, dimEquals, dimMul, evaluateDim, isConcrete, shapeEquals } from '../ir/symbolic';
import { TensorValue, makeTensor, numeric, numel, stridesOf } from '../ir/tensor';
import { broadcastShapes, forEachBroadcast } from './broadcast';
import { EvalEnv, InferContext, OpDefinition, findOp, registerOps } from './registry';

export const FUSED_DOMAIN = 'ait';

/** Epilogue steps that read an extra operand. */
export const EPILOGUE_OPERAND_STEPS = new Set(['bias', 'scale', 'residual_add']);

export function epilogueOf(node: Node): string[] {
  const a = node.attrs.epilogue;
  return a && a.type === 'strings' ? a.value : [];
}

/** Applies epilogue steps in place to `acc` (shape outShape, channels on the last axis). */
export function applyEpilogue(node: Node, acc: TensorValue, operands: (TensorValue | undefined)[]): TensorValue {
  const out = numeric(acc);
  const channels = acc.shape[acc.shape.length - 1] ?? 1;
  let next = 0;
  for (const step of epilogueOf(node)) {
    const [name, ...params] = step.split(':');
    if (EPILOGUE_OPERAND_STEPS.has(name)) {
      const operand = operands[next++];
      if (!operand) throw new Error(`epilogue step ${name} has no operand`);
      const v = numeric(operand);
      if (name === 'residual_add') {
        if (numel(operand.shape) === out.length) for (let i = 0; i < out.length; i++) out[i] += v[i];
        else forEachBroadcast(acc.shape, [operand.shape], (o, idx) => (out[o] += v[idx[0]]));
      } else {
        // per output channel (last axis) vector, or a scalar
        const per = v.length === 1 ? 0 : 1;
        if (per && v.length !== channels) throw new Error(`epilogue ${name}: operand has ${v.length} values for ${channels} channels`);
        if (name === 'bias') for (let i = 0; i < out.length; i++) out[i] += v[per * (i % channels)];
        else for (let i = 0; i < out.length; i++) out[i] *= v[per * (i % channels)];
      }
      continue;
    }
    const f = activation(name, params.map(Number));
    for (let i = 0; i < out.length; i++) out[i] = f(out[i]);
  }
  return acc;
}

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is not accurate enough; use a series/continued-fraction split (|err| < 1e-12).
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = x;
    let term = x;
    const x2 = x * x;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // continued fraction for erfc
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

export function activation(name: string, params: number[]): (x: number) => number {
  switch (name) {
    case 'relu':
      return (x) => (x > 0 ? x : 0);
    case 'gelu':
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_tanh':
      return (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    case 'sigmoid':
      return (x) => 1 / (1 + Math.exp(-x));
    case 'silu':
      return (x) => x / (1 + Math.exp(-x));
    case 'tanh':
      return Math.tanh;
    case 'hardswish':
      return (x) => x * Math.min(1, Math.max(0, x / 6 + 0.5));
    case 'hardsigmoid':
      return (x) => Math.min(1, Math.max(0, (params[0] ?? 0.2) * x + (params[1] ?? 0.5)));
    case 'leaky_relu':
      return (x) => (x >= 0 ? x : (params[0] ?? 0.01) * x);
    case 'clip':
      return (x) => Math.min(params[1] ?? Infinity, Math.max(params[0] ?? -Infinity, x));
    default:
      throw new Error(`unknown epilogue step '${name}'`);
  }
}

/** Calls an ONNX op's CPU reference with a synthetic node. */
function evalOnnx(op: string, inputs: (TensorValue | undefined)[], attrs: Node['attrs'], env: EvalEnv, like: Node): TensorValue[] {
  const def = findOp({ op, domain: '' });
  if (!def?.evaluate) throw new Error(`no CPU reference for ${op}`);
  const node: Node = { ...like, op, domain: '', attrs };
  return def.evaluate(node, inputs, env);
}

function transposeValue(t: TensorValue, perm: number[]): TensorValue {
  const shape = perm.map((p) => t.shape[p]);
  const src = numeric(t);
  const out = makeTensor(t.dtype, shape);
  const dst = out.data as Float32Array;
  const rank = shape.length;
  if (rank === 0 || dst.length === 0) {
    dst.set(src.subarray(0, dst.length));
    return out;
  }
  const inStrides = stridesOf(t.shape);
  const permStrides = perm.map((p) => inStrides[p]);
  // Odometer over all but the last output axis; the last axis is a tight strided copy.
  const inner = shape[rank - 1];
  const innerStride = permStrides[rank - 1];
  const idx = new Array<number>(rank).fill(0);
  let off = 0;
  for (let o = 0; o < dst.length; o += inner) {
    for (let j = 0, s = off; j < inner; j++, s += innerStride) dst[o + j] = src[s];
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]++;
      off += permStrides[d];
      if (idx[d] < shape[d]) break;
      off -= permStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

const NCHW_TO_NHWC = [0, 2, 3, 1];
const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCDHW_TO_NDHWC = [0, 2, 3, 4, 1];
const NDHWC_TO_NCDHW = [0, 4, 1, 2, 3];

function spatialOut(
  inDim: Dim,
  k: number,
  stride: number,
  padBegin: number,
  padEnd: number,
  dilation: number,
  ceil = false,
  ctx?: InferContext,
): Dim {
  const eff = dilation * (k - 1) + 1;
  if (isConcrete(inDim)) {
    const span = inDim + padBegin + padEnd - eff;
    return (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  }
  // 'same' padding at stride 1 keeps the size; otherwise the ONNX window's size as ops/conv.ts windowOutputDim
  // writes it (so that the fused op's output dim is the one the ONNX op inferred): floor(span / stride) + 1
  if (stride === 1 && padBegin + padEnd === eff - 1) return inDim;
  if (!ctx) throw new Error('symbolic spatial dims are not supported here');
  const padded = dimAdd(inDim, padBegin + padEnd);
  return dimAdd(ctx.symbols.floorDiv(dimAdd(padded, ceil ? stride - 1 - eff : -eff), stride), 1);
}

/**
 * A patchify convolution: the window tiles the input without overlap or padding (strides equal to a kernel larger
 * than 1×1, no padding, no dilation, one group), the patch embedding of a vision transformer. Its im2col is a
 * permuting copy no larger than the input and its GEMM has K = R·S·C, so it runs as patchify + GEMM, and it needs no
 * channel padding (a padded RGB input would only add zero columns to K).
 */
export function isPatchifyConv(node: Node, kernel: readonly [number, number]): boolean {
  const [r, s] = kernel;
  const strides = attrInts(node, 'strides', [1, 1]);
  return (
    r * s > 1 &&
    strides[0] === r &&
    strides[1] === s &&
    attrInts(node, 'pads', [0, 0, 0, 0]).every((v) => v === 0) &&
    attrInts(node, 'dilations', [1, 1]).every((v) => v === 1) &&
    attrInt(node, 'group', 1) === 1
  );
}

const conv2d: OpDefinition = {
  op: 'conv2d',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const x = ctx.shape(0);
    const w = ctx.shape(1);
    const strides = attrInts(ctx.node, 'strides', [1, 1]);
    const pads = attrInts(ctx.node, 'pads', [0, 0, 0, 0]);
    const dil = attrInts(ctx.node, 'dilations', [1, 1]);
    const k = w[0];
    const r = w[1] as number;
    const s = w[2] as number;
    return [
      {
        dtype: ctx.dtype(0),
        shape: [
          x[0],
          spatialOut(x[1], r, strides[0], pads[0], pads[2], dil[0], false, ctx),
          spatialOut(x[2], s, strides[1], pads[1], pads[3], dil[1], false, ctx),
          k,
        ],
      },
    ];
  },
  evaluate(node, inputs, env) {
    const [x, w, ...operands] = inputs;
    const xNchw = transposeValue(x!, NHWC_TO_NCHW);
    const wOihw = transposeValue(w!, NHWC_TO_NCHW);
    const [y] = evalOnnx(
      'Conv',
      [xNchw, wOihw],
      {
        strides: { type: 'ints', value: attrInts(node, 'strides', [1, 1]) },
        pads: { type: 'ints', value: attrInts(node, 'pads', [0, 0, 0, 0]) },
        dilations: { type: 'ints', value: attrInts(node, 'dilations', [1, 1]) },
        group: { type: 'int', value: attrInt(node, 'group', 1) },
      },
      env,
      node,
    );
    return [applyEpilogue(node, transposeValue(y, NCHW_TO_NHWC), operands)];
  },
};

const conv3d: OpDefinition = {
  op: 'conv3d',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const x = ctx.shape(0);
    const w = ctx.shape(1);
    if (x.length !== 5 || w.length !== 5) ctx.fail('conv3d takes an NDHWC input and an ODHWI weight');
    const strides = attrInts(ctx.node, 'strides', [1, 1, 1]);
    const pads = attrInts(ctx.node, 'pads', [0, 0, 0, 0, 0, 0]);
    const dil = attrInts(ctx.node, 'dilations', [1, 1, 1]);
    const spatial = [0, 1, 2].map((a) => spatialOut(x[1 + a], w[1 + a] as number, strides[a], pads[a], pads[a + 3], dil[a], false, ctx));
    return [{ dtype: ctx.dtype(0), shape: [x[0], ...spatial, w[0]] }];
  },
  evaluate(node, inputs, env) {
    const [x, w, ...operands] = inputs;
    const [y] = evalOnnx(
      'Conv',
      [transposeValue(x!, NDHWC_TO_NCDHW), transposeValue(w!, NDHWC_TO_NCDHW)],
      {
        strides: { type: 'ints', value: attrInts(node, 'strides', [1, 1, 1]) },
        pads: { type: 'ints', value: attrInts(node, 'pads', [0, 0, 0, 0, 0, 0]) },
        dilations: { type: 'ints', value: attrInts(node, 'dilations', [1, 1, 1]) },
        group: { type: 'int', value: attrInt(node, 'group', 1) },
      },
      env,
      node,
    );
    return [applyEpilogue(node, transposeValue(y, NCDHW_TO_NDHWC), operands)];
  },
};

/**
 * ONNX ConvTranspose weight [C, M/group, KH, KW] → conv_transpose2d's [KH, KW, M/group, C] (a transpose, any group).
 * The layout pass does the same with a Transpose node (weight preparation); this is the reference's and the tests' form.
 */
export function convTransposeWeightFromOnnx(w: TensorValue): TensorValue {
  return transposeValue(w, [2, 3, 1, 0]);
}

/** The inverse of convTransposeWeightFromOnnx: [KH, KW, M/group, C] → [C, M/group, KH, KW]. */
export function convTransposeWeightToOnnx(w: TensorValue): TensorValue {
  return transposeValue(w, [3, 2, 0, 1]);
}

/** conv_transpose2d's output size along one spatial axis. */
function transposedSpatialOut(
  input: Dim,
  k: number,
  stride: number,
  padBegin: number,
  padEnd: number,
  dilation: number,
  extra: number,
): Dim {
  return dimAdd(dimMul(stride, input), (k - 1) * dilation + 1 - stride - padBegin - padEnd + extra);
}

const convTranspose2d: OpDefinition = {
  op: 'conv_transpose2d',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const x = ctx.shape(0);
    const w = ctx.shape(1);
    const strides = attrInts(ctx.node, 'strides', [1, 1]);
    const pads = attrInts(ctx.node, 'pads', [0, 0, 0, 0]);
    const dil = attrInts(ctx.node, 'dilations', [1, 1]);
    const extra = attrInts(ctx.node, 'output_padding', [0, 0]);
    const group = attrInt(ctx.node, 'group', 1);
    if (x.length !== 4 || w.length !== 4) ctx.fail('conv_transpose2d takes an NHWC input and a [KH, KW, M/group, C] weight');
    const [kh, kw, mg, c] = w;
    if (!isConcrete(kh) || !isConcrete(kw)) ctx.fail('the weight has symbolic kernel dims');
    if (isConcrete(x[3]) && isConcrete(c) && x[3] !== c) ctx.fail(`the input has ${x[3]} channels but the weight expects ${c}`);
    if (isConcrete(c) && c % group !== 0) ctx.fail(`${c} input channels do not divide into ${group} groups`);
    return [
      {
        dtype: ctx.dtype(0),
        shape: [
          x[0],
          transposedSpatialOut(x[1], kh as number, strides[0], pads[0], pads[2], dil[0], extra[0]),
          transposedSpatialOut(x[2], kw as number, strides[1], pads[1], pads[3], dil[1], extra[1]),
          dimMul(mg, group),
        ],
      },
    ];
  },
  evaluate(node, inputs, env) {
    const [x, w, ...operands] = inputs;
    const group = attrInt(node, 'group', 1);
    const [y] = evalOnnx(
      'ConvTranspose',
      [transposeValue(x!, NHWC_TO_NCHW), convTransposeWeightToOnnx(w!)],
      {
        kernel_shape: { type: 'ints', value: w!.shape.slice(0, 2) },
        strides: { type: 'ints', value: attrInts(node, 'strides', [1, 1]) },
        pads: { type: 'ints', value: attrInts(node, 'pads', [0, 0, 0, 0]) },
        dilations: { type: 'ints', value: attrInts(node, 'dilations', [1, 1]) },
        output_padding: { type: 'ints', value: attrInts(node, 'output_padding', [0, 0]) },
        group: { type: 'int', value: group },
      },
      env,
      node,
    );
    return [applyEpilogue(node, transposeValue(y, NCHW_TO_NHWC), operands)];
  },
};

const gemm: OpDefinition = {
  op: 'gemm',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const a = ctx.shape(0);
    const b = ctx.shape(1);
    const transB = attrInt(ctx.node, 'trans_b', 0);
    const n = transB ? b[0] : b[1];
    const kb = transB ? b[1] : b[0];
    if (!dimEquals(a[a.length - 1], kb)) ctx.fail(`K mismatch: a has ${String(a[a.length - 1])}, b has ${String(kb)}`);
    return [{ dtype: ctx.dtype(0), shape: [...a.slice(0, -1), n] }];
  },
  evaluate(node, inputs, env) {
    const [a, b, ...operands] = inputs;
    const transB = attrInt(node, 'trans_b', 0);
    const bKN = transB ? transposeValue(b!, [1, 0]) : b!;
    const [y] = evalOnnx('MatMul', [a, bKN], {}, env, node);
    return [applyEpilogue(node, y, operands)];
  },
};

/** Inputs before the biases: 1 (packed qkv), 2 (q and packed kv) or 3 (q, k, v). */
export function attentionQkvInputs(node: Node): number {
  const layout = attrString(node, 'layout', 'packed');
  return layout === 'separate' ? 3 : layout === 'kv_packed' ? 2 : 1;
}

/** The values' head dim: attr value_head_dim, else head_dim (LeViT and EfficientFormer's v heads are wider). */
export function attentionValueHeadDim(node: Node): number {
  return attrInt(node, 'value_head_dim', attrInt(node, 'head_dim'));
}

/**
 * Where q, k and v of an attention node are, over its inputs as flat [B, S, ·] token rows: input index, elements
 * between tokens, the offset of head 0 within a token and the elements between heads, per q (0), k (1) and v (2).
 * The CUDA lowering and the reference both read them from here.
 * per_head = 1: the packed input (packed qkv, or kv_packed's kv) is split per head, [B,S,H,D+D+Dv] ([B,Sk,H,D+Dv]),
 * as LeViT/EfficientFormer's Reshape [B,S,H,·] → Split(last axis) leaves it; else [B,S,3|2 (q|k|v),H,D|D|Dv].
 */
export function attentionOperands(node: Node): { input: number; tokenStride: number; offset: number; headStride: number }[] {
  const h = attrInt(node, 'num_heads');
  const d = attrInt(node, 'head_dim');
  const dv = attentionValueHeadDim(node);
  const perHead = attrInt(node, 'per_head', 0) !== 0;
  switch (attentionQkvInputs(node)) {
    case 1: {
      const w = 2 * d + dv; // one head's q|k|v
      return perHead
        ? [0, d, 2 * d].map((offset) => ({ input: 0, tokenStride: h * w, offset, headStride: w }))
        : [0, 1, 2].map((i) => ({ input: 0, tokenStride: h * w, offset: i * h * d, headStride: i === 2 ? dv : d }));
    }
    case 2: {
      const w = d + dv; // one head's k|v
      const q = { input: 0, tokenStride: h * d, offset: 0, headStride: d };
      return perHead
        ? [q, { input: 1, tokenStride: h * w, offset: 0, headStride: w }, { input: 1, tokenStride: h * w, offset: d, headStride: w }]
        : [q, { input: 1, tokenStride: h * w, offset: 0, headStride: d }, { input: 1, tokenStride: h * w, offset: h * d, headStride: dv }];
    }
    default:
      return [d, d, dv].map((e, i) => ({ input: i, tokenStride: h * e, offset: 0, headStride: e }));
  }
}

/** Whether concrete `k` divides `d` for every value of its symbols (each coefficient is a multiple of k). */
function dividesDim(k: number, d: Dim): boolean {
  if (isConcrete(d)) return d % k === 0;
  return [...d.terms.values()].every((c) => c % k === 0);
}

const ATTENTION_LAYOUTS = ['packed', 'kv_packed', 'separate'];

const attention: OpDefinition = {
  op: 'attention',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const node = ctx.node;
    const heads = attrInt(node, 'num_heads');
    const headDim = attrInt(node, 'head_dim');
    const valueHeadDim = attentionValueHeadDim(node);
    const layout = attrString(node, 'layout', 'packed');
    if (!ATTENTION_LAYOUTS.includes(layout)) ctx.fail(`layout '${layout}' (${ATTENTION_LAYOUTS.join(', ')})`);
    if (!(headDim >= 1) || !(valueHeadDim >= 1)) ctx.fail(`head dims ${headDim} (q, k) and ${valueHeadDim} (v) must be positive`);
    if (attrInt(node, 'per_head', 0) !== 0 && layout === 'separate') ctx.fail('per_head needs a packed input (packed or kv_packed)');
    const first = attentionQkvInputs(node);
    const operands = attentionOperands(node);
    for (let i = 0; i < first; i++) {
      const shape = ctx.shape(i);
      const width = operands.find((o) => o.input === i)!.tokenStride;
      if (shape.length !== 3 || !dimEquals(shape[2], width))
        ctx.fail(`attention input ${i}: [B,S,${width}] expected, got [${shape.map(String).join(',')}]`);
    }
    const [batch, seq] = ctx.shape(0);
    // keys and values: the kv input, or k and v (one length); their batch is the queries'
    const kv = ctx.shape(first - 1);
    if (first === 3 && !shapeEquals(ctx.shape(1).slice(0, 2), kv.slice(0, 2))) ctx.fail('k and v must have one batch and length');
    if (!dimEquals(kv[0], batch)) ctx.fail(`q batch ${String(batch)} and k/v batch ${String(kv[0])} differ`);
    const seqK = first === 1 ? seq : kv[1];
    if (attrInt(node, 'causal', 0) !== 0 && !dimEquals(seq, seqK))
      ctx.fail(`causal over ${String(seq)} queries and ${String(seqK)} keys (defined for equal lengths only)`);
    for (let i = first; i < node.inputs.length; i++) {
      const b = ctx.shape(i);
      const ok =
        b.length === 4 &&
        (dimEquals(b[0], batch) || (isConcrete(b[0]) && b[0] > 0 && dividesDim(b[0], batch))) &&
        (b[1] === 1 || b[1] === heads) &&
        (b[2] === 1 || dimEquals(b[2], seq)) &&
        (b[3] === 1 || dimEquals(b[3], seqK));
      if (!ok)
        ctx.fail(
          `bias input ${i} [${b.map(String).join(',')}] does not broadcast as [B mod n, 1|H, 1|Sq, 1|Sk] over [${String(batch)},${heads},${String(seq)},${String(seqK)}]`,
        );
    }
    return [{ dtype: ctx.dtype(0), shape: [batch, seq, heads * valueHeadDim] }];
  },
  evaluate(node, inputs) {
    const first = attentionQkvInputs(node);
    const [batch, seq] = inputs[0]!.shape;
    const seqK = inputs[first - 1]!.shape[1];
    const heads = attrInt(node, 'num_heads');
    const d = attrInt(node, 'head_dim');
    const dv = attentionValueHeadDim(node);
    const scale = attrFloat(node, 'scale');
    const causal = attrInt(node, 'causal', 0) !== 0;
    const zeroMaskedRows = attrInt(node, 'zero_masked_rows', 0) !== 0;
    const hdv = heads * dv;
    // element (b, s, h, e) of q (which 0, s < seq), k (1) or v (2) (s < seqK)
    const operands = attentionOperands(node);
    const srcs = operands.map((o) => numeric(inputs[o.input]!));
    const at = (which: number, b: number, s: number, h: number): [ArrayLike<number>, number] => {
      const o = operands[which];
      return [srcs[which], (b * (which === 0 ? seq : seqK) + s) * o.tokenStride + o.offset + h * o.headStride];
    };
    const biases = inputs.slice(first).map((t) => {
      const [bb, bh, bq, bk] = t!.shape;
      if (batch % bb !== 0) throw new Error(`attention bias batch ${bb} does not divide ${batch}`);
      const strides = stridesOf(t!.shape);
      return {
        data: numeric(t!),
        offset: (b: number, h: number, i: number) =>
          (b % bb) * strides[0] + (bh === 1 ? 0 : h * strides[1]) + (bq === 1 ? 0 : i * strides[2]),
        keyStride: bk === 1 ? 0 : strides[3],
      };
    });
    const out = makeTensor(inputs[0]!.dtype, [batch, seq, hdv]);
    const dst = out.data as Float32Array;
    const scores = new Float64Array(seqK);
    for (let b = 0; b < batch; b++)
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < seq; i++) {
          const [qSrc, qOff] = at(0, b, i, h);
          let max = -Infinity;
          for (let j = 0; j < seqK; j++) {
            const [kSrc, kOff] = at(1, b, j, h);
            let dot = 0;
            for (let e = 0; e < d; e++) dot += qSrc[qOff + e] * kSrc[kOff + e];
            let score = dot * scale;
            for (const bias of biases) score += bias.data[bias.offset(b, h, i) + j * bias.keyStride];
            if (causal && j > i) score = -Infinity;
            scores[j] = score;
            if (score > max) max = score;
          }
          const oOff = (b * seq + i) * hdv + h * dv;
          if (max === -Infinity) {
            // every key masked: softmax is 0/0 (NaN), or 0 where the graph guarded it (Where(IsNaN(p), 0, p))
            for (let e = 0; e < dv; e++) dst[oOff + e] = zeroMaskedRows ? 0 : NaN;
            continue;
          }
          let sum = 0;
          for (let j = 0; j < seqK; j++) {
            scores[j] = Math.exp(scores[j] - max);
            sum += scores[j];
          }
          for (let e = 0; e < dv; e++) {
            let acc = 0;
            for (let j = 0; j < seqK; j++) {
              const [vSrc, vOff] = at(2, b, j, h);
              acc += scores[j] * vSrc[vOff + e];
            }
            dst[oOff + e] = acc / sum;
          }
        }
    return [out];
  },
};

const layernorm: OpDefinition = {
  op: 'layernorm',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    return [{ dtype: ctx.dtype(0), shape: ctx.shape(0) }];
  },
  evaluate(node, inputs, env) {
    return evalOnnx(
      'LayerNormalization',
      inputs,
      { axis: { type: 'int', value: -1 }, epsilon: { type: 'float', value: attrFloat(node, 'epsilon', 1e-5) } },
      env,
      node,
    ).slice(0, 1);
  },
};

/**
 * A Concat read through an `elementwise` node's input slot (attribute `concat`, one string per such slot,
 * `SLOT:AXIS:E1,E2,…`): body input SLOT is the concatenation along AXIS of pieces of extents E1, E2, … on that axis.
 * The node's inputs are the body's inputs with each such slot replaced, in place, by its pieces; the Concat itself
 * is not computed (passes/fuse-elementwise.ts absorbs a Concat whose only reader is the group).
 */
export interface ConcatSlot {
  slot: number;
  axis: number;
  extents: number[];
}

/** The largest number of Concat pieces one elementwise node reads (kMaxConcatPieces of kernels/elementwise.cuh). */
export const MAX_CONCAT_PIECES = 64;

/**
 * The kernel-parameter bytes one elementwise kernel may take: 4 KB, the limit every target has (HIP's kernel-argument
 * buffer; CUDA before 12.1 and pre-Volta). The fused kernels take all their inputs by value (ew::ElementwiseArgs and
 * ew::MixedArgs of kernels/elementwise.cuh assert the same bound), so a group stops growing at this size.
 */
export const ELEMENTWISE_PARAM_BYTES = 4096;

/**
 * An upper bound of the parameter bytes of an elementwise kernel with `nodes` body nodes reading `slots` input slots
 * and `pieces` concat pieces: per slot a pointer, its broadcast kind, inner and span, and a strided index of rank 6
 * (8 + 4 + 8 + 8 + 104, rounded up); per piece a pointer, start, extent and storage type (8 + 8 + 8 + 4, rounded up);
 * per node its functor (at most two scalars, and padding); the output, the count and padding.
 */
export function elementwiseParamBytes(slots: number, pieces: number, nodes: number): number {
  return 64 + 144 * slots + 32 * pieces + 16 * nodes;
}

export function concatSlotsOf(node: Node): ConcatSlot[] {
  const a = node.attrs.concat;
  if (!a || a.type !== 'strings') return [];
  return a.value.map((entry) => {
    const [slot, axis, extents] = entry.split(':');
    return { slot: Number(slot), axis: Number(axis), extents: extents.split(',').map(Number) };
  });
}

export function concatSlotAttribute(slots: readonly ConcatSlot[]): string[] {
  return slots.map((s) => `${s.slot}:${s.axis}:${s.extents.join(',')}`);
}

/** One input slot of an elementwise node: the tensor the body reads, and the node inputs that hold it. */
export interface ElementwiseSlot {
  /** The tensor the body reads (for a concat slot, the Concat's output: in the body only). */
  tensor: string;
  /** The node's inputs holding it: [tensor], or the concat pieces in order. */
  inputs: string[];
  /** Where the slot is a Concat of its inputs: the axis and the pieces' extents along it. */
  concat?: { axis: number; extents: number[] };
}

/**
 * The input slots of an `elementwise` node (or a lone ONNX elementwise op: one slot per input), in the order the
 * body's inputs are numbered, each with the node inputs that hold it.
 */
export function elementwiseSlotsOf(node: Node): ElementwiseSlot[] {
  const concats = concatSlotsOf(node);
  if (node.op !== 'elementwise' || !concats.length) return node.inputs.map((t) => ({ tensor: t, inputs: [t] }));
  const body = attrGraph(node, 'body');
  const bySlot = new Map(concats.map((c) => [c.slot, c]));
  const slots: ElementwiseSlot[] = [];
  let next = 0;
  body.inputs.forEach((tensor, k) => {
    const c = bySlot.get(k);
    const count = c ? c.extents.length : 1;
    const inputs = node.inputs.slice(next, next + count);
    next += count;
    slots.push(c ? { tensor, inputs, concat: { axis: c.axis, extents: c.extents } } : { tensor, inputs });
  });
  if (next !== node.inputs.length)
    throw new Error(`elementwise node '${node.name}': ${node.inputs.length} inputs for slots holding ${next}`);
  return slots;
}

/** The concatenation of `pieces` along `axis` (the reference of a concat slot). */
export function concatValues(pieces: readonly TensorValue[], axis: number): TensorValue {
  const shape = [...pieces[0].shape];
  shape[axis] = pieces.reduce((s, p) => s + p.shape[axis], 0);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const out = makeTensor(pieces[0].dtype, shape);
  const dst = numeric(out);
  let offset = 0;
  for (let o = 0; o < outer; o++)
    for (const p of pieces) {
      const block = p.shape[axis] * inner;
      const src = numeric(p);
      for (let e = 0; e < block; e++) dst[offset++] = src[o * block + e];
    }
  return out;
}

const elementwise: OpDefinition = {
  op: 'elementwise',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    // a concat slot's shape is its first piece's with the pieces' extents summed on the axis
    let at = 0;
    const shapes = elementwiseSlotsOf(ctx.node).map((slot) => {
      const first = ctx.shape(at);
      if (!slot.concat) {
        at += 1;
        return first;
      }
      const shape = [...first];
      shape[slot.concat.axis] = slot.concat.extents.reduce((a, b) => a + b, 0);
      slot.inputs.forEach((_, p) => {
        const piece = ctx.shape(at + p);
        if (!dimEquals(piece[slot.concat!.axis], slot.concat!.extents[p]))
          ctx.fail(
            `concat piece ${p} of slot '${slot.tensor}' has extent ${String(piece[slot.concat!.axis])}, not ${slot.concat!.extents[p]}`,
          );
      });
      at += slot.inputs.length;
      return shape;
    });
    const out = broadcastShapes(shapes);
    if (typeof out === 'string') return ctx.fail(out);
    const body = attrGraph(ctx.node, 'body');
    const result = body.tensors.get(body.outputs[0]);
    return [{ dtype: result?.dtype ?? ctx.dtype(0), shape: out }];
  },
  evaluate(node, inputs, env) {
    const body = attrGraph(node, 'body');
    let at = 0;
    const values = elementwiseSlotsOf(node).map((slot) => {
      const pieces = inputs.slice(at, at + slot.inputs.length) as TensorValue[];
      at += slot.inputs.length;
      return slot.concat ? concatValues(pieces, slot.concat.axis) : pieces[0];
    });
    return env.runSubgraph(body, values, () => undefined);
  },
};

const pool2d: OpDefinition = {
  op: 'pool2d',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const x = ctx.shape(0);
    const k = attrInts(ctx.node, 'kernel');
    const strides = attrInts(ctx.node, 'strides', [1, 1]);
    const pads = attrInts(ctx.node, 'pads', [0, 0, 0, 0]);
    const dilations = attrInts(ctx.node, 'dilations', [1, 1]);
    const ceil = attrInt(ctx.node, 'ceil_mode', 0) === 1;
    return [
      {
        dtype: ctx.dtype(0),
        shape: [
          x[0],
          spatialOut(x[1], k[0], strides[0], pads[0], pads[2], dilations[0], ceil, ctx),
          spatialOut(x[2], k[1], strides[1], pads[1], pads[3], dilations[1], ceil, ctx),
          x[3],
        ],
      },
    ];
  },
  evaluate(node, inputs, env) {
    const kind = attrString(node, 'kind');
    const attrs: Node['attrs'] = {
      kernel_shape: { type: 'ints', value: attrInts(node, 'kernel') },
      strides: { type: 'ints', value: attrInts(node, 'strides', [1, 1]) },
      pads: { type: 'ints', value: attrInts(node, 'pads', [0, 0, 0, 0]) },
      dilations: { type: 'ints', value: attrInts(node, 'dilations', [1, 1]) },
      ceil_mode: { type: 'int', value: attrInt(node, 'ceil_mode', 0) },
    };
    if (kind === 'avg') attrs.count_include_pad = { type: 'int', value: attrInt(node, 'count_include_pad', 0) };
    const [y] = evalOnnx(kind === 'max' ? 'MaxPool' : 'AveragePool', [transposeValue(inputs[0]!, NHWC_TO_NCHW)], attrs, env, node);
    return [transposeValue(y, NCHW_TO_NHWC)];
  },
};

const pool3d: OpDefinition = {
  op: 'pool3d',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const x = ctx.shape(0);
    if (x.length !== 5) ctx.fail('pool3d takes an NDHWC input');
    const k = attrInts(ctx.node, 'kernel');
    const strides = attrInts(ctx.node, 'strides', [1, 1, 1]);
    const pads = attrInts(ctx.node, 'pads', [0, 0, 0, 0, 0, 0]);
    const dilations = attrInts(ctx.node, 'dilations', [1, 1, 1]);
    const ceil = attrInt(ctx.node, 'ceil_mode', 0) === 1;
    const spatial = [0, 1, 2].map((a) => spatialOut(x[1 + a], k[a], strides[a], pads[a], pads[a + 3], dilations[a], ceil, ctx));
    return [{ dtype: ctx.dtype(0), shape: [x[0], ...spatial, x[4]] }];
  },
  evaluate(node, inputs, env) {
    const kind = attrString(node, 'kind');
    const attrs: Node['attrs'] = {
      kernel_shape: { type: 'ints', value: attrInts(node, 'kernel') },
      strides: { type: 'ints', value: attrInts(node, 'strides', [1, 1, 1]) },
      pads: { type: 'ints', value: attrInts(node, 'pads', [0, 0, 0, 0, 0, 0]) },
      dilations: { type: 'ints', value: attrInts(node, 'dilations', [1, 1, 1]) },
      ceil_mode: { type: 'int', value: attrInt(node, 'ceil_mode', 0) },
    };
    if (kind === 'avg') attrs.count_include_pad = { type: 'int', value: attrInt(node, 'count_include_pad', 0) };
    const [y] = evalOnnx(kind === 'max' ? 'MaxPool' : 'AveragePool', [transposeValue(inputs[0]!, NDHWC_TO_NCDHW)], attrs, env, node);
    return [transposeValue(y, NCDHW_TO_NDHWC)];
  },
};

const globalPool: OpDefinition = {
  op: 'global_pool',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const x = ctx.shape(0);
    if (x.length < 3) ctx.fail('global_pool takes a channels-last input [N, spatial..., C]');
    const keep = attrInt(ctx.node, 'keep_spatial', 0);
    const c = x[x.length - 1];
    return [{ dtype: ctx.dtype(0), shape: keep ? [x[0], ...x.slice(1, -1).map(() => 1), c] : [x[0], c] }];
  },
  evaluate(node, inputs) {
    const x = inputs[0]!;
    const n = x.shape[0];
    const c = x.shape[x.shape.length - 1];
    // the spatial axes between batch and channels: H, W (NHWC) or D, H, W (NDHWC)
    const size = numel(x.shape.slice(1, -1));
    const src = numeric(x);
    const isMax = attrString(node, 'kind', 'avg') === 'max';
    const keep = attrInt(node, 'keep_spatial', 0);
    const out = makeTensor(x.dtype, keep ? [n, ...x.shape.slice(1, -1).map(() => 1), c] : [n, c]);
    const dst = out.data as Float32Array;
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++) {
        let acc = isMax ? -Infinity : 0;
        for (let i = 0; i < size; i++) {
          const v = src[(b * size + i) * c + ch];
          acc = isMax ? Math.max(acc, v) : acc + v;
        }
        dst[b * c + ch] = isMax ? acc : acc / size;
      }
    return [out];
  },
};

/**
 * symbolic_value: a small integer tensor known as expressions of the model's symbols (shape arithmetic such as
 * Shape → Gather → Concat collapses to one of these). No inputs; evaluated from the symbols' values in the run.
 */
const symbolicValue: OpDefinition = {
  op: 'symbolic_value',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const dims = ctx.node.symbolicValue ?? ctx.fail('symbolic_value without a value');
    const rank = attrInt(ctx.node, 'rank', 1);
    return [{ dtype: 'int64', shape: rank === 0 ? [] : [dims.length], shapeValue: dims }];
  },
  evaluate(node, _inputs, env) {
    const dims = node.symbolicValue ?? [];
    const values = dims.map((d) =>
      evaluateDim(d, (s) => {
        const v = env.symbol?.(s);
        if (v === undefined) throw new Error(`symbol '${s}' has no value in this run`);
        return v;
      }),
    );
    return [makeTensor('int64', attrInt(node, 'rank', 1) === 0 ? [] : [values.length], values)];
  },
};

/** Transpose, then zero-pad the last axis to `channels`. */
export function transposePadValue(t: TensorValue, perm: number[], channels: number): TensorValue {
  const moved = transposeValue(t, perm);
  const rank = moved.shape.length;
  const inner = moved.shape[rank - 1];
  if (channels < inner) throw new Error(`transpose_pad: ${channels} channels is fewer than the ${inner} present`);
  const shape = [...moved.shape.slice(0, rank - 1), channels];
  const out = makeTensor(t.dtype, shape);
  const src = numeric(moved);
  const dst = out.data as Float32Array | Float64Array;
  const rows = numel(shape) / Math.max(channels, 1);
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * inner, (r + 1) * inner), r * channels);
  return out;
}

const transposePad: OpDefinition = {
  op: 'transpose_pad',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const x = ctx.shape(0);
    const perm = attrInts(ctx.node, 'perm');
    const moved = perm.map((p) => x[p]);
    return [{ dtype: ctx.dtype(0), shape: [...moved.slice(0, -1), attrInt(ctx.node, 'channels')] }];
  },
  evaluate(node, inputs) {
    return [transposePadValue(inputs[0]!, attrInts(node, 'perm'), attrInt(node, 'channels'))];
  },
};

registerOps([
  conv2d,
  conv3d,
  convTranspose2d,
  gemm,
  attention,
  layernorm,
  elementwise,
  pool2d,
  pool3d,
  globalPool,
  transposePad,
  symbolicValue,
]);

export { transposeValue };
