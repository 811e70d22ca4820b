/**
 * Entry of the client API (used by the CLI and the VS Code extension; knows nothing of VS Code):
 * `openSession('local' | sshTarget, options)` gives a RemoteSession to that host's agent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { remoteError } from './errors';
import { RemoteSession, type SessionOptions } from './session';
import { LocalTransport } from './local-transport';
import { type SshOptions, SshTransport } from './ssh-transport';

export { RemoteSession } from './session';
export type { BuildOutcome, ExtraSyncFile, SyncSummary } from './session';
export type { SshOptions, UnknownHostKey } from './ssh-transport';

export interface OpenSessionOptions extends Omit<SessionOptions, 'openTransport' | 'agentBundlePath'> {
  /** dist/agent.js; by default found next to the calling bundle or in the repository's dist/. */
  agentBundlePath?: string;
  ssh?: SshOptions;
}

/** The agent bundle: $AIT_AGENT_BUNDLE, else agent.js beside this bundle (dist/), else <repo>/dist/agent.js. */
export function findAgentBundle(): string {
  const candidates = [
    process.env.AIT_AGENT_BUNDLE,
    path.join(__dirname, 'agent.js'),
    path.resolve(__dirname, '..', '..', 'dist', 'agent.js'),
  ].filter((c): c is string => !!c);
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) {
    throw remoteError(
      'remote.no-agent-bundle',
      `the agent bundle is missing (looked at ${candidates.join(', ')}); run npm run build`,
      'local',
    );
  }
  return found;
}

export function openSession(host: string, options: OpenSessionOptions = {}): Promise<RemoteSession> {
  const agentBundlePath = options.agentBundlePath ?? findAgentBundle();
  const openTransport = host === 'local' ? async () => new LocalTransport() : () => SshTransport.connect(host, options.ssh);
  return RemoteSession.open({ ...options, agentBundlePath, openTransport });
}
