/**
 * Per-node numerical error against a reference.
 *
 * Every kernel node of the optimized (fused) graph is compared at the ONNX tensor its output stands for: the output
 * of the last of its `sourceNodes` (in the ONNX model's order). The reference is onnxruntime on the original model
 * with those tensors exposed as extra graph outputs; the candidate is the compiled graph (here the interpreter with
 * fp16 storage, predicting the GPU build; on a GPU host, the build's debug copies of every node's output).
 *
 * A fused node's output may hold the ONNX tensor in another layout (the layout pass keeps activations NHWC) or
 * another shape of the same elements (a GEMM's [B*S, N] for [B, S, N]); `alignToReference` finds it from the shapes.
 *
 * Metrics per node: max abs error (finite elements), max rel = max abs error / max |reference|, relative L2, the
 * candidate's NaN/Inf count, max |reference| against the fp16 range (65504). The report names the first node (in
 * topological order) whose relative L2 crosses the threshold while every compared node upstream of it was below,
 * and the first whose values leave the fp16 range; the per-module table groups nodes by their ONNX scope.
 */
import { FP16_MAX, FP16_MIN_NORMAL } from '../ir/half';
import type { Diagnostic } from '../diagnostics';
import type { Node } from '../ir/graph';
import { decodeModel } from '../onnx/import';
import { ModelProtoType } from '../onnx/schema';
import type { ProfileJson } from '../../webview/contract';
import type { ModuleTimes, TimesSummary, TorchModuleTimes } from './module-times';

/** What the comparison needs of a kernel node: an IR node, or a graph.json node (docs/graph-format.md). */
export type NodeLike = Pick<Node, 'id' | 'op' | 'name' | 'inputs' | 'outputs' | 'sourceNodes' | 'scope'> & { role?: Node['role'] };
/** A compiled graph (the IR, or graph.json's `nodes`), in topological order. */
export interface GraphLike {
  nodes: readonly NodeLike[];
  /**
   * Tensors the GPU stores in fp32 (TensorInfo.storage, graph.json `storage`; passes/storage-precision.ts): their
   * values beyond 65504 are no fp16 overflow. A Graph's own tensors are read when this is absent.
   */
  fp32?: ReadonlySet<string>;
}

/** The fp32-stored tensors of a GraphLike (its `fp32`, or a Graph's tensors marked `storage: 'float32'`). */
function fp32Tensors(graph: GraphLike): ReadonlySet<string> {
  if (graph.fp32) return graph.fp32;
  const tensors = (graph as { tensors?: unknown }).tensors;
  const out = new Set<string>();
  if (tensors instanceof Map)
    for (const [name, info] of tensors as Map<string, { storage?: string }>) if (info.storage === 'float32') out.add(name);
  return out;
}
/** The ONNX model's nodes, in its order, named as the importer names them. */
export interface OnnxNodesLike {
  nodes: readonly { name: string; outputs: readonly string[] }[];
}

export const DEFAULT_ERROR_THRESHOLD = 1e-2;

export interface NodeErrorMetrics {
  /** Largest |candidate - reference| over elements where the candidate is finite. */
  maxAbs: number;
  /** maxAbs over the largest |reference| (0 when the reference is all zeros and so is the candidate). */
  maxRel: number;
  /** ||candidate - reference|| / ||reference||; null when the candidate has NaN/Inf or the reference is all zeros. */
  relativeL2: number | null;
  /**
   * relativeL2 with the reference's norm floored at that of a tensor whose every element is fp16's smallest normal
   * value (6.1e-5): values fp16 holds only as subnormals (2^-24 apart) have no meaningful relative error and are judged
   * by their absolute error instead. What an fp16-stored node is judged by; null where relativeL2 is.
   */
  fp16ScaledL2: number | null;
  /** NaN/Inf values of the candidate. */
  nonFinite: number;
  /** NaN/Inf values of the reference (not the compiled model's fault). */
  referenceNonFinite: number;
  /** Largest finite |reference| value: beyond 65504 an fp16 buffer holds Inf. */
  maxAbsReference: number;
  /** max |reference| > 65504, or the candidate has Inf where the reference is finite. */
  fp16Overflow: boolean;
}

export interface NodeErrorRow extends Partial<NodeErrorMetrics> {
  id: string;
  op: string;
  name: string;
  sourceNodes: string[];
  scope: string[];
  /** The ONNX tensor the node's output was compared with. */
  onnxTensor: string | null;
  shape: number[] | null;
  /** How the candidate's elements map onto the reference's. */
  layout?: 'same' | 'channels-last' | 'permuted' | 'reshaped';
  /** Why the node was not compared. */
  skipped?: string;
  /** relativeL2 (or NaN/Inf) above the threshold. */
  bad?: boolean;
}

export interface FirstProblem {
  kind: 'error-jump' | 'fp16-overflow';
  id: string;
  op: string;
  name: string;
  sourceNodes: string[];
  scope: string[];
  onnxTensor: string | null;
  message: string;
}

/** A module's errors (over its compared nodes) and, when a profile was given, its times (module-times.ts). */
export interface ModuleRow extends ModuleTimes {
  /** Scope path joined with '/'; '' for nodes without a scope. */
  module: string;
  depth: number;
  nodes: number;
  maxAbs: number;
  maxRelativeL2: number | null;
  nonFinite: number;
  fp16Overflows: number;
}

/** The elements of `candidate` in the reference's order, or why they cannot be matched. */
export function alignToReference(
  candidate: ArrayLike<number>,
  candidateShape: readonly number[],
  referenceShape: readonly number[],
): { layouts: { layout: NodeErrorRow['layout']; values: ArrayLike<number> }[] } | { problem: string } {
  const count = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  if (count(candidateShape) !== count(referenceShape))
    return { problem: `shape [${candidateShape.join(', ')}] holds other elements than the ONNX tensor's [${referenceShape.join(', ')}]` };
  const same = candidateShape.length === referenceShape.length && candidateShape.every((d, i) => d === referenceShape[i]);
  const rank = referenceShape.length;
  // channels-last: candidate [N, spatial..., C] for reference [N, C, spatial...]
  const perm = rank >= 3 ? [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2), 1] : null;
  const channelsLast =
    perm !== null &&
    candidateShape.length === rank &&
    perm.every((p, i) => candidateShape[i] === referenceShape[p]) &&
    !isIdentityPerm(perm);
  const layouts: { layout: NodeErrorRow['layout']; values: ArrayLike<number> }[] = [];
  if (same) layouts.push({ layout: 'same', values: candidate });
  if (channelsLast) layouts.push({ layout: 'channels-last', values: fromChannelsLast(candidate, referenceShape) });
  // Another order of the same axes (a pass moved a Transpose across the node: K·scale before K's transpose): every
  // axis permutation the shapes allow, a few at most; the best fit is the layout, as above.
  // Axes of size 1 do not order anything: they are left out on both sides (a 1-D conv lifted to 2-D and run NHWC
  // holds [N, 1, L, C] for the reference's [N, C, L]).
  const squeeze = (shape: readonly number[]) => shape.filter((d) => d !== 1);
  const cs = squeeze(candidateShape);
  const rs = squeeze(referenceShape);
  for (const p of axisPermutations(cs, rs, MAX_PERMUTATIONS))
    if (!isIdentityPerm(p) && !(channelsLast && cs.length === rank && perm!.every((q, i) => p[q] === i)))
      layouts.push({ layout: 'permuted', values: permuteToReference(candidate, cs, rs, p) });
  if (layouts.length === 0) layouts.push({ layout: 'reshaped', values: candidate });
  return { layouts };
}

const MAX_PERMUTATIONS = 24;

/** Permutations p (candidate axis i is reference axis p[i]) with equal sizes, at most `limit`; none across ranks. */
function axisPermutations(candidateShape: readonly number[], referenceShape: readonly number[], limit: number): number[][] {
  const rank = referenceShape.length;
  if (candidateShape.length !== rank || rank > 8) return [];
  const out: number[][] = [];
  const used = new Array<boolean>(rank).fill(false);
  const current: number[] = [];
  const walk = (i: number) => {
    if (out.length >= limit) return;
    if (i === rank) {
      out.push([...current]);
      return;
    }
    for (let r = 0; r < rank; r++) {
      if (used[r] || candidateShape[i] !== referenceShape[r]) continue;
      used[r] = true;
      current.push(r);
      walk(i + 1);
      current.pop();
      used[r] = false;
    }
  };
  walk(0);
  return out;
}

/** The candidate's elements in the reference's order, candidate axis i being reference axis p[i]. */
function permuteToReference(
  data: ArrayLike<number>,
  candidateShape: readonly number[],
  referenceShape: readonly number[],
  p: readonly number[],
): Float64Array {
  const rank = referenceShape.length;
  const refStrides = new Array<number>(rank).fill(1);
  for (let r = rank - 2; r >= 0; r--) refStrides[r] = refStrides[r + 1] * referenceShape[r + 1];
  const out = new Float64Array(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let k = 0; k < data.length; k++) {
    let at = 0;
    for (let i = 0; i < rank; i++) at += index[i] * refStrides[p[i]];
    out[at] = data[k];
    for (let i = rank - 1; i >= 0; i--) {
      if (++index[i] < candidateShape[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

function isIdentityPerm(p: number[]): boolean {
  return p.every((v, i) => v === i);
}

/** Reads a [N, spatial..., C] buffer into [N, C, spatial...] order. */
function fromChannelsLast(data: ArrayLike<number>, referenceShape: readonly number[]): Float64Array {
  const [n, c] = referenceShape;
  const spatial = referenceShape.slice(2).reduce((a, b) => a * b, 1);
  const out = new Float64Array(n * c * spatial);
  for (let b = 0; b < n; b++)
    for (let s = 0; s < spatial; s++) for (let k = 0; k < c; k++) out[(b * c + k) * spatial + s] = data[(b * spatial + s) * c + k];
  return out;
}

/** The metrics of one tensor. */
export function compareValues(candidate: ArrayLike<number>, reference: ArrayLike<number>): NodeErrorMetrics {
  let diffSquares = 0;
  let referenceSquares = 0;
  let maxAbs = 0;
  let maxAbsReference = 0;
  let nonFinite = 0;
  let compared = 0; // elements where both are finite
  let referenceNonFinite = 0;
  let infWhereFinite = false;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i];
    const c = candidate[i];
    if (!Number.isFinite(r)) {
      referenceNonFinite++;
      if (!Number.isFinite(c)) nonFinite++;
      continue;
    }
    const ar = Math.abs(r);
    if (ar > maxAbsReference) maxAbsReference = ar;
    if (!Number.isFinite(c)) {
      nonFinite++;
      if (c === Infinity || c === -Infinity) infWhereFinite = true;
      continue;
    }
    const d = c - r;
    compared++;
    diffSquares += d * d;
    referenceSquares += r * r;
    const ad = Math.abs(d);
    if (ad > maxAbs) maxAbs = ad;
  }
  const relativeL2 =
    nonFinite > referenceNonFinite ? null : referenceSquares > 0 ? Math.sqrt(diffSquares / referenceSquares) : diffSquares === 0 ? 0 : null;
  const floorSquares = Math.max(compared, 1) * FP16_MIN_NORMAL * FP16_MIN_NORMAL;
  return {
    maxAbs,
    maxRel: maxAbsReference > 0 ? maxAbs / maxAbsReference : maxAbs === 0 ? 0 : Infinity,
    relativeL2,
    fp16ScaledL2: nonFinite > referenceNonFinite ? null : Math.sqrt(diffSquares / Math.max(referenceSquares, floorSquares)),
    nonFinite,
    referenceNonFinite,
    maxAbsReference,
    fp16Overflow: maxAbsReference > FP16_MAX || infWhereFinite,
  };
}

/** Compares a node's candidate output with its reference tensor (trying each layout the shapes allow). */
export function compareNode(
  candidate: ArrayLike<number>,
  candidateShape: readonly number[],
  reference: ArrayLike<number>,
  referenceShape: readonly number[],
): (NodeErrorMetrics & { layout: NodeErrorRow['layout'] }) | { problem: string } {
  const aligned = alignToReference(candidate, candidateShape, referenceShape);
  if ('problem' in aligned) return aligned;
  // Shapes that fit both layouts (e.g. N×8×8×8) are compared both ways: the better fit is the layout.
  let best: (NodeErrorMetrics & { layout: NodeErrorRow['layout'] }) | undefined;
  for (const { layout, values } of aligned.layouts) {
    const m = { ...compareValues(values, reference), layout };
    if (!best || badness(m) < badness(best)) best = m;
  }
  return best!;
}

function badness(m: NodeErrorMetrics): number {
  return m.relativeL2 ?? Infinity;
}

/**
 * Whether a compared node's error is above the threshold (NaN/Inf the reference does not have counts). An fp16-stored
 * output is judged by fp16ScaledL2: values below fp16's normal range count by absolute error.
 */
export function isBad(m: Partial<NodeErrorMetrics>, threshold: number, fp16Stored = false): boolean {
  if (m.relativeL2 === undefined) return false;
  if ((m.nonFinite ?? 0) > (m.referenceNonFinite ?? 0)) return true;
  if (fp16Stored && m.fp16ScaledL2 != null) return m.fp16ScaledL2 > threshold;
  return m.relativeL2 === null ? (m.maxAbs ?? 0) > 0 : m.relativeL2 > threshold;
}

/**
 * The ONNX tensor each kernel node stands for: the ONNX tensor of its output's name when the model has one (passes
 * keep a name only on the value it names: a Transpose moved after an elementwise op writes that op's tensor), else
 * the first output of its last source node (in `original`'s order).
 */
export function onnxTensorOfNodes(
  optimized: GraphLike,
  original: OnnxNodesLike,
): Map<string, { tensor: string; onnxNode: string } | { skipped: string }> {
  const position = new Map<string, number>();
  original.nodes.forEach((n, i) => position.set(n.name, i));
  const producerOf = new Map<string, string>();
  for (const n of original.nodes) for (const o of n.outputs) if (o) producerOf.set(o, n.name);
  const out = new Map<string, { tensor: string; onnxNode: string } | { skipped: string }>();
  for (const node of optimized.nodes) {
    if (!isComputed(node)) continue;
    const named = node.outputs[0] ? producerOf.get(node.outputs[0]) : undefined;
    if (named && node.sourceNodes.length > 0) {
      out.set(node.id, { tensor: node.outputs[0], onnxNode: named });
      continue;
    }
    if (node.sourceNodes.length === 0) {
      out.set(node.id, { skipped: 'added by the compiler (stands for no ONNX node)' });
      continue;
    }
    let last = -1;
    for (const s of node.sourceNodes) last = Math.max(last, position.get(s) ?? -1);
    const onnx = last >= 0 ? original.nodes[last] : undefined;
    const tensor = onnx?.outputs.find((o) => o);
    if (!onnx || !tensor) {
      out.set(node.id, { skipped: 'its ONNX nodes are not in the model graph' });
      continue;
    }
    out.set(node.id, { tensor, onnxNode: onnx.name });
  }
  return out;
}

/** Nodes that compute values at run time (kernels; unset roles count, for graphs the cost pass has not seen). */
export function isComputed(node: { role?: Node['role'] }): boolean {
  return node.role === undefined || node.role === 'kernel';
}

/**
 * Marks `bad` rows and finds the first problems: the first bad node whose compared upstream nodes (through views and
 * uncompared nodes) are all below the threshold, and the first fp16 overflow.
 */
export function firstProblems(
  graph: GraphLike,
  rows: NodeErrorRow[],
  threshold: number,
): { firstJump: FirstProblem | null; firstOverflow: FirstProblem | null } {
  const rowOf = new Map(rows.map((r) => [r.id, r]));
  const producer = new Map<string, NodeLike>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const fp32 = fp32Tensors(graph);
  const nodeOf = new Map(graph.nodes.map((n) => [n.id, n]));
  for (const r of rows)
    if (r.relativeL2 !== undefined) r.bad = isBad(r, threshold, !(nodeOf.get(r.id)?.outputs ?? []).some((o) => fp32.has(o)));
  const upstreamBad = new Map<string, boolean>();
  const tensorBad = (t: string, seen: Set<string>): boolean => {
    const p = producer.get(t);
    if (!p || seen.has(p.id)) return false;
    seen.add(p.id);
    const row = rowOf.get(p.id);
    if (row && row.relativeL2 !== undefined) return row.bad === true;
    const memo = upstreamBad.get(p.id);
    if (memo !== undefined) return memo;
    const v = p.inputs.some((x) => x && tensorBad(x, seen));
    upstreamBad.set(p.id, v);
    return v;
  };
  let firstJump: FirstProblem | null = null;
  let firstOverflow: FirstProblem | null = null;
  for (const node of graph.nodes) {
    const row = rowOf.get(node.id);
    if (!row || row.relativeL2 === undefined) continue;
    if (!firstOverflow && row.fp16Overflow && !node.outputs.some((o) => fp32.has(o)))
      firstOverflow = problem(
        'fp16-overflow',
        row,
        (row.maxAbsReference ?? 0) > FP16_MAX
          ? `values reach ${fmt(row.maxAbsReference)} in the reference, beyond fp16's ${FP16_MAX}`
          : `the fp16 output holds Inf where the reference's values reach ${fmt(row.maxAbsReference)} (fp16 max ${FP16_MAX})`,
      );
    if (!firstJump && row.bad && !node.inputs.some((x) => x && tensorBad(x, new Set())))
      firstJump = problem(
        'error-jump',
        row,
        row.relativeL2 === null
          ? `${row.nonFinite} NaN/Inf value(s) where the reference has ${row.referenceNonFinite}, from inputs within tolerance`
          : `relative L2 ${fmt(row.relativeL2)} above ${fmt(threshold)}, from inputs within tolerance`,
      );
    if (firstJump && firstOverflow) break;
  }
  return { firstJump, firstOverflow };
}

function problem(kind: FirstProblem['kind'], row: NodeErrorRow, message: string): FirstProblem {
  return {
    kind,
    id: row.id,
    op: row.op,
    name: row.name,
    sourceNodes: row.sourceNodes,
    scope: row.scope,
    onnxTensor: row.onnxTensor,
    message,
  };
}

export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined) return '-';
  if (!Number.isFinite(v)) return String(v);
  return v === 0 ? '0' : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(3);
}

/** Max errors per module: every prefix of every compared node's scope (depth 1 = top-level modules). */
export function moduleTable(rows: NodeErrorRow[]): ModuleRow[] {
  const byModule = new Map<string, ModuleRow>();
  for (const r of rows) {
    if (r.relativeL2 === undefined) continue;
    const prefixes = r.scope.length ? r.scope.map((_, i) => r.scope.slice(0, i + 1)) : [[]];
    for (const p of prefixes) {
      const key = p.join('/');
      let m = byModule.get(key);
      if (!m)
        byModule.set(key, (m = { module: key, depth: p.length, nodes: 0, maxAbs: 0, maxRelativeL2: 0, nonFinite: 0, fp16Overflows: 0 }));
      m.nodes++;
      m.maxAbs = Math.max(m.maxAbs, r.maxAbs ?? 0);
      m.maxRelativeL2 = m.maxRelativeL2 === null || r.relativeL2 === null ? null : Math.max(m.maxRelativeL2, r.relativeL2);
      m.nonFinite += r.nonFinite ?? 0;
      if (r.fp16Overflow) m.fp16Overflows++;
    }
  }
  return [...byModule.values()];
}

/**
 * The per-node report: of `ait verify` (the interpreter with fp16 storage as the candidate) and of `ait remote
 * verify --per-node` (the compiled library's debug run; VerifyReport.perNode). Its node ids are graph.json's.
 */
export interface PerNodeReport {
  format: 'ait-verify-per-node';
  version: 1;
  model: string;
  batch: number;
  seed: number;
  threshold: number;
  /** What produced the compared node outputs, in words. */
  candidate: string;
  /** onnxruntime-node, python-onnxruntime or interpreter (ReferenceKind), with its version. */
  reference: { kind: string; version: string | null };
  /** Parameters filled with seeded random data (graph-only model). */
  randomizedWeights: number;
  inputs: { name: string; shape: number[] }[];
  nodes: NodeErrorRow[];
  firstJump: FirstProblem | null;
  firstOverflow: FirstProblem | null;
  modules: ModuleRow[];
  timings: { referenceMs: number; candidateMs: number };
  /** The time columns' sources (module-times.ts): our per-op profile and PyTorch eager's module times, when run. */
  times?: TimesSummary;
  /** Our per-op profile measured with the report (`ait remote verify --per-node`), at `batch`. */
  profile?: ProfileJson;
  /** PyTorch eager's module times (module_times.py), when `--torch-model` was given and ran. */
  torchTimes?: TorchModuleTimes;
  notes: string[];
}

/** One row per kernel node of `graph` that `targets` knows (onnxTensorOfNodes), in graph order. */
export function nodeRows(graph: GraphLike, targets: ReturnType<typeof onnxTensorOfNodes>): NodeErrorRow[] {
  const rows: NodeErrorRow[] = [];
  for (const node of graph.nodes) {
    const target = targets.get(node.id);
    if (!target) continue;
    rows.push({
      id: node.id,
      op: node.op,
      name: node.name,
      sourceNodes: node.sourceNodes,
      scope: node.scope,
      onnxTensor: 'tensor' in target ? target.tensor : null,
      shape: null,
      ...('skipped' in target ? { skipped: target.skipped } : {}),
    });
  }
  return rows;
}

export type ComparedValues = { values: ArrayLike<number>; shape: readonly number[] } | { skipped: string };

/** Compares a row's candidate output with its reference tensor: sets the metrics, or `skipped` saying why not. */
export function compareRow(row: NodeErrorRow, candidate: ComparedValues, reference: ComparedValues): void {
  if ('skipped' in candidate) row.skipped = candidate.skipped;
  else if ('skipped' in reference) row.skipped = reference.skipped;
  else {
    row.shape = [...candidate.shape];
    const m = compareNode(candidate.values, candidate.shape, reference.values, reference.shape);
    if ('problem' in m) row.skipped = m.problem;
    else Object.assign(row, m);
  }
}

/** The report's summary of compared rows: the first problems, the module table, a note on uncompared nodes. */
export function summarizeRows(
  graph: GraphLike,
  rows: NodeErrorRow[],
  threshold: number,
): Pick<PerNodeReport, 'firstJump' | 'firstOverflow' | 'modules' | 'notes'> {
  const { firstJump, firstOverflow } = firstProblems(graph, rows, threshold);
  const notes: string[] = [];
  const skipped = rows.filter((r) => r.skipped).length;
  if (skipped) notes.push(`${skipped} node(s) not compared (see each node's 'skipped')`);
  return { firstJump, firstOverflow, modules: moduleTable(rows), notes };
}

/**
 * The ONNX model (bytes with its weights inline) with `tensors` added as graph outputs, for a reference that must
 * give every compared node's tensor. Returns the new bytes and the tensors added (those not already outputs).
 */
export function exposeTensors(bytes: Uint8Array, tensors: Iterable<string>, file: string): { bytes: Uint8Array; added: string[] } {
  const proto = decodeModel(bytes, file);
  const existing = new Set(proto.graph!.output.map((o) => o.name));
  const added = [...new Set(tensors)].filter((t) => !existing.has(t));
  proto.graph!.output = [...proto.graph!.output, ...added.map((name) => ({ name, metadata_props: [] }))];
  return { bytes: ModelProtoType.encode(proto).finish(), added };
}

/** The first fp16 overflow and the first error jump as error diagnostics naming the node, at `file` (the ONNX model). */
export function perNodeDiagnostics(report: Pick<PerNodeReport, 'firstJump' | 'firstOverflow' | 'batch'>, file: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const p of [report.firstOverflow, report.firstJump]) {
    if (!p) continue;
    out.push({
      code: p.kind === 'fp16-overflow' ? 'verify.fp16-overflow' : 'verify.error-jump',
      severity: 'error',
      message:
        `${p.kind === 'fp16-overflow' ? 'first fp16 overflow' : 'first error jump'} at node ${p.id} (${p.op} '${p.name}'` +
        `${p.scope.length ? ` in ${p.scope.join('/')}` : ''}, batch ${report.batch}): ${p.message}; ONNX nodes ${p.sourceNodes.join(', ')}`,
      location: {
        file,
        nodeId: p.id,
        ...(p.sourceNodes.length ? { onnxNode: p.sourceNodes[p.sourceNodes.length - 1] } : {}),
        ...(p.onnxTensor ? { tensor: p.onnxTensor } : {}),
      },
    });
  }
  return out;
}
