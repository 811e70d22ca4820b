/**
 * Measured kernel choice: what the GEMM and conv lowerings ask instead of their heuristics when a compile has
 * profiling data, and what they tell it so that a profiler can be generated.
 *
 * Each op is described by a signature (its problem as a function of the batch, its epilogue, layout and target: ops
 * with equal signatures are interchangeable for timing, in one model or across models) and its candidates
 * (candidates.ts). Problems are timed at the profiled batches: the powers of two up to the build's max batch, and the
 * max batch. A batch b runs the candidate fastest at the smallest profiled batch ≥ b; consecutive batches with the same
 * choice form one range of the launch function's dispatch. Batches whose profiled batch has no successful measurement
 * keep the heuristic's instance, and the reason says so.
 */
import type { Measurement } from '../../../profiling/types';
import type { EmittedInstance } from '../cutlass/gemm';
import type { BatchRange } from '../codegen/batch-ranges';
import type { Candidate } from './candidates';
import { describeConfig } from './candidates';
import type { ConvProblem } from '../cutlass/conv';
import type { GemmProblem } from '../cutlass/gemm';

/** CUDA profiles GEMMs and convolutions; the ROCm backend also its CK row ops and attention (rocm/ck/profiling.ts). */
export type ProfiledKind = 'gemm' | 'batched_gemm' | 'conv' | 'layernorm' | 'softmax' | 'attention';

/** Epilogue steps as the profiler's reference applies them, in order. */
export type ProfiledStep = 'bias' | 'scale' | 'residual_add' | string;

/** One op signature to profile. */
export interface ProfiledOp {
  signature: string;
  kind: ProfiledKind;
  /** graph.json ids of the nodes with this signature. */
  nodes: string[];
  /** The profiled batches, smallest first, and the op's problem at each (a CK instance's arguments on ROCm). */
  batches: number[];
  problems: (GemmProblem | ConvProblem | Record<string, unknown>)[];
  /** CUTLASS workspace bytes each candidate may ask at the largest problem (stream-K). */
  workspaceBytes: number;
  steps: ProfiledStep[];
  layoutB?: 'column' | 'row';
  candidates: Candidate<object, { name: string }>[];
}

/** A candidate as graph.json's kernel.candidates lists it (docs/graph-format.md). */
export interface CandidateReport {
  name: string;
  config: string;
  /** Median at the largest profiled batch (`batch`), null when it was not timed there. */
  timeMs: number | null;
  batch: number;
  /** Median by profiled batch. */
  timesMs: Record<string, number | null>;
  error?: string;
  chosen?: boolean;
}

/** Where measurements come from: a lookup by signature (the profile cache for one device, or a results file). */
export interface MeasurementSource {
  /** Which device the measurements are of, for reasons and graph.json (e.g. "NVIDIA H200, 132 SMs"). */
  device: string;
  lookup(signature: string): readonly Measurement[];
  /** Every measurement, where the source holds them as data (so a compile in a worker thread can get them). */
  readonly all?: readonly Measurement[];
}

/** A source over measurements held in memory (a snapshot of the profile cache, profiler output files). */
export function memorySource(device: string, measurements: readonly Measurement[]): MeasurementSource {
  const bySignature = new Map<string, Measurement[]>();
  for (const m of measurements) bySignature.set(m.signature, [...(bySignature.get(m.signature) ?? []), m]);
  return { device, lookup: (s) => bySignature.get(s) ?? [], all: measurements };
}

export interface KernelProfilingOptions {
  maxBatch: number;
  measurements?: MeasurementSource;
  /** Record every op's signature and candidates (for generating a profiler). */
  collect?: boolean;
}

/** Powers of two up to maxBatch, and maxBatch. */
export function profiledBatches(maxBatch: number): number[] {
  const out: number[] = [];
  for (let b = 1; b < maxBatch; b *= 2) out.push(b);
  out.push(maxBatch);
  return out;
}

export interface MeasuredChoice<S> {
  ranges: BatchRange<S>[];
  reasons: Map<number, string>;
  candidates: CandidateReport[];
  /** Batches that kept the heuristic's instance (no successful measurement). */
  unmeasured: number[];
}

export class KernelProfiling {
  readonly ops = new Map<string, ProfiledOp>();
  readonly batches: number[];

  constructor(readonly options: KernelProfilingOptions) {
    this.batches = profiledBatches(options.maxBatch);
  }

  get active(): boolean {
    return Boolean(this.options.collect || this.options.measurements);
  }

  /** Records an op signature (merging nodes that share it). */
  record(op: Omit<ProfiledOp, 'nodes'>, nodeId: string): void {
    if (!this.options.collect) return;
    const known = this.ops.get(op.signature);
    if (known) {
      if (!known.nodes.includes(nodeId)) known.nodes.push(nodeId);
      return;
    }
    this.ops.set(op.signature, { ...op, nodes: [nodeId] });
  }

  /**
   * The measured choice for a signature, or undefined when there are no measurements of it at all (the caller keeps
   * its heuristic). `register` turns a candidate instance into the caller's source; `fallback` gives the heuristic's
   * source for a batch.
   */
  choose<S, I extends { name: string } = EmittedInstance>(
    signature: string,
    candidates: readonly Candidate<object, I>[],
    register: (instance: I) => S,
    fallback: (batch: number) => { source: S; reason: string },
  ): MeasuredChoice<S> | undefined {
    const measured = this.options.measurements?.lookup(signature) ?? [];
    if (measured.length === 0) return undefined;
    const byName = new Map(candidates.map((c) => [c.instance.name, c]));
    const largest = this.batches[this.batches.length - 1];
    // the report: every candidate with its times by batch
    const reports = new Map<string, CandidateReport>();
    for (const c of candidates)
      reports.set(c.instance.name, {
        name: c.instance.name,
        config: c.description ?? describeConfig(c.config as never),
        timeMs: null,
        batch: largest,
        timesMs: Object.fromEntries(this.batches.map((b) => [String(b), null])),
      });
    for (const m of measured) {
      const r = reports.get(m.candidate);
      if (!r || !this.batches.includes(m.batch)) continue;
      if (m.status === 'ok' && m.medianUs !== undefined) {
        r.timesMs[String(m.batch)] = m.medianUs / 1000;
        if (m.batch === largest) r.timeMs = m.medianUs / 1000;
      } else if (!r.error) r.error = `${m.status}${m.message ? `: ${m.message}` : ''} (batch ${m.batch})`;
    }
    const ranges: BatchRange<S>[] = [];
    const reasons = new Map<number, string>();
    const unmeasured: number[] = [];
    const sourceOf = new Map<string, S>();
    let first = 1;
    for (const b of this.batches) {
      let best: { name: string; us: number } | undefined;
      let timed = 0;
      for (const m of measured) {
        if (m.batch !== b || m.status !== 'ok' || m.medianUs === undefined || !byName.has(m.candidate)) continue;
        timed++;
        if (!best || m.medianUs < best.us) best = { name: m.candidate, us: m.medianUs };
      }
      let source: S;
      let reason: string;
      if (best) {
        const name = best.name;
        source = sourceOf.get(name) ?? register(byName.get(name)!.instance);
        sourceOf.set(name, source);
        reports.get(name)!.chosen = true;
        reason = `fastest of ${timed} profiled candidates at batch ${b} on ${this.options.measurements!.device}: ${best.us.toFixed(1)} µs`;
      } else {
        const f = fallback(b);
        source = f.source;
        reason = `no successful measurement at batch ${b}: ${f.reason}`;
        unmeasured.push(b);
      }
      const last = ranges[ranges.length - 1];
      if (last && last.source === source) last.lastBatch = b;
      else {
        ranges.push({ firstBatch: first, lastBatch: b, source });
        reasons.set(first, reason);
      }
      first = b + 1;
    }
    return { ranges, reasons, candidates: [...reports.values()], unmeasured };
  }
}

/** The problem of a GEMM signature as text: sizes as functions of the batch b where they grow with it. */
export function batchTerm(name: string, at: (batch: number) => number, batches: readonly number[]): string {
  const one = at(1);
  if (batches.every((b) => at(b) === one)) return `${name}=${one}`;
  if (batches.every((b) => at(b) === one * b)) return `${name}=${one}*b`;
  return `${name}=[${batches.map(at).join(',')}]`;
}
