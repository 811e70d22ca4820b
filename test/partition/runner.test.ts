/**
 * ait_partitioned.py runs the segments of partition.json in order, passing tensors by name: compiled segments through
 * their ait_model.py (here a fake AITModel), fallback segments through onnxruntime (here a fake module), with the
 * fallback's absent weights fed from bind_weights, and reports the time of each segment and of the fallback.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { partitionedRunner } from '../../compiler/backends/cuda/codegen/build-files';

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
});
