/**
 * Which ops a target can run. A node outside this set is marked `status: {supported: false, reason}` in
 * graph.json, and `ait compile` exits non-zero after writing it, so users see exactly what stands in the way.
 */
import { Graph, Node } from '../ir/graph';
import { isShapeComputation, isWeightPreparation } from '../passes/cost';
import { ELEMENTWISE_OPS } from '../passes/fuse-elementwise';
import { DEFAULT_TARGET, targetProblem } from '../targets';

/** Ops with GPU kernels (fused ops, data movement, elementwise, normalization, reductions). */
const GPU_OPS = new Set([
  'conv2d',
  'gemm',
  'attention',
  'layernorm',
  'elementwise',
  'pool2d',
  'global_pool',
  'transpose_pad',
  'MatMul',
  'Softmax',
  'LayerNormalization',
  'Transpose',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Concat',
  'Slice',
  'Gather',
  'Expand',
  'Resize',
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceSum',
  'Split',
  'Pad',
  'ConstantOfShape',
  'Tile',
  ...ELEMENTWISE_OPS,
]);

/** Why an op has no GPU kernel: data-dependent shapes and control flow first. */
const REASONS: Record<string, string> = {
  NonZero: 'data-dependent output shape (NonZero); not compiled for the GPU',
  NonMaxSuppression: 'data-dependent output shape (NMS); not compiled for the GPU',
  TopK: 'TopK has no GPU kernel yet',
  RoiAlign: 'RoiAlign has no GPU kernel yet',
  Loop: 'control flow (Loop) is not compiled for the GPU',
  If: 'control flow (If) is not compiled for the GPU',
  ScatterElements: 'ScatterElements has no GPU kernel yet',
  Range: 'Range with data-dependent bounds is not compiled for the GPU',
};

export function supportOf(graph: Graph, node: Node, target: string): { supported: boolean; reason?: string } {
  const problem = targetProblem(target);
  if (problem) return { supported: false, reason: problem };
  if (isWeightPreparation(graph, node) || isShapeComputation(graph, node)) return { supported: true };
  if (node.domain === '' || node.domain === 'ait') {
    if (GPU_OPS.has(node.op)) return { supported: true };
    return { supported: false, reason: REASONS[node.op] ?? `${node.op} has no ${target.split(':')[0].toUpperCase()} kernel yet` };
  }
  return { supported: false, reason: `op domain '${node.domain}' is not supported` };
}

/** ONNX ops the optimizer lowers to GPU ops (fused or not). Anything else is reported by `ait inspect`. */
const LOWERED_ONNX_OPS = new Set([
  ...GPU_OPS,
  'Conv',
  'Gemm',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'BatchNormalization',
  'Dropout',
  'Constant',
  'Shape',
  'Size',
  'Cast',
  'CastLike',
  'Flatten',
  'ConstantOfShape',
  'Range',
]);

/**
 * Whether an ONNX op of an unoptimized graph has a path to the target, with the reason when not. (Shape arithmetic
 * such as Shape or Range is accepted: it folds or runs on the host when its result is a function of the symbols.)
 */
export function onnxOpSupport(op: string, domain: string, target = DEFAULT_TARGET): { supported: boolean; reason?: string } {
  if (domain !== '' && domain !== 'ai.onnx') return { supported: false, reason: `op domain '${domain}' is not supported` };
  if (LOWERED_ONNX_OPS.has(op)) return { supported: true };
  return { supported: false, reason: REASONS[op] ?? `${op} has no ${target.split(':')[0].toUpperCase()} kernel yet` };
}
