/**
 * Fuzz inputs: small real models (built with the test ONNX builder) and seeded mutators — byte-level (bit flips,
 * truncations, insertions, deletions, duplicated chunks) and protobuf field mutations (decode with the project's
 * schema, change dims, data types, attributes, names, op types, external data entries, opsets; re-encode).
 *
 * Everything is a function of (seed, case index): `makeCase(seed, index)` gives the same bytes every time, so a
 * failing case is replayed with AIT_FUZZ_SEED=<seed> AIT_FUZZ_ONLY=<index>.
 */
import * as path from 'node:path';
import '../../compiler/ops/index';
import { knownOps } from '../../compiler/ops/registry';
import { ModelProtoType } from '../../compiler/onnx/schema';
import { encodeRaw } from '../../compiler/onnx/tensor-data';
import { seededRandom } from '../../compiler/ir/tensor';
import { ModelSpec, attr, buildModel, tensor } from '../helpers/onnx-builder';

export type Random = () => number;

export interface BaseModel {
  name: string;
  bytes: Uint8Array;
  /** Files written next to the model (external data), by relative name. */
  files: Record<string, Uint8Array>;
}

export interface FuzzCase {
  index: number;
  model: string;
  bytes: Uint8Array;
  files: Record<string, Uint8Array>;
  /** What was done to the model, for the failure report. */
  mutations: string[];
}

/** A deterministic generator for case `index` of run `seed`. */
export function caseRandom(seed: number, index: number): Random {
  return seededRandom((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
}

const ramp = (n: number, scale = 0.1): number[] => Array.from({ length: n }, (_, i) => (((i * 7) % 13) - 6) * scale);

/** conv + relu + reshape + gemm + add + softmax, with weights. */
function convnet(): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 2, 4, 4] }],
    initializers: [
      { ...tensor('float32', [3, 2, 3, 3], ramp(54)), name: 'W' },
      { ...tensor('float32', [3], [0.1, -0.2, 0.3]), name: 'Wb' },
      { ...tensor('int64', [2], [0, -1]), name: 'flat' },
      { ...tensor('float32', [48, 8], ramp(384, 0.01)), name: 'G' },
      { ...tensor('float32', [8], ramp(8)), name: 'Gb' },
      { ...tensor('float32', [8], ramp(8, 0.5)), name: 'A' },
    ],
    nodes: [
      {
        op: 'Conv',
        name: 'conv',
        inputs: ['x', 'W', 'Wb'],
        outputs: ['c'],
        attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3], strides: [1, 1] },
      },
      { op: 'Relu', name: 'relu', inputs: ['c'], outputs: ['r'] },
      { op: 'Reshape', name: 'reshape', inputs: ['r', 'flat'], outputs: ['f'] },
      {
        op: 'Gemm',
        name: 'gemm',
        inputs: ['f', 'G', 'Gb'],
        outputs: ['g'],
        attrs: { alpha: attr.float(1), beta: attr.float(1), transB: 0 },
      },
      { op: 'Add', name: 'add', inputs: ['g', 'A'], outputs: ['a'] },
      { op: 'Softmax', name: 'softmax', inputs: ['a'], outputs: ['y'], attrs: { axis: -1 } },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 8] }],
  };
}

/** Constant nodes, shape arithmetic, a transpose/reduce/pool branch and an If with two subgraphs. */
function control(): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['N', 6] }],
    nodes: [
      { op: 'Constant', name: 'k', inputs: [], outputs: ['k'], attrs: { value: tensor('float32', [6], ramp(6)) } },
      { op: 'Mul', name: 'mul', inputs: ['x', 'k'], outputs: ['m'] },
      { op: 'Shape', name: 'shape', inputs: ['m'], outputs: ['s'] },
      { op: 'Constant', name: 'one', inputs: [], outputs: ['one'], attrs: { value: tensor('int64', [], [1]) } },
      { op: 'Gather', name: 'gather', inputs: ['s', 'one'], outputs: ['d'], attrs: { axis: 0 } },
      { op: 'Constant', name: 'axes', inputs: [], outputs: ['axes'], attrs: { value: tensor('int64', [1], [0]) } },
      { op: 'Unsqueeze', name: 'unsq', inputs: ['d', 'axes'], outputs: ['du'] },
      { op: 'Constant', name: 'minus1', inputs: [], outputs: ['m1'], attrs: { value: tensor('int64', [1], [-1]) } },
      { op: 'Concat', name: 'concat', inputs: ['m1', 'du'], outputs: ['ns'], attrs: { axis: 0 } },
      { op: 'Reshape', name: 'rs', inputs: ['m', 'ns'], outputs: ['r'] },
      { op: 'Transpose', name: 'tr', inputs: ['r'], outputs: ['t'], attrs: { perm: [1, 0] } },
      { op: 'Unsqueeze', name: 'unsq4', inputs: ['t', 'axes'], outputs: ['t3'] },
      { op: 'Unsqueeze', name: 'unsq4b', inputs: ['t3', 'axes'], outputs: ['t4'] },
      { op: 'MaxPool', name: 'pool', inputs: ['t4'], outputs: ['p'], attrs: { kernel_shape: [1, 2], strides: [1, 1], pads: [0, 0, 0, 1] } },
      { op: 'ReduceSum', name: 'rsum', inputs: ['p', 'axes'], outputs: ['z'], attrs: { keepdims: 0 } },
      { op: 'Constant', name: 'cond', inputs: [], outputs: ['cond'], attrs: { value: tensor('bool', [], [1]) } },
      {
        op: 'If',
        name: 'if',
        inputs: ['cond'],
        outputs: ['y'],
        attrs: {
          then_branch: {
            name: 'then',
            inputs: [],
            outputs: [{ name: 'tb', dtype: 'float32', dims: ['N', 6] }],
            nodes: [{ op: 'Relu', name: 'then_relu', inputs: ['m'], outputs: ['tb'] }],
          },
          else_branch: {
            name: 'else',
            inputs: [],
            outputs: [{ name: 'eb', dtype: 'float32', dims: ['N', 6] }],
            nodes: [{ op: 'Neg', name: 'else_neg', inputs: ['m'], outputs: ['eb'] }],
          },
        },
      },
      { op: 'Cast', name: 'cast', inputs: ['z'], outputs: ['zc'], attrs: { to: 1 } },
    ],
    outputs: ['y', 'zc'],
  };
}

/** MatMul + Add + Relu whose weights live in an external data file next to the model (w.bin, offsets 0 and 128). */
function external(): BaseModel {
  const w = ramp(32, 0.05);
  const b = ramp(4);
  const bytes = buildModel({
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 8] }],
    initializers: [
      { name: 'W', dtype: 'float32', dims: [8, 4], external: 'w.bin' },
      { name: 'b', dtype: 'float32', dims: [4], external: 'w.bin' },
    ],
    nodes: [
      { op: 'MatMul', name: 'mm', inputs: ['x', 'W'], outputs: ['h'] },
      { op: 'Add', name: 'bias', inputs: ['h', 'b'], outputs: ['hb'] },
      { op: 'Relu', name: 'relu', inputs: ['hb'], outputs: ['y'] },
    ],
    outputs: ['y'],
  });
  const m = decodePlain(bytes);
  const bias = (m.graph as Plain).initializer[1];
  bias.external_data = [
    { key: 'location', value: 'w.bin' },
    { key: 'offset', value: '128' },
    { key: 'length', value: '16' },
  ];
  const file = new Uint8Array(144);
  file.set(encodeRaw('float32', w), 0);
  file.set(encodeRaw('float32', b), 128);
  return { name: 'external', bytes: encodePlain(m), files: { 'w.bin': file } };
}

export function baseModels(): BaseModel[] {
  return [
    { name: 'convnet', bytes: Uint8Array.from(buildModel(convnet())), files: {} },
    { name: 'control', bytes: Uint8Array.from(buildModel(control())), files: {} },
    external(),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Protobuf as plain objects

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Plain = Record<string, any>;

const TO_OBJECT = { longs: Number, arrays: true, defaults: false, oneofs: false } as const;

export function decodePlain(bytes: Uint8Array): Plain {
  return ModelProtoType.toObject(ModelProtoType.decode(bytes), TO_OBJECT) as Plain;
}

/** Encodes to a plain Uint8Array (protobufjs gives a Buffer, whose slice() is a view, not a copy). */
export function encodePlain(model: Plain): Uint8Array {
  return Uint8Array.from(ModelProtoType.encode(ModelProtoType.fromObject(model)).finish());
}

function graphsOf(g: Plain, out: Plain[] = []): Plain[] {
  out.push(g);
  for (const n of g.node ?? [])
    for (const a of n.attribute ?? []) {
      if (a.g) graphsOf(a.g, out);
      for (const s of a.graphs ?? []) graphsOf(s, out);
    }
  return out;
}

/** Every TensorProto of the model: initializers and tensor attributes (Constant values), in all graphs. */
export function tensorsOf(model: Plain): Plain[] {
  const out: Plain[] = [];
  for (const g of model.graph ? graphsOf(model.graph) : []) {
    out.push(...(g.initializer ?? []));
    for (const n of g.node ?? [])
      for (const a of n.attribute ?? []) {
        if (a.t) out.push(a.t);
        out.push(...(a.tensors ?? []));
      }
  }
  return out;
}

/**
 * True when some external data location of the model resolves outside `dir` (or cannot be checked). The
 * harness skips such a case: the compiler must not be made to read files outside the case's directory.
 */
export function externalDataEscapes(bytes: Uint8Array, dir: string): boolean {
  let model: Plain;
  try {
    model = decodePlain(bytes);
  } catch {
    return false; // the compiler cannot decode it either, so it reads no external data
  }
  for (const t of tensorsOf(model))
    for (const e of t.external_data ?? []) {
      const location = String(e.value ?? '');
      if (location.includes('\0')) continue;
      const rel = path.relative(dir, path.resolve(dir, location));
      if (rel.startsWith('..') || path.isAbsolute(rel)) return true;
    }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Byte mutations

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x0a, 0x12];

export function mutateBytes(bytes: Uint8Array, rnd: Random, log: string[]): Uint8Array {
  const n = bytes.length;
  const at = () => Math.floor(rnd() * n);
  const kind = Math.floor(rnd() * 7);
  switch (kind) {
    case 0: {
      const out = bytes.slice();
      const flips = 1 + Math.floor(rnd() * 8);
      const where: number[] = [];
      for (let i = 0; i < flips; i++) {
        const p = at();
        out[p] ^= 1 << Math.floor(rnd() * 8);
        where.push(p);
      }
      log.push(`bit flips at ${where.join(',')}`);
      return out;
    }
    case 1: {
      const out = bytes.slice();
      const k = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < k; i++) out[at()] = pick(rnd, INTERESTING_BYTES);
      log.push(`${k} bytes set to interesting values`);
      return out;
    }
    case 2: {
      const p = at();
      log.push(`truncated to ${p} of ${n} bytes`);
      return bytes.slice(0, p);
    }
    case 3: {
      const p = at();
      const len = 1 + Math.floor(rnd() * 16);
      const ins = Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
      log.push(`${len} random bytes inserted at ${p}`);
      return concat(bytes.subarray(0, p), ins, bytes.subarray(p));
    }
    case 4: {
      const p = at();
      const len = 1 + Math.floor(rnd() * 16);
      log.push(`${len} bytes deleted at ${p}`);
      return concat(bytes.subarray(0, p), bytes.subarray(Math.min(n, p + len)));
    }
    case 5: {
      const from = at();
      const len = 1 + Math.floor(rnd() * 64);
      const to = at();
      log.push(`chunk ${from}+${len} duplicated at ${to}`);
      return concat(bytes.subarray(0, to), bytes.subarray(from, from + len), bytes.subarray(to));
    }
    default: {
      const out = bytes.slice();
      const p = at();
      const len = 1 + Math.floor(rnd() * 10);
      for (let i = p; i < Math.min(n, p + len); i++) out[i] = 0xff;
      log.push(`${len} bytes of 0xff (long varints) at ${p}`);
      return out;
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Field mutations

const INTERESTING_INTS = [
  0,
  1,
  -1,
  2,
  3,
  -2,
  7,
  255,
  256,
  65535,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  2 ** 40,
  2 ** 53,
  -(2 ** 53),
  2 ** 62,
];
const INTERESTING_FLOATS = [0, -0, 1, -1, 0.5, 1e-30, 1e30, -1e30, NaN, Infinity, -Infinity, 3.4e38];
const INTERESTING_STRINGS = ['', 'x', 'NCHW', 'constant', 'reflect', 'nearest', 'linear', '\r', 'é', 'a'.repeat(300)];
const ATTRIBUTE_NAMES = [
  'axis',
  'axes',
  'perm',
  'pads',
  'strides',
  'kernel_shape',
  'dilations',
  'group',
  'to',
  'keepdims',
  'transA',
  'transB',
  'alpha',
  'beta',
  'value',
  'auto_pad',
  'mode',
  'ceil_mode',
  'then_branch',
  'else_branch',
  'body',
  'epsilon',
  'allowzero',
];
const EXTERNAL_OFFSETS = ['0', '4', '128', '-1', '-16', 'NaN', 'abc', '1e30', '9007199254740993', '', '1.5', '0x10'];
const EXTERNAL_LOCATIONS = ['w.bin', 'missing.bin', 'sub/w.bin', '', 'model.onnx', 'w.bin/x', 'a/../w.bin', './w.bin', 'é.bin'];

function pick<T>(rnd: Random, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)];
}

function anInt(rnd: Random): number {
  return rnd() < 0.75 ? pick(rnd, INTERESTING_INTS) : Math.floor(rnd() * 20) - 5;
}

function aFloat(rnd: Random): number {
  return rnd() < 0.75 ? pick(rnd, INTERESTING_FLOATS) : (rnd() - 0.5) * 10;
}

const nodesOf = (model: Plain): { g: Plain; n: Plain }[] =>
  graphsOf(model.graph).flatMap((g) => (g.node ?? []).map((n: Plain) => ({ g, n })));

const valueInfosOf = (model: Plain): Plain[] =>
  graphsOf(model.graph).flatMap((g) => [...(g.input ?? []), ...(g.output ?? []), ...(g.value_info ?? [])]);

const namesOf = (g: Plain): string[] => [
  ...(g.input ?? []).map((v: Plain) => v.name),
  ...(g.initializer ?? []).map((t: Plain) => t.name),
  ...(g.node ?? []).flatMap((n: Plain) => n.output ?? []),
];

type FieldMutator = (model: Plain, rnd: Random) => string | undefined;

const mutators: Record<string, FieldMutator> = {
  tensorDims(model, rnd) {
    const t = pickOf(rnd, tensorsOf(model));
    if (!t) return undefined;
    t.dims ??= [];
    const k = Math.floor(rnd() * 5);
    if (k === 0 && t.dims.length) {
      const i = Math.floor(rnd() * t.dims.length);
      t.dims[i] = anInt(rnd);
      return `tensor '${t.name}' dims[${i}] = ${t.dims[i]}`;
    }
    if (k === 1) t.dims.push(anInt(rnd));
    else if (k === 2) t.dims.pop();
    else if (k === 3) t.dims = [];
    else t.dims = t.dims.map(() => anInt(rnd));
    return `tensor '${t.name}' dims = [${t.dims}]`;
  },
  tensorDataType(model, rnd) {
    const t = pickOf(rnd, tensorsOf(model));
    if (!t) return undefined;
    t.data_type = rnd() < 0.8 ? Math.floor(rnd() * 26) - 1 : anInt(rnd);
    return `tensor '${t.name}' data_type = ${t.data_type}`;
  },
  tensorData(model, rnd) {
    const t = pickOf(rnd, tensorsOf(model));
    if (!t) return undefined;
    const raw: Uint8Array | undefined = t.raw_data;
    switch (Math.floor(rnd() * 6)) {
      case 0:
        if (!raw) return undefined;
        t.raw_data = raw.slice(0, Math.floor(rnd() * raw.length));
        return `tensor '${t.name}' raw_data truncated to ${t.raw_data.length} bytes`;
      case 1:
        t.raw_data = concat(raw ?? new Uint8Array(), new Uint8Array(1 + Math.floor(rnd() * 64)).fill(0x41));
        return `tensor '${t.name}' raw_data extended to ${t.raw_data.length} bytes`;
      case 2:
        delete t.raw_data;
        return `tensor '${t.name}' raw_data removed`;
      case 3: {
        if (!raw || raw.length < 8) return undefined;
        const out = Uint8Array.from(raw); // a copy (raw may be a Buffer view into the decoded bytes)
        const view = new DataView(out.buffer);
        const i = Math.floor(rnd() * Math.floor(out.length / 8));
        view.setBigInt64(i * 8, BigInt(pick(rnd, [-1, 0, 2 ** 31, 2 ** 53, -(2 ** 53), 2 ** 62])), true);
        t.raw_data = out;
        return `tensor '${t.name}' raw_data int64 #${i} changed`;
      }
      case 4: {
        delete t.raw_data;
        const len = Math.floor(rnd() * 6);
        t.float_data = Array.from({ length: len }, () => aFloat(rnd));
        t.int64_data = Array.from({ length: len }, () => anInt(rnd));
        t.int32_data = Array.from({ length: len }, () => anInt(rnd) | 0);
        return `tensor '${t.name}' typed data with ${len} values`;
      }
      default:
        t.string_data = [new TextEncoder().encode(pick(rnd, INTERESTING_STRINGS))];
        return `tensor '${t.name}' string_data set`;
    }
  },
  valueInfoDims(model, rnd) {
    const v = pickOf(rnd, valueInfosOf(model));
    if (!v) return undefined;
    const tt = v.type?.tensor_type;
    if (!tt) {
      v.type = { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: anInt(rnd) }] } } };
      return `value '${v.name}' given a tensor type`;
    }
    const dims: Plain[] = (tt.shape ??= { dim: [] }).dim ?? (tt.shape.dim = []);
    switch (Math.floor(rnd() * 6)) {
      case 0:
        if (!dims.length) return undefined;
        dims[Math.floor(rnd() * dims.length)] = { dim_value: anInt(rnd) };
        break;
      case 1:
        if (!dims.length) return undefined;
        dims[Math.floor(rnd() * dims.length)] = { dim_param: pick(rnd, ['B', 'N', 'other', '', '0', 'B+1']) };
        break;
      case 2:
        dims.pop();
        break;
      case 3:
        dims.push({ dim_value: anInt(rnd) });
        break;
      case 4:
        delete tt.shape;
        return `value '${v.name}' shape removed`;
      default:
        delete v.type;
        return `value '${v.name}' type removed`;
    }
    return `value '${v.name}' dims = ${JSON.stringify(dims)}`;
  },
  valueInfoElemType(model, rnd) {
    const v = pickOf(rnd, valueInfosOf(model));
    if (!v?.type?.tensor_type) return undefined;
    v.type.tensor_type.elem_type = Math.floor(rnd() * 26) - 1;
    return `value '${v.name}' elem_type = ${v.type.tensor_type.elem_type}`;
  },
  attribute(model, rnd) {
    const owner = pickOf(rnd, nodesOf(model));
    if (!owner) return undefined;
    const n = owner.n;
    n.attribute ??= [];
    const a = pickOf<Plain>(rnd, n.attribute);
    const k = Math.floor(rnd() * 9);
    if (k === 0 || !a) {
      const name = pick(rnd, ATTRIBUTE_NAMES);
      const type = 1 + Math.floor(rnd() * 8);
      const attr: Plain = { name, type };
      if (type === 1) attr.f = aFloat(rnd);
      else if (type === 2) attr.i = anInt(rnd);
      else if (type === 3) attr.s = new TextEncoder().encode(pick(rnd, INTERESTING_STRINGS));
      else if (type === 6) attr.floats = [aFloat(rnd), aFloat(rnd)];
      else if (type === 7) attr.ints = Array.from({ length: Math.floor(rnd() * 6) }, () => anInt(rnd));
      else if (type === 8) attr.strings = [new TextEncoder().encode(pick(rnd, INTERESTING_STRINGS))];
      n.attribute.push(attr);
      return `node '${n.name}' attribute '${name}' (type ${type}) added`;
    }
    switch (k) {
      case 1:
        a.i = anInt(rnd);
        return `node '${n.name}' attribute '${a.name}'.i = ${a.i}`;
      case 2: {
        a.ints ??= [];
        if (a.ints.length && rnd() < 0.6) a.ints[Math.floor(rnd() * a.ints.length)] = anInt(rnd);
        else if (rnd() < 0.5) a.ints.push(anInt(rnd));
        else a.ints.pop();
        return `node '${n.name}' attribute '${a.name}'.ints = [${a.ints}]`;
      }
      case 3:
        a.f = aFloat(rnd);
        a.floats = (a.floats ?? []).map(() => aFloat(rnd));
        return `node '${n.name}' attribute '${a.name}'.f = ${a.f}`;
      case 4:
        a.s = new TextEncoder().encode(pick(rnd, INTERESTING_STRINGS));
        return `node '${n.name}' attribute '${a.name}'.s changed`;
      case 5:
        a.type = Math.floor(rnd() * 16) - 1;
        return `node '${n.name}' attribute '${a.name}'.type = ${a.type}`;
      case 6:
        n.attribute.splice(n.attribute.indexOf(a), 1);
        return `node '${n.name}' attribute '${a.name}' removed`;
      case 7:
        n.attribute.push({ ...a });
        return `node '${n.name}' attribute '${a.name}' duplicated`;
      default:
        a.name = pick(rnd, ATTRIBUTE_NAMES);
        return `node '${n.name}' attribute renamed to '${a.name}'`;
    }
  },
  names(model, rnd) {
    const owner = pickOf(rnd, nodesOf(model));
    if (!owner) return undefined;
    const { g, n } = owner;
    const names = namesOf(g);
    const other = () => (rnd() < 0.8 ? pick(rnd, names.length ? names : ['zzz']) : pick(rnd, ['', 'zzz', 'x', 'y']));
    n.input ??= [];
    n.output ??= [];
    switch (Math.floor(rnd() * 10)) {
      case 0:
      case 1: {
        if (!n.input.length) return undefined;
        const i = Math.floor(rnd() * n.input.length);
        n.input[i] = other();
        return `node '${n.name}' input ${i} = '${n.input[i]}'`;
      }
      case 2: {
        if (!n.output.length) return undefined;
        const i = Math.floor(rnd() * n.output.length);
        n.output[i] = other();
        return `node '${n.name}' output ${i} = '${n.output[i]}'`;
      }
      case 3:
        n.input.push(other());
        return `node '${n.name}' extra input '${n.input[n.input.length - 1]}'`;
      case 4:
        n.input.pop();
        return `node '${n.name}' last input removed`;
      case 5:
        if (rnd() < 0.5) n.output.push(other());
        else n.output.pop();
        return `node '${n.name}' outputs = [${n.output}]`;
      case 6: {
        const list: Plain[] = rnd() < 0.5 ? (g.input ??= []) : (g.output ??= []);
        const v = pickOf(rnd, list);
        if (!v) return undefined;
        v.name = other();
        return `graph '${g.name}' value renamed to '${v.name}'`;
      }
      case 7: {
        const list: Plain[] = rnd() < 0.5 ? (g.input ??= []) : (g.output ??= []);
        const v = pickOf(rnd, list);
        if (!v) return undefined;
        list.push({ ...v });
        return `graph '${g.name}' value '${v.name}' duplicated`;
      }
      case 8:
        if (rnd() < 0.5) g.output = [];
        else g.output = (g.output ?? []).slice(1);
        return `graph '${g.name}' outputs = [${g.output.map((v: Plain) => v.name)}]`;
      default:
        n.name = pick(rnd, ['', names[0] ?? 'x', 'n\r#error', '/a/b/c', 'é']);
        return `node renamed to ${JSON.stringify(n.name)}`;
    }
  },
  opType(model, rnd) {
    const owner = pickOf(rnd, nodesOf(model));
    if (!owner) return undefined;
    const n = owner.n;
    const r = rnd();
    if (r < 0.8) n.op_type = pick(rnd, knownOps());
    else if (r < 0.9) n.op_type = pick(rnd, ['', 'NoSuchOp', 'conv', 'If', 'Loop', 'Scan']);
    else n.domain = pick(rnd, ['com.microsoft', 'ai.onnx.ml', 'ai.onnx', 'x.y', '']);
    return `node '${n.name}' op = '${n.domain ? `${n.domain}.` : ''}${n.op_type}'`;
  },
  externalData(model, rnd) {
    const t = pickOf(rnd, tensorsOf(model));
    if (!t) return undefined;
    t.external_data ??= [];
    const set = (key: string, value: string) => {
      const e = t.external_data.find((x: Plain) => x.key === key);
      if (e) e.value = value;
      else t.external_data.push({ key, value });
    };
    switch (Math.floor(rnd() * 6)) {
      case 0:
        t.data_location = 1;
        delete t.raw_data;
        set('location', pick(rnd, EXTERNAL_LOCATIONS));
        set('offset', pick(rnd, EXTERNAL_OFFSETS));
        break;
      case 1:
        set('offset', pick(rnd, EXTERNAL_OFFSETS));
        break;
      case 2:
        set('length', pick(rnd, EXTERNAL_OFFSETS));
        break;
      case 3:
        set('location', pick(rnd, EXTERNAL_LOCATIONS));
        break;
      case 4:
        t.external_data = [];
        break;
      default:
        t.data_location = pick(rnd, [0, 1, 2, -1]);
        t.external_data.push({ key: pick(rnd, ['checksum', 'location', 'offset', '']), value: pick(rnd, EXTERNAL_OFFSETS) });
    }
    return `tensor '${t.name}' data_location ${t.data_location ?? 0}, external_data ${JSON.stringify(t.external_data)}`;
  },
  opset(model, rnd) {
    model.opset_import ??= [];
    switch (Math.floor(rnd() * 4)) {
      case 0:
        model.opset_import = [];
        return 'opset_import removed';
      case 1:
        model.opset_import.push({ domain: pick(rnd, ['', 'ai.onnx', 'com.microsoft']), version: anInt(rnd) });
        return `opset_import added: ${JSON.stringify(model.opset_import.at(-1))}`;
      case 2:
        if (model.opset_import[0]) model.opset_import[0].domain = pick(rnd, ['ai.onnx', 'com.microsoft', 'x']);
        return `opset domain changed`;
      default: {
        const v = pick(rnd, [0, 1, 6, 7, 9, 10, 11, 12, 13, 18, 21, 99, -1, 2 ** 31, 2 ** 40]);
        if (model.opset_import[0]) model.opset_import[0].version = v;
        return `opset version = ${v}`;
      }
    }
  },
  irVersion(model, rnd) {
    model.ir_version = anInt(rnd);
    return `ir_version = ${model.ir_version}`;
  },
  structure(model, rnd) {
    const g = pick(rnd, graphsOf(model.graph));
    g.node ??= [];
    g.initializer ??= [];
    g.input ??= [];
    switch (Math.floor(rnd() * 6)) {
      case 0: {
        const i = Math.floor(rnd() * g.node.length);
        const [n] = g.node.splice(i, 1);
        return n ? `node '${n.name}' removed` : undefined;
      }
      case 1: {
        const n = pickOf<Plain>(rnd, g.node);
        if (!n) return undefined;
        g.node.push(structuredClone(n));
        return `node '${n.name}' duplicated`;
      }
      case 2: {
        if (g.node.length < 2) return undefined;
        const i = Math.floor(rnd() * g.node.length);
        const j = Math.floor(rnd() * g.node.length);
        [g.node[i], g.node[j]] = [g.node[j], g.node[i]];
        return `nodes ${i} and ${j} swapped`;
      }
      case 3: {
        const i = Math.floor(rnd() * g.initializer.length);
        const [t] = g.initializer.splice(i, 1);
        return t ? `initializer '${t.name}' removed` : undefined;
      }
      case 4: {
        const t = pickOf<Plain>(rnd, g.initializer);
        if (!t) return undefined;
        g.initializer.push(structuredClone(t));
        return `initializer '${t.name}' duplicated`;
      }
      default: {
        const t = pickOf<Plain>(rnd, g.initializer);
        if (!t) return undefined;
        g.input.push({ name: t.name, type: { tensor_type: { elem_type: t.data_type, shape: { dim: [{ dim_value: 1 }] } } } });
        return `initializer '${t.name}' also listed as graph input`;
      }
    }
  },
};

const MUTATOR_WEIGHTS: [string, number][] = [
  ['tensorDims', 3],
  ['tensorDataType', 2],
  ['tensorData', 3],
  ['valueInfoDims', 3],
  ['valueInfoElemType', 1],
  ['attribute', 5],
  ['names', 4],
  ['opType', 3],
  ['externalData', 2],
  ['opset', 1],
  ['irVersion', 1],
  ['structure', 3],
];
const TOTAL_WEIGHT = MUTATOR_WEIGHTS.reduce((a, [, w]) => a + w, 0);

function pickOf<T>(rnd: Random, xs: T[] | undefined): T | undefined {
  return xs && xs.length ? xs[Math.floor(rnd() * xs.length)] : undefined;
}

/** Applies 1–3 field mutations to a decoded copy of `bytes` and re-encodes it. */
export function mutateFields(bytes: Uint8Array, rnd: Random, log: string[]): Uint8Array {
  const model = decodePlain(bytes);
  const count = 1 + Math.floor(rnd() * rnd() * 3.99);
  for (let i = 0, tries = 0; i < count && tries < 20; tries++) {
    let r = rnd() * TOTAL_WEIGHT;
    let name = MUTATOR_WEIGHTS[0][0];
    for (const [n, w] of MUTATOR_WEIGHTS) {
      if ((r -= w) < 0) {
        name = n;
        break;
      }
    }
    const what = mutators[name](model, rnd);
    if (what !== undefined) {
      log.push(`${name}: ${what}`);
      i++;
    }
  }
  return encodePlain(model);
}

/** Case `index` of run `seed`: a base model, field mutations (60%), byte mutations (40%), sometimes both. */
export function makeCase(models: BaseModel[], seed: number, index: number): FuzzCase {
  const rnd = caseRandom(seed, index);
  const base = models[Math.floor(rnd() * models.length)];
  const mutations: string[] = [];
  let bytes = base.bytes;
  const r = rnd();
  if (r < 0.6) bytes = mutateFields(bytes, rnd, mutations);
  if (r >= 0.6 || rnd() < 0.1) bytes = mutateBytes(bytes, rnd, mutations);
  return { index, model: base.name, bytes, files: base.files, mutations };
}
