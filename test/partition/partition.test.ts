/**
 * ait compile --partition: the split (compiled / fallback / compiled around an op the target cannot run, no cycle
 * through another segment, independent branches sharing a segment), the fallback ONNX models (they run in
 * onnxruntime-node and match the interpreter), and the whole chain — compiled segments by the interpreter on their
 * optimized graphs, fallback segments by onnxruntime — against onnxruntime on the whole model.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { supportOf } from '../../compiler/backends/support';
import { compileModel, optimizeModel } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom, type TensorValue } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { ModelProtoType } from '../../compiler/onnx/schema';
import { inferShapes } from '../../compiler/passes/shape-inference';
import { partitionModel, type PartitionResult } from '../../compiler/partition/partition';
import { planSegments, type NodeClass } from '../../compiler/partition/plan';
import { runPartitionReference } from '../../compiler/partition/reference';
import type { OrtModule } from '../../compiler/verify/onnxruntime';
import { buildModel, inferModel, type ModelSpec, tensor } from '../helpers/onnx-builder';

const TARGET = 'cuda:sm90';

function randomValues(n: number, seed: number, scale = 0.2): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** conv → relu → Resize along the batch axis (no CUDA kernel takes it) → conv → add: an unsupported op in the middle of a compiled chain. */
function padModel(): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [1, 8, 16, 16] }],
    initializers: [
      { ...tensor('float32', [16, 8, 3, 3], randomValues(16 * 8 * 9, 1)), name: 'w1' },
      { ...tensor('float32', [16], randomValues(16, 2)), name: 'b1' },
      { ...tensor('float32', [8, 16, 3, 3], randomValues(8 * 16 * 9, 3)), name: 'w2' },
      { ...tensor('float32', [1, 8, 1, 1], randomValues(8, 4)), name: 'bias' },
      { ...tensor('float32', [4], [2, 1, 1, 1]), name: 'scales' },
    ],
    nodes: [
      { op: 'Conv', name: 'conv1', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: 'relu1', inputs: ['c1'], outputs: ['r1'] },
      { op: 'Resize', name: 'pad', inputs: ['r1', '', 'scales'], outputs: ['p'], attrs: { mode: 'nearest' } },
      { op: 'Conv', name: 'conv2', inputs: ['p', 'w2'], outputs: ['c2'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Add', name: 'add', inputs: ['c2', 'bias'], outputs: ['y'] },
    ],
    outputs: ['y'],
  };
}

function writeModel(dir: string, name: string, spec: ModelSpec): string {
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

function partitionFile(file: string): PartitionResult {
  const { graph } = optimizeModel(file);
  for (const n of graph.nodes) n.status = supportOf(graph, n, TARGET);
  return partitionModel(file, graph, 'm', TARGET, {});
}

function input(shape: number[], seed: number): TensorValue {
  return makeTensor(
    'float32',
    shape,
    randomValues(
      shape.reduce((a, b) => a * b, 1),
      seed,
      1,
    ),
  );
}

async function ortRun(bytes: Uint8Array, feeds: Record<string, TensorValue>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  const f: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', Float32Array.from(v.data as ArrayLike<number>), v.shape);
  return session.run(f);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('partition (ait compile --partition)', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-partition-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('splits conv → Resize → conv into compiled / fallback / compiled, tensors crossing by their ONNX names', () => {
    const result = partitionFile(writeModel(dir, 'pad', padModel()));
    const segs = result.partition.segments;
    assert.deepEqual(
      segs.map((s) => s.kind),
      ['compiled', 'fallback', 'compiled'],
    );
    assert.deepEqual(segs[1].nodes, ['pad']);
    assert.deepEqual(
      segs[1].inputs.map((t) => t.name),
      ['r1'],
    );
    assert.deepEqual(
      segs[1].outputs.map((t) => [t.name, t.shape]),
      [['p', [2, 16, 16, 16]]],
    );
    assert.deepEqual(segs[0].nodes, ['conv1', 'relu1']);
    assert.deepEqual(segs[2].nodes, ['conv2', 'add']);
    assert.deepEqual(
      segs[2].outputs.map((t) => t.name),
      ['y'],
    );
    assert.match(segs[1].reasons!.join(' '), /Resize/);
    // each compiled segment is an ordinary build of its own
    assert.ok(result.files.has('segments/0/src/model.cu') && result.files.has('segments/2/Makefile'));
    assert.ok(result.files.has('segments/2/ait_model.py') && result.files.has('fallback/1.onnx'));
    assert.match(String(result.files.get('segments/2/Makefile')), /libm_segment2\.so/);
  });

  it('never makes a segment depend on itself through another one (diamond around a fallback node)', () => {
    // a → b (fallback) → c and a → c: joining a and c (both compiled) would need b before and after them
    const m = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: [4] }],
      nodes: [
        { op: 'Relu', name: 'a', inputs: ['x'], outputs: ['ta'] },
        { op: 'Neg', name: 'b', inputs: ['ta'], outputs: ['tb'] },
        { op: 'Add', name: 'c', inputs: ['ta', 'tb'], outputs: ['tc'] },
        { op: 'Neg', name: 'd', inputs: ['x'], outputs: ['td'] }, // an independent fallback branch
        { op: 'Add', name: 'e', inputs: ['tc', 'td'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    const fallback = new Set(['b', 'd']);
    const segments = planSegments(m.graph, (n): NodeClass => (fallback.has(n.name) ? 'fallback' : 'compiled'));
    assert.deepEqual(
      segments.map((s) => [s.kind, s.owned.map((n) => n.name)]),
      [
        ['compiled', ['a']],
        ['fallback', ['b', 'd']], // the independent branch shares the fallback segment
        ['compiled', ['c', 'e']],
      ],
    );
    // every border tensor comes from an earlier segment
    const segOf = new Map<string, number>();
    for (const s of segments) for (const n of s.owned) for (const o of n.outputs) segOf.set(o, s.index);
    for (const s of segments) for (const t of s.inputs) assert.ok((segOf.get(t) ?? -1) < s.index, `${t} into segment ${s.index}`);
    assert.deepEqual(segments[0].outputs, ['ta']);
    assert.deepEqual(segments[1].inputs, ['x', 'ta']);
  });

  it('recomputes shape arithmetic where it is read instead of passing it across (a compiled Reshape sees its shape)', () => {
    const m = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 4, 2] }],
      initializers: [
        { ...tensor('int64', [1], [-1]), name: 'minus1' },
        { ...tensor('int64', [1], [0]), name: 'zero' },
      ],
      nodes: [
        { op: 'Shape', name: 'shape', inputs: ['x'], outputs: ['s'] },
        { op: 'Neg', name: 'neg', inputs: ['x'], outputs: ['n'] },
        { op: 'Gather', name: 'g', inputs: ['s', 'zero'], outputs: ['b'], attrs: { axis: 0 } },
        { op: 'Concat', name: 'cat', inputs: ['b', 'minus1'], outputs: ['target'], attrs: { axis: 0 } },
        { op: 'Reshape', name: 'reshape', inputs: ['n', 'target'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    const shapeOps = new Set(['shape', 'g', 'cat']);
    const segments = planSegments(m.graph, (n): NodeClass => (n.name === 'neg' ? 'fallback' : shapeOps.has(n.name) ? 'shape' : 'compiled'));
    assert.deepEqual(
      segments.map((s) => [s.kind, s.owned.map((n) => n.name), s.nodes.map((n) => n.name)]),
      [
        ['fallback', ['neg'], ['neg']],
        ['compiled', ['reshape'], ['shape', 'g', 'cat', 'reshape']],
      ],
    );
    assert.deepEqual(segments[1].inputs, ['x', 'n']);
    assert.deepEqual(segments[1].initializers, ['minus1', 'zero']);
    assert.deepEqual(segments[0].outputs, ['n']);
  });

  it('writes fallback models that onnxruntime runs, matching the interpreter on the same subgraph', async () => {
    const result = partitionFile(writeModel(dir, 'pad2', padModel()));
    const bytes = result.files.get('fallback/1.onnx') as Uint8Array;
    const r1 = input([1, 16, 16, 16], 7);
    const out = await ortRun(bytes, { r1 });
    const imported = importOnnxBytes(bytes);
    assert.equal(inferShapes(imported.graph).diagnostics.filter((d) => d.severity === 'error').length, 0);
    const [p] = runGraph(imported.graph, [r1]);
    assert.deepEqual(out.p.dims, [2, 16, 16, 16]);
    assert.ok(maxAbsDiff(out.p.data as Float32Array, p.data as Float32Array) < 1e-6);
  });

  it('runs compiled segments (interpreter) and fallback segments (onnxruntime) in order to the whole model’s result', async () => {
    const spec = padModel();
    const result = partitionFile(writeModel(dir, 'pad3', spec));
    const x = input([1, 8, 16, 16], 11);
    const { outputs, timings } = await runPartitionReference(result, new Map([['x', x]]), ort as unknown as OrtModule);
    const whole = await ortRun(buildModel(spec), { x });
    const y = outputs.get('y')!;
    assert.deepEqual(y.shape, [2, 8, 16, 16]);
    const diff = maxAbsDiff(y.data as Float32Array, whole.y.data as Float32Array);
    assert.ok(diff < 1e-4, `max |diff| ${diff}`);
    assert.deepEqual(
      timings.map((t) => t.kind),
      ['compiled', 'fallback', 'compiled'],
    );
  });

  it('compileModel --partition writes partition.json, segment builds, fallback models, the runner and node segments', () => {
    const file = writeModel(dir, 'pad4', padModel());
    const out = path.join(dir, 'build-pad4');
    const failed = compileModel(file, { out: path.join(dir, 'build-plain'), target: TARGET });
    assert.equal(failed.ok, false);
    assert.match(failed.diagnostics.find((d) => d.code === 'op.unsupported')!.message, /--partition/);

    const r = compileModel(file, { out, target: TARGET, partition: true });
    assert.equal(r.ok, true, r.diagnostics.map((d) => d.message).join('\n'));
    assert.ok(r.diagnostics.some((d) => d.code === 'op.fallback' && d.severity === 'warning'));
    const partition = JSON.parse(fs.readFileSync(path.join(out, 'partition.json'), 'utf8'));
    assert.equal(partition.format, 'ait-partition');
    assert.deepEqual(
      partition.segments.map((s: { kind: string }) => s.kind),
      ['compiled', 'fallback', 'compiled'],
    );
    for (const rel of [
      'segments/0/src/model.cu',
      'segments/0/graph.json',
      'segments/2/ait_model.py',
      'fallback/1.onnx',
      'ait_partitioned.py',
    ])
      assert.ok(fs.existsSync(path.join(out, rel)), rel);
    assert.ok(!fs.existsSync(path.join(out, 'src')), 'no whole-model build');
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
    const byOp = new Map<string, number>(graph.nodes.map((n: { op: string; segment: number }) => [n.op, n.segment]));
    assert.equal(byOp.get('Resize'), 1);
    assert.deepEqual(graph.partition.segments[1], { index: 1, kind: 'fallback' });
    assert.ok(graph.nodes.filter((n: { segment?: number }) => n.segment === 0).length > 0);
    assert.ok(graph.nodes.filter((n: { segment?: number }) => n.segment === 2).length > 0);
    // the fallback model on disk is the one onnxruntime runs
    const onnx = ModelProtoType.decode(fs.readFileSync(path.join(out, 'fallback/1.onnx'))) as unknown as { graph: { node: unknown[] } };
    assert.equal(onnx.graph.node.length, 1);
  });

  it('a model the target runs whole compiles as usual with --partition', () => {
    const spec = padModel();
    spec.nodes = spec.nodes.filter((n) => n.op !== 'Resize');
    spec.nodes[2].inputs[0] = 'r1';
    const file = writeModel(dir, 'nopad', spec);
    const out = path.join(dir, 'build-nopad');
    const r = compileModel(file, { out, target: TARGET, partition: true });
    assert.equal(r.ok, true);
    assert.ok(fs.existsSync(path.join(out, 'src/model.cu')) && !fs.existsSync(path.join(out, 'partition.json')));
  });

  it('the generated runner is valid Python', function () {
    if (spawnSync('python3', ['--version']).status !== 0) this.skip();
    const file = path.join(dir, 'ait_partitioned.py');
    const r = compileModel(writeModel(dir, 'pad5', padModel()), { out: path.join(dir, 'build-pad5'), target: TARGET, partition: true });
    fs.copyFileSync(path.join(r.outDir, 'ait_partitioned.py'), file);
    const c = spawnSync('python3', ['-m', 'py_compile', file], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
  });
});
