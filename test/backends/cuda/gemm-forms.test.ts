/**
 * Gemm forms the fused gemm does not take (canonicalize.ts splitGemm): transA (a Transpose of A, folded when A is a
 * weight), alpha ≠ 1, beta ≠ 1, and a C that is not a constant row (a run-time [M, N] matrix, a column). For each: the
 * reference Gemm agrees with onnxruntime; the optimized graph (Transpose + gemm + elementwise) computes, in the
 * interpreter, what the original node computes; no Gemm is left and every node lowers; the model compiles for sm90 and
 * sm80 and nvcc compiles model.cu (A of a transA Gemm has fixed dims: a model input's dynamic dim must lead).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { supportOf } from '../../../compiler/backends/support';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { TensorValue, makeTensor, numeric } from '../../../compiler/ir/tensor';
import { ModelSpec, attr, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const B = 3;
const wave = (n: number, phase: number) => Array.from({ length: n }, (_, i) => Math.sin(1.3 * i + phase));
const w = (dims: number[], phase = 0.2) =>
  tensor(
    'float32',
    dims,
    wave(
      dims.reduce((a, b) => a * b, 1),
      phase,
    ),
  );
const f32 = (...d: (number | string)[]) => input('float32', d);

const CASES: { name: string; spec: ModelSpec; given: number[][]; transposes: number }[] = [
  {
    name: 'transA, A at run time',
    spec: nodeModel('Gemm', [f32(16, B), w([16, 8])], { attrs: { transA: 1 } }),
    given: [[16, B]],
    transposes: 1,
  },
  {
    name: 'transA and transB with a bias row',
    spec: nodeModel('Gemm', [f32(16, B), w([8, 16]), w([8], 0.9)], { attrs: { transA: 1, transB: 1 } }),
    given: [[16, B]],
    transposes: 1,
  },
  {
    name: 'alpha and beta with a bias row',
    spec: nodeModel('Gemm', [f32('B', 16), w([16, 8]), w([8], 0.9)], { attrs: { alpha: attr.float(0.5), beta: attr.float(2) } }),
    given: [[B, 16]],
    transposes: 0,
  },
  {
    name: 'C a run-time matrix, transA, alpha',
    spec: nodeModel('Gemm', [f32(16, B), w([16, 8]), f32(B, 8)], { attrs: { transA: 1, alpha: attr.float(1.5) } }),
    given: [
      [16, B],
      [B, 8],
    ],
    transposes: 1,
  },
  { name: 'C a constant column', spec: nodeModel('Gemm', [f32(4, 16), w([16, 8]), w([4, 1], 0.4)]), given: [[4, 16]], transposes: 0 },
];

function write(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gemm-forms-'));
  const file = path.join(dir, 'm.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

const inputsOf = (given: number[][]): TensorValue[] =>
  given.map((dims, k) =>
    makeTensor(
      'float32',
      dims,
      wave(
        dims.reduce((a, b) => a * b, 1),
        0.7 * k + 0.1,
      ),
    ),
  );

const close = (a: number, e: number) => Math.abs(a - e) <= 1e-4 * Math.max(1, Math.abs(e));

describe('cuda backend: Gemm forms beyond the fused gemm (transA, alpha, beta, C)', function () {
  this.timeout(600_000);

  for (const c of CASES) {
    it(`${c.name}: the reference agrees with onnxruntime; the rewritten graph computes the same`, async () => {
      const m = inferModel(c.spec);
      assert.deepEqual(m.errors, []);
      const inputs = inputsOf(c.given);
      const [ours] = runGraph(m.graph, inputs);
      const session = await ort.InferenceSession.create(buildModel(c.spec));
      const feeds = Object.fromEntries(
        c.spec.inputs.map((v, k) => [v.name, new ort.Tensor('float32', Float32Array.from(numeric(inputs[k])), c.given[k])]),
      );
      const theirs = (await session.run(feeds)).out0;
      assert.deepEqual(ours.shape, theirs.dims);
      const e = Array.from(theirs.data as Float32Array);
      Array.from(numeric(ours)).forEach((v, i) => assert.ok(close(v, e[i]), `[${i}]: ${v} vs onnxruntime ${e[i]}`));

      const { graph } = optimizeModel(write(c.spec), {});
      assert.ok(!graph.nodes.some((n) => n.op === 'Gemm'), `a Gemm is left: ${graph.nodes.map((n) => n.op).join(', ')}`);
      assert.equal(graph.nodes.filter((n) => n.op === 'Transpose').length, c.transposes);
      for (const n of graph.nodes) {
        const support = supportOf(graph, n, 'cuda:sm90');
        assert.ok(support.supported, `${n.op} '${n.name}': ${support.reason}`);
      }
      const [rewritten] = runGraph(graph, inputs);
      assert.deepEqual(rewritten.shape, ours.shape);
      const ref = Array.from(numeric(ours));
      Array.from(numeric(rewritten)).forEach((v, i) => assert.ok(close(v, ref[i]), `rewritten [${i}]: ${v} vs ${ref[i]}`));
    });

    for (const target of ['cuda:sm90', 'cuda:sm80'])
      it(`${c.name}: compiles for ${target}; nvcc compiles model.cu`, () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gemm-forms-out-'));
        const result = compileModel(write(c.spec), { out: dir, target, maxBatch: 4 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        if (haveNvcc())
          nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
      });
  }
});
