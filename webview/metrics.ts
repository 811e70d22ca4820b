/**
 * Heatmap metrics: per-node values from a profile (and graph.json costs), group sums, and the colour scale.
 * Pure (d3 scales only), tested in Node.
 */
import {
  interpolateRdBu,
  interpolateYlOrRd,
  scaleSequential,
  scaleSequentialLog,
  scaleSequentialSqrt,
  scaleDiverging,
  scaleDivergingLog,
} from 'd3';
import type { NamedProfile, NodeCost, ProfileJson } from './contract';
import type { GraphModel } from './model';

export type MetricId = 'time' | 'share' | 'tflops' | 'gbps' | 'roofline' | 'error' | 'errorRel';

export const METRICS: Record<MetricId, { label: string; unit: string }> = {
  time: { label: 'Time', unit: 'ms' },
  share: { label: 'Share of total', unit: '%' },
  tflops: { label: 'Achieved TFLOP/s', unit: 'TFLOP/s' },
  gbps: { label: 'Achieved GB/s', unit: 'GB/s' },
  roofline: { label: 'Fraction of roofline', unit: '' },
  error: { label: 'Numerical error (max abs)', unit: '' },
  errorRel: { label: 'Numerical error (relative L2)', unit: '' },
};

/** Relative L2 standing for an output with NaN/Inf the reference lacks (drawn as the hottest colour). */
const NON_FINITE_ERROR = Infinity;

/** Additive parts of a node's (or a group's) measurements; every metric is a function of these. */
export interface Totals {
  timeMs: number;
  flops: number;
  bytes: number;
  /** Time the op would take at the roofline (peak compute or peak bandwidth, whichever binds). */
  idealMs: number;
  /** Ops whose roofline could be computed (cost and GPU peaks known). */
  rooflineOps: number;
  /** Explicit throughputs from the profile (used for a single op when graph.json has no cost). */
  tflops?: number;
  gbPerS?: number;
  errorMaxAbs: number | null;
  /** Relative L2 error; Infinity for NaN/Inf in the output; null when the profile has none. */
  errorRelL2: number | null;
  /** Ops whose values leave the fp16 range. */
  fp16Overflows: number;
  ops: number;
}

function costAtBatch(cost: NodeCost | undefined, batch: number): { flops: number; bytes: number } | null {
  if (!cost) return null;
  // Costs are computed at one batch size; the profile may run another. Scale linearly in the batch.
  const scale = cost.batch > 0 ? batch / cost.batch : 1;
  return { flops: cost.flops * scale, bytes: cost.bytes * scale };
}

export function nodeTotals(model: GraphModel, profile: ProfileJson, nodeId: string): Totals | null {
  const op = profile.ops[nodeId];
  if (!op) return null;
  const cost = costAtBatch(model.nodeById.get(nodeId)?.json.cost, profile.batch);
  let idealMs = 0;
  let rooflineOps = 0;
  const { peakTflops, peakGbPerS } = profile.gpu;
  if (cost && peakTflops && peakGbPerS) {
    idealMs = Math.max(cost.flops / (peakTflops * 1e9), cost.bytes / (peakGbPerS * 1e6));
    rooflineOps = 1;
  }
  return {
    timeMs: op.meanMs,
    flops: cost?.flops ?? 0,
    bytes: cost?.bytes ?? 0,
    idealMs,
    rooflineOps,
    tflops: op.tflops,
    gbPerS: op.gbPerS,
    errorMaxAbs: op.error?.maxAbs ?? null,
    errorRelL2: !op.error
      ? null
      : typeof op.error.relativeL2 === 'number'
        ? op.error.relativeL2
        : op.error.relativeL2 === null || (op.error.nonFinite ?? 0) > 0
          ? NON_FINITE_ERROR
          : null,
    fp16Overflows: op.error?.fp16Overflow ? 1 : 0,
    ops: 1,
  };
}

export function addTotals(a: Totals, b: Totals): Totals {
  const errorMaxAbs =
    a.errorMaxAbs === null ? b.errorMaxAbs : b.errorMaxAbs === null ? a.errorMaxAbs : Math.max(a.errorMaxAbs, b.errorMaxAbs);
  return {
    timeMs: a.timeMs + b.timeMs,
    flops: a.flops + b.flops,
    bytes: a.bytes + b.bytes,
    idealMs: a.idealMs + b.idealMs,
    rooflineOps: a.rooflineOps + b.rooflineOps,
    errorMaxAbs,
    errorRelL2: a.errorRelL2 === null ? b.errorRelL2 : b.errorRelL2 === null ? a.errorRelL2 : Math.max(a.errorRelL2, b.errorRelL2),
    fp16Overflows: a.fp16Overflows + b.fp16Overflows,
    ops: a.ops + b.ops,
  };
}

/** Sum of all ops' times in the profile (the denominator of `share`). */
export function profileTotalMs(profile: ProfileJson): number {
  return Object.values(profile.ops).reduce((s, o) => s + o.meanMs, 0);
}

/** The metric's value for some totals, or null when the profile lacks what it needs. */
export function metricValue(metric: MetricId, t: Totals, totalMs: number): number | null {
  switch (metric) {
    case 'time':
      return t.timeMs;
    case 'share':
      return totalMs > 0 ? (100 * t.timeMs) / totalMs : null;
    case 'tflops':
      if (t.ops === 1 && t.tflops !== undefined) return t.tflops;
      return t.flops > 0 && t.timeMs > 0 ? t.flops / (t.timeMs * 1e9) : null;
    case 'gbps':
      if (t.ops === 1 && t.gbPerS !== undefined) return t.gbPerS;
      return t.bytes > 0 && t.timeMs > 0 ? t.bytes / (t.timeMs * 1e6) : null;
    case 'roofline':
      return t.rooflineOps > 0 && t.timeMs > 0 ? t.idealMs / t.timeMs : null;
    case 'error':
      return t.errorMaxAbs;
    case 'errorRel':
      return t.errorRelL2;
  }
}

/**
 * The metric a profile opens with: relative error for a profile of errors only (ait verify: no times measured),
 * else time.
 */
export function defaultMetric(profiles: NamedProfile[], index: number | null, current: MetricId): MetricId {
  const p = index === null ? undefined : profiles[index]?.profile;
  if (!p) return current;
  const ops = Object.values(p.ops);
  const errorsOnly = ops.length > 0 && ops.some((o) => o.error) && ops.every((o) => !(o.meanMs > 0));
  return errorsOnly ? 'errorRel' : current === 'errorRel' || current === 'error' ? 'time' : current;
}

/** Per visible item (node or group id) totals of one profile: nodes directly, groups as sums of their nodes. */
export function totalsByItem(model: GraphModel, profile: ProfileJson): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const n of model.nodes) {
    const t = nodeTotals(model, profile, n.id);
    if (!t) continue;
    out.set(n.id, t);
    for (let g = model.groups.get(n.group); g; g = g.parent === null ? undefined : model.groups.get(g.parent)) {
      const prev = out.get(g.id);
      out.set(g.id, prev ? addTotals(prev, t) : { ...t });
    }
  }
  return out;
}

export interface Heatmap {
  /** Fill colour per item id (nodes and groups); items without a value are absent. */
  colorOf: Map<string, string>;
  valueOf: Map<string, number>;
  legend: {
    title: string;
    unit: string;
    min: number;
    max: number;
    gradient: string[];
    diverging: boolean;
    maxItem: string | null;
    minItem: string | null;
    /** A line under the scale (error heatmap: NaN/Inf and fp16 overflow counts). */
    note?: string;
  };
}

const GRADIENT_STOPS = 9;

/**
 * Colours for one profile and metric: the highest value is the hottest colour. `scopeIds` are the items whose
 * values set the scale (the graph nodes, so that group sums do not flatten it).
 */
export function buildHeatmap(model: GraphModel, profile: ProfileJson, metric: MetricId): Heatmap {
  const totals = totalsByItem(model, profile);
  const totalMs = profileTotalMs(profile);
  const valueOf = new Map<string, number>();
  const nonFinite = new Set<string>();
  for (const [id, t] of totals) {
    const v = metricValue(metric, t, totalMs);
    if (v !== null && Number.isFinite(v)) valueOf.set(id, v);
    else if (v === NON_FINITE_ERROR && metric === 'errorRel') nonFinite.add(id);
  }
  if (metric === 'errorRel') return errorHeatmap(model, valueOf, nonFinite, totals);
  let min = Infinity;
  let max = -Infinity;
  let minItem: string | null = null;
  let maxItem: string | null = null;
  for (const n of model.nodes) {
    const v = valueOf.get(n.id);
    if (v === undefined) continue;
    if (v > max) [max, maxItem] = [v, n.id];
    if (v < min) [min, minItem] = [v, n.id];
  }
  if (maxItem === null) [min, max] = [0, 0];
  const lo = metric === 'time' || metric === 'share' ? 0 : min;
  const hi = max > lo ? max : lo + 1;
  const scale = (metric === 'time' || metric === 'share' ? scaleSequentialSqrt(interpolateYlOrRd) : scaleSequential(interpolateYlOrRd))
    .domain([lo, hi])
    .clamp(true);
  const colorOf = new Map<string, string>();
  for (const [id, v] of valueOf) colorOf.set(id, scale(v));
  const gradient = Array.from({ length: GRADIENT_STOPS }, (_, i) => scale(lo + ((hi - lo) * i) / (GRADIENT_STOPS - 1)));
  return {
    colorOf,
    valueOf,
    legend: { title: METRICS[metric].label, unit: METRICS[metric].unit, min: lo, max, gradient, diverging: false, maxItem, minItem },
  };
}

/**
 * Relative error on a log scale (errors span decades: 1e-4 for fp16 rounding, 1 for a wrong node). Outputs with NaN/Inf
 * get the hottest colour and the value shown as "NaN/Inf"; the legend counts fp16 overflows and names the hottest.
 */
function errorHeatmap(model: GraphModel, valueOf: Map<string, number>, nonFinite: Set<string>, totals: Map<string, Totals>): Heatmap {
  const FLOOR = 1e-7;
  let min = Infinity;
  let max = -Infinity;
  let minItem: string | null = null;
  let maxItem: string | null = null;
  for (const n of model.nodes) {
    const v = valueOf.get(n.id);
    if (nonFinite.has(n.id)) {
      if (max !== Infinity) [max, maxItem] = [Infinity, n.id];
      continue;
    }
    if (v === undefined) continue;
    if (v > max) [max, maxItem] = [v, n.id];
    if (v < min) [min, minItem] = [v, n.id];
  }
  const finiteMax = Math.max(FLOOR * 10, ...[...valueOf.values()].filter(Number.isFinite));
  const lo = Math.max(FLOOR, Number.isFinite(min) ? min : FLOOR);
  const hi = max === Infinity ? Math.max(finiteMax, 1) : finiteMax > lo ? finiteMax : lo * 10;
  const scale = scaleSequentialLog(interpolateYlOrRd).domain([lo, hi]).clamp(true);
  const colorOf = new Map<string, string>();
  for (const [id, v] of valueOf) colorOf.set(id, scale(Math.max(v, FLOOR)));
  for (const id of nonFinite) {
    colorOf.set(id, scale(hi));
    valueOf.set(id, Infinity);
  }
  const gradient = Array.from({ length: GRADIENT_STOPS }, (_, i) => scale(lo * (hi / lo) ** (i / (GRADIENT_STOPS - 1))));
  let overflows = 0;
  for (const n of model.nodes) overflows += totals.get(n.id)?.fp16Overflows ?? 0;
  const nanNodes = model.nodes.filter((n) => nonFinite.has(n.id)).length;
  const notes = [...(nanNodes ? [`${nanNodes} with NaN/Inf (hottest)`] : []), ...(overflows ? [`${overflows} beyond the fp16 range`] : [])];
  return {
    colorOf,
    valueOf,
    legend: {
      title: METRICS.errorRel.label,
      unit: '',
      min: lo,
      max: maxItem === null ? 0 : max,
      gradient,
      diverging: false,
      maxItem,
      minItem,
      ...(notes.length ? { note: notes.join('; ') } : {}),
    },
  };
}

/** Compare two profiles of the same graph: colour = time ratio `after / before` (red slower, blue faster). */
export function buildCompare(model: GraphModel, before: ProfileJson, after: ProfileJson): Heatmap {
  const a = totalsByItem(model, before);
  const b = totalsByItem(model, after);
  const valueOf = new Map<string, number>();
  for (const [id, ta] of a) {
    const tb = b.get(id);
    if (tb && ta.timeMs > 0 && tb.timeMs > 0) valueOf.set(id, tb.timeMs / ta.timeMs);
  }
  let min = Infinity;
  let max = -Infinity;
  let minItem: string | null = null;
  let maxItem: string | null = null;
  for (const n of model.nodes) {
    const v = valueOf.get(n.id);
    if (v === undefined) continue;
    if (v > max) [max, maxItem] = [v, n.id];
    if (v < min) [min, minItem] = [v, n.id];
  }
  // Symmetric in log space around 1 so that 2× slower and 2× faster get equally strong colours.
  const extent = maxItem === null ? 2 : Math.max(max, 1 / min, 1.05);
  const scale = scaleDivergingLog((t: number) => interpolateRdBu(1 - t))
    .domain([1 / extent, 1, extent])
    .clamp(true);
  const colorOf = new Map<string, string>();
  for (const [id, v] of valueOf) colorOf.set(id, scale(v));
  const lin = scaleDiverging((t: number) => interpolateRdBu(1 - t)).domain([0, 0.5, 1]);
  const gradient = Array.from({ length: GRADIENT_STOPS }, (_, i) => lin(i / (GRADIENT_STOPS - 1)));
  return {
    colorOf,
    valueOf,
    legend: { title: 'Time ratio (after / before)', unit: '×', min: 1 / extent, max: extent, gradient, diverging: true, maxItem, minItem },
  };
}

/** A number with 3 significant digits and its unit: `1.23 ms`, `45.6 %`, `0.812`. */
export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) || value === Infinity ? 'NaN/Inf' : String(value);
  const abs = Math.abs(value);
  const text = abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(2) : value.toPrecision(3);
  return unit ? (unit === '%' || unit === '×' ? `${text}${unit === '%' ? ' %' : '×'}` : `${text} ${unit}`) : text;
}

/** Black or white text over a fill colour, whichever reads better. */
export function textColorOn(fill: string): string {
  const m = /rgb\((\d+), ?(\d+), ?(\d+)\)/.exec(fill);
  if (!m) return '#000';
  const [r, g, b] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#111' : '#fff';
}
