/**
 * A quick layered layout on the main thread, drawn at once while ELK works in the worker (whose first answer
 * also pays the worker's start-up and JIT warm-up), then replaced by ELK's layout. Same boxes, same sizes, same
 * edges as ELK's: every visible box and edge is drawn, only placement and edge routes are cruder.
 *
 * Each expanded group is laid out on its own, innermost first, as a box of its children (Sugiyama-style in one
 * pass, O(boxes + edges)): an edge between boxes in different groups is lifted to the two ancestors that are
 * siblings; rank = longest path from the level's sources (cycles that lifting creates are broken in model
 * order); rows in rank order; within a row, boxes sit at the mean x of their placed predecessors, pushed apart.
 * Edges run from the source's bottom to the target's top, straight, or around the right of the boxes they
 * would cross (a residual edge along a chain would otherwise hide behind it).
 */
import {
  GROUP_HEADER,
  GROUP_HEIGHT,
  GROUP_WIDTH,
  NODE_HEIGHT,
  NODE_WIDTH,
  type LaidOutBox,
  type LaidOutEdge,
  type LaidOutGraph,
} from './geometry';
import { ROOT_GROUP, type VisibleGraph } from './model';

// The same spacing and padding as the ELK options (layout.ts), so that the switch to ELK's layout moves little.
const SPACING_NODE_NODE = 18;
const SPACING_BETWEEN_LAYERS = 28;
const ROOT_PADDING = { top: 10, left: 10, bottom: 10, right: 10 };
const CONTAINER_PADDING = { top: GROUP_HEADER + 8, left: 10, bottom: 10, right: 10 };

interface Size {
  width: number;
  height: number;
}

export function provisionalLayout(visible: VisibleGraph): LaidOutGraph {
  const t0 = performance.now();
  const parentOf = new Map<string, string>();
  const childrenOf = new Map<string, string[]>([[ROOT_GROUP, []]]);
  const depthOf = new Map<string, number>([[ROOT_GROUP, 0]]);
  const sizeOf = new Map<string, Size>();
  // Containers come outermost first (visibleGraph walks the group tree in pre-order).
  for (const c of visible.containers) {
    parentOf.set(c.id, c.parent);
    childrenOf.set(c.id, []);
    childrenOf.get(c.parent)!.push(c.id);
    depthOf.set(c.id, depthOf.get(c.parent)! + 1);
  }
  for (const item of visible.items) {
    parentOf.set(item.id, item.parent);
    childrenOf.get(item.parent)!.push(item.id);
    depthOf.set(item.id, depthOf.get(item.parent)! + 1);
    sizeOf.set(item.id, item.kind === 'node' ? { width: NODE_WIDTH, height: NODE_HEIGHT } : { width: GROUP_WIDTH, height: GROUP_HEIGHT });
  }

  // Lift each edge to the level of its endpoints' lowest common group.
  const edgesOf = new Map<string, [string, string][]>();
  for (const e of visible.edges) {
    let a = e.source;
    let b = e.target;
    while (depthOf.get(a)! > depthOf.get(b)!) a = parentOf.get(a)!;
    while (depthOf.get(b)! > depthOf.get(a)!) b = parentOf.get(b)!;
    if (a === b) continue;
    while (parentOf.get(a) !== parentOf.get(b)) {
      a = parentOf.get(a)!;
      b = parentOf.get(b)!;
    }
    const level = parentOf.get(a)!;
    const list = edgesOf.get(level);
    if (list) list.push([a, b]);
    else edgesOf.set(level, [[a, b]]);
  }

  // Innermost groups first: a container's size is known before its parent's level is laid out.
  const relative = new Map<string, { x: number; y: number }>();
  const levels = [...visible.containers.map((c) => c.id).reverse(), ROOT_GROUP];
  for (const level of levels) {
    const padding = level === ROOT_GROUP ? ROOT_PADDING : CONTAINER_PADDING;
    const content = layoutLevel(childrenOf.get(level)!, edgesOf.get(level) ?? [], sizeOf, relative);
    sizeOf.set(level, {
      width: Math.max(content.width, level === ROOT_GROUP ? 0 : GROUP_WIDTH) + padding.left + padding.right,
      height: content.height + padding.top + padding.bottom,
    });
  }

  // Absolute coordinates, outermost first.
  const absolute = new Map<string, { x: number; y: number }>([[ROOT_GROUP, { x: 0, y: 0 }]]);
  const place = (id: string): void => {
    const parent = parentOf.get(id)!;
    const origin = absolute.get(parent)!;
    const padding = parent === ROOT_GROUP ? ROOT_PADDING : CONTAINER_PADDING;
    const rel = relative.get(id)!;
    absolute.set(id, { x: origin.x + padding.left + rel.x, y: origin.y + padding.top + rel.y });
  };
  const boxes: LaidOutBox[] = [];
  for (const c of visible.containers) {
    place(c.id);
    boxes.push({ id: c.id, kind: 'container', ...absolute.get(c.id)!, ...sizeOf.get(c.id)! });
  }
  for (const item of visible.items) {
    place(item.id);
    boxes.push({ id: item.id, kind: item.kind, ...absolute.get(item.id)!, ...sizeOf.get(item.id)! });
  }

  const edges = routeEdges(visible, boxes);
  const root = sizeOf.get(ROOT_GROUP)!;
  return { boxes, edges, width: root.width, height: root.height, layoutMs: performance.now() - t0, engine: 'provisional' };
}

/** Lays out one level (the children of one group, sizes known); writes positions relative to the content's corner. */
function layoutLevel(
  children: string[],
  edges: [string, string][],
  sizeOf: ReadonlyMap<string, Size>,
  relative: Map<string, { x: number; y: number }>,
): Size {
  const n = children.length;
  if (n === 0) return { width: 0, height: 0 };
  const index = new Map(children.map((c, i) => [c, i]));
  const successors: number[][] = children.map(() => []);
  const predecessors: number[][] = children.map(() => []);
  const inDegree = new Array<number>(n).fill(0);
  for (const [a, b] of edges) {
    const i = index.get(a)!;
    const j = index.get(b)!;
    successors[i].push(j);
    predecessors[j].push(i);
    inDegree[j]++;
  }

  // Longest-path ranks (Kahn); when only cycles remain, the first unranked child in model order goes next.
  const rank = new Array<number>(n).fill(0);
  const done = new Array<boolean>(n).fill(false);
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (inDegree[i] === 0) ready.push(i);
  let nextUnranked = 0;
  for (let processed = 0; processed < n;) {
    let v = ready.pop();
    if (v === undefined) {
      while (done[nextUnranked]) nextUnranked++;
      v = nextUnranked;
    }
    if (done[v]) continue;
    done[v] = true;
    processed++;
    for (const w of successors[v]) {
      if (done[w]) continue;
      rank[w] = Math.max(rank[w], rank[v] + 1);
      if (--inDegree[w] === 0) ready.push(w);
    }
  }

  const rows: number[][] = [];
  for (let i = 0; i < n; i++) (rows[rank[i]] ??= []).push(i);
  const centerX = new Array<number>(n).fill(NaN);
  const x = new Array<number>(n).fill(0);
  const y = new Array<number>(n).fill(0);
  let top = 0;
  let previousRowCenter = 0;
  for (const row of rows) {
    if (!row) continue;
    // Where each box would like to be: under its already placed predecessors.
    const desired = row.map((i) => {
      const placed = predecessors[i].filter((p) => !Number.isNaN(centerX[p]));
      return placed.length ? placed.reduce((s, p) => s + centerX[p], 0) / placed.length : previousRowCenter;
    });
    const order = row.map((_, k) => k).sort((a, b) => desired[a] - desired[b]);
    let right = -Infinity;
    let shift = 0;
    for (const k of order) {
      const i = row[k];
      const w = sizeOf.get(children[i])!.width;
      x[i] = Math.max(desired[k] - w / 2, right + SPACING_NODE_NODE);
      right = x[i] + w;
      shift += desired[k] - (x[i] + w / 2);
    }
    // Pushing apart moves boxes right only: move the row back so that it stays centred on what it wants.
    shift /= row.length;
    let rowHeight = 0;
    let rowCenterSum = 0;
    for (const i of row) {
      const size = sizeOf.get(children[i])!;
      x[i] += shift;
      centerX[i] = x[i] + size.width / 2;
      y[i] = top;
      rowHeight = Math.max(rowHeight, size.height);
      rowCenterSum += centerX[i];
    }
    previousRowCenter = rowCenterSum / row.length;
    top += rowHeight + SPACING_BETWEEN_LAYERS;
  }
  const minX = Math.min(...x);
  let width = 0;
  let height = 0;
  for (let i = 0; i < n; i++) {
    const size = sizeOf.get(children[i])!;
    relative.set(children[i], { x: x[i] - minX, y: y[i] });
    width = Math.max(width, x[i] - minX + size.width);
    height = Math.max(height, y[i] + size.height);
  }
  return { width, height };
}

/** Edge polylines: straight when nothing is in the way, else out to the right of the boxes in between and back. */
function routeEdges(visible: VisibleGraph, boxes: readonly LaidOutBox[]): LaidOutEdge[] {
  const boxById = new Map(boxes.map((b) => [b.id, b]));
  const leaves = boxes.filter((b) => b.kind !== 'container').sort((a, b) => a.y - b.y);
  const firstBelow = (y: number): number => {
    let lo = 0;
    let hi = leaves.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (leaves[mid].y < y) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return visible.edges.map((e) => {
    const s = boxById.get(e.source)!;
    const t = boxById.get(e.target)!;
    const start: [number, number] = [s.x + s.width / 2, s.y + s.height];
    const end: [number, number] = [t.x + t.width / 2, t.y];
    let blocked = false;
    let right = Math.max(s.x + s.width, t.x + t.width);
    for (let i = firstBelow(start[1]); i < leaves.length && leaves[i].y < end[1]; i++) {
      const b = leaves[i];
      if (b.id === e.target || b.y + b.height > end[1]) continue;
      const u = (b.y + b.height / 2 - start[1]) / (end[1] - start[1]);
      const xAtBox = start[0] + u * (end[0] - start[0]);
      if (xAtBox >= b.x - 4 && xAtBox <= b.x + b.width + 4) blocked = true;
      if (b.x < right + SPACING_NODE_NODE && b.x + b.width > Math.min(s.x, t.x)) right = Math.max(right, b.x + b.width);
    }
    const points: [number, number][] = blocked
      ? [start, [right + 8, start[1] + 12], [right + 8, (start[1] + end[1]) / 2], [right + 8, end[1] - 12], end]
      : [start, end];
    return { id: e.id, source: e.source, target: e.target, tensors: e.tensors, points };
  });
}
