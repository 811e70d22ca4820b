/**
 * The details panel's kernel configuration text (webview/details.ts configValue): the per-batch-range instances of a
 * GEMM, and for a GEMM whose N or K is a run-time size the condition under which each set runs (graph.json
 * kernel.config.instances[].when, docs/graph-format.md).
 */
import * as assert from 'node:assert/strict';
import { configValue } from '../../webview/details';

describe('webview: kernel configuration in the details panel', () => {
  it('lists instances per batch range, with the condition that picks them when there is one', () => {
    const html = configValue([
      { batches: [1, 8], name: 'cutlass3x_sm90_x_align8', file: 'src/gemm_0.cu', when: 'N and K multiples of 8' },
      { batches: [1, 8], name: 'cutlass_tensorop_x_align1', file: 'src/gemm_1.cu', when: 'otherwise' },
      { batches: [9, 256], name: 'plain' },
    ]);
    assert.match(
      html,
      /<div>N and K multiples of 8, batch 1\.\.8: <code>cutlass3x_sm90_x_align8<\/code> <span class="muted">src\/gemm_0\.cu<\/span><\/div>/,
    );
    assert.match(html, /<div>otherwise, batch 1\.\.8: <code>cutlass_tensorop_x_align1<\/code>/);
    assert.match(html, /<div>batch 9\.\.256: <code>plain<\/code><\/div>/);
  });

  it('escapes what graph.json says (a name from a model file is never markup)', () => {
    const html = configValue([{ batches: [1, 1], name: '<img src=x onerror=alert(1)>', when: '<b>' }]);
    assert.doesNotMatch(html, /<img|<b>/);
    assert.match(html, /&#60;img src=x/);
  });
});
