/**
 * global_pool (NHWC / NDHWC mean or max over the spatial axes → [N, C]) to kernels/pooling.cuh
 * launch_global_pool_nhwc: blocks of channel lanes × position rows per (image, channel chunk), the positions split
 * over several blocks (fp32 partials in the workspace, combined by a second kernel) when n · chunks alone does not
 * fill the GPU. globalPoolPlan is the C++ global_pool_plan, step for step (test/backends/cuda/global-pool.test.ts
 * replays the kernel's partition with it); the workspace is sized for the largest split at the dims' largest values.
 */
import { Node, attrString } from '../../../ir/graph';
import { CodegenContext } from './context';
import type { KernelChoice } from './lower';

/** pooling.cuh constants: kGlobalPoolThreads, kGlobalPoolMaxLanes, kGlobalPoolTargetBlocks, kGlobalPoolMaxSplits, kGlobalPoolMinPerRow. */
export const GLOBAL_POOL = { threads: 256, maxLanes: 32, targetBlocks: 512, maxSplits: 256, minPerRow: 4 } as const;

export interface GlobalPoolPlan {
  /** channels per lane load */
  vec: number;
  /** blockDim.x (along channels), blockDim.y (along positions) */
  lanes: number;
  rows: number;
  /** channel chunks of lanes · vec channels per image (grid.x = n · chunks) */
  chunks: number;
  /** blocks per (image, chunk) along the positions (grid.y); 1: no workspace */
  splits: number;
  /** positions per split */
  perSplit: number;
}

const ceilDiv = (a: number, b: number) => Math.floor((a + b - 1) / b);

/** The block shape for `c` channels read `vec` at a time. */
function blockShape(c: number, vec: number) {
  const groups = Math.floor(c / vec);
  let lanes = 1;
  while (lanes < groups && lanes < GLOBAL_POOL.maxLanes) lanes *= 2;
  return { lanes, rows: GLOBAL_POOL.threads / lanes, chunks: ceilDiv(groups, lanes) };
}

/** The split count before the workspace limit and the no-empty-split rounding (an upper bound of the final one). */
function wantedSplits(n: number, spatial: number, rows: number, chunks: number): number {
  const blocks = n * chunks;
  if (blocks >= GLOBAL_POOL.targetBlocks) return 1;
  return Math.min(ceilDiv(GLOBAL_POOL.targetBlocks, blocks), Math.floor(spatial / (rows * GLOBAL_POOL.minPerRow)), GLOBAL_POOL.maxSplits);
}

/** pooling.cuh global_pool_plan: the launch for [n, spatial, c] with `vec` channels per load and `workspaceBytes`. */
export function globalPoolPlan(n: number, spatial: number, c: number, vec: number, workspaceBytes: number): GlobalPoolPlan {
  const { lanes, rows, chunks } = blockShape(c, vec);
  let splits = wantedSplits(n, spatial, rows, chunks);
  if (splits > 1) splits = Math.min(splits, Math.floor(workspaceBytes / (n * c * 4)));
  if (splits < 2) splits = 1;
  if (spatial <= 0) return { vec, lanes, rows, chunks, splits: 1, perSplit: 0 };
  const perSplit = ceilDiv(spatial, splits);
  return { vec, lanes, rows, chunks, splits: ceilDiv(spatial, perSplit), perSplit };
}

/**
 * Workspace bytes that let every run split as it wants: the fp32 partials [splits, n, c] at their largest over
 * n ≤ maxN (the split shrinks as n grows: only n · chunks < the target splits) and either load width (the 16-byte
 * path depends on run-time alignment), at the largest spatial size (the split grows with it).
 */
export function globalPoolWorkspaceBytes(maxN: number, maxSpatial: number, c: number, elementBytes: number): number {
  const vector = 16 / elementBytes;
  let bytes = 0;
  for (const vec of c % vector === 0 ? [1, vector] : [1]) {
    const { rows, chunks } = blockShape(c, vec);
    for (let n = 1; n <= maxN && n * chunks < GLOBAL_POOL.targetBlocks; n++) {
      const splits = wantedSplits(n, maxSpatial, rows, chunks);
      if (splits > 1) bytes = Math.max(bytes, splits * n * c * 4);
    }
  }
  return bytes;
}

export function lowerGlobalPool(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[], number] {
  const out = node.outputs[0];
  const x = ctx.shapeOf(node.inputs[0]);
  const kind = attrString(node, 'kind', 'avg');
  const spatial = x.slice(1, -1);
  const channels = x[x.length - 1];
  const workspace = globalPoolWorkspaceBytes(
    ctx.maxOf(x[0]),
    spatial.reduce<number>((p, d) => p * ctx.maxOf(d), 1),
    ctx.maxOf(channels),
    2,
  );
  const choice: KernelChoice = {
    library: 'ait',
    name: `ait_global_pool_${kind}_f16`,
    reason:
      'channel lanes (16-byte loads when C % 8 == 0) × position rows per block, fp32 sums; the positions split over blocks ' +
      '(fp32 partials in the workspace) when n·C alone does not fill the GPU',
    config: {},
  };
  return [
    choice,
    [
      `ait::kernels::GlobalPoolArgs<__half> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(out, true)}, ${ctx.dim(x[0], node)}, ${ctx.product(spatial, node)}, ${ctx.dim(channels, node)},`,
      `                                          ait::kernels::PoolMode::${kind === 'max' ? 'kMax' : 'kAverage'}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_global_pool_nhwc(args, c.workspace, c.workspace_bytes, c.stream));',
    ],
    ['pooling.cuh'],
    workspace,
  ];
}
