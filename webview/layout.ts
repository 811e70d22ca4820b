/**
 * Layout of the visible graph with elkjs (layered, top to bottom) in a Web Worker. The worker is ELK's own
 * worker script, inlined into the bundle as text and started from a blob URL, which VS Code's webview CSP
 * allows (`worker-src blob:`); the main thread only builds the ELK input and reads back positions.
 */
import ELK from 'elkjs/lib/elk-api.js';
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import elkWorkerSource from 'elkjs/lib/elk-worker.min.js?raw';
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

export { GROUP_HEADER, GROUP_HEIGHT, GROUP_WIDTH, NODE_HEIGHT, NODE_WIDTH } from './geometry';
export type { LaidOutBox, LaidOutEdge, LaidOutGraph } from './geometry';

const LAYOUT_OPTIONS: Record<string, string> = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
  'elk.json.shapeCoords': 'ROOT',
  'elk.json.edgeCoords': 'ROOT',
  'elk.edgeRouting': 'POLYLINE',
  // Faster than the defaults (NETWORK_SIMPLEX placement, thoroughness 7) on graphs of thousands of nodes, at a
  // small cost in straightness; measured by scripts/bench-webview.ts.
  'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
  'elk.layered.thoroughness': '2',
  'elk.spacing.nodeNode': '18',
  'elk.layered.spacing.nodeNodeBetweenLayers': '28',
  'elk.spacing.edgeNode': '12',
};

const CONTAINER_PADDING = `[top=${GROUP_HEADER + 8},left=10,bottom=10,right=10]`;

export class LayoutEngine {
  private readonly elk: InstanceType<typeof ELK>;
  private readonly workerUrl: string;

  constructor() {
    this.workerUrl = URL.createObjectURL(new Blob([elkWorkerSource], { type: 'text/javascript' }));
    this.elk = new ELK({ workerUrl: this.workerUrl });
  }

  async layout(visible: VisibleGraph): Promise<LaidOutGraph> {
    const t0 = performance.now();
    const root = toElk(visible);
    const result = await this.elk.layout(root);
    return fromElk(result, visible, performance.now() - t0);
  }

  dispose(): void {
    this.elk.terminateWorker();
    URL.revokeObjectURL(this.workerUrl);
  }
}

export function toElk(visible: VisibleGraph): ElkNode {
  const root: ElkNode = {
    id: ROOT_GROUP,
    layoutOptions: { ...LAYOUT_OPTIONS, 'elk.padding': '[top=10,left=10,bottom=10,right=10]' },
    children: [],
    edges: [],
  };
  const byId = new Map<string, ElkNode>([[ROOT_GROUP, root]]);
  for (const c of visible.containers) {
    // Layout options are not inherited: each container needs its own padding (room for its header).
    const node: ElkNode = { id: c.id, children: [], layoutOptions: { 'elk.padding': CONTAINER_PADDING } };
    byId.set(c.id, node);
  }
  for (const c of visible.containers) byId.get(c.parent)!.children!.push(byId.get(c.id)!);
  for (const item of visible.items) {
    const size = item.kind === 'node' ? { width: NODE_WIDTH, height: NODE_HEIGHT } : { width: GROUP_WIDTH, height: GROUP_HEIGHT };
    byId.get(item.parent)!.children!.push({ id: item.id, ...size });
  }
  root.edges = visible.edges.map((e): ElkExtendedEdge => ({ id: e.id, sources: [e.source], targets: [e.target] }));
  return root;
}

function fromElk(root: ElkNode, visible: VisibleGraph, layoutMs: number): LaidOutGraph {
  const kindOf = new Map<string, LaidOutBox['kind']>();
  for (const c of visible.containers) kindOf.set(c.id, 'container');
  for (const i of visible.items) kindOf.set(i.id, i.kind);
  const boxes: LaidOutBox[] = [];
  const walk = (n: ElkNode): void => {
    for (const c of n.children ?? []) {
      boxes.push({ id: c.id, kind: kindOf.get(c.id) ?? 'node', x: c.x ?? 0, y: c.y ?? 0, width: c.width ?? 0, height: c.height ?? 0 });
      walk(c);
    }
  };
  walk(root);
  const tensorsOf = new Map(visible.edges.map((e) => [e.id, e]));
  const edges: LaidOutEdge[] = [];
  const collect = (n: ElkNode): void => {
    for (const e of n.edges ?? []) {
      const v = tensorsOf.get(e.id)!;
      const points: [number, number][] = [];
      for (const s of e.sections ?? []) {
        points.push([s.startPoint.x, s.startPoint.y]);
        for (const b of s.bendPoints ?? []) points.push([b.x, b.y]);
        points.push([s.endPoint.x, s.endPoint.y]);
      }
      edges.push({ id: v.id, source: v.source, target: v.target, tensors: v.tensors, points });
    }
    for (const c of n.children ?? []) collect(c);
  };
  collect(root);
  return { boxes, edges, width: root.width ?? 0, height: root.height ?? 0, layoutMs, engine: 'elk' };
}
