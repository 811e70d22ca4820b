/** `ait compile MODEL [--out DIR] [--target T] [--dump-after PASS]` */
import { compileModel } from '../compile';
import { formatDiagnostic } from '../diagnostics';

export interface CompileCommandOptions {
  out?: string;
  target: string;
  maxBatch?: number;
  dim?: Record<string, [number, number]>;
  dumpAfter?: string[];
  json?: boolean;
}

export function runCompile(model: string, opts: CompileCommandOptions, out: (s: string) => void): number {
  const result = compileModel(model, {
    out: opts.out,
    target: opts.target,
    maxBatch: opts.maxBatch,
    dimBounds: opts.dim,
    dumpAfter: opts.dumpAfter,
    log: opts.json ? undefined : (m) => out(m),
  });
  if (opts.json) {
    out(JSON.stringify(result, null, 2));
  } else {
    for (const d of result.diagnostics.slice(0, 40)) out(formatDiagnostic(d));
    if (result.diagnostics.length > 40) out(`… ${result.diagnostics.length - 40} more diagnostics`);
    out(`wrote ${result.graphJsonPath}`);
    if (result.codegen) out(result.codegen);
  }
  return result.ok ? 0 : 1;
}
