/**
 * Builds the native binding against the running Node's headers, into a directory of its own (the agent's
 * WORK/native/), once per (Node ABI, source hash): node-gyp where there is one, else a direct compiler call (the
 * official Node tarballs carry include/node but no npm or node-gyp).
 * Command line: native/cli.ts (`build`).
 */
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeSourceFiles } from './sources';

export type NativeBuildMethod = 'node-gyp' | 'direct';

export interface NativeBuildOptions {
  /** Where the .node file, its sources and its build log go. */
  outDir: string;
  /** Forces a method; by default node-gyp where found, else the direct compiler call. */
  method?: NativeBuildMethod;
  /** Directory holding node_api.h; by default found next to the running Node (see nodeIncludeDir). */
  nodeIncludeDir?: string;
  /** C++ compiler of the direct call; default $CXX, else c++. */
  compiler?: string;
}

export interface NativeBuild {
  path: string;
  method: NativeBuildMethod | 'cached';
  /** Path of the build's log (commands and their output). */
  logPath: string;
}

/** A failed build: the message says what ran, and the log holds its output. */
export class NativeBuildError extends Error {
  constructor(
    message: string,
    readonly logPath: string,
  ) {
    super(message);
    this.name = 'NativeBuildError';
  }
}

/** First 16 hex digits of the SHA-256 over the source files (names and contents). */
export function nativeSourceHash(files: Record<string, string> = nativeSourceFiles()): string {
  const hash = crypto.createHash('sha256');
  for (const name of Object.keys(files).sort()) hash.update(`${name}\0${files[name]}\0`);
  return hash.digest('hex').slice(0, 16);
}

/** File name of the binding for this Node ABI and these sources. */
export function nativeBindingFileName(sourceHash: string = nativeSourceHash()): string {
  return `ait_native-abi${process.versions.modules}-${sourceHash}.node`;
}

/**
 * The running Node's header directory (with node_api.h): $AIT_NODE_INCLUDE_DIR, else PREFIX/include/node for the
 * prefix of the node executable (an unpacked official tarball: bin/node and include/node) or Node's configured prefix.
 */
export function nodeIncludeDir(): string | { missing: string } {
  const prefixes = [path.resolve(path.dirname(process.execPath), '..'), String(process.config.variables.node_prefix ?? '')];
  const candidates = [
    ...(process.env.AIT_NODE_INCLUDE_DIR ? [process.env.AIT_NODE_INCLUDE_DIR] : []),
    ...prefixes.filter((p) => p !== '').map((p) => path.join(p, 'include', 'node')),
  ];
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
  if (found) return found;
  return {
    missing: `no Node headers (node_api.h) in ${candidates.join(' or ')}; unpack the official Node tarball (bin/ and include/) or set AIT_NODE_INCLUDE_DIR`,
  };
}

/** node-gyp on PATH or the one bundled with npm next to this Node; null when neither is there. */
export function findNodeGyp(): string[] | null {
  const bundled = path.resolve(
    path.dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  );
  if (fs.existsSync(bundled)) return [process.execPath, bundled];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'node-gyp'))) return [path.join(dir, 'node-gyp')];
  }
  return null;
}

const COMPILE_FLAGS = ['-std=c++17', '-O2', '-fPIC', '-fvisibility=hidden', '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS'];

/** binding.gyp of the flat source directory that buildNativeBinding writes. */
function flatGypFile(): string {
  const target = {
    target_name: 'ait_native',
    sources: ['binding.cc'],
    include_dirs: ['.'],
    defines: ['NAPI_VERSION=8', 'NAPI_DISABLE_CPP_EXCEPTIONS'],
    cflags_cc: ['-std=c++17', '-fvisibility=hidden'],
    // Node's common.gypi turns C++ exceptions off; the binding catches std::bad_alloc and the like on worker threads.
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions'],
    libraries: ['-ldl'],
  };
  return JSON.stringify({ targets: [target] }, null, 2) + '\n';
}

export async function buildNativeBinding(options: NativeBuildOptions): Promise<NativeBuild> {
  const files = nativeSourceFiles();
  const hash = nativeSourceHash(files);
  const outPath = path.join(options.outDir, nativeBindingFileName(hash));
  const logPath = path.join(options.outDir, `build-abi${process.versions.modules}-${hash}.log`);
  if (fs.existsSync(outPath)) return { path: outPath, method: 'cached', logPath };

  fs.mkdirSync(options.outDir, { recursive: true });
  const srcDir = fs.mkdtempSync(path.join(options.outDir, `src-${hash}-`));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(srcDir, name), text);
  fs.writeFileSync(path.join(srcDir, 'binding.gyp'), flatGypFile());
  fs.writeFileSync(logPath, '');
  const log = (text: string) => fs.appendFileSync(logPath, text.endsWith('\n') ? text : text + '\n');

  const include = options.nodeIncludeDir ?? nodeIncludeDir();
  if (typeof include !== 'string') throw new NativeBuildError(include.missing, logPath);
  const gyp = options.method === 'direct' ? null : findNodeGyp();
  if (options.method === 'node-gyp' && !gyp)
    throw new NativeBuildError('node-gyp was asked for but is not on PATH nor bundled with npm', logPath);

  // Built under a temporary name and renamed: agents building at the same time never load a half-written file.
  const tmpPath = `${outPath}.tmp-${process.pid}`;
  let method: NativeBuildMethod;
  if (gyp) {
    method = 'node-gyp';
    // --nodedir is the prefix whose include/node holds the headers: no download of headers.
    const nodeDir = path.resolve(include, '..', '..');
    await runLogged('node-gyp', gyp[0], [...gyp.slice(1), 'rebuild', `--nodedir=${nodeDir}`], srcDir, log, logPath);
    fs.copyFileSync(path.join(srcDir, 'build', 'Release', 'ait_native.node'), tmpPath);
  } else {
    method = 'direct';
    const compiler = options.compiler ?? process.env.CXX ?? 'c++';
    const args = [...COMPILE_FLAGS, '-shared', `-I${include}`, `-I${srcDir}`, path.join(srcDir, 'binding.cc'), '-o', tmpPath, '-ldl'];
    await runLogged(compiler, compiler, args, srcDir, log, logPath);
  }
  fs.renameSync(tmpPath, outPath);
  fs.rmSync(srcDir, { recursive: true, force: true });
  log(`built ${outPath} (${method})`);
  return { path: outPath, method, logPath };
}

function runLogged(label: string, command: string, args: string[], cwd: string, log: (t: string) => void, logPath: string): Promise<void> {
  log(`$ ${[command, ...args].join(' ')}`);
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      log(stdout);
      log(stderr);
      if (!error) return resolve();
      const firstError = `${stderr}`.split('\n').find((l) => /error/i.test(l)) ?? error.message;
      reject(
        new NativeBuildError(
          `building the native binding failed (${path.basename(label)}): ${firstError.trim()}; log: ${logPath}`,
          logPath,
        ),
      );
    });
  });
}
