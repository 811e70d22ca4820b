/**
 * 3-D convolution and pooling (video networks) through the optimizer and the CUDA backend, on the op models of
 * scripts/gpu/op-models/video3d.ts: the optimized graph (NDHWC conv3d / pool3d / global_pool, transposes only at the
 * model's input) computes what onnxruntime computes for the ONNX model; every model compiles for sm90 and sm80 with
 * no unsupported node, graph.json says which kernel ran each 3-D op, and nvcc compiles the generated model.cu.
 * The kernels' index arithmetic (3-D im2col, depthwise/grouped/pool depth axis) is replayed in TypeScript against
 * the reference, since no GPU runs here (kernel_check.cu runs them on one).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { FUSED_DOMAIN } from '../../../compiler/ops/fused';
import { findOp } from '../../../compiler/ops/registry';
import { ModelSpec, NodeSpec, buildModel, input, nodeModel } from '../../helpers/onnx-builder';
import { relativeL2 } from '../../helpers/metrics';
import { videoModelSpecs } from '../../../scripts/gpu/op-models/video3d';
import { GPU_TARGETS, nvccCompileGenerated, requireNvcc } from '../../helpers/nvcc';
import { groupedBlockChannels } from '../../../compiler/backends/cuda/codegen/conv-lowering';
import { hipEnv, requireHipcc } from '../../helpers/hipcc';

interface GraphJsonNode {
  op: string;
  name: string;
  kernel?: { library: string; name: string; reason: string; config: Record<string, unknown> };
}

const BATCH = 2;

/** A 3-D problem in the kernels' terms (NDHWC, ODHWI weight [k, t, r, s, c/group]). */
interface Problem {
  n: number;
  d: number;
  h: number;
  w: number;
  c: number;
  k: number;
  group: number;
  kernel: [number, number, number];
  stride: [number, number, number];
  pad: [number, number, number, number, number, number];
  dilation: [number, number, number];
}

const outSize = (p: Problem, a: number) =>
  Math.floor(([p.d, p.h, p.w][a] + p.pad[a] + p.pad[a + 3] - (p.kernel[a] - 1) * p.dilation[a] - 1) / p.stride[a]) + 1;

/** kernels/im2col.cuh im2col_nhwc_kernel (scalar path) with the depth fields, then the GEMM columns × weightᵀ. */
function im2colGemmReplay(p: Problem, x: Float32Array, weight: Float32Array): Float32Array {
  const [t, r, s] = p.kernel;
  const [od, oh, ow] = [0, 1, 2].map((a) => outSize(p, a));
  const taps = t * r * s * p.c;
  const kPadded = Math.ceil(taps / 8) * 8;
  const rows = p.n * od * oh * ow;
  const columns = new Float32Array(rows * kPadded);
  const planeTaps = r * s;
  for (let i = 0; i < rows * kPadded; i++) {
    const row = Math.floor(i / kPadded);
    const k = i % kPadded;
    const oq = row % ow;
    const op = Math.floor(row / ow) % oh;
    const oz = Math.floor(row / (ow * oh)) % od;
    const image = Math.floor(row / (ow * oh * od));
    if (k >= taps) continue;
    const ch = k % p.c;
    const tap = Math.floor(k / p.c);
    const kt = Math.floor(tap / planeTaps);
    const kr = Math.floor((tap % planeTaps) / s);
    const ks = tap % s;
    const iz = oz * p.stride[0] - p.pad[0] + kt * p.dilation[0];
    const iy = op * p.stride[1] - p.pad[1] + kr * p.dilation[1];
    const ix = oq * p.stride[2] - p.pad[2] + ks * p.dilation[2];
    if (iz >= 0 && iz < p.d && iy >= 0 && iy < p.h && ix >= 0 && ix < p.w)
      columns[i] = x[(((image * p.d + iz) * p.h + iy) * p.w + ix) * p.c + ch];
  }
  // the GEMM: y[row, k] = Σ columns[row, j] · weight[k, j] (weight rows zero-padded to kPadded)
  const y = new Float32Array(rows * p.k);
  for (let row = 0; row < rows; row++)
    for (let k = 0; k < p.k; k++) {
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += columns[row * kPadded + j] * weight[k * taps + j];
      y[row * p.k + k] = acc;
    }
  return y;
}

/**
 * kernels/grouped_conv.cuh (a thread's 8 channels unrolled to one) and depthwise_conv.cuh scalar path with the
 * depth fields: the direct loops over (t, r, s) and the group's channels. Depthwise reads the weight [taps, k].
 */
function directReplay(p: Problem, x: Float32Array, weight: Float32Array, depthwise: boolean): Float32Array {
  const [od, oh, ow] = [0, 1, 2].map((a) => outSize(p, a));
  const [kd, kh, kw] = p.kernel;
  const cg = p.c / p.group;
  const kg = p.k / p.group;
  const taps = kd * kh * kw;
  const y = new Float32Array(p.n * od * oh * ow * p.k);
  for (let i = 0; i < y.length; i++) {
    const channel = i % p.k;
    const pixel = Math.floor(i / p.k);
    const oW = pixel % ow;
    const oH = Math.floor(pixel / ow) % oh;
    const oD = Math.floor(pixel / (ow * oh)) % od;
    const n = Math.floor(pixel / (ow * oh * od));
    const g = Math.floor(channel / kg);
    let acc = 0;
    for (let t = 0; t < kd; t++) {
      const id = oD * p.stride[0] - p.pad[0] + t * p.dilation[0];
      if (id < 0 || id >= p.d) continue;
      for (let r = 0; r < kh; r++) {
        const ih = oH * p.stride[1] - p.pad[1] + r * p.dilation[1];
        if (ih < 0 || ih >= p.h) continue;
        for (let s = 0; s < kw; s++) {
          const iw = oW * p.stride[2] - p.pad[2] + s * p.dilation[2];
          if (iw < 0 || iw >= p.w) continue;
          const tap = (t * kh + r) * kw + s;
          const base = (((n * p.d + id) * p.h + ih) * p.w + iw) * p.c;
          if (depthwise) acc += x[base + Math.floor(channel / (p.k / p.c))] * weight[tap * p.k + channel];
          else for (let ci = 0; ci < cg; ci++) acc += x[base + g * cg + ci] * weight[(channel * taps + tap) * cg + ci];
        }
      }
    }
    y[i] = acc;
  }
  return y;
}

/**
 * kernels/grouped_conv.cuh's tensor-core path (grouped_conv2d_nhwc_mma_kernel) with the depth fields: blocks of 128
 * pixels x kN output channels of one group (kN from the code generator's groupedBlockChannels, the header's rule), K =
 * the flattened (tap, channel) index in steps of 32, the im2col rows gathered through the kernel's row table (rows past
 * the last pixel get the out-of-range origin and gather zeros), the weight rows [k][taps · C/group] beside them, the
 * MMA as plain sums, the store only of pixels and channels that exist. Every output written exactly once.
 */
function tensorCoreReplay(p: Problem, x: Float32Array, weight: Float32Array): Float32Array {
  const [od, oh, ow] = [0, 1, 2].map((a) => outSize(p, a));
  const [kd, kh, kw] = p.kernel;
  const cg = p.c / p.group;
  const kg = p.k / p.group;
  const taps = kd * kh * kw;
  const F = taps * cg;
  const BM = 128;
  const BK = 32;
  const kN = groupedBlockChannels(kg);
  const pixels = p.n * od * oh * ow;
  const y = new Float32Array(pixels * p.k).fill(NaN);
  const chunks = Math.ceil(kg / kN);
  for (let by = 0; by < p.group * chunks; by++)
    for (let bx = 0; bx < Math.ceil(pixels / BM); bx++) {
      const g = Math.floor(by / chunks);
      const kbase = (by % chunks) * kN;
      const rows = Array.from({ length: BM }, (_, m) => {
        const pix = bx * BM + m;
        if (pix >= pixels) return { image: 0, d: -(2 ** 30), h: -(2 ** 30), w: -(2 ** 30) };
        const oW = pix % ow;
        const oH = Math.floor(pix / ow) % oh;
        const oD = Math.floor(pix / (ow * oh)) % od;
        const n = Math.floor(pix / (ow * oh * od));
        return {
          image: n * p.d * p.h * p.w,
          d: oD * p.stride[0] - p.pad[0],
          h: oH * p.stride[1] - p.pad[1],
          w: oW * p.stride[2] - p.pad[2],
        };
      });
      const inputOffset = (m: number, f: number): number => {
        const tap = Math.floor(f / cg);
        const ci = f - tap * cg;
        const s = tap % kw;
        const r = Math.floor(tap / kw) % kh;
        const t = Math.floor(tap / (kw * kh));
        const id = rows[m].d + t * p.dilation[0];
        const ih = rows[m].h + r * p.dilation[1];
        const iw = rows[m].w + s * p.dilation[2];
        if (id < 0 || id >= p.d || ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) return -1;
        return (rows[m].image + (id * p.h + ih) * p.w + iw) * p.c + ci;
      };
      const acc = new Float64Array(BM * kN);
      for (let f0 = 0; f0 < F; f0 += BK) {
        const a = new Float64Array(BM * BK);
        const b = new Float64Array(kN * BK);
        for (let m = 0; m < BM; m++)
          for (let f = 0; f < BK; f++) {
            const at = f0 + f < F ? inputOffset(m, f0 + f) : -1;
            a[m * BK + f] = at >= 0 ? x[g * cg + at] : 0;
          }
        for (let n = 0; n < kN; n++)
          for (let f = 0; f < BK; f++) b[n * BK + f] = kbase + n < kg && f0 + f < F ? weight[(g * kg + kbase + n) * F + f0 + f] : 0;
        for (let m = 0; m < BM; m++)
          for (let n = 0; n < kN; n++) for (let f = 0; f < BK; f++) acc[m * kN + n] += a[m * BK + f] * b[n * BK + f];
      }
      for (let m = 0; m < BM; m++)
        for (let n = 0; n < kN; n++) {
          const pix = bx * BM + m;
          if (pix >= pixels || kbase + n >= kg) continue;
          const out = pix * p.k + g * kg + kbase + n;
          assert.ok(Number.isNaN(y[out]), `output ${out} written twice`);
          y[out] = acc[m * kN + n];
        }
    }
  return y;
}

/**
 * torchvision's r3d_18 / r2plus1d_18 layer structure (video/resnet.py: stem, four layers of two basic blocks with
 * 1x1x1 stride-2 downsampling, global average pool, fc to 400 classes) as a graph-only model (weights external and
 * absent) on [B, 3, 16, 112, 112]: what families.py exports, without torch.
 */
function torchvisionVideoResNet(kind: 'r3d' | 'r2plus1d'): ModelSpec {
  const initializers: ModelSpec['initializers'] = [];
  const nodes: NodeSpec[] = [];
  let counter = 0;
  const param = (dims: number[]) => {
    const name = `p${counter++}`;
    initializers.push({ name, dtype: 'float32', dims, external: 'model.onnx.data' });
    return name;
  };
  const conv = (x: string, cin: number, cout: number, kernel: number[], stride: number[], pad: number[]) => {
    const y = `t${counter++}`;
    nodes.push({
      op: 'Conv',
      inputs: [x, param([cout, cin, ...kernel])],
      outputs: [y],
      attrs: { kernel_shape: kernel, strides: stride, pads: [...pad, ...pad] },
    });
    const z = `t${counter++}`;
    nodes.push({ op: 'BatchNormalization', inputs: [y, param([cout]), param([cout]), param([cout]), param([cout])], outputs: [z] });
    return z;
  };
  const relu = (x: string) => {
    const y = `t${counter++}`;
    nodes.push({ op: 'Relu', inputs: [x], outputs: [y] });
    return y;
  };
  // r3d: a 3x3x3 conv; r2plus1d: 1x3x3 (spatial stride) to `mid` channels, BN, relu, 3x1x1 (temporal stride)
  const conv3 = (x: string, cin: number, cout: number, s: number) => {
    if (kind === 'r3d') return conv(x, cin, cout, [3, 3, 3], [s, s, s], [1, 1, 1]);
    const mid = Math.floor((cin * cout * 27) / (cin * 9 + 3 * cout));
    return conv(relu(conv(x, cin, mid, [1, 3, 3], [1, s, s], [0, 1, 1])), mid, cout, [3, 1, 1], [s, 1, 1], [1, 0, 0]);
  };
  let x =
    kind === 'r3d'
      ? relu(conv('x', 3, 64, [3, 7, 7], [1, 2, 2], [1, 3, 3]))
      : relu(conv(relu(conv('x', 3, 45, [1, 7, 7], [1, 2, 2], [0, 3, 3])), 45, 64, [3, 1, 1], [1, 1, 1], [1, 0, 0]));
  let cin = 64;
  for (const [cout, stride] of [
    [64, 1],
    [128, 2],
    [256, 2],
    [512, 2],
  ])
    for (let block = 0; block < 2; block++) {
      const s = block === 0 ? stride : 1;
      const out = conv3(relu(conv3(x, cin, cout, s)), cout, cout, 1);
      const shortcut = s !== 1 || cin !== cout ? conv(x, cin, cout, [1, 1, 1], [s, s, s], [0, 0, 0]) : x;
      const sum = `t${counter++}`;
      nodes.push({ op: 'Add', inputs: [out, shortcut], outputs: [sum] });
      x = relu(sum);
      cin = cout;
    }
  nodes.push({ op: 'GlobalAveragePool', inputs: [x], outputs: ['pooled'] });
  nodes.push({ op: 'Flatten', inputs: ['pooled'], outputs: ['flat'], attrs: { axis: 1 } });
  nodes.push({ op: 'Gemm', inputs: ['flat', param([400, 512]), param([400])], outputs: ['y'], attrs: { transB: 1 } });
  return { inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, 16, 112, 112] }], initializers, nodes, outputs: ['y'] };
}

/** The reference: ops/fused.ts conv3d's evaluate (ONNX Conv on the NCDHW transposes). */
function referenceConv3d(p: Problem, x: Float32Array, weight: Float32Array): Float32Array {
  const node = {
    id: 'n0',
    op: 'conv3d',
    domain: FUSED_DOMAIN,
    name: 'c',
    inputs: ['x', 'w'],
    outputs: ['y'],
    attrs: {
      strides: { type: 'ints' as const, value: p.stride },
      pads: { type: 'ints' as const, value: p.pad },
      dilations: { type: 'ints' as const, value: p.dilation },
      group: { type: 'int' as const, value: p.group },
    },
    sourceNodes: [],
    scope: [],
  };
  const def = findOp(node)!;
  const [y] = def.evaluate!(
    node,
    [makeTensor('float32', [p.n, p.d, p.h, p.w, p.c], x), makeTensor('float32', [p.k, ...p.kernel, p.c / p.group], weight)],
    { runSubgraph: () => [], lookup: () => undefined },
  );
  return y.data as Float32Array;
}

function inputFor(shape: number[]): Float32Array {
  const random = seededRandom(17);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1);
}

describe('cuda backend: 3-D convolution and pooling (video networks)', function () {
  this.timeout(600_000);

  describe("the kernels' 3-D index arithmetic, replayed, matches the reference", () => {
    const problems: { name: string; p: Problem }[] = [
      {
        name: 'r3d stem 3x7x7 stride 1x2x2 (K = 441 padded to 448)',
        p: {
          n: 2,
          d: 4,
          h: 9,
          w: 10,
          c: 3,
          k: 5,
          group: 1,
          kernel: [3, 7, 7],
          stride: [1, 2, 2],
          pad: [1, 3, 3, 1, 3, 3],
          dilation: [1, 1, 1],
        },
      },
      {
        name: 'dilated 2x3x2, asymmetric pads, stride 2x1x2',
        p: {
          n: 1,
          d: 7,
          h: 5,
          w: 8,
          c: 8,
          k: 6,
          group: 1,
          kernel: [2, 3, 2],
          stride: [2, 1, 2],
          pad: [1, 0, 2, 0, 1, 1],
          dilation: [2, 1, 3],
        },
      },
      {
        name: 'grouped g=4, 3 channels per group, 3x3x3',
        p: {
          n: 2,
          d: 3,
          h: 4,
          w: 5,
          c: 12,
          k: 8,
          group: 4,
          kernel: [3, 3, 3],
          stride: [1, 1, 1],
          pad: [1, 1, 1, 1, 1, 1],
          dilation: [1, 1, 1],
        },
      },
      {
        // the 2-D form (depth 1) at RegNet's 24 channels per group, stride 2: one 24-wide block per group, K = 216
        name: 'grouped 2-D, 24 channels per group, 3x3 stride 2 (RegNet)',
        p: {
          n: 2,
          d: 1,
          h: 9,
          w: 11,
          c: 48,
          k: 48,
          group: 2,
          kernel: [1, 3, 3],
          stride: [1, 2, 2],
          pad: [0, 1, 1, 0, 1, 1],
          dilation: [1, 1, 1],
        },
      },
      {
        // 40 outputs per group (two 24-wide blocks, the second part-empty), 8 channels per group, dilated 5x5 in 2-D
        name: 'grouped 2-D, 40 outputs per group, 5x5 dilation 2, 150 pixels (a part-empty 128-pixel block)',
        p: {
          n: 1,
          d: 1,
          h: 10,
          w: 15,
          c: 16,
          k: 80,
          group: 2,
          kernel: [1, 5, 5],
          stride: [1, 1, 1],
          pad: [0, 4, 4, 0, 4, 4],
          dilation: [1, 2, 2],
        },
      },
      {
        name: 'depthwise 3x3x3 stride 1x2x2, multiplier 2',
        p: {
          n: 2,
          d: 4,
          h: 5,
          w: 5,
          c: 4,
          k: 8,
          group: 4,
          kernel: [3, 3, 3],
          stride: [1, 2, 2],
          pad: [1, 1, 1, 1, 1, 1],
          dilation: [1, 1, 1],
        },
      },
    ];
    for (const { name, p } of problems)
      it(name, () => {
        const random = seededRandom(23);
        const x = Float32Array.from({ length: p.n * p.d * p.h * p.w * p.c }, () => random() * 2 - 1);
        const weight = Float32Array.from(
          { length: p.k * p.kernel[0] * p.kernel[1] * p.kernel[2] * (p.c / p.group) },
          () => random() * 2 - 1,
        );
        const expected = referenceConv3d(p, x, weight);
        const depthwise = p.group === p.c;
        // the depthwise kernel reads the weight prepared channels-innermost, [taps, k]
        const taps = p.kernel[0] * p.kernel[1] * p.kernel[2];
        const rsk = Float32Array.from({ length: weight.length }, (_, i) => weight[(i % p.k) * taps + Math.floor(i / p.k)]);
        const got = p.group === 1 ? im2colGemmReplay(p, x, weight) : directReplay(p, x, depthwise ? rsk : weight, depthwise);
        assert.equal(got.length, expected.length);
        for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) <= 1e-4, `${i}: ${got[i]} vs ${expected[i]}`);
        if (p.group === 1) {
          const direct = directReplay(p, x, weight, false);
          for (let i = 0; i < got.length; i++) assert.ok(Math.abs(direct[i] - expected[i]) <= 1e-4);
        }
        if (p.group > 1 && !depthwise) {
          const tensorCores = tensorCoreReplay(p, x, weight);
          for (let i = 0; i < got.length; i++)
            assert.ok(Math.abs(tensorCores[i] - expected[i]) <= 1e-4, `tensor-core path ${i}: ${tensorCores[i]} vs ${expected[i]}`);
        }
      });
  });

  for (const { name, spec } of videoModelSpecs) {
    it(`${name}: the optimized NDHWC graph computes what onnxruntime computes`, async () => {
      const bytes = buildModel(spec());
      const optimized = optimizeImported(importOnnxBytes(bytes), `${name}.onnx`, { validate: true });
      assert.deepEqual(
        optimized.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = optimized.graph;
      // every 3-D Conv / pool became its NDHWC fused form; the only layout transposes are at the model's input
      // (the output is [B, 10] after the linear, or [B, 16, 1, 1, 1], which a reshape reaches)
      for (const n of graph.nodes)
        assert.ok(!['Conv', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool'].includes(n.op), n.op);
      const ops = graph.nodes.map((n) => n.op);
      assert.ok(ops.includes('conv3d'), ops.join(' '));
      assert.equal(ops.filter((op) => op === 'Transpose').length, 1, ops.join(' '));
      const x = graph.tensor(graph.inputs[0]).shape!.map((d) => (typeof d === 'number' ? d : BATCH));
      const data = inputFor(x);
      const [ours] = runGraph(graph, [makeTensor('float32', x, data)]);
      const session = await ort.InferenceSession.create(bytes);
      const theirs = (await session.run({ x: new ort.Tensor('float32', data, x) })).y;
      assert.deepEqual(ours.shape, [...theirs.dims]);
      const err = relativeL2(ours.data as Float32Array, theirs.data as Float32Array);
      assert.ok(err <= 1e-4, `relative L2 error ${err}`);
    });
  }

  it('count_include_pad with end pads unlike the begin pads: the pool kernels get them (2-D and 3-D), and their divisor replayed matches onnxruntime', async () => {
    // AveragePool 3x3/2, pads [top 0, left 1, bottom 2, right 1], count_include_pad: the last row's window reaches
    // into the bottom pad, which counts (onnxruntime: divisor 9 there, not the 3 a begin-pad clip would give)
    const spec = nodeModel('AveragePool', [input('float32', ['B', 8, 5, 6])], {
      attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 1, 2, 1], count_include_pad: 1 },
    });
    const x = Float32Array.from({ length: 8 * 5 * 6 }, (_, i) => 1 + (i % 7));
    const session = await ort.InferenceSession.create(buildModel(spec));
    const theirs = (await session.run({ in0: new ort.Tensor('float32', x, [1, 8, 5, 6]) })).out0;
    // kernels/pooling.cuh pool_divisor / pool_padded_taps, replayed over the NCHW output
    const [oh, ow] = [theirs.dims[2], theirs.dims[3]];
    const taps = (start: number, kernel: number, input: number, endPad: number) => Math.min(start + kernel, input + endPad) - start;
    for (let c = 0; c < 8; c++)
      for (let y = 0; y < oh; y++)
        for (let xo = 0; xo < ow; xo++) {
          let sum = 0;
          for (let r = 0; r < 3; r++)
            for (let s = 0; s < 3; s++) {
              const iy = y * 2 - 0 + r;
              const ix = xo * 2 - 1 + s;
              if (iy >= 0 && iy < 5 && ix >= 0 && ix < 6) sum += x[(c * 5 + iy) * 6 + ix];
            }
          const divisor = taps(y * 2 - 0, 3, 5, 2) * taps(xo * 2 - 1, 3, 6, 1);
          const want = (theirs.data as Float32Array)[(c * oh + y) * ow + xo];
          assert.ok(Math.abs(sum / divisor - want) <= 1e-5, `(${c}, ${y}, ${xo}): ${sum / divisor} vs ${want}`);
        }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-video3d-'));
    fs.writeFileSync(path.join(dir, 'pool.onnx'), buildModel(spec));
    const result = compileModel(path.join(dir, 'pool.onnx'), { out: path.join(dir, 'out'), target: 'cuda:sm90', maxBatch: 2 });
    assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
    const model = fs.readFileSync(path.join(dir, 'out', 'src/model.cu'), 'utf8');
    // the 2-D pool: depth fields at their defaults, pad_back -1, then bottom 2, right 1
    assert.match(model, /Pool2dArgs<__half> args\{[^;]*kAverage, true, 1, 1, 1, 1, 0, 1, -1, 2, 1\};/);
  });

  for (const kind of ['r3d', 'r2plus1d'] as const)
    it(`torchvision ${kind}_18's structure (graph-only, [B,3,16,112,112]) compiles for cuda:sm90: every node lowered, layout transposes only at the input`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-video3d-'));
      const file = path.join(dir, `${kind}_18.onnx`);
      fs.writeFileSync(file, buildModel(torchvisionVideoResNet(kind)));
      const out = path.join(dir, 'out');
      const result = compileModel(file, { out, target: 'cuda:sm90', maxBatch: 2 });
      assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
      const nodes = (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: GraphJsonNode[] }).nodes;
      const convs = nodes.filter((n) => n.op === 'conv3d');
      // every Conv (BN folded, relu and the residual add fused): r3d 20, r2plus1d 2 + 16·2 + 3 downsamples = 37
      assert.equal(convs.length, kind === 'r3d' ? 20 : 37);
      assert.ok(convs.every((n) => n.kernel && n.kernel.library === 'cutlass'));
      // besides the weights' OIDHW → ODHWI preparation (graph-only: bind-time), one transpose: the input's
      const transposes = nodes.filter((n) => n.op === 'Transpose');
      assert.equal(transposes.filter((n) => !n.name.endsWith('/weight_odhwi')).length, 1, transposes.map((n) => n.name).join(' '));
      assert.equal(transposes.length, convs.length + 1);
      assert.ok(nodes.some((n) => n.op === 'global_pool'));
    });

  for (const [target, gencode] of GPU_TARGETS)
    for (const { name, spec } of videoModelSpecs)
      it(`${name} compiles for ${target} with no unsupported node; graph.json names the kernels; nvcc compiles model.cu`, function () {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-video3d-'));
        const file = path.join(dir, `${name}.onnx`);
        fs.writeFileSync(file, buildModel(spec()));
        const out = path.join(dir, 'out');
        const result = compileModel(file, { out, target, maxBatch: 4 });
        assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
        const nodes = (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: GraphJsonNode[] }).nodes;
        for (const n of nodes)
          if (['conv3d', 'pool3d', 'global_pool'].includes(n.op)) assert.ok(n.kernel, `${n.op} ${n.name} has no kernel`);
        const convs = nodes.filter((n) => n.op === 'conv3d');
        const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
        if (name === 'video3d_r3d_blocks') {
          // stem: 3x7x7x3 = 441 taps padded to 448; its BN folded and relu fused; the block's residual + relu fused
          const stem = convs.find((n) => n.name === 'stem')!;
          assert.equal(stem.kernel!.config.path, 'im2col+gemm');
          assert.match(stem.kernel!.reason, /3x7x7 conv \(stride 1x2x2\) as 3-D im2col \+ GEMM, K=441 padded to 448/);
          const block = convs.find((n) => n.name === 'block_conv2')!;
          assert.match(block.kernel!.reason, /3x3x3 conv/);
          assert.ok(convs.every((n) => n.kernel!.library === 'cutlass'));
          // 3-D im2col: the H/W fields, then depth 8, output depth 8, kernel depth 3, stride 1, front pad 1, dilation 1
          assert.match(
            model,
            /Im2colArgs<__half> im2col\{[^;]*, batch, 32, 32, 3, 16, 16, 7, 7,\s+2, 2, 3, 3, 1, 1, 448,\s+8, 8, 3, 1, 1, 1\};/,
          );
          assert.equal(nodes.filter((n) => n.op === 'pool3d').length, 1);
          assert.match(model, /Pool2dArgs<__half> args\{[^;]*kMax, false,\s+8, 8, 1, 1, 0, 1\};/);
        } else {
          const dw = convs.find((n) => n.name === 'depthwise')!;
          assert.equal(dw.kernel!.name, 'ait_depthwise_conv3d_ndhwc_f16');
          assert.deepEqual(dw.kernel!.config.epilogue, ['bias', 'sigmoid']);
          const grouped = convs.find((n) => n.name === 'grouped')!;
          assert.equal(grouped.kernel!.name, 'ait_grouped_conv3d_ndhwc_f16');
          assert.deepEqual(grouped.kernel!.config.epilogue, ['bias', 'residual_add']);
          assert.match(
            model,
            /launch_grouped_conv2d_nhwc\(args, ew::make_chain\(ew::Input<0>\{\}, ew::AddInput<1>\{\}, ew::AddInput<2>\{\}\), c\.stream\)/,
          );
          // count_include_pad reaches the 3-D pool with its end pads (back 1, bottom 2, right 2: unlike the begin pads);
          // ceil_mode's output depth 2 (6 → 3 → ceil(3/2))
          assert.match(model, /Pool2dArgs<__half> args\{[^;]*kAverage, true,\s+6, 3, 2, 2, 0, 1, 1, 2, 2\};/);
          assert.match(model, /Pool2dArgs<__half> args\{[^;]*kAverage, false,\s+3, 2, 2, 2, 0, 1\};/);
          assert.ok(nodes.some((n) => n.op === 'global_pool' && n.kernel!.name === 'ait_global_pool_max_f16'));
        }
        requireNvcc(this);
        nvccCompileGenerated(out, ['src/model.cu'], gencode);
      });

  for (const { name, spec } of videoModelSpecs)
    it(`${name} compiles for rocm:gfx90a: group-1 conv3d a CK GEMM after our 3-D im2col, the others our kernels; hipcc compiles model.cu`, function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-video3d-rocm-'));
      const file = path.join(dir, `${name}.onnx`);
      fs.writeFileSync(file, buildModel(spec()));
      const out = path.join(dir, 'out');
      const result = compileModel(file, { out, target: 'rocm:gfx90a', maxBatch: 4 });
      assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
      const nodes = (
        JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
          nodes: (GraphJsonNode & { attrs?: Record<string, unknown> })[];
        }
      ).nodes;
      for (const n of nodes.filter((node) => node.op === 'conv3d'))
        assert.equal(n.kernel!.library, ['depthwise', 'grouped'].includes(n.name) ? 'ait' : 'ck', `${n.name}: ${n.kernel!.name}`);
      requireHipcc(this);
      const r = spawnSync(
        'hipcc',
        [
          '-x',
          'hip',
          '-std=c++17',
          '-O1',
          '--offload-arch=gfx90a',
          '-fPIC',
          '-Isrc/hip',
          '-Isrc',
          '-Isrc/runtime',
          '-Isrc/kernels',
          '-c',
          'src/model.cu',
          '-o',
          'model.o',
        ],
        { cwd: out, encoding: 'utf8', env: hipEnv() },
      );
      assert.equal(
        r.status,
        0,
        `${r.stdout}${r.stderr}`
          .split('\n')
          .filter((l) => / error[: ]/.test(l))
          .slice(0, 20)
          .join('\n'),
      );
    });
});
