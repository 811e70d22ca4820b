/**
 * passes/merge-projections.ts: an attention's q, k and v GEMMs over one input become one GEMM into the packed layout
 * (BERT's three Linears), k and v of cross-attention one GEMM into kv_packed; the optimized graph computes what the
 * original computes (reference interpreter); a projection something else reads stays apart; graph-only, the weights
 * are joined by a Concat that runs as weight preparation, and with weights they are one constant; the merged model
 * compiles for sm90 (nvcc compiles model.cu where present).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel, optimizeImported } from '../../compiler/compile';
import { Graph, Node } from '../../compiler/ir/graph';
import { seededRandom } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { roleOf } from '../../compiler/passes/cost';
import { haveNvcc, nvccCompileGenerated } from '../helpers/nvcc';
import { ModelSpec, NodeSpec, TensorSpec, buildModel } from '../helpers/onnx-builder';
import { optimizeAndCompare } from '../helpers/optimize-compare';

const [B, S, SK, H, D] = [2, 6, 5, 2, 4];
const HD = H * D;
const random = seededRandom(3);
const values = (n: number, scale = 1) => Array.from({ length: n }, () => (random() * 2 - 1) * scale);
const weight = (name: string, dims: number[], external = false): TensorSpec & { name: string } =>
  external
    ? { name, dtype: 'float32', dims, external: 'weights.bin' }
    : {
        name,
        dtype: 'float32',
        dims,
        values: values(
          dims.reduce((a, b) => a * b, 1),
          0.5,
        ),
      };

/** x [B,S,HD] (q) and kv_source [B,Sk,HD] (k, v: x itself for self-attention) → Linear + bias → heads → attention → y. */
function attentionModel(options: { cross?: boolean; kExtraReader?: boolean; external?: boolean } = {}): ModelSpec {
  const kvSource = options.cross ? 'mem' : 'x';
  const sk = options.cross ? SK : S;
  const nodes: NodeSpec[] = [
    ...['q', 'k', 'v'].flatMap((t): NodeSpec[] => [
      { op: 'MatMul', inputs: [t === 'q' ? 'x' : kvSource, `w${t}`], outputs: [`${t}_mm`] },
      { op: 'Add', inputs: [`${t}_mm`, `b${t}`], outputs: [`${t}_lin`] },
      { op: 'Reshape', inputs: [`${t}_lin`, t === 'q' ? 'heads_shape' : 'kv_heads_shape'], outputs: [`${t}_4`] },
      { op: 'Transpose', inputs: [`${t}_4`], outputs: [`${t}_h`], attrs: { perm: t === 'k' ? [0, 2, 3, 1] : [0, 2, 1, 3] } },
    ]),
    { op: 'MatMul', inputs: ['q_h', 'k_h'], outputs: ['qk'] },
    { op: 'Div', inputs: ['qk', 'sqrt_d'], outputs: ['scores'] },
    { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
    { op: 'MatMul', inputs: ['probs', 'v_h'], outputs: ['o'] },
    { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
    { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['y'] },
  ];
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', S, HD] },
      ...(options.cross ? [{ name: 'mem', dtype: 'float32' as const, dims: ['B', SK, HD] }] : []),
    ],
    outputs: ['y', ...(options.kExtraReader ? ['k_lin'] : [])],
    initializers: [
      ...['q', 'k', 'v'].flatMap((t) => [weight(`w${t}`, [HD, HD], options.external), weight(`b${t}`, [HD], options.external)]),
      { name: 'heads_shape', dtype: 'int64', dims: [4], values: [0, S, H, D] },
      { name: 'kv_heads_shape', dtype: 'int64', dims: [4], values: [0, sk, H, D] },
      { name: 'merge_shape', dtype: 'int64', dims: [3], values: [0, S, HD] },
      { name: 'sqrt_d', dtype: 'float32', dims: [], values: [Math.sqrt(D)] },
    ],
    nodes,
  };
}

const compare = (spec: ModelSpec, shapes: number[][]) => optimizeAndCompare(spec, shapes, (n) => values(n));
const only = (g: Graph, op: string): Node[] => g.nodes.filter((n) => n.op === op);

describe('merge-projections: q, k, v GEMMs over one input become one', function () {
  this.timeout(120_000);

  it('self-attention (three Linears with biases over x): one GEMM of width 3·H·D into the packed layout', () => {
    const g = compare(attentionModel(), [[B, S, HD]]);
    const [attention] = only(g, 'attention');
    assert.equal(attention.attrs.layout.value, 'packed');
    const gemms = only(g, 'gemm');
    assert.equal(gemms.length, 1);
    assert.equal(attention.inputs[0], gemms[0].outputs[0]);
    assert.deepEqual(g.tensor(gemms[0].outputs[0]).shape!.map(String), ['B', String(S), String(3 * HD)]);
    assert.deepEqual(gemms[0].attrs.epilogue.value, ['bias']);
    // the three Linears' ONNX nodes are the merged GEMM's
    assert.equal(gemms[0].sourceNodes.length, 6, gemms[0].sourceNodes.join()); // 3 MatMul + 3 Add
    // weights present: the joined weight and bias are constants [HD, 3·HD] and [3·HD]
    assert.deepEqual(g.tensor(gemms[0].inputs[1]).value?.shape, [HD, 3 * HD]);
    assert.deepEqual(g.tensor(gemms[0].inputs[2]).value?.shape, [3 * HD]);
  });

  it('cross-attention (k, v over another input): one GEMM of width 2·H·D into kv_packed, q apart', () => {
    const g = compare(attentionModel({ cross: true }), [
      [B, S, HD],
      [B, SK, HD],
    ]);
    const [attention] = only(g, 'attention');
    assert.equal(attention.attrs.layout.value, 'kv_packed');
    const gemms = only(g, 'gemm');
    assert.equal(gemms.length, 2);
    const kv = gemms.find((n) => n.inputs[0] === 'mem')!;
    assert.equal(attention.inputs[1], kv.outputs[0]);
    assert.equal(g.tensor(kv.outputs[0]).shape!.at(-1), 2 * HD);
  });

  it('a projection something else reads (a graph output) keeps the three GEMMs apart', () => {
    const g = compare(attentionModel({ kExtraReader: true }), [[B, S, HD]]);
    const [attention] = only(g, 'attention');
    assert.equal(attention.attrs.layout.value, 'separate');
    assert.equal(only(g, 'gemm').length, 3);
  });

  it('graph-only: the weights are joined by a Concat that runs as weight preparation; the model compiles for sm90', () => {
    const bytes = buildModel(attentionModel({ external: true }));
    const g = optimizeImported(importOnnxBytes(bytes), 'm.onnx', { validate: true }).graph;
    const [attention] = only(g, 'attention');
    assert.equal(attention.attrs.layout.value, 'packed');
    const [gemm] = only(g, 'gemm');
    const concats = only(g, 'Concat');
    assert.equal(concats.length, 2); // weight and bias
    for (const c of concats) assert.equal(roleOf(g, c), 'weight-preparation');
    assert.deepEqual(
      concats.map((c) => c.outputs[0]),
      gemm.inputs.slice(1),
    );
    assert.equal(concats[0].attrs.axis.value, 1); // [K, N] weights side by side along N
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-merge-proj-'));
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, bytes);
    const result = compileModel(file, { out: path.join(dir, 'out'), target: 'cuda:sm90', maxBatch: 4 });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    if (haveNvcc()) nvccCompileGenerated(path.join(dir, 'out'), ['src/model.cu'], 'arch=compute_90,code=sm_90');
  });
});
