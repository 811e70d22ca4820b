// The generated ait_bench (compiler/backends/cuda/codegen/templates/ait_bench.cu) run here without a GPU: compiled
// with g++ against a host stand-in for cuda_runtime.h (fixtures/fake_cuda) and linked with the fake model library
// (fixtures/fake_model.cc: runs compute on the CPU and sleep 0.2 ms per batch item, so they take time on the host
// thread that enqueues them). Checks the throughput mode's JSON and that its threads really drive instances at once.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
const RUNTIME_INCLUDE = path.join(REPO, 'compiler', 'backends', 'cuda', 'runtime');
const BENCH_SOURCE = path.join(REPO, 'compiler', 'backends', 'cuda', 'codegen', 'templates', 'ait_bench.cu');

interface ThroughputEntry {
  mode: string;
  batchSize: number;
  graphMode: boolean;
  instances: number;
  threads: number;
  durationS: number;
  runs: number;
  itemsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

describe('ait_bench on the CPU (fake CUDA runtime, fake model library)', function () {
  this.timeout(120_000);
  let exe: string;

  before(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-bench-cpu-'));
    const source = path.join(dir, 'ait_bench.cc');
    fs.copyFileSync(BENCH_SOURCE, source);
    const fakeCuda = path.join(__dirname, 'fixtures', 'fake_cuda');
    execFileSync('g++', [
      '-std=c++17',
      '-O1',
      '-shared',
      '-fPIC',
      `-I${RUNTIME_INCLUDE}`,
      path.join(__dirname, 'fixtures', 'fake_model.cc'),
      '-o',
      path.join(dir, 'libfake.so'),
    ]);
    exe = path.join(dir, 'ait_bench');
    execFileSync('g++', [
      '-std=c++17',
      '-O1',
      `-I${fakeCuda}`,
      `-I${RUNTIME_INCLUDE}`,
      source,
      `-L${dir}`,
      '-lfake',
      '-lpthread',
      `-Wl,-rpath,${dir}`,
      '-o',
      exe,
    ]);
  });

  const bench = (args: string[], program = exe) => {
    const r = spawnSync(program, args, { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr, json: r.status === 0 ? JSON.parse(r.stdout.trim()) : undefined };
  };

  it('--dim NAME=V runs an input dim (seq) at that value; an unknown name or a value past its bounds is an error', () => {
    // the fake with an input dim: the same bench source linked against it
    const dir = path.dirname(exe);
    const seqDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-bench-cpu-seq-'));
    execFileSync('g++', [
      '-std=c++17',
      '-O1',
      '-shared',
      '-fPIC',
      '-DAIT_FAKE_INPUT_DIM',
      `-I${RUNTIME_INCLUDE}`,
      path.join(__dirname, 'fixtures', 'fake_model.cc'),
      '-o',
      path.join(seqDir, 'libfake.so'),
    ]);
    const seqExe = path.join(seqDir, 'ait_bench');
    execFileSync('g++', [
      '-std=c++17',
      '-O1',
      `-I${path.join(__dirname, 'fixtures', 'fake_cuda')}`,
      `-I${RUNTIME_INCLUDE}`,
      path.join(dir, 'ait_bench.cc'),
      `-L${seqDir}`,
      '-lfake',
      '-lpthread',
      `-Wl,-rpath,${seqDir}`,
      '-o',
      seqExe,
    ]);
    const ok = bench(['--batch-sizes', '2', '--iterations', '3', '--warmup', '1', '--graph', 'off', '--dim', 'seq=2'], seqExe);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /input 0 at the given --dim values/);
    assert.equal(ok.json.results.length, 1);
    const unknown = bench(['--dim', 'nope=2'], seqExe);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /--dim nope: the model has no input dim of that name/);
    const past = bench(['--dim', 'seq=9'], seqExe);
    assert.equal(past.status, 1);
    assert.match(past.stderr, /axis 1 \(is 'seq'\) must be in 1\.\.3, got 9/);
    const malformed = bench(['--dim', 'seq'], seqExe);
    assert.equal(malformed.status, 1);
    assert.match(malformed.stderr, /--dim: takes NAME=V/);
  });

  it('latency mode prints its JSON as before (one entry per batch size and graph mode)', () => {
    const r = bench(['--batch-sizes', '1,2', '--iterations', '5', '--warmup', '1']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.model, 'fake_affine');
    assert.equal(r.json.mode, undefined);
    assert.deepEqual(
      r.json.results.map((e: Record<string, unknown>) => Object.keys(e)),
      Array(4).fill(['batchSize', 'graphMode', 'p50Ms', 'meanMs', 'minMs', 'p90Ms', 'itemsPerSecond']),
    );
  });

  it('throughput mode: N instances × M threads for the duration, images/s from the runs, ordered percentiles', () => {
    const r = bench(['--instances', '4', '--threads', '2', '--duration', '0.4', '--batch-sizes', '1,4', '--warmup', '2']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.mode, 'throughput');
    const entries = r.json.results as ThroughputEntry[];
    assert.deepEqual(
      entries.map((e) => [e.mode, e.batchSize, e.instances, e.threads, e.graphMode]),
      [
        ['throughput', 1, 4, 2, true],
        ['throughput', 4, 4, 2, true],
      ],
    );
    for (const e of entries) {
      assert.ok(e.durationS >= 0.4 && e.durationS < 2, `durationS ${e.durationS}`);
      assert.ok(e.runs > 10, `runs ${e.runs}`);
      // images/s is batch × completed runs over the measured duration
      const expected = (e.batchSize * e.runs) / e.durationS;
      assert.ok(Math.abs(e.itemsPerSecond - expected) / expected < 0.01, `${e.itemsPerSecond} vs ${expected}`);
      // each run sleeps 0.2 ms per item in the fake
      assert.ok(e.p50Ms >= 0.2 * e.batchSize, `p50 ${e.p50Ms}`);
      assert.ok(e.p50Ms <= e.p95Ms && e.p95Ms <= e.p99Ms && e.p99Ms <= e.maxMs, JSON.stringify(e));
    }
  });

  it('throughput mode: two threads complete about twice the runs of one (the fake runs block their thread)', () => {
    const run = (threads: number) => {
      const r = bench(['--instances', '2', '--threads', `${threads}`, '--duration', '0.4', '--batch-sizes', '2', '--graph', 'off']);
      assert.equal(r.status, 0, r.stderr);
      const e = r.json.results[0] as ThroughputEntry;
      assert.equal(e.graphMode, false);
      return e.itemsPerSecond;
    };
    const one = run(1);
    const two = run(2);
    assert.ok(two > 1.5 * one, `1 thread ${one}/s, 2 threads ${two}/s`);
  });

  it('throughput mode refuses more threads than instances, saying what it needs', () => {
    const r = bench(['--instances', '2', '--threads', '3']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /ait_bench: throughput mode: needs --instances N >= 1, --threads M in 1..N and --duration > 0/);
  });
});
