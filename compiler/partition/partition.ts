/**
 * `ait compile --partition`: a model with nodes the target cannot run, split into compiled segments (each an
 * ordinary build of its own under segments/<k>/: sources, Makefile, ait_model.py, graph.json) and fallback segments
 * (fallback/<k>.onnx, run by onnxruntime), described by partition.json and run in order by the generated
 * ait_partitioned.py.
 *
 * The split (plan.ts) is made on the ONNX-level graph from the optimized graph's support check. Each compiled
 * segment is then cut out as an ONNX model (extract.ts) and goes through the whole compile again — optimization,
 * support check, code generation — so that what is written is exactly what an ordinary build of that segment would
 * be. Whatever that finds the target cannot run after all (a node whose inputs became run-time tensors at a border,
 * a border tensor with a dim the runtime cannot size) is moved to the fallback and the split is made again, until
 * every compiled segment generates.
 */
import * as path from 'node:path';
import { CompileOptions, optimizeImported } from '../compile';
import { CompileError, Diagnostic, error } from '../diagnostics';
import { generateCuda } from '../backends/cuda/codegen/index';
import { supportOf } from '../backends/support';
import { Graph, Node } from '../ir/graph';
import { graphToJson } from '../ir/serialize';
import { Dim, dimToString, isConcrete } from '../ir/symbolic';
import { plainSymbol } from '../backends/cuda/codegen/context';
import { ImportedModel, importOnnxBytes, importOnnxFile } from '../onnx/import';
import { ModelProtoType, type ModelProto } from '../onnx/schema';
import { inferShapes } from '../passes/shape-inference';
import { extractSegment } from './extract';
import { NodeClass, PlannedSegment, planSegments, readsOf } from './plan';

export const PARTITION_FORMAT = 'ait-partition';
/** Rounds of moving nodes to the fallback before giving up (each round moves at least one node). */
const MAX_ROUNDS = 32;
/** A compiled segment with less than this share of the model's FLOPs joins the fallback (never the largest one). */
const TINY_SEGMENT_SHARE = 0.01;

export interface PartitionTensor {
  name: string;
  dtype: string | null;
  /** Dims as numbers or symbol expressions (strings). */
  shape: (number | string)[] | null;
}

export interface PartitionSegmentJson {
  index: number;
  kind: 'compiled' | 'fallback';
  inputs: PartitionTensor[];
  outputs: PartitionTensor[];
  /** ONNX nodes the segment computes (names as in graph.json `sourceNodes`). */
  nodes: string[];
  /** Shape-arithmetic ONNX nodes it recomputes from its inputs (also present in other segments). */
  recomputed: string[];
  /** compiled: the build directory (relative); fallback: the ONNX model (relative). */
  files: { dir?: string; library?: string; onnx?: string };
  /** Fallback models: graph inputs that are weights the original model leaves absent (fed by the runner). */
  absentWeights?: string[];
  /** Nodes of the whole model's optimized graph (graph.json ids) that fall in this segment, and their FLOPs. */
  graphNodes: string[];
  flops: number;
  /** Why a fallback segment's nodes cannot run on the target (first reasons, by op). */
  reasons?: string[];
}

export interface PartitionJson {
  format: typeof PARTITION_FORMAT;
  version: 1;
  model: string;
  target: string;
  /** Rounds the split took (see the module comment). */
  rounds: number;
  inputs: string[];
  outputs: string[];
  segments: PartitionSegmentJson[];
  /** Share of the model's FLOPs (whole optimized graph, at the compile's batch) in fallback segments. */
  fallbackFlopShare: number;
}

export interface PartitionResult {
  partition: PartitionJson;
  /** Relative path → contents, for the build directory. */
  files: Map<string, string | Uint8Array>;
  diagnostics: Diagnostic[];
  /** Segments in execution order, with their extracted ONNX models (tests run them). */
  segments: { plan: PlannedSegment; model: ModelProto; graph?: Graph }[];
}

export interface Context {
  file: string;
  modelName: string;
  target: string;
  options: CompileOptions;
}

/**
 * Partitions `file` for `target`. `fused`: the whole model's optimized graph with `status` set on every node
 * (compile.ts); its nodes get `segment`.
 */
export function partitionModel(file: string, fused: Graph, modelName: string, target: string, options: CompileOptions): PartitionResult {
  const ctx: Context = { file, modelName, target, options };
  const importOptions = { dimBounds: options.dimBounds, defaultDimBounds: options.defaultDimBounds };
  const onnx = importOnnxFile(file, importOptions);
  const protoIndex = new Map<Node, number>(onnx.graph.nodes.map((n, i) => [n, i]));
  const inference = inferShapes(onnx.graph);
  const inferErrors = inference.diagnostics.filter((d) => d.severity === 'error');
  if (inferErrors.length) throw new CompileError(inferErrors);
  const graph = onnx.graph;

  const fallbackNames = new Set<string>();
  const compiledNames = new Set<string>();
  const reasons = new Map<string, string>();
  for (const n of fused.nodes) {
    if (n.status && !n.status.supported) {
      for (const s of n.sourceNodes) {
        fallbackNames.add(s);
        reasons.set(s, `${n.op}: ${n.status.reason ?? 'not supported'}`);
      }
    } else if (n.role === 'kernel') for (const s of n.sourceNodes) compiledNames.add(s);
  }
  const weightOnly = weightOnlyNodes(graph);
  // A build computes its sizes from the batch, from its input dims (codegen/context.ts inputDims: a plain, bounded
  // symbol of one of its inputs' shapes besides the batch, a text model's seq, set by the runtime from the input
  // shapes) and from run-time dims that its own nodes decide (a NonZero's count): a node whose tensors have a dim
  // decided elsewhere (by a node in the fallback, or by nothing the build can run: an unbounded input dim) runs in the
  // fallback. Repeated until nothing moves. Whether a compiled segment's own inputs carry the input dims its nodes use
  // is known only once the split is made: uncarriedInputDims, each round.
  const batchSymbol = graph.symbols.all().find((s) => s.origin.includes('model input'))?.name;
  const inputSymbols = modelInputDims(graph, batchSymbol);
  const nodeNames = new Set(graph.nodes.map((n) => n.name));
  const computable = (symbol: string, seen = new Set<string>()): boolean => {
    if (symbol === batchSymbol || inputSymbols.has(symbol)) return true;
    const definition = graph.symbols.get(symbol)?.definition;
    if (!definition || seen.has(symbol)) return false;
    seen.add(symbol);
    if (definition.kind === 'runtime') return nodeNames.has(definition.node) && !fallbackNames.has(definition.node);
    return definition.args.every((a) => typeof a === 'number' || a.symbols.every((x) => computable(x, seen)));
  };
  const decidedElsewhere = (t: string) =>
    (graph.lookupTensor(t)?.shape ?? []).some((d) => typeof d !== 'number' && d.symbols.some((x) => !computable(x)));
  for (let moved = true; moved;) {
    moved = false;
    for (const n of graph.nodes)
      if (!fallbackNames.has(n.name) && !weightOnly.has(n) && [...n.inputs, ...n.outputs].some((t) => t && decidedElsewhere(t))) {
        fallbackNames.add(n.name);
        reasons.set(n.name, `${n.op}: a dim depends on data that the compiled code does not compute (it is decided in the fallback)`);
        moved = true;
      }
  }
  const forced = new Set<string>();
  const classOf = (n: Node): NodeClass => {
    if (fallbackNames.has(n.name) || forced.has(n.name)) return 'fallback';
    if (weightOnly.has(n)) return 'shape';
    if (compiledNames.has(n.name)) return 'compiled';
    if (computesValues(graph, n)) return 'shape';
    return 'flexible';
  };

  const diagnostics: Diagnostic[] = [];
  const cache = new Map<string, ReturnType<typeof compileSegment>>();
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const plan = planSegments(graph, classOf);
    const before = forced.size;
    for (const seg of plan)
      if (seg.kind === 'compiled') {
        batchFirst(graph, seg, batchSymbol);
        for (const [name, reason] of uncarriedInputDims(graph, seg, inputSymbols, batchSymbol, weightOnly)) {
          forced.add(name);
          reasons.set(name, reason);
        }
      }
    if (forced.size > before) continue;
    const compiled = new Map<number, CompiledSegment>();
    for (const seg of plan.filter((s) => s.kind === 'compiled')) {
      const key = JSON.stringify([seg.index, seg.nodes.map((n) => n.name), seg.inputs, seg.outputs]);
      const result = cache.get(key) ?? compileSegment(ctx, onnx, graph, protoIndex, seg);
      cache.set(key, result);
      if ('moveToFallback' in result) {
        for (const [name, reason] of result.moveToFallback) {
          forced.add(name);
          reasons.set(name, reason);
        }
      } else compiled.set(seg.index, result);
    }
    if (forced.size > before) continue;
    // A compiled segment that does next to nothing (image normalization before an unsupported Pad, an index
    // addition between two fallback ops) costs two crossings for little: it joins the fallback.
    const flops = flopsBySegment(plan, fused);
    const total = flops.reduce((a, b) => a + b, 0);
    const largest = Math.max(...plan.filter((p) => p.kind === 'compiled').map((p) => flops[p.index]));
    for (const p of plan)
      if (p.kind === 'compiled' && flops[p.index] < TINY_SEGMENT_SHARE * total && flops[p.index] < largest)
        for (const n of p.owned) {
          forced.add(n.name);
          reasons.set(
            n.name,
            `${n.op}: in a compiled segment with under ${100 * TINY_SEGMENT_SHARE}% of the model's FLOPs (not worth two crossings)`,
          );
        }
    if (forced.size > before) continue;
    return finish(ctx, onnx, graph, protoIndex, fused, plan, compiled, reasons, round, diagnostics);
  }
  throw new CompileError(
    error('partition.rounds', `the partition did not settle in ${MAX_ROUNDS} rounds (nodes kept moving to the fallback)`, { file }),
  );
}

/**
 * Nodes computed from weights and constants only (the TorchScript exporter's Identity aliases of weights, weight
 * transposes): recomputed by every segment that reads them, never a border tensor.
 */
export function weightOnlyNodes(graph: Graph): Set<Node> {
  const fromWeights = new Set<string>([...graph.tensors.values()].filter((t) => t.kind === 'param' || t.value).map((t) => t.name));
  const weightOnly = new Set<Node>();
  for (const n of graph.nodes) {
    const reads = readsOf(n);
    if (reads.every((t) => fromWeights.has(t))) {
      weightOnly.add(n);
      for (const o of n.outputs) if (o) fromWeights.add(o);
    }
  }
  return weightOnly;
}

/**
 * The model's input dims besides the batch: plain symbols of its inputs' shapes with a finite max and no definition
 * (a text model's seq). A build whose own inputs carry one sets it at run time from their shapes (codegen/context.ts).
 */
export function modelInputDims(graph: Graph, batchSymbol: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const input of graph.inputs)
    for (const d of graph.lookupTensor(input)?.shape ?? []) {
      const s = plainSymbol(d);
      const info = s === undefined ? undefined : graph.symbols.get(s);
      if (s !== undefined && s !== batchSymbol && info && !info.definition && Number.isFinite(info.max)) out.add(s);
    }
  return out;
}

/** The input dims (of `inputDims`) a dim is computed from: its own symbols, and those their definitions use. */
function inputDimsOf(graph: Graph, d: Dim, inputDims: Set<string>, out = new Set<string>(), seen = new Set<string>()): Set<string> {
  if (isConcrete(d)) return out;
  for (const s of d.symbols) {
    if (seen.has(s)) continue;
    seen.add(s);
    if (inputDims.has(s)) out.add(s);
    const definition = graph.symbols.get(s)?.definition;
    if (definition && definition.kind !== 'runtime') for (const a of definition.args) inputDimsOf(graph, a, inputDims, out, seen);
  }
  return out;
}

/** The first symbol of a shape's first symbolic dim when that dim has one symbol: a build's batch (codegen/context.ts). */
function leadingSymbol(graph: Graph, tensor: string): string | undefined {
  const symbolic = graph.lookupTensor(tensor)?.shape?.find((d) => !isConcrete(d));
  return symbolic !== undefined && !isConcrete(symbolic) && symbolic.symbols.length === 1 ? symbolic.symbols[0] : undefined;
}

/**
 * Puts first a compiled segment's input whose first symbolic dim is the model's batch: the segment's build takes the
 * first such dim of its first input for its batch, and a segment that reads a [seq, seq] mask before the hidden states
 * would otherwise take seq (the runner and ait_model.py pass inputs by name, so the order is the build's own).
 */
function batchFirst(graph: Graph, seg: PlannedSegment, batchSymbol: string | undefined): void {
  const first = seg.inputs.findIndex((t) => leadingSymbol(graph, t) !== undefined);
  const withBatch = seg.inputs.findIndex((t) => leadingSymbol(graph, t) === batchSymbol);
  if (batchSymbol !== undefined && first >= 0 && withBatch > first) seg.inputs.unshift(...seg.inputs.splice(withBatch, 1));
}

/**
 * Nodes of a compiled segment (with the reason) that use an input dim its build cannot set. The build sets an input
 * dim from the shape of one of its own inputs (the border tensors it reads), so the symbol must be a plain dim of one
 * of them: a segment that reads only, say, [batch, 16*seq] (a Flatten in the fallback before it) cannot recover seq.
 * Such nodes run in the fallback, as before input dims. Passing the value across the border instead would take a
 * border tensor that carries no data (its shape only) for the extracted model, the runner and the build: not worth it
 * for a split that keeps a plain seq on almost every border (hidden states, masks). Also: the first symbolic dim of
 * a segment's first input is its build's batch (codegen/context.ts batchSymbol), sized at --max-batch: batchFirst puts
 * an input starting with the model's batch first; where none does, an input dim there would be taken for the batch,
 * so the nodes that use it run in the fallback too.
 */
export function uncarriedInputDims(
  graph: Graph,
  seg: PlannedSegment,
  inputDims: Set<string>,
  batchSymbol: string | undefined,
  weightOnly: Set<Node>,
): Map<string, string> {
  const moved = new Map<string, string>();
  if (inputDims.size === 0) return moved;
  const carried = new Set<string>();
  const batchInput = seg.inputs.find((t) => leadingSymbol(graph, t) !== undefined);
  const segmentBatch = batchInput === undefined ? undefined : leadingSymbol(graph, batchInput);
  for (const t of seg.inputs) {
    for (const d of graph.lookupTensor(t)?.shape ?? []) {
      const s = plainSymbol(d);
      if (s !== undefined) carried.add(s);
    }
  }
  for (const n of seg.owned) {
    if (weightOnly.has(n)) continue;
    for (const t of [...n.inputs, ...n.outputs]) {
      if (!t || moved.has(n.name)) continue;
      for (const d of graph.lookupTensor(t)?.shape ?? [])
        for (const s of inputDimsOf(graph, d, inputDims)) {
          if (moved.has(n.name)) break;
          if (!carried.has(s))
            moved.set(
              n.name,
              `${n.op}: no input of its compiled segment (${listed(seg.inputs)}) has the model's input dim '${s}' ` +
                `as a dim of its own, and the segment's build reads its input dims from its inputs' shapes`,
            );
          else if (s === segmentBatch)
            moved.set(
              n.name,
              `${n.op}: the model's input dim '${s}' would be the batch of its compiled segment (the first symbolic dim of ` +
                `its input '${batchInput}', no input of the segment starting with the model's batch '${batchSymbol}'): sized at the ` +
                `maximum batch rather than at its own bound`,
            );
        }
    }
  }
  return moved;
}

/** Names for a message: the first four, then how many more. */
function listed(names: string[]): string {
  if (names.length === 0) return 'none';
  return names.length <= 4 ? names.join(', ') : `${names.slice(0, 4).join(', ')} and ${names.length - 4} more`;
}

/** Whether every output of `n` is a compile-time value or shape arithmetic (a shape node of plan.ts). */
export function computesValues(graph: Graph, n: Node): boolean {
  const outs = n.outputs.filter((o) => o);
  return outs.length > 0 && outs.every((o) => graph.tensors.get(o)?.value || graph.tensors.get(o)?.shapeValue);
}

export interface CompiledSegment {
  model: ModelProto;
  graph: Graph;
  files: Map<string, string | Uint8Array>;
  diagnostics: Diagnostic[];
}

/**
 * Compiles one segment as a model of its own (library lib<modelName>.so); or the ONNX nodes (with reasons) it found
 * the target cannot run.
 */
export function compileSegment(
  ctx: Context,
  onnx: ImportedModel,
  graph: Graph,
  protoIndex: Map<Node, number>,
  seg: PlannedSegment,
  modelName = segmentModelName(ctx.modelName, seg.index),
): CompiledSegment | { moveToFallback: Map<string, string> } {
  const { model } = extractSegment(onnx.proto, graph, protoIndex, seg, 'keep');
  const bytes = ModelProtoType.encode(model).finish();
  const dimBounds = { ...(ctx.options.dimBounds ?? {}), ...boundsOf(graph, [...seg.inputs, ...seg.outputs]) };
  const importOptions = { ...ctx.options, dimBounds, baseDir: path.dirname(path.resolve(ctx.file)) };
  const owned = new Set(seg.owned.map((n) => n.name));
  const move = new Map<string, string>();
  const moveNode = (sourceNodes: string[], reason: string) => {
    for (const s of sourceNodes) if (owned.has(s)) move.set(s, reason);
  };
  let optimized;
  try {
    optimized = optimizeImported(importOnnxBytes(bytes, importOptions, ctx.file), ctx.file, {
      ...importOptions,
      dumpAfter: undefined,
      log: undefined,
    });
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    for (const d of e.diagnostics) if (d.location?.onnxNode) moveNode([d.location.onnxNode], d.message);
    if (move.size === 0) for (const n of seg.owned) move.set(n.name, e.message);
    return { moveToFallback: move };
  }
  const segGraph = optimized.graph;
  const errors = optimized.context.diagnostics.filter((d) => d.severity === 'error');
  for (const d of errors) if (d.location?.onnxNode) moveNode([d.location.onnxNode], d.message);
  for (const node of segGraph.nodes) {
    node.status = supportOf(segGraph, node, ctx.target);
    if (!node.status.supported) moveNode(node.sourceNodes, `${node.op}: ${node.status.reason}`);
  }
  if (move.size === 0 && errors.length === 0) {
    let generated: ReturnType<typeof generateCuda> | undefined;
    let genErrors: Diagnostic[];
    try {
      generated = generateCuda(segGraph, {
        target: ctx.target,
        modelName,
        maxBatch: ctx.options.maxBatch,
      });
      genErrors = generated.diagnostics.filter((d) => d.severity === 'error');
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
      genErrors = e.diagnostics;
    }
    if (generated && genErrors.length === 0)
      return { model, graph: segGraph, files: generated.files, diagnostics: [...optimized.context.diagnostics, ...generated.diagnostics] };
    const producers = segGraph.producers();
    const consumers = segGraph.consumers();
    for (const d of genErrors) {
      const node = d.location?.nodeId ? segGraph.nodes.find((n) => n.id === d.location?.nodeId) : undefined;
      if (node) moveNode(node.sourceNodes, d.message);
      else if (d.location?.onnxNode) moveNode([d.location.onnxNode], d.message);
      else if (d.location?.tensor) {
        // a border tensor the runtime cannot hold: the nodes on this side of it go to the fallback
        const p = producers.get(d.location?.tensor);
        if (p) moveNode(p.sourceNodes, d.message);
        for (const c of consumers.get(d.location?.tensor) ?? []) moveNode(c.sourceNodes, d.message);
      }
    }
  }
  if (move.size === 0) for (const n of seg.owned) move.set(n.name, errors[0]?.message ?? 'the segment does not compile');
  return { moveToFallback: move };
}

/** FLOPs of the whole model's optimized graph by segment (a node goes where its ONNX nodes went). */
function flopsBySegment(plan: PlannedSegment[], fused: Graph): number[] {
  const segmentOfOnnx = new Map<string, number>();
  for (const s of plan) for (const n of s.owned) segmentOfOnnx.set(n.name, s.index);
  const flops = plan.map(() => 0);
  for (const n of fused.nodes) {
    const k = n.sourceNodes.map((x) => segmentOfOnnx.get(x)).find((x) => x !== undefined);
    if (k !== undefined) flops[k] += n.cost?.flops ?? 0;
  }
  return flops;
}

export function segmentModelName(modelName: string, index: number): string {
  return `${modelName}_segment${index}`;
}

/** dimBounds for the symbols in the given tensors' shapes (an expression dim: its own bounds). */
export function boundsOf(graph: Graph, tensors: string[]): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const t of tensors)
    for (const d of graph.lookupTensor(t)?.shape ?? []) {
      if (typeof d === 'number') continue;
      const { min, max } = graph.symbols.bounds(d);
      out[dimToString(d)] = [min, Number.isFinite(max) ? max : 2 ** 31];
    }
  return out;
}

export function tensorJson(graph: Graph, name: string): PartitionTensor {
  const t = graph.lookupTensor(name);
  return {
    name,
    dtype: t?.dtype ?? null,
    shape: t?.shape ? t.shape.map((d: Dim) => (typeof d === 'number' ? d : dimToString(d))) : null,
  };
}

function finish(
  ctx: Context,
  onnx: ImportedModel,
  graph: Graph,
  protoIndex: Map<Node, number>,
  fused: Graph,
  plan: PlannedSegment[],
  compiled: Map<number, CompiledSegment>,
  reasons: Map<string, string>,
  rounds: number,
  diagnostics: Diagnostic[],
): PartitionResult {
  const files = new Map<string, string | Uint8Array>();
  const segments: PartitionResult['segments'] = [];
  const segmentOfOnnx = new Map<string, number>();
  for (const s of plan) for (const n of s.owned) segmentOfOnnx.set(n.name, s.index);
  // The whole model's graph nodes: the segment of their ONNX nodes (a fallback one wins when they are split).
  const graphNodes = new Map<number, Node[]>(plan.map((s) => [s.index, []]));
  for (const n of fused.nodes) {
    const segs = n.sourceNodes.map((s) => segmentOfOnnx.get(s)).filter((k): k is number => k !== undefined);
    if (segs.length === 0) continue;
    n.segment = segs.find((k) => plan[k].kind === 'fallback') ?? segs[segs.length - 1];
    graphNodes.get(n.segment)!.push(n);
  }
  // Nodes the optimizer inserted (layout transposes: no ONNX node of their own) run beside what they feed or read.
  const producers = fused.producers();
  const consumers = fused.consumers();
  for (const n of fused.nodes) {
    if (n.segment !== undefined || n.sourceNodes.length > 0) continue;
    const near = [
      ...n.outputs.flatMap((o) => consumers.get(o) ?? []),
      ...n.inputs.map((i) => producers.get(i)).filter((p): p is Node => !!p),
    ].find((m) => m.segment !== undefined);
    if (near) {
      n.segment = near.segment;
      graphNodes.get(n.segment!)!.push(n);
    }
  }
  let totalFlops = 0;
  let fallbackFlops = 0;
  const json: PartitionSegmentJson[] = [];
  for (const s of plan) {
    const nodes = graphNodes.get(s.index)!;
    const flops = nodes.reduce((a, n) => a + (n.cost?.flops ?? 0), 0);
    totalFlops += flops;
    const base = {
      index: s.index,
      kind: s.kind,
      inputs: s.inputs.map((t) => tensorJson(graph, t)),
      outputs: s.outputs.map((t) => tensorJson(graph, t)),
      nodes: s.owned.map((n) => n.name),
      recomputed: s.nodes.filter((n) => !s.owned.includes(n)).map((n) => n.name),
      graphNodes: nodes.map((n) => n.id),
      flops,
    };
    if (s.kind === 'compiled') {
      const c = compiled.get(s.index)!;
      const dir = `segments/${s.index}`;
      for (const [rel, contents] of c.files) files.set(`${dir}/${rel}`, contents);
      const segJson = graphToJson(c.graph, {
        modelName: segmentModelName(ctx.modelName, s.index),
        info: onnx.info,
        sections: { target: ctx.target, segment: s.index },
      });
      files.set(`${dir}/graph.json`, JSON.stringify(segJson));
      diagnostics.push(...c.diagnostics.filter((d) => d.severity !== 'error'));
      json.push({ ...base, files: { dir, library: `${dir}/lib${segmentModelName(ctx.modelName, s.index)}.so` } });
      segments.push({ plan: s, model: c.model, graph: c.graph });
    } else {
      fallbackFlops += flops;
      const { model, absentWeights } = extractSegment(onnx.proto, graph, protoIndex, s, 'inline');
      const onnxFile = `fallback/${s.index}.onnx`;
      files.set(onnxFile, ModelProtoType.encode(model).finish());
      const why = [...new Set(s.owned.map((n) => reasons.get(n.name)).filter((r): r is string => !!r))].slice(0, 8);
      json.push({ ...base, files: { onnx: onnxFile }, ...(absentWeights.length ? { absentWeights } : {}), reasons: why });
      segments.push({ plan: s, model });
    }
  }
  const partition: PartitionJson = {
    format: PARTITION_FORMAT,
    version: 1,
    model: ctx.modelName,
    target: ctx.target,
    rounds,
    inputs: graph.inputs,
    outputs: graph.outputs,
    segments: json,
    fallbackFlopShare: totalFlops > 0 ? fallbackFlops / totalFlops : 0,
  };
  files.set('partition.json', JSON.stringify(partition, null, 2) + '\n');
  return { partition, files, diagnostics, segments };
}
