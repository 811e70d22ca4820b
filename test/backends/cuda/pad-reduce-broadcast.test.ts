/**
 * Pad, Reduce*, general broadcast elementwise and the direct grouped conv on the CUDA backend. No GPU here, so the
 * kernels' index arithmetic is replayed in TypeScript on what the code generator hands them (the merged Pad axes, the
 * reduce view, the kStrided shape/strides, the grouped conv tiling) and compared with the interpreter (the op
 * references) on random data; small models with each op compile for sm90 and sm80 without unsupported nodes, and
 * nvcc compiles their generated model.cu (skipped without nvcc).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { broadcastOf } from '../../../compiler/backends/cuda/codegen/elementwise';
import { padPlan } from '../../../compiler/backends/cuda/codegen/pad-lowering';
import { reducePlan } from '../../../compiler/backends/cuda/codegen/reduce-lowering';
import { compileModel } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { Graph, Node } from '../../../compiler/ir/graph';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { ModelSpec, buildModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { nvccCompileGenerated, requireNvcc, GPU_TARGETS } from '../../helpers/nvcc';

const f32 = (...dims: (number | string)[]) => input('float32', dims);
const i64 = (values: number[]) => tensor('int64', [values.length], values);

function randomTensor(shape: number[], seed: number): TensorValue {
  const random = seededRandom(seed);
  const count = shape.reduce((a, b) => a * b, 1);
  return makeTensor(
    'float32',
    shape,
    Array.from({ length: count }, () => random() * 2 - 1),
  );
}

/** The imported graph with shapes inferred, its one node, and the interpreter's output on random inputs. */
function reference(spec: ModelSpec, shapes: number[][]) {
  const model = importOnnxBytes(buildModel(spec));
  inferShapes(model.graph);
  const graph: Graph = model.graph;
  const node: Node = graph.nodes[graph.nodes.length - 1];
  const inputs = shapes.map((s, i) => randomTensor(s, 11 + i));
  const [expected] = runGraph(graph, inputs);
  return { graph, node, inputs, expected, ctx: CodegenContext.forChecks(graph) };
}

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tolerance = 1e-5) => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tolerance * (1 + Math.abs(expected[i])),
      `${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`,
    );
};

/** pad.cuh pad_source. */
function padSource(i: number, size: number, mode: string): number {
  if (i >= 0 && i < size) return i;
  if (mode === 'edge') return i < 0 ? 0 : size - 1;
  if (mode === 'reflect') {
    const period = size > 1 ? 2 * (size - 1) : 1;
    i %= period;
    if (i < 0) i += period;
    return i >= size ? period - i : i;
  }
  if (mode === 'wrap') {
    i %= size;
    return i < 0 ? i + size : i;
  }
  return -1;
}

describe('cuda backend: Pad, Reduce*, general broadcast, direct grouped conv', function () {
  this.timeout(600_000);

  describe('Pad: the kernel on the merged axes computes the interpreter Pad', () => {
    const cases: { name: string; shape: number[]; pads: number[]; mode: string; value?: number; axes?: number[] }[] = [
      {
        name: 'constant NHWC H/W (C merged, 16-byte vectors)',
        shape: [2, 3, 4, 8],
        pads: [0, 1, 2, 0, 0, 2, 1, 0],
        mode: 'constant',
        value: 0.5,
      },
      { name: 'reflect NCHW W', shape: [1, 2, 3, 5], pads: [0, 0, 0, 3, 0, 0, 0, 2], mode: 'reflect' },
      { name: 'edge on every axis of a 3-D tensor', shape: [2, 3, 4], pads: [1, 2, 1, 2, 1, 3], mode: 'edge' },
      { name: 'wrap (opset 19)', shape: [3, 4], pads: [1, 2, 2, 5], mode: 'wrap' },
      { name: 'negative pads crop', shape: [4, 6], pads: [-1, 2, 0, -3], mode: 'constant' },
      { name: 'axes input (opset 18)', shape: [2, 3, 4, 5], pads: [1, 2, 0, 1], mode: 'reflect', axes: [1, -1] },
    ];
    for (const c of cases)
      it(c.name, () => {
        const inputs = [f32(...c.shape), i64(c.pads), c.value !== undefined ? tensor('float32', [], [c.value]) : undefined];
        if (c.axes) inputs.push(i64(c.axes));
        const spec = nodeModel('Pad', inputs, { attrs: { mode: c.mode }, opset: c.mode === 'wrap' ? 19 : 18 });
        const { node, inputs: xs, expected, ctx } = reference(spec, [c.shape]);
        const plan = padPlan(ctx, node);
        assert.equal(plan.mode, c.mode);
        const inShape = plan.merged.map((a) => a.dims.reduce<number>((p, d) => p * (d as number), 1));
        const outShape = plan.merged.map((a, k) => inShape[k] + a.begin + a.end);
        const x = numeric(xs[0]);
        const total = outShape.reduce((a, b) => a * b, 1);
        const out = new Float64Array(total);
        for (let i = 0; i < total; i++) {
          let rest = i;
          let source = 0;
          let stride = 1;
          let inside = true;
          for (let d = outShape.length - 1; d >= 0; d--) {
            const s = padSource((rest % outShape[d]) - plan.merged[d].begin, inShape[d], plan.mode);
            rest = Math.floor(rest / outShape[d]);
            if (s < 0) inside = false;
            source += s * stride;
            stride *= inShape[d];
          }
          out[i] = inside ? x[source] : plan.value;
        }
        close(out, numeric(expected), c.name);
      });

    it('NHWC padding of H and W is 3 kernel axes with the channels innermost and unpadded', () => {
      const spec = nodeModel('Pad', [f32(2, 6, 6, 16), i64([0, 1, 1, 0, 0, 1, 1, 0])]);
      const { node, ctx } = reference(spec, [[2, 6, 6, 16]]);
      const { merged } = padPlan(ctx, node);
      assert.deepEqual(
        merged.map((a) => ({ dims: a.dims, begin: a.begin, end: a.end })),
        [
          { dims: [2], begin: 0, end: 0 },
          { dims: [6], begin: 1, end: 1 },
          { dims: [6], begin: 1, end: 1 },
          { dims: [16], begin: 0, end: 0 },
        ],
      );
    });
  });

  describe('Reduce*: the kernel view computes the interpreter reduction', () => {
    const ops = [
      'ReduceSum',
      'ReduceMean',
      'ReduceMax',
      'ReduceMin',
      'ReduceProd',
      'ReduceSumSquare',
      'ReduceL1',
      'ReduceL2',
      'ReduceLogSumExp',
    ];
    const layouts: { name: string; shape: number[]; axes: number[]; keepdims: number; kind: 'rows' | 'columns' | 'strided' }[] = [
      { name: 'last axis', shape: [3, 4, 5], axes: [-1], keepdims: 1, kind: 'rows' },
      { name: 'H,W of NHWC (the Swin head)', shape: [2, 3, 3, 8], axes: [1, 2], keepdims: 0, kind: 'columns' },
      { name: 'axes 0 and 2 (separate runs)', shape: [3, 4, 5, 2], axes: [0, 2], keepdims: 1, kind: 'strided' },
      { name: 'a size-1 axis merges', shape: [2, 1, 4, 3], axes: [0, 2], keepdims: 0, kind: 'columns' },
    ];
    for (const op of ops)
      for (const l of layouts)
        it(`${op} over ${l.name}`, () => {
          const spec = nodeModel(op, [f32(...l.shape)], { attrs: { axes: l.axes, keepdims: l.keepdims }, opset: 13 });
          if (op === 'ReduceSum') {
            spec.nodes[0].inputs.push('axes');
            delete spec.nodes[0].attrs!.axes;
            spec.initializers = [...(spec.initializers ?? []), { ...i64(l.axes), name: 'axes' }];
          }
          const { node, inputs: xs, expected, ctx } = reference(spec, [l.shape]);
          const runs = reducePlan(ctx, node);
          const size = (r: { dims: unknown[] }) => r.dims.reduce<number>((p, d) => p * (d as number), 1);
          const reducedRuns = runs.filter((r) => r.reduced).length;
          const kind = reducedRuns > 1 ? 'strided' : runs.length && !runs[runs.length - 1].reduced ? 'columns' : 'rows';
          assert.equal(kind, l.kind);
          const x = numeric(xs[0]);
          const stride = runs.map((_, k) => runs.slice(k + 1).reduce((p, r) => p * size(r), 1));
          const kept = runs.map((r, k) => ({ r, k })).filter(({ r }) => !r.reduced);
          const red = runs.map((r, k) => ({ r, k })).filter(({ r }) => r.reduced);
          const outCount = kept.reduce((p, { r }) => p * size(r), 1);
          const count = red.reduce((p, { r }) => p * size(r), 1);
          const step = (acc: number, v: number) =>
            ({
              ReduceMax: Math.max(acc, v),
              ReduceMin: Math.min(acc, v),
              ReduceProd: acc * v,
              ReduceSumSquare: acc + v * v,
              ReduceL2: acc + v * v,
              ReduceL1: acc + Math.abs(v),
              ReduceLogSumExp: acc + Math.exp(v),
            })[op] ?? acc + v;
          const init = op === 'ReduceMax' ? -Infinity : op === 'ReduceMin' ? Infinity : op === 'ReduceProd' ? 1 : 0;
          const finish = (a: number) =>
            op === 'ReduceMean' ? a / count : op === 'ReduceL2' ? Math.sqrt(a) : op === 'ReduceLogSumExp' ? Math.log(a) : a;
          // reduce_strided_kernel's arithmetic (the rows/columns kernels are the one-run case of it)
          const out = new Float64Array(outCount);
          for (let i = 0; i < outCount; i++) {
            let rest = i;
            let base = 0;
            for (let d = kept.length - 1; d >= 0; d--) {
              base += (rest % size(kept[d].r)) * stride[kept[d].k];
              rest = Math.floor(rest / size(kept[d].r));
            }
            let acc = init;
            for (let r = 0; r < count; r++) {
              let rr = r;
              let offset = base;
              for (let d = red.length - 1; d >= 0; d--) {
                offset += (rr % size(red[d].r)) * stride[red[d].k];
                rr = Math.floor(rr / size(red[d].r));
              }
              acc = step(acc, x[offset]);
            }
            out[i] = finish(acc);
          }
          close(out, numeric(expected), `${op} ${l.name}`, 1e-4);
        });
  });

  describe('broadcast: every pattern reads the numpy-broadcast element', () => {
    const pairs: [number[], number[]][] = [
      [
        [1, 4, 1, 3, 3],
        [2, 4, 5, 3, 3],
      ], // Swin's shifted-window mask over [B, windows, heads, S, S]
      [
        [4, 1],
        [2, 3, 4, 5],
      ],
      [
        [1, 3, 1, 5],
        [2, 3, 4, 5],
      ],
      [
        [2, 1, 4, 1],
        [2, 3, 4, 5],
      ],
      [
        [3, 1, 1],
        [2, 3, 4, 5],
      ],
      [[5], [2, 3, 4, 5]],
      [
        [2, 1, 1, 5],
        [2, 3, 4, 5],
      ],
      [
        [1, 1, 8],
        [2, 3, 8],
      ],
    ];
    for (const [shape, out] of pairs)
      it(`[${shape.join(',')}] over [${out.join(',')}]`, () => {
        const ctx = { product: (dims: readonly number[]) => String(dims.reduce((a, b) => a * b, 1)) } as unknown as CodegenContext;
        const b = broadcastOf(ctx, {} as Node, shape, out);
        const padded = [...Array(out.length - shape.length).fill(1), ...shape];
        const strides = padded.map((_, i) => padded.slice(i + 1).reduce((a, d) => a * d, 1));
        const count = out.reduce((a, d) => a * d, 1);
        for (let i = 0; i < count; i++) {
          // numpy: each output coordinate, 0 on a broadcast axis
          let rest = i;
          let want = 0;
          for (let d = out.length - 1; d >= 0; d--) {
            const c = rest % out[d];
            rest = Math.floor(rest / out[d]);
            if (padded[d] !== 1) want += c * strides[d];
          }
          // elementwise.cuh source_index
          let got: number;
          const inner = Number(b.inner);
          if (b.broadcast === 'kFull') got = i;
          else if (b.broadcast === 'kInner') got = i % inner;
          else if (b.broadcast === 'kOuter') got = Math.floor(i / inner);
          else if (b.broadcast === 'kMiddle') got = Math.floor(i / Number(b.span)) * inner + (i % inner);
          else if (b.broadcast === 'kStrided') {
            const sShape = b.strided!.shape.map(Number);
            const sStrides = b.strided!.strides.map(Number);
            assert.ok(sShape.length <= 6);
            got = 0;
            let r = i;
            for (let d = sShape.length - 1; d >= 0; d--) {
              got += (r % sShape[d]) * sStrides[d];
              r = Math.floor(r / sShape[d]);
            }
          } else got = 0;
          assert.equal(got, want, `${b.broadcast}: output ${i}`);
        }
        if (shape.join() === '1,4,1,3,3') {
          assert.equal(b.broadcast, 'kStrided');
          assert.deepEqual(b.strided, { shape: ['2', '4', '5', '9'], strides: ['0', '9', '0', '1'] });
        }
      });
  });

  describe('grouped conv: the direct kernel (tiling, shared-memory weights, 8 channels per thread) computes Conv', () => {
    const cases = [
      { name: 'RegNet-like: 24 channels per group, stride 2', c: 48, k: 48, group: 2, hw: 7, r: 3, stride: 2, pad: 1, dilation: 1 },
      { name: 'odd: 3 in / 5 out per group', c: 9, k: 15, group: 3, hw: 6, r: 3, stride: 1, pad: 1, dilation: 1 },
      { name: 'K/group 40 (two output chunks), 5x5 dilated', c: 16, k: 80, group: 2, hw: 9, r: 5, stride: 1, pad: 4, dilation: 2 },
      { name: 'C/group 96 (weight chunks of 80 channels), 3x3', c: 192, k: 16, group: 2, hw: 5, r: 3, stride: 1, pad: 1, dilation: 1 },
    ];
    for (const t of cases)
      it(t.name, () => {
        const cg = t.c / t.group;
        const kg = t.k / t.group;
        const taps = t.r * t.r;
        const random = seededRandom(3);
        const wValues = Array.from({ length: t.k * cg * taps }, () => random() - 0.5);
        const spec: ModelSpec = {
          inputs: [{ name: 'x', dtype: 'float32', dims: [2, t.c, t.hw, t.hw] }],
          initializers: [{ name: 'w', dtype: 'float32', dims: [t.k, cg, t.r, t.r], values: wValues }],
          nodes: [
            {
              op: 'Conv',
              name: 'conv',
              inputs: ['x', 'w'],
              outputs: ['y'],
              attrs: {
                kernel_shape: [t.r, t.r],
                pads: [t.pad, t.pad, t.pad, t.pad],
                strides: [t.stride, t.stride],
                dilations: [t.dilation, t.dilation],
                group: t.group,
              },
            },
          ],
          outputs: [{ name: 'y', dtype: 'float32', dims: undefined }],
        };
        const { inputs: xs, expected } = reference(spec, [[2, t.c, t.hw, t.hw]]);
        const [n, , p, q] = expected.shape;
        const h = t.hw;
        const xNchw = numeric(xs[0]);
        const x = (b: number, ih: number, iw: number, ch: number) => xNchw[((b * t.c + ch) * h + ih) * h + iw];
        // OHWI weight, as the layout pass prepares it
        const w = (kk: number, tap: number, ci: number) => wValues[(kk * cg + ci) * taps + tap];
        // grouped_conv.cuh grouped_conv_tiling and the kernel's loops, block by block
        const kt = Math.ceil(Math.min(kg, 32) / 8) * 8;
        let ccMax = Math.floor(40960 / (kt * taps * 2));
        if (ccMax >= 8) ccMax -= ccMax % 8;
        ccMax = Math.max(1, Math.min(ccMax, cg));
        const chunks = Math.ceil(kg / kt);
        const pixels = n * p * q;
        const out = new Float64Array(pixels * t.k).fill(NaN);
        for (let by = 0; by < t.group * chunks; by++) {
          const g = Math.floor(by / chunks);
          const kbase = (by % chunks) * kt;
          for (let bx = 0; bx < Math.ceil(pixels / 64); bx++)
            for (let tid = 0; tid < 64 * (kt / 8); tid++) {
              const column = Math.floor(tid / 64);
              const pixel = bx * 64 + (tid % 64);
              if (pixel >= pixels) continue;
              const ow = pixel % q;
              const oh = Math.floor(pixel / q) % p;
              const b = Math.floor(pixel / (q * p));
              const k0 = kbase + column * 8;
              const acc = new Array<number>(8).fill(0);
              for (let c0 = 0; c0 < cg; c0 += ccMax) {
                const cc = Math.min(cg - c0, ccMax);
                const wsm = new Float64Array(taps * cc * kt);
                for (let i = 0; i < wsm.length; i++) {
                  const kk = i % kt;
                  const ci = Math.floor(i / kt) % cc;
                  const tap = Math.floor(i / kt / cc);
                  wsm[i] = kbase + kk < kg ? w(g * kg + kbase + kk, tap, c0 + ci) : 0;
                }
                for (let r = 0; r < t.r; r++) {
                  const ih = oh * t.stride - t.pad + r * t.dilation;
                  if (ih < 0 || ih >= h) continue;
                  for (let s = 0; s < t.r; s++) {
                    const iw = ow * t.stride - t.pad + s * t.dilation;
                    if (iw < 0 || iw >= h) continue;
                    for (let ci = 0; ci < cc; ci++)
                      for (let j = 0; j < 8; j++)
                        acc[j] += x(b, ih, iw, g * cg + c0 + ci) * wsm[((r * t.r + s) * cc + ci) * kt + column * 8 + j];
                  }
                }
              }
              for (let j = 0; j < 8 && k0 + j < kg; j++) out[pixel * t.k + g * kg + k0 + j] = acc[j];
            }
        }
        // NHWC → NCHW
        const nchw = new Float64Array(out.length);
        for (let b = 0; b < n; b++)
          for (let kk = 0; kk < t.k; kk++)
            for (let i = 0; i < p * q; i++) nchw[(b * t.k + kk) * p * q + i] = out[(b * p * q + i) * t.k + kk];
        close(nchw, numeric(expected), t.name, 1e-4);
      });
  });

  /** A model with each new lowering: Pad (reflect) → grouped conv (C/group 3) → Add of a general broadcast → ReduceMean. */
  function opsModel(): ModelSpec {
    const random = seededRandom(9);
    const values = (count: number) => Array.from({ length: count }, () => random() - 0.5);
    return {
      inputs: [
        { name: 'x', dtype: 'float32', dims: ['B', 12, 8, 8] },
        { name: 'u', dtype: 'float32', dims: ['B', 3, 4, 5] },
      ],
      initializers: [
        { name: 'pads', dtype: 'int64', dims: [8], values: [0, 0, 1, 1, 0, 0, 1, 1] },
        { name: 'w', dtype: 'float32', dims: [20, 3, 3, 3], values: values(540) },
        { name: 'b', dtype: 'float32', dims: [20], values: values(20) },
        { name: 'mask', dtype: 'float32', dims: [1, 20, 1, 8], values: values(160) },
        { name: 'axes', dtype: 'int64', dims: [2], values: [1, 3] },
        { name: 'v', dtype: 'float32', dims: [1, 3, 1, 5], values: values(15) },
      ],
      nodes: [
        { op: 'Pad', name: 'pad', inputs: ['x', 'pads'], outputs: ['xp'], attrs: { mode: 'reflect' } },
        { op: 'Conv', name: 'gconv', inputs: ['xp', 'w', 'b'], outputs: ['c'], attrs: { kernel_shape: [3, 3], group: 4 } },
        { op: 'Relu', name: 'relu', inputs: ['c'], outputs: ['r'] },
        { op: 'Add', name: 'mask_add', inputs: ['r', 'mask'], outputs: ['m'] },
        { op: 'ReduceSum', name: 'reduce', inputs: ['m', 'axes'], outputs: ['y'], attrs: { keepdims: 0 } },
        { op: 'Mul', name: 'strided_mul', inputs: ['u', 'v'], outputs: ['z'] },
      ],
      outputs: [
        { name: 'y', dtype: 'float32', dims: ['B', 8] },
        { name: 'z', dtype: 'float32', dims: ['B', 3, 4, 5] },
      ],
      opset: 18,
    };
  }

  function compileOps(target: string) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-opspad-'));
    const file = path.join(dir, 'ops.onnx');
    fs.writeFileSync(file, buildModel(opsModel()));
    const out = path.join(dir, 'out');
    const result = compileModel(file, { out, target, maxBatch: 8 });
    return { out, result };
  }

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: Pad, the odd grouped conv, the general broadcast and the strided ReduceSum compile with the new kernels`, () => {
      const { out, result } = compileOps(target);
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { op: string; kernel?: { name: string; config: Record<string, unknown> } }[];
      };
      const kernels = graph.nodes.filter((n) => n.kernel).map((n) => n.kernel!.name);
      assert.ok(kernels.includes('ait_pad_reflect_f16'), kernels.join(', '));
      const conv = graph.nodes.find((n) => n.op === 'conv2d')!;
      assert.equal(conv.kernel!.name, 'ait_grouped_conv2d_nhwc_f16');
      assert.match(String(conv.kernel!.config.cutlassRefused), /odd C\/group/);
      assert.ok(kernels.includes('ait_reduce_sum_f16'), kernels.join(', '));
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      assert.match(model, /launch_grouped_conv2d_nhwc\(args, ew::make_chain\(ew::Input<0>\{\}, ew::AddInput<1>\{\}, ew::Relu\{\}/);
      assert.match(model, /launch_pad\(args/);
      assert.match(model, /launch_reduce(_strided)?\(args/);
      assert.match(model, /args\.strided\[1\] = \{4, \{batch, 3, 4, 5\}, \{0, 5, 0, 1\}\};/);
    });

  describe('nvcc compiles the generated model.cu with the new kernels for sm_80 and sm_90a', function () {
    before(function () {
      requireNvcc(this);
    });
    for (const [target, arch] of GPU_TARGETS)
      it(target, () => {
        const { out, result } = compileOps(target);
        assert.ok(result.ok);
        nvccCompileGenerated(out, ['src/model.cu'], arch);
      });
  });
});
