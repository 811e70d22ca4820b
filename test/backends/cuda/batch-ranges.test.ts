/**
 * Batch ranges from breakpoints (codegen/batch-ranges.ts): for GEMM and conv problems of many shapes, the ranges found
 * from the heuristics' decisions are the ranges of evaluating the heuristic at every batch; and the cost does not
 * grow with the max batch.
 */
import { strict as assert } from 'node:assert';
import { BatchDecisions, BatchRange, batchRanges, decisionBatches } from '../../../compiler/backends/cuda/codegen/batch-ranges';
import { chooseSm80Gemm, chooseSm90Gemm, gemmDecisions, type GemmProblem } from '../../../compiler/backends/cuda/cutlass/gemm';
import { chooseConv, convDecisions, type ConvProblem } from '../../../compiler/backends/cuda/cutlass/conv';

/** The reference: the choice at every batch, merged. */
function everyBatch<S>(maxBatch: number, choose: (batch: number) => S): BatchRange<S>[] {
  const ranges: BatchRange<S>[] = [];
  for (let batch = 1; batch <= maxBatch; batch++) {
    const source = choose(batch);
    const last = ranges[ranges.length - 1];
    if (last && last.source === source) last.lastBatch = batch;
    else ranges.push({ firstBatch: batch, lastBatch: batch, source });
  }
  return ranges;
}

/** Interned choice keys, so that equal choices are === (as registered instances are). */
function interned<P>(key: (p: P) => string): (p: P) => string {
  const seen = new Map<string, string>();
  return (p) => {
    const k = key(p);
    if (!seen.has(k)) seen.set(k, k);
    return seen.get(k)!;
  };
}

function check<P>(what: string, maxBatch: number, problemAt: (b: number) => P, key: (p: P) => string, decisions: BatchDecisions) {
  const choose = interned(key);
  const expected = everyBatch(maxBatch, (b) => choose(problemAt(b)));
  const actual = batchRanges(maxBatch, decisions, (b) => choose(problemAt(b)));
  assert.deepEqual(actual, expected, what);
}

/** A small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('batch ranges from breakpoints', () => {
  it('GEMM (sm90 and sm80, plain and batched, long K for stream-K): the same ranges as every batch', () => {
    const rnd = random(12);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    for (let i = 0; i < 150; i++) {
      const rows = pick([1, 3, 7, 49, 64, 196, 197, 577, 1024]);
      const n = pick([8, 64, 100, 128, 384, 768, 1000, 1024, 3072, 4096]);
      const k = pick([64, 768, 1024, 2048, 4096, 5120]);
      const heads = pick([0, 0, 12, 16]);
      const at = (b: number): GemmProblem => (heads ? { m: rows, n, k, batch: b * heads } : { m: b * rows, n, k });
      const maxBatch = pick([1, 7, 64, 256, 600]);
      const name = `m=${rows}·batch n=${n} k=${k} heads=${heads} max ${maxBatch}`;
      check(`sm90 ${name}`, maxBatch, at, (p) => JSON.stringify(chooseSm90Gemm(p).config), gemmDecisions(at));
      check(`sm80 ${name}`, maxBatch, at, (p) => JSON.stringify(chooseSm80Gemm(p).config), gemmDecisions(at));
    }
  });

  it('conv (sm90, sm80, grouped): the same ranges as every batch', () => {
    const rnd = random(7);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    for (let i = 0; i < 150; i++) {
      const c = pick([8, 16, 64, 256, 512]);
      const k = pick([16, 64, 128, 256, 2048]);
      const pq = pick([1, 7, 14, 28, 56, 112]);
      const group = pick([1, 1, 2, 4]);
      const at = (n: number): ConvProblem => ({
        n,
        h: pq,
        w: pq,
        c,
        k,
        r: 3,
        s: 3,
        p: pq,
        q: pq,
        pads: [1, 1, 1, 1],
        strides: [1, 1],
        dilations: [1, 1],
        group,
      });
      const maxBatch = pick([1, 8, 256, 700]);
      for (const target of ['sm90', 'sm80'] as const) {
        let key: (p: ConvProblem) => string = (p) => JSON.stringify(chooseConv(p, target).config);
        try {
          key(at(1));
        } catch {
          key = () => 'refused'; // a shape CUTLASS has no instance for: refused at every batch alike
        }
        check(`${target} C=${c} K=${k} P=Q=${pq} group=${group} max ${maxBatch}`, maxBatch, at, key, convDecisions(at));
      }
    }
  });

  it('evaluates the heuristic a number of times that does not grow with the max batch', () => {
    const at = (b: number): GemmProblem => ({ m: b * 197, n: 1024, k: 4096 });
    let calls = 0;
    const ranges = batchRanges(65536, gemmDecisions(at), (b) => {
      calls++;
      return chooseSm90Gemm(at(b)).config.tile.join('x') + chooseSm90Gemm(at(b)).config.scheduler;
    });
    assert.equal(ranges[ranges.length - 1].lastBatch, 65536);
    assert.ok(calls < 200, `${calls} evaluations`);
    assert.ok(decisionBatches(65536, gemmDecisions(at)).length < 100);
  });
});
