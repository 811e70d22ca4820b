/** `--remote local`: the agent as a child process of this one, no SSH; same client API. */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AgentStreams, ExecResult, Transport } from './transport';

export class LocalTransport implements Transport {
  readonly hostLabel = 'local';
  private disconnectListeners: ((reason: string) => void)[] = [];
  private closing = false;

  exec(argv: string[], timeoutMs: number): Promise<ExecResult> {
    return new Promise((resolve) => {
      execFile(argv[0], argv.slice(1), { cwd: os.homedir(), timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
        // Like a shell: 127 when the program is not there.
        const exitCode = !e ? 0 : e.code === 'ENOENT' ? 127 : typeof e.code === 'number' ? e.code : null;
        resolve({ exitCode, stdout, stderr });
      });
    });
  }

  async upload(localFile: string, remotePath: string, mode: number): Promise<void> {
    const target = path.resolve(os.homedir(), remotePath);
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    await fs.promises.copyFile(localFile, target);
    await fs.promises.chmod(target, mode);
  }

  async exists(remotePath: string): Promise<boolean> {
    return fs.existsSync(path.resolve(os.homedir(), remotePath));
  }

  async provisionAgent(localBundle: string): Promise<string> {
    return localBundle;
  }

  async startAgent(argv: string[]): Promise<AgentStreams> {
    // Like an SSH session: relative paths (the work directory) are relative to the home directory.
    const child = spawn(argv[0], argv.slice(1), { cwd: os.homedir(), stdio: ['pipe', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.on('exit', (code, signal) => {
      if (!this.closing) for (const l of this.disconnectListeners) l(`agent exited (code ${code}, signal ${signal})`);
    });
    return {
      output: child.stdout,
      input: child.stdin,
      stderr: child.stderr,
      close: () => child.stdin.end(),
    };
  }

  onDisconnect(listener: (reason: string) => void): void {
    this.disconnectListeners.push(listener);
  }

  close(): void {
    this.closing = true;
  }
}
