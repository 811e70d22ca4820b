/**
 * Typed loader of the native binding (binding.cc) and the benchmark the agent runs through it.
 *
 *   const binding = loadNativeModule('/work/native/ait_native-abi115-….node');   // checks bindingApiVersion
 *   const result = await benchBuildDir(binding, { buildDir, batchSizes: [1, 8], iterations: 100, warmupIterations: 10 });
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** The JS interface version this loader speaks; binding.cc's kBindingApiVersion. */
export const BINDING_API_VERSION = 3;

export type NativeDType = 'float16' | 'float32' | 'bfloat16' | 'int32' | 'int64' | 'int8' | 'uint8' | 'bool';
/** `cuda-events` on GPUs; `host-clock` only for test libraries that run on the CPU (they export AITHostMemoryDevice). */
export type NativeTimer = 'cuda-events' | 'host-clock';

export interface NativeTensorInfo {
  name: string;
  dtype: NativeDType;
  maxShape: number[];
  /** Axis that takes the run's batch, or -1. */
  batchAxis: number;
  maxBytes: number;
}

export interface NativeModelInfo {
  name: string;
  library: string;
  maxBatch: number;
  timer: NativeTimer;
  /** Where the device functions come from (the model library's CUDA runtime, libcudart.so.N, or host memory). */
  deviceApi: string;
  cudaRuntimeVersion: number;
  inputs: NativeTensorInfo[];
  outputs: NativeTensorInfo[];
  weights: { name: string; dtype: NativeDType; bytes: number }[];
  unboundWeights: number;
  /** The library exports AITModelRunDebug (built with model ABI 3 or later): runDebug works. */
  debugRuns: boolean;
  /** Input dims besides the batch (a text model's seq; model ABI 5): the axes run({inputShapes}) may vary, and their bounds. */
  inputDims?: { name: string; input: number; axis: number; min: number; max: number }[];
}

/** One op's output from a debug run, as the runtime describes it (graph.json node id, storage dtype, shape at the batch). */
export interface NativeNodeOutput {
  id: string;
  dtype: NativeDType;
  shape: number[];
  data: Buffer;
}

export interface NativeTiming {
  timer: NativeTimer;
  batchSize: number;
  graph: boolean;
  latenciesMs: Float64Array;
}

/** The runtime's per-op profile JSON (ait_runtime.cu profile_json), parsed, plus the timer used. */
export interface NativeOpProfile {
  id: string;
  name: string;
  kernel: string;
  calls: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  totalMs: number;
}
export interface NativeProfile {
  model: string;
  runs: number;
  lastBatch: number;
  totalMeanMs: number;
  ops: NativeOpProfile[];
  timer: NativeTimer;
}

/** Bytes accepted as host data: copied by the binding before the call returns. */
export type HostBytes = ArrayBufferView | ArrayBuffer;

export interface NativeModel {
  info(): NativeModelInfo;
  bindWeight(name: string, data: HostBytes): void;
  /** Returns the number of weights bound from the safetensors file. */
  loadWeights(safetensorsPath: string): number;
  /** Returns the number of weights still unbound. */
  randomizeWeights(seed: number, scale: number, all: boolean): number;
  /**
   * Copies host inputs (when given) into the binding's device buffers, runs, and copies the outputs back; `shapes`
   * gives each output's shape (sizes the data decided included: an output's data is its buffer's bytes).
   */
  run(
    batchSize: number,
    inputs?: HostBytes[],
    /** inputShapes: one shape per input, for a model with input dims besides the batch (seq) below their max (model ABI 5). */
    options?: { returnOutputs?: boolean; inputShapes?: number[][] },
  ): Promise<Buffer[] & { shapes?: number[][] }>;
  /**
   * Debug run (AITModelRunDebug): op by op, every op's output copied to the host. Rejects with code 'no-debug-support'
   * for a library built before debug runs.
   */
  runDebug(batchSize: number, inputs?: HostBytes[]): Promise<{ outputs: Buffer[]; shapes: number[][]; nodes: NativeNodeOutput[] }>;
  time(options: { batchSize: number; iterations: number; warmupIterations: number; graph: boolean }): Promise<NativeTiming>;
  profile(options: { batchSize: number; iterations?: number; warmupIterations?: number }): Promise<NativeProfile>;
  close(): void;
}

export interface NativeBindingModule {
  bindingApiVersion: number;
  /** The AIT runtime C ABI version (AIT_ABI_VERSION) the binding was built against. */
  aitAbiVersion: number;
  openModel(libraryPath: string, options?: { weightsPath?: string }): Promise<NativeModel>;
}

/** An error from the binding: `code` is the AITStatus name or a binding code; `library` the model library. */
export interface NativeError extends Error {
  code: string;
  library?: string;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).code === 'string';
}

/** Loads a built binding and checks that it speaks this loader's interface; throws saying why not. */
export function loadNativeModule(nodeFile: string): NativeBindingModule {
  const loaded = createRequire(__filename)(path.resolve(nodeFile)) as Partial<NativeBindingModule>;
  if (loaded.bindingApiVersion !== BINDING_API_VERSION || typeof loaded.openModel !== 'function') {
    throw new Error(
      `native binding ${nodeFile} has interface version ${String(loaded.bindingApiVersion)}, this loader needs ${BINDING_API_VERSION}: rebuild it`,
    );
  }
  return loaded as NativeBindingModule;
}

export interface LatencyStats {
  iterations: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
}

/** Nearest-rank percentiles: p is the smallest sample with at least p% of the samples at or below it. */
export function latencyStats(latenciesMs: ArrayLike<number>): LatencyStats {
  const sorted = Float64Array.from(latenciesMs).sort();
  const n = sorted.length;
  if (n === 0) throw new Error('no latency samples');
  const percentile = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    iterations: n,
    p50Ms: percentile(50),
    p90Ms: percentile(90),
    p99Ms: percentile(99),
    meanMs: sum / n,
    minMs: sorted[0],
    maxMs: sorted[n - 1],
  };
}

/** The lib*.so files of a build directory (DIR/lib<name>.so is what `make` builds). */
export function modelLibrariesIn(buildDir: string): string[] {
  return fs.existsSync(buildDir) ? fs.readdirSync(buildDir).filter((f) => /^lib.+\.so$/.test(f)) : [];
}

/** The compiled model library of a build directory: its only lib*.so; throws saying why when there is none or several. */
export function findModelLibrary(buildDir: string): string {
  const libraries = modelLibrariesIn(buildDir);
  if (libraries.length === 1) return path.join(buildDir, libraries[0]);
  if (libraries.length === 0) throw new Error(`no model library (lib<name>.so) in ${buildDir}: build it first (make -C ${buildDir})`);
  throw new Error(`several libraries in ${buildDir} (${libraries.join(', ')}): name one with the 'library' option`);
}

export interface BenchBuildDirOptions {
  buildDir: string;
  batchSizes: number[];
  iterations: number;
  warmupIterations: number;
  /** Library file inside buildDir; default: its only lib*.so. */
  library?: string;
  /** Graph modes to time; default both (eager and CUDA graph). */
  graphModes?: boolean[];
  /** Profiled runs per batch size for the per-op profiles; 0 leaves the profiles out. Default 10. */
  profileIterations?: number;
}

export interface BenchEntry extends LatencyStats {
  batchSize: number;
  graph: boolean;
  itemsPerSecond: number;
}

export interface NativeBenchResult {
  runner: 'native-binding';
  timer: NativeTimer;
  model: string;
  library: string;
  /** Where the weights came from: the build's weights.safetensors, or random values (timing only). */
  weights: 'weights.safetensors' | 'random';
  results: BenchEntry[];
  profiles: (NativeProfile & { batchSize: number })[];
  notes: string[];
}

/**
 * Times a build directory's model at each batch size, eager and with CUDA graphs, and profiles its ops. Weights come
 * from DIR/weights.safetensors when present, else are random (and the result says so).
 */
export async function benchBuildDir(binding: NativeBindingModule, options: BenchBuildDirOptions): Promise<NativeBenchResult> {
  const library = options.library ? path.resolve(options.buildDir, options.library) : findModelLibrary(options.buildDir);
  const weightsFile = path.join(options.buildDir, 'weights.safetensors');
  const hasWeights = fs.existsSync(weightsFile);
  const model = await binding.openModel(library, hasWeights ? { weightsPath: weightsFile } : {});
  try {
    const notes: string[] = [];
    let info = model.info();
    const unboundAtOpen = info.unboundWeights;
    if (unboundAtOpen > 0) {
      model.randomizeWeights(1, 0.05, false);
      notes.push(`${info.unboundWeights} weight(s) not in ${hasWeights ? weightsFile : 'any weights file'}: random values (timing only)`);
      info = model.info();
    }
    if (info.timer === 'host-clock') notes.push(`${library} runs on the CPU (a test library): timed with a host clock, not CUDA events`);
    const batchSizes = options.batchSizes.filter((b) => b <= info.maxBatch);
    const skipped = options.batchSizes.filter((b) => b > info.maxBatch);
    if (skipped.length) notes.push(`batch size(s) ${skipped.join(', ')} above the model's max batch ${info.maxBatch}: skipped`);
    const results: BenchEntry[] = [];
    const profiles: NativeBenchResult['profiles'] = [];
    for (const batchSize of batchSizes) {
      for (const graph of options.graphModes ?? [false, true]) {
        const timing = await model.time({ batchSize, iterations: options.iterations, warmupIterations: options.warmupIterations, graph });
        const stats = latencyStats(timing.latenciesMs);
        results.push({ batchSize, graph, ...stats, itemsPerSecond: (batchSize * 1000) / stats.p50Ms });
      }
      const profileIterations = options.profileIterations ?? 10;
      if (profileIterations > 0) {
        profiles.push({ batchSize, ...(await model.profile({ batchSize, iterations: profileIterations, warmupIterations: 2 })) });
      }
    }
    return {
      runner: 'native-binding',
      timer: info.timer,
      model: info.name,
      library,
      weights: hasWeights && unboundAtOpen === 0 ? 'weights.safetensors' : 'random',
      results,
      profiles,
      notes,
    };
  } finally {
    model.close();
  }
}
