/**
 * Data-movement chains: a run of single-reader Reshape / Transpose / Squeeze / Unsqueeze / Flatten nodes is
 * replaced by the one op it amounts to — a Reshape (a view: no data moves) or a single Transpose. Exporters write
 * e.g. Kᵀ as Reshape [B·H,S,D] → Transpose(0,2,1) → Reshape [B,H,D,S], which is Transpose(0,1,3,2).
 *
 * The chain is checked by pushing element indices of a small proxy tensor through it (symbolic dims take a proxy
 * size), so any combination is handled without a rule per case.
 */
import { Graph, Node, attrInts } from '../ir/graph';
import { Dim, dimEquals, evaluateDim, isConcrete, shapeEquals } from '../ir/symbolic';
import { makeTensor } from '../ir/tensor';
import { transposeValue } from '../ops/fused';
import { PassContext } from './pass';
import { absorb, addConstant, liveNodes, soleConsumer } from './rewrite';

const MOVEMENT = new Set(['Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Flatten']);
const PROXY = 2; // stands for every symbolic dim (a wrong match is caught by the final check)
const MAX_PROXY_ELEMENTS = 1 << 21;

/** Chains already found not to simplify, by their node ids (so repeated rounds do not re-check them). */
const checked = new WeakMap<Graph, Set<string>>();

export function simplifyMovementChains(graph: Graph, ctx: PassContext): boolean {
  let changed = false;
  const producers = graph.producers();
  const consumers = graph.consumers();
  const isLive = liveNodes(graph);
  for (const head of [...graph.nodes]) {
    if (!MOVEMENT.has(head.op) || !isLive(head)) continue;
    const prev = producers.get(head.inputs[0]);
    if (prev && MOVEMENT.has(prev.op) && soleConsumer(graph, consumers, head.inputs[0]) === head) continue; // not a chain head
    const chain: Node[] = [head];
    for (;;) {
      const last = chain[chain.length - 1];
      const next = soleConsumer(graph, consumers, last.outputs[0]);
      if (!next || !MOVEMENT.has(next.op) || next.inputs[0] !== last.outputs[0]) break;
      chain.push(next);
    }
    if (chain.length < 2) continue;
    const key = chain.map((c) => c.id).join(',');
    const seen = checked.get(graph) ?? new Set<string>();
    checked.set(graph, seen);
    if (seen.has(key)) continue;
    if (replaceChain(graph, chain, ctx)) changed = true;
    else seen.add(key);
  }
  return changed;
}

const proxyShape = (s: Dim[], proxy = PROXY) => s.map((d) => evaluateDim(d, () => proxy));

/**
 * The proxy size of the symbols: the smallest from PROXY that sizes every symbolic dim of the chain above 1. A dim 1
 * at the proxy (floor((L - 1) / 2) - 1 with the floor's symbol at 2) would let a Transpose that moves it pass for a
 * Reshape. Undefined when none up to 8 does (the chain is then left alone).
 */
function proxyFor(shapes: Dim[][]): number | undefined {
  for (let p = PROXY; p <= 8; p++) if (shapes.every((shape) => shape.every((d) => isConcrete(d) || evaluateDim(d, () => p) > 1))) return p;
  return undefined;
}

function replaceChain(graph: Graph, chain: Node[], ctx: PassContext): boolean {
  const x = chain[0].inputs[0];
  const last = chain[chain.length - 1];
  const y = last.outputs[0];
  const xShape = graph.lookupTensor(x)?.shape;
  const yShape = graph.lookupTensor(y)?.shape;
  if (!xShape || !yShape) return false;
  if (chain.every((c) => c.op !== 'Transpose')) {
    const target = reshapeTarget(xShape, yShape);
    if (!target) return false;
    return install(graph, chain, {
      ...last,
      op: 'Reshape',
      attrs: {},
      inputs: [x, addConstant(graph, `${y}_shape`, makeTensor('int64', [target.length], target))],
    });
  }
  const outShapes: Dim[][] = [];
  for (const node of chain) {
    const outShape = graph.lookupTensor(node.outputs[0])?.shape;
    if (!outShape) return false;
    outShapes.push(outShape);
  }
  const proxy = proxyFor([xShape, ...outShapes]);
  if (proxy === undefined) return false;
  const xp = proxyShape(xShape, proxy);
  const yp = proxyShape(yShape, proxy);
  const n = xp.reduce((a, b) => a * b, 1);
  if (n > MAX_PROXY_ELEMENTS || n === 0) return false;
  const shapes = outShapes.map((shape) => proxyShape(shape, proxy));
  // Cheap rejection first: map a few output positions back through the chain to input positions. A single
  // mismatch proves the chain is neither a reshape nor the candidate transpose; only survivors get the full check.
  const back = (linear: number): number => {
    let idx = unravel(linear, shapes[shapes.length - 1]);
    for (let k = chain.length - 1; k >= 0; k--) {
      const inShape = k === 0 ? xp : shapes[k - 1];
      if (chain[k].op === 'Transpose') {
        const perm = attrInts(chain[k], 'perm');
        const src = new Array<number>(perm.length);
        perm.forEach((pk, i) => (src[pk] = idx[i]));
        idx = src;
      } else idx = unravel(ravel(idx, shapes[k]), inShape);
    }
    return ravel(idx, xp);
  };
  const samples = samplePositions(yp, n);
  let replacement: Node | undefined;
  if (samples.every((p) => back(p) === p)) {
    if (!fullCheck(chain, xp, shapes, n, undefined)) return false;
    const target = reshapeTarget(xShape, yShape);
    if (!target) return false;
    replacement = {
      ...last,
      op: 'Reshape',
      attrs: {},
      inputs: [x, addConstant(graph, `${y}_shape`, makeTensor('int64', [target.length], target))],
    };
  } else {
    const perm = candidatePermutation(xp, yp, back);
    if (
      !perm ||
      !shapeEquals(
        perm.map((p) => xShape[p]),
        yShape,
      )
    )
      return false;
    const xStrides = stridesFor(xp);
    const expected = (linear: number) => unravel(linear, yp).reduce((acc, v, i) => acc + v * xStrides[perm[i]], 0);
    if (!samples.every((p) => back(p) === expected(p))) return false;
    if (!fullCheck(chain, xp, shapes, n, perm)) return false;
    replacement = { ...last, op: 'Transpose', attrs: { perm: { type: 'ints', value: perm } }, inputs: [x] };
  }
  void ctx;
  return install(graph, chain, replacement);
}

function install(graph: Graph, chain: Node[], replacement: Node): boolean {
  const last = chain[chain.length - 1];
  absorb(replacement, ...chain.slice(0, -1));
  for (const node of chain.slice(0, -1)) graph.tensors.delete(node.outputs[0]);
  const gone = new Set(chain.slice(0, -1));
  graph.nodes[graph.nodes.indexOf(last)] = replacement;
  graph.nodes = graph.nodes.filter((m) => !gone.has(m));
  return true;
}

/** Reshape target for x → y: concrete dims as they are, 0 to copy a symbolic dim in place, one -1 for the rest. */
export function reshapeTarget(xShape: Dim[], yShape: Dim[]): number[] | undefined {
  let inferred = false;
  const target: number[] = [];
  for (let i = 0; i < yShape.length; i++) {
    const d = yShape[i];
    if (isConcrete(d)) target.push(d);
    else if (i < xShape.length && dimEquals(xShape[i], d)) target.push(0);
    else if (!inferred) {
      target.push(-1);
      inferred = true;
    } else return undefined;
  }
  return target;
}

function stridesFor(shape: number[]): number[] {
  const strides = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= shape[i];
  }
  return strides;
}

function unravel(linear: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = linear % shape[i];
    linear = Math.floor(linear / shape[i]);
  }
  return idx;
}

function ravel(idx: number[], shape: number[]): number {
  let linear = 0;
  for (let i = 0; i < shape.length; i++) linear = linear * shape[i] + idx[i];
  return linear;
}

/** Unit steps along every axis, the last element, and a fixed spread of positions. */
function samplePositions(shape: number[], n: number): number[] {
  const out = new Set<number>([0, n - 1]);
  const strides = stridesFor(shape);
  shape.forEach((d, i) => d > 1 && out.add(strides[i]));
  for (let k = 1; k <= 40; k++) out.add(Math.floor((n * k * 0.6180339887) % n));
  return [...out];
}

/** The permutation suggested by where each output axis's unit step lands in the input. */
function candidatePermutation(xShape: number[], yShape: number[], back: (linear: number) => number): number[] | undefined {
  if (xShape.length !== yShape.length) return undefined;
  const rank = xShape.length;
  const xStrides = stridesFor(xShape);
  const yStrides = stridesFor(yShape);
  const used = new Set<number>();
  const perm = new Array<number>(rank).fill(-1);
  const origin = back(0);
  for (let i = 0; i < rank; i++) {
    if (yShape[i] === 1) continue;
    const stride = back(yStrides[i]) - origin;
    const a = xStrides.findIndex((st, k) => st === stride && xShape[k] === yShape[i] && !used.has(k));
    if (a < 0) return undefined;
    perm[i] = a;
    used.add(a);
  }
  for (let i = 0; i < rank; i++)
    if (perm[i] < 0) {
      const a = xShape.findIndex((d, k) => d === 1 && !used.has(k));
      if (a < 0) return undefined;
      perm[i] = a;
      used.add(a);
    }
  return perm;
}

/** Exact check on the whole proxy: the chain's result equals the reshape (perm undefined) or the transpose. */
function fullCheck(chain: Node[], xp: number[], shapes: number[][], n: number, perm: number[] | undefined): boolean {
  const iota = new Float32Array(n);
  for (let i = 0; i < n; i++) iota[i] = i;
  let cur = { dtype: 'float32' as const, shape: xp, data: iota };
  chain.forEach((node, k) => {
    cur = node.op === 'Transpose' ? (transposeValue(cur, attrInts(node, 'perm')) as typeof cur) : { ...cur, shape: shapes[k] };
  });
  const expected = perm ? (transposeValue({ dtype: 'float32', shape: xp, data: iota }, perm).data as Float32Array) : iota;
  const got = cur.data;
  for (let i = 0; i < n; i++) if (got[i] !== expected[i]) return false;
  return true;
}
