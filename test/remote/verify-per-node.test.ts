/**
 * `ait remote verify --per-node` without a GPU: the fake Gemm+Relu library (test/native/fixtures/fake_model.cc) has a
 * debug run that reports its two ops by the ids of the build's graph.json (n0 = Gemm → h, n1 = Relu → y); the agent
 * compares each with the ONNX tensor a real reference (onnxruntime-node or the interpreter) gives for it, through the
 * native binding or, without it, python3 and the build's ait_model.py. Through the local transport and a real sshd.
 * A real compiled model on a GPU: AIT_TEST_GPU_VERIFY=1 with AIT_TEST_GPU_HOST (an ssh target or 'local').
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CompileError } from '../../compiler/diagnostics';
import { type RemoteBuildFlags, runRemoteBuild, type VerifyFileReport } from '../../compiler/cli/remote-command';
import { runCompile } from '../../compiler/cli/compile-command';
import { openSession, type RemoteSession } from '../../remote-agent/client';
import type { PerNodeReport } from '../../compiler/verify/per-node';
import type { ProfileJson } from '../../webview/contract';
import { agentBundle } from './helpers/agent-bundle';
import { requireSshd, startSshd, type TestSshd } from './helpers/sshd';
import { buildModel } from '../helpers/onnx-builder';
import { fakeGemmBuild, type FakeBuildOptions, gemmReluModel, gemmReluModelWithExternalData } from './helpers/verify-fixtures';

const REPO = path.resolve(__dirname, '..', '..');
const MODEL_IN_BUILD = 'reference/gemm_relu.onnx';

function pythonHasNumpy(): boolean {
  return spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
}

async function syncAndBuild(session: RemoteSession, model: string, options: FakeBuildOptions = {}) {
  const local = fakeGemmBuild(options);
  const summary = await session.sync(local, undefined, [{ path: MODEL_IN_BUILD, localFile: model }]);
  const built = await session.build(local, summary, () => undefined);
  assert.equal(built.result.ok, true, JSON.stringify(built.result.diagnostics));
  return { local, buildName: summary.buildName };
}

async function cliVerify(host: string, dir: string, model: string, flags: RemoteBuildFlags) {
  const saved = process.env.AIT_AGENT_BUNDLE;
  process.env.AIT_AGENT_BUNDLE = await agentBundle();
  let stdout = '';
  let stderr = '';
  try {
    const code = await runRemoteBuild(
      host,
      dir,
      { verifyModel: model, verifyBatch: [2, 8], perNode: true, ...flags },
      (t) => (stdout += `${t}\n`),
      (t) => (stderr += `${t}\n`),
    );
    const read = <T>(name: string) =>
      fs.existsSync(path.join(dir, name)) ? (JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as T) : undefined;
    return {
      code,
      stdout,
      stderr,
      report: read<VerifyFileReport>('verify.json'),
      perNode: read<PerNodeReport>('verify-per-node.json'),
      profile: read<ProfileJson>('profile-verify.json'),
    };
  } finally {
    if (saved === undefined) delete process.env.AIT_AGENT_BUNDLE;
    else process.env.AIT_AGENT_BUNDLE = saved;
  }
}

/** Both nodes compared at their ONNX tensors, within `maxRelativeL2`, nothing named. */
function assertNodesPass(perNode: PerNodeReport | undefined, maxRelativeL2: number): void {
  assert.ok(perNode, 'no per-node report');
  assert.deepEqual(
    perNode.nodes.map((n) => [n.id, n.onnxTensor, n.shape, n.skipped]),
    [
      ['n0', 'h', [perNode.batch, 3], undefined],
      ['n1', 'y', [perNode.batch, 3], undefined],
    ],
  );
  for (const n of perNode.nodes) {
    assert.ok(n.relativeL2 !== null && n.relativeL2! <= maxRelativeL2, JSON.stringify(n));
    assert.ok(n.maxAbsReference! > 0.1, `a reference of zeros proves nothing: ${JSON.stringify(n)}`);
  }
  assert.equal(perNode.firstJump, null);
  assert.equal(perNode.firstOverflow, null);
  assert.deepEqual(
    perNode.modules.map((m) => [m.module, m.nodes]),
    [
      ['fc', 1],
      ['act', 1],
    ],
  );
}

async function refused(promise: Promise<unknown>, code: string) {
  const e = (await promise.then(
    () => assert.fail(`expected a refusal with ${code}`),
    (x: unknown) => x,
  )) as CompileError;
  assert.equal(e.diagnostics?.[0]?.code, code, String(e));
  return e.diagnostics[0];
}

describe('per-node verify through the local transport (fake library with debug runs, real references)', function () {
  this.timeout(180_000);
  let session: RemoteSession;
  let workDir: string;
  let model: string;

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-pernode-work-'));
    model = gemmReluModel();
    session = await openSession('local', { agentBundlePath: await agentBundle(), remoteWorkDir: workDir });
  });
  after(() => session?.close());

  it('a right build: every node within tolerance at the first batch size, against onnxruntime-node with the tensors exposed', async () => {
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(workDir, 'node_modules'));
    try {
      const build = await syncAndBuild(session, model);
      let log = '';
      const { job, result } = await session.verify(
        { buildName: build.buildName, model: MODEL_IN_BUILD, batchSizes: [4, 8], perNode: true },
        (t) => (log += t),
      );
      assert.equal(result.ok, true, JSON.stringify(result, null, 2));
      const report = result.report!;
      assert.equal(report.runner, 'native-binding');
      const perNode = report.perNode!;
      assert.equal(perNode.batch, 4);
      assertNodesPass(perNode, 1e-6);
      assert.equal(perNode.reference.kind, 'onnxruntime-node');
      assert.match(perNode.candidate, /libfake_gemm_relu\.so debug run \(native-binding\)$/);
      assert.match(log, /compiled: batch 4 \(debug run, 2 node outputs\)/);
      assert.match(log, /per node: 2 nodes compared at batch 4; first error jump: none; first fp16 overflow: none/);
      // The reference model the agent wrote: weights inline, h and y outputs (already outputs: none added).
      const filesDir = path.join(workDir, 'jobs', job.id, 'verify');
      assert.ok(fs.existsSync(path.join(filesDir, 'reference-nodes.onnx')));
      assert.equal(fs.readdirSync(path.join(filesDir, 'nodes', 'b4')).length, 2);
    } finally {
      fs.unlinkSync(path.join(workDir, 'node_modules'));
    }
  });

  it('a wrong build: the first error jump is the Relu node (not the Gemm before it), as an error naming node and ONNX node', async () => {
    const wrong = await syncAndBuild(session, model, { defines: ['-DAIT_FAKE_WRONG'] });
    const { result } = await session.verify(
      { buildName: wrong.buildName, model: MODEL_IN_BUILD, batchSizes: [8], perNode: true },
      () => undefined,
    );
    assert.equal(result.ok, false);
    const perNode = result.report!.perNode!;
    assert.equal(perNode.reference.kind, 'interpreter');
    assert.deepEqual(
      perNode.nodes.map((n) => [n.id, n.bad]),
      [
        ['n0', false],
        ['n1', true],
      ],
    );
    assert.equal(perNode.firstJump?.id, 'n1');
    const jump = result.diagnostics.find((d) => d.code === 'verify.error-jump');
    assert.ok(jump, JSON.stringify(result.diagnostics));
    assert.match(
      jump.message,
      /^first error jump at node n1 \(elementwise 'relu' in act, batch 8\): relative L2 .* above .*; ONNX nodes relu$/,
    );
    assert.deepEqual(jump.location, {
      file: path.join(workDir, 'builds', wrong.buildName, MODEL_IN_BUILD),
      nodeId: 'n1',
      onnxNode: 'relu',
      tensor: 'y',
      host: 'local',
    });
  });

  it('float16 node outputs (as generated models store them) compare with fp16-sized errors', async () => {
    const half = await syncAndBuild(session, model, { defines: ['-DAIT_FAKE_HALF_IO'] });
    const { result } = await session.verify(
      { buildName: half.buildName, model: MODEL_IN_BUILD, batchSizes: [8], perNode: true },
      () => undefined,
    );
    assert.equal(result.ok, true, JSON.stringify(result.diagnostics));
    assertNodesPass(result.report!.perNode, 2e-3);
    assert.ok(
      result.report!.perNode!.nodes.every((n) => n.relativeL2! > 1e-6),
      'fp16 storage leaves a rounding error',
    );
  });

  it('refuses a library built before debug runs, and a build directory without graph.json, saying what to do', async () => {
    const old = await syncAndBuild(session, model, { defines: ['-DAIT_FAKE_NO_DEBUG'] });
    const { result } = await session.verify(
      { buildName: old.buildName, model: MODEL_IN_BUILD, batchSizes: [1], perNode: true },
      () => undefined,
    );
    assert.equal(result.ok, false);
    const d = result.diagnostics[0];
    assert.equal(d.code, 'verify.no-debug-support');
    assert.match(d.message, /libfake_gemm_relu\.so has no debug runs \(it exports no AITModelRunDebug: .*\): compile the model again/);
    // Without --per-node the same library verifies as before.
    const plain = await session.verify({ buildName: old.buildName, model: MODEL_IN_BUILD, batchSizes: [1] }, () => undefined);
    assert.equal(plain.result.ok, true);
    assert.equal(plain.result.report!.perNode, undefined);

    const noGraph = await syncAndBuild(session, model, { graph: false });
    const g = await refused(
      session.startVerify({ buildName: noGraph.buildName, model: MODEL_IN_BUILD, batchSizes: [1], perNode: true }),
      'verify.no-graph',
    );
    assert.match(g.message, /graph\.json is not there: per-node verify finds each node's ONNX tensor through the compile's graph\.json/);
  });

  it('ait remote verify --per-node of a model with external data: the report, DIR/verify-per-node.json and the error profile', async () => {
    const dir = fakeGemmBuild();
    const external = gemmReluModelWithExternalData();
    const r = await cliVerify('local', dir, external, { workDir });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertNodesPass(r.perNode, 1e-6);
    assert.equal(r.perNode!.model, external, 'the local model, not the copy on the host');
    assert.equal(r.report!.report!.perNode!.batch, 2);
    assert.match(r.stdout, /first fp16 overflow: none/);
    assert.match(r.stdout, /first error jump \(rel L2 > 0\.0100\): none/);
    assert.match(r.stdout, /module +│? *nodes/);
    assert.match(r.stdout, /wrote .*profile-verify\.json/);
    // The profile keys errors by the graph.json ids, as the heatmap reads them.
    assert.equal(r.profile!.format, 'ait-profile');
    assert.deepEqual(Object.keys(r.profile!.ops).sort(), ['n0', 'n1']);
    assert.equal(r.profile!.ops.n1.error!.fp16Overflow, false);
    assert.ok(r.profile!.ops.n1.error!.relativeL2! < 1e-6);
  });

  it('a wrong build through the CLI exits 1 and prints the first error jump, naming the node', async () => {
    const dir = fakeGemmBuild({ defines: ['-DAIT_FAKE_WRONG'] });
    const r = await cliVerify('local', dir, gemmReluModel(), { workDir, threshold: 0.05 });
    assert.equal(r.code, 1);
    assert.equal(r.perNode!.threshold, 0.05);
    assert.match(r.stdout, /first error jump \(rel L2 > 0\.0500\): n1 elementwise 'relu' in act — relative L2 /);
    assert.match(r.stderr, /error \[verify\.error-jump\] .*first error jump at node n1/);
    assert.ok(r.profile!.ops.n1.error!.relativeL2! > 0.05);
  });
});

describe("per-node verify without the native binding: python3 with the build's ait_model.py", function () {
  this.timeout(180_000);
  let session: RemoteSession;
  let workDir: string;

  before(async function () {
    if (!pythonHasNumpy()) this.skip();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-pernode-py-work-'));
    // The local agent and its jobs inherit this process's environment at start.
    process.env.AIT_NATIVE_BINDING = 'none';
    try {
      session = await openSession('local', { agentBundlePath: await agentBundle(), remoteWorkDir: workDir });
    } finally {
      delete process.env.AIT_NATIVE_BINDING;
    }
  });
  after(() => session?.close());

  it('runs run_debug through ctypes and compares every node; the report says which runner and why', async () => {
    const build = await syncAndBuild(session, gemmReluModel(), { defines: ['-DAIT_FAKE_HALF_IO'] });
    const { result } = await session.verify(
      { buildName: build.buildName, model: MODEL_IN_BUILD, batchSizes: [8, 3], perNode: true },
      () => undefined,
    );
    assert.equal(result.ok, true, JSON.stringify(result, null, 2));
    const report = result.report!;
    assert.equal(report.runner, 'python-ait_model');
    assert.ok(
      report.notes.some((n) => /ran through python3 and .*ait_model\.py: AIT_NATIVE_BINDING=none/.test(n)),
      report.notes.join('\n'),
    );
    assert.deepEqual(
      report.results.map((r) => `${r.batchSize}/${r.output}/${r.pass}`),
      ['8/h/true', '8/y/true', '3/h/true', '3/y/true'],
    );
    assertNodesPass(report.perNode, 2e-3);
    assert.match(report.perNode!.candidate, /debug run \(python-ait_model\)$/);
    // our per-op profile through ait_model.py's profile(), at the debug run's batch: the module table's time column
    const profile = report.perNode!.profile!;
    assert.equal(profile.batch, 8);
    assert.deepEqual(Object.keys(profile.ops).sort(), ['n0', 'n1']);
    assert.equal(report.perNode!.modules.find((m) => m.module === 'fc')!.timeMs, profile.ops.n0.meanMs);
  });

  it('a library without AITModelRunDebug is refused the same way', async () => {
    const old = await syncAndBuild(session, gemmReluModel(), { defines: ['-DAIT_FAKE_NO_DEBUG'] });
    const { result } = await session.verify(
      { buildName: old.buildName, model: MODEL_IN_BUILD, batchSizes: [1], perNode: true },
      () => undefined,
    );
    assert.equal(result.diagnostics[0]?.code, 'verify.no-debug-support', JSON.stringify(result.diagnostics));
  });
});

describe('per-node verify over SSH (real sshd on 127.0.0.1)', function () {
  this.timeout(180_000);
  let sshd: TestSshd;

  before(function () {
    requireSshd(this);
  });
  after(() => sshd?.stop());

  it('ait remote verify --per-node of a model with external data names no problem and writes the error profile', async () => {
    sshd = await startSshd();
    const dir = fakeGemmBuild({ defines: ['-DAIT_FAKE_WRONG'] });
    const r = await cliVerify('gpubox', dir, gemmReluModelWithExternalData(), {
      workDir: fs.mkdtempSync(path.join(os.tmpdir(), 'ait-pernode-ssh-work-')),
      sshConfig: sshd.sshConfig,
      node: process.execPath,
    });
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assert.equal(r.perNode!.firstJump?.id, 'n1');
    assert.match(r.stderr, /error \[verify\.error-jump\] .*gpubox/);
    assert.deepEqual(Object.keys(r.profile!.ops).sort(), ['n0', 'n1']);
  });
});

/**
 * A real compiled model on a GPU host: compile a small CNN here, then `--remote HOST --verify --per-node` there.
 * Opt-in (AIT_TEST_GPU_VERIFY=1, AIT_TEST_GPU_HOST=local on the GPU machine itself, or an ssh target).
 */
describe('per-node verify of a compiled model on a GPU (opt-in)', function () {
  this.timeout(1_200_000);
  it('every node of a compiled CNN within tolerance of onnxruntime', async function () {
    if (process.env.AIT_TEST_GPU_VERIFY !== '1') this.skip();
    const host = process.env.AIT_TEST_GPU_HOST ?? 'local';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-pernode-gpu-'));
    const modelFile = path.join(dir, 'small_cnn.onnx');
    const weights = (name: string, dims: number[]) => ({
      name,
      dtype: 'float32' as const,
      dims,
      values: Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 1.7 + dims.length) * 0.3),
    });
    fs.writeFileSync(
      modelFile,
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, 16, 16] }],
        initializers: [
          weights('conv.weight', [16, 3, 3, 3]),
          weights('conv.bias', [16]),
          weights('fc.weight', [10, 16]),
          weights('fc.bias', [10]),
        ],
        nodes: [
          {
            op: 'Conv',
            name: 'conv',
            inputs: ['x', 'conv.weight', 'conv.bias'],
            outputs: ['c'],
            attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] },
          },
          { op: 'Relu', name: 'relu', inputs: ['c'], outputs: ['r'] },
          { op: 'GlobalAveragePool', name: 'pool', inputs: ['r'], outputs: ['p'] },
          { op: 'Flatten', name: 'flatten', inputs: ['p'], outputs: ['f'] },
          { op: 'Gemm', name: 'fc', inputs: ['f', 'fc.weight', 'fc.bias'], outputs: ['y'], attrs: { transB: 1 } },
        ],
        outputs: ['y'],
      }),
    );
    assert.equal(
      runCompile(modelFile, { out: dir, force: true, target: 'cuda:sm90' }, () => undefined),
      0,
    );
    const r = await cliVerify(host, dir, modelFile, { verifyBatch: [1] });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.ok(r.perNode!.nodes.filter((n) => n.relativeL2 !== undefined).length > 0);
  });
});
