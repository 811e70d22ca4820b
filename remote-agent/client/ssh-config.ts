/**
 * Where and how to connect, from a target (`alias`, `user@host`, `user@host:port`, `ssh://user@host:port`) and
 * ~/.ssh/config (parsed by the `ssh-config` package): HostName, User, Port, IdentityFile, ProxyJump,
 * UserKnownHostsFile, ServerAliveInterval/CountMax. `Match exec` blocks are not evaluated (they would run commands).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import SSHConfig from 'ssh-config';

export interface ResolvedHost {
  /** What the user typed (without user@ and :port). */
  alias: string;
  hostName: string;
  port: number;
  user: string;
  /** Existing key files, in the order to try. */
  identityFiles: string[];
  identitiesOnly: boolean;
  /** ProxyJump hops, first hop first ([] when direct). */
  proxyJump: string[];
  knownHostsFiles: string[];
  serverAliveIntervalS: number | null;
  serverAliveCountMax: number | null;
}

export interface ResolveOptions {
  /** Default ~/.ssh/config; a missing file is the same as an empty one. */
  configPath?: string;
  /** Default os.homedir(). */
  homeDir?: string;
}

export function parseTarget(target: string): { user?: string; host: string; port?: number } {
  const m = /^(?:ssh:\/\/)?(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(target);
  if (!m) throw new Error(`'${target}' is not a host: expected HOST, USER@HOST or USER@HOST:PORT`);
  return { user: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : undefined };
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function all(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export function resolveHost(target: string, options: ResolveOptions = {}): ResolvedHost {
  const home = options.homeDir ?? os.homedir();
  const configPath = options.configPath ?? path.join(home, '.ssh', 'config');
  const parsedTarget = parseTarget(target);
  const text = fs.existsSync(configPath) ? fs.readFileSync(configPath, 'utf8') : '';
  const computed = SSHConfig.parse(text).compute(parsedTarget.host, { ignoreCase: true, matchExec: false });
  const hostName = first(computed.hostname) ?? parsedTarget.host;
  const user = parsedTarget.user ?? first(computed.user) ?? os.userInfo().username;
  const port = parsedTarget.port ?? Number(first(computed.port) ?? 22);
  const expand = (p: string) =>
    p
      .replace(/^~(?=\/|$)/, home)
      .replace(/%d/g, home)
      .replace(/%u/g, os.userInfo().username)
      .replace(/%r/g, user)
      .replace(/%h/g, hostName)
      .replace(/%p/g, String(port))
      .replace(/%%/g, '%');
  const configured = all(computed.identityfile).map(expand);
  const defaults = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((n) => path.join(home, '.ssh', n));
  const identityFiles = (configured.length > 0 ? configured : defaults).filter((f) => fs.existsSync(f));
  const knownHostsFiles = all(computed.userknownhostsfile)
    .flatMap((v) => v.split(/\s+/))
    .filter(Boolean)
    .map(expand);
  const proxyJump = first(computed.proxyjump);
  const interval = first(computed.serveraliveinterval);
  const countMax = first(computed.serveralivecountmax);
  return {
    alias: parsedTarget.host,
    hostName,
    port,
    user,
    identityFiles,
    identitiesOnly: first(computed.identitiesonly)?.toLowerCase() === 'yes',
    proxyJump: proxyJump && proxyJump.toLowerCase() !== 'none' ? proxyJump.split(',').map((s) => s.trim()) : [],
    knownHostsFiles: knownHostsFiles.length > 0 ? knownHostsFiles : [path.join(home, '.ssh', 'known_hosts')],
    serverAliveIntervalS: interval ? Number(interval) : null,
    serverAliveCountMax: countMax ? Number(countMax) : null,
  };
}
