/**
 * Runs one compile in a worker thread and reports stages and log lines as they come. Knows nothing of VS Code:
 * the compile command and the custom editor call it, and the unit tests drive it directly.
 */
import { Worker } from 'node:worker_threads';
import type { CompileResult } from '../../compiler/compile';
import type { CompileCommandOptions } from '../../compiler/cli/compile-command';
import { CompileError, error, type Diagnostic } from '../../compiler/diagnostics';
import { removeStagingDirs } from '../../compiler/output-dir';
import type { CancellationSignal } from '../ports';
import type { CliCompileWorkerData, CompileRequest, CompileWorkerData, WorkerMessage } from './messages';

export type CompileOutcome =
  { kind: 'done'; result: CompileResult } | { kind: 'failed'; diagnostics: Diagnostic[] } | { kind: 'cancelled' };

export interface CompileListeners {
  onStage?: (name: string, detail: string) => void;
  onLog?: (line: string) => void;
}

/** How long a cancelled compile may take to reach its next stage boundary before its thread is stopped. */
const CANCEL_GRACE_MS = 5_000;

export interface CompileRunner {
  compile(request: CompileRequest, listeners: CompileListeners, cancel?: CancellationSignal): Promise<CompileOutcome>;
}

/** `workerScript`: dist/compile-worker.js beside dist/extension.js. */
export class WorkerCompileRunner implements CompileRunner {
  constructor(private readonly workerScript: string) {}

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
    const worker = new Worker(this.workerScript, { workerData: data });
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        if (!settled) {
          settled = true;
          f();
        }
      };
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'log') out(m.message);
        else if (m.type === 'exit') settle(() => resolve(m.code));
        else if (m.type === 'failed') settle(() => reject(new CompileError(m.diagnostics)));
        else if (m.type === 'crashed')
          settle(() => reject(Object.assign(new Error(`the compiler failed: ${m.message}`), { stack: m.stack })));
      });
      worker.on('error', (e) => settle(() => reject(new Error(`the compile worker failed: ${e.message}`))));
      worker.on('exit', (code) => settle(() => reject(new Error(`the compile worker exited (code ${code}) without a result`))));
    });
  }

  compile(request: CompileRequest, listeners: CompileListeners, cancel?: CancellationSignal): Promise<CompileOutcome> {
    const cancelFlag = new SharedArrayBuffer(4);
    const data: CompileWorkerData = { request, cancelFlag };
    const worker = new Worker(this.workerScript, { workerData: data });
    return new Promise<CompileOutcome>((resolve) => {
      let settled = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const settle = (outcome: CompileOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(graceTimer);
        subscription?.dispose();
        resolve(outcome);
      };
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
      worker.on('message', (m: WorkerMessage) => {
        switch (m.type) {
          case 'log':
            listeners.onLog?.(m.message);
            break;
          case 'stage':
            listeners.onStage?.(m.name, m.detail);
            break;
          case 'done':
            settle({ kind: 'done', result: m.result });
            break;
          case 'failed':
            settle({ kind: 'failed', diagnostics: m.diagnostics });
            break;
          case 'cancelled':
            settle({ kind: 'cancelled' });
            break;
          case 'exit':
            break; // CLI compiles only (runCli)
          case 'crashed':
            listeners.onLog?.(m.stack ?? m.message);
            settle({
              kind: 'failed',
              diagnostics: [error('compile.crashed', `the compiler failed: ${m.message}`, { file: request.file })],
            });
            break;
        }
      });
      worker.on('error', (e) =>
        settle({
          kind: 'failed',
          diagnostics: [error('compile.crashed', `the compile worker failed: ${e.message}`, { file: request.file })],
        }),
      );
      worker.on('exit', (code) => {
        if (!settled)
          settle({
            kind: 'failed',
            diagnostics: [error('compile.crashed', `the compile worker exited (code ${code}) without a result`, { file: request.file })],
          });
      });
    });
  }
}
