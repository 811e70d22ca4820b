/**
 * Zoo vision models that need Pad, general broadcast, Reduce* and grouped conv of any channels per group: timm Swin-S
 * (TorchScript export: window Pads by zeros, the shifted-window mask added over [B, windows, heads, S, S], the head's
 * ReduceMean over H,W) and timm RegNetX-016 (grouped 3×3 convs with 24 channels per group) compile for sm90 and sm80
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
      const reduce = graph.nodes.find((n) => n.op === 'ReduceMean');
      assert.equal(reduce?.kernel?.name, 'ait_reduce_mean_f16');
      // the shifted-window mask [1, windows, 1, S, S] over [B, windows, heads, S, S]: a strided broadcast
      assert.match(model, /args\.strided\[1\] = \{4, \{batch, 64, 3, 2401\}, \{0, 2401, 0, 1\}\};/);
    });
    it(`regnetx_016 ${target}`, function () {
      const { graph } = compileZoo(this, 'regnetx_016', target);
      const grouped = graph.nodes.filter((n) => n.kernel?.config.path === 'grouped-direct');
      assert.equal(grouped.length, 18);
      for (const conv of grouped) assert.equal(conv.kernel!.name, 'ait_grouped_conv2d_nhwc_f16_vec');
    });
  }
});
