/** What the profile cache keys and stores: the device a measurement was taken on, and one candidate's measurement. */

/**
 * The device and software a measurement holds for. Every field is part of the cache key: a measurement taken with
 * another driver, CUDA or CUTLASS version, or on a GPU with another SM count, is not reused.
 */
export interface DeviceKey {
  /** GPU name as the driver reports it, e.g. "NVIDIA H200". */
  gpu: string;
  /** Number of SMs (a partitioned GPU has fewer). */
  sms: number;
  /** Driver version. */
  driver: string;
  /** CUDA version the profilers were built with. */
  cuda: string;
  /** CUTLASS version, e.g. "4.7.0" (a ROCm backend may put its CK version here). */
  cutlass: string;
}

export type MeasurementStatus = 'ok' | 'build-failed' | 'launch-failed' | 'mismatch';

export const MEASUREMENT_STATUSES: readonly MeasurementStatus[] = ['ok', 'build-failed', 'launch-failed', 'mismatch'];

/** One candidate kernel of one op signature, timed (or failed) at one batch. */
export interface Measurement {
  /** The op signature, e.g. "gemm sm90 m=1..256*197 n=768 k=768 f16 tnt bias+gelu"; opaque to the cache. */
  signature: string;
  /** The instance name (CUTLASS procedural name). */
  candidate: string;
  /** The batch it was measured at. */
  batch: number;
  status: MeasurementStatus;
  /** Median time in microseconds, when status is ok. */
  medianUs?: number;
  /** The candidate's configuration (tile, cluster, schedule, stages, split-K, ...). */
  config?: Record<string, unknown>;
  /** Why it failed. */
  message?: string;
}
