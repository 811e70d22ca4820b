/**
 * ait_partitioned.py runs the segments of partition.json in order, passing tensors by name: compiled segments through
 * their ait_model.py (here a fake AITModel), fallback segments through onnxruntime (here a fake module), with the
 * fallback's absent weights fed from bind_weights, and reports the time of each segment and of the fallback. With an
 * input dim (seq), each compiled segment's real ait_model.py (over a fake library) gets its inputs at the run's seq.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { partitionedRunner, pythonModule } from '../../compiler/backends/cuda/codegen/build-files';

describe('ait_partitioned.py', () => {
  it('runs compiled and fallback segments in order, by tensor name, and reports the fallback time', function () {
    if (spawnSync('python3', ['-c', 'import numpy']).status !== 0) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-runner-'));
    try {
      fs.writeFileSync(path.join(dir, 'ait_partitioned.py'), partitionedRunner('tiny'));
      const t = (name: string, dtype = 'float32') => ({ name, dtype, shape: [2, 3] });
      const partition = {
        format: 'ait-partition',
        version: 1,
        inputs: ['x'],
        outputs: ['y'],
        segments: [
          { index: 0, kind: 'compiled', inputs: [t('x')], outputs: [t('a')], files: { dir: 'segments/0' } },
          { index: 1, kind: 'fallback', inputs: [t('a')], outputs: [t('b')], files: { onnx: 'fallback/1.onnx' }, absentWeights: ['w'] },
          { index: 2, kind: 'compiled', inputs: [t('b'), t('x')], outputs: [t('y')], files: { dir: 'segments/2' } },
        ],
      };
      fs.writeFileSync(path.join(dir, 'partition.json'), JSON.stringify(partition));
      // a fake ait_model.py per compiled segment: segment 0 doubles x, segment 2 adds x to b (fp16 outputs)
      const fake = (ins: string[], out: string, body: string) => `
import numpy as np
class AITModel:
    def __init__(self, weights="default"):
        self.bound = {}
    inputs = property(lambda self: [dict(name=n) for n in ${JSON.stringify(ins)}])
    outputs = property(lambda self: [dict(name=${JSON.stringify(out)})])
    def bind_weights(self, tensors):
        self.bound.update(tensors)
        return [k for k in tensors if k == "conv.weight"]
    def randomize_weights(self, seed=0, scale=0.05):
        pass
    def run(self, feeds):
        assert isinstance(feeds, dict) and sorted(feeds) == sorted(${JSON.stringify(ins)}), feeds
        v = {k: np.asarray(x, dtype=np.float32) for k, x in feeds.items()}
        return [(${body}).astype(np.float16)]
`;
      for (const [k, ins, out, body] of [
        [0, ['x'], 'a', "v['x'] * 2"],
        [2, ['b', 'x'], 'y', "v['b'] + v['x']"],
      ] as const) {
        fs.mkdirSync(path.join(dir, 'segments', String(k)), { recursive: true });
        fs.writeFileSync(path.join(dir, 'segments', String(k), 'ait_model.py'), fake([...ins], out, body));
      }
      // a fake onnxruntime: the fallback segment computes b = a * w (w an absent weight, bound by the user)
      fs.mkdirSync(path.join(dir, 'fake', 'onnxruntime'), { recursive: true });
      fs.writeFileSync(
        path.join(dir, 'fake', 'onnxruntime', '__init__.py'),
        `
import numpy as np
class _IO:
    def __init__(self, name, shape): self.name, self.shape = name, shape
def get_available_providers(): return ["CPUExecutionProvider"]
class InferenceSession:
    def __init__(self, path, providers=None):
        assert path.endswith("fallback/1.onnx") and providers == ["CPUExecutionProvider"], (path, providers)
    def get_inputs(self): return [_IO("a", [2, 3]), _IO("w", [2, 3])]
    def get_outputs(self): return [_IO("b", [2, 3])]
    def run(self, names, feeds):
        assert names == ["b"] and feeds["a"].dtype == np.float32, feeds
        return [feeds["a"] * feeds["w"]]
`,
      );
      const script = `
import sys
import numpy as np
sys.path.insert(0, ${JSON.stringify(path.join(dir, 'fake'))})
sys.path.insert(0, ${JSON.stringify(dir)})
from ait_partitioned import PartitionedModel
model = PartitionedModel()
used = model.bind_weights({"w": np.full((2, 3), 3.0, dtype=np.float32), "conv.weight": np.zeros(1)})
assert used == ["conv.weight", "w"], used
x = np.arange(6, dtype=np.float32).reshape(2, 3)
y, = model.run([x])
assert np.allclose(y, x * 2 * 3 + x), y
assert [t["kind"] for t in model.last_timings] == ["compiled", "fallback", "compiled"]
assert model.fallback_ms == model.last_timings[1]["ms"]
print(model.report())
`;
      const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /segment {2}1 {2}fallback/);
      assert.match(r.stdout, /fallback \(onnxruntime\) [\d.]+ ms = [\d.]+%/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives each compiled segment's ait_model.py its inputs at the run's seq, and the next segment the trimmed outputs", function () {
    if (spawnSync('python3', ['-c', 'import numpy']).status !== 0) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-runner-seq-'));
    try {
      fs.writeFileSync(path.join(dir, 'ait_partitioned.py'), partitionedRunner('tiny'));
      fs.writeFileSync(path.join(dir, 'real_ait_model.py'), pythonModule('tiny_segment'));
      const t = (name: string) => ({ name, dtype: 'float32', shape: ['batch', 'seq', 4] });
      const partition = {
        format: 'ait-partition',
        version: 1,
        inputs: ['x'],
        outputs: ['y'],
        segments: [
          { index: 0, kind: 'compiled', inputs: [t('x')], outputs: [t('a')], files: { dir: 'segments/0' } },
          { index: 1, kind: 'fallback', inputs: [t('a')], outputs: [t('b')], files: { onnx: 'fallback/1.onnx' } },
          { index: 2, kind: 'compiled', inputs: [t('b')], outputs: [t('y')], files: { dir: 'segments/2' } },
        ],
      };
      fs.writeFileSync(path.join(dir, 'partition.json'), JSON.stringify(partition));
      // the generated ait_model.py over a fake library: input and output [batch, seq, 4] (max [2, 8, 4], seq an input
      // dim), the run multiplies by `scale` at the shape the runner set; the output shape is the input's
      fs.writeFileSync(
        path.join(dir, 'fake_ait.py'),
        `
import ctypes, importlib.util, os
import numpy as np
_spec = importlib.util.spec_from_file_location("real_ait_model", os.path.join(os.path.dirname(__file__), "real_ait_model.py"))
real = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(real)
memory = {}
class FakeLib:
    def __init__(self, scale):
        self.scale, self.inputs, self.outputs, self.shapes = scale, {}, {}, []
    def AITDeviceMalloc(self, out, n):
        buf = ctypes.create_string_buffer(n)
        memory[ctypes.addressof(buf)] = buf
        ctypes.cast(out, ctypes.POINTER(ctypes.c_void_p))[0] = ctypes.addressof(buf)
        return 0
    def AITDeviceFree(self, p): return 0
    def AITMemcpy(self, dst, src, n, direction):
        ctypes.memmove(dst, src, n)
        return 0
    def AITModelSetInput(self, m, k, p):
        self.inputs[k] = p.value
        return 0
    def AITModelSetOutput(self, m, k, p):
        self.outputs[k] = p.value
        return 0
    def AITModelSetInputShape(self, m, k, shape, rank):
        self.shapes.append([shape[a] for a in range(rank)])
        return 0
    def AITModelGetNumInputDims(self, m): return 1
    def AITModelGetInputDim(self, m, k, name, index, axis, lo, hi):
        name._obj.value = b"seq"
        index._obj.value, axis._obj.value, lo._obj.value, hi._obj.value = 0, 1, 1, 8
        return 0
    def AITModelRun(self, m, batch, stream):
        shape = self.shapes[-1]
        n = int(np.prod(shape))
        x = np.frombuffer(ctypes.string_at(self.inputs[0], 4 * n), dtype=np.float32)
        y = (x * self.scale).astype(np.float32)
        ctypes.memmove(self.outputs[0], y.ctypes.data, y.nbytes)
        return 0
    def AITModelGetOutputShape(self, m, k, shape, capacity, rank):
        for a, d in enumerate(self.shapes[-1]):
            shape[a] = d
        rank._obj.value = len(self.shapes[-1])
        return 0
    def AITModelGetLastError(self, m): return b""
    def AITGetLastError(self): return b""
def make(input, output, scale):
    class AITModel(real.AITModel):
        def __init__(self, weights="default"):
            self._lib, self._model = FakeLib(scale), None
        inputs = property(lambda self: [dict(name=input, dtype=2, max_shape=[2, 8, 4], batch_axis=0)])
        outputs = property(lambda self: [dict(name=output, dtype=2, max_shape=[2, 8, 4], batch_axis=0)])
    return AITModel
`,
      );
      for (const [k, ins, out, scale] of [
        [0, 'x', 'a', 2],
        [2, 'b', 'y', 3],
      ] as const) {
        fs.mkdirSync(path.join(dir, 'segments', String(k)), { recursive: true });
        fs.writeFileSync(
          path.join(dir, 'segments', String(k), 'ait_model.py'),
          `import sys\nsys.path.insert(0, ${JSON.stringify(dir)})\nfrom fake_ait import make\nAITModel = make(${JSON.stringify(ins)}, ${JSON.stringify(out)}, ${scale})\n`,
        );
      }
      // a fake onnxruntime: b = a + 1 at whatever shape it is given
      fs.mkdirSync(path.join(dir, 'fake', 'onnxruntime'), { recursive: true });
      fs.writeFileSync(
        path.join(dir, 'fake', 'onnxruntime', '__init__.py'),
        `
class _IO:
    def __init__(self, name): self.name, self.shape = name, ["batch", "seq", 4]
def get_available_providers(): return ["CPUExecutionProvider"]
class InferenceSession:
    def __init__(self, path, providers=None): pass
    def get_inputs(self): return [_IO("a")]
    def get_outputs(self): return [_IO("b")]
    def run(self, names, feeds): return [feeds["a"] + 1]
`,
      );
      const script = `
import sys
import numpy as np
sys.path.insert(0, ${JSON.stringify(path.join(dir, 'fake'))})
sys.path.insert(0, ${JSON.stringify(dir)})
from ait_partitioned import PartitionedModel
model = PartitionedModel()
for seq in (3, 7):
    x = np.arange(2 * seq * 4, dtype=np.float32).reshape(2, seq, 4)
    y, = model.run([x])
    assert y.shape == (2, seq, 4), y.shape
    assert np.allclose(y, (x * 2 + 1) * 3), y
for k in (0, 2):
    assert model.segments[k][1]._lib.shapes == [[2, 3, 4], [2, 7, 4]], (k, model.segments[k][1]._lib.shapes)
print("ok")
`;
      const r = spawnSync('python3', ['-c', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /ok/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
