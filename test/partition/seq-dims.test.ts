/**
 * ait compile --partition with an input dim besides the batch (a text model's seq): a compiled segment whose own
 * inputs carry seq as a dim of their own keeps the nodes over seq (its build sets seq from its inputs' shapes, as a
 * whole-model build does: codegen/context.ts inputDims), and the chain runs at any seq up to the bound, matching
 * onnxruntime on the whole model. A compiled segment whose inputs do not carry seq plainly sends those nodes to the
 * fallback, saying why. A module build (--module) over seq is an ordinary build with seq an input dim too.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { supportOf } from '../../compiler/backends/support';
import { compileModel, optimizeModel, type CompileOptions } from '../../compiler/compile';
import { makeTensor, seededRandom, type TensorValue } from '../../compiler/ir/tensor';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { compileModules, moduleOnnxBytes } from '../../compiler/partition/module';
import { partitionModel, type PartitionJson, type PartitionResult } from '../../compiler/partition/partition';
import { runPartitionReference } from '../../compiler/partition/reference';
import type { OrtModule } from '../../compiler/verify/onnxruntime';
import { buildModel, type ModelSpec, tensor } from '../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../helpers/nvcc';

const TARGET = 'cuda:sm90';
const H = 16;
const MAX_SEQ = 8;
const OPTIONS: CompileOptions = { dimBounds: { seq: [1, MAX_SEQ] } };

function randomValues(n: number, seed: number, scale = 0.3): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/**
 * x [batch, seq, 16] → MatMul → Trilu (no CUDA kernel: the fallback) → MatMul → Softmax over seq → Mul → Add.
 * `flatten`: a Flatten after the Trilu (a view: it joins the fallback), so the second compiled segment reads only
 * [batch, seq*16].
 */
function seqModel(flatten = false): ModelSpec {
  const tail = flatten
    ? [
        { op: 'Flatten', name: 'flatten', inputs: ['t'], outputs: ['f'], attrs: { axis: 1 } },
        { op: 'Softmax', name: 'softmax', inputs: ['f'], outputs: ['p'], attrs: { axis: 1 } },
        { op: 'Mul', name: 'mul', inputs: ['p', 'f'], outputs: ['y'] },
      ]
    : [
        { op: 'MatMul', name: 'mm2', inputs: ['t', 'w2'], outputs: ['q'] },
        { op: 'Softmax', name: 'softmax', inputs: ['q'], outputs: ['p'], attrs: { axis: 1 } }, // over seq
        { op: 'Mul', name: 'mul', inputs: ['p', 't'], outputs: ['c'] },
        { op: 'Add', name: 'add', inputs: ['c', 'bias'], outputs: ['y'] },
      ];
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 'seq', H] }],
    initializers: [
      { ...tensor('float32', [H, H], randomValues(H * H, 1)), name: 'w1' },
      ...(flatten
        ? []
        : [
            { ...tensor('float32', [H, H], randomValues(H * H, 2)), name: 'w2' },
            { ...tensor('float32', [H], randomValues(H, 3)), name: 'bias' },
          ]),
    ],
    nodes: [
      { op: 'MatMul', name: 'mm1', inputs: ['x', 'w1'], outputs: ['a'] },
      { op: 'Trilu', name: 'trilu', inputs: ['a'], outputs: ['t'], attrs: { upper: 1 } },
      ...tail,
    ],
    outputs: ['y'],
  };
}

function partitionFile(file: string): PartitionResult {
  const { graph } = optimizeModel(file, OPTIONS);
  for (const n of graph.nodes) n.status = supportOf(graph, n, TARGET);
  return partitionModel(file, graph, 'm', TARGET, OPTIONS);
}

async function ortWhole(spec: ModelSpec, feeds: Map<string, TensorValue>): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(buildModel(spec));
  const f: Record<string, ort.Tensor> = {};
  for (const [name, v] of feeds) f[name] = new ort.Tensor('float32', Float32Array.from(v.data as ArrayLike<number>), v.shape);
  return (await session.run(f)).y;
}

/**
 * The partition run (compiled segments by the interpreter, fallback by onnxruntime) at batch 2 and `seq` against
 * onnxruntime on the whole model; `kinds`: the segments that ran.
 */
async function checkRun(result: PartitionResult, spec: ModelSpec, seq: number, kinds: string[]): Promise<void> {
  const feeds = new Map<string, TensorValue>();
  for (const [k, input] of spec.inputs.entries()) {
    const shape = (input.dims ?? []).map((d) => (d === 'batch' ? 2 : d === 'seq' ? seq : (d as number)));
    feeds.set(
      input.name,
      makeTensor(
        'float32',
        shape,
        randomValues(
          shape.reduce((a, b) => a * b, 1),
          10 * k + seq,
          1,
        ),
      ),
    );
  }
  const { outputs, timings } = await runPartitionReference(result, feeds, ort as unknown as OrtModule);
  assert.deepEqual(
    timings.map((t) => t.kind),
    kinds,
  );
  const y = outputs.get('y')!;
  const whole = await ortWhole(spec, feeds);
  assert.deepEqual(y.shape, [...whole.dims], `seq ${seq}`);
  const expected = whole.data as Float32Array;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs((y.data as ArrayLike<number>)[i] - expected[i]));
  assert.ok(diff < 1e-4, `seq ${seq}: max |diff| ${diff}`);
}

describe('partition with an input dim besides the batch (seq)', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-partition-seq-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, spec: ModelSpec) => {
    const file = path.join(dir, `${name}.onnx`);
    fs.writeFileSync(file, buildModel(spec));
    return file;
  };

  it('compiled segments keep the nodes over seq; their builds declare seq an input dim', () => {
    const result = partitionFile(write('seq', seqModel()));
    const segs = result.partition.segments;
    assert.deepEqual(
      segs.map((s) => [s.kind, s.nodes]),
      [
        ['compiled', ['mm1']],
        ['fallback', ['trilu']],
        ['compiled', ['mm2', 'softmax', 'mul', 'add']],
      ],
    );
    assert.deepEqual(segs[1].reasons, ['Trilu: Trilu has no CUDA kernel yet']);
    for (const k of [0, 2]) {
      assert.deepEqual(segs[k].inputs[0].shape, ['batch', 'seq', H]);
      const model = String(result.files.get(`segments/${k}/src/model.cu`));
      assert.match(model, /const char\* const kDimNames\[\] = \{"seq"\};/, `segment ${k}`);
      assert.match(model, /const ait::InputDimDescription kInputDims\[\] = \{\n\s+\{0, 0, 1, 1, 8\}, {2}\/\/ seq\n\s+\};/, `segment ${k}`);
      assert.match(model, /c\.dims\[0\]/, `segment ${k}`);
    }
  });

  for (const seq of [3, 7, MAX_SEQ])
    it(`runs the segments at seq ${seq} to what onnxruntime computes on the whole model`, async () => {
      const spec = seqModel();
      await checkRun(partitionFile(write(`seq-run${seq}`, spec)), spec, seq, ['compiled', 'fallback', 'compiled']);
    });

  it('a compiled segment whose inputs carry seq only in an expression sends its nodes over seq to the fallback', async () => {
    const spec = seqModel(true);
    const result = partitionFile(write('flat', spec));
    const segs = result.partition.segments;
    assert.deepEqual(
      segs.map((s) => [s.kind, s.nodes]),
      [
        ['compiled', ['mm1']],
        ['fallback', ['trilu', 'flatten', 'softmax', 'mul']],
      ],
    );
    assert.deepEqual(segs[1].outputs[0].shape, ['batch', '16*seq']);
    const reasons = segs[1].reasons!.join('\n');
    assert.match(
      reasons,
      /Softmax: no input of its compiled segment \(f\) has the model's input dim 'seq' as a dim of its own, and the segment's build reads its input dims from its inputs' shapes/,
    );
    await checkRun(result, spec, 5, ['compiled', 'fallback']);
  });

  it("a compiled segment reading a [seq, 16] tensor before the hidden states takes the model's batch for its own", async () => {
    // pos [seq, 16] → Trilu → t, x → Trilu → h (both in the fallback); Add(t, h): t, made first, would be the segment's
    // first input, and its build would take seq for its batch
    const spec: ModelSpec = {
      inputs: [
        { name: 'x', dtype: 'float32', dims: ['batch', 'seq', H] },
        { name: 'pos', dtype: 'float32', dims: ['seq', H] },
      ],
      initializers: [{ ...tensor('float32', [H, H], randomValues(H * H, 1)), name: 'w1' }],
      nodes: [
        { op: 'Trilu', name: 'trilu_pos', inputs: ['pos'], outputs: ['t'] },
        { op: 'Trilu', name: 'trilu_x', inputs: ['x'], outputs: ['h'] },
        { op: 'Add', name: 'add', inputs: ['t', 'h'], outputs: ['s'] },
        { op: 'MatMul', name: 'mm', inputs: ['s', 'w1'], outputs: ['y'] },
      ],
      outputs: ['y'],
    };
    const result = partitionFile(write('pos', spec));
    const segs = result.partition.segments;
    assert.deepEqual(
      segs.map((s) => [s.kind, s.nodes, s.inputs.map((t) => t.name)]),
      [
        ['fallback', ['trilu_pos', 'trilu_x'], ['x', 'pos']],
        ['compiled', ['add', 'mm'], ['h', 't']],
      ],
    );
    const model = String(result.files.get('segments/1/src/model.cu'));
    assert.match(
      model,
      /const ait::InputDimDescription kInputDims\[\] = \{\n\s+\{0, 0, 1, 1, 8\}, {2}\/\/ seq\n\s+\{0, 1, 0, 1, 8\}, {2}\/\/ seq\n\s+\};/,
    );
    await checkRun(result, spec, 6, ['fallback', 'compiled']);
  });

  it('nodes over seq run in the fallback when no input of their compiled segment starts with the batch', () => {
    // x [batch, seq, 16] → ReduceMean over the batch → Trilu (fallback) → [seq, 16] → MatMul: seq would be its batch
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 'seq', H] }],
      initializers: [
        { ...tensor('float32', [H, H], randomValues(H * H, 1)), name: 'w1' },
        { ...tensor('int64', [1], [0]), name: 'axes' },
      ],
      nodes: [
        { op: 'ReduceMean', name: 'mean', inputs: ['x', 'axes'], outputs: ['m'], attrs: { keepdims: 0 } },
        { op: 'Trilu', name: 'trilu', inputs: ['m'], outputs: ['t'] },
        { op: 'MatMul', name: 'mm', inputs: ['t', 'w1'], outputs: ['y'] },
      ],
      outputs: ['y'],
      opset: 18,
    };
    const segs = partitionFile(write('nobatch', spec)).partition.segments;
    const fallback = segs.find((s) => s.kind === 'fallback')!;
    assert.ok(fallback.nodes.includes('mm'), JSON.stringify(segs));
    assert.match(
      fallback.reasons!.join('\n'),
      /MatMul: the model's input dim 'seq' would be the batch of its compiled segment \(the first symbolic dim of its input 't', no input of the segment starting with the model's batch 'batch'\)/,
    );
  });

  it('a module build over seq declares seq an input dim and computes what onnxruntime computes at a smaller seq', async () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 'seq', H] }],
      initializers: [{ ...tensor('float32', [H, H], randomValues(H * H, 1)), name: 'w1' }],
      nodes: [
        { op: 'Relu', name: '/pre/Relu', inputs: ['x'], outputs: ['a'] },
        { op: 'MatMul', name: '/enc/MatMul', inputs: ['a', 'w1'], outputs: ['q'] },
        { op: 'Softmax', name: '/enc/Softmax', inputs: ['q'], outputs: ['p'], attrs: { axis: 1 } },
        { op: 'Relu', name: '/post/Relu', inputs: ['p'], outputs: ['y'] },
      ],
      outputs: ['y'],
    };
    const [build] = compileModules(write('module', spec), 'm', TARGET, ['enc'], OPTIONS);
    assert.deepEqual(
      build.json.inputs.map((t) => [t.name, t.shape, t.dynamicAxes]),
      [['a', ['batch', 'seq', H], [0, 1]]],
    );
    assert.match(
      String(build.files.get('src/model.cu')),
      /const ait::InputDimDescription kInputDims\[\] = \{\n\s+\{0, 0, 1, 1, 8\}, {2}\/\/ seq\n/,
    );
    const a = makeTensor('float32', [2, 3, H], randomValues(2 * 3 * H, 4, 1));
    const [p] = runGraph(build.graph, [a]);
    const session = await ort.InferenceSession.create(moduleOnnxBytes(build));
    const expected = (await session.run({ a: new ort.Tensor('float32', Float32Array.from(a.data as ArrayLike<number>), a.shape) })).p;
    assert.deepEqual(p.shape, [2, 3, H]);
    for (let i = 0; i < expected.data.length; i++)
      assert.ok(Math.abs((p.data as ArrayLike<number>)[i] - (expected.data as Float32Array)[i]) < 1e-5);
  });

  it('compileModel --partition records the split (partition.json, graph.json segments); nvcc compiles a segment', () => {
    const out = path.join(dir, 'build-seq');
    const r = compileModel(write('seq-build', seqModel()), { ...OPTIONS, out, target: TARGET, partition: true });
    assert.equal(r.ok, true, r.diagnostics.map((d) => d.message).join('\n'));
    const partition = JSON.parse(fs.readFileSync(path.join(out, 'partition.json'), 'utf8')) as PartitionJson;
    assert.deepEqual(
      partition.segments.map((s) => s.kind),
      ['compiled', 'fallback', 'compiled'],
    );
    assert.deepEqual(partition.segments[2].nodes, ['mm2', 'softmax', 'mul', 'add']);
    assert.deepEqual(partition.segments[2].outputs[0].shape, ['batch', 'seq', H]);
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: { op: string; segment?: number }[] };
    const segmentsOf = (op: string) => [...new Set(graph.nodes.filter((n) => n.op === op).map((n) => n.segment))];
    assert.deepEqual(segmentsOf('Softmax'), [2]);
    assert.deepEqual(segmentsOf('Trilu'), [1]);
    const segGraph = JSON.parse(fs.readFileSync(path.join(out, 'segments/2/graph.json'), 'utf8')) as {
      nodes: { op: string; status?: { supported: boolean } }[];
    };
    assert.ok(segGraph.nodes.some((n) => n.op === 'Softmax'));
    assert.ok(segGraph.nodes.every((n) => n.status?.supported !== false));
    if (haveNvcc())
      nvccCompileGenerated(path.join(out, 'segments/2'), ['src/model.cu', 'src/runtime/ait_runtime.cu'], 'arch=compute_90a,code=sm_90a');
  });
});
