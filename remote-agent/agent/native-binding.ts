/**
 * The native runtime binding (native/, node-addon-api), built on the GPU host against that host's Node headers into
 * WORK/native/ait_native-abi<N>-<source hash>.node, once per (Node ABI, source hash). bench runs through it when it
 * builds and loads; otherwise through the build's `ait_bench` executable, and the result says which was used and why.
 *
 * What the agent expects of the binding (docs/remote.md):
 *   bench({ buildDir, batchSizes, iterations, warmupIterations, profileIterations? }) -> JSON-serializable result
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildNativeBinding, nativeBindingFileName } from '../../native/build';
import { benchBuildDir, loadNativeModule, type NativeBenchResult, type NativeBindingModule } from '../../native/index';
import { runVerifyJob } from './verify';

export interface NativeBenchOptions {
  buildDir: string;
  batchSizes: number[];
  iterations: number;
  warmupIterations: number;
  /** Profiled runs per batch size for the per-op profiles (0: none; default 10). */
  profileIterations?: number;
}

export interface AitNativeBinding {
  bench(options: NativeBenchOptions): Promise<NativeBenchResult>;
  /** The loaded module itself (verify opens models through it). */
  module: NativeBindingModule;
}

/**
 * Where the binding is looked for: $AIT_NATIVE_BINDING, then WORK/native/ait_native-abi<N>-<hash>.node.
 * AIT_NATIVE_BINDING=none switches it off (bench then uses ait_bench, verify python3 with ait_model.py).
 */
export function nativeBindingCandidates(workDir: string): string[] {
  const fromEnv = process.env.AIT_NATIVE_BINDING;
  return [...(fromEnv ? [path.resolve(fromEnv)] : []), path.join(workDir, 'native', nativeBindingFileName())];
}

const SWITCHED_OFF = 'AIT_NATIVE_BINDING=none: the native binding is switched off';
const switchedOff = () => process.env.AIT_NATIVE_BINDING === 'none';

export type BindingLookup = { path: string; binding: AitNativeBinding } | { unavailable: string };

function bindingAt(file: string): BindingLookup {
  try {
    const module = loadNativeModule(file);
    return { path: file, binding: { bench: (options) => benchBuildDir(module, options), module } };
  } catch (e) {
    return { unavailable: `native binding ${file} does not load: ${(e as Error).message}` };
  }
}

/** Finds and loads an already built binding; says why not when it cannot. */
export function loadNativeBinding(workDir: string): BindingLookup {
  if (switchedOff()) return { unavailable: SWITCHED_OFF };
  const candidates = nativeBindingCandidates(workDir);
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) return { unavailable: `no native binding at ${candidates.join(' or ')} (built on the first bench)` };
  return bindingAt(found);
}

/** Loads the binding, building it first when this Node ABI and these sources have none yet. */
export async function ensureNativeBinding(workDir: string): Promise<BindingLookup> {
  if (switchedOff()) return { unavailable: SWITCHED_OFF };
  const existing = loadNativeBinding(workDir);
  if ('binding' in existing || fs.existsSync(nativeBindingCandidates(workDir).at(-1)!)) return existing;
  try {
    const built = await buildNativeBinding({ outDir: path.join(workDir, 'native') });
    return bindingAt(built.path);
  } catch (e) {
    return { unavailable: `the native binding could not be built here: ${(e as Error).message}` };
  }
}

/** Entry of `--native-bench OPTIONS_JSON`: runs the binding's bench in a job and prints its result as one JSON line. */
export async function runNativeBench(workDir: string, optionsJson: string): Promise<number> {
  const lookup = await ensureNativeBinding(workDir);
  if ('unavailable' in lookup) {
    process.stderr.write(`ait-agent: ${lookup.unavailable}\n`);
    return 2;
  }
  const options = JSON.parse(optionsJson) as NativeBenchOptions;
  const result = await lookup.binding.bench(options);
  process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}

/**
 * Entry of `--verify-job OPTIONS_JSON`: compares the compiled model with the reference (verify.ts); without the
 * binding, the compiled model runs through python3 and the build's ait_model.py.
 */
export async function runNativeVerify(workDir: string, optionsJson: string): Promise<number> {
  const lookup = await ensureNativeBinding(workDir);
  return runVerifyJob('unavailable' in lookup ? lookup : lookup.binding.module, optionsJson);
}
