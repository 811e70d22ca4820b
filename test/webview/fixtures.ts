/**
 * Test fixtures for the graph webview. The compiler writes `epilogue`, `cost` and `status`; until the CUDA backend
 * chooses kernels, graph.json has no `kernel` field. These helpers add kernels (as documented in
 * docs/graph-format.md) to a COPY of a real compiled graph.json — keeping the compiler's own fields — and make
 * profile.json files for it. The kernel choices and profiles are fixtures, not compiler output.
 */
import type { GraphJson, NamedProfile, ProfileJson, ViewNodeJson } from '../../webview/contract';

/** Ops the fixture marks unsupported (data-dependent control flow and shapes, the way the backend will). */
export const FIXTURE_UNSUPPORTED_OPS = new Set(['Loop', 'If', 'NonZero', 'NonMaxSuppression']);

const TILES = [
  [128, 128, 64],
  [128, 256, 64],
  [256, 128, 64],
  [64, 128, 64],
];

/** Deterministic pseudo-random in [0, 1) from a string (FNV-1a). */
export function unitHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h / 2 ** 32;
}

export function fixtureKernelName(tile: number[], cluster: number[]): string {
  return `cutlass3x_sm90_tensorop_gemm_f16_f16_f32_f16_f16_${tile.join('x')}_${cluster.join('x')}_0_tnn_align8_warpspecialized_cooperative_epi_tma`;
}

/** A copy of the graph with kernel choices on GEMM-like nodes, epilogues, costs, and unsupported data-dependent ops. */
export function withBackendFixtures(graph: GraphJson): GraphJson {
  const copy = structuredClone(graph);
  copy.nodes = copy.nodes.map((raw, i) => {
    const n = raw as ViewNodeJson;
    if (!n.status)
      n.status = FIXTURE_UNSUPPORTED_OPS.has(n.op)
        ? { supported: false, reason: `${n.op}: data-dependent, runs on the host (fixture)` }
        : { supported: true };
    n.cost ??= { flops: Math.round(1e9 * (0.1 + unitHash(n.id + 'f'))), bytes: Math.round(1e7 * (0.1 + unitHash(n.id + 'b'))), batch: 1 };
    if (['conv2d', 'gemm', 'Conv', 'Gemm', 'MatMul'].includes(n.op)) {
      const tile = TILES[i % TILES.length];
      const cluster = [1, (i % 2) + 1, 1];
      const name = fixtureKernelName(tile, cluster);
      n.epilogue ??= n.op === 'MatMul' ? [] : ['bias', 'relu'];
      n.kernel = {
        library: 'cutlass',
        name,
        config: { tile, cluster, stages: 4, schedule: 'KernelTmaWarpSpecializedCooperative', splitK: 1, alignment: 8 },
        // two chosen (one per batch range), one failed, as a measured choice lists them (docs/graph-format.md)
        candidates: [
          {
            name,
            timeMs: 0.05,
            batch: 256,
            config: `sm90 ${tile.join('x')}, cluster ${cluster.join('x')}, cooperative`,
            timesMs: { '1': 0.02, '256': 0.05 },
            chosen: true,
          },
          {
            name: fixtureKernelName([64, 64, 64], [1, 1, 1]),
            timeMs: 0.09,
            batch: 256,
            config: 'sm90 64x64x64, cluster 1x1x1, pingpong',
            timesMs: { '1': 0.01, '256': 0.09 },
            chosen: true,
          },
          { name: fixtureKernelName([256, 256, 64], [2, 1, 1]), timeMs: null, batch: 256, error: 'exceeds shared memory (fixture)' },
        ],
        reason: 'fastest of 3 profiled candidates (fixture)',
        source: { file: `src/${n.id}.cu`, line: 1 },
      };
    }
    return n;
  });
  return copy;
}

/**
 * A profile with pseudo-random op times in [0.01, 0.21) ms, except `slowest` (given `slowestMs`); every
 * id in `scaled` has its time multiplied by the factor (for before/after comparisons).
 */
export function fixtureProfile(
  graph: GraphJson,
  opts: { slowest: string; slowestMs: number; scaled?: Record<string, number>; gpu?: string },
): ProfileJson {
  const ops: ProfileJson['ops'] = {};
  for (const n of graph.nodes) {
    if ((n as ViewNodeJson).status?.supported === false) continue;
    const base = n.id === opts.slowest ? opts.slowestMs : 0.01 + 0.2 * unitHash(n.id);
    ops[n.id] = { meanMs: base * (opts.scaled?.[n.id] ?? 1), error: { maxAbs: 1e-4 * unitHash(n.id + 'e'), reference: 'interpreter' } };
  }
  return {
    format: 'ait-profile',
    version: 1,
    graph: { model: graph.model.name },
    gpu: { name: opts.gpu ?? 'NVIDIA H100 80GB HBM3 (fixture)', arch: 'sm90', peakTflops: 989, peakGbPerS: 3350 },
    date: '2025-01-01T00:00:00Z',
    runs: 100,
    warmupRuns: 10,
    batch: 1,
    units: { time: 'ms', throughput: 'TFLOP/s', bandwidth: 'GB/s' },
    ops,
  };
}

export type { NamedProfile };

/** A synthetic graph shaped like a deep network: `blocks` blocks of `perBlock` nodes (chains, a fan-out and a residual join). */
export function syntheticGraph(blocks: number, perBlock: number): GraphJson {
  const nodes: GraphJson['nodes'] = [];
  const tensors: GraphJson['tensors'] = { input: { dtype: 'float16', shape: [1, 1024], kind: 'input', maxBytes: 2048 } };
  let prev = 'input';
  for (let b = 0; b < blocks; b++) {
    const blockInput = prev;
    for (let i = 0; i < perBlock; i++) {
      const id = `n${nodes.length}`;
      const out = `t${nodes.length}`;
      const sub = `sub.${Math.floor(i / 10)}`;
      // Every tenth node joins the block input back in (residual); the rest chain.
      const inputs = i % 10 === 9 ? [prev, blockInput] : [prev];
      nodes.push({
        id,
        op: i % 10 === 9 ? 'Add' : i % 3 === 0 ? 'MatMul' : 'Relu',
        name: `/blocks.${b}/${sub}/op_${i}`,
        inputs,
        outputs: [out],
        attrs: {},
        sourceNodes: [`op_${b}_${i}`],
        scope: ['blocks', `blocks.${b}`, sub],
      });
      tensors[out] = { dtype: 'float16', shape: [1, 1024], kind: 'activation', maxBytes: 2048 };
      prev = out;
    }
  }
  return {
    format: 'ait-graph',
    version: 1,
    model: {
      name: `synthetic_${blocks * perBlock}`,
      producer: { name: 'bench', version: '0' },
      irVersion: 10,
      opsets: { '': 18 },
      weights: 'none',
    },
    symbols: [],
    removed: [],
    name: 'synthetic',
    inputs: ['input'],
    outputs: [prev],
    tensors,
    nodes,
  };
}
