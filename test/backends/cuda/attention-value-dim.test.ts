/**
 * Attention whose values have a head dim of their own, q, k and v split per head out of one projection (LeViT,
 * EfficientFormer): x → Linear → Reshape [B,N,H,D+D+Dv] → Split(last axis) → transposes → q·kᵀ·scale + a learned
 * [H,N,N] bias → softmax → ·v → [B,N,H·Dv]; LeViT's subsampling attention (q from a Linear of the subsampled tokens
 * given as rows [B·Nq, H·D], k and v split per head out of [B,N,H,D+Dv]); and separate q, k, v Linears with Dv ≠ D.
 * The fusion takes them into one attention op (value_head_dim, per_head); the interpreter's result on the fused graph
 * equals onnxruntime's on the original model; the CUDA lowering passes the value head dim and head strides; model.cu
 * compiles with nvcc; ROCm's CK attention refuses the form with its reason. Such a node runs attention.cuh's
 * tensor-core kernel at the padded max(D, Dv) where its rows are 8-byte aligned (graph.json's reason says which), and
 * otherwise its CUDA-core kernel at two padded dims of its own (launch_attention_dims: q·k at the padded D, p·v at
 * the padded Dv): the
 * padding matches the header's, and the kernel's tile loads, Q·Kᵀ, online softmax and P·V at those dims, replayed in
 * TypeScript on the operands the lowering hands it, equal the interpreter. The GPU numerics of the kernel are
 * attention_check.cu's check_attention_value_dim.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import '../../../compiler/ops';
import { ATTENTION_HEAD_DIMS, attentionPaddedCudaCoreDim, attentionPaddedHeadDim } from '../../../compiler/backends/cuda/codegen/lower';
import { optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { Graph, Node } from '../../../compiler/ir/graph';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { attentionOperands, attentionQkvInputs, attentionValueHeadDim } from '../../../compiler/ops/fused';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { attentionOf, compileTo, fuseAndCompare } from '../../helpers/attention-fusion';
import { ModelSpec, NodeSpec, TensorSpec, buildModel } from '../../helpers/onnx-builder';
import { GPU_TARGETS, KERNELS_DIR, haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const rand = seededRandom(23);
const randomValues = (n: number, scale = 1) => Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
const weight = (name: string, dims: number[], scale?: number): TensorSpec & { name: string } => ({
  name,
  dtype: 'float32',
  dims,
  values: randomValues(
    dims.reduce((a, b) => a * b, 1),
    scale ?? 1 / Math.sqrt(dims[0]),
  ),
});
const ints = (name: string, values: number[]): TensorSpec & { name: string } => ({ name, dtype: 'int64', dims: [values.length], values });
const scalar = (name: string, value: number): TensorSpec & { name: string } => ({ name, dtype: 'float32', dims: [], values: [value] });

/** Scores → (+ bias) → Softmax → ·v → heads merged [B,S,H·Dv] → output Linear (y). */
const tail = (bias: boolean): NodeSpec[] => [
  { op: 'MatMul', inputs: ['q_h', 'k_h'], outputs: ['qk'] },
  { op: 'Mul', inputs: ['qk', 'scale'], outputs: [bias ? 'qk_s' : 'scores'] },
  ...(bias ? [{ op: 'Add', inputs: ['qk_s', 'ab'], outputs: ['scores'] }] : []),
  { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
  { op: 'MatMul', inputs: ['probs', 'v_h'], outputs: ['o'] },
  { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
  { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['m'] },
  { op: 'MatMul', inputs: ['m', 'wo'], outputs: ['y'] },
];

/**
 * LeViT's attention over N tokens (H heads, q and k of D dims, v of DV): qkv = Linear(x) → Reshape [B,N,H,2D+DV]
 * → Split on the last axis → q, k, v transposed to [B,H,N,·] (k to [B,H,D,N]); scores scaled, plus a learned [H,N,N]
 * bias. `rows`: the Linear runs over rows [B·N, C] (as LeViT's BatchNorm'd Linear), so the head split reshapes
 * [B·N, H·(2D+DV)].
 */
function levitBlock(N: number, H: number, D: number, DV: number, rows = false): ModelSpec {
  const C = 2 * H * D;
  const W = 2 * D + DV;
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', N, C] }],
    outputs: ['y'],
    initializers: [
      weight('wqkv', [C, H * W]),
      weight('bqkv', [H * W], 0.1),
      weight('wo', [H * DV, C]),
      weight('ab', [H, N, N], 1),
      ints('rows_shape', [-1, C]),
      ints('heads_shape', rows ? [-1, N, H, W] : [0, N, H, W]),
      ints('split', [D, D, DV]),
      ints('merge_shape', [0, N, H * DV]),
      scalar('scale', D ** -0.5),
    ],
    nodes: [
      ...(rows
        ? [
            { op: 'Reshape', inputs: ['x', 'rows_shape'], outputs: ['x_rows'] },
            { op: 'MatMul', inputs: ['x_rows', 'wqkv'], outputs: ['qkv0'] },
          ]
        : [{ op: 'MatMul', inputs: ['x', 'wqkv'], outputs: ['qkv0'] }]),
      { op: 'Add', inputs: ['qkv0', 'bqkv'], outputs: ['qkv'] },
      { op: 'Reshape', inputs: ['qkv', 'heads_shape'], outputs: ['qkv4'] },
      { op: 'Split', inputs: ['qkv4', 'split'], outputs: ['q4', 'k4', 'v4'], attrs: { axis: 3 } },
      { op: 'Transpose', inputs: ['q4'], outputs: ['q_h'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Transpose', inputs: ['k4'], outputs: ['k_h'], attrs: { perm: [0, 2, 3, 1] } },
      { op: 'Transpose', inputs: ['v4'], outputs: ['v_h'], attrs: { perm: [0, 2, 1, 3] } },
      ...tail(true),
    ],
  };
}

/**
 * LeViT's subsampling attention: keys and values from x [B,N,C] (kv = Linear(x) → Reshape [B,N,H,D+DV] → Split),
 * queries from xq [B,NQ,C] (the subsampled tokens) as rows [B·NQ, H·D] → Reshape [B,NQ,H,D]; a learned [H,NQ,N] bias.
 */
function levitSubsample(N: number, NQ: number, H: number, D: number, DV: number): ModelSpec {
  const C = 2 * H * D;
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', N, C] },
      { name: 'xq', dtype: 'float32', dims: ['B', NQ, C] },
    ],
    outputs: ['y'],
    initializers: [
      weight('wkv', [C, H * (D + DV)]),
      weight('wq', [C, H * D]),
      weight('wo', [H * DV, C]),
      weight('ab', [H, NQ, N], 1),
      ints('rows_shape', [-1, C]),
      ints('kv_shape', [0, N, H, D + DV]),
      ints('q_shape', [-1, NQ, H, D]),
      ints('split', [D, DV]),
      ints('merge_shape', [0, NQ, H * DV]),
      scalar('scale', D ** -0.5),
    ],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'wkv'], outputs: ['kv'] },
      { op: 'Reshape', inputs: ['kv', 'kv_shape'], outputs: ['kv4'] },
      { op: 'Split', inputs: ['kv4', 'split'], outputs: ['k4', 'v4'], attrs: { axis: -1 } },
      { op: 'Transpose', inputs: ['k4'], outputs: ['k_h'], attrs: { perm: [0, 2, 3, 1] } },
      { op: 'Transpose', inputs: ['v4'], outputs: ['v_h'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', inputs: ['xq', 'rows_shape'], outputs: ['xq_rows'] },
      { op: 'MatMul', inputs: ['xq_rows', 'wq'], outputs: ['q_rows'] },
      { op: 'Reshape', inputs: ['q_rows', 'q_shape'], outputs: ['q4'] },
      { op: 'Transpose', inputs: ['q4'], outputs: ['q_h'], attrs: { perm: [0, 2, 1, 3] } },
      ...tail(true),
    ],
  };
}

/** Separate q, k (H·D) and v (H·DV) Linears of x [B,N,C], each Reshape [B,N,H,·] → Transpose; no bias. */
function separateBlock(N: number, H: number, D: number, DV: number): ModelSpec {
  const C = 2 * H * D;
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', N, C] }],
    outputs: ['y'],
    initializers: [
      weight('wq', [C, H * D]),
      weight('wk', [C, H * D]),
      weight('wv', [C, H * DV]),
      weight('wo', [H * DV, C]),
      ints('qk_shape', [0, N, H, D]),
      ints('v_shape', [0, N, H, DV]),
      ints('merge_shape', [0, N, H * DV]),
      scalar('scale', D ** -0.5),
    ],
    nodes: [
      ...(
        [
          ['q', 'qk_shape', [0, 2, 1, 3]],
          ['k', 'qk_shape', [0, 2, 3, 1]],
          ['v', 'v_shape', [0, 2, 1, 3]],
        ] as [string, string, number[]][]
      ).flatMap(([t, shape, perm]) => [
        { op: 'MatMul', inputs: ['x', `w${t}`], outputs: [`${t}_lin`] },
        { op: 'Reshape', inputs: [`${t}_lin`, shape], outputs: [`${t}_4`] },
        { op: 'Transpose', inputs: [`${t}_4`], outputs: [`${t}_h`], attrs: { perm } },
      ]),
      ...tail(false),
    ],
  };
}

/** The attention node's input tensors and its output, as the interpreter computes them on `g` for `inputs`. */
function attentionValues(g: Graph, node: Node, inputs: TensorValue[]): { args: TensorValue[]; output: TensorValue } {
  const values = new Map<string, TensorValue>();
  g.inputs.forEach((name, i) => values.set(name, inputs[i]));
  runGraph(g, inputs, { onNode: (_id, produced) => produced.forEach((v, name) => values.set(name, v)) });
  const value = (name: string) => values.get(name) ?? g.tensor(name).value!;
  return { args: node.inputs.map(value), output: value(node.outputs[0]) };
}

/**
 * attention.cuh's attention_kernel<T, kQKDim, kVDim, kMasked> replayed on the operands the CUDA lowering passes it
 * (attentionOperands; biases as its AttentionBias strides): per (batch, head, 64-query block), 64 threads load each
 * key tile into k_tile[keys][kQKDim] and v_tile[keys][kVDim] through rows of the wider one (16-byte vectors of 8
 * halves or single elements), every element of both written exactly once (zeros past D, Dv and the keys); a thread's
 * q holds kQKDim dims, Q·Kᵀ runs over kQKDim, the softmax is online per 16-key chunk in base 2, P·V accumulates
 * kVDim dims, and dims < Dv are stored. Returns the output [B, S, H·Dv].
 */
function replayAttentionKernel(node: Node, args: TensorValue[], kQKDim: number, kVDim: number): Float64Array {
  const heads = node.attrs.num_heads.value as number;
  const D = node.attrs.head_dim.value as number;
  const DV = attentionValueHeadDim(node);
  const scale = (node.attrs.scale?.value as number | undefined) ?? 1 / Math.sqrt(D);
  const first = attentionQkvInputs(node);
  const [q, k, v] = attentionOperands(node).map((o) => ({ data: numeric(args[o.input]), ...o }));
  const [B, S] = args[0].shape;
  const SK = args[first - 1].shape[1];
  const biases = args.slice(first).map((t) => {
    // as the lowering: [Bk, 1|H, 1|S, 1|Sk], a size-1 axis broadcasts (stride 0), batch b reads b % Bk
    const [bk, bh, bq, bkey] = t.shape;
    return {
      data: numeric(t),
      modulo: bk,
      batch: bh * bq * bkey,
      head: bh === 1 ? 0 : bq * bkey,
      query: bq === 1 ? 0 : bkey === 1 ? 1 : bkey,
      key: bkey === 1 ? 0 : 1,
    };
  });
  const V = 8; // Vec16<__half>::kElements
  const vectorLoads = [D, DV, k.tokenStride, v.tokenStride, k.headStride, v.headStride, k.offset, v.offset].every((x) => x % V === 0);
  const kRowDim = Math.max(kQKDim, kVDim);
  const kTileKeys = [64, 32].find((keys) => keys * (kQKDim + kVDim) * 2 <= 48 * 1024) ?? 16;
  const log2e = 1.4426950408889634;
  const out = new Float64Array(B * S * heads * DV);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++)
      for (let blockStart = 0; blockStart < S; blockStart += 64) {
        const rows = Array.from({ length: 64 }, (_, t) => {
          const s = blockStart + t;
          const qBase = q.offset + b * S * q.tokenStride + h * q.headStride + s * q.tokenStride;
          return {
            s,
            q: Array.from({ length: kQKDim }, (_, d) => (s < S && d < D ? q.data[qBase + d] * scale * log2e : 0)),
            acc: new Float64Array(kVDim),
            max: -Infinity,
            sum: 0,
          };
        });
        for (let tileStart = 0; tileStart < SK; tileStart += kTileKeys) {
          const keys = Math.min(kTileKeys, SK - tileStart);
          const kTile = new Float64Array(kTileKeys * kQKDim).fill(NaN);
          const vTile = new Float64Array(kTileKeys * kVDim).fill(NaN);
          const kBase = k.offset + b * SK * k.tokenStride + h * k.headStride;
          const vBase = v.offset + b * SK * v.tokenStride + h * v.headStride;
          const width = vectorLoads ? V : 1;
          const perRow = kRowDim / width;
          for (let thread = 0; thread < 64; thread++)
            for (let i = thread; i < kTileKeys * perRow; i += 64) {
              const row = Math.floor(i / perRow);
              const col = (i % perRow) * width;
              for (let e = 0; e < width; e++) {
                const key = tileStart + row;
                // a vector is loaded whole when its first element is in the head dim (D and Dv are multiples of V)
                if (col < kQKDim) {
                  assert.ok(Number.isNaN(kTile[row * kQKDim + col + e]), `k_tile[${row}][${col + e}] written twice`);
                  kTile[row * kQKDim + col + e] = row < keys && col < D ? k.data[kBase + key * k.tokenStride + col + e] : 0;
                }
                if (col < kVDim) {
                  assert.ok(Number.isNaN(vTile[row * kVDim + col + e]), `v_tile[${row}][${col + e}] written twice`);
                  vTile[row * kVDim + col + e] = row < keys && col < DV ? v.data[vBase + key * v.tokenStride + col + e] : 0;
                }
              }
            }
          assert.ok(!kTile.some(Number.isNaN) && !vTile.some(Number.isNaN), 'a tile element left unwritten');
          for (const r of rows)
            for (let chunk = 0; chunk < keys; chunk += 16) {
              const scores = Array.from({ length: 16 }, (_, j) => {
                if (chunk + j >= keys) return -Infinity;
                let dot = 0;
                for (let d = 0; d < kQKDim; d++) dot += r.q[d] * kTile[(chunk + j) * kQKDim + d];
                if (r.s < S)
                  for (const p of biases)
                    dot += p.data[(b % p.modulo) * p.batch + h * p.head + r.s * p.query + (tileStart + chunk + j) * p.key] * log2e;
                return dot;
              });
              const newMax = Math.max(r.max, ...scores);
              const correction = 2 ** (r.max - newMax);
              r.sum *= correction;
              for (let d = 0; d < kVDim; d++) r.acc[d] *= correction;
              scores.forEach((score, j) => {
                const p = 2 ** (score - newMax);
                r.sum += p;
                for (let d = 0; d < kVDim; d++) r.acc[d] += p * vTile[(chunk + j) * kVDim + d];
              });
              r.max = newMax;
            }
        }
        for (const r of rows)
          if (r.s < S) for (let d = 0; d < kVDim; d++) if (d < DV) out[(b * S + r.s) * heads * DV + h * DV + d] = r.acc[d] / r.sum;
      }
  return out;
}

describe('attention with a value head dim of its own (LeViT, EfficientFormer)', function () {
  this.timeout(900_000);

  for (const rows of [false, true]) {
    it(`LeViT attention (q, k, v split per head${rows ? ' out of [B·N, ·] rows' : ''}, D 4, Dv 8, [H,N,N] bias): one per-head packed attention equal to onnxruntime`, async () => {
      const [N, H, D, DV] = [10, 2, 4, 8];
      const g = await fuseAndCompare(levitBlock(N, H, D, DV, rows), { x: [2, N, 2 * H * D] }, randomValues);
      const att = attentionOf(g, ['Softmax', 'MatMul', 'Split']);
      assert.equal(att.attrs.layout, undefined); // packed
      assert.equal(att.attrs.per_head.value, 1);
      assert.equal(att.attrs.head_dim.value, D);
      assert.equal(att.attrs.value_head_dim.value, DV);
      assert.deepEqual(g.tensor(att.inputs[0]).shape!.map(String), ['B', String(N), String(H * (2 * D + DV))]);
      assert.deepEqual(g.tensor(att.inputs[1]).shape, [1, H, N, N]);
      assert.deepEqual(g.tensor(att.outputs[0]).shape!.map(String), ['B', String(N), String(H * DV)]);
      assert.ok(Math.abs((att.attrs.scale.value as number) - D ** -0.5) < 1e-6);
    });
  }

  it('LeViT subsampling attention (q rows [B·Nq, H·D], k and v split per head, 6 queries, 12 keys): kv_packed per-head attention equal to onnxruntime', async () => {
    const [N, NQ, H, D, DV] = [12, 6, 2, 4, 16];
    const g = await fuseAndCompare(levitSubsample(N, NQ, H, D, DV), { x: [2, N, 2 * H * D], xq: [2, NQ, 2 * H * D] }, randomValues);
    const att = attentionOf(g, ['Softmax', 'MatMul', 'Split']);
    assert.equal(att.attrs.layout.value, 'kv_packed');
    assert.equal(att.attrs.per_head.value, 1);
    assert.equal(att.attrs.value_head_dim.value, DV);
    assert.deepEqual(
      att.inputs.slice(0, 2).map((t) => g.tensor(t).shape!.map(String)),
      [
        ['B', String(NQ), String(H * D)],
        ['B', String(N), String(H * (D + DV))],
      ],
    );
  });

  it('separate q, k, v Linears with Dv ≠ D: separate attention equal to onnxruntime', async () => {
    const g = await fuseAndCompare(separateBlock(9, 3, 4, 12), { x: [2, 9, 24] }, randomValues);
    const att = attentionOf(g, ['Softmax', 'MatMul', 'Split']);
    assert.equal(att.attrs.layout.value, 'separate');
    assert.equal(att.attrs.value_head_dim.value, 12);
    assert.equal(att.attrs.per_head, undefined);
    assert.deepEqual(g.tensor(att.inputs[2]).shape!.map(String), ['B', '9', '36']);
  });

  it('the op refuses per_head on the separate layout, naming the node', () => {
    const g = optimizeImported(importOnnxBytes(buildModel(separateBlock(9, 3, 4, 12))), 'test.onnx', {}).graph;
    const att = attentionOf(g, ['Softmax', 'MatMul', 'Split']);
    att.attrs.per_head = { type: 'int', value: 1 };
    const messages = inferShapes(g).diagnostics.map((d) => `${d.location?.onnxNode ?? ''} ${d.message}`);
    assert.ok(
      messages.some((m) => m.includes(att.name) && /per_head needs a packed input/.test(m)),
      messages.join('\n'),
    );
  });

  it('LeViT blocks for sm90: value head dim and head strides reach the kernel; model.cu compiles with nvcc', () => {
    const [N, H, D, DV] = [16, 2, 16, 32];
    compileTo(levitBlock(N, H, D, DV, true), 'cuda:sm90', (out, graph) => {
      const attention = graph.nodes.filter((n) => n.op === 'attention');
      assert.equal(attention.length, 1);
      assert.equal(attention[0].kernel?.name, `ait_attention_f16_d${D}_dv${DV}_masked`);
      assert.match(
        attention[0].kernel!.reason,
        /tensor cores reading packed QKV, 1 score bias, split per head, value head dim 32, at head dim 32 \(the padded max of D and Dv\)$/,
      );
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      const W = 2 * D + DV;
      assert.match(model, new RegExp(`args\\.token_stride = ${H * W};`));
      assert.match(model, new RegExp(`args\\.k = [^;]* \\+ ${D};`));
      assert.match(model, new RegExp(`args\\.v = [^;]* \\+ ${2 * D};`));
      assert.match(model, new RegExp(`args\\.value_head_dim = ${DV};`));
      for (const x of ['q', 'k', 'v']) assert.match(model, new RegExp(`args\\.${x}_head_stride = ${W};`));
      // q·k at 16 (not the padded max(D, Dv) = 32), v at 32
      assert.match(model, /AIT_RETURN_IF_CUDA_ERROR\(\(ait::kernels::launch_attention_dims<__half, 16, 32, true>\(args, c\.stream\)\)\);/);
      assert.doesNotMatch(model, /launch_attention_padded/);
      assert.doesNotMatch(model, /kv_token_stride|v_token_stride/);
      if (!haveNvcc()) return;
      nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
    });
    compileTo(levitSubsample(16, 4, 2, 16, 64), 'cuda:sm90', (out) => {
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      assert.match(model, /args\.token_stride = 32;/);
      assert.match(model, /args\.kv_token_stride = 160;/);
      assert.match(model, /args\.v = [^;]* \+ 16;/);
      assert.match(model, /args\.q_head_stride = 16;\s*args\.k_head_stride = 80;\s*args\.v_head_stride = 80;/);
      assert.match(model, /args\.key_sequence = 16;/);
      assert.match(model, /launch_attention_dims<__half, 16, 64, true>/);
      if (!haveNvcc()) return;
      nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
    });
  });

  it('separate Dv ≠ D for sm90: v token stride of its own, head strides left at their defaults', () => {
    compileTo(separateBlock(9, 3, 8, 16), 'cuda:sm90', (out) => {
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      assert.match(model, /args\.v_token_stride = 48;/);
      assert.match(model, /args\.value_head_dim = 16;/);
      assert.doesNotMatch(model, /head_stride/);
      assert.match(model, /launch_attention_dims<__half, 8, 16>\(args/);
    });
  });

  for (const [target, arch] of GPU_TARGETS)
    it(`EfficientFormer (D 32, Dv 128, bias) and separate D 64 > Dv 32 for ${target}: each (D, Dv) pair instantiated, model.cu compiles with nvcc`, function () {
      this.timeout(900_000);
      compileTo(levitBlock(49, 2, 32, 128), target, (out, graph) => {
        const attention = graph.nodes.find((n) => n.op === 'attention')!;
        assert.equal(attention.kernel?.name, 'ait_attention_f16_d32_dv128_masked');
        // on the tensor cores at the padded max; the CUDA-core fallback at the pair's own dims (both instantiated ones)
        assert.match(attention.kernel!.reason, /tensor cores .*value head dim 128, at head dim 128 \(the padded max of D and Dv\)$/);
        const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
        assert.equal(model.match(/launch_attention_\w+<[^>]*>/g)?.join(), 'launch_attention_dims<__half, 32, 128, true>');
        if (!haveNvcc()) return;
        nvccCompileGenerated(out, ['src/model.cu'], arch);
      });
      compileTo(separateBlock(9, 3, 60, 20), target, (out, graph) => {
        const attention = graph.nodes.find((n) => n.op === 'attention')!;
        assert.match(attention.kernel!.reason, /tensor cores .*value head dim 20, at head dim 64 \(the padded max of D and Dv\)$/);
        const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
        assert.equal(model.match(/launch_attention_\w+<[^>]*>/g)?.join(), 'launch_attention_dims<__half, 64, 32>');
        if (!haveNvcc()) return;
        nvccCompileGenerated(out, ['src/model.cu'], arch);
      });
    });

  it('q·k and v each run at their own padded CUDA-core dim (8, 16, then the padded head dims), as attention.cuh pads them', () => {
    const cases: [number, number][] = [
      [0, 0],
      [1, 8],
      [4, 8],
      [8, 8],
      [9, 16],
      [12, 16],
      [16, 16],
      [17, 32],
      [20, 32],
      [32, 32],
      [64, 64],
      [100, 128],
      [128, 128],
      [256, 256],
      [257, 0],
    ];
    for (const [d, padded] of cases) assert.equal(attentionPaddedCudaCoreDim(d), padded, `dim ${d}`);
    for (let d = 17; d <= 257; d++) assert.equal(attentionPaddedCudaCoreDim(d), attentionPaddedHeadDim(d));
    if (!haveNvcc()) return;
    // the header's constexpr functions agree with these for every dim (static_asserts; compile only)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-attn-dims-'));
    try {
      const source = path.join(dir, 'dims.cu');
      const asserts = Array.from({ length: 260 }, (_, d) => [
        `static_assert(ait::kernels::attention_padded_cuda_core_dim(${d}) == ${attentionPaddedCudaCoreDim(d)}, "cuda-core dim ${d}");`,
        `static_assert(ait::kernels::attention_padded_head_dim(${d}) == ${attentionPaddedHeadDim(d)}, "head dim ${d}");`,
      ]).flat();
      fs.writeFileSync(source, ['#include "attention.cuh"', ...asserts, ''].join('\n'));
      const r = spawnSync('nvcc', ['-std=c++17', `-I${KERNELS_DIR}`, '-c', source, '-o', path.join(dir, 'dims.o')], { encoding: 'utf8' });
      assert.equal(
        r.status,
        0,
        `${r.stdout}${r.stderr}`
          .split('\n')
          .filter((l) => /error/.test(l))
          .slice(0, 10)
          .join('\n'),
      );
      assert.deepEqual(ATTENTION_HEAD_DIMS.map(attentionPaddedCudaCoreDim), ATTENTION_HEAD_DIMS);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const replays: [string, ModelSpec, Record<string, number[]>, [number, number]][] = [
    ['LeViT D 16, Dv 64, [H,N,N] bias (16-byte loads)', levitBlock(20, 2, 16, 64), { x: [2, 20, 64] }, [16, 64]],
    ['EfficientFormer D 32, Dv 128, bias, 70 tokens (two key tiles)', levitBlock(70, 2, 32, 128), { x: [1, 70, 128] }, [32, 128]],
    ['separate D 64 > Dv 32, no bias', separateBlock(9, 3, 64, 32), { x: [2, 9, 384] }, [64, 32]],
    [
      'LeViT subsampling, kv_packed, 6 queries, 12 keys, D 16, Dv 64',
      levitSubsample(12, 6, 2, 16, 64),
      { x: [2, 12, 64], xq: [2, 6, 64] },
      [16, 64],
    ],
    ['odd D 12, Dv 20 (element loads)', levitBlock(10, 3, 12, 20), { x: [2, 10, 72] }, [16, 32]],
  ];
  for (const [what, spec, shapes, [kQKDim, kVDim]] of replays)
    it(`kernel replay at its own (D, Dv) pair equals the interpreter: ${what}`, async () => {
      const g = await fuseAndCompare(spec, shapes, randomValues);
      const att = attentionOf(g, ['Softmax', 'MatMul', 'Split']);
      const D = att.attrs.head_dim.value as number;
      const DV = attentionValueHeadDim(att);
      assert.deepEqual([attentionPaddedCudaCoreDim(D), attentionPaddedCudaCoreDim(DV)], [kQKDim, kVDim]);
      const names = Object.keys(shapes);
      const inputs = names.map((n) => makeTensor('float32', shapes[n], randomValues(shapes[n].reduce((a, b) => a * b, 1))));
      const { args, output } = attentionValues(g, att, inputs);
      const expected = numeric(output);
      const actual = replayAttentionKernel(att, args, kQKDim, kVDim);
      assert.equal(actual.length, expected.length);
      for (let i = 0; i < expected.length; i++)
        assert.ok(
          Math.abs(actual[i] - expected[i]) <= 1e-5 * (1 + Math.abs(expected[i])),
          `element ${i}: ${actual[i]}, expected ${expected[i]}`,
        );
    });

  it('ROCm: the CK attention instance refuses a value head dim of its own; our kernel runs it, with the reason', () => {
    compileTo(levitBlock(16, 2, 16, 32), 'rocm:gfx90a', (_out, graph) => {
      const attention = graph.nodes.find((n) => n.op === 'attention')!;
      assert.equal(attention.kernel?.library, 'ait');
      assert.match(attention.kernel!.reason, /not CK: a value head dim of its own/);
    });
  });
});
