/**
 * The tensor-core attention kernel's mask pass (kernels/attention.cuh attention_tc_apply_masks: a row pointer per
 * query row and bias, the thread's 16 columns at constant offsets) against the per-score formula
 * (AttentionMask::log2_term), run on the host: compiler/backends/cuda/tests/attention_masks_host.cu, compiled by nvcc
 * as host code (skipped without nvcc). Every lane, row blocks of 1 and 2, full and tail tiles, the mask forms models
 * use. The GPU run of the whole kernel is attention_check.cu.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { requireNvcc, runHostProgram } from '../../helpers/nvcc';

const CUDA = path.resolve(__dirname, '../../../compiler/backends/cuda');

describe('cuda attention: the mask pass of the tensor-core kernel, on the host', function () {
  before(function () {
    requireNvcc(this);
  });

  it('adds what log2_term gives for every lane, tile and mask form (key, full, bias + shift, causal, strides)', function () {
    this.timeout(180_000);
    const stdout = runHostProgram(path.join(CUDA, 'tests', 'attention_masks_host.cu'), 'attention_masks_host');
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 7, stdout);
    for (const line of lines) assert.match(line, / ok$/);
  });
});
