/**
 * ConvTranspose on the CUDA backend (codegen/conv-transpose-lowering.ts, kernels/conv_transpose.cuh): the layout pass
 * makes it the NHWC conv_transpose2d and the optimized graph still computes what the ONNX graph computes
 * (interpreter); the kernels' tap enumeration, replayed here on random data (GEMM columns → col2im gather, and the
 * direct grouped kernel), gives the fused op's reference; the op models compile for sm90 and sm80 without unsupported
 * nodes, graph.json says which path ran and why, the GEMM is recorded for the measured choice like any GEMM, the
 * weight reaches the GEMM as [KH·KW·M, C] (computed now, or by a bind-time prepare op), nvcc compiles model.cu, and
 * Mask R-CNN's mask head ConvTranspose is supported.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel, optimizeImported, optimizeModel } from '../../../compiler/compile';
import { supportOf } from '../../../compiler/backends/support';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { convTransposeShapeOf, isOneTap } from '../../../compiler/backends/cuda/codegen/conv-transpose-lowering';
import { decodeSafetensorsHeader } from '../../../compiler/backends/cuda/weights';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { AttrValue, Graph, attrInt } from '../../../compiler/ir/graph';
import { TensorValue, makeTensor, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { convTransposeWeightFromOnnx, epilogueOf } from '../../../compiler/ops/fused';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { AttrSpec, ModelSpec, buildModel } from '../../helpers/onnx-builder';
import { relativeL2 } from '../../helpers/metrics';
import { nvccCompileGenerated, requireNvcc, GPU_TARGETS } from '../../helpers/nvcc';
import { attrs as irAttrs, singleNodeGraph, infer } from '../../ops/fixtures';
import { convTransposeModelSpecs, maskHead } from '../../../scripts/gpu/op-models/conv_transpose';

const MASK_RCNN = '/work/shared/models/maskrcnn_resnet50_fpn.onnx';

interface GraphJsonNode {
  id: string;
  op: string;
  name: string;
  kernel?: { library: string; name: string; reason: string; config: Record<string, unknown> };
}

function compileSpec(spec: ModelSpec, name: string, target: string, options: Record<string, unknown> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-convt-'));
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  const out = path.join(dir, 'out');
  const result = compileModel(file, { out, target, maxBatch: 8, ...options });
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  const graph = result.ok ? (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: GraphJsonNode[] }) : undefined;
  return { out, result, ok: result.ok, errors, nodes: graph?.nodes ?? [] };
}

/** Weights absent (external data): the graph-only form of a spec. */
function withoutWeights(spec: ModelSpec): ModelSpec {
  return {
    ...spec,
    initializers: spec.initializers?.map((t) =>
      t.dims.length >= 1 ? { name: t.name, dtype: t.dtype, dims: t.dims, external: 'model.onnx.data' } : t,
    ),
  };
}

/** One ConvTranspose (weight [C, M/group, kh, kw]) with bias, then Relu. */
function single(c: number, m: number, hw: [number, number], kernel: [number, number], attrs: Record<string, AttrSpec>): ModelSpec {
  const group = typeof attrs.group === 'number' ? attrs.group : 1;
  const random = seededRandom(c * 131 + m * 7 + kernel[0]);
  const values = (n: number) => Array.from({ length: n }, () => random() - 0.5);
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', c, ...hw] }],
    initializers: [
      { name: 'w', dtype: 'float32', dims: [c, m / group, ...kernel], values: values((c * m * kernel[0] * kernel[1]) / group) },
      { name: 'b', dtype: 'float32', dims: [m], values: values(m) },
    ],
    nodes: [
      { op: 'ConvTranspose', name: 'up', inputs: ['x', 'w', 'b'], outputs: ['t'], attrs: { kernel_shape: kernel, ...attrs } },
      { op: 'Relu', name: 'relu', inputs: ['t'], outputs: ['y'] },
    ],
    outputs: ['y'],
  };
}

const CONFIGS: { name: string; spec: () => ModelSpec }[] = [
  { name: 'stride 1, 3x3', spec: () => single(8, 16, [6, 5], [3, 3], {}) },
  { name: 'stride 2, 2x2 (mask head form: one tap per pixel)', spec: () => single(16, 8, [5, 4], [2, 2], { strides: [2, 2] }) },
  {
    name: 'stride 2, 3x3, pads 1, output_padding 1',
    spec: () => single(8, 8, [5, 6], [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }),
  },
  {
    name: 'stride 3x2, asymmetric pads, dilation 1x2, K odd',
    spec: () => single(6, 5, [4, 5], [3, 2], { strides: [3, 2], pads: [2, 0, 1, 2], dilations: [1, 2], output_padding: [0, 1] }),
  },
  {
    name: 'kernel < stride (pixels no tap reaches)',
    spec: () => single(8, 8, [4, 4], [2, 2], { strides: [3, 3], output_padding: [2, 1] }),
  },
  {
    name: 'groups 2 (direct kernel)',
    spec: () => single(16, 8, [5, 5], [3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], group: 2 }),
  },
  { name: 'depthwise 4x4/2 (direct kernel)', spec: () => single(6, 6, [5, 5], [4, 4], { strides: [2, 2], pads: [1, 1, 1, 1], group: 6 }) },
  { name: 'auto_pad SAME_UPPER (odd total pad)', spec: () => single(4, 8, [3, 4], [4, 3], { strides: [2, 2], auto_pad: 'SAME_UPPER' }) },
  { name: 'auto_pad SAME_LOWER', spec: () => single(4, 8, [3, 4], [4, 3], { strides: [2, 2], auto_pad: 'SAME_LOWER' }) },
  {
    name: 'output_shape (smaller and larger than the full size)',
    spec: () => single(4, 8, [3, 3], [3, 3], { strides: [2, 2], output_shape: [6, 9] }),
  },
  ...convTransposeModelSpecs,
];

function randomInputs(graph: Graph, seed: number): TensorValue[] {
  const random = seededRandom(seed);
  return graph.inputs.map((input) => {
    const shape = graph.tensor(input).shape!.map((d) => (typeof d === 'number' ? d : 2));
    return makeTensor(
      'float32',
      shape,
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1),
    );
  });
}

describe('cuda backend: ConvTranspose', function () {
  this.timeout(600_000);

  describe('the optimized graph (conv_transpose2d, NHWC) computes what the ONNX graph computes (interpreter)', () => {
    for (const { name, spec } of CONFIGS)
      it(name, () => {
        const bytes = buildModel(spec());
        const original = importOnnxBytes(bytes);
        inferShapes(original.graph);
        const optimized = optimizeImported(importOnnxBytes(bytes), 'case.onnx', { validate: true });
        assert.deepEqual(
          optimized.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        const onnx = original.graph.nodes.filter((n) => n.op === 'ConvTranspose');
        const fused = optimized.graph.nodes.filter((n) => n.op === 'conv_transpose2d');
        assert.equal(fused.length, onnx.length, 'every ConvTranspose became conv_transpose2d');
        assert.ok(!optimized.graph.nodes.some((n) => n.op === 'ConvTranspose'));
        const inputs = randomInputs(original.graph, 7);
        const expected = runGraph(original.graph, inputs);
        const actual = runGraph(optimized.graph, inputs);
        expected.forEach((e, i) => {
          assert.deepEqual(actual[i].shape, e.shape);
          const error = relativeL2(actual[i].data as Float32Array, e.data as Float32Array);
          assert.ok(error <= 1e-5, `output ${i}: relative L2 error ${error}`);
        });
      });

    it('the bias and a following Relu are fused into the epilogue; a residual add and its Relu too', () => {
      const head = optimizeImported(importOnnxBytes(buildModel(maskHead())), 'mask_head.onnx');
      const [up] = head.graph.nodes.filter((n) => n.op === 'conv_transpose2d');
      assert.deepEqual(epilogueOf(up), ['bias', 'relu']);
      assert.deepEqual(up.sourceNodes, ['conv5_mask', 'relu5']);
      // cost: every input pixel times every tap, N·14·14 · 256 · 2·2·256 multiply-adds, and the 2 epilogue steps
      const b = up.cost!.batch;
      assert.equal(up.cost!.flops, 2 * b * 14 * 14 * 256 * 2 * 2 * 256 + 2 * b * 28 * 28 * 256);
      const overlap = optimizeImported(importOnnxBytes(buildModel(convTransposeModelSpecs[1].spec())), 'overlap.onnx');
      assert.deepEqual(overlap.graph.nodes.filter((n) => n.op === 'conv_transpose2d').map(epilogueOf), [
        ['bias'],
        ['residual_add', 'relu'],
      ]);
      // no layout transposes are left between the convolutions of the mask head
      assert.deepEqual(
        head.graph.nodes.filter((n) => n.op === 'Transpose' && !n.inputs.some((i) => head.graph.lookupTensor(i)?.kind === 'param')).length,
        2,
        'only the model input and output transposes',
      );
    });
  });

  describe("the kernels' index math, replayed on random data, gives the fused op's reference", () => {
    /** for_each_transposed_tap of conv_transpose.cuh: (tap, input index) pairs reaching output coordinate o. */
    function taps(o: number, inSize: number, kernel: number, stride: number, pad: number, dilation: number, oneTap: boolean) {
      const shifted = o + pad;
      const found: [number, number][] = [];
      if (oneTap) {
        const i = Math.trunc(shifted / stride);
        const remainder = shifted - i * stride;
        if (i < inSize && remainder % dilation === 0 && remainder / dilation < kernel) found.push([remainder / dilation, i]);
        return found;
      }
      for (let t = 0; t < kernel; t++) {
        const at = shifted - t * dilation;
        if (at < 0) break;
        const i = Math.trunc(at / stride);
        if (i * stride === at && i < inSize) found.push([t, i]);
      }
      return found;
    }

    /** conv_transpose2d's reference with its epilogue on x (NHWC), w ([KH, KW, M, C/group]) and the bias. */
    function fusedReference(attrs: Record<string, AttrValue>, x: TensorValue, w: TensorValue, b: TensorValue) {
      const graph = singleNodeGraph(
        'conv_transpose2d',
        [
          { name: 'x', shape: x.shape },
          { name: 'w', shape: w.shape, value: w },
          { name: 'b', shape: b.shape, value: b },
        ],
        { domain: 'ait', attrs },
      );
      infer(graph);
      return { graph, y: runGraph(graph, [x])[0] };
    }

    const epilogue = (acc: number, bias: number) => Math.max(acc + bias, 0);

    const cases: {
      name: string;
      c: number;
      m: number;
      hw: [number, number];
      kernel: [number, number];
      attrs: Record<string, number[] | number>;
    }[] = [
      { name: '2x2 stride 2 (one tap)', c: 8, m: 16, hw: [5, 6], kernel: [2, 2], attrs: { strides: [2, 2] } },
      {
        name: '3x3 stride 2, pads, output padding',
        c: 8,
        m: 8,
        hw: [5, 4],
        kernel: [3, 3],
        attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] },
      },
      { name: '4x4 stride 2, pads 1', c: 4, m: 6, hw: [4, 5], kernel: [4, 4], attrs: { strides: [2, 2], pads: [1, 1, 1, 1] } },
      {
        name: 'stride 3x2, dilation 1x2, asymmetric pads',
        c: 6,
        m: 5,
        hw: [4, 5],
        kernel: [3, 2],
        attrs: { strides: [3, 2], pads: [2, 0, 1, 2], dilations: [1, 2], output_padding: [0, 1] },
      },
      {
        name: '2x2 stride 3, dilation 2 (one tap, gaps)',
        c: 4,
        m: 4,
        hw: [3, 4],
        kernel: [2, 2],
        attrs: { strides: [3, 3], dilations: [2, 2], output_padding: [2, 0] },
      },
      { name: 'stride 1, 3x3, pads 1', c: 5, m: 7, hw: [4, 4], kernel: [3, 3], attrs: { pads: [1, 1, 1, 1] } },
      { name: 'grouped (3 groups)', c: 9, m: 6, hw: [4, 3], kernel: [3, 3], attrs: { strides: [2, 2], pads: [1, 0, 1, 0], group: 3 } },
      { name: 'depthwise 4x4/2', c: 4, m: 4, hw: [3, 3], kernel: [4, 4], attrs: { strides: [2, 2], pads: [1, 1, 1, 1], group: 4 } },
    ];
    for (const t of cases)
      it(t.name, () => {
        const group = typeof t.attrs.group === 'number' ? t.attrs.group : 1;
        const cg = t.c / group;
        const n = 2;
        const x = makeTensor('float32', [n, ...t.hw, t.c], randomValues(n * t.hw[0] * t.hw[1] * t.c, 1));
        const onnxWeight = makeTensor(
          'float32',
          [t.c, t.m / group, ...t.kernel],
          randomValues((t.c * t.m * t.kernel[0] * t.kernel[1]) / group, 2),
        );
        const w = convTransposeWeightFromOnnx(onnxWeight);
        const b = makeTensor('float32', [t.m], randomValues(t.m, 3));
        const attrs = irAttrs({
          strides: [1, 1],
          pads: [0, 0, 0, 0],
          dilations: [1, 1],
          output_padding: [0, 0],
          group: 1,
          ...t.attrs,
        });
        attrs.epilogue = { type: 'strings', value: ['bias', 'relu'] };
        const { graph, y } = fusedReference(attrs, x, w, b);
        // the sizes and window the lowering passes to the kernels
        const s = convTransposeShapeOf(CodegenContext.forChecks(graph), graph.nodes[0]);
        assert.deepEqual([s.p, s.q, s.k], y.shape.slice(1));
        const [kh, kw, m] = [s.kh, s.kw, s.k];
        const xd = x.data as Float32Array;
        const wd = w.data as Float32Array;
        const bd = b.data as Float32Array;
        const out = new Float64Array(n * s.p * s.q * m);
        const oneTap = isOneTap(s);
        const pixelTaps = (oh: number, ow: number, one: boolean) =>
          taps(oh, s.h, kh, s.strides[0], s.pads[0], s.dilations[0], one).flatMap(([r, ih]) =>
            taps(ow, s.w, kw, s.strides[1], s.pads[1], s.dilations[1], one).map(([sx, iw]) => [r, ih, sx, iw]),
          );
        if (group === 1) {
          // the GEMM the generated code issues: columns[N·H·W, KH·KW·M] = x[N·H·W, C] · W[KH·KW·M, C]ᵀ
          const rows = n * s.h * s.w;
          const columns = new Float64Array(rows * kh * kw * m);
          for (let row = 0; row < rows; row++)
            for (let j = 0; j < kh * kw * m; j++) {
              let acc = 0;
              for (let c = 0; c < s.c; c++) acc += xd[row * s.c + c] * wd[j * s.c + c];
              columns[row * kh * kw * m + j] = acc;
            }
          // col2im: each output pixel sums its taps' column entries, then the epilogue
          for (let img = 0; img < n; img++)
            for (let oh = 0; oh < s.p; oh++)
              for (let ow = 0; ow < s.q; ow++) {
                const found = pixelTaps(oh, ow, oneTap);
                if (oneTap) assert.deepEqual(found, pixelTaps(oh, ow, false), `one-tap lookup at (${oh}, ${ow})`);
                for (let ch = 0; ch < m; ch++) {
                  let acc = 0;
                  for (const [r, ih, sx, iw] of found) acc += columns[((((img * s.h + ih) * s.w + iw) * kh + r) * kw + sx) * m + ch];
                  out[((img * s.p + oh) * s.q + ow) * m + ch] = epilogue(acc, bd[ch]);
                }
              }
        } else {
          // the direct kernel: per output element, its taps × its group's input channels
          const mg = m / group;
          for (let img = 0; img < n; img++)
            for (let oh = 0; oh < s.p; oh++)
              for (let ow = 0; ow < s.q; ow++)
                for (let ch = 0; ch < m; ch++) {
                  const g = Math.floor(ch / mg);
                  let acc = 0;
                  for (const [r, ih, sx, iw] of pixelTaps(oh, ow, false))
                    for (let ci = 0; ci < cg; ci++)
                      acc +=
                        xd[((img * s.h + ih) * s.w + iw) * s.c + g * cg + ci] * wd[((r * kw + sx) * mg + (ch % mg)) * s.c + g * cg + ci];
                  out[((img * s.p + oh) * s.q + ow) * m + ch] = epilogue(acc, bd[ch]);
                }
        }
        const error = relativeL2(out, y.data as Float32Array);
        assert.ok(error <= 1e-5, `relative L2 error ${error}`);
      });

    function randomValues(count: number, seed: number): number[] {
      const random = seededRandom(seed);
      return Array.from({ length: count }, () => random() * 2 - 1);
    }
  });

  describe('every op model compiles for sm90 and sm80 without unsupported nodes', () => {
    for (const { name, spec } of convTransposeModelSpecs)
      for (const target of ['cuda:sm90', 'cuda:sm80'])
        it(`${name} ${target}`, () => {
          const { ok, errors, nodes } = compileSpec(spec(), name, target);
          assert.ok(ok, errors.map((d) => d.message).join('\n'));
          const ups = nodes.filter((n) => n.op === 'conv_transpose2d');
          assert.ok(ups.length > 0);
          for (const up of ups) assert.ok(up.kernel, `conv_transpose2d ${up.name} has no kernel`);
        });
  });

  it("Mask R-CNN's mask head form: one GEMM [N·14·14, 256] × [256, 1024] into the workspace, then the scatter with bias + relu", () => {
    for (const target of ['cuda:sm90', 'cuda:sm80']) {
      const { out, ok, errors, nodes } = compileSpec(maskHead(), 'mask_head', target);
      assert.ok(ok, errors.map((d) => d.message).join('\n'));
      const [up] = nodes.filter((n) => n.op === 'conv_transpose2d');
      const kernel = up.kernel!;
      assert.equal(kernel.library, 'cutlass');
      assert.match(kernel.name, target === 'cuda:sm90' ? /^cutlass3x_sm90_.*_nobias_identity$/ : /^cutlass_tensorop_.*_nobias_identity$/);
      assert.equal(kernel.config.path, 'gemm+scatter');
      assert.equal(kernel.config.gatherKernel, 'ait_conv_transpose2d_col2im_nhwc_f16_one_tap');
      assert.deepEqual(kernel.config.epilogue, ['bias', 'relu']);
      assert.equal(kernel.config.columnsBytesAtMaxBatch, 8 * 14 * 14 * 4 * 256 * 2);
      assert.match(
        kernel.reason,
        /^2x2 transposed conv \(stride 2x2, pads 0,0,0,0, dilation 1x1, C=256, K=256\) as a GEMM \[N·H·W=N·14·14, C=256\] × \[C, KH·KW·K=1024\] into the workspace, then the scatter of its taps \(one per output pixel: each stride window holds every tap\) with the epilogue \[bias, relu\] fused; batch 1\.\./,
      );
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      const launch = model.slice(model.indexOf("conv_transpose2d 'conv5_mask'"));
      // M from the run's batch, N = 2·2·256, K = 256; D is the workspace after CUTLASS's bytes, which col2im reads
      assert.match(
        launch,
        /const AitGemmArgs gemm\{static_cast<int>\(196 \* batch\), 1024, 256, [^,]+, static_cast<const __half\*>\(c\.weights\[\d+\]\),\n\s+nullptr, nullptr, reinterpret_cast<__half\*>\(static_cast<uint8_t\*>\(c\.workspace\) \+ (\d+)\)\};/,
      );
      const offset = launch.match(/c\.workspace\) \+ (\d+)\)\};/)![1];
      assert.match(
        launch,
        new RegExp(
          `ConvTransposeCol2imArgs<__half, 1> args\\{reinterpret_cast<__half\\*>\\(static_cast<uint8_t\\*>\\(c\\.workspace\\) \\+ ${offset}\\), [^\\n]+\\n\\s+\\{static_cast<const __half\\*>\\(c\\.weights\\[\\d+\\]\\)\\},\\n\\s+\\{ait::kernels::ConvTransposeOperand::kChannel\\},\\n\\s+256, \\{batch, 14, 14, 28, 28, 2, 2, 2, 2, 0, 0, 1, 1\\}\\};`,
        ),
      );
      assert.match(
        launch,
        /launch_conv_transpose2d_col2im_nhwc\(args, ew::make_chain\(ew::Input<0>\{\}, ew::AddInput<1>\{\}, ew::Relu\{\}\), c\.stream\)/,
      );
      assert.match(model, /#include "conv_transpose\.cuh"/);
      // the weight as the GEMM's B: [KH, KW, M, C] = [KH·KW·M, C] row-major, computed at compile time
      const header = decodeSafetensorsHeader(fs.readFileSync(path.join(out, 'weights.safetensors')));
      const prepared = [...header.tensors].filter(([name]) => name.startsWith('conv5.weight'));
      assert.deepEqual(
        prepared.map(([, t]) => t.shape),
        [[2, 2, 256, 256]],
      );
    }
  });

  it('overlapping taps: the col2im path, a residual operand read in full; a grouped ConvTranspose: the direct kernel', () => {
    const overlap = compileSpec(convTransposeModelSpecs[1].spec(), 'overlap', 'cuda:sm90');
    assert.ok(overlap.ok, overlap.errors.map((d) => d.message).join('\n'));
    const ups = overlap.nodes.filter((n) => n.op === 'conv_transpose2d');
    assert.deepEqual(
      ups.map((n) => [n.kernel!.config.path, n.kernel!.config.gatherKernel, n.kernel!.config.epilogue]),
      [
        ['gemm+col2im', 'ait_conv_transpose2d_col2im_nhwc_f16', ['bias']],
        ['gemm+col2im', 'ait_conv_transpose2d_col2im_nhwc_f16', ['residual_add', 'relu']],
      ],
    );
    assert.match(ups[0].kernel!.reason, /the col2im gather of each output pixel's overlapping taps with the epilogue \[bias\] fused/);
    const model = fs.readFileSync(path.join(overlap.out, 'src/model.cu'), 'utf8');
    assert.match(model, /\{ait::kernels::ConvTransposeOperand::kFull\},\n\s+24, \{batch, 18, 14, 36, 28, 4, 4, 2, 2, 1, 1, 1, 1\}\};/);
    assert.match(model, /\{batch, 9, 7, 18, 14, 3, 3, 2, 2, 1, 1, 1, 1\}\};/);

    const grouped = compileSpec(convTransposeModelSpecs[3].spec(), 'grouped', 'cuda:sm80');
    assert.ok(grouped.ok, grouped.errors.map((d) => d.message).join('\n'));
    const direct = grouped.nodes.filter((n) => n.op === 'conv_transpose2d');
    assert.deepEqual(
      direct.map((n) => [n.kernel!.library, n.kernel!.name, n.kernel!.config.path, n.kernel!.config.group, n.kernel!.config.epilogue]),
      [
        ['ait', 'ait_conv_transpose2d_direct_nhwc_f16_vec', 'direct', 4, ['bias', 'relu']],
        ['ait', 'ait_conv_transpose2d_direct_nhwc_f16', 'direct', 24, []],
      ],
    );
    assert.match(
      direct[0].kernel!.reason,
      /group 4, C=32, K=24\) as a direct NHWC kernel .* its group's 8 input channels \(16-byte vectors\)/,
    );
    const groupedModel = fs.readFileSync(path.join(grouped.out, 'src/model.cu'), 'utf8');
    assert.match(groupedModel, /32, 24, 4, \{batch, 8, 8, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1\}\};/);
    assert.match(groupedModel, /24, 24, 24, \{batch, 16, 16, 32, 32, 4, 4, 2, 2, 1, 1, 1, 1\}\};/);
    // the grouped weights [KH, KW, M/group, C] from ONNX [C, M/group, KH, KW], computed at compile time
    const header = decodeSafetensorsHeader(fs.readFileSync(path.join(grouped.out, 'weights.safetensors')));
    assert.deepEqual(
      [...header.tensors].filter(([name]) => /^(g|dw)\.weight/.test(name)).map(([, t]) => t.shape),
      [
        [3, 3, 6, 32],
        [4, 4, 1, 24],
      ],
    );
  });

  it('a graph-only model: a bind-time prepare op makes the [KH, KW, M/group, C] weight (one strided copy, any group)', () => {
    const { out, ok, errors } = compileSpec(withoutWeights(convTransposeModelSpecs[3].spec()), 'grouped_graph_only', 'cuda:sm80');
    assert.ok(ok, errors.map((d) => d.message).join('\n'));
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    assert.match(model, /\{"g\.weight", ait::DType::kFloat16, 4, \{32, 6, 3, 3\}, ait::WeightOrigin::kBound\}/);
    assert.match(model, /\{"g\.weight_rskc", ait::DType::kFloat16, 4, \{3, 3, 6, 32\}, ait::WeightOrigin::kPrepared\}/);
    // [C, M/G, KH, KW] = [32, 6, 3, 3] read as [KH, KW, M/G, C]: strides (3, 1, 9, 54)
    assert.match(model, /StridedCopyArgs<__half> args\{[^;]*, 4,\s+\{3, 3, 6, 32\},\s+\{3, 1, 9, 54\}, 0\};/);
    assert.doesNotMatch(model, /cudaMemcpyAsync/);
    const mask = compileSpec(withoutWeights(maskHead()), 'mask_graph_only', 'cuda:sm90');
    assert.ok(mask.ok, mask.errors.map((d) => d.message).join('\n'));
    const maskModel = fs.readFileSync(path.join(mask.out, 'src/model.cu'), 'utf8');
    // [C, M, KH, KW] = [256, 256, 2, 2] read as [KH, KW, M, C]: strides (2, 1, 4, 1024)
    assert.match(maskModel, /StridedCopyArgs<__half> args\{[^;]*, 4,\s+\{2, 2, 256, 256\},\s+\{2, 1, 4, 1024\}, 0\};/);
  });

  it('the GEMM is recorded for the measured choice like any GEMM (profile table signature)', () => {
    const { result, ok, errors } = compileSpec(maskHead(), 'mask_head_profile', 'cuda:sm90', { profileSources: 'all' });
    assert.ok(ok, errors.map((d) => d.message).join('\n'));
    const table = fs.readFileSync(path.join(result.outDir, 'profile', 'src', 'profile_table.cu'), 'utf8');
    assert.match(table, /\{"gemm sm90 cutlass3x m=196\*b n=1024 k=256 epilogue=none", kAitProfileGemm/);
  });

  it('a ConvTranspose the layout pass cannot make NHWC is refused by name with the reason', () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 4, 'L'] }],
      initializers: [{ name: 'w', dtype: 'float32', dims: [4, 2, 3], values: Array.from({ length: 24 }, (_, i) => i / 24) }],
      nodes: [{ op: 'ConvTranspose', name: 'up1d', inputs: ['x', 'w'], outputs: ['y'], attrs: { strides: [2] } }],
      outputs: ['y'],
    };
    const optimized = optimizeImported(importOnnxBytes(buildModel(spec)), 'up1d.onnx');
    const node = optimized.graph.nodes.find((n) => n.op === 'ConvTranspose')!;
    // a 1-D one is lifted to 2-D (H = 1); its length is symbolic, which the NHWC form does not take
    assert.equal(optimized.graph.lookupTensor(node.inputs[0])?.shape?.length, 4);
    assert.deepEqual(supportOf(optimized.graph, node, 'cuda:sm90'), {
      supported: false,
      reason: 'ConvTranspose with symbolic spatial or channel dims',
    });
    const symbolic = single(4, 4, [4, 4], [2, 2], { strides: [2, 2] });
    symbolic.inputs[0].dims = ['B', 4, 'H', 4];
    const sym = optimizeImported(importOnnxBytes(buildModel(symbolic)), 'sym.onnx');
    const up = sym.graph.nodes.find((n) => n.op === 'ConvTranspose')!;
    assert.equal(supportOf(sym.graph, up, 'cuda:sm90').reason, 'ConvTranspose with symbolic spatial or channel dims');
  });

  describe('nvcc compiles the generated non-CUTLASS sources (model.cu) for sm_80 and sm_90a', function () {
    before(function () {
      requireNvcc(this);
    });
    for (const [target, arch] of GPU_TARGETS)
      it(`${target}: the four op models (scatter, col2im with a residual, odd K, grouped/depthwise direct)`, () => {
        for (const { name, spec } of convTransposeModelSpecs) {
          const { out, ok } = compileSpec(spec(), name, target);
          assert.ok(ok);
          nvccCompileGenerated(out, ['src/model.cu'], arch);
        }
      });
  });

  describe("Mask R-CNN (torchvision): the mask head's ConvTranspose", function () {
    before(function () {
      if (!fs.existsSync(MASK_RCNN)) this.skip();
    });
    it('becomes conv_transpose2d with bias + relu fused, the one-tap form, supported on sm90 and sm80', () => {
      const { graph } = optimizeModel(MASK_RCNN);
      assert.ok(!graph.nodes.some((n) => n.op === 'ConvTranspose'));
      const ups = graph.nodes.filter((n) => n.op === 'conv_transpose2d');
      assert.equal(ups.length, 1);
      const [up] = ups;
      assert.deepEqual(epilogueOf(up), ['bias', 'relu']);
      assert.equal(attrInt(up, 'group', 1), 1);
      const s = convTransposeShapeOf(CodegenContext.forChecks(graph), up);
      assert.deepEqual([s.h, s.w, s.c, s.k, s.kh, s.kw, s.p, s.q], [14, 14, 256, 256, 2, 2, 28, 28]);
      assert.ok(isOneTap(s));
      for (const target of ['cuda:sm90', 'cuda:sm80']) assert.deepEqual(supportOf(graph, up, target), { supported: true });
    });
  });
});
