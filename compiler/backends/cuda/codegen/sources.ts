/**
 * The CUDA sources every build ships: the runtime (runtime/), our kernels (kernels/) and the templates
 * (codegen/templates/), as a map from path (relative to compiler/backends/cuda) to text; also the profilers'
 * runners (profiler/: CUDA, hip-profiler/: the ROCm backend's CK profiler) and the HIP headers (hip/).
 *
 * Run from the checkout (tests, tsx), they are read from disk. The bundles (dist/cli.js, the extension's compile
 * worker) carry them inline instead — scripts/cuda-sources-plugin.mjs replaces this module at build time — so the
 * packaged extension and the CLI generate complete builds without a checkout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const CUDA_DIR = path.resolve(__dirname, '..');
export const CUDA_SOURCE_DIRS = ['runtime', 'kernels', 'profiler', 'hip', 'hip-profiler', path.join('codegen', 'templates')];

let cache: Map<string, string> | undefined;

export function cudaSourceFiles(): Map<string, string> {
  if (cache) return cache;
  cache = new Map();
  for (const dir of CUDA_SOURCE_DIRS)
    for (const f of fs.readdirSync(path.join(CUDA_DIR, dir)).sort()) {
      const file = path.join(CUDA_DIR, dir, f);
      if (fs.statSync(file).isFile() && !f.endsWith('.pyc'))
        cache.set(`${dir.split(path.sep).join('/')}/${f}`, fs.readFileSync(file, 'utf8'));
    }
  return cache;
}
