/**
 * The GELU of CUTLASS epilogues (kernels/gelu.cuh gelu_fast, through kernels/cutlass_gelu.h): its formula, evaluated
 * by the header's host path (exp2f and a division where the device uses ex2.approx and rcp.approx, whose errors are
 * below 2^-22), against the exact GELU 0.5·x·(1 + erf(x/√2)) in double precision; and the device path compiles for
 * sm_80 and sm_90. kernel_check.cu checks the device path on the GPU host.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KERNELS_DIR, requireNvcc } from '../../helpers/nvcc';

const PROGRAM = `#include <cmath>
#include <cstdio>
#include "gelu.cuh"
__global__ void apply(const float* x, float* y, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = ait::gelu_fast(x[i]); }
int main() {
  double worst_abs = 0, worst_rel = 0, worst_tail = 0;
  bool monotone_tail = true;
  float previous = ait::gelu_fast(-12.f);
  for (int i = 0; i <= 2400000; ++i) {
    const float x = -12.f + i * 1e-5f;
    const float y = ait::gelu_fast(x);
    const double exact = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    const double error = std::fabs(y - exact);
    worst_abs = std::fmax(worst_abs, error);
    if (std::fabs(exact) > 0.01) worst_rel = std::fmax(worst_rel, error / std::fabs(exact));
    if (x > 0.f && y < previous) monotone_tail = false;  // GELU increases for x > -0.75
    previous = y;
  }
  for (float x : {6.f, 20.f, 1000.f, 65504.f}) worst_tail = std::fmax(worst_tail, std::fabs(ait::gelu_fast(x) - x) / x);
  std::printf("%.3e %.3e %.3e %d %d %d\\n", worst_abs, worst_rel, worst_tail, monotone_tail ? 1 : 0,
              std::isnan(ait::gelu_fast(NAN)) ? 1 : 0, ait::gelu_fast(-1000.f) <= 0.f && ait::gelu_fast(-1000.f) > -1e-3f ? 1 : 0);
  return 0;
}
`;

describe('cuda backend: the epilogue GELU (gelu.cuh)', function () {
  this.timeout(180000);
  let dir: string;
  before(function () {
    requireNvcc(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gelu-'));
    fs.writeFileSync(path.join(dir, 'gelu_check.cu'), PROGRAM);
  });

  it('stays within 1.4e-5 of the exact GELU over [-12, 12] (host path of the same formula)', function () {
    const exe = path.join(dir, 'gelu_check');
    const build = spawnSync('nvcc', ['-std=c++17', '-O2', '-arch=sm_80', `-I${KERNELS_DIR}`, path.join(dir, 'gelu_check.cu'), '-o', exe], {
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, build.stderr);
    const run = spawnSync(exe, [], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const [abs, rel, tail, monotone, nan, negative] = run.stdout.trim().split(' ').map(Number);
    assert.ok(abs <= 1.4e-5, `largest absolute error ${abs}`);
    assert.ok(rel <= 1.4e-3, `largest relative error where |GELU| > 0.01: ${rel}`);
    assert.ok(tail <= 1e-6, `GELU(x) = x for large x: relative error ${tail}`);
    assert.equal(monotone, 1, 'increasing for x > 0');
    assert.equal(nan, 1, 'NaN in, NaN out');
    assert.equal(negative, 1, 'GELU(-1000) is a tiny non-positive number');
  });

  it('compiles the device path (ex2.approx, rcp.approx) for sm_80 and sm_90', function () {
    const r = spawnSync(
      'nvcc',
      [
        '-std=c++17',
        '-O2',
        '-gencode',
        'arch=compute_80,code=sm_80',
        '-gencode',
        'arch=compute_90,code=sm_90',
        `-I${KERNELS_DIR}`,
        '-c',
        path.join(dir, 'gelu_check.cu'),
        '-o',
        path.join(dir, 'gelu_check.o'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
  });
});
