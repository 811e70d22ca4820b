/** Bundles remote-agent/main.ts the way scripts/build.mjs does, into a temp dir, so tests run the current sources. */
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..', '..');
let bundled: string | null = null;

export async function agentBundle(): Promise<string> {
  if (bundled) return bundled;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-agent-bundle-'));
  const outfile = path.join(dir, 'agent.js');
  // The agent builds the native binding from sources carried inside the bundle, as in dist/agent.js.
  const { nativeSourcesPlugin } = await import('../../../scripts/native-sources-plugin.mjs');
  // and writes module_times.py carried inline
  const { embeddedScriptsPlugin } = await import('../../../scripts/embedded-scripts-plugin.mjs');
  await esbuild.build({
    entryPoints: [path.join(REPO, 'remote-agent', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    logLevel: 'error',
    external: ['cpu-features', '*.node'],
    plugins: [nativeSourcesPlugin, embeddedScriptsPlugin],
  });
  bundled = outfile;
  return outfile;
}

export const FIXTURES = path.join(__dirname, '..', 'fixtures');

/** A fresh copy of a fixture build directory (tests edit their copy). */
export function fixtureCopy(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ait-${name}-`));
  fs.cpSync(path.join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

/** Waits until `predicate` holds, polling every 50 ms, at most `timeoutMs`. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Whether process `pid` still runs. A zombie has ended: a killed orphan waits there until its new parent reaps it, and
 * a container's PID 1 may never do that.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) state …"; comm may hold spaces and parentheses, the state follows the last ')'
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): signal 0 succeeded
  }
}
