/**
 * Measured kernel choice from the CLI (compiler/backends/cuda/profiling/ says what is measured and how it is chosen):
 *  - `ait compile MODEL --profile HOST`: compile with the profiler sources (DIR/profile/), find the host's cache key
 *    (profile/device_info), profile there whatever the profile cache lacks for that key (one worker per GPU), store
 *    the measurements, and compile again choosing every GEMM/conv instance from them;
 *  - `--profiled-on GPU`: compile from the cache's measurements of a GPU (name part), profiling nothing;
 *  - `--measurements FILE`: from ait_profiler output files (e.g. a profiler run by hand on a host);
 *  - `--profile-sources`: write DIR/profile/ for every signature, to build and run by hand.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, error, formatDiagnostic } from '../diagnostics';
import { openProfileCache, type ProfileCache } from '../profiling/cache';
import type { DeviceKey, Measurement } from '../profiling/types';
import { MEASUREMENT_STATUSES } from '../profiling/types';
import { memorySource, type MeasurementSource } from '../backends/cuda/profiling/selection';
import { openSession, type OpenSessionOptions, type RemoteSession } from '../../remote-agent/client';
import type { RunJobResult } from '../../remote-agent/protocol';
import { runCompile, type CompileCommandOptions } from './compile-command';
import { sessionOptions, type RemoteConnectionFlags } from './remote-command';

export interface ProfileFlags extends RemoteConnectionFlags {
  /** Host to profile on ('local' or an ssh target). */
  profile?: string;
  /** GPU name part: compile from the cache's measurements of that GPU. */
  profiledOn?: string;
  /** ait_profiler output files. */
  measurements?: string[];
  profileSources?: boolean;
  profileCache?: string;
  profileIterations?: number;
}

const deviceLabel = (d: DeviceKey) => `${d.gpu}, ${d.sms} SMs, driver CUDA ${d.driver}, CUDA ${d.cuda}, CUTLASS ${d.cutlass}`;

/** Measurements of one device from the profile cache: a snapshot (what the cache holds now), as data. */
export function cacheSource(cache: ProfileCache, device: DeviceKey): MeasurementSource {
  return memorySource(deviceLabel(device), cache.measurementsOf(device));
}

/** What ait_profiler prints last (profiler/ait_profiler.cu), checked. */
export interface ProfilerOutput {
  device: DeviceKey;
  measurements: Measurement[];
}

/** A device key as device_info and ait_profiler print it (from a host: checked, never trusted), or undefined. */
export function deviceKeyOf(value: unknown): DeviceKey | undefined {
  const d = value as Record<string, unknown> | null | undefined;
  if (!d || typeof d !== 'object') return undefined;
  const text = (x: unknown) => typeof x === 'string' && x.length > 0 && x.length <= 200;
  if (!text(d.gpu) || !Number.isInteger(d.sms) || (d.sms as number) <= 0 || !text(d.driver) || !text(d.cuda) || !text(d.cutlass))
    return undefined;
  return { gpu: d.gpu as string, sms: d.sms as number, driver: d.driver as string, cuda: d.cuda as string, cutlass: d.cutlass as string };
}

export function parseProfilerOutput(value: unknown, where: string): ProfilerOutput {
  const bad = (why: string) =>
    new CompileError(error('profile.bad-results', `${where}: not ait_profiler output (${why})`, { file: where }));
  if (!value || typeof value !== 'object') throw bad('not a JSON object');
  const v = value as { format?: unknown; device?: Record<string, unknown>; measurements?: unknown };
  if (v.format !== 'ait-profiler') throw bad(`format ${JSON.stringify(v.format)}`);
  const d = deviceKeyOf(v.device);
  if (!d) throw bad('device incomplete');
  if (!Array.isArray(v.measurements)) throw bad('no measurements');
  const measurements: Measurement[] = [];
  for (const m of v.measurements as Record<string, unknown>[]) {
    if (
      typeof m?.signature !== 'string' ||
      typeof m.candidate !== 'string' ||
      !Number.isInteger(m.batch) ||
      !MEASUREMENT_STATUSES.includes(m.status as never) ||
      (m.medianUs !== undefined && (typeof m.medianUs !== 'number' || !Number.isFinite(m.medianUs)))
    )
      throw bad(`malformed measurement ${JSON.stringify(m).slice(0, 200)}`);
    measurements.push({
      signature: m.signature,
      candidate: m.candidate,
      batch: m.batch as number,
      status: m.status as Measurement['status'],
      ...(m.medianUs !== undefined ? { medianUs: m.medianUs as number } : {}),
      ...(typeof m.message === 'string' ? { message: m.message } : {}),
      ...(m.config && typeof m.config === 'object' ? { config: m.config as Record<string, unknown> } : {}),
    });
  }
  return { device: d, measurements };
}

/** Measurements from profiler output files (all of one device). */
export function fileSource(files: readonly string[]): MeasurementSource {
  const all: Measurement[] = [];
  let device: DeviceKey | undefined;
  for (const file of files) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new CompileError(error('profile.bad-results', `${file}: cannot read it as JSON (${(e as Error).message})`, { file }));
    }
    const output = parseProfilerOutput(parsed, file);
    if (device && deviceLabel(device) !== deviceLabel(output.device))
      throw new CompileError(
        error('profile.mixed-devices', `${file} was measured on ${deviceLabel(output.device)}, the others on ${deviceLabel(device)}`, {
          file,
        }),
      );
    device = output.device;
    all.push(...output.measurements);
  }
  return memorySource(device ? deviceLabel(device) : 'no device', all);
}

/** The cached device whose GPU name contains `gpu` (case-insensitive), the most recently updated when several do. */
export function cachedDevice(cache: ProfileCache, gpu: string): DeviceKey {
  const matches = cache
    .list()
    .filter((d) => d.device.gpu.toLowerCase().includes(gpu.toLowerCase()))
    .sort((a, b) => b.updated.localeCompare(a.updated));
  if (matches.length === 0) {
    const known = cache.list().map((d) => d.device.gpu);
    throw new CompileError(
      error(
        'profile.no-device',
        `the profile cache ${cache.file} has no measurements of a GPU named like '${gpu}' (it has: ${known.length ? [...new Set(known)].join(', ') : 'none'}); profile first with --profile HOST`,
      ),
    );
  }
  return matches[0].device;
}

/** A cancellation request (VS Code's CancellationToken has this shape). */
export interface ProfileCancellation {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

/** What a caller embedding the flow (the VS Code extension) adds; the CLI gives none. */
export interface ProfiledCompileControl {
  /**
   * Checked between the steps (compile, connect, sync, build, device_info, profile, final compile): once requested
   * the flow stops at the next step boundary and returns 1. A running profiler or device_info job on the host is
   * cancelled there at once. Not interruptible: a compile pass in progress (synchronous) and a remote build
   * (make) in progress; the flow stops after them.
   */
  cancel?: ProfileCancellation;
  /** Session options used instead of those derived from the flags (the extension's host-key prompt and passphrases). */
  sessionOptions?: OpenSessionOptions;
  /**
   * Runs each of the flow's compiles (default: runCompile on this thread). The extension runs them in its compile
   * worker thread (their measurement sources are data: `MeasurementSource.all`), so the editor stays responsive.
   */
  compile?: CompileStep;
}

/** One `ait compile` of the flow: its exit code; a CompileError (bad options) is thrown. */
export type CompileStep = (model: string, opts: CompileCommandOptions, out: (s: string) => void) => Promise<number>;

async function runJobJson(
  session: RemoteSession,
  buildName: string,
  executable: string,
  args: string[],
  gpus: number[] | undefined,
  log: (s: string) => void,
  cancel?: ProfileCancellation,
) {
  const started = await session.startProfile({ buildName, executable, args, gpus });
  const sub = cancel?.onCancellationRequested(() => started.jobs.forEach((j) => void session.cancel(j.id).catch(() => undefined)));
  try {
    await Promise.all(started.jobs.map((j) => session.followJob(j.id, (t) => log(t.replace(/\n$/, '')))));
  } finally {
    sub?.dispose();
  }
  return Promise.all(started.jobs.map(async (j) => (await session.jobResult(j.id)) as RunJobResult));
}

/**
 * `ait compile MODEL --profile HOST` and the other measured-choice options. Returns the exit code; the output
 * directory holds the final build (compiled with the measurements).
 */
export async function runProfiledCompile(
  model: string,
  opts: CompileCommandOptions & ProfileFlags,
  outDir: string,
  out: (s: string) => void,
  err: (s: string) => void,
  control: ProfiledCompileControl = {},
): Promise<number> {
  const cancel = control.cancel;
  const compile: CompileStep = control.compile ?? (async (m, o, write) => runCompile(m, o, write));
  /** True (after saying so) when cancellation was requested: the caller returns 1. */
  const cancelled = (host: string) => {
    if (!cancel?.isCancellationRequested) return false;
    err(`profiling on ${host} cancelled`);
    return true;
  };
  const report = (e: unknown) => {
    if (!(e instanceof CompileError)) throw e;
    for (const d of e.diagnostics) err(formatDiagnostic(d));
    return 1;
  };
  if (opts.measurements?.length) {
    let measurements: MeasurementSource;
    try {
      measurements = fileSource(opts.measurements);
    } catch (e) {
      return report(e);
    }
    return await compile(model, { ...opts, measurementSource: measurements, profileWrite: opts.profileSources ? 'all' : undefined }, out);
  }
  if (!opts.profile && !opts.profiledOn)
    return await compile(model, { ...opts, profileWrite: opts.profileSources ? 'all' : undefined }, out);
  let cache: ProfileCache;
  try {
    cache = await openProfileCache(opts.profileCache);
  } catch (e) {
    return report(e);
  }
  try {
    if (opts.profiledOn) {
      const device = cachedDevice(cache, opts.profiledOn);
      err(`kernel choice from the profile cache (${cache.file}): ${deviceLabel(device)}`);
      return await compile(model, { ...opts, measurementSource: cacheSource(cache, device) }, out);
    }
    const host = opts.profile!;
    // 1. the profiler sources of every signature, and the host's cache key
    const first = await compile(model, { ...opts, force: true, json: false, profileWrite: 'all' }, (s) => err(s));
    if (first !== 0) return first;
    if (cancelled(host)) return 1;
    if (!fs.existsSync(path.join(outDir, 'profile', 'Makefile'))) {
      // no GEMM or convolution: the heuristic build just written is the final one
      err(`nothing to profile: the model has no GEMM or convolution with CUTLASS candidates`);
      return await compile(model, { ...opts, force: true, profileWrite: undefined }, out);
    }
    let session: RemoteSession | null = null;
    try {
      session = await openSession(host, control.sessionOptions ?? sessionOptions(opts, err));
      const gpus = (await session.hello()).gpus.map((g) => g.index);
      if (cancelled(host)) return 1;
      let synced = await session.sync(outDir);
      if (cancelled(host)) return 1;
      let built = await session.build(outDir, synced, (t) => err(t.replace(/\n$/, '')), { makeArgs: ['device_info'] });
      for (const d of built.result.diagnostics) err(formatDiagnostic(d));
      if (!built.result.ok) return 1;
      if (cancelled(host)) return 1;
      const [info] = await runJobJson(
        session,
        synced.buildName,
        'profile/device_info',
        [],
        gpus.length ? [gpus[0]] : undefined,
        err,
        cancel,
      );
      if (cancelled(host)) return 1;
      const key = deviceKeyOf((info?.json as { device?: unknown } | null)?.device);
      if (!info?.ok || !key) {
        for (const d of info?.diagnostics ?? []) err(formatDiagnostic(d));
        err(
          formatDiagnostic(
            error('profile.no-device', `${host}: profile/device_info printed no valid device (is there a CUDA GPU?)`, { host }),
          ),
        );
        return 1;
      }
      err(`profiling on ${host}: ${deviceLabel(key)}`);
      // 2. only what the cache lacks for this key
      const measured = cacheSource(cache, key);
      const second = await compile(
        model,
        { ...opts, force: true, json: false, measurementSource: measured, profileWrite: 'missing' },
        (s) => err(s),
      );
      if (second !== 0) return second;
      if (cancelled(host)) return 1;
      // the compile wrote profile/ only for signatures the cache lacks
      if (fs.existsSync(path.join(outDir, 'profile', 'Makefile'))) {
        synced = await session.sync(outDir);
        if (cancelled(host)) return 1;
        const t0 = Date.now();
        built = await session.build(outDir, synced, (t) => (opts.verbose ? err(t.replace(/\n$/, '')) : undefined), {
          makeArgs: ['profiler'],
        });
        for (const d of built.result.diagnostics) err(formatDiagnostic(d));
        if (!built.result.ok) return 1;
        if (cancelled(host)) return 1;
        const buildS = (Date.now() - t0) / 1000;
        const t1 = Date.now();
        const workers = Math.max(1, gpus.length);
        const results = await Promise.all(
          (gpus.length ? gpus : [undefined]).map((gpu, k) =>
            runJobJson(
              session!,
              synced.buildName,
              'profile/ait_profiler',
              ['--worker', String(k), '--workers', String(workers), '--iterations', String(opts.profileIterations ?? 10)],
              gpu === undefined ? undefined : [gpu],
              (t) => (opts.verbose ? err(`[gpu ${gpu ?? '-'}] ${t}`) : undefined),
              cancel,
            ),
          ),
        );
        if (cancelled(host)) return 1;
        let stored = 0;
        for (const [r] of results) {
          for (const d of r?.diagnostics ?? []) err(formatDiagnostic(d));
          if (!r?.ok || !r.json) {
            err(formatDiagnostic(error('profile.failed', `${host}: a profiler worker printed no results`, { host })));
            return 1;
          }
          const output = parseProfilerOutput(r.json, `${host}:profile/ait_profiler`);
          cache.store(output.device, output.measurements);
          stored += output.measurements.length;
        }
        err(
          `profiled on ${workers} GPU(s): build ${buildS.toFixed(0)} s, profiling ${((Date.now() - t1) / 1000).toFixed(0)} s, ${stored} measurements stored in ${cache.file}`,
        );
      } else err(`every GEMM/conv signature is in the profile cache for ${key.gpu}: nothing to profile`);
      if (cancelled(host)) return 1;
      // 3. the final build, every instance chosen from the measurements
      return await compile(model, { ...opts, force: true, measurementSource: cacheSource(cache, key), profileWrite: undefined }, out);
    } finally {
      session?.close();
    }
  } catch (e) {
    return report(e);
  } finally {
    await cache.close();
  }
}
