import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pythonModule } from '../compiler/backends/cuda/codegen/build-files';
import type { Diagnostic } from '../compiler/diagnostics';
import { loadProfile } from '../compiler/cli/graph-command';
import { profileFromRuntime, type RuntimeProfile, writeProfiles } from '../compiler/cli/profile-files';
import type { GraphJson } from '../webview/contract';
import { requireTool } from './helpers/tools';

const CLI = path.resolve(__dirname, '..', 'dist', 'cli.js');

describe('profile.json from the runtime profile', () => {
  const runtime = {
    model: 'resnet50',
    runs: 10,
    batchSize: 8,
    totalMeanMs: 0.9,
    ops: [
      { id: 'n1', name: 'conv2d', kernel: 'cutlass3x_sm90_x', calls: 10, meanMs: 0.02, minMs: 0.019 },
      { id: 'n2', name: 'gemm (split epilogue)', kernel: 'cutlass3x_sm90_y', calls: 20, meanMs: 0.01, minMs: 0.009 },
    ],
  };

  it('keys ops by graph.json id, at the measured batch, with launches per run', () => {
    const p = profileFromRuntime(runtime, { name: 'NVIDIA H200', arch: 'sm90' }, new Date('2026-11-21T00:00:00Z'));
    assert.equal(p.format, 'ait-profile');
    assert.equal(p.batch, 8);
    assert.deepEqual(p.ops.n1, { meanMs: 0.02, minMs: 0.019, launches: 1 });
    // two launches per run: the op's time per run is twice the mean launch
    assert.equal(p.ops.n2.launches, 2);
    assert.ok(Math.abs(p.ops.n2.meanMs - 0.02) < 1e-12);
  });

  it('writes files the graph page accepts as profiles', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-prof-'));
    const c = spawnSync(process.execPath, [CLI, 'compile', 'examples/resnet50/resnet50.onnx', '--out', dir], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    const graph = JSON.parse(fs.readFileSync(path.join(dir, 'graph.json'), 'utf8'));
    const kernels = graph.nodes.filter((n: { role: string }) => n.role === 'kernel');
    const files = writeProfiles(
      dir,
      {
        profiles: [
          {
            ...runtime,
            ops: kernels.map((n: { id: string }, i: number) => ({ id: n.id, name: n.id, kernel: 'k', calls: 10, meanMs: 0.01 * (i + 1) })),
          },
        ],
      },
      { index: 0, name: 'NVIDIA H200', arch: 'sm90' },
    );
    assert.deepEqual(
      files.map((f) => path.basename(f)),
      ['profile-b8.json'],
    );
    const html = path.join(dir, 'page.html');
    const g = spawnSync(process.execPath, [CLI, 'graph', dir, '--profile', files[0], '--html', html], { encoding: 'utf8' });
    assert.equal(g.status, 0, g.stdout + g.stderr);
    assert.doesNotMatch(g.stdout + g.stderr, /warning/);
    assert.match(g.stdout, /1 profile/);
  });
});

/**
 * The JSON that the runtime itself writes (ait_runtime.cu profile_json, compiled host-only with nvcc: no GPU needed)
 * becomes, through ait_model.py's profile() and through the bench's conversion, the same ait-profile document, one
 * that `ait graph --profile` loads.
 */
describe("the runtime's profile JSON through ait_model.py profile() and the bench conversion", function () {
  this.timeout(120_000);
  const RUNTIME = path.resolve(__dirname, '..', 'compiler', 'backends', 'cuda', 'runtime');
  let runtimeJson: string;
  let dir: string;

  before(function () {
    requireTool(this, 'nvcc', spawnSync('nvcc', ['--version']).status === 0, 'the CUDA toolkit (nvcc on PATH)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-runtime-profile-'));
    // The runtime's translation unit with a two-op model description and the profile counters of 10 runs at batch 8.
    fs.writeFileSync(
      path.join(dir, 'profile_json.cu'),
      `#include "ait_runtime.cu"
#include <cstdio>
namespace {
const ait::OpDescription kOps[] = {{"n1", "conv \\"stem\\"", "cutlass_x", nullptr}, {"n2", "gemm (split)", "k2", nullptr}};
const ait::ModelDescription kDesc = {ait::kModelAbiVersion, "tiny", 8, nullptr, 0, nullptr, 0, nullptr, 0, kOps, 2, 0, 0, nullptr, 0};
}  // namespace
extern "C" const ait::ModelDescription* ait_model_description() { return &kDesc; }
int main() {
  AITModel m;
  m.desc = &kDesc;
  m.profiled_runs = 10;
  m.last_profiled_batch = 8;
  m.total_profiled_ms = 9.0;
  m.op_profiles.resize(2);
  m.op_profiles[0] = {10, 0.2, 0.019, 0.03};
  m.op_profiles[1] = {20, 0.2, 0.009, 0.012};
  size_t length = 0;
  if (AITModelGetProfileJson(&m, nullptr, 0, &length) != AIT_OK) return 1;
  std::string json(length + 1, '\\0');
  if (AITModelGetProfileJson(&m, &json[0], json.size(), &length) != AIT_OK) return 1;
  std::fputs(json.c_str(), stdout);
  m.desc = nullptr;
  return 0;
}
`,
    );
    const exe = path.join(dir, 'profile_json');
    const c = spawnSync(
      'nvcc',
      ['-std=c++17', '-O0', `-I${RUNTIME}`, path.join(dir, 'profile_json.cu'), path.join(RUNTIME, 'safetensors.cc'), '-o', exe],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(c.status, 0, c.stdout + c.stderr);
    const r = spawnSync(exe, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    runtimeJson = r.stdout;
  });

  /** A graph.json with the two nodes the profile names. */
  const graph = { model: { name: 'tiny' }, nodes: [{ id: 'n1' }, { id: 'n2' }] } as unknown as GraphJson;

  function loads(profile: unknown, name: string): void {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify(profile));
    const diagnostics: Diagnostic[] = [];
    const loaded = loadProfile(file, graph, diagnostics);
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(Object.keys(loaded.profile.ops), ['n1', 'n2']);
  }

  it('profile() of the generated ait_model.py returns (and writes) an ait-profile file that ait graph loads, as the bench writes it', function () {
    if (spawnSync('python3', ['--version']).status !== 0) this.skip();
    fs.writeFileSync(path.join(dir, 'ait_model.py'), pythonModule('tiny'));
    fs.writeFileSync(path.join(dir, 'runtime.json'), runtimeJson);
    // AITModel with a fake library: the runtime's calls answer as the runtime does, with the JSON above.
    const script = `
import ctypes, datetime, json, sys
sys.path.insert(0, ${JSON.stringify(dir)})
import ait_model
raw = open(${JSON.stringify(path.join(dir, 'runtime.json'))}, "rb").read()
calls = []
class Fn:
    def __init__(self, name, impl):
        self.name, self.impl = name, impl
    def __call__(self, *args):
        calls.append(self.name)
        return self.impl(*args)
def get_json(model, buffer, capacity, length):
    ctypes.cast(length, ctypes.POINTER(ctypes.c_size_t))[0] = len(raw)
    if buffer is not None:
        ctypes.memmove(buffer, raw, min(len(raw), capacity - 1))
        ctypes.cast(buffer, ctypes.POINTER(ctypes.c_char))[min(len(raw), capacity - 1)] = b"\\0"
    return 0
class FakeLib:
    AITModelSetProfiling = Fn("profiling", lambda m, on: 0)
    AITModelResetProfile = Fn("reset", lambda m: 0)
    AITModelGetProfileJson = Fn("json", get_json)
    AITModelDestroy = Fn("destroy", lambda m: 0)
model = ait_model.AITModel.__new__(ait_model.AITModel)
model._lib, model._model = FakeLib(), None
model.run = lambda inputs, batch=None: calls.append("run")
out = ${JSON.stringify(path.join(dir, 'python-profile.json'))}
p = model.profile([], iterations=10, batch=8, path=out, gpu={"name": "NVIDIA H200", "arch": "sm90"})
assert json.load(open(out)) == p
assert calls == ["profiling", "reset"] + ["run"] * 10 + ["json", "json", "profiling"], calls
fixed = ait_model.ait_profile(json.loads(raw), {"name": "NVIDIA H200", "arch": "sm90"}, datetime.datetime(2026, 11, 21, tzinfo=datetime.timezone.utc))
print(json.dumps(fixed))
`;
    const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const written = JSON.parse(fs.readFileSync(path.join(dir, 'python-profile.json'), 'utf8'));
    assert.equal(written.format, 'ait-profile');
    loads(written, 'python-profile.json');
    // The same document as the bench's conversion of the same runtime JSON.
    const fromPython = JSON.parse(r.stdout);
    const fromBench = profileFromRuntime(
      JSON.parse(runtimeJson) as RuntimeProfile,
      { name: 'NVIDIA H200', arch: 'sm90' },
      new Date('2026-11-21T00:00:00Z'),
    );
    assert.deepEqual(fromPython, JSON.parse(JSON.stringify(fromBench)));
    assert.deepEqual(fromPython.ops, { n1: { meanMs: 0.02, minMs: 0.019, launches: 1 }, n2: { meanMs: 0.02, minMs: 0.009, launches: 2 } });
    assert.deepEqual([fromPython.batch, fromPython.runs, fromPython.totalMs], [8, 10, 0.9]);
  });

  it('the raw runtime JSON is not a profile file; the bench conversion of it is', () => {
    const raw = JSON.parse(runtimeJson) as RuntimeProfile;
    assert.throws(() => loads(raw, 'raw.json'), /not an ait-profile file/);
    loads(profileFromRuntime(raw, { name: 'NVIDIA H200', arch: 'sm90' }), 'bench-profile.json');
  });
});
