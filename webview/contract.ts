/**
 * The files the webview reads, as types: graph.json (written by the compiler) and profile.json (written by the
 * runtime's per-op profiler). docs/graph-format.md is the contract; change both together.
 *
 * The graph.json base types come from the compiler's serializer (type-only import: nothing of the compiler is
 * bundled into the webview); the per-node sections that later stages add (epilogue, cost, kernel, status) and the
 * top-level memory section are typed here, as the webview reads them.
 */
import type { GraphJson, GraphJsonNode, GraphJsonTensor } from '../compiler/ir/serialize';

export type { GraphJson, GraphJsonNode, GraphJsonTensor };

/** FLOPs and bytes of one node at a given batch size (the compiler's cost model). */
export interface NodeCost {
  flops: number;
  /** Bytes read plus bytes written by the node's kernel(s). */
  bytes: number;
  /** The batch size these figures are for. */
  batch: number;
}

export interface KernelCandidate {
  /** Library instance name, e.g. a CUTLASS procedural name. */
  name: string;
  /** Profiled time of one call in milliseconds (at `batch` when given); null when not timed (filtered, failed). */
  timeMs: number | null;
  /** Why it was not usable (compile failure, launch failure, wrong result), when it was not. */
  error?: string;
  /** Its configuration in words (tile, cluster, schedule, stages). */
  config?: string;
  /** The batch `timeMs` was measured at (the largest profiled batch). */
  batch?: number;
  /** Median by profiled batch (keys are batch sizes). */
  timesMs?: Record<string, number | null>;
  /** Chosen for at least one batch range (a build can dispatch to several instances by batch). */
  chosen?: boolean;
}

export interface KernelChoice {
  library: 'cutlass' | 'ck' | 'ait' | string;
  /** Instance name, e.g. `cutlass3x_sm90_tensorop_h64x128x16gemm_f16_f16_f32_f16_f16_128x256x64_1x2x1_0_tnn_align8_warpspecialized_cooperative_epi_tma`. */
  name: string;
  /** Tile shape, cluster shape, pipeline stages, schedule, split-k, alignment and any library-specific knob. */
  config?: {
    tile?: number[];
    cluster?: number[];
    stages?: number;
    schedule?: string;
    splitK?: number;
    alignment?: number;
    [knob: string]: unknown;
  };
  candidates?: KernelCandidate[];
  /** Why this one: e.g. "fastest of 12 profiled candidates at batch 1..256". */
  reason?: string;
  /** The generated source of this op (relative to the compile output directory). */
  source?: { file: string; line?: number };
}

export interface NodeStatus {
  /** False when no backend on the target can run this node (drawn as unsupported). */
  supported: boolean;
  reason?: string;
}

/** A graph.json node with the sections later compiler stages add (all optional). */
export interface ViewNodeJson extends GraphJsonNode {
  /** kernel | view | weight-preparation | shape (docs/graph-format.md); weight preparation is not drawn. */
  role?: 'kernel' | 'view' | 'weight-preparation' | 'shape';
  /** Ops applied in the kernel's epilogue, in order, e.g. ["bias", "relu", "residual_add"]. */
  epilogue?: string[];
  cost?: NodeCost;
  kernel?: KernelChoice;
  status?: NodeStatus;
}

/** Top-level memory plan (docs/graph-format.md; written by compiler/passes/memory-plan.ts). */
export interface GraphMemory {
  batch: number;
  alignment: number;
  arenaBytes: number;
  activationBytes: number;
  buffers: { tensors: string[]; offset: number; bytes: number; firstNode: number; lastNode: number }[];
  offsets: Record<string, number>;
}

export const PROFILE_FORMAT = 'ait-profile';
export const PROFILE_FORMAT_VERSION = 1;

/** Measurements of one graph node (keyed by graph.json node id in ProfileJson.ops). */
export interface OpProfile {
  /** Mean time of one call over the measured runs. */
  meanMs: number;
  minMs?: number;
  medianMs?: number;
  p90Ms?: number;
  /** How many kernel launches the op made per run (fused ops may launch more than one). */
  launches?: number;
  /** Achieved throughput (when absent the webview derives it from graph.json `cost` and `meanMs`). */
  tflops?: number;
  gbPerS?: number;
  /** Numerical error of the op's output against the reference (CPU interpreter or ONNX Runtime). */
  error?: {
    maxAbs: number;
    /** maxAbs over the largest |reference| value. */
    maxRel?: number;
    /** ||out - ref|| / ||ref||; null when the output has NaN/Inf the reference does not. */
    relativeL2?: number | null;
    /** NaN/Inf values in the output. */
    nonFinite?: number;
    /** Largest |reference| value (beyond 65504 an fp16 buffer holds Inf). */
    maxAbsReference?: number;
    fp16Overflow?: boolean;
    reference?: string;
  };
}

export interface ProfileJson {
  format: typeof PROFILE_FORMAT;
  version: number;
  /** graph.json this profile was measured on: model name and, when known, the graph.json SHA-256. */
  graph: { model: string; sha256?: string };
  gpu: { name: string; arch?: string; peakTflops?: number; peakGbPerS?: number; driver?: string };
  /** ISO 8601 time of the measurement. */
  date: string;
  /** Measured runs (after warm-up runs, not counted). */
  runs: number;
  warmupRuns?: number;
  batch: number;
  /** Documentation of the units of the fields (fixed: ms, TFLOP/s, GB/s). */
  units?: { time: 'ms'; throughput: 'TFLOP/s'; bandwidth: 'GB/s' };
  /** End-to-end time of one run (may exceed the sum of the ops: launch gaps, host work). */
  totalMs?: number;
  ops: Record<string, OpProfile>;
}

/** A profile as loaded by the webview: its file name (for the legend and the compare picker) and content. */
export interface NamedProfile {
  name: string;
  profile: ProfileJson;
}
