/**
 * Measured kernel choice (compiler/backends/cuda/profiling/): candidates, the generated profiler, selection from
 * recorded measurements, and `ait compile --profile local` end to end with a stand-in nvcc (fixtures/nvcc) whose
 * "profiler" prints made-up medians: candidate 0 is fastest at batches 1 and 2, candidate 1 from batch 4 on.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../compiler/compile';
import { gemmCandidates, convCandidates } from '../../compiler/backends/cuda/profiling/candidates';
import type { ConvProblem } from '../../compiler/backends/cuda/cutlass/conv';
import { KernelProfiling, memorySource, profiledBatches, type MeasurementSource } from '../../compiler/backends/cuda/profiling/selection';
import { CompileError } from '../../compiler/diagnostics';
import { WorkerCompileRunner } from '../../extension/compile/service';
import { buildDist, REPO_ROOT } from '../extension/fakes';
import type { Measurement } from '../../compiler/profiling/types';
import { openProfileCache } from '../../compiler/profiling/cache';
import { buildModel, type ModelSpec } from '../helpers/onnx-builder';
import { agentBundle } from '../remote/helpers/agent-bundle';
import { CUTLASS_DIR, requireCutlassOptIn } from '../helpers/nvcc';
import { deviceKeyOf, parseProfilerOutput } from '../../compiler/cli/profile-command';

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const FAKE_NVCC_DIR = path.join(__dirname, 'fixtures');

/** x[B,64] · w[64,128] + b, ReLU; and a 3x3 conv: one GEMM and one conv signature. */
function mlpConvSpec(): ModelSpec {
  const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', 64] },
      { name: 'img', dtype: 'float32', dims: ['B', 16, 8, 8] },
    ],
    initializers: [
      { name: 'w', dtype: 'float32', dims: [64, 128], values: rand(64 * 128) },
      { name: 'b', dtype: 'float32', dims: [128], values: rand(128) },
      { name: 'k', dtype: 'float32', dims: [32, 16, 3, 3], values: rand(32 * 16 * 9) },
    ],
    nodes: [
      { op: 'MatMul', name: 'mm', inputs: ['x', 'w'], outputs: ['m'] },
      { op: 'Add', name: 'add', inputs: ['m', 'b'], outputs: ['a'] },
      { op: 'Relu', name: 'act', inputs: ['a'], outputs: ['y'] },
      { op: 'Conv', name: 'conv', inputs: ['img', 'k'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
    ],
    outputs: [
      { name: 'y', dtype: 'float32', dims: ['B', 128] },
      { name: 'c', dtype: 'float32', dims: ['B', 32, 8, 8] },
    ],
  };
}

function writeModel(dir: string): string {
  const file = path.join(dir, 'mlp_conv.onnx');
  fs.writeFileSync(file, buildModel(mlpConvSpec()));
  return file;
}

/** Measurements the way the fake profiler makes them, for every op the compile records. */
function fakeMeasurements(profiling: KernelProfiling): Measurement[] {
  const out: Measurement[] = [];
  for (const op of profiling.ops.values())
    op.candidates.forEach((c, i) => {
      for (const batch of op.batches)
        out.push(
          i === 2
            ? { signature: op.signature, candidate: c.instance.name, batch, status: 'launch-failed', message: 'Error Internal' }
            : {
                signature: op.signature,
                candidate: c.instance.name,
                batch,
                status: 'ok',
                medianUs: i === 0 ? 10 * batch : i === 1 ? 20 + batch : 1000,
              },
        );
    });
  return out;
}

describe('measured kernel choice', function () {
  this.timeout(120_000);
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-profiling-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('what a host prints is checked: a device key with a wrong field, or malformed measurements, are refused by name', () => {
    const device = { gpu: 'NVIDIA H200', sms: 132, driver: '13.0', cuda: '13.0', cutlass: '4.7.0' };
    assert.deepEqual(deviceKeyOf(device), device);
    assert.equal(deviceKeyOf({ ...device, gpu: { toString: 1 } }), undefined);
    assert.equal(deviceKeyOf({ ...device, sms: -1 }), undefined);
    assert.equal(deviceKeyOf({ ...device, cutlass: 'x'.repeat(500) }), undefined);
    assert.throws(
      () => parseProfilerOutput({ format: 'ait-profiler', device: { ...device, sms: '132' }, measurements: [] }, 'h:out'),
      /h:out: not ait_profiler output \(device incomplete\)/,
    );
    assert.throws(
      () =>
        parseProfilerOutput(
          { format: 'ait-profiler', device, measurements: [{ signature: 's', candidate: 'c', batch: 1, status: 'fast' }] },
          'h:out',
        ),
      /malformed measurement/,
    );
  });

  it('profiled batches are the powers of two below the max batch, and the max batch', () => {
    assert.deepEqual(profiledBatches(1), [1]);
    assert.deepEqual(profiledBatches(8), [1, 2, 4, 8]);
    assert.deepEqual(profiledBatches(100), [1, 2, 4, 8, 16, 32, 64, 100]);
  });

  it('candidates: the heuristic choice first, distinct instances, wide tiles pruned on a narrow N', () => {
    const problems = [1, 8, 64].map((b) => ({ m: 197 * b, n: 768, k: 768 }));
    const sm90 = gemmCandidates('sm90', true, problems, { bias: true, residual: false, activation: 'gelu' }, undefined);
    assert.ok(sm90.length >= 6, `${sm90.length} sm90 candidates`);
    assert.equal(new Set(sm90.map((c) => c.instance.name)).size, sm90.length);
    assert.ok(sm90.every((c) => c.instance.name.startsWith('cutlass3x_sm90_')));
    const narrow = gemmCandidates(
      'sm90',
      true,
      [{ m: 64, n: 64, k: 64 }],
      { bias: false, residual: false, activation: 'identity' },
      undefined,
    );
    assert.ok(
      narrow.every((c) => (c.config as { tile: number[] }).tile[1] <= 128),
      'no 256-wide N tile on N=64',
    );
    assert.ok(
      narrow.every((c) => (c.config as { scheduler?: string }).scheduler !== 'streamk'),
      'no stream-K on K=64',
    );
    const sm80 = gemmCandidates('sm80', false, problems, { bias: true, residual: false, activation: 'relu' }, undefined);
    assert.ok(sm80.length >= 5 && sm80.every((c) => c.instance.name.startsWith('cutlass_tensorop_')));
    const conv3x3: ConvProblem = {
      n: 1,
      h: 56,
      w: 56,
      c: 64,
      k: 64,
      r: 3,
      s: 3,
      p: 56,
      q: 56,
      pads: [1, 1, 1, 1],
      strides: [1, 1],
      dilations: [1, 1],
      group: 1,
    };
    const conv = convCandidates(
      'sm90',
      [1, 64].map((n) => ({ ...conv3x3, n })),
      ['bias', 'relu'],
    );
    assert.ok(conv.some((c) => c.config.arch === 'sm90') && conv.some((c) => c.config.arch === 'sm80'), 'sm90 and 2.x conv candidates');
    const convAt = (k: number) =>
      convCandidates(
        'sm90',
        [1, 256].map((n) => ({ ...conv3x3, n, k })),
        ['bias'],
      ).map((c) => c.config.tile[1]);
    assert.ok(convAt(32).includes(32), 'a 32-wide N tile for 32 output channels');
    assert.ok(!convAt(64).includes(32), 'no 32-wide N tile where a 64-wide one is full');
  });

  it('selection: the fastest candidate per profiled batch, merged into ranges; graph.json lists the candidates with their times; the same in the compile worker', async () => {
    const model = writeModel(tmp);
    // collect the signatures (no measurements), then compile again with the fake profiler's measurements
    const first = compileModel(model, { out: path.join(tmp, 'plain'), target: 'cuda:sm90', maxBatch: 16, profileSources: 'all' });
    assert.ok(first.ok, JSON.stringify(first.diagnostics));
    assert.equal(first.profiling?.signatures, 2);
    assert.equal(first.profiling?.measured, 0);
    assert.ok(fs.existsSync(path.join(first.outDir, 'profile', 'src', 'profile_table.cu')));
    assert.ok(fs.existsSync(path.join(first.outDir, 'profile', 'Makefile')));
    const table = fs.readFileSync(path.join(first.outDir, 'profile', 'src', 'profile_table.cu'), 'utf8');
    assert.match(
      table,
      /^\s+\{"gemm sm90 cutlass3x m=1\*b n=128 k=64 epilogue=bias\+relu", kAitProfileGemm, 0, \{kAitStepBias, kAitStepRelu\}, 2,/m,
    );
    assert.match(
      table,
      /^\s+\{"conv sm90 n=1\*b h=8 w=8 c=16 k=32 r=3 s=3 pads=1,1,1,1 strides=1,1 dilations=1,1 group=1 epilogue=none", kAitProfileConv/m,
    );

    const profiling = new KernelProfiling({ maxBatch: 16, collect: true });
    const recorded: Measurement[] = [];
    const source: MeasurementSource = { device: 'Fake GPU, 132 SMs', lookup: (s) => recorded.filter((m) => m.signature === s) };
    // rebuild the candidate lists from the generated table of the first compile: names in order per signature
    const ops = [...table.matchAll(/^ {2}\{"([^"]+)", kAitProfile/gm)].map((m) => m[1]);
    ops.forEach((signature, i) => {
      const names = [
        ...table
          .split(`candidates_${i}[] = {`)[1]
          .split('};')[0]
          .matchAll(/^ {2}\{"([^"]+)"/gm),
      ].map((m) => m[1]);
      profiling.ops.set(signature, {
        signature,
        nodes: [],
        kind: 'gemm',
        batches: [1, 2, 4, 8, 16],
        problems: [],
        workspaceBytes: 0,
        steps: [],
        candidates: names.map((name) => ({ config: {}, instance: { name, reason: '', code: '', includes: [] } })),
      });
    });
    recorded.push(...fakeMeasurements(profiling));
    const measured = compileModel(model, { out: path.join(tmp, 'measured'), target: 'cuda:sm90', maxBatch: 16, measurements: source });
    assert.ok(measured.ok, JSON.stringify(measured.diagnostics));
    assert.deepEqual(measured.profiling, { signatures: 2, measured: 2, profiled: 0, candidates: 0 });
    const graph = JSON.parse(fs.readFileSync(path.join(measured.outDir, 'graph.json'), 'utf8'));
    for (const op of ['gemm', 'conv2d']) {
      const node = graph.nodes.find((n: { op: string }) => n.op === op);
      const names = [...profiling.ops.values()]
        .find((o) => o.signature.startsWith(op === 'gemm' ? 'gemm' : 'conv'))!
        .candidates.map((c) => c.instance.name);
      const instances = node.kernel.config.instances as { batches: number[]; name: string; file: string }[];
      assert.deepEqual(instances, [
        { batches: [1, 2], name: names[0], file: instances[0].file },
        { batches: [3, 16], name: names[1], file: instances[1].file },
      ]);
      assert.match(
        node.kernel.reason,
        /batch 1\.\.2: fastest of \d+ profiled candidates at batch 1 on Fake GPU, 132 SMs: 10\.0 µs; batch 3\.\.16: fastest of \d+ profiled candidates at batch 4 on Fake GPU, 132 SMs: 24\.0 µs/,
      );
      const cands = node.kernel.candidates as {
        name: string;
        timeMs: number | null;
        timesMs: Record<string, number | null>;
        error?: string;
        chosen?: boolean;
      }[];
      assert.equal(cands.length, names.length);
      assert.deepEqual(
        cands.filter((c) => c.chosen).map((c) => c.name),
        [names[0], names[1]],
      );
      assert.equal(cands[1].timeMs, 0.036); // 20 + 16 µs at the largest profiled batch
      assert.equal(cands[0].timesMs['2'], 0.02);
      assert.match(cands[2].error ?? '', /^launch-failed: Error Internal \(batch 1\)$/);
    }
    // the launch function dispatches on the batch between the two instances
    const cu = fs.readFileSync(path.join(measured.outDir, 'src', 'model.cu'), 'utf8');
    assert.match(cu, /if \(batch <= 2\) \{\n\s+AIT_RETURN_IF_FAILED\(ait_gemm_[0-9a-f]{12}\(gemm/);

    // a signature with measurements missing at some batch keeps the heuristic there and says so
    const partial: MeasurementSource = { device: 'Fake GPU', lookup: (s) => recorded.filter((m) => m.signature === s && m.batch <= 4) };
    const p = compileModel(model, {
      out: path.join(tmp, 'partial'),
      target: 'cuda:sm90',
      maxBatch: 16,
      measurements: partial,
      profileSources: 'missing',
    });
    assert.ok(p.ok);
    assert.deepEqual(p.profiling, { signatures: 2, measured: 0, profiled: 2, candidates: p.profiling!.candidates });
    const pg = JSON.parse(fs.readFileSync(path.join(p.outDir, 'graph.json'), 'utf8'));
    assert.match(pg.nodes.find((n: { op: string }) => n.op === 'gemm').kernel.reason, /no successful measurement at batch 8: /);

    // the same compile in the extension's compile worker thread (the profile flow's CompileStep there): the
    // measurements travel to it as data, and it chooses the same instances
    buildDist();
    const runner = new WorkerCompileRunner(path.join(REPO_ROOT, 'dist', 'compile-worker.js'));
    const lines: string[] = [];
    const opts = { out: path.join(tmp, 'worker'), target: 'cuda:sm90', maxBatch: 16 };
    const code = await runner.runCli(model, { ...opts, measurementSource: memorySource('Fake GPU, 132 SMs', recorded) }, (l) =>
      lines.push(l),
    );
    assert.equal(code, 0, lines.join('\n'));
    assert.match(lines.join('\n'), /kernel choice: 2 of 2 GEMM\/conv signatures measured \(Fake GPU, 132 SMs\)/);
    const wg = JSON.parse(fs.readFileSync(path.join(tmp, 'worker', 'graph.json'), 'utf8'));
    for (const op of ['gemm', 'conv2d']) {
      const names = (g: { nodes: { op: string; kernel: { config: { instances: { name: string }[] } } }[] }) =>
        g.nodes.find((n) => n.op === op)!.kernel.config.instances.map((i) => i.name);
      assert.deepEqual(names(wg), names(graph));
    }
    // a bad option comes back from the worker as the CompileError it was there
    await assert.rejects(
      runner.runCli(model, { ...opts, target: 'cuda:sm99' }, () => undefined),
      (e: unknown) => e instanceof CompileError && e.diagnostics[0].code === 'compile.bad-target',
    );
  });

  it('ait compile --profile local: device key, profiler built and run there, measurements cached, final build measured; a second compile profiles nothing', async function () {
    this.timeout(300_000);
    const model = writeModel(tmp);
    const cutlass = path.join(tmp, 'cutlass');
    fs.mkdirSync(path.join(cutlass, 'include', 'cutlass'), { recursive: true });
    fs.writeFileSync(path.join(cutlass, 'include', 'cutlass', 'cutlass.h'), '');
    const cacheFile = path.join(tmp, 'profiles.sqlite');
    const env = {
      ...process.env,
      AIT_AGENT_BUNDLE: await agentBundle(),
      PATH: `${FAKE_NVCC_DIR}:${process.env.PATH}`,
      CUTLASS_DIR: cutlass,
      AIT_PROFILE_CACHE: cacheFile,
    };
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-profile-work-'));
    const out = path.join(tmp, 'profiled');
    const run = () =>
      spawnSync(
        process.execPath,
        [
          CLI,
          'compile',
          model,
          '-o',
          out,
          '--force',
          '--target',
          'cuda:sm90',
          '--max-batch',
          '16',
          '--profile',
          'local',
          '--work-dir',
          workDir,
        ],
        {
          encoding: 'utf8',
          env,
        },
      );
    const r = run();
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stderr, /profiling on local: Fake GPU, 132 SMs, driver CUDA 13\.0, CUDA 13\.0, CUTLASS 4\.7\.0/);
    assert.match(r.stderr, /profiled on 1 GPU\(s\): build \d+ s, profiling \d+ s, \d+ measurements stored in /);
    assert.match(r.stdout, /kernel choice: 2 of 2 GEMM\/conv signatures measured \(Fake GPU, 132 SMs/);
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const gemm = graph.nodes.find((n: { op: string }) => n.op === 'gemm');
    assert.equal(gemm.kernel.candidates.filter((c: { chosen?: boolean }) => c.chosen).length, 2);
    assert.ok(!fs.existsSync(path.join(out, 'profile')), 'the final build carries no profiler');
    const cache = await openProfileCache(cacheFile);
    const [device] = cache.devices();
    assert.equal(device.gpu, 'Fake GPU');
    assert.equal(cache.list()[0].signatures, 2);
    await cache.close();

    const again = run();
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /every GEMM\/conv signature is in the profile cache for Fake GPU: nothing to profile/);

    // a model without GEMM or conv: nothing to profile, no host work, the ordinary build
    const relu = path.join(tmp, 'relu_only.onnx');
    fs.writeFileSync(
      relu,
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 64] }],
        nodes: [{ op: 'Relu', name: 'act', inputs: ['x'], outputs: ['y'] }],
        outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 64] }],
      }),
    );
    const plain = spawnSync(
      process.execPath,
      [CLI, 'compile', relu, '-o', path.join(tmp, 'relu'), '--profile', 'local', '--work-dir', workDir],
      {
        encoding: 'utf8',
        env,
      },
    );
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stderr, /nothing to profile: the model has no GEMM or convolution/);
    assert.ok(fs.existsSync(path.join(tmp, 'relu', 'src', 'model.cu')) && !fs.existsSync(path.join(tmp, 'relu', 'profile')));

    // from the cache alone, on another compile
    const cached = spawnSync(
      process.execPath,
      [CLI, 'compile', model, '-o', path.join(tmp, 'from-cache'), '--max-batch', '16', '--profiled-on', 'fake'],
      {
        encoding: 'utf8',
        env,
      },
    );
    assert.equal(cached.status, 0, cached.stderr);
    assert.match(cached.stderr, /kernel choice from the profile cache \(.*\): Fake GPU, 132 SMs/);
    const none = spawnSync(process.execPath, [CLI, 'compile', model, '-o', path.join(tmp, 'none'), '--profiled-on', 'H200'], {
      encoding: 'utf8',
      env,
    });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /error \[profile\.no-device\].*has no measurements of a GPU named like 'H200' \(it has: Fake GPU\)/);
  });

  // Opt-in (AIT_TEST_CUTLASS=1; about 10 sm90 and 12 sm80 instances, minutes per arch on 2 cores): every candidate the
  // lists emit for a GEMM with bias+GELU, a residual GEMM and a 3x3 conv builds, and the profiler links.
  for (const target of ['cuda:sm80', 'cuda:sm90'] as const)
    it(`AIT_TEST_CUTLASS=1: every ${target} candidate compiles, and ait_profiler links without one that does not (make -C profile)`, function () {
      requireCutlassOptIn.call(this);
      this.timeout(3_600_000);
      const model = writeModel(tmp);
      const r = compileModel(model, { out: path.join(tmp, `cutlass-${target.slice(5)}`), target, maxBatch: 64, profileSources: 'all' });
      assert.ok(r.ok, JSON.stringify(r.diagnostics));
      // a candidate that does not compile is left out of the link (a weak null entry point: build-failed), not fatal
      fs.appendFileSync(path.join(r.outDir, 'profile', 'src', 'gemm_1.cu'), '\n#error a candidate that does not compile\n');
      const make = spawnSync('make', ['-C', path.join(r.outDir, 'profile'), `-j${os.cpus().length}`, `CUTLASS_DIR=${CUTLASS_DIR}`], {
        encoding: 'utf8',
      });
      assert.equal(
        make.status,
        0,
        (make.stdout + make.stderr)
          .split('\n')
          .filter((l) => /error/.test(l))
          .slice(0, 20)
          .join('\n'),
      );
      assert.ok(fs.existsSync(path.join(r.outDir, 'profile', 'ait_profiler')));
      const objects = fs.readdirSync(path.join(r.outDir, 'profile', 'build')).filter((f) => /^(gemm|conv)_\d+\.o$/.test(f));
      const sources = fs.readdirSync(path.join(r.outDir, 'profile', 'src')).filter((f) => /^(gemm|conv)_\d+\.cu$/.test(f));
      assert.equal(objects.length, sources.length - 1, 'every candidate but the broken one compiled');
      assert.ok(!objects.includes('gemm_1.o'));
    });
});
