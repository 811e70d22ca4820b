/**
 * `ait modules DIR --profile P --torch-times T [--json]`: the per-module table joined from saved files, on vitmatte's
 * compiled graph.json (TorchScript scopes /m/backbone/...) with a synthetic profile and PyTorch times of the inner
 * model (no wrapper: the `m.` prefix is dropped), and the errors of a saved verify-per-node.json.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../compiler/cli/main';
import { optimizeModel } from '../compiler/compile';
import { graphToJson } from '../compiler/ir/serialize';
import type { ModuleRow } from '../compiler/verify/per-node';
import { sharedModel } from './helpers/models';

async function ait(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const saved = process.exitCode;
  process.exitCode = 0;
  await main(
    ['node', 'ait', ...args],
    (s) => (stdout += s + '\n'),
    (s) => (stderr += s + '\n'),
  );
  const code = Number(process.exitCode ?? 0);
  process.exitCode = saved;
  return { code, stdout, stderr };
}

describe('ait modules', function () {
  this.timeout(60_000);
  let dir: string;
  let kernels: { id: string; scope: string[] }[];
  let profileFile: string;
  let torchFile: string;

  before(function () {
    const model = sharedModel('vitmatte', this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-modules-'));
    const { graph, model: imported } = optimizeModel(model);
    const json = graphToJson(graph, { modelName: 'vitmatte', info: imported.info });
    fs.writeFileSync(path.join(dir, 'graph.json'), JSON.stringify(json));
    kernels = json.nodes.filter((n) => n.role === 'kernel');
    // 0.01 ms per kernel node: a module's time is 0.01 × its kernel count
    profileFile = path.join(dir, 'profile-b1.json');
    fs.writeFileSync(
      profileFile,
      JSON.stringify({
        format: 'ait-profile',
        version: 1,
        graph: { model: 'vitmatte' },
        gpu: { name: 'NVIDIA H100' },
        date: '2026-12-07T00:00:00Z',
        runs: 20,
        batch: 1,
        ops: Object.fromEntries(kernels.map((n) => [n.id, { meanMs: 0.01 }])),
      }),
    );
    torchFile = path.join(dir, 'torch.json');
    fs.writeFileSync(
      torchFile,
      JSON.stringify({
        format: 'ait-torch-module-times',
        version: 1,
        torch: '2.11.0',
        device: 'NVIDIA H100',
        dtype: 'float16',
        runs: 20,
        totalMs: 5,
        modules: { '': 5.5, backbone: 4, decoder: 1, 'backbone.encoder.layer.0': 0.3 },
      }),
    );
  });

  const countIn = (prefix: string) => kernels.filter((n) => n.scope.slice(0, prefix.split('/').length).join('/') === prefix).length;

  it('prints ours, torch and the speedup per module', async () => {
    const r = await ait('modules', dir, '--profile', profileFile, '--torch-times', torchFile);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /module +nodes +max abs err +max rel L2 +fp16 overflows +ours ms +torch ms +speedup/);
    const backbone = countIn('m/backbone') * 0.01;
    const line = r.stdout.split('\n').find((l) => /^ {2}backbone /.test(l))!;
    assert.ok(line, r.stdout);
    const cells = line.trim().split(/\s+/);
    assert.deepEqual(cells.slice(0, 4), ['backbone', '0', '-', '-'], 'no errors without a verify report');
    assert.equal(Number(cells[4]), Number(backbone.toPrecision(3)));
    assert.equal(cells[5], '4.00');
    assert.equal(cells[6], `${(4 / backbone).toFixed(2)}x`);
    assert.match(r.stdout, /ours: per-op profile at batch 1 on NVIDIA H100, 20 runs/);
    assert.match(r.stdout, /torch: PyTorch eager 2\.11\.0 float16 on NVIDIA H100, median of 20 runs, whole forward 5\.00 ms; 3 module row/);
  });

  it('--json: the rows with timeMs, referenceTimeMs, speedup; absent where a side has no time', async () => {
    const r = await ait('modules', dir, '--profile', profileFile, '--torch-times', torchFile, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { modules: ModuleRow[]; times: { reference: { matched: number } } };
    const row = (m: string) => j.modules.find((x) => x.module === m)!;
    const layer0 = countIn('m/backbone/encoder/layer.0') * 0.01;
    assert.ok(Math.abs(row('m/backbone/encoder/layer.0').timeMs! - layer0) < 1e-9);
    assert.equal(row('m/backbone/encoder/layer.0').torchModule, 'backbone.encoder.layer.0');
    assert.ok(Math.abs(row('m/backbone/encoder/layer.0').speedup! - 0.3 / layer0) < 1e-9);
    assert.equal(row('m/backbone/encoder/layer.1').referenceTimeMs, undefined);
    assert.ok(!('speedup' in row('m/backbone/encoder/layer.1')));
    assert.equal(j.times.reference.matched, 3);
  });

  it('joins the errors of DIR/verify-per-node.json; torch times alone; bad input named', async () => {
    fs.writeFileSync(
      path.join(dir, 'verify-per-node.json'),
      JSON.stringify({
        modules: [
          { module: 'm/decoder', depth: 2, nodes: 4, maxAbs: 0.25, maxRelativeL2: 0.003, nonFinite: 0, fp16Overflows: 1, timeMs: 99 },
        ],
      }),
    );
    try {
      const r = await ait('modules', dir, '--torch-times', torchFile, '--json');
      assert.equal(r.code, 0, r.stderr);
      const decoder = (JSON.parse(r.stdout) as { modules: ModuleRow[] }).modules.find((m) => m.module === 'm/decoder')!;
      assert.equal(decoder.maxAbs, 0.25);
      assert.equal(decoder.fp16Overflows, 1);
      assert.equal(decoder.referenceTimeMs, 1);
      assert.equal(decoder.timeMs, undefined, 'no profile given: no time of ours (the saved one is not reused)');
    } finally {
      fs.rmSync(path.join(dir, 'verify-per-node.json'));
    }
    const none = await ait('modules', dir);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /give the times to join: --profile PROFILE\.json \(ours\) and\/or --torch-times/);
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ modules: { a: 'fast' } }));
    const b = await ait('modules', dir, '--torch-times', bad);
    assert.equal(b.code, 1);
    assert.match(b.stderr, /error \[modules\.bad-torch-times\] .*bad\.json.*module 'a' has time "fast"/);
  });
});
