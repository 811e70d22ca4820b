/**
 * The ONNX protobuf schema (onnx/onnx.proto, IR version 10) as a protobufjs reflection descriptor.
 *
 * Decoding and encoding are done by protobufjs; this file only declares the messages and field numbers.
 * Field names keep ONNX's snake_case so that code reads like the ONNX specification.
 */
import * as protobuf from 'protobufjs';

const stringList = (id: number) => ({ rule: 'repeated', type: 'string', id });
const entries = (id: number) => ({ rule: 'repeated', type: 'StringStringEntryProto', id });

const onnxDescriptor = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: {
          fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } },
        },
        OperatorSetIdProto: {
          fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } },
        },
        ModelProto: {
          fields: {
            ir_version: { type: 'int64', id: 1 },
            opset_import: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            producer_name: { type: 'string', id: 2 },
            producer_version: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            model_version: { type: 'int64', id: 5 },
            doc_string: { type: 'string', id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            metadata_props: entries(14),
            functions: { rule: 'repeated', type: 'FunctionProto', id: 25 },
          },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            sparse_initializer: { rule: 'repeated', type: 'SparseTensorProto', id: 15 },
            doc_string: { type: 'string', id: 10 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            value_info: { rule: 'repeated', type: 'ValueInfoProto', id: 13 },
            metadata_props: entries(16),
          },
        },
        NodeProto: {
          fields: {
            input: stringList(1),
            output: stringList(2),
            name: { type: 'string', id: 3 },
            op_type: { type: 'string', id: 4 },
            domain: { type: 'string', id: 7 },
            overload: { type: 'string', id: 8 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            doc_string: { type: 'string', id: 6 },
            metadata_props: entries(9),
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            ref_attr_name: { type: 'string', id: 21 },
            doc_string: { type: 'string', id: 13 },
            type: { type: 'int32', id: 20 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            g: { type: 'GraphProto', id: 6 },
            sparse_tensor: { type: 'SparseTensorProto', id: 22 },
            tp: { type: 'TypeProto', id: 14 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            strings: { rule: 'repeated', type: 'bytes', id: 9 },
            tensors: { rule: 'repeated', type: 'TensorProto', id: 10 },
            graphs: { rule: 'repeated', type: 'GraphProto', id: 11 },
            sparse_tensors: { rule: 'repeated', type: 'SparseTensorProto', id: 23 },
            type_protos: { rule: 'repeated', type: 'TypeProto', id: 15 },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { type: 'string', id: 1 },
            type: { type: 'TypeProto', id: 2 },
            doc_string: { type: 'string', id: 3 },
            metadata_props: entries(4),
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensor_type', 'sequence_type', 'map_type', 'optional_type', 'sparse_tensor_type'] } },
          fields: {
            tensor_type: { type: 'Tensor', id: 1 },
            sequence_type: { type: 'Sequence', id: 4 },
            map_type: { type: 'Map', id: 5 },
            optional_type: { type: 'Optional', id: 9 },
            sparse_tensor_type: { type: 'SparseTensor', id: 8 },
            denotation: { type: 'string', id: 6 },
          },
          nested: {
            Tensor: { fields: { elem_type: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
            Sequence: { fields: { elem_type: { type: 'TypeProto', id: 1 } } },
            Map: { fields: { key_type: { type: 'int32', id: 1 }, value_type: { type: 'TypeProto', id: 2 } } },
            Optional: { fields: { elem_type: { type: 'TypeProto', id: 1 } } },
            SparseTensor: { fields: { elem_type: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dim_value', 'dim_param'] } },
              fields: {
                dim_value: { type: 'int64', id: 1 },
                dim_param: { type: 'string', id: 2 },
                denotation: { type: 'string', id: 3 },
              },
            },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            data_type: { type: 'int32', id: 2 },
            segment: { type: 'Segment', id: 3 },
            float_data: { rule: 'repeated', type: 'float', id: 4, options: { packed: true } },
            int32_data: { rule: 'repeated', type: 'int32', id: 5, options: { packed: true } },
            string_data: { rule: 'repeated', type: 'bytes', id: 6 },
            int64_data: { rule: 'repeated', type: 'int64', id: 7, options: { packed: true } },
            name: { type: 'string', id: 8 },
            doc_string: { type: 'string', id: 12 },
            raw_data: { type: 'bytes', id: 9 },
            external_data: entries(13),
            data_location: { type: 'int32', id: 14 },
            double_data: { rule: 'repeated', type: 'double', id: 10, options: { packed: true } },
            uint64_data: { rule: 'repeated', type: 'uint64', id: 11, options: { packed: true } },
            metadata_props: entries(16),
          },
          nested: {
            Segment: { fields: { begin: { type: 'int64', id: 1 }, end: { type: 'int64', id: 2 } } },
          },
        },
        SparseTensorProto: {
          fields: {
            values: { type: 'TensorProto', id: 1 },
            indices: { type: 'TensorProto', id: 2 },
            dims: { rule: 'repeated', type: 'int64', id: 3 },
          },
        },
        FunctionProto: {
          fields: {
            name: { type: 'string', id: 1 },
            input: stringList(4),
            output: stringList(5),
            attribute: stringList(6),
            attribute_proto: { rule: 'repeated', type: 'AttributeProto', id: 11 },
            node: { rule: 'repeated', type: 'NodeProto', id: 7 },
            doc_string: { type: 'string', id: 8 },
            opset_import: { rule: 'repeated', type: 'OperatorSetIdProto', id: 9 },
            domain: { type: 'string', id: 10 },
            overload: { type: 'string', id: 13 },
            value_info: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            metadata_props: entries(14),
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(onnxDescriptor as protobuf.INamespace);

// protobufjs reads an absent `bytes` field as its prototype default, an empty *array*, which is not bytes
// (TextDecoder and DataView reject it): make that default an empty Uint8Array.
for (const type of [root.lookupType('onnx.AttributeProto'), root.lookupType('onnx.TensorProto')])
  for (const field of type.fieldsArray)
    if (field.type === 'bytes' && !field.repeated) (type.ctor.prototype as Record<string, unknown>)[field.name] = new Uint8Array(0);

/** The ModelProto message type: `ModelProtoType.decode(bytes)` / `.encode(message).finish()`. */
export const ModelProtoType = root.lookupType('onnx.ModelProto');
export const TensorProtoType = root.lookupType('onnx.TensorProto');

/** ONNX AttributeProto.AttributeType values. */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

/** TensorProto.DataLocation.EXTERNAL */
export const DATA_LOCATION_EXTERNAL = 1;

// Plain TypeScript views of the decoded messages (only what the importer reads).
export interface Int64Like {
  toNumber(): number;
}
export type Int64 = number | Int64Like;
export interface StringStringEntryProto {
  key: string;
  value: string;
}
export interface OperatorSetIdProto {
  domain: string;
  version: Int64;
}
export interface TensorShapeDimProto {
  dim_value?: Int64;
  dim_param?: string;
  value?: string;
}
export interface TypeProto {
  tensor_type?: { elem_type: number; shape?: { dim: TensorShapeDimProto[] } };
  sequence_type?: { elem_type?: TypeProto };
  optional_type?: { elem_type?: TypeProto };
  map_type?: unknown;
  sparse_tensor_type?: { elem_type: number; shape?: { dim: TensorShapeDimProto[] } };
}
export interface ValueInfoProto {
  name: string;
  type?: TypeProto;
  metadata_props: StringStringEntryProto[];
}
export interface TensorProto {
  dims: Int64[];
  data_type: number;
  float_data: number[];
  int32_data: number[];
  string_data: Uint8Array[];
  int64_data: Int64[];
  double_data: number[];
  uint64_data: Int64[];
  name: string;
  raw_data?: Uint8Array;
  external_data: StringStringEntryProto[];
  data_location?: number;
}
export interface AttributeProto {
  name: string;
  type: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  ref_attr_name?: string;
}
export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  attribute: AttributeProto[];
  metadata_props: StringStringEntryProto[];
}
export interface GraphProto {
  node: NodeProto[];
  name: string;
  initializer: TensorProto[];
  sparse_initializer: unknown[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  value_info: ValueInfoProto[];
}
export interface ModelProto {
  ir_version: Int64;
  opset_import: OperatorSetIdProto[];
  producer_name: string;
  producer_version: string;
  domain: string;
  graph?: GraphProto;
  functions: unknown[];
  metadata_props: StringStringEntryProto[];
}

/** Converts a protobufjs int64 (a number, or a Long when the `long` package is present) to a number. */
export function int64ToNumber(value: Int64 | undefined | null): number {
  if (value === undefined || value === null) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}
