/**
 * NonMaxSuppression on CUDA (kernels/nms.cuh, codegen/nms-lowering.ts). Checked here: the op's reference against
 * onnxruntime-node (thresholds, center_point_box, several batches and classes, score ties, the per-class limit, no
 * limit, no score threshold, -Infinity scores, identical boxes); a TypeScript replay of the kernels' algorithm (64-bit
 * sort keys through the chunked bitonic network, the IoU bitmask, the sweep with its per-word barrier, the scan and
 * the row writes) against the reference; models with NMS compiling for sm90 and sm80 with no unsupported node, the
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
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { nmsMaskCapacity, nmsWorkspaceBytes } from '../../../compiler/backends/cuda/codegen/nms-lowering';
import { ModelSpec, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

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

function replay(c: Case, data: { boxes: number[]; scores: number[] }, chunkSize: number): number[] {
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
  const keptPerSegment: number[][] = [];
  for (let s = 0; s < c.batches * c.classes; s++) {
    const b = Math.floor(s / c.classes);
    // sort (with the candidate count)
    const keys = new Array<bigint>(length).fill(NO_KEY);
    let candidates = 0;
    for (let i = 0; i < n; i++) {
      const score = data.scores[s * n + i];
      if (c.score === undefined ? !Number.isNaN(score) : score > f(c.score)) {
        keys[i] = key(score, i);
        candidates++;
      }
    }
    bitonicSort(keys, chunkSize);
    const index = (i: number) => Number(keys[i] & 0xffffffffn);
    // mask: rows × words, only words at or right of the row's own
    const mask = new Array<bigint>(n * words).fill(-1n); // poison: words the kernel does not write
    for (let rowWord = 0; rowWord * 64 < candidates; rowWord++)
      for (let columnWord = rowWord; columnWord * 64 < candidates; columnWord++)
        for (let t = 0; t < 64 && rowWord * 64 + t < candidates; t++) {
          const row = rowWord * 64 + t;
          let bits = 0n;
          for (let u = rowWord === columnWord ? t + 1 : 0; u < 64 && columnWord * 64 + u < candidates; u++)
            if (suppresses(corners(b, index(row)), corners(b, index(columnWord * 64 + u)))) bits |= 1n << BigInt(u);
          mask[row * words + columnWord] = bits;
        }
    // sweep
    const limit = Math.min(max, candidates);
    const usedWords = Math.ceil(candidates / 64);
    const removed = new Array<bigint>(usedWords).fill(0n);
    const selected: number[] = [];
    for (let word = 0; word < usedWords && selected.length < limit; word++) {
      let current = removed[word];
      const bits = Math.min(64, candidates - word * 64);
      for (let bit = 0; bit < bits; bit++) {
        if ((current >> BigInt(bit)) & 1n) continue;
        const i = word * 64 + bit;
        selected.push(index(i));
        if (selected.length >= limit) break;
        current |= mask[i * words + word];
        for (let w = word + 1; w < usedWords; w++) removed[w] |= mask[i * words + w];
      }
    }
    keptPerSegment.push(selected);
  }
  // scan + write
  const rows: number[] = [];
  keptPerSegment.forEach((kept, s) => kept.forEach((i) => rows.push(Math.floor(s / c.classes), s % c.classes, i)));
  return rows;
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

  it('the workspace grows with segments and boxes (sized once at the bounds)', () => {
    let previous = 0;
    for (const boxes of [1, 63, 64, 65, 1000, 2048, 2049, 5000, 32768]) {
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
        if (haveNvcc())
          nvccCompileGenerated(
            out,
            ['src/model.cu'],
            target === 'cuda:sm90' ? 'arch=compute_90a,code=sm_90a' : 'arch=compute_80,code=sm_80',
          );
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

  it('refuses more boxes than the sweep takes, naming the reason (the node shows as unsupported)', () => {
    const { graph } = inferModel(
      nodeModel('NonMaxSuppression', [
        input('float32', [1, 40000, 4]),
        input('float32', [1, 1, 40000]),
        tensor('int64', [1], [10]),
        tensor('float32', [1], [0.5]),
      ]),
    );
    const node = graph.nodes.find((n) => n.op === 'NonMaxSuppression')!;
    assert.deepEqual(supportOf(graph, node, 'cuda:sm90'), {
      supported: false,
      reason: '40000 boxes per batch (the kernel’s suppression sweep takes at most 32768)'.replace('’', "'"),
    });
    const small = inferModel(
      nodeModel('NonMaxSuppression', [input('float32', [1, 100, 4]), input('float32', [1, 2, 100]), tensor('int64', [1], [10])]),
    );
    const smallNode = small.graph.nodes.find((n) => n.op === 'NonMaxSuppression')!;
    assert.deepEqual(supportOf(small.graph, smallNode, 'cuda:sm80'), { supported: true });
  });
});
