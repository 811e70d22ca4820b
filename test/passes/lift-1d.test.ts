/**
 * 1-D Conv / ConvTranspose / MaxPool / AveragePool run as the 2-D op with H = 1 (passes/lift-1d.ts): the reference
 * matches onnxruntime on the original 1-D ops, the optimized graph (lifted, NHWC) computes what the original does,
 * a stack of 1-D convs keeps its activations NHWC from end to end, and the models compile for sm90 / sm80 with no
 * unsupported node (nvcc compiles model.cu where it is installed).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { inferShapes } from '../../compiler/passes/shape-inference';
import { GraphJson } from '../../compiler/ir/serialize';
import { makeTensor, numeric, seededRandom } from '../../compiler/ir/tensor';
import { AttrSpec, ModelSpec, buildModel, input, nodeModel, tensor } from '../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated, gencodeOf } from '../helpers/nvcc';

const rand = seededRandom(5);
const values = (shape: number[]) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1);
const w = (dims: number[]) => tensor('float32', dims, values(dims));

interface Case {
  name: string;
  /** The model for a given input shape (concrete for the numeric checks, with a symbolic batch for compiling). */
  model: (x: (number | string)[]) => ModelSpec;
  x: number[];
}

const one = (op: string, weights: ReturnType<typeof w>[], attrs: Record<string, AttrSpec>) => (x: (number | string)[]) =>
  nodeModel(op, [input('float32', x), ...weights], { attrs });

/** Conv1d → Gelu, three times (Whisper's / wav2vec2's conv stacks): activations should stay NHWC in between. */
function convStack(x: (number | string)[]): ModelSpec {
  return {
    opset: 20,
    inputs: [{ name: 'x', dtype: 'float32', dims: x }],
    initializers: [
      { ...w([16, 8, 3]), name: 'w0' },
      { ...w([16]), name: 'b0' },
      { ...w([16, 16, 3]), name: 'w1' },
      { ...w([16]), name: 'b1' },
      { ...w([16, 4, 5]), name: 'w2' },
      { ...w([16]), name: 'b2' },
    ],
    nodes: [
      { op: 'Conv', name: 'c0', inputs: ['x', 'w0', 'b0'], outputs: ['y0'], attrs: { kernel_shape: [3], pads: [1, 1] } },
      { op: 'Gelu', name: 'g0', inputs: ['y0'], outputs: ['a0'] },
      { op: 'Conv', name: 'c1', inputs: ['a0', 'w1', 'b1'], outputs: ['y1'], attrs: { kernel_shape: [3], strides: [2], pads: [1, 1] } },
      { op: 'Gelu', name: 'g1', inputs: ['y1'], outputs: ['a1'] },
      { op: 'Conv', name: 'c2', inputs: ['a1', 'w2', 'b2'], outputs: ['y2'], attrs: { kernel_shape: [5], pads: [2, 2], group: 4 } },
      { op: 'Gelu', name: 'g2', inputs: ['y2'], outputs: ['out0'] },
    ],
    outputs: ['out0'],
  };
}

/**
 * wav2vec2's feature extractor with layer norm: Conv1d(1→C, k=10, s=5) → Transpose → LayerNorm over channels →
 * Transpose → GELU → Conv1d(k=3, s=2) → Transpose to [B, T, C]. Lifted and NHWC, every transpose cancels or is a view.
 */
function wav2vecLayerNormStack(x: (number | string)[]): ModelSpec {
  return {
    opset: 20,
    inputs: [{ name: 'x', dtype: 'float32', dims: x }],
    initializers: [
      { ...w([16, 1, 10]), name: 'w0' },
      { ...w([16]), name: 'g' },
      { ...w([16]), name: 'b' },
      { ...w([16, 16, 3]), name: 'w1' },
    ],
    nodes: [
      { op: 'Conv', name: 'c0', inputs: ['x', 'w0'], outputs: ['y0'], attrs: { kernel_shape: [10], strides: [5] } },
      { op: 'Transpose', name: 't0', inputs: ['y0'], outputs: ['t0'], attrs: { perm: [0, 2, 1] } },
      { op: 'LayerNormalization', name: 'ln', inputs: ['t0', 'g', 'b'], outputs: ['n0'], attrs: { axis: -1 } },
      { op: 'Transpose', name: 't1', inputs: ['n0'], outputs: ['t1'], attrs: { perm: [0, 2, 1] } },
      { op: 'Gelu', name: 'g0', inputs: ['t1'], outputs: ['a0'] },
      { op: 'Conv', name: 'c1', inputs: ['a0', 'w1'], outputs: ['y1'], attrs: { kernel_shape: [3], strides: [2] } },
      { op: 'Transpose', name: 't2', inputs: ['y1'], outputs: ['out0'], attrs: { perm: [0, 2, 1] } },
    ],
    outputs: ['out0'],
  };
}

const cases: Case[] = [
  {
    name: 'Conv1d k=3 pads 1, bias (Whisper)',
    x: [2, 8, 20],
    model: one('Conv', [w([16, 8, 3]), w([16])], { kernel_shape: [3], pads: [1, 1] }),
  },
  { name: 'Conv1d 1→8, k=10, stride 5 (wav2vec2 feature extractor)', x: [2, 1, 64], model: one('Conv', [w([8, 1, 10])], { strides: [5] }) },
  {
    name: 'Conv1d grouped, k=16, pads 8, groups 4 (wav2vec2 positional conv)',
    x: [1, 16, 30],
    model: one('Conv', [w([16, 4, 16]), w([16])], { kernel_shape: [16], pads: [8, 8], group: 4 }),
  },
  {
    name: 'Conv1d depthwise, dilation 2, asymmetric pads',
    x: [2, 8, 17],
    model: one('Conv', [w([8, 1, 3])], { dilations: [2], pads: [3, 1], group: 8 }),
  },
  {
    name: 'Conv1d auto_pad SAME_UPPER, stride 2',
    x: [1, 4, 11],
    model: one('Conv', [w([8, 4, 4])], { strides: [2], auto_pad: 'SAME_UPPER' }),
  },
  {
    name: 'ConvTranspose1d stride 2, pads, output_padding, bias',
    x: [2, 8, 10],
    model: one('ConvTranspose', [w([8, 4, 4]), w([4])], { strides: [2], pads: [1, 1], output_padding: [1] }),
  },
  { name: 'ConvTranspose1d output_shape', x: [1, 4, 6], model: one('ConvTranspose', [w([4, 6, 3])], { strides: [2], output_shape: [12] }) },
  { name: 'MaxPool1d k=3 s=2', x: [2, 8, 20], model: one('MaxPool', [], { kernel_shape: [3], strides: [2] }) },
  {
    name: 'MaxPool1d ceil_mode, pads',
    x: [1, 4, 10],
    model: one('MaxPool', [], { kernel_shape: [3], strides: [2], pads: [1, 1], ceil_mode: 1 }),
  },
  { name: 'AveragePool1d k=3 s=2', x: [2, 8, 20], model: one('AveragePool', [], { kernel_shape: [3], strides: [2] }) },
  {
    name: 'AveragePool1d pads, count_include_pad 0',
    x: [1, 4, 9],
    model: one('AveragePool', [], { kernel_shape: [4], strides: [1], pads: [2, 1], count_include_pad: 0 }),
  },
  {
    name: 'MaxPool1d auto_pad SAME_UPPER',
    x: [1, 4, 10],
    model: one('MaxPool', [], { kernel_shape: [4], strides: [3], auto_pad: 'SAME_UPPER' }),
  },
  {
    name: 'Conv 2-D auto_pad SAME_LOWER (explicit pads)',
    x: [1, 3, 7, 6],
    model: one('Conv', [w([4, 3, 2, 3])], { strides: [2, 2], auto_pad: 'SAME_LOWER' }),
  },
  {
    name: 'Conv1d at opset 11 (Unsqueeze/Squeeze axes as attributes)',
    x: [2, 4, 12],
    model: (x) => nodeModel('Conv', [input('float32', x), w([6, 4, 3])], { attrs: { strides: [2] }, opset: 11 }),
  },
  { name: 'Conv1d+Gelu ×3 stack', x: [2, 8, 24], model: convStack },
  { name: 'wav2vec2 feature extractor (layer norm form)', x: [2, 1, 160], model: wav2vecLayerNormStack },
];

function writeModel(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-lift-1d-'));
  const file = path.join(dir, 'm.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * (1 + Math.abs(b[i])), `${what}: element ${i}: ${a[i]} vs ${b[i]}`);
};

describe('1-D windows run as 2-D (lift-1d)', () => {
  for (const c of cases) {
    it(`${c.name}: reference == onnxruntime; optimized graph lifted to 2-D == original`, async () => {
      const spec = c.model(c.x);
      const file = writeModel(spec);
      const original = importOnnxBytes(fs.readFileSync(file));
      inferShapes(original.graph);
      const xData = Float32Array.from(values(c.x));
      const x = makeTensor('float32', c.x, xData);
      const [expected] = runGraph(original.graph, [x]);
      const session = await ort.InferenceSession.create(file);
      const inputName = spec.inputs[0].name;
      const ref = (await session.run({ [inputName]: new ort.Tensor('float32', xData, c.x) }))[spec.outputs[0] as string];
      assert.deepEqual(expected.shape, [...ref.dims], 'reference shape vs onnxruntime');
      close(numeric(expected), ref.data as Float32Array, 'reference vs onnxruntime');

      const { graph } = optimizeModel(file, {});
      const windows = graph.nodes.filter((n) => /conv|pool/i.test(n.op));
      assert.ok(windows.length > 0, 'the window ops are still there');
      for (const n of windows)
        assert.notEqual(graph.lookupTensor(n.inputs[0])?.shape?.length, 3, `${n.op} '${n.name}' still reads a 1-D tensor`);
      const [actual] = runGraph(graph, [x]);
      assert.deepEqual(actual.shape, expected.shape);
      close(numeric(actual), numeric(expected), 'optimized vs original');
    });
  }

  it('a Conv1d+Gelu stack keeps its activations NHWC: transposes only at the two ends', () => {
    const { graph } = optimizeModel(writeModel(convStack([2, 8, 24])), {});
    const transposes = graph.nodes.filter((n) => n.op === 'Transpose');
    assert.equal(transposes.length, 2, graph.nodes.map((n) => n.op).join(' '));
    assert.equal(graph.nodes.filter((n) => /conv/i.test(n.op)).length, 3);
  });

  it('the wav2vec2 layer-norm feature extractor moves no data between layouts (no Transpose left)', () => {
    const { graph } = optimizeModel(writeModel(wav2vecLayerNormStack([2, 1, 160])), {});
    assert.deepEqual(
      graph.nodes.filter((n) => n.op === 'Transpose').map((n) => n.name),
      [],
    );
    assert.ok(graph.nodes.some((n) => n.op === 'layernorm'));
  });

  it('weights absent at compile time: the weights get their H axis as weight preparation at bind time', function () {
    this.timeout(120000);
    const absent = (name: string, dims: number[]) => ({ name, dtype: 'float32' as const, dims, external: 'm.onnx.data' });
    const spec: ModelSpec = {
      opset: 20,
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 8, 24] }],
      initializers: [absent('w0', [16, 8, 3]), absent('b0', [16]), absent('w1', [16, 4, 5]), absent('wt', [16, 8, 4])],
      nodes: [
        { op: 'Conv', name: 'c0', inputs: ['x', 'w0', 'b0'], outputs: ['y0'], attrs: { kernel_shape: [3], pads: [1, 1] } },
        { op: 'Gelu', name: 'g0', inputs: ['y0'], outputs: ['a0'] },
        { op: 'Conv', name: 'c1', inputs: ['a0', 'w1'], outputs: ['y1'], attrs: { kernel_shape: [5], pads: [2, 2], group: 4 } },
        { op: 'ConvTranspose', name: 'up', inputs: ['y1', 'wt'], outputs: ['out0'], attrs: { strides: [2] } },
      ],
      outputs: ['out0'],
    };
    const file = writeModel(spec);
    const out = path.join(path.dirname(file), 'out');
    const result = compileModel(file, { out, target: 'cuda:sm90', maxBatch: 4 });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const nodes = (JSON.parse(fs.readFileSync(result.graphJsonPath, 'utf8')) as GraphJson).nodes;
    const prep = nodes.filter((n) => n.role === 'weight-preparation' && n.op === 'Unsqueeze');
    assert.equal(prep.length, 3, 'one Unsqueeze per conv weight, run at bind time');
    assert.deepEqual(
      nodes.filter((n) => n.role === 'kernel').map((n) => n.op),
      ['Transpose', 'conv2d', 'conv2d', 'conv_transpose2d', 'Transpose'],
    );
    if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    for (const c of cases)
      it(`${target}: ${c.name} compiles with no unsupported node`, function () {
        this.timeout(120000);
        const file = writeModel(c.model(['B', ...c.x.slice(1)]));
        const out = path.join(path.dirname(file), 'out');
        const result = compileModel(file, { out, target, maxBatch: 4 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencodeOf(target));
      });
});
