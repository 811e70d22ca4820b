/**
 * One build serves batch 1..max, and the best kernel instance can change with the batch: the instance heuristics
 * are evaluated at every batch, consecutive equal choices are merged into ranges, and the launch function picks the
 * range by the run's batch.
 */
export interface BatchRange<S> {
  firstBatch: number;
  lastBatch: number;
  source: S;
}

/** `choose(batch)` at every batch 1..maxBatch, merged into ranges of the same (===) choice. */
export function batchRanges<S>(maxBatch: number, choose: (batch: number) => S): BatchRange<S>[] {
  const ranges: BatchRange<S>[] = [];
  for (let batch = 1; batch <= maxBatch; batch++) {
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
