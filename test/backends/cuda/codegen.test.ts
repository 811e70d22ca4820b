/**
 * CUDA code generation on small models built in the test (no GPU): the generated text against golden files, the
 * kernel choice recorded in graph.json, weights written (present) or prepared at bind time (absent), the Makefile's
 * CUTLASS_DIR check, and nvcc compiling the generated non-CUTLASS sources (model.cu, runtime, ait_bench) for sm_80
 * and sm_90 (skipped with a message without nvcc). AIT_TEST_CUTLASS_MODELS=1 also builds ResNet-50 and ViT-B/16
 * completely with CUTLASS (needs CUTLASS_DIR or .deps/cutlass; tens of minutes on 2 cores).
 * AIT_UPDATE_GOLDEN=1 rewrites the golden files.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../../compiler/compile';
import { decodeSafetensorsHeader } from '../../../compiler/backends/cuda/weights';
import { ModelSpec, buildModel } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated, requireNvcc, GPU_TARGETS, gencodeOf } from '../../helpers/nvcc';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const GOLDEN = path.join(__dirname, 'golden');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ait-codegen-'));

function values(count: number, seed: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.sin(i * 0.37 + seed) * 0.1);
}

/** x [B,3,8,8] → Conv 3x3 (8, pad 1) + bias → Relu → GlobalAveragePool → Flatten → Gemm (trans_b) + bias → Softmax. */
function smallCnn(weights: 'present' | 'absent'): ModelSpec {
  const data = (name: string, dims: number[], seed: number) =>
    weights === 'present'
      ? {
          name,
          dtype: 'float32' as const,
          dims,
          values: values(
            dims.reduce((a, b) => a * b, 1),
            seed,
          ),
        }
      : { name, dtype: 'float32' as const, dims, external: 'model.onnx.data' };
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, 8, 8] }],
    initializers: [
      data('conv.weight', [8, 3, 3, 3], 1),
      data('conv.bias', [8], 2),
      data('fc.weight', [16, 8], 3),
      data('fc.bias', [16], 4),
    ],
    nodes: [
      {
        op: 'Conv',
        name: 'conv',
        inputs: ['x', 'conv.weight', 'conv.bias'],
        outputs: ['c'],
        attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] },
      },
      { op: 'Relu', name: 'relu', inputs: ['c'], outputs: ['r'] },
      { op: 'GlobalAveragePool', name: 'pool', inputs: ['r'], outputs: ['p'] },
      { op: 'Flatten', name: 'flatten', inputs: ['p'], outputs: ['f'] },
      { op: 'Gemm', name: 'fc', inputs: ['f', 'fc.weight', 'fc.bias'], outputs: ['y0'], attrs: { transB: 1 } },
      { op: 'Softmax', name: 'softmax', inputs: ['y0'], outputs: ['y'], attrs: { axis: -1 } },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 16] }],
  };
}

/** x [B,16,56,56] → Conv 3x3 (16, pad 1) + bias → activation; weights absent (bound by name at run time). */
function wideConv(activation: 'Relu' | 'LeakyRelu'): ModelSpec {
  const ext = (name: string, dims: number[]) => ({ name, dtype: 'float32' as const, dims, external: 'model.onnx.data' });
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 16, 56, 56] }],
    initializers: [ext('conv.weight', [16, 16, 3, 3]), ext('conv.bias', [16])],
    nodes: [
      {
        op: 'Conv',
        name: 'conv',
        inputs: ['x', 'conv.weight', 'conv.bias'],
        outputs: ['c'],
        attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] },
      },
      { op: activation, name: 'act', inputs: ['c'], outputs: ['y'], attrs: activation === 'LeakyRelu' ? { alpha: 0.2 } : {} },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 16, 56, 56] }],
  };
}

/** x [B,4,32] → LayerNorm → MatMul with a [32,32] weight (→ transposed for CUTLASS) + bias (+ x) → Relu. Weights absent. */
function smallMlp(residual = false): ModelSpec {
  const ext = (name: string, dims: number[]) => ({ name, dtype: 'float32' as const, dims, external: 'model.onnx.data' });
  return {
    opset: 17,
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 4, 32] }],
    initializers: [ext('ln.weight', [32]), ext('ln.bias', [32]), ext('w', [32, 32]), ext('b', [32])],
    nodes: [
      { op: 'LayerNormalization', name: 'ln', inputs: ['x', 'ln.weight', 'ln.bias'], outputs: ['n'], attrs: { axis: -1, epsilon: 1e-5 } },
      { op: 'MatMul', name: 'mm', inputs: ['n', 'w'], outputs: ['m'] },
      { op: 'Add', name: 'add', inputs: ['m', 'b'], outputs: ['a'] },
      ...(residual ? [{ op: 'Add', name: 'residual', inputs: ['a', 'x'], outputs: ['a2'] }] : []),
      { op: 'Relu', name: 'act', inputs: [residual ? 'a2' : 'a'], outputs: ['y'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 4, 32] }],
  };
}

/** x [B,3,4k,4k] → Conv k×k stride k (16 channels, a ViT patch embedding) + bias → Relu. Weights present. */
function patchEmbedding(kernel = 8): ModelSpec {
  const size = 4 * kernel;
  const data = (name: string, dims: number[], seed: number) => ({
    name,
    dtype: 'float32' as const,
    dims,
    values: values(
      dims.reduce((a, b) => a * b, 1),
      seed,
    ),
  });
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, size, size] }],
    initializers: [data('patch.weight', [16, 3, kernel, kernel], 1), data('patch.bias', [16], 2)],
    nodes: [
      {
        op: 'Conv',
        name: 'patch',
        inputs: ['x', 'patch.weight', 'patch.bias'],
        outputs: ['c'],
        attrs: { kernel_shape: [kernel, kernel], strides: [kernel, kernel] },
      },
      { op: 'Relu', name: 'relu', inputs: ['c'], outputs: ['y'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 16, 4, 4] }],
  };
}

function compileSpec(spec: ModelSpec, name: string, target: string, maxBatch = 8): { out: string; ok: boolean; diagnostics: string[] } {
  const dir = tmp();
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  const out = path.join(dir, 'out');
  const r = compileModel(file, { out, target, maxBatch });
  return { out, ok: r.ok, diagnostics: r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message) };
}

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.AIT_UPDATE_GOLDEN === '1' || !fs.existsSync(file)) fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs from its golden file (AIT_UPDATE_GOLDEN=1 to accept)`);
}

describe('cuda codegen', () => {
  it('small CNN (weights present, sm90): golden model.cu and CUTLASS instances, kernels in graph.json, weights.safetensors', () => {
    const { out, ok, diagnostics } = compileSpec(smallCnn('present'), 'small_cnn', 'cuda:sm90');
    assert.ok(ok, diagnostics.join('\n'));
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    golden('codegen_small_cnn_sm90_model.cu', model);
    const instances = fs.readdirSync(path.join(out, 'src')).filter((f) => /^(gemm|conv)_\d+\.cu$/.test(f));
    // conv (bias+relu, C=3 padded to 8 by the input transpose): one sm90 conv instance; fc (bias): one GEMM instance
    assert.deepEqual(instances.sort(), ['conv_0.cu', 'gemm_0.cu']);
    assert.match(model, /AIT_RETURN_IF_FAILED\(ait_conv_[0-9a-f]{12}\(conv, c\.workspace, 1048576, c\.stream\)\);/);
    const conv0 = fs.readFileSync(path.join(out, 'src/conv_0.cu'), 'utf8');
    golden('codegen_small_cnn_sm90_conv_0.cu', conv0);
    assert.ok(!/#include "cutlass/.test(fs.readFileSync(path.join(out, 'src/ait_conv.h'), 'utf8')), 'ait_conv.h is CUTLASS-free');
    assert.match(fs.readFileSync(path.join(out, 'Makefile'), 'utf8'), /CUTLASS_SOURCES := src\/gemm_0\.cu src\/conv_0\.cu/);
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const conv = graph.nodes.find((n: { op: string }) => n.op === 'conv2d');
    assert.equal(conv.kernel.library, 'cutlass');
    assert.equal(conv.kernel.config.path, 'cutlass-conv');
    assert.deepEqual(conv.kernel.config.epilogue, ['bias', 'relu']);
    assert.equal(
      conv.kernel.name,
      'cutlass3x_sm90_tensorop_fprop_f16_f16_f32_void_f16_64x128x64_1x1x1_0_nhwc_align8_warpspecialized_epi_tma_bias_relu',
    );
    assert.match(conv.kernel.reason, /3x3 conv \(stride 1x1, C=8, K=8\) as a CUTLASS implicit-GEMM conv/);
    // the model input NCHW → NHWC writes C=3 padded to 8 with zeros (pad-channels pass)
    const toNhwc = graph.nodes.find((n: { op: string }) => n.op === 'transpose_pad');
    assert.equal(toNhwc.kernel.name, 'ait_nchw_to_nhwc_pad_f16');
    assert.match(model, /NchwToNhwcArgs<__half> args\{static_cast<const __half\*>\(c\.inputs\[0\]\), [^,]+, batch, 64,\s+3, 8\};/);
    const line = model.split('\n')[conv.kernel.source.line - 1];
    assert.ok(line.startsWith(`  // graph.json ${conv.id}: conv2d`), `kernel.source.line points at '${line}'`);
    const softmax = graph.nodes.find((n: { op: string }) => n.op === 'Softmax');
    assert.equal(softmax.kernel.name, 'ait_softmax_f16');
    // weights: the OHWI conv weight with zero input channels 3..7 (padded at compile time) and the fc weight, fp16, no prepare ops
    const header = decodeSafetensorsHeader(fs.readFileSync(path.join(out, 'weights.safetensors')));
    assert.ok(![...header.tensors.keys()].some((name) => name.includes('.kpad')), `tensors: ${[...header.tensors.keys()].join(', ')}`);
    const convWeight = [...header.tensors].find(([, t]) => t.shape.length === 4);
    assert.deepEqual(convWeight![1].shape, [8, 3, 3, 8]);
    assert.equal(convWeight![1].dtype, 'F16');
    assert.match(model, /kPrepareOps = nullptr/);
  });

  it('conv instances by batch range: the heuristic follows N·P·Q (64x128 tiles up to batch 5, 128x64 from 6)', () => {
    const { out, ok, diagnostics } = compileSpec(wideConv('Relu'), 'wide_conv', 'cuda:sm90');
    assert.ok(ok, diagnostics.join('\n'));
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    assert.match(
      model,
      /if \(batch <= 5\) \{\n\s+AIT_RETURN_IF_FAILED\(ait_conv_[0-9a-f]{12}\(conv, c\.workspace, 1048576, c\.stream\)\);\n\s+\} else \{\n\s+AIT_RETURN_IF_FAILED\(ait_conv_[0-9a-f]{12}/,
    );
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const conv = graph.nodes.find((n: { op: string }) => n.op === 'conv2d');
    assert.deepEqual(
      conv.kernel.config.instances.map((i: { batches: number[]; file: string }) => [i.batches, i.file]),
      [
        [[1, 5], 'src/conv_0.cu'],
        [[6, 8], 'src/conv_1.cu'],
      ],
    );
    assert.match(
      fs.readFileSync(path.join(out, 'src/conv_0.cu'), 'utf8'),
      /struct cutlass3x_sm90_tensorop_fprop_\w+_64x128x64_\w+_bias_relu \{/,
    );
    assert.match(
      fs.readFileSync(path.join(out, 'src/conv_1.cu'), 'utf8'),
      /struct cutlass3x_sm90_tensorop_fprop_\w+_128x64x64_\w+_bias_relu \{/,
    );
  });

  it('conv fallback: an epilogue the conv emitters refuse (leaky_relu) goes through im2col + GEMM, recorded in graph.json', () => {
    const { out, ok, diagnostics } = compileSpec(wideConv('LeakyRelu'), 'wide_conv_leaky', 'cuda:sm90');
    assert.ok(ok, diagnostics.join('\n'));
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const conv = graph.nodes.find((n: { op: string }) => n.op === 'conv2d');
    assert.equal(conv.kernel.config.path, 'im2col+gemm');
    assert.match(conv.kernel.config.convRefused, /leaky_relu:0\.2.* has no CUTLASS epilogue/);
    assert.match(conv.kernel.reason, /^CUTLASS conv refused .* so 3x3 conv .* as im2col \+ GEMM/);
    assert.match(conv.kernel.name, /^cutlass3x_sm90_tensorop_gemm_/);
    assert.deepEqual(
      fs.readdirSync(path.join(out, 'src')).filter((f) => /^conv_\d+\.cu$/.test(f)),
      [],
    );
  });

  for (const target of ['cuda:sm90', 'cuda:sm80']) {
    it(`${target}: a patchify conv (stride = kernel, no padding) runs as a patchify copy + one GEMM with K = R·S·C, unpadded`, function () {
      this.timeout(600_000);
      const { out, ok, diagnostics } = compileSpec(patchEmbedding(), 'patch_embedding', target);
      assert.ok(ok, diagnostics.join('\n'));
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
      const conv = graph.nodes.find((n: { op: string }) => n.op === 'conv2d');
      assert.equal(conv.kernel.config.path, 'patchify+gemm');
      assert.match(conv.kernel.reason, /8x8\/8x8 patchify conv as patchify copy \+ GEMM, K=192/);
      assert.deepEqual(conv.kernel.config.epilogue, { bias: true, residual: false, activation: 'relu' });
      // the input's NCHW → NHWC transpose keeps 3 channels (pad-channels leaves patchify convs alone)
      assert.ok(!graph.nodes.some((n: { op: string }) => n.op === 'transpose_pad'));
      const model = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
      assert.match(model, /PatchifyArgs<__half> patchify\{[^}]*, batch, 32, 32, 3, 4, 4, 8, 8\};/);
      assert.match(model, /launch_patchify_nhwc\(patchify, c\.stream\)/);
      assert.match(model, /AitGemmArgs gemm\{static_cast<int>\(16 \* batch\), 16, 192, columns,/);
      assert.deepEqual(
        fs.readdirSync(path.join(out, 'src')).filter((f) => /^conv_\d+\.cu$/.test(f)),
        [],
      );
      if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencodeOf(target));
    });
  }

  it('a patchify conv whose S·C is not a multiple of 8 takes im2col with K padded to 8, and says so', () => {
    const spec = patchEmbedding(5);
    const { out, ok, diagnostics } = compileSpec(spec, 'patch_embedding_5x5', 'cuda:sm90');
    assert.ok(ok, diagnostics.join('\n'));
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const conv = graph.nodes.find((n: { op: string }) => n.op === 'conv2d');
    assert.equal(conv.kernel.config.path, 'im2col+gemm');
    assert.match(conv.kernel.reason, /5x5 conv \(stride 5x5\) as im2col \+ GEMM, K=75 padded to 80/);
  });

  it('a stream-K GEMM gets a CUTLASS workspace region sized for its partial tiles', () => {
    // ViT-L/16-384's fc2 shape: stream-K at batch 4, 5, 8 and 9 (chooseSm90Gemm), ping-pong otherwise
    const ext = (name: string, dims: number[]) => ({ name, dtype: 'float32' as const, dims, external: 'model.onnx.data' });
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 577, 4096] }],
      initializers: [ext('w', [4096, 1024]), ext('b', [1024])],
      nodes: [
        { op: 'MatMul', name: 'fc2', inputs: ['x', 'w'], outputs: ['m'] },
        { op: 'Add', name: 'bias', inputs: ['m', 'b'], outputs: ['y'] },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 577, 1024] }],
    };
    const { out, ok, diagnostics } = compileSpec(spec, 'stream_k', 'cuda:sm90', 9);
    assert.ok(ok, diagnostics.join('\n'));
    const model = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
    // batch 9: 41 × 8 = 328 tiles of 128x128 → 328 · (64 KiB + 8) + 4 KiB, rounded up to 256 bytes
    const bytes = Math.ceil((328 * (65536 + 8) + 4096) / 256) * 256;
    const calls = [...model.matchAll(/ait_gemm_[0-9a-f]+\(gemm, c\.workspace, (\d+), c\.stream\)/g)].map((m) => Number(m[1]));
    assert.ok(calls.length > 1 && calls.every((b) => b === bytes), `workspace sizes passed: ${calls.join(', ')}`);
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const gemm = graph.nodes.find((n: { op: string }) => n.op === 'gemm');
    assert.deepEqual(
      gemm.kernel.config.instances.map((i: { batches: number[]; name: string }) => [i.batches, /stream_k/.test(i.name)]),
      [
        [[1, 1], false],
        [[2, 3], false],
        [[4, 5], true],
        [[6, 7], false],
        [[8, 9], true],
      ],
    );
    assert.match(gemm.kernel.reason, /batch 8\.\.9: K=4096 on 296 tiles/);
  });

  it('small CNN (weights absent): the stem weight is bound by its ONNX name and padded to 8 input channels by a prepare op', () => {
    const { out, ok, diagnostics } = compileSpec(smallCnn('absent'), 'small_cnn', 'cuda:sm90');
    assert.ok(ok, diagnostics.join('\n'));
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    assert.match(model, /\{"conv\.weight", ait::DType::kFloat16, 4, \{8, 3, 3, 3\}, ait::WeightOrigin::kBound\}/);
    // OIHW [8,3,3,3] → OHWI [8,3,3,8] with zero input channels, on the device at bind time
    const prepared = model.match(/\{"([^"]+)", ait::DType::kFloat16, 4, \{8, 3, 3, 8\}, ait::WeightOrigin::kPrepared\}/);
    assert.ok(prepared, 'a prepared [8,3,3,8] weight');
    assert.match(
      model,
      /const char\* prepare_\d+\(const ait::LaunchContext& c\) \{\n[^}]*NchwToNhwcArgs<__half> args\{static_cast<const __half\*>\(c\.weights\[\d+\]\), [^,]+, 8, 9,\s+3, 8\};/,
    );
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const conv = graph.nodes.find((n: { op: string }) => n.op === 'conv2d');
    assert.match(conv.kernel.name, /^cutlass3x_sm90_.*align8/);
  });

  it('small MLP (weights absent): bind-time prepare ops transpose the [K,N] weight; names stay bindable', () => {
    const { out, ok, diagnostics } = compileSpec(smallMlp(), 'small_mlp', 'cuda:sm90');
    assert.ok(ok, diagnostics.join('\n'));
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    golden('codegen_small_mlp_sm90_model.cu', model);
    assert.match(model, /\{"w", ait::DType::kFloat16, 2, \{32, 32\}, ait::WeightOrigin::kBound\}/);
    assert.match(model, /\{"w\.nk", ait::DType::kFloat16, 2, \{32, 32\}, ait::WeightOrigin::kPrepared\}/);
    assert.match(
      model,
      /StridedCopyArgs<__half> args\{static_cast<const __half\*>\(c\.weights\[\d+\]\), static_cast<__half\*>\(c\.weights\[\d+\]\), 2, \{32, 32\}, \{1, 32\}, 0\}/,
    );
    assert.match(model, /const char\* prepare_0\(const ait::LaunchContext& c\)/);
    assert.ok(!fs.existsSync(path.join(out, 'weights.safetensors')), 'no weights are known: no weights file');
  });

  it('sm80: residual add is not fused (2.x emitter) and runs as an elementwise kernel after the GEMM', () => {
    const { out, ok, diagnostics } = compileSpec(smallMlp(true), 'small_mlp_residual', 'cuda:sm80');
    assert.ok(ok, diagnostics.join('\n'));
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    golden('codegen_small_mlp_residual_sm80_model.cu', model);
    // the GEMM writes bias-added results to the workspace; then relu(d + x) lands in the output
    assert.match(model, /epilogue steps residual_add, relu run as an elementwise kernel/);
    assert.match(model, /ew::make_chain\(ew::Input<0>\{\}, ew::AddInput<1>\{\}, ew::Relu\{\}\)/);
    const gemm0 = fs.readFileSync(path.join(out, 'src/gemm_0.cu'), 'utf8');
    assert.match(gemm0, /cutlass::gemm::device::GemmUniversal</);
    assert.match(gemm0, /LinearCombinationGeneric<cutlass::epilogue::thread::Identity/);
    const makefile = fs.readFileSync(path.join(out, 'Makefile'), 'utf8');
    assert.match(makefile, /ARCH_FLAGS := -arch=sm_80/);
  });

  it('Makefile stops with a message naming CUTLASS_DIR when CUTLASS instances exist and it is unset', function () {
    if (spawnSync('make', ['--version']).status !== 0) this.skip();
    const { out } = compileSpec(smallCnn('present'), 'small_cnn', 'cuda:sm90');
    const r = spawnSync('make', ['-n', '-C', out], { encoding: 'utf8', env: { ...process.env, CUTLASS_DIR: '' } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /CUTLASS_DIR is not set: this model uses CUTLASS GEMM instances.*github\.com\/NVIDIA\/cutlass/);
  });

  it("describes every kernel's output for the debug run (AITModelRunDebug): pointer, dtype and shape at the batch", () => {
    const { out, ok } = compileSpec(smallMlp(), 'small_mlp', 'cuda:sm90');
    assert.ok(ok);
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: { id: string; role?: string }[] };
    const kernels = graph.nodes.filter((n) => n.role === 'kernel').map((n) => n.id);
    assert.ok(kernels.length >= 2);
    for (const id of kernels) {
      assert.match(model, new RegExp(`bool debug_${id}\\(const ait::LaunchContext& c, ait::DebugTensor\\* t\\)`));
      assert.match(model, new RegExp(`launch_${id}, debug_${id}\\},`));
    }
    // the last kernel writes the model output: its shape follows the batch
    const last = model.slice(model.indexOf(`bool debug_${kernels[kernels.length - 1]}(`));
    assert.match(last, /t->data = static_cast<__half\*>\(c\.outputs\[0\]\);/);
    assert.match(last, /t->rank = 3;\s+t->shape\[0\] = batch;\s+t->shape\[1\] = 4;\s+t->shape\[2\] = 32;/);
    // the normal run path never calls them: the runtime's launch_ops does not mention debug_output
    const runtime = fs.readFileSync(path.join(out, 'src/runtime/ait_runtime.cu'), 'utf8');
    const launchOps = runtime.slice(runtime.indexOf('AITStatus launch_ops('), runtime.indexOf('AITStatus run_graph('));
    assert.doesNotMatch(launchOps, /debug_output/);
  });

  describe('nvcc compiles the generated non-CUTLASS sources (sm_80, sm_90)', function () {
    before(function () {
      requireNvcc(this);
    });
    for (const [target, arch] of GPU_TARGETS) {
      it(`${target}: model.cu, runtime and ait_bench`, function () {
        this.timeout(600_000);
        const { out, ok } = compileSpec(smallMlp(), 'small_mlp', target);
        assert.ok(ok);
        nvccCompileGenerated(out, ['src/model.cu', 'src/runtime/ait_runtime.cu', 'src/ait_bench.cu'], arch);
      });
    }
  });

  describe('full builds with CUTLASS (opt-in: AIT_TEST_CUTLASS_MODELS=1)', function () {
    const cutlass = process.env.CUTLASS_DIR ?? path.join(ROOT, '.deps', 'cutlass');
    before(function () {
      if (process.env.AIT_TEST_CUTLASS_MODELS !== '1') this.skip();
      if (!fs.existsSync(path.join(cutlass, 'include', 'cutlass', 'cutlass.h'))) {
        console.log(`    (skipped: no CUTLASS headers at ${cutlass})`);
        this.skip();
      }
    });
    for (const [name, target] of [
      ['resnet50', 'cuda:sm90'],
      ['resnet50', 'cuda:sm80'],
      ['vit_base_patch16_224', 'cuda:sm90'],
    ]) {
      it(`${name} ${target}: make builds lib${name}.so and ait_bench`, function () {
        this.timeout(3_600_000);
        const file = path.join('/work/shared/models', `${name}.onnx`);
        if (!fs.existsSync(file)) this.skip();
        const out = path.join(tmp(), name);
        const r = compileModel(file, { out, target });
        assert.ok(r.ok, r.diagnostics.map((d) => d.message).join('\n'));
        const make = spawnSync('make', ['-C', out, `-j${os.cpus().length}`, `CUTLASS_DIR=${cutlass}`], { encoding: 'utf8' });
        assert.equal(make.status, 0, make.stderr.slice(-4000));
        assert.ok(fs.existsSync(path.join(out, `lib${name}.so`)) && fs.existsSync(path.join(out, 'ait_bench')));
      });
    }
  });
});
