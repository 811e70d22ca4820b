/**
 * RoiAlign, ScatterElements and ConstantOfShape on the CUDA backend. No GPU here, so the kernels' index arithmetic
 * (roi_align.cuh: the NCHW per-element kernel and the NHWC tile kernel with its shared-memory write-back; scatter.cuh:
 * the column and the element kernels) is replayed in TypeScript on what the lowering hands them and compared with the
 * interpreter (the op references, checked against onnxruntime in test/ops/roialign-scatter.test.ts) on random data.
 * The layout pass moves a RoiAlign onto the NHWC conv output it reads; chained scatters write in place; a model of
 * torchvision's MultiScaleRoIAlign form (conv → RoiAlign → ScatterElements into a ConstantOfShape of the roi count)
 * compiles for sm90 and sm80 with no unsupported node, and nvcc compiles its model.cu (skipped without nvcc).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { roiAlignPlan } from '../../../compiler/backends/cuda/codegen/roi-align-lowering';
import { constantOfShapePlan, scatterElementsPlan } from '../../../compiler/backends/cuda/codegen/scatter-lowering';
import { supportOf } from '../../../compiler/backends/support';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { Graph, Node } from '../../../compiler/ir/graph';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { planMemory } from '../../../compiler/passes/memory-plan';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { AttrSpec, ModelSpec, buildModel, input, nodeModel } from '../../helpers/onnx-builder';
import { nvccCompileGenerated, requireNvcc, GPU_TARGETS } from '../../helpers/nvcc';

const f = Math.fround;

/** The imported graph with shapes inferred, its one node, and the interpreter's output on `inputs`. */
function reference(spec: ModelSpec, inputs: TensorValue[]) {
  const model = importOnnxBytes(buildModel(spec));
  inferShapes(model.graph);
  const graph: Graph = model.graph;
  const node: Node = graph.nodes[graph.nodes.length - 1];
  const [expected] = runGraph(graph, inputs);
  return { graph, node, expected, ctx: CodegenContext.forChecks(graph) };
}

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tolerance = 1e-4) => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tolerance * (1 + Math.abs(expected[i])),
      `${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`,
    );
};

// ---- roi_align.cuh replayed (float arithmetic through Math.fround) ----

interface RoiArgs {
  input: ArrayLike<number>;
  rois: ArrayLike<number>;
  batch: ArrayLike<number>;
  n: number;
  c: number;
  h: number;
  w: number;
  numRois: number;
  outH: number;
  outW: number;
  samplingRatio: number;
  spatialScale: number;
  halfPixel: boolean;
  max: boolean;
  channelsLast: boolean;
}

/** roi_geometry */
function roiGeometry(a: RoiArgs, r: number) {
  const offset = a.halfPixel ? 0.5 : 0;
  const box = [0, 1, 2, 3].map((k) => f(f(a.rois[r * 4 + k] * a.spatialScale) - offset));
  let roiW = f(box[2] - box[0]);
  let roiH = f(box[3] - box[1]);
  if (!a.halfPixel) {
    roiW = Math.max(roiW, 1);
    roiH = Math.max(roiH, 1);
  }
  const gridH = a.samplingRatio > 0 ? a.samplingRatio : Math.ceil(f(roiH / a.outH));
  const gridW = a.samplingRatio > 0 ? a.samplingRatio : Math.ceil(f(roiW / a.outW));
  const image = a.batch[r];
  return {
    y0: box[1],
    x0: box[0],
    binH: f(roiH / a.outH),
    binW: f(roiW / a.outW),
    gridH,
    gridW,
    count: Math.max(gridH * gridW, 1),
    image: image >= 0 && image < a.n ? image : -1,
  };
}

/** roi_bilinear: pixel offsets y·w + x and weights, or undefined outside. */
function roiBilinear(y: number, x: number, h: number, w: number): { pixel: number[]; weight: number[] } | undefined {
  if (y < -1 || y > h || x < -1 || x > w) return undefined;
  y = Math.max(y, 0);
  x = Math.max(x, 0);
  let yLow = Math.trunc(y);
  let xLow = Math.trunc(x);
  let yHigh: number;
  let xHigh: number;
  if (yLow >= h - 1) {
    yLow = yHigh = h - 1;
    y = yLow;
  } else yHigh = yLow + 1;
  if (xLow >= w - 1) {
    xLow = xHigh = w - 1;
    x = xLow;
  } else xHigh = xLow + 1;
  const ly = f(y - yLow);
  const lx = f(x - xLow);
  const hy = f(1 - ly);
  const hx = f(1 - lx);
  return {
    pixel: [yLow * w + xLow, yLow * w + xHigh, yHigh * w + xLow, yHigh * w + xHigh],
    weight: [f(hy * hx), f(hy * lx), f(ly * hx), f(ly * lx)],
  };
}

/** One bin of one roi over `lanes` consecutive channels from c0, as both kernels compute it (`value(image, c, pixel)`). */
function roiBin(a: RoiArgs, r: number, bin: number, c0: number, lanes: number, value: (image: number, c: number, pixel: number) => number) {
  const g = roiGeometry(a, r);
  const ph = Math.floor(bin / a.outW);
  const pw = bin % a.outW;
  const acc = new Array<number>(lanes).fill(0);
  let first = true;
  if (g.image >= 0)
    for (let iy = 0; iy < g.gridH; iy++) {
      const y = f(f(g.y0 + f(ph * g.binH)) + f(f((iy + 0.5) * g.binH) / g.gridH));
      for (let ix = 0; ix < g.gridW; ix++) {
        const x = f(f(g.x0 + f(pw * g.binW)) + f(f((ix + 0.5) * g.binW) / g.gridW));
        const b = roiBilinear(y, x, a.h, a.w);
        for (let e = 0; e < lanes; e++) {
          const wv = b ? b.weight.map((wk, k) => f(wk * value(g.image, c0 + e, b.pixel[k]))) : [0, 0, 0, 0];
          if (a.max) acc[e] = first ? Math.max(...wv) : Math.max(acc[e], ...wv);
          else acc[e] = f(acc[e] + f(f(wv[0] + wv[1]) + f(wv[2] + wv[3])));
        }
        first = false;
      }
    }
  return acc.map((v) => (a.max ? v : f(v / g.count)));
}

/** roi_align_nchw_kernel: one thread per output element i = ((r·C + c)·bins + bin). */
function replayNchw(a: RoiArgs): Float64Array {
  const bins = a.outH * a.outW;
  const out = new Float64Array(a.numRois * a.c * bins);
  for (let i = 0; i < out.length; i++) {
    const bin = i % bins;
    const rest = Math.floor(i / bins);
    const c = rest % a.c;
    const r = Math.floor(rest / a.c);
    out[i] = roiBin(a, r, bin, c, 1, (image, ch, pixel) => a.input[(image * a.c + ch) * a.h * a.w + pixel])[0];
  }
  return out;
}

const TILE_BINS = 32; // kRoiTileBins
const TILE_VECTORS = 8; // kRoiTileVectors

/**
 * roi_align_nhwc_kernel: blocks (bin tile fastest, channel tile, roi), threads (v = t % 8, b = t / 8) computing V
 * channels of one bin into the shared tile, then the write-back of the tile's channel rows. Counts the writes of
 * every output element (each must be written exactly once).
 */
function replayNhwc(a: RoiArgs, vector: number): { out: Float64Array; writes: Uint8Array } {
  const bins = a.outH * a.outW;
  const out = new Float64Array(a.numRois * a.c * bins).fill(NaN);
  const writes = new Uint8Array(out.length);
  const tileC = TILE_VECTORS * vector;
  const binTiles = Math.ceil(bins / TILE_BINS);
  const channelTiles = Math.ceil(a.c / tileC);
  for (let block = 0; block < a.numRois * channelTiles * binTiles; block++) {
    const binTile = block % binTiles;
    const channelTile = Math.floor(block / binTiles) % channelTiles;
    const r = Math.floor(block / binTiles / channelTiles);
    const tile = Array.from({ length: tileC }, () => new Array<number>(TILE_BINS + 1).fill(NaN));
    for (let t = 0; t < TILE_BINS * TILE_VECTORS; t++) {
      const v = t % TILE_VECTORS;
      const b = Math.floor(t / TILE_VECTORS);
      const bin = binTile * TILE_BINS + b;
      const c0 = channelTile * tileC + v * vector;
      if (bin >= bins || c0 >= a.c) continue;
      const values = roiBin(a, r, bin, c0, vector, (image, ch, pixel) => a.input[(image * a.h * a.w + pixel) * a.c + ch]);
      values.forEach((value, e) => (tile[v * vector + e][b] = value));
    }
    for (let i = 0; i < tileC * TILE_BINS; i++) {
      const cl = Math.floor(i / TILE_BINS);
      const bl = i % TILE_BINS;
      const c = channelTile * tileC + cl;
      const outBin = binTile * TILE_BINS + bl;
      if (c < a.c && outBin < bins) {
        out[(r * a.c + c) * bins + outBin] = tile[cl][bl];
        writes[(r * a.c + c) * bins + outBin]++;
      }
    }
  }
  return { out, writes };
}

// ---- scatter.cuh replayed ----

interface ScatterArgs {
  output: Float64Array;
  indices: ArrayLike<number>;
  updates: ArrayLike<number>;
  rank: number;
  axis: number;
  dataShape: number[];
  updateShape: number[];
  reduction: string;
}

function combine(reduction: string, old: number, v: number): number {
  switch (reduction) {
    case 'add':
      return old + v;
    case 'mul':
      return old * v;
    case 'max':
      return Math.max(old, v);
    case 'min':
      return Math.min(old, v);
    default:
      return v;
  }
}

function scatterIndex(index: number, size: number): number | undefined {
  if (index < 0) index += size;
  return index >= 0 && index < size ? index : undefined;
}

/** scatter_elements_columns_kernel: each column walks the axis in order. */
function replayColumns(a: ScatterArgs): void {
  const total = a.updateShape.reduce((p, d) => p * d, 1);
  const axisLength = a.updateShape[a.axis];
  const columns = total / axisLength;
  for (let column = 0; column < columns; column++) {
    let rest = column;
    let updateOffset = 0;
    let outputOffset = 0;
    let updateStride = 1;
    let outputStride = 1;
    let updateAxisStride = 1;
    let outputAxisStride = 1;
    for (let d = a.rank - 1; d >= 0; d--) {
      if (d === a.axis) {
        updateAxisStride = updateStride;
        outputAxisStride = outputStride;
      } else {
        const q = Math.floor(rest / a.updateShape[d]);
        const coordinate = rest - q * a.updateShape[d];
        rest = q;
        updateOffset += coordinate * updateStride;
        outputOffset += coordinate * outputStride;
      }
      updateStride *= a.updateShape[d];
      outputStride *= a.dataShape[d];
    }
    for (let k = 0; k < axisLength; k++) {
      const u = updateOffset + k * updateAxisStride;
      const index = scatterIndex(a.indices[u], a.dataShape[a.axis]);
      if (index === undefined) continue;
      const target = outputOffset + index * outputAxisStride;
      a.output[target] = combine(a.reduction, a.output[target], a.updates[u]);
    }
  }
}

/** scatter_elements_kernel: one update element each, in the order `order` (the GPU's is unspecified). */
function replayElements(a: ScatterArgs, order: number[]): void {
  for (const i of order) {
    let rest = i;
    let offset = 0;
    let stride = 1;
    let inside = true;
    for (let d = a.rank - 1; d >= 0; d--) {
      const q = Math.floor(rest / a.updateShape[d]);
      let coordinate = rest - q * a.updateShape[d];
      rest = q;
      if (d === a.axis) {
        const index = scatterIndex(a.indices[i], a.dataShape[d]);
        inside = index !== undefined;
        coordinate = index ?? 0;
      }
      offset += coordinate * stride;
      stride *= a.dataShape[d];
    }
    if (inside) a.output[offset] = combine(a.reduction, a.output[offset], a.updates[i]);
  }
}

/** A torchvision MultiScaleRoIAlign level: conv → RoiAlign → ScatterElements into zeros [R, C, oh, ow] (R the run's). */
function poolerModel(levels = 2): ModelSpec {
  const random = seededRandom(3);
  const C = 16;
  const nodes: ModelSpec['nodes'] = [
    { op: 'Conv', name: 'conv', inputs: ['x', 'w'], outputs: ['f'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
    { op: 'Shape', name: 'shape', inputs: ['rois'], outputs: ['rs'] },
    { op: 'Gather', name: 'count', inputs: ['rs', 'zero'], outputs: ['n'], attrs: { axis: 0 } },
    { op: 'Concat', name: 'cat', inputs: ['n', 'tail'], outputs: ['full'], attrs: { axis: 0 } },
    {
      op: 'ConstantOfShape',
      name: 'zeros',
      inputs: ['full'],
      outputs: ['y0'],
      attrs: { value: { dtype: 'float32', dims: [1], values: [0] } },
    },
    { op: 'Reshape', name: 'slot4', inputs: ['slot', 'col'], outputs: ['s4'] },
  ];
  for (let level = 0; level < levels; level++)
    nodes.push(
      {
        op: 'RoiAlign',
        name: `roi_align_${level}`,
        inputs: ['f', 'rois', 'image'],
        outputs: [`pooled${level}`],
        attrs: {
          output_height: 5,
          output_width: 4,
          sampling_ratio: 2,
          spatial_scale: 0.5 / (level + 1),
          coordinate_transformation_mode: 'output_half_pixel',
        },
      },
      { op: 'Shape', name: `pshape${level}`, inputs: [`pooled${level}`], outputs: [`ps${level}`] },
      { op: 'Expand', name: `expand${level}`, inputs: ['s4', `ps${level}`], outputs: [`idx${level}`] },
      {
        op: 'ScatterElements',
        name: `scatter_${level}`,
        inputs: [`y${level}`, `idx${level}`, `pooled${level}`],
        outputs: [`y${level + 1}`],
        attrs: { axis: 0 },
      },
    );
  nodes.push({ op: 'Relu', name: 'relu', inputs: [`y${levels}`], outputs: ['out'] });
  return {
    opset: 17,
    inputs: [
      { name: 'x', dtype: 'float32', dims: [2, 3, 20, 24] },
      { name: 'rois', dtype: 'float32', dims: ['R', 4] },
      { name: 'image', dtype: 'int64', dims: ['R'] },
      { name: 'slot', dtype: 'int64', dims: ['R'] },
    ],
    initializers: [
      { name: 'w', dtype: 'float32', dims: [C, 3, 3, 3], values: Array.from({ length: C * 27 }, () => random() - 0.5) },
      { name: 'zero', dtype: 'int64', dims: [1], values: [0] },
      { name: 'tail', dtype: 'int64', dims: [3], values: [C, 5, 4] },
      { name: 'col', dtype: 'int64', dims: [4], values: [-1, 1, 1, 1] },
    ],
    nodes,
    outputs: [{ name: 'out', dtype: 'float32', dims: ['R', C, 5, 4] }],
  };
}

describe('cuda backend: RoiAlign, ScatterElements, ConstantOfShape', function () {
  this.timeout(600_000);

  describe('RoiAlign: the kernels replayed on what the lowering passes compute the interpreter RoiAlign', () => {
    const cases: {
      name: string;
      x: number[];
      numRois: number;
      attrs: Record<string, AttrSpec>;
      channelsLast?: boolean;
      vector?: number;
    }[] = [
      {
        name: 'NCHW avg, output_half_pixel, 2×2 samples',
        x: [2, 5, 13, 17],
        numRois: 9,
        attrs: {
          output_height: 7,
          output_width: 7,
          sampling_ratio: 2,
          spatial_scale: 0.25,
          coordinate_transformation_mode: 'output_half_pixel',
        },
      },
      {
        name: 'NCHW max, half_pixel, adaptive samples',
        x: [1, 3, 9, 11],
        numRois: 7,
        attrs: { mode: 'max', output_height: 3, output_width: 4, spatial_scale: 0.5 },
      },
      {
        name: 'NHWC avg, 16-byte vectors (C = 24), 7×7 bins (two bin tiles)',
        x: [2, 24, 10, 12],
        numRois: 6,
        attrs: { output_height: 7, output_width: 7, sampling_ratio: 2, spatial_scale: 0.5 },
        channelsLast: true,
        vector: 8,
      },
      {
        name: 'NHWC max, per channel (C = 13), adaptive, 14×14 bins',
        x: [1, 13, 8, 9],
        numRois: 5,
        attrs: {
          mode: 'max',
          output_height: 14,
          output_width: 14,
          spatial_scale: 0.25,
          coordinate_transformation_mode: 'output_half_pixel',
        },
        channelsLast: true,
        vector: 1,
      },
      {
        name: 'NHWC avg, 80 channels (two channel tiles of 64)',
        x: [1, 80, 6, 7],
        numRois: 4,
        attrs: { output_height: 2, output_width: 3, sampling_ratio: 1, spatial_scale: 0.5 },
        channelsLast: true,
        vector: 8,
      },
    ];
    for (const k of cases)
      it(k.name, () => {
        const [n, c, h, w] = k.x;
        const random = seededRandom(5);
        const scale = (k.attrs.spatial_scale as number) ?? 1;
        const boxes: number[] = [];
        for (let r = 0; r < k.numRois; r++) {
          const x1 = (random() * 1.2 - 0.1) * (w / scale);
          const y1 = (random() * 1.2 - 0.1) * (h / scale);
          const box = [x1, y1, x1 + random() * (w / scale) * 0.6, y1 + random() * (h / scale) * 0.6];
          if (r === 2) box.reverse(); // inverted
          boxes.push(...box);
        }
        const xValues = Array.from({ length: n * c * h * w }, () => random() * 2 - 1);
        const batch = Array.from({ length: k.numRois }, (_, r) => r % n);
        const spec = nodeModel('RoiAlign', [input('float32', k.x), input('float32', [k.numRois, 4]), input('int64', [k.numRois])], {
          attrs: k.attrs,
          opset: 16,
        });
        const { node, expected, ctx, graph } = reference(spec, [
          makeTensor('float32', k.x, xValues),
          makeTensor('float32', [k.numRois, 4], boxes),
          makeTensor('int64', [k.numRois], batch),
        ]);
        let read = xValues;
        if (k.channelsLast) {
          // the form the layout pass writes: X [N, H, W, C], channels_last
          node.attrs.channels_last = { type: 'int', value: 1 };
          graph.tensor(node.inputs[0]).shape = [n, h, w, c];
          read = new Array<number>(xValues.length);
          for (let b = 0; b < n; b++)
            for (let ch = 0; ch < c; ch++)
              for (let y = 0; y < h; y++)
                for (let xx = 0; xx < w; xx++) read[((b * h + y) * w + xx) * c + ch] = xValues[((b * c + ch) * h + y) * w + xx];
        }
        const { params, dims } = roiAlignPlan(ctx, node);
        assert.equal(params.channelsLast, !!k.channelsLast);
        const args: RoiArgs = {
          input: read,
          rois: boxes.map(f),
          batch,
          n: Number(dims.n),
          c: Number(dims.c),
          h: Number(dims.h),
          w: Number(dims.w),
          numRois: Number(dims.rois),
          outH: params.outputHeight,
          outW: params.outputWidth,
          samplingRatio: params.samplingRatio,
          spatialScale: f(params.spatialScale),
          halfPixel: params.halfPixel,
          max: params.max,
          channelsLast: params.channelsLast,
        };
        assert.deepEqual([args.n, args.c, args.h, args.w, args.numRois], [n, c, h, w, k.numRois]);
        if (!k.channelsLast) close(replayNchw(args), numeric(expected), k.name);
        else {
          const { out, writes } = replayNhwc(args, k.vector!);
          assert.ok(
            writes.every((count) => count === 1),
            'every output element written exactly once',
          );
          close(out, numeric(expected), k.name);
        }
      });
  });

  describe('ScatterElements: the column and element kernels replayed compute the interpreter ScatterElements', () => {
    const cases: { name: string; data: number[]; updates: number[]; axis: number; reduction?: string; unique?: boolean }[] = [
      { name: "Mask R-CNN's rows into their slots along axis 0", data: [6, 4, 3, 2], updates: [4, 4, 3, 2], axis: 0, unique: true },
      { name: 'duplicates along the last axis, reduction none', data: [3, 4, 5], updates: [3, 4, 9], axis: -1 },
      { name: 'add along a middle axis (updates narrower than data)', data: [3, 6, 5], updates: [2, 8, 4], axis: 1, reduction: 'add' },
      { name: 'mul along axis 0', data: [4, 5], updates: [7, 3], axis: 0, reduction: 'mul' },
      { name: 'max along axis 0 of rank 6', data: [3, 2, 1, 2, 2, 3], updates: [5, 2, 1, 1, 2, 3], axis: 0, reduction: 'max' },
      { name: 'min along axis 2', data: [2, 3, 4], updates: [2, 3, 6], axis: 2, reduction: 'min' },
    ];
    for (const k of cases)
      it(k.name, () => {
        const random = seededRandom(13);
        const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
        const rank = k.data.length;
        const axis = k.axis < 0 ? k.axis + rank : k.axis;
        const data = Array.from({ length: count(k.data) }, () => Math.round(random() * 8 - 4) / 2);
        const updates = Array.from({ length: count(k.updates) }, () => Math.round(random() * 8 - 4) / 2);
        const slots = Array.from({ length: k.data[axis] }, (_, i) => i).sort(() => random() - 0.5);
        const inner = count(k.updates.slice(axis + 1));
        const indices = Array.from({ length: count(k.updates) }, (_, i) => {
          if (k.unique) return slots[Math.floor(i / inner) % k.updates[axis]] - (i % 2 ? k.data[axis] : 0);
          return Math.floor(random() * 2 * k.data[axis]) - k.data[axis];
        });
        const attrs: Record<string, AttrSpec> = { axis: k.axis };
        if (k.reduction) attrs.reduction = k.reduction;
        const spec = nodeModel('ScatterElements', [input('float32', k.data), input('int64', k.updates), input('float32', k.updates)], {
          attrs,
          opset: 18,
        });
        const { node, expected, ctx } = reference(spec, [
          makeTensor('float32', k.data, data),
          makeTensor('int64', k.updates, indices),
          makeTensor('float32', k.updates, updates),
        ]);
        const plan = scatterElementsPlan(ctx, node);
        const args = (): ScatterArgs => ({
          output: Float64Array.from(data), // the launcher's copy of data
          indices,
          updates,
          rank: plan.dataDims.length,
          axis: plan.axis,
          dataShape: plan.dataDims.map(Number),
          updateShape: plan.updateDims.map(Number),
          reduction: plan.reduction,
        });
        const columns = args();
        replayColumns(columns);
        close(columns.output, numeric(expected), `${k.name} (column kernel)`, 0);
        // the element kernel where its order does not matter (unique indices, max, min; add/mul of these halves
        // are exact in any order), in reverse order to show it
        if (k.unique || k.reduction) {
          const elements = args();
          replayElements(
            elements,
            updates.map((_, i) => updates.length - 1 - i),
          );
          close(elements.output, numeric(expected), `${k.name} (element kernel)`, 0);
        }
      });

    it('refuses what the kernel does not take, with the reason', () => {
      const reason = (spec: ModelSpec) => {
        const model = importOnnxBytes(buildModel(spec));
        inferShapes(model.graph);
        const node = model.graph.nodes[model.graph.nodes.length - 1];
        return supportOf(model.graph, node, 'cuda:sm90').reason;
      };
      const bools = nodeModel('ScatterElements', [input('bool', [4, 3]), input('int64', [2, 3]), input('bool', [2, 3])], {
        attrs: { reduction: 'add' },
        opset: 18,
      });
      assert.match(reason(bools) ?? '', /reduction 'add' of bool data/);
      const shape7 = [2, 1, 1, 1, 1, 1, 2];
      const rank7 = nodeModel('ScatterElements', [input('float32', shape7), input('int64', shape7), input('float32', shape7)], {
        opset: 18,
      });
      assert.match(reason(rank7) ?? '', /rank 7 \(the kernel takes 1 to 6\)/);
      const plain = nodeModel('ScatterElements', [input('bool', [4, 3]), input('int32', [2, 3]), input('bool', [2, 3])], { opset: 18 });
      assert.equal(reason(plain), undefined);
    });
  });

  it('ConstantOfShape: the fill value in the output type, the element count from the run', () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3] }],
      initializers: [{ name: 'tail', dtype: 'int64', dims: [1], values: [5] }],
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['s'], attrs: { end: 1 } },
        { op: 'Concat', inputs: ['s', 'tail'], outputs: ['full'], attrs: { axis: 0 } },
        {
          op: 'ConstantOfShape',
          name: 'fill',
          inputs: ['full'],
          outputs: ['y'],
          attrs: { value: { dtype: 'int64', dims: [1], values: [-7] } },
        },
      ],
      outputs: ['y'],
    };
    const model = importOnnxBytes(buildModel(spec));
    inferShapes(model.graph);
    const node = model.graph.nodes.find((n) => n.op === 'ConstantOfShape')!;
    const ctx = CodegenContext.forChecks(model.graph);
    const plan = constantOfShapePlan(ctx, node);
    assert.deepEqual(plan, { type: 'int64', value: 'int64_t{-7}', count: '5 * batch' });
    const [y] = runGraph(model.graph, [makeTensor('float32', [2, 3], [0, 0, 0, 0, 0, 0])]);
    assert.deepEqual(Array.from(numeric(y)), new Array(10).fill(-7));
  });

  describe("torchvision's MultiScaleRoIAlign form", () => {
    const optimized = () => {
      const spec = poolerModel();
      const bytes = buildModel(spec);
      const result = optimizeImported(importOnnxBytes(bytes), 'pooler.onnx', { validate: true });
      assert.deepEqual(
        result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      return { spec, graph: result.graph };
    };

    it('the RoiAligns read the conv output NHWC (no transpose between), and the graph computes what the original does', () => {
      const { spec, graph } = optimized();
      const rois = graph.nodes.filter((n) => n.op === 'RoiAlign');
      assert.equal(rois.length, 2);
      const producers = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
      for (const r of rois) {
        assert.equal(r.attrs.channels_last?.value, 1);
        assert.equal(producers.get(r.inputs[0])?.op, 'conv2d');
        assert.deepEqual(graph.tensor(r.inputs[0]).shape, [2, 20, 24, 16]);
      }
      assert.ok(!graph.nodes.some((n) => n.op === 'Transpose' && n.inputs[0] === rois[0].inputs[0]));
      const random = seededRandom(17);
      const R = 6;
      const inputs = [
        makeTensor(
          'float32',
          [2, 3, 20, 24],
          Array.from({ length: 2 * 3 * 20 * 24 }, () => random() * 2 - 1),
        ),
        makeTensor('float32', [R, 4], [0, 0, 30, 20, 4, 8, 40, 36, 10, 2, 12, 5, -4, -4, 50, 50, 20, 20, 44, 38, 7, 7, 7.5, 9]),
        makeTensor('int64', [R], [0, 1, 1, 0, 1, 0]),
        makeTensor('int64', [R], [3, 0, 5, 1, 4, 2]),
      ];
      const original = importOnnxBytes(buildModel(spec));
      inferShapes(original.graph);
      const [expected] = runGraph(original.graph, inputs);
      const [actual] = runGraph(graph, inputs);
      assert.deepEqual(actual.shape, [R, 16, 5, 4]);
      close(numeric(actual), numeric(expected), 'pooler', 1e-5);
    });

    it("the second level scatters in place over the first level's result", () => {
      const { graph } = optimized();
      const plan = planMemory(graph, 8);
      const [first, second] = graph.nodes.filter((n) => n.op === 'ScatterElements');
      assert.equal(plan.offsets[second.outputs[0]], plan.offsets[first.outputs[0]]);
      assert.notEqual(plan.offsets[second.inputs[2]], plan.offsets[first.outputs[0]]);
    });

    function compilePooler(target: string) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-pooler-'));
      const file = path.join(dir, 'pooler.onnx');
      fs.writeFileSync(file, buildModel(poolerModel()));
      const out = path.join(dir, 'out');
      return { out, result: compileModel(file, { out, target, maxBatch: 64 }) };
    }

    for (const target of ['cuda:sm90', 'cuda:sm80'])
      it(`${target}: compiles with no unsupported node, every size from the run`, () => {
        const { out, result } = compilePooler(target);
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
          nodes: { op: string; status?: { supported: boolean }; kernel?: { name: string } }[];
        };
        assert.deepEqual(
          graph.nodes.filter((n) => n.status?.supported === false).map((n) => n.op),
          [],
        );
        const kernels = graph.nodes.filter((n) => n.kernel).map((n) => n.kernel!.name);
        // the rois (a model input) are coordinates: fp32 storage (passes/storage-precision.ts), the maps fp16
        for (const k of ['ait_roi_align_avg_nhwc_f16_rois_f32', 'ait_scatter_elements_f16', 'ait_fill_f16'])
          assert.ok(kernels.includes(k), `${k} in ${kernels.join(', ')}`);
        assert.match(fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8'), /RoiAlignArgs<__half, float> args\{\};/);
        const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
        assert.match(model, /args\.num_rois = batch;/);
        assert.match(model, /args\.channels_last = true;/);
        assert.match(model, /args\.half_pixel = false;/);
        assert.match(model, /\{batch, 16, 5, 4\},\n\s+\{batch, 16, 5, 4\},\n\s+ait::kernels::ScatterReduction::kNone\}/);
        assert.match(model, /FillArgs<__half> args\{[^,]+, 320 \* batch, __float2half_rn\(0\.0f\)\}/);
      });

    describe('nvcc compiles the generated model.cu for sm_80 and sm_90a', function () {
      before(function () {
        requireNvcc(this);
      });
      for (const [target, arch] of GPU_TARGETS)
        it(target, () => {
          const { out, result } = compilePooler(target);
          assert.ok(result.ok);
          nvccCompileGenerated(out, ['src/model.cu'], arch);
        });
    });
  });
});
