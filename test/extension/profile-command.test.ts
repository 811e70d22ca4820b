/**
 * AIT: Profile Kernels on Remote with the extension test fakes and a scripted profile flow (the flow itself is
 * runProfiledCompile, tested with a real agent in test/cli and test/backends/cuda/profiling); one case runs the real
 * flow with a cancelled signal to see it stop after the first compile, before any connection.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runProfiledCompile, type ProfiledCompileControl } from '../../compiler/cli/profile-command';
import type { CompileCommandOptions } from '../../compiler/cli/compile-command';
import type { ProfileFlags } from '../../compiler/cli/profile-command';
import { DEFAULT_TARGET, TARGETS } from '../../compiler/targets';
import { profileKernelsCommand, type ProfileFlow } from '../../extension/commands/profile';
import { untrustedMessage } from '../../extension/commands/trust';
import { buildModel, input, nodeModel } from '../helpers/onnx-builder';
import { FakeCancellation, fakeContext } from './fakes';

interface Call {
  model: string;
  opts: CompileCommandOptions & ProfileFlags;
  outDir: string;
  control: ProfiledCompileControl;
}

/** A flow that prints `lines` on err (its progress), then returns `code` (or throws `throws`). */
function scriptedFlow(lines: string[], code = 0, throws?: Error): ProfileFlow & { calls: Call[] } {
  const calls: Call[] = [];
  const flow = async (
    model: string,
    opts: CompileCommandOptions & ProfileFlags,
    outDir: string,
    out: (s: string) => void,
    err: (s: string) => void,
    control: ProfiledCompileControl,
  ) => {
    calls.push({ model, opts, outDir, control });
    for (const l of lines) {
      if (control.cancel?.isCancellationRequested) return 1;
      err(l);
    }
    if (throws) throw throws;
    out('compiled');
    return code;
  };
  return Object.assign(flow, { calls });
}

describe('AIT: Profile Kernels on Remote', function () {
  this.timeout(60_000);
  let tmp: string;
  let model: string;
  const settings = () => ({
    remotes: [{ name: 'gpubox', host: 'gpu.example', workDir: 'ait-work' }],
    defaultTarget: TARGETS.find((t) => t.id !== DEFAULT_TARGET)!.id,
  });

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-profile-cmd-'));
    model = path.join(tmp, 'relu.onnx');
    fs.writeFileSync(model, buildModel(nodeModel('Relu', [input('float32', ['batch', 4])])));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('refuses in an untrusted workspace, asking and running nothing', async () => {
    const flow = scriptedFlow([]);
    const ctx = fakeContext({ trusted: false, activeModel: model, profiler: flow, settings: settings(), answers: ['gpubox'] });
    assert.equal(await profileKernelsCommand(ctx), undefined);
    assert.equal(flow.calls.length, 0);
    assert.deepEqual(ctx.ui.picks, []);
    assert.deepEqual(ctx.ui.messages, [{ level: 'warn', text: untrustedMessage('ait.profileKernels') }]);
  });

  it('runs the flow for the model, the picked host and the default target; its lines are the progress; the graph opens', async () => {
    const lines = [
      'profiling on gpu.example: NVIDIA H100, 132 SMs',
      'profiled on 1 GPU(s): build 20 s, profiling 3 s, 12 measurements stored',
    ];
    const flow = scriptedFlow(lines);
    const ctx = fakeContext({ activeModel: model, profiler: flow, settings: settings(), answers: ['gpubox'], workspaceFolder: tmp });
    const result = await profileKernelsCommand(ctx);
    const outDir = path.join(tmp, 'build', 'relu');
    assert.deepEqual(result, { host: 'gpubox', outDir, status: 'done' });
    assert.deepEqual(
      ctx.ui.picks.map((p) => p.title),
      ['Remote host'],
    );
    assert.equal(flow.calls.length, 1);
    const [call] = flow.calls;
    assert.equal(call.model, model);
    assert.equal(call.outDir, outDir);
    assert.equal(call.opts.out, outDir);
    assert.equal(call.opts.profile, 'gpu.example');
    assert.equal(call.opts.workDir, 'ait-work');
    assert.equal(call.opts.target, settings().defaultTarget);
    assert.deepEqual(call.opts.dim, { batch: [1, 1] });
    assert.ok(call.control.cancel, 'the progress cancellation reaches the flow');
    assert.ok(call.control.sessionOptions?.ssh?.passphrase, "the extension's session options (passphrases from SecretStorage)");
    assert.deepEqual(ctx.recorded.progressReports, lines);
    for (const l of [...lines, 'compiled']) assert.ok(ctx.recorded.log.includes(l), l);
    assert.deepEqual(ctx.recorded.graphsShown, [outDir]);
    assert.deepEqual(
      ctx.runs.list().map((r) => [r.kind, r.modelFile, r.outDir, r.target]),
      [['compile', model, outDir, settings().defaultTarget]],
    );
    assert.equal(ctx.ui.messages.at(-1)?.level, 'info');
    assert.match(ctx.ui.messages.at(-1)!.text, /gpubox/);
  });

  it('a failing flow: Problems and the notification name the host; no graph', async () => {
    const flow = scriptedFlow(
      ['error [profile.no-device] host gpu.example: gpu.example: profile/device_info printed no device (is there a CUDA GPU?)'],
      1,
    );
    const ctx = fakeContext({ activeModel: model, profiler: flow, settings: settings(), answers: ['gpubox'], workspaceFolder: tmp });
    const result = await profileKernelsCommand(ctx);
    assert.equal(result?.status, 'failed');
    const problems = ctx.recorded.problems.get(`profile:${model}`)!;
    assert.equal(problems.length, 1);
    assert.equal(problems[0].file, model);
    assert.equal(problems[0].code, 'profile.no-device');
    assert.match(problems[0].message, /host gpubox.*printed no device/);
    const last = ctx.ui.messages.at(-1)!;
    assert.equal(last.level, 'error');
    assert.match(last.text, /on gpubox failed: .*printed no device/);
    assert.deepEqual(ctx.recorded.graphsShown, []);
    assert.deepEqual(ctx.runs.list(), []);

    // A connection failure (not a diagnostic) is said with the host's name too.
    const broken = scriptedFlow([], 0, new Error('connect ECONNREFUSED 10.0.0.1:22'));
    const again = fakeContext({ activeModel: model, profiler: broken, settings: settings(), answers: ['gpubox'], workspaceFolder: tmp });
    assert.equal((await profileKernelsCommand(again))?.status, 'failed');
    assert.match(again.ui.messages.at(-1)!.text, /Profiling relu on gpubox failed: connect ECONNREFUSED/);
    assert.match(again.recorded.problems.get(`profile:${model}`)![0].message, /host gpubox: connect ECONNREFUSED/);
  });

  it('cancelling the progress stops the flow between steps; nothing opens', async () => {
    const flow = scriptedFlow(['step 1', 'step 2', 'step 3']);
    const ctx = fakeContext({ activeModel: model, profiler: flow, settings: settings(), answers: ['gpubox'], workspaceFolder: tmp });
    ctx.cancelAfterFirstReport = true;
    const result = await profileKernelsCommand(ctx);
    assert.equal(result?.status, 'cancelled');
    assert.deepEqual(ctx.recorded.progressReports, ['step 1']);
    assert.deepEqual(ctx.recorded.graphsShown, []);
    assert.match(ctx.ui.messages.at(-1)!.text, /cancelled/);
  });

  it('runProfiledCompile with a cancelled signal stops after the first compile, connecting to nothing', async () => {
    const cancel = new FakeCancellation();
    cancel.cancel();
    const outDir = path.join(tmp, 'out');
    const err: string[] = [];
    let opened = false;
    const code = await runProfiledCompile(
      model,
      { target: DEFAULT_TARGET, out: outDir, force: true, profile: 'no-such-host.invalid', profileCache: path.join(tmp, 'cache.sqlite') },
      outDir,
      () => {},
      (s) => err.push(s),
      {
        cancel,
        sessionOptions: {
          ssh: {
            acceptUnknownHostKey: () => {
              opened = true;
              return false;
            },
          },
        },
      },
    );
    assert.equal(code, 1);
    assert.equal(opened, false);
    assert.equal(err.at(-1), 'profiling on no-such-host.invalid cancelled');
    assert.ok(fs.existsSync(path.join(outDir, 'graph.json')), 'the first compile ran');
  });
});
