// Bundles the extension, the CLI, the remote agent and the webview with esbuild.
// dist/cli.js and dist/agent.js run with plain node and no node_modules.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { cudaSourcesPlugin } from './cuda-sources-plugin.mjs';
import { embeddedScriptsPlugin } from './embedded-scripts-plugin.mjs';
import { nativeSourcesPlugin } from './native-sources-plugin.mjs';

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
  { entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'], noNative: true },
  // The extension's compiles run in this worker thread, off the extension host's event loop.
  { entryPoints: ['extension/compile/worker.ts'], outfile: 'dist/compile-worker.js', noNative: true },
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

// The extension host loads no native module: ssh2's optional native helpers (cpu-features, sshcrypto.node) become a
// module that throws, which ssh2 catches and answers with its pure-JS code paths.
const noNativePlugin = {
  name: 'no-native',
  setup(build) {
    build.onResolve({ filter: /^cpu-features$|\.node$/ }, (args) => ({ path: args.path, namespace: 'no-native' }));
    build.onLoad({ filter: /.*/, namespace: 'no-native' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`native module ${args.path} is not loaded in the extension host`)});`,
      loader: 'js',
    }));
  },
};

const browserTargets = [{ entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js' }].filter((t) =>
  t.entryPoints.every((e) => fs.existsSync(e)),
);

const configs = [
  ...nodeTargets.map(({ noNative, ...t }) => ({
    ...common,
    ...t,
    platform: 'node',
    target: t.target ?? 'node20',
    format: 'cjs',
    // ssh2's optional native helpers: it falls back to pure JS when they are absent.
    external: noNative ? t.external : [...(t.external ?? []), 'cpu-features', '*.node'],
    // noNative bundles (extension, compile worker) must load no native module; the native sources plugin embeds the
    // binding's C++ sources as text for the agent, which builds the addon on the GPU host.
    plugins: [...(noNative ? [noNativePlugin] : []), nativeSourcesPlugin, cudaSourcesPlugin, embeddedScriptsPlugin],
  })),
  ...browserTargets.map((t) => ({ ...common, ...t, platform: 'browser', target: 'es2022', format: 'iife', plugins: [rawTextPlugin] })),
];

// sql.js (the profile cache's SQLite) loads its WebAssembly module from the bundle's directory: dist/sql-wasm.wasm
// serves every bundle there (compiler/profiling/cache.ts findSqlWasm).
fs.mkdirSync('dist', { recursive: true });
fs.copyFileSync(createRequire(import.meta.url).resolve('sql.js/dist/sql-wasm.wasm'), 'dist/sql-wasm.wasm');

if (watch) {
  for (const c of configs) await (await esbuild.context(c)).watch();
} else {
  await Promise.all(configs.map((c) => esbuild.build(c)));
  for (const t of nodeTargets) if (t.banner) fs.chmodSync(t.outfile, 0o755);
}
