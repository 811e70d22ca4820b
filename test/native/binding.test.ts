// The native binding built here (no GPU) against the Node headers, driving fake model libraries that implement the
// runtime's C ABI on the CPU (test/native/fixtures/fake_model.cc: host memory as "device", host-clock timing).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildNativeBinding, findNodeGyp, nativeBindingFileName } from '../../native/build';
import {
  benchBuildDir,
  isNativeError,
  latencyStats,
  loadNativeModule,
  type NativeBindingModule,
  type NativeError,
  type NativeModel,
} from '../../native/index';
import { openSession } from '../../remote-agent/client';
import { ensureNativeBinding } from '../../remote-agent/agent/native-binding';
import { agentBundle } from '../remote/helpers/agent-bundle';

const REPO = path.resolve(__dirname, '..', '..');
const RUNTIME_INCLUDE = path.join(REPO, 'compiler', 'backends', 'cuda', 'runtime');
const FAKE_SOURCE = path.join(__dirname, 'fixtures', 'fake_model.cc');

function compileFake(out: string, defines: string[] = []): string {
  execFileSync('g++', ['-std=c++17', '-O1', '-shared', '-fPIC', `-I${RUNTIME_INCLUDE}`, ...defines, FAKE_SOURCE, '-o', out]);
  return out;
}

function floats(buffer: Buffer): number[] {
  return Array.from(new Float32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength / 4));
}

/** Asserts that `promise` rejects with a binding error of `code` whose message matches `message`. */
async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<NativeError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected a rejection with ${code}`),
    (e) => (caught = e),
  );
  assert.ok(isNativeError(caught), `not a binding error: ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, message);
  return caught;
}

describe('native binding (built with the Node headers, fake CPU model libraries)', function () {
  this.timeout(120_000);
  let tmp: string;
  let binding: NativeBindingModule;
  let fakeLibrary: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-native-'));
    fakeLibrary = compileFake(path.join(tmp, 'libfake_affine.so'));
    const built = await buildNativeBinding({ outDir: path.join(tmp, 'direct'), method: 'direct' });
    assert.equal(built.method, 'direct');
    binding = loadNativeModule(built.path);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('compiles with a direct compiler call, loads, reports its versions, and is reused for the same sources', async () => {
    assert.equal(binding.bindingApiVersion, 3);
    assert.equal(binding.aitAbiVersion, 1);
    const again = await buildNativeBinding({ outDir: path.join(tmp, 'direct'), method: 'direct' });
    assert.equal(again.method, 'cached');
    assert.equal(path.basename(again.path), nativeBindingFileName());
    assert.match(path.basename(again.path), new RegExp(`^ait_native-abi${process.versions.modules}-[0-9a-f]{16}\\.node$`));
  });

  it('refuses a missing library file, naming it', async () => {
    const missing = path.join(tmp, 'nowhere', 'libmodel.so');
    const e = await rejectsWith(binding.openModel(missing), 'library-missing', /model library .*nowhere\/libmodel\.so does not exist/);
    assert.equal(e.library, missing);
  });

  it('refuses a library of another runtime ABI version, and a library that is no AIT model', async () => {
    const v2 = compileFake(path.join(tmp, 'libfake_v2.so'), ['-DAIT_FAKE_ABI_VERSION=2']);
    await rejectsWith(
      binding.openModel(v2),
      'abi-mismatch',
      /libfake_v2\.so speaks AIT runtime ABI version 2, this binding speaks version 1/,
    );
    const other = path.join(tmp, 'libother.so');
    fs.writeFileSync(path.join(tmp, 'other.c'), 'int unrelated(void) { return 3; }\n');
    execFileSync('gcc', ['-shared', '-fPIC', path.join(tmp, 'other.c'), '-o', other]);
    await rejectsWith(binding.openModel(other), 'abi-mismatch', /libother\.so is not an AIT model library: it exports no AITGetAbiVersion/);
    fs.writeFileSync(path.join(tmp, 'libgarbage.so'), 'not an ELF file');
    await rejectsWith(binding.openModel(path.join(tmp, 'libgarbage.so')), 'library-load', /cannot load model library .*libgarbage\.so: /);
  });

  it('takes the CUDA path for a library without the host-memory marker: a clear error without a GPU, event timing with one', async () => {
    const cudaFake = compileFake(path.join(tmp, 'libfake_cuda.so'), ['-DAIT_FAKE_NO_HOST_MARKER']);
    const outcome = await binding.openModel(cudaFake).then(
      (model) => ({ model }),
      (error: NativeError) => ({ error }),
    );
    if ('error' in outcome) {
      assert.ok(['cuda-unavailable', 'no-device'].includes(outcome.error.code), outcome.error.message);
      assert.match(outcome.error.message, /libfake_cuda\.so/);
      assert.match(outcome.error.message, /no CUDA runtime .*libcudart\.so\.13|no usable GPU/);
    } else {
      // On a GPU machine: opened through the CUDA runtime (never run: the fake would touch device memory on the CPU).
      assert.equal(outcome.model.info().timer, 'cuda-events');
      outcome.model.close();
    }
  });

  it('run({inputShapes}): a model with an input dim (seq) runs at the given shape and returns outputs of its size', async () => {
    const model = await binding.openModel(compileFake(path.join(tmp, 'libfake_seq.so'), ['-DAIT_FAKE_INPUT_DIM']));
    try {
      assert.deepEqual(model.info().inputDims, [{ name: 'seq', input: 0, axis: 1, min: 1, max: 3 }]);
      model.bindWeight('scale', new Float32Array([2, 3, 4]));
      model.bindWeight('shift', new Float32Array([1, 1, 1]));
      // batch 2 at seq 2: x [2, 2] → y [2, 2] (the first two channels' scale and shift)
      const short = await model.run(2, [new Float32Array([1, 2, 3, 4])], { inputShapes: [[2, 2]] });
      assert.deepEqual(short.shapes, [[2, 2]]);
      assert.deepEqual(floats(short[0]), [3, 7, 7, 13]);
      // no shapes: every input at its max shape (seq 3)
      const full = await model.run(1, [new Float32Array([1, 1, 1])]);
      assert.deepEqual(full.shapes, [[1, 3]]);
      assert.deepEqual(floats(full[0]), [3, 4, 5]);
      // the input's bytes must match the given shape; the library checks seq's bounds
      await rejectsWith(
        model.run(2, [new Float32Array(6)], { inputShapes: [[2, 2]] }),
        'AIT_INVALID_ARGUMENT',
        /input 'x' has 24 bytes; batch 2 needs 16/,
      );
      await rejectsWith(
        model.run(1, [new Float32Array(4)], { inputShapes: [[1, 4]] }),
        'AIT_INVALID_ARGUMENT',
        /shape of input 'x': input 'x': axis 1 \(is 'seq'\) must be in 1\.\.3, got 4/,
      );
    } finally {
      model.close();
    }
  });

  describe('a model of the fake library', () => {
    let model: NativeModel;
    beforeEach(async () => (model = await binding.openModel(fakeLibrary)));
    afterEach(() => model.close());

    it('describes inputs, outputs and weights, says it is timed with a host clock, and refuses to run unbound', async () => {
      const info = model.info();
      assert.equal(info.name, 'fake_affine');
      assert.equal(info.maxBatch, 4);
      assert.equal(info.timer, 'host-clock');
      assert.deepEqual(
        info.inputs.map((t) => [t.name, t.dtype, t.maxShape, t.batchAxis, t.maxBytes]),
        [['x', 'float32', [4, 3], 0, 48]],
      );
      assert.deepEqual(
        info.weights.map((w) => [w.name, w.bytes]),
        [
          ['scale', 12],
          ['shift', 12],
        ],
      );
      assert.equal(info.unboundWeights, 2);
      await rejectsWith(model.run(1), 'AIT_NOT_READY', /running fake_affine at batch 1: weight 'scale' is not bound/);
    });

    it('binds weights by name from typed arrays and runs on host buffers (copied in and out)', async () => {
      assert.throws(
        () => model.bindWeight('nope', new Float32Array(3)),
        (e: NativeError) => e.code === 'AIT_INVALID_ARGUMENT' && /no weight named 'nope'/.test(e.message),
      );
      assert.throws(() => model.bindWeight('scale', new Float32Array(2)), /weight 'scale' takes 12 bytes, got 8/);
      model.bindWeight('scale', new Float32Array([1, 2, 3]));
      model.bindWeight('shift', Buffer.from(new Float32Array([10, 20, 30]).buffer));
      const [y] = await model.run(2, [new Float32Array([1, 1, 1, 2, 2, 2])]);
      assert.deepEqual(floats(y), [11, 22, 33, 12, 24, 36]);
      await rejectsWith(model.run(2, [new Float32Array(3)]), 'AIT_INVALID_ARGUMENT', /input 'x' has 12 bytes; batch 2 needs 24/);
      await rejectsWith(model.run(5), 'AIT_INVALID_ARGUMENT', /batch 5.* is outside 1\.\.4 of fake_affine/);
      // Without inputs the run reads the binding's own buffers (still holding the last copy).
      const [again] = await model.run(1, undefined, { returnOutputs: true });
      assert.deepEqual(floats(again), [11, 22, 33]);
    });

    it('runDebug: every op output by graph.json id with its dtype and shape, then the outputs; busy while it runs', async () => {
      assert.equal(model.info().debugRuns, true);
      model.bindWeight('scale', new Float32Array([1, 2, 3]));
      model.bindWeight('shift', new Float32Array([10, 20, 30]));
      const running = model.runDebug(2, [new Float32Array([1, 1, 1, 2, 2, 2])]);
      assert.throws(() => model.info(), /busy/);
      const { outputs, nodes } = await running;
      assert.deepEqual(
        nodes.map((n) => [n.id, n.dtype, n.shape]),
        [
          ['n0', 'float32', [2, 3]],
          ['n1', 'float32', [2, 3]],
        ],
      );
      assert.deepEqual(floats(nodes[0].data), [1, 2, 3, 2, 4, 6]);
      assert.deepEqual(floats(nodes[1].data), [11, 22, 33, 12, 24, 36]);
      assert.deepEqual(floats(outputs[0]), [11, 22, 33, 12, 24, 36]);
      await rejectsWith(model.runDebug(2, [new Float32Array(3)]), 'AIT_INVALID_ARGUMENT', /input 'x' has 12 bytes; batch 2 needs 24/);
      await rejectsWith(model.runDebug(0), 'AIT_INVALID_ARGUMENT', /batch 0.* is outside 1\.\.4 of fake_affine/);
    });

    it('runDebug on a library built before debug runs (no AITModelRunDebug): a clear error, and info says so', async () => {
      const old = await binding.openModel(compileFake(path.join(tmp, 'libfake_nodebug.so'), ['-DAIT_FAKE_NO_DEBUG']));
      try {
        assert.equal(old.info().debugRuns, false);
        old.randomizeWeights(1, 1, true);
        assert.equal((await old.run(1)).length, 1);
        await rejectsWith(
          old.runDebug(1),
          'no-debug-support',
          /libfake_nodebug\.so has no debug runs \(it exports no AITModelRunDebug: built by an older compiler, before model ABI 3\): compile the model again/,
        );
      } finally {
        old.close();
      }
    });

    it('randomizes only unbound weights unless told all', () => {
      model.bindWeight('scale', new Float32Array([1, 1, 1]));
      assert.equal(model.randomizeWeights(5, 1, false), 0);
      assert.equal(model.info().unboundWeights, 0);
    });

    it('times each run (latency grows with batch), switches graph mode, and is busy while timing', async () => {
      model.randomizeWeights(1, 0.5, true);
      const timing = model.time({ batchSize: 4, iterations: 6, warmupIterations: 2, graph: true });
      assert.throws(
        () => model.info(),
        (e: NativeError) => e.code === 'busy',
      );
      const graphTiming = await timing;
      assert.equal(graphTiming.timer, 'host-clock');
      assert.equal(graphTiming.latenciesMs.length, 6);
      // The fake sleeps 0.2 ms per batch item in each run.
      assert.ok(Math.min(...graphTiming.latenciesMs) >= 0.75, `batch 4 latencies ${Array.from(graphTiming.latenciesMs)}`);
      const eager = await model.time({ batchSize: 1, iterations: 6, warmupIterations: 1, graph: false });
      assert.ok(latencyStats(eager.latenciesMs).p50Ms < latencyStats(graphTiming.latenciesMs).p50Ms);
      const profile = (await model.profile({ batchSize: 1, iterations: 1 })) as unknown as { fakeGraphModeRuns: number };
      assert.equal(profile.fakeGraphModeRuns, 8, 'the 2 warm-up + 6 timed graph runs, none of the eager ones');
    });

    it("returns the runtime's per-op profile, parsed", async () => {
      model.randomizeWeights(1, 0.5, false);
      const profile = await model.profile({ batchSize: 3, iterations: 4, warmupIterations: 1 });
      assert.equal(profile.model, 'fake_affine');
      assert.equal(profile.runs, 4);
      assert.equal(profile.lastBatch, 3);
      assert.equal(profile.timer, 'host-clock');
      assert.deepEqual(
        profile.ops.map((o) => [o.id, o.name, o.calls]),
        [
          ['n0', 'Mul scale', 4],
          ['n1', 'Add shift', 4],
        ],
      );
      assert.ok(profile.ops[0].minMs >= 0.55, `op n0 sleeps 0.6 ms at batch 3: ${profile.ops[0].minMs}`);
    });

    it('reads a weights file at create, and reports the runtime message when the file is missing', async () => {
      const weights = path.join(tmp, 'fake.weights');
      fs.writeFileSync(weights, Buffer.from(new Float32Array([2, 2, 2, 1, 1, 1]).buffer));
      const withWeights = await binding.openModel(fakeLibrary, { weightsPath: weights });
      try {
        assert.equal(withWeights.info().unboundWeights, 0);
        const [y] = await withWeights.run(1, [new Float32Array([1, 2, 3])]);
        assert.deepEqual(floats(y), [3, 5, 7]);
      } finally {
        withWeights.close();
      }
      const missing = path.join(tmp, 'missing.weights');
      await rejectsWith(
        binding.openModel(fakeLibrary, { weightsPath: missing }),
        'AIT_WEIGHTS_ERROR',
        /cannot open weights file .*missing\.weights/,
      );
    });
  });

  it('latencyStats: nearest-rank percentiles', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.deepEqual(latencyStats(samples), { iterations: 100, p50Ms: 50, p90Ms: 90, p99Ms: 99, meanMs: 50.5, minMs: 1, maxMs: 100 });
    assert.equal(latencyStats([7]).p99Ms, 7);
  });

  it('benchBuildDir: eager and graph latency per batch, per-op profiles, notes on random weights, host clock and skipped batches', async () => {
    const buildDir = path.join(tmp, 'build-dir');
    fs.mkdirSync(buildDir);
    fs.copyFileSync(fakeLibrary, path.join(buildDir, 'libfake_affine.so'));
    const result = await benchBuildDir(binding, {
      buildDir,
      batchSizes: [1, 4, 8],
      iterations: 5,
      warmupIterations: 1,
      profileIterations: 3,
    });
    assert.equal(result.runner, 'native-binding');
    assert.equal(result.timer, 'host-clock');
    assert.equal(result.weights, 'random');
    assert.deepEqual(
      result.results.map((r) => [r.batchSize, r.graph, r.iterations]),
      [
        [1, false, 5],
        [1, true, 5],
        [4, false, 5],
        [4, true, 5],
      ],
    );
    const at4 = result.results[2];
    assert.ok(at4.p50Ms >= 0.75 && at4.p50Ms <= at4.p90Ms && at4.p90Ms <= at4.p99Ms);
    assert.ok(Math.abs(at4.itemsPerSecond - 4000 / at4.p50Ms) < 1e-9);
    assert.deepEqual(
      result.profiles.map((p) => [p.batchSize, p.runs, p.ops.length]),
      [
        [1, 3, 2],
        [4, 3, 2],
      ],
    );
    assert.ok(result.notes.some((n) => /2 weight\(s\) not in any weights file: random values/.test(n)));
    assert.ok(result.notes.some((n) => /timed with a host clock, not CUDA events/.test(n)));
    assert.ok(result.notes.some((n) => /batch size\(s\) 8 above the model's max batch 4: skipped/.test(n)));
  });
});

describe('the agent builds the native binding on the host and benches through it', function () {
  this.timeout(180_000);

  it('builds once per (Node ABI, source hash) with node-gyp where present, then reuses it', async function () {
    if (!findNodeGyp()) this.skip(); // covered by the direct-build tests above
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-native-work-'));
    const first = await ensureNativeBinding(workDir);
    assert.ok('binding' in first, 'unavailable' in first ? first.unavailable : '');
    assert.equal(first.path, path.join(workDir, 'native', nativeBindingFileName()));
    assert.match(
      fs.readFileSync(
        path.join(
          workDir,
          'native',
          fs.readdirSync(path.join(workDir, 'native')).find((f) => f.endsWith('.log'))!,
        ),
        'utf8',
      ),
      /node-gyp/,
    );
    const mtime = fs.statSync(first.path).mtimeMs;
    const second = await ensureNativeBinding(workDir);
    assert.ok('binding' in second);
    assert.equal(fs.statSync(second.path).mtimeMs, mtime);
  });

  it('bench over --remote local: the agent builds the binding, the job times the model and returns per-op profiles', async () => {
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-native-agent-'));
    const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-native-build-'));
    fs.copyFileSync(FAKE_SOURCE, path.join(buildDir, 'fake_model.cc'));
    fs.copyFileSync(path.join(RUNTIME_INCLUDE, 'ait_runtime.h'), path.join(buildDir, 'ait_runtime.h'));
    fs.writeFileSync(
      path.join(buildDir, 'Makefile'),
      'libfake_affine.so: fake_model.cc\n\tg++ -std=c++17 -O1 -shared -fPIC -I. $< -o $@\n',
    );
    const session = await openSession('local', { agentBundlePath: await agentBundle(), remoteWorkDir: workDir });
    try {
      const summary = await session.sync(buildDir);
      const built = await session.build(buildDir, summary, () => undefined);
      assert.equal(built.result.ok, true, JSON.stringify(built.result.diagnostics));
      const bench = await session.bench(
        { buildName: summary.buildName, batchSizes: [1, 2], iterations: 4, warmupIterations: 1 },
        () => undefined,
      );
      assert.equal(bench.runner?.runner, 'native-binding', bench.runner?.note);
      assert.match(bench.runner?.note ?? '', new RegExp(`native/${nativeBindingFileName().replace(/\./g, '\\.')}`));
      const json = bench.results[0].json as {
        runner: string;
        timer: string;
        results: { batchSize: number; graph: boolean }[];
        profiles: { ops: { id: string }[] }[];
      };
      assert.equal(json.runner, 'native-binding');
      assert.equal(json.timer, 'host-clock');
      assert.deepEqual(
        json.results.map((r) => `${r.batchSize}/${r.graph}`),
        ['1/false', '1/true', '2/false', '2/true'],
      );
      assert.deepEqual(
        json.profiles.map((p) => p.ops.map((o) => o.id).join(',')),
        ['n0,n1', 'n0,n1'],
      );
    } finally {
      session.close();
    }
  });
});
