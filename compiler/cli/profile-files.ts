/**
 * profile.json files (docs/graph-format.md) from the runtime's per-op profiles, as the native binding returns them
 * in a bench result. They land next to graph.json, where `ait graph --profile` and the VS Code graph panel (which
 * watches `*profile*.json`) pick them up.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OpProfile, ProfileJson } from '../../webview/contract';

/** The runtime's profile JSON (ait_runtime.cu), with the batch it was measured at. */
export interface RuntimeProfile {
  model: string;
  runs: number;
  batchSize?: number;
  lastBatch?: number;
  totalMeanMs?: number;
  timer?: string;
  ops: { id: string; name: string; kernel: string; calls: number; meanMs: number; minMs?: number; maxMs?: number }[];
}

export function profileFromRuntime(runtime: RuntimeProfile, gpu: { name: string; arch?: string }, date = new Date()): ProfileJson {
  const ops: Record<string, OpProfile> = {};
  for (const op of runtime.ops) {
    // calls counts every profiled run; a fused op may launch more than one kernel per run
    const launches = runtime.runs > 0 ? Math.max(1, Math.round(op.calls / runtime.runs)) : 1;
    ops[op.id] = { meanMs: op.meanMs * launches, minMs: op.minMs, launches };
  }
  return {
    format: 'ait-profile',
    version: 1,
    graph: { model: runtime.model },
    gpu,
    date: date.toISOString(),
    runs: runtime.runs,
    batch: runtime.batchSize ?? runtime.lastBatch ?? 1,
    units: { time: 'ms', throughput: 'TFLOP/s', bandwidth: 'GB/s' },
    totalMs: runtime.totalMeanMs,
    ops,
  };
}

/** Writes DIR/profile-b<batch>[-gpu<k>].json for every runtime profile in a bench result; returns the files written. */
export function writeProfiles(dir: string, benchResult: unknown, gpu: { index: number | null; name: string; arch?: string }): string[] {
  const profiles = (benchResult as { profiles?: RuntimeProfile[] } | null)?.profiles;
  if (!Array.isArray(profiles)) return [];
  const written: string[] = [];
  for (const p of profiles) {
    if (!p || !Array.isArray(p.ops)) continue;
    const profile = profileFromRuntime(p, { name: gpu.name, arch: gpu.arch });
    const file = path.join(dir, `profile-b${profile.batch}${gpu.index !== null && gpu.index > 0 ? `-gpu${gpu.index}` : ''}.json`);
    fs.writeFileSync(file, JSON.stringify(profile, null, 2) + '\n');
    written.push(file);
  }
  return written;
}
