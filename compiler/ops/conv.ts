/**
 * Op family: conv — Conv and ConvTranspose, plus the window arithmetic (strides, dilations, pads, auto_pad)
 * that the pooling ops share.
 *
 * Shape inference covers 1–3 spatial dims with symbolic batch (and symbolic spatial dims where the formula
 * stays polynomial or a floor division). The CPU reference evaluates 1-D to 3-D Conv by im2col + the blocked
 * float32 GEMM, and 1-D to 3-D ConvTranspose by GEMM + col2im.
 */
import { Node, attrInt, attrInts, attrString } from '../ir/graph';
import { Dim, SymbolTable, dimAdd, dimMul } from '../ir/symbolic';
import { TensorValue, numeric } from '../ir/tensor';
import { gemmAccumulate, rowMajor, transposed } from '../interpreter/kernels/gemm';
import { InferContext, OpDefinition, checkIntAttribute, nodeError, registerOps } from './registry';

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

/** Window attributes of a Conv/Pool node over `spatial` dims. */
export interface WindowAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Explicit pads: begins then ends (ONNX order). */
  pads: number[];
  autoPad: AutoPad;
}

export function windowAttrs(node: Node, spatial: number, kernel: number[]): WindowAttrs {
  const ones = new Array<number>(spatial).fill(1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET') as AutoPad;
  if (!['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'].includes(autoPad))
    throw nodeError(node, 'op.bad-attribute', `auto_pad '${autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`);
  const w: WindowAttrs = {
    kernel,
    strides: attrInts(node, 'strides', ones),
    dilations: attrInts(node, 'dilations', ones),
    pads: attrInts(node, 'pads', new Array<number>(2 * spatial).fill(0)),
    autoPad,
  };
  if (kernel.length !== spatial || w.strides.length !== spatial || w.dilations.length !== spatial || w.pads.length !== 2 * spatial)
    throw nodeError(
      node,
      'op.bad-attribute',
      `kernel [${kernel}], strides [${w.strides}], dilations [${w.dilations}] and pads [${w.pads}] must match ${spatial} spatial dim${spatial === 1 ? '' : 's'}`,
    );
  checkIntAttribute(node, 'kernel_shape', kernel, 1);
  checkIntAttribute(node, 'strides', w.strides, 1);
  checkIntAttribute(node, 'dilations', w.dilations, 1);
  checkIntAttribute(node, 'pads', w.pads, 0);
  return w;
}

/** Output size of one spatial dim of a sliding window (Conv, pooling); ≤ 0 when the window does not fit. */
export function windowOutputSize(input: number, w: WindowAttrs, i: number, ceilMode = false): number {
  const effective = (w.kernel[i] - 1) * w.dilations[i] + 1;
  const s = w.strides[i];
  if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') return Math.ceil(input / s);
  const padBegin = w.autoPad === 'VALID' ? 0 : w.pads[i];
  const span = input + (w.autoPad === 'VALID' ? 0 : w.pads[i] + w.pads[i + w.kernel.length]) - effective;
  if (span < 0) return 0;
  let out = (ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // A window may not start in the end padding (the rule onnxruntime and PyTorch follow).
  if (ceilMode && (out - 1) * s >= input + padBegin) out--;
  return out;
}

/** windowOutputSize for a concrete or symbolic input dim. */
export function windowOutputDim(symbols: SymbolTable, input: Dim, w: WindowAttrs, i: number, ceilMode = false): Dim {
  if (typeof input === 'number') return windowOutputSize(input, w, i, ceilMode);
  const effective = (w.kernel[i] - 1) * w.dilations[i] + 1;
  const s = w.strides[i];
  if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') return symbols.floorDiv(dimAdd(input, s - 1), s);
  const padded = w.autoPad === 'VALID' ? input : dimAdd(input, w.pads[i] + w.pads[i + w.kernel.length]);
  return dimAdd(symbols.floorDiv(dimAdd(padded, ceilMode ? s - 1 - effective : -effective), s), 1);
}

/** Concrete begin/end pads for concrete input dims (auto_pad resolved). */
export function resolvePads(input: number[], w: WindowAttrs): { begin: number[]; end: number[] } {
  const n = input.length;
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < n; i++) {
    if (w.autoPad === 'NOTSET') {
      begin.push(w.pads[i]);
      end.push(w.pads[i + n]);
    } else if (w.autoPad === 'VALID') {
      begin.push(0);
      end.push(0);
    } else {
      const out = Math.ceil(input[i] / w.strides[i]);
      const total = Math.max(0, (out - 1) * w.strides[i] + (w.kernel[i] - 1) * w.dilations[i] + 1 - input[i]);
      const small = Math.floor(total / 2);
      begin.push(w.autoPad === 'SAME_UPPER' ? small : total - small);
      end.push(w.autoPad === 'SAME_UPPER' ? total - small : small);
    }
  }
  return { begin, end };
}

function requireInput(node: Node, inputs: (TensorValue | undefined)[], i: number): TensorValue {
  const v = inputs[i];
  if (!v) throw nodeError(node, 'run.missing-input', `input ${i} is missing`);
  return v;
}

function checkFloatPair(ctx: InferContext): void {
  const x = ctx.dtype(0);
  const w = ctx.dtype(1);
  if (x !== w) ctx.fail(`the weight is ${w} but the input is ${x}`);
}

// ---- Conv ----

const conv: OpDefinition = {
  op: 'Conv',
  infer(ctx) {
    checkFloatPair(ctx);
    const x = ctx.shape(0);
    const wShape = ctx.shape(1);
    if (x.length < 3 || x.length > 5) ctx.fail(`the input must have 1-3 spatial dims, got shape ${shapeText(x)}`);
    if (wShape.length !== x.length) ctx.fail(`the weight ${shapeText(wShape)} and the input ${shapeText(x)} differ in rank`);
    const group = attrInt(ctx.node, 'group', 1);
    checkIntAttribute(ctx.node, 'group', group, 1);
    const spatial = x.length - 2;
    const kernel = attrInts(
      ctx.node,
      'kernel_shape',
      wShape.slice(2).map((d) => (typeof d === 'number' ? d : ctx.fail('the weight has symbolic kernel dims'))),
    );
    const w = windowAttrs(ctx.node, spatial, kernel);
    const [channels, perGroup, outChannels] = [x[1], wShape[1], wShape[0]];
    if (typeof channels === 'number' && typeof perGroup === 'number' && channels !== perGroup * group)
      ctx.fail(
        `the input has ${channels} channels but the weight ${shapeText(wShape)} expects ${perGroup * group} (${perGroup} per group × group ${group})`,
      );
    if (typeof outChannels === 'number' && outChannels % group !== 0)
      ctx.fail(`${outChannels} output channels do not divide into ${group} groups`);
    if (ctx.input(2)) {
      const b = ctx.shape(2);
      if (b.length !== 1 || (typeof b[0] === 'number' && typeof outChannels === 'number' && b[0] !== outChannels))
        ctx.fail(`the bias ${shapeText(b)} must be [${String(outChannels)}]`);
    }
    const out: Dim[] = [x[0], outChannels];
    for (let i = 0; i < spatial; i++) {
      const d = windowOutputDim(ctx.symbols, x[2 + i], w, i);
      if (typeof d === 'number' && d <= 0)
        ctx.fail(`the kernel (${kernel[i]}, dilation ${w.dilations[i]}) is larger than spatial dim ${i} (${String(x[2 + i])} with pads)`);
      out.push(d);
    }
    return [{ dtype: ctx.dtype(0), shape: out }];
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const weight = requireInput(node, inputs, 1);
    const spatial = x.shape.length - 2;
    if (spatial < 1 || spatial > 3)
      throw nodeError(node, 'run.unsupported', `the reference Conv runs 1-D to 3-D convolutions, this one has ${spatial} spatial dims`);
    const kernel = attrInts(node, 'kernel_shape', weight.shape.slice(2));
    const w = windowAttrs(node, spatial, kernel);
    const group = attrInt(node, 'group', 1);
    if (x.shape[1] !== weight.shape[1] * group)
      throw nodeError(node, 'run.shape-mismatch', `the input has ${x.shape[1]} channels but the weight expects ${weight.shape[1] * group}`);
    const pads = resolvePads(x.shape.slice(2), w);
    // 1-D and 2-D run as 3-D with leading spatial dims of 1.
    const lift = (v: number[], one: number) => [...new Array<number>(3 - spatial).fill(one), ...v];
    const p: ConvParams = {
      batch: x.shape[0],
      channels: x.shape[1],
      inDims: lift(x.shape.slice(2), 1),
      outChannels: weight.shape[0],
      group,
      kernel: lift(kernel, 1),
      strides: lift(w.strides, 1),
      dilations: lift(w.dilations, 1),
      padBegin: lift(pads.begin, 0),
      padEnd: lift(pads.end, 0),
    };
    const { data, outDims } = convNd(p, toF32(x), toF32(weight), inputs[2] ? toF32(inputs[2]) : undefined);
    return [{ dtype: x.dtype, shape: [p.batch, p.outChannels, ...outDims.slice(3 - spatial)], data }];
  },
};

function toF32(t: TensorValue): Float32Array {
  const d = numeric(t);
  return d instanceof Float32Array ? d : Float32Array.from(d);
}

/** A convolution over three spatial dims [depth, height, width] (1-D and 2-D lifted with leading dims of 1). */
export interface ConvParams {
  batch: number;
  channels: number;
  /** [D, H, W] */
  inDims: number[];
  outChannels: number;
  group: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  padBegin: number[];
  padEnd: number[];
}

/**
 * Convolution over three spatial dims: per (image, group), out[M/g × DoHoWo] = W_g[M/g × (C/g·kd·kh·kw)] ·
 * im2col(x)[(C/g·kd·kh·kw) × DoHoWo].
 */
export function convNd(
  p: ConvParams,
  x: Float32Array,
  weight: Float32Array,
  bias?: Float32Array,
): { data: Float32Array; outDims: number[] } {
  const outDims = p.inDims.map(
    (size, a) => Math.floor((size + p.padBegin[a] + p.padEnd[a] - (p.kernel[a] - 1) * p.dilations[a] - 1) / p.strides[a]) + 1,
  );
  const spatialOut = outDims[0] * outDims[1] * outDims[2];
  const spatialIn = p.inDims[0] * p.inDims[1] * p.inDims[2];
  const cg = p.channels / p.group;
  const mg = p.outChannels / p.group;
  const depth = cg * p.kernel[0] * p.kernel[1] * p.kernel[2];
  const out = new Float32Array(p.batch * p.outChannels * spatialOut);
  if (bias)
    for (let n = 0; n < p.batch; n++)
      for (let m = 0; m < p.outChannels; m++)
        out.fill(bias[m], (n * p.outChannels + m) * spatialOut, (n * p.outChannels + m + 1) * spatialOut);
  const pointwise = p.kernel.every((k) => k === 1) && p.strides.every((s) => s === 1) && [...p.padBegin, ...p.padEnd].every((v) => v === 0);
  const col = pointwise ? x : new Float32Array(depth * spatialOut);
  for (let n = 0; n < p.batch; n++)
    for (let g = 0; g < p.group; g++) {
      const inOffset = (n * p.channels + g * cg) * spatialIn;
      if (!pointwise) im2col(x, inOffset, cg, p, outDims, col);
      gemmAccumulate(
        mg,
        spatialOut,
        depth,
        rowMajor(weight, g * mg * depth, depth),
        rowMajor(col, pointwise ? inOffset : 0, spatialOut),
        out,
        (n * p.outChannels + g * mg) * spatialOut,
        spatialOut,
      );
    }
  return { data: out, outDims };
}

function im2col(x: Float32Array, inOffset: number, cg: number, p: ConvParams, outDims: number[], col: Float32Array): void {
  const [kd, kh, kw] = p.kernel;
  const [sd, sh, sw] = p.strides;
  const [dd, dh, dw] = p.dilations;
  const [pd, ph, pw] = p.padBegin;
  const [D, H, W] = p.inDims;
  const [outD, outH, outW] = outDims;
  let row = 0;
  for (let c = 0; c < cg; c++)
    for (let t = 0; t < kd; t++)
      for (let i = 0; i < kh; i++)
        for (let j = 0; j < kw; j++, row++) {
          const base = row * outD * outH * outW;
          const plane = inOffset + c * D * H * W;
          for (let od = 0; od < outD; od++) {
            const id = od * sd - pd + t * dd;
            for (let oh = 0; oh < outH; oh++) {
              const ih = oh * sh - ph + i * dh;
              const dst = base + (od * outH + oh) * outW;
              if (id < 0 || id >= D || ih < 0 || ih >= H) {
                col.fill(0, dst, dst + outW);
                continue;
              }
              const src = plane + (id * H + ih) * W;
              for (let ow = 0, iw = j * dw - pw; ow < outW; ow++, iw += sw) col[dst + ow] = iw >= 0 && iw < W ? x[src + iw] : 0;
            }
          }
        }
}

// ---- ConvTranspose ----

interface TransposeGeometry {
  padBegin: number[];
  padEnd: number[];
  /** Output spatial dims. */
  out: Dim[];
}

/** Output size and pads of ConvTranspose (output_shape / output_padding / auto_pad as the ONNX spec defines). */
function transposeGeometry(node: Node, input: Dim[], w: WindowAttrs): TransposeGeometry {
  const n = input.length;
  const outputPadding = attrInts(node, 'output_padding', new Array<number>(n).fill(0));
  const outputShape = node.attrs.output_shape ? attrInts(node, 'output_shape') : undefined;
  checkIntAttribute(node, 'output_padding', outputPadding, 0);
  if (outputShape) checkIntAttribute(node, 'output_shape', outputShape, 0);
  const padBegin: number[] = [];
  const padEnd: number[] = [];
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const effective = (w.kernel[i] - 1) * w.dilations[i] + 1;
    // full = stride*(in-1) + output_padding + effective kernel: the output before pads are cut
    const full = dimAdd(dimMul(w.strides[i], dimAdd(input[i], -1)), outputPadding[i] + effective);
    let target: Dim | undefined = outputShape ? outputShape[outputShape.length - n + i] : undefined;
    if (target === undefined && (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER')) target = dimMul(input[i], w.strides[i]);
    if (target !== undefined) {
      out.push(target);
      if (typeof full === 'number' && typeof target === 'number') {
        // The spec's formula (and onnxruntime's): SAME_UPPER puts the odd pad at the end, SAME_LOWER and NOTSET
        // (output_shape given) at the start. An output_shape past the full size pads nothing: the extra
        // positions get the bias alone.
        const total = Math.max(0, full - target);
        const half = Math.floor(total / 2);
        padBegin.push(w.autoPad === 'SAME_UPPER' ? half : total - half);
        padEnd.push(w.autoPad === 'SAME_UPPER' ? total - half : half);
      } else {
        padBegin.push(0);
        padEnd.push(0);
      }
    } else {
      const [b, e] = w.autoPad === 'VALID' ? [0, 0] : [w.pads[i], w.pads[i + n]];
      padBegin.push(b);
      padEnd.push(e);
      out.push(dimAdd(full, -b - e));
    }
  }
  return { padBegin, padEnd, out };
}

/**
 * A ConvTranspose's window for concrete input spatial dims, with output_shape and auto_pad resolved: explicit pads
 * and the output padding that gives its output size, out = (in − 1)·stride + (kernel − 1)·dilation + 1 − padBegin −
 * padEnd + outputPadding (an output_shape past the full size shows as a larger output padding). The NHWC form the
 * layout pass makes (ops/fused.ts conv_transpose2d) takes these.
 */
export interface ConvTransposeWindow {
  kernel: number[];
  strides: number[];
  dilations: number[];
  padBegin: number[];
  padEnd: number[];
  outputPadding: number[];
  out: number[];
}

export function convTransposeWindow(node: Node, input: number[], kernel: number[]): ConvTransposeWindow {
  const w = windowAttrs(node, input.length, kernel);
  const geometry = transposeGeometry(node, input, w);
  const out = geometry.out as number[];
  const outputPadding = input.map(
    (size, i) => out[i] - ((size - 1) * w.strides[i] + (kernel[i] - 1) * w.dilations[i] + 1 - geometry.padBegin[i] - geometry.padEnd[i]),
  );
  return { kernel, strides: w.strides, dilations: w.dilations, padBegin: geometry.padBegin, padEnd: geometry.padEnd, outputPadding, out };
}

const convTranspose: OpDefinition = {
  op: 'ConvTranspose',
  infer(ctx) {
    checkFloatPair(ctx);
    const x = ctx.shape(0);
    const wShape = ctx.shape(1);
    if (x.length < 3 || x.length > 5) ctx.fail(`the input must have 1-3 spatial dims, got shape ${shapeText(x)}`);
    if (wShape.length !== x.length) ctx.fail(`the weight ${shapeText(wShape)} and the input ${shapeText(x)} differ in rank`);
    const group = attrInt(ctx.node, 'group', 1);
    checkIntAttribute(ctx.node, 'group', group, 1);
    const spatial = x.length - 2;
    const kernel = attrInts(
      ctx.node,
      'kernel_shape',
      wShape.slice(2).map((d) => (typeof d === 'number' ? d : ctx.fail('the weight has symbolic kernel dims'))),
    );
    const w = windowAttrs(ctx.node, spatial, kernel);
    if (typeof x[1] === 'number' && typeof wShape[0] === 'number' && x[1] !== wShape[0])
      ctx.fail(`the input has ${x[1]} channels but the weight ${shapeText(wShape)} expects ${wShape[0]}`);
    const geometry = transposeGeometry(ctx.node, x.slice(2), w);
    const outChannels = dimMul(wShape[1], group);
    return [{ dtype: ctx.dtype(0), shape: [x[0], outChannels, ...geometry.out] }];
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const weight = requireInput(node, inputs, 1);
    const spatial = x.shape.length - 2;
    if (spatial < 1 || spatial > 3)
      throw nodeError(node, 'run.unsupported', `the reference ConvTranspose runs 1-D to 3-D, this one has ${spatial} spatial dims`);
    const kernel = attrInts(node, 'kernel_shape', weight.shape.slice(2));
    const w = windowAttrs(node, spatial, kernel);
    const group = attrInt(node, 'group', 1);
    const geometry = transposeGeometry(node, x.shape.slice(2), w);
    // 1-D and 2-D run as 3-D with leading spatial dims of 1.
    const lift = (v: number[], one: number) => [...new Array<number>(3 - spatial).fill(one), ...v];
    const [D, H, W] = lift(x.shape.slice(2), 1);
    const [outD, outH, outW] = lift(geometry.out as number[], 1);
    const [kd, kh, kw] = lift(kernel, 1);
    const [sd, sh, sw] = lift(w.strides, 1);
    const [dd, dh, dw] = lift(w.dilations, 1);
    const [pd, ph, pw] = lift(geometry.padBegin, 0);
    const batch = x.shape[0];
    const channels = x.shape[1];
    const cg = channels / group;
    const mg = weight.shape[1];
    const outChannels = mg * group;
    const inSize = D * H * W;
    const outSize = outD * outH * outW;
    const xd = toF32(x);
    const wd = toF32(weight);
    const out = new Float32Array(batch * outChannels * outSize);
    const bias = inputs[2] ? toF32(inputs[2]) : undefined;
    const depth = mg * kd * kh * kw;
    const col = new Float32Array(depth * inSize);
    for (let n = 0; n < batch; n++)
      for (let g = 0; g < group; g++) {
        // col[(m,t,i,j) × (d,h,w)] = W_gᵀ · x_g, where W_g is [C/g × (M/g·kd·kh·kw)]
        col.fill(0);
        gemmAccumulate(
          depth,
          inSize,
          cg,
          transposed(rowMajor(wd, g * cg * depth, depth)),
          rowMajor(xd, (n * channels + g * cg) * inSize, inSize),
          col,
          0,
          inSize,
        );
        for (let m = 0; m < mg; m++) {
          const plane = (n * outChannels + g * mg + m) * outSize;
          for (let t = 0; t < kd; t++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const row = (((m * kd + t) * kh + i) * kw + j) * inSize;
                for (let id = 0; id < D; id++) {
                  const od = id * sd - pd + t * dd;
                  if (od < 0 || od >= outD) continue;
                  for (let ih = 0; ih < H; ih++) {
                    const oh = ih * sh - ph + i * dh;
                    if (oh < 0 || oh >= outH) continue;
                    const src = row + (id * H + ih) * W;
                    const dst = plane + (od * outH + oh) * outW;
                    for (let iw = 0; iw < W; iw++) {
                      const ow = iw * sw - pw + j * dw;
                      if (ow >= 0 && ow < outW) out[dst + ow] += col[src + iw];
                    }
                  }
                }
              }
        }
      }
    if (bias)
      for (let n = 0; n < batch; n++)
        for (let m = 0; m < outChannels; m++) for (let k = 0, o = (n * outChannels + m) * outSize; k < outSize; k++) out[o + k] += bias[m];
    const shape = [batch, outChannels, ...lift(geometry.out as number[], 1).slice(3 - spatial)];
    return [{ dtype: x.dtype, shape, data: out }];
  },
};

function shapeText(shape: Dim[]): string {
  return `[${shape.map(String).join(', ')}]`;
}

// ---- Col2Im ----

/**
 * Col2Im (opset 18, torch's F.fold): input [N, C·∏block, L] holds, per block position (L of them, row-major over the
 * positions a sliding window of `block_shape` takes over the padded `image_shape`), the C·∏block values of that
 * window; the output [N, C, ...image_shape] sums every window's value into the image element it covers. Inputs 1 and
 * 2 (image_shape, block_shape) must be compile-time values; 1 to 3 spatial dims.
 */
export interface Col2ImGeometry {
  channels: Dim;
  image: number[];
  block: number[];
  /** Block positions per spatial dim (their product is L). */
  positions: number[];
  strides: number[];
  dilations: number[];
  /** Begins then ends (ONNX order). */
  pads: number[];
}

export function col2imGeometry(
  node: Node,
  inputShape: readonly Dim[],
  image: number[],
  block: number[],
  fail: (m: string) => never,
): Col2ImGeometry {
  const spatial = image.length;
  if (spatial < 1 || spatial > 3) fail(`image_shape has ${spatial} dims (1 to 3 are supported)`);
  if (block.length !== spatial) fail(`block_shape has ${block.length} dims, image_shape ${spatial}`);
  if (inputShape.length !== 3) fail(`the input must be [N, C·∏block, L], got rank ${inputShape.length}`);
  const ones = new Array<number>(spatial).fill(1);
  const strides = attrInts(node, 'strides', ones);
  const dilations = attrInts(node, 'dilations', ones);
  const pads = attrInts(node, 'pads', new Array<number>(2 * spatial).fill(0));
  if (strides.length !== spatial || dilations.length !== spatial || pads.length !== 2 * spatial)
    fail(`strides, dilations and pads must have ${spatial}, ${spatial} and ${2 * spatial} entries`);
  if ([...image, ...block, ...strides, ...dilations].some((v) => !isInt32(v) || v < 1) || pads.some((p) => !isInt32(p) || p < 0))
    fail('image_shape, block_shape, strides and dilations must be positive 32-bit integers, pads non-negative ones');
  const positions = image.map((size, d) => {
    const span = size + pads[d] + pads[d + spatial] - dilations[d] * (block[d] - 1) - 1;
    if (span < 0) fail(`the block (${block[d]}, dilation ${dilations[d]}) does not fit the padded image dim ${d} (${size})`);
    return Math.floor(span / strides[d]) + 1;
  });
  const perBlock = block.reduce((a, b) => a * b, 1);
  const columns = inputShape[1];
  let channels: Dim;
  if (typeof columns === 'number') {
    if (columns % perBlock !== 0) fail(`input dim 1 (${columns}) is not a multiple of the block size ${perBlock}`);
    channels = columns / perBlock;
  } else fail(`input dim 1 (${String(columns)}) must be a compile-time number`);
  const count = positions.reduce((a, b) => a * b, 1);
  const given = inputShape[2];
  if (typeof given === 'number' && given !== count) fail(`input dim 2 is ${given}, but the blocks take ${count} positions`);
  return { channels, image, block, positions, strides, dilations, pads };
}

/** A whole number the kernels can take as a 32-bit int (Col2ImArgs). */
const isInt32 = (v: number) => Number.isInteger(v) && Math.abs(v) <= 0x7fffffff;

function constantInts(ctx: InferContext, i: number, what: string): number[] {
  const v = ctx.value(i);
  if (!v) ctx.fail(`${what} (input ${i}) must be a compile-time value`);
  return Array.from(numeric(v), Number);
}

const col2im: OpDefinition = {
  op: 'Col2Im',
  infer(ctx) {
    const x = ctx.shape(0);
    const g = col2imGeometry(ctx.node, x, constantInts(ctx, 1, 'image_shape'), constantInts(ctx, 2, 'block_shape'), (m) => ctx.fail(m));
    return [{ dtype: ctx.dtype(0), shape: [x[0], g.channels, ...g.image] }];
  },
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const image = Array.from(numeric(requireInput(node, inputs, 1)), Number);
    const block = Array.from(numeric(requireInput(node, inputs, 2)), Number);
    const g = col2imGeometry(node, x.shape, image, block, (m) => {
      throw nodeError(node, 'shape.invalid', m);
    });
    const spatial = image.length;
    const lift = (v: number[], one: number) => [...new Array<number>(3 - spatial).fill(one), ...v];
    const [D, H, W] = lift(image, 1);
    const [kd, kh, kw] = lift(block, 1);
    const [bd, bh, bw] = lift(g.positions, 1);
    const [sd, sh, sw] = lift(g.strides, 1);
    const [dd, dh, dw] = lift(g.dilations, 1);
    const [pd, ph, pw] = lift(g.pads.slice(0, spatial), 0);
    const batch = x.shape[0];
    const channels = g.channels as number;
    const xd = toF32(x);
    const out = new Float32Array(batch * channels * D * H * W);
    const positions = bd * bh * bw;
    for (let n = 0; n < batch; n++)
      for (let c = 0; c < channels; c++)
        for (let t = 0; t < kd; t++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const row = ((n * channels + c) * kd * kh * kw + (t * kh + i) * kw + j) * positions;
              const plane = (n * channels + c) * D * H * W;
              for (let ad = 0; ad < bd; ad++) {
                const od = ad * sd - pd + t * dd;
                if (od < 0 || od >= D) continue;
                for (let ah = 0; ah < bh; ah++) {
                  const oh = ah * sh - ph + i * dh;
                  if (oh < 0 || oh >= H) continue;
                  for (let aw = 0; aw < bw; aw++) {
                    const ow = aw * sw - pw + j * dw;
                    if (ow >= 0 && ow < W) out[plane + (od * H + oh) * W + ow] += xd[row + (ad * bh + ah) * bw + aw];
                  }
                }
              }
            }
    return [{ dtype: x.dtype, shape: [batch, channels, ...image], data: out }];
  },
};

registerOps([conv, convTranspose, col2im]);
