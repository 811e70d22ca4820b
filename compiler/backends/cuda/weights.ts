/**
 * Weights of a compiled model as a safetensors file (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__}, padded with spaces
 * to a multiple of 8 bytes, then the tensors' bytes back to back. The runtime's reader is runtime/safetensors.cc.
 *
 * Float weights are stored as fp16 unless asked otherwise; integer and bool tensors keep their type.
 */
import { CompileError, Diagnostic, error } from '../../diagnostics';
import { DType } from '../../ir/dtype';
import { Graph } from '../../ir/graph';
import { numel, TensorValue } from '../../ir/tensor';

export type FloatStorage = 'float16' | 'bfloat16' | 'float32';

export interface WeightTensor {
  name: string;
  value: TensorValue;
  /** How this float tensor is stored (default: the options' floatStorage): fp32 for coordinates (anchors). */
  floatStorage?: FloatStorage;
}

export interface SafetensorsOptions {
  /** How float tensors (float16/32/64, bfloat16) are stored. Default 'float16'. */
  floatStorage?: FloatStorage;
  /** String metadata written under __metadata__. */
  metadata?: Record<string, string>;
}

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
}

const FLOAT_STORAGE_CODE: Record<FloatStorage, string> = { float16: 'F16', bfloat16: 'BF16', float32: 'F32' };
const INTEGER_CODE: Partial<Record<DType, { code: string; bytes: number }>> = {
  int64: { code: 'I64', bytes: 8 },
  int32: { code: 'I32', bytes: 4 },
  int16: { code: 'I16', bytes: 2 },
  int8: { code: 'I8', bytes: 1 },
  uint64: { code: 'U64', bytes: 8 },
  uint32: { code: 'U32', bytes: 4 },
  uint16: { code: 'U16', bytes: 2 },
  uint8: { code: 'U8', bytes: 1 },
  bool: { code: 'BOOL', bytes: 1 },
};

const scratch = new DataView(new ArrayBuffer(4));

/** IEEE binary32 bits of `value` (rounded to float32 first) -> binary16 bits, round to nearest even. */
export function floatToHalfBits(value: number): number {
  scratch.setFloat32(0, value, true);
  const x = scratch.getUint32(0, true);
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && half & 1)) half++; // a carry into the exponent is correct
  return half;
}

export function halfBitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** binary32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function floatToBfloat16Bits(value: number): number {
  scratch.setFloat32(0, value, true);
  const x = scratch.getUint32(0, true);
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

function isFloat(dtype: DType): boolean {
  return dtype === 'float16' || dtype === 'float32' || dtype === 'float64' || dtype === 'bfloat16';
}

/** Encodes tensors as a safetensors file. Throws a CompileError naming the tensor for unsupported element types. */
export function encodeSafetensors(tensors: readonly WeightTensor[], options: SafetensorsOptions = {}): Uint8Array {
  const floatStorage = options.floatStorage ?? 'float16';
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  const problems: Diagnostic[] = [];
  const names = new Set<string>();
  let offset = 0;
  const layout: { tensor: WeightTensor; code: string; begin: number; bytes: number }[] = [];
  for (const tensor of tensors) {
    const { name, value } = tensor;
    if (names.has(name) || name === '__metadata__') {
      problems.push(error('weights.duplicate-name', `weight name '${name}' appears twice or is reserved`, { tensor: name }));
      continue;
    }
    names.add(name);
    let code: string;
    let elementBytes: number;
    if (isFloat(value.dtype)) {
      const storage = tensor.floatStorage ?? floatStorage;
      code = FLOAT_STORAGE_CODE[storage];
      elementBytes = storage === 'float32' ? 4 : 2;
    } else if (INTEGER_CODE[value.dtype]) {
      ({ code, bytes: elementBytes } = INTEGER_CODE[value.dtype]!);
    } else {
      problems.push(
        error('weights.unsupported-dtype', `weight '${name}' has element type ${value.dtype}, which safetensors weights do not carry`, {
          tensor: name,
        }),
      );
      continue;
    }
    const count = numel(value.shape);
    if (Array.isArray(value.data) || value.data.length !== count) {
      problems.push(error('weights.bad-data', `weight '${name}' has no numeric data of ${count} elements`, { tensor: name }));
      continue;
    }
    const bytes = count * elementBytes;
    header[name] = { dtype: code, shape: value.shape, data_offsets: [offset, offset + bytes] };
    layout.push({ tensor, code, begin: offset, bytes });
    offset += bytes;
  }
  if (problems.length) throw new CompileError(problems);

  let json = JSON.stringify(header);
  const jsonBytes = new TextEncoder().encode(json);
  const padded = Math.ceil(jsonBytes.length / 8) * 8;
  json += ' '.repeat(padded - jsonBytes.length);
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(new TextEncoder().encode(json), 8);
  const dataStart = 8 + padded;
  for (const { tensor, code, begin } of layout) {
    const data = tensor.value.data as Float32Array | Float64Array;
    let at = dataStart + begin;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      switch (code) {
        case 'F16':
          view.setUint16(at, floatToHalfBits(v), true);
          at += 2;
          break;
        case 'BF16':
          view.setUint16(at, floatToBfloat16Bits(v), true);
          at += 2;
          break;
        case 'F32':
          view.setFloat32(at, v, true);
          at += 4;
          break;
        case 'I64':
          view.setBigInt64(at, BigInt(Math.trunc(v)), true);
          at += 8;
          break;
        case 'U64':
          view.setBigUint64(at, BigInt(Math.trunc(v)), true);
          at += 8;
          break;
        case 'I32':
          view.setInt32(at, v, true);
          at += 4;
          break;
        case 'U32':
          view.setUint32(at, v, true);
          at += 4;
          break;
        case 'I16':
          view.setInt16(at, v, true);
          at += 2;
          break;
        case 'U16':
          view.setUint16(at, v, true);
          at += 2;
          break;
        case 'I8':
          view.setInt8(at, v);
          at += 1;
          break;
        default: // U8, BOOL
          view.setUint8(at, code === 'BOOL' ? (v !== 0 ? 1 : 0) : v);
          at += 1;
      }
    }
  }
  return out;
}

/** Reads the header of a safetensors file (for tooling and tests); `origin` names the file in diagnostics. */
export function decodeSafetensorsHeader(
  bytes: Uint8Array,
  origin = 'weights.safetensors',
): { tensors: Map<string, SafetensorsEntry>; metadata: Record<string, string>; dataStart: number } {
  const bad = (message: string) => new CompileError(error('weights.malformed', message, { file: origin }));
  if (bytes.length < 8) throw bad('shorter than the 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = Number(view.getBigUint64(0, true));
  if (headerBytes > bytes.length - 8) throw bad(`header length ${headerBytes} exceeds the file`);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerBytes)));
  } catch (e) {
    throw bad(`header is not JSON: ${(e as Error).message}`);
  }
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    tensors.set(name, { dtype: e.dtype, shape: e.shape, dataOffsets: e.data_offsets });
  }
  return { tensors, metadata, dataStart: 8 + headerBytes };
}

/**
 * The weights of a graph: its parameters (and constants that stay tensors at run time) with their values, in
 * graph order. Parameters whose data is absent (graph-only models) are listed by name: the library still builds
 * and the runtime refuses to run until they are bound or randomized.
 */
export function collectWeights(graph: Graph, names?: readonly string[]): { tensors: WeightTensor[]; absent: string[] } {
  const tensors: WeightTensor[] = [];
  const absent: string[] = [];
  const wanted = names ?? [...graph.tensors.values()].filter((t) => t.kind === 'param').map((t) => t.name);
  for (const name of wanted) {
    const info = graph.tensor(name);
    if (info.value) tensors.push({ name, value: info.value });
    else absent.push(name);
  }
  return { tensors, absent };
}
