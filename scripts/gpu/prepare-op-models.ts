/**
 * Developer-machine half of the op-model GPU check: writes each model of scripts/gpu/op-models/*.ts (small ONNX
 * models with weights, one op family each) and compiles it for cuda:sm90 and cuda:sm80 with the CLI. The GPU host
 * then builds every directory and compares each with onnxruntime (scripts/gpu/check_op_models.py).
 *
 *   npm run build && npx tsx scripts/gpu/prepare-op-models.ts build/gpu-ops
 * Writes OUT/<model>.onnx, OUT/<model>_<arch>/ (ait compile output) and OUT/manifest.json.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { opModels as convModels } from './op-models/conv';
import { opModels as convTransposeModels } from './op-models/conv_transpose';
import { opModels as resizeMatmulModels } from './op-models/resize_matmul';
import { opModels as videoModels } from './op-models/video3d';
import type { OpModel } from './op-models/types';

const out = path.resolve(process.argv[2] ?? 'build/gpu-ops');
const cli = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const models: OpModel[] = [...convModels, ...convTransposeModels, ...resizeMatmulModels, ...videoModels];
const archs = ['sm90', 'sm80'] as const;

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const builds: { build: string; model: string; onnx: string; arch: string; batches: number[]; description: string }[] = [];
for (const model of models) {
  const onnx = `${model.name}.onnx`;
  fs.writeFileSync(path.join(out, onnx), model.onnx);
  for (const arch of archs) {
    const build = `${model.name}_${arch}`;
    execFileSync(
      process.execPath,
      [
        cli,
        'compile',
        path.join(out, onnx),
        '--target',
        `cuda:${arch}`,
        '--out',
        path.join(out, build),
        '--max-batch',
        String(model.maxBatch),
      ],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    builds.push({ build, model: model.name, onnx, arch, batches: model.batches, description: model.description });
  }
}
fs.writeFileSync(path.join(out, 'manifest.json'), JSON.stringify({ builds }, null, 2));
console.log(`compiled ${models.length} models for ${archs.join(', ')} into ${out}`);
