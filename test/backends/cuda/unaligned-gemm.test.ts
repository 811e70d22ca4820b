/**
 * GEMMs whose K or N is odd (alignment 1): `ait compile` of a tiny Gemm model for sm80 and sm90 emits a CUTLASS 2.x
 * instance with the sm75-style align1 mainloop (the sm80 multistage cp.async cannot copy 2 bytes; sm90 TMA needs
 * 16-byte strides), golden text always; opt-in (AIT_TEST_CUTLASS=1, ~15 s per file) the generated src/gemm_<k>.cu
 * compiles with nvcc for sm_80 against .deps/cutlass.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../../compiler/compile';
import { seededRandom } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel } from '../../helpers/onnx-builder';
import { nvccCompileCutlass, requireCutlassOptIn } from '../../helpers/nvcc';

const GOLDEN = path.join(__dirname, 'golden');

/** y = Relu(Gemm(x[B, K], W[N, K]ᵀ) + b[N]). */
function gemmSpec(k: number, n: number): ModelSpec {
  const random = seededRandom(k * 100 + n);
  const values = (count: number) => Array.from({ length: count }, () => random() - 0.5);
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', k] }],
    initializers: [
      { name: 'w', dtype: 'float32', dims: [n, k], values: values(n * k) },
      { name: 'b', dtype: 'float32', dims: [n], values: values(n) },
    ],
    nodes: [
      { op: 'Gemm', name: 'fc', inputs: ['x', 'w', 'b'], outputs: ['g'], attrs: { transB: 1 } },
      { op: 'Relu', name: 'act', inputs: ['g'], outputs: ['y'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', n] }],
  };
}

interface Compiled {
  out: string;
  kernelName: string;
  reason: string;
  /** src/gemm_<k>.cu files. */
  sources: string[];
}

function compileGemm(k: number, n: number, target: string): Compiled {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-unaligned-gemm-'));
  const file = path.join(dir, `gemm_k${k}_n${n}.onnx`);
  fs.writeFileSync(file, buildModel(gemmSpec(k, n)));
  const out = path.join(dir, 'out');
  const result = compileModel(file, { out, target, maxBatch: 4 });
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  assert.ok(result.ok, errors.map((d) => d.message).join('\n'));
  const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
    nodes: { op: string; kernel?: { name: string; reason: string } }[];
  };
  const gemms = graph.nodes.filter((node) => node.op === 'gemm');
  assert.equal(gemms.length, 1);
  const sources = fs
    .readdirSync(path.join(out, 'src'))
    .filter((f) => /^gemm_\d+\.cu$/.test(f))
    .map((f) => path.join(out, 'src', f));
  return { out, kernelName: gemms[0].kernel!.name, reason: gemms[0].kernel!.reason, sources };
}

const SHAPES = [
  { k: 4, n: 3 },
  { k: 6, n: 5 },
];
const TARGETS = ['cuda:sm80', 'cuda:sm90'];

describe('cuda backend: GEMMs with K or N odd (alignment 1)', function () {
  this.timeout(120_000);

  for (const target of TARGETS)
    for (const { k, n } of SHAPES)
      it(`${target}, K=${k}, N=${n}: a 2.x align1 instance on the sm75 pipelined mainloop, bias and relu fused`, () => {
        const compiled = compileGemm(k, n, target);
        assert.equal(compiled.kernelName, 'cutlass_tensorop_f16_s1688gemm_f16_64x64_32x2_tn_align1_bias_relu');
        assert.match(compiled.reason, new RegExp(`K=${k}, N=${n}: alignment 1`));
        if (target === 'cuda:sm90') assert.match(compiled.reason, /a 2\.x instance: .* not multiples of 8 \(TMA\)/);
        assert.equal(compiled.sources.length, 1);
        const text = fs.readFileSync(compiled.sources[0], 'utf8');
        assert.match(text, /cutlass::arch::Sm75,[\s\S]*cutlass::gemm::GemmShape<16, 8, 8>,[\s\S]*, 2, 1, 1>;/);
      });

  it('emits the sm80 K=4, N=3 instance source as in the golden file', () => {
    const text = fs.readFileSync(compileGemm(4, 3, 'cuda:sm80').sources[0], 'utf8');
    const golden = path.join(GOLDEN, 'sm80_gemm_k4_n3_align1.cu');
    if (process.env.AIT_UPDATE_GOLDEN === '1') fs.writeFileSync(golden, text);
    assert.ok(fs.existsSync(golden), 'golden file missing (run with AIT_UPDATE_GOLDEN=1)');
    assert.equal(text, fs.readFileSync(golden, 'utf8'), 'emitted text differs from golden/sm80_gemm_k4_n3_align1.cu');
  });
});

// Opt-in: the generated files compile (sm75 mainloop + mma.sync 16x8x8 target sm_80; the same code runs on sm90).
describe('cuda backend: GEMMs with K or N odd compile with nvcc (AIT_TEST_CUTLASS=1)', function () {
  before(requireCutlassOptIn);

  for (const target of TARGETS)
    for (const { k, n } of SHAPES)
      it(`${target}, K=${k}, N=${n}: src/gemm_<k>.cu compiles for sm_80`, function () {
        this.timeout(900_000);
        const compiled = compileGemm(k, n, target);
        for (const source of compiled.sources) nvccCompileCutlass(source, '-arch=sm_80', [path.join(compiled.out, 'src')]);
      });
});
