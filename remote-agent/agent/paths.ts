/**
 * The agent's one path policy. Every string from a client request that becomes part of a file path (build names,
 * sync manifest paths, verify's model path, profile's executable, job ids) is joined to the agent's directories by
 * insideRoot() (on compiler/paths.ts) and nowhere else, so nothing outside the work directory is written, deleted or run:
 *  - it must be a plain relative path: not empty, no NUL byte, not absolute, no backslash, no drive letter, no '',
 *    '.' or '..' segment;
 *  - the deepest part of it that exists already, symlinks resolved, must lie inside the root (itself resolved), so
 *    a symlink inside the root that leads out of it (or nowhere) is refused too.
 * The root itself (the agent's --work-dir) is chosen by whoever starts the agent, not by requests.
 */
import { AgentError } from './errors';
import { resolveInside } from '../../compiler/paths';

export interface InsideRootOptions {
  /** What the path is, for the message (default 'path'). */
  what?: string;
  /** The AgentError code (default 'path.outside-root'). */
  code?: string;
}

/** `relative` ('/'-separated, from a request) joined to `root`; throws an AgentError naming it when it may leave `root`. */
export function insideRoot(root: string, relative: string, options: InsideRootOptions = {}): string {
  const r = resolveInside(root, relative);
  if ('problem' in r)
    throw new AgentError(options.code ?? 'path.outside-root', `${options.what ?? 'path'} ${JSON.stringify(relative)} ${r.problem}`, {
      file: root,
    });
  return r.path;
}
