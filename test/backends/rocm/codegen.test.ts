/**
 * ROCm code generation without hipcc or a GPU: the generated HIP build of a small model against golden files
 * (AIT_UPDATE_GOLDEN=1 rewrites them), the Makefile's CK_DIR refusal through make itself, and ResNet-50 / ViT-B/16
 * for rocm:gfx90a: no unsupported node, every GEMM and (non-depthwise) conv a Composable Kernel instance.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hipMakefile } from '../../../compiler/backends/rocm/build-files';
import { compileModel } from '../../../compiler/compile';
import { buildModel } from '../../helpers/onnx-builder';
import { sharedModel } from '../../helpers/models';
import { SMALL_HIP_MODEL } from './small-model';

const GOLDEN = path.join(__dirname, 'golden');

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.AIT_UPDATE_GOLDEN === '1') fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs from its golden file (AIT_UPDATE_GOLDEN=1 to accept)`);
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ait-rocm-'));

describe('rocm backend: code generation', () => {
  it('small model for rocm:gfx90a: golden model.cu and Makefile; runtime, kernels and the HIP headers shipped', () => {
    const dir = tmp();
    const model = path.join(dir, 'small_hip.onnx');
    fs.writeFileSync(model, buildModel(SMALL_HIP_MODEL));
    const out = path.join(dir, 'out');
    const result = compileModel(model, { target: 'rocm:gfx90a', out });
    assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
    // the layernorm and the softmax are CK instances (ck/norm-instances.ts), the rest our kernels
    assert.match(result.codegen ?? '', /for rocm:gfx90a: \d+ kernels, 2 CK instances/);
    golden('small_hip_gfx90a_model.cu', fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8'));
    golden('small_hip_gfx90a_Makefile', fs.readFileSync(path.join(out, 'Makefile'), 'utf8'));
    for (const f of [
      'hip/ait_hip.h',
      'hip/cuda_runtime.h',
      'hip/cuda_fp16.h',
      'hip/cuda_bf16.h',
      'runtime/ait_runtime.cu',
      'kernels/common.cuh',
      'ait_bench.cu',
    ])
      assert.ok(fs.existsSync(path.join(out, 'src', f)), f);
    // the same model for CUDA ships no HIP headers
    const cuda = compileModel(model, { target: 'cuda:sm90', out: path.join(dir, 'cuda') });
    assert.ok(cuda.ok);
    assert.ok(!fs.existsSync(path.join(dir, 'cuda', 'src', 'hip')));
    const gfx942 = compileModel(model, { target: 'rocm:gfx942', out: path.join(dir, 'gfx942') });
    assert.ok(gfx942.ok);
    assert.match(fs.readFileSync(path.join(dir, 'gfx942', 'Makefile'), 'utf8'), /^OFFLOAD_ARCH \?= gfx942$/m);
  });

  it('a build with CK instances refuses to make without CK_DIR, or with a CK_DIR that is no CK checkout', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'Makefile'), hipMakefile('m', 'gfx90a', ['src/gemm_0.cu']));
    const env = { ...process.env, CK_DIR: '' };
    const unset = spawnSync('make', ['-n', '-C', dir], { encoding: 'utf8', env });
    assert.notEqual(unset.status, 0);
    assert.match(unset.stderr, /CK_DIR is not set: this model uses Composable Kernel instances/);
    const wrong = spawnSync('make', ['-n', '-C', dir, `CK_DIR=${dir}`], { encoding: 'utf8', env });
    assert.notEqual(wrong.status, 0);
    assert.match(wrong.stderr, /has no include\/ck\/ck\.hpp/);
    // without instances, no CK_DIR is needed (make goes on to the missing sources of this bare directory)
    fs.writeFileSync(path.join(dir, 'Makefile'), hipMakefile('m', 'gfx90a', []));
    const plain = spawnSync('make', ['-n', '-C', dir], { encoding: 'utf8', env });
    assert.doesNotMatch(plain.stderr, /CK_DIR/);
    assert.match(plain.stderr, /build\/model\.o/);
  });

  for (const [name, instances] of [
    ['resnet50', /conv2d/],
    ['vit_base_patch16_224', /gemm/],
  ] as const)
    it(`${name} compiles for rocm:gfx90a with no unsupported node: GEMMs, convs, attention and layernorms are CK instances`, function () {
      this.timeout(120_000);
      const file = sharedModel(name, this);
      const out = path.join(tmp(), 'out');
      const result = compileModel(file, { target: 'rocm:gfx90a', out });
      const errors = result.diagnostics.filter((d) => d.severity === 'error');
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
      );
      assert.ok(result.ok);
      const graph = JSON.parse(fs.readFileSync(result.graphJsonPath, 'utf8')) as {
        nodes: { op: string; status?: { supported: boolean }; kernel?: { library: string; name: string } }[];
      };
      assert.ok(graph.nodes.every((n) => !n.status || n.status.supported));
      const ck = graph.nodes.filter((n) => n.kernel?.library === 'ck');
      assert.ok(ck.length > 0 && ck.some((n) => instances.test(n.op)));
      assert.ok(
        graph.nodes.every((n) => !['gemm', 'MatMul'].includes(n.op) || n.kernel?.library === 'ck'),
        'every GEMM is a CK instance',
      );
      // ViT's attention (12 heads of 64, no mask) and layernorms are CK instances; the rest (pooling, concat, ...) ours
      assert.ok(
        graph.nodes.every((n) => !['layernorm', 'attention'].includes(n.op) || n.kernel?.library === 'ck'),
        'every attention and layernorm is a CK instance',
      );
      if (name === 'vit_base_patch16_224') assert.ok(graph.nodes.some((n) => n.op === 'attention'));
      assert.ok(graph.nodes.some((n) => n.kernel?.library === 'ait'));
      // every instance the model calls is a source the Makefile builds, declared in ait_ck.h
      const makefile = fs.readFileSync(path.join(out, 'Makefile'), 'utf8');
      const header = fs.readFileSync(path.join(out, 'src/ait_ck.h'), 'utf8');
      const files = /^CK_SOURCES := (.*)$/m.exec(makefile)![1].split(' ');
      assert.ok(files.length > 0);
      for (const f of files) {
        const symbol = /^const char\* (ait_ck_\w+)\(/m.exec(fs.readFileSync(path.join(out, f), 'utf8'))![1];
        assert.ok(header.includes(`${symbol}(`), symbol);
      }
      const called = new Set(
        [...fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8').matchAll(/(ait_ck_\w+)\((gemm|conv|row|attention), c\.stream\)/g)].map(
          (m) => m[1],
        ),
      );
      assert.equal(called.size, files.length, 'model.cu calls every instance');
    });
});
