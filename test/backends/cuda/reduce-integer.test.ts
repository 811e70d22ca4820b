/**
 * Reductions of integer and bool data on the CUDA backend (reduce.cuh with int64 accumulators; reduce-lowering.ts):
 * ReduceSum/Max/Min/Prod/SumSquare/L1 on int64 (values past fp32's 24 bits, so a float accumulator would be wrong),
 * ReduceSum/Min on int32, ReduceMax/Min on bool, over rows, columns and separate runs of axes. The op references
 * agree with onnxruntime; the kernels' index arithmetic with int64 accumulation (BigInt, wrapping as int64 does) is
 * replayed on what the code generator hands them and matches the interpreter; Mean/L2/LogSumExp of integers and Sum
 * of bools are refused with the reason; the model compiles for sm90 and sm80 and nvcc compiles model.cu. RetinaNet and
 * Mask R-CNN (../shared) no longer have a reduction refused.
 */
import { strict as assert } from 'node:assert';
import { isShapeComputation } from '../../../compiler/passes/cost';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CodegenContext, Unsupported } from '../../../compiler/backends/cuda/codegen/context';
import { REDUCE_OPS, reducePlan } from '../../../compiler/backends/cuda/codegen/reduce-lowering';
import { supportOf } from '../../../compiler/backends/support';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { runGraphNamed } from '../../../compiler/interpreter/interpreter';
import { DType } from '../../../compiler/ir/dtype';
import { TensorValue, makeTensor, numeric } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel, inferModel, tensor } from '../../helpers/onnx-builder';
import { SHARED_MODELS_DIR } from '../../helpers/models';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const B = 3;

/** name, op, input, axes, keepdims. */
const REDUCTIONS: [string, string, string, number[], number][] = [
  ['sum_cols', 'ReduceSum', 'a', [1], 0], // [B,6,5] over the middle axis: the column kernel
  ['max_rows', 'ReduceMax', 'a', [-1], 1], // the last axis: the row kernel
  ['min_strided', 'ReduceMin', 'a', [0, 2], 1], // separate runs: the strided kernel
  ['prod_rows', 'ReduceProd', 'p', [1], 1],
  ['sumsq_rows', 'ReduceSumSquare', 'c', [2], 0],
  ['l1_all', 'ReduceL1', 'c', [1, 2], 0],
  ['sum_i32', 'ReduceSum', 'i', [1], 0],
  ['min_i32', 'ReduceMin', 'i', [0], 0],
  ['any', 'ReduceMax', 'bl', [2], 0],
  ['all', 'ReduceMin', 'bl', [1], 1],
];

function reduceModel(): ModelSpec {
  return {
    opset: 20, // ReduceMax/ReduceMin of bool
    inputs: [
      { name: 'a', dtype: 'int64', dims: ['B', 6, 5] },
      { name: 'p', dtype: 'int64', dims: ['B', 4] },
      { name: 'c', dtype: 'int64', dims: ['B', 6, 5] },
      { name: 'i', dtype: 'int32', dims: ['B', 7] },
      { name: 'bl', dtype: 'bool', dims: ['B', 4, 3] },
    ],
    outputs: REDUCTIONS.map(([name]) => name),
    initializers: REDUCTIONS.map(([name, , , axes]) => ({ ...tensor('int64', [axes.length], axes), name: `${name}_axes` })),
    nodes: REDUCTIONS.map(([name, op, input, , keepdims]) => ({
      op,
      inputs: [input, `${name}_axes`],
      outputs: [name],
      attrs: { keepdims },
    })),
  };
}

const MODEL = reduceModel();

function inputValues(): TensorValue[] {
  const ints = (n: number, scale: number, mod: number) =>
    Array.from({ length: n }, (_, k) => ((k * 7919 + 13) % mod) * scale - ((mod - 1) * scale) / 2);
  return [
    makeTensor('int64', [B, 6, 5], ints(B * 30, 33_554_467, 97)), // up to ±1.6e9 (past 2^24), sums exact below 2^53
    makeTensor(
      'int64',
      [B, 4],
      ints(B * 4, 1, 7).map((v) => v || 2),
    ),
    makeTensor('int64', [B, 6, 5], ints(B * 30, 4099, 61)),
    makeTensor('int32', [B, 7], ints(B * 7, 1_000_003, 41)),
    makeTensor(
      'bool',
      [B, 4, 3],
      Array.from({ length: B * 12 }, (_, k) => (k % 5 === 0 || k % 7 === 3 ? 1 : 0)),
    ),
  ];
}

function ortTensor(t: TensorValue): ort.Tensor {
  const data = Array.from(numeric(t));
  if (t.dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(data.map(BigInt)), t.shape);
  if (t.dtype === 'int32') return new ort.Tensor('int32', Int32Array.from(data), t.shape);
  return new ort.Tensor('bool', Uint8Array.from(data), t.shape);
}

function write(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-reduce-int-'));
  const file = path.join(dir, 'reduce.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

/** A stored value of `dtype` from an int64 accumulator (reduce_store: static_cast). */
function storeAs(dtype: DType, acc: bigint): number {
  if (dtype === 'int32') return Number(BigInt.asIntN(32, acc));
  if (dtype === 'bool' || dtype === 'uint8') return Number(BigInt.asUintN(8, acc));
  return Number(BigInt.asIntN(64, acc));
}

/** reduce.cuh's int64 reduce_identity / reduce_step. */
function integerReducer(op: string): { init: bigint; step: (acc: bigint, v: bigint) => bigint } {
  const wrap = (v: bigint) => BigInt.asIntN(64, v);
  switch (REDUCE_OPS[op]) {
    case 'kMax':
      return { init: -(2n ** 63n), step: (a, v) => (v > a ? v : a) };
    case 'kMin':
      return { init: 2n ** 63n - 1n, step: (a, v) => (v < a ? v : a) };
    case 'kProd':
      return { init: 1n, step: (a, v) => wrap(a * v) };
    case 'kSumSquare':
      return { init: 0n, step: (a, v) => wrap(a + v * v) };
    case 'kL1':
      return { init: 0n, step: (a, v) => wrap(a + (v < 0n ? -v : v)) };
    default:
      return { init: 0n, step: (a, v) => wrap(a + v) };
  }
}

describe('cuda backend: reductions of integer and bool data', function () {
  this.timeout(600_000);

  it('the op references agree with onnxruntime', async () => {
    const m = inferModel(MODEL);
    assert.deepEqual(m.errors, []);
    const inputs = inputValues();
    const ours = runGraphNamed(m.graph, inputs);
    const session = await ort.InferenceSession.create(buildModel(MODEL));
    const theirs = await session.run(Object.fromEntries(MODEL.inputs.map((v, k) => [v.name, ortTensor(inputs[k])])));
    for (const [name] of REDUCTIONS) {
      const expected = theirs[name];
      assert.deepEqual(ours.get(name)!.shape, expected.dims, `${name} shape`);
      assert.deepEqual(
        Array.from(numeric(ours.get(name)!)),
        Array.from(expected.data as ArrayLike<number | bigint | boolean>, Number),
        name,
      );
    }
  });

  it('the kernels, replayed with int64 accumulation on the code generator view, compute the interpreter reductions', () => {
    const { graph } = optimizeModel(write(MODEL), {});
    const ctx = CodegenContext.forChecks(graph);
    const given = inputValues();
    const values = new Map<string, TensorValue>(graph.inputs.map((t, k) => [t, given[k]]));
    runGraphNamed(graph, given, { onNode: (_id, outputs) => outputs.forEach((v, t) => values.set(t, v)) });
    const reduces = graph.nodes.filter((n) => n.op in REDUCE_OPS);
    assert.equal(reduces.length, REDUCTIONS.length);
    const kinds = new Set<string>();
    for (const node of reduces) {
      const runs = reducePlan(ctx, node);
      const size = (r: { dims: unknown[] }) => r.dims.reduce<number>((p, d) => p * ctx.at(d as number, B), 1);
      const reducedRuns = runs.filter((r) => r.reduced).length;
      kinds.add(reducedRuns > 1 ? 'strided' : runs.length && !runs[runs.length - 1].reduced ? 'columns' : 'rows');
      const stride = runs.map((_, k) => runs.slice(k + 1).reduce((p, r) => p * size(r), 1));
      const kept = runs.map((r, k) => ({ r, k })).filter(({ r }) => !r.reduced);
      const red = runs.map((r, k) => ({ r, k })).filter(({ r }) => r.reduced);
      const outCount = kept.reduce((p, { r }) => p * size(r), 1);
      const count = red.reduce((p, { r }) => p * size(r), 1);
      const x = Array.from(numeric(values.get(node.inputs[0])!), (v) => BigInt(v));
      const { init, step } = integerReducer(node.op);
      const dtype = graph.tensor(node.outputs[0]).dtype!;
      // reduce_strided_kernel's arithmetic (the rows/columns kernels are the one-run case of it)
      const out: number[] = [];
      for (let i = 0; i < outCount; i++) {
        let rest = i;
        let base = 0;
        for (let d = kept.length - 1; d >= 0; d--) {
          base += (rest % size(kept[d].r)) * stride[kept[d].k];
          rest = Math.floor(rest / size(kept[d].r));
        }
        let acc = init;
        for (let r = 0; r < count; r++) {
          let rr = r;
          let offset = base;
          for (let d = red.length - 1; d >= 0; d--) {
            offset += (rr % size(red[d].r)) * stride[red[d].k];
            rr = Math.floor(rr / size(red[d].r));
          }
          acc = step(acc, x[offset]);
        }
        out.push(storeAs(dtype, acc));
      }
      assert.deepEqual(out, Array.from(numeric(values.get(node.outputs[0])!)), `${node.op} '${node.name}'`);
    }
    assert.deepEqual([...kinds].sort(), ['columns', 'rows', 'strided']);
  });

  it('refuses the reductions that have no exact integer form, naming why', () => {
    const refused = (op: string, dtype: DType) => {
      const spec: ModelSpec = {
        opset: 18,
        inputs: [{ name: 'x', dtype, dims: [4, 5] }],
        outputs: ['y'],
        initializers: [{ ...tensor('int64', [1], [1]), name: 'axes' }],
        nodes: [{ op, inputs: ['x', 'axes'], outputs: ['y'] }],
      };
      const { graph } = inferModel(spec);
      try {
        reducePlan(CodegenContext.forChecks(graph), graph.nodes[graph.nodes.length - 1]);
      } catch (e) {
        if (e instanceof Unsupported) return e.reason;
        throw e;
      }
      return undefined;
    };
    assert.match(refused('ReduceMean', 'int64') ?? '', /ReduceMean on int64 data \(integer reductions are Sum, Max, Min, Prod/);
    assert.match(refused('ReduceL2', 'int32') ?? '', /ReduceL2 on int32 data/);
    assert.match(refused('ReduceSum', 'bool') ?? '', /ReduceSum on bool data \(bool data reduces by ReduceMax\/ReduceMin\)/);
    assert.equal(refused('ReduceProd', 'int64'), undefined);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80']) {
    it(`compiles for ${target}: int64, int32 and uint8 reduce kernels; nvcc compiles model.cu`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-reduce-int-out-'));
      const result = compileModel(write(MODEL), { out: dir, target, maxBatch: 4 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const modelCu = fs.readFileSync(path.join(dir, 'src', 'model.cu'), 'utf8');
      for (const args of ['ReduceArgs<int64_t>', 'ReduceStridedArgs<int64_t>', 'ReduceArgs<int32_t>', 'ReduceArgs<uint8_t>'])
        assert.ok(modelCu.includes(args), `model.cu has ${args}`);
      const graphJson = JSON.parse(fs.readFileSync(path.join(dir, 'graph.json'), 'utf8')) as { nodes: { kernel?: { name: string } }[] };
      const kernels = graphJson.nodes.flatMap((n) => (n.kernel ? [n.kernel.name] : []));
      for (const name of ['ait_reduce_prod_int64', 'ait_reduce_sum_int32', 'ait_reduce_max_uint8'])
        assert.ok(kernels.includes(name), `${name} in ${kernels.join(', ')}`);
      if (haveNvcc())
        nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
    });
  }

  for (const [name, file] of [
    ['RetinaNet', path.join(SHARED_MODELS_DIR, 'zoo', 'retinanet_resnet50_fpn.onnx')],
    ['Mask R-CNN', path.join(SHARED_MODELS_DIR, 'maskrcnn_resnet50_fpn.onnx')],
  ])
    it(`${name}: every reduction lowers; its int64 ReduceMin/ReduceProd are shape arithmetic (no kernel)`, function () {
      if (!fs.existsSync(file)) {
        console.log(`    (skipped: ${file} not found; ../shared/models is only on developer machines and CI)`);
        this.skip();
      }
      const { graph } = optimizeModel(file, {});
      const reduces = graph.nodes.filter((n) => n.op in REDUCE_OPS);
      // the exporters' int64 reductions (ReduceMin([1000, count]), the product of a shape) fold to host expressions
      assert.deepEqual(
        reduces.filter((n) => graph.tensor(n.outputs[0]).dtype === 'int64' && !isShapeComputation(graph, n)).map((n) => n.name),
        [],
      );
      assert.deepEqual(
        reduces.flatMap((n) => {
          const support = supportOf(graph, n, 'cuda:sm90');
          return support.supported ? [] : [`${n.op} '${n.name}': ${support.reason}`];
        }),
        [],
      );
    });
});
