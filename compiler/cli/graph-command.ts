/**
 * `ait graph DIR [--profile P.json ...] --html OUT.html [--theme light|dark|high-contrast]`: writes the graph
 * webview as one self-contained page (bundle, styles, graph and profiles inlined; no network), for sharing and
 * for the browser tests. DIR is a compile output directory (holding graph.json) or a graph.json file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompileError, Diagnostic, error, formatDiagnostic, warning } from '../diagnostics';
import { GRAPH_FORMAT } from '../ir/serialize';
import type { GraphJson } from '../ir/serialize';
import { PROFILE_FORMAT, PROFILE_FORMAT_VERSION, type NamedProfile, type ProfileJson } from '../../webview/contract';
import { graphJsonProblem } from '../../webview/validate';

/** The themes of the page (`--theme`). */
export const GRAPH_THEMES = ['light', 'dark', 'high-contrast'] as const;
export type GraphTheme = (typeof GRAPH_THEMES)[number];

/** Text for HTML content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface GraphCommandOptions {
  profile?: string[];
  html?: string;
  theme?: GraphTheme;
}

/** The built webview bundle: next to dist/cli.js, or dist/ of the checkout when run from source. */
function findBundle(): { js: string; css: string } {
  const dirs = [__dirname, path.resolve(__dirname, '..', '..', 'dist')];
  for (const dir of dirs) {
    const js = path.join(dir, 'webview.js');
    const css = path.join(dir, 'webview.css');
    if (fs.existsSync(js) && fs.existsSync(css)) return { js, css };
  }
  throw new CompileError(
    error('graph.bundle-missing', `the webview bundle (webview.js, webview.css) is not built; run 'npm run build'`, {
      file: path.join(dirs[1], 'webview.js'),
    }),
  );
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CompileError(error('graph.read-failed', `cannot read ${what}: ${(e as Error).message}`, { file }));
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CompileError(error('graph.bad-json', `${what} is not valid JSON: ${(e as Error).message}`, { file }));
  }
}

export function loadGraphJson(dirOrFile: string): { graph: GraphJson; file: string } {
  const file = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isDirectory() ? path.join(dirOrFile, 'graph.json') : dirOrFile;
  const graph = readJson(file, 'graph.json');
  const problem = graphJsonProblem(graph);
  if (problem) {
    const code = (graph as { format?: unknown } | null)?.format === GRAPH_FORMAT ? 'graph.bad-field' : 'graph.bad-format';
    throw new CompileError(error(code, problem, { file }));
  }
  return { graph: graph as GraphJson, file };
}

/** Reads and checks a profile against the graph: wrong format is an error, ids not in the graph are warnings. */
export function loadProfile(file: string, graph: GraphJson, diagnostics: Diagnostic[]): NamedProfile {
  const profile = readJson(file, 'profile') as ProfileJson;
  if (profile?.format !== PROFILE_FORMAT || typeof profile.ops !== 'object' || profile.ops === null) {
    throw new CompileError(
      error('profile.bad-format', `not an ${PROFILE_FORMAT} file (format: ${JSON.stringify(profile?.format)})`, { file }),
    );
  }
  if (profile.version > PROFILE_FORMAT_VERSION) {
    diagnostics.push(
      warning('profile.newer-version', `profile version ${profile.version} is newer than this reader (${PROFILE_FORMAT_VERSION})`, {
        file,
      }),
    );
  }
  if (profile.graph?.model && profile.graph.model !== graph.model.name) {
    diagnostics.push(
      warning('profile.other-model', `profile was measured on '${profile.graph.model}', the graph is '${graph.model.name}'`, { file }),
    );
  }
  const ids = new Set(graph.nodes.map((n) => n.id));
  const unknown = Object.keys(profile.ops).filter((id) => !ids.has(id));
  for (const id of unknown.slice(0, 5))
    diagnostics.push(
      warning('profile.unknown-node', `profile has times for '${id}', which is not a node of the graph`, { file, nodeId: id }),
    );
  if (unknown.length > 5) diagnostics.push(warning('profile.unknown-node', `… and ${unknown.length - 5} more unknown node ids`, { file }));
  for (const [id, op] of Object.entries(profile.ops)) {
    if (typeof op?.meanMs !== 'number' || !(op.meanMs >= 0))
      throw new CompileError(error('profile.bad-time', `meanMs of '${id}' is not a non-negative number`, { file, nodeId: id }));
  }
  return { name: path.basename(file), profile };
}

/** The page: CSP like VS Code's webviews (inline only, worker from blob), no network access. */
export function graphPageHtml(
  data: { graph: GraphJson; profiles: NamedProfile[]; graphPath?: string },
  bundle: { js: string; css: string },
  theme?: string,
): string {
  // JSON in a <script> block: `<` escaped so that no `</script>` or `<!--` can end the block early.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const js = bundle.js
    .replace(/\/\/# sourceMappingURL=\S+\s*$/, '')
    .replace(/<\/script/gi, '<\\/script')
    .replace(/<!--/g, '<\\!--');
  const css = bundle.css.replace(/\/\*# sourceMappingURL=\S+\s*\*\/\s*$/, '').replace(/<\/style/gi, '<\\/style');
  const title = escapeHtml(`${data.graph.model?.name ?? 'graph'} — AIT graph`);
  if (theme !== undefined && !(GRAPH_THEMES as readonly string[]).includes(theme))
    throw new CompileError(error('cli.bad-option', `--theme ${JSON.stringify(theme)}: use one of ${GRAPH_THEMES.join(', ')}`));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; worker-src blob:; img-src data: blob:; font-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${css}</style>
</head>
<body${theme ? ` class="${escapeHtml(`vscode-${theme}`)}"` : ''}>
<div id="ait-graph"></div>
<script type="application/json" id="ait-data">${json}</script>
<script>${js}</script>
</body>
</html>
`;
}

/** Writes the page, creating its directory; a failure is one `graph.write-failed` error naming the file. */
function writePage(file: string, html: string): void {
  try {
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new Error('it is a directory');
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, html);
  } catch (e) {
    throw new CompileError(error('graph.write-failed', `cannot write the page: ${(e as Error).message}`, { file }));
  }
}

/** Writes the page; warnings go to `out`, errors (one line each) to `err`. Returns the exit code. */
export function runGraph(dir: string, opts: GraphCommandOptions, out: (s: string) => void, err: (s: string) => void = out): number {
  const diagnostics: Diagnostic[] = [];
  try {
    if (!opts.html) throw new CompileError(error('graph.no-output', 'give the page to write with --html OUT.html'));
    const { graph, file } = loadGraphJson(dir);
    const profiles = (opts.profile ?? []).map((p) => loadProfile(p, graph, diagnostics));
    const bundleFiles = findBundle();
    const bundle = { js: fs.readFileSync(bundleFiles.js, 'utf8'), css: fs.readFileSync(bundleFiles.css, 'utf8') };
    const html = graphPageHtml({ graph, profiles, graphPath: file }, bundle, opts.theme);
    writePage(opts.html, html);
    for (const d of diagnostics) out(formatDiagnostic(d));
    out(
      `wrote ${opts.html} (${graph.nodes.length} nodes, ${profiles.length} profile${profiles.length === 1 ? '' : 's'}, ${(html.length / 1e6).toFixed(1)} MB)`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    for (const d of [...diagnostics, ...e.diagnostics]) (d.severity === 'error' ? err : out)(formatDiagnostic(d));
    return 1;
  }
}
