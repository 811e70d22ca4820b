/**
 * `AIT: Verify Against Reference`: the per-node numerical check of a model. On this machine (`ait verify`: the
 * interpreter with fp16 storage against onnxruntime-node, in the compile worker thread, off the extension host's
 * event loop; cancelling stops that thread), or on a remote host (`ait remote verify --per-node`: the
 * compiled library's debug run against the host's reference) when one is chosen. The report goes to the log (every
 * node above the threshold, the first error jump and fp16 overflow, the per-module table), the first problems to
 * Problems naming the node, and the graph opens with profile-verify.json: the error heatmap. On a remote host the
 * module table has our time per module (the library's per-op profile) and, with `ait.verifyTorchModel`, PyTorch
 * eager's beside it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runRemoteBuild, type VerifyFileReport } from '../../compiler/cli/remote-command';
import { formatReport, PER_NODE_REPORT_FILE, runVerifyReport } from '../../compiler/cli/verify-command';
import { CompileError, type Diagnostic, formatDiagnostic } from '../../compiler/diagnostics';
import { fmt, type PerNodeReport, perNodeDiagnostics } from '../../compiler/verify/per-node';
import type { WorkerCompileRunner } from '../compile/service';
import type { CancellationSignal } from '../ports';
import { problemsOf } from '../problems';
import { readSettings, type RemoteHostSetting } from '../settings';
import type { CommandContext } from './context';
import { pickRemote } from './remote';
import { requireTrust } from './trust';

/** Runs the checks (the real one calls the CLI's functions; tests give a scripted one). */
export interface VerifyRunner {
  /**
   * `ait verify MODEL --out DIR`: writes DIR/verify-per-node.json, DIR/profile-verify.json (and graph.json when
   * absent); `step` gets each step as it starts or ends. null: cancelled. A bad model throws a CompileError.
   */
  local(
    model: string,
    outDir: string,
    log: (line: string) => void,
    step: (message: string) => void,
    cancel: CancellationSignal,
  ): Promise<PerNodeReport | null>;
  /** `ait remote verify HOST DIR --model MODEL --per-node`: DIR is a compile output; null report when none came back. */
  remote(
    remote: RemoteHostSetting,
    dir: string,
    model: string,
    log: (line: string) => void,
    /** `--torch-model FILE.py:FUNCTION` (FILE absolute): PyTorch eager's time per module beside ours. */
    options?: { torchModel?: string },
  ): Promise<{ report: PerNodeReport | null; diagnostics: Diagnostic[] }>;
}

export interface VerifyCommandResult {
  where: string;
  outDir: string;
  report: PerNodeReport | null;
}

const THIS_MACHINE = 'This machine';

/**
 * The runner of the CLI's own functions: `ait verify` (in `worker`'s thread when given: the extension's; else on
 * this thread, as the CLI does) and `ait remote verify --per-node`.
 */
export function cliVerifyRunner(sshConfig?: () => string | undefined, worker?: WorkerCompileRunner): VerifyRunner {
  return {
    async local(model, outDir, log, step, cancel) {
      if (!worker) {
        const { report } = await runVerifyReport(model, { out: outDir }, log);
        return report;
      }
      const outcome = await worker.verify(
        { model, outDir },
        { onLog: log, onStage: (name, detail) => step(name === 'import' ? detail : `${name}: ${detail}`) },
        cancel,
      );
      if (outcome.kind === 'failed') throw new CompileError(outcome.diagnostics);
      return outcome.kind === 'done' ? outcome.report : null;
    },
    async remote(remote, dir, model, log, options) {
      const reportFile = path.join(dir, 'verify.json');
      fs.rmSync(reportFile, { force: true });
      fs.rmSync(path.join(dir, PER_NODE_REPORT_FILE), { force: true });
      await runRemoteBuild(
        remote.host,
        dir,
        {
          build: true,
          verifyModel: model,
          verifyBatch: [1],
          perNode: true,
          ...(options?.torchModel ? { torchModel: options.torchModel } : {}),
          node: remote.node,
          uploadNode: remote.uploadNode,
          workDir: remote.workDir,
          sshConfig: sshConfig?.(),
        },
        log,
        log,
      );
      const file = fs.existsSync(reportFile) ? (JSON.parse(fs.readFileSync(reportFile, 'utf8')) as VerifyFileReport) : null;
      const perNodeFile = path.join(dir, PER_NODE_REPORT_FILE);
      const report = fs.existsSync(perNodeFile) ? (JSON.parse(fs.readFileSync(perNodeFile, 'utf8')) as PerNodeReport) : null;
      const diagnostics: Diagnostic[] = file?.diagnostics ?? [
        {
          code: 'verify.no-report',
          severity: 'error',
          message: `no verify report came back from ${remote.name}`,
          location: { file: model, host: remote.name },
        },
      ];
      return { report, diagnostics };
    },
  };
}

export async function verifyModelCommand(
  ctx: CommandContext,
  modelArg?: string,
  hostArg?: string,
): Promise<VerifyCommandResult | undefined> {
  if (!requireTrust(ctx, 'ait.verifyModel')) return undefined;
  const model = modelArg ?? ctx.activeModel() ?? (await pickModel(ctx));
  if (!model) return undefined;
  const remote = await chooseWhere(ctx, hostArg);
  if (remote === undefined) return undefined;
  const lastCompile = ctx.runs.list().find((r) => r.kind === 'compile' && r.modelFile === model && fs.existsSync(r.outDir));
  let outDir: string;
  if (remote) {
    if (!lastCompile || !fs.existsSync(path.join(lastCompile.outDir, 'Makefile'))) {
      ctx.ui.error(`Compile ${path.basename(model)} first: verifying on ${remote.name} builds and runs its compile output.`);
      return undefined;
    }
    outDir = lastCompile.outDir;
  } else {
    // Beside the model's last compile (same node ids), else a directory of its own next to the model.
    outDir = lastCompile?.outDir ?? path.join(path.dirname(model), 'ait-verify', path.basename(model).replace(/\.onnx$/i, ''));
  }
  const where = remote ? remote.name : THIS_MACHINE.toLowerCase();
  const job = ctx.status.begin(`verifying ${path.basename(model)} on ${where}`);
  const log = (line: string) => ctx.log.trace(line);
  try {
    const outcome = await ctx.progress.run(
      `AIT: verify ${path.basename(model)} against the reference (${where})`,
      async (progress, cancel) => {
        try {
          if (!remote) {
            const report = await ctx.verifier.local(model, outDir, log, (m) => progress.report(m), cancel);
            return report ? { report, diagnostics: perNodeDiagnostics(report, model) } : null;
          }
          const torchModel = readSettings(ctx.settings).settings.verifyTorchModel;
          // FILE relative to the model's workspace folder (else its directory)
          const base = ctx.workspaceFolderOf(model) ?? path.dirname(model);
          return await ctx.verifier.remote(remote, outDir, model, log, torchModel ? { torchModel: path.resolve(base, torchModel) } : {});
        } catch (e) {
          if (!(e instanceof CompileError)) throw e;
          return { report: null, diagnostics: e.diagnostics };
        }
      },
    );
    if (!outcome) {
      ctx.ui.info(`Verify of ${path.basename(model)} cancelled.`);
      return { where, outDir, report: null };
    }
    const { report, diagnostics } = outcome;
    for (const d of diagnostics) ctx.log.error(formatDiagnostic(d));
    ctx.problems.replace(`verify:${model}`, problemsOf(diagnostics, model));
    if (!report) {
      ctx.ui.error(
        `Verify of ${path.basename(model)} on ${where} failed: ${diagnostics[0]?.message ?? 'no report'} (see the AIT Studio log).`,
      );
      return { where, outDir, report: null };
    }
    ctx.log.info(`verify ${model} on ${where}:\n${formatReport(report)}`);
    await ctx.showGraph(outDir);
    const problem = report.firstOverflow ?? report.firstJump;
    const compared = report.nodes.filter((n) => n.relativeL2 !== undefined).length;
    if (problem)
      ctx.ui.error(
        `${path.basename(model)} (${where}): ${problem.kind === 'fp16-overflow' ? 'first fp16 overflow' : 'first error jump'} at ${problem.id} '${problem.name}': ${problem.message}.`,
      );
    else {
      const worst = Math.max(0, ...report.nodes.map((n) => n.relativeL2 ?? 0));
      ctx.ui.info(
        `${path.basename(model)} (${where}): ${compared} nodes within tolerance (largest relative L2 ${fmt(worst)})${timesNote(report)}.`,
      );
    }
    return { where, outDir, report };
  } finally {
    job.dispose();
  }
}

/** '; ops X ms (ours) vs PyTorch eager Y ms' when the report has times (the module table in the log has the rest). */
function timesNote(report: PerNodeReport): string {
  const ours = report.times?.ours;
  const torch = report.times?.reference?.totalMs;
  if (!ours) return '';
  return `; ops ${ours.opsMs.toPrecision(3)} ms${torch !== undefined ? ` vs PyTorch eager ${torch.toPrecision(3)} ms` : ''} (per module in the log)`;
}

async function pickModel(ctx: CommandContext): Promise<string | undefined> {
  const models = await ctx.findModels();
  if (models.length === 0) {
    ctx.ui.error('No .onnx model in the workspace to verify.');
    return undefined;
  }
  return (
    await ctx.ui.pick(
      models.map((m) => ({ label: path.basename(m), description: m, model: m })),
      { title: 'Model to verify' },
    )
  )?.model;
}

/** null: this machine; a host; undefined: cancelled. Asks only when remote hosts are configured. */
async function chooseWhere(ctx: CommandContext, hostArg?: string): Promise<RemoteHostSetting | null | undefined> {
  if (hostArg) return (await pickRemote(ctx, hostArg)) ?? undefined;
  const raw = ctx.settings.get('remotes');
  if (!Array.isArray(raw) || raw.length === 0) return null;
  const picked = await ctx.ui.pick(
    [
      { label: THIS_MACHINE, description: 'interpreter with fp16 storage against onnxruntime-node', host: null },
      { label: 'On a remote host…', description: "the compiled library's debug run against the host's reference", host: 'remote' },
    ],
    { title: 'Verify where' },
  );
  if (!picked) return undefined;
  if (picked.host === null) return null;
  return (await pickRemote(ctx)) ?? undefined;
}
