/**
 * Mish and Shrink (ops/elementwise.ts; ew::Mish / ew::Shrink in kernels/elementwise.cuh): the references agree with
 * onnxruntime (large |x| for Mish's softplus, values on both sides of ±lambd and exactly on it for Shrink), the
 * generated functors, replayed on the CPU, compute what the interpreter computes, and the model compiles for sm90 and
 * sm80 with nvcc compiling model.cu.
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
import { ModelSpec, attr, buildModel, inferModel } from '../../helpers/onnx-builder';
import { replayElementwise } from '../../helpers/ew-replay';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const B = 2;
const N = 24;

const MODEL: ModelSpec = {
  opset: 18,
  inputs: [{ name: 'x', dtype: 'float32', dims: ['B', N] }],
  nodes: [
    { op: 'Mish', inputs: ['x'], outputs: ['mish'] },
    { op: 'Shrink', inputs: ['x'], outputs: ['soft'], attrs: { lambd: 1.5, bias: 1.5 } },
    { op: 'Shrink', inputs: ['x'], outputs: ['hard'] },
    { op: 'Abs', inputs: ['x'], outputs: ['ax'] },
    { op: 'Mish', inputs: ['ax'], outputs: ['amish'] },
    { op: 'Shrink', inputs: ['amish'], outputs: ['chain'], attrs: { lambd: attr.float(2), bias: 0.25 } },
  ],
  outputs: ['mish', 'soft', 'hard', 'chain'],
};

function inputValues(): TensorValue[] {
  const fixed = [-100, -20, -1.5, -0.5, 0, 0.5, 1.5, 20, 100];
  return [
    makeTensor(
      'float32',
      [B, N],
      Array.from({ length: B * N }, (_, i) => (i < fixed.length ? fixed[i] : 6 * Math.sin(1.3 * i))),
    ),
  ];
}

function write(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-mish-'));
  const file = path.join(dir, 'm.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

const close = (a: number, e: number, tol: number) => Math.abs(a - e) <= tol * Math.max(1, Math.abs(e));

describe('cuda backend: Mish and Shrink', function () {
  this.timeout(600_000);

  it('the references agree with onnxruntime', async () => {
    const m = inferModel(MODEL);
    assert.deepEqual(m.errors, []);
    const inputs = inputValues();
    const ours = runGraph(m.graph, inputs);
    const session = await ort.InferenceSession.create(buildModel(MODEL));
    const theirs = await session.run({ x: new ort.Tensor('float32', Float32Array.from(numeric(inputs[0])), [B, N]) });
    MODEL.outputs.forEach((name, k) => {
      const e = Array.from(theirs[name as string].data as Float32Array);
      Array.from(numeric(ours[k])).forEach((v, i) => assert.ok(close(v, e[i], 1e-5), `${String(name)}[${i}]: ${v} vs onnxruntime ${e[i]}`));
    });
    // hard shrink keeps ±1.5 (|x| > 0.5), drops ±0.5 (not strictly beyond lambd)
    assert.deepEqual(Array.from(numeric(ours[2])).slice(2, 7), [-1.5, 0, 0, 0, 1.5]);
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
      const chain = chainOfNode(n, graph);
      const f = functorOf(chain);
      functors.push(f);
      const out = values.get(n.outputs[0])!;
      const ins = n.inputs.map((t) => values.get(t) ?? graph.lookupTensor(t)!.value!);
      const replayed = replayElementwise(f, ins, out.shape, computeTypeOfNode(n, graph) === 'int');
      const expected = Array.from(numeric(out));
      assert.equal(replayed.length, expected.length);
      replayed.forEach((v, i) => assert.ok(close(v, expected[i], 1e-5), `${n.name}[${i}]: replayed ${v}, interpreter ${expected[i]}`));
    }
    const all = functors.join('\n');
    assert.match(all, /ew::Mish\{\}/);
    assert.match(all, /ew::Shrink\{1\.5f?, 1\.5f?\}/);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80']) {
    it(`compiles for ${target}; nvcc compiles model.cu`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-mish-out-'));
      const result = compileModel(write(MODEL), { out: dir, target, maxBatch: 4 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const modelCu = fs.readFileSync(path.join(dir, 'src', 'model.cu'), 'utf8');
      assert.match(modelCu, /ew::Mish\{\}/);
      assert.match(modelCu, /ew::Shrink\{/);
      if (haveNvcc())
        nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
    });
  }
});
