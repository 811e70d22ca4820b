/**
 * The compile driver: import → shape inference and folding → optimization passes (passes/pipeline.ts) → support
 * check for the target → DIR/graph.json. (Code generation and build join here with the backends.) Used by the
 * CLI and the extension; knows nothing of either.
 *
 * Where output may go and what it may replace is decided by one policy (output-dir.ts): output is written to a
 * staging sibling and renamed into place at the end, nothing is deleted that a compile did not write, and a failed
 * or cancelled compile leaves the previous output as it was.
 */
import './ops/index';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, Diagnostic, error, warning } from './diagnostics';
import { graphToJson } from './ir/serialize';
import { ImportOptions, ImportedModel, importOnnxFile } from './onnx/import';
import { inferShapes } from './passes/shape-inference';
import { OPTIMIZATION_PASSES } from './passes/pipeline';
import { PassContext, runPasses } from './passes/pass';
import { supportOf } from './backends/support';
import { Graph } from './ir/graph';
import { backendOfTarget } from './backends/index';
import type { MeasurementSource } from './backends/cuda/profiling/selection';
import { checkTarget, DEFAULT_TARGET } from './targets';
import { PartitionJson, partitionModel } from './partition/partition';
import { injectModule, partitionedRunner } from './backends/cuda/codegen/build-files';
import { compileModules, type ModuleJson } from './partition/module';
import { commitStaging, createStaging, discardStaging, isOurBuild, planOutputDir, type OutputPlan } from './output-dir';

export interface CompileOptions extends ImportOptions {
  /** Output directory (default: build/<model name>). */
  out?: string;
  /**
   * Replace an earlier build of ours at `out` (the CLI's --force; the extension's own build paths). The default
   * build path (no `out`) is always replaceable; a directory that holds no build of ours never is.
   */
  force?: boolean;
  target?: string;
  /** Batch for cost annotations and the memory report (default 1). */
  batch?: number;
  /** Largest batch a CUDA build serves (default: the batch symbol's upper bound). */
  maxBatch?: number;
  /** Pass names after which to dump the graph ('all' for every pass). */
  dumpAfter?: string[];
  /** Tensors or nodes to store in fp32 besides what the storage-precision pass chooses (`--fp32`). */
  fp32?: string[];
  /** Where dumps go (compileModel sets this to its staging directory). */
  dumpDir?: string;
  /** Validate the graph after every pass. */
  validate?: boolean;
  /** Progress messages (stage names and details). */
  log?: (message: string) => void;
  /** Cancels the compile between stages. */
  signal?: AbortSignal;
  /** Kernel measurements (a profile cache for one GPU, or profiler results): GEMMs and convs take the fastest. */
  measurements?: MeasurementSource;
  /** Also write the profiler into DIR/profile/: for every GEMM/conv signature, or those the measurements lack. */
  profileSources?: 'all' | 'missing';
  /**
   * When some nodes cannot run on the target: split the model into compiled segments and onnxruntime fallback
   * segments (partition/partition.ts) instead of failing. A model the target runs whole compiles as usual.
   */
  partition?: boolean;
  /**
   * Compile only these modules (module paths, e.g. backbone, rpn.head): each a build of its own under
   * DIR/<module>/ whose inputs and outputs are the tensors crossing the module's border (partition/module.ts).
   */
  modules?: string[];
}

export interface StageReport {
  name: string;
  ms: number;
  detail: string;
}

export interface CompileResult {
  ok: boolean;
  outDir: string;
  graphJsonPath: string;
  modelName: string;
  stages: StageReport[];
  diagnostics: Diagnostic[];
  /** Facts reported by passes: cost totals, memory plan summary. */
  reports: Record<string, unknown>;
  /** What code generation wrote (one line), when it ran. */
  codegen?: string;
  /** GEMM/conv signatures, how many had measurements, and what the written profiler times (when code generation ran). */
  profiling?: { signatures: number; measured: number; profiled: number; candidates: number };
  /** With `partition`, when the model was split: the segments (partition.json). */
  partition?: PartitionJson;
  /** With `modules`: each module's build (module.json) and its directory. */
  modules?: (ModuleJson & { dir: string })[];
}

/**
 * The model's name from its file name, as the build uses it (lib<name>.so, build/<name>): letters, digits, `_`,
 * `.` and `-` only, not starting with `.` or `-` (never `.`, `..` or an option).
 */
export function modelNameOf(file: string): string {
  const name = path
    .basename(file)
    .replace(/\.onnx$/i, '')
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/^[.-]/, '_');
  return name === '' ? 'model' : name;
}

export interface OptimizeResult {
  graph: Graph;
  context: PassContext;
  stages: StageReport[];
}

/** Import, infer and optimize in memory (no files written). */
export function optimizeModel(file: string, options: CompileOptions = {}): OptimizeResult & { model: ImportedModel } {
  return optimizeImported(() => importOnnxFile(file, options), file, options);
}

/** Infer and optimize an already imported model (e.g. one whose weights were materialized in memory). */
export function optimizeImported(
  load: ImportedModel | (() => ImportedModel),
  file: string,
  options: CompileOptions = {},
): OptimizeResult & { model: ImportedModel } {
  const log = options.log ?? (() => {});
  const stages: StageReport[] = [];
  const checkCancelled = () => {
    if (options.signal?.aborted) throw new CompileError(error('compile.cancelled', 'the compile was cancelled', { file }));
  };
  const stage = <T>(name: string, run: () => T, detail: (r: T) => string): T => {
    checkCancelled();
    const t0 = performance.now();
    const r = run();
    const report = { name, ms: performance.now() - t0, detail: detail(r) };
    stages.push(report);
    log(`${name.padEnd(18)} ${report.ms.toFixed(0).padStart(6)} ms  ${report.detail}`);
    return r;
  };
  const model = stage(
    'import',
    () => (typeof load === 'function' ? load() : load),
    (m) => `${m.graph.nodes.length} ONNX nodes, ${m.weights.count} parameters (weights ${m.weights.absent ? 'absent' : 'present'})`,
  );
  const graph = model.graph;
  const inference = stage(
    'shape-inference',
    () => inferShapes(graph),
    (r) => `${r.foldedNodes.size} nodes fold to constants, ${r.diagnostics.filter((d) => d.severity === 'error').length} errors`,
  );
  const context: PassContext = {
    diagnostics: [...model.diagnostics, ...inference.diagnostics],
    removed: [],
    batch: options.batch ?? 1,
    reports: {},
    ...(options.fp32?.length ? { fp32: options.fp32 } : {}),
  };
  if (!context.diagnostics.some((d) => d.severity === 'error')) {
    const dumpDir = options.dumpAfter?.length ? (options.dumpDir ?? path.resolve('build', modelNameOf(file), 'dumps')) : undefined;
    runPasses(graph, OPTIMIZATION_PASSES, context, {
      validate: options.validate,
      dumpAfter: options.dumpAfter,
      dumpDir,
      signal: options.signal,
      onPass: (t) => {
        stages.push({ name: t.name, ms: t.ms, detail: `${t.nodesBefore} → ${t.nodesAfter} nodes` });
        log(`${t.name.padEnd(18)} ${t.ms.toFixed(0).padStart(6)} ms  ${t.nodesBefore} → ${t.nodesAfter} nodes`);
      },
    });
  }
  return { graph, context, stages, model };
}

export function compileModel(file: string, options: CompileOptions = {}): CompileResult {
  const modelName = modelNameOf(file);
  const target = options.target ?? DEFAULT_TARGET;
  checkTarget(target);
  // Checked before any work: where the output goes, and that nothing is replaced that is not ours.
  const plan = planOutputDir(options.out ?? path.join('build', modelName), {
    replace: options.force || options.out === undefined,
    protect: [file],
  });
  const staging = createStaging(plan);
  try {
    if (options.modules?.length) return writeModuleCompile(file, modelName, plan, staging, target, options);
    return writeCompile(file, modelName, plan, staging, target, options);
  } catch (e) {
    discardStaging(staging);
    throw e;
  }
}

/**
 * Puts a finished staging directory in place. A compile with errors never replaces an earlier build: its output
 * (graph.json, for the graph view and the Problems panel) goes to `<out>.failed` beside it instead.
 */
function placeOutput(staging: string, plan: OutputPlan, ok: boolean, marker: { model: string; target: string }): string {
  const createdAt = new Date().toISOString();
  if (ok || plan.existing !== 'build') {
    commitStaging(staging, plan, { ...marker, createdAt });
    const failed = `${plan.outDir}.failed`;
    if (ok && isOurBuild(failed)) fs.rmSync(failed, { recursive: true, force: true });
    return plan.outDir;
  }
  const failedPlan = planOutputDir(`${plan.outDir}.failed`, { replace: true });
  commitStaging(staging, failedPlan, { ...marker, createdAt });
  return failedPlan.outDir;
}

function writeCompile(
  file: string,
  modelName: string,
  plan: OutputPlan,
  tmp: string,
  target: string,
  options: CompileOptions,
): CompileResult {
  let outDir = plan.outDir;
  const { graph, context, stages, model } = optimizeModel(file, { ...options, out: outDir, dumpDir: path.join(tmp, 'dumps') });
  const diagnostics = context.diagnostics;

  const backend = backendOfTarget(target);
  if (!backend) throw new CompileError(error('compile.bad-target', `target '${target}' has no backend`));
  // Run-time dims from the inputs: the batch, and other bounded symbols of input shapes (seq); an unbounded one is an error with the fix.
  diagnostics.push(...backend.runtimeDimErrors(graph));
  // Mark what the target cannot run; this is an error for the compile (unless it partitions), but graph.json is
  // still written.
  const unsupported = graph.nodes.filter((node) => {
    node.status = supportOf(graph, node, target);
    return !node.status.supported;
  });
  const partitioning = options.partition === true && unsupported.length > 0 && target.startsWith('cuda');
  for (const node of unsupported)
    diagnostics.push(
      partitioning
        ? warning(
            'op.fallback',
            `${node.op} node '${node.name}' cannot run on ${target} (${node.status!.reason}): it runs in onnxruntime`,
            {
              onnxNode: node.sourceNodes[0] ?? node.name,
              nodeId: node.id,
            },
          )
        : error(
            'op.unsupported',
            `${node.op} node '${node.name}' cannot run on ${target}: ${node.status!.reason} ` +
              '(--partition compiles the rest and runs such nodes in onnxruntime)',
            { onnxNode: node.sourceNodes[0] ?? node.name, nodeId: node.id },
          ),
    );

  let codegen: string | undefined;
  let partition: PartitionJson | undefined;
  if (partitioning && !diagnostics.some((d) => d.severity === 'error')) {
    checkCancelled(options, file);
    const t0 = performance.now();
    const result = partitionModel(file, graph, modelName, target, options);
    diagnostics.push(...result.diagnostics);
    partition = result.partition;
    for (const [relative, contents] of result.files) writeStaged(tmp, relative, contents);
    writeStaged(tmp, 'ait_partitioned.py', partitionedRunner(modelName));
    const ms = performance.now() - t0;
    const compiled = partition.segments.filter((s) => s.kind === 'compiled').length;
    codegen =
      `partitioned for ${target} into ${partition.segments.length} segments (${compiled} compiled, ` +
      `${partition.segments.length - compiled} in onnxruntime; ${(100 * partition.fallbackFlopShare).toFixed(1)}% of the FLOPs in onnxruntime, ` +
      `${partition.rounds} round${partition.rounds > 1 ? 's' : ''}): partition.json, ait_partitioned.py; build: ` +
      partition.segments
        .filter((s) => s.kind === 'compiled')
        .map((s) => `make -C ${path.join(outDir, s.files.dir!)} -j`)
        .join('; ');
    stages.push({ name: 'partition', ms, detail: codegen });
    options.log?.(
      `${'partition'.padEnd(18)} ${ms.toFixed(0).padStart(6)} ms  ${partition.segments.length} segments (${compiled} compiled)`,
    );
  }

  // Code generation by the target's backend: only when every node is supported; graph.json is written either way.
  let profiling: CompileResult['profiling'];
  if (!partition && !diagnostics.some((d) => d.severity === 'error')) {
    const t0 = performance.now();
    const generated = backend.generate(graph, {
      target,
      modelName,
      maxBatch: options.maxBatch,
      measurements: options.measurements,
      profileSources: options.profileSources,
    });
    profiling = generated.summary.profiling;
    diagnostics.push(...generated.diagnostics);
    for (const [relative, contents] of generated.files) writeStaged(tmp, relative, contents);
    const s = generated.summary;
    const ms = performance.now() - t0;
    if (generated.files.size > 0) {
      codegen =
        `generated ${generated.files.size} files for ${target}: ${s.kernels} kernels, ${s.instances} ${backend.kernelLibrary} instances, ` +
        `${s.prepareOps} weight-preparation ops, ${s.weights} weights (${s.absentWeights} to bind), max batch ${s.maxBatch}, ` +
        `arena ${s.arenaBytes} B, workspace ${s.workspaceBytes} B; build: make -C ${outDir} -j${s.instances ? ` ${backend.host.libraryDir}=...` : ''}`;
      stages.push({ name: 'codegen', ms, detail: codegen });
      options.log?.(
        `${'codegen'.padEnd(18)} ${ms.toFixed(0).padStart(6)} ms  ${s.kernels} kernels, ${s.instances} ${backend.kernelLibrary} instances`,
      );
    }
  }

  if (options.signal?.aborted) throw new CompileError(error('compile.cancelled', 'the compile was cancelled', { file }));
  {
    const memory = context.reports.memory as { buffers?: unknown } | undefined;
    const json = graphToJson(graph, {
      modelName,
      info: model.info,
      removed: context.removed,
      sections: {
        target,
        cost: context.reports.cost ?? null,
        memory: memory ?? null,
        ...(partition ? { partition: { segments: partition.segments.map((p) => ({ index: p.index, kind: p.kind })) } } : {}),
        passes: stages.map((s) => ({ name: s.name, ms: Math.round(s.ms * 10) / 10, detail: s.detail })),
      },
    });
    fs.writeFileSync(path.join(tmp, 'graph.json'), JSON.stringify(json));
    if (options.signal?.aborted) throw new CompileError(error('compile.cancelled', 'the compile was cancelled', { file }));
  }
  const ok = !diagnostics.some((d) => d.severity === 'error');
  outDir = placeOutput(tmp, plan, ok, { model: modelName, target });
  if (outDir !== plan.outDir)
    diagnostics.push(
      warning(
        'output.kept-previous',
        `the earlier build in ${plan.outDir} is left as it was; this compile's graph.json (with its errors) is in ${outDir}`,
        { file: plan.outDir },
      ),
    );
  return {
    ok,
    outDir,
    graphJsonPath: path.join(outDir, 'graph.json'),
    modelName,
    stages,
    diagnostics,
    reports: { cost: context.reports.cost, memory: summarizeMemory(context.reports.memory) },
    codegen,
    ...(profiling ? { profiling } : {}),
    ...(partition ? { partition } : {}),
  };
}

/**
 * `ait compile --module PATH…`: each module a build of its own in DIR/<module>/ (with module.json and ait_inject.py),
 * DIR/modules.json listing them and DIR/ait_inject.py injecting them all. The whole model is not compiled.
 */
function writeModuleCompile(
  file: string,
  modelName: string,
  plan: OutputPlan,
  tmp: string,
  target: string,
  options: CompileOptions,
): CompileResult {
  if (!target.startsWith('cuda'))
    throw new CompileError(error('compile.bad-target', `--module builds are generated for CUDA targets only, not '${target}'`));
  const modules = [...new Set(options.modules!)];
  const t0 = performance.now();
  const builds = compileModules(file, modelName, target, modules, options);
  const diagnostics: Diagnostic[] = [];
  for (const b of builds) {
    const dir = b.json.module;
    for (const [relative, contents] of b.files) writeStaged(tmp, path.join(dir, relative), contents);
    writeStaged(tmp, path.join(dir, 'ait_inject.py'), injectModule());
    diagnostics.push(...b.diagnostics);
  }
  writeStaged(tmp, 'ait_inject.py', injectModule());
  const listing = {
    format: 'ait-modules',
    version: 1,
    model: modelName,
    target,
    modules: builds.map((b) => ({ module: b.json.module, dir: b.json.module })),
  };
  writeStaged(tmp, 'modules.json', JSON.stringify(listing, null, 2) + '\n');
  const ms = performance.now() - t0;
  const codegen =
    `compiled ${builds.length} module${builds.length > 1 ? 's' : ''} for ${target}: ` +
    builds
      .map((b) => `${b.json.module} (${b.json.nodes.length} ONNX nodes, ${b.json.inputs.length} in, ${b.json.outputs.length} out)`)
      .join(', ') +
    `; build: ${builds.map((b) => `make -C ${path.join(plan.outDir, b.json.module)} -j`).join('; ')}`;
  options.log?.(`${'modules'.padEnd(18)} ${ms.toFixed(0).padStart(6)} ms  ${builds.length} module builds`);
  const outDir = placeOutput(tmp, plan, true, { model: modelName, target });
  return {
    ok: true,
    outDir,
    graphJsonPath: path.join(outDir, builds[0].json.module, 'graph.json'),
    modelName,
    stages: [{ name: 'modules', ms, detail: codegen }],
    diagnostics,
    reports: {},
    codegen,
    modules: builds.map((b) => ({ ...b.json, dir: path.join(outDir, b.json.module) })),
  };
}

function writeStaged(tmp: string, relative: string, contents: string | Uint8Array): void {
  const destination = path.join(tmp, relative);
  fs.mkdirSync(path.dirname(destination), { recursive: true });
  fs.writeFileSync(destination, contents);
}

function checkCancelled(options: CompileOptions, file: string): void {
  if (options.signal?.aborted) throw new CompileError(error('compile.cancelled', 'the compile was cancelled', { file }));
}

function summarizeMemory(memory: unknown): unknown {
  if (!memory || typeof memory !== 'object') return undefined;
  const m = memory as { batch: number; arenaBytes: number; activationBytes: number };
  return {
    batch: m.batch,
    arenaBytes: m.arenaBytes,
    activationBytes: m.activationBytes,
    ratio: m.activationBytes ? m.arenaBytes / m.activationBytes : 0,
  };
}
