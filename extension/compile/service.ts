/**
 * Runs one compile, or one local per-node verify, in a worker thread and reports stages and log lines as they come.
 * Knows nothing of VS Code: the compile and verify commands and the custom editor call it, and the unit tests drive
 * it directly.
 */
import { Worker } from 'node:worker_threads';
import type { CompileResult } from '../../compiler/compile';
import type { CompileCommandOptions } from '../../compiler/cli/compile-command';
import { CompileError, error, type Diagnostic } from '../../compiler/diagnostics';
import { removeStagingDirs } from '../../compiler/output-dir';
import type { CancellationSignal } from '../ports';
import type { PerNodeReport } from '../../compiler/verify/per-node';
import type { CliCompileWorkerData, CompileRequest, CompileWorkerData, VerifyWorkerData, WorkerMessage } from './messages';

export type CompileOutcome =
  { kind: 'done'; result: CompileResult } | { kind: 'failed'; diagnostics: Diagnostic[] } | { kind: 'cancelled' };

export type VerifyOutcome = { kind: 'done'; report: PerNodeReport } | { kind: 'failed'; diagnostics: Diagnostic[] } | { kind: 'cancelled' };

export interface CompileListeners {
  onStage?: (name: string, detail: string) => void;
  onLog?: (line: string) => void;
}

/** How long a cancelled compile may take to reach its next stage boundary before its thread is stopped. */
const CANCEL_GRACE_MS = 5_000;

export interface CompileRunner {
  compile(request: CompileRequest, listeners: CompileListeners, cancel?: CancellationSignal): Promise<CompileOutcome>;
}

/** One worker thread at work: its promise settles once, with a value or (an Error) a rejection. */
interface WorkerJob<T> {
  worker: Worker;
  result: Promise<T>;
  settle(outcome: T | Error): void;
}

/** `workerScript`: dist/compile-worker.js beside dist/extension.js. */
export class WorkerCompileRunner implements CompileRunner {
  constructor(private readonly workerScript: string) {}

  /**
   * Starts the worker on `data`: `onMessage` gets its messages and settles the job; an error of the thread, or its
   * exit before the job settled, settles it with `lost(why)`. Later messages are ignored.
   */
  protected start<T>(
    data: unknown,
    onMessage: (m: WorkerMessage, job: WorkerJob<T>) => void,
    lost: (why: string) => T | Error,
  ): WorkerJob<T> {
    const worker = new Worker(this.workerScript, { workerData: data });
    let settled = false;
    let resolve!: (v: T) => void;
    let reject!: (e: Error) => void;
    const result = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
    const job: WorkerJob<T> = {
      worker,
      result,
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      },
    };
    worker.on('message', (m: WorkerMessage) => {
      if (!settled) onMessage(m, job);
    });
    worker.on('error', (e) => job.settle(lost(`the compile worker failed: ${e.message}`)));
    worker.on('exit', (code) => job.settle(lost(`the compile worker exited (code ${code}) without a result`)));
    return job;
  }

  /**
   * `runCompile(model, opts, out)` in a worker thread (a CompileStep of the profile flow): the same lines and exit
   * code, a CompileError thrown here as there. The measurement source must hold its measurements as data (`all`).
   */
  runCli(model: string, opts: CompileCommandOptions, out: (line: string) => void): Promise<number> {
    const { measurementSource, ...rest } = opts;
    if (measurementSource && !measurementSource.all) throw new Error('runCli: the measurement source holds no data to send to the worker');
    const data: CliCompileWorkerData = {
      cli: {
        model,
        opts: rest,
        ...(measurementSource ? { measurements: { device: measurementSource.device, all: [...measurementSource.all!] } } : {}),
      },
    };
    return this.start<number>(
      data,
      (m, job) => {
        if (m.type === 'log') out(m.message);
        else if (m.type === 'exit') job.settle(m.code);
        else if (m.type === 'failed') job.settle(new CompileError(m.diagnostics));
        else if (m.type === 'crashed') job.settle(Object.assign(new Error(`the compiler failed: ${m.message}`), { stack: m.stack }));
      },
      (why) => new Error(why),
    ).result;
  }

  compile(request: CompileRequest, listeners: CompileListeners, cancel?: CancellationSignal): Promise<CompileOutcome> {
    const cancelFlag = new SharedArrayBuffer(4);
    const data: CompileWorkerData = { request, cancelFlag };
    const failed = (message: string): CompileOutcome => ({
      kind: 'failed',
      diagnostics: [error('compile.crashed', message, { file: request.file })],
    });
    const { worker, result, settle } = this.start<CompileOutcome>(
      data,
      (m, job) => {
        switch (m.type) {
          case 'log':
            listeners.onLog?.(m.message);
            break;
          case 'stage':
            listeners.onStage?.(m.name, m.detail);
            break;
          case 'done':
            job.settle({ kind: 'done', result: m.result });
            break;
          case 'failed':
            job.settle({ kind: 'failed', diagnostics: m.diagnostics });
            break;
          case 'cancelled':
            job.settle({ kind: 'cancelled' });
            break;
          case 'crashed':
            listeners.onLog?.(m.stack ?? m.message);
            job.settle(failed(`the compiler failed: ${m.message}`));
            break;
          default:
            break; // 'exit': CLI compiles only (runCli); 'verified': verify only
        }
      },
      failed,
    );
    let graceTimer: NodeJS.Timeout | undefined;
    const subscription = cancel?.onCancellationRequested(() => {
      Atomics.store(new Int32Array(cancelFlag), 0, 1);
      // A stage that runs long (a big import) does not look at the flag: stop the thread, then clean up after it.
      graceTimer = setTimeout(() => {
        void worker.terminate().then(() => {
          removeStagingDirs(request.out, process.pid);
          settle({ kind: 'cancelled' });
        });
      }, CANCEL_GRACE_MS);
    });
    if (cancel?.isCancellationRequested) Atomics.store(new Int32Array(cancelFlag), 0, 1);
    void result.finally(() => {
      clearTimeout(graceTimer);
      subscription?.dispose();
    });
    return result;
  }

  /**
   * The local per-node verify (`ait verify MODEL --out DIR`: onnxruntime-node against the interpreter with fp16
   * storage) in a worker thread: its lines and steps as they come, the report as data. It has no stage boundaries
   * to stop at: cancelling terminates the thread at once (the report files are written whole or not at all).
   */
  verify(request: VerifyWorkerData['verify'], listeners: CompileListeners, cancel?: CancellationSignal): Promise<VerifyOutcome> {
    const failed = (message: string): VerifyOutcome => ({
      kind: 'failed',
      diagnostics: [error('verify.crashed', message, { file: request.model })],
    });
    if (cancel?.isCancellationRequested) return Promise.resolve({ kind: 'cancelled' });
    const data: VerifyWorkerData = { verify: request };
    const { worker, result, settle } = this.start<VerifyOutcome>(
      data,
      (m, job) => {
        if (m.type === 'log') listeners.onLog?.(m.message);
        else if (m.type === 'stage') listeners.onStage?.(m.name, m.detail);
        else if (m.type === 'verified') job.settle({ kind: 'done', report: m.report });
        else if (m.type === 'failed') job.settle({ kind: 'failed', diagnostics: m.diagnostics });
        else if (m.type === 'crashed') {
          listeners.onLog?.(m.stack ?? m.message);
          job.settle(failed(`the local verify of ${request.model} failed: ${m.message}`));
        }
      },
      failed,
    );
    const subscription = cancel?.onCancellationRequested(() => {
      settle({ kind: 'cancelled' });
      void worker.terminate();
    });
    void result.finally(() => subscription?.dispose());
    return result;
  }
}
