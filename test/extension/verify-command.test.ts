/**
 * AIT: Verify Against Reference with the extension test fakes: on this machine with the real per-node check
 * (onnxruntime-node against the interpreter with fp16 storage) on an fp16-overflowing chain, and on a remote host
 * through a scripted runner (the remote check itself is tested in test/remote/verify-per-node.test.ts).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { verifyModelCommand, type VerifyRunner } from '../../extension/commands/verify';
import type { PerNodeReport } from '../../compiler/verify/per-node';
import { buildModel } from '../helpers/onnx-builder';
import { overflowChain } from '../helpers/verify-models';
import { fakeContext } from './fakes';

describe('AIT: Verify Against Reference', function () {
  this.timeout(60_000);
  let tmp: string;
  let model: string;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-cmd-'));
    model = path.join(tmp, 'chain.onnx');
    fs.writeFileSync(model, buildModel(overflowChain()));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('on this machine: the report in the log, the first overflow in Problems naming the node, the graph with the heatmap', async () => {
    const ctx = fakeContext({ activeModel: model });
    const result = await verifyModelCommand(ctx);
    assert.ok(result?.report);
    const outDir = path.join(tmp, 'ait-verify', 'chain');
    assert.equal(result.outDir, outDir);
    assert.equal(result.where, 'this machine');
    // No remote hosts configured: nothing asked.
    assert.deepEqual(ctx.ui.picks, []);
    const overflow = result.report.firstOverflow!;
    assert.equal(overflow.name, '/block3/conv/Conv');
    const problems = ctx.recorded.problems.get(`verify:${model}`)!;
    assert.ok(
      problems.some(
        (p) =>
          p.code === 'verify.fp16-overflow' &&
          p.file === model &&
          p.message.includes(`first fp16 overflow at node ${overflow.id} (conv2d '/block3/conv/Conv' in block3/conv`),
      ),
      JSON.stringify(problems),
    );
    const logged = ctx.recorded.log.join('\n');
    assert.match(logged, /first fp16 overflow: n\d+ conv2d '\/block3\/conv\/Conv' in block3\/conv/);
    assert.match(logged, /module +.*nodes/);
    assert.deepEqual(ctx.recorded.graphsShown, [outDir]);
    for (const f of ['graph.json', 'verify-per-node.json', 'profile-verify.json']) assert.ok(fs.existsSync(path.join(outDir, f)), f);
    const profile = JSON.parse(fs.readFileSync(path.join(outDir, 'profile-verify.json'), 'utf8'));
    assert.equal(profile.ops[overflow.id].error.fp16Overflow, true);
    assert.match(ctx.ui.messages.at(-1)!.text, /first fp16 overflow at n\d+ '\/block3\/conv\/Conv'/);
    assert.equal(ctx.ui.messages.at(-1)!.level, 'error');
  });

  it('refuses in an untrusted workspace, running nothing', async () => {
    let ran = false;
    const verifier: VerifyRunner = {
      local: async () => {
        ran = true;
        throw new Error('must not run');
      },
      remote: async () => {
        ran = true;
        throw new Error('must not run');
      },
    };
    const ctx = fakeContext({ activeModel: model, trusted: false, verifier });
    assert.equal(await verifyModelCommand(ctx), undefined);
    assert.equal(ran, false);
    assert.match(ctx.ui.messages[0].text, /Verify Against Reference is disabled because this workspace is not trusted/);
  });

  it('on a remote host: the compile output of the model goes there; its problems name the node and the host', async () => {
    const report = { ...JSON.parse('{}'), nodes: [], firstJump: null, firstOverflow: null, modules: [], batch: 1 } as PerNodeReport;
    const calls: string[][] = [];
    const verifier: VerifyRunner = {
      local: async () => assert.fail('not local'),
      remote: async (remote, dir, m) => {
        calls.push([remote.name, dir, m]);
        return {
          report: {
            ...report,
            format: 'ait-verify-per-node',
            version: 1,
            model: m,
            seed: 0,
            threshold: 0.01,
            candidate: 'libchain.so debug run (native-binding)',
            reference: { kind: 'python-onnxruntime', version: '1.22' },
            randomizedWeights: 0,
            inputs: [],
            timings: { referenceMs: 1, candidateMs: 1 },
            notes: [],
          },
          diagnostics: [
            {
              code: 'verify.error-jump',
              severity: 'error',
              message: "first error jump at node n4 (conv2d '/block2/conv/Conv', batch 1): relative L2 0.3 above 0.01",
              location: { file: m, nodeId: 'n4', onnxNode: '/block2/conv/Conv', host: 'gpubox' },
            },
          ],
        };
      },
    };
    const ctx = fakeContext({
      activeModel: model,
      verifier,
      settings: { remotes: [{ name: 'gpubox', host: 'gpu.example' }] },
      answers: ['On a remote host…', 'gpubox'],
    });
    // Without a compile of the model there is nothing to build there.
    assert.equal(await verifyModelCommand(ctx), undefined);
    assert.match(ctx.ui.messages.at(-1)!.text, /Compile chain\.onnx first/);

    const compiled = path.join(tmp, 'build', 'chain');
    fs.mkdirSync(compiled, { recursive: true });
    fs.writeFileSync(path.join(compiled, 'Makefile'), 'all:\n');
    const again = fakeContext({
      activeModel: model,
      verifier,
      settings: { remotes: [{ name: 'gpubox', host: 'gpu.example' }] },
      answers: ['On a remote host…', 'gpubox'],
    });
    await again.runs.add({
      kind: 'compile',
      model: 'chain',
      modelFile: model,
      target: 'cuda:sm90',
      createdAt: new Date().toISOString(),
      outDir: compiled,
      ok: true,
      errorCount: 0,
    });
    const result = await verifyModelCommand(again);
    assert.equal(result?.where, 'gpubox');
    assert.deepEqual(calls, [['gpubox', compiled, model]]);
    assert.deepEqual(
      again.ui.picks.map((p) => p.title),
      ['Verify where', 'Remote host'],
    );
    const problems = again.recorded.problems.get(`verify:${model}`)!;
    assert.equal(problems.length, 1);
    assert.equal(problems[0].file, model);
    assert.match(problems[0].message, /node n4.*host gpubox|gpubox.*node n4/);
    assert.deepEqual(again.recorded.graphsShown, [compiled]);
  });

  it('on a remote host with ait.verifyTorchModel: the factory goes to the runner; the log table has the time columns', async () => {
    const compiled = path.join(tmp, 'build', 'chain');
    fs.mkdirSync(compiled, { recursive: true });
    fs.writeFileSync(path.join(compiled, 'Makefile'), 'all:\n');
    const options: unknown[] = [];
    const row = { depth: 1, nodes: 2, maxAbs: 0.001, maxRelativeL2: 0.001, nonFinite: 0, fp16Overflows: 0 };
    const verifier: VerifyRunner = {
      local: async () => assert.fail('not local'),
      remote: async (_remote, _dir, m, _log, o) => {
        options.push(o);
        return {
          report: {
            format: 'ait-verify-per-node',
            version: 1,
            model: m,
            batch: 1,
            seed: 0,
            threshold: 0.01,
            candidate: 'libchain.so debug run (native-binding)',
            reference: { kind: 'python-onnxruntime', version: '1.22' },
            randomizedWeights: 0,
            inputs: [],
            nodes: [],
            firstJump: null,
            firstOverflow: null,
            modules: [
              { ...row, module: 'block1', timeMs: 0.02, torchModule: 'block1', referenceTimeMs: 0.05, speedup: 2.5 },
              { ...row, module: 'block2', timeMs: 0.04 },
            ],
            times: {
              ours: { batch: 1, runs: 20, gpu: 'NVIDIA H100', opsMs: 0.06 },
              reference: { torch: '2.11.0', totalMs: 0.2, modules: 3, matched: 1 },
            },
            timings: { referenceMs: 1, candidateMs: 1 },
            notes: [],
          },
          diagnostics: [],
        };
      },
    };
    const ctx = fakeContext({
      activeModel: model,
      verifier,
      workspaceFolder: tmp,
      settings: { remotes: [{ name: 'gpubox', host: 'gpu.example' }], verifyTorchModel: 'tools/chain_torch.py:make' },
      answers: ['On a remote host…', 'gpubox'],
    });
    await ctx.runs.add({
      kind: 'compile',
      model: 'chain',
      modelFile: model,
      target: 'cuda:sm90',
      createdAt: new Date().toISOString(),
      outDir: compiled,
      ok: true,
      errorCount: 0,
    });
    const result = await verifyModelCommand(ctx);
    assert.equal(result?.where, 'gpubox');
    assert.deepEqual(options, [{ torchModel: path.join(tmp, 'tools', 'chain_torch.py') + ':make' }]);
    const logged = ctx.recorded.log.join('\n');
    assert.match(logged, /module +nodes +max abs err +max rel L2 +fp16 overflows +ours ms +torch ms +speedup/);
    assert.match(logged, /block1 +2 .* 0\.0200 +0\.0500 +2\.50x/);
    assert.match(logged, /block2 +2 .* 0\.0400 +- +-/);
    assert.match(ctx.ui.messages.at(-1)!.text, /ops 0\.0600 ms vs PyTorch eager 0\.200 ms \(per module in the log\)/);
  });
});
