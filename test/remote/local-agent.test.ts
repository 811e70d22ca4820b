import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CompileError } from '../../compiler/diagnostics';
import { openSession, type RemoteSession } from '../../remote-agent/client';
import { agentBundle, fixtureCopy, pidAlive, waitFor } from './helpers/agent-bundle';
import { syncMirrorScenario } from './helpers/sync-mirror';

describe('remote agent through the local transport (--remote local)', function () {
  this.timeout(60_000);
  let session: RemoteSession;
  let workDir: string;

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-agent-work-'));
    session = await openSession('local', { agentBundlePath: await agentBundle(), remoteWorkDir: workDir });
  });
  after(() => session?.close());

  it('hello says cleanly that there is no GPU and reports the tools it finds', async () => {
    const h = await session.hello();
    assert.equal(h.agentVersion, '0.1.0');
    assert.equal(h.workDir, workDir);
    assert.deepEqual(h.gpus, []);
    assert.equal(h.gpuProbe.tool, null);
    assert.match(h.gpuProbe.note, /no GPU found \(nvidia-smi not found; rocm-smi not found\)/);
    assert.match(h.nvcc?.version ?? '', /release \d+\.\d+/);
    assert.ok('unavailable' in h.nativeBinding);
  });

  it('builds, reports a compile error with file and line, and benches through ait_bench with a note', async () => {
    const bad = fixtureCopy('bad-build');
    const badSync = await session.sync(bad);
    const failed = await session.build(bad, badSync, () => undefined);
    assert.equal(failed.result.ok, false);
    const err = failed.result.diagnostics.find((d) => d.code === 'build.compile-error');
    assert.ok(err, JSON.stringify(failed.result.diagnostics));
    assert.equal(err.location?.file, path.join(bad, 'main.c'));
    assert.equal(err.location?.line, 4);
    assert.match(err.message, /undeclared_value/);
    assert.equal(err.location?.host, 'local');

    const good = fixtureCopy('good-build');
    const summary = await session.sync(good);
    const built = await session.build(good, summary, () => undefined);
    assert.equal(built.result.ok, true, JSON.stringify(built.result.diagnostics));
    const bench = await session.bench({ buildName: summary.buildName, batchSizes: [1, 8, 64] }, () => undefined);
    assert.equal(bench.runner?.runner, 'ait_bench');
    assert.match(bench.runner?.note ?? '', /no model library \(lib<name>\.so\) in .* for the native binding/);
    assert.equal(bench.results.length, 1);
    assert.deepEqual(
      (bench.results[0].json as { results: { batchSize: number }[] }).results.map((r) => r.batchSize),
      [1, 8, 64],
    );
  });

  it('sync mirrors the local directory: what it no longer has goes on the host, and another model leaves no library behind', async () => {
    await syncMirrorScenario(session);
  });

  it('cancel ends the whole process group of a job, grandchildren included', async () => {
    const good = fixtureCopy('good-build');
    const summary = await session.sync(good);
    const pids = path.join(good, 'pids');
    const job = await session.startBuild({ buildName: summary.buildName, makeArgs: ['tree', `PIDS=${pids}`] });
    await waitFor('the job to write its pids', () => fs.existsSync(`${pids}.grandchild`) && fs.existsSync(`${pids}.shell`));
    const grandchild = Number(fs.readFileSync(`${pids}.grandchild`, 'utf8'));
    const shell = Number(fs.readFileSync(`${pids}.shell`, 'utf8'));
    assert.ok(pidAlive(grandchild) && pidAlive(shell));
    const cancelled = await session.cancel(job.id);
    assert.equal(cancelled.signalled, true);
    await waitFor('the job processes to end', () => !pidAlive(grandchild) && !pidAlive(shell));
    const ended = await session.followJob(job.id, () => undefined);
    assert.equal(ended.state, 'cancelled');
  });

  it('refuses a build directory that was never synced, naming the host', async () => {
    await assert.rejects(session.startBuild({ buildName: 'never-synced' }), (e: CompileError) => {
      assert.equal(e.diagnostics[0].code, 'build.not-synced');
      assert.equal(e.diagnostics[0].location?.host, 'local');
      return true;
    });
  });
});
