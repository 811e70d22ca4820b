import * as fs from 'node:fs';
import * as path from 'node:path';

/** The directory holding runtime/, kernels/ and codegen/templates/ (found from this file or from a bundle in dist/). */
export function cudaSourcesDir(): string {
  const candidates = [
    path.resolve(__dirname, '..'),
    path.resolve(__dirname, '..', 'compiler', 'backends', 'cuda'),
    path.resolve(__dirname, 'compiler', 'backends', 'cuda'),
  ];
  for (const c of candidates) if (fs.existsSync(path.join(c, 'runtime', 'ait_model.h'))) return c;
  return candidates[0];
}
