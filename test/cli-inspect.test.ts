import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SHARED_MODELS, sharedModel } from './helpers/models';

const CLI = path.resolve(__dirname, '..', 'dist', 'cli.js');

function ait(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

describe('ait inspect (CLI)', () => {
  it('summarizes the bundled example with symbolic batch and absent weights', () => {
    const r = ait(['inspect', 'examples/resnet50/resnet50.onnx', '--json']);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const s = JSON.parse(r.stdout);
    assert.deepEqual(s.inputs, [{ name: 'input', dtype: 'float32', shape: '[batch, 3, 224, 224]' }]);
    assert.equal(s.opHistogram.Conv, 53);
    assert.equal(s.parameters.weights, 'partial');
    assert.ok(s.diagnostics.some((d: { code: string }) => d.code === 'onnx.weights-absent'));
    assert.deepEqual(s.unknownOps, []);
  });

  it('fails with a named cause on a file that is not ONNX', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-'));
    const f = path.join(dir, 'notes.onnx');
    fs.writeFileSync(f, 'this is a text file, not a protobuf model\n');
    const r = ait(['inspect', f]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not an ONNX model/);
    assert.match(r.stderr, /notes\.onnx/);
  });

  it('fails with a named cause on a truncated model', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-'));
    const f = path.join(dir, 'cut.onnx');
    const bytes = fs.readFileSync('examples/resnet50/resnet50.onnx');
    fs.writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const r = ait(['inspect', f]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /truncated/);
    assert.match(r.stderr, /cut\.onnx/);
  });

  for (const name of SHARED_MODELS) {
    it(`shapes every tensor of ${name}`, function () {
      const file = sharedModel(name, this);
      const r = ait(['inspect', file, '--json']);
      const s = JSON.parse(r.stdout);
      assert.deepEqual(s.unknownOps, [], JSON.stringify(s.unknownOps));
      assert.deepEqual(s.unshapedTensors.slice(0, 10), []);
      const errors = s.diagnostics.filter((d: { severity: string }) => d.severity === 'error');
      assert.deepEqual(errors.slice(0, 5), []);
      assert.equal(r.status, 0);
    });
  }
});

export { execFileSync };
