/**
 * Remote commands of the CLI: `ait remote check HOST`, `ait remote build HOST DIR [--bench 1,8,64]`,
 * `ait remote verify HOST DIR --model MODEL.onnx [--batch 1,8]`, `ait compile MODEL --remote HOST --build
 * [--verify [1,8]] [--bench 1,8,64]` (its remote half) and `ait agent --stdio`.
 * HOST is `local` (the agent as a child process) or an SSH target (ssh config alias or user@host[:port]).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeProfiles } from './profile-files';
import { CompileError, type Diagnostic, formatDiagnostic } from '../diagnostics';
import { type ExtraSyncFile, openSession, type OpenSessionOptions, type RemoteSession } from '../../remote-agent/client';
import { externalDataFiles } from '../onnx/external-data';
import { decodeModel } from '../onnx/import';
import { runAgentCommandLine } from '../../remote-agent/agent/entry';
import {
  DEFAULT_VERIFY_TOLERANCE,
  type HelloResult,
  type ReferenceKind,
  type RunJobResult,
  type VerifyReport,
} from '../../remote-agent/protocol';
import { formatBytes, table } from './format';
import { formatReport, VERIFY_PROFILE_FILE, writePerNodeFiles } from './verify-command';
import { modelNameOf } from '../compile';

export interface RemoteConnectionFlags {
  acceptHostKey?: boolean;
  /** Node on the host (command or path). */
  node?: string;
  /** A local Node binary (plain or .xz) to upload when the host has none. */
  uploadNode?: string;
  /** Agent work directory on the host, relative to its home. */
  workDir?: string;
  sshConfig?: string;
  verbose?: boolean;
}

export interface RemoteBuildFlags extends RemoteConnectionFlags {
  build?: boolean;
  /** Batch sizes to benchmark (implies a build). */
  bench?: number[];
  iterations?: number;
  /** Throughput bench: model instances, host threads, seconds per batch size (any given: ait_bench's throughput mode). */
  instances?: number;
  threads?: number;
  duration?: number;
  json?: boolean;
  /** Verify the build against this ONNX model (after the build, before the bench); results in DIR/verify.json. */
  verifyModel?: string;
  /** Batch sizes to verify (default 1,8). */
  verifyBatch?: number[];
  seed?: number;
  tolerance?: number;
  reference?: ReferenceKind;
  /** Verify every node too (the library's debug run): DIR/verify-per-node.json and DIR/profile-verify.json. */
  perNode?: boolean;
  /** Relative L2 above which a node's error counts (default 1e-2). */
  threshold?: number;
  /** With perNode: FILE.py:FUNCTION (a local file) whose module PyTorch times per module on the host. */
  torchModel?: string;
}

export const DEFAULT_VERIFY_BATCH_SIZES = [1, 8];

export function parseBatchSizes(value: string): number[] {
  const sizes = value.split(',').map((s) => Number(s.trim()));
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new Error(`expected batch sizes like 1,8,64, got '${value}'`);
  }
  return sizes;
}

export function sessionOptions(flags: RemoteConnectionFlags, err: (s: string) => void): OpenSessionOptions {
  return {
    nodePath: flags.node,
    nodeBinaryToUpload: flags.uploadNode,
    remoteWorkDir: flags.workDir,
    log: flags.verbose ? err : (line) => (/reconnect|dropped|lost/.test(line) ? err(line) : undefined),
    ssh: {
      configPath: flags.sshConfig,
      acceptUnknownHostKey: flags.acceptHostKey
        ? (k) => {
            err(`accepting the ${k.keyType} key of ${k.host} (${k.fingerprint}) and recording it in known_hosts`);
            return true;
          }
        : undefined,
    },
  };
}

/** Runs `fn` with a session, printing CompileErrors as diagnostics; returns the exit code. */
async function withSession(
  host: string,
  flags: RemoteConnectionFlags,
  err: (s: string) => void,
  fn: (s: RemoteSession) => Promise<number>,
): Promise<number> {
  let session: RemoteSession | null = null;
  try {
    session = await openSession(host, sessionOptions(flags, err));
    return await fn(session);
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    for (const d of e.diagnostics) err(formatDiagnostic(d));
    return 1;
  } finally {
    session?.close();
  }
}

export function formatHello(h: HelloResult, host: string): string {
  const dir = (d: { path: string; exists: boolean } | null, variable: string) =>
    d ? `${d.path}${d.exists ? '' : ' (missing)'}` : `not set (${variable})`;
  const rows: string[][] = [
    ['host', `${host}: ${h.host.user}@${h.host.hostname}, ${h.host.platform}/${h.host.arch}`],
    ['agent', `${h.agentVersion} on node ${h.node.version} (${h.node.execPath})`],
    ['work dir', h.workDir],
    ['GPUs', h.gpus.length > 0 ? `${h.gpus.length} (${h.gpuProbe.tool})` : `none: ${h.gpuProbe.note}`],
    ...h.gpus.map((g) => [
      `  GPU ${g.index}`,
      `${g.name}, ${g.memoryMiB !== null ? formatBytes(g.memoryMiB * 2 ** 20) : '? memory'}, ${g.computeCapability ? `sm ${g.computeCapability}` : (g.gfxArch ?? '?')}`,
    ]),
    ['nvcc', h.nvcc ? `${h.nvcc.version} (${h.nvcc.path})` : 'not found'],
    ['hipcc', h.hipcc ? `${h.hipcc.version} (${h.hipcc.path})` : 'not found'],
    ['CUTLASS', dir(h.cutlassDir, 'CUTLASS_DIR')],
    ['CK', dir(h.ckDir, 'CK_DIR')],
    [
      'python',
      h.python
        ? `${h.python.version} (${h.python.path}); torch ${h.python.torch ?? 'no'}${h.python.torchCuda ? ' +CUDA' : ''}; onnxruntime ${h.python.onnxruntime ?? 'no'}`
        : 'not found',
    ],
    ['native binding', 'path' in h.nativeBinding ? h.nativeBinding.path : `none (${h.nativeBinding.unavailable})`],
  ];
  const notes = h.notes.map((n) => `note: ${n}`);
  return [table(rows), ...notes].join('\n');
}

export async function runRemoteCheck(
  host: string,
  flags: RemoteConnectionFlags & { json?: boolean },
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  return withSession(host, flags, err, async (s) => {
    const h = await s.hello();
    out(flags.json ? JSON.stringify(h, null, 2) : formatHello(h, host));
    return 0;
  });
}

/** What DIR/bench.json holds. */
export interface BenchReport {
  host: string;
  createdAt: string;
  batchSizes: number[];
  runner: string;
  note: string;
  /** Present for a throughput bench: what was asked (each result's entries say what ran). */
  throughput?: { instances?: number; threads?: number; durationS?: number };
  results: { gpu: number | null; ok: boolean; result: unknown; diagnostics: Diagnostic[] }[];
}

/** The throughput part of a bench request from the flags, or undefined for a latency bench. */
export function throughputRequest(flags: {
  instances?: number;
  threads?: number;
  duration?: number;
}): { instances?: number; threads?: number; durationS?: number } | undefined {
  if (flags.instances === undefined && flags.threads === undefined && flags.duration === undefined) return undefined;
  return { instances: flags.instances, threads: flags.threads, durationS: flags.duration };
}

/** Sync DIR to HOST; with build/bench, make there (log streamed); with bench, time each batch size on every GPU into DIR/bench.json. */
export async function runRemoteBuild(
  host: string,
  dir: string,
  flags: RemoteBuildFlags,
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  if (!fs.existsSync(path.join(dir, 'Makefile'))) {
    err(
      formatDiagnostic({
        code: 'remote.no-makefile',
        severity: 'error',
        message: `${dir} has no Makefile, so there is nothing to build on ${host} (code generation comes with the CUDA backend)`,
        location: { file: path.join(dir, 'Makefile'), host },
      }),
    );
    return 1;
  }
  if (throughputRequest(flags) && !flags.bench) {
    err(formatDiagnostic({ code: 'cli.bad-option', severity: 'error', message: '--instances, --threads and --duration go with --bench' }));
    return 1;
  }
  const model = flags.verifyModel ? path.resolve(flags.verifyModel) : undefined;
  if (model && !fs.existsSync(model)) {
    err(
      formatDiagnostic({
        code: 'verify.no-model',
        severity: 'error',
        message: `the ONNX model ${model} does not exist`,
        location: { file: model },
      }),
    );
    return 1;
  }
  let modelFiles: ModelSyncFiles | undefined;
  try {
    modelFiles = model ? modelSyncFiles(dir, model) : undefined;
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    for (const d of e.diagnostics) err(formatDiagnostic(d));
    return 1;
  }
  let torchModel: { inBuild: string; extra: ExtraSyncFile[] } | undefined;
  if (flags.torchModel !== undefined) {
    const problem = (message: string) => {
      err(formatDiagnostic({ code: 'verify.bad-torch-model', severity: 'error', message }));
      return 1;
    };
    if (!flags.perNode || !model) return problem('--torch-model times the modules of the per-node table: it needs --per-node');
    const colon = flags.torchModel.lastIndexOf(':');
    const file = colon > 0 ? path.resolve(flags.torchModel.slice(0, colon)) : '';
    const fn = colon > 0 ? flags.torchModel.slice(colon + 1) : '';
    if (!file.endsWith('.py') || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(fn))
      return problem(`--torch-model takes FILE.py:FUNCTION (FUNCTION a Python identifier), got '${flags.torchModel}'`);
    if (!fs.existsSync(file)) return problem(`the PyTorch model factory ${file} does not exist`);
    // synced like the model: as it is inside DIR, else as reference/<file name> (alone: its own imports must be on the host)
    const inside = path.relative(path.resolve(dir), file);
    const isInside = inside !== '' && !inside.startsWith('..') && !path.isAbsolute(inside);
    const inBuild = isInside ? inside.split(path.sep).join('/') : `reference/${path.basename(file)}`;
    torchModel = { inBuild: `${inBuild}:${fn}`, extra: isInside ? [] : [{ path: inBuild, localFile: file }] };
  }
  for (const m of modelFiles?.missing ?? [])
    err(`warning: ${model} names external data ${JSON.stringify(m)}, which is not next to it: the reference will lack those weights`);
  const modelInBuild = modelFiles?.modelInBuild;
  return withSession(host, flags, err, async (s) => {
    const synced = await s.sync(dir, undefined, [...(modelFiles?.extra ?? []), ...(torchModel?.extra ?? [])]);
    err(
      `synced ${dir} to ${host}:${synced.buildDir} (${synced.uploaded.length} sent, ${synced.unchangedCount} unchanged${synced.removed.length ? `, ${synced.removed.length} removed` : ''})`,
    );
    if (!flags.build && !flags.bench && !model) return 0;
    const built = await s.build(dir, synced, (text) => err(text.replace(/\n$/, '')));
    for (const d of built.result.diagnostics) err(formatDiagnostic(d));
    if (!built.result.ok) return 1;
    let verified = true;
    if (model && modelInBuild) {
      verified = await verifyStep(
        s,
        host,
        dir,
        synced.buildName,
        model,
        modelInBuild,
        { ...flags, torchModel: torchModel?.inBuild },
        out,
        err,
      );
      if (!flags.bench) return verified ? 0 : 1;
    }
    if (!flags.bench) return 0;
    const throughput = throughputRequest(flags);
    const benched = await s.bench(
      { buildName: synced.buildName, batchSizes: flags.bench, iterations: flags.iterations, ...throughput },
      (gpu, text) => (flags.verbose ? err(`[gpu ${gpu ?? '-'}] ${text.replace(/\n$/, '')}`) : undefined),
    );
    const report: BenchReport = {
      host,
      createdAt: new Date().toISOString(),
      batchSizes: flags.bench,
      runner: benched.runner?.runner ?? 'unknown',
      note: benched.runner?.note ?? '',
      ...(throughput ? { throughput } : {}),
      results: benched.results.map((r: RunJobResult) => ({ gpu: r.gpu, ok: r.ok, result: r.json, diagnostics: r.diagnostics })),
    };
    const reportPath = path.join(dir, 'bench.json');
    fs.writeFileSync(reportPath, JSON.stringify(report, null, 2) + '\n');
    // per-op profiles (native binding) become profile.json files beside graph.json, for the graph view
    const gpus = (await s.hello()).gpus ?? [];
    for (const r of benched.results) {
      const info = gpus.find((g) => g.index === (r.gpu ?? 0));
      const arch = info?.computeCapability ? `sm${info.computeCapability.replace('.', '')}` : info?.gfxArch;
      const files = writeProfiles(dir, r.json, { index: r.gpu, name: info?.name ?? 'unknown GPU', arch });
      for (const f of files) err(`wrote ${f}`);
    }
    for (const r of benched.results) for (const d of r.diagnostics) err(formatDiagnostic(d));
    out(flags.json ? JSON.stringify(report, null, 2) : formatBenchReport(report));
    (flags.json ? err : out)(`wrote ${reportPath}`);
    return verified && benched.results.every((r) => r.ok) ? 0 : 1;
  });
}

/** Where verify's ONNX model and its external data go in the build directory, and what must be sent besides DIR. */
export interface ModelSyncFiles {
  /** The model's path in the build directory ('/'-separated). */
  modelInBuild: string;
  /** Files from outside DIR: the model as reference/<file name> and its external data next to it, as it names them. */
  extra: ExtraSyncFile[];
  /** External data locations the model names that do not exist here. */
  missing: string[];
}

/**
 * A model inside DIR goes as it is (its external data, inside its directory, is part of DIR). A model elsewhere goes
 * to reference/<file name> with its external data files: those it names that pass the external-data path policy
 * (compiler/onnx/external-data.ts: relative, no '..', inside the model's directory after symlinks, regular files),
 * under the same relative names next to it, so that any reference (onnxruntime) finds them. A location the policy
 * refuses is a CompileError (onnx.external-data).
 */
export function modelSyncFiles(dir: string, model: string): ModelSyncFiles {
  const inside = path.relative(path.resolve(dir), model);
  if (inside !== '' && !inside.startsWith('..') && !path.isAbsolute(inside))
    return { modelInBuild: inside.split(path.sep).join('/'), extra: [], missing: [] };
  const modelInBuild = `reference/${path.basename(model)}`;
  const { files, missing } = externalDataFiles(model, decodeModel(fs.readFileSync(model), model));
  const extra: ExtraSyncFile[] = [{ path: modelInBuild, localFile: model }];
  for (const location of files) extra.push({ path: `reference/${location}`, localFile: path.join(path.dirname(model), location) });
  return { modelInBuild, extra, missing };
}

/** What DIR/verify.json holds: the agent's report, where it ran, the local model, and the errors with their place. */
export interface VerifyFileReport {
  host: string;
  createdAt: string;
  /** The ONNX model on this machine. */
  localModel: string;
  ok: boolean;
  report: VerifyReport | null;
  diagnostics: Diagnostic[];
}

async function verifyStep(
  s: RemoteSession,
  host: string,
  dir: string,
  buildName: string,
  localModel: string,
  modelInBuild: string,
  flags: RemoteBuildFlags,
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<boolean> {
  const { result } = await s.verify(
    {
      buildName,
      model: modelInBuild,
      batchSizes: flags.verifyBatch ?? DEFAULT_VERIFY_BATCH_SIZES,
      seed: flags.seed,
      tolerance: flags.tolerance,
      reference: flags.reference,
      ...(flags.perNode ? { perNode: true, perNodeThreshold: flags.threshold } : {}),
      ...(flags.perNode && flags.torchModel ? { torchModel: flags.torchModel } : {}),
    },
    (text) => (flags.verbose ? err(text.replace(/\n$/, '')) : undefined),
  );
  // Errors about the uploaded copy of the model name the local file (the host stays in the location).
  const diagnostics = result.diagnostics.map((d) =>
    d.location?.file && result.report && d.location.file === result.report.onnxModel
      ? { ...d, location: { ...d.location, file: localModel } }
      : d,
  );
  const file: VerifyFileReport = {
    host,
    createdAt: new Date().toISOString(),
    localModel,
    ok: result.ok,
    report: result.report,
    diagnostics,
  };
  const reportPath = path.join(dir, 'verify.json');
  fs.writeFileSync(reportPath, JSON.stringify(file, null, 2) + '\n');
  for (const d of diagnostics) err(formatDiagnostic(d));
  const perNode = result.report?.perNode;
  // The per-node report and its errors as an ait-profile, beside graph.json (node ids are the compile's).
  const written = perNode ? writePerNodeFiles(dir, { ...perNode, model: localModel }, result.report?.model ?? modelNameOf(localModel)) : [];
  if (result.report) out(flags.json ? JSON.stringify(file, null, 2) : formatVerifyReport(result.report, host));
  if (perNode && !flags.json) out(formatReport(perNode));
  // with --json, stdout is the report alone (one JSON document a script can parse)
  const note = flags.json ? err : out;
  note(`wrote ${reportPath}`);
  for (const f of written) note(`wrote ${f}`);
  if (written.length && !flags.json) out(`see it: ait graph ${dir} --profile ${path.join(dir, VERIFY_PROFILE_FILE)} --html graph.html`);
  return result.ok;
}

/** One row per output and batch size. */
export function formatVerifyReport(report: VerifyReport, host: string): string {
  const exp = (v: number | null) => (v === null ? '-' : v.toExponential(2));
  const ref = report.reference ? `${report.reference.kind}${report.reference.version ? ` ${report.reference.version}` : ''}` : 'none';
  const rows = report.results.map((r) => [
    `${r.batchSize}`,
    r.output,
    `[${r.shape.join(', ')}]`,
    exp(r.relativeL2),
    exp(r.maxAbsError),
    exp(r.maxAbsReference),
    (r.pass ? 'pass' : `FAIL: ${r.failure ?? ''}`) +
      (r.detections
        ? ` (detections: ${r.detections.matched} of ${r.detections.referenceCount} matched, compiled ${r.detections.compiledCount}${
            r.detections.meanIoU === null ? '' : `, mean IoU ${r.detections.meanIoU.toFixed(3)}`
          })`
        : ''),
  ]);
  const lines = [
    `verify on ${host}: ${report.model ?? '?'} against ${ref}, tolerance ${report.tolerance.toExponential(1)} (rel. L2), seed ${report.seed}`,
    table(rows, ['batch', 'output', 'shape', 'rel L2', 'max abs err', 'max |ref|', 'result']),
    ...report.notes.map((n) => `note: ${n}`),
    ...(report.perNode
      ? [
          `per node: ${report.perNode.nodes.filter((n) => n.relativeL2 !== undefined).length} nodes compared at batch ${report.perNode.batch}`,
        ]
      : []),
    report.ok ? 'verify: every output matches the reference' : 'verify: FAILED',
  ];
  return lines.join('\n');
}

export function parseTolerance(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new Error(`expected a positive tolerance like 2e-2, got '${value}'`);
  return n;
}

export function parseReference(value: string): ReferenceKind {
  const kinds: ReferenceKind[] = ['python-onnxruntime', 'onnxruntime-node', 'interpreter'];
  if (!kinds.includes(value as ReferenceKind)) throw new Error(`expected one of ${kinds.join(', ')}, got '${value}'`);
  return value as ReferenceKind;
}

export { DEFAULT_VERIFY_TOLERANCE };

/** One row per GPU and entry of the result's `results` array (ait_bench prints {results: [{batchSize, ...}]}). */
export function formatBenchReport(report: BenchReport): string {
  const rows: string[][] = [];
  const keys = new Set<string>();
  for (const r of report.results) {
    const entries = (r.result as { results?: Record<string, unknown>[] } | null)?.results;
    if (!Array.isArray(entries)) {
      rows.push([`${r.gpu ?? '-'}`, r.ok ? JSON.stringify(r.result) : 'failed']);
      continue;
    }
    for (const e of entries) for (const k of Object.keys(e)) keys.add(k);
  }
  const columns = [...keys];
  for (const r of report.results) {
    const entries = (r.result as { results?: Record<string, unknown>[] } | null)?.results;
    if (Array.isArray(entries)) for (const e of entries) rows.push([`${r.gpu ?? '-'}`, ...columns.map((k) => formatCell(e[k]))]);
  }
  return [`bench on ${report.host} (${report.runner}: ${report.note})`, table(rows, ['gpu', ...columns])].join('\n');
}

function formatCell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  return v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
}

/** `ait agent --stdio`: this process becomes the agent (same code as dist/agent.js). */
export function runAgentCommand(args: string[]): void {
  // Supervisors of jobs re-run this CLI as `ait agent --supervise DIR` (with the same node flags, e.g. a TS loader).
  runAgentCommandLine(args, [process.execPath, ...process.execArgv, path.resolve(process.argv[1]), 'agent']);
}
