/**
 * `ait verify MODEL [--per-node] [--batch N] [--out DIR] [--json]`: the per-node numerical check on this machine
 * (compiler/verify/local.ts). Prints each node's error, the first node where the error jumps or a value leaves the
 * fp16 range, and the per-module table; `--out DIR` writes verify-per-node.json, profile-verify.json (the errors as
 * an ait-profile, for `ait graph DIR --profile`) and graph.json when DIR has none.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OpProfile, ProfileJson } from '../../webview/contract';
import { modelNameOf } from '../compile';
import { formatDiagnostic } from '../diagnostics';
import type { Graph, OnnxModelInfo } from '../ir/graph';
import { graphToJson } from '../ir/serialize';
import { checkDimBounds, modelInputDims } from '../options';
import { type PerNodeReport, verifyPerNodeLocal } from '../verify/local';
import type { TimesSummary } from '../verify/module-times';
import { type FirstProblem, fmt, type ModuleRow, type NodeErrorRow } from '../verify/per-node';
import { table } from './format';

export interface VerifyCommandOptions {
  perNode?: boolean;
  batch?: number;
  seed?: number;
  threshold?: number;
  weightStd?: number;
  storage?: 'float16' | 'float32';
  out?: string;
  json?: boolean;
  dim?: Record<string, [number, number]>;
  /** Module table depth (default 2). */
  moduleDepth?: number;
  /** Print every compared node (default: the first 40 and every bad one). */
  all?: boolean;
}

export const PER_NODE_REPORT_FILE = 'verify-per-node.json';
export const VERIFY_PROFILE_FILE = 'profile-verify.json';
/** Our per-op profile measured by `ait remote verify --per-node` (the module table's time column). */
export const VERIFY_TIMES_PROFILE_FILE = 'profile-verify-times.json';
/** PyTorch eager's module times of a per-node verify with --torch-model (module_times.py's output). */
export const TORCH_TIMES_FILE = 'torch-module-times.json';

export async function runVerify(model: string, opts: VerifyCommandOptions, out: (s: string) => void): Promise<number> {
  return (await runVerifyReport(model, opts, out)).code;
}

/** `runVerify`, also returning the report (the extension's verify worker sends it back as data). */
export async function runVerifyReport(
  model: string,
  opts: VerifyCommandOptions,
  out: (s: string) => void,
): Promise<{ code: number; report: PerNodeReport }> {
  if (opts.dim && Object.keys(opts.dim).length) checkDimBounds(modelInputDims(model), opts.dim);
  const { report, graph, info, diagnostics } = await verifyPerNodeLocal(model, {
    batch: opts.batch,
    seed: opts.seed,
    threshold: opts.threshold,
    weightStd: opts.weightStd,
    storage: opts.storage,
    dimBounds: opts.dim,
    log: opts.json ? undefined : out,
  });
  const written = opts.out ? writeVerifyFiles(path.resolve(opts.out), model, report, graph, info) : [];
  if (opts.json) {
    out(JSON.stringify({ ...report, files: written }, null, 2));
  } else {
    for (const d of diagnostics.filter((x) => x.severity !== 'info').slice(0, 20)) out(formatDiagnostic(d));
    out(formatReport(report, opts));
    for (const f of written) out(`wrote ${f}`);
    if (written.length) out(`see it: ait graph ${opts.out} --profile ${path.join(opts.out!, VERIFY_PROFILE_FILE)} --html graph.html`);
  }
  return { code: report.firstJump || report.firstOverflow ? 1 : 0, report };
}

/** The report as text: nodes (bad ones always), the first problems, the module table. */
export function formatReport(report: PerNodeReport, opts: Pick<VerifyCommandOptions, 'moduleDepth' | 'all'> = {}): string {
  const lines: string[] = [];
  const compared = report.nodes.filter((r) => r.relativeL2 !== undefined);
  const shown = opts.all ? compared : compared.filter((r, i) => i < 40 || r.bad || r.fp16Overflow);
  lines.push('');
  lines.push(
    table(
      shown.map((r) => [
        r.id,
        r.op,
        r.name.length > 48 ? '…' + r.name.slice(-47) : r.name,
        fmt(r.maxAbs),
        fmt(r.maxRel),
        r.relativeL2 === null ? 'NaN/Inf' : fmt(r.relativeL2),
        String(r.nonFinite ?? 0),
        fmt(r.maxAbsReference) + (r.fp16Overflow ? ' > fp16' : ''),
        r.bad ? '✗' : '',
      ]),
      ['node', 'op', 'name', 'max abs', 'max rel', 'rel L2', 'NaN/Inf', 'max |ref|', ''],
    ),
  );
  if (shown.length < compared.length) lines.push(`… ${compared.length - shown.length} more nodes within tolerance (--all prints them)`);
  lines.push('');
  lines.push(
    `${compared.length} nodes compared at batch ${report.batch} (seed ${report.seed}); candidate: ${report.candidate}; ` +
      `reference: ${report.reference.kind}${report.reference.version ? ` ${report.reference.version}` : ''}` +
      (report.randomizedWeights ? `; ${report.randomizedWeights} absent weights randomized` : ''),
  );
  for (const n of report.notes) lines.push(`note: ${n}`);
  lines.push(describeProblem('first fp16 overflow', report.firstOverflow));
  lines.push(describeProblem(`first error jump (rel L2 > ${fmt(report.threshold)})`, report.firstJump));
  lines.push('');
  lines.push(formatModules(report.modules, opts.moduleDepth ?? 2));
  lines.push(...describeTimes(report.times));
  return lines.join('\n');
}

export function describeProblem(title: string, p: FirstProblem | null): string {
  if (!p) return `${title}: none`;
  return (
    `${title}: ${p.id} ${p.op} '${p.name}'${p.scope.length ? ` in ${p.scope.join('/')}` : ''} — ${p.message}; ` +
    `ONNX nodes ${p.sourceNodes.join(', ')}${p.onnxTensor ? ` (tensor '${p.onnxTensor}')` : ''}`
  );
}

export function formatModules(modules: ModuleRow[], depth: number): string {
  const rows = modules.filter((m) => m.depth <= depth && m.depth > 0);
  if (rows.length === 0) return 'modules: none (the nodes have no scope)';
  // Time columns only when a profile (ours) or PyTorch's times were given; a module without a time shows '-'.
  const timed = modules.some((m) => m.timeMs !== undefined || m.referenceTimeMs !== undefined);
  const ms = (v: number | undefined) => (v === undefined ? '-' : v >= 100 ? v.toFixed(1) : v.toPrecision(3));
  return table(
    rows.map((m) => [
      '  '.repeat(m.depth - 1) + (m.module.split('/').pop() ?? ''),
      String(m.nodes),
      m.nodes ? fmt(m.maxAbs) : '-',
      m.nodes ? (m.maxRelativeL2 === null ? 'NaN/Inf' : fmt(m.maxRelativeL2)) : '-',
      m.fp16Overflows ? String(m.fp16Overflows) : '',
      ...(timed ? [ms(m.timeMs), ms(m.referenceTimeMs), m.speedup === undefined ? '-' : `${m.speedup.toFixed(2)}x`] : []),
    ]),
    ['module', 'nodes', 'max abs err', 'max rel L2', 'fp16 overflows', ...(timed ? ['ours ms', 'torch ms', 'speedup'] : [])],
  );
}

/** Where the time columns come from, in one or two lines (none without times). */
export function describeTimes(times: TimesSummary | undefined): string[] {
  const lines: string[] = [];
  if (times?.ours)
    lines.push(
      `ours: per-op profile at batch ${times.ours.batch} on ${times.ours.gpu}, ${times.ours.runs} runs; ops sum ${times.ours.opsMs.toPrecision(3)} ms` +
        (times.ours.totalMs !== undefined ? `, whole run ${times.ours.totalMs.toPrecision(3)} ms` : ''),
    );
  const r = times?.reference;
  if (r)
    lines.push(
      `torch: PyTorch eager${r.torch ? ` ${r.torch}` : ''}${r.dtype ? ` ${r.dtype}` : ''}${r.device ? ` on ${r.device}` : ''}` +
        `${r.runs !== undefined ? `, median of ${r.runs} runs` : ''}${r.totalMs !== undefined ? `, whole forward ${r.totalMs.toPrecision(3)} ms` : ''}; ` +
        `${r.matched} module row(s) matched of ${r.modules} timed module(s); speedup = torch ms / ours ms`,
    );
  return lines;
}

/** The per-node errors as an ait-profile (meanMs 0: no time was measured), keyed by the graph's node ids. */
export function errorProfile(report: PerNodeReport, modelName: string, date = new Date()): ProfileJson {
  const ops: Record<string, OpProfile> = {};
  for (const r of report.nodes) {
    if (r.relativeL2 === undefined) continue;
    ops[r.id] = { meanMs: 0, error: errorField(r, report) };
  }
  return {
    format: 'ait-profile',
    version: 1,
    graph: { model: modelName },
    gpu: { name: `none: ${report.candidate}` },
    date: date.toISOString(),
    runs: 0,
    batch: report.batch,
    ops,
  };
}

export function errorField(r: NodeErrorRow, report: Pick<PerNodeReport, 'reference'>): NonNullable<OpProfile['error']> {
  return {
    maxAbs: r.maxAbs ?? 0,
    maxRel: Number.isFinite(r.maxRel) ? r.maxRel : undefined,
    relativeL2: r.relativeL2 ?? null,
    nonFinite: r.nonFinite ?? 0,
    maxAbsReference: r.maxAbsReference,
    fp16Overflow: r.fp16Overflow ?? false,
    reference: report.reference.kind,
  };
}

function writeVerifyFiles(dir: string, model: string, report: PerNodeReport, graph: Graph, info: OnnxModelInfo): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const modelName = modelNameOf(model);
  const graphFile = path.join(dir, 'graph.json');
  const writeGraph = !fs.existsSync(graphFile);
  if (!writeGraph) {
    // A compile's graph.json: its node ids are ours when it was compiled from the same model with the same options.
    const existing = JSON.parse(fs.readFileSync(graphFile, 'utf8')) as { nodes?: { id: string; op: string }[] };
    const ops = new Map((existing.nodes ?? []).map((n) => [n.id, n.op]));
    const compared = report.nodes.filter((r) => r.relativeL2 !== undefined);
    const missing = compared.filter((r) => !ops.has(r.id)).length;
    const differ = compared.filter((r) => ops.has(r.id) && ops.get(r.id) !== r.op).length;
    if (differ || missing)
      report.notes.push(
        `${graphFile} is another graph (${missing} compared node(s) not in it, ${differ} with another op): ` +
          'compile the model again, or verify into an empty directory',
      );
  }
  const files = writePerNodeFiles(dir, report, modelName);
  if (writeGraph) {
    writeWhole(graphFile, JSON.stringify(graphToJson(graph, { modelName, info })));
    files.push(graphFile);
  }
  return files;
}

/**
 * Writes DIR/verify-per-node.json, DIR/profile-verify.json (the errors as an ait-profile), and when measured
 * DIR/profile-verify-times.json (our per-op profile) and DIR/torch-module-times.json (PyTorch's); returns their paths.
 */
export function writePerNodeFiles(dir: string, report: PerNodeReport, modelName: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeWhole(file, text);
    files.push(file);
  };
  write(PER_NODE_REPORT_FILE, JSON.stringify(report, null, 2) + '\n');
  write(VERIFY_PROFILE_FILE, JSON.stringify(errorProfile(report, modelName), null, 2) + '\n');
  // Kept apart from the errors, so that the error profile still opens on the error heatmap.
  if (report.profile)
    write(
      VERIFY_TIMES_PROFILE_FILE,
      JSON.stringify({ ...report.profile, graph: { ...report.profile.graph, model: modelName } }, null, 2) + '\n',
    );
  if (report.torchTimes) write(TORCH_TIMES_FILE, JSON.stringify(report.torchTimes, null, 2) + '\n');
  return files;
}

/**
 * Writes `file` through a temporary name and a rename: a run stopped mid-write (the extension terminates a cancelled
 * verify worker) leaves the previous file or none, never half of one for the graph view to read.
 */
function writeWhole(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
