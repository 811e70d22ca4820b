/**
 * Causal masks computed from position indices, as HF models export them with a symbolic seq (GPT-2's
 * And(LessOrEqual(key positions, query positions), padding) under an Expand): the attention fusion turns the causal
 * term into the op's causal flag and keeps the padding as the only mask; the interpreter's result on the fused graph
 * equals onnxruntime's on the original model at several sequence lengths. An anti-causal comparison, or positions
 * counted from different starts, stay a mask.
 */
import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import '../../compiler/ops';
import { optimizeImported } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { Graph, Node } from '../../compiler/ir/graph';
import { attentionQkvInputs } from '../../compiler/ops/fused';
import { makeTensor, seededRandom } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { ModelSpec, TensorSpec, buildModel } from '../helpers/onnx-builder';
import { relativeL2 } from '../helpers/metrics';

const rand = seededRandom(5);
const randomValues = (n: number, scale = 1) => Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
const ints = (name: string, values: number[], dims = [values.length]): TensorSpec & { name: string } => ({
  name,
  dtype: 'int64',
  dims,
  values,
});

/**
 * One masked self-attention over x [B, S, C] (S symbolic), H heads of D. `compare` relates key and query positions:
 * 'causal' (LessOrEqual(key, query)), 'anti' (GreaterOrEqual(key, query)), 'offset' (key positions from 1, queries
 * from 0: not the diagonal), 'scaled' (LessOrEqual(key, 2·query)). `form`: the mask selects scores (Where(keep,
 * scores, min), HF eager) or makes a bias added to them (Where(keep, 0, min), the SDPA export).
 */
function maskedAttention(
  H: number,
  D: number,
  compare: 'causal' | 'anti' | 'offset' | 'scaled',
  form: 'where' | 'bias' = 'where',
): ModelSpec {
  const C = H * D;
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', 'S', C] },
      { name: 'pad', dtype: 'int64', dims: ['B', 'S'] },
    ],
    outputs: ['y'],
    initializers: [
      ...['wq', 'wk', 'wv'].map((name) => ({
        name,
        dtype: 'float32' as const,
        dims: [C, C],
        values: randomValues(C * C, 1 / Math.sqrt(C)),
      })),
      ints('heads_shape', [0, -1, H, D]),
      ints('merge_shape', [0, -1, C]),
      ints('i1', [1], []),
      ints('start0', [0], []),
      ints('start1', [1], []),
      ints('step', [1], []),
      ints('two', [2], []),
      ints('ax012', [0, 1, 2]),
      ints('ax013', [0, 1, 3]),
      ints('ax12', [1, 2]),
      { name: 'true1', dtype: 'bool', dims: [1], values: [1] },
      { name: 'min', dtype: 'float32', dims: [], values: [-3.4028234663852886e38] },
      { name: 'zero', dtype: 'float32', dims: [], values: [0] },
      { name: 'sqrt_d', dtype: 'float32', dims: [], values: [Math.sqrt(D)] },
    ],
    nodes: [
      ...(['q', 'k', 'v'] as const).flatMap((t) => [
        { op: 'MatMul', inputs: ['x', `w${t}`], outputs: [`${t}_lin`] },
        { op: 'Reshape', inputs: [`${t}_lin`, 'heads_shape'], outputs: [`${t}_4`] },
        { op: 'Transpose', inputs: [`${t}_4`], outputs: [`${t}_h`], attrs: { perm: t === 'k' ? [0, 2, 3, 1] : [0, 2, 1, 3] } },
      ]),
      { op: 'MatMul', inputs: ['q_h', 'k_h'], outputs: ['qk'] },
      { op: 'Div', inputs: ['qk', 'sqrt_d'], outputs: ['scores'] },
      // positions: Range(start, start + S, 1) on the key axis [1,1,1,S] and on the query axis [1,1,S,1]
      { op: 'Shape', inputs: ['x'], outputs: ['x_shape'] },
      { op: 'Gather', inputs: ['x_shape', 'i1'], outputs: ['seq'], attrs: { axis: 0 } },
      { op: 'Add', inputs: ['seq', compare === 'offset' ? 'start1' : 'start0'], outputs: ['key_end'] },
      { op: 'Range', inputs: [compare === 'offset' ? 'start1' : 'start0', 'key_end', 'step'], outputs: ['key_pos'] },
      { op: 'Range', inputs: ['start0', 'seq', 'step'], outputs: ['query_pos'] },
      { op: 'Unsqueeze', inputs: ['key_pos', 'ax012'], outputs: ['key_idx'] },
      { op: 'Mul', inputs: ['query_pos', compare === 'scaled' ? 'two' : 'step'], outputs: ['query_pos_m'] },
      { op: 'Unsqueeze', inputs: ['query_pos_m', 'ax013'], outputs: ['query_idx'] },
      { op: compare === 'anti' ? 'GreaterOrEqual' : 'LessOrEqual', inputs: ['key_idx', 'query_idx'], outputs: ['order'] },
      // padding [B,S] → [B,1,1,S] bool; And with an all-true constant and the order; Expand to the scores' shape
      { op: 'Cast', inputs: ['pad'], outputs: ['pad_b'], attrs: { to: 9 } },
      { op: 'Unsqueeze', inputs: ['pad_b', 'ax12'], outputs: ['pad4'] },
      { op: 'And', inputs: ['true1', 'order'], outputs: ['order_t'] },
      { op: 'And', inputs: ['order_t', 'pad4'], outputs: ['keep'] },
      { op: 'Shape', inputs: ['scores'], outputs: ['scores_shape'] },
      { op: 'Expand', inputs: ['keep', 'scores_shape'], outputs: ['keep_full'] },
      ...(form === 'where'
        ? [{ op: 'Where', inputs: ['keep_full', 'scores', 'min'], outputs: ['masked'] }]
        : [
            { op: 'Where', inputs: ['keep_full', 'zero', 'min'], outputs: ['bias'] },
            { op: 'Add', inputs: ['scores', 'bias'], outputs: ['masked'] },
          ]),
      { op: 'Softmax', inputs: ['masked'], outputs: ['probs'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['probs', 'v_h'], outputs: ['o'] },
      { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['y'] },
    ],
  };
}

/** Fuses `spec`, then compares the interpreter on the fused graph with onnxruntime on the model at each (B, S). */
async function fuseAndCompare(spec: ModelSpec, C: number, runs: [number, number][]): Promise<Node | undefined> {
  const bytes = buildModel(spec);
  const result = optimizeImported(importOnnxBytes(bytes), 'test.onnx', { validate: true });
  assert.deepEqual(
    result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  const graph: Graph = result.graph;
  const session = await ort.InferenceSession.create(bytes);
  for (const [B, S] of runs) {
    const x = randomValues(B * S * C);
    // right padding in batch 0 (its last third), none elsewhere: no query row is left without a key
    const pad = Array.from({ length: B * S }, (_, i) => (i < S && i % S >= S - Math.floor(S / 3) ? 0 : 1));
    const theirs = (
      await session.run({
        x: new ort.Tensor('float32', Float32Array.from(x), [B, S, C]),
        pad: new ort.Tensor('int64', BigInt64Array.from(pad.map(BigInt)), [B, S]),
      })
    ).y;
    const [ours] = runGraph(graph, [makeTensor('float32', [B, S, C], x), makeTensor('int64', [B, S], pad)]);
    assert.deepEqual(ours.shape, theirs.dims);
    const err = relativeL2(ours.data as Float32Array, theirs.data as Float32Array);
    assert.ok(err <= 1e-4, `B=${B} S=${S}: relative L2 error ${err} against onnxruntime`);
  }
  const attention = graph.nodes.filter((n) => n.op === 'attention');
  assert.ok(attention.length <= 1);
  return attention[0];
}

describe('attention fusion: causal masks computed from positions (symbolic seq)', function () {
  this.timeout(60_000);
  const H = 2;
  const D = 8;

  it('And(key ≤ query, padding) under an Expand: the causal flag, the padding the only mask', async () => {
    const node = await fuseAndCompare(maskedAttention(H, D, 'causal'), H * D, [
      [2, 5],
      [1, 7],
      [3, 1],
    ]);
    assert.ok(node, 'fused');
    assert.equal(node.attrs.causal?.value, 1);
    const biases = node.inputs.slice(attentionQkvInputs(node));
    assert.equal(biases.length, 1, 'one mask left: the padding');
  });

  it('the same as a bias Where(keep, 0, min) added to the scores (SDPA export): the causal flag, the padding bias', async () => {
    const node = await fuseAndCompare(maskedAttention(H, D, 'causal', 'bias'), H * D, [
      [2, 5],
      [1, 6],
    ]);
    assert.ok(node, 'fused');
    assert.equal(node.attrs.causal?.value, 1);
    assert.equal(node.inputs.slice(attentionQkvInputs(node)).length, 1, 'one bias left: the padding');
  });

  it('an anti-causal comparison (key ≥ query) stays a mask', async () => {
    const node = await fuseAndCompare(maskedAttention(H, D, 'anti'), H * D, [[2, 5]]);
    assert.ok(node, 'fused');
    assert.equal(node.attrs.causal, undefined);
  });

  it('key positions against other numbers than the query positions (2·query) stay a mask', async () => {
    const node = await fuseAndCompare(maskedAttention(H, D, 'scaled'), H * D, [[2, 5]]);
    assert.ok(node, 'fused');
    assert.equal(node.attrs.causal, undefined);
  });

  it('key positions counted from another start than the queries stay a mask', async () => {
    const node = await fuseAndCompare(maskedAttention(H, D, 'offset'), H * D, [[2, 5]]);
    assert.equal(node?.attrs.causal, undefined);
  });
});
