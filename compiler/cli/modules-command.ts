/**
 * `ait modules DIR [--profile profile.json] [--torch-times torch-module-times.json] [--depth N] [--json]`: the
 * per-module table from saved files, without a run: our time per module from a per-op profile (an ait-profile of
 * this compile: `ait remote build --bench`, ait_model.py's profile(), profile-verify.json of a timed per-node
 * verify) summed over DIR/graph.json's scopes, PyTorch eager's from module_times.py's output (scripts/gpu/
 * module_times.py, or DIR/torch-module-times.json of `ait remote verify --per-node --torch-model`), and the errors
 * of DIR/verify-per-node.json when it is there (compiler/verify/module-times.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, type Diagnostic, error, formatDiagnostic } from '../diagnostics';
import { addModuleTimes, parseTorchTimes, type TorchModuleTimes } from '../verify/module-times';
import type { GraphLike, ModuleRow, PerNodeReport } from '../verify/per-node';
import { loadGraphJson, loadProfile } from './graph-command';
import { describeTimes, formatModules, PER_NODE_REPORT_FILE } from './verify-command';

export interface ModulesCommandOptions {
  profile?: string;
  torchTimes?: string;
  /** Module table depth (default 2). */
  depth?: number;
  json?: boolean;
}

export function runModules(dir: string, opts: ModulesCommandOptions, out: (s: string) => void, err: (s: string) => void = out): number {
  const diagnostics: Diagnostic[] = [];
  try {
    if (!opts.profile && !opts.torchTimes)
      throw new CompileError(
        error('cli.bad-option', 'give the times to join: --profile PROFILE.json (ours) and/or --torch-times TIMES.json (PyTorch)'),
      );
    const { graph, file: graphFile } = loadGraphJson(dir);
    const profile = opts.profile ? loadProfile(opts.profile, graph, diagnostics).profile : undefined;
    let torch: TorchModuleTimes | undefined;
    if (opts.torchTimes) {
      const file = opts.torchTimes;
      let json: unknown;
      try {
        json = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch (e) {
        throw new CompileError(error('modules.bad-torch-times', `cannot read ${file}: ${(e as Error).message}`, { file }));
      }
      try {
        torch = parseTorchTimes(json, file);
      } catch (e) {
        throw new CompileError(error('modules.bad-torch-times', (e as Error).message, { file }));
      }
    }
    // The errors of a per-node verify of this build, when one was saved beside graph.json.
    const reportFile = path.join(path.dirname(graphFile), PER_NODE_REPORT_FILE);
    let errors: ModuleRow[] = [];
    if (fs.existsSync(reportFile)) {
      const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as Partial<PerNodeReport>;
      errors = (report.modules ?? []).map(
        ({ timeMs: _t, timedNodes: _n, torchModule: _m, referenceTimeMs: _r, speedup: _s, ...row }) => row as ModuleRow,
      );
    }
    const graphLike: GraphLike = { nodes: graph.nodes.map((n) => ({ ...n, name: n.name ?? n.id })) };
    const { modules, summary } = addModuleTimes(errors, graphLike, profile, torch);
    for (const d of diagnostics) err(formatDiagnostic(d));
    if (opts.json) {
      out(
        JSON.stringify(
          {
            graph: graphFile,
            profile: opts.profile ?? null,
            torchTimes: opts.torchTimes ?? null,
            errors: errors.length ? reportFile : null,
            times: summary,
            modules,
          },
          null,
          2,
        ),
      );
      return 0;
    }
    out(formatModules(modules, opts.depth ?? 2));
    for (const line of describeTimes(summary)) out(line);
    if (errors.length) out(`errors: ${reportFile}`);
    return 0;
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    for (const d of [...diagnostics, ...e.diagnostics]) err(formatDiagnostic(d));
    return 1;
  }
}
