/**
 * A second run-time dim: model inputs `[batch, seq]` (HF text models) where seq is a symbol of its own. Every plain
 * symbol of an input's shape besides the batch becomes a run-time dim (`c.dims[k]`) the runtime sets from the input
 * shapes (AITModelSetInputShape; unset: the max) before the ops run; the memory plan sizes it at its max. Checked on a
 * small BERT-like model (embedding Gather, LayerNorm, attention with an additive mask from attention_mask): the
 * optimized graph (attention fused over the symbolic seq) computes what onnxruntime computes at several seqs; the
 * generated code reads seq from its slot and describes the input dims; nvcc compiles model.cu and the runtime; the
 * runtime's shape validation runs on the CPU; ait_model.py hands the arrays' shapes to the runtime; an unbounded
 * symbol is the only error left.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { pythonModule } from '../../../compiler/backends/cuda/codegen/build-files';
import { CodegenContext, runtimeDimErrors } from '../../../compiler/backends/cuda/codegen/context';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';
import { sharedModel } from '../../helpers/models';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const V = 32;
const H = 16;
const HEADS = 2;
const D = H / HEADS;
const MAX_SEQ = 16;
const RUNTIME = path.resolve(__dirname, '..', '..', '..', 'compiler', 'backends', 'cuda', 'runtime');

const weight = (name: string, dims: number[], seed: number, scale = 0.3) => {
  const random = seededRandom(seed);
  return {
    ...tensor(
      'float32',
      dims,
      Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (random() * 2 - 1) * scale),
    ),
    name,
  };
};
const ints = (name: string, values: number[]) => ({ ...tensor('int64', [values.length], values), name });
const scalar = (name: string, value: number) => ({ ...tensor('float32', [], [value]), name });

/** input_ids, attention_mask [batch, seq] → Gather → LayerNorm → one attention block (mask bias) → residual LayerNorm. */
function bertLike(): ModelSpec {
  const projection = (x: string, w: string, perm: number[]) => [
    { op: 'MatMul', inputs: [x, w], outputs: [`${w}_p`] },
    { op: 'Reshape', inputs: [`${w}_p`, 'split_shape'], outputs: [`${w}_s`] },
    { op: 'Transpose', inputs: [`${w}_s`], outputs: [`${w}_t`], attrs: { perm } },
  ];
  return {
    inputs: [
      { name: 'input_ids', dtype: 'int64', dims: ['batch', 'seq'] },
      { name: 'attention_mask', dtype: 'int64', dims: ['batch', 'seq'] },
    ],
    initializers: [
      weight('emb', [V, H], 1, 1),
      weight('ln_scale', [H], 2),
      weight('ln_bias', [H], 3),
      weight('wq', [H, H], 4),
      weight('wk', [H, H], 5),
      weight('wv', [H, H], 6),
      weight('ln2_scale', [H], 7),
      weight('ln2_bias', [H], 8),
      ints('split_shape', [0, 0, HEADS, D]),
      ints('merge_shape', [0, 0, H]),
      ints('mask_axes', [1, 2]),
      scalar('sqrt_d', Math.sqrt(D)),
      scalar('one', 1),
      scalar('neg', -10000),
    ],
    nodes: [
      { op: 'Gather', inputs: ['emb', 'input_ids'], outputs: ['e'] },
      { op: 'LayerNormalization', inputs: ['e', 'ln_scale', 'ln_bias'], outputs: ['x'], attrs: { axis: -1, epsilon: 1e-5 } },
      ...projection('x', 'wq', [0, 2, 1, 3]),
      ...projection('x', 'wk', [0, 2, 3, 1]),
      ...projection('x', 'wv', [0, 2, 1, 3]),
      { op: 'MatMul', inputs: ['wq_t', 'wk_t'], outputs: ['scores'] },
      { op: 'Div', inputs: ['scores', 'sqrt_d'], outputs: ['scaled'] },
      { op: 'Cast', inputs: ['attention_mask'], outputs: ['mask_f'], attrs: { to: 1 } },
      { op: 'Sub', inputs: ['one', 'mask_f'], outputs: ['inverted'] },
      { op: 'Mul', inputs: ['inverted', 'neg'], outputs: ['mask_bias'] },
      { op: 'Unsqueeze', inputs: ['mask_bias', 'mask_axes'], outputs: ['mask4'] },
      { op: 'Add', inputs: ['scaled', 'mask4'], outputs: ['masked'] },
      { op: 'Softmax', inputs: ['masked'], outputs: ['probs'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['probs', 'wv_t'], outputs: ['context'] },
      { op: 'Transpose', inputs: ['context'], outputs: ['merged'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', inputs: ['merged', 'merge_shape'], outputs: ['attended'] },
      { op: 'Add', inputs: ['attended', 'x'], outputs: ['residual'] },
      { op: 'LayerNormalization', inputs: ['residual', 'ln2_scale', 'ln2_bias'], outputs: ['y'], attrs: { axis: -1, epsilon: 1e-5 } },
    ],
    outputs: ['y'],
    opset: 17,
  };
}

const dimBounds = { seq: [1, MAX_SEQ] as [number, number] };

function write(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-seq-dim-'));
  const file = path.join(dir, 'bert_like.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

function compile(target: string) {
  const file = write(bertLike());
  const out = path.join(path.dirname(file), `out-${target.replace(':', '-')}`);
  return { out, result: compileModel(file, { out, target, maxBatch: 4, dimBounds }) };
}

describe('cuda backend: input dims besides the batch (seq) as run-time dims', function () {
  this.timeout(600_000);

  it('attention fuses over the symbolic seq; the optimized graph computes what onnxruntime computes at several seqs', async () => {
    const { graph, context } = optimizeImported(importOnnxBytes(buildModel(bertLike()), { dimBounds }), 'bert_like.onnx', {
      validate: true,
    });
    assert.deepEqual(
      context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    assert.equal(graph.nodes.filter((n) => n.op === 'attention').length, 1, graph.nodes.map((n) => n.op).join(', '));
    assert.equal(
      graph.nodes.filter((n) => ['Softmax', 'MatMul'].includes(n.op) && n.inputs.every((i) => !graph.lookupTensor(i)?.value)).length,
      0,
    );
    const session = await ort.InferenceSession.create(buildModel(bertLike()), { logSeverityLevel: 3 });
    for (const [batch, seq] of [
      [2, 5],
      [1, 16],
      [3, 1],
    ]) {
      const random = seededRandom(seq * 10 + batch);
      const ids = Array.from({ length: batch * seq }, () => Math.floor(random() * V));
      // the last positions of batch 0 are padding
      const mask = Array.from({ length: batch * seq }, (_, i) => (i < seq && i >= Math.ceil(seq / 2) ? 0 : 1));
      const theirs = (
        await session.run({
          input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [batch, seq]),
          attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask.map(BigInt)), [batch, seq]),
        })
      ).y;
      const [ours] = runGraph(graph, [makeTensor('int64', [batch, seq], ids), makeTensor('int64', [batch, seq], mask)]);
      assert.deepEqual(ours.shape, [...theirs.dims], `batch ${batch} seq ${seq}`);
      const expected = theirs.data as Float32Array;
      Array.from(numeric(ours)).forEach((v, i) =>
        assert.ok(Math.abs(v - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i])), `seq ${seq} [${i}] ${v} vs onnxruntime ${expected[i]}`),
      );
    }
    // the context's input-dim table: seq on axis 1 of both inputs, one slot, the symbol's bounds
    const ctx = CodegenContext.forChecks(graph);
    assert.deepEqual(ctx.inputDims, [
      { symbol: 'seq', slot: 0, input: 0, axis: 1, min: 1, max: MAX_SEQ },
      { symbol: 'seq', slot: 0, input: 1, axis: 1, min: 1, max: MAX_SEQ },
    ]);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: compiles with no unsupported node; seq read from its dims slot; the input-dim table`, () => {
      const { out, result } = compile(target);
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { op: string; name: string; status?: { supported: boolean } }[];
      };
      assert.deepEqual(
        graph.nodes.filter((n) => n.status?.supported === false).map((n) => n.name),
        [],
      );
      assert.equal(graph.nodes.filter((n) => n.op === 'attention').length, 1);
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      assert.match(model, /args\.sequence = c\.dims\[0\];/);
      // the mask bias [batch, 1, 1, seq]: its row stride is seq
      assert.match(model, /args\.bias\[0\] = \{[^}]*batch, c\.dims\[0\],/);
      // GEMMs over M = batch * seq
      assert.match(model, /static_cast<int>\(batch \* c\.dims\[0\]\)/);
      // inputs at their max shapes; the table the runtime sets seq from; the output's seq after a run
      assert.match(model, /\{"input_ids", ait::DType::kInt64, 2, \{4, 16\}, 0\},/);
      assert.match(model, /const char\* const kDimNames\[\] = \{"seq"\};/);
      assert.match(
        model,
        /const ait::InputDimDescription kInputDims\[\] = \{\n\s+\{0, 0, 1, 1, 16\}, {2}\/\/ seq\n\s+\{0, 1, 1, 1, 16\}, {2}\/\/ seq\n\s+\};/,
      );
      assert.match(model, /kInputDims, 2\};/);
      assert.match(model, /case 0:\n\s+shape\[1\] = c\.dims\[0\];/);
      if (haveNvcc())
        nvccCompileGenerated(
          out,
          ['src/model.cu', 'src/runtime/ait_runtime.cu'],
          target === 'cuda:sm90' ? 'arch=compute_90a,code=sm_90a' : 'arch=compute_80,code=sm_80',
        );
    });

  for (const target of ['cuda:sm90', 'cuda:sm80', 'rocm:gfx942'])
    it(`zoo/distilbert_base with a symbolic seq (no --dim) compiles for ${target}: 6 attentions over c.dims[0]`, function () {
      const file = sharedModel('zoo/distilbert_base', this);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-seq-dim-zoo-'));
      const result = compileModel(file, { out, target });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as { nodes: { op: string }[] };
      assert.equal(graph.nodes.filter((n) => n.op === 'attention').length, 6);
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      assert.match(model, /kInputDims, 2\};/);
      assert.match(model, /c\.dims\[0\]/);
    });

  it('runtimeDimErrors: a bounded input symbol is no error; an unbounded one is, naming the input and the --dim fix', () => {
    const bounded = optimizeImported(importOnnxBytes(buildModel(bertLike()), { dimBounds }), 'bert_like.onnx', {}).graph;
    assert.deepEqual(runtimeDimErrors(bounded), []);
    const unbounded = optimizeImported(
      importOnnxBytes(buildModel(bertLike()), { dimBounds: { seq: [1, Infinity] } }),
      'bert_like.onnx',
      {},
    ).graph;
    const errors = runtimeDimErrors(unbounded);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'cuda.symbolic-dim');
    assert.match(
      errors[0].message,
      /model input 'input_ids' has symbolic dim 'seq' \(1\.\.Infinity\) at axis 1 with no upper bound.*--dim seq=1\.\.N/,
    );
    assert.equal(CodegenContext.forChecks(unbounded).inputDims.length, 0);
  });

  it('the runtime validates input shapes and resolves the dims on the CPU (nvcc-built, no GPU call)', function () {
    if (!haveNvcc()) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-seq-dim-rt-'));
    // the runtime's own source in one unit with a hand-written description: ids [batch, seq], mask [batch, seq],
    // type ids [batch, seq] sharing seq, and pos [seq, 8]; AITModel built directly (AITModelCreate needs a GPU)
    fs.writeFileSync(
      path.join(dir, 'check.cu'),
      `#include "ait_runtime.cu"
#include <cstdio>
namespace {
const ait::IoDescription kInputs[] = {{"ids", ait::DType::kInt64, 2, {4, 16}, 0}, {"mask", ait::DType::kInt64, 2, {4, 16}, 0},
                                      {"pos", ait::DType::kFloat16, 2, {16, 8}, -1}};
const char* const kDimNames[] = {"seq", "nonzero0"};
const ait::InputDimDescription kInputDims[] = {{0, 0, 1, 1, 16}, {0, 1, 1, 1, 16}, {0, 2, 0, 1, 16}};
const ait::ModelDescription kModel = {ait::kModelAbiVersion, "check", 4, kInputs, 3, nullptr, 0, nullptr, 0, nullptr, 0, 0, 0,
                                      nullptr, 0, 2, kDimNames, nullptr, kInputDims, 3};
}  // namespace
extern "C" const ait::ModelDescription* ait_model_description() { return &kModel; }
void say(AITModel* m, AITStatus s) { std::printf("%d %s\\n", static_cast<int>(s), s == AIT_OK ? "" : m->last_error.c_str()); }
int main() {
  AITModel m;
  m.desc = &kModel;
  m.dims.assign(2, 0);
  m.input_shapes.assign(3, {});
  m.input_dim_values.assign(3, 0);
  const int64_t ids[] = {2, 7}, wide[] = {2, 17}, batch5[] = {5, 7}, pos7[] = {7, 8}, pos9[] = {9, 8}, pos_bad[] = {7, 4};
  say(&m, resolve_input_dims(&m));                   // nothing set: every input dim at its max
  std::printf("seq %lld\\n", static_cast<long long>(m.dims[0]));
  say(&m, AITModelSetInputShape(&m, 0, ids, 2));
  say(&m, AITModelSetInputShape(&m, 0, ids, 3));     // wrong rank
  say(&m, AITModelSetInputShape(&m, 0, wide, 2));    // past seq's max
  say(&m, AITModelSetInputShape(&m, 0, batch5, 2));  // past max batch
  say(&m, AITModelSetInputShape(&m, 2, pos_bad, 2)); // a fixed axis
  say(&m, AITModelSetInputShape(&m, 2, pos7, 2));
  say(&m, resolve_input_dims(&m));                   // mask unset: 16 against 7
  say(&m, AITModelSetInputShape(&m, 1, ids, 2));
  say(&m, resolve_input_dims(&m));
  std::printf("seq %lld\\n", static_cast<long long>(m.dims[0]));
  say(&m, AITModelSetInputShape(&m, 2, pos9, 2));
  say(&m, resolve_input_dims(&m));                   // pos disagrees
  say(&m, AITModelSetInputShape(&m, 2, nullptr, -1));  // forgotten: max again, disagrees too
  say(&m, resolve_input_dims(&m));
  return 0;
}
`,
    );
    const exe = path.join(dir, 'check');
    const build = spawnSync(
      'nvcc',
      ['-std=c++17', '-O0', `-I${RUNTIME}`, path.join(dir, 'check.cu'), path.join(RUNTIME, 'safetensors.cc'), '-o', exe],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(build.status, 0, build.stderr + build.stdout);
    const r = spawnSync(exe, [], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0].trim(), '0');
    assert.equal(lines[1], 'seq 16');
    assert.equal(lines[2].trim(), '0');
    assert.match(lines[3], /^1 input 'ids' has rank 2, got a shape of rank 3$/);
    assert.match(lines[4], /^1 input 'ids': axis 1 \(is 'seq'\) must be in 1\.\.16, got 17$/);
    assert.match(lines[5], /^1 input 'ids': axis 0 \(is the batch\) must be in 1\.\.4, got 5$/);
    assert.match(lines[6], /^1 input 'pos': axis 1 \(is fixed\) must be 8, got 4$/);
    assert.equal(lines[7].trim(), '0');
    assert.match(
      lines[8],
      /^1 inputs 'ids' \(axis 1\) and 'mask' \(axis 1\) share 'seq' but their shapes give 7 and 16 \(an input whose shape is not set takes the max\)$/,
    );
    assert.equal(lines[9].trim(), '0');
    assert.equal(lines[10].trim(), '0');
    assert.equal(lines[11], 'seq 7');
    assert.equal(lines[12].trim(), '0');
    assert.match(lines[13], /^1 inputs 'ids' \(axis 1\) and 'pos' \(axis 0\) share 'seq' but their shapes give 7 and 9$/);
    assert.equal(lines[14].trim(), '0');
    assert.match(lines[15], /share 'seq' but their shapes give 7 and 16/);
  });

  it("ait_model.py hands the arrays' shapes to the runtime and trims the outputs to the run's seq", function () {
    if (spawnSync('python3', ['-c', 'import numpy']).status !== 0) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-seq-dim-py-'));
    fs.writeFileSync(path.join(dir, 'ait_model.py'), pythonModule('bert_like'));
    const script = `
import ctypes, sys
import numpy as np
sys.path.insert(0, ${JSON.stringify(dir)})
import ait_model
memory, outputs, runs, shapes = {}, {}, [], {}
def malloc(out, n):
    buf = ctypes.create_string_buffer(n)
    memory[ctypes.addressof(buf)] = buf
    ctypes.cast(out, ctypes.POINTER(ctypes.c_void_p))[0] = ctypes.addressof(buf)
    return 0
def memcpy(dst, src, n, direction):
    ctypes.memmove(dst, src, n)
    return 0
def set_output(m, k, p):
    outputs[k] = p
    return 0
def set_input_shape(m, k, shape, rank):
    shapes[k] = [shape[a] for a in range(rank)]
    return 0
def input_dim(m, k, name, index, axis, lo, hi):
    name._obj.value = b"seq"
    index._obj.value, axis._obj.value, lo._obj.value, hi._obj.value = k, 1, 1, 16
    return 0
def run(m, batch, stream):
    seq = shapes[0][1]
    runs.append((batch, seq))
    y = np.arange(batch * seq * 4, dtype=np.float32)
    ctypes.memmove(outputs[0], y.ctypes.data, y.nbytes)
    return 0
def output_shape(m, k, shape, capacity, rank):
    for a, d in enumerate((runs[-1][0], runs[-1][1], 4)):
        shape[a] = d
    rank._obj.value = 3
    return 0
class FakeLib:
    AITDeviceMalloc = staticmethod(malloc)
    AITDeviceFree = staticmethod(lambda p: 0)
    AITMemcpy = staticmethod(memcpy)
    AITModelSetInput = staticmethod(lambda m, k, p: 0)
    AITModelSetOutput = staticmethod(set_output)
    AITModelSetInputShape = staticmethod(set_input_shape)
    AITModelGetNumInputDims = staticmethod(lambda m: 2)
    AITModelGetInputDim = staticmethod(input_dim)
    AITModelRun = staticmethod(run)
    AITModelGetOutputShape = staticmethod(output_shape)
    AITModelGetLastError = staticmethod(lambda m: b"")
    AITGetLastError = staticmethod(lambda: b"")
model = ait_model.AITModel.__new__(ait_model.AITModel)
model._lib, model._model = FakeLib(), None
type(model).inputs = property(lambda self: [dict(name="input_ids", dtype=5, max_shape=[4, 16], batch_axis=0),
                                            dict(name="attention_mask", dtype=5, max_shape=[4, 16], batch_axis=0)])
type(model).outputs = property(lambda self: [dict(name="y", dtype=2, max_shape=[4, 16, 4], batch_axis=0)])
assert [d["name"] for d in model.input_dims] == ["seq", "seq"], model.input_dims
ids = np.zeros((2, 7), dtype=np.int64)
(y,) = model.run([ids, np.ones((2, 7), dtype=np.int64)])
assert runs == [(2, 7)], runs
assert shapes == {0: [2, 7], 1: [2, 7]}, shapes
assert y.shape == (2, 7, 4), y.shape
assert (y.reshape(-1) == np.arange(2 * 7 * 4)).all()
try:
    model.run([ids, np.ones((2, 7, 1), dtype=np.int64)])
    raise SystemExit("a wrong rank passed")
except ait_model.AITError as e:
    assert "attention_mask" in str(e), e
print("ok")
`;
    const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ok/);
  });
});
