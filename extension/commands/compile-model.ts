/**
 * `AIT: Compile Model`: asks the target and the batch range (quick picks, remembered per model), compiles in a
 * worker thread under a cancellable progress notification, puts the diagnostics in the Problems panel, opens the
 * graph and records the run.
 */
import * as path from 'node:path';
import { modelNameOf } from '../../compiler/compile';
import { formatDiagnostic } from '../../compiler/diagnostics';
import type { CompileOutcome } from '../compile/service';
import { problemsOf } from '../problems';
import { readSettings } from '../settings';
import { TARGETS } from '../targets';
import type { CommandContext } from './context';
import { requireTrust } from './trust';

/** What the user chose for a model, remembered in the workspace state. */
export interface CompileChoice {
  target: string;
  batchRange: [number, number];
}

const CHOICES_KEY = 'ait.compileChoices';
/** Names under which exporters call the batch dim (torch.onnx: batch / batch_size; others: N). */
export const BATCH_DIM_NAMES = ['batch', 'batch_size', 'N'];

const BATCH_RANGES: [number, number][] = [
  [1, 1],
  [1, 8],
  [1, 64],
  [1, 256],
];

export function formatBatchRange([lo, hi]: [number, number]): string {
  return lo === hi ? `${lo}` : `${lo}..${hi}`;
}

/** "8", "1..64" or "1-64" → [lo, hi]; undefined when it is not a range of positive integers. */
export function parseBatchRange(text: string): [number, number] | undefined {
  const m = /^\s*(\d+)\s*(?:(?:\.\.|-)\s*(\d+)\s*)?$/.exec(text);
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return lo >= 1 && hi >= lo && hi <= 65536 ? [lo, hi] : undefined;
}

export function rememberedChoice(ctx: CommandContext, modelFile: string): CompileChoice | undefined {
  return ctx.workspaceState.get<Record<string, CompileChoice>>(CHOICES_KEY)?.[modelFile];
}

async function askChoice(ctx: CommandContext, modelFile: string): Promise<CompileChoice | undefined> {
  const remembered = rememberedChoice(ctx, modelFile);
  const defaultTarget = remembered?.target ?? readSettings(ctx.settings).settings.defaultTarget;
  const name = path.basename(modelFile);
  const targets = [...TARGETS]
    .sort((a, b) => Number(b.id === defaultTarget) - Number(a.id === defaultTarget))
    .map((t) => ({ label: t.id, description: t.id === defaultTarget ? `${t.detail} · last used` : t.detail, id: t.id }));
  const target = await ctx.ui.pick(targets, { title: `Compile ${name}: target`, placeholder: 'GPU architecture to compile for' });
  if (!target) return undefined;

  const rememberedRange = remembered?.batchRange ?? [1, 1];
  const ranges = [rememberedRange, ...BATCH_RANGES.filter((r) => formatBatchRange(r) !== formatBatchRange(rememberedRange))].map((r) => ({
    label: formatBatchRange(r),
    description: r === rememberedRange && remembered ? 'last used' : r[0] === r[1] ? 'fixed batch' : 'dynamic batch',
    range: r as [number, number] | undefined,
  }));
  const rangePick = await ctx.ui.pick([...ranges, { label: 'Other…', description: 'type a range like 2..32', range: undefined }], {
    title: `Compile ${name}: batch range`,
    placeholder: 'batch sizes the compiled model accepts',
  });
  if (!rangePick) return undefined;
  let batchRange = rangePick.range;
  if (!batchRange) {
    const text = await ctx.ui.input({
      title: `Compile ${name}: batch range`,
      prompt: 'min..max (or one batch size)',
      value: formatBatchRange(rememberedRange),
      validate: (v) => (parseBatchRange(v) ? undefined : 'expected a batch size like 8 or a range like 1..64'),
    });
    batchRange = text === undefined ? undefined : parseBatchRange(text);
    if (!batchRange) return undefined;
  }
  const choice = { target: target.id, batchRange };
  const all = ctx.workspaceState.get<Record<string, CompileChoice>>(CHOICES_KEY) ?? {};
  await ctx.workspaceState.update(CHOICES_KEY, { ...all, [modelFile]: choice });
  return choice;
}

export async function pickModel(ctx: CommandContext, given?: string): Promise<string | undefined> {
  if (given) return given;
  const active = ctx.activeModel();
  if (active) return active;
  const models = await ctx.findModels();
  if (models.length === 0) {
    ctx.ui.error('No .onnx model in the workspace: open a folder holding one, or run this command on an .onnx file in the explorer.');
    return undefined;
  }
  if (models.length === 1) return models[0];
  const item = await ctx.ui.pick(
    models.map((m) => ({ label: path.basename(m), description: path.dirname(m), file: m })),
    { title: 'Model to compile' },
  );
  return item?.file;
}

export function outputDirFor(ctx: CommandContext, modelFile: string): string {
  const root = ctx.workspaceFolderOf(modelFile) ?? path.dirname(modelFile);
  return path.join(root, readSettings(ctx.settings).settings.outputDirectory, modelNameOf(modelFile));
}

export interface CompileCommandResult {
  outcome: CompileOutcome;
  outDir: string;
}

export async function compileModelCommand(ctx: CommandContext, modelArg?: string): Promise<CompileCommandResult | undefined> {
  if (!requireTrust(ctx, 'ait.compileModel')) return undefined;
  const modelFile = await pickModel(ctx, modelArg);
  if (!modelFile) return undefined;
  const choice = await askChoice(ctx, modelFile);
  if (!choice) return undefined;
  const outDir = outputDirFor(ctx, modelFile);
  const model = modelNameOf(modelFile);
  const [lo, hi] = choice.batchRange;
  ctx.log.info(`compile ${modelFile} for ${choice.target}, batch ${formatBatchRange(choice.batchRange)} → ${outDir}`);
  const job = ctx.status.begin(`compiling ${model}`);
  let outcome: CompileOutcome;
  try {
    outcome = await ctx.progress.run(`AIT: compiling ${model} for ${choice.target}`, (progress, cancel) =>
      ctx.compiler.compile(
        {
          file: modelFile,
          out: outDir,
          force: true, // the extension's own build path: an earlier build of ours there is replaced
          target: choice.target,
          batch: hi,
          dimBounds: Object.fromEntries(BATCH_DIM_NAMES.map((n) => [n, [lo, hi] as [number, number]])),
        },
        { onStage: (name, detail) => progress.report(`${name}: ${detail}`), onLog: (line) => ctx.log.trace(line) },
        cancel,
      ),
    );
  } finally {
    job.dispose();
  }
  return { outcome: await reportOutcome(ctx, modelFile, model, choice.target, outDir, outcome), outDir };
}

async function reportOutcome(
  ctx: CommandContext,
  modelFile: string,
  model: string,
  target: string,
  outDir: string,
  outcome: CompileOutcome,
): Promise<CompileOutcome> {
  if (outcome.kind === 'cancelled') {
    ctx.log.info(`compile of ${model} cancelled; nothing was written to ${outDir}`);
    ctx.ui.info(`Compile of ${model} cancelled.`);
    return outcome;
  }
  const diagnostics = outcome.kind === 'done' ? outcome.result.diagnostics : outcome.diagnostics;
  ctx.problems.replace(`compile:${modelFile}`, problemsOf(diagnostics, modelFile));
  for (const d of diagnostics) (d.severity === 'error' ? ctx.log.error : ctx.log.warn).call(ctx.log, formatDiagnostic(d));
  const errorCount = diagnostics.filter((d) => d.severity === 'error').length;
  if (outcome.kind === 'failed') {
    ctx.ui.error(`Compile of ${model} failed: ${errorCount} error${errorCount === 1 ? '' : 's'} (see Problems).`);
    return outcome;
  }
  const { result } = outcome;
  await ctx.runs.add({
    kind: 'compile',
    model,
    modelFile,
    target,
    createdAt: new Date().toISOString(),
    outDir: result.outDir,
    ok: result.ok,
    errorCount,
  });
  ctx.log.info(`wrote ${result.graphJsonPath}`);
  if (!result.ok)
    ctx.ui.warn(`${model}: ${errorCount} node${errorCount === 1 ? '' : 's'} cannot run on ${target} (see Problems); the graph shows them.`);
  await ctx.showGraph(result.outDir);
  return outcome;
}
