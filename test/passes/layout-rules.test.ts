/**
 * NHWC end to end: the layout transposes created around convolutions move through every op family with a layout
 * rule (ops/layout-rules.ts) and cancel, so conv → op → conv keeps only the model input's (and a 4-D output's)
 * transposes; the optimized graph computes what the original computes (interpreter). On the zoo CNNs, graph.json
 * holds no activation transpose but the input's and the output's.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import '../../compiler/ops';
import { optimizeModel } from '../../compiler/compile';
import { Graph, Node } from '../../compiler/ir/graph';
import { seededRandom } from '../../compiler/ir/tensor';
import { isKernel } from '../../compiler/passes/cost';
import { ModelSpec, NodeSpec, TensorSpec } from '../helpers/onnx-builder';
import { SHARED_MODELS_DIR } from '../helpers/models';
import { optimizeAndCompare } from '../helpers/optimize-compare';

const rand = seededRandom(7);
const randomValues = (n: number, scale = 1) => Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
function weight(name: string, dims: number[], scale?: number): TensorSpec & { name: string } {
  const n = dims.reduce((a, b) => a * b, 1);
  return { name, dtype: 'float32', dims, values: randomValues(n, scale ?? 1 / Math.sqrt(n / dims[0])) };
}
const constant = (name: string, dims: number[], values: number[]): TensorSpec & { name: string } => ({
  name,
  dtype: 'float32',
  dims,
  values,
});
const ints = (name: string, values: number[]): TensorSpec & { name: string } => ({ name, dtype: 'int64', dims: [values.length], values });

const conv = (x: string, w: string, y: string, k = 3): NodeSpec => ({
  op: 'Conv',
  inputs: [x, w],
  outputs: [y],
  attrs: { kernel_shape: [k, k], pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0] },
});

/** Transposes that move activations (weight preparation and shape arithmetic excluded), and those of the model's inputs/outputs. */
export function activationTransposes(g: Graph): { all: Node[]; inner: Node[] } {
  const all = g.nodes.filter((n) => (n.op === 'Transpose' || n.op === 'transpose_pad') && isKernel(g, n));
  const inner = all.filter((n) => !g.inputs.includes(n.inputs[0]) && !g.outputs.includes(n.outputs[0]));
  return { all, inner };
}

function check(spec: ModelSpec, inputShapes: number[][]): Graph {
  const graph = optimizeAndCompare(spec, inputShapes, (n) => randomValues(n));
  const { inner } = activationTransposes(graph);
  assert.deepEqual(
    inner.map((n) => `${n.name} [${(n.attrs.perm?.value as number[]).join(',')}]`),
    [],
    'activation transposes left between convolutions',
  );
  return graph;
}

const C = 8;
const X = [1, C, 6, 6];
/** conv → body → conv: `body` reads 'a' and writes 'b'. */
function sandwich(body: NodeSpec[], initializers: (TensorSpec & { name: string })[] = [], cIn = C, opset?: number): ModelSpec {
  return {
    opset,
    inputs: [{ name: 'x', dtype: 'float32', dims: X }],
    outputs: ['y'],
    initializers: [weight('w1', [C, C, 3, 3]), weight('w2', [C, cIn, 3, 3]), ...initializers],
    nodes: [conv('x', 'w1', 'a'), ...body, conv('b', 'w2', 'y')],
  };
}

describe('layout rules: transposes move through every op family and cancel', function () {
  this.timeout(300_000);

  it('elementwise and broadcast ops: SiLU, per-channel [1,C,1,1] scale and shift, scalar, Clip, Where', () => {
    check(
      sandwich(
        [
          { op: 'Sigmoid', inputs: ['a'], outputs: ['s'] },
          { op: 'Mul', inputs: ['a', 's'], outputs: ['silu'] },
          { op: 'Mul', inputs: ['silu', 'scale'], outputs: ['m'] },
          { op: 'Add', inputs: ['m', 'shift'], outputs: ['n'] },
          { op: 'Div', inputs: ['n', 'two'], outputs: ['d'] },
          { op: 'Clip', inputs: ['d', 'lo', 'hi'], outputs: ['c'] },
          { op: 'Greater', inputs: ['c', 'zero'], outputs: ['pos'] },
          { op: 'Where', inputs: ['pos', 'c', 'n'], outputs: ['b'] },
        ],
        [
          weight('scale', [1, C, 1, 1], 1),
          weight('shift', [C, 1, 1], 1),
          constant('two', [], [2]),
          constant('lo', [], [-0.5]),
          constant('hi', [], [0.5]),
          constant('zero', [], [0]),
        ],
      ),
      [X],
    );
  });

  it('Concat, Split and Slice on the channel axis (axis remapped)', () => {
    check(
      sandwich(
        [
          { op: 'Split', inputs: ['a', 'halves'], outputs: ['a0', 'a1'], attrs: { axis: 1 } },
          { op: 'Relu', inputs: ['a1'], outputs: ['r1'] },
          { op: 'Slice', inputs: ['a', 'st', 'en', 'ax'], outputs: ['sl'] },
          { op: 'Concat', inputs: ['r1', 'a0', 'sl', 'a'], outputs: ['b'], attrs: { axis: 1 } },
        ],
        [ints('halves', [4, 4]), ints('st', [2]), ints('en', [6]), ints('ax', [1])],
        12 + C,
      ),
      [X],
    );
  });

  it('pooling: MaxPool, AveragePool, GlobalMaxPool and GlobalAveragePool', () => {
    check(
      sandwich([
        { op: 'MaxPool', inputs: ['a'], outputs: ['p'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
        { op: 'AveragePool', inputs: ['p'], outputs: ['q'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
        { op: 'GlobalMaxPool', inputs: ['a'], outputs: ['gm'] },
        { op: 'GlobalAveragePool', inputs: ['q'], outputs: ['ga'] },
        { op: 'Mul', inputs: ['q', 'gm'], outputs: ['m'] },
        { op: 'Add', inputs: ['m', 'ga'], outputs: ['b'] },
      ]),
      [X],
    );
  });

  it('Resize (scales permuted) and Pad (pads permuted)', () => {
    const g = check(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: X }],
        outputs: ['y'],
        initializers: [
          weight('w1', [C, C, 3, 3]),
          weight('w2', [C, C, 3, 3]),
          constant('scales', [4], [1, 1, 2, 2]),
          ints('pads', [0, 0, 1, 2, 0, 0, 2, 1]),
        ],
        nodes: [
          conv('x', 'w1', 'a'),
          { op: 'Resize', inputs: ['a', '', 'scales'], outputs: ['r'], attrs: { mode: 'nearest' } },
          { op: 'Pad', inputs: ['r', 'pads'], outputs: ['p'], attrs: { mode: 'reflect' } },
          conv('p', 'w2', 'y'),
        ],
      },
      [X],
    );
    assert.equal(g.nodes.filter((n) => n.op === 'Resize').length, 1);
  });

  it('squeeze-excitation (ReduceMean over H,W → 1×1 conv → ReLU → 1×1 conv → Sigmoid → scale) and a head mean', () => {
    const g = check(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: X }],
        outputs: ['head'],
        initializers: [weight('w1', [C, C, 3, 3]), weight('w2', [C, C, 3, 3]), weight('se1', [2, C, 1, 1]), weight('se2', [C, 2, 1, 1])],
        nodes: [
          conv('x', 'w1', 'a'),
          { op: 'ReduceMean', inputs: ['a'], outputs: ['m'], attrs: { axes: [2, 3], keepdims: 1 } },
          conv('m', 'se1', 'r0', 1),
          { op: 'Relu', inputs: ['r0'], outputs: ['r'] },
          conv('r', 'se2', 'e', 1),
          { op: 'Sigmoid', inputs: ['e'], outputs: ['s'] },
          { op: 'Mul', inputs: ['a', 's'], outputs: ['b'] },
          conv('b', 'w2', 'z'),
          { op: 'ReduceMean', inputs: ['z'], outputs: ['head'], attrs: { axes: [2, 3], keepdims: 0 } },
        ],
      },
      [X],
    );
    assert.equal(g.nodes.filter((n) => n.op === 'Transpose').length, 1, 'only the input transpose');
  });

  it('channel LayerNorm: ConvNeXt permute → LayerNormalization → permute, and the ReduceMean-over-C form', () => {
    check(
      sandwich(
        [
          { op: 'Transpose', inputs: ['a'], outputs: ['t'], attrs: { perm: [0, 2, 3, 1] } },
          { op: 'LayerNormalization', inputs: ['t', 'g', 'be'], outputs: ['ln'], attrs: { axis: -1, epsilon: 1e-6 } },
          { op: 'Transpose', inputs: ['ln'], outputs: ['l1'], attrs: { perm: [0, 3, 1, 2] } },
          { op: 'ReduceMean', inputs: ['l1'], outputs: ['mu'], attrs: { axes: [1], keepdims: 1 } },
          { op: 'Sub', inputs: ['l1', 'mu'], outputs: ['dv'] },
          { op: 'Mul', inputs: ['dv', 'dv'], outputs: ['sq'] },
          { op: 'ReduceMean', inputs: ['sq'], outputs: ['var'], attrs: { axes: [1], keepdims: 1 } },
          { op: 'Add', inputs: ['var', 'eps'], outputs: ['ve'] },
          { op: 'Sqrt', inputs: ['ve'], outputs: ['sd'] },
          { op: 'Div', inputs: ['dv', 'sd'], outputs: ['nrm'] },
          { op: 'Mul', inputs: ['nrm', 'g4'], outputs: ['b'] },
        ],
        [weight('g', [C], 1), weight('be', [C], 1), constant('eps', [], [1e-6]), weight('g4', [C, 1, 1], 1)],
      ),
      [X],
    );
  });
});

const ZOO_CNNS = [
  'efficientnet_b2',
  'inception_v3',
  'mobilenetv2_100',
  'densenet121',
  'regnetx_016',
  'deeplabv3_resnet50',
  'convnext_small',
];

describe('layout on the zoo CNNs: no activation transpose but the input’s and the output’s', function () {
  this.timeout(600_000);
  for (const name of [...ZOO_CNNS, 'resnet50']) {
    it(name, function () {
      const file =
        name === 'resnet50' ? path.join(SHARED_MODELS_DIR, 'resnet50.onnx') : path.join(SHARED_MODELS_DIR, 'zoo', `${name}.onnx`);
      if (!fs.existsSync(file)) {
        console.log(`    (skipped: ${file} not found; ../shared/models is only on developer machines and CI)`);
        this.skip();
      }
      const { graph } = optimizeModel(file);
      const { all, inner } = activationTransposes(graph);
      assert.deepEqual(
        inner.map((n) => n.name),
        [],
      );
      assert.ok(all.length >= 1 && all.length <= graph.inputs.length + graph.outputs.length, `${all.length} transposes`);
    });
  }
});
