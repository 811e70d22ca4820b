/** The CLI's remote commands (dist/cli.js, built by `npm run build` before the tests) with `--remote local`. */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import * as P from '../../remote-agent/protocol';
import { agentBundle, fixtureCopy } from './helpers/agent-bundle';

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');

describe('ait remote / ait agent (CLI, --remote local)', function () {
  this.timeout(60_000);
  let env: NodeJS.ProcessEnv;
  let workDir: string;

  before(async () => {
    env = { ...process.env, AIT_AGENT_BUNDLE: await agentBundle() };
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-cli-work-'));
  });

  const ait = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });

  it('remote check local prints the hello table, saying there is no GPU', () => {
    const r = ait(['remote', 'check', 'local', '--work-dir', workDir]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^GPUs\s+none: no GPU found \(nvidia-smi not found; rocm-smi not found\)$/m);
    assert.match(r.stdout, /^work dir\s+\S+ait-cli-work-/m);
    assert.match(r.stdout, /^nvcc\s+Cuda compilation tools, release \d+\.\d+/m);
  });

  it('remote build --bench builds there and writes DIR/bench.json with the runner note', () => {
    const dir = fixtureCopy('good-build');
    const r = ait(['remote', 'build', 'local', dir, '--bench', '1,8,64', '--work-dir', workDir]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'bench.json'), 'utf8'));
    assert.equal(report.runner, 'ait_bench');
    assert.deepEqual(report.batchSizes, [1, 8, 64]);
    assert.deepEqual(
      report.results[0].result.results.map((x: { batchSize: number }) => x.batchSize),
      [1, 8, 64],
    );
    assert.match(r.stdout, /^-\s+64\s+32$/m);
  });

  it('remote build of a directory without a Makefile says so, naming the file and host', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-no-makefile-'));
    const r = ait(['remote', 'build', 'local', dir, '--work-dir', workDir]);
    assert.equal(r.status, 1);
    assert.ok(r.stderr.includes(`error [remote.no-makefile] ${path.join(dir, 'Makefile')}, host local:`), r.stderr);
  });

  it('compile refuses --bench without --remote', () => {
    const r = ait(['compile', 'examples/resnet50/resnet50.onnx', '--bench', '1,8']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--build and --bench need --remote HOST/);
  });

  it('ait agent --stdio serves the protocol and runs jobs through its own supervisor', async () => {
    const dir = fixtureCopy('good-build');
    const child = spawn(process.execPath, [CLI, 'agent', '--stdio', '--work-dir', workDir], { stdio: ['pipe', 'pipe', 'inherit'] });
    const rpc = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    rpc.listen();
    try {
      const hello = await rpc.sendRequest(P.hello);
      assert.equal(hello.workDir, workDir);
      const files = fs.readdirSync(dir).map((name) => {
        const content = fs.readFileSync(path.join(dir, name));
        const sha256 = createHash('sha256').update(content).digest('hex');
        return { path: name, sha256, sizeBytes: content.length, mode: 0o644 };
      });
      const plan = await rpc.sendRequest(P.syncPlan, { buildName: 'cli-agent', files });
      for (const f of plan.needed) fs.copyFileSync(path.join(dir, f), path.join(plan.buildDir, f));
      assert.deepEqual((await rpc.sendRequest(P.syncCommit, { buildName: 'cli-agent', files })).mismatched, []);
      const job = await rpc.sendRequest(P.build, { buildName: 'cli-agent', makeArgs: ['slow', 'LINES=3', 'DELAY=0.01'] });
      let text = '';
      rpc.onNotification(P.jobOutput, (o) => (text += o.text));
      const ended = await rpc.sendRequest(P.attach, { jobId: job.id, fromOffset: 0 });
      assert.equal(ended.exitCode, 0);
      assert.equal(text, 'line 1\nline 2\nline 3\n');
    } finally {
      rpc.dispose();
      child.kill();
    }
  });
});
