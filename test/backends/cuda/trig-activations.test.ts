/**
 * The inverse and hyperbolic trigonometric ops (Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh) and the
 * activations Softsign, Celu and ThresholdedRelu (ops/elementwise.ts; their functors in kernels/elementwise.cuh): the
 * references agree with onnxruntime (inside each domain, and Celu/ThresholdedRelu with non-default alpha), every node
 * lowers, the generated functors replayed on the CPU compute what the interpreter computes, and the model compiles
 * for sm90, sm80 and gfx942 (nvcc compiles model.cu where present).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { chainOfNode, computeTypeOfNode, functorOf } from '../../../compiler/backends/cuda/codegen/elementwise';
import { supportOf } from '../../../compiler/backends/support';
import { runGraph, runGraphNamed } from '../../../compiler/interpreter/interpreter';
import { TensorValue, makeTensor, numeric } from '../../../compiler/ir/tensor';
import { ModelSpec, NodeSpec, buildModel, inferModel } from '../../helpers/onnx-builder';
import { replayElementwise } from '../../helpers/ew-replay';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const B = 2;
const N = 32;

// x in (-1, 1) for the functions defined there (Asin, Acos, Atanh), 1 + x² >= 1 for Acosh, x itself for the rest;
// each op's output also goes through Add so that it runs inside a chain, not only as a chain of one
const DOMAIN_OPEN: string[] = ['Asin', 'Acos', 'Atanh'];
const ANY: string[] = ['Tan', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Softsign'];
const nodes: NodeSpec[] = [
  { op: 'Tanh', inputs: ['x'], outputs: ['unit'] }, // (-1, 1)
  { op: 'Mul', inputs: ['x', 'x'], outputs: ['x2'] },
  { op: 'Add', inputs: ['x2', 'one'], outputs: ['above1'] },
  ...DOMAIN_OPEN.map((op): NodeSpec => ({ op, inputs: ['unit'], outputs: [op] })),
  ...ANY.map((op): NodeSpec => ({ op, inputs: ['x'], outputs: [op] })),
  { op: 'Acosh', inputs: ['above1'], outputs: ['Acosh'] },
  { op: 'Celu', inputs: ['x'], outputs: ['Celu'], attrs: { alpha: 0.7 } },
  { op: 'ThresholdedRelu', inputs: ['x'], outputs: ['ThresholdedRelu'], attrs: { alpha: 0.25 } },
  { op: 'Celu', inputs: ['x'], outputs: ['celu_default'] },
  { op: 'Add', inputs: ['Atan', 'Sinh'], outputs: ['sum'] },
];
const OUTPUTS = [...DOMAIN_OPEN, ...ANY, 'Acosh', 'Celu', 'ThresholdedRelu', 'celu_default', 'sum'];
const MODEL: ModelSpec = {
  opset: 18,
  inputs: [{ name: 'x', dtype: 'float32', dims: ['B', N] }],
  initializers: [{ name: 'one', dtype: 'float32', dims: [], values: [1] }],
  nodes,
  outputs: OUTPUTS,
};

function inputValues(): TensorValue[] {
  const fixed = [-3, -1.2, -0.25, 0, 0.25, 1.2, 3];
  return [
    makeTensor(
      'float32',
      [B, N],
      Array.from({ length: B * N }, (_, i) => (i < fixed.length ? fixed[i] : 2.5 * Math.sin(1.7 * i))),
    ),
  ];
}

function write(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-trig-'));
  const file = path.join(dir, 'm.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

const close = (a: number, e: number, tol: number) => Math.abs(a - e) <= tol * Math.max(1, Math.abs(e));

describe('cuda backend: trigonometric and hyperbolic ops, Softsign, Celu, ThresholdedRelu', function () {
  this.timeout(600_000);

  it('the references agree with onnxruntime', async () => {
    const m = inferModel(MODEL);
    assert.deepEqual(m.errors, []);
    const inputs = inputValues();
    const ours = runGraph(m.graph, inputs);
    const session = await ort.InferenceSession.create(buildModel(MODEL));
    const theirs = await session.run({ x: new ort.Tensor('float32', Float32Array.from(numeric(inputs[0])), [B, N]) });
    OUTPUTS.forEach((name, k) => {
      const e = Array.from(theirs[name].data as Float32Array);
      Array.from(numeric(ours[k])).forEach((v, i) => assert.ok(close(v, e[i], 1e-5), `${name}[${i}]: ${v} vs onnxruntime ${e[i]}`));
    });
    // ThresholdedRelu(alpha 0.25): 0.25 itself is not above the threshold
    const thresholded = Array.from(numeric(ours[OUTPUTS.indexOf('ThresholdedRelu')])).slice(0, 7);
    assert.deepEqual(thresholded, [0, 0, 0, 0, 0, 1.2000000476837158, 3]);
  });

  it('every node lowers; the functors, replayed, compute what the interpreter computes', () => {
    const { graph } = optimizeModel(write(MODEL), {});
    for (const n of graph.nodes) {
      const support = supportOf(graph, n, 'cuda:sm90');
      assert.ok(support.supported, `${n.op} '${n.name}': ${support.reason}`);
    }
    const given = inputValues();
    const values = new Map<string, TensorValue>(graph.inputs.map((t, k) => [t, given[k]]));
    runGraphNamed(graph, given, { onNode: (_id, outputs) => outputs.forEach((v, t) => values.set(t, v)) });
    const functors: string[] = [];
    for (const n of graph.nodes) {
      const f = functorOf(chainOfNode(n, graph));
      functors.push(f);
      for (const [o, name] of n.outputs.entries()) {
        if (o > 0) break;
        const out = values.get(name)!;
        const ins = n.inputs.map((t) => values.get(t) ?? graph.lookupTensor(t)!.value!);
        const replayed = replayElementwise(f, ins, out.shape, computeTypeOfNode(n, graph) === 'int');
        const expected = Array.from(numeric(out));
        replayed.forEach((v, i) => assert.ok(close(v, expected[i], 1e-5), `${n.name}[${i}]: replayed ${v}, interpreter ${expected[i]}`));
      }
    }
    const all = functors.join('\n');
    for (const op of [...DOMAIN_OPEN, ...ANY, 'Acosh']) assert.match(all, new RegExp(`ew::${op}\\{\\}`), op);
    assert.match(all, /ew::Celu\{0\.69999998\d*f\}/); // alpha 0.7 as float32
    assert.match(all, /ew::ThresholdedRelu\{0\.25f?\}/);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80', 'rocm:gfx942']) {
    it(`compiles for ${target} with no unsupported node${target.startsWith('cuda') ? '; nvcc compiles model.cu' : ''}`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-trig-out-'));
      const result = compileModel(write(MODEL), { out: dir, target, maxBatch: 4 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      if (target.startsWith('cuda') && haveNvcc())
        nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
    });
  }
});
