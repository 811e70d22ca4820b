/** `ait compile MODEL [--out DIR] [--target T] [--dump-after PASS]` */
import { compileModel } from '../compile';
import { formatDiagnostic } from '../diagnostics';
import { formatBytes } from './format';
import { checkDimBounds, modelInputDims } from '../options';
import { checkTarget } from '../targets';
import type { MeasurementSource } from '../backends/cuda/profiling/selection';

export interface CompileCommandOptions {
  out?: string;
  force?: boolean;
  target: string;
  maxBatch?: number;
  dim?: Record<string, [number, number]>;
  dumpAfter?: string[];
  /** Tensors or nodes stored in fp32 (`--fp32 NAME,…`, passes/storage-precision.ts). */
  fp32?: string[];
  batch?: number;
  json?: boolean;
  /** Kernel measurements to choose GEMM/conv instances from (profile-command.ts). */
  measurementSource?: MeasurementSource;
  /** Write the profiler into DIR/profile/ (every signature, or those the measurements lack). */
  profileWrite?: 'all' | 'missing';
  partition?: boolean;
  /** `--module PATH`: compile only these modules, each a build of its own (partition/module.ts). */
  module?: string[];
}

export function runCompile(model: string, opts: CompileCommandOptions, out: (s: string) => void): number {
  checkTarget(opts.target);
  if (opts.dim && Object.keys(opts.dim).length) checkDimBounds(modelInputDims(model), opts.dim, { maxBatch: opts.maxBatch });
  const result = compileModel(model, {
    out: opts.out,
    force: opts.force,
    target: opts.target,
    maxBatch: opts.maxBatch,
    dimBounds: opts.dim,
    dumpAfter: opts.dumpAfter,
    fp32: opts.fp32,
    batch: opts.batch,
    partition: opts.partition,
    modules: opts.module,
    log: opts.json ? undefined : (m) => out(m),
    measurements: opts.measurementSource,
    profileSources: opts.profileWrite,
  });
  if (opts.json) {
    out(JSON.stringify(result, null, 2));
  } else {
    for (const d of result.diagnostics.slice(0, 40)) out(formatDiagnostic(d));
    if (result.diagnostics.length > 40) out(`… ${result.diagnostics.length - 40} more diagnostics`);
    const cost = result.reports.cost as { batch: number; flops: number; kernels: number } | undefined;
    const memory = result.reports.memory as { arenaBytes: number; activationBytes: number } | undefined;
    if (cost && memory)
      out(
        `${cost.kernels} kernels; ${(cost.flops / 1e9).toFixed(2)} GFLOP at batch ${cost.batch}; activation arena ` +
          `${formatBytes(memory.arenaBytes)} (${((100 * memory.arenaBytes) / Math.max(1, memory.activationBytes)).toFixed(1)}% of ${formatBytes(memory.activationBytes)} of activations)`,
      );
    out(`wrote ${result.graphJsonPath}`);
    if (result.codegen) out(result.codegen);
    const p = result.profiling;
    if (p && (opts.measurementSource || opts.profileWrite))
      out(
        `kernel choice: ${p.measured} of ${p.signatures} GEMM/conv signatures measured${opts.measurementSource ? ` (${opts.measurementSource.device})` : ''}` +
          (opts.profileWrite
            ? `; profiler for ${p.profiled} signatures, ${p.candidates} candidates in ${result.outDir}/profile (make profiler)`
            : ''),
      );
  }
  return result.ok ? 0 : 1;
}
