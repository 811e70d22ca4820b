/**
 * Backends as plugins: a backend declares the targets it builds for, answers which nodes need a lowering (support is
 * derived from the lowerings it registers under its id, ops/registry.ts registerLowering), generates a build
 * directory's files, and says what a host needs to build them (the agent's `hello` and the docs read it). The
 * registry is the one list of targets: the CLI's --target help, the compile driver, the support check and the
 * extension's target picker all read it (compiler/targets.ts). Backends register themselves in backends/index.ts.
 */
import type { Diagnostic } from '../diagnostics';
import type { Graph, Node } from '../ir/graph';
import type { MeasurementSource } from './cuda/profiling/selection';

export interface TargetInfo {
  id: string;
  label: string;
  detail: string;
}

/** What a host must have to build a backend's output: a compiler on PATH, a kernel library's checkout in a variable. */
export interface HostRequirements {
  /** The compiler the generated Makefile runs (on PATH). */
  compiler: string;
  /** The variable naming the kernel library's checkout (CUTLASS_DIR, CK_DIR); needed when a build has instances. */
  libraryDir: string;
  /** The variable that pins a job to one GPU (CUDA_VISIBLE_DEVICES, HIP_VISIBLE_DEVICES). */
  visibleDevices: string;
}

export interface CodegenOptions {
  target: string;
  modelName: string;
  /** Largest batch the build serves (default: the batch symbol's upper bound). */
  maxBatch?: number;
  /** Measured kernel choice: GEMMs and convolutions whose signature has measurements take the fastest candidate. */
  measurements?: MeasurementSource;
  /** Also write the profiler: for every GEMM/conv signature ('all') or only those the measurements lack ('missing'). */
  profileSources?: 'all' | 'missing';
}

export interface CodegenSummary {
  kernels: number;
  /** Kernel-library instances (CUTLASS, CK) generated. */
  instances: number;
  prepareOps: number;
  weights: number;
  absentWeights: number;
  maxBatch: number;
  arenaBytes: number;
  workspaceBytes: number;
  /** GEMM/conv signatures, how many have measurements, and how many the written profiler (if any) times. */
  profiling: { signatures: number; measured: number; profiled: number; candidates: number };
}

export interface CodegenResult {
  /** Relative path → contents (text or bytes). Empty when diagnostics has errors. */
  files: Map<string, string | Uint8Array>;
  diagnostics: Diagnostic[];
  summary: CodegenSummary;
}

export interface Backend {
  /** Lowerings are registered under this id; targets are `<id>:<arch>`. */
  id: string;
  /** For messages: 'CUDA', 'ROCm'. */
  name: string;
  /** The kernel library of its GEMM/conv instances, for messages: 'CUTLASS', 'CK'. */
  kernelLibrary: string;
  targets: readonly TargetInfo[];
  host: HostRequirements;
  /** Whether code generation lowers `node` (weight preparation that is not folded, anything that launches). */
  needsLowering(graph: Graph, node: Node): boolean;
  /** Why an op has no lowering on this backend. */
  noLoweringReason(op: string): string;
  /** Errors for input dims the build cannot vary at run time, each with its fix. */
  runtimeDimErrors(graph: Graph): Diagnostic[];
  /** The build directory's files, or diagnostics naming the nodes it cannot lower. */
  generate(graph: Graph, options: CodegenOptions): CodegenResult;
}

const registry = new Map<string, Backend>();

/** Registers a backend; its target ids must be `<id>:…` and new. */
export function registerBackend(backend: Backend): void {
  if (registry.has(backend.id)) throw new Error(`backend '${backend.id}' is registered twice`);
  for (const t of backend.targets) {
    if (!t.id.startsWith(`${backend.id}:`)) throw new Error(`target '${t.id}' of backend '${backend.id}' must start with '${backend.id}:'`);
    if (backendOfTarget(t.id)) throw new Error(`target '${t.id}' is served by two backends`);
  }
  registry.set(backend.id, backend);
}

/** The registered backends, in registration order. */
export function registeredBackends(): Backend[] {
  return [...registry.values()];
}

/** The backend serving a target id, if any. */
export function backendOfTarget(target: string): Backend | undefined {
  for (const b of registry.values()) if (b.targets.some((t) => t.id === target)) return b;
  return undefined;
}

/** The backend registered under an id ('cuda', 'rocm'). */
export function backendById(id: string): Backend | undefined {
  return registry.get(id);
}
