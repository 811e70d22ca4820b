/**
 * Which nodes a target can run, derived from the lowerings its backend registers (ops/registry.ts
 * registerLowering): a node is supported when it needs no lowering (folded weight preparation, shape arithmetic,
 * views) or when the backend has a lowering for its op whose predicate accepts it. A node outside this is marked
 * `status: {supported: false, reason}` in graph.json, and `ait compile` exits non-zero after writing it, so users
 * see exactly what stands in the way. There is no second list: code generation refuses a node with the same reason.
 */
import { Graph, Node } from '../ir/graph';
import { findLowering, registeredLowerings } from '../ops/registry';
import { DEFAULT_TARGET, targetProblem } from '../targets';
import { backendOfTarget } from './index';

export function supportOf(graph: Graph, node: Node, target: string): { supported: boolean; reason?: string } {
  const problem = targetProblem(target);
  if (problem) return { supported: false, reason: problem };
  const backend = backendOfTarget(target);
  if (!backend) return { supported: false, reason: `target '${target}' has no backend` };
  if (!backend.needsLowering(graph, node)) return { supported: true };
  if (node.domain !== '' && node.domain !== 'ai.onnx' && node.domain !== 'ait')
    return { supported: false, reason: `op domain '${node.domain}' is not supported` };
  const lowering = findLowering(backend.id, node);
  if (!lowering) return { supported: false, reason: backend.noLoweringReason(node.op) };
  let reason: string | undefined;
  try {
    reason = lowering.supports?.(graph, node);
  } catch (e) {
    // a predicate that fails on a form it did not expect refuses the node with its message, never the compile
    reason = `the ${backend.id} lowering cannot take this node: ${(e as Error)?.message ?? String(e)}`;
  }
  return reason === undefined ? { supported: true } : { supported: false, reason };
}

/**
 * ONNX ops the optimizer always rewrites into ops that have lowerings (Conv → conv2d, BatchNormalization folded,
 * …) or that fold as shape arithmetic. Ops it rewrites only in some forms (ReduceMean over H,W → a global pool,
 * Split + Squeeze → Gather) are not here: whether a model's nodes are supported is answered on the optimized graph.
 */
const REWRITTEN_ONNX_OPS = new Set([
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
  'ConstantOfShape',
  'Range',
]);

/**
 * Whether an ONNX op of an unoptimized graph has a path to the target, with the reason when not: a lowering
 * registered for it, or a rewrite that always applies. inspect uses this only where the optimizer cannot run (it
 * asks supportOf on the optimized graph otherwise).
 */
export function onnxOpSupport(op: string, domain: string, target = DEFAULT_TARGET): { supported: boolean; reason?: string } {
  if (domain !== '' && domain !== 'ai.onnx') return { supported: false, reason: `op domain '${domain}' is not supported` };
  const backend = backendOfTarget(target);
  if (!backend) return { supported: false, reason: targetProblem(target) ?? `target '${target}' has no backend` };
  if (REWRITTEN_ONNX_OPS.has(op) || findLowering(backend.id, { op, domain })) return { supported: true };
  return { supported: false, reason: backend.noLoweringReason(op) };
}

/** The ops a target's backend has lowerings for (op names; fused ops of the 'ait' domain included). */
export function loweredOps(target = DEFAULT_TARGET): string[] {
  const backend = backendOfTarget(target);
  return backend ? registeredLowerings(backend.id).map((l) => l.op) : [];
}
