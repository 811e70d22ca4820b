/**
 * Per-module times of `ait remote verify --per-node [--torch-model F.py:fn]` through the local transport: our per-op
 * profile of the fake Gemm+Relu library (test/native/fixtures/fake_model.cc: n0 = Gemm in module fc, n1 = Relu in
 * act) and PyTorch's module times from module_times.py, here a fake python3 (first on PATH) that "has torch" and
 * answers the script with fixed times, recording how it was called; every other python3 call goes to the real one.
 * Without torch (this machine's python3), a note says why the PyTorch column is empty. module_times.py itself runs on
 * a stand-in torch (fixtures/fake-torch: CUDA events read a clock the leaf modules advance), which checks its hook
 * arithmetic and output, not PyTorch.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../compiler/cli/main';
import { type RemoteBuildFlags, runRemoteBuild, type VerifyFileReport } from '../../compiler/cli/remote-command';
import type { PerNodeReport } from '../../compiler/verify/per-node';
import { parseTorchTimes } from '../../compiler/verify/module-times';
import { moduleTimesScript } from '../../remote-agent/agent/module-times-script';
import type { ProfileJson } from '../../webview/contract';
import { agentBundle } from './helpers/agent-bundle';
import { fakeGemmBuild, gemmReluModel } from './helpers/verify-fixtures';

const REPO = path.resolve(__dirname, '..', '..');

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

async function cliVerify(dir: string, model: string, flags: RemoteBuildFlags, env: Record<string, string> = {}) {
  const saved = { ...process.env };
  process.env.AIT_AGENT_BUNDLE = await agentBundle();
  Object.assign(process.env, env); // the local agent and its jobs inherit this process's environment at start
  let stdout = '';
  let stderr = '';
  try {
    const code = await runRemoteBuild(
      'local',
      dir,
      { verifyModel: model, verifyBatch: [2], perNode: true, ...flags },
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
      torch: read<{ modules: Record<string, number> }>('torch-module-times.json'),
      times: read<ProfileJson>('profile-verify-times.json'),
    };
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

/** A directory with a python3 that has "torch": module_times.py writes fixed times and its arguments. */
function fakeTorchPython(): { bin: string; argsFile: string } {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-fake-torch-'));
  const real = spawnSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).stdout.trim();
  const argsFile = path.join(bin, 'module_times_args.txt');
  const times = JSON.stringify({
    format: 'ait-torch-module-times',
    version: 1,
    torch: '2.99.0+fake',
    device: 'Fake GPU',
    dtype: 'float16',
    runs: 20,
    totalMs: 0.9,
    modules: { '': 1.0, fc: 0.5, act: 0.25 },
  });
  fs.writeFileSync(
    path.join(bin, 'python3'),
    `#!/bin/sh
if [ "$1" = "-c" ]; then
  case "$2" in *"import torch"*) echo "2.99.0+fake"; exit 0;; esac
fi
case "$1" in
  */module_times.py)
    printf '%s\\n' "$@" > '${argsFile}'
    out=""; prev=""
    for a in "$@"; do [ "$prev" = "--out" ] && out="$a"; prev="$a"; done
    printf '%s' '${times}' > "$out"
    exit 0;;
esac
exec ${real || '/usr/bin/python3'} "$@"
`,
    { mode: 0o755 },
  );
  return { bin, argsFile };
}

const FAKE_TORCH = path.join(__dirname, 'fixtures', 'fake-torch');

/** A factory for the fake torch: leaves advance its clock by their cost per call; `a` runs twice per forward. */
const FACTORY = `import torch


class Leaf(torch.nn.Module):
    def __init__(self, cost):
        super().__init__()
        self.cost = cost


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Leaf(1.0)
        self.b = Leaf(0.5)

    def forward(self, x):
        return self.b(self.a(self.a(x)))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = Leaf(0.25)

    def forward(self, x):
        return self.head(self.block(x))


def make():
    return Net(), (torch.randn(1, 3, 8, 8),)


def gemm_relu():
    net = torch.nn.Module()
    net.fc, net.act = Leaf(0.5), Leaf(0.25)
    net.forward = lambda x: net.act(net.fc(x))
    return net
`;

describe('module_times.py on a stand-in torch (its hook arithmetic, no GPU)', function () {
  this.timeout(60_000);

  it('sums every call of a module per forward, parents holding children; whole forward without hooks; JSON the TS side reads', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-module-times-py-'));
    fs.writeFileSync(path.join(dir, 'factory.py'), FACTORY);
    const out = path.join(dir, 'times.json');
    const r = spawnSync(
      'python3',
      [
        path.join(REPO, 'scripts', 'gpu', 'module_times.py'),
        '--torch-model',
        `${path.join(dir, 'factory.py')}:make`,
        '--runs',
        '3',
        '--warmup',
        '1',
        '--out',
        out,
      ],
      { encoding: 'utf8', env: { ...process.env, PYTHONPATH: FAKE_TORCH } },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /module times: 5 modules, whole forward 2\.750 ms/);
    const times = parseTorchTimes(JSON.parse(fs.readFileSync(out, 'utf8')), out);
    assert.deepEqual(times.modules, { '': 2.75, block: 2.5, 'block.a': 2.0, 'block.b': 0.5, head: 0.25 });
    assert.deepEqual(times.calls, { '': 1, block: 1, 'block.a': 2, 'block.b': 1, head: 1 });
    assert.equal(times.totalMs, 2.75);
    assert.deepEqual(
      [times.runs, times.warmupRuns, times.dtype, times.channelsLast, times.inputs],
      [3, 1, 'float16', true, [[1, 3, 8, 8]]],
    );
    // the .npy inputs replace the example ones
    const npy = path.join(dir, 'x.npy');
    spawnSync('python3', ['-c', `import numpy; numpy.save(${JSON.stringify(npy)}, numpy.zeros((2, 5), numpy.float32))`]);
    const r2 = spawnSync(
      'python3',
      [
        path.join(REPO, 'scripts', 'gpu', 'module_times.py'),
        '--torch-model',
        `${path.join(dir, 'factory.py')}:make`,
        '--inputs',
        npy,
        '--out',
        out,
      ],
      { encoding: 'utf8', env: { ...process.env, PYTHONPATH: FAKE_TORCH } },
    );
    assert.equal(r2.status, 0, r2.stderr);
    const again = JSON.parse(fs.readFileSync(out, 'utf8')) as { inputs: number[][]; channelsLast: boolean; runs: number };
    assert.deepEqual([again.inputs, again.channelsLast, again.runs], [[[2, 5]], false, 20]);
    // a factory that is not there is named
    const r3 = spawnSync(
      'python3',
      [path.join(REPO, 'scripts', 'gpu', 'module_times.py'), '--torch-model', `${path.join(dir, 'factory.py')}:nope`, '--out', out],
      { encoding: 'utf8', env: { ...process.env, PYTHONPATH: FAKE_TORCH } },
    );
    assert.notEqual(r3.status, 0);
    assert.match(r3.stderr, /factory\.py has no function 'nope'/);
  });
});

describe('per-module times of remote per-node verify (local transport)', function () {
  this.timeout(180_000);
  let workDir: string;

  before(() => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-modtimes-work-'));
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(workDir, 'node_modules'));
  });

  it("the agent's module_times.py is scripts/gpu/module_times.py, inline in the agent bundle", async () => {
    const script = fs.readFileSync(path.join(REPO, 'scripts', 'gpu', 'module_times.py'), 'utf8');
    assert.equal(moduleTimesScript(), script);
    // the bundle (one file copied to a GPU host) carries the text: its moduleTimesScript() returns it with no checkout
    const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-modtimes-bundle-'));
    const esbuild = await import('esbuild');
    const { embeddedScriptsPlugin } = await import('../../scripts/embedded-scripts-plugin.mjs');
    await esbuild.build({
      entryPoints: [path.join(REPO, 'remote-agent', 'agent', 'module-times-script.ts')],
      outfile: path.join(bundle, 'script.js'),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      plugins: [embeddedScriptsPlugin],
      logLevel: 'silent',
    });
    const moved = path.join(bundle, 'elsewhere', 'script.js'); // no scripts/gpu beside it
    fs.mkdirSync(path.dirname(moved));
    fs.renameSync(path.join(bundle, 'script.js'), moved);
    const loaded = (await import(moved)) as { moduleTimesScript(): string };
    assert.equal(loaded.moduleTimesScript(), script);
  });

  it('--torch-model: ours from the per-op profile, PyTorch from module_times.py on the debug inputs; table, JSON, files', async () => {
    const dir = fakeGemmBuild();
    const factoryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-factory-'));
    const factory = path.join(factoryDir, 'gemm_relu_torch.py');
    fs.writeFileSync(factory, 'def make():\n    raise SystemExit("not run: python3 is a fake here")\n');
    const { bin, argsFile } = fakeTorchPython();
    const r = await cliVerify(dir, gemmReluModel(), { workDir, torchModel: `${factory}:make` }, { PATH: `${bin}:${process.env.PATH}` });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const perNode = r.perNode!;
    // how the agent ran the script: the factory synced into the build, the debug run's inputs, an output file
    const args = fs.readFileSync(argsFile, 'utf8').trim().split('\n');
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    assert.match(at('--torch-model'), /[\\/]reference[\\/]gemm_relu_torch\.py:make$/);
    assert.ok(fs.existsSync(at('--torch-model').replace(/:make$/, '')), 'the factory is on the host');
    assert.match(at('--inputs'), /[\\/]inputs[\\/]b2[\\/]0\.npy$/);
    // ours: the profile's per-op meanMs summed per scope (fc holds n0, act holds n1)
    const profile = perNode.profile!;
    assert.equal(profile.format, 'ait-profile');
    assert.equal(profile.batch, 2);
    assert.deepEqual(Object.keys(profile.ops).sort(), ['n0', 'n1']);
    const row = (m: string) => perNode.modules.find((x) => x.module === m)!;
    assert.equal(row('fc').timeMs, profile.ops.n0.meanMs);
    assert.equal(row('act').timeMs, profile.ops.n1.meanMs);
    assert.ok(profile.ops.n0.meanMs > 0);
    // PyTorch's, joined by module path; the ratio
    assert.equal(row('fc').torchModule, 'fc');
    assert.equal(row('fc').referenceTimeMs, 0.5);
    assert.equal(row('act').referenceTimeMs, 0.25);
    assert.ok(Math.abs(row('fc').speedup! - 0.5 / profile.ops.n0.meanMs) < 1e-12);
    assert.equal(row('fc').nodes, 1, 'the errors stay');
    assert.equal(perNode.times!.reference!.torch, '2.99.0+fake');
    assert.equal(perNode.times!.reference!.matched, 2);
    // files beside graph.json: both sides' times (`ait modules` joins them again); the errors stay a profile of
    // errors only, so that the graph opens on the error heatmap
    assert.deepEqual(r.torch!.modules, { '': 1.0, fc: 0.5, act: 0.25 });
    assert.equal(r.times!.ops.n0.meanMs, profile.ops.n0.meanMs);
    assert.equal(r.times!.graph.model, 'fake_gemm_relu');
    assert.equal(r.profile!.ops.n0.meanMs, 0);
    assert.ok(r.profile!.ops.n0.error!.relativeL2! < 1e-6);
    const joined = await ait(
      'modules',
      dir,
      '--profile',
      path.join(dir, 'profile-verify-times.json'),
      '--torch-times',
      path.join(dir, 'torch-module-times.json'),
      '--json',
    );
    assert.equal(joined.code, 0, joined.stderr);
    assert.deepEqual(
      (JSON.parse(joined.stdout) as PerNodeReport).modules.map((m) => [m.module, m.nodes, m.timeMs, m.referenceTimeMs, m.speedup]),
      perNode.modules.map((m) => [m.module, m.nodes, m.timeMs, m.referenceTimeMs, m.speedup]),
    );
    // the table
    assert.match(r.stdout, /module.*nodes.*max abs err.*ours ms.*torch ms.*speedup/);
    assert.match(r.stdout, new RegExp(`fc .*\\b0\\.500\\b.*${(0.5 / profile.ops.n0.meanMs).toFixed(2)}x`));
    assert.match(
      r.stdout,
      /torch: PyTorch eager 2\.99\.0\+fake float16 on Fake GPU, median of 20 runs, whole forward 0\.900 ms; 2 module row/,
    );
    assert.match(r.stdout, /wrote .*torch-module-times\.json/);
    assert.match(r.stdout, /wrote .*profile-verify-times\.json/);
  });

  it("the agent runs its module_times.py (here on the stand-in torch) with the factory and the debug run's inputs", async () => {
    const dir = fakeGemmBuild();
    fs.writeFileSync(path.join(dir, 'gemm_relu_torch.py'), FACTORY);
    const r = await cliVerify(
      dir,
      gemmReluModel(),
      { workDir, torchModel: `${path.join(dir, 'gemm_relu_torch.py')}:gemm_relu` },
      { PYTHONPATH: FAKE_TORCH },
    );
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const row = (m: string) => r.perNode!.modules.find((x) => x.module === m)!;
    assert.deepEqual([row('fc').torchModule, row('fc').referenceTimeMs, row('act').referenceTimeMs], ['fc', 0.5, 0.25]);
    assert.equal(r.perNode!.torchTimes!.torch, '0.0-fake');
    assert.deepEqual(r.perNode!.torchTimes!.inputs, [[2, 4]], "the debug run's input at batch 2");
    assert.equal(r.perNode!.times!.reference!.totalMs, 0.75);
  });

  it('a host whose python3 has no torch: our times, and a note why the PyTorch column is empty', async function () {
    if (spawnSync('python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) this.skip();
    const dir = fakeGemmBuild();
    const factory = path.join(dir, 'factory.py');
    fs.writeFileSync(factory, 'def make():\n    pass\n');
    const r = await cliVerify(dir, gemmReluModel(), { workDir, torchModel: `${factory}:make` });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const fc = r.perNode!.modules.find((m) => m.module === 'fc')!;
    assert.ok(fc.timeMs! > 0);
    assert.ok(!('referenceTimeMs' in fc) && !('speedup' in fc), JSON.stringify(fc));
    assert.ok(
      r.perNode!.notes.some((n) => /^PyTorch module times are missing: (python3 has no torch|python3 does not run)/.test(n)),
      JSON.stringify(r.perNode!.notes),
    );
    assert.match(r.stdout, /note: PyTorch module times are missing/);
    assert.equal(r.torch, undefined);
  });

  it('refuses --torch-model without --per-node, and a spec that is not FILE.py:FUNCTION', async () => {
    const dir = fakeGemmBuild();
    const a = await cliVerify(dir, gemmReluModel(), { workDir, perNode: false, torchModel: 'x.py:make' });
    assert.equal(a.code, 1);
    assert.match(a.stderr, /error \[verify\.bad-torch-model\]: --torch-model times the modules of the per-node table: it needs --per-node/);
    const b = await cliVerify(dir, gemmReluModel(), { workDir, torchModel: 'x.py:os.system' });
    assert.equal(b.code, 1);
    assert.match(b.stderr, /--torch-model takes FILE\.py:FUNCTION \(FUNCTION a Python identifier\), got 'x\.py:os\.system'/);
  });
});
