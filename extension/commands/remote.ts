/**
 * Remote hosts: `AIT: Add Remote Host`, `AIT: Check Remote Host`, `AIT: Build and Benchmark on Remote`. The work is
 * the remote runner client's (remote-agent/client); this wires it to settings, prompts, secrets and Problems.
 * Passphrases of SSH keys are asked for when a key needs one and kept only in SecretStorage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, formatDiagnostic, type Diagnostic } from '../../compiler/diagnostics';
import type { OpenSessionOptions } from '../../remote-agent/client';
import type { HelloResult, JobInfo, RunJobResult, BuildJobResult, BenchRunnerNote } from '../../remote-agent/protocol';
import type { BenchReport } from '../../compiler/cli/remote-command';
import { formatHello, parseBatchSizes } from '../../compiler/cli/remote-command';
import { localizeBuildDiagnostics, problemsOf } from '../problems';
import { headlineLatency, headlineThroughput } from '../runs';
import { checkHostTarget, readSettings, type RemoteHostSetting } from '../settings';
import type { CancellationSignal } from '../ports';
import type { CommandContext } from './context';
import { requireTrust } from './trust';

/** The part of RemoteSession the commands use (the unit tests give a scripted one). */
export interface RemoteSessionLike {
  hello(): Promise<HelloResult>;
  sync(localDir: string): Promise<{ buildName: string; buildDir: string; uploaded: string[]; unchangedCount: number }>;
  startBuild(params: { buildName: string; makeArgs?: string[] }): Promise<JobInfo>;
  startBench(params: {
    buildName: string;
    batchSizes: number[];
    instances?: number;
    threads?: number;
    durationS?: number;
  }): Promise<{ jobs: JobInfo[]; runner?: BenchRunnerNote }>;
  followJob(jobId: string, onOutput: (text: string) => void): Promise<JobInfo>;
  jobResult(jobId: string): Promise<unknown>;
  cancel(jobId: string): Promise<unknown>;
  close(): void;
}

export interface RemoteConnector {
  open(host: string, options: OpenSessionOptions): Promise<RemoteSessionLike>;
}

const passphraseKey = (keyFile: string) => `ait.ssh-passphrase:${keyFile}`;

/** Session options: host-key prompt, passphrases from SecretStorage (asked and stored when missing), log. */
export function sessionOptionsFor(ctx: CommandContext, remote: RemoteHostSetting): OpenSessionOptions {
  const { settings } = readSettings(ctx.settings);
  return {
    nodePath: remote.node,
    nodeBinaryToUpload: remote.uploadNode,
    remoteWorkDir: remote.workDir,
    log: (line) => ctx.log.trace(`[${remote.name}] ${line}`),
    ssh: {
      configPath: settings.sshConfig || undefined,
      acceptUnknownHostKey: (k) =>
        ctx.ui.confirm(
          `The host key of ${k.host}:${k.port} is not known.`,
          `${k.keyType} ${k.fingerprint}\nTrust it and record it in known_hosts?`,
          'Trust Host',
        ),
      passphrase: async (keyFile) => {
        const stored = await ctx.secrets.get(passphraseKey(keyFile));
        if (stored !== undefined) return stored;
        const typed = await ctx.ui.input({ title: `Passphrase for ${keyFile}`, password: true, prompt: `SSH key for ${remote.host}` });
        if (typed !== undefined) await ctx.secrets.store(passphraseKey(keyFile), typed);
        return typed;
      },
    },
  };
}

export async function pickRemote(ctx: CommandContext, given?: string): Promise<RemoteHostSetting | undefined> {
  const { settings, problems } = readSettings(ctx.settings);
  for (const p of problems) ctx.log.warn(`${p.setting}: ${p.message}`);
  if (given) {
    const found = settings.remotes.find((r) => r.name === given || r.host === given);
    if (found) return found;
    if (given === 'local') return { name: 'local', host: 'local' };
  }
  const items = [
    ...settings.remotes.map((r) => ({ label: r.name, description: r.host === r.name ? '' : r.host, remote: r })),
    ...(settings.remotes.some((r) => r.host === 'local')
      ? []
      : [{ label: 'local', description: 'this machine', remote: { name: 'local', host: 'local' } }]),
  ];
  return (await ctx.ui.pick(items, { title: 'Remote host', placeholder: 'add hosts with AIT: Add Remote Host' }))?.remote;
}

export async function addRemoteHostCommand(ctx: CommandContext): Promise<RemoteHostSetting | undefined> {
  if (!requireTrust(ctx, 'ait.addRemoteHost')) return undefined;
  const host = await ctx.ui.input({
    title: 'Add remote host',
    prompt: 'an ssh config alias, user@host[:port], or local',
    placeholder: 'gpu-box',
    validate: checkHostTarget,
  });
  if (host === undefined) return undefined;
  const { settings } = readSettings(ctx.settings);
  const name = await ctx.ui.input({
    title: 'Add remote host',
    prompt: 'name shown in AIT Studio',
    value: host.trim(),
    validate: (v) => (!v.trim() ? 'give a name' : settings.remotes.some((r) => r.name === v.trim()) ? `'${v.trim()}' is taken` : undefined),
  });
  if (name === undefined) return undefined;
  const remote: RemoteHostSetting = { name: name.trim(), host: host.trim() };
  const raw = ctx.settings.get('remotes');
  await ctx.settings.update('remotes', [...(Array.isArray(raw) ? raw : []), remote]);
  ctx.log.info(`added remote host ${remote.name} (${remote.host})`);
  return remote;
}

/** Runs `fn` with a session to `remote`; a CompileError becomes Problems-free error messages naming the host. */
async function withSession<T>(
  ctx: CommandContext,
  remote: RemoteHostSetting,
  fn: (s: RemoteSessionLike) => Promise<T>,
): Promise<T | undefined> {
  let session: RemoteSessionLike | undefined;
  try {
    session = await ctx.remotes.open(remote.host, sessionOptionsFor(ctx, remote));
    return await fn(session);
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    for (const d of e.diagnostics) ctx.log.error(formatDiagnostic(d));
    ctx.ui.error(`${remote.name}: ${e.diagnostics[0]?.message ?? e.message}`);
    return undefined;
  } finally {
    session?.close();
  }
}

export async function checkRemoteHostCommand(ctx: CommandContext, hostArg?: string): Promise<HelloResult | undefined> {
  if (!requireTrust(ctx, 'ait.checkRemoteHost')) return undefined;
  const remote = await pickRemote(ctx, hostArg);
  if (!remote) return undefined;
  return ctx.progress.run(`AIT: checking ${remote.name}`, () =>
    withSession(ctx, remote, async (s) => {
      const hello = await s.hello();
      ctx.log.info(`check ${remote.name}:\n${formatHello(hello, remote.host)}`);
      ctx.onHostChecked(remote.name, hello);
      const gpus = hello.gpus.length ? hello.gpus.map((g) => g.name).join(', ') : `no GPU (${hello.gpuProbe.note})`;
      ctx.ui.info(`${remote.name}: ${gpus}; nvcc ${hello.nvcc ? hello.nvcc.version : 'not found'}.`);
      return hello;
    }),
  );
}

export interface BuildBenchResult {
  build: BuildJobResult;
  report?: BenchReport;
}

/** Follows a job; cancelling the progress cancels the job on the host. */
async function followCancellable(s: RemoteSessionLike, job: JobInfo, cancel: CancellationSignal, onOutput: (t: string) => void) {
  const sub = cancel.onCancellationRequested(() => void s.cancel(job.id));
  try {
    return await s.followJob(job.id, onOutput);
  } finally {
    sub.dispose();
  }
}

export async function buildAndBenchmarkCommand(
  ctx: CommandContext,
  dirArg?: string,
  hostArg?: string,
): Promise<BuildBenchResult | undefined> {
  if (!requireTrust(ctx, 'ait.buildAndBenchmark')) return undefined;
  const lastCompile = ctx.runs.list().find((r) => r.kind === 'compile');
  const dir = dirArg ?? (await ctx.ui.pickFolder('Compile output directory to build', lastCompile?.outDir));
  if (!dir) return undefined;
  const makefile = path.join(dir, 'Makefile');
  if (!fs.existsSync(makefile)) {
    const d: Diagnostic = {
      code: 'remote.no-makefile',
      severity: 'error',
      message: `${dir} has no Makefile, so there is nothing to build (code generation comes with the CUDA backend)`,
      location: { file: makefile },
    };
    ctx.log.error(formatDiagnostic(d));
    ctx.ui.error(d.message);
    return undefined;
  }
  const remote = await pickRemote(ctx, hostArg);
  if (!remote) return undefined;
  const { settings } = readSettings(ctx.settings);
  const sizesText = await ctx.ui.input({
    title: `Benchmark on ${remote.name}: batch sizes`,
    value: settings.benchBatchSizes.join(','),
    validate: (v) => {
      try {
        parseBatchSizes(v);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    },
  });
  if (sizesText === undefined) return undefined;
  const batchSizes = parseBatchSizes(sizesText);
  const graphJson = path.join(dir, 'graph.json');
  const model = fs.existsSync(graphJson)
    ? ((JSON.parse(fs.readFileSync(graphJson, 'utf8')) as { model?: { name?: string } }).model?.name ?? path.basename(dir))
    : path.basename(dir);
  const job = ctx.status.begin(`building ${model} on ${remote.name}`);
  try {
    return await ctx.progress.run(`AIT: build and benchmark ${model} on ${remote.name}`, (progress, cancel) =>
      withSession(ctx, remote, async (s) => {
        progress.report('sync');
        const synced = await s.sync(dir);
        ctx.log.info(
          `synced ${dir} to ${remote.name}:${synced.buildDir} (${synced.uploaded.length} sent, ${synced.unchangedCount} unchanged)`,
        );
        progress.report('build');
        const makeArgs = settings.cutlassDir ? [`CUTLASS_DIR=${settings.cutlassDir}`] : [];
        const buildJob = await s.startBuild({ buildName: synced.buildName, makeArgs });
        await followCancellable(s, buildJob, cancel, (t) => ctx.log.trace(t.replace(/\n$/, '')));
        const raw = (await s.jobResult(buildJob.id)) as BuildJobResult;
        const built = { ...raw, diagnostics: localizeBuildDiagnostics(raw.diagnostics, dir, remote.name) };
        ctx.problems.replace(`build:${dir}`, problemsOf(built.diagnostics, makefile));
        if (!built.ok || cancel.isCancellationRequested) {
          ctx.ui.error(
            cancel.isCancellationRequested
              ? `Build on ${remote.name} cancelled.`
              : `Build on ${remote.name} failed (see Problems and the AIT Studio log).`,
          );
          return { build: built };
        }
        // ait.benchInstances > 0: throughput (N instances × M threads per GPU) instead of latency
        const throughput =
          settings.benchInstances > 0
            ? { instances: settings.benchInstances, threads: settings.benchThreads, durationS: settings.benchDuration }
            : undefined;
        progress.report(
          throughput
            ? `throughput benchmark, ${throughput.instances} instances × ${throughput.threads} threads, batch ${batchSizes.join(', ')}`
            : `benchmark, batch ${batchSizes.join(', ')}`,
        );
        const started = await s.startBench({ buildName: synced.buildName, batchSizes, ...throughput });
        await Promise.all(
          started.jobs.map((j) => followCancellable(s, j, cancel, (t) => ctx.log.trace(`[gpu ${j.gpu ?? '-'}] ${t.replace(/\n$/, '')}`))),
        );
        const results = await Promise.all(started.jobs.map(async (j) => (await s.jobResult(j.id)) as RunJobResult));
        const report: BenchReport = {
          host: remote.host,
          createdAt: new Date().toISOString(),
          batchSizes,
          runner: started.runner?.runner ?? 'unknown',
          note: started.runner?.note ?? '',
          ...(throughput ? { throughput } : {}),
          results: results.map((r) => ({ gpu: r.gpu, ok: r.ok, result: r.json, diagnostics: r.diagnostics })),
        };
        fs.writeFileSync(path.join(dir, 'bench.json'), JSON.stringify(report, null, 2) + '\n');
        const headline = throughput ? undefined : headlineLatency(report.results);
        const rate = throughput ? headlineThroughput(report.results) : undefined;
        await ctx.runs.add({
          kind: 'bench',
          model,
          modelFile: lastCompile?.outDir === dir ? lastCompile.modelFile : '',
          target: lastCompile?.outDir === dir ? lastCompile.target : '',
          createdAt: report.createdAt,
          outDir: dir,
          ok: results.every((r) => r.ok),
          host: remote.name,
          headlineLatencyMs: headline?.latencyMs,
          headlineBatch: headline?.batch ?? rate?.batch,
          headlineItemsPerSecond: rate?.itemsPerSecond,
          errorCount: results.filter((r) => !r.ok).length,
        });
        for (const r of results) for (const d of r.diagnostics) ctx.log.error(formatDiagnostic(d));
        ctx.ui.info(
          rate && throughput
            ? `${model} on ${remote.name}: ${rate.itemsPerSecond.toFixed(0)} images/s at batch ${rate.batch} ` +
                `(${throughput.instances} instances × ${throughput.threads} threads per GPU, P99 ${rate.p99Ms.toFixed(3)} ms).`
            : headline
              ? `${model} on ${remote.name}: ${headline.latencyMs.toFixed(3)} ms at batch ${headline.batch}.`
              : `${model} benchmarked on ${remote.name}; see bench.json.`,
        );
        return { build: built, report };
      }),
    );
  } finally {
    job.dispose();
  }
}
