/**
 * Zoo vision models that need Pad, general broadcast, Reduce* and grouped conv of any channels per group: timm Swin-S
 * (TorchScript export: window Pads by zeros, window attention with its relative position bias and the shifted-window
 * mask added over [B, windows, heads, S, S] fused into the attention kernel, the head's ReduceMean over H,W; each torch.roll one Roll, the padding crops views) and timm RegNetX-016 (grouped 3×3 convs with 24 channels per group) compile for sm90 and sm80
 * with no unsupported node. Skipped when ../shared/models/zoo is absent.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../../compiler/compile';
import { SHARED_MODELS_DIR } from '../../helpers/models';

interface GraphJson {
  nodes: {
    op: string;
    name: string;
    status?: { supported: boolean; reason?: string };
    kernel?: { name: string; config: Record<string, unknown> };
  }[];
}

function compileZoo(ctx: Mocha.Context, name: string, target: string) {
  const file = path.join(SHARED_MODELS_DIR, 'zoo', `${name}.onnx`);
  if (!fs.existsSync(file)) {
    console.log(`    (skipped: ${file} not found; ../shared/models is only on developer machines and CI)`);
    ctx.skip();
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-zoo-'));
  try {
    const out = path.join(dir, 'out');
    const result = compileModel(file, { out, target });
    const errors = result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message);
    assert.deepEqual(errors, [], `${name} ${target}`);
    assert.ok(result.ok);
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as GraphJson;
    const unsupported = graph.nodes.filter((n) => n.status && !n.status.supported);
    assert.deepEqual(
      unsupported.map((n) => `${n.op} ${n.name}: ${n.status!.reason}`),
      [],
    );
    return { graph, model: fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('zoo vision models: Swin-S and RegNetX-016 compile with no unsupported node', function () {
  this.timeout(600_000);
  for (const target of ['cuda:sm90', 'cuda:sm80']) {
    it(`swin_small_patch4_window7_224 ${target}`, function () {
      const { graph, model } = compileZoo(this, 'swin_small_patch4_window7_224', target);
      // the window Pads pad by zeros (56, 28, 14 and 7 are multiples of the window): removed as no-ops
      assert.equal(graph.nodes.filter((n) => n.op === 'Pad').length, 0);
      // torch.roll of the 11 shifted blocks (Slice, Slice, Concat on H then on W, before the partition and after the
      // reverse) is 22 Rolls over H and W; timm's x[:, :H, :W, :] crops of a zero padding are views: no Slice left
      const rolls = graph.nodes.filter((n) => n.op === 'Roll');
      assert.equal(rolls.length, 22);
      for (const n of rolls) assert.equal(n.kernel?.name, 'ait_roll_f16');
      assert.equal(graph.nodes.filter((n) => n.op === 'Slice' || n.op === 'Concat').length, 0);
      assert.match(model, /RollArgs<__half> args\{[^;]*\{batch, 56, 56, 96\}, \{0, 53, 53, 0\}\};/);
      const reduce = graph.nodes.find((n) => n.op === 'ReduceMean');
      assert.equal(reduce?.kernel?.name, 'ait_reduce_mean_f16');
      // every window attention fused (24 blocks): the relative position bias [1, heads, S, S] and, in the shifted
      // blocks, the mask [1, windows, 1, S, S] over [B, windows, heads, S, S] read by the attention kernel
      const attention = graph.nodes.filter((n) => n.op === 'attention');
      assert.equal(attention.length, 24);
      assert.equal(graph.nodes.filter((n) => n.op === 'Softmax' || n.op === 'MatMul').length, 0);
      for (const n of attention) assert.match(n.kernel!.name, /^ait_attention_f16_d32_masked$/);
      // stage 1 (3 heads, 64 windows of 49 tokens): the shift mask read at window b % 64, and the [1,3,49,49] bias
      assert.match(model, /args\.batch = 64 \* batch;/);
      assert.match(model, /args\.bias\[0\] = \{[^,]+, 64, 2401, 0, 49, 1\};\n\s+args\.bias\[1\] = \{[^,]+, 1, 7203, 2401, 49, 1\};/);
    });
    it(`regnetx_016 ${target}`, function () {
      const { graph } = compileZoo(this, 'regnetx_016', target);
      const grouped = graph.nodes.filter((n) => n.kernel?.config.path === 'grouped-direct');
      assert.equal(grouped.length, 18);
      for (const conv of grouped) assert.equal(conv.kernel!.name, 'ait_grouped_conv2d_nhwc_f16_vec');
    });
  }
});
