/**
 * Storage precision (passes/storage-precision.ts): box coordinates and what computes them are stored in fp32, the
 * rest in fp16. Checked on a small torchvision-style batched NMS (boxes offset by `class · (max + 1)`, ~30000): the
 * storage decision, the interpreter's fp16 emulation choosing other boxes without it and the reference's with it
 * (against onnxruntime), and the generated CUDA (fp32 NMS, kFloat32 in the model description, nvcc for sm90/sm80).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { main } from '../../compiler/cli/main';
import { compileModel, optimizeModel } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { Graph } from '../../compiler/ir/graph';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../compiler/ir/tensor';
import { assignStoragePrecision } from '../../compiler/passes/storage-precision';
import { GraphSpec, ModelSpec, buildModel, inferModel } from '../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated, GPU_TARGETS } from '../helpers/nvcc';

const N = 240;

/** torchvision's batched_nms: boxes + labels · (max(boxes) + 1), then one NMS over all classes. */
function batchedNmsModel(): ModelSpec {
  return {
    inputs: [
      { name: 'boxes', dtype: 'float32', dims: [N, 4] },
      { name: 'scores', dtype: 'float32', dims: [N] },
      { name: 'labels', dtype: 'int64', dims: [N] },
    ],
    initializers: [
      { name: 'one', dtype: 'float32', dims: [], values: [1] },
      { name: 'axis1', dtype: 'int64', dims: [1], values: [1] },
      { name: 'axis0', dtype: 'int64', dims: [1], values: [0] },
      { name: 'max_out', dtype: 'int64', dims: [1], values: [1000] },
      { name: 'iou', dtype: 'float32', dims: [1], values: [0.5] },
    ],
    nodes: [
      { op: 'ReduceMax', name: 'max_coordinate', inputs: ['boxes'], outputs: ['max'], attrs: { keepdims: 0 } },
      { op: 'Add', name: 'max_plus_one', inputs: ['max', 'one'], outputs: ['max1'] },
      { op: 'Cast', name: 'labels_float', inputs: ['labels'], outputs: ['flabels'], attrs: { to: 1 } },
      { op: 'Mul', name: 'offsets', inputs: ['flabels', 'max1'], outputs: ['offsets'] },
      { op: 'Unsqueeze', name: 'offsets_column', inputs: ['offsets', 'axis1'], outputs: ['offsets1'] },
      { op: 'Add', name: 'boxes_for_nms', inputs: ['boxes', 'offsets1'], outputs: ['shifted'] },
      { op: 'Unsqueeze', name: 'boxes_batch', inputs: ['shifted', 'axis0'], outputs: ['b3'] },
      { op: 'Unsqueeze', name: 'scores_class', inputs: ['scores', 'axis0'], outputs: ['s2'] },
      { op: 'Unsqueeze', name: 'scores_batch', inputs: ['s2', 'axis0'], outputs: ['s3'] },
      { op: 'NonMaxSuppression', name: 'nms', inputs: ['b3', 's3', 'max_out', 'iou'], outputs: ['selected'] },
    ],
    outputs: [{ name: 'selected', dtype: 'int64', dims: [null, 3] }],
    opset: 13,
  };
}

/** Clustered boxes of 10 classes (20..29) (heavy overlaps within a class) and one box reaching x = 1000. */
function inputs(): TensorValue[] {
  const random = seededRandom(16);
  const boxes: number[] = [];
  for (let i = 0; i < N; i++) {
    const x = random() * 60;
    const y = random() * 60;
    const w = 20 + random() * 40;
    const h = 20 + random() * 40;
    boxes.push(x, y, x + w, y + h);
  }
  boxes.splice(0, 4, 900, 900, 1000, 1000);
  // distinct scores fp16 holds exactly (k/1024): the score order is the same in either storage
  const scores = Array.from({ length: N }, (_, i) => i)
    .sort(() => random() - 0.5)
    .map((k) => (k + 100) / 1024);
  const labels = Array.from({ length: N }, (_, i) => 20 + (i % 10));
  return [makeTensor('float32', [N, 4], boxes), makeTensor('float32', [N], scores), makeTensor('int64', [N], labels)];
}

function writeModel(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-storage-'));
  const file = path.join(dir, 'batched_nms.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

const selectedRows = (v: TensorValue) => {
  const d = Array.from(numeric(v));
  return Array.from({ length: d.length / 3 }, (_, i) => d.slice(3 * i, 3 * i + 3).join(','));
};

/** A copy of the optimized graph's storage marks, cleared: every float tensor fp16, as before the pass existed. */
function withoutStorage(graph: Graph): () => void {
  const marked = [...graph.tensors.values()].filter((t) => t.storage);
  for (const t of marked) delete t.storage;
  return () => marked.forEach((t) => (t.storage = 'float32'));
}

describe('storage precision: fp32 for coordinates', () => {
  const spec = batchedNmsModel();

  it('marks the NMS boxes, the class offsets and the boxes input fp32; scores get a conversion', () => {
    const { graph } = optimizeModel(writeModel(spec));
    const storage = (t: string) => graph.tensor(t).storage ?? 'float16';
    const nms = graph.nodes.find((n) => n.op === 'NonMaxSuppression')!;
    assert.equal(storage(nms.inputs[0]), 'float32');
    for (const t of ['boxes', 'max', 'offsets', 'shifted']) assert.equal(storage(t), 'float32', t);
    // scores are not coordinates: fp16, converted to the NMS kernel's type right before it
    assert.equal(storage('scores'), 'float16');
    const conversion = graph.nodes.find((n) => n.outputs.includes(nms.inputs[1]))!;
    assert.equal(conversion.op, 'Cast');
    assert.equal(storage(nms.inputs[1]), 'float32');
    assert.deepEqual(
      conversion.inputs.map((t) => storage(t)),
      ['float16'],
    );
  });

  it('the interpreter with fp16 storage keeps the reference boxes only with the fp32 decision (onnxruntime agrees)', async () => {
    const x = inputs();
    const { graph: original } = inferModel(spec);
    const [reference] = runGraph(original, x);
    const session = await ort.InferenceSession.create(buildModel(spec));
    const result = await session.run({
      boxes: new ort.Tensor('float32', Float32Array.from(numeric(x[0])), [N, 4]),
      scores: new ort.Tensor('float32', Float32Array.from(numeric(x[1])), [N]),
      labels: new ort.Tensor('int64', BigInt64Array.from(Array.from(numeric(x[2]), BigInt)), [N]),
    });
    const ortRows = selectedRows(makeTensor('int64', [...result.selected.dims], Array.from(result.selected.data as BigInt64Array, Number)));
    assert.deepEqual(selectedRows(reference), ortRows);

    const { graph } = optimizeModel(writeModel(spec));
    const [withFp32] = runGraph(graph, x, { storage: 'float16' });
    assert.deepEqual(selectedRows(withFp32), ortRows, 'fp32 boxes: the reference selection');
    const restore = withoutStorage(graph);
    const [allHalf] = runGraph(graph, x, { storage: 'float16' });
    restore();
    assert.notDeepEqual(selectedRows(allHalf), ortRows, 'fp16 boxes at offsets near 30000 select other boxes');
  });

  it('compile option fp32 (--fp32 NAME,…): the named scores are stored fp32 too, so no conversion is needed', () => {
    const { graph, context } = optimizeModel(writeModel(spec), { fp32: ['scores', 'no_such_tensor'] });
    const nms = graph.nodes.find((n) => n.op === 'NonMaxSuppression')!;
    assert.equal(graph.tensor('scores').storage, 'float32');
    assert.ok(!graph.nodes.some((n) => n.op === 'Cast' && n.outputs.includes(nms.inputs[1])));
    assert.deepEqual(
      context.diagnostics.filter((d) => d.code === 'storage.unknown-name').map((d) => d.message),
      ['--fp32 no_such_tensor: no tensor or node of the optimized graph has this name'],
    );
  });

  it('a branch value converted for an if_select runs under its branch guard (the if_select itself runs always)', () => {
    const branch = (name: string, op: string): GraphSpec => ({
      name,
      inputs: [],
      nodes: [{ op, name: `${name}_op`, inputs: ['x'], outputs: [`${name}_y`], attrs: op === 'Softmax' ? { axis: -1 } : {} }],
      outputs: [`${name}_y`],
    });
    const file = writeModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: [2, 8] }],
      initializers: [{ name: 'zero', dtype: 'float32', dims: [], values: [0] }],
      nodes: [
        { op: 'ReduceSum', name: 'total', inputs: ['x'], outputs: ['sum'], attrs: { keepdims: 0 } },
        { op: 'Greater', name: 'positive', inputs: ['sum', 'zero'], outputs: ['c'] },
        {
          op: 'If',
          name: 'choose',
          inputs: ['c'],
          outputs: ['y'],
          attrs: { then_branch: branch('then', 'Softmax'), else_branch: branch('else', 'Neg') },
        },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: [2, 8] }],
      opset: 13,
    });
    const { graph } = optimizeModel(file, { fp32: ['y'] });
    const select = graph.nodes.find((n) => n.op === 'if_select')!;
    assert.equal(select.guard, undefined);
    assert.equal(graph.tensor('y').storage, 'float32');
    // else: Neg of x, computed in fp32 (x is taken in fp32); then: Softmax (fp16) converted, only when taken
    const conversion = graph.nodes.find((n) => n.op === 'Cast' && select.inputs.includes(n.outputs[0]))!;
    assert.equal(graph.tensor(conversion.inputs[0]).storage, undefined);
    assert.deepEqual(conversion.guard, { condition: select.inputs[0], taken: true });
    const x = makeTensor(
      'float32',
      [2, 8],
      Array.from({ length: 16 }, (_, i) => (i % 5) - 1.5),
    );
    const { graph: original } = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: [2, 8] }],
      initializers: [{ name: 'zero', dtype: 'float32', dims: [], values: [0] }],
      nodes: [
        { op: 'ReduceSum', name: 'total', inputs: ['x'], outputs: ['sum'], attrs: { keepdims: 0 } },
        { op: 'Greater', name: 'positive', inputs: ['sum', 'zero'], outputs: ['c'] },
        {
          op: 'If',
          name: 'choose',
          inputs: ['c'],
          outputs: ['y'],
          attrs: { then_branch: branch('then', 'Softmax'), else_branch: branch('else', 'Neg') },
        },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: [2, 8] }],
      opset: 13,
    });
    for (const input of [
      x,
      makeTensor(
        'float32',
        [2, 8],
        Array.from(numeric(x), (v) => -v),
      ),
    ]) {
      const [expected] = runGraph(original, [input]);
      const [actual] = runGraph(graph, [input]);
      assert.deepEqual(Array.from(numeric(actual)), Array.from(numeric(expected)));
    }
  });

  it('a Cast of shape arithmetic to float (the batch as a float) is fp32, written as float for the kernel that reads it', function () {
    this.timeout(120000);
    const castSpec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 4] }],
      initializers: [{ name: 'zero', dtype: 'int64', dims: [], values: [0] }],
      nodes: [
        { op: 'Shape', name: 'shape', inputs: ['x'], outputs: ['s'] },
        { op: 'Gather', name: 'batch', inputs: ['s', 'zero'], outputs: ['b'], attrs: { axis: 0 } },
        { op: 'Cast', name: 'batch_float', inputs: ['b'], outputs: ['bf'], attrs: { to: 1 } },
        { op: 'Mul', name: 'scale', inputs: ['x', 'bf'], outputs: ['y'] },
      ],
      outputs: ['y'],
      opset: 13,
    };
    const file = writeModel(castSpec);
    const { graph } = optimizeModel(file);
    assert.equal(graph.tensor('bf').storage, 'float32');
    assert.equal(graph.nodes.find((n) => n.outputs.includes('bf'))?.op, 'Cast', 'a Cast of a symbolic value (not itself one)');
    assert.equal(graph.tensor('y').storage, undefined, 'x · batch: an fp16 activation');
    const x = makeTensor(
      'float32',
      [3, 4],
      Array.from({ length: 12 }, (_, i) => i / 4),
    );
    assert.deepEqual(Array.from(numeric(runGraph(graph, [x])[0])), Array.from(numeric(runGraph(inferModel(castSpec).graph, [x])[0])));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-storage-cast-'));
    const result = compileModel(file, { out: path.join(out, 'b'), target: 'cuda:sm90' });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const model = fs.readFileSync(path.join(out, 'b', 'src', 'model.cu'), 'utf8');
    assert.ok(model.includes('ait::kernels::SmallValues<float> values{{static_cast<float>(batch)}, 1};'));
    assert.match(model, /launch_mixed_elementwise<float, __half, float>/);
    if (haveNvcc()) nvccCompileGenerated(path.join(out, 'b'), ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
  });

  it('a ReduceMax of an fp16 activation stays fp16 (it selects a value fp16 holds): no conversion of its input', () => {
    const { graph } = inferModel({
      inputs: [
        { name: 'x', dtype: 'float32', dims: [64, 64] },
        { name: 'labels', dtype: 'int64', dims: [64] },
      ],
      initializers: [{ name: 'w', dtype: 'float32', dims: [64, 4], values: Array.from({ length: 256 }, (_, i) => i / 256) }],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['boxes'] },
        { op: 'ReduceMax', inputs: ['boxes'], outputs: ['max'], attrs: { keepdims: 0 } },
        { op: 'Cast', inputs: ['labels'], outputs: ['fl'], attrs: { to: 1 } },
        { op: 'Mul', inputs: ['fl', 'max'], outputs: ['offsets'] },
      ],
      outputs: ['offsets'],
    });
    const result = assignStoragePrecision(graph, { fp32: ['offsets'] });
    assert.deepEqual(result.fp32, ['fl', 'offsets']);
    assert.deepEqual(result.conversions, []);
  });

  it('`ait compile --fp32 a,b --fp32 c`: the names reach the pass (graph.json storage, a warning for an unknown one)', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ait-storage-cli-')), 'b');
    const lines: string[] = [];
    const previous = process.exitCode;
    await main(['node', 'ait', 'compile', writeModel(spec), '--out', out, '--fp32', 'scores,nope', '--fp32', 'labels'], (s) =>
      lines.push(s),
    );
    process.exitCode = previous;
    const graphJson = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
      tensors: Record<string, { storage?: string }>;
    };
    assert.equal(graphJson.tensors.scores.storage, 'float32');
    assert.ok(
      lines.some((l) => l.includes('--fp32 nope: no tensor or node')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.includes('--fp32 labels: no tensor or node')) === false,
      'labels is a tensor (int64: nothing to store in fp32)',
    );
  });

  it('a graph without coordinates keeps every tensor fp16 and gets no conversion', () => {
    const { graph } = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: [2, 8] }],
      nodes: [
        { op: 'Relu', inputs: ['x'], outputs: ['r'] },
        { op: 'ReduceMax', inputs: ['r'], outputs: ['y'], attrs: { keepdims: 1 } },
      ],
      outputs: ['y'],
    });
    const result = assignStoragePrecision(graph);
    assert.deepEqual(result.fp32, []);
    assert.deepEqual(result.conversions, []);
  });

  it('--fp32 NAME: a named tensor (and what it is computed from, back to fp16 producers) is stored fp32', () => {
    const { graph } = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: [2, 8] }],
      initializers: [{ name: 'w', dtype: 'float32', dims: [8, 4], values: Array.from({ length: 32 }, (_, i) => i / 32) }],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['m'] },
        { op: 'Exp', inputs: ['m'], outputs: ['e'] },
        { op: 'Softmax', inputs: ['e'], outputs: ['y'], attrs: { axis: -1 } },
      ],
      outputs: ['y'],
    });
    const result = assignStoragePrecision(graph, { fp32: ['e', 'nope'] });
    assert.deepEqual(result.fp32, ['e']);
    assert.deepEqual(result.unknown, ['nope']);
    // the MatMul's output stays fp16 (Exp reads it converting); Softmax reads fp16 (a Cast is inserted)
    assert.equal(graph.tensor('m').storage, undefined);
    assert.deepEqual(
      result.conversions.map((n) => [
        n.op,
        graph.tensor(n.inputs[0]).storage ?? 'float16',
        graph.tensor(n.outputs[0]).storage ?? 'float16',
      ]),
      [['Cast', 'float32', 'float16']],
    );
    assert.equal(graph.nodes.find((n) => n.op === 'Softmax')!.inputs[0], result.conversions[0].outputs[0]);
  });

  for (const [target, gencode] of GPU_TARGETS)
    it(`${target}: fp32 NMS, the boxes input described as kFloat32; nvcc compiles model.cu`, function () {
      this.timeout(240000);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-storage-build-'));
      const result = compileModel(writeModel(spec), { out: path.join(out, 'b'), target });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const model = fs.readFileSync(path.join(out, 'b', 'src', 'model.cu'), 'utf8');
      assert.match(model, /ait::kernels::NmsArgs<float> args\{\w+_cast<const float\*>/, 'NMS on fp32 boxes');
      assert.match(model, /\{"boxes", ait::DType::kFloat32, 2, \{240, 4\}/);
      assert.match(model, /\{"scores", ait::DType::kFloat16, 1, \{240\}/);
      const graphJson = JSON.parse(fs.readFileSync(path.join(out, 'b', 'graph.json'), 'utf8')) as {
        tensors: Record<string, { storage?: string }>;
      };
      assert.equal(graphJson.tensors.shifted.storage, 'float32');
      assert.equal(graphJson.tensors.scores.storage, undefined);
      if (haveNvcc()) nvccCompileGenerated(path.join(out, 'b'), ['src/model.cu'], gencode);
    });
});
