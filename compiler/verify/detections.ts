/**
 * Detection outputs compared as detections, not as arrays.
 *
 * A detection model's outputs (boxes [.., N, 4] with scores and labels [.., N] beside them, N decided by the data) do
 * not compare element by element: fp16 scores reorder near-equal detections, and a detection whose score sits at the
 * score threshold or at the top-k border is kept on one side and dropped on the other, which shifts every row after
 * it. So outputs that form such a group are compared by matching detections: each reference detection (highest score
 * first) takes the unmatched compiled detection of the same label with the highest IoU ≥ `matchIoU`. The group passes
 * when every unmatched detection, on either side, is a border case (its score within `borderScore` of the lowest score
 * either side kept, where a score threshold or a top-k cut sits), and no more than a few are (2, or 5 %), and the
 * matched pairs' boxes and scores agree (mean IoU ≥ `minMeanIoU`, score error ≤ `maxScoreError`).
 *
 * Groups are found from shapes alone: a float output whose last axis is 4 ("boxes", x1 y1 x2 y2) and the outputs whose
 * shape is the boxes' shape without that axis (scores: float, labels: integers) or starts with it (per-detection
 * masks, keypoints: compared row by row over the matched pairs, `compareMatchedRows`). With a leading axis (shape
 * [B, N, 4]) each index of it is an image and is matched on its own.
 */

export interface DetectionOutput {
  name: string;
  shape: readonly number[];
  /** Integer outputs (labels) are told apart from float ones (scores). */
  integer: boolean;
}

export interface DetectionGroup {
  boxes: string;
  scores?: string;
  labels?: string;
  /** Further per-detection outputs ([.., N, ...]: masks, keypoints): compared row by row over the matched pairs. */
  others: string[];
}

export interface DetectionMatchOptions {
  matchIoU: number;
  minMeanIoU: number;
  maxScoreError: number;
  borderScore: number;
}

export const DEFAULT_DETECTION_MATCH: DetectionMatchOptions = { matchIoU: 0.5, minMeanIoU: 0.9, maxScoreError: 0.02, borderScore: 0.02 };

/** What matching one group found, at one batch size (over every image of it). */
export interface DetectionMatch {
  boxesOutput: string;
  scoresOutput: string | null;
  labelsOutput: string | null;
  referenceCount: number;
  compiledCount: number;
  matched: number;
  /** Unmatched detections that are not border cases (these fail the group). */
  missed: number;
  extra: number;
  /** Unmatched detections at the score border (allowed). */
  borderMissed: number;
  borderExtra: number;
  /** Over matched pairs; null when nothing matched. */
  meanIoU: number | null;
  minIoU: number | null;
  maxScoreError: number | null;
  pass: boolean;
  failure?: string;
  /** Matched pairs as flat detection rows (image × N + index) of each side: [reference row, compiled row]. */
  pairs: [number, number][];
}

/**
 * The detection groups among a model's outputs. `shapesAgreeOn` are the output shapes of both sides: a group is only
 * formed when its outputs have the group's shapes on each side (N may differ between the sides).
 */
export function findDetectionGroups(compiled: DetectionOutput[], reference: DetectionOutput[]): DetectionGroup[] {
  const groups: DetectionGroup[] = [];
  const refByName = new Map(reference.map((o) => [o.name, o]));
  for (const boxes of compiled) {
    const ref = refByName.get(boxes.name);
    if (!ref || boxes.integer || !isBoxesShape(boxes.shape) || !isBoxesShape(ref.shape)) continue;
    const rowsOf = (shape: readonly number[]) => shape.slice(0, -1);
    const rows = rowsOf(boxes.shape);
    const refRows = rowsOf(ref.shape);
    const members = compiled.filter((o) => {
      if (o === boxes) return false;
      const r = refByName.get(o.name);
      return (
        !!r &&
        startsWith(o.shape, rows) &&
        startsWith(r.shape, refRows) &&
        sameShape(o.shape.slice(rows.length), r.shape.slice(refRows.length))
      );
    });
    const perRow = members.filter((o) => o.shape.length === rows.length);
    if (perRow.length === 0) continue; // boxes with no scores or labels beside them (e.g. anchors) compare as an array
    const scores = perRow.find((o) => !o.integer);
    const labels = perRow.find((o) => o.integer);
    groups.push({
      boxes: boxes.name,
      ...(scores ? { scores: scores.name } : {}),
      ...(labels ? { labels: labels.name } : {}),
      others: members.filter((o) => o !== scores && o !== labels).map((o) => o.name),
    });
  }
  return groups;
}

function isBoxesShape(shape: readonly number[]): boolean {
  return (shape.length === 2 || shape.length === 3) && shape[shape.length - 1] === 4;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function startsWith(shape: readonly number[], prefix: readonly number[]): boolean {
  return shape.length >= prefix.length && prefix.every((d, i) => d === shape[i]);
}

/** One side of a group: boxes [.., N, 4] and, when the model gives them, scores and labels [.., N]. */
export interface DetectionSet {
  shape: readonly number[];
  boxes: ArrayLike<number>;
  scores?: ArrayLike<number>;
  labels?: ArrayLike<number>;
}

interface Detection {
  box: [number, number, number, number];
  score: number;
  label: number;
  /** Flat row of the detection in its side's outputs. */
  row: number;
}

function detectionsOf(set: DetectionSet): Detection[][] {
  const images = set.shape.length === 3 ? set.shape[0] : 1;
  const n = set.shape[set.shape.length - 2];
  const out: Detection[][] = [];
  for (let b = 0; b < images; b++) {
    const rows: Detection[] = [];
    for (let i = 0; i < n; i++) {
      const r = b * n + i;
      rows.push({
        box: [set.boxes[4 * r], set.boxes[4 * r + 1], set.boxes[4 * r + 2], set.boxes[4 * r + 3]],
        // without scores the order is the model's: earlier detections first
        score: set.scores ? set.scores[r] : n - i,
        label: set.labels ? set.labels[r] : 0,
        row: r,
      });
    }
    out.push(rows);
  }
  return out;
}

export function boxIoU(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  const inter = w > 0 && h > 0 ? w * h : 0;
  const area = (x: readonly number[]) => Math.max(0, x[2] - x[0]) * Math.max(0, x[3] - x[1]);
  const union = area(a) + area(b) - inter;
  if (union > 0) return inter / union;
  // two empty boxes: the same when they sit at the same place
  return a.every((v, i) => v === b[i]) ? 1 : 0;
}

/** Matches the compiled detections to the reference's (see the file comment). */
export function matchDetections(
  group: DetectionGroup,
  compiled: DetectionSet,
  reference: DetectionSet,
  options: DetectionMatchOptions = DEFAULT_DETECTION_MATCH,
): DetectionMatch {
  const comp = detectionsOf(compiled);
  const ref = detectionsOf(reference);
  const result: DetectionMatch = {
    boxesOutput: group.boxes,
    scoresOutput: group.scores ?? null,
    labelsOutput: group.labels ?? null,
    referenceCount: 0,
    compiledCount: 0,
    matched: 0,
    missed: 0,
    extra: 0,
    borderMissed: 0,
    borderExtra: 0,
    meanIoU: null,
    minIoU: null,
    maxScoreError: null,
    pass: false,
    pairs: [],
  };
  if (comp.length !== ref.length) {
    result.failure = `${comp.length} image(s) of detections against the reference's ${ref.length}`;
    return result;
  }
  // the border: the lowest score either side kept, over every image (a score threshold or a top-k cut sits there)
  const allScores = [...ref.flat(), ...comp.flat()].map((d) => d.score);
  const lowest = allScores.length ? Math.min(...allScores) : 0;
  const atBorder = (d: Detection) => group.scores !== undefined && d.score - lowest <= options.borderScore;
  let iouSum = 0;
  for (let b = 0; b < ref.length; b++) {
    const r = [...ref[b]].sort((x, y) => y.score - x.score);
    const c = comp[b];
    result.referenceCount += r.length;
    result.compiledCount += c.length;
    const taken = new Array<boolean>(c.length).fill(false);
    for (const d of r) {
      let best = -1;
      let bestIoU = options.matchIoU;
      c.forEach((e, j) => {
        if (taken[j] || e.label !== d.label) return;
        const iou = boxIoU(d.box, e.box);
        if (iou >= bestIoU) [best, bestIoU] = [j, iou];
      });
      if (best < 0) {
        if (atBorder(d)) result.borderMissed++;
        else result.missed++;
        continue;
      }
      taken[best] = true;
      result.matched++;
      result.pairs.push([d.row, c[best].row]);
      iouSum += bestIoU;
      result.minIoU = Math.min(result.minIoU ?? 1, bestIoU);
      if (group.scores) result.maxScoreError = Math.max(result.maxScoreError ?? 0, Math.abs(c[best].score - d.score));
    }
    c.forEach((d, j) => {
      if (taken[j]) return;
      if (atBorder(d)) result.borderExtra++;
      else result.extra++;
    });
  }
  if (result.matched > 0) result.meanIoU = iouSum / result.matched;
  const problems: string[] = [];
  if (result.missed > 0) problems.push(`${result.missed} reference detection(s) not found`);
  if (result.extra > 0) problems.push(`${result.extra} detection(s) the reference does not have`);
  // a few detections may come and go at the border, not a good part of them
  const borderAllowed = Math.max(2, Math.ceil(0.05 * Math.max(result.referenceCount, result.compiledCount)));
  if (result.borderMissed + result.borderExtra > borderAllowed)
    problems.push(`${result.borderMissed + result.borderExtra} detection(s) at the score border differ (at most ${borderAllowed} may)`);
  if (result.meanIoU !== null && result.meanIoU < options.minMeanIoU)
    problems.push(`mean IoU of matched boxes ${result.meanIoU.toFixed(3)} below ${options.minMeanIoU}`);
  if (result.maxScoreError !== null && result.maxScoreError > options.maxScoreError)
    problems.push(`score error ${result.maxScoreError.toExponential(2)} above ${options.maxScoreError}`);
  result.pass = problems.length === 0;
  if (problems.length) result.failure = `detections (IoU ≥ ${options.matchIoU}): ${problems.join('; ')}`;
  return result;
}

/** A per-detection output (masks, keypoints) over the matched pairs: relative L2 and max abs error of those rows. */
export function compareMatchedRows(
  pairs: readonly [number, number][],
  compiled: ArrayLike<number>,
  reference: ArrayLike<number>,
  rowSize: number,
): { relativeL2: number | null; maxAbsError: number; nonFinite: number } {
  let diff = 0;
  let norm = 0;
  let maxAbsError = 0;
  let nonFinite = 0;
  for (const [r, c] of pairs) {
    for (let k = 0; k < rowSize; k++) {
      const a = compiled[c * rowSize + k];
      const e = reference[r * rowSize + k];
      if (!Number.isFinite(a)) {
        nonFinite++;
        continue;
      }
      diff += (a - e) * (a - e);
      norm += e * e;
      maxAbsError = Math.max(maxAbsError, Math.abs(a - e));
    }
  }
  return { relativeL2: nonFinite > 0 ? null : norm > 0 ? Math.sqrt(diff / norm) : diff === 0 ? 0 : null, maxAbsError, nonFinite };
}
