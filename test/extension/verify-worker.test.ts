/**
 * The local per-node verify of AIT: Verify Against Reference in the compile worker thread (dist/compile-worker.js):
 * the same report as the CLI's in-thread run, its steps as progress, cancel terminating the thread, and a broken
 * model file giving an error diagnostic that names the file (through the command: in Problems), never a throw.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { runVerifyReport } from '../../compiler/cli/verify-command';
import type { PerNodeReport } from '../../compiler/verify/per-node';
import { cliVerifyRunner, verifyModelCommand } from '../../extension/commands/verify';
import { WorkerCompileRunner } from '../../extension/compile/service';
import type { WorkerMessage } from '../../extension/compile/messages';
import { buildModel, tensor } from '../helpers/onnx-builder';
import { sharedModel } from '../helpers/models';
import { overflowChain } from '../helpers/verify-models';
import { buildDist, FakeCancellation, fakeContext, REPO_ROOT } from './fakes';

/** The runner, keeping the worker threads it started (to see that a cancelled one was stopped). */
class WatchedRunner extends WorkerCompileRunner {
  readonly workers: Worker[] = [];
  protected override start<T>(
    data: unknown,
    onMessage: (m: WorkerMessage, job: { worker: Worker; result: Promise<T>; settle(o: T | Error): void }) => void,
    lost: (why: string) => T | Error,
  ) {
    const job = super.start<T>(data, onMessage, lost);
    this.workers.push(job.worker);
    return job;
  }
}

/** The report without what differs from run to run (the times). */
function stable(report: PerNodeReport): Omit<PerNodeReport, 'timings'> {
  const { timings: _timings, ...rest } = report;
  return rest;
}

describe('extension verify (worker thread)', function () {
  this.timeout(120_000);
  let tmp: string;
  let model: string;
  let runner: WatchedRunner;
  before(() => {
    buildDist();
    runner = new WatchedRunner(path.join(REPO_ROOT, 'dist', 'compile-worker.js'));
  });
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ext-verify-'));
    model = path.join(tmp, 'chain.onnx');
    fs.writeFileSync(model, buildModel(overflowChain()));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('gives the report of the in-thread run, as data, with its steps as they come, and writes the same files', async () => {
    const inThread = path.join(tmp, 'in-thread');
    const expected = (await runVerifyReport(model, { out: inThread }, () => {})).report;
    const out = path.join(tmp, 'worker');
    const stages: string[] = [];
    const lines: string[] = [];
    const outcome = await runner.verify({ model, outDir: out }, { onStage: (name) => stages.push(name), onLog: (l) => lines.push(l) });
    assert.equal(outcome.kind, 'done', JSON.stringify(outcome));
    const report = (outcome as { report: PerNodeReport }).report;
    assert.deepEqual(stable(report), stable(expected));
    assert.equal(report.firstOverflow?.name, '/block3/conv/Conv');
    assert.deepEqual(stages, ['import', 'reference', 'candidate']);
    assert.ok(
      lines.some((l) => /first fp16 overflow: n\d+ conv2d '\/block3\/conv\/Conv'/.test(l)),
      lines.join('\n'),
    );
    const written = JSON.parse(fs.readFileSync(path.join(out, 'verify-per-node.json'), 'utf8')) as PerNodeReport;
    assert.deepEqual(stable(written), stable(report));
    // The same files (the error profile's date aside).
    const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8').replace(/"date": "[^"]*"/, '"date": ""');
    for (const f of ['graph.json', 'profile-verify.json']) assert.equal(read(out, f), read(inThread, f), f);
    assert.deepEqual(fs.readdirSync(out).sort(), ['graph.json', 'profile-verify.json', 'verify-per-node.json']);
  });

  it('through AIT: Verify Against Reference: the steps as progress, the per-node report in the log, the overflow in Problems', async () => {
    const ctx = fakeContext({ activeModel: model, verifier: cliVerifyRunner(undefined, runner) });
    const result = await verifyModelCommand(ctx);
    assert.equal(result?.report?.firstOverflow?.name, '/block3/conv/Conv');
    assert.equal(ctx.recorded.progressReports[0], 'importing and optimizing the model');
    assert.match(ctx.recorded.progressReports.join('\n'), /^reference: onnxruntime-node .* tensors exposed$/m);
    assert.match(ctx.recorded.progressReports.join('\n'), /^candidate: interpreter \(float16 storage\)/m);
    assert.match(ctx.recorded.log.join('\n'), /info verify .*chain\.onnx on this machine:\n[\s\S]*first fp16 overflow: n\d+ conv2d/);
    const problems = ctx.recorded.problems.get(`verify:${model}`)!;
    assert.ok(problems.some((p) => p.code === 'verify.fp16-overflow' && p.file === model && p.message.includes("'/block3/conv/Conv'")));
    assert.deepEqual(ctx.recorded.graphsShown, [path.join(tmp, 'ait-verify', 'chain')]);
  });

  it('cancelled mid-run, stops the worker thread at once and writes no report', async function () {
    const big = sharedModel('resnet50', this);
    const out = path.join(tmp, 'resnet50');
    const cancel = new FakeCancellation();
    let cancelledAt = 0;
    const outcome = await runner.verify(
      { model: big, outDir: out },
      {
        onStage: (name) => {
          // Importing and optimizing ResNet-50 is seconds of synchronous work, and the whole check ~15 s: cancel in it.
          if (name === 'import') {
            cancelledAt = Date.now();
            cancel.cancel();
          }
        },
      },
      cancel,
    );
    assert.equal(outcome.kind, 'cancelled');
    assert.ok(Date.now() - cancelledAt < 1_000, `settled ${Date.now() - cancelledAt} ms after the cancel`);
    const worker = runner.workers.at(-1)!;
    await new Promise<void>((resolve) => (worker.threadId === -1 ? resolve() : worker.once('exit', () => resolve())));
    assert.equal(worker.threadId, -1, 'the worker thread is stopped');
    assert.ok(Date.now() - cancelledAt < 3_000, `the thread stopped ${Date.now() - cancelledAt} ms after the cancel`);
    assert.ok(!fs.existsSync(path.join(out, 'verify-per-node.json')), 'no report was written');
  });

  it('through the command, a cancel ends it with a message and leaves Problems as they were', async function () {
    const big = sharedModel('resnet50', this);
    const ctx = fakeContext({ activeModel: big, verifier: cliVerifyRunner(undefined, runner) });
    ctx.cancelAfterFirstReport = true;
    const result = await verifyModelCommand(ctx);
    assert.equal(result?.report, null);
    assert.match(ctx.ui.messages.at(-1)!.text, /Verify of resnet50\.onnx cancelled/);
    assert.equal(ctx.recorded.problems.has(`verify:${big}`), false);
  });

  it('a broken model file: an error diagnostic naming the file, in Problems and the message, no crash', async () => {
    const bad = path.join(tmp, 'broken.onnx');
    fs.writeFileSync(bad, Buffer.from([0x08, 0x07, 0x12, 0xff, 0xff]));
    const outcome = await runner.verify({ model: bad, outDir: path.join(tmp, 'out') }, {});
    assert.equal(outcome.kind, 'failed');
    const diagnostics = (outcome as { diagnostics: { severity: string; location?: { file?: string } }[] }).diagnostics;
    assert.ok(
      diagnostics.some((d) => d.severity === 'error' && d.location?.file === bad),
      JSON.stringify(diagnostics),
    );
    assert.equal(fs.existsSync(path.join(tmp, 'out', 'verify-per-node.json')), false);

    const ctx = fakeContext({ activeModel: bad, verifier: cliVerifyRunner(undefined, runner) });
    const result = await verifyModelCommand(ctx);
    assert.equal(result?.report, null);
    const problems = ctx.recorded.problems.get(`verify:${bad}`)!;
    assert.ok(problems.length > 0 && problems.every((p) => p.file === bad && p.severity === 'error'), JSON.stringify(problems));
    assert.match(ctx.ui.messages.at(-1)!.text, /^Verify of broken\.onnx on this machine failed: /);
  });

  it('a model with a bad node: an error diagnostic naming the file and the node, in Problems', async () => {
    const bad = path.join(tmp, 'badconv.onnx');
    fs.writeFileSync(
      bad,
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: [1, 8, 6, 6] }],
        // 4 input channels per weight, 8 in the input
        initializers: [{ ...tensor('float32', [8, 4, 1, 1], new Array<number>(32).fill(1)), name: 'w' }],
        nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: '/bad/conv/Conv' }],
        outputs: ['y'],
      }),
    );
    const outcome = await runner.verify({ model: bad, outDir: path.join(tmp, 'out') }, {});
    assert.equal(outcome.kind, 'failed');
    const diagnostics = (outcome as { diagnostics: { severity: string; location?: { file?: string; onnxNode?: string } }[] }).diagnostics;
    assert.ok(
      diagnostics.some((d) => d.severity === 'error' && d.location?.file === bad && d.location.onnxNode === '/bad/conv/Conv'),
      JSON.stringify(diagnostics),
    );

    const ctx = fakeContext({ activeModel: bad, verifier: cliVerifyRunner(undefined, runner) });
    assert.equal((await verifyModelCommand(ctx))?.report, null);
    const problems = ctx.recorded.problems.get(`verify:${bad}`)!;
    assert.ok(
      problems.some((p) => p.file === bad && p.severity === 'error' && p.message.includes("'/bad/conv/Conv'")),
      JSON.stringify(problems),
    );
    assert.match(ctx.ui.messages.at(-1)!.text, /^Verify of badconv\.onnx on this machine failed: .*\/bad\/conv\/Conv/);
  });
});
