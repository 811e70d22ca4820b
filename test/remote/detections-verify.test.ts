// Verify of detection outputs: boxes/scores/labels (and per-detection masks) are judged by matching detections by IoU
// (compiler/verify/detections.ts), since near-equal scores reorder and border detections come and go between fp16 and
// the fp32 reference; every other output still compares element by element.
import { strict as assert } from 'node:assert';
import { boxIoU, findDetectionGroups, matchDetections } from '../../compiler/verify/detections';
import type { NpyArray } from '../../remote-agent/agent/npy';
import { compareDetectionGroups, compareOutput } from '../../remote-agent/agent/verify';
import type { NativeDType } from '../../native/index';

function npy(dtype: 'float32' | 'int64', shape: number[], values: number[]): NpyArray {
  const data =
    dtype === 'float32'
      ? Buffer.from(new Float32Array(values).buffer)
      : Buffer.from(new BigInt64Array(values.map((v) => BigInt(v))).buffer);
  return { dtype, shape, data };
}

/** Reference detections: 4 boxes, the last one at the score border (0.051 against a 0.05 threshold). */
const REF = {
  boxes: [10, 10, 50, 60, 100, 120, 180, 200, 30, 40, 35, 48, 200, 10, 260, 90],
  scores: [0.9, 0.8, 0.31, 0.051],
  labels: [1, 3, 1, 7],
};

function outputs(boxes: number[], scores: number[], labels: number[], masks?: number[]) {
  const n = scores.length;
  const list: { info: { name: string; dtype: NativeDType }; shape: number[]; values: Float64Array }[] = [
    { info: { name: 'boxes', dtype: 'float16' }, shape: [n, 4], values: Float64Array.from(boxes) },
    { info: { name: 'labels', dtype: 'int64' }, shape: [n], values: Float64Array.from(labels) },
    { info: { name: 'scores', dtype: 'float16' }, shape: [n], values: Float64Array.from(scores) },
  ];
  if (masks) list.push({ info: { name: 'masks', dtype: 'float16' }, shape: [n, 1, 2, 2], values: Float64Array.from(masks) });
  return list;
}

function reference(masks?: number[]): Map<string, NpyArray | null> {
  const n = REF.scores.length;
  const m = new Map<string, NpyArray | null>([
    ['boxes', npy('float32', [n, 4], REF.boxes)],
    ['labels', npy('int64', [n], REF.labels)],
    ['scores', npy('float32', [n], REF.scores)],
  ]);
  if (masks) m.set('masks', npy('float32', [n, 1, 2, 2], masks));
  return m;
}

function verifyRows(compiled: ReturnType<typeof outputs>, expected: Map<string, NpyArray | null>) {
  const rows = compiled.map((o) =>
    compareOutput(o.info.name, 1, o.shape, o.values, expected.get(o.info.name) ?? null, 2e-2, [...expected.keys()]),
  );
  compareDetectionGroups(compiled, expected, rows, 2e-2);
  return new Map(rows.map((r) => [r.output, r]));
}

describe('verify: detection outputs matched by IoU', () => {
  it('groups boxes [N,4] with the [N] scores/labels and [N,...] masks beside them; boxes alone stay arrays', () => {
    const groups = findDetectionGroups(
      [
        { name: 'anchors', shape: [9, 4], integer: false },
        { name: 'boxes', shape: [5, 4], integer: false },
        { name: 'scores', shape: [5], integer: false },
        { name: 'labels', shape: [5], integer: true },
        { name: 'masks', shape: [5, 1, 28, 28], integer: false },
      ],
      [
        { name: 'anchors', shape: [9, 4], integer: false },
        { name: 'boxes', shape: [6, 4], integer: false },
        { name: 'scores', shape: [6], integer: false },
        { name: 'labels', shape: [6], integer: true },
        { name: 'masks', shape: [6, 1, 28, 28], integer: false },
      ],
    );
    assert.deepEqual(groups, [{ boxes: 'boxes', scores: 'scores', labels: 'labels', others: ['masks'] }]);
  });

  it('IoU of xyxy boxes', () => {
    assert.equal(boxIoU([0, 0, 2, 2], [1, 1, 3, 3]), 1 / 7);
    assert.equal(boxIoU([0, 0, 1, 1], [2, 2, 3, 3]), 0);
  });

  it('passes reordered, slightly moved detections and a border detection the compiled side dropped', () => {
    // compiled: fp16-like jitter, the first two swapped, the 0.051 border detection missing (N = 3 against 4)
    const order = [1, 0, 2];
    const jitter = (v: number) => v + 0.25;
    const boxes = order.flatMap((i) => REF.boxes.slice(4 * i, 4 * i + 4).map(jitter));
    const rows = verifyRows(
      outputs(
        boxes,
        order.map((i) => REF.scores[i] + 0.001),
        order.map((i) => REF.labels[i]),
      ),
      reference(),
    );
    for (const name of ['boxes', 'scores', 'labels']) {
      const row = rows.get(name)!;
      assert.equal(row.pass, true, `${name}: ${row.failure}`);
      assert.equal(row.shapeMatches, false); // element by element it would have failed
      assert.deepEqual(
        [row.detections!.matched, row.detections!.referenceCount, row.detections!.compiledCount, row.detections!.borderMissed],
        [3, 4, 3, 1],
      );
      assert.ok(row.detections!.meanIoU! > 0.9);
    }
  });

  it('fails when a confident detection is missing, or its label differs, naming what', () => {
    const missing = verifyRows(outputs(REF.boxes.slice(4), REF.scores.slice(1), REF.labels.slice(1)), reference());
    assert.equal(missing.get('boxes')!.pass, false);
    assert.match(missing.get('boxes')!.failure!, /1 reference detection\(s\) not found/);
    const relabelled = verifyRows(outputs(REF.boxes, REF.scores, [2, 3, 1, 7]), reference());
    assert.equal(relabelled.get('labels')!.pass, false);
    assert.match(relabelled.get('labels')!.failure!, /not found.*1 detection\(s\) the reference does not have/);
  });

  it('fails boxes that moved too far, and scores that differ', () => {
    const moved = verifyRows(
      outputs(
        REF.boxes.map((v, i) => (i < 4 ? v + 8 : v)),
        REF.scores,
        REF.labels,
      ),
      reference(),
    );
    assert.equal(moved.get('boxes')!.pass, false);
    assert.match(moved.get('boxes')!.failure!, /mean IoU|not found/);
    const scored = verifyRows(outputs(REF.boxes, [0.8, 0.8, 0.31, 0.051], REF.labels), reference());
    assert.match(scored.get('scores')!.failure!, /score error 1.00e-1 above 0.02/);
  });

  it('compares per-detection masks over the matched pairs, in the compiled order', () => {
    const refMasks = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    const order = [1, 0, 2, 3];
    const compiledMasks = order.flatMap((i) => refMasks.slice(4 * i, 4 * i + 4));
    const ok = verifyRows(
      outputs(
        order.flatMap((i) => REF.boxes.slice(4 * i, 4 * i + 4)),
        order.map((i) => REF.scores[i]),
        order.map((i) => REF.labels[i]),
        compiledMasks,
      ),
      reference(refMasks),
    );
    assert.equal(ok.get('masks')!.pass, true, ok.get('masks')!.failure);
    assert.equal(ok.get('masks')!.relativeL2, 0);
    const wrong = compiledMasks.map((v, i) => (i === 0 ? v + 40 : v));
    const bad = verifyRows(
      outputs(
        order.flatMap((i) => REF.boxes.slice(4 * i, 4 * i + 4)),
        order.map((i) => REF.scores[i]),
        order.map((i) => REF.labels[i]),
        wrong,
      ),
      reference(refMasks),
    );
    assert.equal(bad.get('masks')!.pass, false);
    assert.match(bad.get('masks')!.failure!, /matched detections' rows/);
    assert.equal(bad.get('boxes')!.pass, true);
  });

  it('matches each image of [B, N, 4] outputs on its own', () => {
    const group = { boxes: 'b', scores: 's', others: [] };
    const boxes = [0, 0, 10, 10, 20, 20, 30, 30];
    const same = matchDetections(group, { shape: [2, 1, 4], boxes, scores: [0.9, 0.8] }, { shape: [2, 1, 4], boxes, scores: [0.9, 0.8] });
    assert.deepEqual(
      [same.pass, same.matched, same.pairs],
      [
        true,
        2,
        [
          [0, 0],
          [1, 1],
        ],
      ],
    );
    // image 0's box in image 1: not a match across images
    const swapped = matchDetections(
      group,
      { shape: [2, 1, 4], boxes: [...boxes.slice(4), ...boxes.slice(0, 4)], scores: [0.9, 0.8] },
      { shape: [2, 1, 4], boxes, scores: [0.9, 0.8] },
    );
    assert.equal(swapped.matched, 0);
    assert.equal(swapped.pass, false);
  });
});
