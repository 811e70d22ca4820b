/**
 * Global average / max pooling on the CUDA backend (kernels/pooling.cuh global_pool_nhwc_kernel, lowered by
 * codegen/global-pool-lowering.ts). No GPU here, so:
 *  - the kernel's partition is replayed in TypeScript from globalPoolPlan (which (image, position, channel) each
 *    block and thread reads, the shared-memory tree over rows, the fp32 partials of a split and the combining
 *    kernel) on random tensors: every element is read exactly once and the result equals the op's reference
 *    (global_pool's evaluate) and onnxruntime's GlobalAveragePool / GlobalMaxPool;
 *  - the split decision: EfficientNet-B2's SE pool splits, large n·C does not, a short workspace splits less or not
 *    at all, and the declared workspace covers every batch up to the max;
 *  - nvcc compiles the C++ global_pool_plan and prints the same plans;
 *  - an SE block compiles for sm90 / sm80 onto the kernel with the workspace passed and declared, and nvcc compiles
 *    its model.cu.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  GLOBAL_POOL,
  GlobalPoolPlan,
  globalPoolPlan,
  globalPoolWorkspaceBytes,
} from '../../../compiler/backends/cuda/codegen/global-pool-lowering';
import { compileModel } from '../../../compiler/compile';
import { Node } from '../../../compiler/ir/graph';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { findOp } from '../../../compiler/ops/registry';
import '../../../compiler/ops/fused';
import { KERNELS_DIR, GPU_TARGETS, haveNvcc, nvccCompileGenerated, requireNvcc } from '../../helpers/nvcc';
import { ModelSpec, buildModel, nodeModel, input, tensor } from '../../helpers/onnx-builder';

type Mode = 'avg' | 'max';

/**
 * The kernels replayed: global_pool_nhwc_kernel over the grid (n · chunks, splits) of lanes × rows blocks, then
 * global_pool_combine_kernel when split. `reads` counts the reads of each input element.
 */
function replay(x: Float32Array, n: number, spatial: number, c: number, mode: Mode, plan: GlobalPoolPlan) {
  const f = Math.fround;
  const reads = new Uint8Array(x.length);
  const out = new Float32Array(n * c).fill(NaN); // poisoned
  const partials = new Float32Array(plan.splits * n * c).fill(NaN);
  const combine = (a: number, b: number) => (mode === 'max' ? Math.max(a, b) : f(a + b));
  const init = mode === 'max' ? -Infinity : 0;
  const { lanes, rows, vec, chunks, splits, perSplit } = plan;
  assert.equal(lanes * rows, GLOBAL_POOL.threads);
  for (let bx = 0; bx < n * chunks; bx++)
    for (let by = 0; by < splits; by++) {
      const image = Math.floor(bx / chunks);
      const begin = by * perSplit;
      const end = Math.min(perSplit, spatial - begin) + begin;
      // acc[y][x][k]: each thread's accumulators, then the shared-memory tree over rows
      const acc = Array.from({ length: rows }, () => Array.from({ length: lanes }, () => new Array<number>(vec).fill(init)));
      for (let tx = 0; tx < lanes; tx++) {
        const group = (bx % chunks) * lanes + tx;
        if (group >= Math.floor(c / vec)) continue;
        for (let ty = 0; ty < rows; ty++)
          for (let s = begin + ty; s < end; s += rows)
            for (let k = 0; k < vec; k++) {
              const at = (image * spatial + s) * c + group * vec + k;
              reads[at]++;
              acc[ty][tx][k] = combine(acc[ty][tx][k], x[at]);
            }
      }
      for (let half = rows >> 1; half > 0; half >>= 1)
        for (let ty = 0; ty < half; ty++)
          for (let tx = 0; tx < lanes; tx++) for (let k = 0; k < vec; k++) acc[ty][tx][k] = combine(acc[ty][tx][k], acc[ty + half][tx][k]);
      for (let tx = 0; tx < lanes; tx++) {
        const group = (bx % chunks) * lanes + tx;
        if (group >= Math.floor(c / vec)) continue;
        for (let k = 0; k < vec; k++) {
          const ch = group * vec + k;
          if (splits > 1) {
            const at = (by * n + image) * c + ch;
            assert.ok(Number.isNaN(partials[at]), `partial (${by}, ${image}, ${ch}) written twice`);
            partials[at] = acc[0][tx][k];
          } else {
            assert.ok(Number.isNaN(out[image * c + ch]), `output (${image}, ${ch}) written twice`);
            out[image * c + ch] = mode === 'avg' ? f(acc[0][tx][k] * f(1 / spatial)) : acc[0][tx][k];
          }
        }
      }
    }
  if (splits > 1)
    for (let i = 0; i < n * c; i++) {
      let result = partials[i];
      for (let s = 1; s < splits; s++) result = combine(result, partials[s * n * c + i]);
      out[i] = mode === 'avg' ? f(result / spatial) : result;
    }
  return { out, reads };
}

/** global_pool's reference (the interpreter's evaluate) on NHWC [n, spatial, c] viewed as [n, spatial, 1, c]. */
function reference(x: Float32Array, n: number, spatial: number, c: number, mode: Mode): Float32Array {
  const node = { op: 'global_pool', domain: 'ait', attrs: { kind: { type: 'string', value: mode } } } as unknown as Node;
  const [y] = findOp(node)!.evaluate!(node, [makeTensor('float32', [n, spatial, 1, c], x)], {} as never);
  return numeric(y) as Float32Array;
}

function randomData(count: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: count }, () => random() * 4 - 1);
}

const close = (actual: Float32Array, expected: ArrayLike<number>, what: string, tolerance: number) => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tolerance * (1 + Math.abs(expected[i])),
      `${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`,
    );
};

const BIG = 1 << 30;

describe('cuda global_pool: the partitioned reduction (pooling.cuh global_pool_nhwc_kernel)', () => {
  describe('the split decision (globalPoolPlan = C++ global_pool_plan)', () => {
    it("EfficientNet-B2's SE pool [8, 128·128, 32] fp16 splits the positions over 512 blocks", () => {
      const p = globalPoolPlan(8, 128 * 128, 32, 8, BIG);
      assert.deepEqual(p, { vec: 8, lanes: 4, rows: 64, chunks: 1, splits: 64, perSplit: 256 });
      // the scalar path (misaligned): 32 lanes of one channel, 8 rows
      assert.deepEqual(globalPoolPlan(8, 128 * 128, 32, 1, BIG), { vec: 1, lanes: 32, rows: 8, chunks: 1, splits: 64, perSplit: 256 });
    });

    it('a large n·C does not split; a small h·w does not split; C odd takes one channel per lane', () => {
      assert.equal(globalPoolPlan(256, 49, 1280, 8, BIG).splits, 1);
      assert.deepEqual(globalPoolPlan(256, 49, 1280, 8, BIG), { vec: 8, lanes: 32, rows: 8, chunks: 5, splits: 1, perSplit: 49 });
      assert.deepEqual(globalPoolPlan(1, 49, 2048, 8, BIG), { vec: 8, lanes: 32, rows: 8, chunks: 8, splits: 1, perSplit: 49 });
      // 5917 positions: min(256 wanted, 5917 / (8 rows · 4)) = 184 splits of 33, i.e. 180 non-empty splits
      assert.deepEqual(globalPoolPlan(2, 97 * 61, 17, 1, BIG), { vec: 1, lanes: 32, rows: 8, chunks: 1, splits: 180, perSplit: 33 });
    });

    it('a short workspace splits less, none falls back to one pass (never fails)', () => {
      assert.equal(globalPoolPlan(8, 128 * 128, 32, 8, 0).splits, 1);
      assert.equal(globalPoolPlan(8, 128 * 128, 32, 8, 8 * 32 * 4 * 2 - 1).splits, 1);
      assert.equal(globalPoolPlan(8, 128 * 128, 32, 8, 8 * 32 * 4 * 10).splits, 10);
      assert.equal(globalPoolPlan(8, 128 * 128, 32, 8, 63 * 8 * 32 * 4).splits, 63);
    });

    it('the declared workspace lets every batch up to the max and every spatial size up to the largest split as it wants', () => {
      const random = seededRandom(3);
      for (let t = 0; t < 300; t++) {
        const maxN = 1 + Math.floor(random() * 64);
        const maxSpatial = 1 + Math.floor(random() * 40000);
        const c = 1 + Math.floor(random() * (random() < 0.5 ? 64 : 3000));
        const bytes = globalPoolWorkspaceBytes(maxN, maxSpatial, c, 2);
        for (let k = 0; k < 8; k++) {
          const n = 1 + Math.floor(random() * maxN);
          const spatial = k === 0 ? maxSpatial : 1 + Math.floor(random() * maxSpatial);
          for (const vec of c % 8 === 0 ? [1, 8] : [1]) {
            const wanted = globalPoolPlan(n, spatial, c, vec, BIG);
            assert.deepEqual(globalPoolPlan(n, spatial, c, vec, bytes), wanted, `[${n}, ${spatial}, ${c}] vec ${vec}, ${bytes} bytes`);
            if (wanted.splits > 1) assert.ok(wanted.splits * n * c * 4 <= bytes);
          }
        }
      }
      assert.equal(globalPoolWorkspaceBytes(256, 49, 1280, 2), 0);
      // largest at 7 images read one channel per lane (a misaligned input): ceil(512 / 7) = 74 splits of [7, 32] fp32
      assert.equal(globalPoolWorkspaceBytes(8, 128 * 128, 32, 2), 74 * 7 * 32 * 4);
    });

    it('nvcc: the C++ global_pool_plan gives the same plans', function () {
      if (!haveNvcc()) this.skip();
      this.timeout(120_000);
      const cases: [number, number, number, number, number][] = [];
      for (const [n, spatial, c] of [
        [8, 16384, 32],
        [1, 49, 2048],
        [256, 49, 1280],
        [2, 97 * 61, 17],
        [3, 1000, 24],
        [1, 1, 1],
        [64, 3136, 64],
        [5, 0, 8],
      ])
        for (const vec of [1, 8]) for (const ws of [0, 4096, 63 * 8 * 32 * 4, BIG]) if (c % vec === 0) cases.push([n, spatial, c, vec, ws]);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gpool-'));
      const source = path.join(dir, 'plan.cu');
      fs.writeFileSync(
        source,
        [
          '#include <cstdio>',
          '#include "pooling.cuh"',
          'using namespace ait::kernels;',
          'int main() {',
          ...cases.map(
            (a) =>
              `  { const GlobalPoolPlan p = global_pool_plan(${a.join(', ')}); std::printf("%d %d %d %lld %d %d\\n", p.vec, p.lanes, p.rows, static_cast<long long>(p.chunks), p.splits, p.per_split); }`,
          ),
          '  return 0;',
          '}',
        ].join('\n'),
      );
      const exe = path.join(dir, 'plan');
      const built = spawnSync('nvcc', ['-std=c++17', `-I${KERNELS_DIR}`, source, '-o', exe], { encoding: 'utf8' });
      assert.equal(built.status, 0, built.stderr);
      const ran = spawnSync(exe, [], { encoding: 'utf8' });
      assert.equal(ran.status, 0, ran.stderr);
      assert.deepEqual(
        ran.stdout.trim().split('\n'),
        cases.map((a) => {
          const p = globalPoolPlan(...a);
          return [p.vec, p.lanes, p.rows, p.chunks, p.splits, p.perSplit].join(' ');
        }),
      );
    });
  });

  describe('the replayed kernels against the reference', () => {
    const shapes: [number, number, number][] = [
      [8, 64 * 64, 32], // SE pool: split, 4 lanes of 8 channels
      [2, 97 * 61, 17], // C odd: split with a ragged last split
      [3, 1000, 24],
      [1, 49, 2048], // classifier, 8 chunks, no split
      [9, 49, 40], // 5 lanes of 8: a partly idle chunk
      [2, 7, 3], // fewer positions than rows
      [1, 5000, 300], // one channel per lane (300 % 8 != 0): 10 chunks of 32 lanes, the last partly idle
    ];
    for (const [n, spatial, c] of shapes)
      for (const mode of ['avg', 'max'] as const)
        it(`[${n}, ${spatial}, ${c}] ${mode}: every element read once, the result equals global_pool's evaluate`, () => {
          const x = randomData(n * spatial * c, n * 1000 + c);
          const expected = reference(x, n, spatial, c, mode);
          const plans = new Set<string>();
          for (const vec of c % 8 === 0 ? [8, 1] : [1])
            for (const ws of [BIG, 0, 3 * n * c * 4]) {
              const plan = globalPoolPlan(n, spatial, c, vec, ws);
              plans.add(`${vec}/${plan.splits}`);
              const { out, reads } = replay(x, n, spatial, c, mode, plan);
              assert.ok(
                reads.every((r) => r === 1),
                `vec ${vec}, ${plan.splits} splits: element ${reads.findIndex((r) => r !== 1)} read ${reads.find((r) => r !== 1)} times`,
              );
              close(out, expected, `vec ${vec}, ${plan.splits} splits`, mode === 'max' ? 0 : 1e-5);
            }
          assert.ok(plans.size >= (spatial >= 2048 ? 2 : 1), [...plans].join(', '));
        });

    for (const op of ['GlobalAveragePool', 'GlobalMaxPool'])
      it(`${op}: onnxruntime on NCHW equals the replayed split kernel on NHWC`, async () => {
        const [n, c, h, w] = [2, 17, 40, 33];
        const nchw = randomData(n * c * h * w, 7);
        const session = await ort.InferenceSession.create(buildModel(nodeModel(op, [input('float32', [n, c, h, w])])));
        const theirs = (await session.run({ in0: new ort.Tensor('float32', nchw, [n, c, h, w]) })).out0.data as Float32Array;
        const nhwc = new Float32Array(nchw.length);
        for (let b = 0; b < n; b++)
          for (let ch = 0; ch < c; ch++) for (let s = 0; s < h * w; s++) nhwc[(b * h * w + s) * c + ch] = nchw[(b * c + ch) * h * w + s];
        const mode = op === 'GlobalMaxPool' ? 'max' : 'avg';
        const plan = globalPoolPlan(n, h * w, c, 1, BIG);
        assert.ok(plan.splits > 1);
        const { out } = replay(nhwc, n, h * w, c, mode, plan);
        close(out, theirs, op, mode === 'max' ? 0 : 1e-5);
      });
  });

  describe('an SE block compiles onto the kernel', () => {
    /** x [B, 32, 128, 128] → GlobalAveragePool → 1×1 conv 32→8 → Relu → 1×1 conv 8→32 → Sigmoid → x · s; GlobalMaxPool head */
    function seModel(): ModelSpec {
      const random = seededRandom(9);
      const weights = (count: number) => Array.from({ length: count }, () => random() - 0.5);
      return {
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 32, 128, 128] }],
        initializers: [
          { ...tensor('float32', [32, 32, 1, 1], weights(32 * 32)), name: 'w0' },
          { ...tensor('float32', [8, 32, 1, 1], weights(8 * 32)), name: 'w1' },
          { ...tensor('float32', [8], weights(8)), name: 'b1' },
          { ...tensor('float32', [32, 8, 1, 1], weights(32 * 8)), name: 'w2' },
          { ...tensor('float32', [32], weights(32)), name: 'b2' },
        ],
        nodes: [
          { op: 'Conv', name: 'stem', inputs: ['x', 'w0'], outputs: ['a'] },
          { op: 'GlobalAveragePool', name: 'se_pool', inputs: ['a'], outputs: ['p'] },
          { op: 'Conv', name: 'se_reduce', inputs: ['p', 'w1', 'b1'], outputs: ['r'] },
          { op: 'Relu', name: 'se_relu', inputs: ['r'], outputs: ['rr'] },
          { op: 'Conv', name: 'se_expand', inputs: ['rr', 'w2', 'b2'], outputs: ['e'] },
          { op: 'Sigmoid', name: 'se_gate', inputs: ['e'], outputs: ['g'] },
          { op: 'Mul', name: 'se_scale', inputs: ['a', 'g'], outputs: ['m'] },
          { op: 'GlobalMaxPool', name: 'head_pool', inputs: ['m'], outputs: ['y'] },
        ],
        outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 32, 1, 1] }],
      };
    }

    function compileSe(target: string) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gpool-se-'));
      const file = path.join(dir, 'se.onnx');
      fs.writeFileSync(file, buildModel(seModel()));
      const out = path.join(dir, 'out');
      return { out, result: compileModel(file, { out, target, maxBatch: 8 }) };
    }

    for (const target of ['cuda:sm90', 'cuda:sm80'])
      it(`${target}: both pools on ait_global_pool with the workspace passed, the split's bytes declared`, () => {
        const { out, result } = compileSe(target);
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
          nodes: { op: string; kernel?: { name: string } }[];
        };
        assert.deepEqual(
          graph.nodes.filter((n) => n.op === 'global_pool').map((n) => n.kernel?.name),
          ['ait_global_pool_avg_f16', 'ait_global_pool_max_f16'],
        );
        const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
        assert.equal(model.match(/launch_global_pool_nhwc\(args, c\.workspace, c\.workspace_bytes, c\.stream\)/g)?.length, 2);
        assert.match(model, /GlobalPoolArgs<__half> args\{[^}]*, batch, 16384, 32,/);
        // the model's workspace is at least the pools' split at max batch 8 (1 to 8 images of [128·128, 32])
        const declared = Number(/kOps, \d+, \d+, (\d+), kPrepareOps/.exec(model)![1]);
        assert.ok(declared >= globalPoolWorkspaceBytes(8, 128 * 128, 32, 2), `${declared}`);
        assert.ok(globalPoolWorkspaceBytes(8, 128 * 128, 32, 2) > 0);
      });

    describe('nvcc compiles the generated model.cu for sm_80 and sm_90a', function () {
      before(function () {
        requireNvcc(this);
      });
      for (const [target, arch] of GPU_TARGETS)
        it(target, function () {
          this.timeout(600_000);
          const { out, result } = compileSe(target);
          assert.ok(result.ok);
          nvccCompileGenerated(out, ['src/model.cu'], arch);
        });
    });
  });
});
