/**
 * `sync/plan` and `sync/commit`: a build directory mirrored by content hash. The client sends a manifest, the agent
 * answers which files it lacks (or has with other content), the client uploads those (SFTP, or a copy for the local
 * transport) under the returned directory, and `sync/commit` checks every file against the manifest.
 *
 * The build directory mirrors the client's directory, so that no stale file can change a result. `sync/plan` records
 * the manifest it was given (WORK/sync/<buildName>.json, outside the build directory) and, before anything is sent:
 * - removes every file of the previous manifest that the new one no longer has;
 * - when the Makefile is new or changed (another model: it names the library and every source), or there is no
 *   record (a directory synced by an older agent), removes everything else that is not in the manifest too: the
 *   build outputs of `make` (build/ objects, lib<name>.so, ait_bench), so make starts clean and no library of an
 *   earlier model stays. With the same Makefile, build outputs are kept: make rebuilds what changed.
 * Removal walks the build directory without following symlinks (a symlink is removed, never its target) and never
 * leaves it; emptied directories go too.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SyncCommitResult, SyncFileEntry, SyncPlanParams, SyncPlanResult } from '../protocol';
import { AgentError } from './errors';
import { insideRoot } from './paths';

/** WORK/builds/<buildName>: one path segment, inside WORK/builds (insideRoot). */
export function buildDirOf(workDir: string, buildName: string): string {
  if (typeof buildName !== 'string' || !/^[A-Za-z0-9._-]+$/.test(buildName) || buildName === '.' || buildName === '..') {
    throw new AgentError('sync.bad-name', `build name '${String(buildName)}' may only hold letters, digits, '.', '_' and '-'`);
  }
  return insideRoot(workDir, `builds/${buildName}`, { what: 'build directory', code: 'sync.bad-name' });
}

/** A manifest path as a safe absolute path inside `buildDir`. */
function resolveInside(buildDir: string, rel: string): string {
  return insideRoot(buildDir, rel, { what: 'manifest path', code: 'sync.bad-path' });
}

/** The manifest's entries with their paths inside `buildDir` (each checked by insideRoot). */
function manifestFiles(buildDir: string, params: SyncPlanParams): [string, SyncFileEntry][] {
  if (!Array.isArray(params.files)) throw new AgentError('sync.bad-manifest', 'the sync manifest must be a list of files');
  return params.files.map((entry) => [resolveInside(buildDir, entry?.path), entry]);
}

export function sha256File(file: string): string | null {
  try {
    return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function sameContent(file: string, entry: SyncFileEntry): boolean {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    return false;
  }
  return size === entry.sizeBytes && sha256File(file) === entry.sha256;
}

/** What the previous sync of a build directory was given: path → sha256. */
interface SyncRecord {
  files: Record<string, string>;
}

function recordFileOf(workDir: string, buildName: string): string {
  return insideRoot(workDir, `sync/${buildName}.json`, { what: 'sync record', code: 'sync.bad-name' });
}

/** The previous manifest (path → sha256), or null when there is none (or it does not parse). */
function readRecord(file: string): Map<string, string> | null {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as SyncRecord;
    return r && typeof r.files === 'object' && r.files !== null ? new Map(Object.entries(r.files)) : null;
  } catch {
    return null;
  }
}

/**
 * Removes from `buildDir` what the manifest `keep` (path → sha256) no longer has: the files of `previous`, and with
 * `clean` every other file (build outputs). Returns the removed paths ('/'-separated, sorted).
 */
function removeStale(buildDir: string, keep: Map<string, string>, previous: Map<string, string> | null, clean: boolean): string[] {
  const removed: string[] = [];
  // Directories that manifest files need: a file (or symlink) there is in the way.
  const neededDirs = new Set<string>();
  for (const p of keep.keys()) for (let d = path.posix.dirname(p); d !== '.'; d = path.posix.dirname(d)) neededDirs.add(d);
  const walk = (rel: string): boolean => {
    // returns whether the directory is empty afterwards
    const dir = rel ? path.join(buildDir, ...rel.split('/')) : buildDir;
    let left = 0;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        // a real directory (readdir does not follow symlinks); one where the manifest wants a file goes whole
        if (keep.has(relPath)) {
          fs.rmSync(full, { recursive: true, force: true });
          removed.push(`${relPath}/`);
        } else if (walk(relPath) && !neededDirs.has(relPath)) {
          fs.rmdirSync(full);
        } else left++;
        continue;
      }
      const stale = !keep.has(relPath) && (clean || neededDirs.has(relPath) || previous?.has(relPath) === true);
      if (stale) {
        fs.unlinkSync(full); // a symlink itself, never its target
        removed.push(relPath);
      } else left++;
    }
    return left === 0;
  };
  if (fs.existsSync(buildDir)) walk('');
  return removed.sort();
}

export function syncPlan(workDir: string, params: SyncPlanParams): SyncPlanResult {
  const buildDir = buildDirOf(workDir, params.buildName);
  // Every path is checked before anything is created: a refused manifest leaves no trace.
  const files = manifestFiles(buildDir, params);
  const recordFile = recordFileOf(workDir, params.buildName);
  const previous = readRecord(recordFile);
  const keep = new Map(files.map(([, entry]) => [entry.path, entry.sha256]));
  const clean = previous === null || previous.get('Makefile') !== keep.get('Makefile');
  const removed = removeStale(buildDir, keep, previous, clean);
  // Recorded before any upload: files of an interrupted sync are known to the next one.
  fs.mkdirSync(path.dirname(recordFile), { recursive: true });
  fs.writeFileSync(recordFile, JSON.stringify({ files: Object.fromEntries(keep) } satisfies SyncRecord) + '\n');
  fs.mkdirSync(buildDir, { recursive: true });
  const needed: string[] = [];
  for (const [file, entry] of files) {
    if (sameContent(file, entry)) continue;
    needed.push(entry.path);
    fs.mkdirSync(path.dirname(file), { recursive: true });
  }
  return { buildDir, needed, unchangedCount: params.files.length - needed.length, removed, cleaned: clean && removed.length > 0 };
}

export function syncCommit(workDir: string, params: SyncPlanParams): SyncCommitResult {
  const buildDir = buildDirOf(workDir, params.buildName);
  const mismatched: string[] = [];
  for (const [file, entry] of manifestFiles(buildDir, params)) {
    if (!sameContent(file, entry)) {
      mismatched.push(entry.path);
      continue;
    }
    if ((fs.statSync(file).mode & 0o777) !== (entry.mode & 0o777)) fs.chmodSync(file, entry.mode & 0o777);
  }
  return { buildDir, mismatched };
}
