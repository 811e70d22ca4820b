/**
 * Attention whose keys and values have another length than the queries: PVT v2 / SegFormer spatial-reduction
 * attention (keys and values from a strided conv of the tokens, LayerNorm, one packed kv Linear or two Linears) and
 * cross-attention. The fusion takes them into one attention op (layout kv_packed or separate, keys Sk ≠ S); the
 * interpreter's result on the fused graph equals onnxruntime's on the original model; the CUDA lowering passes the
 * keys' length and token stride; model.cu compiles with nvcc; ROCm's CK attention refuses the form with its reason
 * (our kernel runs it). The GPU numerics of the kernel (Sq ≠ Sk, packed kv or separate k, v, masks) are
 * attention_check.cu's check_attention_key_length.
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
import { ModelSpec, TensorSpec, buildModel } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const rand = seededRandom(11);
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

/**
 * A PVT v2 attention block over an R·W-token image (H heads of D): q = Linear(x); the keys' tokens are x as NCHW →
 * Conv(kernel = stride = reduction) → tokens → LayerNormalization, then one kv Linear → [B,Sk,2,H,D] →
 * Transpose(2,0,3,1,4) → Gather 0|1 (`kv: 'packed'`, PVT) or two Linears (`kv: 'separate'`, SegFormer); q and k
 * each scaled by D^-1/4 (the torch SDPA export); softmax(q·kᵀ)·v → heads merged → output Linear.
 */
function pvtBlock(side: number, reduction: number, H: number, D: number, kv: 'packed' | 'separate', keyMask = false): ModelSpec {
  const C = H * D;
  const S = side * side;
  const SK = (side / reduction) ** 2;
  const heads = (t: string, x: string, perm: number[]) => [
    { op: 'Reshape', inputs: [x, 'heads_shape_kv'], outputs: [`${t}_4`] },
    { op: 'Mul', inputs: [`${t}_4`, 'quarter'], outputs: [`${t}_s`] },
    { op: 'Transpose', inputs: [`${t}_s`], outputs: [`${t}_h`], attrs: { perm } },
  ];
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', S, C] },
      ...(keyMask ? [{ name: 'mask', dtype: 'float32' as const, dims: ['B', 1, 1, SK] }] : []),
    ],
    outputs: ['y'],
    initializers: [
      weight('wq', [C, C]),
      weight('bq', [C], 0.1),
      weight('w_sr', [C, C, reduction, reduction], 1 / Math.sqrt(C * reduction * reduction)),
      weight('b_sr', [C], 0.1),
      weight('gamma', [C], 1),
      weight('beta', [C], 0.1),
      weight('wkv', [C, 2 * C]),
      weight('wk', [C, C]),
      weight('wv', [C, C]),
      weight('wo', [C, C]),
      ints('image_shape', [0, side, side, C]),
      ints('tokens_shape', [0, C, SK]),
      ints('heads_shape', [0, S, H, D]),
      ints('heads_shape_kv', [0, SK, H, D]),
      ints('kv_shape', [0, SK, 2, H, D]),
      ints('merge_shape', [0, S, C]),
      { name: 'i0', dtype: 'int64', dims: [], values: [0] },
      { name: 'i1', dtype: 'int64', dims: [], values: [1] },
      scalar('quarter', D ** -0.25),
    ],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'wq'], outputs: ['q0'] },
      { op: 'Add', inputs: ['q0', 'bq'], outputs: ['q_lin'] },
      { op: 'Reshape', inputs: ['q_lin', 'heads_shape'], outputs: ['q_4'] },
      { op: 'Mul', inputs: ['q_4', 'quarter'], outputs: ['q_s'] },
      { op: 'Transpose', inputs: ['q_s'], outputs: ['q_h'], attrs: { perm: [0, 2, 1, 3] } },
      // spatial reduction: tokens → NCHW image → strided conv → tokens → LayerNorm
      { op: 'Reshape', inputs: ['x', 'image_shape'], outputs: ['img_nhwc'] },
      { op: 'Transpose', inputs: ['img_nhwc'], outputs: ['img'], attrs: { perm: [0, 3, 1, 2] } },
      {
        op: 'Conv',
        inputs: ['img', 'w_sr', 'b_sr'],
        outputs: ['sr'],
        attrs: { kernel_shape: [reduction, reduction], strides: [reduction, reduction] },
      },
      { op: 'Reshape', inputs: ['sr', 'tokens_shape'], outputs: ['sr_t'] },
      { op: 'Transpose', inputs: ['sr_t'], outputs: ['sr_tokens'], attrs: { perm: [0, 2, 1] } },
      { op: 'LayerNormalization', inputs: ['sr_tokens', 'gamma', 'beta'], outputs: ['x_kv'], attrs: { axis: -1, epsilon: 1e-5 } },
      ...(kv === 'packed'
        ? [
            { op: 'MatMul', inputs: ['x_kv', 'wkv'], outputs: ['kv'] },
            { op: 'Reshape', inputs: ['kv', 'kv_shape'], outputs: ['kv5'] },
            { op: 'Transpose', inputs: ['kv5'], outputs: ['kvp'], attrs: { perm: [2, 0, 3, 1, 4] } },
            { op: 'Gather', inputs: ['kvp', 'i0'], outputs: ['k_h0'], attrs: { axis: 0 } },
            { op: 'Gather', inputs: ['kvp', 'i1'], outputs: ['v_h'], attrs: { axis: 0 } },
            { op: 'Mul', inputs: ['k_h0', 'quarter'], outputs: ['k_hs'] },
            { op: 'Transpose', inputs: ['k_hs'], outputs: ['k_h'], attrs: { perm: [0, 1, 3, 2] } },
          ]
        : [
            { op: 'MatMul', inputs: ['x_kv', 'wk'], outputs: ['k_lin'] },
            { op: 'MatMul', inputs: ['x_kv', 'wv'], outputs: ['v_lin'] },
            ...heads('k', 'k_lin', [0, 2, 3, 1]),
            { op: 'Reshape', inputs: ['v_lin', 'heads_shape_kv'], outputs: ['v_4'] },
            { op: 'Transpose', inputs: ['v_4'], outputs: ['v_h'], attrs: { perm: [0, 2, 1, 3] } },
          ]),
      { op: 'MatMul', inputs: ['q_h', 'k_h'], outputs: [keyMask ? 'qk' : 'scores'] },
      ...(keyMask ? [{ op: 'Add', inputs: ['qk', 'mask'], outputs: ['scores'] }] : []),
      { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['probs', 'v_h'], outputs: ['o'] },
      { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['m'] },
      { op: 'MatMul', inputs: ['m', 'wo'], outputs: ['y'] },
    ],
  };
}

/** Cross-attention: queries from x [B,S,C], keys and values from memory [B,Sk,C] by separate Linears; √D divisor. */
function crossAttention(S: number, SK: number, H: number, D: number): ModelSpec {
  const C = H * D;
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', S, C] },
      { name: 'memory', dtype: 'float32', dims: ['B', SK, C] },
    ],
    outputs: ['y'],
    initializers: [
      weight('wq', [C, C]),
      weight('wk', [C, C]),
      weight('wv', [C, C]),
      ints('q_shape', [0, S, H, D]),
      ints('kv_shape', [0, SK, H, D]),
      ints('merge_shape', [0, S, C]),
      scalar('sqrt_d', Math.sqrt(D)),
    ],
    nodes: [
      ...[
        ['q', 'x', 'q_shape', [0, 2, 1, 3]],
        ['k', 'memory', 'kv_shape', [0, 2, 3, 1]],
        ['v', 'memory', 'kv_shape', [0, 2, 1, 3]],
      ].flatMap(([t, x, shape, perm]) => [
        { op: 'MatMul', inputs: [x as string, `w${t as string}`], outputs: [`${t as string}_lin`] },
        { op: 'Reshape', inputs: [`${t as string}_lin`, shape as string], outputs: [`${t as string}_4`] },
        { op: 'Transpose', inputs: [`${t as string}_4`], outputs: [`${t as string}_h`], attrs: { perm: perm as number[] } },
      ]),
      { op: 'MatMul', inputs: ['q_h', 'k_h'], outputs: ['qk'] },
      { op: 'Div', inputs: ['qk', 'sqrt_d'], outputs: ['scores'] },
      { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['probs', 'v_h'], outputs: ['o'] },
      { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['y'] },
    ],
  };
}

describe('attention with keys of another length than the queries', function () {
  this.timeout(900_000);

  it('cross-attention (separate q, k, v; 12 queries, 7 keys): one attention op equal to onnxruntime, k and v one GEMM', async () => {
    const g = await fuseAndCompare(crossAttention(12, 7, 2, 8), { x: [2, 12, 16], memory: [2, 7, 16] }, randomValues);
    const att = attentionOf(g);
    // k and v over the memory: one GEMM (passes/merge-projections.ts), q apart
    assert.equal(att.attrs.layout.value, 'kv_packed');
    assert.deepEqual(
      att.inputs.map((t) => g.tensor(t).shape!.map(String)),
      [
        ['B', '12', '16'],
        ['B', '7', '32'],
      ],
    );
    assert.ok(Math.abs((att.attrs.scale.value as number) - 1 / Math.sqrt(8)) < 1e-6);
  });

  for (const H of [2, 1]) {
    it(`PVT v2 spatial reduction (8x8 tokens, conv stride 2 → 16 keys, ${H} head${H > 1 ? 's' : ''}, packed kv): kv_packed attention equal to onnxruntime`, async () => {
      const g = await fuseAndCompare(pvtBlock(8, 2, H, 8, 'packed'), { x: [2, 64, H * 8] }, randomValues);
      const att = attentionOf(g);
      assert.equal(att.attrs.layout.value, 'kv_packed');
      assert.equal(att.attrs.num_heads.value, H);
      assert.equal(att.inputs.length, 2);
      assert.deepEqual(g.tensor(att.inputs[1]).shape!.map(String), ['B', '16', String(2 * H * 8)]);
      assert.ok(Math.abs((att.attrs.scale.value as number) - 1 / Math.sqrt(8)) < 1e-6);
    });
  }

  it('SegFormer form (separate k and v Linears of the reduced tokens, one head) with a [B,1,1,Sk] key mask: k and v one GEMM, the bias', async () => {
    const SK = 16;
    const mask = Array.from({ length: 2 * SK }, (_, i) => (i % 5 === 1 ? -1e4 : 0));
    const g = await fuseAndCompare(pvtBlock(8, 2, 1, 16, 'separate', true), { x: [2, 64, 16], mask: [2, 1, 1, SK] }, randomValues, {
      mask,
    });
    const att = attentionOf(g);
    assert.equal(att.attrs.layout.value, 'kv_packed');
    assert.equal(att.inputs.length, 3);
    assert.deepEqual(g.tensor(att.inputs[2]).shape!.map(String), ['B', '1', '1', String(SK)]);
  });

  it('a lower-triangular mask over Sq ≠ Sk is no causal flag: the kernel bias it is, equal to onnxruntime', async () => {
    // keys 0..i·Sk/S kept for query i: a constant [S, Sk] bias, not the causal form (which needs Sk = S)
    const [S, SK, H, D] = [12, 6, 2, 8];
    const spec = crossAttention(S, SK, H, D);
    const tri = Array.from({ length: S * SK }, (_, i) => (i % SK <= Math.floor(Math.floor(i / SK) / 2) ? 0 : -1e4));
    spec.initializers!.push({ name: 'tri', dtype: 'float32', dims: [S, SK], values: tri });
    spec.nodes = spec.nodes.flatMap((n) =>
      n.op === 'Softmax'
        ? [
            { op: 'Add', inputs: ['scores', 'tri'], outputs: ['masked'] },
            { ...n, inputs: ['masked'] },
          ]
        : [n],
    );
    const g = await fuseAndCompare(spec, { x: [2, S, H * D], memory: [2, SK, H * D] }, randomValues);
    const att = attentionOf(g);
    assert.equal(att.attrs.causal, undefined);
    assert.deepEqual(g.tensor(att.inputs[2]).shape, [1, 1, S, SK]); // after q and the merged kv
  });

  it('the op refuses a causal flag over Sq ≠ Sk, naming the node', () => {
    const g = optimizeImported(importOnnxBytes(buildModel(crossAttention(12, 7, 2, 8))), 'test.onnx', {}).graph;
    const att = attentionOf(g);
    att.attrs.causal = { type: 'int', value: 1 };
    const messages = inferShapes(g).diagnostics.map((d) => `${d.location?.onnxNode ?? ''} ${d.message}`);
    assert.ok(
      messages.some((m) => m.includes(att.name) && /causal over 12 queries and 7 keys/.test(m)),
      messages.join('\n'),
    );
  });

  it('PVT block for sm90: the kernel gets key_sequence and the packed kv stride; model.cu compiles with nvcc', () => {
    const [H, D] = [2, 32];
    compileTo(pvtBlock(8, 2, H, D, 'packed'), 'cuda:sm90', (out, graph) => {
      const attention = graph.nodes.filter((n) => n.op === 'attention');
      assert.equal(attention.length, 1);
      assert.equal(attention[0].kernel?.name, `ait_attention_f16_d${D}`);
      assert.match(attention[0].kernel!.reason, /Q and packed KV, 16 keys/);
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      assert.match(model, new RegExp(`args\\.token_stride = ${H * D};`));
      assert.match(model, new RegExp(`args\\.kv_token_stride = ${2 * H * D};`));
      assert.match(model, /args\.key_sequence = 16;/);
      assert.match(model, /args\.sequence = 64;/);
      // v is the kv tensor's second half of each token
      assert.match(model, new RegExp(`args\\.v = [^;]* \\+ ${H * D};`));
      if (!haveNvcc()) return;
      nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
    });
  });

  it('ROCm: the CK attention instance refuses q with a packed kv and Sk ≠ S; our kernel runs it, with the reason', () => {
    compileTo(pvtBlock(8, 2, 2, 32, 'packed'), 'rocm:gfx90a', (_out, graph) => {
      const attention = graph.nodes.find((n) => n.op === 'attention')!;
      assert.equal(attention.kernel?.library, 'ait');
      assert.match(attention.kernel!.reason, /not CK: q and a packed kv/);
    });
    compileTo(crossAttention(12, 7, 1, 32), 'rocm:gfx90a', (_out, graph) => {
      const attention = graph.nodes.find((n) => n.op === 'attention')!;
      assert.equal(attention.kernel?.library, 'ait');
      // k and v merged into a packed kv (passes/merge-projections.ts), which CK's instance does not read either
      assert.match(attention.kernel!.reason, /not CK: q and a packed kv/);
    });
  });
});
