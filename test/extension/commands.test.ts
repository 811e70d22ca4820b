import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModelCommand, parseBatchRange } from '../../extension/commands/compile-model';
import {
  addRemoteHostCommand,
  buildAndBenchmarkCommand,
  checkRemoteHostCommand,
  sessionOptionsFor,
  type RemoteSessionLike,
} from '../../extension/commands/remote';
import { selectTargetCommand } from '../../extension/commands/select-target';
import { WorkerCompileRunner, type CompileOutcome } from '../../extension/compile/service';
import type { CompileRequest } from '../../extension/compile/messages';
import type { HelloResult, JobInfo } from '../../remote-agent/protocol';
import { buildModel } from '../helpers/onnx-builder';
import { pasteMasksLoopModel } from '../helpers/paste-masks-model';
import { buildDist, fakeContext, REPO_ROOT } from './fakes';

/** A compiler that records requests and answers with `outcome` (reporting one stage first). */
function scriptedCompiler(outcome: (r: CompileRequest) => CompileOutcome) {
  const requests: CompileRequest[] = [];
  return {
    requests,
    compile: async (r: CompileRequest, l: { onStage?: (n: string, d: string) => void }) => {
      requests.push(r);
      l.onStage?.('import', '122 ONNX nodes');
      return outcome(r);
    },
  };
}

const doneOutcome = (r: CompileRequest): CompileOutcome => ({
  kind: 'done',
  result: {
    ok: true,
    outDir: r.out,
    graphJsonPath: path.join(r.out, 'graph.json'),
    modelName: 'resnet50',
    stages: [],
    diagnostics: [],
    reports: {},
  },
});

describe('extension command handlers', () => {
  let tmp: string;
  beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ext-cmd-'))));
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('parses batch ranges', () => {
    assert.deepEqual(parseBatchRange('8'), [8, 8]);
    assert.deepEqual(parseBatchRange(' 1..64 '), [1, 64]);
    assert.deepEqual(parseBatchRange('2-32'), [2, 32]);
    for (const bad of ['0', '8..4', 'a', '1..', '-1']) assert.equal(parseBatchRange(bad), undefined, bad);
  });

  describe('AIT: Compile Model', () => {
    it('asks target and batch range, compiles into <workspace>/build/<model>, opens the graph and records the run', async () => {
      const compiler = scriptedCompiler(doneOutcome);
      const model = path.join(tmp, 'models', 'resnet50.onnx');
      const ctx = fakeContext({ answers: ['cuda:sm80', '1..64'], compiler, workspaceFolder: tmp, models: [model] });
      const r = await compileModelCommand(ctx);
      assert.equal(r?.outcome.kind, 'done');
      assert.deepEqual(
        ctx.ui.picks.map((p) => p.title),
        ['Compile resnet50.onnx: target', 'Compile resnet50.onnx: batch range'],
      );
      assert.equal(ctx.ui.picks[0].labels[0], 'cuda:sm90', 'the default target is offered first');
      const req = compiler.requests[0];
      assert.equal(req.out, path.join(tmp, 'build', 'resnet50'));
      assert.equal(req.target, 'cuda:sm80');
      assert.deepEqual(req.dimBounds?.batch, [1, 64]);
      assert.equal(req.batch, 64);
      assert.deepEqual(ctx.recorded.progressReports, ['import: 122 ONNX nodes']);
      assert.deepEqual(ctx.recorded.graphsShown, [path.join(tmp, 'build', 'resnet50')]);
      assert.deepEqual(
        ctx.runs.list().map((x) => [x.model, x.target, x.ok]),
        [['resnet50', 'cuda:sm80', true]],
      );
      assert.deepEqual(ctx.recorded.jobs, ['compiling resnet50']);
    });

    it('remembers the choices per model and offers them first next time', async () => {
      const compiler = scriptedCompiler(doneOutcome);
      const a = path.join(tmp, 'a.onnx');
      const ctx = fakeContext({ answers: ['cuda:sm80', 'Other…', '4..16', '', '', 'cuda:sm90', '1'], compiler, workspaceFolder: tmp });
      await compileModelCommand(ctx, a);
      assert.equal(ctx.ui.inputs[0].validate!('x'), 'expected a batch size like 8 or a range like 1..64');
      await compileModelCommand(ctx, a); // first item of each pick: the remembered ones
      assert.deepEqual(
        compiler.requests.map((r) => [r.target, r.dimBounds?.batch]),
        [
          ['cuda:sm80', [4, 16]],
          ['cuda:sm80', [4, 16]],
        ],
      );
      assert.equal(ctx.ui.picks[2].labels[0], 'cuda:sm80');
      assert.equal(ctx.ui.picks[3].labels[0], '4..16');
      await compileModelCommand(ctx, path.join(tmp, 'b.onnx')); // another model starts from the defaults
      assert.equal(ctx.ui.picks[4].labels[0], 'cuda:sm90');
    });

    it('dismissing a pick compiles nothing', async () => {
      const compiler = scriptedCompiler(doneOutcome);
      const ctx = fakeContext({ answers: ['cuda:sm90', undefined], compiler });
      assert.equal(await compileModelCommand(ctx, path.join(tmp, 'm.onnx')), undefined);
      assert.equal(compiler.requests.length, 0);
    });

    it('a cancelled compile records no run, shows no graph and leaves no Problems', async () => {
      const ctx = fakeContext({ answers: ['', ''], compiler: scriptedCompiler(() => ({ kind: 'cancelled' })), workspaceFolder: tmp });
      const r = await compileModelCommand(ctx, path.join(tmp, 'm.onnx'));
      assert.equal(r?.outcome.kind, 'cancelled');
      assert.deepEqual([ctx.runs.list(), ctx.recorded.graphsShown, ctx.recorded.problems.size], [[], [], 0]);
      assert.match(ctx.ui.messages[0].text, /cancelled/);
    });

    it('a model with a Loop the GPU does not run (real compile in the worker): Problems entries on the model file name the unsupported nodes', async function () {
      // a mask-paste Loop that resizes with nearest: not PasteMasks (passes/paste-masks.ts), so it stays a Loop
      const model = path.join(tmp, 'paste_nearest.onnx');
      fs.writeFileSync(model, buildModel(pasteMasksLoopModel({ height: 20, width: 24, maskH: 7, maskW: 9, variant: 'nearest' })));
      buildDist();
      const ctx = fakeContext({
        answers: ['', ''],
        compiler: new WorkerCompileRunner(path.join(REPO_ROOT, 'dist', 'compile-worker.js')),
        workspaceFolder: tmp,
      });
      const r = await compileModelCommand(ctx, model);
      assert.equal(r?.outcome.kind, 'done');
      const entries = ctx.recorded.problems.get(`compile:${model}`)!;
      const unsupported = entries.filter((e) => e.code === 'op.unsupported');
      assert.ok(unsupported.length > 0);
      for (const e of unsupported) {
        assert.equal(e.file, model);
        assert.equal(e.severity, 'error');
        assert.match(e.message, /^node '[^']+': \S+ node '[^']+' cannot run on cuda:sm90/);
      }
      assert.ok(unsupported.some((e) => e.message.includes("'paste_loop'")));
      const graph = JSON.parse(fs.readFileSync(path.join(tmp, 'build', 'paste_nearest', 'graph.json'), 'utf8'));
      assert.equal(
        graph.nodes.filter((n: { status?: { supported: boolean } }) => n.status?.supported === false).length,
        unsupported.length,
      );
      assert.equal(ctx.runs.list()[0].ok, false);
      assert.match(ctx.ui.messages.find((m) => m.level === 'warn')!.text, /cannot run on cuda:sm90/);
    });
  });

  it('AIT: Select Target sets ait.defaultTarget and the status bar', async () => {
    const ctx = fakeContext({ answers: ['cuda:sm80'] });
    assert.equal(await selectTargetCommand(ctx), 'cuda:sm80');
    assert.equal(ctx.recorded.settings.defaultTarget, 'cuda:sm80');
    assert.deepEqual(ctx.recorded.statusTarget, ['cuda:sm80']);
  });

  it('AIT: Add Remote Host validates the host and appends it to ait.remotes', async () => {
    const ctx = fakeContext({ answers: ['me@h200:2222', 'h200'], settings: { remotes: [{ name: 'old', host: 'old' }] } });
    await addRemoteHostCommand(ctx);
    assert.match(ctx.ui.inputs[0].validate!('bad host')!, /not an ssh target/);
    assert.match(ctx.ui.inputs[1].validate!('old')!, /taken/);
    assert.deepEqual(ctx.recorded.settings.remotes, [
      { name: 'old', host: 'old' },
      { name: 'h200', host: 'me@h200:2222' },
    ]);
  });

  describe('remote hosts', () => {
    const hello: HelloResult = {
      agentVersion: '0.1.0',
      node: { version: 'v20.19.0', execPath: '/usr/bin/node' },
      host: { hostname: 'h200', platform: 'linux', arch: 'x64', user: 'me' },
      workDir: '/home/me/.ait-studio/agent',
      gpus: [{ index: 0, name: 'NVIDIA H200', memoryMiB: 143771, computeCapability: '9.0' }],
      gpuProbe: { tool: 'nvidia-smi', note: '' },
      nvcc: { path: '/usr/local/cuda/bin/nvcc', version: '13.0' },
      hipcc: null,
      cutlassDir: null,
      ckDir: null,
      python: null,
      nativeBinding: { unavailable: 'not built' },
      notes: [],
    };
    const job = (id: string, kind: JobInfo['kind']): JobInfo => ({ id, kind, gpu: kind === 'bench' ? 0 : null }) as JobInfo;

    /** A session that records calls; build ok or failing with one diagnostic in `kernels.cu`. */
    function fakeSession(buildOk: boolean, calls: string[], benchJson?: unknown): RemoteSessionLike {
      return {
        hello: async () => (calls.push('hello'), hello),
        sync: async (dir) => (
          calls.push(`sync ${path.basename(dir)}`),
          { buildName: 'm-1234', buildDir: '/h/m-1234', uploaded: ['Makefile'], unchangedCount: 0 }
        ),
        startBuild: async (p) => (calls.push(`build ${p.buildName}`), job('b1', 'build')),
        startBench: async (p) => (
          calls.push(
            `bench ${p.batchSizes.join(',')}${p.instances !== undefined ? ` instances ${p.instances} threads ${p.threads} duration ${p.durationS}` : ''}`,
          ),
          { jobs: [job('r1', 'bench')], runner: { runner: 'ait_bench', note: 'no binding' } }
        ),
        followJob: async (id, out) => (out(`log of ${id}\n`), job(id, 'build')),
        jobResult: async (id) =>
          id === 'b1'
            ? {
                kind: 'build',
                ok: buildOk,
                exitCode: buildOk ? 0 : 2,
                diagnostics: buildOk
                  ? []
                  : [{ code: 'build.nvcc', severity: 'error', message: 'expected ;', location: { file: 'kernels.cu', line: 12 } }],
              }
            : {
                kind: 'bench',
                ok: true,
                exitCode: 0,
                gpu: 0,
                json: benchJson ?? {
                  results: [
                    { batchSize: 8, p50Ms: 2.5 },
                    { batchSize: 1, p50Ms: 0.8125 },
                  ],
                },
                diagnostics: [],
              },
        cancel: async () => ({}),
        close: () => void calls.push('close'),
      };
    }

    it('AIT: Check Remote Host shows the GPUs from hello and closes the session', async () => {
      const calls: string[] = [];
      const ctx = fakeContext({
        answers: ['h200'],
        settings: { remotes: [{ name: 'h200', host: 'me@h200' }] },
        remotes: { open: async () => fakeSession(true, calls) },
      });
      const h = await checkRemoteHostCommand(ctx);
      assert.equal(h?.gpus[0].name, 'NVIDIA H200');
      assert.deepEqual(calls, ['hello', 'close']);
      assert.deepEqual(ctx.recorded.hostsChecked, ['h200']);
      assert.match(ctx.ui.messages[0].text, /h200: NVIDIA H200; nvcc 13.0/);
    });

    it('Build and Benchmark refuses a directory without a Makefile before connecting', async () => {
      let opened = false;
      const ctx = fakeContext({ answers: [], remotes: { open: async () => ((opened = true), fakeSession(true, [])) } });
      assert.equal(await buildAndBenchmarkCommand(ctx, tmp, 'local'), undefined);
      assert.equal(opened, false);
      assert.match(ctx.ui.messages[0].text, /has no Makefile/);
    });

    it('Build and Benchmark syncs, builds, benchmarks, writes bench.json and records the headline latency', async () => {
      fs.writeFileSync(path.join(tmp, 'Makefile'), 'all:\n');
      const calls: string[] = [];
      const ctx = fakeContext({
        answers: ['1,8'],
        settings: { remotes: [{ name: 'h200', host: 'me@h200' }], cutlassDir: '/opt/cutlass' },
        remotes: { open: async () => fakeSession(true, calls) },
      });
      const r = await buildAndBenchmarkCommand(ctx, tmp, 'h200');
      assert.deepEqual(calls, [`sync ${path.basename(tmp)}`, 'build m-1234', 'bench 1,8', 'close']);
      assert.equal(r?.report?.runner, 'ait_bench');
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(tmp, 'bench.json'), 'utf8')).batchSizes, [1, 8]);
      const run = ctx.runs.list()[0];
      assert.deepEqual([run.kind, run.host, run.headlineLatencyMs, run.headlineBatch], ['bench', 'h200', 0.8125, 1]);
      assert.ok(ctx.recorded.log.includes('log of b1'));
    });

    it('Build and Benchmark with ait.benchInstances > 0 asks for a throughput bench and shows images/s and P99', async () => {
      fs.writeFileSync(path.join(tmp, 'Makefile'), 'all:\n');
      const calls: string[] = [];
      const entry = (batchSize: number, itemsPerSecond: number, p99Ms: number) => ({
        mode: 'throughput',
        batchSize,
        itemsPerSecond,
        p50Ms: 1,
        p99Ms,
      });
      const json = { mode: 'throughput', results: [entry(1, 900, 1.5), entry(8, 3000.4, 4.25)] };
      const ctx = fakeContext({
        answers: ['1,8'],
        settings: { remotes: [{ name: 'h200', host: 'me@h200' }], benchInstances: 4, benchThreads: 2, benchDuration: 5 },
        remotes: { open: async () => fakeSession(true, calls, json) },
      });
      const r = await buildAndBenchmarkCommand(ctx, tmp, 'h200');
      assert.deepEqual(calls, [`sync ${path.basename(tmp)}`, 'build m-1234', 'bench 1,8 instances 4 threads 2 duration 5', 'close']);
      const file = JSON.parse(fs.readFileSync(path.join(tmp, 'bench.json'), 'utf8'));
      assert.deepEqual(file.throughput, { instances: 4, threads: 2, durationS: 5 });
      assert.deepEqual(r?.report?.throughput, file.throughput);
      const run = ctx.runs.list()[0];
      assert.deepEqual([run.headlineItemsPerSecond, run.headlineBatch, run.headlineLatencyMs], [3000.4, 8, undefined]);
      assert.equal(
        ctx.ui.messages.at(-1)?.text,
        `${path.basename(tmp)} on h200: 3000 images/s at batch 8 (4 instances × 2 threads per GPU, P99 4.250 ms).`,
      );
    });

    it('a failing build puts its errors in Problems at the local file and line, and does not benchmark', async () => {
      fs.writeFileSync(path.join(tmp, 'Makefile'), 'all:\n');
      fs.writeFileSync(path.join(tmp, 'kernels.cu'), '');
      const calls: string[] = [];
      const ctx = fakeContext({ answers: ['1'], remotes: { open: async () => fakeSession(false, calls) } });
      const r = await buildAndBenchmarkCommand(ctx, tmp, 'local');
      assert.equal(r?.build.ok, false);
      assert.ok(!calls.some((c) => c.startsWith('bench')));
      assert.deepEqual(ctx.recorded.problems.get(`build:${tmp}`), [
        { file: path.join(tmp, 'kernels.cu'), line: 11, severity: 'error', code: 'build.nvcc', message: 'host local: expected ;' },
      ]);
    });

    it('SSH key passphrases are asked once and kept only in SecretStorage', async () => {
      const ctx = fakeContext({ answers: ['s3cret'] });
      const options = sessionOptionsFor(ctx, { name: 'h', host: 'me@h' });
      assert.equal(await options.ssh!.passphrase!('/home/me/.ssh/id_ed25519'), 's3cret');
      assert.equal(await options.ssh!.passphrase!('/home/me/.ssh/id_ed25519'), 's3cret', 'second time from SecretStorage, no prompt');
      assert.equal(ctx.ui.inputs.length, 1);
      assert.equal(ctx.ui.inputs[0].password, true);
      assert.deepEqual([...ctx.recorded.secrets.entries()], [['ait.ssh-passphrase:/home/me/.ssh/id_ed25519', 's3cret']]);
      assert.ok(!JSON.stringify(ctx.recorded.settings).includes('s3cret') && !ctx.recorded.log.some((l) => l.includes('s3cret')));
    });
  });
});
