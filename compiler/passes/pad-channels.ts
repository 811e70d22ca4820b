/**
 * Pad channels: a convolution whose input channel count is not a multiple of 8 (an RGB stem: C=3) cannot use the
 * fast convolution kernels (the sm90 TMA kernel and the aligned CUTLASS 2.x kernels need C % 8 == 0); it falls back
 * to a "few channels" kernel that runs at a fraction of the speed. When the conv's input comes from a layout
 * Transpose (the model input NCHW → NHWC) read by nothing else, the padding costs nothing: the transpose becomes a
 * `transpose_pad` that writes C rounded up to 8 with zero channels, and the weights get the same zero input channels
 * (at compile time when they are present; otherwise their OIHW → OHWI preparation transpose pads them, on the
 * device at bind time, from the weights bound by their ONNX name). Zero channels times zero weights add nothing.
 * A patchify conv (ops/fused.ts isPatchifyConv: a ViT patch embedding) is left alone: it runs as patchify + GEMM,
 * where padding would only lengthen K with zeros.
 */
import { Graph, Node, attrInt, attrInts } from '../ir/graph';
import { isConcrete } from '../ir/symbolic';
import { FUSED_DOMAIN, isPatchifyConv, transposePadValue } from '../ops/fused';
import { removeDead } from './fold-constants';
import { Pass } from './pass';
import { addConstant } from './rewrite';

/** Channel multiple the convolution kernels' 16-byte (8 × fp16) accesses need. */
export const CONV_CHANNEL_ALIGNMENT = 8;

export const padChannelsPass: Pass = {
  name: 'pad-channels',
  description: 'pad conv2d input channels to a multiple of 8 where the input comes from a layout transpose',
  run(graph, ctx) {
    let changed = false;
    for (const conv of [...graph.nodes])
      if (conv.op === 'conv2d' && conv.domain === FUSED_DOMAIN) changed = padConv(graph, conv) || changed;
    if (changed) removeDead(graph, ctx.removed);
  },
};

function padConv(graph: Graph, conv: Node): boolean {
  if (attrInt(conv, 'group', 1) !== 1) return false;
  const [x, w] = conv.inputs;
  const xInfo = graph.lookupTensor(x);
  const wInfo = graph.lookupTensor(w);
  const [, r, s] = wInfo?.shape ?? [];
  // A patchify conv runs as patchify + GEMM with K = R·S·C: padding C would only add zero columns to K.
  if (typeof r === 'number' && typeof s === 'number' && isPatchifyConv(conv, [r, s])) return false;
  const channels = xInfo?.shape?.[3];
  if (
    xInfo?.shape?.length !== 4 ||
    !wInfo?.shape ||
    channels === undefined ||
    !isConcrete(channels) ||
    channels % CONV_CHANNEL_ALIGNMENT === 0
  )
    return false;
  const padded = Math.ceil(channels / CONV_CHANNEL_ALIGNMENT) * CONV_CHANNEL_ALIGNMENT;
  const producers = graph.producers();
  const consumers = graph.consumers();
  const transpose = producers.get(x);
  if (transpose?.op !== 'Transpose' || transpose.domain !== '' || graph.outputs.includes(x)) return false;
  if ((consumers.get(x) ?? []).length !== 1) return false;

  // The weights [K, R, S, C] → [K, R, S, padded].
  const wShape = wInfo.shape;
  let paddedWeight: string | undefined;
  if (wInfo.value) {
    paddedWeight = addConstant(graph, `${w}_cpad${padded}`, transposePadValue(wInfo.value, [0, 1, 2, 3], padded));
  } else {
    const prep = producers.get(w);
    if (prep?.op !== 'Transpose' || prep.domain !== '' || (consumers.get(w) ?? []).length !== 1 || graph.outputs.includes(w)) return false;
    toTransposePad(prep, padded);
    wInfo.shape = [...wShape.slice(0, 3), padded];
    paddedWeight = w;
  }
  conv.inputs[1] = paddedWeight;
  toTransposePad(transpose, padded);
  xInfo.shape = [...xInfo.shape.slice(0, 3), padded];
  return true;
}

function toTransposePad(node: Node, channels: number): void {
  const perm = attrInts(node, 'perm');
  node.op = 'transpose_pad';
  node.domain = FUSED_DOMAIN;
  node.attrs = { perm: { type: 'ints', value: perm }, channels: { type: 'int', value: channels } };
}
