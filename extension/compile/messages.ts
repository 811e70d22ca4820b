/**
 * Messages between the compile service (extension host) and its worker thread (dist/compile-worker.js), which runs
 * the extension's compiles and its local per-node verify.
 */
import type { CompileResult } from '../../compiler/compile';
import type { CompileCommandOptions } from '../../compiler/cli/compile-command';
import type { Diagnostic } from '../../compiler/diagnostics';
import type { Measurement } from '../../compiler/profiling/types';
import type { PerNodeReport } from '../../compiler/verify/per-node';

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

/**
 * workerData of a CLI compile (`runCompile`, one step of the profile flow): its options as data; the measurement
 * source travels as its measurements (MeasurementSource.all) and is rebuilt in the worker.
 */
export interface CliCompileWorkerData {
  cli: {
    model: string;
    opts: Omit<CompileCommandOptions, 'measurementSource'>;
    measurements?: { device: string; all: Measurement[] };
  };
}

/**
 * workerData of a local per-node verify (`ait verify MODEL --out DIR`: onnxruntime-node against the interpreter):
 * its lines come as 'log' messages, each step as a 'stage', the report as 'verified'. Cancelling terminates the thread.
 */
export interface VerifyWorkerData {
  verify: { model: string; outDir: string };
}

export type WorkerMessage =
  | { type: 'log'; message: string }
  | { type: 'stage'; name: string; detail: string }
  | { type: 'done'; result: CompileResult }
  /** The compile stopped with errors before writing anything (e.g. a model that does not import). */
  | { type: 'failed'; diagnostics: Diagnostic[] }
  | { type: 'cancelled' }
  /** A bug: an exception that is not a CompileError. */
  | { type: 'crashed'; message: string; stack?: string }
  /** A CLI compile ended with this exit code (its output came as 'log' lines). */
  | { type: 'exit'; code: number }
  /** A local verify ended: its report (the same as DIR/verify-per-node.json). */
  | { type: 'verified'; report: PerNodeReport };
