/**
 * verify: runs a build directory's compiled model through the native binding and the ONNX model through a reference
 * (reference.ts) on the same seeded random inputs, and compares every output at every batch size.
 *
 *   request (server.ts)  checks what can be checked at once (synced, built, weights, model file) -> a job running
 *   job (`agent.js --verify-job OPTIONS`)  verifyBuild(): inputs -> compiled run -> reference run -> comparison;
 *                        progress lines, then the VerifyReport as the last line (and JOB/verify/report.json)
 *
 * Files of a run, under JOB/verify/: inputs/bN/<i>.npy (float32, already rounded to the compiled input's element
 * type, so both sides read the same values; integer inputs (ids, masks) in their own type), compiled/bN/<i>.npy,
 * reference/bN/<i>.npy; per node (perNode, at the first batch size): nodes/bN/<i>.npy (each op's output from the debug run), reference-nodes.onnx (the model with
 * its weights inline and every compared ONNX tensor as an output) and reference-nodes/bN/<i>.npy.
 *
 * The compiled model runs through the native binding, or without it through python3 and the build's ait_model.py
 * (compiled-runner.ts). Per node, each kernel node of the build's graph.json is compared at its ONNX tensor with the
 * comparison of `ait verify` (compiler/verify/per-node.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { floatToBfloat16Bits, floatToHalfBits, halfBitsToFloat } from '../../compiler/backends/cuda/weights';
import type { Diagnostic } from '../../compiler/diagnostics';
import { importOnnxFile } from '../../compiler/onnx/import';
import { encodeModelWithWeights, normalSampler } from '../../compiler/onnx/materialize';
import { compareMatchedRows, findDetectionGroups, matchDetections } from '../../compiler/verify/detections';
import { integerInputValues, isIntegerInputType } from '../../compiler/verify/inputs';
import { addModuleTimes, type TorchModuleTimes } from '../../compiler/verify/module-times';
import {
  compareRow,
  DEFAULT_ERROR_THRESHOLD,
  exposeTensors,
  type GraphLike,
  type NodeLike,
  nodeRows,
  onnxTensorOfNodes,
  type PerNodeReport,
  summarizeRows,
} from '../../compiler/verify/per-node';
import { findModelLibrary, isNativeError, type NativeBindingModule, type NativeDType, type NativeTensorInfo } from '../../native/index';
import type { ProfileJson } from '../../webview/contract';
import { DEFAULT_VERIFY_TOLERANCE, type ReferenceKind, type VerifyOutputResult, type VerifyParams, type VerifyReport } from '../protocol';
import {
  type CompiledRunner,
  decodeOutput,
  type DebugNodeFile,
  nativeRunner,
  noDebugSupport,
  pythonRunner,
  pythonRunnerUnavailable,
} from './compiled-runner';
import { AgentError } from './errors';
import { insideRoot } from './paths';
import { integerNpy, npyToFloat64, readNpy, writeNpy, type NpyArray } from './npy';
import { runReference } from './reference';
import { runTorchTimes } from './torch-times';

export { decodeOutput };
export const GRAPH_FILE = 'graph.json';

export const WEIGHTS_FILE = 'weights.safetensors';

/** What the job receives (resolved by the request handler). */
export interface VerifyJobOptions {
  buildDir: string;
  /** Absolute path of the ONNX model. */
  modelPath: string;
  batchSizes: number[];
  seed: number;
  tolerance: number;
  reference?: ReferenceKind;
  /** Where inputs and outputs go; default JOB/verify ($AIT_JOB_DIR, set by the job supervisor). */
  filesDir?: string;
  /** Directories onnxruntime-node is resolved from. */
  resolveFrom: string[];
  /** The GPU the job runs on (the request handler's probe), named in the per-op profile. */
  gpu?: { name: string; arch?: string };
  /**
   * Per-node comparison at the first batch size, against the kernel nodes of the build's graph.json; with it our
   * per-op profile at that batch and, with `torchModel` (absolute FILE.py:FUNCTION), PyTorch's module times.
   */
  perNode?: { threshold: number; graphJson: string; torchModel?: string };
}

/** Checks the request against the build directory; returns the job's options. Throws AgentErrors naming the file. */
export function verifyJobOptions(buildDir: string, params: VerifyParams, resolveFrom: string[]): Omit<VerifyJobOptions, 'filesDir'> {
  const modelPath = insideRoot(buildDir, params.model, { what: 'model', code: 'verify.bad-model-path' });
  if (!fs.existsSync(modelPath))
    throw new AgentError('verify.no-model', `the ONNX model ${modelPath} is not there: sync it with the build directory`, {
      file: modelPath,
    });
  if (params.batchSizes.length === 0 || params.batchSizes.some((b) => !Number.isInteger(b) || b < 1)) {
    throw new AgentError('verify.bad-batch', `batch sizes must be positive integers, got [${params.batchSizes.join(', ')}]`);
  }
  try {
    findModelLibrary(buildDir);
  } catch (e) {
    throw new AgentError('verify.no-library', (e as Error).message, { file: buildDir });
  }
  requireWeightsFile(buildDir);
  const tolerance = params.tolerance ?? DEFAULT_VERIFY_TOLERANCE;
  if (!(tolerance > 0)) throw new AgentError('verify.bad-tolerance', `tolerance must be positive, got ${tolerance}`);
  let perNode: VerifyJobOptions['perNode'];
  if (params.perNode) {
    const graphJson = path.join(buildDir, GRAPH_FILE);
    if (!fs.existsSync(graphJson))
      throw new AgentError(
        'verify.no-graph',
        `${graphJson} is not there: per-node verify finds each node's ONNX tensor through the compile's graph.json; ` +
          'sync the whole directory `ait compile` wrote',
        { file: graphJson },
      );
    const threshold = params.perNodeThreshold ?? DEFAULT_ERROR_THRESHOLD;
    if (!(threshold > 0)) throw new AgentError('verify.bad-tolerance', `the per-node threshold must be positive, got ${threshold}`);
    perNode = {
      threshold,
      graphJson,
      ...(params.torchModel !== undefined ? { torchModel: torchModelIn(buildDir, params.torchModel) } : {}),
    };
  } else if (params.torchModel !== undefined) {
    throw new AgentError('verify.bad-torch-model', 'torchModel times the modules of the per-node table: it needs perNode');
  }
  return {
    ...(perNode ? { perNode } : {}),
    buildDir,
    modelPath,
    batchSizes: params.batchSizes,
    seed: params.seed ?? 0,
    tolerance,
    reference: params.reference,
    resolveFrom,
  };
}

/** FILE.py:FUNCTION inside the build directory as an absolute FILE:FUNCTION; AgentErrors say what is wrong. */
function torchModelIn(buildDir: string, spec: string): string {
  const colon = spec.lastIndexOf(':');
  const file = colon > 0 ? spec.slice(0, colon) : '';
  const fn = colon > 0 ? spec.slice(colon + 1) : '';
  if (!file.endsWith('.py') || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(fn))
    throw new AgentError('verify.bad-torch-model', `torchModel must be FILE.py:FUNCTION (a Python identifier), got '${spec}'`);
  const absolute = insideRoot(buildDir, file, { what: 'torch model', code: 'verify.bad-torch-model' });
  if (!fs.existsSync(absolute))
    throw new AgentError('verify.no-torch-model', `the PyTorch model factory ${absolute} is not there: sync it with the build directory`, {
      file: absolute,
    });
  return `${absolute}:${fn}`;
}

function requireWeightsFile(buildDir: string): string {
  const file = path.join(buildDir, WEIGHTS_FILE);
  if (!fs.existsSync(file)) {
    throw new AgentError(
      'verify.no-weights',
      `build directory ${buildDir} has no ${WEIGHTS_FILE}: the compiled model's weights are unknown, so its outputs cannot be ` +
        'compared with the reference. Compile a model that has its weights (ONNX initializers with data) and verify that build',
      { file },
    );
  }
  return file;
}

/** The whole comparison; errors that stop it come back as the report's `error`, never thrown. */
export async function verifyBuild(
  binding: NativeBindingModule | { unavailable: string },
  options: VerifyJobOptions & { filesDir: string },
  log: (line: string) => void,
): Promise<VerifyReport> {
  const report: VerifyReport = {
    ok: false,
    model: null,
    library: null,
    onnxModel: options.modelPath,
    buildDir: options.buildDir,
    reference: null,
    seed: options.seed,
    tolerance: options.tolerance,
    batchSizes: [],
    inputs: [],
    results: [],
    filesDir: options.filesDir,
    notes: [],
  };
  try {
    await compare(binding, options, report, log);
  } catch (e) {
    report.error = toDiagnostic(e, options);
    report.ok = false;
  }
  return report;
}

async function compare(
  binding: NativeBindingModule | { unavailable: string },
  options: VerifyJobOptions & { filesDir: string },
  report: VerifyReport,
  log: (line: string) => void,
): Promise<void> {
  const library = findModelLibrary(options.buildDir);
  const weightsFile = requireWeightsFile(options.buildDir);
  report.library = library;
  log(`verify: opening ${library} with ${weightsFile}`);
  const model = await openRunner(binding, options, library, weightsFile);
  report.runner = model.kind;
  if (model.kind === 'python-ait_model')
    report.notes.push(
      `the compiled model ran through python3 and ${path.join(options.buildDir, 'ait_model.py')}: ${(binding as { unavailable: string }).unavailable}`,
    );
  const compiledOutputs: { batchSize: number; outputs: { info: NativeTensorInfo; shape: number[]; values: Float64Array }[] }[] = [];
  const referenceBatches: { batchSize: number; inputs: Record<string, string>; outputDir: string }[] = [];
  let debugRun: DebugRun | undefined;
  try {
    const info = model.info;
    report.model = info.name;
    if (info.unboundWeights > 0) {
      throw new AgentError(
        'verify.unbound-weights',
        `${info.unboundWeights} weight(s) of ${info.name} are not in ${weightsFile}: the compiled model would run with unknown weights`,
        { file: weightsFile },
      );
    }
    if (options.perNode && !info.debugRuns) throw noDebugSupport(library);
    if (info.timer === 'host-clock') report.notes.push(`${library} runs on the CPU (a test library)`);
    for (const input of info.inputs) {
      if (!FLOAT_TYPES.includes(input.dtype) && !isIntegerInputType(input.dtype)) {
        throw new AgentError(
          'verify.input-dtype',
          `input '${input.name}' of ${info.name} is ${input.dtype}: verify makes float and integer inputs only`,
          {
            file: library,
            tensor: input.name,
          },
        );
      }
      report.inputs.push({ name: input.name, dtype: input.dtype, shapeAtMaxBatch: input.maxShape });
    }
    report.batchSizes = options.batchSizes.filter((b) => b <= info.maxBatch);
    const skipped = options.batchSizes.filter((b) => b > info.maxBatch);
    if (skipped.length) report.notes.push(`batch size(s) ${skipped.join(', ')} above the model's max batch ${info.maxBatch}: skipped`);
    if (report.batchSizes.length === 0) {
      throw new AgentError('verify.bad-batch', `every batch size asked for is above the max batch ${info.maxBatch} of ${info.name}`, {
        file: library,
      });
    }

    for (const batchSize of report.batchSizes) {
      const inputDir = ensureDir(options.filesDir, 'inputs', `b${batchSize}`);
      const runInputs: { bytes: Buffer; file: string }[] = [];
      const inputFiles: Record<string, string> = {};
      info.inputs.forEach((input, index) => {
        const shape = shapeAt(input, batchSize);
        const file = path.join(inputDir, `${index}.npy`);
        const array = inputArray(input, shape, inputSeed(options.seed, input.name, batchSize));
        writeNpy(file, array.npy);
        const bytes = array.bytes;
        inputFiles[input.name] = file;
        runInputs.push({ bytes, file });
      });
      const debugDir =
        options.perNode && batchSize === report.batchSizes[0] ? ensureDir(options.filesDir, 'nodes', `b${batchSize}`) : undefined;
      const started = Date.now();
      const results = await model.run(batchSize, runInputs, debugDir);
      const ms = Date.now() - started;
      log(
        `compiled: batch ${batchSize}${debugDir ? ` (debug run, ${results.nodes?.length ?? 0} node outputs)` : ''} in ${(ms / 1000).toFixed(3)} s`,
      );
      if (debugDir) {
        debugRun = { batchSize, inputs: inputFiles, nodes: results.nodes ?? [], ms };
        // Our time per op at the same batch and inputs, for the module table's time column (missing: a note).
        try {
          debugRun.profile = await model.profile(batchSize, runInputs, PROFILE_ITERATIONS, options.gpu ?? { name: 'unknown GPU' });
          log(`compiled: per-op profile at batch ${batchSize}, ${PROFILE_ITERATIONS} runs`);
        } catch (e) {
          debugRun.profileMissing = `the per-op profile failed: ${(e as Error).message}`;
          log(`compiled: ${debugRun.profileMissing}`);
        }
      }
      const compiledDir = ensureDir(options.filesDir, 'compiled', `b${batchSize}`);
      const decoded = info.outputs.map((output, index) => {
        // sizes the data decided (run-time dims) come from the run; every other output is its max shape at the batch
        const shape = results.shapes?.[index] ?? shapeAt(output, batchSize);
        const values = results.outputs[index];
        writeNpy(path.join(compiledDir, `${index}.npy`), { dtype: 'float64', shape, data: Buffer.from(values.buffer) });
        return { info: output, shape, values };
      });
      compiledOutputs.push({ batchSize, outputs: decoded });
      referenceBatches.push({ batchSize, inputs: inputFiles, outputDir: ensureDir(options.filesDir, 'reference', `b${batchSize}`) });
    }
  } finally {
    model.close();
  }

  const reference = await runReference({
    modelPath: options.modelPath,
    batches: referenceBatches,
    scratchDir: options.filesDir,
    resolveFrom: options.resolveFrom,
    forced: options.reference,
    log,
  });
  report.reference = { kind: reference.kind, version: reference.version, note: reference.note };
  if (reference.kind === 'interpreter')
    report.notes.push(
      "reference: the project's interpreter (float32, plain TypeScript): neither python3 onnxruntime nor onnxruntime-node is available",
    );

  compiledOutputs.forEach(({ batchSize, outputs: compiled }, batchIndex) => {
    const referenceFiles = reference.outputs[batchIndex] ?? {};
    const expectedOf = new Map(
      compiled.map((o) => [o.info.name, referenceFiles[o.info.name] ? readNpy(referenceFiles[o.info.name]) : null]),
    );
    const rows = compiled.map((output) =>
      compareOutput(
        output.info.name,
        batchSize,
        output.shape,
        output.values,
        expectedOf.get(output.info.name) ?? null,
        options.tolerance,
        Object.keys(referenceFiles),
      ),
    );
    compareDetectionGroups(compiled, expectedOf, rows, options.tolerance);
    for (const row of rows) {
      report.results.push(row);
      log(
        `batch ${batchSize} ${row.output}: ${row.pass ? 'pass' : 'FAIL'} rel L2 ${row.relativeL2 === null ? '-' : row.relativeL2.toExponential(2)}, max abs err ${
          row.maxAbsError === null ? '-' : row.maxAbsError.toExponential(2)
        }${row.detections ? `, ${describeDetections(row.detections)}` : ''}${row.failure ? ` (${row.failure})` : ''}`,
      );
    }
  });
  if (debugRun && options.perNode) {
    report.perNode = await perNodeSection(
      options as VerifyJobOptions & { filesDir: string; perNode: NonNullable<VerifyJobOptions['perNode']> },
      debugRun,
      report,
      model,
      log,
    );
  }
  report.ok =
    report.results.length > 0 && report.results.every((r) => r.pass) && !report.perNode?.firstJump && !report.perNode?.firstOverflow;
}

async function openRunner(
  binding: NativeBindingModule | { unavailable: string },
  options: VerifyJobOptions & { filesDir: string },
  library: string,
  weightsFile: string,
): Promise<CompiledRunner> {
  if (!('unavailable' in binding)) return nativeRunner(binding, library, weightsFile);
  const why = pythonRunnerUnavailable(options.buildDir);
  if (why)
    throw new AgentError(
      'verify.no-binding',
      `verify runs the compiled model through the native binding or python3 with ait_model.py: ${binding.unavailable}; ${why}`,
      { file: options.buildDir },
    );
  return pythonRunner(options.buildDir, library, weightsFile, options.filesDir, !!options.perNode);
}

/** The debug run of per-node verify: its inputs, node outputs and time, and our per-op profile at its batch. */
interface DebugRun {
  batchSize: number;
  inputs: Record<string, string>;
  nodes: DebugNodeFile[];
  ms: number;
  profile?: ProfileJson;
  profileMissing?: string;
}

/** Profiled runs of our per-op profile (per-node verify). */
const PROFILE_ITERATIONS = 20;

/**
 * Per node: the reference runs the model with every compared ONNX tensor as an output (weights inline) on the debug
 * run's inputs; each kernel node of graph.json is compared at its tensor (compiler/verify/per-node.ts).
 */
async function perNodeSection(
  options: VerifyJobOptions & { filesDir: string; perNode: NonNullable<VerifyJobOptions['perNode']> },
  debugRun: DebugRun,
  report: VerifyReport,
  runner: CompiledRunner,
  log: (line: string) => void,
): Promise<PerNodeReport> {
  const graph = readGraphJson(options.perNode.graphJson);
  const imported = importOnnxFile(options.modelPath);
  if (imported.weights.absent > 0) {
    throw new AgentError(
      'verify.reference-no-weights',
      `${imported.weights.absent} of the ${imported.weights.count} initializers of ${options.modelPath} have no data${
        imported.weights.missingFiles.length ? ` (missing external data: ${imported.weights.missingFiles.join(', ')})` : ''
      }: the reference cannot run a model without its weights`,
      { file: options.modelPath },
    );
  }
  const targets = onnxTensorOfNodes(graph, imported.graph);
  const wanted = new Set<string>();
  for (const t of targets.values()) if ('tensor' in t) wanted.add(t.tensor);
  const { bytes, added } = exposeTensors(encodeModelWithWeights(imported), wanted, options.modelPath);
  const scratchDir = ensureDir(options.filesDir, 'reference-nodes');
  const exposedModel = path.join(options.filesDir, 'reference-nodes.onnx');
  fs.writeFileSync(exposedModel, bytes);
  log(`per node: ${wanted.size} ONNX tensors compared (${added.length} exposed as outputs of ${exposedModel})`);
  const started = Date.now();
  const reference = await runReference({
    modelPath: exposedModel,
    batches: [{ batchSize: debugRun.batchSize, inputs: debugRun.inputs, outputDir: ensureDir(scratchDir, `b${debugRun.batchSize}`) }],
    scratchDir,
    resolveFrom: options.resolveFrom,
    forced: options.reference,
    log,
  });
  const referenceMs = Date.now() - started;
  const referenceFiles = reference.outputs[0] ?? {};

  const rows = nodeRows(graph, targets);
  const nodeFiles = new Map(debugRun.nodes.map((n) => [n.id, n]));
  for (const row of rows) {
    if (row.skipped) continue;
    const node = nodeFiles.get(row.id);
    const referenceFile = referenceFiles[row.onnxTensor!];
    compareRow(
      row,
      node ? floatValues(readNpy(node.file), 'the debug run') : { skipped: 'the debug run gave no output for this node' },
      referenceFile
        ? floatValues(readNpy(referenceFile), 'the reference')
        : { skipped: `the reference gives no value for '${row.onnxTensor}'` },
    );
  }
  const known = new Set(rows.map((r) => r.id));
  const unknown = debugRun.nodes.filter((n) => !known.has(n.id)).map((n) => n.id);
  const summary = summarizeRows(graph, rows, options.perNode.threshold);
  // Times per module: ours from the profile, PyTorch eager's from module_times.py (--torch-model).
  const timeNotes: string[] = [];
  if (debugRun.profileMissing) timeNotes.push(`our module times are missing: ${debugRun.profileMissing}`);
  let torchTimes: TorchModuleTimes | undefined;
  if (options.perNode.torchModel) {
    const torch = await runTorchTimes({
      factory: options.perNode.torchModel,
      inputs: Object.values(debugRun.inputs),
      scratchDir: ensureDir(options.filesDir, 'torch'),
      log,
    });
    if ('missing' in torch) {
      timeNotes.push(`PyTorch module times are missing: ${torch.missing}`);
      log(`module times: ${torch.missing}`);
    } else torchTimes = torch.times;
  }
  const timed = debugRun.profile || torchTimes ? addModuleTimes(summary.modules, graph, debugRun.profile, torchTimes) : undefined;
  const perNode: PerNodeReport = {
    format: 'ait-verify-per-node',
    version: 1,
    model: options.modelPath,
    batch: debugRun.batchSize,
    seed: options.seed,
    threshold: options.perNode.threshold,
    candidate: `${report.library} debug run (${runner.kind})`,
    reference: { kind: reference.kind, version: reference.version },
    randomizedWeights: 0,
    inputs: report.inputs.map((i, index) => ({ name: i.name, shape: shapeAt(runner.info.inputs[index], debugRun.batchSize) })),
    nodes: rows,
    ...summary,
    ...(timed ? { modules: timed.modules, times: timed.summary } : {}),
    ...(debugRun.profile ? { profile: debugRun.profile } : {}),
    ...(torchTimes ? { torchTimes } : {}),
    timings: { referenceMs, candidateMs: debugRun.ms },
    notes: [
      ...summary.notes,
      ...timeNotes,
      ...(unknown.length
        ? [
            `the debug run gave outputs of node(s) ${unknown.slice(0, 10).join(', ')} that ${options.perNode.graphJson} lacks: is it this build's graph?`,
          ]
        : []),
    ],
  };
  const compared = rows.filter((r) => r.relativeL2 !== undefined).length;
  log(
    `per node: ${compared} nodes compared at batch ${debugRun.batchSize}; first error jump: ${perNode.firstJump ? `${perNode.firstJump.id} ${perNode.firstJump.name}` : 'none'}; ` +
      `first fp16 overflow: ${perNode.firstOverflow ? `${perNode.firstOverflow.id} ${perNode.firstOverflow.name}` : 'none'}`,
  );
  return perNode;
}

/** graph.json's kernel nodes, or an error naming the file. */
function readGraphJson(file: string): GraphLike {
  let parsed: { format?: string; nodes?: unknown; tensors?: Record<string, { storage?: string }> };
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof parsed;
  } catch (e) {
    throw new AgentError('verify.bad-graph', `${file} is not JSON: ${(e as Error).message}`, { file });
  }
  if (parsed.format !== 'ait-graph' || !Array.isArray(parsed.nodes))
    throw new AgentError('verify.bad-graph', `${file} is not an ait-graph (graph.json of \`ait compile\`)`, { file });
  const nodes = (parsed.nodes as Partial<NodeLike>[]).map((n) => ({
    id: String(n.id),
    op: String(n.op),
    name: String(n.name ?? n.id),
    inputs: n.inputs ?? [],
    outputs: n.outputs ?? [],
    sourceNodes: n.sourceNodes ?? [],
    scope: n.scope ?? [],
    role: n.role,
  }));
  const fp32 = new Set(Object.entries(parsed.tensors ?? {}).flatMap(([name, t]) => (t?.storage === 'float32' ? [name] : [])));
  return { nodes, fp32 };
}

function floatValues(array: NpyArray, who: string): { values: Float64Array; shape: number[] } | { skipped: string } {
  if (array.dtype !== 'float16' && array.dtype !== 'float32' && array.dtype !== 'float64')
    return { skipped: `${who} gives ${array.dtype}, not floats` };
  return { values: npyToFloat64(array), shape: array.shape };
}

const FLOAT_TYPES: NativeDType[] = ['float32', 'float16', 'bfloat16'];

/** Compares one output with its reference (null: the reference has no output of that name). */
export function compareOutput(
  name: string,
  batchSize: number,
  shape: number[],
  actual: Float64Array,
  expected: NpyArray | null,
  tolerance: number,
  referenceNames: string[],
): VerifyOutputResult {
  const base = { batchSize, output: name, shape };
  if (!expected) {
    return {
      ...base,
      referenceShape: null,
      shapeMatches: false,
      relativeL2: null,
      maxAbsError: null,
      maxAbsReference: null,
      nonFiniteCount: countNonFinite(actual),
      pass: false,
      failure: `the reference has no output '${name}' (it has ${referenceNames.join(', ') || 'none'})`,
    };
  }
  const shapeMatches = expected.shape.length === shape.length && expected.shape.every((d, i) => d === shape[i]);
  const nonFiniteCount = countNonFinite(actual);
  if (!shapeMatches) {
    return {
      ...base,
      referenceShape: expected.shape,
      shapeMatches,
      relativeL2: null,
      maxAbsError: null,
      maxAbsReference: null,
      nonFiniteCount,
      pass: false,
      failure: `shape [${shape.join(', ')}] differs from the reference's [${expected.shape.join(', ')}]`,
    };
  }
  const reference = npyToFloat64(expected);
  let diffSquares = 0;
  let referenceSquares = 0;
  let maxAbsError = 0;
  let maxAbsReference = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = actual[i] - reference[i];
    diffSquares += d * d;
    referenceSquares += reference[i] * reference[i];
    if (Number.isFinite(actual[i])) maxAbsError = Math.max(maxAbsError, Math.abs(d));
    maxAbsReference = Math.max(maxAbsReference, Math.abs(reference[i]));
  }
  const relativeL2 =
    nonFiniteCount > 0 ? null : referenceSquares > 0 ? Math.sqrt(diffSquares / referenceSquares) : diffSquares === 0 ? 0 : null;
  let failure: string | undefined;
  if (nonFiniteCount > 0) failure = `${nonFiniteCount} NaN/Inf value(s) in the compiled output`;
  else if (relativeL2 === null) failure = 'the reference is all zeros and the compiled output is not';
  else if (relativeL2 > tolerance)
    failure = `relative L2 error ${relativeL2.toExponential(2)} above the tolerance ${tolerance.toExponential(1)}`;
  return {
    ...base,
    referenceShape: expected.shape,
    shapeMatches,
    relativeL2,
    maxAbsError,
    maxAbsReference,
    nonFiniteCount,
    pass: failure === undefined,
    ...(failure ? { failure } : {}),
  };
}

/**
 * Outputs that form a detection group (boxes [.., N, 4] with scores/labels [.., N]: compiler/verify/detections.ts) are
 * judged by matching detections instead of element by element: their rows take the group's result, and per-detection
 * outputs (masks) are compared over the matched pairs. Every other row stays as compareOutput made it.
 */
export function compareDetectionGroups(
  compiled: { info: { name: string; dtype: NativeDType }; shape: number[]; values: Float64Array }[],
  expectedOf: Map<string, NpyArray | null>,
  rows: VerifyOutputResult[],
  tolerance: number,
): void {
  const withReference = compiled.filter((o) => expectedOf.get(o.info.name));
  const groups = findDetectionGroups(
    withReference.map((o) => ({ name: o.info.name, shape: o.shape, integer: !FLOAT_TYPES.includes(o.info.dtype) })),
    withReference.map((o) => {
      const e = expectedOf.get(o.info.name)!;
      return { name: o.info.name, shape: e.shape, integer: !e.dtype.startsWith('float') };
    }),
  );
  const valuesOf = (name: string) => {
    const c = compiled.find((o) => o.info.name === name)!;
    const e = expectedOf.get(name)!;
    return { compiled: c, reference: { shape: e.shape, values: npyToFloat64(e) } };
  };
  for (const group of groups) {
    const boxes = valuesOf(group.boxes);
    const side = (which: 'compiled' | 'reference') => {
      const pick = (name: string | undefined) =>
        name === undefined ? undefined : which === 'compiled' ? valuesOf(name).compiled.values : valuesOf(name).reference.values;
      return {
        shape: which === 'compiled' ? boxes.compiled.shape : boxes.reference.shape,
        boxes: which === 'compiled' ? boxes.compiled.values : boxes.reference.values,
        scores: pick(group.scores),
        labels: pick(group.labels),
      };
    };
    const match = matchDetections(group, side('compiled'), side('reference'));
    const { pairs, ...detections } = match;
    for (const row of rows) {
      const name = row.output;
      if (name !== group.boxes && name !== group.scores && name !== group.labels && !group.others.includes(name)) continue;
      if (row.nonFiniteCount > 0) continue; // NaN/Inf fails the output whatever matched
      let failure = match.failure;
      if (group.others.includes(name)) {
        const v = valuesOf(name);
        const rowSize = v.compiled.shape.slice(boxes.compiled.shape.length - 1).reduce((a, b) => a * b, 1);
        const m = compareMatchedRows(pairs, v.compiled.values, v.reference.values, rowSize);
        row.relativeL2 = m.relativeL2;
        row.maxAbsError = m.maxAbsError;
        if (failure === undefined && (m.relativeL2 === null || m.relativeL2 > tolerance))
          failure = `matched detections' rows: relative L2 error ${m.relativeL2 === null ? 'undefined' : m.relativeL2.toExponential(2)} above the tolerance ${tolerance.toExponential(1)}`;
      }
      row.detections = detections;
      row.pass = failure === undefined;
      if (failure === undefined) delete row.failure;
      else row.failure = failure;
    }
  }
}

function describeDetections(d: NonNullable<VerifyOutputResult['detections']>): string {
  return `detections: ${d.matched} matched of ${d.referenceCount} (compiled ${d.compiledCount}), mean IoU ${d.meanIoU === null ? '-' : d.meanIoU.toFixed(3)}`;
}

function countNonFinite(values: Float64Array): number {
  let n = 0;
  for (const v of values) if (!Number.isFinite(v)) n++;
  return n;
}

function shapeAt(tensor: NativeTensorInfo, batchSize: number): number[] {
  return tensor.maxShape.map((d, axis) => (axis === tensor.batchAxis ? batchSize : d));
}

/** A per-(seed, input, batch) seed, so each batch size's inputs do not depend on which other sizes were asked for. */
function inputSeed(seed: number, name: string, batchSize: number): number {
  let h = (0x811c9dc5 ^ seed ^ Math.imul(batchSize, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * One input at `shape`: what the reference reads (.npy: float32 for float inputs, the input's own type for integer
 * ones) and the bytes the compiled model takes. Integer inputs (token ids, masks) follow compiler/verify/inputs.ts.
 */
function inputArray(input: NativeTensorInfo, shape: number[], seed: number): { npy: NpyArray; bytes: Buffer } {
  if (isIntegerInputType(input.dtype)) {
    const count = shape.reduce((a, b) => a * b, 1);
    const npy = integerNpy(input.dtype, shape, integerInputValues(input.name, input.dtype, count, normalSampler(seed)));
    return { npy, bytes: npy.data };
  }
  const { values, bytes } = randomInput(input.dtype, shape, seed);
  return { npy: { dtype: 'float32', shape, data: Buffer.from(values.buffer) }, bytes };
}

/** Standard normal values rounded to `dtype`: the float32 copy (for the reference) and the bytes the model takes. */
export function randomInput(dtype: NativeDType, shape: number[], seed: number): { values: Float32Array; bytes: Buffer } {
  const count = shape.reduce((a, b) => a * b, 1);
  const normal = normalSampler(seed);
  const values = new Float32Array(count);
  if (dtype === 'float32') {
    for (let i = 0; i < count; i++) values[i] = normal();
    return { values, bytes: Buffer.from(values.buffer) };
  }
  const bytes = Buffer.alloc(count * 2);
  for (let i = 0; i < count; i++) {
    const v = normal();
    if (dtype === 'float16') {
      const bits = floatToHalfBits(v);
      bytes.writeUInt16LE(bits, 2 * i);
      values[i] = halfBitsToFloat(bits);
    } else {
      const bits = floatToBfloat16Bits(v);
      bytes.writeUInt16LE(bits, 2 * i);
      values[i] = new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
    }
  }
  return { values, bytes };
}

function ensureDir(...parts: string[]): string {
  const dir = path.join(...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function toDiagnostic(e: unknown, options: VerifyJobOptions): Diagnostic {
  if (e instanceof AgentError) return e.toDiagnostic();
  if (isNativeError(e)) {
    return { code: `verify.native.${e.code}`, severity: 'error', message: e.message, location: { file: e.library ?? options.buildDir } };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'verify.failed', severity: 'error', message, location: { file: options.buildDir } };
}

/** Entry of `--verify-job OPTIONS_JSON`: prints progress lines, then the report as one JSON line; exit 0 only when all pass. */
export async function runVerifyJob(binding: NativeBindingModule | { unavailable: string }, optionsJson: string): Promise<number> {
  const parsed = JSON.parse(optionsJson) as VerifyJobOptions;
  const jobDir = process.env.AIT_JOB_DIR;
  if (!parsed.filesDir && !jobDir) throw new Error('--verify-job needs filesDir in its options or $AIT_JOB_DIR');
  const options = { ...parsed, filesDir: parsed.filesDir ?? path.join(jobDir!, 'verify') };
  fs.mkdirSync(options.filesDir, { recursive: true });
  const report = await verifyBuild(binding, options, (line) => process.stdout.write(line + '\n'));
  fs.writeFileSync(path.join(options.filesDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(JSON.stringify(report) + '\n');
  return report.ok ? 0 : 1;
}
