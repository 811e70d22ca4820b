/**
 * Op family: resize — Resize (opset 10+) and Upsample (opset 7–9).
 *
 * Output dims are `sizes` when given, else floor(input × scale) per axis: symbolic input dims stay symbolic
 * (B × 2 for an integer scale, floor(B / 2) for a scale of 1/2, an opaque floor(B × 1.5) otherwise).
 * Evaluation does nearest, linear and cubic modes on any rank as separable 1-D passes, one per resized axis
 * (linear and cubic interpolation weights are a product over axes, so this equals the N-D formula). Cubic is Keys'
 * kernel (cubic_coeff_a), taps past the edge read the edge value, or with exclude_outside get weight 0 and the
 * rest are renormalized: ONNX's definition, and what the CUDA kernel computes.
 */
import { Node, attrFloat, attrFloats, attrInt, attrInts, attrString } from '../ir/graph';
import { Dim, dimMul, dimToString, isConcrete } from '../ir/symbolic';
import { TensorValue, numel, numeric, storageFor, stridesOf } from '../ir/tensor';
import { InferContext, OpDefinition, nodeError, registerOps } from './registry';
import { normalizeAxis } from './shape';

/** floor(dim × scale), kept symbolic where the scale allows. */
function scaledDim(ctx: InferContext, dim: Dim, scale: number): Dim {
  if (isConcrete(dim)) return Math.floor(dim * scale);
  if (Number.isInteger(scale)) return dimMul(dim, scale);
  const inverse = 1 / scale;
  if (Number.isInteger(inverse)) return ctx.symbols.floorDiv(dim, inverse);
  const { min, max } = ctx.symbols.bounds(dim);
  return ctx.symbols.opaque(
    `floor(${dimToString(dim)}*${scale})`,
    Math.floor(min * scale),
    Math.floor(max * scale),
    `Resize node '${ctx.node.name}'`,
    { kind: 'floorScale', args: [dim], scale },
  );
}

/** A scales/sizes input counts as given when it has elements (exporters pass empty tensors for "absent"). */
function givenInput(ctx: InferContext, i: number): boolean {
  if (i >= ctx.inputCount || !ctx.node.inputs[i]) return false;
  const shape = ctx.shape(i);
  return !(shape.length === 1 && shape[0] === 0);
}

/** The axes Resize applies to (opset 18 `axes`; all axes before). */
function resizeAxes(node: Node, rank: number): number[] {
  const axes = attrInts(
    node,
    'axes',
    Array.from({ length: rank }, (_, i) => i),
  );
  return axes.map((a) => normalizeAxis(node, a, rank));
}

function inferResize(ctx: InferContext, scalesInput: number, sizesInput: number): Dim[] {
  const shape = ctx.shape(0);
  const rank = shape.length;
  const mode = attrString(ctx.node, 'mode', 'nearest');
  if (!['nearest', 'linear', 'cubic', 'bilinear', 'trilinear'].includes(mode))
    ctx.fail(`mode '${mode}' is not one of nearest, linear, cubic`);
  const axes = resizeAxes(ctx.node, rank);
  const out = [...shape];
  if (sizesInput >= 0 && givenInput(ctx, sizesInput)) {
    const sizes = ctx.dims(sizesInput);
    if (sizes && sizes.length !== axes.length) ctx.fail(`sizes has ${sizes.length} entries for ${axes.length} axes`);
    const policy = attrString(ctx.node, 'keep_aspect_ratio_policy', 'stretch');
    if (policy !== 'stretch' && sizes) {
      // not_larger / not_smaller: one scale for every axis, chosen from the sizes.
      if (!sizes.every(isConcrete) || !axes.every((a) => isConcrete(shape[a])))
        ctx.fail(`keep_aspect_ratio_policy '${policy}' needs concrete sizes and dims`);
      const ratios = axes.map((a, k) => (sizes[k] as number) / (shape[a] as number));
      const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((a) => (out[a] = Math.round((shape[a] as number) * scale)));
      return out;
    }
    axes.forEach((a, k) => (out[a] = sizes ? sizes[k] : ctx.dataDependentDim('resize', 0, 2 ** 31)));
    return out;
  }
  const scales =
    ctx.node.attrs.scales && scalesInput < 0
      ? attrFloats(ctx.node, 'scales')
      : givenInput(ctx, scalesInput)
        ? ctx.dims(scalesInput)
        : undefined;
  if (!scales) {
    if (!givenInput(ctx, scalesInput)) ctx.fail('neither scales nor sizes is given');
    for (const a of axes) out[a] = ctx.dataDependentDim('resize', 0, 2 ** 31);
    return out;
  }
  if (scales.length !== axes.length) ctx.fail(`scales has ${scales.length} entries for ${axes.length} axes`);
  axes.forEach((a, k) => {
    const s = scales[k];
    if (!isConcrete(s) || s <= 0) ctx.fail(`scale ${dimToString(s)} must be a positive number`);
    out[a] = scaledDim(ctx, shape[a], s);
  });
  return out;
}

// ---- evaluation ----

interface ResizeParams {
  mode: 'nearest' | 'linear' | 'cubic';
  transform: string;
  nearestMode: string;
  /** Cubic: Keys' parameter a (cubic_coeff_a) and exclude_outside. */
  cubicA: number;
  excludeOutside: boolean;
}

/** Maps an output coordinate to an input coordinate (ONNX coordinate_transformation_mode). */
function sourceCoordinate(p: ResizeParams, x: number, scale: number, outLen: number, inLen: number): number {
  switch (p.transform) {
    case 'half_pixel':
      return (x + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel':
      return outLen > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case 'align_corners':
      return outLen === 1 ? 0 : (x * (inLen - 1)) / (outLen - 1);
    case 'asymmetric':
      return x / scale;
    case 'tf_half_pixel_for_nn':
      return (x + 0.5) / scale;
    default:
      throw new Error(`coordinate_transformation_mode '${p.transform}' is not supported`);
  }
}

function roundNearest(mode: string, x: number): number {
  switch (mode) {
    case 'round_prefer_floor':
      return x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x);
    case 'round_prefer_ceil':
      return Math.round(x);
    case 'floor':
      return Math.floor(x);
    case 'ceil':
      return Math.ceil(x);
    default:
      throw new Error(`nearest_mode '${mode}' is not supported`);
  }
}

/** The four cubic convolution weights (Keys, parameter a) of taps floor(x)-1 .. floor(x)+2 for fraction t. */
function cubicWeights(t: number, a: number, first: number, size: number, excludeOutside: boolean): number[] {
  const w = [t + 1, t, 1 - t, 2 - t].map((x, j) => {
    if (excludeOutside && (first + j < 0 || first + j >= size)) return 0;
    return x <= 1 ? ((a + 2) * x - (a + 3)) * x * x + 1 : ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  });
  const sum = w[0] + w[1] + w[2] + w[3];
  return excludeOutside && sum !== 0 ? w.map((v) => v / sum) : w;
}

/** Per output position along an axis: the source positions it reads and their weights. */
function axisTaps(
  p: ResizeParams,
  outLen: number,
  inLen: number,
  scale: number,
): { index: Int32Array; weight: Float64Array; taps: number } {
  const taps = p.mode === 'nearest' ? 1 : p.mode === 'linear' ? 2 : 4;
  const index = new Int32Array(outLen * taps);
  const weight = new Float64Array(outLen * taps);
  const clamp = (i: number) => Math.min(Math.max(i, 0), inLen - 1);
  for (let i = 0; i < outLen; i++) {
    const c = sourceCoordinate(p, i, scale, outLen, inLen);
    const k = i * taps;
    if (p.mode === 'nearest') {
      index[k] = clamp(roundNearest(p.nearestMode, c));
      weight[k] = 1;
    } else if (p.mode === 'linear') {
      const cc = Math.min(Math.max(c, 0), inLen - 1);
      const lo = Math.floor(cc);
      index[k] = lo;
      index[k + 1] = Math.min(lo + 1, inLen - 1);
      weight[k] = 1 - (cc - lo);
      weight[k + 1] = cc - lo;
    } else {
      const first = Math.floor(c) - 1;
      const w = cubicWeights(c - Math.floor(c), p.cubicA, first, inLen, p.excludeOutside);
      for (let j = 0; j < 4; j++) {
        index[k + j] = clamp(first + j);
        weight[k + j] = w[j];
      }
    }
  }
  return { index, weight, taps };
}

/** Resizes one axis of x to outLen. */
function resizeAxis(x: TensorValue, axis: number, outLen: number, scale: number, p: ResizeParams): TensorValue {
  const inLen = x.shape[axis];
  const outShape = [...x.shape];
  outShape[axis] = outLen;
  const src = numeric(x);
  const out = storageFor(x.dtype, numel(outShape));
  const outer = numel(x.shape.slice(0, axis));
  const inner = stridesOf(x.shape)[axis];
  const { index, weight, taps } = axisTaps(p, outLen, inLen, scale);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < outLen; i++) {
      const d = (o * outLen + i) * inner;
      for (let q = 0; q < inner; q++) {
        let v = 0;
        for (let j = 0; j < taps; j++) v += src[(o * inLen + index[i * taps + j]) * inner + q] * weight[i * taps + j];
        out[d + q] = v;
      }
    }
  return { dtype: x.dtype, shape: outShape, data: out };
}

/**
 * ONNX Resize linear with half_pixel of a [h0, w0] plane to [h, w] (sizes given, so scale = out / in per axis), as
 * evaluateResize computes it for a [1, 1, h0, w0] tensor: rows first, rounded to the plane's dtype, then columns.
 * PasteMasks' reference (ops/detection.ts) calls it so that it equals the mask-paste Loop it replaces bit for bit.
 */
export function resizeLinearHalfPixel2d(plane: TensorValue, h: number, w: number): TensorValue {
  const p: ResizeParams = {
    mode: 'linear',
    transform: 'half_pixel',
    nearestMode: 'round_prefer_floor',
    cubicA: -0.75,
    excludeOutside: false,
  };
  let y = plane;
  if (h !== plane.shape[0]) y = resizeAxis(y, 0, h, h / plane.shape[0], p);
  if (w !== plane.shape[1]) y = resizeAxis(y, 1, w, w / plane.shape[1], p);
  return y;
}

function evaluateResize(
  node: Node,
  x: TensorValue,
  scales: number[] | undefined,
  sizes: number[] | undefined,
  p: ResizeParams,
): TensorValue {
  if (attrInt(node, 'antialias', 0) === 1)
    throw nodeError(node, 'run.unsupported', 'antialias is not supported by the reference evaluator');
  const axes = resizeAxes(node, x.shape.length);
  let y = x;
  axes.forEach((a, k) => {
    const inLen = x.shape[a];
    const outLen = sizes ? sizes[k] : Math.floor(inLen * scales![k]);
    const scale = sizes ? outLen / inLen : scales![k];
    if (outLen !== inLen || scale !== 1) y = resizeAxis(y, a, outLen, scale, p);
  });
  return y;
}

function resizeParams(node: Node, transformDefault: string): ResizeParams {
  const mode = attrString(node, 'mode', 'nearest');
  const linear = mode === 'linear' || mode === 'bilinear' || mode === 'trilinear';
  if (mode !== 'nearest' && mode !== 'cubic' && !linear)
    throw nodeError(node, 'run.unsupported', `mode '${mode}' is not supported by the reference evaluator (nearest, linear and cubic are)`);
  return {
    mode: linear ? 'linear' : mode === 'cubic' ? 'cubic' : 'nearest',
    cubicA: attrFloat(node, 'cubic_coeff_a', -0.75),
    excludeOutside: attrInt(node, 'exclude_outside', 0) === 1,
    transform: attrString(node, 'coordinate_transformation_mode', transformDefault),
    nearestMode: attrString(node, 'nearest_mode', 'round_prefer_floor'),
  };
}

const nonEmpty = (v: TensorValue | undefined) => (v && numel(v.shape) > 0 ? Array.from(numeric(v)) : undefined);

const resizeOp: OpDefinition = {
  op: 'Resize',
  infer(ctx) {
    // Opset 10: (X, scales); 11+: (X, roi, scales, sizes).
    const shape = ctx.opset < 11 ? inferResize(ctx, 1, -1) : inferResize(ctx, 2, 3);
    return [{ dtype: ctx.dtype(0), shape }];
  },
  evaluate(node, inputs) {
    const [x, scales, sizes] =
      inputs.length <= 2 && !node.inputs[2] ? [inputs[0], inputs[1], undefined] : [inputs[0], inputs[2], inputs[3]];
    const p = resizeParams(node, inputs.length <= 2 ? 'asymmetric' : 'half_pixel');
    if (p.mode === 'nearest' && inputs.length <= 2) p.nearestMode = attrString(node, 'nearest_mode', 'floor');
    return [evaluateResize(node, x!, nonEmpty(scales), nonEmpty(sizes), p)];
  },
};

const upsampleOp: OpDefinition = {
  op: 'Upsample',
  infer: (ctx) => [{ dtype: ctx.dtype(0), shape: inferResize(ctx, ctx.node.attrs.scales ? -1 : 1, -1) }],
  evaluate(node, [x, scales]) {
    const p = resizeParams(node, 'asymmetric');
    if (p.mode === 'nearest') p.nearestMode = 'floor';
    return [evaluateResize(node, x!, scales ? Array.from(numeric(scales)) : attrFloats(node, 'scales'), undefined, p)];
  },
};

registerOps([resizeOp, upsampleOp]);
