/**
 * Grouped and depthwise convolution through the CUDA backend, on the op models of scripts/gpu/op-models/conv.ts:
 * the optimized graph still computes what the ONNX graph computes (interpreter), every model compiles for sm90 and
 * sm80 without unsupported nodes, graph.json says which kernel ran each conv and why, the depthwise weight reaches
 * the kernel channels-innermost (computed now, or by a bind-time prepare op for graph-only models), refusals name the
 * node, and nvcc compiles the generated non-CUTLASS sources (skipped without nvcc).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { TensorValue, makeTensor, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { attrInt } from '../../../compiler/ir/graph';
import { epilogueOf } from '../../../compiler/ops/fused';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { decodeSafetensorsHeader } from '../../../compiler/backends/cuda/weights';
import { ModelSpec, buildModel } from '../../helpers/onnx-builder';
import { relativeL2 } from '../../helpers/metrics';
import { convModelSpecs, depthwiseDilated, mobilenetV2Blocks } from '../../../scripts/gpu/op-models/conv';
import { nvccCompileGenerated, requireNvcc, runHostProgram, GPU_TARGETS } from '../../helpers/nvcc';
import { groupedBlockChannels } from '../../../compiler/backends/cuda/codegen/conv-lowering';

interface GraphJsonNode {
  id: string;
  op: string;
  name: string;
  attrs?: Record<string, unknown>;
  kernel?: { library: string; name: string; reason: string; config: Record<string, unknown> };
}

function compileSpec(spec: ModelSpec, name: string, target: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gconv-'));
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  const out = path.join(dir, 'out');
  const result = compileModel(file, { out, target, maxBatch: 8 });
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  const graph = result.ok ? (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: GraphJsonNode[] }) : undefined;
  return { out, ok: result.ok, errors, convs: (graph?.nodes ?? []).filter((n) => n.op === 'conv2d') };
}

/** Weights absent (external data): the graph-only form of a spec. */
function withoutWeights(spec: ModelSpec): ModelSpec {
  return {
    ...spec,
    initializers: spec.initializers?.map((t) =>
      t.dims.length >= 1 && t.dtype === 'float32' ? { name: t.name, dtype: t.dtype, dims: t.dims, external: 'model.onnx.data' } : t,
    ),
  };
}

describe('cuda backend: grouped and depthwise convolution', function () {
  this.timeout(600_000);

  describe('the optimized graph computes what the ONNX graph computes (interpreter)', () => {
    for (const { name, spec } of convModelSpecs) {
      it(name, () => {
        const bytes = buildModel(spec());
        const original = importOnnxBytes(bytes);
        inferShapes(original.graph);
        const optimized = optimizeImported(importOnnxBytes(bytes), `${name}.onnx`, { validate: true });
        assert.deepEqual(
          optimized.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        // every grouped/depthwise ONNX conv became an NHWC conv2d that keeps its group
        const groups = original.graph.nodes.filter((n) => n.op === 'Conv').map((n) => attrInt(n, 'group', 1));
        const fused = optimized.graph.nodes.filter((n) => n.op === 'conv2d');
        assert.deepEqual(fused.map((n) => attrInt(n, 'group', 1)).sort(), [...groups].sort());
        const random = seededRandom(7);
        const inputs: TensorValue[] = original.graph.inputs.map((input) => {
          const shape = original.graph.tensor(input).shape!.map((d) => (typeof d === 'number' ? d : 2));
          const count = shape.reduce((a, b) => a * b, 1);
          return makeTensor(
            'float32',
            shape,
            Array.from({ length: count }, () => random() * 2 - 1),
          );
        });
        const expected = runGraph(original.graph, inputs);
        const actual = runGraph(optimized.graph, inputs);
        expected.forEach((e, i) => {
          assert.deepEqual(actual[i].shape, e.shape);
          const error = relativeL2(actual[i].data as Float32Array, e.data as Float32Array);
          assert.ok(error <= 1e-4, `output ${i}: relative L2 error ${error}`);
        });
      });
    }
  });

  describe('every op model compiles without unsupported nodes', () => {
    for (const { name, spec } of convModelSpecs)
      for (const target of ['cuda:sm90', 'cuda:sm80']) {
        it(`${name} ${target}`, () => {
          const { ok, errors, convs } = compileSpec(spec(), name, target);
          assert.ok(ok, errors.map((d) => d.message).join('\n'));
          assert.ok(convs.length > 0);
          for (const conv of convs) assert.ok(conv.kernel, `conv2d ${conv.name} has no kernel`);
        });
      }
  });

  it('ResNeXt block: the g=32 conv (4 channels per group) is a CUTLASS kMultipleGroup instance on both targets', () => {
    for (const target of ['cuda:sm90', 'cuda:sm80']) {
      const { out, ok, errors, convs } = compileSpec(convModelSpecs[0].spec(), 'resnext', target);
      assert.ok(ok, errors.map((d) => d.message).join('\n'));
      const grouped = convs.find((n) => n.kernel!.config.path === 'cutlass-group-conv');
      assert.ok(grouped, `convs: ${convs.map((c) => c.kernel!.name).join(', ')}`);
      assert.equal(grouped.kernel!.name, 'cutlass_tensorop_f16_s16816fprop_analytic_f16_64x32_32x4_nhwc_multiple_group_align4_bias_relu');
      assert.equal(grouped.kernel!.config.group, 32);
      assert.deepEqual(grouped.kernel!.config.epilogue, ['bias', 'relu']);
      assert.match(grouped.kernel!.reason, /3x3 grouped \(group=32\) conv .* C\/group=4, K\/group=4.*kMultipleGroup/);
      if (target === 'cuda:sm90') assert.match(grouped.kernel!.reason, /the sm90 conv collective has no group mode/);
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      // the group count reaches the instance
      assert.match(
        model,
        /const AitConvArgs conv\{static_cast<int>\(batch\), 14, 14, 128, 128, 3, 3, 14, 14,\n\s+\{1, 1, 1, 1\}, \{1, 1\}, \{1, 1\}, 32,/,
      );
      const instanceFile = (grouped.kernel!.config.instances as { file: string }[])[0].file;
      assert.match(fs.readFileSync(path.join(out, instanceFile), 'utf8'), /DefaultConv2dGroupFprop<[\s\S]*GroupMode::kMultipleGroup/);
    }
  });

  it('grouped conv + bias + residual + relu: bias fused in CUTLASS, residual and relu in an elementwise kernel from a workspace temporary', () => {
    const { out, ok, errors, convs } = compileSpec(convModelSpecs[1].spec(), 'grouped_residual', 'cuda:sm80');
    assert.ok(ok, errors.map((d) => d.message).join('\n'));
    const [conv] = convs;
    assert.match(conv.kernel!.name, /_single_group_align8_bias$/);
    assert.deepEqual(conv.kernel!.config.unfusedEpilogue, ['residual_add', 'relu']);
    assert.match(conv.kernel!.reason, /epilogue steps residual_add, relu run as an elementwise kernel/);
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    // the instance writes the workspace after CUTLASS's reserved bytes; the elementwise kernel reads it and the residual
    assert.match(
      model,
      /reinterpret_cast<__half\*>\(static_cast<uint8_t\*>\(c\.workspace\) \+ 1048576\)};\n\s+AIT_RETURN_IF_FAILED\(ait_conv_[0-9a-f]{12}/,
    );
    assert.match(model, /ew::make_chain\(ew::Input<0>\{\}, ew::AddInput<1>\{\}, ew::Relu\{\}\)/);
  });

  it('MobileNetV2 blocks: depthwise convs on the AIT kernel with relu6 fused; weights [R·S, K] in weights.safetensors', () => {
    const { out, ok, errors, convs } = compileSpec(mobilenetV2Blocks(), 'mobilenet', 'cuda:sm90');
    assert.ok(ok, errors.map((d) => d.message).join('\n'));
    const depthwise = convs.filter((n) => n.kernel!.config.path === 'depthwise');
    assert.equal(depthwise.length, 2);
    for (const conv of depthwise) {
      assert.equal(conv.kernel!.library, 'ait');
      assert.equal(conv.kernel!.name, 'ait_depthwise_conv2d_nhwc_f16');
      assert.deepEqual(conv.kernel!.config.epilogue, ['bias', 'clip:0:6']);
      assert.match(conv.kernel!.reason, /8 channels \(16 bytes\) per thread.*memory-bound: \d+ bytes and \d+ FLOPs at batch 8/);
    }
    // stride-1 block at batch 8: x 8·28·28·96, weight 9·96, output 8·28·28·96, bias 96, in fp16
    assert.equal(depthwise[0].kernel!.config.bytesAtMaxBatch, (8 * 28 * 28 * 96 * 2 + 9 * 96 + 96) * 2);
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    assert.match(
      model,
      /launch_depthwise_conv2d_nhwc\(args, ew::make_chain\(ew::Input<0>\{\}, ew::AddInput<1>\{\}, ew::Clip\{0\.0f, 6\.0f\}\), c\.stream\)/,
    );
    assert.match(model, /#include "depthwise_conv\.cuh"/);
    const header = decodeSafetensorsHeader(fs.readFileSync(path.join(out, 'weights.safetensors')));
    const prepared = [...header.tensors].filter(([name]) => name.endsWith('.rsk'));
    assert.deepEqual(
      prepared.map(([, t]) => t.shape),
      [
        [9, 96],
        [9, 96],
      ],
    );
  });

  it('depthwise weights of a graph-only model: a bind-time prepare op transposes the OHWI weight to [R·S, K] after it is made', () => {
    const { out, ok, errors } = compileSpec(withoutWeights(depthwiseDilated()), 'depthwise_graph_only', 'cuda:sm80');
    assert.ok(ok, errors.map((d) => d.message).join('\n'));
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    assert.match(model, /\{"dw5\.weight", ait::DType::kFloat16, 4, \{20, 1, 5, 5\}, ait::WeightOrigin::kBound\}/);
    const rsk = model.match(/\{"([^"]+\.rsk)", ait::DType::kFloat16, 2, \{25, 20\}, ait::WeightOrigin::kPrepared\}/);
    assert.ok(rsk, 'a prepared [25, 20] depthwise weight');
    // the transpose to [25, 20] reads the OHWI weight, whose own preparation comes first
    const prepares = model.split('const char* prepare_').slice(1);
    const ohwi = prepares.findIndex((body) => /NchwToNhwcArgs<__half> args\{[^;]*, 20, 25,\s+1, 1\};/.test(body));
    const transpose = prepares.findIndex((body) => /StridedCopyArgs<__half> args\{[^;]*, 2, \{25, 20\}, \{1, 25\}, 0\};/.test(body));
    assert.ok(ohwi >= 0 && transpose > ohwi, `prepare ops:\n${prepares.join('\n')}`);
    // multiplier 2 on 20 channels: 40 output channels, the 16-byte path with per-element input reads
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: GraphJsonNode[] };
    const names = graph.nodes.filter((n) => n.op === 'conv2d').map((n) => [n.kernel!.name, n.kernel!.config.multiplier]);
    assert.deepEqual(names, [
      ['ait_depthwise_conv2d_nhwc_f16', 1],
      ['ait_depthwise_conv2d_nhwc_f16_multiplier', 2],
    ]);
  });

  it('y = x + conv(x): the memory plan keeps the output off the conv input, so each kernel writes the arena directly', () => {
    const random = seededRandom(3);
    const values = (n: number) => Array.from({ length: n }, () => random() - 0.5);
    const conv = (name: string, x: string, w: string, y: string, group: number) => ({
      op: 'Conv',
      name,
      inputs: [x, w, 'b'],
      outputs: [y],
      attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group },
    });
    // depthwise then ungrouped (CUTLASS), each with its own input as the residual (CPVT's positional-encoding conv).
    // passes/memory-plan.ts must not place either output over that residual: other CTAs / threads still read it.
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 16, 12, 12] }],
      initializers: [
        { name: 'w_depthwise', dtype: 'float32', dims: [16, 1, 3, 3], values: values(144) },
        { name: 'w_full', dtype: 'float32', dims: [16, 16, 3, 3], values: values(2304) },
        { name: 'b', dtype: 'float32', dims: [16], values: values(16) },
      ],
      nodes: [
        { op: 'Relu', name: 'pre', inputs: ['x'], outputs: ['r'] },
        conv('peg', 'r', 'w_depthwise', 'd', 16),
        { op: 'Add', name: 'add', inputs: ['d', 'r'], outputs: ['s'] },
        { op: 'Relu', name: 'post', inputs: ['s'], outputs: ['s2'] },
        conv('full', 's2', 'w_full', 'f', 1),
        { op: 'Add', name: 'add2', inputs: ['f', 's2'], outputs: ['y'] },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 16, 12, 12] }],
    };
    const { out, ok, errors, convs } = compileSpec(spec, 'peg', 'cuda:sm80');
    assert.ok(ok, errors.map((d) => d.message).join('\n'));
    assert.deepEqual(
      convs.map((n) => n.kernel!.config.epilogue),
      [
        ['bias', 'residual_add', 'relu'],
        ['bias', 'residual_add'],
      ],
    );
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    const arena = (text: string) => text.match(/c\.arena \+ (\d+)/)?.[1];
    const depthwise = model.slice(model.indexOf('DepthwiseConv2dArgs'));
    const [, dwInput, dwOutput] = depthwise.match(/args\{([^,]+), [^,]+, ([^,]+),/)!;
    const dwResidual = depthwise.match(
      /\{([^{}]+), ([^{}]+)\},\n\s+\{ait::kernels::DepthwiseOperand::kChannel, ait::kernels::DepthwiseOperand::kFull\}/,
    )![2];
    assert.equal(arena(dwResidual), arena(dwInput), 'the residual is the depthwise input');
    assert.notEqual(arena(dwOutput), undefined, `depthwise output ${dwOutput} is not in the arena`);
    assert.notEqual(arena(dwOutput), arena(dwInput), 'the depthwise output is over its input');
    const full = model.slice(model.indexOf('const AitConvArgs conv'));
    const [, fullInput, fullResidual, fullOutput] = full.match(
      /\{static_cast<int>[^\n]*\n[^\n]*\n\s+([^,]+), [^,]+,\n\s+[^,]+, [^,]+, ([^,]+),\n\s+([^}]+)\};/,
    )!;
    assert.equal(arena(fullResidual), arena(fullInput), 'the residual is the conv input');
    assert.notEqual(arena(fullOutput), undefined, `conv output ${fullOutput} is not in the arena`);
    assert.notEqual(arena(fullOutput), arena(fullInput), 'the conv output is over its input');
    // no workspace round trip
    assert.doesNotMatch(model, /cudaMemcpyAsync/);
  });

  it("a grouped conv the CUTLASS group kernels cannot take runs on AIT's grouped kernel, saying why CUTLASS refused", () => {
    const random = seededRandom(5);
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 12, 8, 8] }],
      initializers: [{ name: 'w', dtype: 'float32', dims: [24, 3, 3, 3], values: Array.from({ length: 648 }, () => random()) }],
      nodes: [
        {
          op: 'Conv',
          name: 'odd_groups',
          inputs: ['x', 'w'],
          outputs: ['y'],
          attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 },
        },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 24, 8, 8] }],
    };
    const { ok, errors, convs } = compileSpec(spec, 'odd_groups', 'cuda:sm80');
    assert.ok(ok, errors.map((d) => d.message).join('\n'));
    const [conv] = convs;
    assert.equal(conv.kernel!.library, 'ait');
    assert.equal(conv.kernel!.name, 'ait_grouped_conv2d_nhwc_f16');
    assert.equal(conv.kernel!.config.path, 'grouped-direct');
    assert.match(String(conv.kernel!.config.cutlassRefused), /grouped conv with 3 input channels per group.*odd C\/group/);
    assert.match(conv.kernel!.reason, /grouped conv \(group=4, C\/group=3, K\/group=6, stride 1x1\) on AIT's grouped kernel/);
    // 6 outputs per group: one 8-wide block per group; K = 9 taps x 3 channels, gathered element by element
    assert.equal(conv.kernel!.config.blockChannels, 8);
    assert.match(
      conv.kernel!.reason,
      /tensor cores.*128 pixels x 8 output channels per block, K = 9 taps x 3 channels \(32 in steps of 32\), gathered element by element/,
    );
  });

  it("the tensor-core path's block width: the code generator's rule is the header's (grouped_mma_channels), for K/group 1..100", function () {
    requireNvcc(this);
    this.timeout(120_000);
    const stdout = runHostProgram(
      '#include <cstdio>\n#include "grouped_conv.cuh"\n' +
        'int main() { for (int kg = 1; kg <= 100; ++kg) std::printf("%d ", ait::kernels::grouped_mma_channels(kg)); }\n',
      'grouped_widths',
    );
    const header = stdout.trim().split(' ').map(Number);
    const ours = Array.from({ length: 100 }, (_, i) => groupedBlockChannels(i + 1));
    assert.deepEqual(ours, header);
    // RegNet's 24 per group: one 24-wide block (no padded channels); 40: two of 24; 64: two of 32
    assert.deepEqual([24, 40, 64].map(groupedBlockChannels), [24, 24, 32]);
  });

  describe('nvcc compiles the generated non-CUTLASS sources (model.cu) for sm_80 and sm_90a', function () {
    before(function () {
      requireNvcc(this);
    });
    for (const [target, arch] of GPU_TARGETS) {
      it(`${target}: MobileNetV2 blocks (depthwise kernel, relu6 elementwise) and the split grouped epilogue`, () => {
        for (const { name, spec } of [convModelSpecs[2], convModelSpecs[1]]) {
          const { out, ok } = compileSpec(spec(), name, target);
          assert.ok(ok);
          nvccCompileGenerated(out, ['src/model.cu'], arch);
        }
      });
    }
  });

  it('fused epilogues on the grouped and depthwise nodes are what fuse-conv absorbed', () => {
    const optimized = optimizeImported(importOnnxBytes(buildModel(mobilenetV2Blocks())), 'mobilenet.onnx');
    const depthwise = optimized.graph.nodes.filter((n) => n.op === 'conv2d' && attrInt(n, 'group', 1) > 1);
    assert.deepEqual(
      depthwise.map((n) => epilogueOf(n)),
      [
        ['bias', 'clip:0:6'],
        ['bias', 'clip:0:6'],
      ],
    );
  });
});
