// The .npy writer and reader of the verify job (remote-agent/agent/npy.ts), and the comparison it reports.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeNpy, encodeNpy, type NpyArray, npyToFloat64, readNpy, writeNpy } from '../../remote-agent/agent/npy';
import { compareOutput, decodeOutput, randomInput } from '../../remote-agent/agent/verify';

function f32(shape: number[], values: number[]): NpyArray {
  return { dtype: 'float32', shape, data: Buffer.from(new Float32Array(values).buffer) };
}

function numpyAvailable(): boolean {
  return spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
}

describe('.npy files (verify inputs and outputs)', () => {
  it('round-trips float32, int64, float16 and 0-d arrays; headers end on a 64-byte boundary', () => {
    const cases: NpyArray[] = [
      f32([2, 3], [1, -2.5, 3, 4, 5e-8, -6]),
      { dtype: 'int64', shape: [3], data: Buffer.from(new BigInt64Array([1n, -2n, 2n ** 40n]).buffer) },
      { dtype: 'float16', shape: [2], data: Buffer.from(new Uint16Array([0x3c00, 0xc000]).buffer) }, // 1, -2
      f32([], [7]),
    ];
    for (const array of cases) {
      const bytes = encodeNpy(array);
      assert.equal((10 + bytes.readUInt16LE(8)) % 64, 0);
      const back = decodeNpy(bytes);
      assert.deepEqual([back.dtype, back.shape, [...back.data]], [array.dtype, array.shape, [...array.data]]);
    }
    assert.deepEqual([...npyToFloat64(decodeNpy(encodeNpy(cases[1])))], [1, -2, 2 ** 40]);
    assert.deepEqual([...npyToFloat64(cases[2])], [1, -2]);
    assert.match(encodeNpy(cases[1]).subarray(10, 80).toString('latin1'), /^\{'descr': '<i8', 'fortran_order': False, 'shape': \(3,\), \}/);
  });

  it('refuses what it cannot read, naming the file', () => {
    assert.throws(() => decodeNpy(Buffer.from('PK\x03\x04 not npy'), 'x.npy'), /^NpyError: x\.npy: not a \.npy file/);
    const fortran = Buffer.from(
      encodeNpy(f32([1], [1]))
        .toString('latin1')
        .replace("'fortran_order': False", "'fortran_order': True "),
      'latin1',
    );
    assert.throws(() => decodeNpy(fortran, 'f.npy'), /f\.npy: Fortran-ordered arrays are not supported/);
    const short = encodeNpy(f32([2, 2], [1, 2, 3, 4])).subarray(0, -4);
    assert.throws(() => decodeNpy(short, 's.npy'), /s\.npy: holds 12 data bytes, shape needs 16/);
    assert.throws(() => readNpy('/nonexistent/a.npy'), /\/nonexistent\/a\.npy: ENOENT/);
  });

  it('numpy reads what it writes and it reads what numpy writes (where python3 has numpy)', function () {
    if (!numpyAvailable()) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-npy-'));
    writeNpy(path.join(dir, 'ours.npy'), f32([2, 2], [1, 2, 3, -4.5]));
    const script = [
      'import numpy as np, sys',
      'a = np.load(sys.argv[1] + "/ours.npy")',
      'assert a.dtype == np.float32 and a.shape == (2, 2) and a[1, 1] == -4.5, a',
      'np.save(sys.argv[1] + "/theirs.npy", np.arange(6, dtype=np.int64).reshape(3, 2) - 5)',
      'np.save(sys.argv[1] + "/half.npy", np.array([0.5, -1.0], dtype=np.float16))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const theirs = readNpy(path.join(dir, 'theirs.npy'));
    assert.deepEqual([theirs.dtype, theirs.shape, [...npyToFloat64(theirs)]], ['int64', [3, 2], [-5, -4, -3, -2, -1, 0]]);
    assert.deepEqual([...npyToFloat64(readNpy(path.join(dir, 'half.npy')))], [0.5, -1]);
  });
});

describe('verify comparison', () => {
  it('relative L2, max abs error and max |reference|; pass and fail against the tolerance', () => {
    const reference = f32([1, 2], [3, 4]);
    const close = compareOutput('y', 1, [1, 2], Float64Array.from([3, 4.05]), reference, 2e-2, ['y']);
    assert.ok(Math.abs(close.relativeL2! - 0.05 / 5) < 1e-12);
    assert.ok(Math.abs(close.maxAbsError! - 0.05) < 1e-12);
    assert.equal(close.maxAbsReference, 4);
    assert.equal(close.pass, true);
    const far = compareOutput('y', 1, [1, 2], Float64Array.from([3, 5]), reference, 2e-2, ['y']);
    assert.equal(far.pass, false);
    assert.equal(far.failure, 'relative L2 error 2.00e-1 above the tolerance 2.0e-2');
  });

  it('fails on NaN, on another shape, and on an output the reference lacks', () => {
    const reference = f32([2], [1, 2]);
    const nan = compareOutput('y', 1, [2], Float64Array.from([1, NaN]), reference, 2e-2, ['y']);
    assert.deepEqual(
      [nan.pass, nan.relativeL2, nan.nonFiniteCount, nan.failure],
      [false, null, 1, '1 NaN/Inf value(s) in the compiled output'],
    );
    const shape = compareOutput('y', 1, [1, 2], Float64Array.from([1, 2]), reference, 2e-2, ['y']);
    assert.deepEqual([shape.pass, shape.shapeMatches, shape.failure], [false, false, "shape [1, 2] differs from the reference's [2]"]);
    const missing = compareOutput('z', 1, [2], Float64Array.from([1, 2]), null, 2e-2, ['y', 'h']);
    assert.equal(missing.failure, "the reference has no output 'z' (it has y, h)");
  });

  it('random inputs are seeded, rounded to the compiled element type, and decoded back exactly', () => {
    const a = randomInput('float16', [4, 4], 11);
    const b = randomInput('float16', [4, 4], 11);
    assert.deepEqual([...a.values], [...b.values]);
    assert.notDeepEqual([...a.values], [...randomInput('float16', [4, 4], 12).values]);
    assert.deepEqual([...decodeOutput('float16', a.bytes)], [...a.values]);
    const bf = randomInput('bfloat16', [8], 1);
    assert.deepEqual([...decodeOutput('bfloat16', bf.bytes)], [...bf.values]);
    const f = randomInput('float32', [1000], 5);
    const mean = f.values.reduce((s, v) => s + v, 0) / 1000;
    const variance = f.values.reduce((s, v) => s + v * v, 0) / 1000 - mean * mean;
    assert.ok(Math.abs(mean) < 0.15 && Math.abs(variance - 1) < 0.2, `N(0, 1): mean ${mean}, variance ${variance}`);
  });
});
