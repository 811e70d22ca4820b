/**
 * Col2Im (opset 18, torch's F.fold: VOLO's outlook attention folds its windows back into the image). The reference
 * (ops/conv.ts, a scatter over windows) matches onnxruntime on 1-D, 2-D and 3-D folds with strides, dilations and
 * uneven pads and a symbolic batch; the CUDA kernel's gather form (kernels/col2im.cuh: each output element collects the
 * windows covering it), replayed on the host, computes the same; a bad geometry is an error naming the node; the model
 * compiles for sm90, sm80 and gfx942 onto ait_col2im and nvcc compiles its model.cu.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { runGraphNamed } from '../../../compiler/interpreter/interpreter';
import { col2imGeometry } from '../../../compiler/ops/conv';
import { Node } from '../../../compiler/ir/graph';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';
import { GPU_TARGETS, haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

interface Fold {
  name: string;
  channels: number;
  image: number[];
  block: number[];
  strides?: number[];
  dilations?: number[];
  pads?: number[];
}

const FOLDS: Fold[] = [
  {
    name: "VOLO's outlook fold (3×3 windows, stride 2, pad 1)",
    channels: 4,
    image: [7, 7],
    block: [3, 3],
    strides: [2, 2],
    pads: [1, 1, 1, 1],
  },
  {
    name: '2-D, uneven strides and pads, dilation 2',
    channels: 2,
    image: [6, 9],
    block: [2, 3],
    strides: [1, 2],
    dilations: [2, 1],
    pads: [1, 0, 2, 1],
  },
  { name: '1-D', channels: 3, image: [10], block: [3], strides: [2], pads: [1, 2] },
  { name: '3-D', channels: 2, image: [3, 4, 5], block: [2, 2, 2], strides: [1, 2, 2], pads: [0, 1, 1, 1, 0, 1] },
];

function positionsOf(f: Fold): number[] {
  const spatial = f.image.length;
  const s = f.strides ?? f.image.map(() => 1);
  const d = f.dilations ?? f.image.map(() => 1);
  const p = f.pads ?? new Array<number>(2 * spatial).fill(0);
  return f.image.map((size, k) => Math.floor((size + p[k] + p[k + spatial] - d[k] * (f.block[k] - 1) - 1) / s[k]) + 1);
}

function model(f: Fold, columns?: number): ModelSpec {
  const perBlock = f.block.reduce((a, b) => a * b, 1);
  const L = positionsOf(f).reduce((a, b) => a * b, 1);
  return {
    opset: 18,
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', columns ?? f.channels * perBlock, L] }],
    initializers: [
      { ...tensor('int64', [f.image.length], f.image), name: 'image_shape' },
      { ...tensor('int64', [f.block.length], f.block), name: 'block_shape' },
    ],
    nodes: [
      {
        op: 'Col2Im',
        name: 'fold',
        inputs: ['x', 'image_shape', 'block_shape'],
        outputs: ['y'],
        attrs: {
          ...(f.strides ? { strides: f.strides } : {}),
          ...(f.dilations ? { dilations: f.dilations } : {}),
          ...(f.pads ? { pads: f.pads } : {}),
        },
      },
    ],
    outputs: ['y'],
  };
}

function write(spec: ModelSpec, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-col2im-'));
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

function inputOf(f: Fold, batch: number, seed: number) {
  const perBlock = f.block.reduce((a, b) => a * b, 1);
  const L = positionsOf(f).reduce((a, b) => a * b, 1);
  const n = batch * f.channels * perBlock * L;
  const r = seededRandom(seed);
  return makeTensor(
    'float32',
    [batch, f.channels * perBlock, L],
    Array.from({ length: n }, () => 2 * r() - 1),
  );
}

/** The kernel's loop (col2im.cuh col2im_kernel) in TypeScript: one output element at a time, gathering. */
function gatherReplay(f: Fold, batch: number, x: Float32Array | Float64Array): Float64Array {
  const spatial = f.image.length;
  const lift = (v: number[], one: number) => [...new Array<number>(3 - spatial).fill(one), ...v];
  const image = lift(f.image, 1);
  const block = lift(f.block, 1);
  const positions = lift(positionsOf(f), 1);
  const strides = lift(f.strides ?? f.image.map(() => 1), 1);
  const dilations = lift(f.dilations ?? f.image.map(() => 1), 1);
  const pads = lift((f.pads ?? new Array<number>(2 * spatial).fill(0)).slice(0, spatial), 0);
  const plane = image[0] * image[1] * image[2];
  const windows = positions[0] * positions[1] * positions[2];
  const kernel = block[0] * block[1] * block[2];
  const out = new Float64Array(batch * f.channels * plane);
  for (let i = 0; i < out.length; i++) {
    const ow = i % image[2];
    const oh = Math.floor(i / image[2]) % image[1];
    const od = Math.floor(i / (image[2] * image[1])) % image[0];
    const rows = Math.floor(i / plane) * kernel * windows;
    let acc = 0;
    for (let t = 0; t < block[0]; t++) {
      const pd = od + pads[0] - t * dilations[0];
      if (pd < 0 || pd % strides[0] !== 0 || pd / strides[0] >= positions[0]) continue;
      for (let r = 0; r < block[1]; r++) {
        const ph = oh + pads[1] - r * dilations[1];
        if (ph < 0 || ph % strides[1] !== 0 || ph / strides[1] >= positions[1]) continue;
        for (let s = 0; s < block[2]; s++) {
          const pw = ow + pads[2] - s * dilations[2];
          if (pw < 0 || pw % strides[2] !== 0 || pw / strides[2] >= positions[2]) continue;
          const row = (t * block[1] + r) * block[2] + s;
          const position = ((pd / strides[0]) * positions[1] + ph / strides[1]) * positions[2] + pw / strides[2];
          acc += x[rows + row * windows + position];
        }
      }
    }
    out[i] = acc;
  }
  return out;
}

describe('Col2Im: reference, the CUDA kernel, compiles', function () {
  this.timeout(300_000);

  for (const [k, f] of FOLDS.entries())
    it(`${f.name}: the reference matches onnxruntime, and the kernel's gather replayed matches the reference`, async () => {
      const file = write(model(f), `fold${k}`);
      const x = inputOf(f, 2, 10 + k);
      const { graph } = optimizeModel(file, {});
      const ours = numeric(runGraphNamed(graph, [x]).get('y')!);
      const session = await ort.InferenceSession.create(file);
      const theirs = (await session.run({ x: new ort.Tensor('float32', Float32Array.from(numeric(x)), x.shape) })).y;
      assert.deepEqual(theirs.dims, [2, f.channels, ...f.image]);
      assert.equal(ours.length, theirs.data.length);
      const replay = gatherReplay(f, 2, numeric(x) as Float32Array);
      for (let i = 0; i < ours.length; i++) {
        const want = (theirs.data as Float32Array)[i];
        assert.ok(Math.abs(ours[i] - want) <= 1e-5 * (1 + Math.abs(want)), `reference [${i}]: ${ours[i]} vs ${want}`);
        assert.ok(Math.abs(replay[i] - want) <= 1e-5 * (1 + Math.abs(want)), `kernel replay [${i}]: ${replay[i]} vs ${want}`);
      }
    });

  it('a geometry that does not fit is an error naming the node and the cause', () => {
    const f = FOLDS[0];
    const r = compileModel(write(model(f, 4 * 9 + 1), 'bad'), {
      out: fs.mkdtempSync(path.join(os.tmpdir(), 'ait-col2im-bad-')),
      target: 'cuda:sm90',
    });
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    assert.ok(errors.length >= 1);
    assert.match(errors[0].message, /fold/);
    assert.match(errors[0].message, /input dim 1 \(37\) is not a multiple of the block size 9/);
    const node = {
      id: 'n0',
      name: 'fold',
      op: 'Col2Im',
      domain: '',
      inputs: [],
      outputs: [],
      attrs: { strides: { type: 'ints', value: [2, 2] }, pads: { type: 'ints', value: [1, 1, 1, 1] } },
    } as unknown as Node;
    const geometry = (input: number[], image: number[], block: number[]) => () =>
      col2imGeometry(node, input, image, block, (m) => {
        throw new Error(m);
      });
    assert.throws(geometry([1, 36, 17], [7, 7], [3, 3]), /input dim 2 is 17, but the blocks take 16 positions/);
    // sizes from the model reach the kernel's 32-bit fields: past them, refused before any code is written
    assert.throws(geometry([1, 36, 16], [7, 7], [3, 2 ** 31]), /must be positive 32-bit integers/);
  });

  for (const [target, gencode] of [...GPU_TARGETS, ['rocm:gfx942', undefined] as const])
    it(`compiles for ${target} onto ait_col2im${gencode ? '; nvcc compiles model.cu' : ''}`, () => {
      const f = FOLDS[0];
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-col2im-out-'));
      const r = compileModel(write(model(f), 'volo'), { out, target, maxBatch: 8 });
      assert.deepEqual(
        r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const modelCu = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
      assert.match(
        modelCu,
        /ait::kernels::Col2ImArgs<__half> args\{[^;]*\{1, 7, 7\}, \{1, 3, 3\}, \{1, 4, 4\}, \{1, 2, 2\}, \{1, 1, 1\},\s*\{0, 1, 1\}\};/,
      );
      const graphJson = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { op: string; kernel?: { name: string } }[];
      };
      assert.equal(graphJson.nodes.find((n) => n.op === 'Col2Im')?.kernel?.name, 'ait_col2im_f16');
      if (gencode && haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencode);
    });
});
