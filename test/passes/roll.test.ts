/**
 * torch.roll as exported (per axis, a Concat of Slices of one tensor along that axis) becomes one ait.Roll
 * (passes/roll.ts), and Slices of the whole tensor are removed (canonicalize.ts). Models are built here: rolls over one
 * and two axes with a symbolic batch (the optimized graph has one Roll and no Slice or Concat; the interpreter on it
 * matches onnxruntime-node on the original model), three pieces in cyclic order, a roll between NCHW convolutions
 * (the layout pass moves it to NHWC axes), the near-misses that must stay Slices and Concats (a gap, an overlap,
 * step 2, two tensors, a Slice with another reader, pieces out of order, a partial other axis), identity Slices
 * removed and a cropping Slice kept; nvcc compiles the generated model.cu (skipped without nvcc).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeImported } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { Graph, attrInts } from '../../compiler/ir/graph';
import { makeTensor, seededRandom } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { ModelSpec, NodeSpec, TensorSpec, buildModel, tensor } from '../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../helpers/nvcc';

/** "To the end" as exporters write it (clamped to the axis). */
const END = 2 ** 62;

interface Piece {
  start: number;
  end: number;
  axis: number;
  step?: number;
  /** the tensor sliced (default: the roll's input) */
  of?: string;
  /** a second sliced axis: [start, end, axis] */
  crop?: [number, number, number];
}

/** Builds Slice nodes (with their constant initializers) and a Concat of them along `axis`. */
class Builder {
  nodes: NodeSpec[] = [];
  initializers: (TensorSpec & { name: string })[] = [];
  private n = 0;

  private ints(values: number[]): string {
    const name = `c${this.n++}`;
    this.initializers.push({ ...tensor('int64', [values.length], values), name });
    return name;
  }

  slice(x: string, p: Piece, out = `s${this.n++}`): string {
    const more = p.crop ? [p.crop] : [];
    const inputs = [
      x,
      this.ints([p.start, ...more.map((c) => c[0])]),
      this.ints([p.end, ...more.map((c) => c[1])]),
      this.ints([p.axis, ...more.map((c) => c[2])]),
    ];
    if (p.step !== undefined) inputs.push(this.ints([p.step, ...more.map(() => 1)]));
    this.nodes.push({ op: 'Slice', inputs, outputs: [out] });
    return out;
  }

  /** cat(x[pieces...], axis): a roll when the pieces cover the axis cyclically. */
  concatOfSlices(x: string, pieces: Piece[], axis: number, out = `r${this.n++}`): string {
    const parts = pieces.map((p) => this.slice(p.of ?? x, p));
    this.nodes.push({ op: 'Concat', inputs: parts, outputs: [out], attrs: { axis } });
    return out;
  }

  model(inputs: { name: string; dims: (number | string)[] }[], outputs: string[], extra: Partial<ModelSpec> = {}): ModelSpec {
    return {
      inputs: inputs.map((i) => ({ name: i.name, dtype: 'float32', dims: i.dims })),
      outputs,
      nodes: this.nodes,
      initializers: [...this.initializers, ...(extra.initializers ?? [])],
    };
  }
}

/** cat(x[:, s:], x[:, :s]) along `axis`: torch.roll(x, -s, axis). */
const rollPieces = (s: number, axis: number): Piece[] => [
  { start: s, end: END, axis },
  { start: 0, end: s, axis },
];

function optimized(spec: ModelSpec): Graph {
  const result = optimizeImported(importOnnxBytes(buildModel(spec)), 'roll.onnx', { validate: true });
  assert.deepEqual(
    result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  return result.graph;
}

const count = (graph: Graph, op: string) => graph.nodes.filter((n) => n.op === op).length;
/** Concatenations computed: Concat nodes, and Concats an elementwise group reads in pieces (its `concat` slots). */
const concatenations = (graph: Graph) =>
  count(graph, 'Concat') + graph.nodes.filter((n) => n.op === 'elementwise' && n.attrs.concat !== undefined).length;

/** The optimized graph run by the interpreter equals onnxruntime on the original model (exact: data moves only). */
async function matchesOnnxruntime(spec: ModelSpec, graph: Graph, shapes: number[][]): Promise<void> {
  const random = seededRandom(11);
  const inputs = shapes.map((s) =>
    makeTensor(
      'float32',
      s,
      Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1),
    ),
  );
  const ours = runGraph(graph, inputs);
  const session = await ort.InferenceSession.create(buildModel(spec), { logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = {};
  spec.inputs.forEach((i, k) => (feeds[i.name] = new ort.Tensor('float32', Float32Array.from(inputs[k].data as Float32Array), shapes[k])));
  const theirs = await session.run(feeds);
  spec.outputs.forEach((o, k) => {
    const name = typeof o === 'string' ? o : o.name;
    assert.deepEqual(ours[k].shape, [...theirs[name].dims], `${name}: shape`);
    assert.deepEqual(Array.from(ours[k].data as Float32Array), Array.from(theirs[name].data as Float32Array), `${name}: values`);
  });
}

/** The Roll nodes' (axes, shifts). */
const rolls = (graph: Graph) =>
  graph.nodes.filter((n) => n.op === 'Roll').map((n) => ({ axes: attrInts(n, 'axes'), shifts: attrInts(n, 'shifts') }));

describe('passes: torch.roll (Concat of Slices) → Roll; identity Slices removed', function () {
  this.timeout(300_000);

  it('a roll along one axis, symbolic batch: one Roll, no Slice or Concat, equal to onnxruntime', async () => {
    const b = new Builder();
    const r = b.concatOfSlices('x', rollPieces(2, 1), 1);
    b.nodes.push({ op: 'Relu', inputs: [r], outputs: ['y'] });
    const spec = b.model([{ name: 'x', dims: ['B', 6, 5, 8] }], ['y']);
    const graph = optimized(spec);
    assert.deepEqual(rolls(graph), [{ axes: [1], shifts: [4] }]);
    assert.equal(count(graph, 'Slice') + count(graph, 'Concat'), 0);
    for (const batch of [1, 3]) await matchesOnnxruntime(spec, graph, [[batch, 6, 5, 8]]);
  });

  it("Swin's 2-D roll (two rolls, negative starts, both directions) merges into one Roll over H and W", async () => {
    const b = new Builder();
    // torch.roll(x, (-3, -3), (1, 2)), then torch.roll(·, (3, 3), (1, 2)) written as x[:, -3:] | x[:, :-3]
    const h = b.concatOfSlices('x', rollPieces(3, 1), 1);
    const hw = b.concatOfSlices(h, rollPieces(3, 2), 2);
    b.nodes.push({ op: 'Neg', inputs: [hw], outputs: ['mid'] });
    const back = [1, 2].reduce(
      (t, axis) =>
        b.concatOfSlices(
          t,
          [
            { start: -3, end: END, axis },
            { start: 0, end: -3, axis },
          ],
          axis,
        ),
      'mid',
    );
    b.nodes.push({ op: 'Relu', inputs: [back], outputs: ['y'] });
    const spec = b.model([{ name: 'x', dims: ['batch', 7, 7, 16] }], ['y']);
    const graph = optimized(spec);
    assert.deepEqual(rolls(graph), [
      { axes: [1, 2], shifts: [4, 4] },
      { axes: [1, 2], shifts: [3, 3] },
    ]);
    assert.equal(count(graph, 'Slice') + count(graph, 'Concat'), 0);
    for (const batch of [1, 2]) await matchesOnnxruntime(spec, graph, [[batch, 7, 7, 16]]);
  });

  it('three pieces in cyclic order, writing a graph output: one Roll; pieces from 0 in order: no Roll at all', async () => {
    const b = new Builder();
    b.concatOfSlices(
      'x',
      [
        { start: 2, end: 4, axis: 2 },
        { start: 4, end: 6, axis: 2 },
        { start: 0, end: 2, axis: 2 },
      ],
      2,
      'y',
    );
    const inOrder = b.concatOfSlices(
      'x',
      [
        { start: 0, end: 3, axis: 2 },
        { start: 3, end: END, axis: 2 },
      ],
      2,
    );
    b.nodes.push({ op: 'Relu', inputs: [inOrder], outputs: ['z'] });
    const spec = b.model([{ name: 'x', dims: ['B', 3, 6] }], ['y', 'z']);
    const graph = optimized(spec);
    assert.deepEqual(rolls(graph), [{ axes: [2], shifts: [4] }]);
    assert.equal(count(graph, 'Slice') + count(graph, 'Concat'), 0);
    await matchesOnnxruntime(spec, graph, [[2, 3, 6]]);
  });

  it('opset 9 (Slice bounds as attributes): one Roll, equal to onnxruntime', async () => {
    const spec: ModelSpec = {
      opset: 9,
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 5, 6] }],
      nodes: [
        { op: 'Slice', inputs: ['x'], outputs: ['tail'], attrs: { starts: [-2], ends: [END], axes: [2] } },
        { op: 'Slice', inputs: ['x'], outputs: ['head'], attrs: { starts: [0], ends: [-2], axes: [2] } },
        { op: 'Concat', inputs: ['tail', 'head'], outputs: ['r'], attrs: { axis: 2 } },
        { op: 'Relu', inputs: ['r'], outputs: ['y'] },
      ],
      outputs: ['y'],
    };
    const graph = optimized(spec);
    assert.deepEqual(rolls(graph), [{ axes: [2], shifts: [2] }]);
    assert.equal(count(graph, 'Slice') + count(graph, 'Concat'), 0);
    await matchesOnnxruntime(spec, graph, [[2, 5, 6]]);
  });

  it('between NCHW convolutions the layout pass moves the Roll to NHWC axes (no transpose around it)', async () => {
    const b = new Builder();
    const random = seededRandom(3);
    const w = (name: string) => ({
      ...tensor(
        'float32',
        [8, 8, 3, 3],
        Array.from({ length: 576 }, () => random() - 0.5),
      ),
      name,
    });
    b.nodes.push({ op: 'Conv', inputs: ['x', 'w1'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } });
    const r = [2, 3].reduce((t, axis) => b.concatOfSlices(t, rollPieces(1, axis), axis), 'c1');
    b.nodes.push({ op: 'Conv', inputs: [r, 'w2'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1] } });
    const spec = b.model([{ name: 'x', dims: ['B', 8, 6, 5] }], ['y'], { initializers: [w('w1'), w('w2')] });
    const graph = optimized(spec);
    assert.deepEqual(rolls(graph), [{ axes: [1, 2], shifts: [5, 4] }]);
    const roll = graph.nodes.find((n) => n.op === 'Roll')!;
    const producer = graph.producers().get(roll.inputs[0]);
    assert.equal(producer?.op, 'conv2d');
    // the model input's and output's layout transposes only: none around the Roll
    assert.deepEqual(
      graph.nodes.filter((n) => n.op === 'Transpose').map((n) => [n.inputs[0], n.outputs[0]]),
      [
        ['x', graph.nodes.find((n) => n.op === 'conv2d')!.inputs[0]],
        [graph.nodes.filter((n) => n.op === 'conv2d')[1].outputs[0], 'y'],
      ],
    );
    const random2 = seededRandom(5);
    const x = makeTensor(
      'float32',
      [2, 8, 6, 5],
      Array.from({ length: 480 }, () => random2() - 0.5),
    );
    const session = await ort.InferenceSession.create(buildModel(spec), { logSeverityLevel: 3 });
    const theirs = (await session.run({ x: new ort.Tensor('float32', Float32Array.from(x.data as Float32Array), x.shape) })).y;
    const [ours] = runGraph(graph, [x]);
    const expected = theirs.data as Float32Array;
    (ours.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= 1e-4, `element ${i}: ${v} vs ${expected[i]}`));
  });

  describe('near-misses stay Slices and a Concat', () => {
    const cases: { name: string; pieces: Piece[] }[] = [
      {
        name: 'a gap (3:6 then 0:2)',
        pieces: [
          { start: 3, end: END, axis: 1 },
          { start: 0, end: 2, axis: 1 },
        ],
      },
      {
        name: 'an overlap (2:6 then 0:3)',
        pieces: [
          { start: 2, end: END, axis: 1 },
          { start: 0, end: 3, axis: 1 },
        ],
      },
      {
        name: 'step 2 pieces',
        pieces: [
          { start: 0, end: END, axis: 1, step: 2 },
          { start: 1, end: END, axis: 1, step: 2 },
        ],
      },
      {
        name: 'slices of two tensors',
        pieces: [
          { start: 2, end: END, axis: 1 },
          { start: 0, end: 2, axis: 1, of: 'x2' },
        ],
      },
      {
        name: 'pieces out of cyclic order (2:4, 0:2, 4:6)',
        pieces: [
          { start: 2, end: 4, axis: 1 },
          { start: 0, end: 2, axis: 1 },
          { start: 4, end: END, axis: 1 },
        ],
      },
      {
        name: 'pieces also cut on another axis (x[:, 2:, 1:] | x[:, :2, 1:])',
        pieces: [
          { start: 2, end: END, axis: 1, crop: [1, END, 2] },
          { start: 0, end: 2, axis: 1, crop: [1, END, 2] },
        ],
      },
    ];
    for (const c of cases)
      it(c.name, async () => {
        const b = new Builder();
        const r = b.concatOfSlices('x', c.pieces, 1);
        b.nodes.push({ op: 'Add', inputs: [r, r], outputs: ['y'] });
        const spec = b.model(
          [
            { name: 'x', dims: ['B', 6, 5, 4] },
            { name: 'x2', dims: ['B', 6, 5, 4] },
          ],
          ['y'],
        );
        const graph = optimized(spec);
        assert.equal(count(graph, 'Roll'), 0);
        assert.equal(concatenations(graph), 1);
        assert.equal(count(graph, 'Slice'), c.pieces.length);
        await matchesOnnxruntime(spec, graph, [
          [2, 6, 5, 4],
          [2, 6, 5, 4],
        ]);
      });

    it('a slice with another reader', async () => {
      const b = new Builder();
      const first = b.slice('x', { start: 2, end: END, axis: 1 });
      const second = b.slice('x', { start: 0, end: 2, axis: 1 });
      b.nodes.push({ op: 'Concat', inputs: [first, second], outputs: ['y'], attrs: { axis: 1 } });
      b.nodes.push({ op: 'Relu', inputs: [second], outputs: ['z'] });
      const spec = b.model([{ name: 'x', dims: ['B', 6, 4] }], ['y', 'z']);
      const graph = optimized(spec);
      assert.equal(count(graph, 'Roll'), 0);
      assert.equal(count(graph, 'Concat'), 1);
      assert.equal(count(graph, 'Slice'), 2);
      await matchesOnnxruntime(spec, graph, [[3, 6, 4]]);
    });
  });

  it('identity Slices (timm x[:, :H, :W, :], end past the size, start -n) are removed; a cropping Slice stays', async () => {
    const b = new Builder();
    const a = b.slice('x', { start: 0, end: 6, axis: 1 });
    const c = b.slice(a, { start: 0, end: END, axis: 2 });
    const d = b.slice(c, { start: -4, end: 100, axis: 3 });
    b.nodes.push({ op: 'Relu', inputs: [d], outputs: ['y'] });
    const crop = b.slice('x', { start: 0, end: 5, axis: 2 });
    b.nodes.push({ op: 'Relu', inputs: [crop], outputs: ['z'] });
    const spec = b.model([{ name: 'x', dims: ['B', 6, 6, 4] }], ['y', 'z']);
    const graph = optimized(spec);
    const slices = graph.nodes.filter((n) => n.op === 'Slice');
    assert.equal(slices.length, 1, 'only the crop is left');
    assert.deepEqual(graph.lookupTensor(slices[0].outputs[0])?.shape?.slice(1), [6, 5, 4]);
    const relu = graph.nodes.find((n) => n.outputs.includes('y'));
    assert.ok(relu && relu.inputs[0] === 'x', `y's Relu reads x itself, not a copy: ${relu?.inputs}`);
    await matchesOnnxruntime(spec, graph, [[2, 6, 6, 4]]);
  });

  it('the CUDA backend lowers the Roll to one launch of launch_roll, and nvcc compiles model.cu (sm90)', function () {
    const b = new Builder();
    const h = b.concatOfSlices('x', rollPieces(3, 1), 1);
    const hw = b.concatOfSlices(h, rollPieces(3, 2), 2);
    b.nodes.push({ op: 'Relu', inputs: [hw], outputs: ['y'] });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-roll-'));
    const file = path.join(dir, 'roll.onnx');
    fs.writeFileSync(file, buildModel(b.model([{ name: 'x', dims: ['B', 14, 14, 32] }], ['y'])));
    const out = path.join(dir, 'out');
    const result = compileModel(file, { out, target: 'cuda:sm90', maxBatch: 8 });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const modelCu = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
    assert.equal(modelCu.match(/ait::kernels::launch_roll\(/g)?.length, 1, modelCu);
    assert.match(modelCu, /RollArgs<__half> args\{[^;]*4,\s*\{batch, 14, 14, 32\}, \{0, 11, 11, 0\}\};/);
    assert.doesNotMatch(modelCu, /launch_concat|launch_strided_copy/);
    if (!haveNvcc()) this.skip();
    nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_90,code=sm_90');
  });
});
