/**
 * 1-D windows as 2-D: a Conv / ConvTranspose / MaxPool / AveragePool over one spatial dim becomes the same op over
 * [N, C, 1, L] with a [1, k] window, between an Unsqueeze and a Squeeze of axis 2. Every 2-D path then applies to
 * 1-D models (wav2vec2's feature extractor and positional conv, Whisper's stem, TCNs): the NHWC layout pass, the
 * CUTLASS / grouped / depthwise conv kernels, pooling, epilogue fusion. Weights get the extra axis as a new constant
 * (or an Unsqueeze that constant folding evaluates when they arrive at bind time).
 *
 * Between two lifted ops the Squeeze/Unsqueeze pair would stop the layout pass from cancelling its transposes, so a
 * Squeeze is also sunk below the unary elementwise ops that read it (Squeeze→Gelu→Unsqueeze becomes
 * Gelu→Squeeze→Unsqueeze, which the movement chains remove): a stack of 1-D convs stays NHWC ([N, 1, L, C]) from
 * end to end.
 *
 * A Conv / MaxPool / AveragePool with auto_pad SAME_* or VALID and concrete spatial dims gets the explicit pads the
 * spec derives from them (the NHWC forms take explicit pads only), whatever its rank.
 */
import { Graph, Node, attrInt, attrInts, attrString } from '../ir/graph';
import { Dim } from '../ir/symbolic';
import { makeTensor } from '../ir/tensor';
import { resolvePads, windowAttrs, windowOutputSize } from '../ops/conv';
import { UNARY_ELEMENTWISE_OPS } from '../ops/op-classes';
import { addConstant, liveNodes, soleConsumer, valueOf } from './rewrite';

const LIFTED = new Set(['Conv', 'ConvTranspose', 'MaxPool', 'AveragePool']);

/** Lifts every 1-D window op to 2-D; returns whether the graph changed. */
export function liftOneDimWindows(graph: Graph): boolean {
  let changed = false;
  for (const node of [...graph.nodes]) if (LIFTED.has(node.op) && node.domain === '' && liftNode(graph, node)) changed = true;
  return changed;
}

/** Axis-2 Unsqueeze/Squeeze node (axes as an input from opset 13, as an attribute before). */
function axisNode(graph: Graph, op: 'Squeeze' | 'Unsqueeze', input: string, output: string, like: Node): Node {
  const byInput = graph.opset >= 13;
  return {
    id: graph.newNodeId(),
    op,
    domain: '',
    name: `${like.name}/${op === 'Squeeze' ? 'to_1d' : 'to_2d'}`,
    inputs: byInput ? [input, addConstant(graph, `${output}_axes`, makeTensor('int64', [1], [2]))] : [input],
    outputs: [output],
    attrs: byInput ? {} : { axes: { type: 'ints', value: [2] } },
    sourceNodes: [],
    scope: like.scope,
  };
}

function newActivation(graph: Graph, base: string, like: string, shape: Dim[]): string {
  const name = graph.newTensorName(base);
  graph.addTensor({ name, kind: 'activation', dtype: graph.lookupTensor(like)?.dtype, shape });
  return name;
}

const withAxis2 = (shape: readonly Dim[]): Dim[] => [shape[0], shape[1], 1, ...shape.slice(2)];

function liftNode(graph: Graph, node: Node): boolean {
  const x = graph.lookupTensor(node.inputs[0]);
  const out = graph.lookupTensor(node.outputs[0]);
  if (!x?.shape || x.shape.length !== 3 || !out?.shape || out.shape.length !== 3) return false;
  // MaxPool's Indices count positions of the 1-D tensor; the 2-D ones would be the same only with H = 1, but keep it simple.
  if (node.outputs.slice(1).some((o) => o)) return false;
  const outputShape = node.attrs.output_shape ? attrInts(node, 'output_shape') : undefined;
  if (outputShape && outputShape.length !== 1) return false;
  const before: Node[] = [];
  // data: [N, C, L] → [N, C, 1, L]
  const x4 = newActivation(graph, `${node.inputs[0]}_2d`, node.inputs[0], withAxis2(x.shape));
  before.push(axisNode(graph, 'Unsqueeze', node.inputs[0], x4, node));
  const inputs = [x4, ...node.inputs.slice(1)];
  if (node.op === 'Conv' || node.op === 'ConvTranspose') {
    const w = graph.lookupTensor(node.inputs[1]);
    if (!w?.shape || w.shape.length !== 3) return false;
    const value = valueOf(graph, node.inputs[1]);
    if (value) inputs[1] = addConstant(graph, `${node.inputs[1]}_2d`, { ...value, shape: withAxis2(value.shape) as number[] });
    else {
      const w4 = graph.newTensorName(`${node.inputs[1]}_2d`);
      graph.addTensor({ name: w4, kind: w.kind === 'activation' ? 'activation' : 'param', dtype: w.dtype, shape: withAxis2(w.shape) });
      before.push(axisNode(graph, 'Unsqueeze', node.inputs[1], w4, node));
      inputs[1] = w4;
    }
  }
  // window attributes gain a leading H entry: kernel 1, stride 1, dilation 1, no pads
  const attrs = { ...node.attrs };
  const lift = (key: string, h: number) => {
    if (!node.attrs[key]) return;
    const v = attrInts(node, key);
    attrs[key] = { type: 'ints', value: key === 'pads' ? [h, v[0], h, v[1]] : [h, ...v] };
  };
  lift('kernel_shape', 1);
  lift('strides', 1);
  lift('dilations', 1);
  lift('pads', 0);
  lift('output_padding', 0);
  lift('output_shape', 1);
  const final = node.outputs[0];
  const y4 = newActivation(graph, `${final}_2d`, final, withAxis2(out.shape));
  const lifted: Node = { ...node, inputs, outputs: [y4], attrs };
  const squeeze = axisNode(graph, 'Squeeze', y4, final, node);
  graph.nodes.splice(graph.nodes.indexOf(node), 1, ...before, lifted, squeeze);
  return true;
}

/**
 * Squeeze(x) → U  ⇒  U(x) → Squeeze, for a unary elementwise U (extra operands only scalar constants) that alone
 * reads the Squeeze: the view moves below the math, next to a following Unsqueeze it cancels against.
 */
export function sinkSqueezes(graph: Graph): boolean {
  let changed = false;
  const consumers = graph.consumers();
  const isLive = liveNodes(graph);
  for (const squeeze of [...graph.nodes]) {
    if (squeeze.op !== 'Squeeze' || !isLive(squeeze)) continue;
    const reader = soleConsumer(graph, consumers, squeeze.outputs[0]);
    if (!reader || reader.domain !== '' || !UNARY_ELEMENTWISE_OPS.has(reader.op) || reader.inputs[0] !== squeeze.outputs[0]) continue;
    if (reader.outputs.length !== 1) continue;
    if (reader.inputs.slice(1).some((i) => i && !(valueOf(graph, i) && valueOf(graph, i)!.data.length <= 1))) continue;
    const src = graph.lookupTensor(squeeze.inputs[0]);
    const final = reader.outputs[0];
    if (!src?.shape) continue;
    const mid = newActivation(graph, `${final}_unsqueezed`, final, [...src.shape]);
    graph.tensors.delete(squeeze.outputs[0]);
    reader.inputs[0] = squeeze.inputs[0];
    reader.outputs = [mid];
    squeeze.inputs[0] = mid;
    squeeze.outputs = [final];
    // the Squeeze now runs after the reader
    graph.nodes.splice(graph.nodes.indexOf(squeeze), 1);
    graph.nodes.splice(graph.nodes.indexOf(reader) + 1, 0, squeeze);
    changed = true;
  }
  return changed;
}

/**
 * auto_pad SAME_UPPER / SAME_LOWER / VALID ⇒ explicit pads, on a Conv / MaxPool / AveragePool whose spatial input
 * dims are concrete; kept only when the explicit form gives the same output size.
 */
export function explicitAutoPads(graph: Graph): boolean {
  let changed = false;
  for (const node of graph.nodes) {
    if (!['Conv', 'MaxPool', 'AveragePool'].includes(node.op) || node.domain !== '') continue;
    if (attrString(node, 'auto_pad', 'NOTSET') === 'NOTSET') continue;
    const x = graph.lookupTensor(node.inputs[0])?.shape;
    const y = graph.lookupTensor(node.outputs[0])?.shape;
    if (!x || !y || x.length < 3 || y.length !== x.length) continue;
    const spatialIn = x.slice(2);
    if (!spatialIn.every((d): d is number => typeof d === 'number')) continue;
    const spatial = spatialIn.length;
    const kernel = node.attrs.kernel_shape ? attrInts(node, 'kernel_shape') : graph.lookupTensor(node.inputs[1])?.shape?.slice(2);
    if (!kernel || kernel.length !== spatial || !kernel.every((k): k is number => typeof k === 'number')) continue;
    const w = windowAttrs(node, spatial, kernel);
    const { begin, end } = resolvePads(spatialIn, w);
    const explicit = { ...w, autoPad: 'NOTSET' as const, pads: [...begin, ...end] };
    const ceil = node.op !== 'Conv' && attrInt(node, 'ceil_mode', 0) === 1;
    if (spatialIn.some((d, i) => windowOutputSize(d, explicit, i, ceil) !== y[2 + i])) continue;
    node.attrs = { ...node.attrs, pads: { type: 'ints', value: explicit.pads } };
    delete node.attrs.auto_pad;
    changed = true;
  }
  return changed;
}
