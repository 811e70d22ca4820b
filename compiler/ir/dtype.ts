/** Element types of IR tensors, with their ONNX TensorProto.DataType codes and sizes. */
export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string'
  | 'complex64'
  | 'complex128'
  | 'float8e4m3fn'
  | 'float8e4m3fnuz'
  | 'float8e5m2'
  | 'float8e5m2fnuz'
  | 'uint4'
  | 'int4'
  | 'float4e2m1';

const ONNX_CODES: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  complex64: 14,
  complex128: 15,
  bfloat16: 16,
  float8e4m3fn: 17,
  float8e4m3fnuz: 18,
  float8e5m2: 19,
  float8e5m2fnuz: 20,
  uint4: 21,
  int4: 22,
  float4e2m1: 23,
};

const BY_CODE = new Map<number, DType>(Object.entries(ONNX_CODES).map(([k, v]) => [v, k as DType]));

/** Size of one element in bits (4 for the packed 4-bit types, 0 for strings). */
const BITS: Record<DType, number> = {
  float32: 32,
  float16: 16,
  bfloat16: 16,
  float64: 64,
  int8: 8,
  uint8: 8,
  int16: 16,
  uint16: 16,
  int32: 32,
  uint32: 32,
  int64: 64,
  uint64: 64,
  bool: 8,
  string: 0,
  complex64: 64,
  complex128: 128,
  float8e4m3fn: 8,
  float8e4m3fnuz: 8,
  float8e5m2: 8,
  float8e5m2fnuz: 8,
  uint4: 4,
  int4: 4,
  float4e2m1: 4,
};

export function dtypeFromOnnx(code: number): DType | undefined {
  return BY_CODE.get(code);
}

export function dtypeToOnnx(dtype: DType): number {
  return ONNX_CODES[dtype];
}

/** Bytes for `count` elements (rounded up for 4-bit types). */
export function dtypeBytes(dtype: DType, count = 1): number {
  return Math.ceil((BITS[dtype] * count) / 8);
}

export function isFloatType(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float64' || dtype.startsWith('float8');
}

export function isIntegerType(dtype: DType): boolean {
  return /^u?int(4|8|16|32|64)$/.test(dtype);
}
