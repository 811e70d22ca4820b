/**
 * ConvTranspose on the CUDA backend: ops/fused.ts conv_transpose2d, the NHWC form the layout pass makes (weight
 * [KH, KW, M/group, C], output_shape / auto_pad resolved into pads and output padding), epilogue from fuse-conv.
 *
 *  - group 1: one CUTLASS GEMM through gemm-lowering.ts (so its instances, batch ranges and measured choice are any
 *    GEMM's), columns[N·H·W, KH·KW·M] = x[N·H·W, C] · Wᵀ with W = the weight viewed as [KH·KW·M, C] (B as the
 *    instances take it, [n, k] row-major: no copy), written to the workspace; then kernels/conv_transpose.cuh's
 *    col2im gathers each output pixel's taps and applies the whole epilogue (bias, scale, residual, activations).
 *    When each stride window holds every tap ((kernel − 1)·dilation < stride: Mask R-CNN's 2×2 stride-2 mask head)
 *    an output pixel has at most one tap and the gather is the scatter of the taps (config path `gemm+scatter`);
 *    otherwise it sums the overlapping taps (`gemm+col2im`). Neither uses atomics.
 *  - grouped: x · W is a GEMM per group over strided operands, which the instances do not take: the direct kernel of
 *    conv_transpose.cuh (one output element per thread, the whole epilogue fused; path `direct`).
 *
 * Every size reaches the kernels through ctx.dim (the batch is a run-time value, possibly data-dependent: Mask
 * R-CNN's detections); the column buffer is sized at the batch's maximum (ctx.maxOf).
 */
import { Node, attrInt, attrInts } from '../../../ir/graph';
import { Dim, isConcrete, shapeEquals } from '../../../ir/symbolic';
import { EPILOGUE_OPERAND_STEPS, epilogueOf } from '../../../ops/fused';
import { CodegenContext, Unsupported } from './context';
import { activationFunctor } from './elementwise';
import type { GemmLowering, LoweredGemm } from './gemm-lowering';

type GemmIntoWorkspace = Pick<GemmLowering, 'gemmIntoWorkspace'>;
import type { KernelChoice } from './lower';

/** A conv_transpose2d node's sizes, concrete except the batch. */
export interface ConvTransposeShape {
  batch: Dim;
  h: number;
  w: number;
  c: number;
  /** Output channels (M). */
  k: number;
  kh: number;
  kw: number;
  p: number;
  q: number;
  group: number;
  strides: [number, number];
  /** top, left, bottom, right (the kernels take top and left; the output size gives the rest). */
  pads: [number, number, number, number];
  dilations: [number, number];
}

/** Whether every output pixel has at most one tap: (kernel − 1)·dilation < stride on both axes (the O(1) gather). */
export function isOneTap(s: Pick<ConvTransposeShape, 'kh' | 'kw' | 'strides' | 'dilations'>): boolean {
  return (s.kh - 1) * s.dilations[0] < s.strides[0] && (s.kw - 1) * s.dilations[1] < s.strides[1];
}

/**
 * A conv_transpose2d node's sizes and epilogue (Unsupported for a non-float output, symbolic spatial or channel dims,
 * mismatched channels, or an epilogue operand that is neither a channel vector nor the output's shape): what the
 * CUDA lowering's predicate checks up front.
 */
export function convTransposeShapeOf(ctx: CodegenContext, node: Node): ConvTransposeShape {
  const [x, w] = node.inputs;
  const out = node.outputs[0];
  if (ctx.typeOf(out) !== 'half') throw new Unsupported('transposed convolution output is not a float tensor');
  const [batch, h, wIn, c] = ctx.shapeOf(x);
  const [kh, kw, kg, cw] = ctx.shapeOf(w);
  const [, p, q, k] = ctx.shapeOf(out);
  for (const d of [h, wIn, c, kh, kw, kg, cw, p, q, k])
    if (!isConcrete(d)) throw new Unsupported('transposed convolution with symbolic spatial or channel dims');
  const group = attrInt(node, 'group', 1);
  if (cw !== c || (c as number) % group !== 0)
    throw new Unsupported(`weight has ${cw} input channels, the activation ${String(c)}, group ${group}`);
  if ((kg as number) * group !== k) throw new Unsupported(`weight has ${kg} output channels per group, the output ${String(k)}`);
  const shape: ConvTransposeShape = {
    batch,
    h: h as number,
    w: wIn as number,
    c: c as number,
    k: k as number,
    kh: kh as number,
    kw: kw as number,
    p: p as number,
    q: q as number,
    group,
    strides: attrInts(node, 'strides', [1, 1]) as [number, number],
    pads: attrInts(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number],
    dilations: attrInts(node, 'dilations', [1, 1]) as [number, number],
  };
  epilogueOperands(ctx, node, shape.k);
  return shape;
}

/** The epilogue as an ew chain over in[0] = the accumulator and in[1 + j] = operand j, with each operand's kind. */
function epilogueOperands(ctx: CodegenContext, node: Node, k: number) {
  const outShape = ctx.shapeOf(node.outputs[0]);
  const steps = epilogueOf(node);
  const operands = node.inputs.slice(2);
  const chain: string[] = ['ew::Input<0>{}'];
  const tensors: string[] = [];
  const kinds: ('kChannel' | 'kFull')[] = [];
  for (const step of steps) {
    const name = step.split(':')[0];
    if (!EPILOGUE_OPERAND_STEPS.has(name)) {
      chain.push(activationFunctor(step));
      continue;
    }
    const tensor = operands[tensors.length];
    if (!tensor) throw new Unsupported(`epilogue step ${step} has no operand`);
    const shape = ctx.shapeOf(tensor);
    const elements = shape.every(isConcrete) ? shape.reduce<number>((a, d) => a * (d as number), 1) : undefined;
    if (shapeEquals(shape, outShape)) kinds.push('kFull');
    else if (elements === k && shape[shape.length - 1] === k) kinds.push('kChannel');
    else
      throw new Unsupported(
        `transposed convolution epilogue operand ${step} of shape [${shape.join(',')}] is neither [${k}] nor the output's shape`,
      );
    tensors.push(tensor);
    chain.push(`ew::${name === 'scale' ? 'MulInput' : 'AddInput'}<${tensors.length}>{}`);
  }
  return { steps, chain, tensors, kinds };
}

/** The kernels' ConvTransposeWindow initializer. */
function windowInit(ctx: CodegenContext, node: Node, s: ConvTransposeShape): string {
  return (
    `{${ctx.dim(s.batch, node)}, ${s.h}, ${s.w}, ${s.p}, ${s.q}, ${s.kh}, ${s.kw}, ${s.strides[0]}, ${s.strides[1]}, ` +
    `${s.pads[0]}, ${s.pads[1]}, ${s.dilations[0]}, ${s.dilations[1]}}`
  );
}

/** The operand pointer and kind initializers of the kernels' args. */
function operandInits(ctx: CodegenContext, tensors: string[], kinds: string[]): string[] {
  return [
    `{${tensors.length ? tensors.map((t) => ctx.pointer(t)).join(', ') : 'nullptr'}}`,
    `{${(kinds.length ? kinds : ['kChannel']).map((kind) => `ait::kernels::ConvTransposeOperand::${kind}`).join(', ')}}`,
  ];
}

/** conv_transpose2d → GEMM + col2im (group 1), or the direct kernel (grouped, or no GEMM lowering: ROCm). */
/** `gemm`: the CUTLASS GEMM lowering, or any with its gemmIntoWorkspace (ROCm's CK library); undefined: direct only. */
export function lowerConvTranspose(ctx: CodegenContext, gemm: GemmIntoWorkspace | undefined, node: Node): LoweredGemm {
  const shape = convTransposeShapeOf(ctx, node);
  if (shape.group > 1 || !gemm) return direct(ctx, node, shape);
  return gemmCol2im(ctx, gemm, node, shape);
}

function describe(s: ConvTransposeShape): string {
  return (
    `${s.kh}x${s.kw} transposed conv (stride ${s.strides.join('x')}, pads ${s.pads.join(',')}, dilation ${s.dilations.join('x')}` +
    `${s.group > 1 ? `, group ${s.group}` : ''}, C=${s.c}, K=${s.k})`
  );
}

function gemmCol2im(ctx: CodegenContext, gemm: GemmIntoWorkspace, node: Node, s: ConvTransposeShape): LoweredGemm {
  const [x, w] = node.inputs;
  const out = node.outputs[0];
  const { steps, chain, tensors, kinds } = epilogueOperands(ctx, node, s.k);
  const taps = s.kh * s.kw;
  const oneTap = isOneTap(s);
  const columnsBytes = ctx.maxOf(s.batch) * s.h * s.w * taps * s.k * 2;
  const after = (columns: string) => [
    '{',
    '  namespace ew = ait::kernels::ew;',
    `  ait::kernels::ConvTransposeCol2imArgs<__half, ${tensors.length}> args{${columns}, ${ctx.pointer(out, true)},`,
    ...operandInits(ctx, tensors, kinds).map((l) => `      ${l},`),
    `      ${s.k}, ${windowInit(ctx, node, s)}};`,
    `  AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_conv_transpose2d_col2im_nhwc(args, ew::make_chain(${chain.join(', ')}), c.stream));`,
    '}',
  ];
  const what =
    `${describe(s)} as a GEMM [N·H·W=${[s.batch, s.h, s.w].join('·')}, C=${s.c}] × [C, KH·KW·K=${taps * s.k}] into the workspace, then ` +
    (oneTap
      ? 'the scatter of its taps (one per output pixel: each stride window holds every tap)'
      : `the col2im gather of each output pixel's overlapping taps`) +
    ` with the epilogue [${steps.join(', ')}] fused`;
  const lowered = gemm.gemmIntoWorkspace(
    node,
    { m: [s.batch, s.h, s.w], n: taps * s.k, k: s.c },
    ctx.pointer(x),
    w,
    columnsBytes,
    after,
    what,
    ['conv_transpose.cuh'],
  );
  const kernel: KernelChoice = {
    ...lowered.kernel,
    config: {
      ...lowered.kernel.config,
      path: oneTap ? 'gemm+scatter' : 'gemm+col2im',
      epilogue: steps,
      unfusedEpilogue: [],
      gatherKernel: `ait_conv_transpose2d_col2im_nhwc_f16${oneTap ? '_one_tap' : ''}`,
      columnsBytesAtMaxBatch: columnsBytes,
    },
  };
  return { ...lowered, kernel };
}

function direct(ctx: CodegenContext, node: Node, s: ConvTransposeShape): LoweredGemm {
  const [x, w] = node.inputs;
  const out = node.outputs[0];
  const { steps, chain, tensors, kinds } = epilogueOperands(ctx, node, s.k);
  const cg = s.c / s.group;
  const body = [
    'namespace ew = ait::kernels::ew;',
    `ait::kernels::ConvTransposeDirectArgs<__half, ${tensors.length}> args{${ctx.pointer(x)}, ${ctx.pointer(w)}, ${ctx.pointer(out, true)},`,
    ...operandInits(ctx, tensors, kinds).map((l) => `    ${l},`),
    `    ${s.c}, ${s.k}, ${s.group}, ${windowInit(ctx, node, s)}};`,
    `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_conv_transpose2d_direct_nhwc(args, ew::make_chain(${chain.join(', ')}), c.stream));`,
  ];
  const kernel: KernelChoice = {
    library: 'ait',
    name: `ait_conv_transpose2d_direct_nhwc_f16${cg % 8 === 0 ? '_vec' : ''}`,
    config: { path: 'direct', group: s.group, epilogue: steps },
    reason:
      `${describe(s)} as a direct NHWC kernel (a grouped x · W is no single GEMM): one output element per thread over its taps ` +
      `and its group's ${cg} input channels${cg % 8 === 0 ? ' (16-byte vectors)' : ''}, epilogue [${steps.join(', ')}] fused`,
  };
  return { kernel, body, headers: ['conv_transpose.cuh'], workspaceBytes: 0 };
}
