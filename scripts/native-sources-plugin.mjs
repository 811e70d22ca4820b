// esbuild plugin: native/sources.ts reads the native binding's sources from the checkout; bundles that run on GPU
// hosts (no checkout, no node_modules) carry them inline instead, so the agent can build the binding there.
// Used by scripts/build.mjs and by the tests' agent bundle (test/remote/helpers/agent-bundle.ts).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

export const nativeSourcesPlugin = {
  name: 'native-sources',
  setup(build) {
    build.onLoad({ filter: /[\\/]native[\\/]sources\.ts$/ }, () => {
      const napiDir = path.dirname(require.resolve('node-addon-api/package.json'));
      const files = {
        'binding.cc': path.join(repoRoot, 'native', 'binding.cc'),
        'ait_runtime.h': path.join(repoRoot, 'compiler', 'backends', 'cuda', 'runtime', 'ait_runtime.h'),
        'napi.h': path.join(napiDir, 'napi.h'),
        'napi-inl.h': path.join(napiDir, 'napi-inl.h'),
        'napi-inl.deprecated.h': path.join(napiDir, 'napi-inl.deprecated.h'),
      };
      const texts = Object.fromEntries(Object.entries(files).map(([name, file]) => [name, fs.readFileSync(file, 'utf8')]));
      return {
        contents: `export function nativeSourceFiles() { return ${JSON.stringify(texts)}; }`,
        loader: 'ts',
        watchFiles: Object.values(files),
      };
    });
  },
};
