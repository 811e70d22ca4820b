/**
 * The graph as the webview sees it: nodes, dataflow edges and the group tree built from the name scopes, and
 * the visible graph for a set of collapsed groups. Pure (no DOM), so it is tested in Node.
 */
import type { GraphJson, GraphJsonTensor, ViewNodeJson } from './contract';

export const ROOT_GROUP = 'g:';

export interface ModelNode {
  id: string;
  json: ViewNodeJson;
  /** Deepest group holding the node (ROOT_GROUP when none). */
  group: string;
  /** Text matched by search: id, name, op, kernel name, scope and source node names, lower-cased. */
  searchText: string;
}

export interface ModelEdge {
  id: string;
  source: string;
  target: string;
  tensor: string;
}

export interface ModelGroup {
  id: string;
  /** Display name: the last scope segment without its parent's prefix (`layer3.0.act3` under `layer3.0` → `act3`). */
  name: string;
  path: string[];
  parent: string | null;
  groups: string[];
  nodes: string[];
  /** Number of graph nodes under this group, at any depth. */
  size: number;
}

export interface GraphModel {
  json: GraphJson;
  nodes: ModelNode[];
  nodeById: Map<string, ModelNode>;
  edges: ModelEdge[];
  groups: Map<string, ModelGroup>;
  tensors: Record<string, GraphJsonTensor>;
  /** Producer node id of each tensor produced inside the graph. */
  producerOf: Map<string, string>;
  consumersOf: Map<string, string[]>;
  /**
   * Nodes not drawn: weight preparation (`role: 'weight-preparation'`, e.g. the OIHW→OHWI transpose of a conv's
   * weights) runs once when weights are bound, not per inference; drawing it beside every conv hides the model.
   */
  hiddenNodeIds: string[];
}

/** Whether the view draws a node (docs/graph-format.md: `role`). */
export function isDrawn(node: GraphJson['nodes'][number]): boolean {
  return (node as ViewNodeJson).role !== 'weight-preparation';
}

function groupIdOf(path: string[]): string {
  return ROOT_GROUP + path.map((s) => s.replaceAll('/', '∕')).join('/');
}

export function buildGraphModel(full: GraphJson): GraphModel {
  const hiddenNodeIds = full.nodes.filter((n) => !isDrawn(n)).map((n) => n.id);
  const json: GraphJson = hiddenNodeIds.length ? { ...full, nodes: full.nodes.filter(isDrawn) } : full;
  const producerOf = new Map<string, string>();
  for (const n of json.nodes) for (const o of n.outputs) if (o) producerOf.set(o, n.id);

  const edges: ModelEdge[] = [];
  const consumersOf = new Map<string, string[]>();
  for (const n of json.nodes) {
    n.inputs.forEach((tensor, k) => {
      const source = tensor ? producerOf.get(tensor) : undefined;
      if (source === undefined || source === n.id) return;
      edges.push({ id: `${source}->${n.id}:${k}`, source, target: n.id, tensor });
      consumersOf.set(source, [...(consumersOf.get(source) ?? []), n.id]);
    });
  }

  // The group tree, then dissolve groups that hold a single node and nothing else: the dynamo exporter's
  // innermost scope is often the op itself (`layer1.0.act1/relu_3`), which would box every node alone.
  const groups = new Map<string, ModelGroup>();
  const ensureGroup = (path: string[]): ModelGroup => {
    const id = groupIdOf(path);
    let g = groups.get(id);
    if (g) return g;
    const parent = path.length ? ensureGroup(path.slice(0, -1)) : null;
    const last = path[path.length - 1] ?? '';
    const parentLast = path[path.length - 2];
    const name = parentLast && last.startsWith(parentLast + '.') ? last.slice(parentLast.length + 1) : last;
    g = { id, name, path, parent: parent?.id ?? null, groups: [], nodes: [], size: 0 };
    groups.set(id, g);
    parent?.groups.push(id);
    return g;
  };
  ensureGroup([]);
  const nodes: ModelNode[] = json.nodes.map((raw) => {
    const n = raw as ViewNodeJson;
    const g = ensureGroup(n.scope ?? []);
    g.nodes.push(n.id);
    const searchText = [n.id, n.name, n.op, n.kernel?.name ?? '', ...(n.scope ?? []), ...(n.sourceNodes ?? [])].join('\n').toLowerCase();
    return { id: n.id, json: n, group: g.id, searchText };
  });
  const nodeById = new Map(nodes.map((n) => [n.id, n]));

  const dissolve = (id: string): void => {
    const g = groups.get(id)!;
    for (const c of [...g.groups]) dissolve(c);
    if (g.parent === null) return;
    const parent = groups.get(g.parent)!;
    const childCount = g.groups.length + g.nodes.length;
    if (childCount === 0 || (g.groups.length === 0 && g.nodes.length === 1) || (g.nodes.length === 0 && g.groups.length === 1)) {
      // Replace g by its children in its parent, keeping the parent's order.
      parent.groups.splice(parent.groups.indexOf(id), 1, ...g.groups);
      for (const c of g.groups) groups.get(c)!.parent = parent.id;
      parent.nodes.push(...g.nodes);
      for (const nid of g.nodes) nodeById.get(nid)!.group = parent.id;
      groups.delete(id);
    }
  };
  dissolve(ROOT_GROUP);
  const sizeOf = (id: string): number => {
    const g = groups.get(id)!;
    g.size = g.nodes.length + g.groups.reduce((s, c) => s + sizeOf(c), 0);
    return g.size;
  };
  sizeOf(ROOT_GROUP);

  return { json: full, nodes, nodeById, edges, groups, tensors: json.tensors, producerOf, consumersOf, hiddenNodeIds };
}

/** Ancestor group ids of a group, innermost first, without the root. */
export function ancestorsOf(model: GraphModel, groupId: string): string[] {
  const out: string[] = [];
  for (let g = model.groups.get(groupId); g && g.parent !== null; g = model.groups.get(g.parent)) out.push(g.id);
  return out;
}

/** The visible item a node is drawn as: itself, or its outermost collapsed ancestor group. */
export function representativeOf(model: GraphModel, nodeId: string, collapsed: ReadonlySet<string>): string {
  const node = model.nodeById.get(nodeId);
  if (!node) return nodeId;
  let rep = nodeId;
  for (const g of ancestorsOf(model, node.group)) if (collapsed.has(g)) rep = g;
  return rep;
}

export interface VisibleItem {
  id: string;
  kind: 'node' | 'group';
  /** Enclosing expanded group (ROOT_GROUP at the top). */
  parent: string;
}

export interface VisibleEdge {
  id: string;
  source: string;
  target: string;
  tensors: string[];
}

export interface VisibleGraph {
  /** Leaf boxes: nodes and collapsed groups. */
  items: VisibleItem[];
  /** Expanded groups drawn as containers (not ROOT_GROUP). */
  containers: VisibleItem[];
  edges: VisibleEdge[];
}

export function visibleGraph(model: GraphModel, collapsed: ReadonlySet<string>): VisibleGraph {
  const items: VisibleItem[] = [];
  const containers: VisibleItem[] = [];
  const walk = (groupId: string): void => {
    const g = model.groups.get(groupId)!;
    for (const c of g.groups) {
      if (collapsed.has(c)) items.push({ id: c, kind: 'group', parent: groupId });
      else {
        containers.push({ id: c, kind: 'group', parent: groupId });
        walk(c);
      }
    }
    for (const n of g.nodes) items.push({ id: n, kind: 'node', parent: groupId });
  };
  walk(ROOT_GROUP);

  const repCache = new Map<string, string>();
  const rep = (id: string) => {
    let r = repCache.get(id);
    if (r === undefined) repCache.set(id, (r = representativeOf(model, id, collapsed)));
    return r;
  };
  const byPair = new Map<string, VisibleEdge>();
  for (const e of model.edges) {
    const source = rep(e.source);
    const target = rep(e.target);
    if (source === target) continue;
    const key = `${source}\u0000${target}`;
    const existing = byPair.get(key);
    if (existing) {
      if (!existing.tensors.includes(e.tensor)) existing.tensors.push(e.tensor);
    } else byPair.set(key, { id: `e${byPair.size}`, source, target, tensors: [e.tensor] });
  }
  return { items, containers, edges: [...byPair.values()] };
}

/**
 * Groups to collapse when a graph opens: none for a graph of at most `maxVisible` nodes; else all, then whole
 * levels of the group tree are expanded (outermost first) while the visible boxes stay within `maxVisible`, so
 * that sibling groups (blocks.0 … blocks.11) look alike.
 */
export function initialCollapsed(model: GraphModel, maxVisible: number): Set<string> {
  const collapsed = new Set<string>();
  if (model.nodes.length <= maxVisible) return collapsed;
  for (const id of model.groups.keys()) if (id !== ROOT_GROUP) collapsed.add(id);
  let level = [...model.groups.get(ROOT_GROUP)!.groups];
  let visible = countVisible(model, collapsed);
  while (level.length) {
    const after = visible + level.reduce((s, id) => s - 1 + model.groups.get(id)!.groups.length + model.groups.get(id)!.nodes.length, 0);
    if (after > maxVisible) break;
    for (const id of level) collapsed.delete(id);
    visible = after;
    level = level.flatMap((id) => model.groups.get(id)!.groups);
  }
  return collapsed;
}

export function countVisible(model: GraphModel, collapsed: ReadonlySet<string>): number {
  let count = 0;
  const walk = (id: string): void => {
    const g = model.groups.get(id)!;
    count += g.nodes.length;
    for (const c of g.groups) {
      if (collapsed.has(c)) count++;
      else walk(c);
    }
  };
  walk(ROOT_GROUP);
  return count;
}

/** Node ids whose id, name, op, kernel name, scope or source nodes contain the query (case-insensitive). */
export function searchNodes(model: GraphModel, query: string): string[] {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  return model.nodes.filter((n) => n.searchText.includes(q)).map((n) => n.id);
}

/** Collapsed groups after making a node visible (its collapsed ancestors expanded). */
export function revealNode(model: GraphModel, nodeId: string, collapsed: ReadonlySet<string>): Set<string> {
  const next = new Set(collapsed);
  const node = model.nodeById.get(nodeId);
  if (node) for (const g of ancestorsOf(model, node.group)) next.delete(g);
  return next;
}

export function formatShape(t: GraphJsonTensor | undefined): string {
  if (!t) return '?';
  const dims = t.shape ? `[${t.shape.join(', ')}]` : '[?]';
  // a float tensor the GPU keeps in fp32 (box coordinates; others are fp16): shown, since it costs twice the bytes
  return `${t.dtype ?? '?'}${dims}${t.storage === 'float32' ? ' (fp32 on the GPU)' : ''}`;
}

/** Short text for a node's kernel badge: library and tile (`cutlass 128x256x64`), or the library alone. */
export function kernelBadge(node: ViewNodeJson): string | null {
  const k = node.kernel;
  if (!k) return null;
  const tile = k.config?.tile;
  return tile?.length ? `${k.library} ${tile.join('x')}` : k.library;
}
