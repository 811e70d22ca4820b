/**
 * Segment colours of a partitioned build (`ait compile --partition`: graph.json nodes carry `segment`, the top-level
 * `partition.segments` their kinds). Shown when no heatmap is on: compiled segments in cool colours, onnxruntime
 * fallback segments in warm ones, with a legend. Pure, tested in Node and in the browser.
 */
import type { GraphModel } from './model';

const COMPILED_COLORS = ['#4e79a7', '#59a14f', '#76b7b2', '#8cd17d', '#a0cbe8'];
const FALLBACK_COLORS = ['#f28e2b', '#e15759', '#ff9da7', '#edc948', '#b07aa1'];

export interface SegmentEntry {
  index: number;
  kind: 'compiled' | 'fallback';
  color: string;
  /** Nodes of this graph in the segment. */
  nodes: number;
}

export interface SegmentPaint {
  colorOf: Map<string, string>;
  legend: SegmentEntry[];
}

/** Colours by segment, or null when the graph is not partitioned. */
export function buildSegmentPaint(model: GraphModel): SegmentPaint | null {
  const declared = (model.json as { partition?: { segments?: { index: number; kind: string }[] } }).partition?.segments ?? [];
  const kindOf = new Map(declared.map((s) => [s.index, s.kind === 'fallback' ? 'fallback' : 'compiled'] as const));
  const counts = new Map<number, number>();
  for (const n of model.nodes) {
    const s = (n.json as { segment?: unknown }).segment;
    if (typeof s === 'number' && Number.isInteger(s)) counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  if (counts.size === 0) return null;
  const indices = [...new Set([...counts.keys(), ...kindOf.keys()])].sort((a, b) => a - b);
  const seen = { compiled: 0, fallback: 0 };
  const legend = indices.map((index): SegmentEntry => {
    const kind = kindOf.get(index) ?? 'compiled';
    const palette = kind === 'fallback' ? FALLBACK_COLORS : COMPILED_COLORS;
    return { index, kind, color: palette[seen[kind]++ % palette.length], nodes: counts.get(index) ?? 0 };
  });
  const colorByIndex = new Map(legend.map((e) => [e.index, e.color]));
  const colorOf = new Map<string, string>();
  for (const n of model.nodes) {
    const s = (n.json as { segment?: unknown }).segment;
    if (typeof s === 'number' && colorByIndex.has(s)) colorOf.set(n.json.id, colorByIndex.get(s)!);
  }
  return { colorOf, legend };
}
