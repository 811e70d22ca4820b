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
import { Graph, Node } from '../../../ir/graph';
import { Dim, SymDim, isConcrete } from '../../../ir/symbolic';
import { planMemory } from '../../../passes/memory-plan';
import { encodeSafetensors } from '../weights';
import { benchSource, makefile, pythonModule } from './build-files';
import { MAX_BATCH } from './batch-ranges';
import { absorbedTransposes, graphForMemoryPlan } from './batched-gemm';
import { CPP_TYPE, CodegenContext, Unsupported, isFolded } from './context';
import { ConvLowering, convHeader, convInstanceSource } from './conv-lowering';
import { CudaArch, GemmLowering, gemmHeader, gemmInstanceSource } from './gemm-lowering';
import { CUDA_BACKEND, LoweredOp, Lowering } from './lower';
import type { CodegenOptions, CodegenResult, CodegenSummary } from '../../backend';
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

/**
 * Options of a CUDA build. `profileSources` also writes the profiler (profile/, profiling/profiler-sources.ts): for
 * every GEMM/conv signature ('all') or only those the measurements lack at some profiled batch ('missing').
 */
export type CudaCodegenOptions = CodegenOptions;
export type CudaCodegenResult = CodegenResult;

/**
 * What differs between the platforms the shared GPU sources build on (CUDA; HIP for the ROCm backend,
 * backends/rocm): where lowerings are looked up, the CUTLASS architecture if any, and the build files.
 */
export interface GpuPlatform {
  /** Lowerings are looked up under this backend id; its diagnostics are `<backend>.unsupported`. */
  backend: string;
  /** The CUTLASS architecture of GEMM/conv instances; a platform without it registers no CUTLASS lowerings. */
  cutlassArch?: CudaArch;
  /** Shared sources (keys of cudaSourceFiles) the build ships, and where: runtime/ and kernels/ under src/. */
  shipsSource(file: string): string | undefined;
  /** Makefile, ait_bench, and anything else the platform builds with (relative path → text). */
  buildFiles(modelName: string, instanceFiles: string[]): [string, string][];
  /** The profiler's files (profile/…) for the signatures to time, where the platform has one. */
  profiler?: (ops: readonly ProfiledOp[]) => Map<string, string>;
  /**
   * A kernel library of the platform's own, made once per compile (ROCm: Composable Kernel instances,
   * backends/rocm/ck): its lowerings reach it as `env.library`; its sources join the build.
   */
  library?: (ctx: CodegenContext) => PlatformLibrary;
}

/** The per-compile state of a platform's kernel library: the instances its lowerings chose, as sources. */
export interface PlatformLibrary {
  /** Instances generated so far (the summary counts them with the CUTLASS ones). */
  readonly instanceCount: number;
  /** Translation units the Makefile builds (paths under src/). */
  instanceFiles(): string[];
  /** Every file the library adds to the build (relative path → text): its instances and their header. */
  files(): [string, string][];
}

/** The CUDA platform of an architecture: CUTLASS instances, nvcc Makefile, the profiler. */
export function cudaPlatform(arch: CudaArch): GpuPlatform {
  return {
    backend: CUDA_BACKEND,
    cutlassArch: arch,
    shipsSource: (file) => (file.startsWith('runtime/') || file.startsWith('kernels/') ? `src/${file}` : undefined),
    buildFiles: (modelName, instanceFiles) => [
      ['Makefile', makefile(modelName, arch, instanceFiles)],
      ['src/ait_bench.cu', benchSource()],
    ],
    profiler: (ops) => profilerFiles(ops, arch),
  };
}

export function cudaArchOf(target: string): CudaArch | undefined {
  if (target === 'cuda:sm90' || target === 'cuda:sm90a' || target === 'cuda') return 'sm90';
  if (target === 'cuda:sm80' || target === 'cuda:sm86' || target === 'cuda:sm89') return 'sm80';
  return undefined;
}

export function generateCuda(graph: Graph, options: CudaCodegenOptions): CudaCodegenResult {
  const arch = cudaArchOf(options.target);
  if (!arch) {
    const message = `target '${options.target}' is not a CUDA target this generator knows (cuda:sm90, cuda:sm80)`;
    return { files: new Map(), diagnostics: [error('cuda.target', message)], summary: emptySummary() };
  }
  return generateGpu(graph, options, cudaPlatform(arch));
}

/**
 * Shape arithmetic a kernel reads (the memory plan gave its output a place): its values, computed on the host at
 * launch, written to that buffer by tensor_ops.cuh launch_write_values. Undefined when nothing needs it.
 */
function materializeShapeValues(ctx: CodegenContext, node: Node): LoweredOp | undefined {
  const body: string[] = [];
  for (const out of node.outputs) {
    const t = out ? ctx.graph.lookupTensor(out) : undefined;
    if (!t || ctx.plan.offsets[out] === undefined || t.value || !t.shapeValue) continue;
    const type = ctx.typeOf(out);
    if (type === 'uint8') throw new Unsupported(`shape arithmetic '${out}' of type ${type} read by a kernel`);
    if (t.shapeValue.length > MAX_SMALL_VALUES)
      throw new Unsupported(`shape arithmetic '${out}' has ${t.shapeValue.length} values (a kernel may read at most ${MAX_SMALL_VALUES})`);
    const cpp = CPP_TYPE[type];
    // a float of shape arithmetic (a Cast of a size): fp32 storage unless a kernel reads it as fp16
    const value = (d: string) => (type === 'half' ? `__float2half_rn(static_cast<float>(${d}))` : `static_cast<${cpp}>(${d})`);
    body.push(
      `ait::kernels::SmallValues<${cpp}> values{{${t.shapeValue.map((d) => value(ctx.dim(d, node))).join(', ')}}, ${t.shapeValue.length}};`,
      `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_write_values(${ctx.pointer(out, true)}, values, c.stream));`,
    );
  }
  if (!body.length) return undefined;
  const kernel = {
    name: 'ait_write_values',
    library: 'ait' as const,
    reason: 'shape arithmetic computed on the host, read by a kernel',
    config: {},
  };
  return { node, kernel, body, headers: ['tensor_ops.cuh'], workspaceBytes: 0 };
}

/** tensor_ops.cuh kMaxSmallValues. */
const MAX_SMALL_VALUES = 8;

/** Code generation over the shared GPU sources for one platform (CUDA, or HIP for the ROCm backend). */
export function generateGpu(graph: Graph, options: CodegenOptions, platform: GpuPlatform): CodegenResult {
  const backend = platform.backend;
  const diagnostics: Diagnostic[] = [];
  const files = new Map<string, string | Uint8Array>();
  const batchInfo = graph.symbols.all().find((s) => s.origin.includes('model input'));
  const maxBatch = options.maxBatch ?? batchInfo?.max ?? 1;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH) {
    const given = options.maxBatch !== undefined ? 'max batch' : `the upper bound of batch dim '${batchInfo?.name}'`;
    diagnostics.push(error(`${backend}.max-batch`, `${given} is ${maxBatch}: a build serves batch 1 to ${MAX_BATCH}`));
    return { files, diagnostics, summary: emptySummary() };
  }
  const absorbed = absorbedTransposes(graph);
  const plan = planMemory(graphForMemoryPlan(graph, absorbed), maxBatch);
  // candidates are enumerated only when a compile profiles or has measurements; otherwise the heuristics alone
  const profiling = new KernelProfiling({
    maxBatch,
    measurements: options.measurements,
    collect: Boolean(options.profileSources || options.measurements),
  });
  const ctx = new CodegenContext(graph, plan, maxBatch, absorbed, profiling);
  for (const transpose of absorbed.values()) {
    transpose.role = 'view';
    transpose.status = { supported: true, reason: 'read in place by the batched GEMM(s) that consume it (column-major B)' };
  }
  // Without a CUTLASS architecture no gemm/conv lowering of the platform asks these for an instance; they still
  // collect weight-preparation ops.
  const arch = platform.cutlassArch ?? 'sm80';
  const gemm = new GemmLowering(ctx, arch);
  const conv = new ConvLowering(ctx, arch, gemm);
  const library = platform.library?.(ctx);
  const lowering = new Lowering(ctx, gemm, conv, backend, library);
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
      if (ctx.isFree(node)) {
        const materialized = materializeShapeValues(ctx, node);
        if (materialized) ops.push(materialized);
        continue;
      }
      ops.push(lowering.lower(node));
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      const message = `${node.op} node '${node.name}' cannot be compiled for ${options.target}: ${e.reason}`;
      node.status = { supported: false, reason: e.reason };
      diagnostics.push(error(`${backend}.unsupported`, message, { onnxNode: node.sourceNodes[0] ?? node.name, nodeId: node.id }));
    }
  }
  // inputs and outputs need a GPU storage type and fixed-size batch-major storage
  for (const name of [...graph.inputs, ...graph.outputs]) {
    const role = graph.inputs.includes(name) ? 'input' : 'output';
    const index = graph.inputs.indexOf(name);
    const t = graph.lookupTensor(name);
    if (!t?.shape || !t.dtype) {
      diagnostics.push(
        error(`${backend}.unsupported`, `model ${role} '${name}' has no inferred ${t?.shape ? 'type' : 'shape'}`, { tensor: name }),
      );
      continue;
    }
    try {
      ctx.typeOf(name);
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      diagnostics.push(error(`${backend}.unsupported`, `model ${role} '${name}': ${e.reason}`, { tensor: name }));
      continue;
    }
    // every size one the run computes (of the batch, or a run-time dim); an input takes the batch itself on one axis
    // (any: [1, C, L] audio whose length is the batch), an output any expression of it (its output_shape case)
    const shape = t.shape;
    const batchAt = (d: Dim) => !isConcrete(d) && ctx.batchSymbol !== undefined && d.symbols.includes(ctx.batchSymbol);
    const computed = (d: Dim) =>
      isConcrete(d) || d.symbols.every((s) => s === ctx.batchSymbol || ctx.isInputSymbol(s) || graph.symbols.get(s)?.definition);
    // an input's other symbolic dims are input dims themselves (seq): the runtime sets and checks them (AITModelSetInputShape)
    const inputDim = (d: Dim, axis: number) =>
      isConcrete(d) || batchAt(d) || ctx.inputDims.some((x) => x.input === index && x.axis === axis);
    const inputForm =
      role !== 'input' ||
      (shape.filter(batchAt).length <= 1 &&
        shape.every(
          // the batch itself, or an expression of the batch alone on the leading axis
          (d, axis) => (!batchAt(d) || ctx.isBatch(d) || (axis === 0 && (d as SymDim).symbols.length === 1)) && inputDim(d, axis),
        ));
    if (shape.some((d) => !computed(d)) || !inputForm)
      diagnostics.push(
        error(
          `${backend}.unsupported`,
          `model ${role} '${name}' has dynamic dims ${role === 'input' ? 'other than the batch on one axis (or an expression of it on the leading axis) and bounded symbols of their own (seq)' : 'the run does not compute'}`,
          { tensor: name },
        ),
      );
  }
  const workspaceBytes = Math.max(0, ...ops.map((o) => o.workspaceBytes));
  const signatures = [...profiling.ops.values()];
  const measured = signatures.filter((op) => isMeasured(op, options.measurements));
  const toProfile = options.profileSources === 'all' ? signatures : signatures.filter((op) => !measured.includes(op));
  const summary = {
    kernels: ops.length,
    instances: gemm.instances.length + conv.instances.length + (library?.instanceCount ?? 0),
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
  for (const [file, text] of library?.files() ?? []) files.set(file, text);
  for (const op of ops) op.node.kernel = { ...op.kernel, source: { file: 'src/model.cu', line: model.lines.get(op.node.id) ?? 1 } };

  for (const [file, text] of cudaSourceFiles()) {
    const shipped = platform.shipsSource(file);
    if (shipped) files.set(shipped, text);
  }
  const instanceFiles = [...[...gemm.instances, ...conv.instances].map((i) => i.file), ...(library?.instanceFiles() ?? [])];
  for (const [file, text] of platform.buildFiles(options.modelName, instanceFiles)) files.set(file, text);
  // profile/ only when there is something to profile (a model without GEMMs or convs, or all of them measured)
  if (options.profileSources && toProfile.length > 0 && platform.profiler)
    for (const [file, text] of platform.profiler(toProfile)) files.set(file, text);
  files.set('ait_model.py', pythonModule(options.modelName));
  const present = ctx.weights.filter((w) => w.value);
  if (present.length)
    files.set(
      'weights.safetensors',
      encodeSafetensors(
        present.map((w) => ({
          name: w.name,
          value: { ...w.value!, shape: w.shape },
          ...(w.type === 'float' ? { floatStorage: 'float32' as const } : {}),
        })),
        { metadata: { model: options.modelName } },
      ),
    );
  return { files, diagnostics, summary };
}

export function emptySummary(): CodegenSummary {
  return {
    kernels: 0,
    instances: 0,
    prepareOps: 0,
    weights: 0,
    absentWeights: 0,
    maxBatch: 0,
    arenaBytes: 0,
    workspaceBytes: 0,
    profiling: { signatures: 0, measured: 0, profiled: 0, candidates: 0 },
  };
}
