/**
 * InstanceNormalization (any rank ≥ 3) and GroupNormalization (opset 18: per-group scale/bias; 21: per-channel) to
 * kernels/group_norm.cuh: one block per (image, group), or, for few (image, group) pairs of large groups (decided at
 * run time from the device's SM count), each group split over up to 64 blocks whose partial statistics are combined
 * (Chan) in a second kernel; the workspace for those partials is declared at the largest sizes
 * (groupNormWorkspaceBytes). NCHW data, or channels-last data where the layout pass set `channels_last`
 * (ops/layout-rules.ts), so NHWC activations between convolutions need no transposes.
 */
import { Node, attrFloat, attrInt } from '../../../ir/graph';
import { Dim, dimProduct, isConcrete } from '../../../ir/symbolic';
import { normChannelAxis } from '../../../ops/normalization';
import { CodegenContext, Unsupported } from './context';
import { cppFloat } from './cpp';
import type { KernelChoice } from './lower';

export interface GroupNormPlan {
  batch: Dim;
  channels: number;
  spatial: Dim[];
  groups: number;
  channelsLast: boolean;
  affinePerGroup: boolean;
}

/** group_norm.cuh constants: kGroupNormMaxSplits, kGroupNormMinSlice, kGroupNormMaxSplitPairs. */
export const GROUP_NORM_MAX_SPLITS = 64;
export const GROUP_NORM_MIN_SLICE = 4096;
export const GROUP_NORM_MAX_SPLIT_PAIRS = 1024;
const INT32_MAX = 0x7fffffff;

/**
 * group_norm.cuh group_norm_splits: slices per (image, group) pair on a device of `smCount` SMs (1: the one-block
 * path). `count` is a group's elements, `imageElements` channels · spatial.
 */
export function groupNormSplits(pairs: number, count: number, imageElements: number, smCount: number): number {
  if (pairs <= 0 || pairs >= GROUP_NORM_MAX_SPLIT_PAIRS || pairs >= 2 * smCount || imageElements > INT32_MAX) return 1;
  const wanted = Math.ceil((4 * smCount) / pairs);
  const splits = Math.min(GROUP_NORM_MAX_SPLITS, Math.floor(count / GROUP_NORM_MIN_SLICE), wanted);
  return splits >= 2 ? splits : 1;
}

/**
 * group_norm.cuh group_norm_workspace_bytes: a float2 per (pair, slice) at the largest split count any device may
 * pick; grows with pairs and count, so the bytes at the largest sizes serve every run. Keep in step with the C++
 * (test/backends/cuda/axis-norm.test.ts compiles it and compares).
 */
export function groupNormWorkspaceBytes(pairs: number, count: number, imageElements: number): number {
  if (pairs <= 0 || imageElements > INT32_MAX) return 0;
  const splits = Math.min(GROUP_NORM_MAX_SPLITS, Math.floor(count / GROUP_NORM_MIN_SLICE));
  if (splits < 2) return 0;
  return Math.min(pairs, GROUP_NORM_MAX_SPLIT_PAIRS - 1) * splits * 8;
}

export function groupNormPlan(ctx: CodegenContext, node: Node): GroupNormPlan {
  const shape = ctx.shapeOf(node.inputs[0]);
  if (ctx.typeOf(node.inputs[0]) !== 'half' || ctx.typeOf(node.outputs[0]) !== 'half')
    throw new Unsupported(`${node.op} of ${ctx.typeOf(node.inputs[0])} data`);
  const axis = normChannelAxis(node, shape.length);
  const channels = shape[axis];
  if (!isConcrete(channels)) throw new Unsupported(`${node.op} with a channel count known only at run time`);
  const groups = node.op === 'InstanceNormalization' ? channels : attrInt(node, 'num_groups');
  if (groups <= 0 || channels % groups !== 0) throw new Unsupported(`${channels} channels do not divide into ${groups} groups`);
  for (const i of [1, 2]) if (!node.inputs[i]) throw new Unsupported(`${node.op} without input ${i} (scale, bias)`);
  const scale = ctx.shapeOf(node.inputs[1]);
  const count = scale.reduce<number>((p, d) => p * (isConcrete(d) ? d : Number.NaN), 1);
  // GroupNormalization-18's scale and bias are per group, 21's per channel: the length tells (as the reference)
  const affinePerGroup = node.op === 'GroupNormalization' && count !== channels;
  if (count !== (affinePerGroup ? groups : channels))
    throw new Unsupported(`${node.op} scale of shape [${scale.map(String).join(', ')}] (expected ${channels} or ${groups} values)`);
  const spatial = axis === 1 ? shape.slice(2) : shape.slice(1, -1);
  return { batch: shape[0], channels, spatial, groups, channelsLast: axis !== 1, affinePerGroup };
}

export function lowerGroupNorm(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[], number] {
  const p = groupNormPlan(ctx, node);
  const layout = p.channelsLast ? 'channels-last' : 'NCHW';
  const spatial = ctx.maxOf(dimProduct(p.spatial));
  const count = (p.channels / p.groups) * spatial;
  const workspace = groupNormWorkspaceBytes(ctx.maxOf(p.batch) * p.groups, count, p.channels * spatial);
  // the split path can be taken (at run time, from the pairs and the device's SM count)
  const split = workspace > 0 ? " (few pairs: the group split over several blocks, partial statistics combined by Chan's formula)" : '';
  return [
    {
      library: 'ait',
      name: 'ait_group_norm_f16',
      reason: `${layout}, ${p.groups} group${p.groups > 1 ? 's' : ''} of ${p.channels / p.groups} channel${p.channels / p.groups > 1 ? 's' : ''}: one block per (image, group)${split}, fp32 statistics`,
      config: { channels_last: p.channelsLast },
    },
    [
      `ait::kernels::GroupNormArgs<__half> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.inputs[1])}, ${ctx.pointer(node.inputs[2])}, ${ctx.pointer(node.outputs[0], true)},`,
      `    ${ctx.dim(p.batch, node)}, ${p.channels}, ${ctx.product(p.spatial, node)}, ${p.groups}, ${p.channelsLast}, ${p.affinePerGroup}, ${cppFloat(attrFloat(node, 'epsilon', 1e-5))}};`,
      workspace > 0
        ? 'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_group_norm(args, c.workspace, c.workspace_bytes, c.stream));'
        : 'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_group_norm(args, c.stream));',
    ],
    ['group_norm.cuh'],
    workspace,
  ];
}
