/**
 * Random weights for graph-only models.
 *
 * A model whose external data file is missing (the shared models, a user's graph-only export) can still be run
 * by the reference interpreter and by onnxruntime once every absent parameter is filled with deterministic,
 * seeded data. Values are scaled by what each parameter is for, so activations stay O(1) through deep nets:
 * conv/linear weights ~ N(0, 1/fan_in), biases ~ N(0, 0.02²), normalization scales ≈ 1 and shifts ≈ 0,
 * BatchNorm running variance in [0.5, 1.5] and running mean small.
 *
 * `materializeWeights` sets the values on the graph's parameter tensors (weights: 'present') and returns the
 * model re-encoded as self-contained ONNX bytes (all data inline as raw_data, no external references), which
 * onnxruntime can load from a buffer.
 */
import { CompileError, error } from '../diagnostics';
import { isFloatType } from '../ir/dtype';
import { Graph, Node, TensorInfo, attrInt } from '../ir/graph';
import { TensorValue, makeTensor, numel, numeric, seededRandom } from '../ir/tensor';
import { ImportedModel } from './import';
import { GraphProto, ModelProtoType, TensorProto } from './schema';
import { encodeRaw } from './tensor-data';

export interface MaterializeOptions {
  /** Seed of the random weights (default 0). The same seed gives the same weights for the same model. */
  seed?: number;
  /**
   * Standard deviation of conv/linear weights, instead of 1/sqrt(fan_in): a fixed std such as the 0.1 of some
   * frameworks' default init grows activations layer by layer (deep CNNs reach 1e12), which checks fp16 range handling.
   */
  weightStd?: number;
}

/** What a parameter is for, which decides its distribution. */
export type ParameterRole =
  | { kind: 'weight'; fanIn: number }
  | { kind: 'bias' }
  | { kind: 'scale' }
  | { kind: 'running-mean' }
  | { kind: 'running-var' }
  | { kind: 'embedding' };

export interface MaterializeResult {
  /** The model as ONNX bytes with every initializer's data inline. */
  bytes: Uint8Array;
  /** Parameters that were filled with random data, with the role that chose their distribution. */
  randomized: { name: string; role: ParameterRole['kind'] }[];
}

/** Fills absent parameters of `model.graph` with seeded data and re-encodes the model. */
export function materializeWeights(model: ImportedModel, options: MaterializeOptions = {}): MaterializeResult {
  const seed = options.seed ?? 0;
  const graph = model.graph;
  const randomized: MaterializeResult['randomized'] = [];
  for (const t of graph.tensors.values()) {
    if (t.kind !== 'param' || t.weights !== 'absent') continue;
    const role = parameterRole(graph, t);
    t.value = randomParameter(t, role, seed, options.weightStd);
    t.weights = 'present';
    randomized.push({ name: t.name, role: role.kind });
  }
  return { bytes: encodeModelWithWeights(model), randomized };
}

/** Re-encodes the imported model with every initializer's data inline (from the graph's parameter values). */
export function encodeModelWithWeights(model: ImportedModel): Uint8Array {
  const proto = model.proto;
  if (!proto.graph) throw new CompileError(error('onnx.not-onnx', 'the model has no graph', { file: model.info.path }));
  const graph = inlineInitializers(proto.graph, model.graph, model.info.path);
  return ModelProtoType.encode({ ...proto, graph }).finish();
}

function inlineInitializers(gp: GraphProto, graph: Graph, file: string | undefined): GraphProto {
  const initializer = gp.initializer.map((t): TensorProto => {
    if (t.data_location !== 1) return t;
    const value = graph.tensors.get(t.name)?.value;
    if (!value || Array.isArray(value.data))
      throw new CompileError(
        error('weights.absent', `initializer '${t.name}' has no data to inline: materialize or bind the weights first`, {
          tensor: t.name,
          file,
        }),
      );
    return { ...t, raw_data: rawBytes(value), data_location: 0, external_data: [] };
  });
  return { ...gp, initializer };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Little-endian raw bytes of a tensor; float32 storage is copied as is (ONNX raw data is little-endian). */
function rawBytes(value: TensorValue): Uint8Array {
  const data = numeric(value);
  if (value.dtype === 'float32' && data instanceof Float32Array && LITTLE_ENDIAN)
    return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return encodeRaw(value.dtype, data);
}

// ---- roles ----

/** Readers of a tensor, looking through Identity nodes (the TorchScript exporter aliases weights with them). */
function readersOf(graph: Graph, name: string, consumers = graph.consumers(), depth = 0): { node: Node; index: number }[] {
  const out: { node: Node; index: number }[] = [];
  for (const node of consumers.get(name) ?? []) {
    if (node.op === 'Identity' && depth < 8) out.push(...readersOf(graph, node.outputs[0], consumers, depth + 1));
    else node.inputs.forEach((input, index) => input === name && out.push({ node, index }));
  }
  return out;
}

let consumerCache: { graph: Graph; nodes: number; map: Map<string, Node[]> } | undefined;

function consumersOf(graph: Graph): Map<string, Node[]> {
  if (!consumerCache || consumerCache.graph !== graph || consumerCache.nodes !== graph.nodes.length)
    consumerCache = { graph, nodes: graph.nodes.length, map: graph.consumers() };
  return consumerCache.map;
}

/**
 * The role of a parameter from the ops that read it. A tensor shared by several readers (the dynamo exporter
 * deduplicates equal initializers, e.g. one zeros vector for every LayerNorm bias and Linear bias) takes the
 * first role in this order: weight, normalization statistics and scale, bias, embedding.
 */
export function parameterRole(graph: Graph, t: TensorInfo): ParameterRole {
  const shape = (t.shape ?? []) as number[];
  const readers = readersOf(graph, t.name, consumersOf(graph));
  const roles: ParameterRole[] = readers.map(({ node, index }) => roleFor(node, index, shape));
  const rank = (r: ParameterRole) => ['weight', 'running-var', 'running-mean', 'scale', 'bias', 'embedding'].indexOf(r.kind);
  roles.sort((a, b) => rank(a) - rank(b));
  return roles[0] ?? { kind: 'embedding' };
}

function roleFor(node: Node, index: number, shape: number[]): ParameterRole {
  const last = shape[shape.length - 1] ?? 1;
  switch (node.op) {
    case 'Conv':
      return index === 1 ? { kind: 'weight', fanIn: numel(shape.slice(1)) } : { kind: 'bias' };
    case 'ConvTranspose':
      return index === 1 ? { kind: 'weight', fanIn: shape[0] * numel(shape.slice(2)) } : { kind: 'bias' };
    case 'Gemm':
      if (index === 1) return { kind: 'weight', fanIn: attrInt(node, 'transB', 0) ? last : shape[0] };
      if (index === 0) return { kind: 'weight', fanIn: attrInt(node, 'transA', 0) ? shape[0] : last };
      return { kind: 'bias' };
    case 'MatMul':
      return index === 1 ? { kind: 'weight', fanIn: shape.length >= 2 ? shape[shape.length - 2] : last } : { kind: 'weight', fanIn: last };
    case 'BatchNormalization':
      return index === 1
        ? { kind: 'scale' }
        : index === 3
          ? { kind: 'running-mean' }
          : index === 4
            ? { kind: 'running-var' }
            : { kind: 'bias' };
    case 'LayerNormalization':
    case 'InstanceNormalization':
    case 'GroupNormalization':
      return index === 1 ? { kind: 'scale' } : { kind: 'bias' };
    case 'Add':
    case 'Sub':
      return shape.length <= 1 ? { kind: 'bias' } : { kind: 'embedding' };
    case 'Mul':
    case 'Div':
      return { kind: 'scale' };
    default:
      return { kind: 'embedding' };
  }
}

// ---- values ----

/** A deterministic per-tensor seed: the model seed mixed with the tensor's name (order-independent). */
function tensorSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Standard normal samples by the Box–Muller transform over the seeded uniform generator. */
export function normalSampler(seed: number): () => number {
  const uniform = seededRandom(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - uniform(); // (0, 1]
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

function randomParameter(t: TensorInfo, role: ParameterRole, seed: number, weightStd?: number): TensorValue {
  const shape = t.shape;
  if (!t.dtype || !shape || !shape.every((d): d is number => typeof d === 'number'))
    throw new CompileError(
      error('weights.unknown-shape', `parameter '${t.name}' has no concrete dtype and shape to fill`, { tensor: t.name }),
    );
  if (!isFloatType(t.dtype))
    throw new CompileError(
      error(
        'weights.absent-integer',
        `parameter '${t.name}' (${t.dtype}) has no data, and integer parameters cannot be randomized (they are usually shapes or indices)`,
        {
          tensor: t.name,
        },
      ),
    );
  const normal = normalSampler(tensorSeed(seed, t.name));
  const uniform = seededRandom(tensorSeed(seed + 1, t.name));
  const value = makeTensor(t.dtype, shape);
  const data = numeric(value);
  const sample: () => number =
    role.kind === 'weight'
      ? (
          (std) => () =>
            normal() * std
        )(weightStd ?? Math.sqrt(1 / Math.max(1, role.fanIn)))
      : role.kind === 'scale'
        ? () => 1 + 0.1 * normal()
        : role.kind === 'running-var'
          ? () => 0.5 + uniform()
          : role.kind === 'running-mean'
            ? () => 0.1 * normal()
            : () => 0.02 * normal();
  for (let i = 0; i < data.length; i++) data[i] = sample();
  return value;
}
