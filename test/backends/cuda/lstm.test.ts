/**
 * LSTM (ops/recurrent.ts; kernels/recurrent.cuh): the reference matches onnxruntime on forward, reverse and
 * bidirectional LSTMs with biases, peepholes, initial states, clip, input_forget and both layouts, and a symbolic
 * batch; the CUDA kernel's step (a thread per hidden unit, the hidden state ping-ponging between two buffers),
 * replayed on the host, computes the same; unsupported forms are refused naming the cause; Sequencer-style
 * BiLSTMs compile for sm90, sm80 and gfx942 onto ait_lstm and nvcc compiles model.cu.
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
  layout?: number;
  bias?: boolean;
  peepholes?: boolean;
  initial?: boolean;
  clip?: number;
  inputForget?: boolean;
}

const CASES: Case[] = [
  { name: 'forward, bias', direction: 'forward', seq: 5, batch: 3, input: 4, hidden: 6, bias: true },
  { name: 'reverse, initial states', direction: 'reverse', seq: 4, batch: 2, input: 3, hidden: 5, bias: true, initial: true },
  { name: 'bidirectional (Sequencer)', direction: 'bidirectional', seq: 7, batch: 3, input: 8, hidden: 4, bias: true },
  {
    name: 'bidirectional, batch-first, peepholes, clip',
    direction: 'bidirectional',
    seq: 3,
    batch: 2,
    input: 5,
    hidden: 3,
    layout: 1,
    bias: true,
    peepholes: true,
    initial: true,
    clip: 0.7,
  },
  { name: 'input_forget', direction: 'forward', seq: 4, batch: 2, input: 3, hidden: 4, inputForget: true },
];

function values(n: number, seed: number, scale = 0.5): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => scale * (2 * r() - 1));
}

function model(c: Case): ModelSpec {
  const dirs = c.direction === 'bidirectional' ? 2 : 1;
  const H = c.hidden;
  const xDims = c.layout === 1 ? ['B', c.seq, c.input] : [c.seq, 'B', c.input];
  const stateDims = c.layout === 1 ? ['B', dirs, H] : [dirs, 'B', H];
  const inputs: ModelSpec['inputs'] = [{ name: 'x', dtype: 'float32', dims: xDims }];
  if (c.initial) inputs.push({ name: 'h0', dtype: 'float32', dims: stateDims }, { name: 'c0', dtype: 'float32', dims: stateDims });
  return {
    inputs,
    initializers: [
      { ...tensor('float32', [dirs, 4 * H, c.input], values(dirs * 4 * H * c.input, 1)), name: 'w' },
      { ...tensor('float32', [dirs, 4 * H, H], values(dirs * 4 * H * H, 2)), name: 'r' },
      ...(c.bias ? [{ ...tensor('float32', [dirs, 8 * H], values(dirs * 8 * H, 3)), name: 'b' }] : []),
      ...(c.peepholes ? [{ ...tensor('float32', [dirs, 3 * H], values(dirs * 3 * H, 4)), name: 'p' }] : []),
    ],
    nodes: [
      {
        op: 'LSTM',
        name: 'lstm',
        inputs: ['x', 'w', 'r', c.bias ? 'b' : '', '', c.initial ? 'h0' : '', c.initial ? 'c0' : '', c.peepholes ? 'p' : ''],
        outputs: ['y', 'y_h', 'y_c'],
        attrs: {
          hidden_size: H,
          direction: c.direction,
          ...(c.layout ? { layout: c.layout } : {}),
          ...(c.clip ? { clip: { kind: 'float', value: c.clip } } : {}),
          ...(c.inputForget ? { input_forget: 1 } : {}),
        },
      },
    ],
    outputs: ['y', 'y_h', 'y_c'],
    opset: 14,
  };
}

/** data of `shape` with its axes permuted: out axis a is input axis perm[a]. */
function permute(data: ArrayLike<number>, shape: readonly number[], perm: number[]): { data: Float32Array; shape: number[] } {
  const outShape = perm.map((a) => shape[a]);
  const strides = shape.map((_, a) => shape.slice(a + 1).reduce((x, y) => x * y, 1));
  const out = new Float32Array(data.length);
  const index = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let src = 0;
    for (let a = 0; a < outShape.length; a++) src += index[a] * strides[perm[a]];
    out[i] = data[src];
    for (let a = outShape.length - 1; a >= 0 && ++index[a] === outShape[a]; a--) index[a] = 0;
  }
  return { data: out, shape: outShape };
}

function write(spec: ModelSpec, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-lstm-'));
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

function inputsOf(c: Case, seed: number) {
  const dirs = c.direction === 'bidirectional' ? 2 : 1;
  const xShape = c.layout === 1 ? [c.batch, c.seq, c.input] : [c.seq, c.batch, c.input];
  const stateShape = c.layout === 1 ? [c.batch, dirs, c.hidden] : [dirs, c.batch, c.hidden];
  const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const xs = [makeTensor('float32', xShape, values(n(xShape), seed, 1))];
  if (c.initial)
    xs.push(
      makeTensor('float32', stateShape, values(n(stateShape), seed + 1)),
      makeTensor('float32', stateShape, values(n(stateShape), seed + 2)),
    );
  return xs;
}

/**
 * The kernel (recurrent.cuh lstm_init_kernel, lstm_step_kernel) in TypeScript: buffer 0 := initial_h, then per step
 * every unit of every direction reads H_{s-1} from buffer s % 2 and writes buffer (s + 1) % 2.
 */
function kernelReplay(
  c: Case,
  x: Float32Array,
  w: number[],
  r: number[],
  b?: number[],
  p?: number[],
  h0?: Float32Array,
  c0?: Float32Array,
) {
  const dirs = c.direction === 'bidirectional' ? 2 : 1;
  const { seq, batch, input, hidden: H } = c;
  const layout = c.layout ?? 0;
  const plane = dirs * batch * H;
  const state = new Float64Array(3 * plane);
  const y = new Float64Array(seq * plane);
  const yh = new Float64Array(plane);
  const yc = new Float64Array(plane);
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const clip = (v: number) => (c.clip ? Math.min(c.clip, Math.max(-c.clip, v)) : v);
  const ioState = (d: number, n: number, j: number) => (layout === 0 ? d * batch + n : n * dirs + d) * H + j;
  for (let i = 0; i < plane; i++) {
    const j = i % H;
    const n = Math.floor(i / H) % batch;
    const d = Math.floor(i / (H * batch));
    state[i] = h0 ? h0[ioState(d, n, j)] : 0;
  }
  for (let step = 0; step < seq; step++) {
    const next = new Float64Array(state); // a launch: every thread reads the state before it
    for (let i = 0; i < plane; i++) {
      const j = i % H;
      const n = Math.floor(i / H) % batch;
      const d = Math.floor(i / (H * batch));
      const t = c.direction === 'reverse' || d === 1 ? seq - 1 - step : step;
      const unit = (d * batch + n) * H;
      const hPrev = (step % 2) * plane + unit;
      const cPrev = step === 0 ? (c0 ? c0[ioState(d, n, j)] : 0) : state[2 * plane + unit + j];
      const xRow = (layout === 0 ? t * batch + n : n * seq + t) * input;
      const gates = [0, 1, 2, 3].map((g) => {
        const row = d * 4 * H + g * H + j;
        let acc = b ? b[d * 8 * H + g * H + j] + b[d * 8 * H + 4 * H + g * H + j] : 0;
        for (let k = 0; k < input; k++) acc += x[xRow + k] * w[row * input + k];
        for (let k = 0; k < H; k++) acc += state[hPrev + k] * r[row * H + k];
        return acc;
      });
      const pi = p ? p[d * 3 * H + j] : 0;
      const po = p ? p[d * 3 * H + H + j] : 0;
      const pf = p ? p[d * 3 * H + 2 * H + j] : 0;
      const ig = sig(clip(gates[0] + pi * cPrev));
      const fg = c.inputForget ? 1 - ig : sig(clip(gates[2] + pf * cPrev));
      const cell = fg * cPrev + ig * Math.tanh(clip(gates[3]));
      const h = sig(clip(gates[1] + po * cell)) * Math.tanh(cell);
      next[2 * plane + unit + j] = cell;
      next[((step + 1) % 2) * plane + unit + j] = h;
      y[layout === 0 ? ((t * dirs + d) * batch + n) * H + j : ((n * seq + t) * dirs + d) * H + j] = h;
      if (step === seq - 1) {
        yh[ioState(d, n, j)] = h;
        yc[ioState(d, n, j)] = cell;
      }
    }
    state.set(next);
  }
  return { y, yh, yc };
}

describe('LSTM: reference, the CUDA kernel, compiles', function () {
  this.timeout(300_000);

  for (const [k, c] of CASES.entries())
    it(`${c.name}: the reference matches onnxruntime, and the kernel's steps replayed match the reference`, async () => {
      const spec = model(c);
      const file = write(spec, `lstm${k}`);
      const xs = inputsOf(c, 20 + k);
      const { graph } = optimizeModel(file, {});
      const ours = runGraphNamed(graph, xs);
      // onnxruntime runs layout 0 only: a batch-first case is checked against the same LSTM in layout 0, its inputs
      // and outputs moved between [batch, seq, …] / [batch, dirs, …] and [seq, batch, …] / [dirs, batch, …]
      const batchFirst = c.layout === 1;
      const session = await ort.InferenceSession.create(batchFirst ? write(model({ ...c, layout: 0 }), `lstm${k}_l0`) : file);
      const feeds = Object.fromEntries(
        spec.inputs.map((i, n) => {
          const t = batchFirst
            ? permute(numeric(xs[n]), xs[n].shape, [1, 0, 2])
            : { data: Float32Array.from(numeric(xs[n])), shape: xs[n].shape };
          return [i.name, new ort.Tensor('float32', t.data, t.shape)];
        }),
      );
      const raw = await session.run(feeds);
      const theirs = Object.fromEntries(
        Object.entries(raw).map(([name, t]) => {
          const moved = batchFirst
            ? permute(t.data as Float32Array, t.dims as number[], name === 'y' ? [2, 0, 1, 3] : [1, 0, 2])
            : undefined;
          return [name, moved ? { data: moved.data, dims: moved.shape } : { data: t.data as Float32Array, dims: t.dims as number[] }];
        }),
      );
      const init = (name: string) => spec.initializers!.find((t) => t.name === name)?.values as number[] | undefined;
      const replay = kernelReplay(
        c,
        numeric(xs[0]) as Float32Array,
        init('w')!,
        init('r')!,
        init('b'),
        init('p'),
        c.initial ? (numeric(xs[1]) as Float32Array) : undefined,
        c.initial ? (numeric(xs[2]) as Float32Array) : undefined,
      );
      for (const [name, kernel] of [
        ['y', replay.y],
        ['y_h', replay.yh],
        ['y_c', replay.yc],
      ] as const) {
        const want = theirs[name].data as Float32Array;
        const got = numeric(ours.get(name)!);
        assert.deepEqual(ours.get(name)!.shape, theirs[name].dims, name);
        for (let i = 0; i < want.length; i++) {
          assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `${name}[${i}] reference ${got[i]} vs ${want[i]}`);
          assert.ok(
            Math.abs(kernel[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])),
            `${name}[${i}] kernel replay ${kernel[i]} vs ${want[i]}`,
          );
        }
      }
    });

  it('refuses sequence_lens and other activations at the node, naming why', () => {
    const c = CASES[0];
    const lens = model(c);
    lens.inputs.push({ name: 'lens', dtype: 'int32', dims: ['B'] });
    lens.nodes[0].inputs[4] = 'lens';
    const acts = model(c);
    acts.nodes[0].attrs = { ...acts.nodes[0].attrs, activations: { kind: 'strings', value: ['Relu', 'Tanh', 'Tanh'] } };
    // clip reaches the generated code as a number: only a positive finite one
    const clip = model({ ...c, clip: Infinity });
    const clipped = compileModel(write(clip, 'clip'), {
      out: fs.mkdtempSync(path.join(os.tmpdir(), 'ait-lstm-clip-')),
      target: 'cuda:sm90',
    });
    assert.ok(!clipped.ok);
    assert.match(clipped.diagnostics.map((d) => d.message).join('\n'), /node 'lstm'.*clip Infinity is not a positive finite number/);
    for (const [spec, reason] of [
      [lens, /^LSTM with sequence_lens/],
      [acts, /^LSTM activations \[Relu, Tanh, Tanh\]/],
    ] as const) {
      const { graph } = optimizeModel(write(spec, 'refused'), {});
      const node = graph.nodes.find((n) => n.op === 'LSTM')!;
      const support = supportOf(graph, node, 'cuda:sm90');
      assert.equal(support.supported, false);
      assert.match(support.reason ?? '', reason);
    }
  });

  for (const [target, gencode] of [...GPU_TARGETS, ['rocm:gfx942', undefined] as const])
    it(`a BiLSTM compiles for ${target} onto ait_lstm${gencode ? '; nvcc compiles model.cu' : ''}`, () => {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-lstm-out-'));
      const r = compileModel(write(model(CASES[2]), 'bilstm'), { out, target, maxBatch: 8 });
      assert.deepEqual(
        r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const modelCu = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
      assert.match(modelCu, /ait::kernels::LstmArgs<__half> args\{/);
      assert.match(modelCu, /launch_lstm\(args, c\.stream\)/);
      const graphJson = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { op: string; kernel?: { name: string } }[];
      };
      assert.equal(graphJson.nodes.find((n) => n.op === 'LSTM')?.kernel?.name, 'ait_lstm_f16');
      if (gencode && haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencode);
    });
});
