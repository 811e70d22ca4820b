/**
 * How verify runs the compiled model: through the native binding (native/), or, where the binding is unavailable,
 * through python3 and the build's own ait_model.py (ctypes, NumPy), by the script below. Both give the model's
 * description, its outputs at a batch size, and for a debug run (per-node verify) every op's output as a .npy file
 * named by its graph.json node id.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeBindingModule, NativeDType, NativeModelInfo, NativeTensorInfo } from '../../native/index';
import { profileFromRuntime } from '../../compiler/cli/profile-files';
import type { ProfileJson } from '../../webview/contract';
import { AgentError } from './errors';
import { npyToFloat64, readNpy, writeNpy, type NpyArray } from './npy';

export type CompiledRunnerKind = 'native-binding' | 'python-ait_model';

export interface RunnerModelInfo {
  name: string;
  maxBatch: number;
  timer?: NativeModelInfo['timer'];
  inputs: NativeTensorInfo[];
  outputs: NativeTensorInfo[];
  unboundWeights: number;
  /** The library has AITModelRunDebug (per-node verify works). */
  debugRuns: boolean;
}

/** One op's output of a debug run, written as a .npy file (float32 for float16/bfloat16 storage). */
export interface DebugNodeFile {
  id: string;
  /** Storage dtype on the device. */
  dtype: string;
  shape: number[];
  file: string;
}

export interface RunInput {
  /** The bytes the model takes (its input dtype). */
  bytes: Buffer;
  /** The same values as a float32 .npy file. */
  file: string;
}

export interface CompiledRunner {
  kind: CompiledRunnerKind;
  info: RunnerModelInfo;
  /** Runs at `batchSize`; with `debugDir`, a debug run whose node outputs are written there. */
  /** `shapes`: each output's shape when the runner knows it (a model whose sizes the data decides). */
  run(
    batchSize: number,
    inputs: RunInput[],
    debugDir?: string,
  ): Promise<{ outputs: Float64Array[]; shapes?: number[][]; nodes?: DebugNodeFile[] }>;
  /**
   * The runtime's per-op profile (AITModelSetProfiling) over `iterations` runs at `batchSize` on `inputs`, as an
   * ait-profile (docs/graph-format.md) keyed by graph.json node ids.
   */
  profile(batchSize: number, inputs: RunInput[], iterations: number, gpu: { name: string; arch?: string }): Promise<ProfileJson>;
  close(): void;
}

/** The library through the native binding. */
export async function nativeRunner(binding: NativeBindingModule, library: string, weightsFile: string): Promise<CompiledRunner> {
  const model = await binding.openModel(library, { weightsPath: weightsFile });
  const info = model.info();
  return {
    kind: 'native-binding',
    info: { ...info, debugRuns: info.debugRuns === true },
    async run(batchSize, inputs, debugDir) {
      const bytes = inputs.map((i) => i.bytes);
      if (!debugDir) {
        const results = await model.run(batchSize, bytes);
        return {
          outputs: info.outputs.map((o, i) => decodeOutput(o.dtype, results[i])),
          ...(results.shapes ? { shapes: results.shapes } : {}),
        };
      }
      const { outputs, shapes, nodes } = await model.runDebug(batchSize, bytes);
      const files = nodes.map((n, index) => {
        const file = path.join(debugDir, `${index}.npy`);
        writeNpy(file, nodeNpy(n.dtype, n.shape, n.data));
        return { id: n.id, dtype: n.dtype, shape: n.shape, file };
      });
      return { outputs: info.outputs.map((o, i) => decodeOutput(o.dtype, outputs[i])), ...(shapes ? { shapes } : {}), nodes: files };
    },
    async profile(batchSize, inputs, iterations, gpu) {
      await model.run(
        batchSize,
        inputs.map((i) => i.bytes),
        { returnOutputs: false },
      ); // the inputs into the binding's buffers, which the profiled runs read
      const runtime = await model.profile({ batchSize, iterations, warmupIterations: 3 });
      return profileFromRuntime({ ...runtime, batchSize }, gpu);
    },
    close: () => model.close(),
  };
}

/** A node output's bytes as a .npy array: float16/bfloat16 as float32, other types as they are. */
function nodeNpy(dtype: NativeDType, shape: number[], data: Buffer): NpyArray {
  if (dtype === 'float16' || dtype === 'bfloat16') {
    return { dtype: 'float32', shape, data: Buffer.from(Float32Array.from(decodeOutput(dtype, data)).buffer) };
  }
  return { dtype: dtype as NpyArray['dtype'], shape, data };
}

/** A compiled output's bytes as doubles. */
export function decodeOutput(dtype: NativeDType, bytes: Buffer): Float64Array {
  const npyType = dtype === 'bfloat16' ? null : (dtype as NpyArray['dtype']);
  if (npyType) return npyToFloat64({ dtype: npyType, shape: [], data: bytes });
  const out = new Float64Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = new Float32Array(new Uint32Array([bytes.readUInt16LE(2 * i) << 16]).buffer)[0];
  return out;
}

// ---- python3 + the build's ait_model.py -----------------------------------------------------------------------------

/** The script the agent writes next to the inputs: `python3 compiled_ait_model.py MANIFEST.json`. */
export const PYTHON_RUNNER_SCRIPT = `# Written by the AIT agent (verify): runs the compiled model through the build's ait_model.py (ctypes, NumPy).
import ctypes, importlib.util, json, os, sys
import numpy as np

m = json.load(open(sys.argv[1]))
DTYPES = {1: "float16", 2: "float32", 3: "bfloat16", 4: "int32", 5: "int64", 6: "int8", 7: "uint8", 8: "bool"}
lib = ctypes.CDLL(m["library"])
debug_runs = hasattr(lib, "AITModelRunDebug")
if m.get("needDebug") and not debug_runs:
    sys.stderr.write("%s has no AITModelRunDebug\\n" % m["library"])
    sys.exit(3)  # the agent says: built before debug runs
spec = importlib.util.spec_from_file_location("ait_model", m["module"])
ait_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ait_model)
model = ait_model.AITModel(m["library"], m["weights"])


def tensor(s, itemsize):
    shape = list(s["max_shape"])
    count = 1
    for d in shape:
        count *= d
    return {"name": s["name"], "dtype": DTYPES.get(s["dtype"], "unknown"), "maxShape": shape, "batchAxis": s["batch_axis"],
            "maxBytes": count * itemsize.get(s["dtype"], 1)}


if m["op"] == "info":
    lib.AITModelGetName.restype, lib.AITModelGetName.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    sizes = {k: v[2] for k, v in ait_model._DTYPES.items()}
    info = {"name": lib.AITModelGetName(model._model).decode(), "maxBatch": model.max_batch,
            "inputs": [tensor(s, sizes) for s in model.inputs], "outputs": [tensor(s, sizes) for s in model.outputs],
            "unboundWeights": model.num_unbound_weights, "debugRuns": debug_runs and hasattr(model, "run_debug")}
    json.dump(info, open(m["result"], "w"))
    sys.exit(0)

inputs = [np.load(f) for f in m["inputs"]]
if m["op"] == "profile":  # the runtime's per-op profile as an ait-profile (ait_model.py's profile())
    json.dump(model.profile(inputs, iterations=m["iterations"], batch=m["batch"], gpu=m["gpu"]), open(m["result"], "w"))
    sys.exit(0)
written = None
if m.get("debugDir"):
    outputs, nodes = model.run_debug(inputs, batch=m["batch"])
    written = []
    for node_id, value in nodes.items():
        f = os.path.join(m["debugDir"], "%d.npy" % len(written))
        np.save(f, np.ascontiguousarray(value))
        written.append({"id": node_id, "dtype": str(value.dtype), "shape": list(value.shape), "file": f})
else:
    outputs = model.run(inputs, batch=m["batch"])
files = []
for k, y in enumerate(outputs):
    f = os.path.join(m["outputDir"], "%d.npy" % k)
    np.save(f, np.ascontiguousarray(np.asarray(y, dtype=np.float64)))
    files.append(f)
json.dump({"outputs": files, "nodes": written}, open(m["result"], "w"))
`;

export const AIT_MODEL_PY = 'ait_model.py';

/** Null when python3 with NumPy and the build's ait_model.py are there, else why not. */
export function pythonRunnerUnavailable(buildDir: string): string | null {
  if (!fs.existsSync(path.join(buildDir, AIT_MODEL_PY))) return `${path.join(buildDir, AIT_MODEL_PY)} is not there`;
  const r = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `python3 does not run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`;
  if (r.status !== 0) return `python3 has no numpy (${lastLine(r.stderr)})`;
  return null;
}

/** The library through python3 and the build's ait_model.py (one process per call; the model is opened each time). */
export async function pythonRunner(
  buildDir: string,
  library: string,
  weightsFile: string,
  scratchDir: string,
  needDebug: boolean,
): Promise<CompiledRunner> {
  const script = path.join(scratchDir, 'compiled_ait_model.py');
  fs.writeFileSync(script, PYTHON_RUNNER_SCRIPT);
  let call = 0;
  const invoke = async <T>(request: Record<string, unknown>): Promise<T> => {
    const n = call++;
    const manifest = path.join(scratchDir, `compiled_manifest_${n}.json`);
    const result = path.join(scratchDir, `compiled_result_${n}.json`);
    const common = { module: path.join(buildDir, AIT_MODEL_PY), library, weights: weightsFile, result, needDebug };
    fs.writeFileSync(manifest, JSON.stringify({ ...common, ...request }, null, 2));
    const child = spawn('python3', [script, manifest], { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-8000);
      process.stderr.write(d);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    if (code === 3 && needDebug) throw noDebugSupport(library);
    if (code !== 0)
      throw new AgentError(
        'verify.compiled-failed',
        `python3 ${script} (${AIT_MODEL_PY}, ${request.op}) on ${library} exited with ${code}: ${lastLine(stderr)}`,
        { file: library },
      );
    return JSON.parse(fs.readFileSync(result, 'utf8')) as T;
  };
  const info = await invoke<RunnerModelInfo>({ op: 'info' });
  return {
    kind: 'python-ait_model',
    info,
    async run(batchSize, inputs, debugDir) {
      const outputDir = path.join(scratchDir, `compiled_outputs_${call}`);
      fs.mkdirSync(outputDir, { recursive: true });
      const r = await invoke<{ outputs: string[]; nodes: DebugNodeFile[] | null }>({
        op: 'run',
        batch: batchSize,
        inputs: inputs.map((i) => i.file),
        outputDir,
        debugDir: debugDir ?? null,
      });
      const arrays = r.outputs.map((f) => readNpy(f)); // ait_model.py gives outputs their shapes after the run
      return { outputs: arrays.map(npyToFloat64), shapes: arrays.map((a) => a.shape), ...(r.nodes ? { nodes: r.nodes } : {}) };
    },
    profile: (batchSize, inputs, iterations, gpu) =>
      invoke<ProfileJson>({ op: 'profile', batch: batchSize, inputs: inputs.map((i) => i.file), iterations, gpu }),
    close: () => undefined,
  };
}

/** The error of per-node verify on a library built before debug runs. */
export function noDebugSupport(library: string): AgentError {
  return new AgentError(
    'verify.no-debug-support',
    `${library} has no debug runs (it exports no AITModelRunDebug: built by an older compiler, before model ABI 3): ` +
      'compile the model again to verify it per node',
    { file: library },
  );
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] || '(no message)';
}
