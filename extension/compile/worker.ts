/**
 * The compile worker thread (bundled as dist/compile-worker.js). compileModel is synchronous; running it here keeps
 * the extension host responsive. The local per-node verify (`ait verify`, AIT: Verify Against Reference on this
 * machine) runs here too: the interpreter over a whole model is seconds to minutes of synchronous work. Cancellation is a shared int32 flag read through an AbortSignal-shaped object:
 * the compiler checks `signal.aborted` between stages and passes, and its staging directory is removed when it
 * stops, so a cancelled compile leaves no output directory behind.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileModel } from '../../compiler/compile';
import { CompileError } from '../../compiler/diagnostics';
import { memorySource } from '../../compiler/backends/cuda/profiling/selection';
import { runCompile } from '../../compiler/cli/compile-command';
import { runVerifyReport } from '../../compiler/cli/verify-command';
import type { CliCompileWorkerData, CompileWorkerData, VerifyWorkerData, WorkerMessage } from './messages';

/** A CLI compile (one step of the profile flow): its lines as 'log' messages, then its exit code. */
function runCli({ model, opts, measurements }: CliCompileWorkerData['cli']): void {
  const post = (m: WorkerMessage) => parentPort!.postMessage(m);
  try {
    const code = runCompile(
      model,
      { ...opts, ...(measurements ? { measurementSource: memorySource(measurements.device, measurements.all) } : {}) },
      (line) => post({ type: 'log', message: line }),
    );
    post({ type: 'exit', code });
  } catch (e) {
    if (e instanceof CompileError) post({ type: 'failed', diagnostics: e.diagnostics });
    else post({ type: 'crashed', message: String((e as Error)?.message ?? e), stack: (e as Error)?.stack });
  }
}

/**
 * A local verify into `outDir`: its lines as 'log' messages, its steps (weights, reference, candidate) as 'stage's,
 * then the report. Errors name the model file (the interpreter's name the node too). No cancellation flag: the
 * service terminates this thread, and the report files are written whole or not at all (verify-command.ts).
 */
async function runVerifyJob({ model, outDir }: VerifyWorkerData['verify']): Promise<void> {
  const post = (m: WorkerMessage) => parentPort!.postMessage(m);
  try {
    post({ type: 'stage', name: 'import', detail: 'importing and optimizing the model' });
    const { report } = await runVerifyReport(model, { out: outDir }, (line) => {
      post({ type: 'log', message: line });
      const m = /^(weights|reference|candidate): (.*)$/.exec(line);
      if (m) post({ type: 'stage', name: m[1], detail: m[2] });
    });
    post({ type: 'verified', report });
  } catch (e) {
    if (e instanceof CompileError)
      post({
        type: 'failed',
        diagnostics: e.diagnostics.map((d) => (d.location?.file ? d : { ...d, location: { ...d.location, file: model } })),
      });
    else post({ type: 'crashed', message: String((e as Error)?.message ?? e), stack: (e as Error)?.stack });
  }
}

function run(): void {
  if ((workerData as Partial<VerifyWorkerData>).verify) return void runVerifyJob((workerData as VerifyWorkerData).verify);
  if ((workerData as Partial<CliCompileWorkerData>).cli) return runCli((workerData as CliCompileWorkerData).cli);
  const { request, cancelFlag } = workerData as CompileWorkerData;
  const flag = new Int32Array(cancelFlag);
  const post = (m: WorkerMessage) => parentPort!.postMessage(m);
  const signal = {
    get aborted() {
      return Atomics.load(flag, 0) === 1;
    },
  } as AbortSignal;
  try {
    const result = compileModel(request.file, {
      out: request.out,
      force: request.force,
      target: request.target,
      batch: request.batch,
      dimBounds: request.dimBounds,
      signal,
      log: (line) => {
        post({ type: 'log', message: line });
        // Stage lines are "name  12 ms  detail".
        const m = /^(\S+)\s+\d+ ms\s+(.*)$/.exec(line);
        if (m) post({ type: 'stage', name: m[1], detail: m[2] });
      },
    });
    post({ type: 'done', result });
  } catch (e) {
    if (e instanceof CompileError) {
      if (e.diagnostics.some((d) => d.code === 'compile.cancelled')) post({ type: 'cancelled' });
      else post({ type: 'failed', diagnostics: e.diagnostics });
    } else {
      const err = e as Error;
      post({ type: 'crashed', message: String(err?.message ?? e), stack: err?.stack });
    }
  }
}

run();
