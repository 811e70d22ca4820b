/**
 * The profile cache: kernel measurements kept across models and compiles, in one SQLite database file (sql.js, SQLite
 * compiled to WebAssembly: no native module, so the extension host can load it too).
 *
 * - A measurement is keyed by every field of its DeviceKey (GPU name, SM count, driver, CUDA, CUTLASS), its op
 *   signature, its candidate and its batch; another driver, CUDA or CUTLASS version or SM count finds nothing.
 * - The file is read once when opened; the session works on that copy in memory and writes the file on close, only
 *   if it changed: under a lock file (`<file>.lock`), it reads the file again, applies this session's stores and
 *   removals to what is there now (so two processes closing at once both keep their rows), writes a temporary
 *   sibling (`<file>.tmp-<pid>-<time>`) and renames it into place.
 * - A file that is not a profile cache (not SQLite, SQLite without our version table, damaged) or was written by a
 *   newer schema is refused with an error naming it, and left as it is. An empty file is taken as an empty cache.
 *
 * Errors are CompileErrors with `cache.*` codes that name the file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import initSqlJs from 'sql.js';
import type { Database, SqlJsStatic, SqlValue } from 'sql.js';
import { CompileError, error } from '../diagnostics';
import { type DeviceKey, MEASUREMENT_STATUSES, type Measurement, type MeasurementStatus } from './types';

export type { DeviceKey, Measurement, MeasurementStatus } from './types';

/** The `format` in the version table of every cache file. */
export const PROFILE_CACHE_FORMAT = 'ait-profile-cache';
/** The schema this build reads and writes; a file with a higher one is refused. */
export const PROFILE_CACHE_SCHEMA_VERSION = 1;
/** The lock file's format (a stale lock of ours is removed; anything else at that path is left alone). */
const LOCK_FORMAT = 'ait-profile-cache-lock';
/** How long close waits for another process's lock before giving up. */
const LOCK_WAIT_MS = 30_000;
/** A lock older than this is stale even if its process seems alive (pid reused, or another host on a shared disk). */
const LOCK_STALE_MS = 10 * 60_000;
/** The file name of sql.js's WebAssembly module; the build copies it next to the bundles in dist/. */
export const SQL_WASM_FILE = 'sql-wasm.wasm';

export interface DeviceSummary {
  device: DeviceKey;
  /** Distinct op signatures measured on it. */
  signatures: number;
  measurements: number;
  /** The newest measurement's time (ISO 8601). */
  updated: string;
}

export interface PruneFilter {
  /** Only rows of devices whose given fields equal these. */
  device?: Partial<DeviceKey>;
  /** Only rows stored more than this many days ago. */
  olderThanDays?: number;
  /** Needed to prune with neither of the above: every row. */
  all?: boolean;
}

export interface ProfileCache {
  /** The cache file (absolute; symbolic links resolved). */
  readonly file: string;
  /** Every measurement of this signature on exactly this device (all key fields equal), by candidate and batch. */
  lookup(device: DeviceKey, signature: string): Measurement[];
  /** Every measurement on exactly this device. */
  measurementsOf(device: DeviceKey): Measurement[];
  /** Stores measurements, each replacing the one with the same device, signature, candidate and batch. */
  store(device: DeviceKey, measurements: readonly Measurement[]): void;
  devices(): DeviceKey[];
  list(): DeviceSummary[];
  /** Removes the rows the filter selects (its conditions all hold); returns how many. */
  prune(filter: PruneFilter): number;
  /** Writes the file (merged with what other processes wrote meanwhile) if this session changed it. */
  close(): Promise<void>;
}

export interface ProfileCacheOptions {
  /** The clock (tests): milliseconds since the epoch. */
  now?: () => number;
}

/** $AIT_PROFILE_CACHE, else $XDG_CACHE_HOME/ait-studio/profiles.sqlite, else ~/.cache/ait-studio/profiles.sqlite. */
export function defaultProfileCachePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AIT_PROFILE_CACHE) return path.resolve(env.AIT_PROFILE_CACHE);
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'ait-studio', 'profiles.sqlite');
}

function refuse(code: string, message: string, file: string): never {
  throw new CompileError(error(code, message, { file }));
}

// ---------------------------------------------------------------------------------------------------------------
// sql.js

let sqlJs: Promise<SqlJsStatic> | undefined;

/** Where sql-wasm.wasm is: next to the bundle (dist/), else in the sql.js package (running from source). */
export function findSqlWasm(): string | undefined {
  const candidates = [path.join(__dirname, SQL_WASM_FILE)];
  try {
    candidates.push(require.resolve(`sql.js/dist/${SQL_WASM_FILE}`));
  } catch {
    // no node_modules: a bundle without the wasm beside it
  }
  return candidates.find((c) => fs.existsSync(c));
}

function loadSqlJs(): Promise<SqlJsStatic> {
  if (!sqlJs) {
    const wasm = findSqlWasm();
    if (!wasm)
      refuse(
        'cache.no-sqlite',
        `SQLite's WebAssembly module (${SQL_WASM_FILE}) is missing: it belongs next to ${path.basename(__filename)} (the build copies it to dist/)`,
        path.join(__dirname, SQL_WASM_FILE),
      );
    const bytes = fs.readFileSync(wasm);
    sqlJs = initSqlJs({ wasmBinary: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
    sqlJs.catch(() => (sqlJs = undefined));
  }
  return sqlJs;
}

// ---------------------------------------------------------------------------------------------------------------
// the file

const SCHEMA = `
CREATE TABLE schema_version (format TEXT NOT NULL, version INTEGER NOT NULL);
INSERT INTO schema_version VALUES ('${PROFILE_CACHE_FORMAT}', ${PROFILE_CACHE_SCHEMA_VERSION});
CREATE TABLE measurements (
  gpu TEXT NOT NULL, sms INTEGER NOT NULL, driver TEXT NOT NULL, cuda TEXT NOT NULL, cutlass TEXT NOT NULL,
  signature TEXT NOT NULL, candidate TEXT NOT NULL, batch INTEGER NOT NULL,
  status TEXT NOT NULL, median_us REAL, config TEXT, message TEXT,
  updated INTEGER NOT NULL,
  PRIMARY KEY (gpu, sms, driver, cuda, cutlass, signature, candidate, batch)
);
`;

const SQLITE_HEADER = 'SQLite format 3\0';
const KEY_COLUMNS = ['gpu', 'sms', 'driver', 'cuda', 'cutlass', 'signature', 'candidate', 'batch'] as const;

function resolveCacheFile(file: string): string {
  const abs = path.resolve(file);
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      refuse('cache.unreadable', `cannot read the profile cache: ${(e as Error).message}`, abs);
  }
  if (!stat?.isSymbolicLink()) return abs;
  try {
    return fs.realpathSync(abs);
  } catch (e) {
    refuse('cache.unreadable', `the profile cache is a symbolic link that leads nowhere: ${(e as Error).message}`, abs);
  }
}

/** Reads the cache file into an in-memory database: a new one when the file is absent or empty. */
function readCacheFile(SQL: SqlJsStatic, file: string): Database {
  let bytes: Buffer | undefined;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) refuse('cache.not-a-file', `the profile cache path ${file} exists and is not a file`, file);
    bytes = fs.readFileSync(file);
  } catch (e) {
    if (e instanceof CompileError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      refuse('cache.unreadable', `cannot read the profile cache: ${(e as Error).message}`, file);
  }
  if (!bytes || bytes.length === 0) {
    const db = new SQL.Database();
    db.run(SCHEMA);
    return db;
  }
  const leaveIt = 'it is left as it is: move it away, or give another file with --cache or AIT_PROFILE_CACHE';
  if (bytes.length < 100 || bytes.subarray(0, 16).toString('latin1') !== SQLITE_HEADER)
    refuse('cache.not-a-cache', `${file} is not an AIT profile cache (not an SQLite database); ${leaveIt}`, file);
  let db: Database | undefined;
  try {
    db = new SQL.Database(bytes);
    const check = db.exec('PRAGMA quick_check');
    const verdict = check[0]?.values.map((r) => String(r[0])) ?? [];
    if (verdict.join() !== 'ok') throw new Error(verdict.slice(0, 3).join('; ') || 'integrity check failed');
    const hasVersion = db.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").length > 0;
    if (!hasVersion)
      refuse('cache.not-a-cache', `${file} is an SQLite database but not an AIT profile cache (no schema_version table); ${leaveIt}`, file);
    const rows = db.exec('SELECT format, version FROM schema_version')[0]?.values ?? [];
    const [format, version] = rows[0] ?? [];
    if (rows.length !== 1 || format !== PROFILE_CACHE_FORMAT)
      refuse(
        'cache.not-a-cache',
        `${file} is an SQLite database but not an AIT profile cache (format ${JSON.stringify(format ?? null)}); ${leaveIt}`,
        file,
      );
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1)
      refuse('cache.corrupt', `${file} has a bad schema version (${JSON.stringify(version)}); ${leaveIt}`, file);
    if (version > PROFILE_CACHE_SCHEMA_VERSION)
      refuse(
        'cache.newer',
        `${file} was written by a newer ait (profile cache schema version ${version}; this one reads ${PROFILE_CACHE_SCHEMA_VERSION}): ` +
          `upgrade ait, or give another file with --cache or AIT_PROFILE_CACHE`,
        file,
      );
    return db;
  } catch (e) {
    db?.close();
    if (e instanceof CompileError) throw e;
    refuse('cache.corrupt', `${file} is a damaged profile cache (SQLite: ${(e as Error).message}); ${leaveIt}`, file);
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Takes `<file>.lock` (created exclusively); removes a stale lock of ours; waits for a live one. Returns its release. */
async function acquireLock(file: string): Promise<() => void> {
  const lock = `${file}.lock`;
  const start = Date.now();
  let holder = '';
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(lock, 'wx');
      try {
        fs.writeSync(fd, JSON.stringify({ format: LOCK_FORMAT, pid: process.pid, host: os.hostname(), created: new Date().toISOString() }));
      } finally {
        fs.closeSync(fd);
      }
      return () => fs.rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        refuse('cache.unwritable', `cannot create the lock file ${lock}: ${(e as Error).message}`, file);
    }
    try {
      const stat = fs.lstatSync(lock);
      const info = JSON.parse(fs.readFileSync(lock, 'utf8')) as { format?: unknown; pid?: unknown; host?: unknown };
      if (stat.isFile() && info.format === LOCK_FORMAT && typeof info.pid === 'number') {
        holder = ` (pid ${info.pid}${typeof info.host === 'string' ? ` on ${info.host}` : ''})`;
        const dead = info.host === os.hostname() && !processAlive(info.pid);
        if (dead || Date.now() - stat.mtimeMs > LOCK_STALE_MS) {
          fs.rmSync(lock, { force: true });
          continue;
        }
      }
    } catch {
      // being written or just removed: look again
    }
    if (Date.now() - start > LOCK_WAIT_MS)
      refuse(
        'cache.locked',
        `another process holds the profile cache's lock ${lock}${holder}; if no ait is running, remove that file`,
        file,
      );
    await sleep(Math.min(10 + attempt * 10, 200));
  }
}

/** Removes temporary files of this cache left by processes that are gone (only our pattern, only regular files). */
function removeStaleTemps(file: string): void {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-\d+$/.exec(name.slice(prefix.length));
    if (!m || processAlive(Number(m[1]))) continue;
    const full = path.join(dir, name);
    try {
      if (fs.lstatSync(full).isFile()) fs.rmSync(full);
    } catch {
      // gone already
    }
  }
}

/** Writes `bytes` to a temporary sibling and renames it over `file`. */
function writeAtomically(file: string, bytes: Uint8Array): void {
  const temp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = fs.openSync(temp, 'wx', 0o644);
    try {
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    refuse('cache.unwritable', `cannot write the profile cache: ${(e as Error).message}`, file);
  }
}

function makeParentDirs(file: string): void {
  const missing: string[] = [];
  for (let d = path.dirname(file); !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        refuse('cache.unwritable', `cannot create the profile cache's directory ${d}: ${(e as Error).message}`, file);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// rows

interface Row {
  gpu: string;
  sms: number;
  driver: string;
  cuda: string;
  cutlass: string;
  signature: string;
  candidate: string;
  batch: number;
  status: MeasurementStatus;
  median_us: number | null;
  config: string | null;
  message: string | null;
  updated: number;
}

type Key = Pick<Row, (typeof KEY_COLUMNS)[number]>;

/** What this session did, replayed on the file as it is at close. */
type Op = { kind: 'put'; row: Row } | { kind: 'delete'; key: Key; updated: number };

function checkDevice(device: DeviceKey): void {
  for (const f of ['gpu', 'driver', 'cuda', 'cutlass'] as const)
    if (typeof device?.[f] !== 'string')
      throw new TypeError(`profile cache: device.${f} must be a string, got ${JSON.stringify(device?.[f])}`);
  if (!Number.isInteger(device.sms) || device.sms < 0)
    throw new TypeError(`profile cache: device.sms must be a non-negative integer, got ${device.sms}`);
}

function toRow(device: DeviceKey, m: Measurement, updated: number): Row {
  if (typeof m.signature !== 'string' || typeof m.candidate !== 'string')
    throw new TypeError('profile cache: a measurement needs a signature and a candidate (strings)');
  if (!Number.isInteger(m.batch) || m.batch < 1) throw new TypeError(`profile cache: batch must be a positive integer, got ${m.batch}`);
  if (!MEASUREMENT_STATUSES.includes(m.status)) throw new TypeError(`profile cache: unknown status ${JSON.stringify(m.status)}`);
  if (m.medianUs !== undefined && !Number.isFinite(m.medianUs))
    throw new TypeError(`profile cache: medianUs must be finite, got ${m.medianUs}`);
  return {
    gpu: device.gpu,
    sms: device.sms,
    driver: device.driver,
    cuda: device.cuda,
    cutlass: device.cutlass,
    signature: m.signature,
    candidate: m.candidate,
    batch: m.batch,
    status: m.status,
    median_us: m.medianUs ?? null,
    config: m.config === undefined ? null : JSON.stringify(m.config),
    message: m.message ?? null,
    updated,
  };
}

function fromRow(r: Record<string, SqlValue>): Measurement {
  const m: Measurement = {
    signature: String(r.signature),
    candidate: String(r.candidate),
    batch: Number(r.batch),
    status: String(r.status) as MeasurementStatus,
  };
  if (r.median_us !== null) m.medianUs = Number(r.median_us);
  if (r.config !== null) {
    try {
      m.config = JSON.parse(String(r.config)) as Record<string, unknown>;
    } catch {
      // a config that does not parse is dropped, the measurement stays
    }
  }
  if (r.message !== null) m.message = String(r.message);
  return m;
}

function query(db: Database, sql: string, params: SqlValue[] = []): Record<string, SqlValue>[] {
  const stmt = db.prepare(sql);
  try {
    stmt.bind(params);
    const rows: Record<string, SqlValue>[] = [];
    while (stmt.step()) rows.push(stmt.getAsObject());
    return rows;
  } finally {
    stmt.free();
  }
}

const ROW_COLUMNS = [...KEY_COLUMNS, 'status', 'median_us', 'config', 'message', 'updated'] as const;
const KEY_WHERE = KEY_COLUMNS.map((c) => `${c} = ?`).join(' AND ');
const keyParams = (k: Key): SqlValue[] => KEY_COLUMNS.map((c) => k[c]);

/** Puts a row unless the one there is newer (so the newest measurement wins, whichever process closes last). */
function applyOp(db: Database, op: Op): void {
  if (op.kind === 'put') {
    db.run(`DELETE FROM measurements WHERE ${KEY_WHERE} AND updated <= ?`, [...keyParams(op.row), op.row.updated]);
    db.run(
      `INSERT OR IGNORE INTO measurements (${ROW_COLUMNS.join(', ')}) VALUES (${ROW_COLUMNS.map(() => '?').join(', ')})`,
      ROW_COLUMNS.map((c) => op.row[c]),
    );
  } else {
    // a removal does not take a row that another process stored after this session saw it
    db.run(`DELETE FROM measurements WHERE ${KEY_WHERE} AND updated <= ?`, [...keyParams(op.key), op.updated]);
  }
}

const DEVICE_COLUMNS = ['gpu', 'sms', 'driver', 'cuda', 'cutlass'] as const;

class SqliteProfileCache implements ProfileCache {
  private ops: Op[] = [];
  private closed = false;

  constructor(
    readonly file: string,
    private readonly SQL: SqlJsStatic,
    private db: Database,
    private readonly now: () => number,
  ) {}

  private open(): Database {
    if (this.closed) throw new Error(`profile cache ${this.file} is closed`);
    return this.db;
  }

  lookup(device: DeviceKey, signature: string): Measurement[] {
    checkDevice(device);
    const rows = query(
      this.open(),
      `SELECT * FROM measurements WHERE ${DEVICE_COLUMNS.map((c) => `${c} = ?`).join(' AND ')} AND signature = ? ORDER BY candidate, batch`,
      [...DEVICE_COLUMNS.map((c) => device[c]), signature],
    );
    return rows.map(fromRow);
  }

  measurementsOf(device: DeviceKey): Measurement[] {
    checkDevice(device);
    const rows = query(
      this.open(),
      `SELECT * FROM measurements WHERE ${DEVICE_COLUMNS.map((c) => `${c} = ?`).join(' AND ')} ORDER BY signature, candidate, batch`,
      DEVICE_COLUMNS.map((c) => device[c]),
    );
    return rows.map(fromRow);
  }

  store(device: DeviceKey, measurements: readonly Measurement[]): void {
    checkDevice(device);
    const db = this.open();
    const updated = this.now();
    const rows = measurements.map((m) => toRow(device, m, updated));
    db.run('BEGIN');
    try {
      for (const row of rows) {
        const op: Op = { kind: 'put', row };
        applyOp(db, op);
        this.ops.push(op);
      }
      db.run('COMMIT');
    } catch (e) {
      db.run('ROLLBACK');
      throw e;
    }
  }

  devices(): DeviceKey[] {
    return this.list().map((s) => s.device);
  }

  list(): DeviceSummary[] {
    const rows = query(
      this.open(),
      `SELECT ${DEVICE_COLUMNS.join(', ')}, COUNT(DISTINCT signature) AS signatures, COUNT(*) AS measurements, MAX(updated) AS updated
       FROM measurements GROUP BY ${DEVICE_COLUMNS.join(', ')} ORDER BY ${DEVICE_COLUMNS.join(', ')}`,
    );
    return rows.map((r) => ({
      device: { gpu: String(r.gpu), sms: Number(r.sms), driver: String(r.driver), cuda: String(r.cuda), cutlass: String(r.cutlass) },
      signatures: Number(r.signatures),
      measurements: Number(r.measurements),
      updated: new Date(Number(r.updated)).toISOString(),
    }));
  }

  prune(filter: PruneFilter): number {
    const db = this.open();
    const where: string[] = [];
    const params: SqlValue[] = [];
    for (const c of DEVICE_COLUMNS) {
      const v = filter.device?.[c];
      if (v === undefined) continue;
      where.push(`${c} = ?`);
      params.push(v);
    }
    if (filter.olderThanDays !== undefined) {
      if (!Number.isFinite(filter.olderThanDays) || filter.olderThanDays < 0)
        throw new TypeError(`profile cache: olderThanDays must be a non-negative number, got ${filter.olderThanDays}`);
      where.push('updated < ?');
      params.push(this.now() - filter.olderThanDays * 86_400_000);
    }
    if (where.length === 0 && !filter.all) throw new TypeError('profile cache: prune needs a device, an age, or all');
    const rows = query(
      db,
      `SELECT ${KEY_COLUMNS.join(', ')}, updated FROM measurements${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`,
      params,
    );
    db.run('BEGIN');
    for (const r of rows) {
      const op: Op = { kind: 'delete', key: r as unknown as Key, updated: Number(r.updated) };
      applyOp(db, op);
      this.ops.push(op);
    }
    db.run('COMMIT');
    return rows.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.ops.length > 0) {
      // on failure the session stays open, so close can be called again
      makeParentDirs(this.file);
      const release = await acquireLock(this.file);
      try {
        removeStaleTemps(this.file);
        const db = readCacheFile(this.SQL, this.file);
        try {
          db.run('BEGIN');
          for (const op of this.ops) applyOp(db, op);
          db.run('COMMIT');
          writeAtomically(this.file, db.export());
        } finally {
          db.close();
        }
      } finally {
        release();
      }
    }
    this.closed = true;
    this.ops = [];
    this.db.close();
  }
}

/** Opens the profile cache (default: defaultProfileCachePath()); nothing is written until close. */
export async function openProfileCache(file?: string, options: ProfileCacheOptions = {}): Promise<ProfileCache> {
  const resolved = resolveCacheFile(file ?? defaultProfileCachePath());
  const SQL = await loadSqlJs();
  return new SqliteProfileCache(resolved, SQL, readCacheFile(SQL, resolved), options.now ?? Date.now);
}
