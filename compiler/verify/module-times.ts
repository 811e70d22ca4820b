/**
 * Time per module, ours against PyTorch eager's, for the per-module table of per-node verify.
 *
 * Ours: an ait-profile (docs/graph-format.md, per-op `meanMs` keyed by graph.json node ids) summed over the kernel
 * nodes of each module: a fused node counts in every prefix of its `scope`, as in `moduleTable`.
 * PyTorch's: module_times.py (scripts/gpu/module_times.py, run by the agent for `--torch-model`) times every named
 * submodule through forward hooks and gives {module path: median ms}, the paths of `named_modules()`.
 *
 * The two meet through the ONNX scopes (compiler/onnx/import.ts `scopeOf`):
 *   - TorchScript exporter: node `/m/backbone/encoder/layer.0/attention/MatMul` has scope
 *     [m, backbone, encoder, layer.0, attention]: names relative to the enclosing called module (an uncalled
 *     ModuleList's child is `layer.0`; a called Sequential's child repeats its name: `/layer1/layer1.0/conv1/Conv`,
 *     `/layer1/layer1.0/downsample/downsample.0/Conv`);
 *   - dynamo exporter: `pkg.torch.onnx.name_scopes` gives qualified names [layer1, layer1.0, layer1.0.act1, relu_1],
 *     the last often the op itself (no module).
 * `modulePathOfScope` reads both: a segment that extends the one before it (`layer1.0` after `layer1`, TorchScript's
 * `downsample.0` after `downsample`, dynamo's `layer1.0.act1` after `layer1.0`) adds what follows that one's name; any
 * other is appended after a dot. A model exported through a wrapper (`m.` in front) and timed without it, or the other
 * way round, differs by a prefix: `alignModulePaths` picks the prefix to drop or add that matches the most modules.
 */
import type { ProfileJson } from '../../webview/contract';
import { type GraphLike, isComputed, type ModuleRow } from './per-node';

export const TORCH_TIMES_FORMAT = 'ait-torch-module-times';

/** What module_times.py writes (a plain {module path: ms} object is read too). */
export interface TorchModuleTimes {
  format: typeof TORCH_TIMES_FORMAT;
  version: 1;
  torch?: string;
  device?: string;
  dtype?: string;
  channelsLast?: boolean;
  inputs?: number[][];
  runs?: number;
  warmupRuns?: number;
  /** Median time of the whole forward without hooks. */
  totalMs?: number;
  /** Module path (named_modules(); '' the whole model, with hooks) -> median ms per forward, all its calls summed. */
  modules: Record<string, number>;
  /** Calls per forward of each module. */
  calls?: Record<string, number>;
}

/** The time columns of a module row (absent where no time was measured). */
export interface ModuleTimes {
  /** Ours: the sum of the module's kernel nodes' profiled meanMs. */
  timeMs?: number;
  /** Kernel nodes with a time. */
  timedNodes?: number;
  /** The PyTorch module the scope stands for (dotted path of named_modules()). */
  torchModule?: string;
  /** PyTorch eager's median time of that module. */
  referenceTimeMs?: number;
  /** referenceTimeMs / timeMs: above 1, ours is faster. */
  speedup?: number;
}

/** Per-module time summary of a report. */
export interface TimesSummary {
  /** Our profile: batch, runs, GPU; sum of all ops' meanMs. */
  ours?: { batch: number; runs: number; gpu: string; opsMs: number; totalMs?: number };
  /** PyTorch eager: the whole forward (no hooks) and how it ran. */
  reference?: { torch?: string; device?: string; dtype?: string; runs?: number; totalMs?: number; modules: number; matched: number };
}

/** Reads module_times.py's output (or a plain {path: ms} object); throws saying what is wrong. */
export function parseTorchTimes(json: unknown, file: string): TorchModuleTimes {
  const bad = (why: string) => new Error(`${file} is not PyTorch module times (module_times.py's output): ${why}`);
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw bad('not a JSON object');
  const o = json as Record<string, unknown>;
  const modules = o.format === TORCH_TIMES_FORMAT ? o.modules : o.format === undefined && o.modules === undefined ? o : o.modules;
  if (o.format !== undefined && o.format !== TORCH_TIMES_FORMAT) throw bad(`format is ${JSON.stringify(o.format)}`);
  if (!modules || typeof modules !== 'object' || Array.isArray(modules)) throw bad("no 'modules' object");
  for (const [k, v] of Object.entries(modules as Record<string, unknown>))
    if (typeof v !== 'number' || !(v >= 0)) throw bad(`module '${k}' has time ${JSON.stringify(v)}, not a non-negative number`);
  return o.format === TORCH_TIMES_FORMAT
    ? (o as unknown as TorchModuleTimes)
    : { format: TORCH_TIMES_FORMAT, version: 1, modules: modules as Record<string, number> };
}

/** The dotted module path an ONNX scope stands for (before prefix alignment); '' for no scope. */
export function modulePathOfScope(scope: readonly string[]): string {
  let out = '';
  scope.forEach((s, i) => {
    const previous = scope[i - 1];
    // `layer1.0` after `layer1`, `downsample.0` after `downsample`, `layer1.0.act1` after `layer1.0`: the same module's child
    if (previous !== undefined && s.startsWith(previous + '.')) out += s.slice(previous.length);
    else out = out === '' ? s : `${out}.${s}`;
  });
  return out;
}

/** How scope paths meet the timed module paths: drop `drop` leading segments, then put `add` in front. */
export interface PathAlignment {
  drop: number;
  add: string;
}

function applyAlignment(p: string, a: PathAlignment): string | null {
  const parts = p === '' ? [] : p.split('.');
  if (a.drop > 0 && parts.length <= a.drop) return null;
  const rest = parts.slice(a.drop).join('.');
  return a.add ? (rest ? `${a.add}.${rest}` : a.add) : rest;
}

/**
 * The alignment that matches the most scope paths to timed modules: none, dropping 1..3 leading segments (the ONNX
 * model exported through a wrapper, the times of the inner model), or adding a leading segment the timed paths share
 * (the other way round). Ties keep the simplest. Returns each scope path's module ('' never: the root is the total).
 */
export function alignModulePaths(
  scopePaths: Iterable<string>,
  timed: Iterable<string>,
): { alignment: PathAlignment; modules: Map<string, string> } {
  const known = new Set([...timed].filter((p) => p !== ''));
  const paths = [...new Set(scopePaths)].filter((p) => p !== '');
  const prefixes = new Set([...known].map((p) => p.split('.')[0]));
  const options: PathAlignment[] = [
    { drop: 0, add: '' },
    { drop: 1, add: '' },
    { drop: 2, add: '' },
    { drop: 3, add: '' },
  ];
  for (const add of [...prefixes].sort()) options.push({ drop: 0, add }, { drop: 1, add });
  let best = { alignment: options[0], modules: new Map<string, string>() };
  for (const alignment of options) {
    const modules = new Map<string, string>();
    for (const p of paths) {
      const m = applyAlignment(p, alignment);
      if (m && known.has(m)) modules.set(p, m);
    }
    if (modules.size > best.modules.size) best = { alignment, modules };
  }
  return best;
}

/** Our time per module key (scope prefixes joined with '/', as ModuleRow.module) from a profile's ops. */
export function ourModuleTimes(
  graph: GraphLike,
  ops: ProfileJson['ops'],
): Map<string, { timeMs: number; timedNodes: number; depth: number }> {
  const out = new Map<string, { timeMs: number; timedNodes: number; depth: number }>();
  for (const node of graph.nodes) {
    const op = ops[node.id];
    if (!op || !isComputed(node)) continue;
    const scope = node.scope;
    const prefixes = scope.length ? scope.map((_, i) => scope.slice(0, i + 1)) : [[]];
    for (const p of prefixes) {
      const key = p.join('/');
      const m = out.get(key) ?? { timeMs: 0, timedNodes: 0, depth: p.length };
      m.timeMs += op.meanMs;
      m.timedNodes++;
      out.set(key, m);
    }
  }
  return out;
}

/**
 * The module rows with their time columns: ours from `profile` (when given), PyTorch's from `torch` (when given).
 * Modules that have a time but no compared node get a row of their own (nodes 0, no error). Rows keep their order;
 * new ones follow in graph order. Also returns the summary of both sides.
 */
export function addModuleTimes(
  modules: ModuleRow[],
  graph: GraphLike,
  profile?: Pick<ProfileJson, 'ops' | 'batch' | 'runs' | 'gpu' | 'totalMs'>,
  torch?: TorchModuleTimes,
): { modules: (ModuleRow & ModuleTimes)[]; summary: TimesSummary } {
  const rows: ModuleRow[] = modules.map((m) => ({ ...m }));
  const byKey = new Map(rows.map((r) => [r.module, r]));
  const summary: TimesSummary = {};
  if (profile) {
    const ours = ourModuleTimes(graph, profile.ops);
    for (const [key, t] of ours) {
      let row = byKey.get(key);
      if (!row) {
        row = { module: key, depth: t.depth, nodes: 0, maxAbs: 0, maxRelativeL2: 0, nonFinite: 0, fp16Overflows: 0 };
        rows.push(row);
        byKey.set(key, row);
      }
      row.timeMs = t.timeMs;
      row.timedNodes = t.timedNodes;
    }
    summary.ours = {
      batch: profile.batch,
      runs: profile.runs,
      gpu: profile.gpu.name,
      opsMs: Object.values(profile.ops).reduce((a, o) => a + o.meanMs, 0),
      ...(profile.totalMs !== undefined ? { totalMs: profile.totalMs } : {}),
    };
  }
  if (torch) {
    const { modules: matched } = alignModulePaths(
      rows.map((r) => modulePathOfScope(r.module === '' ? [] : r.module.split('/'))),
      Object.keys(torch.modules),
    );
    let count = 0;
    for (const row of rows) {
      const m = matched.get(modulePathOfScope(row.module === '' ? [] : row.module.split('/')));
      if (m === undefined) continue;
      row.torchModule = m;
      row.referenceTimeMs = torch.modules[m];
      count++;
    }
    summary.reference = {
      ...(torch.torch ? { torch: torch.torch } : {}),
      ...(torch.device ? { device: torch.device } : {}),
      ...(torch.dtype ? { dtype: torch.dtype } : {}),
      ...(torch.runs !== undefined ? { runs: torch.runs } : {}),
      ...(torch.totalMs !== undefined ? { totalMs: torch.totalMs } : {}),
      modules: Object.keys(torch.modules).filter((k) => k !== '').length,
      matched: count,
    };
  }
  for (const row of rows)
    if (row.timeMs !== undefined && row.referenceTimeMs !== undefined && row.timeMs > 0) row.speedup = row.referenceTimeMs / row.timeMs;
  return { modules: rows.length > modules.length ? treeOrder(rows, graph) : rows, summary };
}

/**
 * Rows in depth-first order of the module tree, siblings in the order the graph first reaches them (so a module
 * added for its time sits under its parent, not at the end); rows of no graph node keep their place at the end.
 */
function treeOrder(rows: ModuleRow[], graph: GraphLike): ModuleRow[] {
  const first = new Map<string, number>();
  for (const node of graph.nodes)
    node.scope.forEach((_, i) => {
      const key = node.scope.slice(0, i + 1).join('/');
      if (!first.has(key)) first.set(key, first.size);
    });
  const path = (row: ModuleRow) =>
    row.module === '' ? [-1] : row.module.split('/').map((_, i, parts) => first.get(parts.slice(0, i + 1).join('/')) ?? Infinity);
  const keyed = rows.map((row, index) => ({ row, index, path: path(row) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < Math.min(a.path.length, b.path.length); i++) if (a.path[i] !== b.path[i]) return a.path[i] - b.path[i];
    return a.path.length - b.path.length || a.index - b.index;
  });
  return keyed.map((k) => k.row);
}
