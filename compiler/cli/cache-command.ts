/** `ait cache list|prune`: the profile cache of kernel measurements (compiler/profiling/cache.ts). */
import * as fs from 'node:fs';
import { fail } from '../diagnostics';
import { type DeviceKey, openProfileCache, type ProfileCache } from '../profiling/cache';
import { table } from './format';

export interface CacheListOptions {
  json?: boolean;
  cache?: string;
}

export interface CachePruneOptions {
  /** Only devices whose GPU name holds this (case-insensitive). */
  device?: string;
  /** Only measurements stored more than this many days ago. */
  olderThan?: number;
  all?: boolean;
  cache?: string;
  json?: boolean;
}

/** `--older-than DAYS`: a non-negative number of days. */
export function parseDays(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`--older-than takes a non-negative number of days, got '${v}'`);
  return n;
}

async function withCache<T>(file: string | undefined, use: (cache: ProfileCache) => T): Promise<T> {
  const cache = await openProfileCache(file);
  let result: T;
  try {
    result = use(cache);
  } catch (e) {
    // nothing written: the session is dropped
    await cache.close().catch(() => {});
    throw e;
  }
  await cache.close();
  return result;
}

export async function runCacheList(options: CacheListOptions, out: (s: string) => void): Promise<number> {
  const { file, devices } = await withCache(options.cache, (cache) => ({ file: cache.file, devices: cache.list() }));
  if (options.json) {
    out(JSON.stringify({ file, devices }, null, 2));
    return 0;
  }
  if (devices.length === 0) {
    out(`profile cache ${file}: no measurements${fs.existsSync(file) ? '' : ' (no file yet)'}`);
    return 0;
  }
  out(`profile cache ${file}`);
  out('');
  out(
    table(
      devices.map((d) => [
        d.device.gpu,
        String(d.device.sms),
        d.device.driver,
        d.device.cuda,
        d.device.cutlass,
        String(d.signatures),
        String(d.measurements),
        d.updated.replace(/\.\d+Z$/, 'Z'),
      ]),
      ['GPU', 'SMs', 'driver', 'CUDA', 'CUTLASS', 'signatures', 'measurements', 'last update'],
    ),
  );
  return 0;
}

export async function runCachePrune(options: CachePruneOptions, out: (s: string) => void): Promise<number> {
  if (options.device === undefined && options.olderThan === undefined && !options.all)
    fail('cli.bad-option', 'cache prune needs --device GPU, --older-than DAYS or --all (see ait cache prune --help)');
  if (options.device !== undefined && options.device.trim() === '')
    fail('cli.bad-option', '--device takes a part of a GPU name, got an empty string');
  const result = await withCache(options.cache, (cache) => {
    const needle = options.device?.toLowerCase();
    const devices: (DeviceKey | undefined)[] =
      needle === undefined ? [undefined] : cache.devices().filter((d) => d.gpu.toLowerCase().includes(needle));
    let removed = 0;
    for (const device of devices) removed += cache.prune({ device, olderThanDays: options.olderThan, all: true });
    const left = cache.list().reduce((n, d) => n + d.measurements, 0);
    return { file: cache.file, removed, left, devicesMatched: needle === undefined ? undefined : devices.length };
  });
  if (options.json) {
    out(JSON.stringify(result, null, 2));
    return 0;
  }
  if (result.devicesMatched === 0) out(`no device in ${result.file} has a GPU name holding '${options.device}'`);
  out(`removed ${result.removed} measurement${result.removed === 1 ? '' : 's'} from ${result.file}; ${result.left} left`);
  return 0;
}
