/** The agent: JSON-RPC handlers over a pair of streams (stdin/stdout when run by the client). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type CancellationToken,
  type MessageConnection,
  ResponseError,
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import * as P from '../protocol';
import { AgentError } from './errors';
import { insideRoot } from './paths';
import { hello, probeGpus } from './hello';
import { jobResult } from './job-results';
import { JobStore, UnknownJobError } from './jobs';
import { modelLibrariesIn } from '../../native/index';
import { ensureNativeBinding } from './native-binding';
import { buildDirOf, syncCommit, syncPlan } from './sync';
import { pythonRunnerUnavailable } from './compiled-runner';
import { verifyJobOptions } from './verify';

export interface AgentOptions {
  /** Absolute path of the per-user work directory (jobs/, builds/, native/). */
  workDir: string;
  /** How to run this agent again: [node, script, ...]; used for job supervisors and native bench runs. */
  selfArgv: string[];
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

/** Bytes of log per job/output notification. */
const OUTPUT_CHUNK_BYTES = 64 * 1024;
/** How often attach looks at the log of a running job. */
const ATTACH_POLL_MS = 100;

export function startAgent(options: AgentOptions): MessageConnection {
  fs.mkdirSync(options.workDir, { recursive: true, mode: 0o700 });
  const store = new JobStore(options.workDir, options.selfArgv);
  const connection = createMessageConnection(new StreamMessageReader(options.input), new StreamMessageWriter(options.output));

  const guarded =
    <A extends unknown[], R>(fn: (...args: A) => R | Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (e) {
        throw toResponseError(e);
      }
    };

  connection.onRequest(
    P.hello,
    guarded(() => hello(options.workDir)),
  );
  connection.onRequest(
    P.syncPlan,
    guarded((p: P.SyncPlanParams) => syncPlan(options.workDir, p)),
  );
  connection.onRequest(
    P.syncCommit,
    guarded((p: P.SyncPlanParams) => syncCommit(options.workDir, p)),
  );

  connection.onRequest(
    P.build,
    guarded((p: P.BuildParams) => {
      const cwd = existingBuildDir(options.workDir, p.buildName, 'Makefile');
      const parallel = p.parallelJobs ?? os.cpus().length;
      return store.start({ kind: 'build', buildName: p.buildName, cwd, argv: ['make', `-j${parallel}`, ...makeArguments(p.makeArgs)] });
    }),
  );

  connection.onRequest(
    P.bench,
    guarded(async (p: P.BenchParams) => {
      const cwd = existingBuildDir(options.workDir, p.buildName);
      const iterations = p.iterations ?? 100;
      const warmupIterations = p.warmupIterations ?? 10;
      const throughput = throughputArguments(p);
      // The binding is built here on the first bench for this Node ABI and binding source (seconds), then reused;
      // a build directory without a model library (lib<name>.so) can only be timed by its own ait_bench, and so is
      // the throughput mode (host threads driving several instances at once).
      const lookup = throughput
        ? { unavailable: 'throughput mode (instances × threads) runs in ait_bench' }
        : modelLibrariesIn(cwd).length > 0
          ? await ensureNativeBinding(options.workDir)
          : { unavailable: `no model library (lib<name>.so) in ${cwd} for the native binding` };
      let argv: string[];
      let runner: P.BenchRunnerNote;
      if ('binding' in lookup) {
        const nativeOptions = {
          buildDir: cwd,
          batchSizes: p.batchSizes,
          iterations,
          warmupIterations,
          profileIterations: p.profileIterations,
        };
        argv = [...options.selfArgv, '--work-dir', options.workDir, '--native-bench', JSON.stringify(nativeOptions)];
        runner = { runner: 'native-binding', note: `timed through the native binding ${lookup.path} (per-op profiles included)` };
      } else {
        const exe = path.join(cwd, 'ait_bench');
        if (!fs.existsSync(exe)) {
          throw new AgentError('bench.no-executable', `${exe} does not exist (build first) and ${lookup.unavailable}`);
        }
        argv = throughput
          ? [exe, '--batch-sizes', p.batchSizes.join(','), '--warmup', `${warmupIterations}`, ...throughput]
          : [exe, '--batch-sizes', p.batchSizes.join(','), '--iterations', `${iterations}`, '--warmup', `${warmupIterations}`];
        runner = { runner: 'ait_bench', note: `timed by the build's ait_bench executable: ${lookup.unavailable}` };
      }
      const jobs = await startPerGpu(store, 'bench', p.buildName, cwd, argv, p.gpus);
      return { jobs, runner };
    }),
  );

  connection.onRequest(
    P.profile,
    guarded(async (p: P.ProfileParams) => {
      const cwd = existingBuildDir(options.workDir, p.buildName);
      const exe = insideRoot(cwd, p.executable, { what: 'executable', code: 'profile.bad-executable' });
      if (!fs.existsSync(exe)) {
        throw new AgentError('profile.no-executable', `${exe} does not exist in the build directory`);
      }
      return { jobs: await startPerGpu(store, 'profile', p.buildName, cwd, [exe, ...(p.args ?? [])], p.gpus) };
    }),
  );

  connection.onRequest(
    P.verify,
    guarded(async (p: P.VerifyParams) => {
      const cwd = existingBuildDir(options.workDir, p.buildName);
      // onnxruntime-node, when used, comes from the work directory's or the build directory's node_modules.
      const jobOptions = verifyJobOptions(cwd, p, [options.workDir, cwd]);
      const lookup = await ensureNativeBinding(options.workDir);
      const noPython = 'unavailable' in lookup ? pythonRunnerUnavailable(cwd) : null;
      if ('unavailable' in lookup && noPython) {
        throw new AgentError(
          'verify.no-binding',
          `verify runs the compiled model through the native binding or python3 with the build's ait_model.py: ${lookup.unavailable}; ${noPython}`,
          { file: cwd },
        );
      }
      const probe = await probeGpus();
      const gpu = p.gpu ?? probe.gpus[0]?.index;
      // The GPU the job runs on names the per-op profile of per-node verify.
      const info = probe.gpus.find((g) => g.index === gpu);
      const arch = info?.computeCapability ? `sm${info.computeCapability.replace('.', '')}` : info?.gfxArch;
      if (info) jobOptions.gpu = { name: info.name, ...(arch ? { arch } : {}) };
      const argv = [...options.selfArgv, '--work-dir', options.workDir, '--verify-job', JSON.stringify(jobOptions)];
      if (gpu === undefined) return store.start({ kind: 'verify', buildName: p.buildName, cwd, argv });
      const variable = probe.gpuProbe.tool === 'rocm-smi' ? 'HIP_VISIBLE_DEVICES' : 'CUDA_VISIBLE_DEVICES';
      return store.start({ kind: 'verify', buildName: p.buildName, cwd, argv, gpu, env: { [variable]: `${gpu}` } });
    }),
  );

  connection.onRequest(
    P.jobs,
    guarded(() => store.list()),
  );

  connection.onRequest(
    P.attach,
    guarded(async (p: P.AttachParams, token: CancellationToken) => {
      let offset = p.fromOffset;
      // Bounded by the job's own life: the loop ends when the job has ended and its log is sent, or the client cancels.
      while (!token.isCancellationRequested) {
        const ended = store.info(p.jobId).state !== 'running';
        const chunk = store.readLog(p.jobId, offset, OUTPUT_CHUNK_BYTES);
        if (chunk.length > 0) {
          await connection.sendNotification(P.jobOutput, { jobId: p.jobId, offset, text: chunk.toString('utf8') });
          offset += chunk.length;
          continue;
        }
        if (ended) break;
        await sleep(ATTACH_POLL_MS);
      }
      return store.info(p.jobId);
    }),
  );

  connection.onRequest(
    P.jobResult,
    guarded(({ jobId }: { jobId: string }) => {
      const job = store.info(jobId);
      if (job.state === 'running') throw new AgentError('job.running', `job ${jobId} is still running`);
      return jobResult(job, store.logText(jobId));
    }),
  );

  connection.onRequest(
    P.cancel,
    guarded(({ jobId }: { jobId: string }) => ({ jobId, signalled: store.cancel(jobId) })),
  );

  connection.listen();
  return connection;
}

function existingBuildDir(workDir: string, buildName: string, mustHave?: string): string {
  const dir = buildDirOf(workDir, buildName);
  if (!fs.existsSync(dir)) throw new AgentError('build.not-synced', `no build directory '${buildName}' here: sync it first`);
  if (mustHave && !fs.existsSync(path.join(dir, mustHave))) {
    throw new AgentError('build.no-makefile', `build directory '${buildName}' has no ${mustHave}`, { file: path.join(dir, mustHave) });
  }
  return dir;
}

/**
 * make's arguments from a build request: targets and VAR=value assignments only. Options are refused: -C/-f/-I/-o/-W
 * and the like would take make (and what it writes) out of the build directory.
 */
function makeArguments(args: unknown): string[] {
  if (args === undefined || args === null) return [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string'))
    throw new AgentError('build.bad-make-args', 'make arguments must be a list of strings');
  for (const a of args as string[]) {
    if (a.startsWith('-') || a.includes('\0'))
      throw new AgentError('build.bad-make-args', `make argument ${JSON.stringify(a)} is refused: only targets and VAR=value are accepted`);
  }
  return args as string[];
}

/** ait_bench's throughput options for a bench request with instances or threads, checked; undefined for latency. */
function throughputArguments(p: P.BenchParams): string[] | undefined {
  if (p.instances === undefined && p.threads === undefined && p.durationS === undefined) return undefined;
  const instances = p.instances ?? p.threads ?? 1;
  const threads = p.threads ?? 1;
  const duration = p.durationS ?? 10;
  const positiveInteger = (n: number) => Number.isInteger(n) && n >= 1 && n <= 1024;
  if (!positiveInteger(instances) || !positiveInteger(threads) || threads > instances) {
    throw new AgentError(
      'bench.bad-throughput',
      `throughput bench needs 1 <= threads <= instances <= 1024 (integers), got instances ${instances}, threads ${threads}`,
    );
  }
  if (!(Number.isFinite(duration) && duration > 0 && duration <= 3600)) {
    throw new AgentError('bench.bad-throughput', `throughput bench duration must be in (0, 3600] seconds, got ${duration}`);
  }
  return ['--instances', `${instances}`, '--threads', `${threads}`, '--duration', `${duration}`];
}

/** One job per GPU, pinned with CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES; one unpinned job on a host without GPUs. */
async function startPerGpu(
  store: JobStore,
  kind: 'bench' | 'profile',
  buildName: string,
  cwd: string,
  argv: string[],
  requested: number[] | undefined,
): Promise<P.JobInfo[]> {
  const probe = await probeGpus();
  const gpus = requested ?? probe.gpus.map((g) => g.index);
  if (gpus.length === 0) return [store.start({ kind, buildName, cwd, argv })];
  const variable = probe.gpuProbe.tool === 'rocm-smi' ? 'HIP_VISIBLE_DEVICES' : 'CUDA_VISIBLE_DEVICES';
  return gpus.map((gpu) => store.start({ kind, buildName, cwd, argv, gpu, env: { [variable]: `${gpu}` } }));
}

function toResponseError(e: unknown): ResponseError<unknown> {
  if (e instanceof ResponseError) return e;
  if (e instanceof AgentError) return new ResponseError(P.AGENT_ERROR_CODE, e.message, e.toDiagnostic());
  if (e instanceof UnknownJobError) {
    return new ResponseError(P.AGENT_ERROR_CODE, e.message, { code: 'job.unknown', severity: 'error', message: e.message });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new ResponseError(P.AGENT_ERROR_CODE, message, { code: 'agent.internal', severity: 'error', message });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
