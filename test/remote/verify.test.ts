/**
 * verify end to end without a GPU: the agent builds the native binding, `make` builds the fake Gemm+Relu model
 * library (test/native/fixtures/fake_model.cc, weights from weights.safetensors), and the job compares it with the
 * ONNX model run by a real reference — onnxruntime-node or the project's interpreter here (python3 has no
 * onnxruntime on this machine; where it has, the default picks it and the expectations below follow).
 * Through the local transport and through a real sshd on 127.0.0.1.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CompileError } from '../../compiler/diagnostics';
import { decodeNpy, npyToFloat64 } from '../../remote-agent/agent/npy';
import { openSession, type RemoteSession } from '../../remote-agent/client';
import type { VerifyJobResult } from '../../remote-agent/protocol';
import { agentBundle, pidAlive, waitFor } from './helpers/agent-bundle';
import { requireSshd, startSshd, type TestSshd } from './helpers/sshd';
import {
  fakeGemmBuild,
  type FakeBuildOptions,
  GEMM_B,
  GEMM_W,
  gemmReluModel,
  gemmReluModelWithExternalData,
  idsGemmReluModel,
} from './helpers/verify-fixtures';
import { type RemoteBuildFlags, runRemoteBuild, type VerifyFileReport } from '../../compiler/cli/remote-command';
import { buildModel } from '../helpers/onnx-builder';

const REPO = path.resolve(__dirname, '..', '..');
const MODEL_IN_BUILD = 'reference/gemm_relu.onnx';
const ORT_NODE_VERSION = (
  JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string }
).version;

function pythonHasOnnxruntime(): boolean {
  return spawnSync('python3', ['-c', 'import numpy, onnxruntime'], { stdio: 'ignore' }).status === 0;
}

/** Syncs a fake build directory with the ONNX model as reference/gemm_relu.onnx and makes it there. */
async function syncAndBuild(
  session: RemoteSession,
  model: string,
  options: FakeBuildOptions = {},
): Promise<{ local: string; buildName: string }> {
  const local = fakeGemmBuild(options);
  const summary = await session.sync(local, undefined, [{ path: MODEL_IN_BUILD, localFile: model }]);
  const built = await session.build(local, summary, () => undefined);
  assert.equal(built.result.ok, true, JSON.stringify(built.result.diagnostics));
  return { local, buildName: summary.buildName };
}

/** `ait remote verify HOST DIR --model MODEL` in this process (the agent bundle of the current sources). */
async function cliVerify(host: string, dir: string, model: string, flags: RemoteBuildFlags) {
  const saved = process.env.AIT_AGENT_BUNDLE;
  process.env.AIT_AGENT_BUNDLE = await agentBundle();
  let stdout = '';
  let stderr = '';
  try {
    const code = await runRemoteBuild(
      host,
      dir,
      { verifyModel: model, verifyBatch: [1, 8], ...flags },
      (t) => (stdout += `${t}\n`),
      (t) => (stderr += `${t}\n`),
    );
    const file = path.join(dir, 'verify.json');
    const report = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as VerifyFileReport) : undefined;
    return { code, stdout, stderr, report };
  } finally {
    if (saved === undefined) delete process.env.AIT_AGENT_BUNDLE;
    else process.env.AIT_AGENT_BUNDLE = saved;
  }
}

/** A verify of the external-data model passed, and the host has exactly the files the model names next to it. */
function assertExternalDataVerified(r: Awaited<ReturnType<typeof cliVerify>>, referenceKind?: string): void {
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const report = r.report!.report!;
  assert.equal(report.ok, true);
  assert.equal(report.results.length, 4);
  if (referenceKind) assert.equal(report.reference?.kind, referenceKind);
  const reference = path.dirname(report.onnxModel!);
  assert.equal(path.basename(reference), 'reference');
  assert.deepEqual(fs.readdirSync(reference, { recursive: true }).map(String).sort(), [
    'gemm_relu.onnx',
    'gemm_relu.onnx.data',
    'weights',
    path.join('weights', 'b.bin'),
  ]);
}

function assertPassing(result: VerifyJobResult, batchSizes: number[], maxRelativeL2: number): void {
  assert.equal(result.ok, true, JSON.stringify(result, null, 2));
  assert.deepEqual(result.diagnostics, []);
  const report = result.report!;
  assert.deepEqual(
    report.results.map((r) => `${r.batchSize}/${r.output}/${r.shape.join('x')}/${r.pass}`),
    batchSizes.flatMap((b) => [`${b}/h/${b}x3/true`, `${b}/y/${b}x3/true`]),
  );
  const worst = Math.max(...report.results.map((r) => r.relativeL2!));
  console.log(`      ${report.reference?.kind}: largest rel. L2 error ${worst.toExponential(2)} (batch ${batchSizes.join(', ')})`);
  for (const r of report.results) {
    assert.ok(r.shapeMatches && r.relativeL2 !== null && r.relativeL2 <= maxRelativeL2, JSON.stringify(r));
    assert.ok(r.maxAbsReference! > 0.1, `a reference of all zeros would prove nothing: ${JSON.stringify(r)}`);
  }
}

/** Asserts that a request is refused with `code`, returning the diagnostic. */
async function refused(promise: Promise<unknown>, code: string) {
  const e = (await promise.then(
    () => assert.fail(`expected a refusal with ${code}`),
    (x: unknown) => x,
  )) as CompileError;
  assert.equal(e.diagnostics?.[0]?.code, code, String(e));
  return e.diagnostics[0];
}

describe('verify through the local transport (fake Gemm+Relu library, real references)', function () {
  this.timeout(180_000);
  let session: RemoteSession;
  let workDir: string;
  let model: string;
  let passing: { local: string; buildName: string };

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-work-'));
    model = gemmReluModel();
    session = await openSession('local', { agentBundlePath: await agentBundle(), remoteWorkDir: workDir });
    passing = await syncAndBuild(session, model);
  });
  after(() => session?.close());

  it('with nothing else on the host, compares against the interpreter and says so; inputs and outputs are kept as .npy', async () => {
    let log = '';
    const { job, result } = await session.verify(
      { buildName: passing.buildName, model: MODEL_IN_BUILD, batchSizes: [1, 8, 16], seed: 3 },
      (t) => (log += t),
    );
    assertPassing(result, [1, 8], 1e-6);
    const report = result.report!;
    const expected = pythonHasOnnxruntime() ? 'python-onnxruntime' : 'interpreter';
    assert.equal(report.reference?.kind, expected);
    if (expected === 'interpreter') {
      assert.match(
        report.reference!.note,
        /^interpreter, because python-onnxruntime: python3 has no onnxruntime .*; onnxruntime-node: onnxruntime-node is not installed under /,
      );
      assert.ok(report.notes.some((n) => /the project's interpreter/.test(n)));
    }
    assert.ok(report.notes.some((n) => /batch size\(s\) 16 above the model's max batch 8: skipped/.test(n)));
    assert.equal(report.model, 'fake_gemm_relu');
    assert.equal(report.seed, 3);
    assert.equal(report.tolerance, 2e-2);
    assert.match(log, /compiled: batch 8 in /);
    assert.match(log, /reference: batch 8 in /);
    assert.match(log, /batch 8 y: pass rel L2 /);
    // The files the two sides read and wrote.
    assert.equal(report.filesDir, path.join(workDir, 'jobs', job.id, 'verify'));
    const input = decodeNpy(fs.readFileSync(path.join(report.filesDir, 'inputs', 'b8', '0.npy')));
    assert.deepEqual([input.dtype, input.shape], ['float32', [8, 4]]);
    const reference = decodeNpy(fs.readFileSync(path.join(report.filesDir, 'reference', 'b8', '1.npy')));
    assert.deepEqual(reference.shape, [8, 3]);
    assert.ok(fs.existsSync(path.join(report.filesDir, 'compiled', 'b8', '1.npy')));
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(report.filesDir, 'report.json'), 'utf8')), report);

    // The job's log and result are on disk: attaching again replays it, the result is the same.
    let replay = '';
    await session.followJob(job.id, (t) => (replay += t));
    assert.equal(replay, log);
    assert.deepEqual((await session.jobResult(job.id)) as VerifyJobResult, { ...result, diagnostics: [] });
  });

  it('uses onnxruntime-node installed in the work directory, errors near float32 rounding', async () => {
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(workDir, 'node_modules'));
    try {
      const { result } = await session.verify({ buildName: passing.buildName, model: MODEL_IN_BUILD, batchSizes: [1, 8] }, () => undefined);
      assertPassing(result, [1, 8], 1e-6);
      if (pythonHasOnnxruntime()) return;
      assert.deepEqual(result.report!.reference, {
        kind: 'onnxruntime-node',
        version: ORT_NODE_VERSION,
        note: "onnxruntime-node, because python-onnxruntime: python3 has no onnxruntime (ModuleNotFoundError: No module named 'onnxruntime')",
      });
      const forced = await session.verify(
        { buildName: passing.buildName, model: MODEL_IN_BUILD, batchSizes: [2], reference: 'interpreter' },
        () => undefined,
      );
      assertPassing(forced.result, [2], 1e-6);
      assert.equal(forced.result.report!.reference?.note, 'interpreter (requested)');
    } finally {
      fs.unlinkSync(path.join(workDir, 'node_modules'));
    }
  });

  it('float16 inputs and outputs (as generated models have) pass with float16-sized errors', async () => {
    const half = await syncAndBuild(session, model, { defines: ['-DAIT_FAKE_HALF_IO'] });
    const { result } = await session.verify({ buildName: half.buildName, model: MODEL_IN_BUILD, batchSizes: [4] }, () => undefined);
    assertPassing(result, [4], 2e-3);
    assert.deepEqual(result.report!.inputs, [{ name: 'x', dtype: 'float16', shapeAtMaxBatch: [8, 4] }]);
    // Inputs are rounded to float16 before both sides read them, so the error is the output rounding alone.
    assert.ok(result.report!.results.every((r) => r.relativeL2! > 1e-5));
  });

  it("integer inputs (a text model's token ids) are ids in [0, 100) of their own type, and every reference reads them", async () => {
    const ids = await syncAndBuild(session, idsGemmReluModel(), { defines: ['-DAIT_FAKE_INT_IDS'] });
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(workDir, 'node_modules'));
    try {
      for (const reference of ['interpreter', 'onnxruntime-node'] as const) {
        const { result } = await session.verify(
          { buildName: ids.buildName, model: MODEL_IN_BUILD, batchSizes: [1, 8], reference },
          () => undefined,
        );
        assertPassing(result, [1, 8], 1e-6);
        assert.equal(result.report!.reference?.kind, reference);
        assert.deepEqual(result.report!.inputs, [{ name: 'input_ids', dtype: 'int64', shapeAtMaxBatch: [8, 4] }]);
        const input = decodeNpy(fs.readFileSync(path.join(result.report!.filesDir, 'inputs', 'b8', '0.npy')));
        assert.deepEqual([input.dtype, input.shape], ['int64', [8, 4]]);
        const values = npyToFloat64(input);
        assert.ok(values.every((v) => Number.isInteger(v) && v >= 0 && v < 100) && new Set(values).size > 5, String(values));
      }
    } finally {
      fs.unlinkSync(path.join(workDir, 'node_modules'));
    }
  });

  it('a wrong build fails and names the output, the model file and the host', async () => {
    const wrong = await syncAndBuild(session, model, { defines: ['-DAIT_FAKE_WRONG'] });
    const { job, result } = await session.verify({ buildName: wrong.buildName, model: MODEL_IN_BUILD, batchSizes: [8] }, () => undefined);
    assert.equal(result.ok, false);
    assert.equal(job.exitCode, 1);
    const rows = result.report!.results;
    assert.deepEqual(
      rows.map((r) => [r.output, r.pass]),
      [
        ['h', true],
        ['y', false],
      ],
    );
    assert.match(rows[1].failure!, /^relative L2 error \d\.\d\de[-+]\d+ above the tolerance 2\.0e-2$/);
    assert.equal(result.diagnostics.length, 1, JSON.stringify(result.diagnostics));
    const d = result.diagnostics[0];
    assert.equal(d.code, 'verify.mismatch');
    assert.match(
      d.message,
      /^output 'y' at batch 8 does not match the reference \((interpreter|onnxruntime-node|python-onnxruntime)\): relative L2 error/,
    );
    assert.deepEqual(d.location, { file: path.join(workDir, 'builds', wrong.buildName, MODEL_IN_BUILD), tensor: 'y', host: 'local' });
  });

  it('refuses a build without weights.safetensors, naming the build directory and saying what to do', async () => {
    const noWeights = await syncAndBuild(session, model, { weights: false });
    const d = await refused(
      session.startVerify({ buildName: noWeights.buildName, model: MODEL_IN_BUILD, batchSizes: [1] }),
      'verify.no-weights',
    );
    const buildDir = path.join(workDir, 'builds', noWeights.buildName);
    assert.ok(d.message.startsWith(`build directory ${buildDir} has no weights.safetensors:`), d.message);
    assert.match(d.message, /Compile a model that has its weights/);
    assert.deepEqual(d.location, { file: path.join(buildDir, 'weights.safetensors'), host: 'local' });
    const noModel = await refused(
      session.startVerify({ buildName: passing.buildName, model: 'reference/other.onnx', batchSizes: [1] }),
      'verify.no-model',
    );
    assert.match(noModel.message, /reference\/other\.onnx is not there: sync it with the build directory/);
    await refused(session.startVerify({ buildName: passing.buildName, model: '../x.onnx', batchSizes: [1] }), 'verify.bad-model-path');
  });

  it('a model with external data (model.onnx + model.onnx.data): the files it names go next to it, and the references read them', async () => {
    const external = gemmReluModelWithExternalData();
    const interpreted = await cliVerify('local', fakeGemmBuild(), external, { workDir });
    assertExternalDataVerified(interpreted, pythonHasOnnxruntime() ? 'python-onnxruntime' : 'interpreter');
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(workDir, 'node_modules'));
    try {
      assertExternalDataVerified(
        await cliVerify('local', fakeGemmBuild(), external, { workDir, reference: 'onnxruntime-node' }),
        'onnxruntime-node',
      );
    } finally {
      fs.unlinkSync(path.join(workDir, 'node_modules'));
    }
  });

  it('refuses a model whose external data leaves its directory, before anything is sent', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-evil-'));
    fs.mkdirSync(path.join(dir, 'model'));
    fs.writeFileSync(path.join(dir, 'secret.bin'), Buffer.alloc(48));
    const model = path.join(dir, 'model', 'evil.onnx');
    fs.writeFileSync(
      model,
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 4] }],
        initializers: [{ name: 'W', dtype: 'float32', dims: [3, 4], external: '../secret.bin' }],
        nodes: [{ op: 'Gemm', inputs: ['x', 'W'], outputs: ['y'], name: 'gemm', attrs: { transB: 1 } }],
        outputs: ['y'],
      }),
    );
    const build = fakeGemmBuild();
    const r = await cliVerify('local', build, model, { workDir: fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-evil-work-')) });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /error \[onnx\.external-data\] .*evil\.onnx.*external data location "\.\.\/secret\.bin" leaves the model's directory/,
    );
    assert.doesNotMatch(r.stderr, /synced/);
  });

  it('cancel ends a running verify job; its result says it was cancelled', async () => {
    const slow = await syncAndBuild(session, model, { defines: ['-DAIT_FAKE_SLOW_MS=60000'] });
    const job = await session.startVerify({ buildName: slow.buildName, model: MODEL_IN_BUILD, batchSizes: [1] });
    let log = '';
    const followed = session.followJob(job.id, (t) => (log += t));
    await waitFor('the compiled model to start running', () => /verify: opening /.test(log));
    assert.equal((await session.cancel(job.id)).signalled, true);
    const ended = await followed;
    assert.equal(ended.state, 'cancelled');
    await waitFor('the job process group to end', () => !pidAlive(job.pgid));
    const result = (await session.jobResult(job.id)) as VerifyJobResult;
    assert.equal(result.ok, false);
    assert.equal(result.report, null);
    assert.deepEqual(
      result.diagnostics.map((d) => d.code),
      ['job.cancelled'],
    );
  });
});

describe('verify over SSH (real sshd on 127.0.0.1)', function () {
  this.timeout(180_000);
  let sshd: TestSshd;
  let session: RemoteSession;
  let workDir: string;
  let model: string;

  before(async function () {
    requireSshd(this);
    sshd = await startSshd();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-ssh-work-'));
    model = gemmReluModel();
    session = await openSession('gpubox', {
      agentBundlePath: await agentBundle(),
      nodePath: process.execPath,
      remoteWorkDir: workDir,
      ssh: { configPath: sshd.sshConfig, agentSocket: null },
    });
  });
  after(() => {
    session?.close();
    sshd?.stop();
  });

  it('uploads the model with the build, passes for the right build and fails for the wrong one, naming the host', async () => {
    const good = await syncAndBuild(session, model);
    assert.ok(fs.existsSync(path.join(workDir, 'builds', good.buildName, MODEL_IN_BUILD)));
    const passed = await session.verify({ buildName: good.buildName, model: MODEL_IN_BUILD, batchSizes: [1, 8] }, () => undefined);
    assertPassing(passed.result, [1, 8], 1e-6);
    assert.equal(passed.result.report!.reference?.kind, pythonHasOnnxruntime() ? 'python-onnxruntime' : 'interpreter');

    const wrong = await syncAndBuild(session, model, { defines: ['-DAIT_FAKE_WRONG'] });
    const failed = await session.verify({ buildName: wrong.buildName, model: MODEL_IN_BUILD, batchSizes: [8] }, () => undefined);
    assert.equal(failed.result.ok, false);
    assert.deepEqual(
      failed.result.diagnostics.map((d) => [d.code, d.location?.tensor, d.location?.host]),
      [['verify.mismatch', 'y', 'gpubox']],
    );
  });

  it('ait remote verify of a model with external data sends the files it names next to it', async () => {
    const r = await cliVerify('gpubox', fakeGemmBuild(), gemmReluModelWithExternalData(), {
      workDir,
      sshConfig: sshd.sshConfig,
      node: process.execPath,
    });
    assertExternalDataVerified(r, pythonHasOnnxruntime() ? 'python-onnxruntime' : 'interpreter');
    assert.match(r.stderr, /synced .* to gpubox:/);
  });

  it('refuses a build without weights and cancels a running verify', async () => {
    const noWeights = await syncAndBuild(session, model, { weights: false });
    const d = await refused(
      session.startVerify({ buildName: noWeights.buildName, model: MODEL_IN_BUILD, batchSizes: [1] }),
      'verify.no-weights',
    );
    assert.equal(d.location?.host, 'gpubox');
    assert.match(
      d.message,
      new RegExp(`build directory ${path.join(workDir, 'builds', noWeights.buildName)} has no weights\\.safetensors`),
    );

    const slow = await syncAndBuild(session, model, { defines: ['-DAIT_FAKE_SLOW_MS=60000'] });
    const job = await session.startVerify({ buildName: slow.buildName, model: MODEL_IN_BUILD, batchSizes: [1] });
    let log = '';
    const followed = session.followJob(job.id, (t) => (log += t));
    await waitFor('the compiled model to start running', () => /verify: opening /.test(log));
    assert.equal((await session.cancel(job.id)).signalled, true);
    assert.equal((await followed).state, 'cancelled');
    await waitFor('the job process group to end', () => !pidAlive(job.pgid));
  });
});

/**
 * The python3 + onnxruntime reference path (what GPU hosts usually have) with real numpy and the agent's real script,
 * but onnxruntime replaced by a test double on PYTHONPATH (onnxruntime cannot be installed here): its
 * InferenceSession computes Gemm+Relu with W and B from $AIT_TEST_ORT_WEIGHTS, or fails when told to.
 */
describe('verify with the python3 onnxruntime script (onnxruntime test double, real numpy)', function () {
  this.timeout(120_000);
  let session: RemoteSession;
  let workDir: string;
  let model: string;

  const DOUBLE = `import json, os
import numpy as np
__version__ = "0.0-test-double"
class _Value:
    def __init__(self, name, type):
        self.name, self.type = name, type
class InferenceSession:
    def __init__(self, path, providers=None):
        assert providers == ["CPUExecutionProvider"], providers
        if os.environ.get("AIT_TEST_ORT_FAIL"):
            raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Load model from %s failed: test double told to fail" % path)
        self.path = path
        weights = json.load(open(os.environ["AIT_TEST_ORT_WEIGHTS"]))
        self.W = np.array(weights["W"], dtype=np.float32).reshape(3, 4)
        self.B = np.array(weights["B"], dtype=np.float32)
        self.ids = bool(os.environ.get("AIT_TEST_ORT_IDS"))  # the model's input is int64 input_ids, cast to float
    def get_inputs(self):
        return [_Value("input_ids", "tensor(int64)")] if self.ids else [_Value("x", "tensor(float)")]
    def get_outputs(self):
        return [_Value("h", "tensor(float)"), _Value("y", "tensor(float)")]
    def run(self, names, feeds):
        if self.ids:
            assert names is None and feeds["input_ids"].dtype == np.int64, feeds["input_ids"].dtype
            x = feeds["input_ids"].astype(np.float32)
        else:
            assert names is None and feeds["x"].dtype == np.float32
            x = feeds["x"]
        h = x @ self.W.T + self.B
        return [h, np.maximum(h, 0)]
`;

  async function sessionWithDouble(env: Record<string, string>): Promise<RemoteSession> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ort-double-'));
    fs.mkdirSync(path.join(dir, 'onnxruntime'));
    fs.writeFileSync(path.join(dir, 'onnxruntime', '__init__.py'), DOUBLE);
    fs.writeFileSync(path.join(dir, 'weights.json'), JSON.stringify({ W: GEMM_W, B: GEMM_B }));
    // The local agent (and so its jobs) inherits this process's environment at start; restored right after.
    const saved = { ...process.env };
    Object.assign(process.env, { PYTHONPATH: dir, AIT_TEST_ORT_WEIGHTS: path.join(dir, 'weights.json'), ...env });
    try {
      return await openSession('local', { agentBundlePath: await agentBundle(), remoteWorkDir: workDir });
    } finally {
      for (const k of ['PYTHONPATH', 'AIT_TEST_ORT_WEIGHTS', ...Object.keys(env)]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  }

  before(async function () {
    if (spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status !== 0) this.skip();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-py-work-'));
    model = gemmReluModel();
  });
  afterEach(() => session?.close());

  it('runs the script on the .npy inputs and compares its .npy outputs', async () => {
    session = await sessionWithDouble({});
    const build = await syncAndBuild(session, model);
    let log = '';
    const { result } = await session.verify({ buildName: build.buildName, model: MODEL_IN_BUILD, batchSizes: [1, 8] }, (t) => (log += t));
    assertPassing(result, [1, 8], 1e-6);
    assert.deepEqual(result.report!.reference, { kind: 'python-onnxruntime', version: '0.0-test-double', note: 'python-onnxruntime' });
    assert.match(log, /reference: batch 8 in \d+\.\d{3} s/);
    const filesDir = result.report!.filesDir;
    assert.ok(fs.readFileSync(path.join(filesDir, 'reference_onnxruntime.py'), 'utf8').includes('ort.InferenceSession(manifest["model"]'));
    const manifest = JSON.parse(fs.readFileSync(path.join(filesDir, 'reference_manifest.json'), 'utf8'));
    assert.equal(manifest.model, path.join(workDir, 'builds', build.buildName, MODEL_IN_BUILD));
  });

  it('feeds integer inputs (token ids) to onnxruntime in the type the model declares', async () => {
    session = await sessionWithDouble({ AIT_TEST_ORT_IDS: '1' });
    const build = await syncAndBuild(session, idsGemmReluModel(), { defines: ['-DAIT_FAKE_INT_IDS'] });
    const { result } = await session.verify({ buildName: build.buildName, model: MODEL_IN_BUILD, batchSizes: [1, 8] }, () => undefined);
    assertPassing(result, [1, 8], 1e-6);
    assert.equal(result.report!.reference?.kind, 'python-onnxruntime');
  });

  it('a failing onnxruntime is a clear error naming the script, the model and the message', async () => {
    session = await sessionWithDouble({ AIT_TEST_ORT_FAIL: '1' });
    const build = await syncAndBuild(session, model);
    const { result } = await session.verify({ buildName: build.buildName, model: MODEL_IN_BUILD, batchSizes: [1] }, () => undefined);
    assert.equal(result.ok, false);
    const d = result.diagnostics[0];
    assert.equal(d.code, 'verify.reference-failed');
    assert.match(
      d.message,
      /^python3 \S+reference_onnxruntime\.py \(onnxruntime\) on \S+gemm_relu\.onnx exited with 1: RuntimeError: .*test double told to fail$/,
    );
    assert.deepEqual(d.location, { file: path.join(workDir, 'builds', build.buildName, MODEL_IN_BUILD), host: 'local' });
  });
});
