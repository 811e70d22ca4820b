/**
 * The CUDA code generator: a fused graph → the sources of one shared library (see compiler/backends/cuda/README.md).
 *
 *   src/model.cu         launch functions in graph order + the model description (model-source.ts)
 *   src/gemm_<k>.cu      one CUTLASS GEMM instance each (deduplicated), src/ait_gemm.h their declarations
 *   src/conv_<k>.cu      one CUTLASS conv instance each (deduplicated), src/ait_conv.h their declarations
 *   src/runtime/, src/kernels/   the runtime and our kernel templates, copied
 *   Makefile, ait_bench.cu, ait_model.py, weights.safetensors (build-files.ts, weights.ts)
 *
 * Every kernel node gets `kernel` {library, name, config, reason, source {file, line}} for graph.json. A node that
 * cannot be lowered becomes a `cuda.unsupported` diagnostic at that node; the caller then writes no sources.
 */
import { Diagnostic, error } from '../../../diagnostics';
import { Graph } from '../../../ir/graph';
import { isConcrete } from '../../../ir/symbolic';
import { planMemory } from '../../../passes/memory-plan';
import { encodeSafetensors } from '../weights';
import { benchSource, makefile, pythonModule } from './build-files';
import { MAX_BATCH } from './batch-ranges';
import { absorbedTransposes, graphForMemoryPlan } from './batched-gemm';
import { CodegenContext, Unsupported, isFolded } from './context';
import { ConvLowering, convHeader, convInstanceSource } from './conv-lowering';
import { CudaArch, GemmLowering, gemmHeader, gemmInstanceSource } from './gemm-lowering';
import { LoweredOp, Lowering } from './lower';
import { modelSource } from './model-source';
import { cudaSourceFiles } from './sources';
import { profilerFiles } from '../profiling/profiler-sources';
import { KernelProfiling, MeasurementSource, ProfiledOp } from '../profiling/selection';

/** Whether every profiled batch of the signature has a measurement (of any status) of every candidate. */
function isMeasured(op: ProfiledOp, source: MeasurementSource | undefined): boolean {
  if (!source) return false;
  const have = new Set(source.lookup(op.signature).map((m) => `${m.candidate}\u0000${m.batch}`));
  return op.batches.every((b) => op.candidates.every((c) => have.has(`${c.instance.name}\u0000${b}`)));
}

export interface CudaCodegenOptions {
  target: string;
  modelName: string;
  /** Largest batch the build serves (default: the batch symbol's upper bound). */
  maxBatch?: number;
  /** Measured kernel choice: GEMMs and convolutions whose signature has measurements take the fastest candidate. */
  measurements?: MeasurementSource;
  /**
   * Also write the profiler (profile/, profiling/profiler-sources.ts): for every GEMM/conv signature ('all') or only
   * those the measurements lack at some profiled batch ('missing').
   */
  profileSources?: 'all' | 'missing';
}

export interface CudaCodegenResult {
  /** Relative path → contents (text or bytes). Empty when diagnostics has errors. */
  files: Map<string, string | Uint8Array>;
  diagnostics: Diagnostic[];
  summary: {
    kernels: number;
    cutlassInstances: number;
    prepareOps: number;
    weights: number;
    absentWeights: number;
    maxBatch: number;
    arenaBytes: number;
    workspaceBytes: number;
    /** GEMM/conv signatures, how many have measurements, and how many the written profiler (if any) times. */
    profiling: { signatures: number; measured: number; profiled: number; candidates: number };
  };
}

export function cudaArchOf(target: string): CudaArch | undefined {
  if (target === 'cuda:sm90' || target === 'cuda:sm90a' || target === 'cuda') return 'sm90';
  if (target === 'cuda:sm80' || target === 'cuda:sm86' || target === 'cuda:sm89') return 'sm80';
  return undefined;
}

export function generateCuda(graph: Graph, options: CudaCodegenOptions): CudaCodegenResult {
  const arch = cudaArchOf(options.target);
  const diagnostics: Diagnostic[] = [];
  const files = new Map<string, string | Uint8Array>();
  if (!arch) {
    diagnostics.push(error('cuda.target', `target '${options.target}' is not a CUDA target this generator knows (cuda:sm90, cuda:sm80)`));
    return { files, diagnostics, summary: emptySummary() };
  }
  const batchInfo = graph.symbols.all().find((s) => s.origin.includes('model input'));
  const maxBatch = options.maxBatch ?? batchInfo?.max ?? 1;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH) {
    const given = options.maxBatch !== undefined ? 'max batch' : `the upper bound of batch dim '${batchInfo?.name}'`;
    diagnostics.push(error('cuda.max-batch', `${given} is ${maxBatch}: a build serves batch 1 to ${MAX_BATCH}`));
    return { files, diagnostics, summary: emptySummary() };
  }
  const absorbed = absorbedTransposes(graph);
  const plan = planMemory(graphForMemoryPlan(graph, absorbed), maxBatch);
  const profiling = new KernelProfiling({ maxBatch, measurements: options.measurements, collect: true });
  const ctx = new CodegenContext(graph, plan, maxBatch, absorbed, profiling);
  for (const transpose of absorbed.values()) {
    transpose.role = 'view';
    transpose.status = { supported: true, reason: 'read in place by the batched GEMM(s) that consume it (column-major B)' };
  }
  const gemm = new GemmLowering(ctx, arch);
  const conv = new ConvLowering(ctx, arch, gemm);
  const lowering = new Lowering(ctx, gemm, conv);
  const ops: LoweredOp[] = [];
  for (const node of graph.nodes) {
    try {
      if (ctx.isPreparation(node)) {
        if (isFolded(graph, node)) continue;
        const lowered = lowering.lower(node);
        gemm.prepareOps.push({
          id: node.id,
          name: `${node.op} ${node.name}`,
          kernel: lowered.kernel.name,
          body: lowered.body,
          headers: lowered.headers,
        });
        continue;
      }
      if (ctx.isFree(node)) continue;
      ops.push(lowering.lower(node));
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      const message = `${node.op} node '${node.name}' cannot be compiled for ${options.target}: ${e.reason}`;
      node.status = { supported: false, reason: e.reason };
      diagnostics.push(error('cuda.unsupported', message, { onnxNode: node.sourceNodes[0] ?? node.name, nodeId: node.id }));
    }
  }
  // inputs and outputs need a GPU storage type and fixed-size batch-major storage
  for (const name of [...graph.inputs, ...graph.outputs]) {
    const role = graph.inputs.includes(name) ? 'input' : 'output';
    const t = graph.lookupTensor(name);
    if (!t?.shape || !t.dtype) {
      diagnostics.push(
        error('cuda.unsupported', `model ${role} '${name}' has no inferred ${t?.shape ? 'type' : 'shape'}`, { tensor: name }),
      );
      continue;
    }
    try {
      ctx.typeOf(name);
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      diagnostics.push(error('cuda.unsupported', `model ${role} '${name}': ${e.reason}`, { tensor: name }));
      continue;
    }
    const shape = t.shape;
    if (shape.filter((d) => !isConcrete(d)).length > 1 || shape.slice(1).some((d) => !isConcrete(d)))
      diagnostics.push(error('cuda.unsupported', `model ${role} '${name}' has dynamic dims other than a leading batch`, { tensor: name }));
  }
  const workspaceBytes = Math.max(0, ...ops.map((o) => o.workspaceBytes));
  const signatures = [...profiling.ops.values()];
  const measured = signatures.filter((op) => isMeasured(op, options.measurements));
  const toProfile = options.profileSources === 'all' ? signatures : signatures.filter((op) => !measured.includes(op));
  const summary = {
    kernels: ops.length,
    cutlassInstances: gemm.instances.length + conv.instances.length,
    prepareOps: gemm.prepareOps.length,
    weights: ctx.weights.length,
    absentWeights: ctx.weights.filter((w) => !w.value && w.origin === 'bound').length,
    maxBatch,
    arenaBytes: plan.arenaBytes,
    workspaceBytes,
    profiling: {
      signatures: signatures.length,
      measured: measured.length,
      profiled: options.profileSources ? toProfile.length : 0,
      candidates: options.profileSources ? toProfile.reduce((n, op) => n + op.candidates.length, 0) : 0,
    },
  };
  if (diagnostics.some((d) => d.severity === 'error')) return { files, diagnostics, summary };

  const model = modelSource(ctx, options.modelName, ops, gemm.prepareOps, plan.arenaBytes, workspaceBytes);
  files.set('src/model.cu', model.text);
  files.set('src/ait_gemm.h', gemmHeader(gemm.instances));
  for (const instance of gemm.instances) files.set(instance.file, gemmInstanceSource(instance));
  files.set('src/ait_conv.h', convHeader(conv.instances));
  for (const instance of conv.instances) files.set(instance.file, convInstanceSource(instance));
  for (const op of ops) op.node.kernel = { ...op.kernel, source: { file: 'src/model.cu', line: model.lines.get(op.node.id) ?? 1 } };

  for (const [file, text] of cudaSourceFiles())
    if (file.startsWith('runtime/') || file.startsWith('kernels/')) files.set(`src/${file}`, text);
  files.set(
    'Makefile',
    makefile(
      options.modelName,
      arch,
      [...gemm.instances, ...conv.instances].map((i) => i.file),
    ),
  );
  files.set('src/ait_bench.cu', benchSource());
  if (options.profileSources) for (const [file, text] of profilerFiles(toProfile, arch)) files.set(file, text);
  files.set('ait_model.py', pythonModule(options.modelName));
  const present = ctx.weights.filter((w) => w.value);
  if (present.length)
    files.set(
      'weights.safetensors',
      encodeSafetensors(
        present.map((w) => ({ name: w.name, value: { ...w.value!, shape: w.shape } })),
        { metadata: { model: options.modelName } },
      ),
    );
  return { files, diagnostics, summary };
}

function emptySummary(): CudaCodegenResult['summary'] {
  return {
    kernels: 0,
    cutlassInstances: 0,
    prepareOps: 0,
    weights: 0,
    absentWeights: 0,
    maxBatch: 0,
    arenaBytes: 0,
    workspaceBytes: 0,
    profiling: { signatures: 0, measured: 0, profiled: 0, candidates: 0 },
  };
}
