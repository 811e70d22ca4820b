/**
 * ait_model.py's run_debug(): the per-node outputs AITModelRunDebug hands to its callback come back as NumPy arrays
 * by graph.json node id (fp16 as float32), with a fake runtime library (no GPU).
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pythonModule } from '../../../compiler/backends/cuda/codegen/build-files';

describe('ait_model.py run_debug (AITModelRunDebug)', () => {
  it('returns every node output the runtime reports, by node id, with its shape, and the model outputs', function () {
    if (spawnSync('python3', ['-c', 'import numpy']).status !== 0) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-debug-'));
    try {
      fs.writeFileSync(path.join(dir, 'ait_model.py'), pythonModule('tiny'));
      const script = `
import ctypes, sys
import numpy as np
sys.path.insert(0, ${JSON.stringify(dir)})
import ait_model
memory = {}
calls = []
def malloc(out, n):
    buf = ctypes.create_string_buffer(n)
    memory[ctypes.addressof(buf)] = buf
    ctypes.cast(out, ctypes.POINTER(ctypes.c_void_p))[0] = ctypes.addressof(buf)
    return 0
def memcpy(dst, src, n, direction):
    ctypes.memmove(dst, src, n)
    return 0
outputs = {}
def set_output(m, k, p):
    outputs[k] = p
    return 0
def run_debug(m, batch, stream, callback, user):
    calls.append(("debug", batch))
    a = np.arange(batch * 6, dtype=np.float16).reshape(batch, 2, 3) * np.float16(0.5)
    shape = (ctypes.c_int64 * 3)(batch, 2, 3)
    callback(None, b"n3", 1, 3, shape, a.ctypes.data, a.nbytes)
    b = np.full((batch, 4), 7, dtype=np.float32)
    callback(None, b"n5", 2, 2, (ctypes.c_int64 * 2)(batch, 4), b.ctypes.data, b.nbytes)
    ctypes.memmove(outputs[0], b.ctypes.data, b.nbytes)
    return 0
class FakeLib:
    AITDeviceMalloc = staticmethod(malloc)
    AITDeviceFree = staticmethod(lambda p: 0)
    AITMemcpy = staticmethod(memcpy)
    AITModelSetInput = staticmethod(lambda m, k, p: 0)
    AITModelSetOutput = staticmethod(set_output)
    AITModelRunDebug = staticmethod(lambda m, batch, stream, cb, user: run_debug(m, batch, stream, cb, user))
    AITModelRun = staticmethod(lambda m, batch, stream: calls.append("run") or 0)
    AITModelDestroy = staticmethod(lambda m: 0)
    AITGetLastError = staticmethod(lambda: b"")
model = ait_model.AITModel.__new__(ait_model.AITModel)
model._lib, model._model = FakeLib(), None
specs_in = [dict(name="x", dtype=2, max_shape=[8, 4], batch_axis=0)]
specs_out = [dict(name="y", dtype=2, max_shape=[8, 4], batch_axis=0)]
type(model).inputs = property(lambda self: specs_in)
type(model).outputs = property(lambda self: specs_out)
outs, nodes = model.run_debug([np.ones((3, 4), dtype=np.float32)])
assert calls == [("debug", 3)], calls
assert sorted(nodes) == ["n3", "n5"], nodes
assert nodes["n3"].dtype == np.float32 and nodes["n3"].shape == (3, 2, 3), nodes["n3"]
assert float(nodes["n3"][2, 1, 2]) == 8.5, nodes["n3"]
assert nodes["n5"].shape == (3, 4) and (nodes["n5"] == 7).all()
assert outs[0].shape == (3, 4) and (outs[0] == 7).all()
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
