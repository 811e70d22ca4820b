/**
 * The sources the native binding is built from, by file name (flat: binding.cc includes "ait_runtime.h" and
 * <napi.h> from the same directory). Read from the checkout here; in dist/agent.js, which runs on GPU hosts with no
 * checkout and no node_modules, scripts/build.mjs replaces this module with one holding the same texts inline.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

export function nativeSourceFiles(): Record<string, string> {
  const repoRoot = path.resolve(__dirname, '..');
  const napiDir = path.dirname(createRequire(__filename).resolve('node-addon-api/package.json'));
  const files: Record<string, string> = {
    'binding.cc': path.join(repoRoot, 'native', 'binding.cc'),
    'ait_runtime.h': path.join(repoRoot, 'compiler', 'backends', 'cuda', 'runtime', 'ait_runtime.h'),
    'napi.h': path.join(napiDir, 'napi.h'),
    'napi-inl.h': path.join(napiDir, 'napi-inl.h'),
    'napi-inl.deprecated.h': path.join(napiDir, 'napi-inl.deprecated.h'),
  };
  return Object.fromEntries(Object.entries(files).map(([name, file]) => [name, fs.readFileSync(file, 'utf8')]));
}
