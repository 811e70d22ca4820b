/**
 * LRN (kernels/lrn.cuh): the tensor viewed as [N, C, inner] around the channel axis (1), one thread per element.
 * The layout pass leaves LRN channels-first: it has no NHWC form.
 */
import { Node } from '../../../ir/graph';
import { lrnAttributes } from '../../../ops/normalization';
import { CodegenContext, Unsupported } from './context';
import { cppFloat } from './cpp';
import type { KernelChoice } from './lower';

export function lrnPlan(ctx: CodegenContext, node: Node): void {
  if (ctx.typeOf(node.outputs[0]) !== 'half') throw new Unsupported(`LRN of ${ctx.typeOf(node.outputs[0])} data (float tensors only)`);
}

export function lowerLrn(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  lrnPlan(ctx, node);
  const { size, alpha, beta, bias } = lrnAttributes(node);
  const shape = ctx.shapeOf(node.inputs[0]);
  return [
    {
      library: 'ait',
      name: 'ait_lrn_f16',
      reason: `one thread per element, ${size} channels summed in float`,
      config: { size },
    },
    [
      `ait::kernels::LrnArgs<__half> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.outputs[0], true)},`,
      `    ${ctx.dim(shape[0], node)}, ${ctx.dim(shape[1], node)}, ${ctx.product(shape.slice(2), node)},`,
      `    ${size}, ${cppFloat(alpha)}, ${cppFloat(beta)}, ${cppFloat(bias)}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_lrn(args, c.stream));',
    ],
    ['lrn.cuh'],
  ];
}
