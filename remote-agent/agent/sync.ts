/**
 * `sync/plan` and `sync/commit`: a build directory mirrored by content hash. The client sends a manifest, the agent
 * answers which files it lacks (or has with other content), the client uploads those (SFTP, or a copy for the local
 * transport) under the returned directory, and `sync/commit` checks every file against the manifest.
 * Files present here but absent from the manifest are kept: they are usually build outputs that make reuses.
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

export function syncPlan(workDir: string, params: SyncPlanParams): SyncPlanResult {
  const buildDir = buildDirOf(workDir, params.buildName);
  // Every path is checked before anything is created: a refused manifest leaves no trace.
  const files = manifestFiles(buildDir, params);
  fs.mkdirSync(buildDir, { recursive: true });
  const needed: string[] = [];
  for (const [file, entry] of files) {
    if (sameContent(file, entry)) continue;
    needed.push(entry.path);
    fs.mkdirSync(path.dirname(file), { recursive: true });
  }
  return { buildDir, needed, unchangedCount: params.files.length - needed.length };
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
