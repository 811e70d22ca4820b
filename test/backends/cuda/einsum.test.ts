/**
 * Einsum (ops/gemm.ts reference; canonicalize.ts einsumToMatMul): equations become ReduceSum/Transpose/Reshape +
 * MatMul and run on the GEMM paths — '...' (broadcast dims, explicit and implicit output, a size-1 ellipsis dim
 * broadcast against a larger one), sums over one operand, and 3+ operands as a chain of two-operand products. For
 * each: the reference agrees with onnxruntime; the rewritten graph has no Einsum, computes the same in the interpreter
 * and every node lowers; the models compile for sm90 and sm80 and nvcc compiles model.cu. A diagonal (a letter twice
 * in one operand) stays Einsum and is refused with the equation in the reason.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { supportOf } from '../../../compiler/backends/support';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

type Operand = { dims: (number | string)[]; weight?: boolean };
/** opset: the model's (12 unless given; from 13 the ReduceSums the rewrite adds take their axes as an input). */
const CASES: { equation: string; operands: Operand[]; opset?: number }[] = [
  { equation: 'bij,bjk->bik', operands: [{ dims: ['B', 4, 8] }, { dims: ['B', 8, 5] }] },
  { equation: 'bhid,bhjd->bhij', operands: [{ dims: ['B', 2, 6, 8] }, { dims: ['B', 2, 6, 8] }] },
  { equation: 'bhij,bhjd->bhid', operands: [{ dims: ['B', 2, 6, 6] }, { dims: ['B', 2, 6, 8] }] },
  { equation: 'ij,jk->ik', operands: [{ dims: ['B', 16] }, { dims: [16, 8], weight: true }] },
  { equation: 'bid,jd->bij', operands: [{ dims: ['B', 5, 16] }, { dims: [8, 16], weight: true }] },
  { equation: 'bnhd->bhnd', operands: [{ dims: ['B', 5, 2, 8] }] },
  { equation: 'bhqd,bhkd->bqhk', operands: [{ dims: ['B', 2, 4, 8] }, { dims: ['B', 2, 6, 8] }] },
  // '...': explicit and implicit output, fewer ellipsis dims in one operand, a size-1 ellipsis dim broadcast
  { equation: '...ij,...jk->...ik', operands: [{ dims: ['B', 2, 4, 8] }, { dims: ['B', 2, 8, 5] }] },
  { equation: '...ij,jk', operands: [{ dims: ['B', 3, 4, 8] }, { dims: [8, 5], weight: true }] },
  { equation: 'b...d,bd->b...', operands: [{ dims: ['B', 4, 6, 8] }, { dims: ['B', 8] }] },
  { equation: '...qd,...kd->...qk', operands: [{ dims: ['B', 2, 4, 8] }, { dims: ['B', 1, 6, 8] }] },
  // sums over one operand, before the product or alone
  { equation: 'bij,bjk->bk', operands: [{ dims: ['B', 4, 8] }, { dims: ['B', 8, 5] }] },
  { equation: 'bij,bjk->bk', operands: [{ dims: ['B', 4, 8] }, { dims: ['B', 8, 5] }], opset: 18 },
  { equation: 'bij->bj', operands: [{ dims: ['B', 4, 8] }] },
  { equation: 'bijk->bki', operands: [{ dims: ['B', 4, 3, 8] }] },
  // 3+ operands: a chain of products (a bilinear form, a three-matrix product, a per-batch contraction of four)
  { equation: 'bi,ij,bj->b', operands: [{ dims: ['B', 8] }, { dims: [8, 8], weight: true }, { dims: ['B', 8] }] },
  { equation: '...i,...i->...', operands: [{ dims: ['B', 3, 8] }, { dims: ['B', 3, 8] }], opset: 18 },
  { equation: 'ij,jk,kl->il', operands: [{ dims: ['B', 8] }, { dims: [8, 16], weight: true }, { dims: [16, 4], weight: true }] },
  {
    equation: 'bhq,bhk,hqd,bkd->bhd',
    operands: [{ dims: ['B', 2, 4] }, { dims: ['B', 2, 6] }, { dims: [2, 4, 8], weight: true }, { dims: ['B', 6, 8] }],
  },
];

const B = 3;
const concrete = (dims: (number | string)[]) => dims.map((d) => (typeof d === 'string' ? B : d));
const wave = (n: number, phase: number) => Array.from({ length: n }, (_, i) => Math.sin(1.1 * i + phase));
const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

function spec(equation: string, operands: Operand[], opset = 12): ModelSpec {
  return nodeModel(
    'Einsum',
    operands.map((o, k) =>
      o.weight ? tensor('float32', o.dims as number[], wave(count(o.dims as number[]), k)) : input('float32', o.dims),
    ),
    { attrs: { equation }, opset },
  );
}

function write(model: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-einsum-'));
  fs.writeFileSync(path.join(dir, 'm.onnx'), buildModel(model));
  return path.join(dir, 'm.onnx');
}

const close = (a: number, e: number) => Math.abs(a - e) <= 1e-4 * Math.max(1, Math.abs(e));

describe('cuda backend: Einsum as ReduceSum/Transpose/Reshape + MatMul', function () {
  this.timeout(600_000);

  for (const c of CASES) {
    it(`'${c.equation}'${c.opset ? ` (opset ${c.opset})` : ''}: the reference agrees with onnxruntime; the rewrite computes the same and lowers`, async () => {
      const model = spec(c.equation, c.operands, c.opset);
      const m = inferModel(model);
      assert.deepEqual(m.errors, []);
      const given = c.operands.filter((o) => !o.weight);
      const inputs = given.map((o, k) => makeTensor('float32', concrete(o.dims), wave(count(concrete(o.dims)), 0.3 + k)));
      const [ours] = runGraph(m.graph, inputs);
      const session = await ort.InferenceSession.create(buildModel(model));
      const feeds = Object.fromEntries(
        model.inputs.map((v, k) => [v.name, new ort.Tensor('float32', Float32Array.from(numeric(inputs[k])), inputs[k].shape)]),
      );
      const theirs = (await session.run(feeds)).out0;
      assert.deepEqual(ours.shape, theirs.dims);
      const e = Array.from(theirs.data as Float32Array);
      Array.from(numeric(ours)).forEach((v, i) => assert.ok(close(v, e[i]), `[${i}] ${v} vs onnxruntime ${e[i]}`));

      const { graph } = optimizeModel(write(model), {});
      assert.ok(!graph.nodes.some((n) => n.op === 'Einsum'), graph.nodes.map((n) => n.op).join(', '));
      for (const n of graph.nodes) {
        const support = supportOf(graph, n, 'cuda:sm90');
        assert.ok(support.supported, `${n.op}: ${support.reason}`);
      }
      const [rewritten] = runGraph(graph, inputs);
      assert.deepEqual(rewritten.shape, ours.shape);
      const r = Array.from(numeric(ours));
      Array.from(numeric(rewritten)).forEach((v, i) => assert.ok(close(v, r[i]), `rewritten [${i}] ${v} vs ${r[i]}`));
    });
    for (const target of ['cuda:sm90', 'cuda:sm80'])
      it(`'${c.equation}'${c.opset ? ` (opset ${c.opset})` : ''}: compiles for ${target}; nvcc compiles model.cu`, () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-einsum-out-'));
        const result = compileModel(write(spec(c.equation, c.operands, c.opset)), { out: dir, target, maxBatch: 4 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        if (haveNvcc())
          nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
      });
  }

  it('a diagonal stays Einsum and is refused with the equation', () => {
    const { graph } = optimizeModel(write(spec('bii,bik->bk', [{ dims: ['B', 8, 8] }, { dims: ['B', 8, 5] }])), {});
    const node = graph.nodes.find((n) => n.op === 'Einsum')!;
    const support = supportOf(graph, node, 'cuda:sm90');
    assert.equal(support.supported, false);
    assert.match(
      support.reason ?? '',
      /^Einsum 'bii,bik->bk' is not a sum\/permutation or a chain of products: a letter repeated within one operand/,
    );
  });

  it("'...' and the operands' ranks: errors naming the node", () => {
    const errors = (equation: string, operands: (number | string)[][]) =>
      inferModel(
        nodeModel(
          'Einsum',
          operands.map((dims) => input('float32', dims)),
          { attrs: { equation }, opset: 12, name: 'es' },
        ),
      ).errors.map((e) => e.message);
    assert.match(errors('...ij,jk->...ik', [[2], [3, 4]]).toString(), /Einsum node 'es'.*operand 0 has rank 1, fewer than the 2 axes/);
    assert.match(
      errors('ij,jk->...ik', [
        [2, 3],
        [3, 4],
      ]).toString(),
      /'\.\.\.' in the output but in no operand/,
    );
    assert.match(
      errors('...ij,...jk->...ik', [
        [2, 4, 3],
        [5, 3, 4],
      ]).toString(),
      /letter 'A' is 2 and 5/,
    );
    assert.deepEqual(
      errors('...ij,...jk->...ik', [
        [2, 4, 3],
        [1, 3, 4],
      ]),
      [],
    );
  });
});
