/**
 * Reference outputs for verify: the ONNX model run by
 *   1. python3 with onnxruntime (CPU provider), through the script below, written into the job's files directory;
 *   2. onnxruntime-node, when `require` finds it from the agent's work directory or the build directory
 *      (`npm install --prefix ~/.ait-studio/agent onnxruntime-node` makes it available);
 *   3. the project's own interpreter (compiler/interpreter, plain TypeScript inside the agent bundle; float32, slow).
 * The first that is available is used unless one is asked for; the result says which, with its version and why.
 * Every runner reads the inputs from .npy files and writes each output as a .npy file.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import '../../compiler/ops';
import { CompileError, formatDiagnostic } from '../../compiler/diagnostics';
import { runGraphNamed } from '../../compiler/interpreter/interpreter';
import { makeTensor } from '../../compiler/ir/tensor';
import { importOnnxFile } from '../../compiler/onnx/import';
import { inferShapes } from '../../compiler/passes/shape-inference';
import type { ReferenceKind } from '../protocol';
import { AgentError } from './errors';
import { type NpyArray, npyToFloat64, readNpy, writeNpy } from './npy';

/** The inputs of one batch size and where its reference outputs go. */
export interface ReferenceBatch {
  batchSize: number;
  /** Input name -> .npy file (float32, or the input's integer type). */
  inputs: Record<string, string>;
  outputDir: string;
}

export interface ReferenceRequest {
  modelPath: string;
  batches: ReferenceBatch[];
  /** Where the Python script and its manifest are written. */
  scratchDir: string;
  /** Directories from which onnxruntime-node is resolved (the agent's work directory, the build directory). */
  resolveFrom: string[];
  /** Use this reference or fail; default the first available. */
  forced?: ReferenceKind;
  log: (line: string) => void;
}

export interface ReferenceOutcome {
  kind: ReferenceKind;
  version: string | null;
  note: string;
  /** Per batch (in request order): output name -> .npy file. */
  outputs: Record<string, string>[];
}

interface Runner {
  kind: ReferenceKind;
  /** Null when available (with its version), else why not. */
  probe(): { version: string | null } | { unavailable: string };
  run(request: ReferenceRequest, version: string | null): Promise<Record<string, string>[]>;
}

/** Picks the reference (the forced one, or the first available) and runs it. */
export async function runReference(request: ReferenceRequest): Promise<ReferenceOutcome> {
  const runners = [pythonOnnxruntime(), onnxruntimeNode(request.resolveFrom), interpreter()];
  const why: string[] = [];
  for (const runner of runners) {
    if (request.forced && runner.kind !== request.forced) continue;
    const probe = runner.probe();
    if ('unavailable' in probe) {
      why.push(`${runner.kind}: ${probe.unavailable}`);
      if (request.forced)
        throw new AgentError(
          'verify.reference-unavailable',
          `the requested reference ${runner.kind} is not available here: ${probe.unavailable}`,
        );
      continue;
    }
    const note = why.length === 0 ? `${runner.kind}${request.forced ? ' (requested)' : ''}` : `${runner.kind}, because ${why.join('; ')}`;
    request.log(`reference: ${note}`);
    const outputs = await runner.run(request, probe.version);
    return { kind: runner.kind, version: probe.version, note, outputs };
  }
  throw new AgentError('verify.reference-unavailable', `no reference is available: ${why.join('; ')}`);
}

// ---- python3 + onnxruntime ------------------------------------------------------------------------------------------

/** The script the agent writes next to the inputs: `python3 reference_onnxruntime.py MANIFEST.json`. */
export const PYTHON_REFERENCE_SCRIPT = `# Written by the AIT agent (verify): runs an ONNX model with onnxruntime (CPU) on .npy inputs.
import json, os, sys, time
import numpy as np
import onnxruntime as ort

manifest = json.load(open(sys.argv[1]))
session = ort.InferenceSession(manifest["model"], providers=["CPUExecutionProvider"])
input_types = {i.name: i.type for i in session.get_inputs()}
numpy_type = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
              "tensor(bool)": np.bool_}
output_names = [o.name for o in session.get_outputs()]
written = []
for batch in manifest["batches"]:
    feeds = {}
    for name, file in batch["inputs"].items():
        if name not in input_types:
            sys.exit("the ONNX model has no input named %r (it has %s)" % (name, ", ".join(input_types)))
        feeds[name] = np.load(file).astype(numpy_type.get(input_types[name], np.float32))
    started = time.time()
    values = session.run(None, feeds)
    files = {}
    for index, (name, value) in enumerate(zip(output_names, values)):
        value = np.ascontiguousarray(value)
        if value.dtype == np.float16:
            value = value.astype(np.float32)
        file = os.path.join(batch["outputDir"], "%d.npy" % index)
        np.save(file, value)
        files[name] = file
    written.append(files)
    print("reference: batch %d in %.3f s" % (batch["batchSize"], time.time() - started), flush=True)
json.dump({"version": ort.__version__, "outputs": written}, open(manifest["result"], "w"))
`;

function pythonOnnxruntime(): Runner {
  return {
    kind: 'python-onnxruntime',
    probe() {
      const r = spawnSync('python3', ['-c', 'import numpy, onnxruntime; print(onnxruntime.__version__)'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      if (r.error) return { unavailable: `python3 does not run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})` };
      if (r.status !== 0) return { unavailable: `python3 has no onnxruntime (${lastLine(r.stderr)})` };
      return { version: r.stdout.trim() };
    },
    async run(request) {
      const script = path.join(request.scratchDir, 'reference_onnxruntime.py');
      const manifest = path.join(request.scratchDir, 'reference_manifest.json');
      const resultFile = path.join(request.scratchDir, 'reference_result.json');
      fs.writeFileSync(script, PYTHON_REFERENCE_SCRIPT);
      fs.writeFileSync(manifest, JSON.stringify({ model: request.modelPath, batches: request.batches, result: resultFile }, null, 2));
      // Its output goes to the job's log as it comes (same process group: cancel ends it too).
      const child = spawn('python3', [script, manifest], { stdio: ['ignore', 'inherit', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString('utf8')).slice(-8000);
        process.stderr.write(d);
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      if (code !== 0) {
        throw new AgentError(
          'verify.reference-failed',
          `python3 ${script} (onnxruntime) on ${request.modelPath} exited with ${code}: ${lastLine(stderr)}`,
          {
            file: request.modelPath,
          },
        );
      }
      return (JSON.parse(fs.readFileSync(resultFile, 'utf8')) as { outputs: Record<string, string>[] }).outputs;
    },
  };
}

// ---- onnxruntime-node -----------------------------------------------------------------------------------------------

interface OrtTensor {
  type: string;
  dims: readonly number[];
  data: ArrayLike<number | bigint> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
}
type OrtInputData = Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;
interface OrtModule {
  Tensor: new (type: 'float32' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool', data: OrtInputData, dims: number[]) => unknown;
  InferenceSession: {
    create(file: string): Promise<{
      inputNames: readonly string[];
      outputNames: readonly string[];
      run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
    }>;
  };
}

function onnxruntimeNode(resolveFrom: string[]): Runner {
  let resolved: string | null = null;
  return {
    kind: 'onnxruntime-node',
    probe() {
      for (const dir of resolveFrom) {
        try {
          // A require that esbuild leaves alone: the package is the host's, never part of the bundle.
          resolved = createRequire(path.join(dir, 'noop.js')).resolve('onnxruntime-node/package.json');
          const version = (JSON.parse(fs.readFileSync(resolved, 'utf8')) as { version?: string }).version ?? null;
          return { version };
        } catch {
          // not under this directory
        }
      }
      return { unavailable: `onnxruntime-node is not installed under ${resolveFrom.join(' or ')}` };
    },
    async run(request) {
      const ort = createRequire(resolved!)(path.dirname(resolved!)) as OrtModule;
      const session = await ort.InferenceSession.create(request.modelPath);
      const written: Record<string, string>[] = [];
      for (const batch of request.batches) {
        const feeds: Record<string, unknown> = {};
        for (const [name, file] of Object.entries(batch.inputs)) {
          if (!session.inputNames.includes(name)) {
            throw new AgentError(
              'verify.reference-failed',
              `the ONNX model has no input named '${name}' (it has ${session.inputNames.join(', ')})`,
              {
                file: request.modelPath,
                tensor: name,
              },
            );
          }
          feeds[name] = ortInput(ort, readNpy(file));
        }
        const started = Date.now();
        const results = await session.run(feeds);
        const files: Record<string, string> = {};
        session.outputNames.forEach((name, index) => {
          const file = path.join(batch.outputDir, `${index}.npy`);
          writeNpy(file, ortTensorToNpy(results[name], name, request.modelPath));
          files[name] = file;
        });
        written.push(files);
        request.log(`reference: batch ${batch.batchSize} in ${((Date.now() - started) / 1000).toFixed(3)} s`);
      }
      return written;
    },
  };
}

/** A verify input (.npy: float32, or an integer type for ids and masks) as an onnxruntime-node tensor. */
function ortInput(ort: OrtModule, array: NpyArray): unknown {
  const bytes = array.data.buffer.slice(array.data.byteOffset, array.data.byteOffset + array.data.byteLength);
  switch (array.dtype) {
    case 'int64':
      return new ort.Tensor('int64', new BigInt64Array(bytes), array.shape);
    case 'int32':
      return new ort.Tensor('int32', new Int32Array(bytes), array.shape);
    case 'int8':
      return new ort.Tensor('int8', new Int8Array(bytes), array.shape);
    case 'uint8':
    case 'bool':
      return new ort.Tensor(array.dtype, new Uint8Array(bytes), array.shape);
    default:
      return new ort.Tensor('float32', Float32Array.from(npyToFloat64(array)), array.shape);
  }
}

function ortTensorToNpy(tensor: OrtTensor, name: string, modelPath: string): NpyArray {
  const dtype = (
    { float32: 'float32', float64: 'float64', int32: 'int32', int64: 'int64', uint8: 'uint8', int8: 'int8', bool: 'bool' } as const
  )[tensor.type as 'float32'];
  if (!dtype)
    throw new AgentError('verify.reference-failed', `reference output '${name}' has type ${tensor.type}, which verify cannot compare`, {
      file: modelPath,
      tensor: name,
    });
  const bytes = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  return { dtype, shape: [...tensor.dims], data: Buffer.from(bytes) };
}

// ---- the project's interpreter --------------------------------------------------------------------------------------

function interpreter(): Runner {
  return {
    kind: 'interpreter',
    probe: () => ({ version: null }),
    async run(request) {
      try {
        const model = importOnnxFile(request.modelPath);
        if (model.weights.absent > 0) {
          throw new AgentError(
            'verify.reference-no-weights',
            `${model.weights.absent} of the ${model.weights.count} initializers of ${request.modelPath} have no data${
              model.weights.missingFiles.length ? ` (missing external data: ${model.weights.missingFiles.join(', ')})` : ''
            }: the reference cannot run a model without its weights`,
            { file: request.modelPath },
          );
        }
        const inference = inferShapes(model.graph);
        const problems = inference.diagnostics.filter((d) => d.severity === 'error');
        if (problems.length) throw new CompileError(problems);
        const graph = model.graph;
        const written: Record<string, string>[] = [];
        for (const batch of request.batches) {
          const inputs = graph.inputs.map((name) => {
            const file = batch.inputs[name];
            if (!file)
              throw new AgentError('verify.reference-failed', `the compiled model gives no input '${name}' that the ONNX model takes`, {
                file: request.modelPath,
                tensor: name,
              });
            // floats as float32 (what the interpreter computes in), integer inputs (ids, masks) in their own type
            const array = readNpy(file);
            const float = array.dtype.startsWith('float');
            return makeTensor(float ? 'float32' : array.dtype, array.shape, npyToFloat64(array));
          });
          const started = Date.now();
          const outputs = runGraphNamed(graph, inputs);
          const files: Record<string, string> = {};
          [...outputs.entries()].forEach(([name, value], index) => {
            const file = path.join(batch.outputDir, `${index}.npy`);
            const float = value.data instanceof Float32Array;
            const data = float ? Float32Array.from(value.data as Float32Array) : Float64Array.from(value.data as Float64Array);
            writeNpy(file, { dtype: float ? 'float32' : 'float64', shape: value.shape, data: Buffer.from(data.buffer) });
            files[name] = file;
          });
          written.push(files);
          request.log(`reference: batch ${batch.batchSize} in ${((Date.now() - started) / 1000).toFixed(3)} s`);
        }
        return written;
      } catch (e) {
        if (!(e instanceof CompileError)) throw e;
        const first = e.diagnostics[0];
        throw new AgentError(
          'verify.reference-failed',
          `the interpreter cannot run ${request.modelPath}: ${e.diagnostics.map(formatDiagnostic).join('; ')}`,
          {
            ...first?.location,
            file: request.modelPath,
          },
        );
      }
    },
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] || '(no message)';
}
