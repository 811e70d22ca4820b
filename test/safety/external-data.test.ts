/**
 * The external-data path policy (compiler/onnx/external-data.ts): a model may only read regular files inside its
 * own directory, in ranges that lie inside them. Each hostile location is refused with an error naming the
 * initializer and the location, through inspect and compile, and nothing outside the model's directory is read.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CompileError } from '../../compiler/diagnostics';
import { importOnnxFile } from '../../compiler/onnx/import';
import { compileModel } from '../../compiler/compile';
import { buildModel, type TensorSpec } from '../helpers/onnx-builder';

/** y = x + w, with w (float32 [4]) stored externally as `location` with the given entries. */
function writeModel(dir: string, location: string, entries?: Record<string, string>): string {
  const w: TensorSpec & { name: string } = { name: 'w', dtype: 'float32', dims: [4], external: location, externalEntries: entries };
  const file = path.join(dir, 'model.onnx');
  fs.writeFileSync(
    file,
    buildModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: [4] }],
      initializers: [w],
      nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
      outputs: ['y'],
    }),
  );
  return file;
}

function refusal(fn: () => unknown): { code: string; message: string; tensor?: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CompileError, `a CompileError, got ${(e as Error).stack}`);
    const d = e.diagnostics[0];
    assert.equal(e.diagnostics.length, 1);
    return { code: d.code, message: d.message, tensor: d.location?.tensor };
  }
  assert.fail('expected a refusal');
}

describe('external data stays inside the model directory', () => {
  let dir: string;
  let outside: string;
  beforeEach(() => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-extdata-'));
    dir = path.join(root, 'model');
    outside = path.join(root, 'secret.bin');
    fs.mkdirSync(dir);
    fs.writeFileSync(outside, Buffer.from(new Float32Array([7, 7, 7, 7]).buffer));
  });

  const hostile: [string, string, RegExp][] = [
    ['a parent-relative path', '../secret.bin', /leaves the model's directory through '\.\.'/],
    ['a deep escape', '../../../../../../etc/passwd', /leaves the model's directory/],
    ['an escape in the middle', 'sub/../../secret.bin', /leaves the model's directory/],
    ['an absolute path', '/etc/passwd', /is absolute: it must be relative to the model's directory/],
    ['/proc', '/proc/self/environ', /is absolute/],
    ['a Windows drive path', 'C:\\weights.bin', /is absolute/],
    ['a UNC path', '\\\\server\\share\\w.bin', /is absolute/],
    ['a backslash escape', '..\\secret.bin', /holds a backslash/],
    ['a NUL byte', 'w.bin\0.txt', /NUL/],
    ['an empty location', '', /is empty/],
  ];
  for (const [what, location, why] of hostile) {
    it(`refuses ${what} (${JSON.stringify(location)}) in inspect and compile, naming the initializer`, () => {
      const file = writeModel(dir, location);
      const r = refusal(() => importOnnxFile(file));
      assert.equal(r.code, 'onnx.external-data');
      assert.equal(r.tensor, 'w');
      assert.match(r.message, /^initializer 'w': external data location /);
      assert.match(r.message, why);
      const out = path.join(dir, '..', 'out');
      assert.equal(refusal(() => compileModel(file, { out })).code, 'onnx.external-data');
      assert.equal(fs.existsSync(out), false, 'nothing written');
    });
  }

  it('refuses a symbolic link that leads outside the model directory', () => {
    fs.symlinkSync(outside, path.join(dir, 'w.bin'));
    const r = refusal(() => importOnnxFile(writeModel(dir, 'w.bin')));
    assert.equal(r.code, 'onnx.external-data');
    assert.match(r.message, /outside the model's directory \(through a symbolic link\)/);
  });

  it("reads a location with './' segments (as exporters write them), but not '.' alone", () => {
    fs.mkdirSync(path.join(dir, 'weights'));
    fs.writeFileSync(path.join(dir, 'weights', 'w.bin'), Buffer.from(new Float32Array([5, 6, 7, 8]).buffer));
    const m = importOnnxFile(writeModel(dir, './weights/./w.bin'));
    assert.deepEqual([...(m.graph.tensors.get('w')!.value!.data as Float32Array)], [5, 6, 7, 8]);
    assert.match(refusal(() => importOnnxFile(writeModel(dir, '.'))).message, /not a plain relative path/);
  });

  it('reads through a symbolic link that stays inside', () => {
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'real.bin'), Buffer.from(new Float32Array([1, 2, 3, 4]).buffer));
    fs.symlinkSync(path.join(dir, 'data', 'real.bin'), path.join(dir, 'w.bin'));
    const m = importOnnxFile(writeModel(dir, 'w.bin'));
    assert.deepEqual([...(m.graph.tensors.get('w')!.value!.data as Float32Array)], [1, 2, 3, 4]);
  });

  it('refuses a FIFO and a directory (not regular files) without blocking', () => {
    execFileSync('mkfifo', [path.join(dir, 'pipe')]);
    const fifo = refusal(() => importOnnxFile(writeModel(dir, 'pipe')));
    assert.match(fifo.message, /"pipe" is not a regular file/);
    fs.mkdirSync(path.join(dir, 'sub'));
    assert.match(refusal(() => importOnnxFile(writeModel(dir, 'sub'))).message, /is not a regular file/);
  });

  it('refuses offsets and lengths that are not non-negative integers, or do not fit the tensor or the file', () => {
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(32));
    const cases: [Record<string, string>, RegExp][] = [
      [{ offset: '-8' }, /has offset "-8", not a non-negative integer/],
      [{ offset: 'NaN' }, /has offset "NaN", not a non-negative integer/],
      [{ offset: '1e3' }, /has offset "1e3"/],
      [{ offset: '0', length: '-1' }, /has length "-1"/],
      [{ offset: '0', length: '8' }, /has length 8, but the tensor's type and dims need 16 bytes/],
      [{ offset: '24' }, /is too short: the tensor needs bytes 24..40, the file has 32 bytes/],
      [{ offset: '99999999999999999999' }, /not a non-negative integer/],
    ];
    for (const [entries, why] of cases) {
      const r = refusal(() => importOnnxFile(writeModel(dir, 'w.bin', entries)));
      assert.equal(r.code, 'onnx.external-data', JSON.stringify(entries));
      assert.match(r.message, why);
    }
  });

  it('reads the right range of a file inside the directory, and marks a missing file as absent weights', () => {
    const data = new Float32Array([0, 0, 10, 20, 30, 40]);
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from(data.buffer));
    const m = importOnnxFile(writeModel(dir, 'w.bin', { offset: '8', length: '16' }));
    assert.deepEqual([...(m.graph.tensors.get('w')!.value!.data as Float32Array)], [10, 20, 30, 40]);
    assert.equal(m.weights.present, 1);
    const absent = importOnnxFile(writeModel(dir, 'not-there.bin'));
    assert.equal(absent.weights.absent, 1);
    assert.deepEqual(absent.weights.missingFiles, ['not-there.bin']);
    assert.ok(absent.diagnostics.some((d) => d.code === 'onnx.weights-absent'));
  });
});
