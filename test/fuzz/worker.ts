/**
 * Fuzz worker: runs one case at a time through `inspectModel` and `compileModel` (target cuda:sm90) in its own
 * temporary directory, and reports how each ended. Runs inside a worker_threads Worker (see pool.ts) so that the
 * parent can bound its heap (resourceLimits) and kill it on a hang.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { CompileError, Diagnostic } from '../../compiler/diagnostics';
import { compileModel } from '../../compiler/compile';
import { inspectModel } from '../../compiler/inspect';
import { externalDataEscapes } from './mutate';

export interface CaseRequest {
  id: number;
  bytes: Uint8Array;
  files: Record<string, Uint8Array>;
}

/** How one stage (inspect or compile) ended. */
export interface StageOutcome {
  /** ok: returned; diagnostic: a CompileError whose diagnostics all have codes; crash: anything else. */
  result: 'ok' | 'diagnostic' | 'crash';
  /** Error codes of the diagnostics (returned or thrown). */
  codes: string[];
  /** For a crash: the error's name, message and the top of its stack. */
  error?: { name: string; message: string; stack: string };
  /** Internal errors that shape inference turned into `shape.internal` diagnostics (reported, not failures). */
  internal: string[];
}

export interface CaseResponse {
  id: number;
  /** Set when the case was not run (external data pointing outside the case directory). */
  skipped?: string;
  inspect?: StageOutcome;
  compile?: StageOutcome;
}

function uncoded(diagnostics: Diagnostic[]): boolean {
  return diagnostics.some((d) => typeof d.code !== 'string' || d.code === '');
}

function outcome(run: () => Diagnostic[]): StageOutcome {
  try {
    const diagnostics = run();
    const internal = diagnostics.filter((d) => d.code === 'shape.internal').map((d) => d.message);
    if (uncoded(diagnostics))
      return { result: 'crash', codes: [], internal, error: { name: 'UncodedDiagnostic', message: 'a diagnostic has no code', stack: '' } };
    return { result: 'ok', codes: diagnostics.filter((d) => d.severity === 'error').map((d) => d.code), internal };
  } catch (e) {
    if (e instanceof CompileError && e.diagnostics.length > 0 && !uncoded(e.diagnostics))
      return { result: 'diagnostic', codes: e.diagnostics.map((d) => d.code), internal: [] };
    const err = e instanceof Error ? e : new Error(String(e));
    const stack = (err.stack ?? '').split('\n').slice(1, 8).join('\n');
    return { result: 'crash', codes: [], internal: [], error: { name: err.name || 'Error', message: err.message, stack } };
  }
}

export function runCase(req: Omit<CaseRequest, 'id'>): Omit<CaseResponse, 'id'> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-fuzz-'));
  try {
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, req.bytes);
    for (const [name, contents] of Object.entries(req.files)) fs.writeFileSync(path.join(dir, name), contents);
    if (externalDataEscapes(req.bytes, dir)) return { skipped: 'external data outside the case directory' };
    const inspect = outcome(() => inspectModel(file).summary.diagnostics);
    const compile = outcome(() => compileModel(file, { out: path.join(dir, 'out'), target: 'cuda:sm90' }).diagnostics);
    return { inspect, compile };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (req: CaseRequest) => {
    port.postMessage({ id: req.id, ...runCase(req) } satisfies CaseResponse);
  });
  port.postMessage({ ready: true });
}
