/**
 * SSH transport (ssh2): host keys checked against known_hosts, keys from ssh-agent and IdentityFiles, ProxyJump
 * chains, keepalives; commands quoted for the remote shell; files over SFTP.
 *
 * Secrets: private keys and passphrases stay in memory for the handshake; nothing here writes or logs them.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper, utils as ssh2Utils } from 'ssh2';
import type { Duplex } from 'node:stream';
import type { CompileError } from '../../compiler/diagnostics';
import { remoteError } from './errors';
import { appendKnownHost, fingerprintSha256, keyTypeOf, knownHostsName, knownKeyTypes, readKnownHosts, verifyHostKey } from './known-hosts';
import { shellCommand } from './shell-quote';
import { type ResolvedHost, resolveHost } from './ssh-config';
import type { AgentStreams, ExecResult, Transport } from './transport';

export interface UnknownHostKey {
  host: string;
  port: number;
  keyType: string;
  fingerprint: string;
}

export interface SshOptions {
  /** Default ~/.ssh/config. */
  configPath?: string;
  /** Replaces the known_hosts files of the config (default ~/.ssh/known_hosts). */
  knownHostsFiles?: string[];
  /** Tried after those of the config. */
  identityFiles?: string[];
  /** Asked when the host's key is not on record; true records it in the first known_hosts file and goes on. */
  acceptUnknownHostKey?: (key: UnknownHostKey) => boolean | Promise<boolean>;
  /** Asked for the passphrase of an encrypted key file; undefined skips that key. Never stored. */
  passphrase?: (keyFile: string) => Promise<string | undefined>;
  /** Default $SSH_AUTH_SOCK; null: do not use an agent. */
  agentSocket?: string | null;
  /** Default: ServerAliveInterval from the config, else 15 s. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  connectTimeoutMs?: number;
}

/** Key types, in the order asked of the server, and the algorithms that offer each. */
const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

function hostKeyAlgorithms(knownTypes: string[]): string[] {
  const ordered = [...knownTypes.filter((t) => t in HOST_KEY_ALGORITHMS), ...Object.keys(HOST_KEY_ALGORITHMS)];
  return [...new Set(ordered.flatMap((t) => HOST_KEY_ALGORITHMS[t]))];
}

export class SshTransport implements Transport {
  readonly hostLabel: string;
  private sftpSession: Promise<SFTPWrapper> | null = null;
  private closing = false;
  private readonly disconnectListeners: ((reason: string) => void)[] = [];

  private constructor(
    private readonly client: Client,
    private readonly jumps: Client[],
    hostLabel: string,
  ) {
    this.hostLabel = hostLabel;
    client.on('close', () => {
      if (this.closing) return;
      this.closing = true;
      for (const l of this.disconnectListeners) l(`SSH connection to ${hostLabel} closed`);
      for (const j of jumps) j.end();
    });
  }

  /** Connects to `target` (an ssh config alias or user@host[:port]), through its ProxyJump hops if any. */
  static async connect(target: string, options: SshOptions = {}): Promise<SshTransport> {
    const resolved = resolveHost(target, { configPath: options.configPath });
    const jumps: Client[] = [];
    try {
      let sock: Duplex | undefined;
      for (let i = 0; i < resolved.proxyJump.length; i++) {
        const hop = resolved.proxyJump[i];
        const jump = await connectClient(resolveHost(hop, { configPath: options.configPath }), hop, options, sock);
        jumps.push(jump);
        sock = await forwardTo(jump, resolved.proxyJump[i + 1] ?? null, resolved, options, hop);
      }
      const client = await connectClient(resolved, target, options, sock);
      return new SshTransport(client, jumps, target);
    } catch (e) {
      for (const j of jumps) j.end();
      throw e;
    }
  }

  exec(argv: string[], timeoutMs: number): Promise<ExecResult> {
    const command = shellCommand(argv);
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, channel) => {
        if (err) return reject(remoteError('remote.exec-failed', `cannot run ${argv[0]}: ${err.message}`, this.hostLabel));
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => {
          channel.close();
          reject(remoteError('remote.timeout', `${argv[0]} did not finish within ${timeoutMs} ms`, this.hostLabel));
        }, timeoutMs);
        channel.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        channel.on('exit', (code: number | null) => {
          channel.on('close', () => {
            clearTimeout(timer);
            resolve({ exitCode: code, stdout, stderr });
          });
        });
      });
    });
  }

  async upload(localFile: string, remotePath: string, mode: number): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) =>
      sftp.fastPut(localFile, remotePath, { mode }, (err) =>
        err
          ? reject(
              remoteError('remote.upload-failed', `upload of ${localFile} to ${remotePath} failed: ${err.message}`, this.hostLabel, {
                file: localFile,
              }),
            )
          : resolve(),
      ),
    );
    await new Promise<void>((resolve, reject) =>
      sftp.chmod(remotePath, mode, (err) =>
        err ? reject(remoteError('remote.upload-failed', `chmod ${remotePath}: ${err.message}`, this.hostLabel)) : resolve(),
      ),
    );
  }

  async exists(remotePath: string): Promise<boolean> {
    const sftp = await this.sftp();
    return new Promise((resolve) => sftp.stat(remotePath, (err) => resolve(!err)));
  }

  /** Uploads the bundle once per content hash to WORK/bin/agent-<hash>.js (written under a temporary name, then renamed). */
  async provisionAgent(localBundle: string, remoteWorkDir: string): Promise<string> {
    const hash = createHash('sha256').update(fs.readFileSync(localBundle)).digest('hex').slice(0, 16);
    const binDir = `${remoteWorkDir}/bin`;
    const remote = `${binDir}/agent-${hash}.js`;
    if (await this.exists(remote)) return remote;
    const mkdir = await this.exec(['mkdir', '-p', '--', binDir], 30_000);
    if (mkdir.exitCode !== 0) throw remoteError('remote.upload-failed', `mkdir ${binDir}: ${mkdir.stderr.trim()}`, this.hostLabel);
    const partial = `${remote}.partial-${process.pid}`;
    await this.upload(localBundle, partial, 0o644);
    const mv = await this.exec(['mv', '-f', '--', partial, remote], 30_000);
    if (mv.exitCode !== 0) throw remoteError('remote.upload-failed', `mv ${partial}: ${mv.stderr.trim()}`, this.hostLabel);
    return remote;
  }

  startAgent(argv: string[]): Promise<AgentStreams> {
    return new Promise((resolve, reject) => {
      this.client.exec(shellCommand(['exec', ...argv]), (err, channel: ClientChannel) => {
        if (err) return reject(remoteError('remote.exec-failed', `cannot start the agent: ${err.message}`, this.hostLabel));
        resolve({ output: channel, input: channel, stderr: channel.stderr, close: () => channel.end() });
      });
    });
  }

  onDisconnect(listener: (reason: string) => void): void {
    this.disconnectListeners.push(listener);
  }

  close(): void {
    this.closing = true;
    this.client.end();
    for (const j of this.jumps) j.end();
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= new Promise((resolve, reject) =>
      this.client.sftp((err, sftp) =>
        err ? reject(remoteError('remote.sftp-failed', `SFTP: ${err.message}`, this.hostLabel)) : resolve(sftp),
      ),
    );
    return this.sftpSession;
  }
}

/** A channel from `jump` to the next hop (or the final host), to carry the next SSH connection. */
function forwardTo(jump: Client, nextHop: string | null, finalHost: ResolvedHost, options: SshOptions, jumpLabel: string): Promise<Duplex> {
  const next = nextHop ? resolveHost(nextHop, { configPath: options.configPath }) : finalHost;
  return new Promise((resolve, reject) =>
    jump.forwardOut('127.0.0.1', 0, next.hostName, next.port, (err, stream) =>
      err
        ? reject(remoteError('remote.proxy-jump', `${jumpLabel} cannot reach ${next.hostName}:${next.port}: ${err.message}`, jumpLabel))
        : resolve(stream),
    ),
  );
}

interface AuthAttempt {
  label: string;
  auth: Record<string, unknown>;
}

async function authAttempts(host: ResolvedHost, options: SshOptions): Promise<{ attempts: AuthAttempt[]; skipped: string[] }> {
  const attempts: AuthAttempt[] = [];
  const skipped: string[] = [];
  const agentSocket = options.agentSocket === undefined ? process.env.SSH_AUTH_SOCK : options.agentSocket;
  if (agentSocket && !host.identitiesOnly)
    attempts.push({ label: 'ssh-agent', auth: { type: 'agent', username: host.user, agent: agentSocket } });
  const files = [...new Set([...host.identityFiles, ...(options.identityFiles ?? [])])];
  for (const file of files) {
    let content: Buffer;
    try {
      content = fs.readFileSync(file);
    } catch (e) {
      skipped.push(`${file} (${(e as NodeJS.ErrnoException).code})`);
      continue;
    }
    let passphrase: string | undefined;
    const parsed = ssh2Utils.parseKey(content);
    if (parsed instanceof Error) {
      if (!/passphrase/i.test(parsed.message)) {
        skipped.push(`${file} (${parsed.message})`);
        continue;
      }
      passphrase = await options.passphrase?.(file);
      if (passphrase === undefined) {
        skipped.push(`${file} (encrypted, no passphrase given)`);
        continue;
      }
      if (ssh2Utils.parseKey(content, passphrase) instanceof Error) {
        skipped.push(`${file} (wrong passphrase)`);
        continue;
      }
    }
    attempts.push({ label: file, auth: { type: 'publickey', username: host.user, key: content, passphrase } });
  }
  return { attempts, skipped };
}

function connectClient(host: ResolvedHost, label: string, options: SshOptions, sock?: Duplex): Promise<Client> {
  return new Promise((resolve, reject) => {
    void (async () => {
      const client = new Client();
      const knownHostsFiles = options.knownHostsFiles ?? host.knownHostsFiles;
      const entries = readKnownHosts(knownHostsFiles);
      const knownName = knownHostsName(host.hostName, host.port);
      const { attempts, skipped } = await authAttempts(host, options);
      // The reason a connection was refused on our side (host key), reported instead of ssh2's generic error.
      let refusal: CompileError | null = null;
      const tried: string[] = [];
      let settled = false;
      const fail = (e: CompileError) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(e);
      };

      const config: ConnectConfig = {
        host: host.hostName,
        port: host.port,
        username: host.user,
        sock: sock as ConnectConfig['sock'],
        readyTimeout: options.connectTimeoutMs ?? 20_000,
        keepaliveInterval: options.keepaliveIntervalMs ?? (host.serverAliveIntervalS ?? 15) * 1000,
        keepaliveCountMax: options.keepaliveCountMax ?? host.serverAliveCountMax ?? 3,
        algorithms: { serverHostKey: hostKeyAlgorithms(knownKeyTypes(entries, host.hostName, host.port)) as never },
        hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
          const verdict = verifyHostKey(entries, host.hostName, host.port, key);
          const fingerprint = fingerprintSha256(key);
          const keyType = keyTypeOf(key);
          switch (verdict.status) {
            case 'known':
              return verify(true);
            case 'revoked':
              refusal = remoteError(
                'remote.host-key-revoked',
                `the ${keyType} key of ${knownName} (${fingerprint}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}`,
                label,
                { file: verdict.entry.file, line: verdict.entry.line },
              );
              return verify(false);
            case 'changed':
            case 'other-type': {
              const at = verdict.entries[0];
              refusal = remoteError(
                'remote.host-key-changed',
                `HOST KEY CHANGED for ${knownName}: it offered ${keyType} ${fingerprint}, which is not the key on record ` +
                  `(${at.keyType} at ${at.file}:${at.line}). This may be an attack or a reinstalled host; connection refused. ` +
                  `If the change is expected, remove the old entry (ssh-keygen -R '${knownName}' -f ${at.file}) and connect again.`,
                label,
                { file: at.file, line: at.line },
              );
              return verify(false);
            }
            case 'unknown': {
              const ask = options.acceptUnknownHostKey;
              const unknownError = () =>
                remoteError(
                  'remote.host-key-unknown',
                  `${knownName} is not in ${knownHostsFiles.join(', ')}; its ${keyType} key is ${fingerprint}. Connection refused: ` +
                    `check the fingerprint and accept it (CLI: --accept-host-key) to record it.`,
                  label,
                );
              if (!ask) {
                refusal = unknownError();
                return verify(false);
              }
              Promise.resolve(ask({ host: knownName, port: host.port, keyType, fingerprint })).then(
                (accepted) => {
                  if (accepted) appendKnownHost(knownHostsFiles[0], host.hostName, host.port, key);
                  else refusal = unknownError();
                  verify(accepted);
                },
                (e: Error) => {
                  refusal = remoteError('remote.host-key-unknown', `host key prompt failed: ${e.message}`, label);
                  verify(false);
                },
              );
              return;
            }
          }
        },
        authHandler: (_methodsLeft, _partial, next) => {
          const attempt = attempts.shift();
          if (!attempt) return next(false as never);
          tried.push(attempt.label);
          next(attempt.auth as never);
        },
      };

      client.on('ready', () => {
        if (settled) return;
        settled = true;
        resolve(client);
      });
      client.on('error', (e: Error & { level?: string; code?: string }) => {
        if (refusal) return fail(refusal);
        if (e.level === 'client-authentication') {
          const parts = [`tried: ${tried.length > 0 ? tried.join(', ') : 'nothing (no ssh-agent, no key file)'}`];
          if (skipped.length > 0) parts.push(`skipped: ${skipped.join(', ')}`);
          return fail(
            remoteError(
              'remote.auth-failed',
              `authentication as ${host.user} at ${host.hostName}:${host.port} was refused (${parts.join('; ')})`,
              label,
            ),
          );
        }
        if (e.level === 'client-timeout')
          return fail(remoteError('remote.timeout', `no SSH handshake with ${host.hostName}:${host.port} in time`, label));
        const code = e.code ? ` (${e.code})` : '';
        fail(remoteError('remote.unreachable', `cannot connect to ${host.hostName}:${host.port}${code}: ${e.message}`, label));
      });
      client.on('close', () =>
        fail(
          refusal ?? remoteError('remote.unreachable', `connection to ${host.hostName}:${host.port} closed during the handshake`, label),
        ),
      );
      client.connect(config);
    })().catch((e: Error) => reject(remoteError('remote.unreachable', e.message, label)));
  });
}
