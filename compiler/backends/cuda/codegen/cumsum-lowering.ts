/**
 * CumSum (kernels/cumsum.cuh): the tensor viewed as [outer, length, inner] around the constant axis, one thread per
 * line. fp16 accumulates in float; int64/int32 exactly.
 */
import { Node, attrInt } from '../../../ir/graph';
import { numeric } from '../../../ir/tensor';
import { CPP_TYPE, CodegenContext, TYPE_SUFFIX, Unsupported } from './context';
import type { KernelChoice } from './lower';

export function cumsumPlan(ctx: CodegenContext, node: Node): { axis: number } {
  const type = ctx.typeOf(node.outputs[0]);
  if (type === 'uint8') throw new Unsupported('CumSum of bool/uint8 data');
  const axisValue = ctx.graph.lookupTensor(node.inputs[1])?.value;
  if (!axisValue) throw new Unsupported('CumSum with an axis computed at run time');
  const rank = ctx.shapeOf(node.inputs[0]).length;
  const raw = numeric(axisValue)[0];
  const axis = raw < 0 ? raw + rank : raw;
  if (axis < 0 || axis >= rank) throw new Unsupported(`CumSum axis ${raw} is outside rank ${rank}`);
  return { axis };
}

export function lowerCumSum(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const { axis } = cumsumPlan(ctx, node);
  const type = ctx.typeOf(node.outputs[0]);
  const shape = ctx.shapeOf(node.inputs[0]);
  const flag = (name: string) => (attrInt(node, name, 0) === 1 ? 'true' : 'false');
  return [
    {
      library: 'ait',
      name: `ait_cumsum_${TYPE_SUFFIX[type]}`,
      reason: 'one thread per line along the axis (exact for integers, float accumulation for fp16)',
      config: { axis },
    },
    [
      `ait::kernels::CumSumArgs<${CPP_TYPE[type]}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.outputs[0], true)},`,
      `    ${ctx.product(shape.slice(0, axis), node)}, ${ctx.dim(shape[axis], node)}, ${ctx.product(shape.slice(axis + 1), node)},`,
      `    ${flag('exclusive')}, ${flag('reverse')}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_cumsum(args, c.stream));',
    ],
    ['cumsum.cuh'],
  ];
}
