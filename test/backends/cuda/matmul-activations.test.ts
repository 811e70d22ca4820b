/**
 * MatMul and Gemm with B a run-time activation on the CUDA backend: the batched-GEMM path (batched-gemm.ts) now takes
 * every broadcast ONNX allows, 1-D operands, and a Gemm's activation B (trans_b read column-major). The reference
 * MatMul/Gemm agree with onnxruntime-node on each form; without a GPU the lowering's plan is replayed in TypeScript —
 * the strided copies that expand a broadcast operand into packed [L, rows, cols] (expansionCopy), then L packed GEMMs
 * in B's layout — and compared with the interpreter on the original model; a model with these forms compiles for
 * sm90 and sm80 with every node lowered, and nvcc compiles its model.cu (AIT_TEST_CUTLASS=1: and its CUTLASS instances).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { absorbedTransposes, analyzeBatchedMatMul, expansionCopy } from '../../../compiler/backends/cuda/codegen/batched-gemm';
import { supportOf } from '../../../compiler/backends/support';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { Dim } from '../../../compiler/ir/symbolic';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';
import { nvccCompileCutlass, nvccCompileGenerated, requireCutlassOptIn, requireNvcc, GPU_TARGETS } from '../../helpers/nvcc';

interface Case {
  name: string;
  spec: ModelSpec;
  /** Expected expansions (which operands are copied first). */
  expand: string;
}

const inputs = (shapes: Record<string, number[]>) =>
  Object.entries(shapes).map(([name, dims]) => ({ name, dtype: 'float32' as const, dims }));

const matmul = (a: number[], b: number[]): ModelSpec => ({
  inputs: inputs({ a, b }),
  nodes: [{ op: 'MatMul', name: 'mm', inputs: ['a', 'b'], outputs: ['y'] }],
  outputs: ['y'],
});

const CASES: Case[] = [
  { name: 'A [16,32] broadcast over B [3,32,24]', spec: matmul([16, 32], [3, 32, 24]), expand: 'a' },
  { name: 'A [1,16,32] broadcast over B [4,32,24]', spec: matmul([1, 16, 32], [4, 32, 24]), expand: 'a' },
  { name: 'B [1,4,32,24] broadcast over a leading dim of A [3,4,16,32]', spec: matmul([3, 4, 16, 32], [1, 4, 32, 24]), expand: 'b' },
  { name: 'both broadcast: A [2,1,16,32] × B [1,3,32,24]', spec: matmul([2, 1, 16, 32], [1, 3, 32, 24]), expand: 'ab' },
  { name: 'A 1-D [32] × B [3,32,24]', spec: matmul([32], [3, 32, 24]), expand: 'a' },
  { name: 'A [3,16,32] × B 1-D [32]', spec: matmul([3, 16, 32], [32]), expand: '' },
  { name: 'A [16,32] × B [32,24], 2-D activations', spec: matmul([16, 32], [32, 24]), expand: '' },
  {
    name: 'B column-major from an absorbed Transpose, broadcast over A [3,4,16,32]',
    spec: {
      inputs: inputs({ a: [3, 4, 16, 32], k: [1, 4, 24, 32] }),
      nodes: [
        { op: 'Transpose', name: 'kT', inputs: ['k'], outputs: ['b'], attrs: { perm: [0, 1, 3, 2] } },
        { op: 'MatMul', name: 'mm', inputs: ['a', 'b'], outputs: ['y'] },
      ],
      outputs: ['y'],
    },
    expand: 'b',
  },
  {
    name: 'Gemm of activations with a constant bias',
    spec: {
      inputs: inputs({ a: [16, 32], b: [32, 24] }),
      initializers: [
        {
          ...tensor(
            'float32',
            [24],
            Array.from({ length: 24 }, (_, i) => i / 10 - 1),
          ),
          name: 'c',
        },
      ],
      nodes: [{ op: 'Gemm', name: 'mm', inputs: ['a', 'b', 'c'], outputs: ['y'] }],
      outputs: ['y'],
    },
    expand: '',
  },
  {
    name: 'Gemm of activations, transB (B [N,K] read column-major)',
    spec: {
      inputs: inputs({ a: [16, 32], b: [24, 32] }),
      nodes: [{ op: 'Gemm', name: 'mm', inputs: ['a', 'b'], outputs: ['y'], attrs: { transB: 1 } }],
      outputs: ['y'],
    },
    expand: '',
  },
];

function randomInputs(spec: ModelSpec, seed: number): TensorValue[] {
  const random = seededRandom(seed);
  return spec.inputs.map((i) => {
    const dims = i.dims as number[];
    return makeTensor(
      'float32',
      dims,
      Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1),
    );
  });
}

const value = (d: Dim) => d as number;
const product = (dims: readonly Dim[]) => dims.reduce<number>((p, d) => p * value(d), 1);

/** launch_strided_copy replayed: out[i] = in[Σ idx_d · stride_d]. */
function stridedCopy(input: ArrayLike<number>, shape: number[], strides: number[]): Float64Array {
  const out = new Float64Array(product(shape));
  for (let i = 0; i < out.length; i++) {
    let rest = i;
    let source = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      source += (rest % shape[d]) * strides[d];
      rest = Math.floor(rest / shape[d]);
    }
    out[i] = input[source];
  }
  return out;
}

describe('cuda backend: MatMul and Gemm with B an activation', function () {
  this.timeout(600_000);

  describe('the reference agrees with onnxruntime', () => {
    for (const k of CASES)
      it(k.name, async () => {
        const given = randomInputs(k.spec, 3);
        const model = importOnnxBytes(buildModel(k.spec));
        inferShapes(model.graph);
        const [ours] = runGraph(model.graph, given);
        const session = await ort.InferenceSession.create(buildModel(k.spec), { logSeverityLevel: 3 });
        const feeds: Record<string, ort.Tensor> = {};
        given.forEach((t, i) => (feeds[k.spec.inputs[i].name] = new ort.Tensor('float32', Float32Array.from(numeric(t)), t.shape)));
        const theirs = (await session.run(feeds)).y;
        assert.deepEqual(ours.shape, [...theirs.dims]);
        const expected = theirs.data as Float32Array;
        const actual = numeric(ours);
        for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) <= 1e-4, `element ${i}`);
      });
  });

  describe('the lowering (expansion copies, then packed GEMMs in B layout) replayed computes the original', () => {
    for (const k of CASES)
      it(k.name, () => {
        const { graph, context } = optimizeImported(importOnnxBytes(buildModel(k.spec)), 'mm.onnx');
        assert.deepEqual(
          context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        for (const node of graph.nodes) assert.equal(supportOf(graph, node, 'cuda:sm90').reason, undefined, `${node.op} lowers`);
        const node = graph.nodes.find((n) => n.op === 'MatMul' || n.op === 'gemm')!;
        const absorbed = absorbedTransposes(graph);
        const mm = analyzeBatchedMatMul(node, (t) => graph.tensor(t).shape!, absorbed);
        assert.equal(`${mm.expand.a ? 'a' : ''}${mm.expand.b ? 'b' : ''}`, k.expand, mm.description);

        const given = randomInputs(k.spec, 9);
        const original = importOnnxBytes(buildModel(k.spec));
        inferShapes(original.graph);
        const [expected] = runGraph(original.graph, given);
        const byName = new Map(k.spec.inputs.map((input, i) => [input.name, numeric(given[i])]));
        const operand = (which: 'a' | 'b', tensor: string) => {
          const data = byName.get(tensor)!;
          const e = mm.expand[which];
          if (!e) return data;
          const copy = expansionCopy(mm.batch, e);
          return stridedCopy(
            data,
            copy.shape.map(value),
            copy.strides.map((dims) => (dims ? product(dims) : 0)),
          );
        };
        const a = operand('a', mm.a);
        const b = operand('b', mm.b);
        const [L, M, N, K] = [product(mm.batch), product(mm.m), mm.n as number, mm.k as number];
        const d = new Float64Array(L * M * N);
        for (let l = 0; l < L; l++)
          for (let m = 0; m < M; m++)
            for (let n = 0; n < N; n++) {
              let acc = 0;
              for (let q = 0; q < K; q++) {
                const bAt = mm.layoutB === 'row' ? (l * K + q) * N + n : (l * N + n) * K + q;
                acc += a[(l * M + m) * K + q] * b[bAt];
              }
              d[(l * M + m) * N + n] = acc;
            }
        // the interpreter rounds to float32; the bias of the Gemm case is the fused epilogue's (a row added to every output row)
        const bias = node.op === 'gemm' && node.inputs[2] ? numeric(graph.tensor(node.inputs[2]).value!) : undefined;
        const want = numeric(expected);
        assert.equal(d.length, want.length);
        for (let i = 0; i < want.length; i++) {
          const got = d[i] + (bias ? bias[i % N] : 0);
          assert.ok(Math.abs(got - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `element ${i}: ${got}, expected ${want[i]}`);
        }
      });
  });

  /** y1 = x [16,32] · s [B,32,24] (A broadcast); y2 = Gemm(x, t [32,8], transB 0) (activation B). */
  function model(): ModelSpec {
    return {
      inputs: [
        { name: 'x', dtype: 'float32', dims: [16, 32] },
        { name: 's', dtype: 'float32', dims: ['B', 32, 24] },
        { name: 't', dtype: 'float32', dims: [24, 32] },
      ],
      nodes: [
        { op: 'MatMul', name: 'broadcast_a', inputs: ['x', 's'], outputs: ['y1'] },
        { op: 'Gemm', name: 'gemm_b', inputs: ['x', 't'], outputs: ['y2'], attrs: { transB: 1 } },
      ],
      outputs: ['y1', 'y2'],
    };
  }

  function compile(target: string) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-mm-act-'));
    const file = path.join(dir, 'mm.onnx');
    fs.writeFileSync(file, buildModel(model()));
    const out = path.join(dir, 'out');
    return { out, result: compileModel(file, { out, target, maxBatch: 8 }) };
  }

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: compiles with every node lowered: A expanded into the workspace, the Gemm as a batched GEMM of 1`, () => {
      const { out, result } = compile(target);
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: {
          name: string;
          status?: { supported: boolean };
          kernel?: { name: string; reason: string; config: Record<string, unknown> };
        }[];
      };
      assert.deepEqual(
        graph.nodes.filter((n) => n.status?.supported === false).map((n) => n.name),
        [],
      );
      const broadcast = graph.nodes.find((n) => n.name === 'broadcast_a')!;
      assert.match(broadcast.kernel!.reason, /batch B.*A broadcast over the other's batch dims: expanded into the workspace first/);
      assert.equal(broadcast.kernel!.config.layoutB, 'row');
      const gemm = graph.nodes.find((n) => n.name === 'gemm_b')!;
      assert.match(gemm.kernel!.reason, /batched GEMM L=1 M=16 N=24 K=32 \(no batch, B column-major \(trans_b\)\)/);
      assert.equal(gemm.kernel!.config.layoutB, 'column');
      const source = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      // A [16,32] copied to [batch,16,32] with a zero batch stride, then read as the GEMM's A
      assert.match(source, /StridedCopyArgs<__half> args\{[^,]+, expanded_a, 3,\n\s+\{batch, 16, 32\},\n\s+\{0, 32, 1\}, 0\};/);
      assert.match(source, /AitBatchedGemmArgs gemm\{static_cast<int>\(batch\), static_cast<int>\(16\), 24, 32, expanded_a,/);
    });

  // Opt-in (AIT_TEST_CUTLASS=1, minutes per instance): the CUTLASS instances these forms emit (batched, row- and
  // column-major B: 3.x TMA warp-specialized on sm90, 2.x GemmUniversal kBatched on sm80) compile against CUTLASS.
  describe('the emitted batched CUTLASS instances compile with nvcc (AIT_TEST_CUTLASS=1)', function () {
    before(requireCutlassOptIn);
    for (const [target, arch] of [
      ['cuda:sm90', '-gencode=arch=compute_90a,code=sm_90a'],
      ['cuda:sm80', '-gencode=arch=compute_80,code=sm_80'],
    ])
      it(target, function () {
        this.timeout(3_600_000);
        const { out, result } = compile(target);
        assert.ok(result.ok);
        const src = path.join(out, 'src');
        const sources = fs.readdirSync(src).filter((f) => /^gemm_\d+\.cu$/.test(f));
        assert.equal(sources.length, 2, sources.join(', '));
        for (const f of sources) nvccCompileCutlass(path.join(src, f), arch, [src, path.join(src, 'runtime'), path.join(src, 'kernels')]);
      });
  });

  describe('nvcc compiles the generated model.cu for sm_80 and sm_90a', function () {
    before(function () {
      requireNvcc(this);
    });
    for (const [target, arch] of GPU_TARGETS)
      it(target, () => {
        const { out, result } = compile(target);
        assert.ok(result.ok);
        nvccCompileGenerated(out, ['src/model.cu'], arch);
      });
  });
});
