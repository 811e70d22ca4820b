/**
 * Op family: detection — ops whose output sizes depend on the data: NonZero, TopK (with a run-time k),
 * NonMaxSuppression, RoiAlign, and our PasteMasks (torchvision's mask-paste Loop, passes/paste-masks.ts).
 *
 * A data-dependent dim is a fresh symbol bounded by what the inputs allow (NonZero's count by the input's
 * element count, NMS's selected boxes by batches × classes × boxes per class), so buffers can be sized from the
 * bound.
 */
import { Node, attrFloat, attrInt, attrString } from '../ir/graph';
import { Dim, dimProduct, isConcrete } from '../ir/symbolic';
import { TensorValue, makeTensor, numel, numeric, storageFor } from '../ir/tensor';
import { FUSED_DOMAIN } from './fused';
import { OpDefinition, checkIntAttribute, nodeError, registerOps } from './registry';
import { dimMin, forEachIndex, normalizeAxis } from './shape';

const nonZeroOp: OpDefinition = {
  op: 'NonZero',
  infer(ctx) {
    const shape = ctx.shape(0);
    const count = ctx.dataDependentDim('nonzero', 0, ctx.symbols.maxOf(dimProduct(shape)));
    return [{ dtype: 'int64', shape: [shape.length, count] }];
  },
  evaluate(_node, [x]) {
    const v = numeric(x!);
    const rank = x!.shape.length;
    const hits: number[][] = [];
    forEachIndex(x!.shape, (flat, index) => {
      if (v[flat] !== 0) hits.push([...index]);
    });
    const data = new Array<number>(rank * hits.length);
    hits.forEach((index, j) => index.forEach((i, d) => (data[d * hits.length + j] = i)));
    return [makeTensor('int64', [rank, hits.length], data)];
  },
};

// ---- TopK ----

function topKAxis(node: Node, rank: number): number {
  return normalizeAxis(node, attrInt(node, 'axis', -1), rank);
}

const topKOp: OpDefinition = {
  op: 'TopK',
  infer(ctx) {
    const shape = ctx.shape(0);
    const axis = topKAxis(ctx.node, shape.length);
    const dim = shape[axis];
    let k: Dim;
    if (ctx.opset < 10) k = attrInt(ctx.node, 'k');
    else {
      const given = ctx.dims(1);
      if (given && given.length === 1) k = given[0];
      else k = ctx.dataDependentDim('topk', 0, ctx.symbols.maxOf(dim));
    }
    if (isConcrete(k) && k < 0) ctx.fail(`k = ${k} is negative`);
    if (isConcrete(k) && isConcrete(dim) && k > dim) ctx.fail(`k = ${k} is larger than the axis size ${dim}`);
    if (!isConcrete(k)) k = dimMin(ctx.symbols, k, dim);
    const out = [...shape];
    out[axis] = k;
    return [
      { dtype: ctx.dtype(0), shape: out },
      { dtype: 'int64', shape: [...out] },
    ];
  },
  evaluate(node, [x, kInput]) {
    const k = kInput ? numeric(kInput)[0] : attrInt(node, 'k');
    if (!(k >= 0)) throw nodeError(node, 'run.invalid', `k = ${k} is negative`);
    const shape = x!.shape;
    const axis = topKAxis(node, shape.length);
    const largest = attrInt(node, 'largest', 1) === 1;
    const n = shape[axis];
    if (k > n) throw nodeError(node, 'run.invalid', `k = ${k} is larger than the axis size ${n}`);
    const outer = numel(shape.slice(0, axis));
    const inner = numel(shape.slice(axis + 1));
    const outShape = [...shape];
    outShape[axis] = k;
    const src = numeric(x!);
    const values = storageFor(x!.dtype, numel(outShape));
    const indices = new Float64Array(numel(outShape));
    const order = new Array<number>(n);
    for (let o = 0; o < outer; o++)
      for (let q = 0; q < inner; q++) {
        const at = (i: number) => src[(o * n + i) * inner + q];
        for (let i = 0; i < n; i++) order[i] = i;
        // NaN is the largest value (PyTorch's order; onnxruntime's comparison leaves NaN's place undefined), -0 equals
        // +0, and ties keep the lower index first (the order ONNX specifies for sorted output).
        const ascending = (a: number, b: number) => {
          const x = at(a);
          const y = at(b);
          if (Number.isNaN(x) || Number.isNaN(y)) return Number(Number.isNaN(x)) - Number(Number.isNaN(y));
          return x < y ? -1 : x > y ? 1 : 0;
        };
        order.sort((a, b) => (largest ? ascending(b, a) : ascending(a, b)) || a - b);
        for (let j = 0; j < k; j++) {
          const d = (o * k + j) * inner + q;
          values[d] = at(order[j]);
          indices[d] = order[j];
        }
      }
    return [
      { dtype: x!.dtype, shape: outShape, data: values },
      { dtype: 'int64', shape: [...outShape], data: indices },
    ];
  },
};

// ---- NonMaxSuppression ----

const nmsOp: OpDefinition = {
  op: 'NonMaxSuppression',
  infer(ctx) {
    const boxes = ctx.shape(0); // [batches, boxes, 4]
    const scores = ctx.shape(1); // [batches, classes, boxes]
    if (boxes.length !== 3) ctx.fail(`boxes must have rank 3 ([batches, boxes, 4]), not ${boxes.length}`);
    if (scores.length !== 3) ctx.fail(`scores must have rank 3 ([batches, classes, boxes]), not ${scores.length}`);
    const perClass = ctx.dims(2)?.[0];
    const boxesBound = ctx.symbols.maxOf(boxes[1]);
    const perClassBound = perClass === undefined ? boxesBound : Math.min(ctx.symbols.maxOf(perClass), boxesBound);
    const bound = ctx.symbols.maxOf(boxes[0]) * ctx.symbols.maxOf(scores[1]) * (ctx.inputCount > 2 ? perClassBound : 0);
    return [{ dtype: 'int64', shape: [ctx.dataDependentDim('nms', 0, bound), 3] }];
  },
  evaluate(node, [boxesIn, scoresIn, maxIn, iouIn, scoreIn]) {
    const boxes = numeric(boxesIn!);
    const scores = numeric(scoresIn!);
    const [batches, numBoxes] = boxesIn!.shape;
    const classes = scoresIn!.shape[1];
    const maxPerClass = maxIn ? numeric(maxIn)[0] : 0;
    const iouThreshold = iouIn ? numeric(iouIn)[0] : 0;
    // without a score threshold every box is a candidate (NaN scores never are)
    const scoreThreshold = scoreIn ? numeric(scoreIn)[0] : undefined;
    const centered = attrInt(node, 'center_point_box', 0) === 1;
    // fp32 arithmetic, each operation rounded (onnxruntime computes in float; the CUDA kernel does the same)
    const f = Math.fround;
    const corners = (b: number, i: number): [number, number, number, number] => {
      const p = (b * numBoxes + i) * 4;
      if (centered) {
        const [xc, yc, w, h] = [boxes[p], boxes[p + 1], boxes[p + 2], boxes[p + 3]];
        return [f(yc - h / 2), f(xc - w / 2), f(yc + h / 2), f(xc + w / 2)];
      }
      const [y1, x1, y2, x2] = [boxes[p], boxes[p + 1], boxes[p + 2], boxes[p + 3]];
      return [Math.min(y1, y2), Math.min(x1, x2), Math.max(y1, y2), Math.max(x1, x2)];
    };
    const iou = (b: number, i: number, j: number) => {
      const [ay1, ax1, ay2, ax2] = corners(b, i);
      const [by1, bx1, by2, bx2] = corners(b, j);
      const h = Math.max(0, f(Math.min(ay2, by2) - Math.max(ay1, by1)));
      const w = Math.max(0, f(Math.min(ax2, bx2) - Math.max(ax1, bx1)));
      const inter = f(h * w);
      const union = f(f(f(f(ay2 - ay1) * f(ax2 - ax1)) + f(f(by2 - by1) * f(bx2 - bx1))) - inter);
      return union > 0 ? f(inter / union) : 0;
    };
    const selected: number[] = [];
    for (let b = 0; b < batches; b++)
      for (let c = 0; c < classes; c++) {
        const score = (i: number) => scores[(b * classes + c) * numBoxes + i];
        const candidates = Array.from({ length: numBoxes }, (_, i) => i)
          .filter((i) => (scoreThreshold === undefined ? !Number.isNaN(score(i)) : score(i) > scoreThreshold))
          .sort((i, j) => score(j) - score(i) || i - j);
        const kept: number[] = [];
        for (const i of candidates) {
          if (kept.length >= maxPerClass) break;
          if (kept.every((j) => iou(b, i, j) <= iouThreshold)) kept.push(i);
        }
        for (const i of kept) selected.push(b, c, i);
      }
    return [makeTensor('int64', [selected.length / 3, 3], selected)];
  },
};

// ---- RoiAlign ----

/**
 * RoiAlign's attributes with their defaults. `coordinate_transformation_mode` came with opset 16 (default
 * half_pixel); opset 10 behaves as output_half_pixel, which inference writes on such nodes (evaluate has no opset).
 * `channels_last` is ours, not ONNX's: set by the layout pass (ops/layout-rules.ts) when X is read NHWC
 * ([N, H, W, C]); the output stays [R, C, output_height, output_width].
 */
export function roiAlignParams(node: Node) {
  const mode = attrString(node, 'mode', 'avg');
  const transform = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  return {
    outputHeight: attrInt(node, 'output_height', 1),
    outputWidth: attrInt(node, 'output_width', 1),
    samplingRatio: attrInt(node, 'sampling_ratio', 0),
    spatialScale: attrFloat(node, 'spatial_scale', 1),
    max: mode === 'max',
    mode,
    halfPixel: transform === 'half_pixel',
    transform,
    channelsLast: attrInt(node, 'channels_last', 0) === 1,
  };
}

const roiAlignOp: OpDefinition = {
  op: 'RoiAlign',
  infer(ctx) {
    const node = ctx.node;
    if (ctx.opset < 16 && !node.attrs.coordinate_transformation_mode)
      node.attrs.coordinate_transformation_mode = { type: 'string', value: 'output_half_pixel' };
    const p = roiAlignParams(node);
    checkIntAttribute(node, 'output_height', p.outputHeight, 1);
    checkIntAttribute(node, 'output_width', p.outputWidth, 1);
    checkIntAttribute(node, 'sampling_ratio', p.samplingRatio, 0);
    if (!Number.isFinite(p.spatialScale)) ctx.fail(`spatial_scale ${p.spatialScale} is not finite`);
    if (p.mode !== 'avg' && p.mode !== 'max') ctx.fail(`mode '${p.mode}' is not avg or max`);
    if (p.transform !== 'half_pixel' && p.transform !== 'output_half_pixel')
      ctx.fail(`coordinate_transformation_mode '${p.transform}' is not half_pixel or output_half_pixel`);
    const x = ctx.shape(0);
    const rois = ctx.shape(1);
    const batch = ctx.shape(2);
    if (x.length !== 4) ctx.fail(`X must be 4-D [N, C, H, W], it has rank ${x.length}`);
    if (rois.length !== 2) ctx.fail(`rois must be 2-D [num_rois, 4], it has rank ${rois.length}`);
    if (isConcrete(rois[1]) && rois[1] !== 4) ctx.fail(`rois must be [num_rois, 4], not [${rois.join(', ')}]`);
    if (batch.length !== 1) ctx.fail(`batch_indices must be 1-D [num_rois], it has rank ${batch.length}`);
    if (isConcrete(batch[0]) && isConcrete(rois[0]) && batch[0] !== rois[0])
      ctx.fail(`batch_indices has ${batch[0]} entries for ${rois[0]} rois`);
    const dtype = ctx.dtype(2);
    if (dtype !== 'int64') ctx.fail(`batch_indices must be int64, not ${dtype}`);
    const channels = p.channelsLast ? x[3] : x[1];
    return [{ dtype: ctx.dtype(0), shape: [rois[0], channels, p.outputHeight, p.outputWidth] }];
  },
  evaluate(node, [xIn, roisIn, batchIn]) {
    return [roiAlign(node, xIn!, roisIn!, batchIn!)];
  },
};

/**
 * RoiAlign as onnxruntime computes it (and the ONNX reference implementation): per output bin, a grid of
 * bilinear samples, averaged; max mode takes, per sample, the largest of the four weighted corner values
 * (w·v, not the interpolated value: onnxruntime's long-standing formula, kept for every opset), then the largest
 * over the samples. A sample more than one pixel outside the map counts as 0; with no samples the bin is 0.
 */
function roiAlign(node: Node, xIn: TensorValue, roisIn: TensorValue, batchIn: TensorValue): TensorValue {
  const p = roiAlignParams(node);
  const [batchCount, d1, d2, d3] = xIn.shape;
  const [channels, height, width] = p.channelsLast ? [d3, d1, d2] : [d1, d2, d3];
  const x = numeric(xIn);
  const rois = numeric(roisIn);
  const batch = numeric(batchIn);
  const numRois = roisIn.shape[0];
  const { outputHeight: oh, outputWidth: ow, samplingRatio: ratio, max } = p;
  const offset = p.halfPixel ? 0.5 : 0;
  // element (n, c, y, x) of X in either layout
  const at = p.channelsLast
    ? (n: number, c: number, y: number, xx: number) => x[((n * height + y) * width + xx) * channels + c]
    : (n: number, c: number, y: number, xx: number) => x[((n * channels + c) * height + y) * width + xx];
  const out = storageFor(xIn.dtype, numRois * channels * oh * ow);
  const corners = { y0: 0, x0: 0, y1: 0, x1: 0, w: [0, 0, 0, 0] };
  /** The four corners of a sample and their bilinear weights; false for a sample outside the map. */
  const place = (y: number, xx: number): boolean => {
    if (y < -1 || y > height || xx < -1 || xx > width) return false;
    y = Math.max(y, 0);
    xx = Math.max(xx, 0);
    corners.y0 = Math.min(Math.floor(y), height - 1);
    corners.x0 = Math.min(Math.floor(xx), width - 1);
    corners.y1 = Math.min(corners.y0 + 1, height - 1);
    corners.x1 = Math.min(corners.x0 + 1, width - 1);
    const ly = corners.y0 >= height - 1 ? 0 : y - corners.y0;
    const lx = corners.x0 >= width - 1 ? 0 : xx - corners.x0;
    corners.w = [(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx];
    return true;
  };
  for (let r = 0; r < numRois; r++) {
    const n = batch[r];
    if (!(n >= 0 && n < batchCount))
      throw nodeError(node, 'run.index', `batch index ${n} of roi ${r} is out of range for ${batchCount} images`);
    const [x1, y1, x2, y2] = [0, 1, 2, 3].map((i) => rois[r * 4 + i] * p.spatialScale - offset);
    const roiW = p.halfPixel ? x2 - x1 : Math.max(x2 - x1, 1);
    const roiH = p.halfPixel ? y2 - y1 : Math.max(y2 - y1, 1);
    const binH = roiH / oh;
    const binW = roiW / ow;
    const gridH = ratio > 0 ? ratio : Math.ceil(roiH / oh);
    const gridW = ratio > 0 ? ratio : Math.ceil(roiW / ow);
    const count = Math.max(gridH * gridW, 1);
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let acc = 0;
          let first = true;
          for (let iy = 0; iy < gridH; iy++)
            for (let ix = 0; ix < gridW; ix++) {
              const inside = place(y1 + i * binH + ((iy + 0.5) * binH) / gridH, x1 + j * binW + ((ix + 0.5) * binW) / gridW);
              const { y0, x0, y1: yh, x1: xh, w } = corners;
              const v = inside ? [at(n, c, y0, x0), at(n, c, y0, xh), at(n, c, yh, x0), at(n, c, yh, xh)] : [0, 0, 0, 0];
              const ws = inside ? w : [0, 0, 0, 0];
              if (!max) acc += ws[0] * v[0] + ws[1] * v[1] + ws[2] * v[2] + ws[3] * v[3];
              else {
                const e = Math.max(ws[0] * v[0], ws[1] * v[1], ws[2] * v[2], ws[3] * v[3]);
                acc = first ? e : Math.max(acc, e);
                first = false;
              }
            }
          out[((r * channels + c) * oh + i) * ow + j] = max ? acc : acc / count;
        }
  }
  return { dtype: xIn.dtype, shape: [numRois, channels, oh, ow], data: out };
}

// ---- PasteMasks (ours) ----

/**
 * `ait.PasteMasks(masks [D, 1, Mh, Mw], boxes [D, 4] int) -> [D, height, width]`: torchvision's paste_masks_in_image
 * in its ONNX form (the `_onnx_paste_mask_in_image` Loop, which passes/paste-masks.ts rewrites into this op). Box d is
 * (x0, y0, x1, y1) in integer pixels with inclusive ends; mask d is resized (ONNX Resize linear, half_pixel) to
 * h = max(y1 − y0 + 1, 1) rows and w = max(x1 − x0 + 1, 1) columns and placed with its top-left pixel at (y0, x0) on a
 * zero height × width canvas: out[d, y, x] = resized[y − y0, x − x0] for max(y0, 0) ≤ y < min(y1 + 1, height) and
 * max(x0, 0) ≤ x < min(x1 + 1, width), else 0 (what the Loop's slice, zero Concats and crop compute for any box,
 * also one outside the image or inverted).
 */
const pasteMasksOp: OpDefinition = {
  op: 'PasteMasks',
  domain: FUSED_DOMAIN,
  infer(ctx) {
    const { height, width } = pasteMasksParams(ctx.node);
    const masks = ctx.shape(0);
    const boxes = ctx.shape(1);
    if (masks.length !== 4) ctx.fail(`masks must be 4-D [detections, 1, mask height, mask width], they have rank ${masks.length}`);
    if (isConcrete(masks[1]) && masks[1] !== 1) ctx.fail(`masks must have one channel, not ${masks[1]}`);
    if (boxes.length !== 2 || (isConcrete(boxes[1]) && boxes[1] !== 4)) ctx.fail(`boxes must be [detections, 4], not rank ${boxes.length}`);
    if (isConcrete(masks[0]) && isConcrete(boxes[0]) && boxes[0] < masks[0]) ctx.fail(`${boxes[0]} boxes for ${masks[0]} masks`);
    const boxType = ctx.dtype(1);
    if (boxType !== 'int64' && boxType !== 'int32') ctx.fail(`boxes must be int64 or int32, not ${boxType}`);
    return [{ dtype: ctx.dtype(0), shape: [masks[0], height, width] }];
  },
  evaluate(node, [masksIn, boxesIn]) {
    return [pasteMasks(node, masksIn!, boxesIn!)];
  },
};

export function pasteMasksParams(node: Node): { height: number; width: number } {
  const height = attrInt(node, 'height');
  const width = attrInt(node, 'width');
  checkIntAttribute(node, 'height', height, 1);
  checkIntAttribute(node, 'width', width, 1);
  return { height, width };
}

/**
 * The source rows (or columns) of output position i of a linear half_pixel resize from inLen to outLen, and their
 * weights: resize.ts axisTaps' arithmetic (coordinate clamped to [0, inLen − 1]), in doubles.
 */
function linearTap(i: number, outLen: number, inLen: number): [lo: number, hi: number, wLo: number, wHi: number] {
  const c = (i + 0.5) / (outLen / inLen) - 0.5;
  const cc = Math.min(Math.max(c, 0), inLen - 1);
  const lo = Math.floor(cc);
  return [lo, Math.min(lo + 1, inLen - 1), 1 - (cc - lo), cc - lo];
}

/**
 * The reference: per box, only the pixels inside the canvas are computed (a box far larger than the image allocates
 * nothing), with the Resize reference's operation order — rows first, each value rounded to the storage type, then
 * columns (resize.ts resizeLinearHalfPixel2d) — so that it equals the interpreted Loop exactly.
 */
function pasteMasks(node: Node, masksIn: TensorValue, boxesIn: TensorValue): TensorValue {
  const { height: H, width: W } = pasteMasksParams(node);
  const [count, , mh, mw] = masksIn.shape;
  if (boxesIn.shape[0] < count) throw nodeError(node, 'run.invalid', `${boxesIn.shape[0]} boxes for ${count} masks`);
  const masks = numeric(masksIn);
  const boxes = numeric(boxesIn);
  const out = storageFor(masksIn.dtype, count * H * W);
  const rounded = storageFor(masksIn.dtype, 1); // a row-resized value, rounded as the Resize reference stores it
  for (let d = 0; d < count; d++) {
    const [x0, y0, x1, y1] = [0, 1, 2, 3].map((k) => boxes[d * 4 + k]);
    const h = Math.max(y1 - y0 + 1, 1);
    const w = Math.max(x1 - x0 + 1, 1);
    const [ya, yb] = [Math.max(y0, 0), Math.min(y1 + 1, H)];
    const [xa, xb] = [Math.max(x0, 0), Math.min(x1 + 1, W)];
    const plane = d * mh * mw;
    const rowTaps = Array.from({ length: Math.max(yb - ya, 0) }, (_, k) => linearTap(ya + k - y0, h, mh));
    for (let x = xa; x < xb; x++) {
      const [cl, ch, wl, wh] = linearTap(x - x0, w, mw);
      rowTaps.forEach(([rl, rh, vl, vh], k) => {
        // rows first (skipped when h equals the mask height, as the Resize reference skips an unscaled axis)
        const at = (col: number) => {
          if (h === mh) return masks[plane + (ya + k - y0) * mw + col];
          let v = 0;
          v += masks[plane + rl * mw + col] * vl;
          v += masks[plane + rh * mw + col] * vh;
          rounded[0] = v;
          return rounded[0];
        };
        let v: number;
        if (w === mw) v = at(x - x0);
        else {
          v = 0;
          v += at(cl) * wl;
          v += at(ch) * wh;
        }
        out[(d * H + ya + k) * W + x] = v;
      });
    }
  }
  return { dtype: masksIn.dtype, shape: [count, H, W], data: out };
}

registerOps([nonZeroOp, topKOp, nmsOp, roiAlignOp, pasteMasksOp]);
