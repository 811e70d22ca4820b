/**
 * Attention at head dims other than 32/64/128 (MobileViT-S: 36 and 48): the kernels run at a padded head dim
 * (attention.cuh: 32, 48, 64, 80, 96, 128, 160, 192, 256) with the real one at run time. A ViT-style block (QKV GEMM,
 * packed heads, MatMul-Softmax-MatMul, head merge, output GEMM) fuses into one attention op whose interpreter run
 * equals the original graph's, compiles for sm90 and sm80 with no unsupported node, names only its padded
 * instantiation in model.cu, and model.cu compiles with nvcc. The GPU numerics of the padding are attention_check.cu's
 * (D = 36, 48, 80, plain and masked).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import '../../../compiler/ops';
import { attentionPaddedHeadDim } from '../../../compiler/backends/cuda/codegen/lower';
import { compileModel } from '../../../compiler/compile';
import { seededRandom } from '../../../compiler/ir/tensor';
import { ModelSpec, TensorSpec, buildModel } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated, GPU_TARGETS } from '../../helpers/nvcc';
import { optimizeAndCompare } from '../../helpers/optimize-compare';

const rand = seededRandom(7);
const randomValues = (n: number, scale = 1) => Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
const weight = (name: string, dims: number[]): TensorSpec & { name: string } => ({
  name,
  dtype: 'float32',
  dims,
  values: randomValues(
    dims.reduce((a, b) => a * b, 1),
    1 / Math.sqrt(dims[0]),
  ),
});
const ints = (name: string, values: number[]): TensorSpec & { name: string } => ({ name, dtype: 'int64', dims: [values.length], values });

/** x [B,S,H·D] → qkv GEMM → [B,S,3,H,D] → Transpose(2,0,3,1,4) → Gather 0/1/2 → softmax(q·kᵀ/√D)·v → [B,S,H·D] → GEMM. */
function vitBlock(S: number, H: number, D: number, relativeBias = false): ModelSpec {
  const C = H * D;
  const scores = relativeBias
    ? [
        { op: 'Mul', inputs: ['qk', 'scale'], outputs: ['scaled'] },
        { op: 'Add', inputs: ['scaled', 'rel_bias'], outputs: ['scores'] },
      ]
    : [{ op: 'Mul', inputs: ['qk', 'scale'], outputs: ['scores'] }];
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', S, C] }],
    outputs: ['y'],
    initializers: [
      weight('w_qkv', [C, 3 * C]),
      weight('b_qkv', [3 * C]),
      weight('w_out', [C, C]),
      ints('split_shape', [0, S, 3, H, D]),
      ints('merge_shape', [0, S, C]),
      { name: 'i0', dtype: 'int64', dims: [], values: [0] },
      { name: 'i1', dtype: 'int64', dims: [], values: [1] },
      { name: 'i2', dtype: 'int64', dims: [], values: [2] },
      { name: 'scale', dtype: 'float32', dims: [], values: [1 / Math.sqrt(D)] },
      ...(relativeBias ? [weight('rel_bias', [1, H, S, S])] : []),
    ],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w_qkv'], outputs: ['qkv0'] },
      { op: 'Add', inputs: ['qkv0', 'b_qkv'], outputs: ['qkv'] },
      { op: 'Reshape', inputs: ['qkv', 'split_shape'], outputs: ['r'] },
      { op: 'Transpose', inputs: ['r'], outputs: ['p'], attrs: { perm: [2, 0, 3, 1, 4] } },
      { op: 'Gather', inputs: ['p', 'i0'], outputs: ['q'], attrs: { axis: 0 } },
      { op: 'Gather', inputs: ['p', 'i1'], outputs: ['k'], attrs: { axis: 0 } },
      { op: 'Gather', inputs: ['p', 'i2'], outputs: ['v'], attrs: { axis: 0 } },
      { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
      { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['qk'] },
      ...scores,
      { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['probs', 'v'], outputs: ['o'] },
      { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['m'] },
      { op: 'MatMul', inputs: ['m', 'w_out'], outputs: ['y'] },
    ],
  };
}

interface GraphJson {
  nodes: { op: string; name: string; status?: { supported: boolean; reason?: string }; kernel?: { name: string } }[];
}

describe('cuda attention at any head dim up to 256', function () {
  it('pads to the smallest instantiated head dim', () => {
    const cases: [number, number][] = [
      [1, 32],
      [32, 32],
      [33, 48],
      [36, 48],
      [48, 48],
      [60, 64],
      [64, 64],
      [80, 80],
      [96, 96],
      [100, 128],
      [128, 128],
      [160, 160],
      [176, 192],
      [200, 256],
      [256, 256],
      [257, 0],
      [0, 0],
    ];
    for (const [d, padded] of cases) assert.equal(attentionPaddedHeadDim(d), padded, `head dim ${d}`);
  });

  it('head dim 264: the attention node is unsupported with the reason, no crash', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-attn-hd-'));
    try {
      const file = path.join(dir, 'vit_block.onnx');
      fs.writeFileSync(file, buildModel(vitBlock(16, 2, 264)));
      const out = path.join(dir, 'out');
      compileModel(file, { out, target: 'cuda:sm90' });
      const nodes = (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as GraphJson).nodes;
      const attention = nodes.filter((n) => n.op === 'attention');
      assert.equal(attention.length, 1);
      assert.equal(attention[0].status?.supported, false);
      assert.match(attention[0].status?.reason ?? '', /attention head dim 264 \(the kernels take 1 to 256\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('head dim 36 with a relative position bias: the masked kernel at 48, model.cu compiles with nvcc', function () {
    this.timeout(900_000);
    const [S, H, D] = [16, 2, 36];
    optimizeAndCompare(vitBlock(S, H, D, true), [[2, S, H * D]], (n) => randomValues(n));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-attn-hd-'));
    try {
      const file = path.join(dir, 'vit_block.onnx');
      fs.writeFileSync(file, buildModel(vitBlock(S, H, D, true)));
      const out = path.join(dir, 'out');
      const r = compileModel(file, { out, target: 'cuda:sm90' });
      assert.ok(r.ok);
      const nodes = (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as GraphJson).nodes;
      assert.deepEqual(
        nodes.filter((n) => n.op === 'attention').map((n) => n.kernel?.name),
        ['ait_attention_f16_d36_masked'],
      );
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      assert.match(model, /AIT_RETURN_IF_CUDA_ERROR\(\(ait::kernels::launch_attention_padded<__half, 48, true>\(args, c\.stream\)\)\);/);
      if (!haveNvcc()) return;
      nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const D of [36, 48]) {
    const S = 16;
    const H = 4;
    it(`head dim ${D}: MatMul-Softmax-MatMul fuses into one attention op equal to the original`, () => {
      const g = optimizeAndCompare(vitBlock(S, H, D), [[2, S, H * D]], (n) => randomValues(n));
      const attention = g.nodes.filter((n) => n.op === 'attention');
      assert.equal(attention.length, 1);
      assert.equal(attention[0].attrs.head_dim.value, D);
      assert.equal(attention[0].attrs.num_heads.value, H);
      assert.equal(g.nodes.filter((n) => n.op === 'Softmax').length, 0);
    });

    for (const [target, arch] of GPU_TARGETS) {
      it(`head dim ${D}: compiles for ${target} with no unsupported node; model.cu compiles with nvcc`, function () {
        this.timeout(900_000);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-attn-hd-'));
        try {
          const file = path.join(dir, 'vit_block.onnx');
          fs.writeFileSync(file, buildModel(vitBlock(S, H, D)));
          const out = path.join(dir, 'out');
          const r = compileModel(file, { out, target });
          assert.deepEqual(
            r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
            [],
          );
          const nodes = (JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as GraphJson).nodes;
          assert.deepEqual(
            nodes.filter((n) => n.status && !n.status.supported).map((n) => `${n.op} ${n.name}: ${n.status!.reason}`),
            [],
          );
          const attention = nodes.filter((n) => n.op === 'attention');
          assert.equal(attention.length, 1);
          assert.equal(attention[0].kernel?.name, `ait_attention_f16_d${D}`);
          const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
          // the real head dim at run time, the default scale 1/sqrt(D), and only the padded (48) instantiation
          assert.match(model, new RegExp(`args\\.head_dim = ${D};`));
          assert.match(model, new RegExp(`args\\.token_stride = ${3 * H * D};`));
          assert.equal(model.match(/launch_attention_padded<__half, (\d+)>/g)?.join(), 'launch_attention_padded<__half, 48>');
          assert.doesNotMatch(model, /launch_attention</);
          if (!haveNvcc()) return;
          nvccCompileGenerated(out, ['src/model.cu'], arch);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }
});
