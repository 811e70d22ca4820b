/**
 * MatMul between activations (batched CUTLASS GEMMs) and Resize on CUDA, without a GPU: golden batched instances,
 * the lowering's choices in graph.json (batch, B layout, absorbed Transpose, NCHW/NHWC resize), diagnostics at the
 * node for what it refuses (a symbolic K), the op models of scripts/gpu/op-models/resize_matmul.ts and vitmatte compiling for sm90
 * and sm80, and nvcc compiling vitmatte's generated model.cu. AIT_TEST_CUTLASS=1 also compiles a batched sm80
 * instance against CUTLASS (.deps/cutlass or CUTLASS_DIR).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../../compiler/compile';
import { chooseSm80Gemm, chooseSm90Gemm, emitSm80Gemm, emitSm90Gemm, gemmSourceFile } from '../../../compiler/backends/cuda/cutlass/gemm';
import { ModelSpec, buildModel } from '../../helpers/onnx-builder';
import { opModels } from '../../../scripts/gpu/op-models/resize_matmul';
import { haveNvcc, instanceSource, nvccCompileCutlass, nvccCompileGenerated, requireCutlassOptIn, GPU_TARGETS } from '../../helpers/nvcc';

const GOLDEN = path.join(__dirname, 'golden');
const VITMATTE = '/work/shared/models/vitmatte.onnx';
const NONE = { bias: false, activation: 'identity' as const, residual: false };

interface GraphNode {
  id: string;
  op: string;
  name: string;
  role?: string;
  kernel?: { library: string; name: string; reason: string; config: Record<string, unknown> };
}

function matchGolden(file: string, text: string) {
  const target = path.join(GOLDEN, file);
  if (process.env.AIT_UPDATE_GOLDEN === '1') fs.writeFileSync(target, text);
  assert.ok(fs.existsSync(target), `golden file ${file} is missing (run with AIT_UPDATE_GOLDEN=1)`);
  assert.equal(text, fs.readFileSync(target, 'utf8'), `emitted text differs from golden/${file}`);
}

function compileBytes(onnx: Uint8Array, name: string, target: string, maxBatch: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-bmm-'));
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, onnx);
  const out = path.join(dir, 'out');
  const r = compileModel(file, { out, target, maxBatch });
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  const nodes = (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: GraphNode[] }).nodes;
  return { out, ok: r.ok, errors, nodes, byName: (n: string) => nodes.find((x) => x.name === n)! };
}

/** q [B,2,16,32] · Transpose(k [B,2,16,32]) → Softmax → · v: the attention core on model inputs. */
function attentionCore(): ModelSpec {
  return {
    inputs: ['q', 'k', 'v'].map((name) => ({ name, dtype: 'float32' as const, dims: ['B', 2, 16, 32] })),
    nodes: [
      { op: 'Transpose', name: 'k_T', inputs: ['k'], outputs: ['kT'], attrs: { perm: [0, 1, 3, 2] } },
      { op: 'MatMul', name: 'scores', inputs: ['q', 'kT'], outputs: ['s'] },
      { op: 'Softmax', name: 'softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: -1 } },
      { op: 'MatMul', name: 'context', inputs: ['p', 'v'], outputs: ['y'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 2, 16, 32] }],
  };
}

describe('cuda backend: batched GEMM instances', () => {
  it('names batched instances by B layout (tnt: column-major B, ttt: row-major) and keeps them apart from plain ones', () => {
    const { config, reason } = chooseSm90Gemm({ m: 1024, n: 1024, k: 64, batch: 6 });
    const column = emitSm90Gemm(config, NONE, reason, { layoutB: 'column' });
    const row = emitSm90Gemm(config, NONE, reason, { layoutB: 'row' });
    assert.match(column.name, /_0_tnt_align8_.*_batched$/);
    assert.match(row.name, /_0_ttt_align8_.*_batched$/);
    assert.match(row.code, /ElementB, cutlass::layout::RowMajor, kAlignment/);
    assert.match(row.code, /\{m, n, k, l\}/);
    assert.ok(row.batched && !emitSm90Gemm(config, NONE, reason).batched);
    const sm80 = chooseSm80Gemm({ m: 1024, n: 64, k: 1024, batch: 6 });
    const sm80Row = emitSm80Gemm(sm80.config, NONE, sm80.reason, { layoutB: 'row' });
    assert.match(sm80Row.name, /_tt_align8_nobias_identity_batched$/);
    assert.match(sm80Row.code, /GemmUniversalMode::kBatched, \{m, n, k\}, operands\.batch/);
    assert.match(sm80Row.code, /k, n, 0, n\);/); // ldb = n for a row-major B
  });

  it('counts the batch in the tile heuristic', () => {
    // 6 windows of 196 rows: 1176 rows in all take the 128x128 tile; one window alone is a small problem
    assert.deepEqual(chooseSm90Gemm({ m: 196, n: 196, k: 64, batch: 6 }).config.tile, [128, 128, 64]);
    assert.match(chooseSm90Gemm({ m: 196, n: 196, k: 64, batch: 6 }).reason, /M=196 \(batch 6\) ≥ 1024 rows/);
    assert.deepEqual(chooseSm90Gemm({ m: 196, n: 196, k: 64 }).config.tile, [64, 128, 64]);
    // batches of under 128 rows keep the 64-row tile however many there are
    assert.deepEqual(chooseSm90Gemm({ m: 64, n: 64, k: 64, batch: 96 }).config.tile, [64, 128, 64]);
  });

  it('emits the vitmatte attention GEMMs for sm90 as in the golden file', () => {
    const scores = chooseSm90Gemm({ m: 1024, n: 1024, k: 64, batch: 6 });
    const context = chooseSm90Gemm({ m: 1024, n: 64, k: 1024, batch: 6 });
    const text = gemmSourceFile([
      emitSm90Gemm(scores.config, NONE, scores.reason, { layoutB: 'column' }),
      emitSm90Gemm(context.config, NONE, context.reason, { layoutB: 'row' }),
    ]);
    matchGolden('sm90_batched_attention.cu', text);
  });

  it('emits the vitmatte attention GEMMs for sm80 as in the golden file', () => {
    const scores = chooseSm80Gemm({ m: 1024, n: 1024, k: 64, batch: 6 });
    const context = chooseSm80Gemm({ m: 1024, n: 64, k: 1024, batch: 6 });
    const text = gemmSourceFile([
      emitSm80Gemm(scores.config, NONE, scores.reason, { layoutB: 'column' }),
      emitSm80Gemm(context.config, NONE, context.reason, { layoutB: 'row' }),
    ]);
    matchGolden('sm80_batched_attention.cu', text);
  });
});

describe('cuda codegen: MatMul between activations', () => {
  for (const target of ['cuda:sm90', 'cuda:sm80']) {
    it(`${target}: attention core as two batched GEMMs, the Transpose of k read in place, per-batch-range instances`, () => {
      const r = compileBytes(buildModel(attentionCore()), 'attention_core', target, 64);
      assert.deepEqual(
        r.errors.map((d) => d.message),
        [],
      );
      const scores = r.byName('scores').kernel!;
      const context = r.byName('context').kernel!;
      assert.equal(scores.library, 'cutlass');
      assert.equal(scores.config.layoutB, 'column');
      assert.equal(context.config.layoutB, 'row');
      assert.equal(scores.config.batch, '2 * batch');
      assert.match(scores.reason, /batched GEMM L=B·2 M=16 N=16 K=32 \(batch B·2, B column-major: Transpose 'k_T' absorbed\)/);
      // the absorbed Transpose launches nothing and is a view in graph.json
      const transpose = r.byName('k_T');
      assert.equal(transpose.role, 'view');
      assert.equal(transpose.kernel, undefined);
      const model = fs.readFileSync(path.join(r.out, 'src/model.cu'), 'utf8');
      assert.doesNotMatch(model, /Transpose 'k_T'; ONNX nodes/);
      assert.match(model, /const AitBatchedGemmArgs gemm\{static_cast<int>\(2 \* batch\), static_cast<int>\(16\), 16, 32, /);
      // the B operand of the scores GEMM is k itself (a model input)
      assert.match(
        model,
        /static_cast<int>\(16\), 16, 32, static_cast<const __half\*>\(c\.inputs\[0\]\),\s*static_cast<const __half\*>\(c\.inputs\[1\]\)/,
      );
      const header = fs.readFileSync(path.join(r.out, 'src/ait_gemm.h'), 'utf8');
      assert.match(header, /struct AitBatchedGemmArgs/);
      // the batch count changes the heuristic's choice: more than one batch range at max batch 64
      const instances = scores.config.instances as { batches: number[] }[];
      assert.ok(instances.length >= 1 && instances[0].batches[0] === 1 && instances[instances.length - 1].batches[1] === 64);
    });
  }

  it('sm90: a batched GEMM with K or N not a multiple of 8 gets a 2.x instance (TMA needs 16-byte strides)', () => {
    const spec = attentionCore();
    for (const i of spec.inputs) i.dims = ['B', 2, 197, 64];
    spec.outputs = [{ name: 'y', dtype: 'float32', dims: ['B', 2, 197, 64] }];
    const r = compileBytes(buildModel(spec), 'attention_197', 'cuda:sm90', 2);
    assert.deepEqual(r.errors, []);
    const scores = r.byName('scores').kernel!; // N = 197 tokens
    const context = r.byName('context').kernel!; // K = 197 tokens
    for (const k of [scores, context]) {
      // K or N odd: the sm75 pipelined align1 mainloop (the sm80 multistage cp.async cannot copy 2 bytes)
      assert.match(k.name, /^cutlass_tensorop_f16_s1688gemm_f16_.*_align1_nobias_identity_batched$/);
      assert.match(k.reason, /a 2\.x instance: K=\d+, N=\d+ not multiples of 8 \(TMA\)/);
    }
  });

  it('keeps the input of an absorbed Transpose alive until the GEMM reads it (memory plan)', () => {
    // k is computed (Relu), transposed, then other work runs before the GEMM reads it
    const spec: ModelSpec = {
      inputs: [
        { name: 'q', dtype: 'float32', dims: [1, 2, 64, 32] },
        { name: 'k', dtype: 'float32', dims: [1, 2, 64, 32] },
      ],
      nodes: [
        { op: 'Relu', name: 'k_relu', inputs: ['k'], outputs: ['kr'] },
        { op: 'Transpose', name: 'k_T', inputs: ['kr'], outputs: ['kT'], attrs: { perm: [0, 1, 3, 2] } },
        { op: 'Sigmoid', name: 'q_sig', inputs: ['q'], outputs: ['qs'] },
        { op: 'Tanh', name: 'q_tanh', inputs: ['qs'], outputs: ['qt'] },
        { op: 'MatMul', name: 'scores', inputs: ['qt', 'kT'], outputs: ['y'] },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: [1, 2, 64, 64] }],
    };
    const r = compileBytes(buildModel(spec), 'late_read', 'cuda:sm90', 1);
    assert.deepEqual(r.errors, []);
    const model = fs.readFileSync(path.join(r.out, 'src/model.cu'), 'utf8');
    const functionOf = (nodeName: string) => model.split('// graph.json ').find((f) => f.includes(`'${nodeName}'`))!;
    const arenaOffsets = (text: string) => [...text.matchAll(/c\.arena \+ (\d+)/g)].map((m) => Number(m[1]));
    const [reluWrites] = arenaOffsets(functionOf('k_relu'));
    const [gemmA, gemmB] = arenaOffsets(functionOf('scores'));
    assert.equal(gemmB, reluWrites, 'the GEMM reads Relu(k) where Relu wrote it');
    // q's elementwise chain runs between the Transpose and the GEMM: it must not overwrite Relu(k) (8 KiB of fp16)
    assert.equal(gemmA, arenaOffsets(functionOf('q_tanh/fused'))[0]);
    assert.ok(Math.abs(gemmA - reluWrites) >= 8192, `q (at ${gemmA}) overlaps k (at ${reluWrites})`);
  });

  /** q [B,2,S,32] · Transpose(k [B,2,S,32]) → Softmax → · v, the sequence S a run-time dim (up to 64). */
  function runtimeSeqAttention(): ModelSpec {
    const spec = attentionCore();
    return {
      ...spec,
      inputs: ['q', 'k', 'v'].map((name) => ({ name, dtype: 'float32' as const, dims: ['B', 2, 'S', 32] })),
      outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 2, 'S', 32] }],
    };
  }

  for (const [target, gencode] of GPU_TARGETS)
    it(`${target}: a batched MatMul whose N or K is a run-time dim runs an alignment-8 instance when both are multiples of 8, else an alignment-1 one`, function () {
      this.timeout(300_000);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-bmm-seq-'));
      const file = path.join(dir, 'seq.onnx');
      fs.writeFileSync(file, buildModel(runtimeSeqAttention()));
      const out = path.join(dir, 'out');
      const r = compileModel(file, { out, target, maxBatch: 4, dimBounds: { S: [1, 64] } });
      assert.deepEqual(
        r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const nodes = (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: GraphNode[] }).nodes;
      // Q·Kᵀ (N = S) and P·V (K = S): both dispatch on the sizes; graph.json lists the instances with when they run
      const gemms = nodes.filter((n) => n.kernel?.library === 'cutlass');
      assert.equal(gemms.length, 2, nodes.map((n) => `${n.name}:${n.op}`).join(', '));
      for (const n of gemms) {
        const instances = (n.kernel!.config as { instances: { name: string; when?: string }[] }).instances;
        const aligned = instances.filter((i) => i.when === 'N and K multiples of 8');
        const otherwise = instances.filter((i) => i.when === 'otherwise');
        assert.ok(aligned.length >= 1 && otherwise.length >= 1, JSON.stringify(instances));
        for (const i of aligned) assert.match(i.name, /_align8/);
        for (const i of otherwise) assert.match(i.name, /_align1/);
        assert.match(n.kernel!.reason, /N or K a run-time size/);
      }
      if (target === 'cuda:sm90')
        assert.ok(
          gemms.some((n) => /^cutlass3x_sm90/.test(n.kernel!.name)),
          'the aligned case runs TMA instances on sm90',
        );
      const model = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
      assert.equal((model.match(/if \(gemm\.n % 8 == 0 && gemm\.k % 8 == 0\) \{/g) ?? []).length, 2);
      // the run-time S is read from the input dims, not the compile-time max
      assert.doesNotMatch(model, /AitBatchedGemmArgs gemm\{[^}]*, 64, 32,/);
      if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencode);
    });
});

describe('cuda codegen: Resize', () => {
  /** x → Resize with the given attributes/inputs; NCHW unless `nhwc` (then scales on axes 1, 2). */
  function resizeModel(attrs: Record<string, number | string>, scales: number[], nhwc = false): ModelSpec {
    const dims = nhwc ? ['B', 6, 10, 8] : ['B', 8, 6, 10];
    const outDims = dims.map((d, i) => (typeof d === 'number' ? Math.floor(d * scales[i]) : d));
    return {
      inputs: [{ name: 'x', dtype: 'float32', dims }],
      initializers: [{ name: 'scales', dtype: 'float32', dims: [4], values: scales }],
      nodes: [{ op: 'Resize', name: 'resize', inputs: ['x', '', 'scales'], outputs: ['y'], attrs }],
      outputs: [{ name: 'y', dtype: 'float32', dims: outDims }],
    };
  }

  it('lowers NCHW bilinear with the given scale and coordinate transformation', () => {
    const r = compileBytes(
      buildModel(resizeModel({ mode: 'linear', coordinate_transformation_mode: 'align_corners' }, [1, 1, 1.5, 2])),
      'r',
      'cuda:sm80',
      4,
    );
    assert.deepEqual(r.errors, []);
    const k = r.byName('resize').kernel!;
    assert.equal(k.name, 'ait_resize_nchw_bilinear_f16');
    assert.deepEqual(k.config.out, [9, 20]);
    const model = fs.readFileSync(path.join(r.out, 'src/model.cu'), 'utf8');
    assert.match(
      model,
      /batch, 6, 10, 9, 20, 8,\s*1\.5f, 2\.0f, ait::kernels::ResizeMode::kBilinear,\s*ait::kernels::CoordinateTransform::kAlignCorners/,
    );
    assert.match(model, /args\.layout = ait::kernels::ImageLayout::kNchw;/);
  });

  it('lowers NHWC nearest (channels last: scales on axes 1 and 2) with its rounding', () => {
    const r = compileBytes(
      buildModel(
        resizeModel({ mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, [1, 2, 0.5, 1], true),
      ),
      'r',
      'cuda:sm90',
      4,
    );
    assert.deepEqual(r.errors, []);
    const model = fs.readFileSync(path.join(r.out, 'src/model.cu'), 'utf8');
    assert.equal(r.byName('resize').kernel!.name, 'ait_resize_nhwc_nearest_f16');
    assert.match(
      model,
      /batch, 6, 10, 12, 5, 8,\s*2\.0f, 0\.5f, ait::kernels::ResizeMode::kNearest,\s*ait::kernels::CoordinateTransform::kAsymmetric, ait::kernels::NearestRounding::kFloor/,
    );
    assert.match(model, /ImageLayout::kNhwc/);
  });

  for (const [what, attrs, scales, message] of [
    [
      'tf_crop_and_resize',
      { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize' },
      [1, 1, 2, 2],
      /coordinate_transformation_mode 'tf_crop_and_resize'/,
    ],
    ['antialias when downscaling', { mode: 'linear', antialias: 1 }, [1, 1, 0.5, 0.5], /antialias when downscaling/],
    ['the channel and width axes together', { mode: 'nearest' }, [1, 2, 1, 2], /axes 1 and 3 together/],
  ] as const) {
    it(`refuses ${what} with a diagnostic at the node`, () => {
      const r = compileBytes(buildModel({ ...resizeModel(attrs, [...scales]), opset: 18 }), 'r', 'cuda:sm90', 2);
      assert.equal(r.errors.length, 1, r.errors.map((d) => d.message).join('\n'));
      assert.equal(r.errors[0].location?.onnxNode, 'resize');
      assert.match(r.errors[0].message, message);
    });
  }

  it('scales whose data a graph-only model does not carry: the error names the initializer and asks for the weights', () => {
    const spec = resizeModel({ mode: 'nearest' }, [1, 1, 2, 2]);
    spec.initializers = [{ name: 'scales', dtype: 'float32', dims: [4], external: 'model.onnx.data' }];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-resize-absent-'));
    const file = path.join(dir, 'r.onnx');
    fs.writeFileSync(file, buildModel({ ...spec, opset: 18 }));
    const r = compileModel(file, { out: path.join(dir, 'out'), target: 'cuda:sm90', maxBatch: 2 });
    const resize = r.diagnostics.find((d) => d.severity === 'error' && d.location?.onnxNode === 'resize');
    assert.ok(resize, r.diagnostics.map((d) => d.message).join('\n'));
    assert.match(resize.message, /Resize scales '[^']+' comes from initializer 'scales', whose data the model file does not carry/);
    assert.match(resize.message, /compile the model with its weights/);
  });
});

describe('op models: resize_matmul (scripts/gpu/op-models)', () => {
  for (const model of opModels)
    for (const target of ['cuda:sm90', 'cuda:sm80'])
      it(`${model.name} compiles for ${target} with every node lowered`, () => {
        const r = compileBytes(model.onnx, model.name, target, model.maxBatch);
        assert.deepEqual(
          r.errors.map((d) => d.message),
          [],
        );
        const lowered = r.nodes.filter((n) => n.op === 'MatMul' || n.op === 'Resize');
        assert.ok(lowered.length > 0 && lowered.every((n) => n.kernel), `${model.name}: MatMul/Resize without a kernel`);
      });
});

describe('vitmatte on CUDA', function () {
  before(function () {
    if (!fs.existsSync(VITMATTE)) this.skip();
  });
  for (const [target, arch] of GPU_TARGETS) {
    it(`compiles for ${target} with no unsupported node, and its model.cu compiles with nvcc`, function () {
      this.timeout(600_000);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-vitmatte-'));
      const r = compileModel(VITMATTE, { out: dir, target });
      assert.deepEqual(
        r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const nodes = (JSON.parse(fs.readFileSync(path.join(dir, 'graph.json'), 'utf8')) as { nodes: GraphNode[] }).nodes;
      const matmuls = nodes.filter((n) => n.op === 'MatMul');
      assert.equal(matmuls.length, 24); // 12 blocks × (scores, context)
      assert.ok(matmuls.every((n) => n.kernel?.library === 'cutlass' && /_batched$/.test(n.kernel.name)));
      const resizes = nodes.filter((n) => n.op === 'Resize');
      assert.equal(resizes.length, 5);
      assert.equal(nodes.filter((n) => n.op === 'Transpose' && n.role === 'view').length, 12); // kᵀ read in place
      if (!haveNvcc()) return; // the rest needs nvcc
      nvccCompileGenerated(dir, ['src/model.cu'], arch);
    });
  }
});

// Opt-in (AIT_TEST_CUTLASS=1): one batched sm80 instance (row-major B) compiles against the CUTLASS headers.
describe('cuda backend: a batched CUTLASS instance compiles with nvcc (AIT_TEST_CUTLASS=1)', function () {
  before(requireCutlassOptIn);
  it('compiles a batched sm_80 instance with a row-major B', function () {
    this.timeout(900_000);
    const p = chooseSm80Gemm({ m: 1024, n: 64, k: 1024, batch: 6 });
    const instance = emitSm80Gemm(p.config, { bias: true, activation: 'relu', residual: false }, p.reason, { layoutB: 'row' });
    const source = instanceSource(gemmSourceFile([instance]), instance.name, 'AitBatchedGemmOperands');
    nvccCompileCutlass(source, '-arch=sm_80');
  });
});
