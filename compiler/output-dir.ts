/**
 * The output-directory policy: the one place that decides where a compile may write and what it may replace.
 *
 * A compile never deletes what it did not create:
 * - every compile output holds a marker file (`.ait-build.json`); an existing directory is replaced only when it
 *   holds that marker and the caller allows replacing (`--force`, or a default build path the tool owns);
 * - an existing directory without the marker is used only when it is empty; a file, a symbolic link, the file
 *   system root, the home directory, the current directory or one of its parents, or a directory holding the model
 *   itself are refused;
 * - output is written to a staging sibling (`<out>.tmp-<pid>-<time>`, marked as staging) and renamed into place at
 *   the end, so a failed or cancelled compile leaves the previous output as it was; a staging or retired directory
 *   left by a killed compile (its process is gone) is removed at the next compile into the same place.
 *
 * Errors are CompileErrors with `output.*` codes that name the directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CompileError, error } from './diagnostics';

/** The marker file of a compile output directory. */
export const BUILD_MARKER = '.ait-build.json';
/** The marker file of a staging (or retired) directory while a compile writes it. */
export const STAGING_MARKER = '.ait-staging';
export const BUILD_MARKER_FORMAT = 'ait-build';

export interface OutputPlan {
  /** Absolute output directory. */
  outDir: string;
  /** What is there now: nothing (or an empty directory), or a build of ours. */
  existing: 'none' | 'empty' | 'build';
}

export interface OutputPolicyOptions {
  /** Replace an existing build of ours (the CLI's --force; the extension's own build paths). */
  replace?: boolean;
  /** Files the output must not contain (the model, its external data): a directory holding one is refused. */
  protect?: string[];
}

function refuse(code: string, message: string, dir: string): never {
  throw new CompileError(error(code, message, { file: dir }));
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** Whether `dir` holds our build marker (a regular file with the right format). */
export function isOurBuild(dir: string): boolean {
  try {
    const marker = path.join(dir, BUILD_MARKER);
    if (!fs.lstatSync(marker).isFile()) return false;
    const json = JSON.parse(fs.readFileSync(marker, 'utf8')) as { format?: unknown };
    return json?.format === BUILD_MARKER_FORMAT;
  } catch {
    return false;
  }
}

/**
 * Checks that a compile may write `out` (before any work is done) and says what is there. Refuses with a clear
 * error otherwise.
 */
export function planOutputDir(out: string, options: OutputPolicyOptions = {}): OutputPlan {
  if (out.includes('\0')) refuse('output.bad-path', 'the output directory path holds a NUL character', JSON.stringify(out));
  const outDir = path.resolve(out);
  const real = realOrSelf(outDir);
  const forbidden = new Set([path.parse(outDir).root, os.homedir(), realOrSelf(os.homedir())].map((p) => path.resolve(p)));
  if (forbidden.has(outDir) || forbidden.has(real))
    refuse('output.forbidden', `refusing to write a build into ${outDir}: give a directory of its own with --out`, outDir);
  const cwd = realOrSelf(process.cwd());
  if (isInside(real, cwd))
    refuse(
      'output.forbidden',
      `refusing to write a build into ${outDir}: it is the current directory or one of its parents; give a directory of its own with --out`,
      outDir,
    );
  for (const file of options.protect ?? []) {
    if (file && isInside(real, realOrSelf(path.resolve(file))))
      refuse(
        'output.forbidden',
        `refusing to write a build into ${outDir}: it holds ${path.resolve(file)}, an input of this compile`,
        outDir,
      );
  }

  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(outDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') refuse('output.unwritable', `cannot use the output directory: ${(e as Error).message}`, outDir);
  }
  if (!stat) {
    checkCreatable(outDir);
    return { outDir, existing: 'none' };
  }
  if (stat.isSymbolicLink())
    refuse('output.symlink', `the output directory ${outDir} is a symbolic link; give the directory it points to, or another one`, outDir);
  if (!stat.isDirectory()) refuse('output.not-a-directory', `the output path ${outDir} exists and is not a directory`, outDir);
  let entries: string[];
  try {
    entries = fs.readdirSync(outDir);
  } catch (e) {
    refuse('output.unwritable', `cannot read the output directory: ${(e as Error).message}`, outDir);
  }
  checkWritable(path.dirname(outDir), outDir);
  if (entries.length === 0) return { outDir, existing: 'empty' };
  if (!isOurBuild(outDir))
    refuse(
      'output.not-ours',
      `the output directory ${outDir} is not empty and holds no earlier build (no ${BUILD_MARKER}); ` +
        `nothing is deleted that ait did not write: choose another --out, or empty it first`,
      outDir,
    );
  if (!options.replace)
    refuse('output.exists', `${outDir} holds an earlier build; pass --force to replace it, or choose another --out`, outDir);
  return { outDir, existing: 'build' };
}

/** The nearest existing ancestor must be a writable directory; the missing components are created later. */
function checkCreatable(outDir: string): void {
  let dir = path.dirname(outDir);
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') refuse('output.unwritable', `cannot create the output directory ${outDir}: ${(e as Error).message}`, outDir);
    }
    if (stat) {
      if (!stat.isDirectory())
        refuse('output.unwritable', `cannot create the output directory ${outDir}: ${dir} is not a directory`, outDir);
      checkWritable(dir, outDir);
      return;
    }
    const parent = path.dirname(dir);
    if (parent === dir) refuse('output.unwritable', `cannot create the output directory ${outDir}: no existing parent`, outDir);
    dir = parent;
  }
}

function checkWritable(dir: string, outDir: string): void {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    refuse('output.unwritable', `cannot write the output directory ${outDir}: ${dir} is not writable`, outDir);
  }
}

/** mkdir -p, one component at a time (a recursive mkdir on a pseudo file system such as /proc can spin). */
function makeDirs(dir: string, outDir: string): void {
  const missing: string[] = [];
  let d = path.resolve(dir);
  while (!fs.existsSync(d)) {
    missing.unshift(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const m of missing) {
    try {
      fs.mkdirSync(m);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        refuse('output.unwritable', `cannot create the output directory ${outDir}: ${(e as Error).message}`, outDir);
    }
  }
}

/** The staging and retired directories of `outDir` all start with this. */
export function stagingPrefix(outDir: string): string {
  return `${path.basename(path.resolve(outDir))}.`;
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

/**
 * Removes staging/retired siblings of `outDir` that we made: marked as staging, named `<out>.tmp|old-<pid>-<time>`,
 * and either left by a process that is gone or (with `pid`) by that process.
 */
export function removeStagingDirs(outDir: string, pid?: number): string[] {
  const dir = path.dirname(path.resolve(outDir));
  const prefix = stagingPrefix(outDir);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(tmp|old)-(\\d+)-\\d+$`);
  const removed: string[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const owner = Number(m[2]);
    if (pid !== undefined ? owner !== pid : processAlive(owner)) continue;
    const full = path.join(dir, name);
    try {
      if (!fs.lstatSync(full).isDirectory() || !fs.lstatSync(path.join(full, STAGING_MARKER)).isFile()) continue;
    } catch {
      continue;
    }
    fs.rmSync(full, { recursive: true, force: true });
    removed.push(full);
  }
  return removed;
}

/** Creates the staging directory of a compile into `outDir` (parents included), marked as ours. */
export function createStaging(plan: OutputPlan): string {
  makeDirs(path.dirname(plan.outDir), plan.outDir);
  removeStagingDirs(plan.outDir);
  const staging = `${plan.outDir}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.mkdirSync(staging);
    fs.writeFileSync(path.join(staging, STAGING_MARKER), '');
  } catch (e) {
    refuse('output.unwritable', `cannot create the staging directory ${staging}: ${(e as Error).message}`, plan.outDir);
  }
  return staging;
}

/** Removes a staging directory this compile made (after a failure or a cancel). */
export function discardStaging(staging: string): void {
  if (fs.existsSync(path.join(staging, STAGING_MARKER))) fs.rmSync(staging, { recursive: true, force: true });
}

export interface BuildMarker {
  format: typeof BUILD_MARKER_FORMAT;
  version: 1;
  model: string;
  target: string;
  createdAt: string;
}

/**
 * Moves a finished staging directory into place. What is at `outDir` was checked by planOutputDir; it is checked
 * again here (it may have changed while the compile ran), retired under a staging name, and removed only once the
 * new output is in place.
 */
export function commitStaging(staging: string, plan: OutputPlan, marker: Omit<BuildMarker, 'format' | 'version'>): void {
  fs.writeFileSync(path.join(staging, BUILD_MARKER), JSON.stringify({ format: BUILD_MARKER_FORMAT, version: 1, ...marker }, null, 1));
  fs.rmSync(path.join(staging, STAGING_MARKER), { force: true });
  const now = planOutputDir(plan.outDir, { replace: plan.existing === 'build' });
  let retired: string | undefined;
  if (now.existing === 'build') {
    retired = `${plan.outDir}.old-${process.pid}-${Date.now()}`;
    fs.writeFileSync(path.join(plan.outDir, STAGING_MARKER), '');
    fs.renameSync(plan.outDir, retired);
  } else if (now.existing === 'empty') {
    fs.rmdirSync(plan.outDir);
  }
  try {
    fs.renameSync(staging, plan.outDir);
  } catch (e) {
    if (retired) {
      fs.renameSync(retired, plan.outDir);
      fs.rmSync(path.join(plan.outDir, STAGING_MARKER), { force: true });
    }
    refuse('output.unwritable', `cannot move the build into ${plan.outDir}: ${(e as Error).message}`, plan.outDir);
  }
  if (retired) fs.rmSync(retired, { recursive: true, force: true });
}
