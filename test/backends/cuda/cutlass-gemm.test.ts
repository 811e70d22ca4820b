import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  chooseSm80Gemm,
  chooseSm90Gemm,
  emitSm80Gemm,
  emitSm90Gemm,
  epilogueTree,
  evtArguments,
  gemmAlignment,
  gemmSourceFile,
  sm90GemmName,
  streamKWorkspaceBytes,
} from '../../../compiler/backends/cuda/cutlass/gemm';
import { CompileError } from '../../../compiler/diagnostics';
import { instanceSource, nvccCompileCutlass, requireCutlassOptIn } from '../../helpers/nvcc';

// Golden files: regenerate with AIT_UPDATE_GOLDEN=1 after a deliberate change, and review the diff.
const GOLDEN = path.join(__dirname, 'golden');

function matchGolden(file: string, text: string) {
  const target = path.join(GOLDEN, file);
  if (process.env.AIT_UPDATE_GOLDEN === '1') {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(target, text);
  }
  assert.ok(fs.existsSync(target), `golden file ${file} is missing (run with AIT_UPDATE_GOLDEN=1)`);
  assert.equal(text, fs.readFileSync(target, 'utf8'), `emitted text differs from golden/${file}`);
}

describe('cuda backend: CUTLASS GEMM instances', () => {
  it('names sm90 instances like CUTLASS procedural names', () => {
    assert.equal(
      sm90GemmName(
        { arch: 'sm90', tile: [128, 128, 64], cluster: [1, 2, 1], schedule: 'cooperative', alignment: 8 },
        { bias: true, activation: 'relu', residual: true },
      ),
      'cutlass3x_sm90_tensorop_gemm_f16_f16_f32_f16_f16_128x128x64_1x2x1_0_tnt_align8_warpspecialized_cooperative_epi_tma_bias_residual_relu',
    );
    assert.match(
      sm90GemmName(
        { arch: 'sm90', tile: [64, 128, 64], cluster: [1, 1, 1], schedule: 'pingpong', alignment: 4 },
        { bias: true, activation: 'gelu', residual: false },
      ),
      /_f32_void_f16_64x128x64_1x1x1_0_tnt_align4_warpspecialized_pingpong_epi_tma_bias_gelu$/,
    );
    // same tile, different epilogues: different C++ struct names (two would collide in one program otherwise)
    const config = {
      arch: 'sm90' as const,
      tile: [128, 128, 64] as [number, number, number],
      cluster: [1, 1, 1] as [number, number, number],
      schedule: 'cooperative' as const,
      alignment: 8,
    };
    const names = new Set(
      [
        { bias: true, activation: 'relu' as const, residual: false },
        { bias: true, activation: 'identity' as const, residual: false },
        { bias: false, activation: 'identity' as const, residual: false },
      ].map((e) => emitSm90Gemm(config, e, 'test').name),
    );
    assert.equal(names.size, 3);
  });

  it('builds the epilogue tree act(acc + bias + C) and its nested arguments', () => {
    const tree = epilogueTree({ bias: true, activation: 'relu', residual: true });
    assert.equal(tree.kind, 'compute');
    // Sm90EVT arguments: children first, then the node's own ({} for Sm90Compute).
    assert.equal(evtArguments(tree), '{{{{}, {operands.bias}, {}}, {}, {}}, {}}');
    assert.equal(evtArguments(epilogueTree({ bias: false, activation: 'identity', residual: false })), '{{}, {}}');
  });

  it('chooses alignment from K and N', () => {
    assert.equal(gemmAlignment({ m: 197, n: 768, k: 768 }), 8);
    assert.equal(gemmAlignment({ m: 1, n: 1000, k: 2052 }), 4);
    assert.equal(gemmAlignment({ m: 1, n: 1000, k: 27 }), 1);
  });

  it('picks tiles by problem size (rules measured by scripts/gpu/gemm-tiles.ts, documented in gemm.ts)', () => {
    const big = chooseSm90Gemm({ m: 256 * 197, n: 3072, k: 768 });
    assert.deepEqual([big.config.tile, big.config.schedule, big.config.cluster], [[128, 128, 64], 'pingpong', [1, 2, 1]]);
    const mid = chooseSm90Gemm({ m: 8 * 197, n: 2304, k: 768 });
    assert.deepEqual([mid.config.tile, mid.config.schedule], [[128, 128, 64], 'pingpong']);
    const small = chooseSm90Gemm({ m: 577, n: 3072, k: 1024 });
    assert.deepEqual([small.config.tile, small.config.schedule, small.config.cluster], [[64, 128, 64], 'pingpong', [2, 1, 1]]);
    assert.match(small.reason, /M=577/);
    const classifier = chooseSm90Gemm({ m: 1, n: 1000, k: 2048 });
    assert.deepEqual([classifier.config.tile, classifier.config.cluster, classifier.config.alignment], [[64, 128, 64], [1, 1, 1], 8]);
    assert.deepEqual(chooseSm80Gemm({ m: 1, n: 1000, k: 2048 }).config.tile, [64, 64, 32]);
  });

  it('chooses 128x128 cooperative stream-K for a long K on 1 to 3 waves whose last wave is under half full', () => {
    // ViT-L/16-384 fc2 at batch 8: 37 × 8 = 296 tiles = 2.24 waves on 132 SMs
    const fc2 = chooseSm90Gemm({ m: 8 * 577, n: 1024, k: 4096 });
    assert.deepEqual(
      [fc2.config.tile, fc2.config.cluster, fc2.config.schedule, fc2.config.scheduler],
      [[128, 128, 64], [1, 2, 1], 'cooperative', 'streamk'],
    );
    assert.match(fc2.reason, /296 tiles .*2\.24 waves on 132 SMs/);
    // the same shape at batch 7 (224 tiles: the last wave is 70 % full), a short K, or under one wave: ping-pong
    assert.equal(chooseSm90Gemm({ m: 7 * 577, n: 1024, k: 4096 }).config.schedule, 'pingpong');
    assert.equal(chooseSm90Gemm({ m: 8 * 577, n: 1024, k: 1024 }).config.schedule, 'pingpong');
    assert.equal(chooseSm90Gemm({ m: 577, n: 1024, k: 4096 }).config.schedule, 'pingpong');
    assert.equal(chooseSm90Gemm({ m: 64 * 577, n: 1024, k: 4096 }).config.schedule, 'pingpong');
    // its workspace bound: one fp32 128x128 tile and two barrier words per output tile, plus 4 KB
    assert.equal(streamKWorkspaceBytes(8 * 577, 1024, 1, [128, 128, 64]), 296 * (65536 + 8) + 4096);
  });

  it('emits a stream-K cooperative instance and refuses stream-K with ping-pong', () => {
    const config = {
      arch: 'sm90' as const,
      tile: [128, 256, 64] as [number, number, number],
      cluster: [2, 1, 1] as [number, number, number],
      alignment: 8,
    };
    const epilogue = { bias: true, activation: 'identity' as const, residual: false };
    const streamK = emitSm90Gemm({ ...config, schedule: 'cooperative', scheduler: 'streamk' }, epilogue, 'test');
    assert.match(streamK.name, /_warpspecialized_cooperative_epi_tma_stream_k_bias_identity$/);
    assert.match(streamK.code, /CollectiveEpilogue,\n\s+cutlass::gemm::StreamKScheduler>/);
    assert.doesNotMatch(emitSm90Gemm({ ...config, schedule: 'cooperative' }, epilogue, 'test').code, /StreamKScheduler/);
    assert.throws(
      () => emitSm90Gemm({ ...config, schedule: 'pingpong', scheduler: 'streamk' }, epilogue, 'test'),
      (e: unknown) => e instanceof CompileError && /cooperative/.test(e.diagnostics[0].message),
    );
  });

  it('refuses an sm80 residual epilogue with a diagnostic instead of emitting a wrong one', () => {
    const { config, reason } = chooseSm80Gemm({ m: 4096, n: 1024, k: 1024 });
    assert.throws(
      () => emitSm80Gemm(config, { bias: true, activation: 'relu', residual: true }, reason),
      (e: unknown) => e instanceof CompileError && e.diagnostics[0].code === 'cuda.cutlass-unsupported',
    );
  });

  it('emits the ViT MLP GEMMs for sm90 as in the golden file', () => {
    const fc1 = chooseSm90Gemm({ m: 8 * 197, n: 3072, k: 768 });
    const fc2 = chooseSm90Gemm({ m: 8 * 197, n: 768, k: 3072 });
    const text = gemmSourceFile([
      emitSm90Gemm(fc1.config, { bias: true, activation: 'gelu', residual: false }, fc1.reason),
      emitSm90Gemm(fc2.config, { bias: true, activation: 'identity', residual: true }, fc2.reason),
    ]);
    matchGolden('sm90_vit_mlp.cu', text);
  });

  it('emits a ResNet-style sm80 GEMM as in the golden file', () => {
    const fc = chooseSm80Gemm({ m: 8, n: 1000, k: 2048 });
    const text = gemmSourceFile([emitSm80Gemm(fc.config, { bias: true, activation: 'identity', residual: false }, fc.reason)]);
    matchGolden('sm80_classifier.cu', text);
  });
});

// Opt-in (AIT_TEST_CUTLASS=1; about 1 min for sm80 + 1-3 min for sm90 on 2 cores): the emitted text compiles against
// CUTLASS headers from CUTLASS_DIR (default: .deps/cutlass, see /work/shared/gpu-host/README.md).
describe('cuda backend: CUTLASS instances compile with nvcc (AIT_TEST_CUTLASS=1)', function () {
  before(requireCutlassOptIn);

  const cases = [
    {
      arch: 'sm_80',
      instance: () => {
        const p = chooseSm80Gemm({ m: 8 * 197, n: 3072, k: 768 });
        return emitSm80Gemm(p.config, { bias: true, activation: 'gelu', residual: false }, p.reason);
      },
    },
    {
      arch: 'sm_90a', // wgmma needs the arch-specific target
      instance: () => {
        const p = chooseSm90Gemm({ m: 8 * 197, n: 768, k: 3072 });
        return emitSm90Gemm(p.config, { bias: true, activation: 'relu', residual: true }, p.reason);
      },
    },
  ];
  for (const c of cases) {
    it(`compiles an ${c.arch} instance`, function () {
      this.timeout(900_000);
      const instance = c.instance();
      const source = instanceSource(gemmSourceFile([instance]), instance.name, 'AitGemmOperands');
      nvccCompileCutlass(source, `-arch=${c.arch}`);
    });
  }
});
