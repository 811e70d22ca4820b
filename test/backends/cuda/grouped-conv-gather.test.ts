/**
 * The grouped conv tensor-core path's gathers (kernels/grouped_conv.cuh: the row table, the im2col and weight tiles
 * of each K step) run on the host with the header's own functions, the MMA as plain sums:
 * compiler/backends/cuda/tests/grouped_conv_gather_host.cu, compiled by nvcc as host code (skipped without nvcc),
 * must equal a direct convolution for 2-D and 3-D problems, both gather paths and every block width. The GPU run of
 * the kernel (wmma included) is grouped_conv_check.cu.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { requireNvcc, runHostProgram } from '../../helpers/nvcc';

const CUDA = path.resolve(__dirname, '../../../compiler/backends/cuda');

describe('cuda grouped conv: the tensor-core path gathers what a direct convolution reads, on the host', function () {
  before(function () {
    requireNvcc(this);
  });

  it('2-D and 3-D, 16-byte and element gathers, 8/16/24/32-wide blocks, part-empty blocks', function () {
    this.timeout(180_000);
    const stdout = runHostProgram(path.join(CUDA, 'tests', 'grouped_conv_gather_host.cu'), 'grouped_conv_gather_host');
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 7, stdout);
    for (const line of lines) assert.match(line, / ok$/);
  });
});
