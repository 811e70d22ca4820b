/**
 * Ops along ONE axis to kernels/axis_norm.cuh: Softmax and LogSoftmax over any axis (opset 13: the axis alone;
 * before 13: everything from the axis on, flattened), LpNormalization (p = 1, 2), ArgMax/ArgMin (keepdims,
 * select_last_index). The tensor is the [outer, n, inner] view around the axis; Softmax over the last axis keeps the
 * vectorized row kernel of normalization.cuh (lower.ts), everything else runs here: inner == 1 one block per row,
 * inner > 1 one thread per column reading with stride inner (coalesced; no transposes).
 */
import { Node, attrInt } from '../../../ir/graph';
import { Dim } from '../../../ir/symbolic';
import { CPP_TYPE, CodegenContext, TYPE_SUFFIX, Unsupported } from './context';
import type { KernelChoice } from './lower';

export const AXIS_NORM_OPS: Record<string, string> = {
  Softmax: 'kSoftmax',
  LogSoftmax: 'kLogSoftmax',
  LpNormalization: 'kL2', // kL1 for p = 1
};
export const ARG_REDUCE_OPS = ['ArgMax', 'ArgMin'];

/** The [outer, n, inner] view of a node's input around its axis (Softmax before opset 13: [outer, rest, 1]). */
export interface AxisView {
  outer: Dim[];
  n: Dim[];
  inner: Dim[];
}

export function axisView(ctx: CodegenContext, node: Node): AxisView {
  const shape = ctx.shapeOf(node.inputs[0]);
  const legacySoftmax = (node.op === 'Softmax' || node.op === 'LogSoftmax') && ctx.graph.opset < 13;
  const fallback = ARG_REDUCE_OPS.includes(node.op) ? 0 : legacySoftmax ? 1 : -1;
  const given = attrInt(node, 'axis', fallback);
  const axis = given < 0 ? given + shape.length : given;
  if (axis < 0 || axis >= shape.length) throw new Unsupported(`${node.op} axis ${given} out of range for rank ${shape.length}`);
  if (legacySoftmax) return { outer: shape.slice(0, axis), n: shape.slice(axis), inner: [] };
  return { outer: shape.slice(0, axis), n: [shape[axis]], inner: shape.slice(axis + 1) };
}

/** Unsupported for what the kernels do not take; returns the view. */
export function axisNormPlan(ctx: CodegenContext, node: Node): AxisView {
  const view = axisView(ctx, node);
  const inType = ctx.typeOf(node.inputs[0]);
  if (ARG_REDUCE_OPS.includes(node.op)) {
    if (inType === 'uint8') throw new Unsupported(`${node.op} of bool data`);
  } else {
    if (inType !== 'half' || ctx.typeOf(node.outputs[0]) !== 'half') throw new Unsupported(`${node.op} of ${inType} data`);
    if (node.op === 'LpNormalization' && ![1, 2].includes(attrInt(node, 'p', 2)))
      throw new Unsupported(`LpNormalization with p = ${attrInt(node, 'p', 2)} (p is 1 or 2)`);
  }
  return view;
}

/** Whether the view is a plain last-axis row (Softmax there runs normalization.cuh's vectorized kernel). */
export function isRowView(view: AxisView): boolean {
  return view.inner.every((d) => d === 1);
}

export function lowerAxisNorm(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const view = axisNormPlan(ctx, node);
  const outer = ctx.product(view.outer, node);
  const n = ctx.product(view.n, node);
  const inner = ctx.product(view.inner, node);
  const input = ctx.pointer(node.inputs[0]);
  const output = ctx.pointer(node.outputs[0], true);
  const rows = isRowView(view);
  const how = rows ? 'the axis innermost: one block per row' : 'one thread per column, stride-inner reads (no transpose)';
  if (ARG_REDUCE_OPS.includes(node.op)) {
    const type = ctx.typeOf(node.inputs[0]);
    const isMax = node.op === 'ArgMax';
    const last = attrInt(node, 'select_last_index', 0) !== 0;
    return [
      {
        library: 'ait',
        name: `ait_${node.op.toLowerCase()}_${TYPE_SUFFIX[type]}`,
        reason: `one thread per output${last ? ', ties: last index' : ''}`,
        config: {},
      },
      [
        `ait::kernels::ArgReduceArgs<${CPP_TYPE[type]}> args{${input}, ${output}, ${outer}, ${n}, ${inner}, ${isMax}, ${last}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_arg_reduce(args, c.stream));',
      ],
      ['axis_norm.cuh'],
    ];
  }
  const op = node.op === 'LpNormalization' && attrInt(node, 'p', 2) === 1 ? 'kL1' : AXIS_NORM_OPS[node.op];
  return [
    { library: 'ait', name: `ait_${op.slice(1).toLowerCase()}_axis_f16`, reason: how, config: { op } },
    [
      `ait::kernels::AxisNormArgs<__half> args{${input}, ${output}, ${outer}, ${n}, ${inner}, ait::kernels::AxisNormOp::${op}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_axis_norm(args, c.stream));',
    ],
    ['axis_norm.cuh'],
  ];
}
