/**
 * `AIT: Profile Kernels on Remote`: `ait compile MODEL --profile HOST` from the editor. The flow is the CLI's
 * (runProfiledCompile: compile with the profiler sources, the host's device key, profile there what the profile cache
 * lacks, store, compile again choosing every GEMM/conv instance from the measurements); this picks the model and the
 * host, shows the flow's lines as progress, cancels between steps, reports failures naming the host and opens the
 * graph of the output, whose details panel shows the measured candidates.
 */
import { modelNameOf } from '../../compiler/compile';
import type { Diagnostic } from '../../compiler/diagnostics';
import type { CompileCommandOptions } from '../../compiler/cli/compile-command';
import type { ProfileFlags, ProfiledCompileControl } from '../../compiler/cli/profile-command';
import { modelInputDims } from '../../compiler/options';
import { problemsOf } from '../problems';
import { readSettings } from '../settings';
import { BATCH_DIM_NAMES, formatBatchRange, outputDirFor, pickModel, rememberedChoice } from './compile-model';
import type { CommandContext } from './context';
import { pickRemote, sessionOptionsFor } from './remote';
import { requireTrust } from './trust';

/** runProfiledCompile's shape (compiler/cli/profile-command.ts); the unit tests give a scripted one. Returns the exit code. */
export type ProfileFlow = (
  model: string,
  opts: CompileCommandOptions & ProfileFlags,
  outDir: string,
  out: (line: string) => void,
  err: (line: string) => void,
  control: ProfiledCompileControl,
) => Promise<number>;

export interface ProfileCommandResult {
  host: string;
  outDir: string;
  /** 'done': the output holds the measured build; 'cancelled'; 'failed'. */
  status: 'done' | 'cancelled' | 'failed';
}

/** Diagnostic lines the flow prints: `error [code] where: message`. */
const DIAGNOSTIC_LINE = /^(error|warning) \[([\w.-]+)\][^:]*: (.*)$/;

export async function profileKernelsCommand(
  ctx: CommandContext,
  modelArg?: string,
  hostArg?: string,
): Promise<ProfileCommandResult | undefined> {
  if (!requireTrust(ctx, 'ait.profileKernels')) return undefined;
  const modelFile = await pickModel(ctx, modelArg);
  if (!modelFile) return undefined;
  const remote = await pickRemote(ctx, hostArg);
  if (!remote) return undefined;
  const { settings } = readSettings(ctx.settings);
  // The model's last Compile Model choice, else the default target at batch 1.
  const choice = rememberedChoice(ctx, modelFile) ?? { target: settings.defaultTarget, batchRange: [1, 1] as [number, number] };
  const [lo, hi] = choice.batchRange;
  const dims = modelInputDims(modelFile);
  const outDir = outputDirFor(ctx, modelFile);
  const model = modelNameOf(modelFile);
  const opts: CompileCommandOptions & ProfileFlags = {
    out: outDir,
    force: true, // the extension's own build path, as Compile Model
    target: choice.target,
    batch: hi,
    dim: Object.fromEntries(BATCH_DIM_NAMES.filter((n) => dims.includes(n)).map((n) => [n, [lo, hi] as [number, number]])),
    profile: remote.host,
    node: remote.node,
    uploadNode: remote.uploadNode,
    workDir: remote.workDir,
    sshConfig: settings.sshConfig || undefined,
  };
  ctx.log.info(
    `profile kernels of ${modelFile} on ${remote.name} (${remote.host}) for ${choice.target}, batch ${formatBatchRange(choice.batchRange)} → ${outDir}`,
  );
  const diagnostics: Diagnostic[] = [];
  const note = (line: string) => {
    const m = DIAGNOSTIC_LINE.exec(line);
    if (m)
      diagnostics.push({
        code: m[2],
        severity: m[1] as 'error' | 'warning',
        message: m[3],
        location: { file: modelFile, host: remote.name },
      });
  };
  const job = ctx.status.begin(`profiling ${model} on ${remote.name}`);
  let status: ProfileCommandResult['status'];
  let failure: string | undefined;
  try {
    status = await ctx.progress.run(`AIT: profile kernels of ${model} on ${remote.name}`, async (progress, cancel) => {
      const out = (line: string) => {
        ctx.log.trace(line);
        note(line);
      };
      const err = (line: string) => {
        ctx.log.trace(line);
        note(line);
        const first = line.split('\n')[0].trim();
        if (first) progress.report(first);
      };
      try {
        const code = await ctx.profiler(modelFile, opts, outDir, out, err, { cancel, sessionOptions: sessionOptionsFor(ctx, remote) });
        return cancel.isCancellationRequested ? 'cancelled' : code === 0 ? 'done' : 'failed';
      } catch (e) {
        // Not a diagnostic (the flow prints those): a connection or agent failure, said with the host's name.
        failure = (e as Error)?.message ?? String(e);
        ctx.log.error(`profile on ${remote.name}: ${(e as Error)?.stack ?? failure}`);
        return cancel.isCancellationRequested ? 'cancelled' : 'failed';
      }
    });
  } finally {
    job.dispose();
  }
  if (status === 'failed' && failure)
    diagnostics.push({
      code: 'profile.failed',
      severity: 'error',
      message: failure,
      location: { file: modelFile, host: remote.name },
    });
  ctx.problems.replace(`profile:${modelFile}`, problemsOf(diagnostics, modelFile));
  if (status === 'cancelled') {
    ctx.ui.info(`Profiling of ${model} on ${remote.name} cancelled.`);
    return { host: remote.name, outDir, status };
  }
  if (status === 'failed') {
    const first = diagnostics.find((d) => d.severity === 'error')?.message ?? 'no diagnostic (see the log)';
    ctx.ui.error(`Profiling ${model} on ${remote.name} failed: ${first} (see Problems and the AIT Studio log).`);
    return { host: remote.name, outDir, status };
  }
  await ctx.runs.add({
    kind: 'compile',
    model,
    modelFile,
    target: choice.target,
    createdAt: new Date().toISOString(),
    outDir,
    ok: true,
    errorCount: 0,
  });
  await ctx.showGraph(outDir);
  ctx.ui.info(`${model}: kernels chosen from measurements on ${remote.name}; select a GEMM/conv node to see its candidates.`);
  return { host: remote.name, outDir, status };
}
