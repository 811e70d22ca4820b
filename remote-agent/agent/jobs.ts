/**
 * Jobs: detached process groups with their log and exit status on disk, so that they outlive the agent process and
 * the SSH connection that started it.
 *
 * Layout of one job (WORK/jobs/<id>/):
 *   job.json          what runs: argv, cwd, extra env, kind, GPU, process group id
 *   log               stdout and stderr of the job, merged, appended as written
 *   status.json       exit code / signal, written by the supervisor when the job's main process ends
 *   cancel-requested  present once `cancel` was called
 *   verify/           a verify job's inputs, outputs and report (every command gets its job directory as $AIT_JOB_DIR)
 *
 * The agent starts a supervisor (`agent.js --supervise DIR`) with `detached: true`, i.e. setsid(): the supervisor leads
 * a new session and process group, has no controlling terminal, and so receives no hang-up when SSH goes. It spawns
 * the job's command in its own group with the log file as stdout/stderr (a file descriptor, not a pipe through node,
 * so output keeps landing on disk even if the supervisor dies) and writes status.json when the command ends.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { JobInfo, JobKind, JobState } from '../protocol';
import { AgentError } from './errors';
import { insideRoot } from './paths';

interface JobSpec {
  id: string;
  kind: JobKind;
  buildName: string | null;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  gpu: number | null;
  createdAt: string;
  pgid: number;
}

interface JobStatus {
  exitCode: number | null;
  signal: string | null;
  endedAt: string;
}

export interface StartJobOptions {
  kind: JobKind;
  buildName: string | null;
  argv: string[];
  cwd: string;
  env?: Record<string, string>;
  gpu?: number | null;
}

/** Time between SIGTERM and SIGKILL when cancelling. */
const CANCEL_GRACE_MS = 3000;

export class JobStore {
  readonly jobsDir: string;

  /** `supervisorArgv`: how to run this agent again (node + script + prefix args); `--supervise DIR` is appended. */
  constructor(
    workDir: string,
    private readonly supervisorArgv: string[],
  ) {
    this.jobsDir = path.join(workDir, 'jobs');
    fs.mkdirSync(this.jobsDir, { recursive: true, mode: 0o700 });
  }

  start(options: StartJobOptions): JobInfo {
    const id = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const dir = path.join(this.jobsDir, id);
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'log'), '');
    const spec: JobSpec = {
      id,
      kind: options.kind,
      buildName: options.buildName,
      argv: options.argv,
      cwd: options.cwd,
      env: options.env ?? {},
      gpu: options.gpu ?? null,
      createdAt: new Date().toISOString(),
      pgid: 0,
    };
    writeJsonAtomic(path.join(dir, 'job.json'), spec);
    const [exe, ...args] = this.supervisorArgv;
    const supervisor = spawn(exe, [...args, '--supervise', dir], { detached: true, stdio: 'ignore' });
    if (supervisor.pid === undefined) throw new Error(`could not start the job supervisor ${exe}`);
    supervisor.unref();
    // detached: the supervisor called setsid(), so its pid is the job's process group id.
    spec.pgid = supervisor.pid;
    writeJsonAtomic(path.join(dir, 'job.json'), spec);
    return this.info(id);
  }

  /** Whether `id` (from a request) names a job: a job id's form, its directory inside jobs/ (insideRoot). */
  has(id: string): boolean {
    if (typeof id !== 'string' || !isJobId(id)) return false;
    try {
      return fs.existsSync(path.join(insideRoot(this.jobsDir, id, { what: 'job' }), 'job.json'));
    } catch (e) {
      if (e instanceof AgentError) return false;
      throw e;
    }
  }

  list(): JobInfo[] {
    return fs
      .readdirSync(this.jobsDir)
      .filter((id) => this.has(id))
      .sort()
      .map((id) => this.info(id));
  }

  info(id: string): JobInfo {
    const dir = this.dirOf(id);
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8')) as JobSpec;
    const status = readStatus(dir);
    const cancelled = fs.existsSync(path.join(dir, 'cancel-requested'));
    let state: JobState;
    if (status) state = cancelled ? 'cancelled' : 'exited';
    else if (spec.pgid > 0 && processGroupAlive(spec.pgid)) state = 'running';
    else state = cancelled ? 'cancelled' : 'lost';
    const logPath = path.join(dir, 'log');
    return {
      id: spec.id,
      kind: spec.kind,
      buildName: spec.buildName,
      argv: spec.argv,
      cwd: spec.cwd,
      gpu: spec.gpu,
      pgid: spec.pgid,
      createdAt: spec.createdAt,
      state,
      exitCode: status?.exitCode ?? null,
      signal: status?.signal ?? null,
      logBytes: fileSize(logPath),
      logPath,
    };
  }

  /** Up to `maxBytes` of the log from `offset`, cut so that no UTF-8 character is split. */
  readLog(id: string, offset: number, maxBytes: number): Buffer {
    const fd = fs.openSync(path.join(this.dirOf(id), 'log'), 'r');
    try {
      const buf = Buffer.alloc(maxBytes);
      const n = fs.readSync(fd, buf, 0, maxBytes, offset);
      return buf.subarray(0, utf8CompleteLength(buf.subarray(0, n)));
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The whole log as text (for parsing results of ended jobs). */
  logText(id: string): string {
    return fs.readFileSync(path.join(this.dirOf(id), 'log'), 'utf8');
  }

  /** SIGTERM to the job's whole process group, SIGKILL after a grace period if anything is left. */
  cancel(id: string): boolean {
    const dir = this.dirOf(id);
    const info = this.info(id);
    fs.writeFileSync(path.join(dir, 'cancel-requested'), new Date().toISOString());
    if (info.pgid <= 0 || !processGroupAlive(info.pgid)) return false;
    signalGroup(info.pgid, 'SIGTERM');
    const escalate = setTimeout(() => {
      if (processGroupAlive(info.pgid)) signalGroup(info.pgid, 'SIGKILL');
    }, CANCEL_GRACE_MS);
    escalate.unref();
    return true;
  }

  private dirOf(id: string): string {
    if (!this.has(id)) throw new UnknownJobError(id);
    return path.join(this.jobsDir, id);
  }
}

export class UnknownJobError extends Error {
  constructor(readonly jobId: string) {
    super(`no job '${jobId}'`);
  }
}

/** Entry of `--supervise DIR`: run the job's command, record how it ended, exit. */
export function superviseJob(dir: string): void {
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8')) as JobSpec;
  const logFd = fs.openSync(path.join(dir, 'log'), 'a');
  // A group-wide SIGTERM (cancel) reaches the command too; the supervisor stays to record how it ended.
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => undefined);
  const finish = (exitCode: number | null, signal: string | null) => {
    writeJsonAtomic(path.join(dir, 'status.json'), { exitCode, signal, endedAt: new Date().toISOString() });
    process.exit(0);
  };
  const child = spawn(spec.argv[0], spec.argv.slice(1), {
    cwd: spec.cwd,
    // AIT_JOB_DIR: where a job keeps its own files (verify writes its inputs and outputs there).
    env: { ...process.env, ...spec.env, AIT_JOB_DIR: dir },
    stdio: ['ignore', logFd, logFd],
  });
  child.on('error', (e) => {
    fs.writeSync(logFd, `ait-agent: cannot start ${spec.argv[0]}: ${e.message}\n`);
    finish(127, null);
  });
  child.on('exit', (code, signal) => finish(code, signal));
}

export function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else (cannot happen for our own jobs, but it is alive).
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

function readStatus(dir: string): JobStatus | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as JobStatus;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2));
  fs.renameSync(tmp, file);
}

function isJobId(id: string): boolean {
  return /^[a-z0-9]+-[0-9a-f]{8}$/.test(id);
}

/** Length of the longest prefix of `buf` that ends on a UTF-8 character boundary. */
export function utf8CompleteLength(buf: Buffer): number {
  const n = buf.length;
  // Look back at most 3 bytes for the lead byte of the last character.
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = buf[n - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
