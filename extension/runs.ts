/** Past runs (compiles, builds, benchmarks): what the runs view lists and reopens. Kept in the global state. */
import type { StateStore } from './ports';

export interface RunRecord {
  id: string;
  kind: 'compile' | 'bench';
  /** Model name (file name without .onnx). */
  model: string;
  modelFile: string;
  target: string;
  /** ISO time. */
  createdAt: string;
  /** Compile output directory (graph.json, bench.json). */
  outDir: string;
  ok: boolean;
  /** Remote host of a benchmark. */
  host?: string;
  /** p50 latency at the smallest benchmarked batch, in ms. */
  headlineLatencyMs?: number;
  headlineBatch?: number;
  /** Throughput benchmark: the best images/s (summed over GPUs at one batch size) and its batch size. */
  headlineItemsPerSecond?: number;
  errorCount: number;
}

const KEY = 'ait.runs';
const MAX_RUNS = 50;

export class RunStore {
  private readonly listeners: (() => void)[] = [];

  constructor(private readonly state: StateStore) {}

  list(): RunRecord[] {
    return this.state.get<RunRecord[]>(KEY) ?? [];
  }

  async add(run: Omit<RunRecord, 'id'>): Promise<RunRecord> {
    const record = { ...run, id: `${Date.parse(run.createdAt)}-${Math.random().toString(36).slice(2, 8)}` };
    await this.state.update(KEY, [record, ...this.list()].slice(0, MAX_RUNS));
    this.listeners.forEach((l) => l());
    return record;
  }

  async remove(id: string): Promise<void> {
    await this.state.update(
      KEY,
      this.list().filter((r) => r.id !== id),
    );
    this.listeners.forEach((l) => l());
  }

  onDidChange(listener: () => void): { dispose(): void } {
    this.listeners.push(listener);
    return { dispose: () => this.listeners.splice(this.listeners.indexOf(listener), 1) };
  }
}

/** `{results: [{batchSize, p50Ms, …}]}` as ait_bench prints it: the p50 at the smallest batch, or undefined. */
export function headlineLatency(results: readonly { ok: boolean; result: unknown }[]): { latencyMs: number; batch: number } | undefined {
  let best: { latencyMs: number; batch: number } | undefined;
  for (const r of results) {
    const entries = (r.result as { results?: { batchSize?: unknown; p50Ms?: unknown; meanMs?: unknown }[] } | null)?.results;
    if (!r.ok || !Array.isArray(entries)) continue;
    for (const e of entries) {
      const ms = typeof e.p50Ms === 'number' ? e.p50Ms : typeof e.meanMs === 'number' ? e.meanMs : undefined;
      if (typeof e.batchSize !== 'number' || ms === undefined) continue;
      if (!best || e.batchSize < best.batch || (e.batchSize === best.batch && ms < best.latencyMs))
        best = { latencyMs: ms, batch: e.batchSize };
    }
  }
  return best;
}

/**
 * `{mode: "throughput", results: [{batchSize, itemsPerSecond, p99Ms, …}]}` as ait_bench's throughput mode prints it,
 * one per GPU: images/s summed over the GPUs at each batch size, the best of those with the worst P99 among them.
 */
export function headlineThroughput(
  results: readonly { ok: boolean; result: unknown }[],
): { itemsPerSecond: number; batch: number; p99Ms: number } | undefined {
  const perBatch = new Map<number, { itemsPerSecond: number; p99Ms: number }>();
  for (const r of results) {
    const entries = (r.result as { results?: { mode?: unknown; batchSize?: unknown; itemsPerSecond?: unknown; p99Ms?: unknown }[] } | null)
      ?.results;
    if (!r.ok || !Array.isArray(entries)) continue;
    for (const e of entries) {
      if (e.mode !== 'throughput' || typeof e.batchSize !== 'number' || typeof e.itemsPerSecond !== 'number') continue;
      const sum = perBatch.get(e.batchSize) ?? { itemsPerSecond: 0, p99Ms: 0 };
      sum.itemsPerSecond += e.itemsPerSecond;
      if (typeof e.p99Ms === 'number') sum.p99Ms = Math.max(sum.p99Ms, e.p99Ms);
      perBatch.set(e.batchSize, sum);
    }
  }
  let best: { itemsPerSecond: number; batch: number; p99Ms: number } | undefined;
  for (const [batch, v] of perBatch) if (!best || v.itemsPerSecond > best.itemsPerSecond) best = { ...v, batch };
  return best;
}
