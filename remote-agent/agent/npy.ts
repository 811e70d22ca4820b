/**
 * NumPy .npy files (format versions 1.0–3.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 * the verify job writes its inputs and outputs so, and the Python reference script reads and writes them with
 * np.load / np.save. Little-endian, C order; the element types below.
 *
 *   "\x93NUMPY" major minor  header-length (uint16 for 1.0, uint32 for 2.0/3.0)
 *   "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"  padded with spaces and '\n' to a multiple of 64
 *   row-major data
 */
import * as fs from 'node:fs';
import { halfBitsToFloat } from '../../compiler/backends/cuda/weights';

export type NpyDType = 'float16' | 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'bool';

const DESCR: Record<NpyDType, string> = {
  float16: '<f2',
  float32: '<f4',
  float64: '<f8',
  int32: '<i4',
  int64: '<i8',
  uint8: '|u1',
  int8: '|i1',
  bool: '|b1',
};
const BYTES: Record<NpyDType, number> = { float16: 2, float32: 4, float64: 8, int32: 4, int64: 8, uint8: 1, int8: 1, bool: 1 };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  /** The raw little-endian element bytes, row-major. */
  data: Buffer;
}

/** An error reading a .npy file, naming it. */
export class NpyError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'NpyError';
  }
}

export function encodeNpy(array: NpyArray): Buffer {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count * BYTES[array.dtype]) {
    throw new Error(
      `npy: shape [${array.shape.join(', ')}] of ${array.dtype} needs ${count * BYTES[array.dtype]} bytes, got ${array.data.length}`,
    );
  }
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${DESCR[array.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (header.length > 0xffff) throw new Error('npy: header longer than a version 1.0 file holds');
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix, 0);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), array.data]);
}

export function decodeNpy(bytes: Buffer, file = '<bytes>'): NpyArray {
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) throw new NpyError(file, 'not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6];
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerLength = bytes.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    headerLength = bytes.readUInt32LE(8);
    headerStart = 12;
  } else throw new NpyError(file, `unsupported .npy format version ${major}.${bytes[7]}`);
  const header = bytes.subarray(headerStart, headerStart + headerLength).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new NpyError(file, `malformed header ${JSON.stringify(header)}`);
  if (fortran === 'True') throw new NpyError(file, 'Fortran-ordered arrays are not supported (save a C-contiguous array)');
  const dtype = (Object.keys(DESCR) as NpyDType[]).find((d) => DESCR[d] === descr || DESCR[d] === descr.replace(/^=/, '<'));
  if (!dtype) throw new NpyError(file, `element type '${descr}' is not supported (little-endian float16/32/64, int8/32/64, uint8, bool)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((n) => !Number.isInteger(n) || n < 0)) throw new NpyError(file, `malformed shape (${shapeText})`);
  const dataStart = headerStart + headerLength;
  const dataBytes = shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
  if (bytes.length - dataStart < dataBytes)
    throw new NpyError(file, `holds ${bytes.length - dataStart} data bytes, shape needs ${dataBytes}`);
  return { dtype, shape, data: bytes.subarray(dataStart, dataStart + dataBytes) };
}

export function writeNpy(file: string, array: NpyArray): void {
  fs.writeFileSync(file, encodeNpy(array));
}

export function readNpy(file: string): NpyArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new NpyError(file, (e as Error).message);
  }
  return decodeNpy(bytes, file);
}

/** The elements as doubles (float16 decoded; int64 through BigInt, exact up to 2^53). */
export function npyToFloat64(array: NpyArray): Float64Array {
  const view = new DataView(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const n = array.data.length / BYTES[array.dtype];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (array.dtype) {
      case 'float16':
        out[i] = halfBitsToFloat(view.getUint16(2 * i, true));
        break;
      case 'float32':
        out[i] = view.getFloat32(4 * i, true);
        break;
      case 'float64':
        out[i] = view.getFloat64(8 * i, true);
        break;
      case 'int32':
        out[i] = view.getInt32(4 * i, true);
        break;
      case 'int64':
        out[i] = Number(view.getBigInt64(8 * i, true));
        break;
      case 'int8':
        out[i] = view.getInt8(i);
        break;
      default: // uint8, bool
        out[i] = view.getUint8(i);
    }
  }
  return out;
}

/** A float32 array as .npy content. */
export function float32Npy(shape: number[], values: Float32Array): NpyArray {
  return { dtype: 'float32', shape, data: Buffer.from(values.buffer, values.byteOffset, values.byteLength) };
}

/** Integer (or bool) values as .npy content of `dtype`, little-endian: the bytes a model input of that type takes. */
export function integerNpy(dtype: 'int32' | 'int64' | 'int8' | 'uint8' | 'bool', shape: number[], values: ArrayLike<number>): NpyArray {
  const data = Buffer.alloc(values.length * BYTES[dtype]);
  for (let i = 0; i < values.length; i++) {
    if (dtype === 'int64') data.writeBigInt64LE(BigInt(values[i]), 8 * i);
    else if (dtype === 'int32') data.writeInt32LE(values[i], 4 * i);
    else if (dtype === 'int8') data.writeInt8(values[i], i);
    else data.writeUInt8(values[i], i);
  }
  return { dtype, shape, data };
}
