/**
 * ONNX RoiAlign (opsets 10 and 16) to kernels/roi_align.cuh: avg and max (onnxruntime's formula), any output size,
 * sampling_ratio (0: adaptive, per roi at run time), spatial_scale, half_pixel and output_half_pixel. X is NCHW, or
 * NHWC when the layout pass moved the node onto a channels-last tensor (`channels_last`, ops/layout-rules.ts); the
 * output is [num_rois, C, output_height, output_width] either way. Every size (images, channels, map, rois) is a
 * run-time value of the launch: the rois usually come from a data-dependent count.
 */
import { Node } from '../../../ir/graph';
import { roiAlignParams } from '../../../ops/detection';
import { CPP_TYPE, CodegenContext, Unsupported, isFloatGpuType } from './context';
import { cppFloat } from './cpp';
import type { KernelChoice } from './lower';

/** What the kernel needs of a RoiAlign node; Unsupported (with the reason) for a form it does not take. */
export function roiAlignPlan(ctx: CodegenContext, node: Node) {
  const [x, rois, batchIndices] = node.inputs;
  const out = node.outputs[0];
  // the feature map and the output in fp16; the rois in fp16 or fp32 (coordinates: passes/storage-precision.ts)
  for (const t of [x, out])
    if (ctx.typeOf(t) !== 'half') throw new Unsupported(`RoiAlign tensor '${t}' is ${ctx.typeOf(t)}, not an fp16 tensor`);
  if (!isFloatGpuType(ctx.typeOf(rois))) throw new Unsupported(`RoiAlign rois '${rois}' are ${ctx.typeOf(rois)}, not a float tensor`);
  if (!batchIndices || ctx.typeOf(batchIndices) !== 'int64') throw new Unsupported('RoiAlign batch_indices that are not int64');
  const xShape = ctx.shapeOf(x);
  if (xShape.length !== 4) throw new Unsupported(`RoiAlign of a rank-${xShape.length} X (the kernel takes 4-D maps)`);
  const params = roiAlignParams(node);
  const [n, d1, d2, d3] = xShape;
  const [c, h, w] = params.channelsLast ? [d3, d1, d2] : [d1, d2, d3];
  const numRois = ctx.shapeOf(rois)[0];
  // every dim as the launch computes it (the context's run-time values; the roi count is usually data-dependent)
  const dims = { n: ctx.dim(n, node), c: ctx.dim(c, node), h: ctx.dim(h, node), w: ctx.dim(w, node), rois: ctx.dim(numRois, node) };
  return { params, dims };
}

export function lowerRoiAlign(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const { params: p, dims } = roiAlignPlan(ctx, node);
  const [x, rois, batchIndices] = node.inputs;
  const out = node.outputs[0];
  const layout = p.channelsLast ? 'nhwc' : 'nchw';
  return [
    {
      library: 'ait',
      name: `ait_roi_align_${p.mode}_${layout}_f16${ctx.typeOf(rois) === 'float' ? '_rois_f32' : ''}`,
      reason: p.channelsLast
        ? 'NHWC X: a block per tile of 32 bins × 8 channel vectors of one roi, 16-byte corner reads when C % 8 == 0, written back NCHW through shared memory'
        : 'NCHW X: one thread per output element',
      config: {
        mode: p.mode,
        layout,
        output: [p.outputHeight, p.outputWidth],
        samplingRatio: p.samplingRatio,
        spatialScale: p.spatialScale,
        coordinateTransformation: p.transform,
      },
    },
    [
      `ait::kernels::RoiAlignArgs<${CPP_TYPE.half}, ${CPP_TYPE[ctx.typeOf(rois)]}> args{};`,
      `args.input = ${ctx.pointer(x)};`,
      `args.rois = ${ctx.pointer(rois)};`,
      `args.batch_indices = ${ctx.pointer(batchIndices)};`,
      `args.output = ${ctx.pointer(out, true)};`,
      `args.n = ${dims.n};`,
      `args.c = ${dims.c};`,
      `args.h = ${dims.h};`,
      `args.w = ${dims.w};`,
      `args.num_rois = ${dims.rois};`,
      `args.out_h = ${p.outputHeight};`,
      `args.out_w = ${p.outputWidth};`,
      `args.sampling_ratio = ${p.samplingRatio};`,
      `args.spatial_scale = ${cppFloat(p.spatialScale)};`,
      `args.half_pixel = ${p.halfPixel};`,
      `args.mode = ait::kernels::RoiAlignMode::${p.max ? 'kMax' : 'kAvg'};`,
      `args.channels_last = ${p.channelsLast};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_roi_align(args, c.stream));',
    ],
    ['roi_align.cuh'],
  ];
}
