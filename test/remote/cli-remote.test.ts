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
import { fakeGemmBuild, gemmReluModel } from './helpers/verify-fixtures';

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

  it('remote bench --instances --threads --duration runs ait_bench on every GPU (pinned) and reports images/s and percentiles', () => {
    // a fake nvidia-smi listing two GPUs: one job per GPU, pinned with CUDA_VISIBLE_DEVICES (the fake ait_bench echoes it)
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-fake-smi-'));
    fs.writeFileSync(path.join(bin, 'nvidia-smi'), "#!/bin/sh\nprintf '0, NVIDIA H100, 81559, 9.0\\n1, NVIDIA H100, 81559, 9.0\\n'\n", {
      mode: 0o755,
    });
    const dir = fixtureCopy('good-build');
    const args = [
      'remote',
      'bench',
      'local',
      dir,
      '--batch-sizes',
      '8',
      '--instances',
      '4',
      '--threads',
      '2',
      '--duration',
      '3',
      '--work-dir',
      workDir,
    ];
    const r = spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      env: { ...env, PATH: `${bin}${path.delimiter}${env.PATH}` },
    });
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'bench.json'), 'utf8'));
    assert.equal(report.runner, 'ait_bench');
    assert.match(report.note, /throughput mode/);
    assert.deepEqual(report.throughput, { instances: 4, threads: 2, durationS: 3 });
    assert.deepEqual(report.batchSizes, [8]);
    assert.deepEqual(
      report.results.map((x: { gpu: number; result: { device: string } }) => [x.gpu, x.result.device]),
      [
        [0, '0'],
        [1, '1'],
      ],
    );
    // the fake ait_bench echoes what it was given: 100 runs per instance over the duration
    const [entry] = report.results[1].result.results;
    assert.deepEqual(
      [entry.mode, entry.batchSize, entry.instances, entry.threads, entry.durationS, entry.runs],
      ['throughput', 8, 4, 2, 3, 400],
    );
    assert.match(
      r.stdout,
      /^gpu\s+mode\s+batchSize\s+instances\s+threads\s+durationS\s+runs\s+itemsPerSecond\s+p50Ms\s+p95Ms\s+p99Ms\s+maxMs$/m,
    );
    assert.match(r.stdout, /^1\s+throughput\s+8\s+4\s+2\s+3\s+400\s+1066\.700\s+4\s+6\s+7\s+8$/m);
  });

  it('remote bench refuses more threads than instances (the agent says why), and --instances without --bench', () => {
    const dir = fixtureCopy('good-build');
    const r = ait(['remote', 'bench', 'local', dir, '--instances', '2', '--threads', '3', '--work-dir', workDir]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bench\.bad-throughput.*1 <= threads <= instances <= 1024 \(integers\), got instances 2, threads 3/);
    const b = ait(['remote', 'build', 'local', dir, '--instances', '2', '--work-dir', workDir]);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /error \[cli\.bad-option\]: --instances, --threads and --duration go with --bench/);
  });

  it('remote build of a directory without a Makefile says so, naming the file and host', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-no-makefile-'));
    const r = ait(['remote', 'build', 'local', dir, '--work-dir', workDir]);
    assert.equal(r.status, 1);
    assert.ok(r.stderr.includes(`error [remote.no-makefile] ${path.join(dir, 'Makefile')}, host local:`), r.stderr);
  });

  it('remote verify builds there, prints the table and writes DIR/verify.json; a wrong build exits 1 naming the output', function () {
    this.timeout(120_000);
    const model = gemmReluModel();
    const dir = fakeGemmBuild();
    const r = ait(['remote', 'verify', 'local', dir, '--model', model, '--batch', '1,8', '--seed', '5', '--work-dir', workDir]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^verify on local: fake_gemm_relu against (interpreter|python-onnxruntime \S+), tolerance 2\.0e-2 \(rel\. L2\), seed 5$/m,
    );
    assert.match(r.stdout, /^8\s+y\s+\[8, 3\]\s+\d\.\d\de-\d+\s+\S+\s+\S+\s+pass$/m);
    assert.match(r.stdout, /^verify: every output matches the reference$/m);
    const file = JSON.parse(fs.readFileSync(path.join(dir, 'verify.json'), 'utf8'));
    assert.equal(file.ok, true);
    assert.equal(file.host, 'local');
    assert.equal(file.localModel, model);
    assert.deepEqual(file.report.batchSizes, [1, 8]);
    assert.equal(file.report.results.length, 4);

    const wrong = fakeGemmBuild({ defines: ['-DAIT_FAKE_WRONG'] });
    const w = ait(['remote', 'verify', 'local', wrong, '--model', model, '--batch', '2', '--work-dir', workDir]);
    assert.equal(w.status, 1, w.stderr);
    assert.ok(
      w.stderr.includes(`error [verify.mismatch] ${model}, host local, tensor 'y': output 'y' at batch 2 does not match the reference`),
      w.stderr,
    );
    assert.match(w.stdout, /^2\s+y\s+.*FAIL: relative L2 error/m);
    assert.equal(JSON.parse(fs.readFileSync(path.join(wrong, 'verify.json'), 'utf8')).ok, false);

    // --json: stdout is the report alone, one JSON document (the files written are said on stderr)
    const j = ait(['remote', 'verify', 'local', dir, '--model', model, '--batch', '1', '--work-dir', workDir, '--json']);
    assert.equal(j.status, 0, j.stderr);
    const printed = JSON.parse(j.stdout);
    assert.equal(printed.ok, true);
    assert.deepEqual(printed.report.batchSizes, [1]);
    assert.match(j.stderr, /wrote \S+verify\.json/);
  });

  it('remote verify of a build without weights says so, naming the build directory and host', function () {
    this.timeout(60_000);
    const dir = fakeGemmBuild({ weights: false });
    const r = ait(['remote', 'verify', 'local', dir, '--model', gemmReluModel(), '--work-dir', workDir]);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /error \[verify\.no-weights\] \S+\/weights\.safetensors, host local: build directory \S+ has no weights\.safetensors/,
    );
  });

  it('compile refuses --bench without --remote', () => {
    const r = ait(['compile', 'examples/resnet50/resnet50.onnx', '--bench', '1,8']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^error \[cli\.bad-option\]: --bench needs --remote HOST/);
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
