/**
 * POSIX shell quoting for remote commands (an SSH exec request is one string that the remote user's shell parses).
 * Every argument goes through `shellQuote`; no remote command is built by pasting unquoted text.
 */

/** One argument as a single-quoted word: 'it'\''s' — safe for any byte sequence except NUL. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('a shell argument cannot contain a NUL byte');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command line from argv, every word quoted. */
export function shellCommand(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}
