/**
 * MatMul between two activations (attention scores Q·Kᵀ and context P·V, or any [..., M, K] × [..., K, N]), and a
 * Gemm whose B is an activation, as one batched CUTLASS GEMM: the analysis of its operands here, the emission in
 * gemm-lowering.ts.
 *
 *  - Batch dims (ONNX broadcasting, shapes aligned from the right) are classified per position: in both operands
 *    with equal sizes ("shared": the GEMM's batch, L), only in A (B broadcast over them), only in B (A broadcast).
 *    A-only dims directly before M fold into M (A [B,H,M,K] × B [K,N] is one GEMM with M' = B·H·M; A [H,W,M,K] ×
 *    B [H,1,K,N] is H GEMMs of M' = W·M), since A and D are packed there. What remains must be shared, so that every
 *    operand is packed batch-major ([L,M,K], [L,K,N] or [L,N,K], [L,M,N]).
 *  - Any other broadcast (A broadcast over batch dims of B, as x [M,K] × stacked [L,K,N]; B broadcast over dims of A
 *    that precede shared ones) expands the broadcast operand into the workspace first (a strided copy with zero
 *    strides along its size-1 dims) and runs the GEMM over the output's batch dims. Zero batch strides in the GEMM
 *    itself would need no copy, but the sm90 instances load A and B by TMA, whose descriptors take no zero stride.
 *  - A 1-D operand is a matrix of one row (A [K] → [1,K]) or one column (B [K] → [K,1]): the output's memory is the
 *    same with the dim ONNX drops.
 *  - B is read row-major ([K,N]) as it is, or column-major ([N,K]) from the input of a Transpose of its last two axes
 *    (the Transpose then launches nothing: see absorbedTransposes) or from a Gemm's B with trans_b.
 */
import { Graph, Node, attrInt, attrInts } from '../../../ir/graph';
import { Dim, dimEquals, dimToString } from '../../../ir/symbolic';
import { isStatic } from '../../../passes/rewrite';
import { GemmLayoutB } from '../cutlass/gemm';
import { Unsupported } from './context';

export interface BatchedMatMul {
  /** Tensor read as A ([..., M, K]). */
  a: string;
  /** Tensor read as B: the MatMul's B (row-major), or the input of the Transpose feeding it (column-major). */
  b: string;
  layoutB: GemmLayoutB;
  /** Dims whose product is the GEMM's batch count L. */
  batch: Dim[];
  /** Dims whose product is the GEMM's M (A's rows, with A-only batch dims folded in). */
  m: Dim[];
  /** N and K: numbers, or run-time dims (a sequence length: Q·Kᵀ's N, P·V's K; gemm-lowering.ts dispatches on them). */
  n: Dim;
  k: Dim;
  /** How the batch was formed, for the kernel reason. */
  description: string;
  /**
   * Operands copied into the workspace as packed [L, rows, cols] before the GEMM (broadcast over the other's batch
   * dims): the copy reads `source` (the operand's shape, as B is read: [..., N, K] when column-major) along
   * `batchOf` (per dim of `batch`, the operand's own dim index, or undefined where it is broadcast).
   */
  expand: { a?: Expansion; b?: Expansion };
}

export interface Expansion {
  source: Dim[];
  batchOf: (number | undefined)[];
}

/**
 * The strided copy (tensor_ops.cuh launch_strided_copy) that expands an operand: its output shape, packed
 * [...batch, rows, cols], and per output axis the source dims whose product is the input stride (undefined: stride 0,
 * a broadcast dim).
 */
export function expansionCopy(batch: readonly Dim[], e: Expansion): { shape: Dim[]; strides: (Dim[] | undefined)[] } {
  const source = e.source;
  return {
    shape: [...batch, ...source.slice(-2)],
    strides: [...e.batchOf.map((d) => (d === undefined ? undefined : source.slice(d + 1))), source.slice(-1), []],
  };
}

function isLastTwoSwap(perm: readonly number[]): boolean {
  const r = perm.length;
  return r >= 2 && perm[r - 1] === r - 2 && perm[r - 2] === r - 1 && perm.slice(0, r - 2).every((p, i) => p === i);
}

/**
 * Transposes of the last two axes that feed only MatMul B operands between activations: those MatMuls read the
 * Transpose's input as a column-major B, so the Transpose moves no data. Keyed by the Transpose's output tensor.
 */
export function absorbedTransposes(graph: Graph): Map<string, Node> {
  const absorbed = new Map<string, Node>();
  const consumers = graph.consumers();
  for (const node of graph.nodes) {
    if (node.op !== 'Transpose' || node.domain !== '') continue;
    const out = node.outputs[0];
    const source = graph.lookupTensor(node.inputs[0]);
    if (!source?.shape || isStatic(source) || graph.outputs.includes(out)) continue;
    const rank = source.shape.length;
    // no perm: the axes reversed
    const perm = attrInts(
      node,
      'perm',
      Array.from({ length: rank }, (_, d) => rank - 1 - d),
    );
    if (!isLastTwoSwap(perm)) continue;
    const readers = consumers.get(out) ?? [];
    const onlyAsB = readers.every((r) => r.op === 'MatMul' && r.domain === '' && r.inputs[1] === out && r.inputs[0] !== out);
    if (readers.length > 0 && onlyAsB) absorbed.set(out, node);
  }
  return absorbed;
}

/**
 * The graph the memory planner sees: absorbed Transposes become views (Identity) of their input, so that the input
 * stays alive until the last MatMul reads it in the Transpose's place.
 */
export function graphForMemoryPlan(graph: Graph, absorbed: ReadonlyMap<string, Node>): Graph {
  if (absorbed.size === 0) return graph;
  const transposes = new Set(absorbed.values());
  const view: Graph = Object.create(graph) as Graph;
  view.nodes = graph.nodes.map((n) => (transposes.has(n) ? { ...n, op: 'Identity', attrs: {} } : n));
  return view;
}

const shapeText = (shape: readonly Dim[]) => `[${shape.map(dimToString).join(',')}]`;

export function analyzeBatchedMatMul(node: Node, shapeOf: (tensor: string) => Dim[], absorbed: ReadonlyMap<string, Node>): BatchedMatMul {
  const [a, bLogical] = node.inputs;
  const aGiven = shapeOf(a);
  const bGiven = shapeOf(bLogical);
  if (aGiven.length < 1 || bGiven.length < 1)
    throw new Unsupported(`MatMul with a scalar operand (A ${shapeText(aGiven)}, B ${shapeText(bGiven)})`);
  // a Gemm (the fused gemm node) is 2-D, its B [N,K] with trans_b: read column-major as it is
  const transB = node.op === 'gemm' && attrInt(node, 'trans_b', 0) !== 0;
  if (node.op === 'gemm' && (aGiven.length !== 2 || bGiven.length !== 2))
    throw new Unsupported(`Gemm of A ${shapeText(aGiven)} and B ${shapeText(bGiven)} (2-D operands expected)`);
  // 1-D operands: one row of A, one column of B
  const aShape = aGiven.length === 1 ? [1, aGiven[0]] : aGiven;
  const bShape = transB ? [bGiven[1], bGiven[0]] : bGiven.length === 1 ? [bGiven[0], 1] : bGiven;
  const transpose = transB ? undefined : absorbed.get(bLogical);
  const b = transpose ? transpose.inputs[0] : bLogical;
  const columnB = transB || transpose !== undefined;
  const [k, n] = bShape.slice(-2);
  const mRows = aShape[aShape.length - 2];
  if (!dimEquals(aShape[aShape.length - 1], k)) throw new Unsupported(`MatMul K mismatch: A ${shapeText(aGiven)}, B ${shapeText(bGiven)}`);

  const rank = Math.max(aShape.length, bShape.length) - 2;
  const aPad = rank - (aShape.length - 2);
  const bPad = rank - (bShape.length - 2);
  const aBatch: Dim[] = [...Array(aPad).fill(1), ...aShape.slice(0, -2)];
  const bBatch: Dim[] = [...Array(bPad).fill(1), ...bShape.slice(0, -2)];
  type Kind = 'none' | 'shared' | 'a' | 'b';
  const kinds: Kind[] = aBatch.map((da, i) => {
    const db = bBatch[i];
    if (da === 1 && db === 1) return 'none';
    if (dimEquals(da, db)) return 'shared';
    if (db === 1) return 'a';
    if (da === 1) return 'b';
    throw new Unsupported(`MatMul batch dims do not broadcast: A ${shapeText(aGiven)}, B ${shapeText(bGiven)}`);
  });
  const bLayout = columnB ? 'B column-major' : 'B row-major';
  const bHow = transpose ? `${bLayout}: Transpose '${transpose.name}' absorbed` : transB ? `${bLayout} (trans_b)` : bLayout;
  const withOneDim = aGiven.length === 1 ? 'A 1-D: one row' : bGiven.length === 1 ? 'B 1-D: one column' : '';
  // A-only dims directly before M (ignoring size-1 dims) fold into M
  const folded: Dim[] = [];
  let i = rank - 1;
  for (; i >= 0 && (kinds[i] === 'a' || kinds[i] === 'none'); i--) if (kinds[i] === 'a') folded.unshift(aBatch[i]);
  const rest = kinds.slice(0, i + 1);
  if (rest.some((kind) => kind === 'a' || kind === 'b')) {
    // broadcast the packed strides cannot express: the output's batch dims, the broadcast operand(s) expanded
    const kept = kinds.map((kind, j) => j).filter((j) => kinds[j] !== 'none');
    const batch = kept.map((j) => (kinds[j] === 'b' ? bBatch[j] : aBatch[j]));
    const expansion = (pad: number, source: Dim[], broadcastKind: Kind): Expansion => ({
      source,
      batchOf: kept.map((j) => (kinds[j] === broadcastKind ? undefined : j - pad)),
    });
    const bSource = transpose ? shapeOf(b) : bGiven.length === 1 ? [bGiven[0], 1] : bGiven;
    const expand = {
      ...(kinds.includes('b') ? { a: expansion(aPad, aShape, 'b') } : {}),
      ...(kinds.includes('a') ? { b: expansion(bPad, bSource, 'a') } : {}),
    };
    const copied = [expand.a ? 'A' : '', expand.b ? 'B' : ''].filter((x) => x).join(' and ');
    return {
      a,
      b,
      layoutB: columnB ? 'column' : 'row',
      batch,
      m: [mRows],
      n,
      k,
      description: [
        `batch ${batch.map(dimToString).join('·')}`,
        `${copied} broadcast over the other's batch dims: expanded into the workspace first (sm90 TMA takes no zero batch stride)`,
        withOneDim,
        bHow,
      ]
        .filter((p) => p)
        .join(', '),
      expand,
    };
  }
  const batch = aBatch.filter((_, j) => j <= i && kinds[j] === 'shared');
  const parts = [
    batch.length ? `batch ${batch.map(dimToString).join('·')}` : 'no batch',
    folded.length ? `${folded.map(dimToString).join('·')} broadcast dims of A folded into M` : '',
    withOneDim,
    bHow,
  ];
  return {
    a,
    b,
    layoutB: columnB ? 'column' : 'row',
    batch,
    m: [...folded, mRows],
    n,
    k,
    description: parts.filter((p) => p).join(', '),
    expand: {},
  };
}
