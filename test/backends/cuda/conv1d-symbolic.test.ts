/**
 * 1-D convolutions whose length is the run's dim (an audio model's [1, C, L] input: L is the one symbolic dim, so the
 * build's run-time dim) on the CUDA backend. lift-1d.ts makes them 2-D over [N, 1, L, C]; the fused NHWC conv now
 * keeps a symbolic spatial size for any padding and stride (the ONNX window size, floor((L + pads - window) / stride)
 * + 1, as the ONNX op inferred it), and the conv lowerings (CUTLASS implicit GEMM, depthwise and im2col + GEMM) take
 * every spatial size as a C++ expression of the run's dim, with instances chosen per range of it. Checked: the
 * optimized graph computes what onnxruntime computes on the original model at several lengths; the sizes the
 * lowering evaluates at a length (CodegenContext.at) are the interpreter's; the model compiles for sm90 and sm80 with
 * every node lowered and nvcc compiles its model.cu. A second symbolic dim besides the length is still an error with
 * the --dim fix.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { pythonModule } from '../../../compiler/backends/cuda/codegen/build-files';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { supportOf } from '../../../compiler/backends/support';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';
import { nvccCompileGenerated, requireNvcc, GPU_TARGETS } from '../../helpers/nvcc';

const C = 16;
const weight = (name: string, dims: number[], seed: number) => {
  const random = seededRandom(seed);
  return {
    ...tensor(
      'float32',
      dims,
      Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (random() * 2 - 1) * 0.3),
    ),
    name,
  };
};

/**
 * A Whisper/wav2vec2-like stem over [1, 16, L]: conv k3 'same' + bias + Gelu; conv k3 stride 2 pad 1 (Whisper's
 * conv2); a depthwise conv k5 pad 2; a 'valid' conv k3 (L shrinks by 2) with 8 output channels.
 */
function stem(): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [1, C, 'L'] }],
    initializers: [
      weight('w1', [32, C, 3], 1),
      weight('b1', [32], 2),
      weight('w2', [32, 32, 3], 3),
      weight('w3', [32, 1, 5], 4),
      weight('w4', [8, 32, 3], 5),
    ],
    nodes: [
      { op: 'Conv', name: 'conv1', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], attrs: { pads: [1, 1] } },
      { op: 'Gelu', name: 'gelu', inputs: ['c1'], outputs: ['g1'] },
      { op: 'Conv', name: 'conv2', inputs: ['g1', 'w2'], outputs: ['c2'], attrs: { pads: [1, 1], strides: [2] } },
      { op: 'Conv', name: 'depthwise', inputs: ['c2', 'w3'], outputs: ['c3'], attrs: { pads: [2, 2], group: 32 } },
      { op: 'Relu', name: 'relu', inputs: ['c3'], outputs: ['r3'] },
      { op: 'Conv', name: 'valid', inputs: ['r3', 'w4'], outputs: ['y'] },
    ],
    outputs: ['y'],
    opset: 20,
  };
}

function optimized() {
  const result = optimizeImported(importOnnxBytes(buildModel(stem())), 'stem.onnx', { validate: true });
  assert.deepEqual(
    result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  return result.graph;
}

function compile(target: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-conv1d-'));
  const file = path.join(dir, 'stem.onnx');
  fs.writeFileSync(file, buildModel(stem()));
  const out = path.join(dir, 'out');
  return { out, result: compileModel(file, { out, target, maxBatch: 3000 }) };
}

describe('cuda backend: 1-D convolutions over the run-time length', function () {
  this.timeout(600_000);

  it('every node lowers on sm90 and sm80; the optimized graph computes what onnxruntime computes at several lengths', async () => {
    const graph = optimized();
    assert.ok(graph.nodes.filter((n) => n.op === 'conv2d').length === 4, graph.nodes.map((n) => n.op).join(', '));
    for (const target of ['cuda:sm90', 'cuda:sm80'])
      for (const node of graph.nodes)
        assert.equal(supportOf(graph, node, target).reason, undefined, `${target}: ${node.op} '${node.name}'`);
    const session = await ort.InferenceSession.create(buildModel(stem()), { logSeverityLevel: 3 });
    for (const L of [8, 37, 100]) {
      const random = seededRandom(L);
      const x = makeTensor(
        'float32',
        [1, C, L],
        Array.from({ length: C * L }, () => random() * 2 - 1),
      );
      const theirs = (await session.run({ x: new ort.Tensor('float32', Float32Array.from(numeric(x)), [1, C, L]) })).y;
      const [ours] = runGraph(graph, [x]);
      assert.deepEqual(ours.shape, [...theirs.dims], `L=${L}`);
      const expected = theirs.data as Float32Array;
      Array.from(numeric(ours)).forEach((v, i) =>
        assert.ok(Math.abs(v - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i])), `L=${L} [${i}] ${v} vs onnxruntime ${expected[i]}`),
      );
    }
  });

  it('the spatial sizes the lowering evaluates at a length are the lengths the interpreter produces', () => {
    const graph = optimized();
    const ctx = CodegenContext.forChecks(graph);
    const convs = graph.nodes.filter((n) => n.op === 'conv2d');
    for (const L of [7, 8, 37, 100]) {
      const x = makeTensor('float32', [1, C, L], new Array(C * L).fill(0.5));
      const values = new Map<string, number[]>();
      // every tensor's shape in the interpreter (runGraph with all intermediates as outputs)
      const names = convs.map((n) => n.outputs[0]);
      const outputs = graph.outputs;
      graph.outputs = names;
      try {
        runGraph(graph, [x]).forEach((t, i) => values.set(names[i], t.shape));
      } finally {
        graph.outputs = outputs;
      }
      for (const n of convs) {
        const shape = ctx.shapeOf(n.outputs[0]).map((d) => ctx.at(d, L));
        assert.deepEqual(shape, values.get(n.outputs[0]), `${n.name} at L=${L}`);
      }
    }
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: compiles with every node lowered, the convs' sizes from the run`, () => {
      const { out, result } = compile(target);
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { name: string; status?: { supported: boolean }; kernel?: { name: string; config: Record<string, unknown> } }[];
      };
      assert.deepEqual(
        graph.nodes.filter((n) => n.status?.supported === false).map((n) => n.name),
        [],
      );
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      // conv1 over [1, 1, L, 16]: W and Q the run's length
      assert.match(
        model,
        /AitConvArgs conv\{static_cast<int>\(1\), 1, static_cast<int>\(batch\), 16, 32, 1, 3, 1, static_cast<int>\(batch\),/,
      );
      // the strided conv's output length: floor((L - 1) / 2) + 1
      assert.match(model, /static_cast<int>\(\(ait::floor_div\(\(-1 \+ batch\), 2\) \+ 1\)\)|ait::floor_div/);
      assert.ok(graph.nodes.some((n) => n.kernel?.name.startsWith('ait_depthwise_conv2d_nhwc')));
      // the input takes the run's length on axis 2; the output's length is computed (output_shape), batch axis -1
      assert.match(model, /\{"x", [\w:]+, 3, \{1, 16, 3000\}, 2\},/);
      assert.match(model, /\{"y", [\w:]+, 3, \{1, 8, \d+\}, -1\},/);
      assert.match(model, /case 0:\n\s+shape\[2\] = [^;]*ait::floor_div[^;]*;/);
    });

  it('ait_model.py takes the batch from the input axis that holds it and trims a computed output length', function () {
    if (spawnSync('python3', ['-c', 'import numpy']).status !== 0) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-conv1d-py-'));
    fs.writeFileSync(path.join(dir, 'ait_model.py'), pythonModule('stem'));
    const script = `
import ctypes, sys
import numpy as np
sys.path.insert(0, ${JSON.stringify(dir)})
import ait_model
memory, outputs, runs = {}, {}, []
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
def length(L):
    return (L - 1) // 2 + 1 - 2
def run(m, batch, stream):
    runs.append(batch)
    y = np.arange(8 * length(batch), dtype=np.float32)
    ctypes.memmove(outputs[0], y.ctypes.data, y.nbytes)
    return 0
def output_shape(m, k, shape, capacity, rank):
    for a, d in enumerate((1, 8, length(runs[-1]))):
        shape[a] = d
    rank._obj.value = 3
    return 0
class FakeLib:
    AITDeviceMalloc = staticmethod(malloc)
    AITDeviceFree = staticmethod(lambda p: 0)
    AITMemcpy = staticmethod(memcpy)
    AITModelSetInput = staticmethod(lambda m, k, p: 0)
    AITModelSetOutput = staticmethod(set_output)
    AITModelRun = staticmethod(run)
    AITModelGetOutputShape = staticmethod(output_shape)
    AITGetLastError = staticmethod(lambda: b"")
model = ait_model.AITModel.__new__(ait_model.AITModel)
model._lib, model._model = FakeLib(), None
type(model).inputs = property(lambda self: [dict(name="x", dtype=2, max_shape=[1, 16, 3000], batch_axis=2)])
type(model).outputs = property(lambda self: [dict(name="y", dtype=2, max_shape=[1, 8, length(3000)], batch_axis=-1)])
(y,) = model.run([np.ones((1, 16, 37), dtype=np.float32)])
assert runs == [37], runs
assert y.shape == (1, 8, length(37)), y.shape
assert (y.reshape(-1) == np.arange(8 * length(37))).all()
print("ok")
`;
    const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ok/);
  });

  it('with a batch besides the length, the length is an input dim the runtime sets (c.dims[0]); unbounded, an error with the --dim fix', () => {
    const spec = stem();
    spec.inputs[0].dims = ['B', C, 'L'];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-conv1d-'));
    const file = path.join(dir, 'two.onnx');
    fs.writeFileSync(file, buildModel(spec));
    const result = compileModel(file, { out: path.join(dir, 'out'), target: 'cuda:sm90', maxBatch: 4 });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const model = fs.readFileSync(path.join(dir, 'out', 'src/model.cu'), 'utf8');
    assert.match(model, /\{0, 0, 2, 1, 256\}, {2}\/\/ L/);
    assert.match(model, /AitConvArgs conv\{static_cast<int>\(batch\), 1, static_cast<int>\(c\.dims\[0\]\),/);
    const unbounded = compileModel(file, {
      out: path.join(dir, 'out2'),
      target: 'cuda:sm90',
      maxBatch: 4,
      dimBounds: { L: [1, Infinity] },
    });
    assert.ok(unbounded.diagnostics.some((d) => d.code === 'cuda.symbolic-dim' && /'L'.*--dim L=/.test(d.message)));
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
