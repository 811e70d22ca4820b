/**
 * The ROCm backend without an AMD GPU: hipcc (Debian's 5.2.3 in CI) compiles our kernels and the runtime from the
 * shared sources for gfx90a, and a small model compiled for rocm:gfx90a builds with its generated Makefile into
 * lib<model>.so (exporting the C ABI) and ait_bench. Nothing here runs a kernel: no AMD GPU is reachable.
 * Skipped when hipcc is absent (under CI=true that fails instead: test/helpers/tools.ts).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../../compiler/compile';
import { hipEnv, requireHipcc } from '../../helpers/hipcc';
import { buildModel } from '../../helpers/onnx-builder';
import { SMALL_HIP_MODEL_OURS } from './small-model';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CUDA = path.join(ROOT, 'compiler/backends/cuda');
const FLAGS = [
  '-x',
  'hip',
  '-std=c++17',
  '-O1',
  '--offload-arch=gfx90a',
  '-fPIC',
  `-I${CUDA}/hip`,
  `-I${CUDA}/runtime`,
  `-I${CUDA}/kernels`,
];

function hipcc(args: string[], cwd?: string): void {
  const r = spawnSync('hipcc', args, { encoding: 'utf8', env: hipEnv(), cwd });
  const errors = `${r.stdout}${r.stderr}`
    .split('\n')
    .filter((l) => / error[: ]/.test(l))
    .slice(0, 20);
  assert.equal(r.status, 0, errors.join('\n') || `hipcc exited ${String(r.status)}: ${r.stderr}`);
}

/** The AIT* functions a shared library exports, and those ait_runtime.h declares. */
function exportedAbi(library: string): { exported: string[]; declared: string[] } {
  const symbols = spawnSync('nm', ['-D', '--defined-only', library], { encoding: 'utf8' });
  assert.equal(symbols.status, 0, symbols.stderr);
  const exported = symbols.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/).pop() ?? '')
    .filter((name) => name.startsWith('AIT'));
  const header = fs.readFileSync(path.join(CUDA, 'runtime/ait_runtime.h'), 'utf8');
  const declared = [...header.matchAll(/AIT_API\s+[\w\s*]+?\b(AIT\w+)\(/g)].map((m) => m[1]);
  return { exported: exported.sort(), declared: declared.sort() };
}

describe('rocm backend: hipcc compiles the shared kernels and runtime for gfx90a', function () {
  before(function () {
    requireHipcc(this);
  });

  it('every kernel template instantiated (tests/kernel_instances.cu) as HIP', function () {
    this.timeout(900_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-hipcc-'));
    hipcc([...FLAGS, '-c', path.join(CUDA, 'tests/kernel_instances.cu'), '-o', path.join(dir, 'kernel_instances.o')]);
  });

  it('runtime + example model link into a shared library exporting the C ABI', function () {
    this.timeout(600_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-hipcc-'));
    const objects = ['runtime/ait_runtime.cu', 'runtime/safetensors.cc', 'tests/example_model.cu'].map((source) => {
      const object = path.join(dir, path.basename(source) + '.o');
      hipcc([...FLAGS, '-Wno-unused-result', '-fvisibility=hidden', '-c', path.join(CUDA, source), '-o', object]);
      return object;
    });
    const library = path.join(dir, 'libexample_model.so');
    hipcc(['-shared', '--offload-arch=gfx90a', ...objects, '-o', library]);
    const { exported, declared } = exportedAbi(library);
    assert.ok(declared.length >= 25, `parsed ${declared.length} declarations`);
    assert.deepEqual(exported, declared);
  });

  it('a small model compiled for rocm:gfx90a (no CK instance: layernorm without beta, softmax over a middle axis) builds with its Makefile into the library and ait_bench', function () {
    this.timeout(900_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-hip-model-'));
    const model = path.join(dir, 'small_hip.onnx');
    fs.writeFileSync(model, buildModel(SMALL_HIP_MODEL_OURS));
    const out = path.join(dir, 'out');
    const result = compileModel(model, { target: 'rocm:gfx90a', out });
    assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
    assert.match(result.codegen ?? '', / 0 CK instances/);
    const make = spawnSync('make', ['-C', out, '-j2'], { encoding: 'utf8', env: hipEnv() });
    assert.equal(
      make.status,
      0,
      `${make.stdout}\n${make.stderr}`
        .split('\n')
        .filter((l) => /error/.test(l))
        .slice(0, 20)
        .join('\n'),
    );
    assert.ok(fs.existsSync(path.join(out, 'ait_bench')), 'ait_bench built');
    const { exported, declared } = exportedAbi(path.join(out, 'libsmall_hip.so'));
    assert.deepEqual(exported, declared);
  });
});
