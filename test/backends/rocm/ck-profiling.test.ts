/**
 * Kernel profiling on ROCm (compiler/backends/rocm/ck/profiling.ts): `--profile-sources` writes profile/ with one
 * translation unit per CK candidate (the instance text of a model build), their weak declarations and the table of
 * every signature; measurements (in the profiler's output format, read as `--measurements` reads them) choose the
 * fastest candidate per batch range exactly as on CUDA, graph.json lists the candidates with their times; the
 * runner, the table and device_info compile and link with hipcc without CK (every candidate then reports
 * build-failed); opt-in (AIT_TEST_CK=1), the whole profiler of a small model builds with CK.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseProfilerOutput } from '../../../compiler/cli/profile-command';
import { memorySource } from '../../../compiler/backends/cuda/profiling/selection';
import { CK_ATTENTION_TILES, CK_ROW_TILES } from '../../../compiler/backends/rocm/ck/norm-instances';
import { CK_TILES } from '../../../compiler/backends/rocm/ck/instances';
import { CompileResult, compileModel } from '../../../compiler/compile';
import type { Measurement } from '../../../compiler/profiling/types';
import { hipEnv, requireHipcc } from '../../helpers/hipcc';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';
import { SMALL_HIP_MODEL } from './small-model';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ck-prof-'));
const values = (n: number) => Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);

/** x [B, 64] · w + b, ReLU (a CK GEMM); a 3×3 conv (a CK grouped conv); a layernorm; a packed attention. */
const PROFILE_MODEL: ModelSpec = {
  inputs: [
    { name: 'x', dtype: 'float32', dims: ['B', 64] },
    { name: 'img', dtype: 'float32', dims: ['B', 16, 8, 8] },
    { name: 'qkv', dtype: 'float32', dims: ['B', 16, 3 * 2 * 32] },
  ],
  initializers: [
    { ...tensor('float32', [64, 128], values(64 * 128)), name: 'w' },
    { ...tensor('float32', [128], values(128)), name: 'b' },
    { ...tensor('float32', [32, 16, 3, 3], values(32 * 16 * 9)), name: 'k' },
    { ...tensor('float32', [128], values(128)), name: 'gamma' },
    { name: 'split_shape', dtype: 'int64', dims: [5], values: [0, 16, 3, 2, 32] },
    { name: 'merge_shape', dtype: 'int64', dims: [3], values: [0, 16, 64] },
    { name: 'i0', dtype: 'int64', dims: [], values: [0] },
    { name: 'i1', dtype: 'int64', dims: [], values: [1] },
    { name: 'i2', dtype: 'int64', dims: [], values: [2] },
    { name: 'scale', dtype: 'float32', dims: [], values: [1 / Math.sqrt(32)] },
  ],
  nodes: [
    { op: 'MatMul', inputs: ['x', 'w'], outputs: ['m'] },
    { op: 'Add', inputs: ['m', 'b'], outputs: ['a'] },
    { op: 'Relu', inputs: ['a'], outputs: ['r'] },
    { op: 'LayerNormalization', inputs: ['r', 'gamma', 'b'], outputs: ['y'], attrs: { axis: -1 } },
    { op: 'Conv', inputs: ['img', 'k'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
    { op: 'Reshape', inputs: ['qkv', 'split_shape'], outputs: ['rs'] },
    { op: 'Transpose', inputs: ['rs'], outputs: ['p'], attrs: { perm: [2, 0, 3, 1, 4] } },
    { op: 'Gather', inputs: ['p', 'i0'], outputs: ['q'], attrs: { axis: 0 } },
    { op: 'Gather', inputs: ['p', 'i1'], outputs: ['kk'], attrs: { axis: 0 } },
    { op: 'Gather', inputs: ['p', 'i2'], outputs: ['v'], attrs: { axis: 0 } },
    { op: 'Transpose', inputs: ['kk'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
    { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['qk'] },
    { op: 'Mul', inputs: ['qk', 'scale'], outputs: ['scores'] },
    { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
    { op: 'MatMul', inputs: ['probs', 'v'], outputs: ['o'] },
    { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
    { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['att'] },
  ],
  outputs: [
    { name: 'y', dtype: 'float32', dims: ['B', 128] },
    { name: 'c', dtype: 'float32', dims: ['B', 32, 8, 8] },
    { name: 'att', dtype: 'float32', dims: ['B', 16, 64] },
  ],
};

function writeModel(spec: ModelSpec, dir: string, name: string): string {
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

function ok(result: CompileResult): CompileResult {
  assert.deepEqual(
    result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  assert.ok(result.ok);
  return result;
}

/** The table's signatures in order, each with its candidate names (as the profiler reports them). */
function tableOps(table: string): { signature: string; candidates: string[] }[] {
  return [...table.matchAll(/^ {2}\{"([^"]+)", kAitCk/gm)].map((m, i) => ({
    signature: m[1],
    candidates: [
      ...table
        .split(`candidates_${i}[] = {`)[1]
        .split('};')[0]
        .matchAll(/^ {2}\{"([^"]+)"/gm),
    ].map((c) => c[1]),
  }));
}

interface GraphJson {
  nodes: {
    op: string;
    kernel?: {
      library: string;
      name: string;
      reason: string;
      candidates?: { name: string; timeMs: number | null; chosen?: boolean; error?: string }[];
    };
  }[];
}

describe('rocm backend: kernel profiling of CK instances', function () {
  this.timeout(300_000);

  it('--profile-sources writes profile/: one TU per candidate (the instance text), weak declarations, every signature in the table', () => {
    const dir = tmp();
    const out = path.join(dir, 'out');
    const result = ok(
      compileModel(writeModel(PROFILE_MODEL, dir, 'prof'), { target: 'rocm:gfx90a', out, maxBatch: 8, profileSources: 'all' }),
    );
    const table = fs.readFileSync(path.join(out, 'profile/src/profile_table.cu'), 'utf8');
    const ops = tableOps(table);
    const kinds = ops.map((o) => o.signature.split(' ')[1]).sort();
    assert.deepEqual(kinds, ['attention', 'conv', 'gemm', 'layernorm']);
    assert.equal(result.profiling?.signatures, 4);
    assert.equal(result.profiling?.profiled, 4);
    assert.equal(
      result.profiling?.candidates,
      ops.reduce((n, o) => n + o.candidates.length, 0),
    );
    const byKind = Object.fromEntries(ops.map((o) => [o.signature.split(' ')[1], o]));
    assert.match(byKind.gemm.signature, /^ck gemm gfx90a m=1\*b n=128 k=64 b=row epilogue=ew::AddInput<1>\{\}\+ew::Relu\{\} d=vector$/);
    assert.match(
      byKind.conv.signature,
      /^ck conv gfx90a n=1\*b h=8 w=8 c=16 k=32 r=3 s=3 p=8 q=8 g=1 stride=1x1 dilation=1x1 pads=1,1,1,1 epilogue=none$/,
    );
    assert.match(byKind.layernorm.signature, /^ck layernorm gfx90a rows=1\*b n=128$/);
    assert.match(byKind.attention.signature, /^ck attention gfx90a b=1\*b s=16 h=2 d=32 packed scale=/);
    // every tile of the device operation is a candidate (distinct texts)
    assert.equal(byKind.conv.candidates.length, CK_TILES.length);
    assert.equal(byKind.layernorm.candidates.length, CK_ROW_TILES.length);
    assert.equal(byKind.attention.candidates.length, CK_ATTENTION_TILES.length);
    // one TU per distinct candidate, named after the hash of its text, declared weak; the model build's instance is one of them
    const header = fs.readFileSync(path.join(out, 'profile/src/ait_ck.h'), 'utf8');
    const units = fs.readdirSync(path.join(out, 'profile/src')).filter((f) => /^ck_\d+\.cu$/.test(f));
    const all = new Set(ops.flatMap((o) => o.candidates));
    assert.equal(units.length, all.size);
    for (const unit of units) {
      const text = fs.readFileSync(path.join(out, 'profile/src', unit), 'utf8');
      const symbol = /^const char\* (ait_ck_\w+)\(/m.exec(text)![1];
      assert.ok(all.has(symbol), symbol);
      assert.match(header, new RegExp(`^__attribute__\\(\\(weak\\)\\) const char\\* ${symbol}\\(`, 'm'));
    }
    for (const f of fs.readdirSync(path.join(out, 'src')).filter((f) => /^ck_\d+\.cu$/.test(f))) {
      const text = fs.readFileSync(path.join(out, 'src', f), 'utf8');
      assert.ok(
        units.some((u) => fs.readFileSync(path.join(out, 'profile/src', u), 'utf8') === text),
        `${f} is a profiled candidate`,
      );
    }
    // the reference applies the signature's epilogue with the instances' own functors
    assert.match(table, /struct Epilogue_\d+ \{\n[^}]*v = ew::AddInput<1>\{\}\(v, in\);\n\s+v = ew::Relu\{\}\(v, in\);/);
    // runner, device_info, Makefile targets
    for (const f of ['ait_ck_profiler.cu', 'ait_ck_profiler.h', 'device_info.cu'])
      assert.ok(fs.existsSync(path.join(out, 'profile/src', f)), f);
    const makefile = fs.readFileSync(path.join(out, 'Makefile'), 'utf8');
    assert.match(makefile, /^profiler:\n\t\$\(MAKE\) -C profile CK_DIR=\$\(CK_DIR\)/m);
    assert.match(makefile, /^device_info:\n\t\$\(MAKE\) -C profile device_info/m);
  });

  it('measurements choose the fastest candidate per batch range, as on CUDA; graph.json lists them; unmeasured signatures keep the heuristic', () => {
    const dir = tmp();
    const model = writeModel(PROFILE_MODEL, dir, 'prof');
    const first = ok(compileModel(model, { target: 'rocm:gfx90a', out: path.join(dir, 'first'), maxBatch: 8, profileSources: 'all' }));
    const ops = tableOps(fs.readFileSync(path.join(first.outDir, 'profile/src/profile_table.cu'), 'utf8'));
    // a fake profiler run: candidate 1 fastest at batches 1 and 2, candidate 2 from 4 on, candidate 0 failed; the
    // conv is not measured at all
    const measurements: Measurement[] = [];
    for (const op of ops.filter((o) => !o.signature.startsWith('ck conv')))
      op.candidates.forEach((candidate, i) => {
        for (const batch of [1, 2, 4, 8])
          measurements.push(
            i === 0
              ? {
                  signature: op.signature,
                  candidate,
                  batch,
                  status: 'launch-failed',
                  message: 'CK IsSupportedArgument refused the problem',
                }
              : {
                  signature: op.signature,
                  candidate,
                  batch,
                  status: 'ok',
                  medianUs: i === 1 ? 10 * batch : i === 2 ? 25 + batch : 1000,
                },
          );
      });
    const device = { gpu: 'AMD Instinct MI210', sms: 104, driver: '50422', cuda: '5.2', cutlass: 'ck b22ebd448' };
    const output = parseProfilerOutput(
      JSON.parse(JSON.stringify({ format: 'ait-profiler', version: 1, device, measurements })),
      'fake:profile/ait_profiler',
    );
    const source = memorySource('AMD Instinct MI210, 104 CUs', output.measurements);
    const out = path.join(dir, 'measured');
    const second = ok(compileModel(model, { target: 'rocm:gfx90a', out, maxBatch: 8, measurements: source, profileSources: 'missing' }));
    assert.equal(second.profiling?.signatures, 4);
    assert.equal(second.profiling?.measured, 3);
    // the profiler is written again for the one signature still to measure
    const left = tableOps(fs.readFileSync(path.join(out, 'profile/src/profile_table.cu'), 'utf8'));
    assert.deepEqual(
      left.map((o) => o.signature.split(' ')[1]),
      ['conv'],
    );
    const model_cu = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    const graph = JSON.parse(fs.readFileSync(second.graphJsonPath, 'utf8')) as GraphJson;
    for (const [op, call] of [
      ['gemm', 'gemm'],
      ['layernorm', 'row'],
      ['attention', 'attention'],
    ] as const) {
      const measured = ops.find((o) => o.signature.startsWith(`ck ${op} `))!;
      const [fast, large] = [measured.candidates[1], measured.candidates[2]];
      assert.match(
        model_cu,
        new RegExp(
          `if \\(batch <= 2\\) \\{\\s+AIT_RETURN_IF_FAILED\\(${fast}\\(${call}, c\\.stream\\)\\);\\s+\\} else \\{\\s+AIT_RETURN_IF_FAILED\\(${large}\\(${call}, c\\.stream\\)\\);\\s+\\}`,
        ),
        `${op}: batches 1..2 run ${fast}, 3..8 ${large}`,
      );
      const node = graph.nodes.find((n) => n.op === op || (op === 'gemm' && n.op === 'MatMul'))!;
      assert.equal(node.kernel?.library, 'ck');
      assert.match(
        node.kernel!.reason,
        /batch 1\.\.2: fastest of \d+ profiled candidates at batch 1 on AMD Instinct MI210, 104 CUs: 10\.0 µs/,
      );
      const reports = node.kernel!.candidates!;
      assert.deepEqual(
        reports.map((r) => r.name),
        measured.candidates,
      );
      assert.deepEqual(
        reports.filter((r) => r.chosen).map((r) => r.name),
        [fast, large],
      );
      assert.match(reports[0].error ?? '', /launch-failed: CK IsSupportedArgument refused the problem/);
    }
    // the conv had no measurement: the heuristic's instance, no candidate report
    const conv = graph.nodes.find((n) => n.op === 'conv2d')!;
    assert.equal(conv.kernel?.candidates, undefined);
    assert.doesNotMatch(conv.kernel!.reason, /profiled/);
  });
});

describe('rocm backend: the CK profiler runner compiles with hipcc', function () {
  before(function () {
    requireHipcc(this);
  });

  it('without CK: runner, table and device_info build and link (every candidate a weak null: build-failed)', function () {
    this.timeout(1_200_000);
    const dir = tmp();
    const out = path.join(dir, 'out');
    ok(compileModel(writeModel(PROFILE_MODEL, dir, 'prof'), { target: 'rocm:gfx90a', out, maxBatch: 4, profileSources: 'all' }));
    const make = spawnSync('make', ['-C', path.join(out, 'profile'), '-j2', 'ait_profiler', 'device_info', 'CK_DIR='], {
      encoding: 'utf8',
      env: hipEnv(),
    });
    assert.equal(
      make.status,
      0,
      `${make.stdout}\n${make.stderr}`
        .split('\n')
        .filter((l) => /error/i.test(l) && !/CK_DIR/.test(l))
        .slice(0, 20)
        .join('\n'),
    );
    assert.match(make.stdout, /CK_DIR= has no include\/ck\/ck\.hpp/);
    for (const f of ['ait_profiler', 'device_info']) assert.ok(fs.existsSync(path.join(out, 'profile', f)), f);
    assert.deepEqual(
      fs.readdirSync(path.join(out, 'profile/build')).filter((f) => f.startsWith('ck_')),
      [],
    );
  });
});

/** AIT_CK_DIR, else the repository's ignored .deps/composable_kernel (compiler/backends/rocm/README.md says which). */
const CK_DIR = process.env.AIT_CK_DIR ?? path.join(ROOT, '.deps', 'composable_kernel');

describe('rocm backend: the CK profiler builds with CK (opt-in: AIT_TEST_CK=1)', function () {
  before(function () {
    if (process.env.AIT_TEST_CK !== '1') this.skip();
    requireHipcc(this);
    assert.ok(fs.existsSync(path.join(CK_DIR, 'include', 'ck', 'ck.hpp')), `no CK headers under ${CK_DIR}`);
  });

  it("the small model's profiler (layernorm and softmax candidates) builds whole, every candidate linked", function () {
    this.timeout(3_600_000);
    const dir = tmp();
    const out = path.join(dir, 'out');
    ok(compileModel(writeModel(SMALL_HIP_MODEL, dir, 'small'), { target: 'rocm:gfx90a', out, maxBatch: 4, profileSources: 'all' }));
    const make = spawnSync('make', ['-C', out, 'profiler', `CK_DIR=${CK_DIR}`], { encoding: 'utf8', env: hipEnv() });
    assert.equal(
      make.status,
      0,
      `${make.stdout}\n${make.stderr}`
        .split('\n')
        .filter((l) => /error/i.test(l))
        .slice(0, 20)
        .join('\n'),
    );
    const units = fs.readdirSync(path.join(out, 'profile/src')).filter((f) => /^ck_\d+\.cu$/.test(f));
    const objects = fs.readdirSync(path.join(out, 'profile/build')).filter((f) => /^ck_\d+\.o$/.test(f));
    assert.equal(objects.length, units.length);
    const symbols = spawnSync('nm', [path.join(out, 'profile/ait_profiler')], { encoding: 'utf8' }).stdout;
    for (const unit of units) {
      const symbol = /^const char\* (ait_ck_\w+)\(/m.exec(fs.readFileSync(path.join(out, 'profile/src', unit), 'utf8'))![1];
      assert.match(symbols, new RegExp(`${symbol}`), symbol);
    }
  });
});
