/**
 * The agent's one path policy. Every string from a client request that becomes part of a file path (build names,
 * sync manifest paths, verify's model path, profile's executable, job ids) is joined to the agent's directories by
 * insideRoot() and nowhere else, so nothing outside the work directory is written, deleted or run:
 *  - it must be a plain relative path: not empty, no NUL byte, not absolute, no backslash, no drive letter, no '',
 *    '.' or '..' segment;
 *  - the deepest part of it that exists already, symlinks resolved, must lie inside the root (itself resolved), so
 *    a symlink inside the root that leads out of it (or nowhere) is refused too.
 * The root itself (the agent's --work-dir) is chosen by whoever starts the agent, not by requests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentError } from './errors';

export interface InsideRootOptions {
  /** What the path is, for the message (default 'path'). */
  what?: string;
  /** The AgentError code (default 'path.outside-root'). */
  code?: string;
}

/** `relative` ('/'-separated, from a request) joined to `root`; throws an AgentError naming it when it may leave `root`. */
export function insideRoot(root: string, relative: string, options: InsideRootOptions = {}): string {
  const what = options.what ?? 'path';
  const refuse = (why: string): never => {
    throw new AgentError(options.code ?? 'path.outside-root', `${what} ${JSON.stringify(relative)} ${why}`, { file: root });
  };
  if (typeof relative !== 'string') return refuse('is not a string');
  if (relative.length === 0) refuse('is empty');
  if (relative.includes('\0')) refuse('holds a NUL byte');
  if (path.isAbsolute(relative) || path.win32.isAbsolute(relative) || /^[A-Za-z]:/.test(relative))
    refuse(`is absolute: it must be relative to ${root}`);
  if (relative.includes('\\')) refuse("holds a backslash: separate directories with '/'");
  const parts = relative.split('/');
  if (parts.includes('..')) refuse(`leaves ${root} through '..'`);
  if (parts.some((p) => p === '' || p === '.')) refuse("is not a plain relative path (empty or '.' segments)");

  const target = path.join(root, ...parts);
  const realRoot = realpathOfExisting(root);
  let real: string | null;
  try {
    real = realpathOfExisting(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ELOOP')
      return refuse(`goes through a symlink that leads nowhere inside ${root}`);
    throw e;
  }
  if (!isWithin(realRoot, real)) refuse(`leaves ${root} through a symlink (it resolves to ${real})`);
  return target;
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
function realpathOfExisting(p: string): string {
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
