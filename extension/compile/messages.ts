/** Messages between the compile service (extension host) and its worker thread (dist/compile-worker.js). */
import type { CompileResult } from '../../compiler/compile';
import type { Diagnostic } from '../../compiler/diagnostics';

export interface CompileRequest {
  file: string;
  out: string;
  /** Replace an earlier build of ours at `out` (the extension's own build paths). */
  force?: boolean;
  target: string;
  batch?: number;
  dimBounds?: Record<string, [number, number]>;
}

/** workerData of the worker: the request and a one-int32 shared flag that the service sets to 1 to cancel. */
export interface CompileWorkerData {
  request: CompileRequest;
  cancelFlag: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'log'; message: string }
  | { type: 'stage'; name: string; detail: string }
  | { type: 'done'; result: CompileResult }
  /** The compile stopped with errors before writing anything (e.g. a model that does not import). */
  | { type: 'failed'; diagnostics: Diagnostic[] }
  | { type: 'cancelled' }
  /** A bug: an exception that is not a CompileError. */
  | { type: 'crashed'; message: string; stack?: string };
