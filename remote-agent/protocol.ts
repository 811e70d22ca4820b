/**
 * The agent protocol: JSON-RPC 2.0 (vscode-jsonrpc) over the agent's stdin/stdout. One typed module shared by the agent
 * (remote-agent/agent/) and the client (remote-agent/client/); docs/remote.md describes it for people.
 *
 * Long work (build, bench, profile, verify) runs as jobs: the request returns job descriptions at once, the client then calls
 * `attach` from a byte offset of the job's log and receives `job/output` notifications until the job ends, and asks
 * `job/result` for the parsed outcome. Jobs outlive the agent process and the SSH connection.
 */
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { Diagnostic } from '../compiler/diagnostics';
import type { DetectionMatch } from '../compiler/verify/detections';
import type { PerNodeReport } from '../compiler/verify/per-node';

export const AGENT_VERSION = '0.1.0';
/** Lowest Node.js major version the agent bundle runs on. */
export const MIN_NODE_MAJOR = 18;

// ---- hello ----------------------------------------------------------------------------------------------------------

export interface GpuInfo {
  index: number;
  name: string;
  memoryMiB: number | null;
  /** e.g. "9.0" for NVIDIA GPUs. */
  computeCapability?: string;
  /** e.g. "gfx942" for AMD GPUs. */
  gfxArch?: string;
}

export interface ToolVersion {
  path: string;
  /** First line that names the version, as the tool prints it. */
  version: string;
}

export interface PythonInfo {
  path: string;
  version: string;
  /** torch.__version__, or null when torch does not import. */
  torch: string | null;
  torchCuda: boolean;
  onnxruntime: string | null;
}

export interface HelloResult {
  agentVersion: string;
  node: { version: string; execPath: string };
  host: { hostname: string; platform: string; arch: string; user: string };
  /** Absolute path of the agent's per-user work directory on that host. */
  workDir: string;
  gpus: GpuInfo[];
  /** Which tool listed the GPUs, or why none are listed. */
  gpuProbe: { tool: 'nvidia-smi' | 'rocm-smi' | null; note: string };
  nvcc: ToolVersion | null;
  hipcc: ToolVersion | null;
  /** From CUTLASS_DIR / CK_DIR; null when unset. `exists` says whether the directory is there. */
  cutlassDir: { path: string; exists: boolean } | null;
  ckDir: { path: string; exists: boolean } | null;
  python: PythonInfo | null;
  /** The native runtime binding the agent would use for bench/verify, or why it would fall back to ait_bench. */
  nativeBinding: { path: string } | { unavailable: string };
  /** Things worth telling the user (missing tools and the like). */
  notes: string[];
}

export const hello = new RequestType0<HelloResult, void>('hello');

// ---- sync -----------------------------------------------------------------------------------------------------------

export interface SyncFileEntry {
  /** Path relative to the build directory, '/'-separated, never absolute and never with '..'. */
  path: string;
  sha256: string;
  sizeBytes: number;
  /** Permission bits (e.g. 0o755 for scripts). */
  mode: number;
}

export interface SyncPlanParams {
  /** Name of the build directory on the host (letters, digits, '.', '_', '-'). */
  buildName: string;
  files: SyncFileEntry[];
}

export interface SyncPlanResult {
  /** Absolute path of the build directory on the host: the client uploads the needed files under it. */
  buildDir: string;
  /** Files whose content differs or that are missing: the client sends these. */
  needed: string[];
  unchangedCount: number;
  /**
   * Paths removed from the build directory before the upload (a directory ends with '/'): files of the previous sync
   * that the manifest no longer has, and with `cleaned` the build outputs as well (the Makefile changed). Absent from
   * older agents.
   */
  removed?: string[];
  cleaned?: boolean;
}

export interface SyncCommitResult {
  buildDir: string;
  /** Files whose content after upload does not match the manifest (should be empty). */
  mismatched: string[];
}

export const syncPlan = new RequestType<SyncPlanParams, SyncPlanResult, void>('sync/plan');
export const syncCommit = new RequestType<SyncPlanParams, SyncCommitResult, void>('sync/commit');

// ---- jobs -----------------------------------------------------------------------------------------------------------

export type JobKind = 'build' | 'bench' | 'profile' | 'verify';
export type JobState = 'running' | 'exited' | 'cancelled' | 'lost';

export interface JobInfo {
  id: string;
  kind: JobKind;
  buildName: string | null;
  argv: string[];
  cwd: string;
  /** CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES index the job was pinned to, if any. */
  gpu: number | null;
  /** Process group id (the job's supervisor is its leader). */
  pgid: number;
  createdAt: string;
  state: JobState;
  exitCode: number | null;
  signal: string | null;
  logBytes: number;
  /** Absolute path of the job's log file on the host. */
  logPath: string;
}

export interface BuildParams {
  buildName: string;
  /** make -j N; defaults to the host's CPU count. */
  parallelJobs?: number;
  /** Extra make arguments (targets, VAR=value), passed as separate argv entries. */
  makeArgs?: string[];
}

export interface BenchParams {
  buildName: string;
  batchSizes: number[];
  iterations?: number;
  warmupIterations?: number;
  /** GPU indices to run on; default: every GPU hello lists (one job per GPU), or one unpinned job when none. */
  gpus?: number[];
  /** Native binding only: profiled runs per batch size for the per-op profiles in the result (0: none; default 10). */
  profileIterations?: number;
  /**
   * Throughput mode (with `threads`): this many model instances, each with its own stream, run for `durationS`
   * seconds per batch size; always the build's ait_bench (`--instances N --threads M --duration S`).
   */
  instances?: number;
  /** Throughput mode: host threads driving the instances (1..instances). */
  threads?: number;
  /** Throughput mode: seconds per batch size (default 10). */
  durationS?: number;
}

export interface ProfileParams {
  buildName: string;
  /** Executable inside the build directory, e.g. "ait_profile". */
  executable: string;
  args?: string[];
  gpus?: number[];
}

/** Which runner a bench job used: the native binding, or the build's ait_bench executable (the fallback). */
export interface BenchRunnerNote {
  runner: 'native-binding' | 'ait_bench';
  note: string;
}

export interface StartedJobs {
  jobs: JobInfo[];
  runner?: BenchRunnerNote;
}

// ---- verify ---------------------------------------------------------------------------------------------------------

/** Which program computed the reference outputs. */
export type ReferenceKind = 'python-onnxruntime' | 'onnxruntime-node' | 'interpreter';

/** An output passes when its relative L2 error against the reference is at most this, unless told otherwise. */
export const DEFAULT_VERIFY_TOLERANCE = 2e-2;

export interface VerifyParams {
  buildName: string;
  /** The ONNX model to compare with: a '/'-separated path inside the build directory (the CLI syncs it as reference/<file>). */
  model: string;
  batchSizes: number[];
  /** Seed of the random inputs (default 0). */
  seed?: number;
  /** Largest relative L2 error of a passing output (default DEFAULT_VERIFY_TOLERANCE). */
  tolerance?: number;
  /** Use this reference; default: python3 with onnxruntime, else onnxruntime-node, else the project's interpreter. */
  reference?: ReferenceKind;
  /** GPU index to run on; default the first GPU hello lists, unpinned on a host without GPUs. */
  gpu?: number;
  /**
   * Also compare every kernel node of the build's graph.json at its ONNX tensor, at the first batch size: the library's
   * debug run (AITModelRunDebug) against the reference with those tensors as extra outputs. The report's `perNode`.
   */
  perNode?: boolean;
  /** Relative L2 above which a node's error counts (default 1e-2, as `ait verify`). */
  perNodeThreshold?: number;
  /**
   * With perNode: PyTorch eager's time per module for the module table, `FILE.py:FUNCTION` with FILE a '/'-separated
   * path inside the build directory (the CLI syncs it as reference/<file>); FUNCTION() returns the nn.Module or
   * (module, example_inputs). Run by module_times.py where python3 imports torch; else a note says why not.
   */
  torchModel?: string;
}

/** One output of the compiled model at one batch size, against the reference. */
export interface VerifyOutputResult {
  batchSize: number;
  output: string;
  /** Shape of the compiled model's output at this batch. */
  shape: number[];
  /** Shape of the reference output, or null when the reference has no output of this name. */
  referenceShape: number[] | null;
  shapeMatches: boolean;
  /** ||compiled − reference||₂ / ||reference||₂; null when the shapes differ or the compiled output holds NaN/Inf. */
  relativeL2: number | null;
  maxAbsError: number | null;
  maxAbsReference: number | null;
  /** NaN and ±Inf values in the compiled output. */
  nonFiniteCount: number;
  pass: boolean;
  /** Why it failed, in words (absent when it passed). */
  failure?: string;
  /**
   * Set when the output belongs to a detection group (boxes [.., N, 4] with scores/labels [.., N]): the output was
   * judged by matching detections (IoU), and `pass` is the group's (compiler/verify/detections.ts).
   */
  detections?: Omit<DetectionMatch, 'pairs'>;
}

/** What a verify job prints as its last line (and keeps as JOB/verify/report.json). */
export interface VerifyReport {
  ok: boolean;
  /** The compiled model's name and library. */
  model: string | null;
  library: string | null;
  /** The ONNX model on the host. */
  onnxModel: string;
  buildDir: string;
  reference: { kind: ReferenceKind; version: string | null; note: string } | null;
  seed: number;
  tolerance: number;
  /** Batch sizes compared (requested ones above the model's max batch are left out, with a note). */
  batchSizes: number[];
  inputs: { name: string; dtype: string; shapeAtMaxBatch: number[] }[];
  results: VerifyOutputResult[];
  /** Where the inputs and both sets of outputs are, as .npy files (inputs/bN, compiled/bN, reference/bN). */
  filesDir: string;
  notes: string[];
  /** Set when the job could not compare at all (no weights, the reference failed, ...). */
  error?: Diagnostic;
  /** What ran the compiled model: the native binding, or python3 with the build's ait_model.py (no binding). */
  runner?: 'native-binding' | 'python-ait_model';
  /**
   * Per-node section (VerifyParams.perNode), the report of `ait verify` (docs/graph-format.md): every node's error,
   * the first error jump and the first fp16 overflow (which fail the verify), the per-module table. Node ids are
   * graph.json's.
   */
  perNode?: PerNodeReport;
}

export const verify = new RequestType<VerifyParams, JobInfo, void>('verify');

export const build = new RequestType<BuildParams, JobInfo, void>('build');
export const bench = new RequestType<BenchParams, StartedJobs, void>('bench');
export const profile = new RequestType<ProfileParams, StartedJobs, void>('profile');
export const jobs = new RequestType0<JobInfo[], void>('jobs');

export interface AttachParams {
  jobId: string;
  /** Byte offset in the job's log to stream from (0 for everything). */
  fromOffset: number;
}

/** `attach` resolves when the job has ended and all of its log has been sent as job/output notifications. */
export const attach = new RequestType<AttachParams, JobInfo, void>('attach');

export interface JobOutputParams {
  jobId: string;
  /** Byte offset of `text` in the log; the next chunk starts at offset + byteLength(text). */
  offset: number;
  text: string;
}

export const jobOutput = new NotificationType<JobOutputParams>('job/output');

export interface CancelResult {
  jobId: string;
  /** False when the process group had already ended. */
  signalled: boolean;
}

export const cancel = new RequestType<{ jobId: string }, CancelResult, void>('cancel');

// ---- results --------------------------------------------------------------------------------------------------------

export interface BuildJobResult {
  kind: 'build';
  ok: boolean;
  exitCode: number | null;
  /** Compiler and linker diagnostics; `location.file` is relative to the build directory when inside it. */
  diagnostics: Diagnostic[];
}

export interface RunJobResult {
  kind: 'bench' | 'profile';
  ok: boolean;
  exitCode: number | null;
  gpu: number | null;
  /** The last line of the log that parses as a JSON object (ait_bench prints its results so), or null. */
  json: unknown;
  diagnostics: Diagnostic[];
}

export interface VerifyJobResult {
  kind: 'verify';
  /** The job ended normally and every output passed at every batch size. */
  ok: boolean;
  exitCode: number | null;
  gpu: number | null;
  /** The job's report (its last JSON line), or null when it printed none (killed, cancelled). */
  report: VerifyReport | null;
  /** One error per failing output and batch (location: the ONNX model file and the output), and job failures. */
  diagnostics: Diagnostic[];
}

export type JobResult = BuildJobResult | RunJobResult | VerifyJobResult;

/** The parsed outcome of an ended job (computed from its log and exit status, so it survives agent restarts). */
export const jobResult = new RequestType<{ jobId: string }, JobResult, void>('job/result');

// ---- errors ---------------------------------------------------------------------------------------------------------

/** JSON-RPC error code for agent errors; `data` is a Diagnostic. */
export const AGENT_ERROR_CODE = -32001;
