/**
 * Attention whose values have a head dim of their own, q, k and v split per head out of one projection (LeViT,
 * EfficientFormer): x → Linear → Reshape [B,N,H,D+D+Dv] → Split(last axis) → transposes → q·kᵀ·scale + a learned
 * [H,N,N] bias → softmax → ·v → [B,N,H·Dv]; LeViT's subsampling attention (q from a Linear of the subsampled tokens
 * given as rows [B·Nq, H·D], k and v split per head out of [B,N,H,D+Dv]); and separate q, k, v Linears with Dv ≠ D.
 * The fusion takes them into one attention op (value_head_dim, per_head); the interpreter's result on the fused graph
 * equals onnxruntime's on the original model; the CUDA lowering passes the value head dim and head strides; model.cu
 * compiles with nvcc; ROCm's CK attention refuses the form with its reason. The GPU numerics of the kernel are
 * kernel_check.cu's check_attention_value_dim.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import '../../../compiler/ops';
import { optimizeImported } from '../../../compiler/compile';
import { seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { attentionOf, compileTo, fuseAndCompare } from '../../helpers/attention-fusion';
import { ModelSpec, NodeSpec, TensorSpec, buildModel } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

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
      assert.match(attention[0].kernel!.reason, /CUDA cores reading packed QKV, 1 score bias, split per head, value head dim 32/);
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      const W = 2 * D + DV;
      assert.match(model, new RegExp(`args\\.token_stride = ${H * W};`));
      assert.match(model, new RegExp(`args\\.k = [^;]* \\+ ${D};`));
      assert.match(model, new RegExp(`args\\.v = [^;]* \\+ ${2 * D};`));
      assert.match(model, new RegExp(`args\\.value_head_dim = ${DV};`));
      for (const x of ['q', 'k', 'v']) assert.match(model, new RegExp(`args\\.${x}_head_stride = ${W};`));
      assert.match(model, /launch_attention_padded<__half, 32, true>/); // max(D, Dv) = 32
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
      assert.match(model, /launch_attention_padded<__half, 64, true>/);
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
    });
  });

  it('ROCm: the CK attention instance refuses a value head dim of its own; our kernel runs it, with the reason', () => {
    compileTo(levitBlock(16, 2, 16, 32), 'rocm:gfx90a', (_out, graph) => {
      const attention = graph.nodes.find((n) => n.op === 'attention')!;
      assert.equal(attention.kernel?.library, 'ait');
      assert.match(attention.kernel!.reason, /not CK: a value head dim of its own/);
    });
  });
});
