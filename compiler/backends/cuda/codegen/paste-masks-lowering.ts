/**
 * ait.PasteMasks (torchvision's mask paste, passes/paste-masks.ts) to kernels/paste_masks.cuh: one thread per canvas
 * element. Masks and output share one float storage type (fp16, or fp32 where the storage-precision pass keeps
 * them); boxes are int64 or int32. The detection count is the run-time value of the masks' leading dim (it comes
 * from NMS); the canvas size is the op's attributes.
 */
import { Node } from '../../../ir/graph';
import { pasteMasksParams } from '../../../ops/detection';
import { CPP_TYPE, CodegenContext, TYPE_SUFFIX, Unsupported, isFloatGpuType } from './context';
import type { KernelChoice } from './lower';

/** What the kernel needs of a PasteMasks node; Unsupported (with the reason) for a form it does not take. */
export function pasteMasksPlan(ctx: CodegenContext, node: Node) {
  const [masks, boxes] = node.inputs;
  const out = node.outputs[0];
  const type = ctx.typeOf(masks);
  if (!isFloatGpuType(type) || ctx.typeOf(out) !== type)
    throw new Unsupported(
      `PasteMasks masks of type ${type} and output of type ${ctx.typeOf(out)} (the kernel takes one float type for both)`,
    );
  const boxType = ctx.typeOf(boxes);
  if (boxType !== 'int64' && boxType !== 'int32') throw new Unsupported(`PasteMasks boxes of type ${boxType}, not int64 or int32`);
  const shape = ctx.shapeOf(masks);
  if (shape.length !== 4) throw new Unsupported(`PasteMasks of rank-${shape.length} masks (the kernel takes [detections, 1, h, w])`);
  const { height, width } = pasteMasksParams(node);
  return {
    type,
    boxType,
    height,
    width,
    dims: { detections: ctx.dim(shape[0], node), maskH: ctx.dim(shape[2], node), maskW: ctx.dim(shape[3], node) },
  };
}

export function lowerPasteMasks(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const p = pasteMasksPlan(ctx, node);
  const [masks, boxes] = node.inputs;
  return [
    {
      library: 'ait',
      name: `ait_paste_masks_${TYPE_SUFFIX[p.type]}_boxes_${TYPE_SUFFIX[p.boxType]}`,
      reason: 'one thread per canvas element: bilinear (half_pixel) sample of the mask inside its box, 0 outside',
      config: { height: p.height, width: p.width },
    },
    [
      `ait::kernels::PasteMasksArgs<${CPP_TYPE[p.type]}, ${CPP_TYPE[p.boxType]}> args{};`,
      `args.masks = ${ctx.pointer(masks)};`,
      `args.boxes = ${ctx.pointer(boxes)};`,
      `args.output = ${ctx.pointer(node.outputs[0], true)};`,
      `args.detections = ${p.dims.detections};`,
      `args.mask_h = static_cast<int32_t>(${p.dims.maskH});`,
      `args.mask_w = static_cast<int32_t>(${p.dims.maskW});`,
      `args.height = ${p.height};`,
      `args.width = ${p.width};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_paste_masks(args, c.stream));',
    ],
    ['paste_masks.cuh'],
  ];
}
