/**
 * Memory planning: one activation arena for the intermediate tensors of the top-level graph.
 *
 * Lifetimes run from the producing node to the last reader (a view — Reshape, Squeeze, … — shares its input's
 * buffer and extends its lifetime). Buffers are placed greedily by size, largest first, at the lowest offset that
 * overlaps no placed buffer alive at the same time. In place: an elementwise op, a conv/gemm's residual add, or a
 * ScatterElements or ScatterND over its data, may write its output over an input of the same size that dies at that node (a
 * conv/gemm only over its residual, and only when it does not also read that buffer as its main input: see
 * inPlaceInputs). Model inputs and outputs live in the caller's buffers, weights in their own; neither is in the
 * arena. Sizes are taken at the planning batch in the GPU's storage precision (cost.ts); the runtime sizes the arena
 * for the largest batch the same way.
 */
import { error } from '../diagnostics';
import { Graph, Node } from '../ir/graph';
import { MAX_ARENA_BYTES, sizeText } from '../ir/limits';
import { EPILOGUE_OPERAND_STEPS, elementwiseSlotsOf, epilogueOf } from '../ops/fused';
import { isShapeComputation, isWeightPreparation, storageBytes, tensorBytesAt } from './cost';
import { ELEMENTWISE_OPS } from './fuse-elementwise';
import { Pass } from './pass';
import { isStatic } from './rewrite';
import { VIEW_OPS } from '../ops/op-classes';

export const ARENA_ALIGNMENT = 256;
/** Node indices per block of the placement index (see planMemory). */
const LIFETIME_BLOCK = 64;

export interface ArenaBuffer {
  /** Tensors stored in this buffer (a producer's output, its views and in-place successors). */
  tensors: string[];
  offset: number;
  bytes: number;
  /** First and last node index (in graph order) during which the buffer is live. */
  firstNode: number;
  lastNode: number;
}

export interface MemoryPlan {
  batch: number;
  alignment: number;
  arenaBytes: number;
  /** Sum of the sizes of all planned activations, as if each had its own buffer. */
  activationBytes: number;
  buffers: ArenaBuffer[];
  /** tensor name → byte offset in the arena */
  offsets: Record<string, number>;
}

export function planMemory(graph: Graph, batch: number): MemoryPlan {
  const external = new Set([...graph.inputs, ...graph.outputs]);
  const align = (n: number) => Math.ceil(n / ARENA_ALIGNMENT) * ARENA_ALIGNMENT;
  const bufferOf = new Map<string, ArenaBuffer>();
  const buffers: ArenaBuffer[] = [];
  let activationBytes = 0;

  const lastUse = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.inputs.forEach((x) => x && lastUse.set(x, i)));

  // Shape arithmetic runs on the host; where a kernel reads its result (Equal(numel, 0) feeding an If), the values
  // are written to a device buffer (codegen: materializeShapeValues), which needs a place here.
  const readByKernels = new Set<string>();
  for (const n of graph.nodes)
    if (!isWeightPreparation(graph, n) && !isShapeComputation(graph, n) && !VIEW_OPS.has(n.op))
      for (const x of n.inputs) if (x) readByKernels.add(x);
  graph.nodes.forEach((node: Node, index) => {
    if (isWeightPreparation(graph, node)) return;
    if (isShapeComputation(graph, node) && !node.outputs.some((o) => o && readByKernels.has(o) && !graph.tensors.get(o)?.value)) return;
    node.outputs.forEach((out) => {
      if (!out || external.has(out) || isStatic(graph.tensors.get(out))) return;
      const bytes = tensorBytesAt(graph, out, batch);
      // a view shares its input's buffer
      if (VIEW_OPS.has(node.op) && bufferOf.has(node.inputs[0])) {
        const b = bufferOf.get(node.inputs[0])!;
        b.tensors.push(out);
        bufferOf.set(out, b);
        return;
      }
      activationBytes += bytes;
      const reuse = inPlaceCandidate(graph, node, index, bytes, bufferOf, lastUse, batch);
      if (reuse) {
        reuse.tensors.push(out);
        bufferOf.set(out, reuse);
        return;
      }
      const b: ArenaBuffer = { tensors: [out], offset: 0, bytes: align(bytes), firstNode: index, lastNode: index };
      buffers.push(b);
      bufferOf.set(out, b);
    });
  });
  // lifetimes: the last read of any tensor held by the buffer (graph outputs read at the end)
  for (const b of buffers) for (const t of b.tensors) b.lastNode = Math.max(b.lastNode, lastUse.get(t) ?? b.firstNode);

  // Placed buffers are also filed under each block of LIFETIME_BLOCK node indices they are live in, so that finding
  // those alive at the same time as a new buffer looks at its own blocks, not at every placed buffer (linear
  // time on long graphs instead of quadratic).
  const byBlock: ArenaBuffer[][] = [];
  const placedOrder = new Map<ArenaBuffer, number>();
  let arenaBytes = 0;
  for (const b of [...buffers].sort((x, y) => y.bytes - x.bytes || x.firstNode - y.firstNode)) {
    const live = new Set<ArenaBuffer>();
    const firstBlock = Math.floor(b.firstNode / LIFETIME_BLOCK);
    const lastBlock = Math.floor(b.lastNode / LIFETIME_BLOCK);
    for (let k = firstBlock; k <= lastBlock; k++)
      for (const p of byBlock[k] ?? []) if (p.firstNode <= b.lastNode && b.firstNode <= p.lastNode) live.add(p);
    let offset = 0;
    for (const p of [...live].sort((x, y) => x.offset - y.offset || placedOrder.get(x)! - placedOrder.get(y)!)) {
      if (offset + b.bytes <= p.offset) break;
      offset = Math.max(offset, p.offset + p.bytes);
    }
    b.offset = offset;
    placedOrder.set(b, placedOrder.size);
    for (let k = firstBlock; k <= lastBlock; k++) (byBlock[k] ??= []).push(b);
    arenaBytes = Math.max(arenaBytes, offset + b.bytes);
  }
  const offsets: Record<string, number> = {};
  for (const b of buffers) for (const t of b.tensors) offsets[t] = b.offset;
  return { batch, alignment: ARENA_ALIGNMENT, arenaBytes, activationBytes, buffers, offsets };
}

/**
 * The inputs `node` may write its output over: those it reads at the same element it writes, and nowhere else.
 * An elementwise op reads every input that way. A conv2d, conv_transpose2d or gemm reads its residual operand that
 * way in its epilogue, but its main input through the whole convolution window / row of K: while one CTA writes its
 * output tile, others still read theirs. So only the residual may be reused, and only when no other input of the node
 * (the main input, or a view of it) lives in the same buffer — `y = x + conv(x)` and `y = x + x·W` get a buffer of
 * their own.
 */
function inPlaceInputs(graph: Graph, node: Node, bufferOf: Map<string, ArenaBuffer>): string[] {
  if ((node.domain === '' && ELEMENTWISE_OPS.has(node.op)) || node.op === 'elementwise') {
    // element i read where element i is written: inputs of the output's element size (a bool mask read by an fp16
    // chain, or an int64 index cast to fp16, is another element size: same bytes would be another element count)
    const elementBytes = (t: string) => storageBytes(graph.lookupTensor(t)?.dtype, 1, graph.lookupTensor(t)?.storage);
    // a concat piece (ops/fused.ts ConcatSlot) is read at other positions than the output elements it feeds
    const pieces = new Set(elementwiseSlotsOf(node).flatMap((s) => (s.concat ? s.inputs : [])));
    return node.inputs.filter((t) => t && !pieces.has(t) && elementBytes(t) === elementBytes(node.outputs[0]));
  }
  if (node.domain === '' && (node.op === 'ScatterElements' || node.op === 'ScatterND')) {
    // writes data's elements where it reads them (kernels/scatter.cuh skips the copy when given data's buffer);
    // indices and updates are read elsewhere, so they must not live in that buffer
    const data = node.inputs[0];
    const buffer = data ? bufferOf.get(data) : undefined;
    return buffer && !node.inputs.some((t, i) => i > 0 && t && bufferOf.get(t) === buffer) ? [data] : [];
  }
  if (node.op !== 'conv2d' && node.op !== 'conv3d' && node.op !== 'conv_transpose2d' && node.op !== 'gemm') return [];
  // epilogue operands follow the two main inputs, one per operand step, in step order
  const operandSteps = epilogueOf(node)
    .map((step) => step.split(':')[0])
    .filter((name) => EPILOGUE_OPERAND_STEPS.has(name));
  const residualIndex = operandSteps.indexOf('residual_add');
  if (residualIndex < 0) return [];
  const position = 2 + residualIndex;
  const residual = node.inputs[position];
  const buffer = residual ? bufferOf.get(residual) : undefined;
  if (!buffer) return [];
  const readElsewhere = node.inputs.some((t, i) => i !== position && t && bufferOf.get(t) === buffer);
  return readElsewhere ? [] : [residual];
}

/** A buffer `node` may overwrite: an input it may write in place (inPlaceInputs), of the same size, dead after it. */
function inPlaceCandidate(
  graph: Graph,
  node: Node,
  index: number,
  bytes: number,
  bufferOf: Map<string, ArenaBuffer>,
  lastUse: Map<string, number>,
  batch: number,
): ArenaBuffer | undefined {
  for (const c of inPlaceInputs(graph, node, bufferOf)) {
    const b = c ? bufferOf.get(c) : undefined;
    if (!b || tensorBytesAt(graph, c, batch) !== bytes) continue;
    // every tensor in that buffer must be dead after this node
    if (b.tensors.every((t) => (lastUse.get(t) ?? -1) <= index && !graph.outputs.includes(t))) return b;
  }
  return undefined;
}

export const memoryPlanPass: Pass = {
  name: 'memory-plan',
  description: 'lifetimes and greedy-by-size offsets in one activation arena, with in-place reuse',
  run(graph, ctx) {
    const plan = planMemory(graph, ctx.batch);
    ctx.reports.memory = plan;
    if (!(plan.arenaBytes <= MAX_ARENA_BYTES)) {
      // Code generation would size buffers by this: refuse, naming the largest activation and its producer.
      const largest = plan.buffers.reduce<ArenaBuffer | undefined>((a, b) => (!a || b.bytes > a.bytes ? b : a), undefined);
      const tensor = largest?.tensors[0];
      const producer = tensor ? graph.nodes.find((n) => n.outputs.includes(tensor)) : undefined;
      ctx.diagnostics.push(
        error(
          'memory.too-large',
          `the activations need an arena of ${sizeText(plan.arenaBytes)} bytes at batch ${plan.batch}, more than the supported ` +
            `${sizeText(MAX_ARENA_BYTES)} (1 TiB)${tensor ? `; the largest is '${tensor}' (${sizeText(largest!.bytes)} bytes)` : ''}`,
          { tensor, onnxNode: producer?.sourceNodes[0] ?? producer?.name, nodeId: producer?.id },
        ),
      );
    }
  },
};
