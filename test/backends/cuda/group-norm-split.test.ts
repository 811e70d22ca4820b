/**
 * group_norm.cuh's split path (few (image, group) pairs of large groups, e.g. PoolFormer's GroupNorm(1, C) at small
 * batch: each group cut into slices, a block per (pair, slice), partial (mean, M2) combined by Chan's formula). No
 * GPU here, so:
 *  - the split kernels' arithmetic is replayed in TypeScript (slice bounds, per-slice two-pass statistics, each lane
 *    folding its partials, the butterfly across 32 or 64 lanes, the 32-bit offsets within an image in both layouts)
 *    and compared with the interpreter; every element is written once;
 *  - the combined statistics equal the two-pass mean and variance (also for values ~1000 + noise, where fp32
 *    E[x²] − E[x]² is shown to fail), in double and in fp32 (Math.fround) arithmetic;
 *  - the split decision and the workspace formula (TypeScript = C++, nvcc compiles group_norm.cuh's on the host);
 *    the declared workspace covers every split any device may pick;
 *  - a PoolFormer-like GroupNorm(1, 64) (torch's Reshape → InstanceNormalization → Reshape → Mul → Add) computes
 *    what onnxruntime does, lowers onto the launch with the workspace, and nvcc compiles model.cu; a small group keeps
 *    the launch without it.
 * The GPU cases are in compiler/backends/cuda/tests/kernel_check.cu (check_group_norm_split_cases).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import {
  GROUP_NORM_MAX_SPLITS,
  groupNormPlan,
  groupNormSplits,
  groupNormWorkspaceBytes,
} from '../../../compiler/backends/cuda/codegen/group-norm-lowering';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { ModelSpec, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { KERNELS_DIR, gencodeOf, haveNvcc, nvccCompileGenerated, requireNvcc } from '../../helpers/nvcc';

function data(count: number, seed: number, offset = 0, spread = 3): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => offset + (random() * 2 - 1) * spread);
}

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tolerance: number) => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tolerance * (1 + Math.abs(expected[i])),
      `${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`,
    );
};

interface SplitArgs {
  batch: number;
  channels: number;
  spatial: number;
  groups: number;
  channelsLast: boolean;
  affinePerGroup: boolean;
  eps: number;
}

/** group_norm_slice_begin: [count·s/splits, count·(s+1)/splits). */
const sliceBegin = (count: number, splits: number, s: number) => Math.floor((count * s) / splits);

/** group_norm_chan (in `round`'s arithmetic: identity for double, Math.fround for the kernel's fp32). */
function chan(a: [number, number, number], b: [number, number, number], round: (v: number) => number): [number, number, number] {
  const [count, mean, m2] = a;
  const [countB, meanB, m2B] = b;
  if (countB === 0) return a;
  const total = round(count + countB);
  const delta = round(meanB - mean);
  const weight = round(countB / total);
  return [total, round(mean + round(delta * weight)), round(m2 + round(m2B + round(round(round(delta * delta) * count) * weight)))];
}

/**
 * The split path's statistics of one pair: slices' two-pass (mean, M2) (the stats kernel; fp32-rounded when
 * `round` is Math.fround), lane p folds partials p, p + warp, …, then the xor butterfly; lane 0's result.
 */
function splitStats(values: (idx: number) => number, count: number, splits: number, warp: number, round: (v: number) => number) {
  const partials: [number, number][] = [];
  for (let s = 0; s < splits; s++) {
    const [begin, end] = [sliceBegin(count, splits, s), sliceBegin(count, splits, s + 1)];
    let sum = 0;
    for (let i = begin; i < end; i++) sum += values(i);
    const mean = end > begin ? round(sum / (end - begin)) : 0;
    let squares = 0;
    for (let i = begin; i < end; i++) squares += round(values(i) - mean) ** 2;
    partials.push([mean, round(squares)]);
  }
  let lanes: [number, number, number][] = [];
  for (let lane = 0; lane < warp; lane++) {
    let acc: [number, number, number] = [0, 0, 0];
    for (let p = lane; p < splits; p += warp)
      acc = chan(acc, [sliceBegin(count, splits, p + 1) - sliceBegin(count, splits, p), partials[p][0], partials[p][1]], round);
    lanes.push(acc);
  }
  for (let offset = warp / 2; offset > 0; offset >>= 1) lanes = lanes.map((acc, lane) => chan(acc, lanes[lane ^ offset], round));
  const [n, mean, m2] = lanes[0];
  assert.equal(n, count, 'the slices cover the group');
  return { mean, variance: m2 / count };
}

/** The split path on a whole tensor: group_norm_slice's base and group_norm_slice_offset per (pair, slice). */
function replaySplitGroupNorm(
  x: ArrayLike<number>,
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
  a: SplitArgs,
  splits: number,
  warp: number,
) {
  const y = new Array<number>(x.length).fill(Number.NaN);
  const writes = new Array<number>(x.length).fill(0);
  const per = a.channels / a.groups;
  const count = per * a.spatial;
  for (let pair = 0; pair < a.batch * a.groups; pair++) {
    const n = Math.floor(pair / a.groups);
    const g = pair % a.groups;
    const base = a.channelsLast ? n * a.spatial * a.channels + g * per : (n * a.channels + g * per) * a.spatial;
    const offset = (idx: number): [number, number] => {
      if (a.channelsLast) {
        const s = Math.floor(idx / per);
        const j = idx - s * per;
        return [s * a.channels + j, g * per + j];
      }
      return [idx, g * per + Math.floor(idx / a.spatial)];
    };
    const stats = splitStats(
      (idx) => x[base + offset(idx)[0]],
      count,
      splits,
      warp,
      (v) => v,
    );
    const inv = 1 / Math.sqrt(stats.variance + a.eps);
    for (let s = 0; s < splits; s++)
      for (let idx = sliceBegin(count, splits, s); idx < sliceBegin(count, splits, s + 1); idx++) {
        const [at, channel] = offset(idx);
        assert.ok(at < a.channels * a.spatial, 'a 32-bit offset within the image');
        const p = a.affinePerGroup ? g : channel;
        y[base + at] = (x[base + at] - stats.mean) * inv * scale[p] + bias[p];
        writes[base + at]++;
      }
  }
  assert.deepEqual([...new Set(writes)], [1], 'every element written exactly once');
  return y;
}

/** Two-pass mean and (population) variance in double. */
function twoPass(v: number[]) {
  const mean = v.reduce((s, e) => s + e, 0) / v.length;
  return { mean, variance: v.reduce((s, e) => s + (e - mean) ** 2, 0) / v.length };
}

const w = (dims: number[], seed: number) =>
  tensor(
    'float32',
    dims,
    data(
      dims.reduce((p, d) => p * d, 1),
      seed,
    ).map((v) => v / 3 + 1),
  );

/** torch.onnx's GroupNorm(1, C) before opset 18 (PoolFormer): Reshape [0, 1, -1] → InstanceNormalization → Reshape → Mul γ → Add β. */
function poolformerNorm(channels: number, h: number, wd: number): ModelSpec {
  return {
    opset: 13,
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', channels, h, wd] }],
    initializers: [
      { ...tensor('float32', [1], [1]), name: 'one' },
      { ...tensor('float32', [1], [0]), name: 'zero' },
      { ...w([channels, 1, 1], 71), name: 'gamma' },
      { ...w([channels, 1, 1], 72), name: 'beta' },
      { ...tensor('int64', [3], [0, 1, -1]), name: 'grouped' },
      { ...tensor('int64', [4], [0, channels, h, wd]), name: 'back' },
    ],
    nodes: [
      { op: 'Reshape', name: 'r1', inputs: ['x', 'grouped'], outputs: ['x1'] },
      { op: 'InstanceNormalization', name: 'gn', inputs: ['x1', 'one', 'zero'], outputs: ['x2'] },
      { op: 'Reshape', name: 'r2', inputs: ['x2', 'back'], outputs: ['x3'] },
      { op: 'Mul', name: 'mul', inputs: ['x3', 'gamma'], outputs: ['x4'] },
      { op: 'Add', name: 'add', inputs: ['x4', 'beta'], outputs: ['y'] },
    ],
    outputs: ['y'],
  };
}

describe('cuda backend: group_norm.cuh split path (few (image, group) pairs of large groups)', function () {
  this.timeout(600_000);

  describe("the split kernels' arithmetic on the lowering's view computes the interpreter's result", () => {
    const cases: { name: string; spec: ModelSpec; shape: number[]; channelsLast?: boolean }[] = [
      {
        name: 'InstanceNormalization [2,3,37]',
        spec: nodeModel('InstanceNormalization', [input('float32', [2, 3, 37]), w([3], 1), w([3], 2)]),
        shape: [2, 3, 37],
      },
      {
        name: 'GroupNormalization-18 per-group affine [2,6,5,7]/3',
        spec: nodeModel('GroupNormalization', [input('float32', [2, 6, 5, 7]), w([3], 3), w([3], 4)], {
          attrs: { num_groups: 3 },
          opset: 18,
        }),
        shape: [2, 6, 5, 7],
      },
      {
        name: 'GroupNormalization-21 per-channel affine [1,8,41]/1',
        spec: nodeModel('GroupNormalization', [input('float32', [1, 8, 41]), w([8], 5), w([8], 6)], {
          attrs: { num_groups: 1 },
          opset: 21,
        }),
        shape: [1, 8, 41],
      },
      {
        name: 'GroupNormalization-21 channels-last [2,6,4,5]/2',
        spec: nodeModel('GroupNormalization', [input('float32', [2, 6, 4, 5]), w([6], 7), w([6], 8)], {
          attrs: { num_groups: 2 },
          opset: 21,
        }),
        shape: [2, 6, 4, 5],
        channelsLast: true,
      },
    ];
    for (const c of cases)
      it(c.name, () => {
        const m = inferModel(c.spec);
        const node = m.graph.nodes[0];
        const size = c.shape.reduce((p, d) => p * d, 1);
        const x = makeTensor('float32', c.shape, data(size, 9));
        const [expected] = runGraph(m.graph, [x]);
        let xd: ArrayLike<number> = numeric(x);
        const [batch, channels] = c.shape;
        const spatial = size / batch / channels;
        if (c.channelsLast) {
          // the layout pass's form: data [N, S, C], the node marked channels_last
          const nhwc = new Array<number>(size);
          for (let n = 0; n < batch; n++)
            for (let ch = 0; ch < channels; ch++)
              for (let s = 0; s < spatial; s++) nhwc[(n * spatial + s) * channels + ch] = xd[(n * channels + ch) * spatial + s];
          xd = nhwc;
          node.attrs.channels_last = { type: 'int', value: 1 };
          const shape = [batch, ...c.shape.slice(2), channels];
          m.graph.tensor(node.inputs[0]).shape = shape;
          m.graph.tensor(node.outputs[0]).shape = shape;
        }
        const p = groupNormPlan(CodegenContext.forChecks(m.graph), node);
        assert.equal(p.channelsLast, !!c.channelsLast);
        const scale = numeric(m.graph.tensor(node.inputs[1]).value!);
        const bias = numeric(m.graph.tensor(node.inputs[2]).value!);
        const eps = node.attrs.epsilon?.type === 'float' ? (node.attrs.epsilon.value as number) : 1e-5;
        const args = {
          batch,
          channels: p.channels,
          spatial,
          groups: p.groups,
          channelsLast: p.channelsLast,
          affinePerGroup: p.affinePerGroup,
          eps,
        };
        const want = numeric(expected);
        for (const splits of [2, 3, 7, 37])
          for (const warp of [32, 64]) {
            let y = replaySplitGroupNorm(xd, scale, bias, args, splits, warp);
            if (c.channelsLast) {
              const back = new Array<number>(size);
              for (let n = 0; n < batch; n++)
                for (let ch = 0; ch < channels; ch++)
                  for (let s = 0; s < spatial; s++) back[(n * channels + ch) * spatial + s] = y[(n * spatial + s) * channels + ch];
              y = back;
            }
            close(y, want, `${c.name}, ${splits} splits, warp ${warp}`, 1e-5);
          }
      });
  });

  describe('partials of slices combined by Chan equal the two-pass statistics', () => {
    const count = 64 * 56 * 56; // PoolFormer-S12's first stage, one group
    for (const [what, offset, spread] of [
      ['zero-mean data', 0, 3],
      ['values ~1000 + noise', 1000, 4],
    ] as const)
      it(what, () => {
        const v = data(count, 17, offset, spread).map(Math.fround);
        const exact = twoPass(v);
        for (const splits of [2, 13, 49, GROUP_NORM_MAX_SPLITS])
          for (const warp of [32, 64]) {
            const d = splitStats(
              (i) => v[i],
              count,
              splits,
              warp,
              (e) => e,
            );
            assert.ok(Math.abs(d.mean - exact.mean) <= 1e-12 * Math.abs(exact.mean) + 1e-15, `double mean, ${splits} splits`);
            assert.ok(Math.abs(d.variance - exact.variance) <= 1e-12 * exact.variance, `double variance, ${splits} splits`);
            const f = splitStats((i) => v[i], count, splits, warp, Math.fround);
            // the kernel's fp32 arithmetic: mean within 1e-6 of its magnitude (+ 1e-6 absolute), variance within 1e-6
            assert.ok(
              Math.abs(f.mean - exact.mean) <= 1e-6 * (1 + Math.abs(exact.mean)),
              `fp32 mean ${f.mean} vs ${exact.mean}, ${splits} splits`,
            );
            assert.ok(
              Math.abs(f.variance - exact.variance) <= 1e-6 * exact.variance,
              `fp32 variance ${f.variance} vs ${exact.variance}, ${splits} splits`,
            );
          }
        if (offset > 0) {
          // what the split path avoids: E[x²] − E[x]² from fp32 per-slice sums of squares loses the variance
          let sum = 0;
          let squares = 0;
          for (let s = 0; s < 49; s++) {
            let ps = 0;
            let pq = 0;
            for (let i = sliceBegin(count, 49, s); i < sliceBegin(count, 49, s + 1); i++) {
              ps = Math.fround(ps + v[i]);
              pq = Math.fround(pq + Math.fround(v[i] * v[i]));
            }
            sum = Math.fround(sum + ps);
            squares = Math.fround(squares + pq);
          }
          const mean = Math.fround(sum / count);
          const naive = Math.fround(Math.fround(squares / count) - Math.fround(mean * mean));
          assert.ok(
            Math.abs(naive - exact.variance) > 1e-2 * exact.variance,
            `naive ${naive} vs ${exact.variance}: the data must defeat it`,
          );
        }
      });
  });

  describe('the split decision and the workspace', () => {
    it('splits few pairs of large groups; keeps one block per pair for many pairs or small groups', () => {
      const image = 64 * 56 * 56;
      assert.equal(groupNormSplits(1, image, image, 132), 49); // PoolFormer GroupNorm(1, 64), batch 1 on an H100
      assert.equal(groupNormSplits(8, image, image, 132), 49); // batch 8: min(64, 49 slices of ≥ 4096, ⌈528/8⌉)
      assert.equal(groupNormSplits(64, 10 * 4096, 320 * 4096, 132), 9); // UNet GroupNorm(32) at batch 2: ⌈528/64⌉
      assert.equal(groupNormSplits(264, image, image, 132), 1); // two pairs per SM: already good
      assert.equal(groupNormSplits(8, 8191, 8191, 132), 1); // too small to cut into two slices of 4096
      assert.equal(groupNormSplits(4, 2 ** 20, 2 ** 31, 132), 1); // an image past 32-bit offsets
      assert.equal(groupNormSplits(1, 1e8, 1e8, 132), GROUP_NORM_MAX_SPLITS);
    });

    it('the workspace declared at the largest sizes holds every split any device picks at smaller ones', () => {
      const smCounts = [1, 20, 80, 108, 132, 304, 2000];
      let checked = 0;
      for (const maxPairs of [1, 8, 64, 500, 1023, 1024, 4096])
        for (const maxCount of [4096, 8192, 50_000, 200_704, 1 << 20])
          for (const pairs of [1, 2, 7, Math.floor(maxPairs / 2), maxPairs])
            for (const count of [maxCount, Math.floor(maxCount / 3)]) {
              if (pairs < 1 || pairs > maxPairs) continue;
              const declared = groupNormWorkspaceBytes(maxPairs, maxCount, maxCount);
              for (const sm of smCounts) {
                const splits = groupNormSplits(pairs, count, count, sm);
                if (splits === 1) continue;
                assert.ok(pairs * splits * 8 <= declared, `pairs ${pairs}/${maxPairs}, count ${count}/${maxCount}, ${sm} SMs`);
                checked++;
              }
            }
      assert.ok(checked > 100, `${checked} splits checked`);
      assert.equal(groupNormWorkspaceBytes(8, 8191, 8191), 0);
      assert.equal(groupNormWorkspaceBytes(8, 200_704, 200_704), 8 * 49 * 8);
      assert.equal(groupNormWorkspaceBytes(5000, 1 << 20, 1 << 20), 1023 * 64 * 8);
    });

    it('nvcc: the C++ group_norm_splits and group_norm_workspace_bytes give the same numbers', function () {
      if (!haveNvcc()) this.skip();
      const grid: [number, number, number, number][] = [];
      for (const pairs of [0, 1, 3, 8, 64, 263, 264, 700, 1023, 1024, 5000])
        for (const [count, image] of [
          [4095, 4095],
          [8192, 8192],
          [27_003, 27_003],
          [200_704, 200_704],
          [40_960, 1_310_720],
          [1 << 22, 2 ** 31],
          [1e8, 1e8],
        ])
          for (const sm of [1, 108, 132, 304]) grid.push([pairs, count, image, sm]);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gn-split-'));
      const source = path.join(dir, 'gn.cu');
      fs.writeFileSync(
        source,
        [
          '#include <cstdio>',
          '#include "group_norm.cuh"',
          'using namespace ait::kernels;',
          'int main() {',
          ...grid.map(
            ([p, c, i, sm]) =>
              `  std::printf("%d %zu\\n", group_norm_splits(${p}LL, ${c}LL, ${i}LL, ${sm}), group_norm_workspace_bytes(${p}LL, ${c}LL, ${i}LL));`,
          ),
          '  return 0;',
          '}',
        ].join('\n'),
      );
      const exe = path.join(dir, 'gn');
      const built = spawnSync('nvcc', ['-std=c++17', `-I${KERNELS_DIR}`, source, '-o', exe], { encoding: 'utf8' });
      assert.equal(built.status, 0, built.stderr);
      const ran = spawnSync(exe, [], { encoding: 'utf8' });
      assert.equal(ran.status, 0, ran.stderr);
      assert.deepEqual(
        ran.stdout.trim().split('\n'),
        grid.map(([p, c, i, sm]) => `${groupNormSplits(p, c, i, sm)} ${groupNormWorkspaceBytes(p, c, i)}`),
      );
    });
  });

  describe('PoolFormer-like GroupNorm(1, 64) on 56×56', () => {
    it('the optimized graph computes what onnxruntime does', async () => {
      const spec = poolformerNorm(64, 56, 56);
      const result = optimizeImported(importOnnxBytes(buildModel(spec)), 'm.onnx', { validate: true });
      assert.ok(
        result.graph.nodes.some((n) => n.op === 'InstanceNormalization' || n.op === 'GroupNormalization'),
        'a normalization node remains',
      );
      const x = makeTensor('float32', [1, 64, 56, 56], data(64 * 56 * 56, 23, 2, 3));
      const [ours] = runGraph(result.graph, [x]);
      const session = await ort.InferenceSession.create(buildModel(spec));
      const theirs = (await session.run({ x: new ort.Tensor('float32', Float32Array.from(numeric(x)), [1, 64, 56, 56]) })).y;
      close(numeric(ours), theirs.data as Float32Array, 'y', 1e-4);
    });

    function compile(target: string, spec: ModelSpec) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gn-split-'));
      const file = path.join(dir, 'm.onnx');
      fs.writeFileSync(file, buildModel(spec));
      const out = path.join(dir, 'out');
      const result = compileModel(file, { out, target, maxBatch: 8 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      return { out, source: fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8') };
    }

    const workspaceOf = (source: string) => Number(/kOps, \d+, \d+, (\d+), kPrepareOps/.exec(source)![1]);

    for (const target of ['cuda:sm90', 'cuda:sm80'])
      it(`${target}: launches with the workspace (declared at batch 8), nvcc compiles model.cu`, function () {
        const { out, source } = compile(target, poolformerNorm(64, 56, 56));
        assert.ok(
          source.includes('ait::kernels::launch_group_norm(args, c.workspace, c.workspace_bytes, c.stream)'),
          'the workspace launch',
        );
        assert.ok(workspaceOf(source) >= groupNormWorkspaceBytes(8, 64 * 56 * 56, 64 * 56 * 56), `workspace ${workspaceOf(source)}`);
        // a small group never splits: no workspace, the one-block launch
        const small = compile(target, poolformerNorm(8, 6, 5)).source;
        assert.ok(small.includes('ait::kernels::launch_group_norm(args, c.stream)'), 'the one-block launch');
        requireNvcc(this);
        nvccCompileGenerated(out, ['src/model.cu'], gencodeOf(target));
      });
  });
});
