/**
 * Tile on CUDA (codegen/tile-lowering.ts): a strided copy whose view splits each repeated axis into [repeats, size]
 * with a zero stride on the repeat axis. The reference Tile agrees with onnxruntime; the copy's index arithmetic,
 * replayed in TypeScript over the view tileView returns, computes what the reference computes; a view past 6 axes is
 * refused with the reason; the models compile for sm90 and sm80 and nvcc compiles model.cu.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { tileView } from '../../../compiler/backends/cuda/codegen/tile-lowering';
import { supportOf } from '../../../compiler/backends/support';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { DType } from '../../../compiler/ir/dtype';
import { makeTensor, numeric } from '../../../compiler/ir/tensor';
import { buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const CASES: { name: string; dtype: DType; shape: number[]; repeats: number[] }[] = [
  { name: 'one axis repeated', dtype: 'float32', shape: [3, 4, 8], repeats: [1, 2, 1] },
  { name: 'every axis repeated', dtype: 'float32', shape: [2, 3], repeats: [3, 2] },
  { name: 'int64 with a size-1 axis', dtype: 'int64', shape: [2, 1, 5], repeats: [1, 4, 2] },
  { name: 'repeats of 1 only', dtype: 'float32', shape: [2, 5], repeats: [1, 1] },
];

const spec = (dtype: DType, dims: (number | string)[], repeats: number[]) =>
  nodeModel('Tile', [input(dtype, dims), tensor('int64', [repeats.length], repeats)]);

const values = (shape: number[]) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i * 37) % 101);

function write(bytes: Uint8Array): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-tile-'));
  fs.writeFileSync(path.join(dir, 'm.onnx'), bytes);
  return path.join(dir, 'm.onnx');
}

describe('cuda backend: Tile', function () {
  this.timeout(600_000);

  for (const c of CASES)
    it(`${c.name}: the reference agrees with onnxruntime; the strided copy, replayed, computes the same`, async () => {
      const model = spec(c.dtype, c.shape, c.repeats);
      const m = inferModel(model);
      assert.deepEqual(m.errors, []);
      const x = makeTensor(c.dtype, c.shape, values(c.shape));
      const [ours] = runGraph(m.graph, [x]);
      const session = await ort.InferenceSession.create(buildModel(model));
      const feed =
        c.dtype === 'int64'
          ? new ort.Tensor('int64', BigInt64Array.from(values(c.shape), BigInt), c.shape)
          : new ort.Tensor('float32', Float32Array.from(values(c.shape)), c.shape);
      const theirs = (await session.run({ in0: feed })).out0;
      assert.deepEqual(ours.shape, theirs.dims);
      assert.deepEqual(Array.from(numeric(ours)), Array.from(theirs.data as ArrayLike<number | bigint>, Number));

      // replay out[idx] = in[Σ idx_d · stride_d] over the view (kernels/tensor_ops.cuh strided copy)
      const view = tileView(c.shape, ours.shape, c.repeats);
      const inStrides = c.shape.map((_, d) => c.shape.slice(d + 1).reduce((a, b) => a * b, 1));
      const sizes = view.map((a) => a.size as number);
      const strides = view.map((a) => (a.inputAxis === undefined ? 0 : inStrides[a.inputAxis]));
      const total = sizes.reduce((a, b) => a * b, 1);
      assert.equal(
        total,
        ours.shape.reduce((a, b) => a * b, 1),
      );
      const data = numeric(x);
      const replayed: number[] = [];
      for (let flat = 0; flat < total; flat++) {
        let rest = flat;
        let src = 0;
        for (let d = sizes.length - 1; d >= 0; d--) {
          src += (rest % sizes[d]) * strides[d];
          rest = Math.floor(rest / sizes[d]);
        }
        replayed.push(data[src]);
      }
      assert.deepEqual(replayed, Array.from(numeric(ours)));
    });

  it('a copy of more than 6 axes is refused with the reason', () => {
    const { graph } = optimizeModel(write(buildModel(spec('float32', ['B', 2, 3, 4], [1, 2, 2, 2]))), {});
    const tile = graph.nodes.find((n) => n.op === 'Tile')!;
    const support = supportOf(graph, tile, 'cuda:sm90');
    assert.equal(support.supported, false);
    assert.match(support.reason ?? '', /^Tile needs a 7-axis copy/);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    for (const [name, model] of [
      ['[B,4,8] × [1,2,1]', spec('float32', ['B', 4, 8], [1, 2, 1])],
      ['int64 [B,1,5] × [1,4,2]', spec('int64', ['B', 1, 5], [1, 4, 2])],
    ] as const)
      it(`${name} compiles for ${target}; nvcc compiles model.cu`, () => {
        const file = write(buildModel(model));
        const { graph } = optimizeModel(file, {});
        for (const n of graph.nodes) {
          const support = supportOf(graph, n, target);
          assert.ok(support.supported, `${n.op}: ${support.reason}`);
        }
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-tile-out-'));
        const result = compileModel(file, { out: dir, target, maxBatch: 4 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        assert.match(fs.readFileSync(path.join(dir, 'src', 'model.cu'), 'utf8'), /launch_strided_copy/);
        if (haveNvcc())
          nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
      });
});
