/** The pass interface and the pass manager: runs passes in order, times them, validates and dumps the graph. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, Diagnostic, error } from '../diagnostics';
import { Graph, subgraphsOf } from '../ir/graph';
import { bodyToJson } from '../ir/serialize';

export interface RemovedNode {
  onnxNode: string;
  reason: string;
}

export interface PassContext {
  diagnostics: Diagnostic[];
  /** ONNX nodes that left the graph (folded, no-op), with the reason. */
  removed: RemovedNode[];
  /** The batch size used for cost annotations and the memory report. */
  batch: number;
  /** Tensors or nodes the user wants stored in fp32 (`--fp32`, passes/storage-precision.ts). */
  fp32?: string[];
  /** Free-form facts passes report (e.g. arena bytes), shown by the CLI and written to graph.json. */
  reports: Record<string, unknown>;
}

export interface Pass {
  name: string;
  description: string;
  run(graph: Graph, ctx: PassContext): void;
}

export interface PassTiming {
  name: string;
  ms: number;
  nodesBefore: number;
  nodesAfter: number;
}

export interface PipelineOptions {
  /** Validate the graph after every pass (always on in tests). */
  validate?: boolean;
  /** Pass names (or 'all') after which the graph is written to `dumpDir/dump-<nn>-<pass>.json`. */
  dumpAfter?: string[];
  dumpDir?: string;
  onPass?: (timing: PassTiming) => void;
  signal?: AbortSignal;
}

export function runPasses(graph: Graph, passes: Pass[], ctx: PassContext, options: PipelineOptions = {}): PassTiming[] {
  const known = new Set(passes.map((p) => p.name));
  for (const d of options.dumpAfter ?? [])
    if (d !== 'all' && !known.has(d))
      throw new CompileError(error('pipeline.unknown-pass', `--dump-after ${d}: no such pass; the passes are ${[...known].join(', ')}`));
  const timings: PassTiming[] = [];
  passes.forEach((pass, index) => {
    if (options.signal?.aborted) throw new CompileError(error('compile.cancelled', 'the compile was cancelled'));
    const nodesBefore = graph.nodes.length;
    const t0 = performance.now();
    pass.run(graph, ctx);
    const timing = { name: pass.name, ms: performance.now() - t0, nodesBefore, nodesAfter: graph.nodes.length };
    timings.push(timing);
    options.onPass?.(timing);
    if (options.validate) {
      const problems = validateGraph(graph);
      if (problems.length)
        throw new CompileError(problems.map((p) => error('pipeline.invalid-graph', `after pass '${pass.name}': ${p.message}`, p.location)));
    }
    const dump = options.dumpAfter ?? [];
    if (options.dumpDir && (dump.includes('all') || dump.includes(pass.name))) {
      fs.mkdirSync(options.dumpDir, { recursive: true });
      const file = path.join(options.dumpDir, `dump-${String(index).padStart(2, '0')}-${pass.name}.json`);
      fs.writeFileSync(file, JSON.stringify({ pass: pass.name, ...bodyToJson(graph) }));
    }
  });
  return timings;
}

/**
 * Structural checks: every read tensor is defined, nodes are in topological order, tensor names are produced once,
 * and every tensor that a node writes has a known type and shape.
 */
export function validateGraph(graph: Graph): Diagnostic[] {
  const problems: Diagnostic[] = [];
  const defined = new Set<string>(graph.inputs);
  for (const [name, t] of graph.tensors) if (t.kind === 'param' || t.kind === 'constant' || t.value) defined.add(name);
  const outerDefined = (name: string) => !graph.tensors.has(name) && graph.parent?.lookupTensor(name) !== undefined;
  const produced = new Set<string>();
  const read = new Set<string>([
    ...graph.outputs,
    ...graph.nodes.flatMap((n) => [...n.inputs, ...subgraphsOf(n).flatMap((g) => [...g.outerReads()])]),
  ]);
  for (const n of graph.nodes) {
    for (const i of n.inputs)
      if (i && !defined.has(i) && !outerDefined(i))
        problems.push(
          error('graph.dangling-input', `node '${n.name}' (${n.op}) reads '${i}' before anything defines it`, {
            onnxNode: n.name,
            nodeId: n.id,
            tensor: i,
          }),
        );
    for (const o of n.outputs) {
      if (!o) continue;
      if (produced.has(o)) problems.push(error('graph.duplicate-name', `tensor '${o}' is written twice`, { onnxNode: n.name, tensor: o }));
      produced.add(o);
      defined.add(o);
      const t = graph.tensors.get(o);
      // an output nothing reads may have lost its entry (dead-code removal drops it; the kernel then skips writing it)
      if (!t && !read.has(o)) continue;
      if (!t)
        problems.push(
          error('graph.unknown-tensor', `node '${n.name}' writes '${o}', which has no tensor entry`, { onnxNode: n.name, tensor: o }),
        );
      else if (!t.shape && t.valueType !== 'sequence')
        problems.push(error('graph.unshaped', `tensor '${o}' written by '${n.name}' has no shape`, { onnxNode: n.name, tensor: o }));
    }
    for (const g of subgraphsOf(n)) void g; // bodies are validated by shape inference
  }
  for (const o of graph.outputs)
    if (!defined.has(o)) problems.push(error('graph.missing-output', `graph output '${o}' is not produced`, { tensor: o }));
  return problems;
}
