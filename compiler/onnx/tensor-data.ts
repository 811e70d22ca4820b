/** Conversion between ONNX TensorProto storage and IR TensorValues. */
import { CompileError, error } from '../diagnostics';
import { DType, dtypeBytes, dtypeFromOnnx, dtypeToOnnx } from '../ir/dtype';
import { numel, storageFor, TensorValue } from '../ir/tensor';
import { shapeProblem } from '../ir/limits';
import { TensorProto, int64ToNumber } from './schema';
import type { ExternalRef } from './external-data';

/** IEEE half → float. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float → IEEE half bits (round to nearest even). */
export function floatToHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (exp << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

function bfloat16ToFloat(b: number): number {
  const u = new Uint32Array([b << 16]);
  return new Float32Array(u.buffer)[0];
}

/** Decodes little-endian raw bytes of `dtype` into the IR storage array. */
export function decodeRaw(dtype: DType, bytes: Uint8Array, count: number): Float32Array | Float64Array | string[] {
  const need = dtypeBytes(dtype, count);
  if (bytes.byteLength < need) throw new Error(`raw data has ${bytes.byteLength} bytes, ${need} needed for ${count} ${dtype}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = storageFor(dtype, count);
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'float64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'float16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'bfloat16':
      for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat(view.getUint16(i * 2, true));
      break;
    case 'int8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    case 'uint8':
    case 'bool':
      for (let i = 0; i < count; i++) out[i] = view.getUint8(i);
      break;
    case 'int16':
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      break;
    case 'uint16':
      for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true);
      break;
    case 'int32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      break;
    case 'uint32':
      for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, true);
      break;
    case 'int64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(i * 8, true));
      break;
    case 'uint64':
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigUint64(i * 8, true));
      break;
    default:
      throw new Error(`raw data of type ${dtype} is not supported`);
  }
  return out;
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/** Encodes IR storage as little-endian raw bytes of `dtype` (for writing ONNX and weight files). */
export function encodeRaw(dtype: DType, data: ArrayLike<number>): Uint8Array {
  const count = data.length;
  const bytes = new Uint8Array(dtypeBytes(dtype, count));
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) {
    const v = data[i];
    switch (dtype) {
      case 'float32':
        view.setFloat32(i * 4, v, true);
        break;
      case 'float64':
        view.setFloat64(i * 8, v, true);
        break;
      case 'float16':
        view.setUint16(i * 2, floatToHalf(v), true);
        break;
      case 'bfloat16':
        view.setUint16(i * 2, new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16, true);
        break;
      case 'int8':
        view.setInt8(i, v);
        break;
      case 'uint8':
      case 'bool':
        view.setUint8(i, v);
        break;
      case 'int16':
        view.setInt16(i * 2, v, true);
        break;
      case 'uint16':
        view.setUint16(i * 2, v, true);
        break;
      case 'int32':
        view.setInt32(i * 4, v, true);
        break;
      case 'uint32':
        view.setUint32(i * 4, v, true);
        break;
      case 'int64':
        // INT64_MAX/MIN arrive as ±2^63 doubles ("slice to the end"): clamp instead of wrapping around
        view.setBigInt64(i * 8, v >= 2 ** 63 ? INT64_MAX : v <= -(2 ** 63) ? INT64_MIN : BigInt(Math.trunc(v)), true);
        break;
      case 'uint64':
        view.setBigUint64(i * 8, BigInt(Math.trunc(v)), true);
        break;
      default:
        throw new Error(`cannot encode ${dtype}`);
    }
  }
  return bytes;
}

/** The external_data entries of a tensor, as written (external-data.ts checks them). */
export function externalRefOf(t: TensorProto): ExternalRef {
  const kv = new Map(t.external_data.map((e) => [e.key, e.value]));
  return { location: kv.get('location') ?? '', offset: kv.get('offset'), length: kv.get('length') };
}

/**
 * Reads a TensorProto's data (raw or typed fields) into a TensorValue. External data is read through
 * `readExternal`, which returns undefined when the file is absent.
 */
export function tensorFromProto(
  t: TensorProto,
  readExternal?: (tensor: string, ref: ExternalRef, byteLength: number) => Uint8Array | undefined,
): TensorValue | undefined {
  const dtype = dtypeFromOnnx(t.data_type);
  if (!dtype) badTensor(t, `unknown data type ${t.data_type}`);
  const shape = t.dims.map(int64ToNumber);
  // Refused before anything is allocated: a hostile model declares what it likes.
  const problem = shapeProblem(shape);
  if (problem) badTensor(t, problem);
  const count = numel(shape);
  if (!Number.isSafeInteger(count)) badTensor(t, `dims [${shape}] have more elements than can be held`);
  const raw = (bytes: Uint8Array) => {
    try {
      return decodeRaw(dtype, bytes, count);
    } catch (e) {
      badTensor(t, (e as Error).message);
    }
  };
  if (t.data_location === 1) {
    const ref = externalRefOf(t);
    const bytes = readExternal?.(t.name, ref, dtypeBytes(dtype, count));
    if (!bytes) return undefined;
    return { dtype, shape, data: raw(bytes) };
  }
  if (t.raw_data && t.raw_data.byteLength > 0) {
    // The ONNX checker refuses raw data of another size than the dims need; longer data would be silently cut.
    const need = dtypeBytes(dtype, count);
    if (t.raw_data.byteLength !== need)
      badTensor(
        t,
        `its raw data has ${t.raw_data.byteLength} bytes, but ${count} ${dtype} elements (dims [${shape.join(', ')}]) need ${need}`,
      );
    return { dtype, shape, data: raw(t.raw_data) };
  }
  if (dtype === 'string') {
    if (t.string_data.length !== count) badTensor(t, `has ${t.string_data.length} strings for dims [${shape.join(', ')}]`);
    return { dtype, shape, data: t.string_data.map((b) => new TextDecoder().decode(b)) };
  }
  let src: ArrayLike<number> = [];
  if (dtype === 'float32' || dtype === 'complex64') src = t.float_data;
  else if (dtype === 'float64' || dtype === 'complex128') src = t.double_data;
  else if (dtype === 'int64') src = t.int64_data.map(int64ToNumber);
  else if (dtype === 'uint64' || dtype === 'uint32') src = t.uint64_data.map(int64ToNumber);
  else if (dtype === 'float16') src = t.int32_data.map(halfToFloat);
  else if (dtype === 'bfloat16') src = t.int32_data.map(bfloat16ToFloat);
  else src = t.int32_data; // int32, int16, int8, uint16, uint8, bool
  if (src.length === 0 && count > 0) {
    // an empty field means zeros; a large tensor without data is a broken file, not zeros to allocate
    if (count > MAX_ZERO_FILL) badTensor(t, `has no data for its ${count} elements (dims [${shape}])`);
    return { dtype, shape, data: storageFor(dtype, count) };
  }
  if (src.length !== count) badTensor(t, `has ${src.length} values for shape [${shape}]`);
  const out = storageFor(dtype, count);
  out.set(src);
  return { dtype, shape, data: out };
}

/** Largest tensor (elements) that a TensorProto without data may stand for (as zeros). */
const MAX_ZERO_FILL = 2 ** 24;

/** Throws the error for a TensorProto whose data cannot be read (a CompileError naming the tensor). */
function badTensor(t: TensorProto, message: string): never {
  throw new CompileError(error('onnx.bad-tensor', `tensor '${t.name}': ${message}`, { tensor: t.name }));
}

/** A TensorProto (plain object for protobufjs encoding) holding `value` as raw data. */
export function tensorToProto(name: string, value: TensorValue): Record<string, unknown> {
  if (Array.isArray(value.data)) {
    return {
      name,
      dims: value.shape,
      data_type: dtypeToOnnx(value.dtype),
      string_data: value.data.map((s) => new TextEncoder().encode(s)),
    };
  }
  return { name, dims: value.shape, data_type: dtypeToOnnx(value.dtype), raw_data: encodeRaw(value.dtype, value.data) };
}
