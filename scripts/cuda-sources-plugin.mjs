// esbuild plugin: compiler/backends/cuda/codegen/sources.ts reads the CUDA runtime, kernels and templates from the
// checkout; bundles (dist/cli.js, dist/compile-worker.js, the extension) carry them inline instead, so code generation
// works from a packaged extension or an installed CLI with no checkout.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const cudaDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'compiler', 'backends', 'cuda');
const dirs = ['runtime', 'kernels', 'profiler', 'hip', 'hip-profiler', 'codegen/templates'];

export const cudaSourcesPlugin = {
  name: 'cuda-sources',
  setup(build) {
    build.onLoad({ filter: /[\\/]backends[\\/]cuda[\\/]codegen[\\/]sources\.ts$/ }, () => {
      const files = {};
      const watch = [];
      for (const dir of dirs)
        for (const f of fs.readdirSync(path.join(cudaDir, dir)).sort()) {
          const file = path.join(cudaDir, dir, f);
          if (!fs.statSync(file).isFile() || f.endsWith('.pyc')) continue;
          files[`${dir}/${f}`] = fs.readFileSync(file, 'utf8');
          watch.push(file);
        }
      return {
        contents:
          `const files = new Map(Object.entries(${JSON.stringify(files)}));\n` +
          `export const CUDA_SOURCE_DIRS = ${JSON.stringify(dirs)};\n` +
          `export function cudaSourceFiles() { return files; }\n`,
        loader: 'js',
        watchFiles: watch,
      };
    });
  },
};
