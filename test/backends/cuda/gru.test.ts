/**
 * GRU (ops/recurrent.ts; kernels/recurrent.cuh): the reference matches onnxruntime with linear_before_reset 0 and 1,
 * forward, reverse and bidirectional, initial states, clip and a symbolic batch; the CUDA kernel's step (PyTorch's
 * linear_before_reset = 1), replayed on the host, computes the same; linear_before_reset = 0 is refused naming why;
 * a BiGRU compiles for sm90, sm80 and gfx942 onto ait_gru and nvcc compiles model.cu.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { supportOf } from '../../../compiler/backends/support';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { runGraphNamed } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';
import { GPU_TARGETS, haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

interface Case {
  name: string;
  direction: 'forward' | 'reverse' | 'bidirectional';
  seq: number;
  batch: number;
  input: number;
  hidden: number;
  linearBeforeReset: boolean;
  initial?: boolean;
  clip?: number;
}

const CASES: Case[] = [
  {
    name: 'forward, linear_before_reset 1 (PyTorch)',
    direction: 'forward',
    seq: 5,
    batch: 3,
    input: 4,
    hidden: 6,
    linearBeforeReset: true,
  },
  {
    name: 'bidirectional, initial state, clip',
    direction: 'bidirectional',
    seq: 4,
    batch: 2,
    input: 3,
    hidden: 5,
    linearBeforeReset: true,
    initial: true,
    clip: 0.8,
  },
  { name: 'reverse', direction: 'reverse', seq: 6, batch: 2, input: 5, hidden: 3, linearBeforeReset: true },
  {
    name: 'linear_before_reset 0 (reference only)',
    direction: 'forward',
    seq: 4,
    batch: 2,
    input: 3,
    hidden: 4,
    linearBeforeReset: false,
    initial: true,
  },
];

function values(n: number, seed: number, scale = 0.5): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => scale * (2 * r() - 1));
}

function model(c: Case): ModelSpec {
  const dirs = c.direction === 'bidirectional' ? 2 : 1;
  const H = c.hidden;
  const inputs: ModelSpec['inputs'] = [{ name: 'x', dtype: 'float32', dims: [c.seq, 'B', c.input] }];
  if (c.initial) inputs.push({ name: 'h0', dtype: 'float32', dims: [dirs, 'B', H] });
  return {
    inputs,
    initializers: [
      { ...tensor('float32', [dirs, 3 * H, c.input], values(dirs * 3 * H * c.input, 1)), name: 'w' },
      { ...tensor('float32', [dirs, 3 * H, H], values(dirs * 3 * H * H, 2)), name: 'r' },
      { ...tensor('float32', [dirs, 6 * H], values(dirs * 6 * H, 3)), name: 'b' },
    ],
    nodes: [
      {
        op: 'GRU',
        name: 'gru',
        inputs: ['x', 'w', 'r', 'b', '', c.initial ? 'h0' : ''],
        outputs: ['y', 'y_h'],
        attrs: {
          hidden_size: H,
          direction: c.direction,
          linear_before_reset: c.linearBeforeReset ? 1 : 0,
          ...(c.clip ? { clip: { kind: 'float', value: c.clip } } : {}),
        },
      },
    ],
    outputs: ['y', 'y_h'],
    opset: 14,
  };
}

function write(spec: ModelSpec, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gru-'));
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

/** recurrent.cuh gru_step_kernel in TypeScript (layout 0): every unit reads H_{s-1} and writes the other buffer. */
function kernelReplay(c: Case, x: ArrayLike<number>, w: number[], r: number[], b: number[], h0?: ArrayLike<number>) {
  const dirs = c.direction === 'bidirectional' ? 2 : 1;
  const { seq, batch, input, hidden: H } = c;
  const plane = dirs * batch * H;
  let h = Float64Array.from({ length: plane }, (_, i) => (h0 ? h0[i] : 0));
  const y = new Float64Array(seq * plane);
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const clip = (v: number) => (c.clip ? Math.min(c.clip, Math.max(-c.clip, v)) : v);
  for (let step = 0; step < seq; step++) {
    const next = new Float64Array(plane);
    for (let i = 0; i < plane; i++) {
      const j = i % H;
      const n = Math.floor(i / H) % batch;
      const d = Math.floor(i / (H * batch));
      const t = c.direction === 'reverse' || d === 1 ? seq - 1 - step : step;
      const unit = (d * batch + n) * H;
      const xw: number[] = [];
      const hr: number[] = [];
      for (let g = 0; g < 3; g++) {
        const row = d * 3 * H + g * H + j;
        let a = b[d * 6 * H + g * H + j];
        for (let k = 0; k < input; k++) a += x[(t * batch + n) * input + k] * w[row * input + k];
        let rec = b[d * 6 * H + 3 * H + g * H + j];
        for (let k = 0; k < H; k++) rec += h[unit + k] * r[row * H + k];
        xw.push(a);
        hr.push(rec);
      }
      const z = sig(clip(xw[0] + hr[0]));
      const reset = sig(clip(xw[1] + hr[1]));
      const cand = Math.tanh(clip(xw[2] + reset * hr[2]));
      next[unit + j] = (1 - z) * cand + z * h[unit + j];
      y[((t * dirs + d) * batch + n) * H + j] = next[unit + j];
    }
    h = next;
  }
  return { y, yh: h };
}

describe('GRU: reference, the CUDA kernel, compiles', function () {
  this.timeout(300_000);

  for (const [k, c] of CASES.entries())
    it(`${c.name}: the reference matches onnxruntime${c.linearBeforeReset ? ", and the kernel's steps replayed match it" : ''}`, async () => {
      const spec = model(c);
      const file = write(spec, `gru${k}`);
      const dirs = c.direction === 'bidirectional' ? 2 : 1;
      const xs = [makeTensor('float32', [c.seq, c.batch, c.input], values(c.seq * c.batch * c.input, 30 + k, 1))];
      if (c.initial) xs.push(makeTensor('float32', [dirs, c.batch, c.hidden], values(dirs * c.batch * c.hidden, 40 + k)));
      const { graph } = optimizeModel(file, {});
      const ours = runGraphNamed(graph, xs);
      const session = await ort.InferenceSession.create(file);
      const theirs = await session.run(
        Object.fromEntries(spec.inputs.map((i, n) => [i.name, new ort.Tensor('float32', Float32Array.from(numeric(xs[n])), xs[n].shape)])),
      );
      const init = (name: string) => spec.initializers!.find((t) => t.name === name)!.values as number[];
      const replay = c.linearBeforeReset
        ? kernelReplay(c, numeric(xs[0]), init('w'), init('r'), init('b'), c.initial ? numeric(xs[1]) : undefined)
        : undefined;
      for (const [name, kernel] of [
        ['y', replay?.y],
        ['y_h', replay?.yh],
      ] as const) {
        const want = theirs[name].data as Float32Array;
        const got = numeric(ours.get(name)!);
        assert.deepEqual(ours.get(name)!.shape, theirs[name].dims, name);
        for (let i = 0; i < want.length; i++) {
          assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `${name}[${i}] reference ${got[i]} vs ${want[i]}`);
          if (kernel)
            assert.ok(
              Math.abs(kernel[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])),
              `${name}[${i}] kernel replay ${kernel[i]} vs ${want[i]}`,
            );
        }
      }
    });

  it('refuses linear_before_reset = 0 at the node, naming why', () => {
    const { graph } = optimizeModel(write(model(CASES[3]), 'lbr0'), {});
    const node = graph.nodes.find((n) => n.op === 'GRU')!;
    const support = supportOf(graph, node, 'cuda:sm90');
    assert.equal(support.supported, false);
    assert.match(support.reason ?? '', /^GRU with linear_before_reset = 0/);
  });

  for (const [target, gencode] of [...GPU_TARGETS, ['rocm:gfx942', undefined] as const])
    it(`a BiGRU compiles for ${target} onto ait_gru${gencode ? '; nvcc compiles model.cu' : ''}`, () => {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-gru-out-'));
      const r = compileModel(write(model(CASES[1]), 'bigru'), { out, target, maxBatch: 8 });
      assert.deepEqual(
        r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const modelCu = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
      assert.match(modelCu, /ait::kernels::GruArgs<__half> args\{/);
      const graphJson = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { op: string; kernel?: { name: string } }[];
      };
      assert.equal(graphJson.nodes.find((n) => n.op === 'GRU')?.kernel?.name, 'ait_gru_f16');
      if (gencode && haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencode);
    });
});
