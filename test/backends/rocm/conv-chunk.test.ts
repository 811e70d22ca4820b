/**
 * A conv whose activations pass CK's 2 GiB at the max batch (DeepLabV3's 65×65×2048 head at batch 256) runs
 * over chunks of images, as the CUDA build does (test/backends/cuda/cutlass-conv.test.ts), instead of being refused.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../../compiler/compile';
import { buildModel } from '../../helpers/onnx-builder';

/** x [B, C, 65, 65] → 1×1 Conv to K channels, + a residual input r [B, K, 65, 65], Relu. */
function compileHead(c: number, k: number, maxBatch: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ck-conv-chunk-'));
  const file = path.join(dir, 'head.onnx');
  fs.writeFileSync(
    file,
    buildModel({
      inputs: [
        { name: 'x', dtype: 'float32', dims: ['B', c, 65, 65] },
        { name: 'r', dtype: 'float32', dims: ['B', k, 65, 65] },
      ],
      initializers: [
        { name: 'w', dtype: 'float32', dims: [k, c, 1, 1], values: Array.from({ length: k * c }, (_, i) => ((i % 7) - 3) / 64) },
        { name: 'b', dtype: 'float32', dims: [k], values: Array.from({ length: k }, (_, i) => (i % 5) / 8) },
      ],
      nodes: [
        { op: 'Conv', name: 'conv', inputs: ['x', 'w', 'b'], outputs: ['h'], attrs: { kernel_shape: [1, 1] } },
        { op: 'Add', name: 'add', inputs: ['h', 'r'], outputs: ['s'] },
        { op: 'Relu', name: 'relu', inputs: ['s'], outputs: ['y'] },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: ['B', k, 65, 65] }],
    }),
  );
  const out = path.join(dir, 'out');
  const r = compileModel(file, { out, target: 'rocm:gfx90a', maxBatch });
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  return fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
}

describe('rocm backend: a conv whose activations pass 2 GiB at the max batch', () => {
  it('runs over chunks of images within the 2 GiB CK addresses, each on its slices of input, residual and output', () => {
    // 256 × 65 × 65 × 2048 = 2.2e9 fp16 output elements: chunks of floor(2^30 / (65·65·2048)) = 124 images
    const model = compileHead(1024, 2048, 256);
    assert.match(model, /const int64_t images = batch, in_image = 4326400, out_image = 8652800;/);
    assert.match(model, /for \(int64_t first = 0; first < images; first \+= 124\) \{/);
    assert.match(model, /const int64_t batch = std::min<int64_t>\(124, images - first\);/);
    assert.match(model, /static_cast<int>\(batch\), 65, 65, 1024, 2048,/);
    assert.match(model, /\+ first \* in_image, static_cast<const __half\*>/);
    // the residual (a full operand) moves with the chunk, the bias (per channel) does not
    const operands = /\{([^{}]*)\},\s*\{(true|false), (true|false), (true|false), (true|false)\},/.exec(model);
    assert.ok(operands, 'the epilogue operands');
    const pointers = operands[1].split(', ');
    const flags = operands.slice(2, 6);
    pointers.forEach((p, i) => {
      if (p === 'nullptr') return;
      if (flags[i] === 'true') assert.doesNotMatch(p, /first \*/, `per-channel operand ${i}: ${p}`);
      else assert.match(p, /\+ first \* out_image$/, `full operand ${i}: ${p}`);
    });
    assert.ok(flags.includes('true') && flags.includes('false'), `a bias and a residual: ${flags.join(',')}`);
    assert.match(model, /\) \+ first \* out_image\};/);
  });

  it('launches once when the max batch fits', () => {
    const model = compileHead(1024, 2048, 64);
    assert.doesNotMatch(model, /first \* in_image|const int64_t images/);
    assert.match(model, /const AitCkConvArgs conv\{static_cast<int>\(batch\), 65, 65, 1024, 2048,/);
  });
});
