/**
 * ONNX Resize (opset 11+; opset 10 and Upsample: asymmetric, nearest floor) on 4-D tensors to kernels/resize.cuh.
 *
 * The layout is read from which axes change: the spatial pair is (2, 3) for NCHW (ONNX models, and where the layout
 * pass left the tensor NCHW) or (1, 2) for NHWC (where it was moved channels-last); the batch and channel axes must
 * keep scale 1. Scales come from the graph's constant `scales` input (or attribute); with `sizes`, from the inferred
 * output dims (scale = out / in, what ONNX uses then). Nearest (4 rounding modes), linear and cubic (cubic_coeff_a,
 * exclude_outside) with the half_pixel, pytorch_half_pixel, align_corners, asymmetric and tf_half_pixel_for_nn
 * transformations; anything else (tf_crop_and_resize, half_pixel_symmetric, antialias when downscaling,
 * keep_aspect_ratio_policy, other ranks or axes) is refused with the reason.
 */
import { Node, attrFloat, attrFloats, attrInt, attrInts, attrString } from '../../../ir/graph';
import { Dim, isConcrete } from '../../../ir/symbolic';
import { numel, numeric } from '../../../ir/tensor';
import { CodegenContext, Unsupported } from './context';
import { cppFloat } from './cpp';
import type { KernelChoice } from './lower';

const TRANSFORMS: Record<string, string> = {
  half_pixel: 'kHalfPixel',
  asymmetric: 'kAsymmetric',
  align_corners: 'kAlignCorners',
  pytorch_half_pixel: 'kPytorchHalfPixel',
  tf_half_pixel_for_nn: 'kTfHalfPixelForNn',
};
const ROUNDINGS: Record<string, string> = {
  round_prefer_floor: 'kRoundPreferFloor',
  round_prefer_ceil: 'kRoundPreferCeil',
  floor: 'kFloor',
  ceil: 'kCeil',
};
const MODES: Record<string, string> = { nearest: 'kNearest', linear: 'kBilinear', bilinear: 'kBilinear', cubic: 'kBicubic' };

/** The node's scales per axis (all axes), or undefined when it was given sizes. */
function constantScales(ctx: CodegenContext, node: Node, rank: number, opset: number): number[] | undefined {
  const fromInput = (index: number) => {
    const name = node.inputs[index];
    if (!name) return undefined;
    const info = ctx.graph.lookupTensor(name);
    if (!info?.value) {
      if (info?.shape && info.shape.length === 1 && info.shape[0] === 0) return undefined; // an empty "absent" input
      throw new Unsupported(`Resize scales ${ctx.whyNotConstant(name)}`);
    }
    return numel(info.value.shape) > 0 ? Array.from(numeric(info.value)) : undefined;
  };
  let scales: number[] | undefined;
  if (node.op === 'Upsample') scales = node.attrs.scales ? attrFloats(node, 'scales') : fromInput(1);
  else scales = opset < 11 ? fromInput(1) : fromInput(2);
  if (!scales) return undefined;
  const axes = attrInts(node, 'axes', []);
  if (axes.length === 0) return scales;
  const full = new Array<number>(rank).fill(1);
  axes.forEach((a, k) => (full[a < 0 ? a + rank : a] = scales![k]));
  return full;
}

/** What the kernel needs of a Resize node; Unsupported (with the reason) for a form it does not take. */
export function resizePlan(ctx: CodegenContext, node: Node) {
  const x = node.inputs[0];
  const out = node.outputs[0];
  const inShape = ctx.shapeOf(x);
  const outShape = ctx.shapeOf(out);
  if (inShape.length !== 4) throw new Unsupported(`Resize of a rank-${inShape.length} tensor (the kernel resizes 4-D images)`);
  if (ctx.typeOf(out) !== 'half') throw new Unsupported(`Resize of ${ctx.typeOf(out)} data (the kernel takes float tensors)`);
  const opset = ctx.graph.opsets[''] ?? 18;
  const legacy = node.op === 'Upsample' || opset < 11;
  const modeName = attrString(node, 'mode', 'nearest');
  const transformName = legacy ? 'asymmetric' : attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const roundingName = legacy ? 'floor' : attrString(node, 'nearest_mode', 'round_prefer_floor');
  const mode = MODES[modeName];
  const transform = TRANSFORMS[transformName];
  const rounding = ROUNDINGS[roundingName];
  if (!mode) throw new Unsupported(`Resize mode '${modeName}'`);
  if (!transform)
    throw new Unsupported(`Resize coordinate_transformation_mode '${transformName}' (supported: ${Object.keys(TRANSFORMS).join(', ')})`);
  if (!rounding) throw new Unsupported(`Resize nearest_mode '${roundingName}'`);
  const policy = attrString(node, 'keep_aspect_ratio_policy', 'stretch');
  if (policy !== 'stretch') throw new Unsupported(`Resize keep_aspect_ratio_policy '${policy}'`);

  const given = constantScales(ctx, node, 4, opset);
  const changed = (axis: number) => (given ? given[axis] !== 1 : inShape[axis] !== outShape[axis]);
  let spatial: [number, number];
  let layout: 'kNchw' | 'kNhwc';
  if (changed(0)) throw new Unsupported('Resize along the batch axis (axis 0)');
  if (changed(1) && changed(3)) throw new Unsupported('Resize along axes 1 and 3 together (only the two spatial axes of NCHW or NHWC)');
  if (changed(1)) [spatial, layout] = [[1, 2], 'kNhwc'];
  else [spatial, layout] = [[2, 3], 'kNchw'];
  const channelAxis = layout === 'kNchw' ? 1 : 3;
  const dims = [inShape[spatial[0]], inShape[spatial[1]], outShape[spatial[0]], outShape[spatial[1]]];
  if (!dims.every(isConcrete)) throw new Unsupported('Resize with symbolic spatial dims');
  const [inH, inW, outH, outW] = dims as number[];
  const scales = given ? [given[spatial[0]], given[spatial[1]]] : [outH / inH, outW / inW];
  if (attrInt(node, 'antialias', 0) === 1 && modeName !== 'nearest' && scales.some((s) => s < 1))
    throw new Unsupported('Resize with antialias when downscaling (the kernel has no antialiasing filter)');
  return {
    x,
    out,
    inShape,
    modeName,
    transformName,
    roundingName,
    mode,
    transform,
    rounding,
    layout,
    channelAxis,
    inH,
    inW,
    outH,
    outW,
    scales,
  };
}

export function lowerResize(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const { x, out, inShape, roundingName, transformName, mode, transform, rounding, layout, channelAxis, inH, inW, outH, outW, scales } =
    resizePlan(ctx, node);
  const n = ctx.dim(inShape[0], node);
  const c = ctx.dim(inShape[channelAxis] as Dim, node);
  const cubic = mode === 'kBicubic';
  const extra = cubic
    ? `args.cubic_a = ${cppFloat(attrFloat(node, 'cubic_coeff_a', -0.75))};\nargs.exclude_outside = ${attrInt(node, 'exclude_outside', 0) ? 'true' : 'false'};`
    : '';
  const body = [
    `ait::kernels::ResizeArgs<__half> args{${ctx.pointer(x)}, ${ctx.pointer(out, true)}, ${n}, ${inH}, ${inW}, ${outH}, ${outW}, ${c},`,
    `                                     ${cppFloat(Math.fround(scales[0]))}, ${cppFloat(Math.fround(scales[1]))}, ait::kernels::ResizeMode::${mode},`,
    `                                     ait::kernels::CoordinateTransform::${transform}, ait::kernels::NearestRounding::${rounding}};`,
    `args.layout = ait::kernels::ImageLayout::${layout};`,
    ...(extra ? extra.split('\n') : []),
    'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_resize(args, c.stream));',
  ];
  const layoutName = layout === 'kNchw' ? 'nchw' : 'nhwc';
  const modeLabel = mode === 'kNearest' ? `nearest (${roundingName})` : mode === 'kBilinear' ? 'bilinear' : 'bicubic';
  const kernel: KernelChoice = {
    library: 'ait',
    name: `ait_resize_${layoutName}_${mode === 'kNearest' ? 'nearest' : mode === 'kBilinear' ? 'bilinear' : 'bicubic'}_f16`,
    config: { layout: layoutName, mode: modeLabel, coordinateTransform: transformName, scales, in: [inH, inW], out: [outH, outW] },
    reason: `${modeLabel} ${inH}x${inW} -> ${outH}x${outW} (${transformName}) on the ${layoutName.toUpperCase()} tensor as it is: one thread per output element`,
  };
  return [kernel, body, ['resize.cuh']];
}
