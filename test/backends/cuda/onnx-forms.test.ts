/**
 * ONNX forms that the ONNX backend test models (pytorch-converted, pytorch-operator, the "light" model zoo) use and
 * that stopped or went wrong before: Split on the GPU (GLU, chunk), Sum/Mean/Max/Min of several inputs, MaxPool with
 * dilations kept through the NHWC rewrite, the opset < 10 Slice with attribute bounds, and an inference Dropout whose
 * mask output is named but read by nobody, and LRN (the 2012-era zoo). Each model: the original graph against onnxruntime-node, the optimized
 * graph against the original (interpreter), no unsupported node on the CUDA targets, and nvcc compiles model.cu.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom, type TensorValue } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { buildModel, type ModelSpec } from '../../helpers/onnx-builder';
import { nvccCompileGenerated, requireNvcc, GPU_TARGETS } from '../../helpers/nvcc';

/** opset 13: Split by a sizes input, variadic Sum/Mean/Max/Min with broadcasting, dilated MaxPool, Dropout + unread mask. */
function modernSpec(): ModelSpec {
  return {
    opset: 13,
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', 6, 9, 9] },
      { name: 'row', dtype: 'float32', dims: [1, 9] },
    ],
    initializers: [{ name: 'sizes', dtype: 'int64', dims: [3], values: [1, 2, 3] }],
    nodes: [
      { op: 'Split', inputs: ['x', 'sizes'], outputs: ['s0', 's1', 's2'], attrs: { axis: 1 } },
      { op: 'Sum', inputs: ['s0', 's1', 'row'], outputs: ['sum3'] },
      { op: 'Mean', inputs: ['s1', 's0', 's1'], outputs: ['mean3'] },
      { op: 'Max', inputs: ['s2', 's0', 'row'], outputs: ['max3'] },
      { op: 'Min', inputs: ['s2'], outputs: ['min1'] },
      { op: 'Sum', inputs: ['s0', 's2'], outputs: ['sum2'] },
      {
        op: 'MaxPool',
        inputs: ['x'],
        outputs: ['pool'],
        attrs: { kernel_shape: [3, 2], strides: [2, 1], pads: [1, 0, 1, 1], dilations: [2, 3] },
      },
      { op: 'Dropout', inputs: ['pool'], outputs: ['dropped', 'mask'] },
      { op: 'Relu', inputs: ['dropped'], outputs: ['y'] },
    ],
    outputs: ['sum3', 'mean3', 'max3', 'min1', 'sum2', 'y'],
  };
}

/** opset 9: Slice with attribute bounds, Split with a `split` attribute, Dropout with a named, unread mask. */
function opset9Spec(): ModelSpec {
  return {
    opset: 9,
    inputs: [{ name: 'x', dtype: 'float32', dims: [2, 10, 6] }],
    nodes: [
      { op: 'Slice', inputs: ['x'], outputs: ['sl'], attrs: { starts: [1, -4], ends: [9, 100], axes: [1, 2] } },
      { op: 'Split', inputs: ['sl'], outputs: ['a', 'b'], attrs: { axis: 1, split: [3, 5] } },
      { op: 'Dropout', inputs: ['b'], outputs: ['bd', 'bmask'], attrs: { ratio: 0.3 } },
      { op: 'Sigmoid', inputs: ['bd'], outputs: ['y'] },
      { op: 'Tanh', inputs: ['a'], outputs: ['z'] },
    ],
    outputs: ['y', 'z'],
  };
}

/** The 2012-era zoo's stem (AlexNet, GoogLeNet, ZFNet): conv, ReLU, LRN, max pool, and a second LRN. */
function lrnSpec(): ModelSpec {
  const random = seededRandom(3);
  return {
    opset: 13,
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 8, 6, 6] }],
    initializers: [{ name: 'w', dtype: 'float32', dims: [16, 8, 3, 3], values: Array.from({ length: 16 * 8 * 9 }, () => random() - 0.5) }],
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: 'Relu', inputs: ['c'], outputs: ['r'] },
      { op: 'LRN', inputs: ['r'], outputs: ['n1'], attrs: { size: 5, alpha: 1e-2, beta: 0.75, bias: 2.5 } },
      { op: 'MaxPool', inputs: ['n1'], outputs: ['p'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'LRN', inputs: ['p'], outputs: ['y'], attrs: { size: 3, alpha: 0.5, beta: 0.5 } },
    ],
    outputs: ['y'],
  };
}

function randomInputs(shapes: number[][], seed: number): TensorValue[] {
  const random = seededRandom(seed);
  return shapes.map((s) =>
    makeTensor(
      'float32',
      s,
      Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => random() * 4 - 2),
    ),
  );
}

async function checkAgainstOnnxruntime(spec: ModelSpec, shapes: number[][]) {
  const bytes = buildModel(spec);
  const original = importOnnxBytes(bytes);
  inferShapes(original.graph);
  const inputs = randomInputs(shapes, 7);
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = {};
  spec.inputs.forEach((v, i) => (feeds[v.name] = new ort.Tensor('float32', inputs[i].data as Float32Array, shapes[i])));
  const reference = await session.run(feeds);
  const mine = runGraph(original.graph, inputs);
  const optimized = optimizeImported(importOnnxBytes(bytes), 'forms.onnx', { validate: true });
  const fused = runGraph(optimized.graph, inputs);
  spec.outputs.forEach((o, i) => {
    const name = typeof o === 'string' ? o : o.name;
    const expected = reference[name];
    assert.deepEqual(mine[i].shape, [...expected.dims], name);
    assert.deepEqual(fused[i].shape, [...expected.dims], `${name} (optimized)`);
    const e = expected.data as Float32Array;
    for (let k = 0; k < e.length; k++) {
      assert.ok(
        Math.abs((mine[i].data as Float32Array)[k] - e[k]) <= 1e-5,
        `${name}[${k}]: ${(mine[i].data as Float32Array)[k]} vs ${e[k]}`,
      );
      assert.ok(
        Math.abs((fused[i].data as Float32Array)[k] - e[k]) <= 1e-5,
        `${name}[${k}] optimized: ${(fused[i].data as Float32Array)[k]} vs ${e[k]}`,
      );
    }
  });
  return optimized.graph;
}

describe('ONNX forms from the ONNX backend test models', function () {
  this.timeout(300_000);
  let tmp: string;
  before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-forms-'))));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('Split, variadic Sum/Mean/Max/Min, dilated MaxPool, Dropout with a named mask: right against onnxruntime, before and after optimizing', async () => {
    const graph = await checkAgainstOnnxruntime(modernSpec(), [
      [2, 6, 9, 9],
      [1, 9],
    ]);
    const ops = graph.nodes.map((n) => n.op);
    // variadic ops became two-input chains (Mean: a sum times 1/n), Dropout is gone, the pool runs NHWC and dilated
    for (const gone of ['Sum', 'Mean', 'Dropout', 'MaxPool']) assert.ok(!ops.includes(gone), `${gone} left in ${ops.join(',')}`);
    const pool = graph.nodes.find((n) => n.op === 'pool2d')!;
    assert.deepEqual(pool.attrs.dilations?.value, [2, 3]);
    assert.equal(graph.nodes.filter((n) => n.op === 'Split').length, 1);
  });

  it('LRN (sizes 5 and 3) after a conv stem: right against onnxruntime, before and after optimizing', async () => {
    const graph = await checkAgainstOnnxruntime(lrnSpec(), [[2, 8, 6, 6]]);
    assert.equal(graph.nodes.filter((n) => n.op === 'LRN').length, 2);
  });

  it('opset 9: Slice with attribute bounds and Split with a split attribute, right against onnxruntime', async () => {
    const graph = await checkAgainstOnnxruntime(opset9Spec(), [[2, 10, 6]]);
    const slice = graph.nodes.find((n) => n.op === 'Slice');
    // the attribute form became the input form (or was folded into a neighbour)
    if (slice) assert.equal(slice.inputs.length, 4);
    assert.ok(!graph.nodes.some((n) => n.op === 'Dropout'));
  });

  for (const [target, gencode] of GPU_TARGETS) {
    it(`both compile for ${target} with no unsupported node; one strided copy per Split output; nvcc compiles model.cu`, function () {
      const sources: string[] = [];
      for (const [name, spec] of [
        ['modern', modernSpec()],
        ['opset9', opset9Spec()],
        ['lrn', lrnSpec()],
      ] as const) {
        const file = path.join(tmp, `${name}.onnx`);
        fs.writeFileSync(file, buildModel(spec));
        const out = path.join(tmp, `${name}-${target.replace(':', '-')}`);
        const result = compileModel(file, { out, target, maxBatch: 4 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        const source = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
        sources.push(out);
        if (name === 'lrn') assert.equal(source.split('ait::kernels::launch_lrn(').length - 1, 2);
        else assert.ok(source.includes('ait_split_f16'), 'a split kernel is launched');
      }
      const modern = fs.readFileSync(path.join(sources[0], 'src', 'model.cu'), 'utf8');
      assert.ok(/Pool2dArgs<__half> args\{[^;]*, 2, 3,\s/.test(modern.replace(/\n\s*/g, ' ')), 'the pool launch carries dilations 2, 3');
      requireNvcc(this);
      for (const out of sources) nvccCompileGenerated(out, ['src/model.cu'], gencode);
    });
  }
});
