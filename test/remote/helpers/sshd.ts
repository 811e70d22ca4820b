/**
 * A throwaway OpenSSH server for the integration tests: its own host key and user keys (ssh-keygen), an sshd_config
 * in a temp dir, listening on 127.0.0.1 at a free port, run as a child (`sshd -D -e -f CONFIG`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireTool } from '../../helpers/tools';
import { waitFor } from './agent-bundle';

export const SSHD_BINARY = '/usr/sbin/sshd';

export interface TestSshd {
  dir: string;
  port: number;
  user: string;
  /** Key in authorized_keys. */
  userKey: string;
  /** A key the server does not know. */
  wrongKey: string;
  hostPublicKey: string;
  /** known_hosts with the server's real host key. */
  knownHosts: string;
  /** An ssh config: Host `gpubox` (direct) and `viajump` (ProxyJump gpubox). */
  sshConfig: string;
  /** The server's log (sshd -e writes to stderr). */
  log: () => string;
  /** SIGKILLs the sshd processes serving connections (not the listener): the connections drop at once. */
  killConnections(): number[];
  stop(): void;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', path.basename(file), '-f', file]);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Pids of processes whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (after "pid (comm) state") is the parent pid; comm may hold spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

function commOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export function sshdAvailable(): boolean {
  return fs.existsSync(SSHD_BINARY);
}

/** In a before(): skips without sshd (saying so); under CI=true, fails naming it. */
export function requireSshd(ctx: Mocha.Context): void {
  requireTool(ctx, 'sshd', sshdAvailable(), `${SSHD_BINARY} not found; apt-get install openssh-server, as .ci/run does`);
}

export async function startSshd(): Promise<TestSshd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-sshd-'));
  const port = await freePort();
  const user = os.userInfo().username;
  const hostKey = path.join(dir, 'host_ed25519');
  const userKey = path.join(dir, 'user_ed25519');
  const wrongKey = path.join(dir, 'wrong_ed25519');
  for (const k of [hostKey, userKey, wrongKey]) keygen(k);
  fs.writeFileSync(path.join(dir, 'authorized_keys'), fs.readFileSync(`${userKey}.pub`));
  const hostPublicKey = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim();
  const [keyType, keyBase64] = hostPublicKey.split(' ');
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${keyType} ${keyBase64}\n`);
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'AllowTcpForwarding yes',
      'Subsystem sftp internal-sftp',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const sshConfig = path.join(dir, 'ssh_config');
  fs.writeFileSync(
    sshConfig,
    [
      'Host gpubox',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${userKey}`,
      `  UserKnownHostsFile ${knownHosts}`,
      'Host viajump',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${userKey}`,
      `  UserKnownHostsFile ${knownHosts}`,
      '  ProxyJump gpubox',
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege separation directory.
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  let log = '';
  const child: ChildProcess = spawn(SSHD_BINARY, ['-D', '-e', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) throw new Error(`sshd did not start on port ${port}:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const sshdPid = child.pid!;
  return {
    dir,
    port,
    user,
    userKey,
    wrongKey,
    hostPublicKey,
    knownHosts,
    sshConfig,
    log: () => log,
    killConnections() {
      // Every sshd below the listener serves a connection (the [priv] monitor and its session child).
      const killed: number[] = [];
      const visit = (pid: number) => {
        for (const c of childrenOf(pid)) {
          if (commOf(c) !== 'sshd' && !commOf(c).startsWith('sshd-')) continue;
          visit(c);
          try {
            process.kill(c, 'SIGKILL');
            killed.push(c);
          } catch {
            // already gone
          }
        }
      };
      visit(sshdPid);
      return killed;
    },
    stop() {
      child.kill('SIGTERM');
    },
  };
}

export { waitFor };
