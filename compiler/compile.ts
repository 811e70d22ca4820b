/**
 * The compile driver: import → shape inference and folding → (optimization passes, code generation and build
 * as they land) → DIR/graph.json. Used by the CLI and the extension; knows nothing of either.
 *
 * Output is written to a temporary sibling directory and renamed into place at the end, so a failed or
 * cancelled compile never leaves a half-written output directory behind.
 */
import './ops/index';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, Diagnostic, error } from './diagnostics';
import { graphToJson } from './ir/serialize';
import { ImportOptions, importOnnxFile } from './onnx/import';
import { inferShapes } from './passes/shape-inference';

export interface CompileOptions extends ImportOptions {
  /** Output directory (default: build/<model name>). */
  out?: string;
  target?: string;
  /** Pass names after which to dump the graph ('all' for every pass). */
  dumpAfter?: string[];
  /** Progress messages (stage names and details). */
  log?: (message: string) => void;
  /** Cancels the compile between stages. */
  signal?: AbortSignal;
}

export interface StageReport {
  name: string;
  ms: number;
  detail: string;
}

export interface CompileResult {
  ok: boolean;
  outDir: string;
  graphJsonPath: string;
  modelName: string;
  stages: StageReport[];
  diagnostics: Diagnostic[];
}

export function modelNameOf(file: string): string {
  return path.basename(file).replace(/\.onnx$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_');
}

export function compileModel(file: string, options: CompileOptions = {}): CompileResult {
  const modelName = modelNameOf(file);
  const outDir = path.resolve(options.out ?? path.join('build', modelName));
  const log = options.log ?? (() => {});
  const stages: StageReport[] = [];
  const checkCancelled = () => {
    if (options.signal?.aborted) throw new CompileError(error('compile.cancelled', 'the compile was cancelled', { file }));
  };
  const stage = <T>(name: string, run: () => T, detail: (r: T) => string): T => {
    checkCancelled();
    const t0 = performance.now();
    const r = run();
    const report = { name, ms: performance.now() - t0, detail: detail(r) };
    stages.push(report);
    log(`${name.padEnd(16)} ${report.ms.toFixed(0).padStart(6)} ms  ${report.detail}`);
    return r;
  };

  const model = stage('import', () => importOnnxFile(file, options), (m) => `${m.graph.nodes.length} ONNX nodes, ${m.weights.count} parameters (weights ${m.weights.absent ? 'absent' : 'present'})`);
  const graph = model.graph;
  const inference = stage('shape-inference', () => inferShapes(graph), (r) => `${r.foldedNodes.size} nodes folded to constants, ${r.diagnostics.filter((d) => d.severity === 'error').length} errors`);
  const diagnostics = [...model.diagnostics, ...inference.diagnostics];

  checkCancelled();
  const tmp = `${outDir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const json = graphToJson(graph, { modelName, info: model.info, sections: { target: options.target ?? null } });
    fs.writeFileSync(path.join(tmp, 'graph.json'), JSON.stringify(json));
    checkCancelled();
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(outDir), { recursive: true });
    fs.renameSync(tmp, outDir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return {
    ok: !diagnostics.some((d) => d.severity === 'error'),
    outDir,
    graphJsonPath: path.join(outDir, 'graph.json'),
    modelName,
    stages,
    diagnostics,
  };
}
