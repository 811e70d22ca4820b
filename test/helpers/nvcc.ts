/**
 * nvcc in tests: whether it is on PATH; compiling a build directory's generated non-CUTLASS sources; and for the
 * opt-in CUTLASS compile tests (AIT_TEST_CUTLASS=1) where the headers are, the gate, and one nvcc call that compiles
 * a source against them. Each fails the test with the compiler's error lines.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireTool, toolPresent } from './tools';

/** CUTLASS_DIR, else the repository's ignored .deps/cutlass (see shared/gpu-host/README.md). */
export const CUTLASS_DIR = process.env.CUTLASS_DIR ?? path.resolve(__dirname, '..', '..', '.deps', 'cutlass');

/** In a describe's before(): skips unless AIT_TEST_CUTLASS=1, and then requires the headers. */
export function requireCutlassOptIn(this: Mocha.Context): void {
  if (process.env.AIT_TEST_CUTLASS !== '1') this.skip();
  assert.ok(fs.existsSync(path.join(CUTLASS_DIR, 'include', 'cutlass', 'cutlass.h')), `no CUTLASS headers under ${CUTLASS_DIR}`);
}

/** Our kernel headers, which instance sources include where they name our epilogue functors (cutlass_gelu.h). */
export const KERNELS_DIR = path.resolve(__dirname, '..', '..', 'compiler', 'backends', 'cuda', 'kernels');

/**
 * nvcc -c of `source` against CUTLASS (and KERNELS_DIR) for `archFlag` (e.g. `-arch=sm_80`,
 * `-gencode=arch=compute_90a,code=sm_90a`); asserts success, showing the first error lines. Returns the seconds
 * nvcc took.
 */
export function nvccCompileCutlass(source: string, archFlag: string, includes: string[] = []): number {
  const started = Date.now();
  const r = spawnSync(
    'nvcc',
    [
      '-std=c++17',
      '-O2',
      '-DNDEBUG',
      archFlag,
      '--expt-relaxed-constexpr',
      `-I${CUTLASS_DIR}/include`,
      `-I${CUTLASS_DIR}/tools/util/include`,
      `-I${KERNELS_DIR}`,
      ...includes.map((i) => `-I${i}`),
      '-c',
      source,
      '-o',
      source.replace(/\.cu$/, '.o'),
    ],
    { encoding: 'utf8' },
  );
  const errors = `${r.stdout}${r.stderr}`
    .split('\n')
    .filter((l) => /error/.test(l))
    .slice(0, 20);
  assert.equal(r.status, 0, errors.join('\n') || `nvcc exited ${String(r.status)} ${r.error ? r.error.message : ''}`);
  return (Date.now() - started) / 1000;
}

/** Writes `text` plus a caller of `instance::run` (so its kernel template is instantiated) to a temporary .cu file. */
export function instanceSource(text: string, instanceName: string, operandsType: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-cutlass-'));
  const source = path.join(dir, 'instance.cu');
  fs.writeFileSync(
    source,
    `${text}\nconst char* ait_call(const ${operandsType}& o, void* w, size_t b, cudaStream_t s) { return ${instanceName}::run(o, w, b, s); }\n`,
  );
  return source;
}

/**
 * Whether nvcc runs here (on PATH; .ci/run puts /usr/local/cuda/bin there). Tests use requireNvcc / haveNvcc, which
 * fail instead of skipping under CI=true.
 */
/** The CUDA targets the compile tests cover, each with the nvcc -gencode of its architecture. */
export const GPU_TARGETS = [
  ['cuda:sm90', 'arch=compute_90a,code=sm_90a'],
  ['cuda:sm80', 'arch=compute_80,code=sm_80'],
] as const;

/** The nvcc -gencode of a CUDA target (sm90: the arch-specific 90a, as generated sm90 code needs). */
export function gencodeOf(target: string): string {
  return target === 'cuda:sm90' ? 'arch=compute_90a,code=sm_90a' : 'arch=compute_80,code=sm_80';
}

export const HAVE_NVCC = spawnSync('nvcc', ['--version'], { encoding: 'utf8' }).status === 0;

const NVCC_HINT = 'not on PATH; install the CUDA toolkit, or put /usr/local/cuda/bin on PATH';

/** In a hook or test: skips without nvcc (saying so); under CI=true, fails naming it. */
export function requireNvcc(ctx: Mocha.Context): void {
  requireTool(ctx, 'nvcc', HAVE_NVCC, NVCC_HINT);
}

/** For the nvcc part of a test: whether nvcc runs here; under CI=true, throws when it does not. */
export function haveNvcc(): boolean {
  return toolPresent('nvcc', HAVE_NVCC, NVCC_HINT);
}

/**
 * nvcc -c of generated sources (paths relative to the build directory `out`, e.g. `src/model.cu`) with the include
 * paths `ait compile` writes (src, src/runtime, src/kernels), for `gencode` (e.g. `arch=compute_80,code=sm_80`).
 */
export function nvccCompileGenerated(out: string, sources: string[], gencode: string): void {
  const flags = [
    '-std=c++17',
    '-O1',
    '--expt-relaxed-constexpr',
    `-gencode=${gencode}`,
    '-Xcompiler',
    '-fPIC',
    '-Isrc',
    '-Isrc/runtime',
    '-Isrc/kernels',
  ];
  for (const source of sources) {
    const r = spawnSync('nvcc', [...flags, '-c', source, '-o', path.basename(source) + '.o'], { cwd: out, encoding: 'utf8' });
    assert.equal(r.status, 0, `${path.join(out, source)}:\n${r.stderr}${r.stdout}`);
  }
}

/** The kernel headers (compiler/backends/cuda/kernels): host programs compile against them. */
const KERNELS = path.resolve(__dirname, '..', '..', 'compiler', 'backends', 'cuda', 'kernels');

/**
 * Builds a host-only C++ program against the kernel headers with nvcc (no GPU: the `__host__ __device__` helpers run
 * on the CPU) and runs it; `source` is a file, or the program's text. Fails the test when the build or the run does
 * (a host check exits non-zero on a mismatch); returns the program's stdout.
 */
export function runHostProgram(source: string, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ait-${name}-`));
  let file = source;
  if (!fs.existsSync(source)) {
    file = path.join(dir, `${name}.cu`);
    fs.writeFileSync(file, source);
  }
  const binary = path.join(dir, name);
  const built = spawnSync('nvcc', ['-std=c++17', `-I${KERNELS}`, file, '-o', binary], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  const run = spawnSync(binary, { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  return run.stdout;
}
