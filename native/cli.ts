/**
 * dist/ait-native.js: builds the native binding and benchmarks a build directory through it (what native/gpu-check.sh
 * runs on a GPU host with a carried Node; plain node, no node_modules).
 *
 *   ait-native build OUT_DIR [--direct | --node-gyp] [--node-include DIR]     prints the .node path
 *   ait-native bench BINDING.node BUILD_DIR [--batch-sizes 1,8,64] [--iterations 100] [--warmup 10] [--json FILE]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildNativeBinding, type NativeBuildMethod } from './build';
import { benchBuildDir, loadNativeModule, type NativeBenchResult } from './index';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Latency rows (batch, graph, p50/p90/p99, items/s), then the slowest ops of the profile at each batch size. */
export function formatBenchTable(result: NativeBenchResult, topOps = 8): string {
  const lines = [`${result.model} (${result.library}), timer: ${result.timer}, weights: ${result.weights}`];
  lines.push('batch  graph   p50 ms    p90 ms    p99 ms    items/s');
  for (const r of result.results) {
    lines.push(
      `${String(r.batchSize).padStart(5)}  ${(r.graph ? 'on' : 'off').padEnd(5)} ${r.p50Ms.toFixed(4).padStart(9)} ${r.p90Ms.toFixed(4).padStart(9)} ` +
        `${r.p99Ms.toFixed(4).padStart(9)} ${r.itemsPerSecond.toFixed(1).padStart(10)}`,
    );
  }
  for (const p of result.profiles) {
    lines.push(`per-op profile at batch ${p.batchSize} (${p.runs} runs, ${p.totalMeanMs.toFixed(4)} ms per run, op by op):`);
    for (const op of [...p.ops].sort((a, b) => b.meanMs - a.meanMs).slice(0, topOps)) {
      lines.push(`  ${op.meanMs.toFixed(4).padStart(9)} ms  ${op.id.padEnd(8)} ${op.name}  [${op.kernel}]`);
    }
  }
  for (const note of result.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === 'build' && rest[0]) {
    const method: NativeBuildMethod | undefined = rest.includes('--direct')
      ? 'direct'
      : rest.includes('--node-gyp')
        ? 'node-gyp'
        : undefined;
    const built = await buildNativeBinding({ outDir: path.resolve(rest[0]), method, nodeIncludeDir: flag(rest, '--node-include') });
    process.stdout.write(`${built.path}\n`);
    process.stderr.write(`built with ${built.method}; log ${built.logPath}\n`);
    return 0;
  }
  if (command === 'bench' && rest[0] && rest[1]) {
    const binding = loadNativeModule(rest[0]);
    const result = await benchBuildDir(binding, {
      buildDir: path.resolve(rest[1]),
      batchSizes: (flag(rest, '--batch-sizes') ?? '1,8,64').split(',').map(Number),
      iterations: Number(flag(rest, '--iterations') ?? 100),
      warmupIterations: Number(flag(rest, '--warmup') ?? 10),
    });
    const jsonFile = flag(rest, '--json');
    if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(formatBenchTable(result) + '\n');
    return 0;
  }
  process.stderr.write('usage: ait-native build OUT_DIR [--direct|--node-gyp] [--node-include DIR]\n');
  process.stderr.write(
    '       ait-native bench BINDING.node BUILD_DIR [--batch-sizes 1,8,64] [--iterations N] [--warmup N] [--json FILE]\n',
  );
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: Error & { code?: string }) => {
    process.stderr.write(`ait-native: ${e.code ? `[${e.code}] ` : ''}${e.message}\n`);
    process.exitCode = 1;
  },
);
