/**
 * Layout: convolution networks run NHWC (channels last) on the GPU.
 *
 * 1. Every 2-D Conv / MaxPool / AveragePool / GlobalAveragePool becomes its NHWC fused form with a transpose
 *    (NCHW→NHWC) before and one (NHWC→NCHW) after. Conv weights get a weight-preparation Transpose (OIHW→OHWI)
 *    that constant folding evaluates at compile time when the weights are present (and at bind time otherwise).
 * 2. Transposes are then sunk through layout-agnostic ops (unary elementwise; binary elementwise whose other
 *    operand is transposed the same way or is static) and cancelled against their inverses, so that in a pure
 *    conv network only the model's own inputs and outputs are converted. A transpose that only moves size-1 dims
 *    becomes a Reshape (a view), and movement chains collapse (movement.ts: Transpose→Reshape→Transpose that moves
 *    no data is a Reshape).
 */
import { Graph, Node, attrInt, attrInts, attrString } from '../ir/graph';
import { Dim, dimEquals, isConcrete } from '../ir/symbolic';
import { makeTensor } from '../ir/tensor';
import { FUSED_DOMAIN } from '../ops/fused';
import { BINARY_ELEMENTWISE_OPS, UNARY_ELEMENTWISE_OPS } from '../ops/op-classes';
import { findOp } from '../ops/registry';
import { Pass, PassContext } from './pass';
import { absorb, addConstant, isStatic, replaceUses } from './rewrite';
import { runGraph } from '../interpreter/interpreter';
import { removeDead } from './fold-constants';
import { simplifyMovementChains } from './movement';

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

/** Elementwise ops through which a transpose can be moved unchanged (Identity too). */
const UNARY: ReadonlySet<string> = new Set([...UNARY_ELEMENTWISE_OPS, 'Identity']);
const BINARY = BINARY_ELEMENTWISE_OPS;

export const layoutPass: Pass = {
  name: 'layout',
  description: 'run convolutions and pooling NHWC; sink and cancel the layout transposes',
  run(graph, ctx) {
    convertToNhwc(graph);
    sinkAndCancel(graph, ctx);
  },
};

let counter = 0;

function newTensor(graph: Graph, base: string, like: string, shape: Dim[]): string {
  const name = graph.newTensorName(`${base}__${counter++}`);
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
    const xShape = graph.lookupTensor(node.inputs[0])?.shape;
    const is4d = xShape?.length === 4;
    const kind =
      node.op === 'Conv'
        ? 'conv'
        : node.op === 'MaxPool' || node.op === 'AveragePool'
          ? 'pool'
          : node.op === 'GlobalAveragePool'
            ? 'gap'
            : undefined;
    if (
      !kind ||
      !is4d ||
      (kind === 'pool' && node.outputs.length > 1 && node.outputs[1]) ||
      attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET'
    ) {
      out.push(node);
      continue;
    }
    const y = node.outputs[0];
    const yShape = graph.tensors.get(y)!.shape!;
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
        },
      });
    } else {
      out.push({
        ...node,
        op: 'global_pool',
        domain: FUSED_DOMAIN,
        inputs: [xN],
        outputs: [yN],
        attrs: { kind: { type: 'string', value: 'avg' }, keep_spatial: { type: 'int', value: 1 } },
      });
    }
    out.push(transposeNode(graph, yN, TO_NCHW, y, node, `${node.name}/to_nchw`));
  }
  graph.nodes = out;
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
    if (!step(graph, ctx) && !simplifyMovementChains(graph, ctx)) break;
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
    // A transpose that moves only size-1 dims is a reshape.
    const xShape = graph.lookupTensor(x)?.shape;
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
    if (readers.length > 1 && readers.every((r) => canSinkInto(graph, r, y, p, producers))) {
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
    if (readers.length === 1 && canSinkInto(graph, readers[0], y, p, producers)) {
      sinkInto(graph, t, readers[0], producers);
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

function canSinkInto(graph: Graph, reader: Node, y: string, p: number[], producers: Map<string, Node>): boolean {
  if (reader.outputs.length !== 1) return false;
  if (UNARY.has(reader.op)) return reader.inputs[0] === y && reader.inputs.slice(1).every((i) => !i || isStatic(graph.lookupTensor(i)));
  if (BINARY.has(reader.op) && reader.inputs.length === 2) {
    const other = reader.inputs[0] === y ? reader.inputs[1] : reader.inputs[0];
    if (other === y) return true;
    const o = graph.lookupTensor(other);
    if (isStatic(o)) return (o!.shape?.length ?? 9) <= p.length;
    const op = producers.get(other);
    if (op?.op === 'Transpose' && permOf(op).join() === p.join()) return true;
    // an activation that already has a transpose into the inner layout (e.g. a model input used as a residual)
    const inv = inverseTransposeOf(graph, other, p);
    return !!inv && graph.nodes.indexOf(inv) < graph.nodes.indexOf(reader);
  }
  return false;
}

/** An existing Transpose of `name` by the inverse of `p`, if any. */
function inverseTransposeOf(graph: Graph, name: string, p: number[]): Node | undefined {
  const inv = inverse(p).join();
  return graph.nodes.find((n) => n.op === 'Transpose' && n.inputs[0] === name && permOf(n).join() === inv);
}

/** reader(T(x), …) → T(reader(x, …')). */
function sinkInto(graph: Graph, t: Node, reader: Node, producers: Map<string, Node>): void {
  const p = permOf(t);
  const inv = inverse(p);
  const x = t.inputs[0];
  const y = t.outputs[0];
  const out = reader.outputs[0];
  const outShape = graph.tensors.get(out)!.shape!;
  const newInputs = reader.inputs.map((name) => {
    if (name === y) return x;
    if (!name || UNARY.has(reader.op)) return name;
    const prod = producers.get(name);
    if (prod?.op === 'Transpose' && permOf(prod).join() === p.join()) return prod.inputs[0];
    if (!isStatic(graph.lookupTensor(name))) return inverseTransposeOf(graph, name, p)!.outputs[0];
    // a static operand: pad to the full rank, then permute it back (folds at compile time)
    const info = graph.lookupTensor(name)!;
    let operand = name;
    const rank = info.shape!.length;
    if (rank < p.length) {
      const padded = [...new Array(p.length - rank).fill(1), ...info.shape!];
      const reshaped = graph.newTensorName(`${name}_r${p.length}`);
      graph.addTensor({ name: reshaped, kind: 'constant', dtype: info.dtype, shape: padded });
      const shapeConst = addConstant(
        graph,
        `${reshaped}_shape`,
        makeTensor(
          'int64',
          [p.length],
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
      operand = reshaped;
    }
    const opShape = graph.lookupTensor(operand)!.shape!;
    const permuted = graph.newTensorName(`${name}_perm`);
    graph.addTensor({ name: permuted, kind: 'constant', dtype: info.dtype, shape: permute(opShape, inv) });
    insertBefore(graph, reader, transposeNode(graph, operand, inv, permuted, reader, `${reader.name}/operand_layout`));
    foldStatic(graph, permuted, producers);
    return permuted;
  });
  const inner = newTensor(graph, `${out}_pre`, out, permute(outShape, inv));
  reader.inputs = newInputs;
  reader.outputs = [inner];
  // The transpose now follows the reader.
  graph.nodes = graph.nodes.filter((n) => n !== t);
  graph.tensors.delete(y);
  const moved = transposeNode(graph, inner, p, out, reader, t.name);
  moved.sourceNodes = t.sourceNodes;
  graph.nodes.splice(graph.nodes.indexOf(reader) + 1, 0, moved);
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
