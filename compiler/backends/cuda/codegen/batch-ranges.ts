/**
 * One build serves batch 1..max, and the best kernel instance can change with the batch: consecutive batches with
 * the same instance form a range, and the launch function picks the range by the run's batch.
 *
 * The ranges are found from breakpoints, not by evaluating the heuristic at every batch: the heuristic says what it
 * compares (`BatchDecisions`, next to each heuristic), every compared quantity grows with the batch, so the choice can
 * only change where one of them crosses its threshold (found by binary search) or, for a quantity whose every value
 * matters (wave quantization), where it changes while below its cap. The heuristic is then evaluated at batch 1, at
 * max, and on both sides of each breakpoint: the cost grows with the number of breakpoints and log(max), not with max.
 */
export interface BatchRange<S> {
  firstBatch: number;
  lastBatch: number;
  source: S;
}

/**
 * Largest batch one build serves (`ait compile --max-batch`, or the batch dim's upper bound). A fixed limit: the
 * memory plan, the instance choice per batch range and the generated dispatch are made for batch 1..max, and larger
 * builds are untested. Whether a model's activations fit the GPU at that batch is what the compile's arena size says.
 */
export const MAX_BATCH = 65536;

/** What a batch-dependent heuristic compares. Every `value` must be non-decreasing in the batch. */
export interface BatchDecisions {
  /** Comparisons `value(batch) >= threshold` (a `>` is a `>=` of threshold + 1 for integers): each flips once. */
  thresholds?: { value: (batch: number) => number; threshold: number }[];
  /** Quantities any change of which can change the choice while the value is below `below` (e.g. `tiles % SMs`). */
  steps?: { value: (batch: number) => number; below: number }[];
}

/** The smallest batch in lo..hi where `holds` (false then true, monotone) is true, or undefined. */
function firstWhere(lo: number, hi: number, holds: (batch: number) => boolean): number | undefined {
  if (lo > hi || !holds(hi)) return undefined;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (holds(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Batches in 2..maxBatch at which the choice may differ from the batch before (sorted, unique). */
export function decisionBatches(maxBatch: number, decisions: BatchDecisions): number[] {
  const found = new Set<number>();
  for (const { value, threshold } of decisions.thresholds ?? []) {
    const b = firstWhere(1, maxBatch, (batch) => value(batch) >= threshold);
    if (b !== undefined && b > 1) found.add(b);
  }
  for (const { value, below } of decisions.steps ?? []) {
    let batch = 1;
    let v = value(batch);
    while (v < below) {
      const current = v;
      const next = firstWhere(batch + 1, maxBatch, (b) => value(b) > current);
      if (next === undefined) break;
      found.add(next);
      batch = next;
      v = value(batch);
    }
  }
  return [...found].sort((a, b) => a - b);
}

/**
 * The choice by batch range over 1..maxBatch, merged into ranges of the same (===) choice. `choose` is called in
 * increasing batch order, at 1, maxBatch and on both sides of each breakpoint of `decisions` (so side effects such as
 * registering an instance happen in the order of the ranges, and a quantity growing with the batch is seen at the last
 * batch of each range).
 */
export function batchRanges<S>(maxBatch: number, decisions: BatchDecisions, choose: (batch: number) => S): BatchRange<S>[] {
  const points = new Set<number>([1, maxBatch]);
  for (const b of decisionBatches(maxBatch, decisions)) points.add(b - 1).add(b);
  const ranges: BatchRange<S>[] = [];
  for (const batch of [...points].sort((a, b) => a - b)) {
    const source = choose(batch);
    const last = ranges[ranges.length - 1];
    if (last && last.source === source) last.lastBatch = batch;
    else ranges.push({ firstBatch: batch, lastBatch: batch, source });
  }
  return ranges;
}

/** C++ lines calling `call(range.source)`: directly for one range, else an if/else chain on `batch`. */
export function dispatchByBatch<S>(ranges: readonly BatchRange<S>[], call: (source: S) => string): string[] {
  if (ranges.length === 1) return [call(ranges[0].source)];
  const lines: string[] = [];
  ranges.forEach((range, index) => {
    if (index === 0) lines.push(`if (batch <= ${range.lastBatch}) {`);
    else if (index < ranges.length - 1) lines.push(`} else if (batch <= ${range.lastBatch}) {`);
    else lines.push('} else {');
    lines.push(`  ${call(range.source)}`);
  });
  lines.push('}');
  return lines;
}
