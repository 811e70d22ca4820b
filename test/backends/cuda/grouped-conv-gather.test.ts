/**
 * The grouped conv tensor-core path's gathers (kernels/grouped_conv.cuh: the row table, the im2col and weight tiles
 * of each K step) run on the host with the header's own functions, the MMA as plain sums:
 * compiler/backends/cuda/tests/grouped_conv_gather_host.cu, compiled by nvcc as host code (skipped without nvcc),
 * must equal a direct convolution for 2-D and 3-D problems, both gather paths and every block width. The GPU run of
 * the kernel (wmma included) is grouped_conv_check.cu.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireNvcc } from '../../helpers/nvcc';

const CUDA = path.resolve(__dirname, '../../../compiler/backends/cuda');

describe('cuda grouped conv: the tensor-core path gathers what a direct convolution reads, on the host', function () {
  before(function () {
    requireNvcc(this);
  });

  it('2-D and 3-D, 16-byte and element gathers, 8/16/24/32-wide blocks, part-empty blocks', function () {
    this.timeout(180_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-grouped-gather-'));
    const binary = path.join(dir, 'grouped_conv_gather_host');
    const source = path.join(CUDA, 'tests', 'grouped_conv_gather_host.cu');
    const built = spawnSync('nvcc', ['-std=c++17', `-I${path.join(CUDA, 'kernels')}`, source, '-o', binary], { encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    const run = spawnSync(binary, { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines.length, 7, run.stdout);
    for (const line of lines) assert.match(line, / ok$/);
  });
});
