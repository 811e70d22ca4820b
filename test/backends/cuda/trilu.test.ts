/**
 * Trilu (canonicalize.ts triluToWhere): over fixed last two axes and a constant k it becomes Where(constant triangle
 * mask, x, 0), which the elementwise kernels run. The reference agrees with onnxruntime (upper/lower, k positive,
 * negative, omitted, float with ±Inf and NaN off the triangle, int64); the rewritten graph computes the same in the
 * interpreter and every node lowers; the models compile for sm90 and sm80 and nvcc compiles model.cu. A Trilu over a
 * run-time last axis stays and is refused.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { supportOf } from '../../../compiler/backends/support';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { DType } from '../../../compiler/ir/dtype';
import { makeTensor, numeric } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const CASES: { name: string; dtype: DType; shape: number[]; upper: number; k?: number }[] = [
  { name: 'upper, k omitted (with Inf/NaN below)', dtype: 'float32', shape: [2, 6, 6], upper: 1 },
  { name: 'lower, k = -1', dtype: 'float32', shape: [3, 4, 6], upper: 0, k: -1 },
  { name: 'upper, k = 2, int64', dtype: 'int64', shape: [2, 3, 5], upper: 1, k: 2 },
  { name: 'lower, k = 0 (causal mask), 4-D', dtype: 'float32', shape: [1, 2, 5, 5], upper: 0, k: 0 },
];

const spec = (dtype: DType, dims: (number | string)[], upper: number, k?: number): ModelSpec =>
  nodeModel('Trilu', [input(dtype, dims), k === undefined ? undefined : tensor('int64', [], [k])], { attrs: { upper }, opset: 14 });

function values(dtype: DType, shape: number[]): number[] {
  const n = shape.reduce((a, b) => a * b, 1);
  const special = [Infinity, -Infinity, NaN];
  return Array.from({ length: n }, (_, i) => (dtype === 'float32' && i % 7 === 3 ? special[i % 3] : ((i * 37) % 101) - 50));
}

function write(model: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-trilu-'));
  fs.writeFileSync(path.join(dir, 'm.onnx'), buildModel(model));
  return path.join(dir, 'm.onnx');
}

const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]) || (v === 0 && b[i] === 0));

describe('cuda backend: Trilu as Where over a constant mask', function () {
  this.timeout(600_000);

  for (const c of CASES)
    it(`${c.name}: matches onnxruntime; the rewritten graph computes the same and lowers`, async () => {
      const model = spec(c.dtype, c.shape, c.upper, c.k);
      const m = inferModel(model);
      assert.deepEqual(m.errors, []);
      const data = values(c.dtype, c.shape);
      const x = makeTensor(c.dtype, c.shape, data);
      const [ours] = runGraph(m.graph, [x]);
      const session = await ort.InferenceSession.create(buildModel(model));
      const feed =
        c.dtype === 'int64'
          ? new ort.Tensor('int64', BigInt64Array.from(data, BigInt), c.shape)
          : new ort.Tensor('float32', Float32Array.from(data), c.shape);
      const theirs = (await session.run({ in0: feed })).out0;
      const ref = Array.from(numeric(ours));
      assert.ok(same(ref, Array.from(theirs.data as ArrayLike<number | bigint>, Number)), 'reference vs onnxruntime');

      const { graph } = optimizeModel(write(model), {});
      assert.ok(!graph.nodes.some((n) => n.op === 'Trilu'), graph.nodes.map((n) => n.op).join(', '));
      for (const n of graph.nodes) {
        const support = supportOf(graph, n, 'cuda:sm90');
        assert.ok(support.supported, `${n.op}: ${support.reason}`);
      }
      const [rewritten] = runGraph(graph, [x]);
      assert.ok(same(Array.from(numeric(rewritten)), ref), 'rewritten graph vs reference');
    });

  it('a Trilu over a run-time last axis stays Trilu and is refused', () => {
    const { graph } = optimizeModel(write(spec('float32', [2, 'B'], 1)), {});
    const trilu = graph.nodes.find((n) => n.op === 'Trilu')!;
    assert.equal(supportOf(graph, trilu, 'cuda:sm90').supported, false);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    for (const [name, model] of [
      ['causal [B,8,8] lower', spec('float32', ['B', 8, 8], 0)],
      ['int64 [B,3,5] upper k=1', spec('int64', ['B', 3, 5], 1, 1)],
    ] as const)
      it(`${name} compiles for ${target}; nvcc compiles model.cu`, () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-trilu-out-'));
        const result = compileModel(write(model), { out: dir, target, maxBatch: 4 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        if (haveNvcc())
          nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
      });
});
