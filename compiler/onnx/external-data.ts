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
    const problem = plainRelativePathProblem(location, "the model's directory");
    if (problem) this.refuse(tensor, location, problem);
  }

  private open(tensor: string, location: string): OpenFile | null {
    const full = path.join(this.realBase ?? this.baseDir, location);
    const cached = this.files.get(full);
    if (cached !== undefined) return cached;
    let entry: OpenFile | null = null;
    let real: string | undefined;
    try {
      real = fs.realpathSync(full);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.refuse(tensor, location, `cannot be read: ${(e as Error).message}`);
    }
    if (real === undefined || this.realBase === undefined) {
      this.missing.push(location);
    } else {
      if (real === this.realBase || !isWithin(this.realBase, real))
        this.refuse(tensor, location, `resolves to ${real}, outside the model's directory (through a symbolic link)`);
      const stat = fs.statSync(real);
      if (!stat.isFile()) this.refuse(tensor, location, `is not a regular file`);
      try {
        entry = { fd: fs.openSync(real, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0)), size: stat.size };
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
