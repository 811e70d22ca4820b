/**
 * verify: runs a build directory's compiled model through the native binding and the ONNX model through a reference
 * (reference.ts) on the same seeded random inputs, and compares every output at every batch size.
 *
 *   request (server.ts)  checks what can be checked at once (synced, built, weights, model file) -> a job running
 *   job (`agent.js --verify-job OPTIONS`)  verifyBuild(): inputs -> compiled run -> reference run -> comparison;
 *                        progress lines, then the VerifyReport as the last line (and JOB/verify/report.json)
 *
 * Files of a run, under JOB/verify/: inputs/bN/<i>.npy (float32, already rounded to the compiled input's element
 * type, so both sides read the same values), compiled/bN/<i>.npy, reference/bN/<i>.npy.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { floatToBfloat16Bits, floatToHalfBits, halfBitsToFloat } from '../../compiler/backends/cuda/weights';
import type { Diagnostic } from '../../compiler/diagnostics';
import { normalSampler } from '../../compiler/onnx/materialize';
import { findModelLibrary, isNativeError, type NativeBindingModule, type NativeDType, type NativeTensorInfo } from '../../native/index';
import { DEFAULT_VERIFY_TOLERANCE, type ReferenceKind, type VerifyOutputResult, type VerifyParams, type VerifyReport } from '../protocol';
import { AgentError } from './errors';
import { insideRoot } from './paths';
import { npyToFloat64, readNpy, writeNpy, type NpyArray } from './npy';
import { runReference } from './reference';

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
  return {
    buildDir,
    modelPath,
    batchSizes: params.batchSizes,
    seed: params.seed ?? 0,
    tolerance,
    reference: params.reference,
    resolveFrom,
  };
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
  binding: NativeBindingModule,
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
  binding: NativeBindingModule,
  options: VerifyJobOptions & { filesDir: string },
  report: VerifyReport,
  log: (line: string) => void,
): Promise<void> {
  const library = findModelLibrary(options.buildDir);
  const weightsFile = requireWeightsFile(options.buildDir);
  report.library = library;
  log(`verify: opening ${library} with ${weightsFile}`);
  const model = await binding.openModel(library, { weightsPath: weightsFile });
  const compiledOutputs: { batchSize: number; outputs: { info: NativeTensorInfo; shape: number[]; values: Float64Array }[] }[] = [];
  const referenceBatches: { batchSize: number; inputs: Record<string, string>; outputDir: string }[] = [];
  try {
    const info = model.info();
    report.model = info.name;
    if (info.unboundWeights > 0) {
      throw new AgentError(
        'verify.unbound-weights',
        `${info.unboundWeights} weight(s) of ${info.name} are not in ${weightsFile}: the compiled model would run with unknown weights`,
        { file: weightsFile },
      );
    }
    if (info.timer === 'host-clock') report.notes.push(`${library} runs on the CPU (a test library)`);
    for (const input of info.inputs) {
      if (!FLOAT_TYPES.includes(input.dtype)) {
        throw new AgentError(
          'verify.input-dtype',
          `input '${input.name}' of ${info.name} is ${input.dtype}: verify makes float inputs only`,
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
      const hostInputs: Buffer[] = [];
      const inputFiles: Record<string, string> = {};
      info.inputs.forEach((input, index) => {
        const shape = shapeAt(input, batchSize);
        const { values, bytes } = randomInput(input.dtype, shape, inputSeed(options.seed, input.name, batchSize));
        const file = path.join(inputDir, `${index}.npy`);
        writeNpy(file, { dtype: 'float32', shape, data: Buffer.from(values.buffer) });
        inputFiles[input.name] = file;
        hostInputs.push(bytes);
      });
      const started = Date.now();
      const results = await model.run(batchSize, hostInputs);
      log(`compiled: batch ${batchSize} in ${((Date.now() - started) / 1000).toFixed(3)} s`);
      const compiledDir = ensureDir(options.filesDir, 'compiled', `b${batchSize}`);
      const decoded = info.outputs.map((output, index) => {
        const shape = shapeAt(output, batchSize);
        const values = decodeOutput(output.dtype, results[index]);
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
    for (const output of compiled) {
      const file = referenceFiles[output.info.name];
      const expected: NpyArray | null = file ? readNpy(file) : null;
      const row = compareOutput(
        output.info.name,
        batchSize,
        output.shape,
        output.values,
        expected,
        options.tolerance,
        Object.keys(referenceFiles),
      );
      report.results.push(row);
      log(
        `batch ${batchSize} ${row.output}: ${row.pass ? 'pass' : 'FAIL'} rel L2 ${row.relativeL2 === null ? '-' : row.relativeL2.toExponential(2)}, max abs err ${
          row.maxAbsError === null ? '-' : row.maxAbsError.toExponential(2)
        }${row.failure ? ` (${row.failure})` : ''}`,
      );
    }
  });
  report.ok = report.results.length > 0 && report.results.every((r) => r.pass);
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

/** A compiled output's bytes as doubles. */
export function decodeOutput(dtype: NativeDType, bytes: Buffer): Float64Array {
  const npyType = dtype === 'bfloat16' ? null : (dtype as NpyArray['dtype']);
  if (npyType) return npyToFloat64({ dtype: npyType, shape: [], data: bytes });
  const out = new Float64Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = new Float32Array(new Uint32Array([bytes.readUInt16LE(2 * i) << 16]).buffer)[0];
  return out;
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
export async function runVerifyJob(binding: NativeBindingModule, optionsJson: string): Promise<number> {
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
