/**
 * Kernel candidates for profiling: the CUTLASS configurations worth timing for a GEMM, batched GEMM or convolution
 * signature on a target.
 *
 * The lists are short and fixed per (arch, op kind), pruned per problem only by what cannot run or cannot win
 * (a tile wider than the problem's N, stream-K on a short K, a 256-row tile on a few hundred rows). Fixed lists keep
 * the number of distinct instances — the build cost of profiling, ~27 s of nvcc per sm90 instance on a 16-core host —
 * proportional to the model's distinct epilogues, not to its layers: every layer with the same epilogue shares the
 * candidates' object files. The no-profiling heuristic's choice is always a candidate, so a profiled build is never
 * slower than the heuristic on what was measured.
 */
import {
  ConvChoice,
  ConvConfig,
  ConvEpilogueStep,
  ConvProblem,
  Sm80ConvConfig,
  Sm90ConvConfig,
  chooseConv,
  emitConv,
} from '../cutlass/conv';
import {
  BatchedGemmLayout,
  EmittedInstance,
  GemmEpilogue,
  GemmProblem,
  Sm80GemmConfig,
  Sm90GemmConfig,
  chooseSm80Gemm,
  chooseSm90Gemm,
  emitSm80Gemm,
  emitSm90Gemm,
  gemmAlignment,
} from '../cutlass/gemm';
import type { CudaArch } from '../codegen/gemm-lowering';

/**
 * A configuration worth timing and its instance (a CUTLASS instance here; a Composable Kernel instance for the ROCm
 * backend, backends/rocm/ck/profiling.ts), named as measurements name it. `description`: the configuration as
 * graph.json shows it, where describeConfig does not know the configuration.
 */
export interface Candidate<C, I extends { name: string } = EmittedInstance> {
  config: C;
  instance: I;
  description?: string;
}

type Tile = [number, number, number];

/** sm90 (CUTLASS 3.x) GEMM configurations tried; alignment is filled in per problem. */
const SM90_GEMM: Omit<Sm90GemmConfig, 'alignment'>[] = [
  { arch: 'sm90', tile: [64, 128, 64], cluster: [1, 1, 1], schedule: 'pingpong' },
  { arch: 'sm90', tile: [64, 128, 64], cluster: [2, 1, 1], schedule: 'pingpong' },
  { arch: 'sm90', tile: [64, 256, 64], cluster: [1, 1, 1], schedule: 'pingpong' },
  { arch: 'sm90', tile: [128, 128, 64], cluster: [1, 2, 1], schedule: 'pingpong' },
  { arch: 'sm90', tile: [128, 128, 64], cluster: [1, 2, 1], schedule: 'cooperative' },
  { arch: 'sm90', tile: [128, 128, 64], cluster: [1, 2, 1], schedule: 'cooperative', scheduler: 'streamk' },
  { arch: 'sm90', tile: [128, 256, 64], cluster: [1, 2, 1], schedule: 'cooperative' },
  { arch: 'sm90', tile: [256, 128, 64], cluster: [2, 1, 1], schedule: 'cooperative' },
];

/** sm80 (CUTLASS 2.x multistage) GEMM tiles tried: [tile, warps, stages]. */
const SM80_GEMM: [Tile, Tile, number][] = [
  [[128, 128, 32], [64, 64, 32], 3],
  [[128, 128, 64], [64, 64, 64], 3],
  [[128, 256, 32], [64, 64, 32], 3],
  [[256, 128, 32], [64, 64, 32], 3],
  [[128, 64, 32], [64, 32, 32], 4],
  [[64, 128, 32], [32, 64, 32], 4],
  [[64, 64, 32], [32, 32, 32], 4],
];

/** sm90 implicit-GEMM conv tiles tried (the non-persistent TMA warp-specialized kernel). */
const SM90_CONV: Pick<Sm90ConvConfig, 'tile' | 'cluster'>[] = [
  { tile: [64, 128, 64], cluster: [1, 1, 1] },
  { tile: [128, 64, 64], cluster: [1, 1, 1] },
  { tile: [128, 128, 64], cluster: [1, 1, 1] },
  { tile: [128, 128, 64], cluster: [2, 1, 1] },
];

/** sm80 (2.x optimized iterator) conv tiles tried: [tile, warps, stages]; on sm90 too (they win on large problems). */
const SM80_CONV: [Tile, Tile, number][] = [
  [[128, 128, 32], [64, 64, 32], 3],
  [[128, 64, 32], [64, 32, 32], 3],
  [[64, 128, 32], [32, 64, 32], 3],
  [[64, 64, 32], [32, 32, 32], 4],
  [[256, 64, 32], [64, 64, 32], 3],
  // 32 output channels (DenseNet's growth convs, narrow heads): every tile above is at least half empty in N
  [[128, 32, 32], [64, 32, 32], 4],
];

/**
 * One candidate per instance name: measurements are keyed by name, and the name encodes what differs between the
 * lists' entries (tile, stages, cluster, schedule, alignment, epilogue), so an equal name is the same kernel.
 */
function dedupe<C>(list: Candidate<C>[]): Candidate<C>[] {
  const byName = new Map<string, Candidate<C>>();
  for (const c of list) if (!byName.has(c.instance.name)) byName.set(c.instance.name, c);
  return [...byName.values()];
}

/**
 * GEMM candidates for a signature, given its problems at the profiled batches (smallest first). `sm90Instance`: the
 * lowering runs 3.x instances (on sm90 with N and K multiples of 8); otherwise 2.x ones.
 */
export function gemmCandidates(
  arch: CudaArch,
  sm90Instance: boolean,
  problems: readonly GemmProblem[],
  epilogue: GemmEpilogue,
  batched: BatchedGemmLayout | undefined,
): Candidate<Sm90GemmConfig | Sm80GemmConfig>[] {
  const largest = problems[problems.length - 1];
  const rows = Math.max(...problems.map((p) => p.m * (p.batch ?? 1)));
  const alignment = gemmAlignment(largest);
  const reason = (what: string) => `profiling candidate (${what})`;
  const out: Candidate<Sm90GemmConfig | Sm80GemmConfig>[] = [];
  if (sm90Instance) {
    for (const base of [chooseSm90Gemm(problems[0]).config, chooseSm90Gemm(largest).config])
      out.push({ config: base, instance: emitSm90Gemm(base, epilogue, reason('heuristic'), batched) });
    for (const c of SM90_GEMM) {
      const [tm, tn] = c.tile;
      if (tn > 128 && largest.n <= 128) continue; // a 256-wide tile on N ≤ 128 is at least half empty
      if (tm >= 256 && rows < 4096) continue;
      if (c.scheduler === 'streamk' && largest.k < 1024) continue; // nothing to split
      if (c.cluster[0] > 1 && rows <= tm) continue; // the cluster's second CTA would have no rows
      const config: Sm90GemmConfig = { ...c, alignment };
      out.push({ config, instance: emitSm90Gemm(config, epilogue, reason('sm90 list'), batched) });
    }
    return dedupe(out);
  }
  for (const p of [problems[0], largest]) {
    const base = chooseSm80Gemm(p).config;
    out.push({ config: base, instance: emitSm80Gemm(base, epilogue, reason('heuristic'), batched) });
  }
  if (alignment === 1) return dedupe(out); // only the sm75-style align1 kernel takes odd K or N
  for (const [tile, warps, stages] of SM80_GEMM) {
    if (tile[1] > 128 && largest.n <= 128) continue;
    if (tile[0] >= 256 && rows < 4096) continue;
    const config: Sm80GemmConfig = { arch: 'sm80', tile, warps, stages, alignment };
    out.push({ config, instance: emitSm80Gemm(config, epilogue, reason('sm80 list'), batched) });
  }
  return dedupe(out);
}

/**
 * Convolution candidates for a signature (ungrouped, not depthwise), given its problems at the profiled batches.
 * Grouped convolutions and few-channel (C < 8) ones keep the heuristic's instance only.
 */
export function convCandidates(
  arch: CudaArch,
  problems: readonly ConvProblem[],
  steps: readonly ConvEpilogueStep[],
): Candidate<ConvConfig>[] {
  const choices: ConvChoice[] = [chooseConv(problems[0], arch), chooseConv(problems[problems.length - 1], arch)];
  const out: Candidate<ConvConfig>[] = choices.map((c) => ({
    config: c.config,
    instance: emitConv({ config: c.config, reason: 'profiling candidate (heuristic)' }, steps),
  }));
  const p = problems[problems.length - 1];
  if (p.group !== 1 || p.c < 8 || p.c % 2 !== 0) return dedupe(out);
  const rows = p.n * p.p * p.q;
  if (arch === 'sm90' && p.c % 8 === 0 && p.k % 8 === 0 && Math.max(...p.strides) <= 8)
    for (const c of SM90_CONV) {
      if (c.cluster[0] > 1 && problems[0].n * p.p * p.q <= c.tile[0]) continue;
      const config: Sm90ConvConfig = { arch: 'sm90', tile: c.tile, cluster: c.cluster, alignment: 8 };
      out.push({ config, instance: emitConv({ config, reason: 'profiling candidate (sm90 list)' }, steps) });
    }
  const inputAlignment = [8, 4, 2].find((a) => p.c % a === 0) ?? 2;
  const outputAlignment = [8, 4, 2, 1].find((a) => p.k % a === 0) ?? 1;
  for (const [tile, warps, stages] of SM80_CONV) {
    if (tile[1] > 64 && p.k <= 64) continue;
    if (tile[1] < 64 && p.k > 32) continue; // a 32-wide N tile only where wider ones are half empty
    if (tile[0] >= 256 && rows < 4096) continue;
    const config: Sm80ConvConfig = { arch: 'sm80', tile, warps, stages, iterator: 'optimized', inputAlignment, outputAlignment };
    out.push({ config, instance: emitConv({ config, reason: 'profiling candidate (sm80 list)' }, steps) });
  }
  return dedupe(out);
}

/** A configuration in graph.json form (what the details panel shows next to a candidate). */
export function describeConfig(config: Sm90GemmConfig | Sm80GemmConfig | ConvConfig): string {
  const parts = [`${config.arch} ${config.tile.join('x')}`];
  if ('cluster' in config) parts.push(`cluster ${config.cluster.join('x')}`);
  if ('schedule' in config) parts.push(config.schedule);
  if ('scheduler' in config && config.scheduler === 'streamk') parts.push('stream-K');
  if ('stages' in config) parts.push(`${config.stages} stages`);
  if ('iterator' in config) parts.push(config.iterator);
  return parts.join(', ');
}
