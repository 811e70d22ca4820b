// Bundles the extension, the CLI, the remote agent and the webview with esbuild.
// dist/cli.js and dist/agent.js run with plain node and no node_modules.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const common = {
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
  legalComments: 'none',
};

const nodeTargets = [
  { entryPoints: ['compiler/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  // The agent runs on GPU hosts with whatever node >= 18 they have.
  { entryPoints: ['remote-agent/main.ts'], outfile: 'dist/agent.js', banner: { js: '#!/usr/bin/env node' }, target: 'node18' },
  // Builds and benchmarks the native binding on a GPU host (native/gpu-check.sh).
  { entryPoints: ['native/cli.ts'], outfile: 'dist/ait-native.js', banner: { js: '#!/usr/bin/env node' }, target: 'node18' },
].filter((t) => t.entryPoints.every((e) => fs.existsSync(e)));

// `import text from 'pkg/file.js?raw'` inlines a file as a string: the webview starts its layout Web Worker from
// a blob URL made of that text (VS Code's webview CSP allows `worker-src blob:`, not worker files from disk).
const rawTextPlugin = {
  name: 'raw-text',
  setup(build) {
    build.onResolve({ filter: /\?raw$/ }, async (args) => {
      const r = await build.resolve(args.path.slice(0, -'?raw'.length), { kind: args.kind, resolveDir: args.resolveDir });
      if (r.errors.length) return { errors: r.errors };
      return { path: r.path, namespace: 'raw-text' };
    });
    build.onLoad({ filter: /.*/, namespace: 'raw-text' }, (args) => ({ contents: fs.readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

// native/sources.ts reads the native binding's sources from the checkout; bundles that run on GPU hosts (no checkout,
// no node_modules) carry them inline instead, so the agent can build the binding there.
const nativeSourcesPlugin = {
  name: 'native-sources',
  setup(build) {
    build.onLoad({ filter: /[\\/]native[\\/]sources\.ts$/ }, () => {
      const napiDir = path.dirname(require.resolve('node-addon-api/package.json'));
      const files = {
        'binding.cc': 'native/binding.cc',
        'ait_runtime.h': 'compiler/backends/cuda/runtime/ait_runtime.h',
        'napi.h': path.join(napiDir, 'napi.h'),
        'napi-inl.h': path.join(napiDir, 'napi-inl.h'),
        'napi-inl.deprecated.h': path.join(napiDir, 'napi-inl.deprecated.h'),
      };
      const texts = Object.fromEntries(Object.entries(files).map(([name, file]) => [name, fs.readFileSync(file, 'utf8')]));
      return { contents: `export function nativeSourceFiles() { return ${JSON.stringify(texts)}; }`, loader: 'ts' };
    });
  },
};

const browserTargets = [{ entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js' }].filter((t) =>
  t.entryPoints.every((e) => fs.existsSync(e)),
);

const configs = [
  ...nodeTargets.map((t) => ({
    ...common,
    ...t,
    platform: 'node',
    target: t.target ?? 'node20',
    format: 'cjs',
    // ssh2's optional native helpers: it falls back to pure JS when they are absent.
    external: [...(t.external ?? []), 'cpu-features', '*.node'],
    plugins: [nativeSourcesPlugin],
  })),
  ...browserTargets.map((t) => ({ ...common, ...t, platform: 'browser', target: 'es2022', format: 'iife', plugins: [rawTextPlugin] })),
];

if (watch) {
  for (const c of configs) await (await esbuild.context(c)).watch();
} else {
  await Promise.all(configs.map((c) => esbuild.build(c)));
  for (const t of nodeTargets) if (t.banner) fs.chmodSync(t.outfile, 0o755);
}
