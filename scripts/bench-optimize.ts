/**
 * Optimizer speed: import, shape inference and every optimization pass for the shared models, timed per stage.
 * Prints a table and writes build/bench-optimize.json.   npm run bench:optimize [-- --repeat N]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import '../compiler/ops';
import { optimizeModel } from '../compiler/compile';
import { isKernel } from '../compiler/passes/cost';

const MODELS_DIR = path.resolve(__dirname, '..', '..', 'shared', 'models');
const models = [
  'resnet50',
  'resnet50_legacy',
  'vit_base_patch16_224',
  'vit_base_patch16_224_legacy',
  'vit_large_patch16_384',
  'maskrcnn_resnet50_fpn',
  'vitmatte',
];
const repeatArg = process.argv.indexOf('--repeat');
const repeat = repeatArg > 0 ? Number(process.argv[repeatArg + 1]) : 3;

interface Row {
  model: string;
  importMs: number;
  optimizeMs: number;
  totalMs: number;
  onnxNodes: number;
  nodes: number;
  kernels: number;
}

const rows: Row[] = [];
for (const name of models) {
  const file = path.join(MODELS_DIR, `${name}.onnx`);
  if (!fs.existsSync(file)) {
    console.log(`skipped ${name}: ${file} not found`);
    continue;
  }
  const runs: Row[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    const r = optimizeModel(file, {});
    const totalMs = performance.now() - t0;
    const importMs = r.stages.find((s) => s.name === 'import')?.ms ?? 0;
    runs.push({
      model: name,
      importMs,
      optimizeMs: totalMs - importMs,
      totalMs,
      onnxNodes: r.model.proto.graph?.node.length ?? 0,
      nodes: r.graph.nodes.length,
      kernels: r.graph.nodes.filter((n) => isKernel(r.graph, n)).length,
    });
  }
  runs.sort((a, b) => a.optimizeMs - b.optimizeMs);
  rows.push(runs[Math.floor(runs.length / 2)]);
}

console.log(`\noptimizer (median of ${repeat}), ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
console.log('model                          ONNX nodes  nodes  kernels  import ms  optimize ms');
for (const r of rows)
  console.log(
    `${r.model.padEnd(30)} ${String(r.onnxNodes).padStart(10)} ${String(r.nodes).padStart(6)} ${String(r.kernels).padStart(8)} ${r.importMs.toFixed(0).padStart(10)} ${r.optimizeMs.toFixed(0).padStart(12)}`,
  );
fs.mkdirSync('build', { recursive: true });
fs.writeFileSync(
  'build/bench-optimize.json',
  JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0]?.model, node: process.version, repeat, rows }, null, 2),
);
console.log('wrote build/bench-optimize.json');
