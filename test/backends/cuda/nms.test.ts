/**
 * NonMaxSuppression on CUDA (kernels/nms.cuh, codegen/nms-lowering.ts). Checked here: the op's reference against
 * onnxruntime-node (thresholds, center_point_box, several batches and classes, score ties, the per-class limit, no
 * limit, no score threshold, -Infinity scores, identical boxes); a TypeScript replay of the kernels' algorithm (64-bit
 * sort keys through the chunked bitonic network, the IoU bitmask, the sweep with its per-word barrier, the scan and
 * the row writes) against the reference, also with the mask in blocks of rows (forced small: many block boundaries,
 * the removed words right of a block carried in global memory, the limit reached in a later block); the block rows
 * and the workspace within 128 MB of masks up to 2^24 boxes; one NMS over up to 90000 boxes (R-CNN's RoI heads)
 * compiling; models with NMS compiling for sm90 and sm80 with no unsupported node, the
 * count read back once into a run-time dim that later ops read, constants as literals and device tensors as
 * pointers; nvcc compiling the generated model.cu; and the refusal of what the kernel does not take.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel } from '../../../compiler/compile';
import { supportOf } from '../../../compiler/backends/support';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { isConcrete } from '../../../compiler/ir/symbolic';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { nmsBlockRows, nmsMaskCapacity, nmsWorkspaceBytes } from '../../../compiler/backends/cuda/codegen/nms-lowering';
import { ModelSpec, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated, gencodeOf } from '../../helpers/nvcc';

interface Case {
  name: string;
  batches: number;
  classes: number;
  boxes: number;
  center?: boolean;
  max?: number; // absent: no max_output_boxes_per_class input (none selected)
  iou?: number;
  score?: number;
  specials?: boolean; // -Infinity scores, duplicated boxes
}

/** Clustered boxes (so they overlap), some with flipped corners; scores in 1/16 steps (so they tie). */
function caseData(c: Case, seed: number) {
  const random = seededRandom(seed);
  const boxes: number[] = [];
  for (let i = 0; i < c.batches * c.boxes; i++) {
    const [cx, cy, w, h] = [random() * 60, random() * 60, 4 + random() * 20, 4 + random() * 20];
    if (c.center) boxes.push(cx, cy, w, h);
    else if (i % 3 === 0) boxes.push(cy + h / 2, cx + w / 2, cy - h / 2, cx - w / 2);
    else boxes.push(cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2);
  }
  if (c.specials) for (let k = 0; k < 4; k++) boxes[4 * 5 + k] = boxes[4 * 2 + k]; // box 5 = box 2: IoU 1
  const scores = Array.from({ length: c.batches * c.classes * c.boxes }, () => Math.floor(random() * 16) / 16 - 0.25);
  if (c.specials) scores[3] = scores[7] = -Infinity;
  return { boxes: Array.from(Float32Array.from(boxes)), scores: Array.from(Float32Array.from(scores)) };
}

function caseModel(c: Case): ModelSpec {
  const optional = [
    c.max === undefined && c.iou === undefined && c.score === undefined ? undefined : tensor('int64', [1], [c.max ?? 0]),
    c.iou === undefined && c.score === undefined ? undefined : tensor('float32', [1], [c.iou ?? 0]),
    c.score === undefined ? undefined : tensor('float32', [1], [c.score]),
  ];
  while (optional.length && optional[optional.length - 1] === undefined) optional.pop();
  return nodeModel(
    'NonMaxSuppression',
    [input('float32', [c.batches, c.boxes, 4]), input('float32', [c.batches, c.classes, c.boxes]), ...optional],
    { attrs: c.center ? { center_point_box: 1 } : {}, opset: 11 },
  );
}

const CASES: Case[] = [
  { name: 'iou 0.5, score 0.2, max 10', batches: 1, classes: 1, boxes: 40, max: 10, iou: 0.5, score: 0.2 },
  { name: 'center boxes, 2 batches × 3 classes, no score threshold', batches: 2, classes: 3, boxes: 60, center: true, max: 100, iou: 0.3 },
  { name: 'iou 0 (any overlap suppresses), max 5', batches: 1, classes: 2, boxes: 80, max: 5, iou: 0, score: 0.5 },
  { name: 'iou 1 (nothing suppressed): the sort order alone, ties by index', batches: 2, classes: 1, boxes: 50, max: 1000, iou: 1 },
  { name: 'no limit input: nothing selected', batches: 1, classes: 1, boxes: 10 },
  {
    name: '-Infinity scores and identical boxes, no score threshold',
    batches: 1,
    classes: 2,
    boxes: 30,
    max: 30,
    iou: 0.4,
    specials: true,
  },
];

function reference(c: Case, data: { boxes: number[]; scores: number[] }): number[] {
  const { graph } = inferModel(caseModel(c));
  const [out] = runGraph(graph, [
    makeTensor('float32', [c.batches, c.boxes, 4], data.boxes),
    makeTensor('float32', [c.batches, c.classes, c.boxes], data.scores),
  ]);
  assert.equal(out.shape[1], 3);
  return Array.from(numeric(out));
}

// ---- a replay of nms.cuh ----

const SCRATCH = new DataView(new ArrayBuffer(4));
/** nms_key: descending score, then ascending index, as one 64-bit key (-0 as +0). */
function key(score: number, index: number): bigint {
  SCRATCH.setFloat32(0, score === 0 ? 0 : score);
  const bits = SCRATCH.getUint32(0);
  const ascending = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
  return (BigInt(~ascending >>> 0) << 32n) | BigInt(index);
}
const NO_KEY = (1n << 64n) - 1n;

/** The launches of launch_nms_select's sort: local chunks (stages 2..chunk), then per longer stage global + local. */
function bitonicSort(keys: bigint[], chunkSize: number): void {
  const length = keys.length;
  const chunk = Math.min(length, chunkSize);
  const exchange = (i: number, j: number, k: number) => {
    const ascending = (i & k) === 0;
    if (keys[i] > keys[i + j] === ascending) [keys[i], keys[i + j]] = [keys[i + j], keys[i]];
  };
  const local = (kLo: number, kHi: number) => {
    for (let first = 0; first < length; first += chunk)
      for (let k = kLo; k <= kHi; k *= 2)
        for (let j = Math.min(k, chunk) / 2; j >= 1; j /= 2)
          for (let p = 0; p < chunk / 2; p++) exchange(first + 2 * j * Math.floor(p / j) + (p % j), j, k);
  };
  local(2, chunk);
  for (let k = 2 * chunk; k <= length; k *= 2) {
    for (let j = k / 2; j >= chunk; j /= 2) for (let p = 0; p < length / 2; p++) exchange(2 * j * Math.floor(p / j) + (p % j), j, k);
    local(k, k);
  }
}

/**
 * launch_nms_select and the write, kernel by kernel: the sort, then per pass of segments and per block of R mask rows
 * (nms_block_rows; `forcedRows` as NmsArgs::block_rows) the mask kernel (words it does not write stay poisoned) and
 * the sweep kernel (the block's removed words loaded from the global removed-mask, which only the first block zeroes:
 * it starts poisoned, as do the kept counts), each returning early as the kernels do.
 */
function replay(c: Case, data: { boxes: number[]; scores: number[] }, chunkSize: number, forcedRows = 0): number[] {
  const f = Math.fround;
  const max = c.max ?? 0;
  const iouThreshold = f(c.iou ?? 0);
  const n = c.boxes;
  let length = 1;
  while (length < n) length *= 2;
  const words = Math.ceil(n / 64);
  const corners = (b: number, i: number) => {
    const [v0, v1, v2, v3] = data.boxes.slice((b * n + i) * 4, (b * n + i) * 4 + 4);
    if (c.center) return [f(v1 - v3 / 2), f(v0 - v2 / 2), f(v1 + v3 / 2), f(v0 + v2 / 2)];
    return [Math.min(v0, v2), Math.min(v1, v3), Math.max(v0, v2), Math.max(v1, v3)];
  };
  const suppresses = (a: number[], b: number[]) => {
    const h = Math.max(0, f(Math.min(a[2], b[2]) - Math.max(a[0], b[0])));
    const w = Math.max(0, f(Math.min(a[3], b[3]) - Math.max(a[1], b[1])));
    const inter = f(h * w);
    const uni = f(f(f(f(a[2] - a[0]) * f(a[3] - a[1])) + f(f(b[2] - b[0]) * f(b[3] - b[1]))) - inter);
    return (uni > 0 ? f(inter / uni) : 0) > iouThreshold;
  };
  const segments = c.batches * c.classes;
  const capacity = nmsMaskCapacity(segments, n);
  const rows = nmsBlockRows(n, capacity, forcedRows);
  assert.ok(rows >= 1 && rows <= n);
  const perPass = Math.min(rows < n ? 1 : Math.floor(capacity / (rows * words)), 65535);
  const POISON = (1n << 64n) - 1n;
  const sorted: bigint[][] = [];
  const candidates: number[] = [];
  const selected: number[][] = Array.from({ length: segments }, () => []);
  const keptCount = new Array<number>(segments).fill(-7); // poisoned workspace
  const removedAfter = Array.from({ length: segments }, () => new Array<bigint>(words).fill(POISON));
  for (let s = 0; s < segments; s++) {
    // sort (with the candidate count)
    const keys = new Array<bigint>(length).fill(NO_KEY);
    let count = 0;
    for (let i = 0; i < n; i++) {
      const score = data.scores[s * n + i];
      if (c.score === undefined ? !Number.isNaN(score) : score > f(c.score)) {
        keys[i] = key(score, i);
        count++;
      }
    }
    bitonicSort(keys, chunkSize);
    sorted.push(keys);
    candidates.push(count);
  }
  const index = (s: number, i: number) => Number(sorted[s][i] & 0xffffffffn);
  const limitOf = (s: number) => Math.min(max, candidates[s]);
  for (let first = 0; first < segments; first += perPass) {
    const count = Math.min(perPass, segments - first);
    for (let r0 = 0; r0 < n; r0 += rows) {
      const masks = Array.from({ length: count }, () => new Array<bigint>(rows * words).fill(POISON));
      // nms_mask_kernel: rows [r0, end) against the words at or right of each row's own
      for (let y = 0; y < count; y++) {
        const s = first + y;
        const m = candidates[s];
        if (r0 >= m || (r0 > 0 && keptCount[s] >= limitOf(s))) continue;
        const b = Math.floor(s / c.classes);
        const end = Math.min(r0 + rows, m);
        for (let rowWord = r0 / 64; rowWord * 64 < end; rowWord++)
          for (let columnWord = rowWord; columnWord * 64 < m; columnWord++)
            for (let t = 0; t < 64 && rowWord * 64 + t < end; t++) {
              const row = rowWord * 64 + t;
              let bits = 0n;
              for (let u = rowWord === columnWord ? t + 1 : 0; u < 64 && columnWord * 64 + u < m; u++)
                if (suppresses(corners(b, index(s, row)), corners(b, index(s, columnWord * 64 + u)))) bits |= 1n << BigInt(u);
              masks[y][(row - r0) * words + columnWord] = bits;
            }
      }
      // nms_sweep_kernel
      for (let y = 0; y < count; y++) {
        const s = first + y;
        const m = candidates[s];
        const limit = limitOf(s);
        let kept = r0 === 0 ? 0 : keptCount[s];
        if (r0 >= m || kept >= limit) {
          if (r0 === 0) keptCount[s] = 0;
          continue;
        }
        const end = Math.min(r0 + rows, m);
        const usedWords = Math.ceil(m / 64);
        const firstWord = r0 / 64;
        const endWord = Math.ceil(end / 64);
        const after = removedAfter[s];
        const here: bigint[] = [];
        for (let w = firstWord; w < endWord; w++) here.push(r0 === 0 ? 0n : after[w]);
        if (r0 === 0) for (let w = endWord; w < usedWords; w++) after[w] = 0n;
        for (let word = firstWord; word < endWord && kept < limit; word++) {
          let current = here[word - firstWord];
          const bits = Math.min(64, end - word * 64);
          for (let bit = 0; bit < bits; bit++) {
            if ((current >> BigInt(bit)) & 1n) continue;
            const i = word * 64 + bit;
            selected[s][kept] = index(s, i);
            if (++kept >= limit) break;
            const row = (i - r0) * words;
            current |= masks[y][row + word];
            for (let w = word + 1; w < endWord; w++) here[w - firstWord] |= masks[y][row + w];
            for (let w = endWord; w < usedWords; w++) after[w] |= masks[y][row + w];
          }
        }
        keptCount[s] = kept;
      }
    }
  }
  const keptPerSegment = selected.map((indices, s) => indices.slice(0, keptCount[s]));
  // scan + write
  const out: number[] = [];
  keptPerSegment.forEach((kept, s) => kept.forEach((i) => out.push(Math.floor(s / c.classes), s % c.classes, i)));
  return out;
}

describe('NonMaxSuppression (CUDA kernel and lowering)', () => {
  for (const [k, c] of CASES.entries())
    it(`reference = onnxruntime: ${c.name}`, async () => {
      const data = caseData(c, 11 + k);
      const ours = reference(c, data);
      const session = await ort.InferenceSession.create(buildModel(caseModel(c)));
      const theirs = await session.run({
        in0: new ort.Tensor('float32', Float32Array.from(data.boxes), [c.batches, c.boxes, 4]),
        in1: new ort.Tensor('float32', Float32Array.from(data.scores), [c.batches, c.classes, c.boxes]),
      });
      assert.deepEqual(ours, Array.from(theirs.out0.data as BigInt64Array, Number));
      if (c.max) assert.ok(ours.length > 0, 'the case selects boxes');
    });

  it('the kernels’ algorithm (sort keys, chunked bitonic network, bitmask, sweep, scan) matches the reference', () => {
    const cases: [Case, number][] = [
      ...CASES.map((c): [Case, number] => [c, 8]), // chunks of 8 keys: every global stride path on small inputs
      [{ name: 'two words of boxes, chunk 16', batches: 2, classes: 2, boxes: 150, max: 40, iou: 0.45, score: 0 }, 16],
      [{ name: 'RetinaNet-like, the real chunk', batches: 1, classes: 1, boxes: 5000, max: 300, iou: 0.5, score: 0.3 }, 2048],
      [{ name: 'one past a chunk', batches: 1, classes: 1, boxes: 2049, max: 3000, iou: 0.6, score: 0.4 }, 2048],
    ];
    for (const [k, [c, chunk]] of cases.entries()) {
      const data = caseData(c, 101 + k);
      const expected = reference(c, data);
      assert.deepEqual(replay(c, data, chunk), expected, c.name);
      if (c.max) assert.ok(expected.length > 3, `${c.name}: selects several boxes`);
    }
  });

  it('the blocked mask and sweep (rows in blocks, removed words right of a block in global memory) match the reference', function () {
    this.timeout(120000);
    // forced block sizes (NmsArgs::block_rows): many blocks, a block of one word, a limit inside and at a block's end
    const base = { batches: 1, classes: 2, iou: 0.5 };
    const cases: [Case, number[]][] = [
      [{ ...base, name: '700 boxes, every candidate', boxes: 700, max: 1000, score: -1 }, [1, 64, 128, 200, 640]],
      [{ ...base, name: '700 boxes, half the candidates', boxes: 700, max: 1000, score: 0.25 }, [64, 192]],
      [{ ...base, name: 'few candidates: later blocks empty', boxes: 900, max: 1000, score: 0.6 }, [64, 128]],
      [{ ...base, name: 'the limit inside a later block', boxes: 700, max: 37, iou: 0.3, score: -1 }, [64, 128]],
      [{ ...base, name: 'iou 0 (long suppression reach)', boxes: 500, max: 500, iou: 0, score: -1 }, [64, 256]],
      [{ name: 'center boxes, 2 × 3 segments', batches: 2, classes: 3, boxes: 300, center: true, max: 300, iou: 0.35 }, [64, 128]],
    ];
    for (const [k, [c, blocks]] of cases.entries()) {
      const data = caseData(c, 301 + k);
      const expected = reference(c, data);
      assert.ok(expected.length > 3 * 8, `${c.name}: selects several boxes`);
      for (const forced of blocks) assert.deepEqual(replay(c, data, 64, forced), expected, `${c.name}, blocks of ${forced} rows`);
    }
    // the limit reached exactly at a block's last row: later blocks skip their mask and sweep
    const c: Case = { ...base, name: 'limit at a block end', boxes: 400, iou: 0.5, score: -1, max: 1000 };
    const data = caseData(c, 377);
    const all = reference(c, data);
    for (const max of [1, 2, 5, 20]) {
      const limited = { ...c, max };
      assert.deepEqual(replay(limited, data, 64, 64), reference(limited, data), `limit ${max}`);
    }
    assert.ok(all.length / 3 > 40);
  });

  it('the mask block rows: the whole mask up to 32768 boxes, blocks of a multiple of 64 rows within 128 MB beyond', () => {
    assert.equal(nmsBlockRows(5000, nmsMaskCapacity(1, 5000)), 5000);
    assert.equal(nmsBlockRows(32768, nmsMaskCapacity(1, 32768)), 32768);
    assert.equal(nmsBlockRows(5000, nmsMaskCapacity(1, 5000), 100), 128);
    assert.equal(nmsBlockRows(5000, nmsMaskCapacity(1, 5000), 6000), 5000);
    for (const boxes of [32769, 40000, 90000, 250000, 2 ** 24]) {
      const capacity = nmsMaskCapacity(1, boxes);
      const rows = nmsBlockRows(boxes, capacity);
      const words = Math.ceil(boxes / 64);
      assert.ok(rows >= 64 && rows % 64 === 0 && rows < boxes && rows * words <= capacity, `${boxes} boxes: ${rows} rows`);
      assert.ok(capacity * 8 <= 128 * 2 ** 20, `${boxes} boxes: mask within 128 MB`);
      // fewer boxes at run time: blocks at least as tall, still within the capacity sized at the bound
      for (const fewer of [1, 1000, 32768, Math.floor(boxes / 2)]) {
        const r = nmsBlockRows(fewer, capacity);
        assert.ok(r >= Math.min(rows, fewer) && r * Math.ceil(fewer / 64) <= capacity, `${fewer} of ${boxes}`);
      }
    }
    assert.equal(nmsBlockRows(90000, nmsMaskCapacity(1, 90000)), 11904);
    // 90000 boxes: 1 MB of keys, 128 MB of masks, the rest small
    assert.ok(nmsWorkspaceBytes(1, 90000, nmsMaskCapacity(1, 90000)) < 130 * 2 ** 20);
  });

  it('the workspace grows with segments and boxes (sized once at the bounds)', () => {
    let previous = 0;
    for (const boxes of [1, 63, 64, 65, 1000, 2048, 2049, 5000, 32768, 32769, 90000]) {
      const bytes = nmsWorkspaceBytes(3, boxes, nmsMaskCapacity(3, boxes));
      assert.ok(bytes >= previous, `${boxes} boxes`);
      previous = bytes;
      for (let fewer = 1; fewer <= boxes; fewer = fewer * 2 + 1) assert.ok(nmsWorkspaceBytes(2, fewer, nmsMaskCapacity(3, boxes)) <= bytes);
    }
    // more than the budget: one segment per pass
    assert.equal(nmsMaskCapacity(80, 8400), 2 ** 24);
    assert.equal(nmsMaskCapacity(2, 32768), 32768 * 512);
  });

  /** boxes → NMS → the selected boxes' corners (Gather of column 2, then of the boxes): readers of the count. */
  function detectorModel(deviceScalars: boolean): ModelSpec {
    const n = 5000;
    const scalars = deviceScalars
      ? []
      : [
          { name: 'max', dtype: 'int64' as const, dims: [1], values: [300] },
          { name: 'iou', dtype: 'float32' as const, dims: [1], values: [0.5] },
          { name: 'score', dtype: 'float32' as const, dims: [1], values: [0.05] },
        ];
    return {
      inputs: [
        { name: 'boxes', dtype: 'float32', dims: [deviceScalars ? 2 : 1, n, 4] },
        { name: 'scores', dtype: 'float32', dims: [deviceScalars ? 2 : 1, deviceScalars ? 3 : 1, n] },
        ...(deviceScalars
          ? [
              { name: 'max', dtype: 'int64' as const, dims: [1] },
              { name: 'iou', dtype: 'float32' as const, dims: [] },
              { name: 'score', dtype: 'float32' as const, dims: [1] },
            ]
          : []),
      ],
      initializers: [
        ...scalars,
        { name: 'two', dtype: 'int64', dims: [], values: [2] },
        { name: 'flat', dtype: 'int64', dims: [2], values: [-1, 4] },
      ],
      nodes: [
        {
          op: 'NonMaxSuppression',
          name: 'nms',
          inputs: ['boxes', 'scores', 'max', 'iou', 'score'],
          outputs: ['selected'],
          attrs: deviceScalars ? { center_point_box: 1 } : {},
        },
        { op: 'Gather', name: 'box_index', inputs: ['selected', 'two'], outputs: ['index'], attrs: { axis: 1 } },
        { op: 'Reshape', name: 'all_boxes', inputs: ['boxes', 'flat'], outputs: ['boxes2d'] },
        { op: 'Gather', name: 'kept', inputs: ['boxes2d', 'index'], outputs: ['kept_boxes'], attrs: { axis: 0 } },
      ],
      outputs: [
        { name: 'selected', dtype: 'int64', dims: [null, 3] },
        { name: 'kept_boxes', dtype: 'float32', dims: [null, 4] },
      ],
      opset: 11,
    };
  }

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    for (const deviceScalars of [false, true])
      it(`${target}: a detector tail with NMS compiles (${deviceScalars ? 'thresholds and limit as device tensors' : 'constant thresholds'})`, function () {
        this.timeout(300000);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-nms-'));
        const file = path.join(dir, 'nms.onnx');
        fs.writeFileSync(file, buildModel(detectorModel(deviceScalars)));
        const out = path.join(dir, 'out');
        const result = compileModel(file, { out, target, maxBatch: 1 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
          nodes: { op: string; kernel?: { name: string }; status?: { supported: boolean } }[];
        };
        assert.ok(graph.nodes.every((node) => node.status?.supported !== false));
        // boxes (a model input here) are coordinates: fp32 storage, and the scores read as fp32 too (storage-precision)
        assert.ok(graph.nodes.some((node) => node.kernel?.name === 'ait_nms_f32'));
        const model = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
        assert.match(model, /ait::kernels::launch_nms_select\(args, c\.stream\)/);
        assert.equal((model.match(/ait::read_device\(c, &c\.dims\[0\], ait::kernels::nms_total\(args\)/g) ?? []).length, 1);
        assert.match(model, /launch_nms_write\(args, c\.dims\[0\], c\.stream\)/);
        if (deviceScalars) {
          // the kernels read the device tensors: no host copy of the thresholds, pointers in the arguments
          assert.match(
            model,
            /2, 3, 5000, true,\s+0\.0f, 0\.0f, false, int64_t\{0\}, static_cast<const float\*>\(c\.inputs\[3\]\), static_cast<const float\*>\(c\.inputs\[4\]\), static_cast<const int64_t\*>\(c\.inputs\[2\]\),/,
          );
        } else {
          assert.match(
            model,
            /1, 1, 5000, false,\s+0\.5f, 0\.05000000074505806f, true, int64_t\{300\}, nullptr, nullptr, nullptr,\s+c\.workspace, int64_t\{395000\}/,
          );
        }
        // the Gather of the kept boxes runs over the count the NMS decided
        assert.match(model, /GatherArgs<float, int64_t> args\{[^;]*, c\.dims\[0\]\};/);
        if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencodeOf(target));
      });

  it('a limit from shape arithmetic is a host expression of the dims (here the batch)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-nms-'));
    const file = path.join(dir, 'nms.onnx');
    const spec: ModelSpec = {
      inputs: [
        { name: 'boxes', dtype: 'float32', dims: ['B', 100, 4] },
        { name: 'scores', dtype: 'float32', dims: ['B', 2, 100] },
      ],
      initializers: [
        { name: 'iou', dtype: 'float32', dims: [1], values: [0.5] },
        { name: 'zero', dtype: 'int64', dims: [1], values: [0] },
        { name: 'one', dtype: 'int64', dims: [1], values: [1] },
      ],
      nodes: [
        { op: 'Shape', name: 'shape', inputs: ['boxes'], outputs: ['shape'] },
        { op: 'Slice', name: 'batches', inputs: ['shape', 'zero', 'one'], outputs: ['max'] },
        { op: 'NonMaxSuppression', name: 'nms', inputs: ['boxes', 'scores', 'max', 'iou'], outputs: ['selected'] },
      ],
      outputs: [{ name: 'selected', dtype: 'int64', dims: [null, 3] }],
      opset: 11,
    };
    fs.writeFileSync(file, buildModel(spec));
    const out = path.join(dir, 'out');
    const result = compileModel(file, { out, target: 'cuda:sm90', maxBatch: 4 });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const model = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
    assert.match(model, /batch, 2, 100, false,\s+0\.5f, 0\.0f, false, batch, nullptr, nullptr, nullptr,/);
  });

  /**
   * torchvision's R-CNN RoI heads: the scores of 1000 proposals × 90 classes filtered by score (NonZero: a run-time
   * count bounded by 90000), the kept boxes and scores gathered, one batched NMS over them.
   */
  function roiHeadsModel(): ModelSpec {
    const n = 90000;
    return {
      inputs: [
        { name: 'boxes', dtype: 'float32', dims: [n, 4] },
        { name: 'scores', dtype: 'float32', dims: [n] },
      ],
      initializers: [
        { name: 'threshold', dtype: 'float32', dims: [], values: [0.05] },
        { name: 'axis0', dtype: 'int64', dims: [1], values: [0] },
        { name: 'axes01', dtype: 'int64', dims: [2], values: [0, 1] },
        { name: 'max', dtype: 'int64', dims: [1], values: [100] },
        { name: 'iou', dtype: 'float32', dims: [1], values: [0.5] },
      ],
      nodes: [
        { op: 'Greater', name: 'above', inputs: ['scores', 'threshold'], outputs: ['mask'] },
        { op: 'NonZero', name: 'where', inputs: ['mask'], outputs: ['where2d'] },
        { op: 'Squeeze', name: 'flat', inputs: ['where2d', 'axis0'], outputs: ['where'] },
        { op: 'Gather', name: 'gather_boxes', inputs: ['boxes', 'where'], outputs: ['kept_boxes'], attrs: { axis: 0 } },
        { op: 'Gather', name: 'gather_scores', inputs: ['scores', 'where'], outputs: ['kept_scores'], attrs: { axis: 0 } },
        { op: 'Unsqueeze', name: 'batch_boxes', inputs: ['kept_boxes', 'axis0'], outputs: ['boxes3d'] },
        { op: 'Unsqueeze', name: 'batch_scores', inputs: ['kept_scores', 'axes01'], outputs: ['scores3d'] },
        { op: 'NonMaxSuppression', name: 'nms', inputs: ['boxes3d', 'scores3d', 'max', 'iou'], outputs: ['selected'] },
      ],
      outputs: [{ name: 'selected', dtype: 'int64', dims: [null, 3] }],
      opset: 13,
    };
  }

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: one NMS over up to 90000 boxes (R-CNN RoI heads) compiles, its mask in blocks within 128 MB`, function () {
      this.timeout(300000);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-nms-'));
      const file = path.join(dir, 'nms.onnx');
      fs.writeFileSync(file, buildModel(roiHeadsModel()));
      const { graph: inferred } = inferModel(roiHeadsModel());
      const boxes = inferred.tensor('boxes3d').shape!;
      assert.ok(!isConcrete(boxes[1]), 'the box count is a run-time dim');
      const out = path.join(dir, 'out');
      const result = compileModel(file, { out, target, maxBatch: 1 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { op: string; kernel?: { name: string }; status?: { supported: boolean; reason?: string } }[];
      };
      assert.deepEqual(
        graph.nodes.filter((node) => node.status?.supported === false).map((node) => `${node.op}: ${node.status?.reason}`),
        [],
      );
      // boxes are stored fp32 (storage precision: NMS boxes), the kernel instance says so
      assert.ok(graph.nodes.some((node) => node.op === 'NonMaxSuppression' && node.kernel?.name === 'ait_nms_f32'));
      const model = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
      // the mask capacity at the bound (90000 boxes): the 128 MB budget, so blocks of 11904 rows
      assert.match(
        model,
        /1, 1, c\.dims\[\d+\], false,\s+0\.5f, 0\.0f, false, int64_t\{100\}, nullptr, nullptr, nullptr,\s+c\.workspace, int64_t\{16777216\}/,
      );
      assert.match(model, /ait::kernels::launch_nms_select\(args, c\.stream\)/);
      if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencodeOf(target));
    });

  it('refuses more boxes than the kernel takes, naming the reason (the node shows as unsupported)', () => {
    const { graph } = inferModel(
      nodeModel('NonMaxSuppression', [
        input('float32', [1, 20000000, 4]),
        input('float32', [1, 1, 20000000]),
        tensor('int64', [1], [10]),
        tensor('float32', [1], [0.5]),
      ]),
    );
    const node = graph.nodes.find((n) => n.op === 'NonMaxSuppression')!;
    assert.deepEqual(supportOf(graph, node, 'cuda:sm90'), {
      supported: false,
      reason: '20000000 boxes per batch (the kernel takes at most 16777216)',
    });
    const small = inferModel(
      nodeModel('NonMaxSuppression', [input('float32', [1, 100, 4]), input('float32', [1, 2, 100]), tensor('int64', [1], [10])]),
    );
    const smallNode = small.graph.nodes.find((n) => n.op === 'NonMaxSuppression')!;
    assert.deepEqual(supportOf(small.graph, smallNode, 'cuda:sm80'), { supported: true });
  });
});
