/**
 * The external-data path policy: the one place where an ONNX model's `external_data` entries become file reads.
 *
 * A model file is untrusted input, so its external data must stay where the model is, as the ONNX reference
 * implementation requires:
 * - `location` is a plain relative path (compiler/paths.ts: no `..`, NUL, backslash, drive/UNC prefix);
 * - after resolving symbolic links it lies inside the model's directory and is a regular file (no device, FIFO or
 *   directory: `/dev/zero` or a pipe would never end);
 * - `offset` and `length` are non-negative integers, `length` (when given) is what the tensor's dims need, and the
 *   range lies inside the file.
 * Only the bytes a tensor needs are read. A location that does not exist is not an error here: the model is a
 * graph-only export and its parameters are marked absent (the importer warns once).
 *
 * Every refusal is a CompileError (`onnx.external-data`) naming the initializer, the location and the model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, error } from '../diagnostics';
import { isWithin, plainRelativePathProblem } from '../paths';
import { AttributeType, DATA_LOCATION_EXTERNAL, type GraphProto, type ModelProto, type TensorProto } from './schema';

export interface ExternalRef {
  location: string;
  /** As written in the model; checked by the reader. */
  offset: string | undefined;
  length: string | undefined;
}

interface OpenFile {
  fd: number;
  size: number;
}

export class ExternalDataReader {
  private readonly realBase: string | undefined;
  private readonly files = new Map<string, OpenFile | null>();
  /** Locations that were not found (graph-only exports). */
  readonly missing: string[] = [];

  /** `baseDir`: the model's directory; `modelFile`: for messages. */
  constructor(
    private readonly baseDir: string,
    private readonly modelFile: string,
  ) {
    try {
      this.realBase = fs.realpathSync(baseDir);
    } catch {
      this.realBase = undefined; // no such directory: every location is missing
    }
  }

  private refuse(tensor: string, location: string, why: string): never {
    throw new CompileError(
      error('onnx.external-data', `initializer '${tensor}': external data location ${JSON.stringify(location)} ${why}`, {
        file: this.modelFile,
        tensor,
      }),
    );
  }

  /** Checks a location's form (no file system access): a plain relative path (compiler/paths.ts). */
  checkLocation(tensor: string, location: string): void {
    // './' segments are common in exported models and name the same file; everything else must be plain
    const plain = location.includes('\0')
      ? location
      : location
          .split('/')
          .filter((p, i, all) => p !== '.' || all.length === 1)
          .join('/');
    const problem = plainRelativePathProblem(plain, "the model's directory");
    if (problem) this.refuse(tensor, location, problem);
  }

  /**
   * The file of a location that passes the policy: checked form, real path inside the model's directory, a regular
   * file. Undefined when it does not exist (recorded in `missing`).
   */
  locate(tensor: string, location: string): { real: string; size: number } | undefined {
    this.checkLocation(tensor, location);
    const full = path.join(this.realBase ?? this.baseDir, location);
    let real: string | undefined;
    try {
      real = fs.realpathSync(full);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.refuse(tensor, location, `cannot be read: ${(e as Error).message}`);
    }
    if (real === undefined || this.realBase === undefined) {
      this.missing.push(location);
      return undefined;
    }
    if (real === this.realBase || !isWithin(this.realBase, real))
      this.refuse(tensor, location, `resolves to ${real}, outside the model's directory (through a symbolic link)`);
    const stat = fs.statSync(real);
    if (!stat.isFile()) this.refuse(tensor, location, `is not a regular file`);
    return { real, size: stat.size };
  }

  private open(tensor: string, location: string): OpenFile | null {
    const full = path.join(this.realBase ?? this.baseDir, location);
    const cached = this.files.get(full);
    if (cached !== undefined) return cached;
    let entry: OpenFile | null = null;
    const found = this.locate(tensor, location);
    if (found) {
      try {
        entry = { fd: fs.openSync(found.real, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0)), size: found.size };
      } catch (e) {
        this.refuse(tensor, location, `cannot be read: ${(e as Error).message}`);
      }
    }
    this.files.set(full, entry);
    return entry;
  }

  /**
   * The `byteLength` bytes of tensor `tensor` described by `ref`, or undefined when its file does not exist.
   */
  read(tensor: string, ref: ExternalRef, byteLength: number): Uint8Array | undefined {
    this.checkLocation(tensor, ref.location);
    const offset = parseCount(ref.offset ?? '0');
    if (offset === undefined) this.refuse(tensor, ref.location, `has offset ${JSON.stringify(ref.offset)}, not a non-negative integer`);
    if (ref.length !== undefined) {
      const length = parseCount(ref.length);
      if (length === undefined) this.refuse(tensor, ref.location, `has length ${JSON.stringify(ref.length)}, not a non-negative integer`);
      if (length !== byteLength)
        this.refuse(tensor, ref.location, `has length ${length}, but the tensor's type and dims need ${byteLength} bytes`);
    }
    const file = this.open(tensor, ref.location);
    if (!file) return undefined;
    if (offset + byteLength > file.size)
      this.refuse(
        tensor,
        ref.location,
        `is too short: the tensor needs bytes ${offset}..${offset + byteLength}, the file has ${file.size} bytes`,
      );
    const bytes = new Uint8Array(byteLength);
    let done = 0;
    while (done < byteLength) {
      const n = fs.readSync(file.fd, bytes, done, byteLength - done, offset + done);
      if (n <= 0) this.refuse(tensor, ref.location, `ended early (read ${done} of ${byteLength} bytes)`);
      done += n;
    }
    return bytes;
  }

  close(): void {
    for (const f of this.files.values()) if (f) fs.closeSync(f.fd);
    this.files.clear();
  }
}

/** A non-negative integer written in decimal, or undefined. */
function parseCount(text: string): number | undefined {
  if (!/^\d{1,16}$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A model's external data files that pass the policy above, as the model names them (distinct, normalized). */
export interface ExternalDataFiles {
  /** Locations relative to the model's directory ('/'-separated), each an existing regular file inside it. */
  files: string[];
  /** Locations the model names that do not exist (a graph-only export). */
  missing: string[];
}

/**
 * The distinct external data locations of `model` (initializers, sparse initializers, tensor attributes, subgraphs),
 * each checked as ExternalDataReader checks it before reading: what must travel with the model file for another
 * reader (onnxruntime) to load it. A location that breaks the policy throws the reader's CompileError.
 */
export function externalDataFiles(modelFile: string, model: ModelProto): ExternalDataFiles {
  const reader = new ExternalDataReader(path.dirname(path.resolve(modelFile)), modelFile);
  const files = new Set<string>();
  const missing = new Set<string>();
  const tensor = (t: TensorProto | undefined) => {
    if (!t || t.data_location !== DATA_LOCATION_EXTERNAL) return;
    const location = t.external_data.find((e) => e.key === 'location')?.value ?? '';
    reader.checkLocation(t.name, location);
    const normalized = path.posix.normalize(location);
    if (files.has(normalized) || missing.has(normalized)) return;
    if (reader.locate(t.name, location)) files.add(normalized);
    else missing.add(normalized);
  };
  const graph = (g: GraphProto | undefined) => {
    if (!g) return;
    for (const t of g.initializer) tensor(t);
    for (const s of g.sparse_initializer as { values?: TensorProto; indices?: TensorProto }[]) {
      tensor(s.values);
      tensor(s.indices);
    }
    for (const node of g.node)
      for (const a of node.attribute) {
        if (a.type === AttributeType.TENSOR) tensor(a.t);
        if (a.type === AttributeType.TENSORS) a.tensors.forEach(tensor);
        if (a.type === AttributeType.GRAPH) graph(a.g);
        if (a.type === AttributeType.GRAPHS) a.graphs.forEach(graph);
      }
  };
  graph(model.graph);
  return { files: [...files], missing: [...missing] };
}
