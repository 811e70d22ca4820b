/**
 * Op family: pool — MaxPool (ceil_mode, dilations, pads, auto_pad, optional Indices), AveragePool
 * (count_include_pad, ceil_mode), GlobalAveragePool, GlobalMaxPool. 1–3 spatial dims.
 */
import { Node, attrInt, attrInts } from '../ir/graph';
import { Dim } from '../ir/symbolic';
import { TensorValue, numel, numeric, storageFor } from '../ir/tensor';
import { WindowAttrs, resolvePads, windowAttrs, windowOutputDim, windowOutputSize } from './conv';
import { InferContext, OpDefinition, OutputType, nodeError, registerOps } from './registry';

function requireInput(node: Node, inputs: (TensorValue | undefined)[], i: number): TensorValue {
  const v = inputs[i];
  if (!v) throw nodeError(node, 'run.missing-input', `input ${i} is missing`);
  return v;
}

function poolWindow(node: Node, spatial: number): WindowAttrs {
  const kernel = attrInts(node, 'kernel_shape');
  return windowAttrs(node, spatial, kernel);
}

function spatialRank(ctx: InferContext): number {
  const x = ctx.shape(0);
  if (x.length < 3 || x.length > 5) ctx.fail(`the input must be [N, C, 1-3 spatial dims], got rank ${x.length}`);
  return x.length - 2;
}

function poolInfer(ctx: InferContext, withIndices: boolean): OutputType[] {
  const x = ctx.shape(0);
  const spatial = spatialRank(ctx);
  const w = poolWindow(ctx.node, spatial);
  const ceilMode = attrInt(ctx.node, 'ceil_mode', 0) !== 0;
  const out: Dim[] = [x[0], x[1]];
  for (let i = 0; i < spatial; i++) {
    const d = windowOutputDim(ctx.symbols, x[2 + i], w, i, ceilMode);
    if (typeof d === 'number' && d <= 0)
      ctx.fail(`the window (${w.kernel[i]}) is larger than spatial dim ${i} (${String(x[2 + i])} with pads)`);
    out.push(d);
  }
  const outputs: OutputType[] = [{ dtype: ctx.dtype(0), shape: out }];
  if (withIndices) outputs.push({ dtype: 'int64', shape: out });
  return outputs;
}

/** Window geometry lifted to three spatial dims (missing leading dims have size 1). */
interface Geometry {
  planes: number;
  inDims: number[];
  outDims: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padBegin: number[];
  padEnd: number[];
}

function geometry(node: Node, x: TensorValue): Geometry {
  const spatial = x.shape.length - 2;
  if (spatial < 1 || spatial > 3)
    throw nodeError(node, 'run.unsupported', `pooling needs 1-3 spatial dims, the input is [${x.shape.join(', ')}]`);
  const w = poolWindow(node, spatial);
  const ceilMode = attrInt(node, 'ceil_mode', 0) !== 0;
  const inSpatial = x.shape.slice(2);
  const pads = resolvePads(inSpatial, w);
  const outSpatial = inSpatial.map((d, i) => windowOutputSize(d, w, i, ceilMode));
  const lift = (v: number[], fill: number) => [...new Array<number>(3 - spatial).fill(fill), ...v];
  return {
    planes: x.shape[0] * x.shape[1],
    inDims: lift(inSpatial, 1),
    outDims: lift(outSpatial, 1),
    kernel: lift(w.kernel, 1),
    strides: lift(w.strides, 1),
    dilations: lift(w.dilations, 1),
    padBegin: lift(pads.begin, 0),
    padEnd: lift(pads.end, 0),
  };
}

/** Visits every output position with the valid input offsets of its window (and the padded window size). */
function forEachWindow(g: Geometry, visit: (outIndex: number, plane: number, offsets: number[], paddedCount: number) => void): void {
  const [D, H, W] = g.inDims;
  const [oD, oH, oW] = g.outDims;
  const offsets: number[] = [];
  let o = 0;
  for (let p = 0; p < g.planes; p++) {
    const plane = p * D * H * W;
    for (let od = 0; od < oD; od++)
      for (let oh = 0; oh < oH; oh++)
        for (let ow = 0; ow < oW; ow++, o++) {
          offsets.length = 0;
          const starts = [od * g.strides[0] - g.padBegin[0], oh * g.strides[1] - g.padBegin[1], ow * g.strides[2] - g.padBegin[2]];
          // count_include_pad counts window positions inside the padded input (not beyond the end pad)
          let paddedCount = 1;
          for (let a = 0; a < 3; a++) {
            const end = Math.min(starts[a] + (g.kernel[a] - 1) * g.dilations[a] + 1, g.inDims[a] + g.padEnd[a]);
            paddedCount *= Math.floor((end - starts[a] - 1) / g.dilations[a]) + 1;
          }
          for (let kd = 0; kd < g.kernel[0]; kd++) {
            const id = starts[0] + kd * g.dilations[0];
            if (id < 0 || id >= D) continue;
            for (let kh = 0; kh < g.kernel[1]; kh++) {
              const ih = starts[1] + kh * g.dilations[1];
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < g.kernel[2]; kw++) {
                const iw = starts[2] + kw * g.dilations[2];
                if (iw >= 0 && iw < W) offsets.push((id * H + ih) * W + iw);
              }
            }
          }
          visit(o, plane, offsets, paddedCount);
        }
  }
}

const maxPool: OpDefinition = {
  op: 'MaxPool',
  infer: (ctx) => poolInfer(ctx, ctx.node.outputs.length > 1 && ctx.node.outputs[1] !== ''),
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    if (attrInt(node, 'storage_order', 0) !== 0)
      throw nodeError(node, 'run.unsupported', 'storage_order=1 (column-major indices) is not supported');
    const g = geometry(node, x);
    const xd = numeric(x);
    const shape = [x.shape[0], x.shape[1], ...g.outDims.slice(3 - (x.shape.length - 2))];
    const out = storageFor(x.dtype, numel(shape));
    const indices = new Float64Array(out.length);
    forEachWindow(g, (o, plane, offsets) => {
      let best = Number.NEGATIVE_INFINITY;
      let at = -1;
      for (const off of offsets) {
        const v = xd[plane + off];
        if (v > best || at < 0) {
          best = v;
          at = plane + off;
        }
      }
      out[o] = best;
      indices[o] = at;
    });
    return [
      { dtype: x.dtype, shape, data: out },
      { dtype: 'int64', shape: [...shape], data: indices },
    ];
  },
};

const averagePool: OpDefinition = {
  op: 'AveragePool',
  infer: (ctx) => poolInfer(ctx, false),
  evaluate(node, inputs) {
    const x = requireInput(node, inputs, 0);
    const includePad = attrInt(node, 'count_include_pad', 0) !== 0;
    const g = geometry(node, x);
    const xd = numeric(x);
    const shape = [x.shape[0], x.shape[1], ...g.outDims.slice(3 - (x.shape.length - 2))];
    const out = storageFor(x.dtype, numel(shape));
    forEachWindow(g, (o, plane, offsets, paddedCount) => {
      let s = 0;
      for (const off of offsets) s += xd[plane + off];
      out[o] = s / (includePad ? paddedCount : offsets.length);
    });
    return [{ dtype: x.dtype, shape, data: out }];
  },
};

function globalPool(op: 'GlobalAveragePool' | 'GlobalMaxPool'): OpDefinition {
  return {
    op,
    infer(ctx) {
      const x = ctx.shape(0);
      if (x.length < 3) ctx.fail(`the input must be [N, C, spatial...], got rank ${x.length}`);
      return [{ dtype: ctx.dtype(0), shape: [x[0], x[1], ...x.slice(2).map(() => 1)] }];
    },
    evaluate(node, inputs) {
      const x = requireInput(node, inputs, 0);
      const xd = numeric(x);
      const planes = x.shape[0] * x.shape[1];
      const size = numel(x.shape.slice(2));
      const out = storageFor(x.dtype, planes);
      for (let p = 0; p < planes; p++) {
        let acc = op === 'GlobalMaxPool' ? Number.NEGATIVE_INFINITY : 0;
        for (let k = p * size, end = k + size; k < end; k++) acc = op === 'GlobalMaxPool' ? Math.max(acc, xd[k]) : acc + xd[k];
        out[p] = op === 'GlobalMaxPool' ? acc : acc / size;
      }
      return [{ dtype: x.dtype, shape: [x.shape[0], x.shape[1], ...x.shape.slice(2).map(() => 1)], data: out }];
    },
  };
}

registerOps([maxPool, averagePool, globalPool('GlobalAveragePool'), globalPool('GlobalMaxPool')]);
