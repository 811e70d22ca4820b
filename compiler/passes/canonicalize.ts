/**
 * Canonicalization: removes no-ops and rewrites the two PyTorch exporters' idioms into one form, so later passes
 * match one pattern:
 *   Identity, Dropout, Cast to the same type, Reshape/Expand to the same shape, x*1, x/1, x+0, x-0  → removed
 *   Pad by zeros                                                                                       → removed
 *   Slice of the whole tensor (every start 0, step 1, output shape = input shape)                      → removed
 *   Conv(Pad(x) with constant 0 on the spatial axes)                                                   → Conv with the pads added
 *   Cast(Cast(x)) where the inner cast widens                                                         → one Cast
 *   Flatten                                                                                            → Reshape
 *   ReduceMean over H,W of a 4-D tensor                                                                → GlobalAveragePool (+ Reshape)
 *   x·0.5·(1 + erf(x/√2)) in any association                                                           → Gelu
 *   Slice(i, i+1) + Squeeze, Split + Squeeze on that axis (the q/k/v split)                             → Gather(i)
 *   chains of Reshape/Transpose/Squeeze/Unsqueeze                                                      → one Reshape or Transpose (movement.ts)
 *   1-D Conv/ConvTranspose/MaxPool/AveragePool                                                          → the 2-D op with H = 1 (lift-1d.ts)
 *   Conv/MaxPool/AveragePool auto_pad with concrete spatial dims                                        → explicit pads
 *   DepthToSpace / SpaceToDepth with fixed C, H, W                          → Reshape + 6-D Transpose + Reshape
 *   Einsum ('...' expanded; one operand, or a chain of two-operand products)  → ReduceSum/Transpose/Reshape + MatMul
 *   Trilu(x, k) over fixed last two dims                                   → Where(constant triangle mask, x, 0)
 *   Gemm with transA, alpha ≠ 1, beta ≠ 1 or a C that is not a constant row  → Transpose(A) + Gemm(A, B) + Mul/Add
 *   PRelu before opset 7 with a per-channel 1-D slope [C]                  → PRelu(x, Reshape(slope, [C, 1, ...]))
 */
import { DType } from '../ir/dtype';
import { Graph, Node, attrFloat, attrInt, attrInts, attrString, subgraphsOf } from '../ir/graph';
import { Dim, dimProduct, isConcrete, shapeEquals } from '../ir/symbolic';
import { parseEinsum } from '../ops/gemm';
import { makeTensor } from '../ir/tensor';
import { Pass, PassContext } from './pass';
import { simplifyMovementChains } from './movement';
import { explicitAutoPads, liftOneDimWindows, sinkSqueezes } from './lift-1d';
import { broadcastShapes } from '../ops/broadcast';
import { isLegacyChannelSlope } from '../ops/elementwise';
import { removeDead } from './fold-constants';
import { isIdentitySlice } from './roll';
import { absorb, addConstant, bypassNode, isStatic, liveNodes, replaceUsesMany, scalarValue, soleConsumer, valueOf } from './rewrite';

export const canonicalizePass: Pass = {
  name: 'canonicalize',
  description:
    'remove no-ops; unify exporter idioms (Flatten, ReduceMean→GlobalAveragePool, Erf-GELU→Gelu, Slice+Squeeze→Gather, zero Pad→Conv pads); 1-D windows as 2-D',
  run(graph, ctx) {
    legacyPReluSlopes(graph);
    let changed = true;
    for (let round = 0; changed && round < 8; round++) {
      changed = false;
      changed = removeNoOps(graph, ctx) || changed;
      changed = rewriteIdioms(graph, ctx) || changed;
      changed = explicitAutoPads(graph) || changed;
      changed = liftOneDimWindows(graph) || changed;
      changed = sinkSqueezes(graph) || changed;
      changed = simplifyMovementChains(graph, ctx) || changed;
      removeDead(graph, ctx.removed);
    }
  },
};

/**
 * PRelu before opset 7 reads a 1-D slope [C] over axis 1 (ops/elementwise.ts isLegacyChannelSlope); the numpy form
 * that every later pass and lowering takes is the slope reshaped to [C, 1, ...] (a constant once folded).
 */
function legacyPReluSlopes(graph: Graph): void {
  for (const node of [...graph.nodes]) {
    if (node.op !== 'PRelu' || node.domain !== '') continue;
    const x = shapeOf(graph, node.inputs[0]);
    const slope = node.inputs[1];
    const s = slope ? shapeOf(graph, slope) : undefined;
    if (!x || !s || !isLegacyChannelSlope(graph.opset, x, s)) continue;
    const target = [s[0] as number, ...x.slice(2).map(() => 1)];
    const reshaped = graph.newTensorName(`${slope}_channels`);
    graph.addTensor({ name: reshaped, kind: 'activation', dtype: graph.lookupTensor(slope)?.dtype, shape: target });
    graph.nodes.splice(graph.nodes.indexOf(node), 0, {
      id: graph.newNodeId(),
      op: 'Reshape',
      domain: '',
      name: `${node.name}/legacy_slope`,
      inputs: [slope, addConstant(graph, `${reshaped}_shape`, makeTensor('int64', [target.length], target))],
      outputs: [reshaped],
      attrs: {},
      sourceNodes: [],
      scope: node.scope,
    });
    node.inputs = [node.inputs[0], reshaped];
  }
}

function shapeOf(graph: Graph, name: string) {
  return graph.lookupTensor(name)?.shape;
}

function sameShape(graph: Graph, a: string, b: string): boolean {
  const sa = shapeOf(graph, a);
  const sb = shapeOf(graph, b);
  return !!sa && !!sb && shapeEquals(sa, sb);
}

/**
 * Removes no-ops (Identity, inference Dropout, same-type Cast, same-shape Reshape/Expand/Squeeze/Unsqueeze, Pad by
 * zeros, x·1, x+0 …). One walk in graph order: each removed node's output becomes an alias of its input, later readers are
 * renamed as they are reached and subgraphs once at the end, and the removed nodes leave in one filter, so a chain of
 * any length costs linear time. A no-op that writes a graph output keeps the output's name (bypassNode), after
 * the others.
 */
function removeNoOps(graph: Graph, ctx: PassContext): boolean {
  const alias = new Map<string, string>();
  const resolve = (name: string) => alias.get(name) ?? name;
  const removed = new Set<Node>();
  const onOutputs: { node: Node; input: string; output: string }[] = [];
  // tensors something reads: a node here, a subgraph (through its outer reads), or the graph's outputs
  const read = new Set<string>([...graph.outputs, ...graph.nodes.flatMap((n) => [...n.inputs, ...subgraphReads(n)])]);
  for (const node of graph.nodes) {
    for (let i = 0; i < node.inputs.length; i++) node.inputs[i] = resolve(node.inputs[i]);
    const out = node.outputs[0];
    const passThrough = noOpInput(graph, node, read);
    if (passThrough === undefined || !out) continue;
    if (graph.outputs.includes(out)) {
      onOutputs.push({ node, input: passThrough, output: out });
      continue;
    }
    alias.set(out, resolve(passThrough));
    graph.tensors.delete(out);
    for (const unread of node.outputs.slice(1)) if (unread) graph.tensors.delete(unread);
    removed.add(node);
    for (const s of node.sourceNodes) ctx.removed.push({ onnxNode: s, reason: 'no-op removed' });
  }
  if (removed.size > 0) {
    graph.nodes = graph.nodes.filter((n) => !removed.has(n));
    // an alias of an alias (a reader met before its producer's removal) resolves to the end of its chain
    for (const [from, to] of alias) {
      let end = to;
      for (let hops = 0; alias.has(end) && hops <= alias.size; hops++) end = alias.get(end)!;
      alias.set(from, end);
    }
    replaceUsesMany(graph, alias);
  }
  let changed = removed.size > 0;
  for (const { node, input, output } of onOutputs)
    if (bypassNode(graph, node, resolve(input), output, ctx, 'no-op removed')) changed = true;
  return changed;
}

/** Tensors defined outside a node's subgraphs that they read. */
function subgraphReads(node: Node): string[] {
  return subgraphsOf(node).flatMap((g) => [...g.outerReads()]);
}

/**
 * The input a no-op node passes through unchanged, or undefined when the node is not a no-op. `read`: the tensors
 * something reads (an inference Dropout whose mask output is named but unread is a no-op: older exporters name it).
 */
function noOpInput(graph: Graph, node: Node, read: ReadonlySet<string> = new Set()): string | undefined {
  const [x, y] = node.inputs;
  const out = node.outputs[0];
  switch (node.op) {
    case 'Identity':
    case 'Dropout':
      return node.outputs.slice(1).every((o) => !o || !read.has(o)) ? x : undefined;
    case 'Cast':
      return graph.lookupTensor(x)?.dtype === graph.lookupTensor(out)?.dtype ? x : undefined;
    case 'Pad': {
      // all pads zero (a window-size pad that the input already fits): the input unchanged
      const pads = y ? valueOf(graph, y) : undefined;
      const given = y ? (pads ? Array.from(pads.data as ArrayLike<number>) : undefined) : attrInts(node, 'pads', []);
      return given && given.every((p) => p === 0) && sameShape(graph, x, out) ? x : undefined;
    }
    case 'Reshape':
    case 'Expand':
    case 'Squeeze':
    case 'Unsqueeze':
      return sameShape(graph, x, out) ? x : undefined;
    case 'Slice':
      // the whole tensor (timm's x[:, :H, :W, :] crop of a padding that is 0): a view, not a copy
      return isIdentitySlice(graph, node) ? x : undefined;
    case 'Mul':
    case 'Div':
    case 'Add':
    case 'Sub': {
      const neutral = node.op === 'Mul' || node.op === 'Div' ? 1 : 0;
      if (scalarValue(graph, y) === neutral && sameShape(graph, x, out) && sameDtype(graph, x, out)) return x;
      if (
        (node.op === 'Mul' || node.op === 'Add') &&
        scalarValue(graph, x) === neutral &&
        sameShape(graph, y, out) &&
        sameDtype(graph, y, out)
      )
        return y;
      return undefined;
    }
  }
  return undefined;
}

function sameDtype(graph: Graph, a: string, b: string): boolean {
  return graph.lookupTensor(a)?.dtype === graph.lookupTensor(b)?.dtype;
}

const WIDER: Record<string, DType[]> = {
  float16: ['float32', 'float64'],
  bfloat16: ['float32', 'float64'],
  float32: ['float64'],
  int32: ['int64'],
  int8: ['int16', 'int32', 'int64'],
};

function rewriteIdioms(graph: Graph, ctx: PassContext): boolean {
  let changed = false;
  const producers = graph.producers();
  const consumers = graph.consumers();
  const isLive = liveNodes(graph);
  for (const node of [...graph.nodes]) {
    if (!isLive(node)) continue;
    switch (node.op) {
      case 'Flatten': {
        const axis = attrInt(node, 'axis', 1);
        const rank = shapeOf(graph, node.inputs[0])?.length;
        if (axis === 1 && rank !== undefined) {
          node.op = 'Reshape';
          node.attrs = {};
          node.inputs = [node.inputs[0], addConstant(graph, `${node.outputs[0]}_shape`, makeTensor('int64', [2], [0, -1]))];
          changed = true;
        }
        break;
      }
      case 'Cast': {
        const inner = producers.get(node.inputs[0]);
        if (inner?.op === 'Cast' && soleConsumer(graph, consumers, node.inputs[0]) === node) {
          const src = graph.lookupTensor(inner.inputs[0])?.dtype;
          const mid = graph.lookupTensor(inner.outputs[0])?.dtype;
          if (src && mid && (WIDER[src]?.includes(mid) ?? false)) {
            node.inputs[0] = inner.inputs[0];
            absorb(node, inner);
            graph.nodes = graph.nodes.filter((n) => n !== inner);
            graph.tensors.delete(inner.outputs[0]);
            changed = true;
          }
        }
        break;
      }
      case 'ReduceMean': {
        const shape = shapeOf(graph, node.inputs[0]);
        if (!shape || shape.length !== 4) break;
        const axesValue = node.inputs[1] ? valueOf(graph, node.inputs[1]) : undefined;
        const axes = (axesValue ? Array.from(axesValue.data as ArrayLike<number>) : attrInts(node, 'axes', []))
          .map((a) => (a < 0 ? a + 4 : a))
          .sort();
        if (axes.length !== 2 || axes[0] !== 2 || axes[1] !== 3) break;
        const keep = attrInt(node, 'keepdims', 1);
        node.op = 'GlobalAveragePool';
        node.attrs = {};
        if (keep) node.inputs = [node.inputs[0]];
        else {
          const pooled = graph.newTensorName(`${node.outputs[0]}_pooled`);
          const final = node.outputs[0];
          const finalInfo = graph.tensors.get(final)!;
          graph.addTensor({ name: pooled, kind: 'activation', dtype: finalInfo.dtype, shape: [...shape.slice(0, 2), 1, 1] });
          node.inputs = [node.inputs[0]];
          node.outputs = [pooled];
          const reshape: Node = {
            id: graph.newNodeId(),
            op: 'Reshape',
            domain: '',
            name: `${node.name}/flatten`,
            inputs: [pooled, addConstant(graph, `${final}_shape`, makeTensor('int64', [2], [0, -1]))],
            outputs: [final],
            attrs: {},
            sourceNodes: [],
            scope: node.scope,
          };
          graph.nodes.splice(graph.nodes.indexOf(node) + 1, 0, reshape);
        }
        changed = true;
        break;
      }
      case 'Conv':
        changed = padIntoConv(graph, node, producers, consumers) || changed;
        break;
      case 'Squeeze':
        changed = sliceSqueezeToGather(graph, node, producers, consumers, ctx) || changed;
        break;
      case 'Mul':
        changed = erfGeluToGelu(graph, node, producers, consumers, ctx) || changed;
        break;
      case 'Gemm':
        changed = splitGemm(graph, node) || changed;
        break;
      case 'Trilu':
        changed = triluToWhere(graph, node) || changed;
        break;
      case 'Einsum':
        changed = einsumToMatMul(graph, node) || changed;
        break;
      case 'DepthToSpace':
      case 'SpaceToDepth':
        changed = pixelShuffleToTranspose(graph, node) || changed;
        break;
      case 'Slice':
        // before opset 10, bounds are attributes: as inputs, one form for the passes and lowerings
        if (node.inputs.length === 1 && node.attrs.starts) {
          const starts = attrInts(node, 'starts');
          const constant = (what: string, values: number[]) =>
            addConstant(graph, `${node.outputs[0]}_${what}`, makeTensor('int64', [values.length], values));
          node.inputs = [
            node.inputs[0],
            constant('starts', starts),
            constant('ends', attrInts(node, 'ends')),
            constant(
              'axes',
              attrInts(
                node,
                'axes',
                starts.map((_, i) => i),
              ),
            ),
          ];
          node.attrs = {};
          changed = true;
        }
        break;
      case 'Sum':
      case 'Mean':
      case 'Max':
      case 'Min':
        changed = variadicToBinary(graph, node) || changed;
        break;
    }
  }
  return changed;
}

const BINARY_OF: Record<string, string> = { Sum: 'Add', Mean: 'Add', Max: 'Max', Min: 'Min' };

/**
 * Sum, Mean, Max and Min of any number of inputs ⇒ a chain of two-input Add/Max/Min (Mean: the sum times 1/n), the
 * forms the elementwise kernels and fusion take. Two-input Max/Min stay; shape arithmetic (a tensor with a shape
 * value, evaluated on the host) stays as it is.
 */
function variadicToBinary(graph: Graph, node: Node): boolean {
  const out = graph.lookupTensor(node.outputs[0]);
  const binary = BINARY_OF[node.op];
  if (!out?.dtype || out.shapeValue || node.inputs.some((i) => !i)) return false;
  if ((node.op === 'Max' || node.op === 'Min') && node.inputs.length === 2) return false;
  const n = node.inputs.length;
  const shapes = node.inputs.map((i) => shapeOf(graph, i));
  if (shapes.some((sh) => !sh)) return false;
  const created: Node[] = [];
  const emit = (op: string, inputs: string[], output: string) =>
    created.push({
      id: graph.newNodeId(),
      op,
      domain: '',
      name: `${node.name}/${op.toLowerCase()}${created.length}`,
      inputs,
      outputs: [output],
      attrs: {},
      sourceNodes: [...node.sourceNodes],
      scope: node.scope,
    });
  const mean = node.op === 'Mean' && n > 1;
  let acc = node.inputs[0];
  let accShape = shapes[0]!;
  for (let k = 1; k < n; k++) {
    const shape = broadcastShapes([accShape, shapes[k]!]);
    if (typeof shape === 'string') return false;
    const last = k === n - 1 && !mean;
    const name = last ? node.outputs[0] : graph.newTensorName(`${node.outputs[0]}_${binary.toLowerCase()}`);
    if (!last) graph.addTensor({ name, kind: 'activation', dtype: out.dtype, shape });
    emit(binary, [acc, node.inputs[k]], name);
    acc = name;
    accShape = shape;
  }
  if (mean) emit('Mul', [acc, addConstant(graph, `${node.outputs[0]}_inv_count`, makeTensor(out.dtype, [], [1 / n]))], node.outputs[0]);
  else if (n === 1) emit('Identity', [acc], node.outputs[0]);
  graph.nodes.splice(graph.nodes.indexOf(node), 1, ...created);
  return true;
}

/** The letters no term of an Einsum uses, for axes the rewrite renames. */
const EINSUM_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** One two-operand product of an Einsum chain: its letter groups, decided before any node is made. */
interface EinsumProduct {
  batch: string[];
  m: string[];
  k: string[];
  n: string[];
  /** Reshape targets when a group is not one axis (undefined: no merge). */
  merge?: { a: number[]; b: number[]; y: number[] };
}

/**
 * Einsum ⇒ movement ops, ReduceSums and MatMuls, so the GEMM paths run it. '...' is expanded into letters
 * (parseEinsum); an ellipsis axis of size 1 that broadcasts against a larger one is renamed in its operand, so that
 * it is summed away (a size-1 sum) and the other operand's axis kept. Then:
 *  - one operand: letters not in the output are summed (ReduceSum), the rest permuted (Transpose);
 *  - two or more: a left-to-right chain of two-operand products. For each, letters of one operand only that nothing
 *    later needs (the output, later operands) are summed first; letters in both are batch axes when needed later,
 *    else contracted (K); the others are M (A) or N (B). A is transposed to [batch, M, K] and B to [batch, K, N],
 *    groups merged by Reshape when they are not one axis each, then MatMul, a Reshape splitting M and N back, and
 *    for the last product a Transpose to the output order.
 * Reshape targets take one run-time dim (as -1); a letter twice in one operand (a diagonal) or merges of several
 * run-time dims stay Einsum (refused with the equation).
 */
function einsumToMatMul(graph: Graph, node: Node): boolean {
  const shapes = node.inputs.map((t) => shapeOf(graph, t));
  if (shapes.some((sh) => !sh)) return false;
  const operandShapes = shapes as Dim[][];
  const eq = parseEinsum(
    String(node.attrs.equation?.value ?? ''),
    operandShapes.map((sh) => sh.length),
  );
  const dtype = graph.lookupTensor(node.outputs[0])?.dtype;
  if (typeof eq === 'string' || !dtype || eq.inputs.some((t) => new Set(t).size !== t.length)) return false;
  const size = new Map<string, Dim>();
  const free = [...EINSUM_LETTERS].filter((c) => !eq.inputs.join('').includes(c));
  // every letter's size; a broadcast ellipsis axis (1 against a larger size) gets a letter of its own, summed away
  const broadcastAxes = new Set<string>();
  for (let k = 0; k < eq.inputs.length; k++)
    [...eq.inputs[k]].forEach((c, a) => {
      const d = operandShapes[k][a];
      if (d !== 1 || !size.has(c)) size.set(c, d);
    });
  const inputs = eq.inputs.map((t, k) =>
    [...t]
      .map((c, a) => {
        if (operandShapes[k][a] !== 1 || size.get(c) === 1) return c;
        const renamed = free.shift();
        if (renamed === undefined) return '?';
        size.set(renamed, 1);
        broadcastAxes.add(renamed);
        return renamed;
      })
      .join(''),
  );
  if (inputs.some((t) => t.includes('?'))) return false;
  const to = eq.output;

  /** A Reshape target for groups of letters (each group one axis); undefined when more than one axis is run-time. */
  const target = (groups: string[][]): number[] | undefined => {
    const dims = groups.map((g) =>
      g.reduce<number | undefined>((n, c) => (n !== undefined && isConcrete(size.get(c)!) ? n * (size.get(c) as number) : undefined), 1),
    );
    return dims.filter((d) => d === undefined).length > 1 ? undefined : dims.map((d) => d ?? -1);
  };
  // letters each step needs after it: the output's and those of later operands
  const neededAfter = (i: number) => new Set([...to, ...inputs.slice(i + 1).join('')]);
  const sumOut = (t: string, needed: Set<string>, other: string) => [...t].filter((c) => needed.has(c) || other.includes(c)).join('');

  // plan every product first: nothing is added to the graph unless the whole Einsum rewrites
  const plans: { a: string; b: string; y: string; product: EinsumProduct }[] = [];
  let current = inputs[0];
  for (let i = 1; i < inputs.length; i++) {
    const needed = neededAfter(i);
    const ta = sumOut(current, needed, inputs[i]);
    const tb = sumOut(inputs[i], needed, ta);
    const batch = [...ta].filter((c) => tb.includes(c) && needed.has(c));
    const m = [...ta].filter((c) => !tb.includes(c));
    const k = [...ta].filter((c) => tb.includes(c) && !needed.has(c));
    const n = [...tb].filter((c) => !ta.includes(c));
    const single = (g: string[]) => g.length === 1;
    const product: EinsumProduct = { batch, m, k, n };
    if (!single(m) || !single(k) || !single(n)) {
      const a = target([...batch.map((c) => [c]), m, k]);
      const b = target([...batch.map((c) => [c]), k, n]);
      const y = target([...batch, ...m, ...n].map((c) => [c]));
      if (!a || !b || !y) return false;
      product.merge = { a, b, y };
    }
    const y = [...batch, ...m, ...n].join('');
    plans.push({ a: ta, b: tb, y, product });
    current = y;
  }

  const out = node.outputs[0];
  const created: Node[] = [];
  const step = (op: string, input: string[], attrs: Node['attrs'], shape: Dim[], output?: string): string => {
    const name = output ?? graph.newTensorName(`${out}_${op.toLowerCase()}`);
    if (!output) graph.addTensor({ name, kind: 'activation', dtype, shape });
    created.push({
      id: graph.newNodeId(),
      op,
      domain: '',
      name: `${node.name}/${op.toLowerCase()}${created.length}`,
      inputs: input,
      outputs: [name],
      attrs,
      sourceNodes: [...node.sourceNodes],
      scope: node.scope,
    });
    return name;
  };
  const dimsOf = (letters: string) => [...letters].map((c) => size.get(c)!);
  /** Transposes `x` (letters `from`) to the order `order` (skipped when it is the identity). */
  const permute = (x: string, from: string, order: string, output?: string): string => {
    const perm = [...order].map((c) => from.indexOf(c));
    if (!output && perm.every((p, i) => p === i)) return x;
    return step('Transpose', [x], { perm: { type: 'ints', value: perm } }, dimsOf(order), output);
  };
  const shapeConst = (dims: number[]) => addConstant(graph, `${out}_shape`, makeTensor('int64', [dims.length], dims));
  /** Sums `x` (letters `from`) over the letters not in `keep` (ReduceSum, keepdims 0: axes as the opset takes them). */
  const sum = (x: string, from: string, keep: string, output?: string): string => {
    const axes = [...from].map((c, a) => (keep.includes(c) ? -1 : a)).filter((a) => a >= 0);
    if (axes.length === 0) return x;
    const kept = [...from].filter((c) => keep.includes(c)).join('');
    const axesConst = () => addConstant(graph, `${out}_axes`, makeTensor('int64', [axes.length], axes));
    return graph.opset >= 13
      ? step('ReduceSum', [x, axesConst()], { keepdims: { type: 'int', value: 0 } }, dimsOf(kept), output)
      : step('ReduceSum', [x], { axes: { type: 'ints', value: axes }, keepdims: { type: 'int', value: 0 } }, dimsOf(kept), output);
  };
  const groupDims = (groups: string[][]): Dim[] => groups.map((g) => dimProduct(g.map((c) => size.get(c)!)));

  if (inputs.length === 1) {
    const t = inputs[0];
    const kept = [...t].filter((c) => to.includes(c)).join('');
    if (kept === to && kept !== t) sum(node.inputs[0], t, to, out);
    else permute(sum(node.inputs[0], t, to), kept, to, out);
  } else {
    let x = node.inputs[0];
    let letters = inputs[0];
    plans.forEach(({ a: ta, b: tb, y: ty, product }, i) => {
      const last = i === plans.length - 1;
      const { batch, m, k, n, merge } = product;
      let a = permute(sum(x, letters, ta), ta, [...batch, ...m, ...k].join(''));
      let b = permute(sum(node.inputs[i + 1], inputs[i + 1], tb), tb, [...batch, ...k, ...n].join(''));
      if (merge) {
        a = step('Reshape', [a, shapeConst(merge.a)], {}, groupDims([...batch.map((c) => [c]), m, k]));
        b = step('Reshape', [b, shapeConst(merge.b)], {}, groupDims([...batch.map((c) => [c]), k, n]));
      }
      const direct = last && !merge && ty === to;
      let y = step('MatMul', [a, b], {}, merge ? groupDims([...batch.map((c) => [c]), m, n]) : dimsOf(ty), direct ? out : undefined);
      if (merge) y = step('Reshape', [y, shapeConst(merge.y)], {}, dimsOf(ty), last && ty === to ? out : undefined);
      if (last && ty !== to) permute(y, ty, to, out);
      x = y;
      letters = ty;
    });
  }
  graph.nodes.splice(graph.nodes.indexOf(node), 1, ...created);
  return true;
}

/**
 * DepthToSpace / SpaceToDepth ⇒ Reshape to 6-D, Transpose, Reshape back (the ONNX definition), when C, H and W are
 * fixed (N is copied by the reshapes' 0): the copy kernels and the layout pass then handle them as any movement.
 */
function pixelShuffleToTranspose(graph: Graph, node: Node): boolean {
  const shape = shapeOf(graph, node.inputs[0]);
  const outShape = shapeOf(graph, node.outputs[0]);
  const dtype = graph.lookupTensor(node.inputs[0])?.dtype;
  const b = attrInt(node, 'blocksize', 0);
  if (!shape || !outShape || shape.length !== 4 || !dtype || b < 1) return false;
  const [, c, h, w] = shape;
  if (typeof c !== 'number' || typeof h !== 'number' || typeof w !== 'number') return false;
  const n = shape[0];
  let split: number[];
  let perm: number[];
  if (node.op === 'DepthToSpace') {
    const crd = attrString(node, 'mode', 'DCR') === 'CRD';
    split = crd ? [c / (b * b), b, b, h, w] : [b, b, c / (b * b), h, w];
    perm = crd ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2];
  } else {
    split = [c, h / b, b, w / b, b];
    perm = [0, 3, 5, 1, 2, 4];
  }
  if (!split.every(Number.isInteger)) return false;
  const out = node.outputs[0];
  const splitShape = [n, ...split];
  const moved = graph.newTensorName(`${out}_split`);
  const permuted = graph.newTensorName(`${out}_permuted`);
  graph.addTensor({ name: moved, kind: 'activation', dtype, shape: splitShape });
  graph.addTensor({ name: permuted, kind: 'activation', dtype, shape: perm.map((p) => splitShape[p]) });
  const step = (op: string, suffix: string, inputs: string[], output: string, attrs: Node['attrs'] = {}): Node => ({
    id: graph.newNodeId(),
    op,
    domain: '',
    name: `${node.name}/${suffix}`,
    inputs,
    outputs: [output],
    attrs,
    sourceNodes: [...node.sourceNodes],
    scope: node.scope,
  });
  const shapeConst = (suffix: string, dims: number[]) => addConstant(graph, `${out}_${suffix}`, makeTensor('int64', [dims.length], dims));
  const nodes = [
    step('Reshape', 'split', [node.inputs[0], shapeConst('split_shape', [0, ...split])], moved),
    step('Transpose', 'permute', [moved], permuted, { perm: { type: 'ints', value: perm } }),
    step('Reshape', 'merge', [permuted, shapeConst('shape', [0, ...outShape.slice(1).map(Number)])], out),
  ];
  graph.nodes.splice(graph.nodes.indexOf(node), 1, ...nodes);
  return true;
}

/**
 * Trilu(x, k) ⇒ Where(mask, x, 0) with a constant bool mask over the last two axes (kept where j − i ≥ k for upper,
 * j − i ≤ k for lower), when those axes have fixed sizes and k is a constant: the elementwise kernels then run it (a
 * causal mask's Trilu of a run-time tensor), broadcasting the mask over the leading axes. Where, unlike a multiply by
 * 0/1, zeroes Inf and NaN as Trilu does.
 */
function triluToWhere(graph: Graph, node: Node): boolean {
  const shape = shapeOf(graph, node.inputs[0]);
  const dtype = graph.lookupTensor(node.inputs[0])?.dtype;
  if (!shape || shape.length < 2 || !dtype) return false;
  const [n, m] = shape.slice(-2);
  if (typeof n !== 'number' || typeof m !== 'number' || n * m > 1 << 24) return false;
  let k = 0;
  if (node.inputs[1]) {
    const value = valueOf(graph, node.inputs[1]);
    if (!value) return false;
    k = Number((value.data as ArrayLike<number>)[0]);
  }
  const upper = attrInt(node, 'upper', 1) === 1;
  const mask = Array.from({ length: n * m }, (_, f) => {
    const diff = (f % m) - Math.floor(f / m);
    return (upper ? diff >= k : diff <= k) ? 1 : 0;
  });
  const out = node.outputs[0];
  node.op = 'Where';
  node.attrs = {};
  node.inputs = [
    addConstant(graph, `${out}_triangle`, makeTensor('bool', [n, m], mask)),
    node.inputs[0],
    addConstant(graph, `${out}_zero`, makeTensor(dtype, [], [0])),
  ];
  return true;
}

/**
 * Gemm in the one form the fused gemm takes (A row-major, alpha = beta = 1, C absent or a constant row of N values
 * or a scalar: the bias epilogue): any other Gemm becomes Transpose(A) when transA (folded when A is a weight), a
 * Gemm(A, B, transB) with that form, then ·alpha and + beta·C as elementwise nodes (fused with the GEMM's epilogue or
 * into one elementwise kernel later; beta·C of a constant C folds). Y = alpha·A'·B' + beta·C is unchanged.
 */
function splitGemm(graph: Graph, node: Node): boolean {
  const transA = attrInt(node, 'transA', 0) !== 0;
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const c = node.inputs[2] || undefined;
  const cInfo = c ? graph.lookupTensor(c) : undefined;
  const cShape = cInfo?.shape;
  const cIsRow = !!cShape && isStatic(cInfo) && cShape.slice(0, -1).every((d) => d === 1);
  const splitC = c !== undefined && (alpha !== 1 || beta !== 1 || !cIsRow);
  if (!transA && !splitC && alpha === 1) return false;
  const aInfo = graph.lookupTensor(node.inputs[0]);
  const yInfo = graph.lookupTensor(node.outputs[0]);
  if (aInfo?.shape?.length !== 2 || !yInfo?.dtype || !yInfo.shape) return false;
  const dtype = yInfo.dtype;
  const added: Node[] = [];
  const newNode = (op: string, suffix: string, inputs: string[], output: string, attrs: Node['attrs'] = {}): Node => ({
    id: graph.newNodeId(),
    op,
    domain: '',
    name: `${node.name}/${suffix}`,
    inputs,
    outputs: [output],
    attrs,
    sourceNodes: [],
    scope: node.scope,
  });
  const activation = (base: string, shape = yInfo.shape!) => {
    const name = graph.newTensorName(base);
    graph.addTensor({ name, kind: 'activation', dtype, shape: [...shape] });
    return name;
  };
  if (transA) {
    const [k, m] = aInfo.shape;
    const aT = activation(`${node.inputs[0]}_t`, [m, k]);
    graph.nodes.splice(
      graph.nodes.indexOf(node),
      0,
      newNode('Transpose', 'transpose_a', [node.inputs[0]], aT, { perm: { type: 'ints', value: [1, 0] } }),
    );
    node.inputs[0] = aT;
    delete node.attrs.transA;
  }
  if (splitC || alpha !== 1) {
    const final = node.outputs[0];
    let y = activation(`${final}_ab`);
    node.outputs[0] = y;
    node.inputs = node.inputs.slice(0, splitC ? 2 : 3);
    delete node.attrs.alpha;
    if (alpha !== 1) {
      const scaled = splitC ? activation(`${final}_alpha_ab`) : final;
      added.push(newNode('Mul', 'alpha', [y, addConstant(graph, `${final}_alpha`, makeTensor(dtype, [], [alpha]))], scaled));
      y = scaled;
    }
    if (splitC) {
      delete node.attrs.beta;
      let cTerm = c!;
      if (beta !== 1) {
        cTerm = graph.newTensorName(`${final}_beta_c`);
        graph.addTensor({ name: cTerm, kind: 'activation', dtype, shape: cShape ? [...cShape] : undefined });
        added.push(newNode('Mul', 'beta', [c!, addConstant(graph, `${final}_beta`, makeTensor(dtype, [], [beta]))], cTerm));
      }
      added.push(newNode('Add', 'add_c', [y, cTerm], final));
    }
    graph.nodes.splice(graph.nodes.indexOf(node) + 1, 0, ...added);
  }
  return true;
}

/**
 * Conv(Pad(x, zeros on the spatial axes)) ⇒ Conv(x) with the pads added to its own: a constant-0 Pad of the spatial
 * axes only (non-negative), read by the Conv alone, with the Conv's auto_pad NOTSET. The convolution kernels then read
 * the padding as out-of-bounds taps instead of a padded copy.
 */
function padIntoConv(graph: Graph, conv: Node, producers: Map<string, Node>, consumers: Map<string, Node[]>): boolean {
  const pad = producers.get(conv.inputs[0]);
  if (pad?.op !== 'Pad' || soleConsumer(graph, consumers, conv.inputs[0]) !== conv) return false;
  if ((pad.attrs.mode ? attrString(pad, 'mode') : 'constant') !== 'constant') return false;
  if (attrString(conv, 'auto_pad', 'NOTSET') !== 'NOTSET') return false;
  const rank = shapeOf(graph, pad.inputs[0])?.length;
  if (rank === undefined || rank < 3) return false;
  const fill = pad.inputs[2] ? valueOf(graph, pad.inputs[2]) : undefined;
  if (pad.inputs[2] && (!fill || Array.from(fill.data as ArrayLike<number>).some((v) => v !== 0))) return false;
  if (!pad.inputs[1] && pad.attrs.value && attrFloat(pad, 'value', 0) !== 0) return false;
  const padsValue = pad.inputs[1] ? valueOf(graph, pad.inputs[1]) : undefined;
  const given = pad.inputs[1] ? (padsValue ? Array.from(padsValue.data as ArrayLike<number>) : undefined) : attrInts(pad, 'pads', []);
  const axesValue = pad.inputs[3] ? valueOf(graph, pad.inputs[3]) : undefined;
  if (!given || (pad.inputs[3] && !axesValue)) return false;
  const axes = axesValue ? Array.from(axesValue.data as ArrayLike<number>).map((a) => (a < 0 ? a + rank : a)) : [...Array(rank).keys()];
  if (given.length !== 2 * axes.length) return false;
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  axes.forEach((a, k) => {
    begin[a] += given[k];
    end[a] += given[k + axes.length];
  });
  if (begin[0] || end[0] || begin[1] || end[1] || [...begin, ...end].some((p) => p < 0)) return false;
  const spatial = rank - 2;
  const pads = attrInts(conv, 'pads', new Array<number>(2 * spatial).fill(0));
  conv.attrs.pads = {
    type: 'ints',
    value: [...Array(2 * spatial).keys()].map((i) => pads[i] + (i < spatial ? begin[2 + i] : end[2 + i - spatial])),
  };
  conv.inputs[0] = pad.inputs[0];
  absorb(conv, pad);
  graph.nodes = graph.nodes.filter((n) => n !== pad);
  graph.tensors.delete(pad.outputs[0]);
  return true;
}

/** Slice(x, [i], [i+1], [axis]) → Squeeze(axis)  ⇒  Gather(x, i, axis). Split outputs likewise. */
function sliceSqueezeToGather(
  graph: Graph,
  squeeze: Node,
  producers: Map<string, Node>,
  consumers: Map<string, Node[]>,
  ctx: PassContext,
): boolean {
  const src = producers.get(squeeze.inputs[0]);
  if (!src || soleConsumer(graph, consumers, squeeze.inputs[0]) !== squeeze) return false;
  const inShape = shapeOf(graph, src.inputs[0]);
  if (!inShape) return false;
  const rank = inShape.length;
  const axesV = squeeze.inputs[1] ? valueOf(graph, squeeze.inputs[1]) : undefined;
  const sqAxes = (axesV ? Array.from(axesV.data as ArrayLike<number>) : attrInts(squeeze, 'axes', [])).map((a) => (a < 0 ? a + rank : a));
  if (sqAxes.length !== 1) return false;
  const axis = sqAxes[0];
  let index: number | undefined;
  if (src.op === 'Slice') {
    const v = (i: number) => (src.inputs[i] ? valueOf(graph, src.inputs[i]) : undefined);
    const starts = v(1);
    const ends = v(2);
    const axes = v(3);
    const steps = v(4);
    if (!starts || !ends || starts.data.length !== 1) return false;
    const sliceAxis = axes ? ((axes.data as ArrayLike<number>)[0] + rank) % rank : 0;
    if (sliceAxis !== axis || (steps && (steps.data as ArrayLike<number>)[0] !== 1)) return false;
    const dim = inShape[axis];
    if (typeof dim !== 'number') return false;
    const s = ((starts.data as ArrayLike<number>)[0] + dim) % dim;
    const e = Math.min(
      (ends.data as ArrayLike<number>)[0] < 0 ? (ends.data as ArrayLike<number>)[0] + dim : (ends.data as ArrayLike<number>)[0],
      dim,
    );
    if (e - s !== 1) return false;
    index = s;
  } else if (src.op === 'Split') {
    const splitAxis = (attrInt(src, 'axis', 0) + rank) % rank;
    const dim = inShape[axis];
    if (splitAxis !== axis || typeof dim !== 'number' || src.outputs.length !== dim) return false;
    index = src.outputs.indexOf(squeeze.inputs[0]);
  } else return false;
  const indexName = addConstant(graph, `${squeeze.outputs[0]}_index`, makeTensor('int64', [], [index]));
  if (src.op === 'Split') {
    // Each Split output + Squeeze becomes its own Gather; the Split node keeps its other outputs.
    const gather: Node = {
      ...squeeze,
      op: 'Gather',
      inputs: [src.inputs[0], indexName],
      attrs: { axis: { type: 'int', value: axis } },
      sourceNodes: [...squeeze.sourceNodes],
    };
    graph.nodes[graph.nodes.indexOf(squeeze)] = gather;
    const outIdx = src.outputs.indexOf(squeeze.inputs[0]);
    graph.tensors.delete(src.outputs[outIdx]);
    src.outputs[outIdx] = '';
    if (src.outputs.every((o) => !o)) {
      absorb(gather, src);
      graph.nodes = graph.nodes.filter((n) => n !== src);
    }
    return true;
  }
  squeeze.op = 'Gather';
  squeeze.inputs = [src.inputs[0], indexName];
  squeeze.attrs = { axis: { type: 'int', value: axis } };
  absorb(squeeze, src);
  graph.nodes = graph.nodes.filter((n) => n !== src);
  graph.tensors.delete(src.outputs[0]);
  void ctx;
  return true;
}

/**
 * Matches the exact GELU written out with Erf: Mul(Mul(x, 0.5), Add(Erf(Div(x, √2)), 1)) and its reassociations
 * (Mul(x, Mul(Add(Erf(x/√2), 1), 0.5)), Mul(Mul(x, Add(…)), 0.5), x·(1/√2) instead of x/√2).
 */
function erfGeluToGelu(graph: Graph, root: Node, producers: Map<string, Node>, consumers: Map<string, Node[]>, ctx: PassContext): boolean {
  const near = (v: number | undefined, target: number) => v !== undefined && Math.abs(v - target) < 1e-4 * Math.abs(target);
  const single = (t: string) => soleConsumer(graph, consumers, t);
  // Finds the Add(Erf(x/√2), 1) branch; returns x and the nodes involved.
  const matchErfPlusOne = (t: string): { x: string; nodes: Node[] } | undefined => {
    const add = producers.get(t);
    if (!add || add.op !== 'Add') return undefined;
    const erfIn =
      scalarValue(graph, add.inputs[1]) === 1 ? add.inputs[0] : scalarValue(graph, add.inputs[0]) === 1 ? add.inputs[1] : undefined;
    const erf = erfIn ? producers.get(erfIn) : undefined;
    if (!erf || erf.op !== 'Erf' || single(erf.outputs[0]) !== add) return undefined;
    const scale = producers.get(erf.inputs[0]);
    if (!scale || single(scale.outputs[0]) !== erf) return undefined;
    if (scale.op === 'Div' && near(scalarValue(graph, scale.inputs[1]), Math.SQRT2))
      return { x: scale.inputs[0], nodes: [add, erf, scale] };
    if (scale.op === 'Mul' && near(scalarValue(graph, scale.inputs[1]), Math.SQRT1_2))
      return { x: scale.inputs[0], nodes: [add, erf, scale] };
    return undefined;
  };
  // Flatten the product tree under root (through single-reader Muls) into its factors.
  const factors: string[] = [];
  const muls: Node[] = [];
  const collect = (t: string, reader: Node, depth: number) => {
    const p = producers.get(t);
    if (p && p.op === 'Mul' && depth < 3 && single(t) === reader) {
      muls.push(p);
      for (const i of p.inputs) collect(i, p, depth + 1);
    } else factors.push(t);
  };
  for (const i of root.inputs) collect(i, root, 0);
  if (factors.length !== 3) return false;
  const half = factors.find((f) => near(scalarValue(graph, f), 0.5));
  const erfBranch = factors.map((f) => (f === half ? undefined : matchErfPlusOne(f))).find((e) => e !== undefined);
  if (!half || !erfBranch) return false;
  const x = factors.find((f) => f !== half && producers.get(f) !== erfBranch.nodes[0]);
  if (x !== erfBranch.x) return false;
  const involved = [...muls, ...erfBranch.nodes];
  root.op = 'Gelu';
  root.inputs = [x];
  root.attrs = {};
  absorb(root, ...involved);
  graph.nodes = graph.nodes.filter((n) => !involved.includes(n));
  for (const n of involved) for (const o of n.outputs) graph.tensors.delete(o);
  void ctx;
  return true;
}
