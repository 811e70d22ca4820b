/**
 * The native runtime binding (native/, node-addon-api; built on the GPU host against that host's Node headers).
 * bench runs through it when it is there and loads; otherwise through the build's `ait_bench` executable, and the
 * result says which was used.
 *
 * What the agent expects of the binding (docs/remote.md):
 *   bench({ buildDir, batchSizes, iterations, warmupIterations }) -> JSON-serializable result (or a Promise of one)
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

export interface NativeBenchOptions {
  buildDir: string;
  batchSizes: number[];
  iterations: number;
  warmupIterations: number;
}

export interface AitNativeBinding {
  bench(options: NativeBenchOptions): unknown;
}

/** Where the binding is looked for: $AIT_NATIVE_BINDING, then WORK/native/ait_native-abi<N>.node for this Node ABI. */
export function nativeBindingCandidates(workDir: string): string[] {
  const fromEnv = process.env.AIT_NATIVE_BINDING;
  return [...(fromEnv ? [path.resolve(fromEnv)] : []), path.join(workDir, 'native', `ait_native-abi${process.versions.modules}.node`)];
}

export type BindingLookup = { path: string; binding: AitNativeBinding } | { unavailable: string };

/** Finds and loads the binding; says why not when it cannot. */
export function loadNativeBinding(workDir: string): BindingLookup {
  const candidates = nativeBindingCandidates(workDir);
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) return { unavailable: `no native binding at ${candidates.join(' or ')}` };
  let loaded: unknown;
  try {
    loaded = createRequire(__filename)(found);
  } catch (e) {
    return { unavailable: `native binding ${found} does not load: ${(e as Error).message}` };
  }
  if (typeof (loaded as Partial<AitNativeBinding>)?.bench !== 'function') {
    return { unavailable: `native binding ${found} has no bench() function` };
  }
  return { path: found, binding: loaded as AitNativeBinding };
}

/** Entry of `--native-bench OPTIONS_JSON`: runs the binding's bench in a job and prints its result as one JSON line. */
export async function runNativeBench(workDir: string, optionsJson: string): Promise<number> {
  const lookup = loadNativeBinding(workDir);
  if ('unavailable' in lookup) {
    process.stderr.write(`ait-agent: ${lookup.unavailable}\n`);
    return 2;
  }
  const options = JSON.parse(optionsJson) as NativeBenchOptions;
  const result = await lookup.binding.bench(options);
  process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}
