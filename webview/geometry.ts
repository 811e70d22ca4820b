/** Box sizes and the laid-out graph, shared by both layouts (ELK in the worker, the provisional one) and the renderers. */

export const NODE_WIDTH = 172;
export const NODE_HEIGHT = 46;
export const GROUP_WIDTH = 196;
export const GROUP_HEIGHT = 54;
export const GROUP_HEADER = 24;

export interface LaidOutBox {
  id: string;
  kind: 'node' | 'group' | 'container';
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LaidOutEdge {
  id: string;
  source: string;
  target: string;
  tensors: string[];
  /** Polyline from the source box to the target box. */
  points: [number, number][];
}

export interface LaidOutGraph {
  /** Containers first (outermost first), so that drawing in order puts them beneath their contents. */
  boxes: LaidOutBox[];
  edges: LaidOutEdge[];
  width: number;
  height: number;
  /** Time spent computing this layout (for ELK: the worker round trip included). */
  layoutMs: number;
  /** `provisional`: the main thread's quick layering, drawn at once and replaced when ELK answers. */
  engine: 'elk' | 'provisional';
}
