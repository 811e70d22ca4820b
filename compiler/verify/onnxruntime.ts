/**
 * onnxruntime-node for the local per-node check, resolved at run time: the CLI bundle (dist/cli.js) carries no
 * node_modules, so the package is looked up from the working directory, the model's directory, the bundle's
 * directory and this source tree (in that order). It is never bundled.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { CompileError, error } from '../diagnostics';

export interface OrtTensor {
  type: string;
  dims: readonly number[];
  data: ArrayLike<number | bigint>;
}
export interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
export interface OrtModule {
  Tensor: new (
    type: 'float32' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool',
    data: Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array,
    dims: number[],
  ) => unknown;
  InferenceSession: {
    create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession>;
  };
}

/** The package and its version, or a CompileError saying where it was looked for. */
export function loadOnnxruntime(extraDirs: string[] = []): { ort: OrtModule; version: string | null } {
  const dirs = [...extraDirs, process.cwd(), __dirname, path.resolve(__dirname, '..', '..')];
  for (const dir of dirs) {
    let resolved: string;
    try {
      resolved = createRequire(path.join(dir, 'noop.js')).resolve('onnxruntime-node/package.json');
    } catch {
      continue;
    }
    const version = (JSON.parse(fs.readFileSync(resolved, 'utf8')) as { version?: string }).version ?? null;
    const ort = createRequire(resolved)(path.dirname(resolved)) as OrtModule;
    return { ort, version };
  }
  throw new CompileError(
    error(
      'verify.no-onnxruntime',
      `onnxruntime-node is not installed where ait looks for it (${[...new Set(dirs)].join(', ')}): ` +
        '`npm install onnxruntime-node` in the working directory makes it available',
    ),
  );
}
