/**
 * Times the reference interpreter on the shared models (seeded random weights, batch 1) and prints where the
 * time goes by op type, next to onnxruntime (CPU, one thread) on the same model.
 *
 *   npm run bench:interpreter [-- resnet50 vit_base_patch16_224 ...]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import '../compiler/ops';
import { runGraph } from '../compiler/interpreter/interpreter';
import { makeTensor } from '../compiler/ir/tensor';
import { importOnnxFile } from '../compiler/onnx/import';
import { materializeWeights, normalSampler } from '../compiler/onnx/materialize';
import { inferShapes } from '../compiler/passes/shape-inference';
import { formatDiagnostic } from '../compiler/diagnostics';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');

const MODELS_DIR = path.resolve(__dirname, '..', '..', 'shared', 'models');

async function bench(name: string): Promise<void> {
  const file = path.join(MODELS_DIR, `${name}.onnx`);
  if (!fs.existsSync(file)) {
    console.log(`${name}: ${file} not found, skipped`);
    return;
  }
  const model = importOnnxFile(file);
  let start = performance.now();
  const { bytes } = materializeWeights(model, { seed: 1 });
  const materializeMs = performance.now() - start;
  const diagnostics = inferShapes(model.graph).diagnostics.filter((d) => d.severity === 'error');
  if (diagnostics.length) {
    console.log(`${name}: shape inference failed:\n${diagnostics.map(formatDiagnostic).join('\n')}`);
    return;
  }
  const declared = model.graph.tensor(model.graph.inputs[0]).shape ?? [];
  const shape = declared.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : 224));
  const input = makeTensor('float32', shape);
  const normal = normalSampler(7);
  const data = input.data as Float32Array;
  for (let i = 0; i < data.length; i++) data[i] = normal();

  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  start = performance.now();
  await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
  const ortMs = performance.now() - start;

  const opOf = new Map(model.graph.nodes.map((n) => [n.id, n.op]));
  const byOp = new Map<string, number>();
  let last = performance.now();
  start = last;
  runGraph(model.graph, [input], {
    onNode: (id) => {
      const now = performance.now();
      const op = opOf.get(id) ?? '?';
      byOp.set(op, (byOp.get(op) ?? 0) + now - last);
      last = now;
    },
  });
  const interpreterMs = performance.now() - start;
  const top = [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 6);
  console.log(
    `${name} [${shape.join(', ')}]: interpreter ${interpreterMs.toFixed(0)} ms, onnxruntime (1 thread) ${ortMs.toFixed(0)} ms, ` +
      `materialize ${materializeMs.toFixed(0)} ms\n  by op: ${top.map(([op, ms]) => `${op} ${ms.toFixed(0)} ms`).join(', ')}`,
  );
}

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  for (const name of names.length ? names : ['resnet50', 'vit_base_patch16_224']) await bench(name);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
