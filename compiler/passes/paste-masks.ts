/**
 * torchvision's mask paste (`paste_masks_in_image` in its ONNX form, `_onnx_paste_masks_in_image_loop`) becomes one
 * `ait.PasteMasks` node (ops/detection.ts). The exporter writes it as a Loop over the detections: iteration i Gathers
 * mask i and integer box i from outer tensors, Resizes the mask (linear, half_pixel) to the box's size, slices what
 * lies inside the image, zero-pads it to the image's height × width (ConstantOfShape + Concat on rows, then columns)
 * and Concats it onto a loop-carried tensor that starts empty. Every torchvision Mask R-CNN exports it, with its
 * image size as constants of the body.
 *
 * A Loop is rewritten only when both hold:
 * 1. Structure: one carried value, no scan outputs, no early exit; the carried value starts as a constant
 *    [0, height, width] float tensor and the body's carried output is Concat(carried, x) on axis 0; the body has one
 *    Resize, whose input comes from a Gather of an outer tensor (the masks, [D, 1, Mh, Mw]) by the iteration number
 *    and whose sizes come from a Gather of another outer tensor (the boxes, [D, 4] int) by the iteration number; the
 *    body reads no other outer tensor that is not a constant; the trip count is D (the masks' leading dim).
 * 2. Numbers: the interpreter runs the Loop (a small graph with the trip count, masks and boxes as its inputs) and
 *    the PasteMasks candidate on seeded random masks and boxes — inside the image, across each edge, 1-pixel boxes,
 *    boxes of the mask's size, larger than the mask and larger than the image, outside it, several detections and
 *    none — and the outputs agree (to fp32 rounding).
 * Anything else stays a Loop (unsupported on the GPU; --partition runs it in onnxruntime). No name or image size is
 * special-cased: the sizes are read from the carried tensor's shape.
 */
import { Graph, Node, attrGraph, attrInt } from '../ir/graph';
import { dimEquals, isConcrete } from '../ir/symbolic';
import { TensorValue, makeTensor, numeric, seededRandom } from '../ir/tensor';
import { runGraph } from '../interpreter/interpreter';
import { FUSED_DOMAIN } from '../ops/fused';
import { Pass } from './pass';
import { inferShapes } from './shape-inference';

/** What a mask-paste Loop reads: the masks, the boxes, and the canvas (image) size. */
export interface PasteMasksMatch {
  masks: string;
  boxes: string;
  height: number;
  width: number;
}

const isFloat = (dtype: string | undefined) => dtype === 'float32' || dtype === 'float16';

/** Nodes of `body` whose values `name` depends on: not through tensors inference knows (a Shape of a fixed size). */
function ancestors(body: Graph, name: string): Node[] {
  const producers = body.producers();
  const seen = new Set<Node>();
  const stack = [name];
  while (stack.length) {
    const t = stack.pop()!;
    const p = body.tensors.get(t)?.value ? undefined : producers.get(t);
    if (!p || seen.has(p)) continue;
    seen.add(p);
    for (const i of p.inputs) if (i) stack.push(i);
  }
  return [...seen];
}

/** The outer tensor an ancestor Gather of `name` reads by the iteration number (axis 0), if exactly one does. */
function gatheredByIteration(body: Graph, name: string, iteration: string, outer: Set<string>): string | undefined {
  const sources = new Set(
    ancestors(body, name)
      .filter((n) => n.op === 'Gather' && n.inputs[1] === iteration && attrInt(n, 'axis', 0) === 0 && outer.has(n.inputs[0]))
      .map((n) => n.inputs[0]),
  );
  return sources.size === 1 ? [...sources][0] : undefined;
}

/** True when the body's condition output stays true: a true constant, or the incoming condition (true) passed on. */
function neverExits(graph: Graph, node: Node, body: Graph): boolean {
  const producers = body.producers();
  let cond = body.outputs[0];
  for (let p = producers.get(cond); p?.op === 'Identity'; p = producers.get(cond)) cond = p.inputs[0];
  const truth = (name: string) => {
    const v = graph.lookupTensor(name)?.value ?? body.tensors.get(name)?.value;
    return v !== undefined && numeric(v).length === 1 && numeric(v)[0] !== 0;
  };
  const initial = !node.inputs[1] || truth(node.inputs[1]);
  if (cond === body.inputs[1]) return initial;
  return initial && truth(cond);
}

/** The mask-paste form of a Loop by structure (step 1 above), or undefined. */
export function matchPasteMasksLoop(graph: Graph, node: Node): PasteMasksMatch | undefined {
  if (node.op !== 'Loop' || node.domain !== '' || node.inputs.length !== 3 || node.outputs.length !== 1 || !node.inputs[0])
    return undefined;
  const body = attrGraph(node, 'body');
  if (body.inputs.length !== 3 || body.outputs.length !== 2) return undefined;
  if (body.nodes.some((n) => n.guard || n.op === 'Loop' || n.op === 'If' || n.op === 'Scan')) return undefined;
  // the carried value: a constant [0, height, width] float tensor, and what the Loop outputs
  const initial = graph.lookupTensor(node.inputs[2]);
  const output = graph.lookupTensor(node.outputs[0]);
  const shape = initial?.value?.shape;
  if (!initial || !shape || shape.length !== 3 || shape[0] !== 0 || !isFloat(initial.dtype)) return undefined;
  const [height, width] = [shape[1], shape[2]];
  if (!(height >= 1 && width >= 1) || output?.dtype !== initial.dtype || output.shape?.length !== 3) return undefined;
  if (!dimEquals(output.shape[1], height) || !dimEquals(output.shape[2], width)) return undefined;
  if (!neverExits(graph, node, body)) return undefined;
  // the body appends one slice per iteration
  const [iteration, , carried] = body.inputs;
  const append = body.producers().get(body.outputs[1]);
  if (append?.op !== 'Concat' || attrInt(append, 'axis', -1) !== 0 || append.inputs.length !== 2 || append.inputs[0] !== carried)
    return undefined;
  // one Resize, of a mask Gathered by the iteration number, to sizes from a box Gathered the same way
  const resizes = body.nodes.filter((n) => n.op === 'Resize');
  if (resizes.length !== 1 || body.nodes.some((n) => n.op === 'Upsample')) return undefined;
  const [resize] = resizes;
  if (!ancestors(body, append.inputs[1]).includes(resize) || !resize.inputs[3]) return undefined;
  const outer = new Set([...body.outerReads()].filter((t) => graph.lookupTensor(t)?.value === undefined));
  const masks = gatheredByIteration(body, resize.inputs[0], iteration, outer);
  const boxes = gatheredByIteration(body, resize.inputs[3], iteration, outer);
  if (!masks || !boxes || masks === boxes || outer.size !== 2 || !outer.has(masks) || !outer.has(boxes)) return undefined;
  // masks [D, 1, Mh, Mw] float, boxes [D, 4] int; the Loop runs D times
  const m = graph.lookupTensor(masks);
  const b = graph.lookupTensor(boxes);
  if (!m?.shape || m.shape.length !== 4 || m.shape[1] !== 1 || !isConcrete(m.shape[2]) || !isConcrete(m.shape[3])) return undefined;
  if (m.dtype !== initial.dtype) return undefined;
  if (!b?.shape || b.shape.length !== 2 || b.shape[1] !== 4 || (b.dtype !== 'int64' && b.dtype !== 'int32')) return undefined;
  if (!dimEquals(b.shape[0], m.shape[0])) return undefined;
  const trips = graph.lookupTensor(node.inputs[0]);
  const tripValue = trips?.value ? [numeric(trips.value)[0]] : trips?.shapeValue;
  if (!tripValue || tripValue.length !== 1 || !dimEquals(tripValue[0], m.shape[0]) || !dimEquals(output.shape[0], m.shape[0]))
    return undefined;
  return { masks, boxes, height, width };
}

/**
 * Boxes (x0, y0, x1, y1, inclusive) that exercise the paste: inside the image, across each edge and all four,
 * 1-pixel ones (also in the corners), the mask's own size, smaller and larger than the mask, entirely outside.
 */
export function pasteCheckBoxes(seed: number, count: number, height: number, width: number, mh: number, mw: number): number[][] {
  const rand = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1)); // inclusive
  const span = (size: number, limit: number) => Math.max(1, Math.min(size, 3 * limit));
  const forms: (() => number[])[] = [
    () => {
      const [w, h] = [int(1, width), int(1, height)];
      const [x0, y0] = [int(0, width - w), int(0, height - h)];
      return [x0, y0, x0 + w - 1, y0 + h - 1];
    },
    () => [int(-mw, -1), int(0, height - 1), int(0, width - 1), int(0, height - 1)], // across the left edge
    () => [int(0, width - 1), int(-mh, -1), int(0, width - 1), int(0, height - 1)], // top
    () => [int(0, width - 1), int(0, height - 1), int(width, width + mw), int(0, height - 1)], // right
    () => [int(0, width - 1), int(0, height - 1), int(0, width - 1), int(height, height + mh)], // bottom
    () => [int(-mw, -1), int(-mh, -1), int(width, width + mw), int(height, height + mh)], // all four
    () => {
      const [x, y] = [int(0, width - 1), int(0, height - 1)];
      return [x, y, x, y]; // one pixel
    },
    () => [0, 0, 0, 0],
    () => [width - 1, height - 1, width - 1, height - 1],
    () => {
      const [x0, y0] = [int(-2, width - 1), int(-2, height - 1)];
      return [x0, y0, x0 + mw - 1, y0 + mh - 1]; // the mask's size: no resize
    },
    () => {
      const [x0, y0] = [int(-mw, width - 1), int(-mh, height - 1)];
      return [x0, y0, x0 + span(2 * mw + int(1, 9), width) - 1, y0 + span(2 * mh + int(1, 9), height) - 1]; // larger than the mask
    },
    () => {
      const [x0, y0] = [int(0, width - 1), int(0, height - 1)];
      return [x0, y0, x0 + int(0, Math.max(mw - 2, 0)), y0 + int(0, Math.max(mh - 2, 0))]; // smaller than the mask
    },
    () => [int(-3 * mw, -mw - 1), int(0, height - 1), int(-mw, -1), int(0, height - 1)], // left of the image
    () => [int(0, width - 1), int(height, height + mh), int(0, width - 1), int(height + mh, height + 2 * mh)], // below it
  ];
  return Array.from({ length: count }, (_, i) => {
    const [x0, y0, x1, y1] = forms[(i + seed) % forms.length]();
    return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
  });
}

/** The small graph the numeric check runs: the Loop (on the trip count, masks and boxes as inputs) and the candidate. */
function checkGraph(graph: Graph, node: Node, match: PasteMasksMatch, candidate: Node): Graph {
  const g = new Graph('paste-masks-check', { opsets: graph.opsets });
  const body = attrGraph(node, 'body');
  const inputs = [node.inputs[0], match.masks, match.boxes];
  for (const name of inputs) g.addTensor({ ...graph.lookupTensor(name)!, name, kind: 'input', value: undefined, shapeValue: undefined });
  g.inputs = inputs;
  // the constants the Loop and its body read from the outer scope
  for (const name of [...node.inputs.slice(1), ...body.outerReads()]) {
    const t = name ? graph.lookupTensor(name) : undefined;
    if (name && t?.value && !g.tensors.has(name)) g.addTensor({ ...t, name });
  }
  const loopOut = 'loop';
  const pasteOut = 'paste';
  g.nodes = [
    { ...node, outputs: [loopOut] },
    { ...candidate, inputs: [match.masks, match.boxes], outputs: [pasteOut] },
  ];
  g.outputs = [loopOut, pasteOut];
  return g;
}

/** Step 2 above: the Loop and the candidate agree on every seeded case. */
export function confirmPasteMasks(graph: Graph, node: Node, match: PasteMasksMatch, candidate: Node): boolean {
  const masks = graph.lookupTensor(match.masks)!;
  const [mh, mw] = [masks.shape![2] as number, masks.shape![3] as number];
  const g = checkGraph(graph, node, match, candidate);
  const boxType = graph.lookupTensor(match.boxes)!.dtype!;
  // box i of a case takes form (i + seed) mod 14 of pasteCheckBoxes: seeds 14 and 7 with 7 boxes each cover every
  // form; short cases, as the interpreted Loop re-copies its growing output each iteration (on Mask R-CNN's canvas)
  for (const [seed, count] of [
    [1, 0],
    [2, 1],
    [14, 7],
    [7, 7],
    [3, 3],
  ]) {
    const rand = seededRandom(seed * 7919);
    const boxes = pasteCheckBoxes(seed, count, match.height, match.width, mh, mw);
    const maskValues = Array.from({ length: count * mh * mw }, () => rand() * 3 - 1);
    const inputs: TensorValue[] = [
      makeTensor(graph.lookupTensor(node.inputs[0])!.dtype!, [], [count]),
      makeTensor(masks.dtype!, [count, 1, mh, mw], maskValues),
      makeTensor(boxType, [count, 4], boxes.flat()),
    ];
    let loop: TensorValue, paste: TensorValue;
    try {
      [loop, paste] = runGraph(g, inputs);
    } catch {
      return false; // a case the Loop refuses (or the candidate does): not the form this op computes
    }
    if (loop.shape.join() !== paste.shape.join()) return false;
    const [a, b] = [numeric(loop), numeric(paste)];
    for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i] - b[i]) <= 1e-6 * Math.max(1, Math.abs(a[i])))) return false;
  }
  return true;
}

/** The PasteMasks node that replaces `node`, or undefined when the Loop is not (exactly) a mask paste. */
export function pasteMasksOf(graph: Graph, node: Node): Node | undefined {
  const match = matchPasteMasksLoop(graph, node);
  if (!match) return undefined;
  const candidate: Node = {
    id: node.id,
    op: 'PasteMasks',
    domain: FUSED_DOMAIN,
    name: node.name,
    inputs: [match.masks, match.boxes],
    outputs: [...node.outputs],
    attrs: { height: { type: 'int', value: match.height }, width: { type: 'int', value: match.width } },
    sourceNodes: node.sourceNodes.length ? [...node.sourceNodes] : [node.name],
    scope: [...node.scope],
  };
  return confirmPasteMasks(graph, node, match, candidate) ? candidate : undefined;
}

export const pasteMasksPass: Pass = {
  name: 'paste-masks',
  description: "torchvision's mask-paste Loop (resize each mask to its box, paste on the image) as one PasteMasks node, when it is one",
  run(graph, ctx) {
    let changed = false;
    graph.nodes = graph.nodes.map((node) => {
      const paste = node.op === 'Loop' ? pasteMasksOf(graph, node) : undefined;
      if (paste) changed = true;
      return paste ?? node;
    });
    if (!changed) return;
    const r = inferShapes(graph);
    ctx.diagnostics.push(...r.diagnostics);
  },
};
