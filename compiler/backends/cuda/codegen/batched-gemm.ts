/**
 * MatMul between two activations (attention scores Q·Kᵀ and context P·V, or any [..., M, K] × [..., K, N]) as one
 * batched CUTLASS GEMM: the analysis of its operands here, the emission in gemm-lowering.ts.
 *
 *  - Batch dims (ONNX broadcasting, shapes aligned from the right) are classified per position: in both operands
 *    with equal sizes ("shared": the GEMM's batch, L), only in A (B broadcast over them), only in B (A broadcast).
 *    A-only dims directly before M fold into M (A [B,H,M,K] × B [K,N] is one GEMM with M' = B·H·M; A [H,W,M,K] ×
 *    B [H,1,K,N] is H GEMMs of M' = W·M), since A and D are packed there. What remains must be shared, so that every
 *    operand is packed batch-major ([L,M,K], [L,K,N] or [L,N,K], [L,M,N]); anything else (A broadcast over B's
 *    batch, broadcast dims between shared ones) would need non-packed or zero batch strides, and is refused with a
 *    diagnostic at the node.
 *  - B is read row-major ([K,N]) as it is, or column-major ([N,K]) from the input of a Transpose of its last two axes
 *    (the Transpose then launches nothing: see absorbedTransposes).
 */
import { Graph, Node, attrInts } from '../../../ir/graph';
import { Dim, dimEquals, dimToString, isConcrete } from '../../../ir/symbolic';
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
  n: number;
  k: number;
  /** How the batch was formed, for the kernel reason. */
  description: string;
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
  const aShape = shapeOf(a);
  const bShape = shapeOf(bLogical);
  if (aShape.length < 2 || bShape.length < 2)
    throw new Unsupported(`MatMul with a 1-D operand (A ${shapeText(aShape)}, B ${shapeText(bShape)}) has no batched GEMM lowering`);
  const transpose = absorbed.get(bLogical);
  const b = transpose ? transpose.inputs[0] : bLogical;
  const [k, n] = bShape.slice(-2);
  const mRows = aShape[aShape.length - 2];
  if (!isConcrete(n) || !isConcrete(k))
    throw new Unsupported(
      `batched MatMul with symbolic N or K (B ${shapeText(bShape)}): instances are chosen for fixed N and K (fix the dim to one value with --dim NAME=N..N)`,
    );
  if (!dimEquals(aShape[aShape.length - 1], k)) throw new Unsupported(`MatMul K mismatch: A ${shapeText(aShape)}, B ${shapeText(bShape)}`);

  const rank = Math.max(aShape.length, bShape.length) - 2;
  const aBatch: Dim[] = [...Array(rank - (aShape.length - 2)).fill(1), ...aShape.slice(0, -2)];
  const bBatch: Dim[] = [...Array(rank - (bShape.length - 2)).fill(1), ...bShape.slice(0, -2)];
  type Kind = 'none' | 'shared' | 'a' | 'b';
  const kinds: Kind[] = aBatch.map((da, i) => {
    const db = bBatch[i];
    if (da === 1 && db === 1) return 'none';
    if (dimEquals(da, db)) return 'shared';
    if (db === 1) return 'a';
    if (da === 1) return 'b';
    throw new Unsupported(`MatMul batch dims do not broadcast: A ${shapeText(aShape)}, B ${shapeText(bShape)}`);
  });
  // A-only dims directly before M (ignoring size-1 dims) fold into M
  const folded: Dim[] = [];
  let i = rank - 1;
  for (; i >= 0 && (kinds[i] === 'a' || kinds[i] === 'none'); i--) if (kinds[i] === 'a') folded.unshift(aBatch[i]);
  const rest = kinds.slice(0, i + 1);
  if (rest.some((kind) => kind === 'a' || kind === 'b')) {
    const which = rest.includes('b')
      ? 'A is broadcast over batch dims of B'
      : 'B is broadcast over batch dims of A that precede shared ones';
    throw new Unsupported(
      `MatMul A ${shapeText(aShape)} × B ${shapeText(bShape)}: ${which}; a batched GEMM with packed batch strides cannot express it (expand the operand first)`,
    );
  }
  const batch = aBatch.filter((_, j) => j <= i && kinds[j] === 'shared');
  const parts = [
    batch.length ? `batch ${batch.map(dimToString).join('·')}` : 'no batch',
    folded.length ? `${folded.map(dimToString).join('·')} broadcast dims of A folded into M` : '',
    transpose ? `B column-major: Transpose '${transpose.name}' absorbed` : 'B row-major',
  ];
  return {
    a,
    b,
    layoutB: transpose ? 'column' : 'row',
    batch,
    m: [...folded, mRows],
    n,
    k,
    description: parts.filter((p) => p).join(', '),
  };
}
