/**
 * The shape checks of graph.json (docs/graph-format.md) that every reader runs before using one: `ait graph`, the
 * extension's graph panel (both through loadGraphJson) and the webview itself (a graph it is sent). A file written by
 * another version or by hand fails here with the first problem, named by its place (`nodes[3] 'n3': field 'outputs'
 * is missing`), instead of failing later in the page with a blank view. No dependencies: bundled into the webview.
 */
export const GRAPH_JSON_FORMAT = 'ait-graph';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function field(owner: Json, name: string, want: 'string' | 'number' | 'object' | 'string[]' | 'array', where: string): string | undefined {
  const v = owner[name];
  const ok =
    want === 'string'
      ? typeof v === 'string'
      : want === 'number'
        ? typeof v === 'number' && Number.isFinite(v)
        : want === 'object'
          ? isObject(v)
          : want === 'string[]'
            ? isStringArray(v)
            : Array.isArray(v);
  if (ok) return undefined;
  const wanted = want === 'string[]' ? 'an array of strings' : want === 'array' || want === 'object' ? `an ${want}` : `a ${want}`;
  return v === undefined ? `${where}field '${name}' is missing` : `${where}field '${name}' is ${describe(v)}, not ${wanted}`;
}

function optional(owner: Json, name: string, want: 'string' | 'object' | 'string[]', where: string): string | undefined {
  return owner[name] === undefined ? undefined : field(owner, name, want, where);
}

/** The first problem of a node list (ids unique, the fields the view reads), or undefined. */
function nodesProblem(nodes: unknown[], where: string, ids: Set<string>): string | undefined {
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    const at = `${where}nodes[${i}]`;
    if (!isObject(n)) return `${at} is ${describe(n)}, not an object`;
    const named = `${at}${typeof n.id === 'string' ? ` '${n.id}'` : ''}: `;
    const problem =
      field(n, 'id', 'string', named) ??
      field(n, 'op', 'string', named) ??
      field(n, 'name', 'string', named) ??
      field(n, 'inputs', 'string[]', named) ??
      field(n, 'outputs', 'string[]', named) ??
      optional(n, 'attrs', 'object', named) ??
      optional(n, 'scope', 'string[]', named) ??
      optional(n, 'sourceNodes', 'string[]', named) ??
      optional(n, 'epilogue', 'string[]', named) ??
      optional(n, 'kernel', 'object', named) ??
      optional(n, 'status', 'object', named) ??
      optional(n, 'cost', 'object', named) ??
      (isObject(n.kernel) ? field(n.kernel, 'name', 'string', `${named}kernel: `) : undefined);
    if (problem) return problem;
    if (ids.has(n.id as string)) return `${named}node id '${n.id as string}' is used twice`;
    ids.add(n.id as string);
  }
  return undefined;
}

/** The first problem that makes `value` unusable as a graph.json, or undefined when it has the expected shape. */
export function graphJsonProblem(value: unknown): string | undefined {
  if (!isObject(value)) return `the file holds ${describe(value)}, not a graph.json object`;
  if (value.format !== GRAPH_JSON_FORMAT) return `not an ${GRAPH_JSON_FORMAT} file (format: ${JSON.stringify(value.format) ?? 'missing'})`;
  const problem =
    field(value, 'version', 'number', '') ??
    field(value, 'model', 'object', '') ??
    field(value.model as Json, 'name', 'string', 'model: ') ??
    field(value, 'inputs', 'string[]', '') ??
    field(value, 'outputs', 'string[]', '') ??
    field(value, 'nodes', 'array', '') ??
    optional(value, 'tensors', 'object', '');
  if (problem) return problem;
  if (isObject(value.tensors))
    for (const [name, t] of Object.entries(value.tensors)) if (!isObject(t)) return `tensors['${name}'] is ${describe(t)}, not an object`;
  return nodesProblem(value.nodes as unknown[], '', new Set());
}
