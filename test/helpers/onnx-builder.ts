/**
 * Builds small ONNX models for tests from a compact description, encoded with the real ModelProto schema, so
 * that tests go through the same importer as users' files.
 *
 *   const bytes = buildModel({
 *     inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, 224, 224] }],
 *     initializers: [{ name: 'shape', dtype: 'int64', dims: [2], values: [0, -1] }],
 *     nodes: [{ op: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] }],
 *     outputs: ['y'],
 *   });
 *
 * Attribute values: an integer number is an INT, a fractional number a FLOAT, a string a STRING, a number array
 * INTS (FLOATS when an element is fractional), a GraphSpec a GRAPH, a TensorSpec (has `values`) a TENSOR. Use
 * attr.float / attr.floats / attr.ints / attr.strings where the default guess is wrong (e.g. a float attribute
 * whose value is 1).
 */
import '../../compiler/ops/index';
import { Diagnostic } from '../../compiler/diagnostics';
import { DType, dtypeToOnnx } from '../../compiler/ir/dtype';
import { Graph, Node, TensorInfo } from '../../compiler/ir/graph';
import { shapeToString } from '../../compiler/ir/symbolic';
import { ImportOptions, importOnnxBytes } from '../../compiler/onnx/import';
import { AttributeType, ModelProtoType } from '../../compiler/onnx/schema';
import { encodeRaw } from '../../compiler/onnx/tensor-data';
import { inferShapes } from '../../compiler/passes/shape-inference';

/** A graph input or output: dims are numbers, symbolic names, or null (an unnamed unknown dim). */
export interface ValueSpec {
  name: string;
  dtype: DType;
  /** Omitted: no shape information at all. */
  dims?: (number | string | null)[];
}

export interface TensorSpec {
  name?: string;
  dtype: DType;
  dims: number[];
  /** Row-major values; omitted with `external` for a tensor whose data lives in a (missing) external file. */
  values?: ArrayLike<number> | string[];
  /** Stores the data in an external file (the file is not written: the weights are absent). */
  external?: string;
  /** external_data entries besides location (default: offset 0); values as written into the model. */
  externalEntries?: Record<string, string>;
}

export interface TypedAttr {
  kind: 'float' | 'floats' | 'int' | 'ints' | 'string' | 'strings';
  value: number | number[] | string | string[];
}

export type AttrSpec = number | number[] | string | string[] | TensorSpec | GraphSpec | TypedAttr;

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  /** Default: `${op}_${index}` is left to the importer (nodes without names get one there). */
  name?: string;
  domain?: string;
  attrs?: Record<string, AttrSpec>;
}

export interface GraphSpec {
  name?: string;
  inputs: ValueSpec[];
  outputs: (string | ValueSpec)[];
  initializers?: (TensorSpec & { name: string })[];
  nodes: NodeSpec[];
}

export interface ModelSpec extends GraphSpec {
  /** ai.onnx opset (default 17). */
  opset?: number;
  irVersion?: number;
  producer?: string;
}

/** Explicitly typed attributes, for values whose type the default guess gets wrong. */
export const attr = {
  float: (value: number): TypedAttr => ({ kind: 'float', value }),
  floats: (value: number[]): TypedAttr => ({ kind: 'floats', value }),
  int: (value: number): TypedAttr => ({ kind: 'int', value }),
  ints: (value: number[]): TypedAttr => ({ kind: 'ints', value }),
  string: (value: string): TypedAttr => ({ kind: 'string', value }),
  strings: (value: string[]): TypedAttr => ({ kind: 'strings', value }),
};

/** A tensor constant (for initializers and tensor attributes). */
export function tensor(dtype: DType, dims: number[], values: ArrayLike<number>, name?: string): TensorSpec {
  return { name, dtype, dims, values };
}

/** A graph input of a nodeModel (no data: its value is only known at run time). */
export function input(dtype: DType, dims: (number | string | null)[]): Omit<ValueSpec, 'name'> {
  return { dtype, dims };
}

/** Encodes the model as ONNX protobuf bytes. */
export function buildModel(spec: ModelSpec): Uint8Array {
  const message = ModelProtoType.fromObject({
    ir_version: spec.irVersion ?? 8,
    producer_name: spec.producer ?? 'onnx-builder',
    opset_import: [{ domain: '', version: spec.opset ?? 17 }],
    graph: graphProto(spec),
  });
  return ModelProtoType.encode(message).finish();
}

function graphProto(g: GraphSpec): Record<string, unknown> {
  return {
    name: g.name ?? 'test',
    input: g.inputs.map(valueInfo),
    output: g.outputs.map((o) => (typeof o === 'string' ? { name: o } : valueInfo(o))),
    initializer: (g.initializers ?? []).map((t) => tensorProto(t, t.name)),
    node: g.nodes.map(nodeProto),
  };
}

function valueInfo(v: ValueSpec): Record<string, unknown> {
  const tensorType: Record<string, unknown> = { elem_type: dtypeToOnnx(v.dtype) };
  if (v.dims)
    tensorType.shape = {
      dim: v.dims.map((d) => (typeof d === 'number' ? { dim_value: d } : typeof d === 'string' ? { dim_param: d } : {})),
    };
  return { name: v.name, type: { tensor_type: tensorType } };
}

function tensorProto(t: TensorSpec, name = t.name ?? ''): Record<string, unknown> {
  const base = { name, dims: t.dims, data_type: dtypeToOnnx(t.dtype) };
  if (t.external !== undefined)
    return {
      ...base,
      data_location: 1,
      external_data: [
        { key: 'location', value: t.external },
        ...Object.entries(t.externalEntries ?? { offset: '0' }).map(([key, value]) => ({ key, value })),
      ],
    };
  const count = t.dims.reduce((a, b) => a * b, 1);
  const values = t.values ?? [];
  if (values.length !== count) throw new Error(`tensor '${name}': ${values.length} values for dims [${t.dims}]`);
  if (t.dtype === 'string') return { ...base, string_data: (values as string[]).map((s) => new TextEncoder().encode(s)) };
  if (t.dtype === 'int64') return { ...base, raw_data: encodeInt64(values as ArrayLike<number>) };
  return { ...base, raw_data: encodeRaw(t.dtype, values as ArrayLike<number>) };
}

/** int64 raw data that saturates ±2^63 (as doubles) to INT64_MAX/MIN, the way exporters write "to the end". */
function encodeInt64(values: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const big = v >= 2 ** 63 ? 2n ** 63n - 1n : v <= -(2 ** 63) ? -(2n ** 63n) : BigInt(Math.trunc(v));
    view.setBigInt64(i * 8, big, true);
  }
  return bytes;
}

/**
 * A model of one node: inputs with `values` become initializers (so the node folds at compile time), the others
 * graph inputs; inputs are named in0, in1, … (undefined: an omitted optional input), outputs out0, out1, ….
 */
export function nodeModel(
  op: string,
  inputs: (Omit<ValueSpec, 'name'> | TensorSpec | undefined)[],
  options: { attrs?: Record<string, AttrSpec>; outputs?: number; opset?: number; name?: string } = {},
): ModelSpec {
  const names = inputs.map((x, i) => (x ? `in${i}` : ''));
  const outputs = Array.from({ length: options.outputs ?? 1 }, (_, i) => `out${i}`);
  return {
    opset: options.opset,
    inputs: inputs.flatMap((x, i) => (x && !('values' in x) ? [{ ...(x as ValueSpec), name: names[i] }] : [])),
    initializers: inputs.flatMap((x, i) => (x && 'values' in x ? [{ ...(x as TensorSpec), name: names[i] }] : [])),
    nodes: [{ op, name: options.name ?? `the_${op}`, inputs: names, outputs, attrs: options.attrs }],
    outputs,
  };
}

function nodeProto(n: NodeSpec): Record<string, unknown> {
  return {
    op_type: n.op,
    name: n.name ?? '',
    domain: n.domain ?? '',
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs ?? {}).map(([name, value]) => attributeProto(name, value)),
  };
}

function isGraphSpec(v: AttrSpec): v is GraphSpec {
  return typeof v === 'object' && !Array.isArray(v) && 'nodes' in v;
}

function isTensorSpec(v: AttrSpec): v is TensorSpec {
  return typeof v === 'object' && !Array.isArray(v) && 'dtype' in v && 'dims' in v;
}

function attributeProto(name: string, value: AttrSpec): Record<string, unknown> {
  if (typeof value === 'number')
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    if (value.every((x) => typeof x === 'string')) return attributeProto(name, attr.strings(value as string[]));
    const nums = value as number[];
    return nums.every(Number.isInteger) ? attributeProto(name, attr.ints(nums)) : attributeProto(name, attr.floats(nums));
  }
  if (isGraphSpec(value)) return { name, type: AttributeType.GRAPH, g: graphProto(value) };
  if (isTensorSpec(value)) return { name, type: AttributeType.TENSOR, t: tensorProto(value, value.name ?? name) };
  switch (value.kind) {
    case 'float':
      return { name, type: AttributeType.FLOAT, f: value.value as number };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: value.value as number[] };
    case 'int':
      return { name, type: AttributeType.INT, i: value.value as number };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: value.value as number[] };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value.value as string) };
    case 'strings':
      return { name, type: AttributeType.STRINGS, strings: (value.value as string[]).map((s) => new TextEncoder().encode(s)) };
  }
}

/** The model built from `spec`, imported by the real importer and shape-inferred (constant folding on). */
export function inferModel(spec: ModelSpec, options: ImportOptions = {}): InferredModel {
  const imported = importOnnxBytes(buildModel(spec), options);
  const inference = inferShapes(imported.graph);
  const graph = imported.graph;
  return {
    graph,
    diagnostics: [...imported.diagnostics, ...inference.diagnostics],
    errors: inference.diagnostics.filter((d) => d.severity === 'error'),
    foldedNodes: inference.foldedNodes,
    tensor: (name) => graph.tensor(name),
    shape: (name) => shapeToString(graph.tensor(name).shape),
    values: (name) => {
      const v = graph.tensor(name).value;
      if (!v) throw new Error(`tensor '${name}' has no compile-time value`);
      return Array.from(v.data as ArrayLike<number>);
    },
  };
}

export interface InferredModel {
  graph: Graph;
  diagnostics: Diagnostic[];
  errors: Diagnostic[];
  foldedNodes: Set<Node>;
  tensor(name: string): TensorInfo;
  /** The shape as text: '[B, 3, 224, 224]'. */
  shape(name: string): string;
  /** The folded value's elements (throws when the tensor did not fold). */
  values(name: string): number[];
}
