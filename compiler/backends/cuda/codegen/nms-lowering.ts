/**
 * ONNX NonMaxSuppression (opsets 10/11) to kernels/nms.cuh. The output's row count is a run-time dim: the launch
 * function runs the selection (sort, IoU mask, sweep, scan of the per-(batch, class) counts), reads the total back
 * to the host (`ait::read_device`) into the dim's slot, then writes exactly that many rows. max_output_boxes_per_class,
 * iou_threshold and score_threshold are literals when the graph knows their values (or, for the int64 limit, an
 * expression of the dims when it is shape arithmetic); otherwise the kernels read the one-element device tensors
 * themselves, so no extra host round trip is needed. The workspace is sized at the dims' bounds
 * (nmsWorkspaceBytes, the C++ nms_workspace_bytes): the suppression mask is computed and swept in blocks of rows, so
 * it stays within 128 MB however many boxes (torchvision's R-CNN heads: one NMS over 1000 proposals × 90 classes).
 */
import { Node, attrInt } from '../../../ir/graph';
import { isConcrete } from '../../../ir/symbolic';
import { numel, numeric } from '../../../ir/tensor';
import { CPP_TYPE, CodegenContext, TYPE_SUFFIX, Unsupported, isFloatGpuType } from './context';
import { cppFloat, cppInt } from './cpp';
import type { KernelChoice } from './lower';

/** nms.cuh kNmsMaxBoxes (a 64-row mask block within the budget), kNmsMaskBudgetWords. */
export const NMS_MAX_BOXES = 2 ** 24;
const MASK_BUDGET_WORDS = 2 ** 24;
const MAX_SEGMENTS = 65535;
const BLOCK_ROWS_MAX = 32768;

const words = (boxes: number) => Math.ceil(boxes / 64);
const sortLength = (n: number) => {
  let p = 1;
  while (p < n) p *= 2;
  return p;
};
const align = (bytes: number) => Math.ceil(bytes / 256) * 256;

/** nms.cuh nms_mask_capacity: every segment's whole mask when they fit the budget, else the budget (blocks of rows). */
export function nmsMaskCapacity(segments: number, boxes: number): number {
  const all = segments * boxes * words(boxes);
  return all <= MASK_BUDGET_WORDS ? all : Math.max(64 * words(boxes), MASK_BUDGET_WORDS);
}

/** nms.cuh nms_block_rows: the rows of a mask block (all N when a segment's mask fits, else a multiple of 64). */
export function nmsBlockRows(boxes: number, maskCapacity: number, forced = 0): number {
  let rows = boxes;
  if (boxes > BLOCK_ROWS_MAX || boxes * words(boxes) > maskCapacity)
    rows = Math.min(Math.floor(maskCapacity / words(boxes) / 64) * 64, BLOCK_ROWS_MAX);
  const f = Math.ceil(forced / 64) * 64;
  return forced > 0 && f < rows ? f : rows;
}

/** nms.cuh nms_workspace_bytes (keys, selected indices, removed-masks, counts, offsets, masks); keep in step. */
export function nmsWorkspaceBytes(segments: number, boxes: number, maskCapacity: number): number {
  let at = align(segments * sortLength(boxes) * 8);
  at = align(at + segments * boxes * 4);
  at = align(at + segments * words(boxes) * 8);
  at = align(at + segments * 8);
  at = align(at + segments * 8);
  at = align(at + (segments + 1) * 8);
  return align(at + maskCapacity * 8);
}

/** One of the optional scalar inputs: its value when the graph knows it, else the tensor read on the device. */
function scalarInput(ctx: CodegenContext, node: Node, index: number, what: string, type: string) {
  const name = node.inputs[index];
  if (!name) return undefined;
  const info = ctx.graph.lookupTensor(name);
  const shape = ctx.shapeOf(name);
  if (!shape.every(isConcrete) || numel(shape as number[]) !== 1)
    throw new Unsupported(`${what} of shape [${shape.join(', ')}] (a scalar or one-element tensor expected)`);
  if (info?.value) return { value: numeric(info.value)[0] };
  if (info?.shapeValue && info.shapeValue.length === 1) return { dim: info.shapeValue[0] };
  if (ctx.typeOf(name) !== type) throw new Unsupported(`${what} of type ${ctx.typeOf(name)} on the device (${type} expected)`);
  return { tensor: name };
}

/** What the kernel needs of a NonMaxSuppression node (Unsupported for what it does not take). */
export function nmsPlan(ctx: CodegenContext, node: Node) {
  const [boxesName, scoresName] = node.inputs;
  const boxes = ctx.shapeOf(boxesName);
  const scores = ctx.shapeOf(scoresName);
  const type = ctx.typeOf(boxesName);
  // fp32 boxes and scores (passes/storage-precision.ts: class-offset coordinates exceed what fp16 resolves); fp16 in
  // graphs built without that pass
  if (!isFloatGpuType(type) || ctx.typeOf(scoresName) !== type)
    throw new Unsupported(
      `boxes of type ${type} and scores of type ${ctx.typeOf(scoresName)} (float tensors of one storage type expected)`,
    );
  if (boxes.length !== 3 || scores.length !== 3 || boxes[2] !== 4)
    throw new Unsupported('boxes must be [batches, boxes, 4] and scores [batches, classes, boxes]');
  const n = ctx.maxOf(boxes[1]);
  if (n > NMS_MAX_BOXES) throw new Unsupported(`${n} boxes per batch (the kernel takes at most ${NMS_MAX_BOXES})`);
  const segments = ctx.maxOf(boxes[0]) * ctx.maxOf(scores[1]);
  if (segments > MAX_SEGMENTS) throw new Unsupported(`${segments} (batch, class) pairs (the kernel takes at most ${MAX_SEGMENTS})`);
  const centerPointBox = attrInt(node, 'center_point_box', 0);
  if (centerPointBox !== 0 && centerPointBox !== 1) throw new Unsupported(`center_point_box = ${centerPointBox} (0 or 1)`);
  return {
    type,
    boxes,
    scores,
    centered: centerPointBox === 1,
    maxPerClass: scalarInput(ctx, node, 2, 'max_output_boxes_per_class', 'int64'),
    iouThreshold: scalarInput(ctx, node, 3, 'iou_threshold', type),
    scoreThreshold: scalarInput(ctx, node, 4, 'score_threshold', type),
    segments,
    n,
  };
}

export function lowerNms(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[], number] {
  const plan = nmsPlan(ctx, node);
  const choice: KernelChoice = {
    library: 'ait',
    name: `ait_nms_${TYPE_SUFFIX[plan.type]}`,
    reason:
      'per (batch, class): bitonic sort of the candidates, IoU suppression bitmask (a thread per row and 64 columns) ' +
      'in blocks of rows, each swept in one CTA before the next; the selected count is read back (a run-time dim), ' +
      'then the rows are written',
    config: { center_point_box: plan.centered ? 1 : 0 },
  };
  const rows = ctx.shapeOf(node.outputs[0])[0];
  if (isConcrete(rows)) return [choice, [`// at most ${rows} boxes can be selected: nothing to compute`], ['nms.cuh'], 0];
  const t = CPP_TYPE[plan.type];
  // a literal, an expression of the dims (a float one converted explicitly: no narrowing in the braced initializer),
  // or (value unused) the device tensor's pointer
  const value = (s: ReturnType<typeof scalarInput>, float: boolean): [string, string] => {
    const absent = float ? '0.0f' : 'int64_t{0}';
    if (!s) return [absent, 'nullptr'];
    if ('value' in s) return [float ? cppFloat(s.value!) : cppInt(s.value!), 'nullptr'];
    if ('dim' in s) return [float ? `static_cast<float>(${ctx.dim(s.dim!, node)})` : ctx.dim(s.dim!, node), 'nullptr'];
    return [absent, ctx.pointer(s.tensor!)];
  };
  const [maxValue, maxDevice] = value(plan.maxPerClass, false);
  const [iouValue, iouDevice] = value(plan.iouThreshold, true);
  const [scoreValue, scoreDevice] = value(plan.scoreThreshold, true);
  const hasScore = plan.scoreThreshold !== undefined && !('tensor' in plan.scoreThreshold);
  const capacity = nmsMaskCapacity(plan.segments, plan.n);
  const count = ctx.defineRuntimeDim(rows, node);
  const [b, numBoxes] = plan.boxes;
  return [
    choice,
    [
      `ait::kernels::NmsArgs<${t}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.inputs[1])},`,
      `    ${ctx.dim(b, node)}, ${ctx.dim(plan.scores[1], node)}, ${ctx.dim(numBoxes, node)}, ${plan.centered},`,
      `    ${iouValue}, ${scoreValue}, ${hasScore}, ${maxValue}, ${iouDevice}, ${scoreDevice}, ${maxDevice},`,
      `    c.workspace, int64_t{${capacity}}, ${ctx.pointer(node.outputs[0], true)}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_nms_select(args, c.stream));',
      `if (const char* failure = ait::read_device(c, &${count}, ait::kernels::nms_total(args), sizeof(int64_t))) return failure;`,
      `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_nms_write(args, ${count}, c.stream));`,
    ],
    ['nms.cuh'],
    nmsWorkspaceBytes(plan.segments, plan.n, capacity),
  ];
}
