/**
 * Path containment, shared by every policy that joins an untrusted string to a directory: the external data of a
 * model (onnx/external-data.ts), paths in agent requests (remote-agent/agent/paths.ts) and files named by a
 * graph.json or the graph view (extension/graph-session.ts). Each caller turns a refusal into its own error type.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Why `relative` is not a plain relative path, or undefined when it is: not empty, no NUL, not absolute (POSIX,
 * drive letter or UNC), no backslash, no '', '.' or '..' segment.
 */
export function plainRelativePathProblem(relative: unknown, root: string): string | undefined {
  if (typeof relative !== 'string') return 'is not a string';
  if (relative.length === 0) return 'is empty';
  if (relative.includes('\0')) return 'holds a NUL byte';
  if (path.posix.isAbsolute(relative) || path.win32.isAbsolute(relative) || /^[A-Za-z]:/.test(relative))
    return `is absolute: it must be relative to ${root}`;
  if (relative.includes('\\')) return "holds a backslash: separate directories with '/'";
  if (relative.split('/').includes('..')) return `leaves ${root} through '..'`;
  if (relative.split('/').some((p) => p === '' || p === '.')) return "is not a plain relative path (empty or '.' segments)";
  return undefined;
}

/** Whether `p` is `root` or below it (both absolute and resolved). */
export function isWithin(root: string, p: string): boolean {
  const r = path.relative(root, p);
  return r === '' || (!path.isAbsolute(r) && r !== '..' && !r.startsWith(`..${path.sep}`));
}

/**
 * The real path of `p`: that of its deepest part that exists (symlinks resolved), plus the rest. A symlink that
 * exists but leads nowhere throws ENOENT: following it would create its target, wherever that is.
 */
export function realpathOfExisting(p: string): string {
  const abs = path.resolve(p);
  let existing = abs;
  while (!lexists(existing)) {
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  return path.join(fs.realpathSync(existing), path.relative(existing, abs));
}

function lexists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw e;
  }
}

/**
 * `relative` joined to `root`, or the reason it may not be: not a plain relative path, or (symlinks resolved) it
 * leads outside `root` or through a dangling symlink.
 */
export function resolveInside(root: string, relative: unknown): { path: string } | { problem: string } {
  const problem = plainRelativePathProblem(relative, root);
  if (problem) return { problem };
  const target = path.join(root, ...(relative as string).split('/'));
  let real: string;
  try {
    real = realpathOfExisting(target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') return { problem: `goes through a symlink that leads nowhere inside ${root}` };
    throw e;
  }
  if (!isWithin(realpathOfExisting(root), real)) return { problem: `leaves ${root} through a symlink (it resolves to ${real})` };
  return { path: target };
}
