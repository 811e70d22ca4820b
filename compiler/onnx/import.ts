/**
 * ONNX import: a .onnx file (or bytes) → IR Graph.
 *
 * - decodes with protobufjs (schema.ts); a truncated or non-ONNX file is a clear error naming the file;
 * - reads initializers from raw data, typed fields or external data files; when an external data file is
 *   absent (graph-only models), the parameters are marked `weights: 'absent'` and one warning says so;
 * - Constant nodes become constant tensors; If/Loop/Scan bodies become subgraphs kept as attributes;
 * - symbolic input dims become symbols with bounds (default 1..256, overridable).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, Diagnostic, error, warning } from '../diagnostics';
import { dtypeFromOnnx } from '../ir/dtype';
import { AttrValue, Attributes, Graph, Node, OnnxModelInfo, TensorInfo } from '../ir/graph';
import { shapeProblem } from '../ir/limits';
import { Dim } from '../ir/symbolic';
import { TensorValue } from '../ir/tensor';
import {
  AttributeProto,
  AttributeType,
  GraphProto,
  ModelProto,
  ModelProtoType,
  NodeProto,
  StringStringEntryProto,
  TensorProto,
  TypeProto,
  ValueInfoProto,
  int64ToNumber,
} from './schema';
import { tensorFromProto } from './tensor-data';
import { ExternalDataReader, type ExternalRef } from './external-data';

export interface ImportOptions {
  /** Bounds for named symbolic input dims, e.g. { batch: [1, 256] }. Unlisted symbols get `defaultDimBounds`. */
  dimBounds?: Record<string, [number, number]>;
  defaultDimBounds?: [number, number];
  /** Directory where external data files are looked up (default: the model's directory). */
  baseDir?: string;
}

export interface ImportedModel {
  graph: Graph;
  info: OnnxModelInfo;
  /** Parameters (initializers) and whether their data was found. */
  weights: { count: number; present: number; absent: number; bytes: number; missingFiles: string[] };
  diagnostics: Diagnostic[];
  /** The decoded protobuf (kept to re-encode a materialized model for onnxruntime). */
  proto: ModelProto;
}

const decoder = new TextDecoder();

/** Reads and imports an ONNX file. Errors are CompileErrors that name the file. */
export function importOnnxFile(file: string, options: ImportOptions = {}): ImportedModel {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new CompileError(error('onnx.read', `cannot read the model file: ${(e as Error).message}`, { file }));
  }
  return importOnnxBytes(bytes, { ...options, baseDir: options.baseDir ?? path.dirname(path.resolve(file)) }, file);
}

export function decodeModel(bytes: Uint8Array, file = '<bytes>'): ModelProto {
  let model: ModelProto;
  try {
    model = ModelProtoType.decode(bytes) as unknown as ModelProto;
  } catch (e) {
    const msg = (e as Error).message;
    // A ModelProto starts with ir_version (field 1, varint: byte 0x08). A file that starts so but fails to decode
    // was cut short; anything else is not a model.
    const truncated = bytes.length > 0 && bytes[0] === 0x08 && /index out of range|premature|truncated/i.test(msg);
    throw new CompileError(
      error(
        truncated ? 'onnx.truncated' : 'onnx.not-onnx',
        truncated
          ? `the file is truncated or corrupt: its protobuf data ends early (${msg}); re-export or re-copy the model`
          : `the file is not an ONNX model: it does not decode as an ONNX ModelProto (${msg})`,
        { file },
      ),
    );
  }
  const missing = [
    ...(int64ToNumber(model.ir_version) <= 0 ? ['IR version'] : []),
    ...(model.opset_import.length === 0 ? ['opset import'] : []),
    ...(!model.graph ? ['graph'] : []),
  ];
  if (!model.graph)
    // Protobuf skips fields it does not know, so random bytes often "decode": to nothing a model has.
    throw new CompileError(
      error(
        'onnx.not-onnx',
        `the file is not an ONNX model: its ${bytes.length} bytes do not decode as an ONNX ModelProto with a graph (no ${missing.join(', no ')})`,
        { file },
      ),
    );
  if (missing.length > 0)
    throw new CompileError(
      error('onnx.not-onnx', `the file is not a complete ONNX model: its ModelProto has no ${missing.join(' and no ')}`, { file }),
    );
  return model;
}

export function importOnnxBytes(bytes: Uint8Array, options: ImportOptions = {}, file = '<bytes>'): ImportedModel {
  const model = decodeModel(bytes, file);
  const opsets: Record<string, number> = {};
  for (const o of model.opset_import) opsets[o.domain === 'ai.onnx' ? '' : o.domain] = int64ToNumber(o.version);
  const diagnostics: Diagnostic[] = [];
  const weights = { count: 0, present: 0, absent: 0, bytes: 0, missingFiles: [] as string[] };
  const external = new ExternalDataReader(options.baseDir ?? process.cwd(), file);
  const readExternal = (tensor: string, ref: ExternalRef, byteLength: number) => external.read(tensor, ref, byteLength);

  const onnxOpset = opsets[''];
  if (onnxOpset !== undefined && (onnxOpset < MIN_OPSET || onnxOpset > MAX_OPSET))
    diagnostics.push(
      warning(
        'onnx.opset',
        `the model imports ai.onnx opset ${onnxOpset}; the compiler implements opsets ${MIN_OPSET} to ${MAX_OPSET}, ` +
          `so ops whose definition differs in opset ${onnxOpset} may be read wrongly`,
        { file },
      ),
    );

  const ctx: ImportContext = { opsets, options, readExternal, weights, diagnostics, errors: [], file, nodeCounter: 0 };
  let graph: Graph;
  try {
    graph = importGraph(model.graph!, ctx, undefined);
  } finally {
    external.close();
  }
  weights.missingFiles.push(...new Set(external.missing));
  if (ctx.errors.length > 0) throw new CompileError(ctx.errors);
  if (weights.absent > 0) {
    diagnostics.push(
      warning(
        'onnx.weights-absent',
        `${weights.absent} of ${weights.count} parameters have no data: their external data file${weights.missingFiles.length > 1 ? 's' : ''} ` +
          `(${weights.missingFiles.join(', ')}) ${weights.missingFiles.length > 1 ? 'are' : 'is'} not next to the model. ` +
          `The graph compiles; the compiled model needs weights bound (or randomized) before it runs.`,
        { file },
      ),
    );
  }
  return {
    graph,
    info: {
      irVersion: int64ToNumber(model.ir_version),
      opsets,
      producerName: model.producer_name ?? '',
      producerVersion: model.producer_version ?? '',
      path: file === '<bytes>' ? undefined : file,
      modelBytes: bytes.byteLength,
    },
    weights,
    diagnostics,
    proto: model,
  };
}

/**
 * ai.onnx opsets whose op definitions the compiler implements: numpy broadcasting (7) up to the newest opset
 * checked (23; its changes over 21 are new types and new ops). Outside, a warning: the model may still import.
 */
export const MIN_OPSET = 7;
export const MAX_OPSET = 23;

interface ImportContext {
  opsets: Record<string, number>;
  options: ImportOptions;
  readExternal: (tensor: string, ref: ExternalRef, byteLength: number) => Uint8Array | undefined;
  weights: ImportedModel['weights'];
  diagnostics: Diagnostic[];
  /** Structural errors of the model (duplicate names, bad shapes, bad tensors): all reported at the end of import. */
  errors: Diagnostic[];
  file: string;
  nodeCounter: number;
}

function typeToTensor(
  name: string,
  type: TypeProto | undefined,
  graph: Graph,
  ctx: ImportContext,
  isModelInput: boolean,
): Partial<TensorInfo> {
  if (!type) return {};
  if (type.sequence_type) return { valueType: 'sequence', dtype: dtypeOf(type.sequence_type.elem_type) };
  if (type.optional_type) return { valueType: 'optional', dtype: dtypeOf(type.optional_type.elem_type) };
  const tt = type.tensor_type ?? type.sparse_tensor_type;
  if (!tt) return {};
  const dtype = dtypeFromOnnx(tt.elem_type);
  if (!tt.shape) return { dtype };
  const shape: Dim[] = tt.shape.dim.map((d, i) => {
    if (d.value === 'dim_param' && d.dim_param) {
      let dim: Dim;
      if (!isModelInput)
        dim = graph.symbols.get(d.dim_param)
          ? graph.symbols.define(d.dim_param, 0, Infinity, '')
          : graph.symbols.define(d.dim_param, 0, 2 ** 31, `dim ${i} of '${name}'`);
      else {
        const [lo, hi] = ctx.options.dimBounds?.[d.dim_param] ?? ctx.options.defaultDimBounds ?? [1, 256];
        dim = graph.symbols.define(d.dim_param, lo, hi, `dim ${i} of model input '${name}'`);
      }
      // a symbol fixed to one value (`--dim seq=128..128`) is that constant everywhere: shapes, folding, kernels
      const info = graph.symbols.get(d.dim_param)!;
      return info.min === info.max ? info.min : dim;
    }
    // protobufjs fills defaults: only the oneof case says which of dim_value / dim_param is really set
    if (d.value === 'dim_value') return int64ToNumber(d.dim_value);
    // an unnamed unknown dim: give it a name so it can still be reasoned about
    return graph.symbols.fresh(
      `${name.replace(/[^A-Za-z0-9_]/g, '_')}_d${i}_`,
      isModelInput ? 1 : 0,
      isModelInput ? 256 : 2 ** 31,
      `dim ${i} of '${name}'`,
    );
  });
  const problem = shapeProblem(shape);
  if (problem) {
    ctx.errors.push(error('onnx.bad-shape', `the declared shape of '${name}' is invalid: ${problem}`, { file: ctx.file, tensor: name }));
    return { dtype };
  }
  return { dtype, shape };
}

function dtypeOf(t: TypeProto | undefined) {
  return t?.tensor_type ? dtypeFromOnnx(t.tensor_type.elem_type) : undefined;
}

function metadataOf(entries: StringStringEntryProto[] | undefined): Record<string, string> | undefined {
  if (!entries || entries.length === 0) return undefined;
  const m: Record<string, string> = {};
  for (const e of entries) m[e.key] = e.value;
  return m;
}

/** Module hierarchy: from the dynamo exporter's name_scopes metadata, else from a TorchScript-style node name. */
export function scopeOf(nodeName: string, metadata: Record<string, string> | undefined): string[] {
  const scopes = metadata?.['pkg.torch.onnx.name_scopes'];
  if (scopes) {
    const parts = [...scopes.matchAll(/'([^']*)'|"([^"]*)"/g)].map((m) => m[1] ?? m[2]).filter((s) => s !== '');
    return parts;
  }
  if (nodeName.startsWith('/')) {
    const parts = nodeName.split('/').filter((s) => s !== '');
    return parts.slice(0, -1);
  }
  return [];
}

function importGraph(gp: GraphProto, ctx: ImportContext, parent: Graph | undefined): Graph {
  const graph = new Graph(gp.name || 'main', { opsets: ctx.opsets, parent });
  const initializerNames = new Set(gp.initializer.map((t) => t.name));
  const where = parent ? `subgraph '${graph.name}'` : 'the graph';
  const duplicate = (names: string[], what: string) => {
    const seen = new Set<string>();
    for (const name of names) {
      if (seen.has(name))
        ctx.errors.push(error('graph.duplicate-name', `${what} '${name}' is listed twice in ${where}`, { file: ctx.file, tensor: name }));
      seen.add(name);
    }
  };
  duplicate(
    gp.initializer.map((t) => t.name),
    'initializer',
  );
  duplicate(
    gp.input.map((v) => v.name),
    'input',
  );
  duplicate(
    gp.output.map((v) => v.name),
    'output',
  );
  if (gp.output.length === 0)
    ctx.errors.push(error('graph.no-outputs', `${where} has no outputs: there is nothing to compute`, { file: ctx.file }));

  for (const t of gp.initializer) if (!graph.tensors.has(t.name)) importInitializer(t, graph, ctx);
  for (const vi of gp.input) {
    if (initializerNames.has(vi.name)) continue; // an initializer listed as input (old exporters): a parameter
    if (graph.tensors.has(vi.name)) continue; // listed twice: reported above
    graph.addTensor({ name: vi.name, kind: 'input', ...typeToTensor(vi.name, vi.type, graph, ctx, parent === undefined) });
    graph.inputs.push(vi.name);
  }
  for (const vi of gp.value_info) if (!graph.tensors.has(vi.name)) noteValueInfo(vi, graph, ctx);

  for (const np of gp.node) importNode(np, graph, ctx);

  const outputNames = new Set<string>();
  for (const vi of gp.output) {
    if (outputNames.has(vi.name)) continue; // listed twice: reported above
    outputNames.add(vi.name);
    graph.outputs.push(vi.name);
    const t = graph.lookupTensor(vi.name);
    const declared = typeToTensor(vi.name, vi.type, graph, ctx, false);
    if (t && graph.tensors.has(vi.name)) {
      if (t.kind === 'activation') t.kind = 'output';
      // Keep declared output types as hints; shape inference checks them.
      if (!t.dtype && declared.dtype) t.dtype = declared.dtype;
    } else if (!t) {
      ctx.errors.push(
        error('graph.missing-output', `output '${vi.name}' of ${where} is not produced by any node, nor an input or initializer`, {
          file: ctx.file,
          tensor: vi.name,
        }),
      );
    }
  }
  return graph;
}

function noteValueInfo(vi: ValueInfoProto, graph: Graph, ctx: ImportContext): void {
  // value_info shapes from the exporter are hints only; shape inference recomputes every tensor.
  void vi;
  void graph;
  void ctx;
}

function importInitializer(t: TensorProto, graph: Graph, ctx: ImportContext): void {
  const dtype = dtypeFromOnnx(t.data_type);
  const shape = t.dims.map(int64ToNumber);
  let value: TensorValue | undefined;
  try {
    value = tensorFromProto(t, ctx.readExternal);
  } catch (e) {
    // a bad initializer is reported with the model's other structural errors; other failures stop the import
    if (!(e instanceof CompileError) || !e.diagnostics.every((d) => d.code === 'onnx.bad-tensor')) throw e;
    const prefix = `tensor '${t.name}': `;
    for (const d of e.diagnostics)
      ctx.errors.push({
        ...d,
        message: `initializer '${t.name}': ${d.message.startsWith(prefix) ? d.message.slice(prefix.length) : d.message}`,
        location: { file: ctx.file, ...d.location },
      });
    return;
  }
  ctx.weights.count++;
  const bytes = dtype
    ? shape.reduce((a, b) => a * b, 1) *
      (dtype === 'float32' || dtype === 'int32' ? 4 : dtype === 'float16' ? 2 : dtype === 'int64' || dtype === 'float64' ? 8 : 1)
    : 0;
  ctx.weights.bytes += bytes;
  const info: TensorInfo = { name: t.name, dtype, shape, kind: 'param' };
  if (value) {
    info.value = value;
    info.weights = 'present';
    ctx.weights.present++;
  } else {
    info.weights = 'absent';
    ctx.weights.absent++;
    const kv = new Map(t.external_data.map((e) => [e.key, e.value]));
    info.external = { location: kv.get('location') ?? '', offset: Number(kv.get('offset') ?? 0), length: Number(kv.get('length') ?? -1) };
  }
  // Small integer parameters are shape arithmetic (Reshape targets, Slice bounds): treat them as constants.
  graph.addTensor(info);
}

function attributeValue(a: AttributeProto, graph: Graph, ctx: ImportContext, nodeName: string): AttrValue | undefined {
  const where = `attribute '${a.name}' of node '${nodeName}'`;
  // the type says which field holds the value; a value field missing for its type is a broken attribute
  const missing = (field: string): never => {
    throw new CompileError(
      error('onnx.attribute', `${where} has type ${a.type} but no '${field}' value`, { onnxNode: nodeName, file: ctx.file }),
    );
  };
  const tensor = (t: TensorProto | null | undefined): TensorValue => {
    if (!t) return missing('t');
    let v: TensorValue | undefined;
    try {
      v = tensorFromProto(t, ctx.readExternal);
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
      throw new CompileError(
        e.diagnostics.map((d) => ({ ...d, message: `${where}: ${d.message}`, location: { ...d.location, onnxNode: nodeName } })),
      );
    }
    if (!v)
      throw new CompileError(
        error('onnx.bad-tensor', `${where}: tensor data is in a missing external file`, { onnxNode: nodeName, file: ctx.file }),
      );
    return v;
  };
  switch (a.type) {
    case AttributeType.FLOAT:
      return { type: 'float', value: a.f ?? 0 };
    case AttributeType.INT:
      return { type: 'int', value: int64ToNumber(a.i) };
    case AttributeType.STRING:
      return { type: 'string', value: a.s ? decoder.decode(a.s) : '' };
    case AttributeType.FLOATS:
      return { type: 'floats', value: [...a.floats] };
    case AttributeType.INTS:
      return { type: 'ints', value: a.ints.map(int64ToNumber) };
    case AttributeType.STRINGS:
      return { type: 'strings', value: a.strings.map((s) => decoder.decode(s)) };
    case AttributeType.TENSOR:
      return { type: 'tensor', value: tensor(a.t) };
    case AttributeType.TENSORS:
      return { type: 'tensors', value: a.tensors.map(tensor) };
    case AttributeType.GRAPH:
      return { type: 'graph', value: importGraph(a.g ?? missing('g'), ctx, graph) };
    case AttributeType.GRAPHS:
      return { type: 'graphs', value: a.graphs.map((g) => importGraph(g, ctx, graph)) };
    default:
      if (a.ref_attr_name) return undefined; // function attribute reference (only inside FunctionProto bodies)
      ctx.diagnostics.push(
        warning('onnx.attribute', `${where} has a type (${a.type}) that is not supported; it is ignored`, {
          onnxNode: nodeName,
          file: ctx.file,
        }),
      );
      return undefined;
  }
}

function importNode(np: NodeProto, graph: Graph, ctx: ImportContext): void {
  const index = ctx.nodeCounter++;
  const name = np.name || `${np.op_type}_${index}`;
  const attrs: Attributes = {};
  for (const a of np.attribute) {
    const v = attributeValue(a, graph, ctx, name);
    if (v) attrs[a.name] = v;
  }
  const metadata = metadataOf(np.metadata_props);
  const domain = np.domain === 'ai.onnx' ? '' : (np.domain ?? '');
  const node: Node = {
    id: graph.newNodeId(),
    op: np.op_type,
    domain,
    name,
    inputs: [...np.input],
    outputs: [...np.output],
    attrs,
    sourceNodes: [name],
    scope: scopeOf(name, metadata),
  };
  if (metadata) node.metadata = metadata;
  graph.nodes.push(node);
  for (const o of np.output) {
    if (!o) continue;
    if (graph.tensors.has(o)) {
      const prior = graph.tensors.get(o)!;
      throw new CompileError(
        error(
          'graph.duplicate-name',
          prior.kind === 'input' || prior.kind === 'param'
            ? `node '${name}' writes tensor '${o}', which is already a graph ${prior.kind === 'input' ? 'input' : 'initializer'}`
            : `tensor '${o}' is produced by two nodes (the second is '${name}')`,
          { onnxNode: name, tensor: o, file: ctx.file },
        ),
      );
    }
    graph.addTensor({ name: o, kind: 'activation' });
  }
}
