/**
 * How the client reaches a host: over SSH (ssh-transport.ts) or as a local child process (local-transport.ts).
 * The session (session.ts) provisions the agent and speaks JSON-RPC over whatever the transport gives it.
 */

export interface AgentStreams {
  /** The agent's stdout (JSON-RPC from the agent). */
  output: NodeJS.ReadableStream;
  /** The agent's stdin (JSON-RPC to the agent). */
  input: NodeJS.WritableStream;
  /** The agent's stderr, for logs. */
  stderr: NodeJS.ReadableStream;
  /** Ends the agent (closes its stdin). */
  close(): void;
}

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface Transport {
  /** How diagnostics name the host ("local", an ssh alias, user@host). */
  readonly hostLabel: string;
  /** Runs argv on the host (quoted for its shell where there is one) and collects the output. */
  exec(argv: string[], timeoutMs: number): Promise<ExecResult>;
  /** Copies a local file to a path on the host (absolute, or relative to the remote home directory). */
  upload(localFile: string, remotePath: string, mode: number): Promise<void>;
  /** Whether a path exists on the host. */
  exists(remotePath: string): Promise<boolean>;
  /**
   * Makes the agent bundle runnable on the host and returns its path there: the SSH transport uploads it (once per
   * content hash) under WORK/bin/, the local transport runs it in place.
   */
  provisionAgent(localBundle: string, remoteWorkDir: string): Promise<string>;
  /** Starts the agent. `argv` is [node, agent.js, ...args]. */
  startAgent(argv: string[]): Promise<AgentStreams>;
  /** Called once when the transport drops without close() having been called. */
  onDisconnect(listener: (reason: string) => void): void;
  close(): void;
}
