/**
 * Layout: convolution networks run NHWC (channels last) on the GPU.
 *
 * 1. Every 2-D Conv / ConvTranspose / MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool becomes its NHWC fused
 *    form with a transpose (NCHW→NHWC) before and one (NHWC→NCHW) after; a 3-D Conv / MaxPool / AveragePool /
 *    GlobalAveragePool / GlobalMaxPool (video networks) its NDHWC form (conv3d with an ODHWI weight, pool3d,
 *    global_pool) with NCDHW→NDHWC and back. Conv weights get a weight-preparation
 *    Transpose (OIHW→OHWI), ConvTranspose weights one to [KH, KW, M/group, C], that constant folding evaluates at
 *    compile time when the weights are present (and at bind time otherwise). ConvTranspose's output_shape / auto_pad
 *    become explicit pads and output padding.
 * 2. Transposes are then sunk through every op with a layout rule (ops/layout-rules.ts: elementwise and
 *    broadcast ops, Concat/Split/Slice, Pad, Resize, reductions, Softmax, LayerNormalization, …; the rule rewrites
 *    axes, pads, scales and permutes broadcast operands) when that adds no transpose, and cancelled against their
 *    inverses, so that in a pure
 *    conv network only the model's own inputs and outputs are converted. A transpose that only moves size-1 dims
 *    becomes a Reshape (a view), and movement chains collapse (movement.ts: Transpose→Reshape→Transpose that moves
 *    no data is a Reshape).
 */
import { Graph, Node, attrInt, attrInts, attrString } from '../ir/graph';
import { Dim, dimEquals, isConcrete } from '../ir/symbolic';
import { makeTensor, numeric } from '../ir/tensor';
import { convTransposeWindow } from '../ops/conv';
import { FUSED_DOMAIN } from '../ops/fused';
import { PermuteAnswer, layoutRuleOf } from '../ops/layout-rules';
import { findOp } from '../ops/registry';
import { Pass, PassContext } from './pass';
import { absorb, addConstant, isStatic, replaceUses } from './rewrite';
import { runGraph } from '../interpreter/interpreter';
import { removeDead } from './fold-constants';
import { simplifyMovementChains } from './movement';

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];
const TO_NDHWC = [0, 2, 3, 4, 1];
const TO_NCDHW = [0, 4, 1, 2, 3];
/** ConvTranspose weight [C, M/group, KH, KW] → [KH, KW, M/group, C]. */
const TO_RSKC = [2, 3, 1, 0];

export const layoutPass: Pass = {
  name: 'layout',
  description: 'run convolutions and pooling NHWC; sink and cancel the layout transposes',
  run(graph, ctx) {
    convertToNhwc(graph);
    sinkAndCancel(graph, ctx);
  },
};

/** Per graph, so that a compile's tensor names do not depend on what else ran in the process before it. */
const counters = new WeakMap<Graph, number>();

function newTensor(graph: Graph, base: string, like: string, shape: Dim[]): string {
  const k = counters.get(graph) ?? 0;
  counters.set(graph, k + 1);
  const name = graph.newTensorName(`${base}__${k}`);
  graph.addTensor({ name, kind: 'activation', dtype: graph.lookupTensor(like)?.dtype, shape });
  return name;
}

function transposeNode(graph: Graph, input: string, perm: number[], output: string, like: Node, name: string): Node {
  return {
    id: graph.newNodeId(),
    op: 'Transpose',
    domain: '',
    name,
    inputs: [input],
    outputs: [output],
    attrs: { perm: { type: 'ints', value: perm } },
    sourceNodes: [],
    scope: like.scope,
  };
}

const permute = <T>(xs: readonly T[], perm: number[]): T[] => perm.map((p) => xs[p]);

function convertToNhwc(graph: Graph): void {
  const out: Node[] = [];
  for (const node of graph.nodes) {
    if (node.op === 'ConvTranspose' && node.domain === '' && convTransposeNhwcRefusal(graph, node) === undefined) {
      out.push(...convTransposeToNhwc(graph, node));
      continue;
    }
    const xShape = graph.lookupTensor(node.inputs[0])?.shape;
    const rank = xShape?.length;
    const kind =
      node.op === 'Conv'
        ? 'conv'
        : node.op === 'MaxPool' || node.op === 'AveragePool'
          ? 'pool'
          : node.op === 'GlobalAveragePool' || node.op === 'GlobalMaxPool'
            ? 'gap'
            : undefined;
    if (
      !kind ||
      (rank !== 4 && rank !== 5) ||
      (kind === 'pool' && node.outputs.length > 1 && node.outputs[1]) ||
      attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET'
    ) {
      out.push(node);
      continue;
    }
    const y = node.outputs[0];
    const yShape = graph.tensors.get(y)!.shape!;
    if (rank === 5) {
      out.push(...toNdhwc(graph, node, kind));
      continue;
    }
    const xN = newTensor(graph, `${node.inputs[0]}_nhwc`, node.inputs[0], permute(xShape!, TO_NHWC));
    const yN = newTensor(graph, `${y}_nhwc`, y, permute(yShape, TO_NHWC));
    out.push(transposeNode(graph, node.inputs[0], TO_NHWC, xN, node, `${node.name}/to_nhwc`));
    if (kind === 'conv') {
      const w = node.inputs[1];
      const wShape = graph.lookupTensor(w)!.shape!;
      const wN = graph.newTensorName(`${w}_ohwi`);
      graph.addTensor({ name: wN, kind: 'param', dtype: graph.lookupTensor(w)!.dtype, shape: permute(wShape, TO_NHWC) });
      out.push(transposeNode(graph, w, TO_NHWC, wN, node, `${node.name}/weight_ohwi`));
      const inputs = [xN, wN];
      const epilogue: string[] = [];
      if (node.inputs[2]) {
        inputs.push(node.inputs[2]);
        epilogue.push('bias');
      }
      out.push({
        ...node,
        op: 'conv2d',
        domain: FUSED_DOMAIN,
        inputs,
        outputs: [yN],
        attrs: {
          strides: { type: 'ints', value: attrInts(node, 'strides', [1, 1]) },
          pads: { type: 'ints', value: attrInts(node, 'pads', [0, 0, 0, 0]) },
          dilations: { type: 'ints', value: attrInts(node, 'dilations', [1, 1]) },
          group: { type: 'int', value: attrInt(node, 'group', 1) },
          epilogue: { type: 'strings', value: epilogue },
        },
      });
    } else if (kind === 'pool') {
      out.push({
        ...node,
        op: 'pool2d',
        domain: FUSED_DOMAIN,
        inputs: [xN],
        outputs: [yN],
        attrs: {
          kind: { type: 'string', value: node.op === 'MaxPool' ? 'max' : 'avg' },
          kernel: { type: 'ints', value: attrInts(node, 'kernel_shape') },
          strides: { type: 'ints', value: attrInts(node, 'strides', [1, 1]) },
          pads: { type: 'ints', value: attrInts(node, 'pads', [0, 0, 0, 0]) },
          ceil_mode: { type: 'int', value: attrInt(node, 'ceil_mode', 0) },
          count_include_pad: { type: 'int', value: attrInt(node, 'count_include_pad', 0) },
          // only when not 1 (MaxPool, AveragePool from opset 19): graph.json of undilated pools stays as it was
          ...(attrInts(node, 'dilations', [1, 1]).some((d) => d !== 1)
            ? { dilations: { type: 'ints' as const, value: attrInts(node, 'dilations', [1, 1]) } }
            : {}),
        },
      });
    } else {
      out.push({
        ...node,
        op: 'global_pool',
        domain: FUSED_DOMAIN,
        inputs: [xN],
        outputs: [yN],
        attrs: { kind: { type: 'string', value: node.op === 'GlobalMaxPool' ? 'max' : 'avg' }, keep_spatial: { type: 'int', value: 1 } },
      });
    }
    out.push(transposeNode(graph, yN, TO_NCHW, y, node, `${node.name}/to_nchw`));
  }
  graph.nodes = out;
}

/**
 * A 3-D Conv / MaxPool / AveragePool / global pool → Transpose to NDHWC, conv3d (weight OIDHW → ODHWI, a weight
 * preparation Transpose) / pool3d / global_pool, Transpose back to NCDHW.
 */
function toNdhwc(graph: Graph, node: Node, kind: 'conv' | 'pool' | 'gap'): Node[] {
  const x = node.inputs[0];
  const y = node.outputs[0];
  const xN = newTensor(graph, `${x}_ndhwc`, x, permute(graph.lookupTensor(x)!.shape!, TO_NDHWC));
  const yN = newTensor(graph, `${y}_ndhwc`, y, permute(graph.tensors.get(y)!.shape!, TO_NDHWC));
  const out: Node[] = [transposeNode(graph, x, TO_NDHWC, xN, node, `${node.name}/to_ndhwc`)];
  const window = {
    strides: { type: 'ints' as const, value: attrInts(node, 'strides', [1, 1, 1]) },
    pads: { type: 'ints' as const, value: attrInts(node, 'pads', [0, 0, 0, 0, 0, 0]) },
    dilations: { type: 'ints' as const, value: attrInts(node, 'dilations', [1, 1, 1]) },
  };
  if (kind === 'conv') {
    const w = node.inputs[1];
    const wN = graph.newTensorName(`${w}_odhwi`);
    graph.addTensor({
      name: wN,
      kind: 'param',
      dtype: graph.lookupTensor(w)!.dtype,
      shape: permute(graph.lookupTensor(w)!.shape!, TO_NDHWC),
    });
    out.push(transposeNode(graph, w, TO_NDHWC, wN, node, `${node.name}/weight_odhwi`));
    const bias = node.inputs[2];
    out.push({
      ...node,
      op: 'conv3d',
      domain: FUSED_DOMAIN,
      inputs: bias ? [xN, wN, bias] : [xN, wN],
      outputs: [yN],
      attrs: {
        ...window,
        group: { type: 'int', value: attrInt(node, 'group', 1) },
        epilogue: { type: 'strings', value: bias ? ['bias'] : [] },
      },
    });
  } else if (kind === 'pool') {
    out.push({
      ...node,
      op: 'pool3d',
      domain: FUSED_DOMAIN,
      inputs: [xN],
      outputs: [yN],
      attrs: {
        kind: { type: 'string', value: node.op === 'MaxPool' ? 'max' : 'avg' },
        kernel: { type: 'ints', value: attrInts(node, 'kernel_shape') },
        ...window,
        ceil_mode: { type: 'int', value: attrInt(node, 'ceil_mode', 0) },
        count_include_pad: { type: 'int', value: attrInt(node, 'count_include_pad', 0) },
      },
    });
  } else
    out.push({
      ...node,
      op: 'global_pool',
      domain: FUSED_DOMAIN,
      inputs: [xN],
      outputs: [yN],
      attrs: { kind: { type: 'string', value: node.op === 'GlobalMaxPool' ? 'max' : 'avg' }, keep_spatial: { type: 'int', value: 1 } },
    });
  out.push(transposeNode(graph, yN, TO_NCDHW, y, node, `${node.name}/to_ncdhw`));
  return out;
}

/** Why a ConvTranspose keeps its ONNX form (the CUDA backend then refuses it with this reason); undefined: it converts. */
export function convTransposeNhwcRefusal(graph: Graph, node: Node): string | undefined {
  const x = graph.lookupTensor(node.inputs[0])?.shape;
  const w = graph.lookupTensor(node.inputs[1])?.shape;
  if (!x || !w) return 'ConvTranspose without inferred input and weight shapes';
  if (x.length !== 4) return `ConvTranspose with ${x.length - 2} spatial dim${x.length === 3 ? '' : 's'} (the NHWC kernels run 2-D)`;
  if (![x[1], x[2], x[3], ...w].every(isConcrete)) return 'ConvTranspose with symbolic spatial or channel dims';
  const window = convTransposeWindow(node, [x[2], x[3]] as number[], attrInts(node, 'kernel_shape', [w[2], w[3]] as number[]));
  if (window.out.some((d) => d <= 0)) return `ConvTranspose with an empty output (${window.out.join('x')})`;
  return undefined;
}

/**
 * ConvTranspose → Transpose to NHWC, the weight [C, M/group, KH, KW] prepared as [KH, KW, M/group, C] (perm 2,3,1,0;
 * for group 1 the GEMM's B: row (i, j, m), column c), conv_transpose2d, Transpose back.
 */
function convTransposeToNhwc(graph: Graph, node: Node): Node[] {
  const [x, w, bias] = node.inputs;
  const y = node.outputs[0];
  const xShape = graph.lookupTensor(x)!.shape!;
  const wShape = graph.lookupTensor(w)!.shape! as number[];
  const window = convTransposeWindow(node, [xShape[2], xShape[3]] as number[], attrInts(node, 'kernel_shape', [wShape[2], wShape[3]]));
  const xN = newTensor(graph, `${x}_nhwc`, x, permute(xShape, TO_NHWC));
  const yN = newTensor(graph, `${y}_nhwc`, y, permute(graph.tensors.get(y)!.shape!, TO_NHWC));
  const wN = graph.newTensorName(`${w}_rskc`);
  graph.addTensor({ name: wN, kind: 'param', dtype: graph.lookupTensor(w)!.dtype, shape: permute(wShape, TO_RSKC) });
  return [
    transposeNode(graph, x, TO_NHWC, xN, node, `${node.name}/to_nhwc`),
    transposeNode(graph, w, TO_RSKC, wN, node, `${node.name}/weight_rskc`),
    {
      ...node,
      op: 'conv_transpose2d',
      domain: FUSED_DOMAIN,
      inputs: bias ? [xN, wN, bias] : [xN, wN],
      outputs: [yN],
      attrs: {
        strides: { type: 'ints', value: window.strides },
        pads: { type: 'ints', value: [...window.padBegin, ...window.padEnd] },
        dilations: { type: 'ints', value: window.dilations },
        output_padding: { type: 'ints', value: window.outputPadding },
        group: { type: 'int', value: attrInt(node, 'group', 1) },
        epilogue: { type: 'strings', value: bias ? ['bias'] : [] },
      },
    },
    transposeNode(graph, yN, TO_NCHW, y, node, `${node.name}/to_nchw`),
  ];
}

function permOf(node: Node): number[] {
  return attrInts(node, 'perm');
}

const isIdentity = (p: number[]) => p.every((v, i) => v === i);
const compose = (first: number[], second: number[]) => second.map((s) => first[s]);
const inverse = (p: number[]) => {
  const inv = new Array<number>(p.length);
  p.forEach((v, i) => (inv[v] = i));
  return inv;
};

function sinkAndCancel(graph: Graph, ctx: PassContext): void {
  for (let round = 0; round < 10000; round++) {
    // Movement chains first: a transpose an exporter wrote next to a reshape is usually half of a view.
    if (!simplifyMovementChains(graph, ctx) && !step(graph, ctx)) break;
  }
  removeDead(graph, ctx.removed);
}

/** One rewrite; returns whether anything changed. */
function step(graph: Graph, ctx: PassContext): boolean {
  const producers = graph.producers();
  const consumers = graph.consumers();
  for (const t of graph.nodes) {
    if (t.op !== 'Transpose') continue;
    const x = t.inputs[0];
    const y = t.outputs[0];
    const p = permOf(t);
    const inner = producers.get(x);
    // Transpose ∘ Transpose
    if (inner?.op === 'Transpose') {
      const r = compose(permOf(inner), p);
      if (isIdentity(r)) {
        if (graph.outputs.includes(y)) continue;
        replaceUses(graph, y, inner.inputs[0]);
        // Transposes the exporter wrote (ViT) are absorbed by their neighbour; ours stood for no ONNX node.
        const keeper = producers.get(inner.inputs[0]) ?? (consumers.get(y) ?? [])[0];
        if (keeper) absorb(keeper, t);
        else for (const s of t.sourceNodes) ctx.removed.push({ onnxNode: s, reason: 'transpose cancelled' });
        graph.nodes = graph.nodes.filter((n) => n !== t);
        graph.tensors.delete(y);
        return true;
      }
      if ((consumers.get(x) ?? []).length === 1 && !graph.outputs.includes(x)) {
        t.inputs[0] = inner.inputs[0];
        t.attrs.perm = { type: 'ints', value: r };
        absorb(t, inner);
        graph.nodes = graph.nodes.filter((n) => n !== inner);
        graph.tensors.delete(x);
        return true;
      }
    }
    // A transpose that moves only size-1 dims is a reshape (unless its one reader takes it through, e.g. a Resize
    // of a 1×1 map, so that it can meet its inverse below).
    const xShape = graph.lookupTensor(x)?.shape;
    const sole = graph.outputs.includes(y) ? [] : [...new Set(consumers.get(y) ?? [])];
    const solePlan = sole.length === 1 ? planFor(graph, sole[0], y, p, producers) : undefined;
    if (solePlan) {
      sinkInto(graph, t, sole[0], solePlan, producers);
      return true;
    }
    if (xShape && movesOnlyUnitDims(xShape, p) && !isStatic(graph.lookupTensor(x))) {
      const yShape = graph.tensors.get(y)!.shape!;
      const target = reshapeTarget(xShape, yShape);
      if (target) {
        t.op = 'Reshape';
        t.attrs = {};
        t.inputs = [x, addConstant(graph, `${y}_shape`, makeTensor('int64', [target.length], target))];
        return true;
      }
    }
    if (graph.outputs.includes(y)) continue;
    // One entry per reading node: a node that reads y twice (Mul(y, y)) is one reader, not two to split apart.
    const readers = [...new Set(consumers.get(y) ?? [])];
    if (readers.length === 0) continue;
    // Duplicate a transpose with several readers, so each can move on its own.
    if (readers.length > 1 && readers.every((r) => planFor(graph, r, y, p, producers))) {
      const at = graph.nodes.indexOf(t);
      const copies: Node[] = [];
      readers.forEach((r, i) => {
        if (i === 0) return;
        const yi = newTensor(graph, y, y, graph.tensors.get(y)!.shape!);
        const copy = transposeNode(graph, x, p, yi, t, `${t.name}/copy${i}`);
        copies.push(copy);
        r.inputs = r.inputs.map((v) => (v === y ? yi : v));
      });
      graph.nodes.splice(at + 1, 0, ...copies);
      return true;
    }
    const plan = readers.length === 1 ? planFor(graph, readers[0], y, p, producers) : undefined;
    if (plan) {
      sinkInto(graph, t, readers[0], plan, producers);
      return true;
    }
  }
  return false;
}

function movesOnlyUnitDims(shape: Dim[], perm: number[]): boolean {
  const nonUnit = perm.filter((p) => shape[p] !== 1);
  for (let i = 1; i < nonUnit.length; i++) if (nonUnit[i] < nonUnit[i - 1]) return false;
  return true;
}

/** A Reshape target for xShape → yShape: 0 copies a symbolic dim at the same position, else concrete values. */
function reshapeTarget(xShape: Dim[], yShape: Dim[]): number[] | undefined {
  const target: number[] = [];
  for (let i = 0; i < yShape.length; i++) {
    const d = yShape[i];
    if (isConcrete(d)) target.push(d);
    else if (i < xShape.length && dimEquals(xShape[i], d)) target.push(0);
    else return undefined;
  }
  return target;
}

interface Plan {
  answer: PermuteAnswer;
}

/**
 * Whether `reader`, which reads y = Transpose(x, p), can run on x instead (its layout rule says how), without
 * adding transposes: each other data operand is y, already Transpose(·, p), static (permuted at compile time),
 * moved by a view (only size-1 dims move), already transposed back, or about to be transposed by p because it is
 * computed from x; or the transposes this removes outnumber the ones it adds (a Concat of many transposed inputs).
 */
function planFor(graph: Graph, reader: Node, y: string, p: number[], producers: Map<string, Node>): Plan | undefined {
  const rule = layoutRuleOf(reader);
  if (!rule) return undefined;
  const answer = rule({
    node: reader,
    perm: p,
    opset: graph.opset,
    shape: (i) => (reader.inputs[i] ? graph.lookupTensor(reader.inputs[i])?.shape : undefined),
    value: (i) => (reader.inputs[i] ? graph.lookupTensor(reader.inputs[i])?.value : undefined),
  });
  if (answer === 'no' || answer.outputs.length !== reader.outputs.length) return undefined;
  const x = producers.get(y)?.inputs[0];
  let removed = 0;
  let added = 0;
  const seen = new Set<string>();
  for (let i = 0; i < Math.max(reader.inputs.length, answer.inputs.length); i++) {
    const name = reader.inputs[i] ?? '';
    const action = answer.inputs[i] ?? 'keep';
    if (action !== 'permute') {
      if (name === y) return undefined;
      continue;
    }
    if (!name || seen.has(name)) continue;
    seen.add(name);
    if (name === y) {
      removed++;
      continue;
    }
    const info = graph.lookupTensor(name);
    const rank = info?.shape?.length;
    if (rank === undefined || rank > p.length) return undefined;
    if (isStatic(info)) continue;
    const prod = producers.get(name);
    if (prod?.op === 'Transpose' && permOf(prod).join() === p.join()) {
      removed++;
      continue;
    }
    const inv = inverseTransposeOf(graph, name, p);
    if (inv && graph.nodes.indexOf(inv) < graph.nodes.indexOf(reader)) continue;
    const padded = [...new Array(p.length - rank).fill(1), ...info!.shape!];
    if (movesOnlyUnitDims(padded, inverse(p))) continue;
    if (x !== undefined && computedFrom(graph, name, x, p, producers, 8)) continue;
    added++;
  }
  if (added > 0 && added >= removed) return undefined;
  return { answer };
}

/** Whether `name` is computed from Transpose(x, p) through ops with layout rules (it will be transposed by p too). */
function computedFrom(graph: Graph, name: string, x: string, p: number[], producers: Map<string, Node>, depth: number): boolean {
  const prod = producers.get(name);
  if (!prod || depth === 0) return false;
  if (prod.op === 'Transpose') return prod.inputs[0] === x && permOf(prod).join() === p.join();
  if (!layoutRuleOf(prod)) return false;
  return prod.inputs.some((i) => !!i && !isStatic(graph.lookupTensor(i)) && computedFrom(graph, i, x, p, producers, depth - 1));
}

/** An existing Transpose of `name` by the inverse of `p`, if any. */
function inverseTransposeOf(graph: Graph, name: string, p: number[]): Node | undefined {
  const inv = inverse(p).join();
  return graph.nodes.find((n) => n.op === 'Transpose' && n.inputs[0] === name && permOf(n).join() === inv);
}

/** Pads `name` to rank `rank` with leading 1s (a Reshape before `reader`); returns the tensor to use. */
function padRank(graph: Graph, name: string, rank: number, reader: Node, kind: 'constant' | 'activation'): string {
  const info = graph.lookupTensor(name)!;
  if (info.shape!.length >= rank) return name;
  const padded = [...new Array(rank - info.shape!.length).fill(1), ...info.shape!];
  const reshaped = graph.newTensorName(`${name}_r${rank}`);
  graph.addTensor({ name: reshaped, kind, dtype: info.dtype, shape: padded });
  const shapeConst = addConstant(
    graph,
    `${reshaped}_shape`,
    makeTensor(
      'int64',
      [rank],
      padded.map((d) => (isConcrete(d) ? d : 0)),
    ),
  );
  insertBefore(graph, reader, {
    id: graph.newNodeId(),
    op: 'Reshape',
    domain: '',
    name: `${reader.name}/operand_rank`,
    inputs: [name, shapeConst],
    outputs: [reshaped],
    attrs: {},
    sourceNodes: [],
    scope: reader.scope,
  });
  return reshaped;
}

/** reader(T(x), …) → T(reader(x, …')), as the reader's layout rule says. */
function sinkInto(graph: Graph, t: Node, reader: Node, plan: Plan, producers: Map<string, Node>): void {
  const p = permOf(t);
  const inv = inverse(p);
  const x = t.inputs[0];
  const y = t.outputs[0];
  const { answer } = plan;
  const count = Math.max(reader.inputs.length, answer.inputs.length);
  const newInputs = [...Array(count).keys()].map((i) => {
    const name = reader.inputs[i] ?? '';
    const action = answer.inputs[i] ?? 'keep';
    if (action === 'keep') return name;
    if (typeof action === 'object')
      return 'value' in action
        ? addConstant(graph, `${reader.name}_layout_${i}`, action.value)
        : reorderVector(graph, name, action.reorder, reader);
    if (name === y) return x;
    if (!name) return name;
    const prod = producers.get(name);
    if (prod?.op === 'Transpose' && permOf(prod).join() === p.join()) return prod.inputs[0];
    if (!isStatic(graph.lookupTensor(name))) {
      const existing = inverseTransposeOf(graph, name, p);
      if (existing && graph.nodes.indexOf(existing) < graph.nodes.indexOf(reader)) return existing.outputs[0];
      // an activation: transpose it back (a view when only size-1 dims move; cancels when it comes from x)
      const operand = padRank(graph, name, p.length, reader, 'activation');
      const opShape = graph.lookupTensor(operand)!.shape!;
      const permuted = newTensor(graph, `${name}_perm`, name, permute(opShape, inv));
      insertBefore(graph, reader, transposeNode(graph, operand, inv, permuted, reader, `${reader.name}/operand_layout`));
      return permuted;
    }
    // a static operand: pad to the full rank, then permute it back (folds at compile time)
    const info = graph.lookupTensor(name)!;
    const operand = padRank(graph, name, p.length, reader, 'constant');
    const opShape = graph.lookupTensor(operand)!.shape!;
    const permuted = graph.newTensorName(`${name}_perm`);
    graph.addTensor({ name: permuted, kind: 'constant', dtype: info.dtype, shape: permute(opShape, inv) });
    insertBefore(graph, reader, transposeNode(graph, operand, inv, permuted, reader, `${reader.name}/operand_layout`));
    foldStatic(graph, permuted, producers);
    return permuted;
  });
  while (newInputs.length && !newInputs[newInputs.length - 1]) newInputs.pop();
  const pending: { inner: string; q: number[]; out: string; k: number }[] = [];
  const outputs = reader.outputs.map((out, k) => {
    const q = answer.outputs[k];
    if (!out || isIdentity(q)) return out;
    const outShape = graph.tensors.get(out)!.shape!;
    const inner = newTensor(graph, `${out}_pre`, out, permute(outShape, inverse(q)));
    pending.push({ inner, q, out, k });
    return inner;
  });
  reader.inputs = newInputs;
  reader.outputs = outputs;
  reader.attrs = answer.attrs;
  // The transpose now follows the reader.
  graph.nodes = graph.nodes.filter((n) => n !== t);
  graph.tensors.delete(y);
  const moved = pending.map(({ inner, q, out, k }, i) => {
    const m = transposeNode(graph, inner, q, out, reader, k === 0 ? t.name : `${t.name}/${k}`);
    if (i === 0) m.sourceNodes = t.sourceNodes;
    return m;
  });
  graph.nodes.splice(graph.nodes.indexOf(reader) + 1, 0, ...moved);
}

/** `name`'s entries in the order `order` (new[j] = old[order[j]]): a constant when known, else a Gather. */
function reorderVector(graph: Graph, name: string, order: number[], reader: Node): string {
  const info = graph.lookupTensor(name)!;
  if (info.value) {
    const data = numeric(info.value);
    return addConstant(
      graph,
      `${name}_reordered`,
      makeTensor(
        info.value.dtype,
        [order.length],
        order.map((k) => data[k]),
      ),
    );
  }
  const indices = addConstant(graph, `${name}_order`, makeTensor('int64', [order.length], order));
  const out = newTensor(graph, `${name}_reordered`, name, [order.length]);
  graph.tensors.get(out)!.dtype = info.dtype;
  if (info.shapeValue) graph.tensors.get(out)!.shapeValue = order.map((k) => info.shapeValue![k]);
  insertBefore(graph, reader, {
    id: graph.newNodeId(),
    op: 'Gather',
    domain: '',
    name: `${reader.name}/axis_order`,
    inputs: [name, indices],
    outputs: [out],
    attrs: { axis: { type: 'int', value: 0 } },
    sourceNodes: [],
    scope: reader.scope,
  });
  return out;
}

function insertBefore(graph: Graph, before: Node, node: Node): void {
  graph.nodes.splice(graph.nodes.indexOf(before), 0, node);
}

/** Evaluates static-only nodes that produce `name` right away, when their inputs have values. */
function foldStatic(graph: Graph, name: string, producers: Map<string, Node>): void {
  void producers;
  const chain: Node[] = [];
  let cur = graph.nodes.find((n) => n.outputs.includes(name));
  while (cur && !chain.includes(cur)) {
    chain.unshift(cur);
    const src = cur.inputs[0];
    const t = graph.lookupTensor(src);
    if (t?.value) break;
    cur = graph.nodes.find((n) => n.outputs.includes(src));
  }
  for (const n of chain) {
    const def = findOp(n);
    const ins = n.inputs.map((i) => (i ? graph.lookupTensor(i)?.value : undefined));
    if (!def?.evaluate || ins.some((v, i) => n.inputs[i] && !v)) return;
    const [v] = def.evaluate(n, ins, { runSubgraph: (g, inputs) => runGraph(g, inputs), lookup: (x) => graph.lookupTensor(x)?.value });
    const t = graph.tensors.get(n.outputs[0])!;
    t.value = v;
    t.shape = [...v.shape];
    graph.nodes = graph.nodes.filter((m) => m !== n);
  }
}
