import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  collectWeights,
  decodeSafetensorsHeader,
  encodeSafetensors,
  floatToBfloat16Bits,
  floatToHalfBits,
  halfBitsToFloat,
} from '../../../compiler/backends/cuda/weights';
import { CompileError } from '../../../compiler/diagnostics';
import { Graph } from '../../../compiler/ir/graph';
import { makeTensor } from '../../../compiler/ir/tensor';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const RUNTIME = path.join(ROOT, 'compiler/backends/cuda/runtime');

function hasCommand(command: string): boolean {
  return spawnSync(command, ['--version'], { encoding: 'utf8' }).status === 0;
}

describe('cuda backend: fp16 / bf16 conversion', () => {
  it('rounds to the nearest fp16 with ties to even, saturates and flushes like IEEE', () => {
    assert.equal(floatToHalfBits(1), 0x3c00);
    assert.equal(floatToHalfBits(-2), 0xc000);
    assert.equal(floatToHalfBits(65504), 0x7bff);
    assert.equal(floatToHalfBits(65520), 0x7c00); // rounds up to infinity
    assert.equal(floatToHalfBits(0.1), 0x2e66);
    assert.equal(floatToHalfBits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(floatToHalfBits(2 ** -25), 0x0000); // tie -> even (zero)
    assert.equal(floatToHalfBits(1 + 2 ** -11), 0x3c00); // tie -> even
    assert.equal(floatToHalfBits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
    assert.equal(floatToHalfBits(NaN) & 0x7e00, 0x7e00);
    assert.equal(halfBitsToFloat(0x3555), 0.333251953125);
    assert.equal(halfBitsToFloat(0x0001), 2 ** -24);
    assert.equal(floatToBfloat16Bits(1), 0x3f80);
    assert.equal(floatToBfloat16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
    assert.equal(floatToBfloat16Bits(1 + 3 * 2 ** -8), 0x3f82);
  });

  it('round-trips every fp16 value exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = halfBitsToFloat(bits);
      if (Number.isNaN(v)) continue;
      assert.equal(floatToHalfBits(v), bits, `bits ${bits.toString(16)}`);
    }
  });
});

describe('cuda backend: safetensors writer', () => {
  const tensors = [
    { name: 'conv1.weight', value: makeTensor('float32', [2, 3], [1, -2, 0.1, 65504, 1e-8, -0]) },
    { name: 'layer.bias', value: makeTensor('float32', [3], [0.5, 0.25, -0.125]) },
    { name: 'indices', value: makeTensor('int64', [4], [0, -1, 2 ** 40, 7]) },
  ];

  it('lays out an 8-byte-aligned header with contiguous data offsets, fp16 by default', () => {
    const bytes = encodeSafetensors(tensors, { metadata: { producer: 'ait' } });
    const header = decodeSafetensorsHeader(bytes);
    assert.equal(header.dataStart % 8, 0);
    assert.deepEqual(header.metadata, { producer: 'ait' });
    assert.deepEqual(header.tensors.get('conv1.weight'), { dtype: 'F16', shape: [2, 3], dataOffsets: [0, 12] });
    assert.deepEqual(header.tensors.get('layer.bias'), { dtype: 'F16', shape: [3], dataOffsets: [12, 18] });
    assert.deepEqual(header.tensors.get('indices'), { dtype: 'I64', shape: [4], dataOffsets: [18, 50] });
    assert.equal(bytes.length, header.dataStart + 50);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(view.getUint16(header.dataStart + 2, true), 0xc000); // -2 as fp16
    assert.equal(view.getBigInt64(header.dataStart + 18 + 16, true), 2n ** 40n);
  });

  it('stores fp32 when asked', () => {
    const header = decodeSafetensorsHeader(encodeSafetensors(tensors.slice(0, 1), { floatStorage: 'float32' }));
    assert.deepEqual(header.tensors.get('conv1.weight')?.dataOffsets, [0, 24]);
    assert.equal(header.tensors.get('conv1.weight')?.dtype, 'F32');
  });

  it('stores one tensor fp32 among fp16 ones (anchors kept fp32 by storage precision)', () => {
    const anchors = { name: 'anchors', value: makeTensor('float32', [2], [1000.25, 30030.5]), floatStorage: 'float32' as const };
    const bytes = encodeSafetensors([tensors[0], anchors, tensors[1]]);
    const header = decodeSafetensorsHeader(bytes);
    assert.deepEqual(header.tensors.get('conv1.weight'), { dtype: 'F16', shape: [2, 3], dataOffsets: [0, 12] });
    assert.deepEqual(header.tensors.get('anchors'), { dtype: 'F32', shape: [2], dataOffsets: [12, 20] });
    assert.deepEqual(header.tensors.get('layer.bias'), { dtype: 'F16', shape: [3], dataOffsets: [20, 26] });
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    // exact in fp32; fp16 would hold 1000 and 30032
    assert.equal(view.getFloat32(header.dataStart + 12, true), 1000.25);
    assert.equal(view.getFloat32(header.dataStart + 16, true), 30030.5);
  });

  it('rejects duplicate names and string tensors with diagnostics naming the tensor', () => {
    assert.throws(
      () => encodeSafetensors([tensors[1], tensors[1]]),
      (e: unknown) =>
        e instanceof CompileError &&
        e.diagnostics[0].code === 'weights.duplicate-name' &&
        e.diagnostics[0].location?.tensor === 'layer.bias',
    );
    assert.throws(
      () => encodeSafetensors([{ name: 'labels', value: { dtype: 'string', shape: [1], data: ['a'] } }]),
      (e: unknown) => e instanceof CompileError && e.diagnostics[0].code === 'weights.unsupported-dtype',
    );
  });

  it('collects present parameters and lists absent ones', () => {
    const g = new Graph('m');
    g.addTensor({ name: 'w', kind: 'param', dtype: 'float32', shape: [2], value: makeTensor('float32', [2], [1, 2]), weights: 'present' });
    g.addTensor({ name: 'missing', kind: 'param', dtype: 'float32', shape: [4], weights: 'absent' });
    g.addTensor({ name: 'x', kind: 'input', dtype: 'float32', shape: [2] });
    const { tensors: found, absent } = collectWeights(g);
    assert.deepEqual(
      found.map((t) => t.name),
      ['w'],
    );
    assert.deepEqual(absent, ['missing']);
  });

  it('is read back by the runtime reader (runtime/safetensors.cc, built with g++)', function () {
    if (!hasCommand('g++')) this.skip();
    this.timeout(120_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-safetensors-'));
    const tool = path.join(dir, 'safetensors_dump');
    const build = spawnSync(
      'g++',
      [
        '-std=c++17',
        '-O1',
        `-I${RUNTIME}`,
        path.join(RUNTIME, 'safetensors.cc'),
        path.join(ROOT, 'compiler/backends/cuda/tests/safetensors_dump.cc'),
        '-o',
        tool,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(build.status, 0, build.stderr);
    const file = path.join(dir, 'w.safetensors');
    fs.writeFileSync(file, encodeSafetensors(tensors, { metadata: { 'quote"key': 'v\\1' } }));
    const dumped = spawnSync(tool, [file], { encoding: 'utf8' });
    assert.equal(dumped.status, 0, dumped.stdout + dumped.stderr);
    const parsed = JSON.parse(dumped.stdout);
    assert.deepEqual(parsed.metadata, { 'quote"key': 'v\\1' });
    assert.deepEqual(parsed.tensors['conv1.weight'], {
      dtype: 'F16',
      shape: [2, 3],
      values: [1, -2, halfBitsToFloat(floatToHalfBits(0.1)), 65504, 0, -0],
    });
    assert.deepEqual(parsed.tensors.indices.values, [0, -1, 2 ** 40, 7]);

    // A truncated file is refused with a message naming the file.
    const cut = path.join(dir, 'cut.safetensors');
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 4));
    const refused = spawnSync(tool, [cut], { encoding: 'utf8' });
    assert.equal(refused.status, 1);
    const message = JSON.parse(refused.stdout).error as string;
    assert.match(message, /cut\.safetensors/);
    assert.match(message, /data offsets outside the data section/);
  });
});
