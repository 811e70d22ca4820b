/**
 * CumSum on CUDA (kernels/cumsum.cuh, codegen/cumsum-lowering.ts). The reference agrees with onnxruntime (float and
 * int64, exclusive and reverse, first/middle/last axis, negative axis); the kernel's index arithmetic (a line per
 * (outer, inner), walking the axis), replayed in TypeScript on the plan's view, computes what the reference computes;
 * the models compile for sm90 and sm80 and nvcc compiles model.cu; a run-time axis is refused.
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

const CASES: { name: string; dtype: DType; shape: number[]; axis: number; exclusive?: number; reverse?: number }[] = [
  { name: 'int64 position ids over the last axis', dtype: 'int64', shape: [2, 7], axis: -1 },
  { name: 'float, middle axis, exclusive', dtype: 'float32', shape: [2, 5, 3], axis: 1, exclusive: 1 },
  { name: 'float, first axis, reverse', dtype: 'float32', shape: [4, 3, 2], axis: 0, reverse: 1 },
  { name: 'int64, exclusive and reverse', dtype: 'int64', shape: [3, 6], axis: 1, exclusive: 1, reverse: 1 },
];

const spec = (dtype: DType, dims: (number | string)[], axis: number, exclusive = 0, reverse = 0): ModelSpec =>
  nodeModel('CumSum', [input(dtype, dims), tensor('int64', [], [axis])], { attrs: { exclusive, reverse } });

function write(model: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-cumsum-'));
  fs.writeFileSync(path.join(dir, 'm.onnx'), buildModel(model));
  return path.join(dir, 'm.onnx');
}

/** cumsum_kernel's loops: line → (o, q), base = o·length·inner + q, element k at base + k'·inner. */
function replay(data: number[], outer: number, length: number, inner: number, exclusive: boolean, reverse: boolean): number[] {
  const out = new Array<number>(data.length).fill(NaN);
  for (let line = 0; line < outer * inner; line++) {
    const o = Math.floor(line / inner);
    const q = line - o * inner;
    const base = o * length * inner + q;
    let acc = 0;
    for (let k = 0; k < length; k++) {
      const at = base + (reverse ? length - 1 - k : k) * inner;
      if (exclusive) {
        out[at] = acc;
        acc += data[at];
      } else {
        acc += data[at];
        out[at] = acc;
      }
    }
  }
  return out;
}

describe('cuda backend: CumSum', function () {
  this.timeout(600_000);

  for (const c of CASES)
    it(`${c.name}: the reference agrees with onnxruntime; the kernel's loops, replayed, compute the same`, async () => {
      const model = spec(c.dtype, c.shape, c.axis, c.exclusive, c.reverse);
      const m = inferModel(model);
      assert.deepEqual(m.errors, []);
      const n = c.shape.reduce((a, b) => a * b, 1);
      const data = Array.from({ length: n }, (_, i) => (c.dtype === 'int64' ? ((i * 7) % 3 === 0 ? 0 : 1) : ((i * 37) % 11) - 5));
      const x = makeTensor(c.dtype, c.shape, data);
      const [ours] = runGraph(m.graph, [x]);
      const session = await ort.InferenceSession.create(buildModel(model));
      const feed =
        c.dtype === 'int64'
          ? new ort.Tensor('int64', BigInt64Array.from(data, BigInt), c.shape)
          : new ort.Tensor('float32', Float32Array.from(data), c.shape);
      const theirs = (await session.run({ in0: feed })).out0;
      const ref = Array.from(numeric(ours));
      assert.deepEqual(ref, Array.from(theirs.data as ArrayLike<number | bigint>, Number));
      const axis = c.axis < 0 ? c.axis + c.shape.length : c.axis;
      const prod = (d: number[]) => d.reduce((a, b) => a * b, 1);
      const got = replay(data, prod(c.shape.slice(0, axis)), c.shape[axis], prod(c.shape.slice(axis + 1)), !!c.exclusive, !!c.reverse);
      assert.deepEqual(got, ref);
    });

  it('an axis computed at run time is refused', () => {
    const model: ModelSpec = {
      inputs: [
        { name: 'x', dtype: 'float32', dims: ['B', 4] },
        { name: 'axis', dtype: 'int64', dims: [] },
      ],
      nodes: [{ op: 'CumSum', inputs: ['x', 'axis'], outputs: ['y'] }],
      outputs: ['y'],
    };
    const { graph } = optimizeModel(write(model), {});
    const node = graph.nodes.find((n) => n.op === 'CumSum')!;
    const support = supportOf(graph, node, 'cuda:sm90');
    assert.equal(support.supported, false);
    assert.match(support.reason ?? '', /run time/);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    for (const [name, model] of [
      ['int64 [B,16] position ids', spec('int64', ['B', 16], 1)],
      ['float [B,5,3] axis 1 exclusive reverse', spec('float32', ['B', 5, 3], 1, 1, 1)],
    ] as const)
      it(`${name} compiles for ${target}; nvcc compiles model.cu`, () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-cumsum-out-'));
        const result = compileModel(write(model), { out: dir, target, maxBatch: 4 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        assert.match(fs.readFileSync(path.join(dir, 'src', 'model.cu'), 'utf8'), /launch_cumsum\(args, c\.stream\)/);
        if (haveNvcc())
          nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
      });
});
