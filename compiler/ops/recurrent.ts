/**
 * Op family: recurrent — LSTM and GRU (ONNX, opset 7–22: Sequencer's BiLSTM mixers, CRNN-style OCR, speech encoders).
 *
 * Inputs X [seq, batch, input] (layout 0; layout 1: [batch, seq, input]), W [dirs, 4H, input], R [dirs, 4H, H], then
 * optional B [dirs, 8H] (Wb, then Rb), sequence_lens [batch], initial_h / initial_c [dirs, batch, H] (layout 1:
 * [batch, dirs, H]), P [dirs, 3H] (peepholes i, o, f). Gates in ONNX order i, o, f, c:
 *   i = σ(Xt·Wiᵀ + Ht-1·Riᵀ + Pi⊙Ct-1 + Wbi + Rbi)      f likewise (input_forget: f = 1 − i)
 *   c̃ = tanh(Xt·Wcᵀ + Ht-1·Rcᵀ + Wbc + Rbc)          Ct = f⊙Ct-1 + i⊙c̃
 *   o = σ(Xt·Woᵀ + Ht-1·Roᵀ + Po⊙Ct + Wbo + Rbo)      Ht = o⊙tanh(Ct)
 * `clip` bounds every gate's pre-activation. Outputs Y [seq, dirs, batch, H] (layout 1: [batch, seq, dirs, H]), Y_h and
 * Y_c [dirs, batch, H] (layout 1: [batch, dirs, H]). The reverse direction runs t = seq−1 … 0. With sequence_lens,
 * a batch entry stops at its length: Y is 0 past it, Y_h / Y_c are its last state (the reverse direction starts at
 * its last valid step).
 */
import { Node, attrFloat, attrInt, attrString } from '../ir/graph';
import { Dim, dimEquals } from '../ir/symbolic';
import { TensorValue, numeric } from '../ir/tensor';
import { InferContext, OpDefinition, nodeError, registerOps } from './registry';

const ACTIVATION: Record<string, (x: number) => number> = {
  Sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  Tanh: Math.tanh,
  Relu: (x) => Math.max(0, x),
};

export type LstmDirection = 'forward' | 'reverse' | 'bidirectional';

/** LSTM's default activations (f = Sigmoid, g = Tanh, h = Tanh per direction): the only ones the kernels take. */
export const LSTM_DEFAULT_ACTIVATIONS = ['Sigmoid', 'Tanh', 'Tanh'];
/** GRU's default activations (f = Sigmoid, g = Tanh per direction). */
export const GRU_DEFAULT_ACTIVATIONS = ['Sigmoid', 'Tanh'];

export interface LstmParams {
  direction: LstmDirection;
  dirs: number;
  hidden: number;
  layout: number;
  clip?: number;
  inputForget: boolean;
  /** per direction the op's functions (LSTM f, g, h; GRU f, g): given, else the defaults */
  activations: string[];
  /** what the activations would be by default: activations.every((a, i) => a === defaults[i]) says they are */
  defaults: string[];
}

/** The attributes LSTM and GRU share; `defaults`: the op's activations of one direction. */
function recurrentParams(node: Node, fail: (m: string) => never, defaults: readonly string[]): LstmParams {
  const direction = attrString(node, 'direction', 'forward') as LstmDirection;
  if (!['forward', 'reverse', 'bidirectional'].includes(direction))
    fail(`direction '${direction}' is not forward, reverse or bidirectional`);
  const dirs = direction === 'bidirectional' ? 2 : 1;
  const hidden = attrInt(node, 'hidden_size', 0);
  const layout = attrInt(node, 'layout', 0);
  if (layout !== 0 && layout !== 1) fail(`layout ${layout} is not 0 or 1`);
  const clip = node.attrs.clip ? attrFloat(node, 'clip') : undefined;
  // (a number that reaches generated code: finite and positive)
  if (clip !== undefined && !(clip > 0 && Number.isFinite(clip))) fail(`clip ${clip} is not a positive finite number`);
  const given = node.attrs.activations;
  const activations = given && given.type === 'strings' ? given.value : [];
  if (activations.length !== 0 && activations.length !== dirs * defaults.length)
    fail(`${activations.length} activations for ${dirs} direction(s) (${defaults.length} each)`);
  const all = Array.from({ length: dirs }, () => [...defaults]).flat();
  for (const a of activations) if (!ACTIVATION[a]) fail(`activation '${a}' is not one of ${Object.keys(ACTIVATION).join(', ')}`);
  return {
    direction,
    dirs,
    hidden,
    layout,
    ...(clip !== undefined ? { clip } : {}),
    inputForget: attrInt(node, 'input_forget', 0) !== 0,
    activations: activations.length ? activations : all,
    defaults: all,
  };
}

export function lstmParams(node: Node, fail: (m: string) => never): LstmParams {
  return recurrentParams(node, fail, LSTM_DEFAULT_ACTIVATIONS);
}

/**
 * The shapes LSTM and GRU share: X, W [dirs, gates·H, input], R [dirs, gates·H, H], B [dirs, 2·gates·H], initial_h,
 * checked; the hidden size (hidden_size, else R's last dim), Y's and the state's shapes.
 */
function recurrentShapes(ctx: InferContext, p: LstmParams, gates: number): { hidden: number; y: Dim[]; state: Dim[] } {
  const x = ctx.shape(0);
  const r = ctx.shape(2);
  if (x.length !== 3) ctx.fail(`X must be 3-D, got rank ${x.length}`);
  const [seq, batch] = p.layout === 0 ? [x[0], x[1]] : [x[1], x[0]];
  const hidden = p.hidden || (typeof r[2] === 'number' ? r[2] : 0);
  if (!(hidden > 0)) ctx.fail('hidden_size is missing and R does not give it');
  const state = p.layout === 0 ? [p.dirs, batch, hidden] : [batch, p.dirs, hidden];
  expectShape(ctx, 'W', ctx.shape(1), [p.dirs, gates * hidden, x[2]]);
  expectShape(ctx, 'R', r, [p.dirs, gates * hidden, hidden]);
  if (ctx.input(3)) expectShape(ctx, 'B', ctx.shape(3), [p.dirs, 2 * gates * hidden]);
  if (ctx.input(5)) expectShape(ctx, 'initial_h', ctx.shape(5), state);
  return { hidden, state, y: p.layout === 0 ? [seq, p.dirs, batch, hidden] : [batch, seq, p.dirs, hidden] };
}

function expectShape(ctx: InferContext, name: string, shape: Dim[], want: Dim[]): void {
  if (shape.length !== want.length || shape.some((d, i) => !dimEquals(d, want[i])))
    ctx.fail(`${name} is [${shape.join(', ')}], expected [${want.join(', ')}]`);
}

const lstm: OpDefinition = {
  op: 'LSTM',
  infer(ctx) {
    const p = lstmParams(ctx.node, (m) => ctx.fail(m));
    const { hidden, y, state } = recurrentShapes(ctx, p, 4);
    if (ctx.input(7)) expectShape(ctx, 'P', ctx.shape(7), [p.dirs, 3 * hidden]);
    if (ctx.input(6)) expectShape(ctx, 'initial_c', ctx.shape(6), state);
    const dtype = ctx.dtype(0);
    return [
      { dtype, shape: y },
      { dtype, shape: state },
      { dtype, shape: state },
    ];
  },
  evaluate(node, inputs) {
    const fail = (m: string): never => {
      throw nodeError(node, 'shape.invalid', m);
    };
    const p = lstmParams(node, fail);
    const [x, w, r, b, lens, h0, c0, peep] = inputs;
    if (!x || !w || !r) fail('X, W and R are required');
    const X = numeric(x!);
    const W = numeric(w!);
    const R = numeric(r!);
    const H = p.hidden || r!.shape[2];
    const I = x!.shape[2];
    const [seq, batch] = p.layout === 0 ? [x!.shape[0], x!.shape[1]] : [x!.shape[1], x!.shape[0]];
    const B = b ? numeric(b) : undefined;
    const P = peep ? numeric(peep) : undefined;
    const L = lens ? Array.from(numeric(lens), Number) : undefined;
    const xAt = (t: number, n: number, i: number) => X[(p.layout === 0 ? t * batch + n : n * seq + t) * I + i];
    const stateAt = (d: number, n: number) => (p.layout === 0 ? d * batch + n : n * p.dirs + d) * H;
    const Y = new Float32Array(seq * p.dirs * batch * H);
    const Yh = new Float32Array(p.dirs * batch * H);
    const Yc = new Float32Array(p.dirs * batch * H);
    const clip = (v: number) => (p.clip === undefined ? v : Math.min(p.clip, Math.max(-p.clip, v)));
    for (let d = 0; d < p.dirs; d++) {
      const reverse = p.direction === 'reverse' || d === 1;
      const [fAct, gAct, hAct] = p.activations.slice(3 * d, 3 * d + 3).map((a) => ACTIVATION[a]);
      for (let n = 0; n < batch; n++) {
        const h = new Float64Array(H);
        const c = new Float64Array(H);
        const s0 = stateAt(d, n);
        if (h0) for (let j = 0; j < H; j++) h[j] = numeric(h0)[s0 + j];
        if (c0) for (let j = 0; j < H; j++) c[j] = numeric(c0)[s0 + j];
        const length = L ? L[n] : seq;
        const gates = new Float64Array(4 * H);
        for (let s = 0; s < length; s++) {
          const t = reverse ? length - 1 - s : s;
          for (let g = 0; g < 4 * H; g++) {
            let acc = B ? B[d * 8 * H + g] + B[d * 8 * H + 4 * H + g] : 0;
            const wRow = (d * 4 * H + g) * I;
            for (let i = 0; i < I; i++) acc += xAt(t, n, i) * W[wRow + i];
            const rRow = (d * 4 * H + g) * H;
            for (let k = 0; k < H; k++) acc += h[k] * R[rRow + k];
            gates[g] = acc;
          }
          for (let j = 0; j < H; j++) {
            const peepI = P ? P[d * 3 * H + j] : 0;
            const peepO = P ? P[d * 3 * H + H + j] : 0;
            const peepF = P ? P[d * 3 * H + 2 * H + j] : 0;
            const ig = fAct(clip(gates[j] + peepI * c[j]));
            const fg = p.inputForget ? 1 - ig : fAct(clip(gates[2 * H + j] + peepF * c[j]));
            const cg = gAct(clip(gates[3 * H + j]));
            c[j] = fg * c[j] + ig * cg;
            const og = fAct(clip(gates[H + j] + peepO * c[j]));
            h[j] = og * hAct(c[j]);
            const yAt = p.layout === 0 ? ((t * p.dirs + d) * batch + n) * H : ((n * seq + t) * p.dirs + d) * H;
            Y[yAt + j] = h[j];
          }
        }
        for (let j = 0; j < H; j++) {
          Yh[s0 + j] = h[j];
          Yc[s0 + j] = c[j];
        }
      }
    }
    const y = p.layout === 0 ? [seq, p.dirs, batch, H] : [batch, seq, p.dirs, H];
    const state = p.layout === 0 ? [p.dirs, batch, H] : [batch, p.dirs, H];
    return [
      { dtype: x!.dtype, shape: y, data: Y },
      { dtype: x!.dtype, shape: state, data: Yh },
      { dtype: x!.dtype, shape: state, data: Yc },
    ] as TensorValue[];
  },
};

/**
 * GRU: W [dirs, 3H, input], R [dirs, 3H, H], B [dirs, 6H], gates in ONNX order z, r, h:
 *   z = σ(Xt·Wzᵀ + Ht-1·Rzᵀ + Wbz + Rbz)        r likewise
 *   h̃ = tanh(Xt·Whᵀ + (r⊙Ht-1)·Rhᵀ + Rbh + Wbh)            (linear_before_reset = 0)
 *   h̃ = tanh(Xt·Whᵀ + r⊙(Ht-1·Rhᵀ + Rbh) + Wbh)            (linear_before_reset = 1: what PyTorch exports)
 *   Ht = (1 − z)⊙h̃ + z⊙Ht-1
 * Outputs Y and Y_h as LSTM's; no cell, no peepholes.
 */
export function gruParams(node: Node, fail: (m: string) => never): LstmParams & { linearBeforeReset: boolean } {
  return { ...recurrentParams(node, fail, GRU_DEFAULT_ACTIVATIONS), linearBeforeReset: attrInt(node, 'linear_before_reset', 0) !== 0 };
}

const gru: OpDefinition = {
  op: 'GRU',
  infer(ctx) {
    const p = gruParams(ctx.node, (m) => ctx.fail(m));
    const { y, state } = recurrentShapes(ctx, p, 3);
    const dtype = ctx.dtype(0);
    return [
      { dtype, shape: y },
      { dtype, shape: state },
    ];
  },
  evaluate(node, inputs) {
    const fail = (m: string): never => {
      throw nodeError(node, 'shape.invalid', m);
    };
    const p = gruParams(node, fail);
    const [x, w, r, b, lens, h0] = inputs;
    if (!x || !w || !r) fail('X, W and R are required');
    const X = numeric(x!);
    const W = numeric(w!);
    const R = numeric(r!);
    const H = p.hidden || r!.shape[2];
    const I = x!.shape[2];
    const [seq, batch] = p.layout === 0 ? [x!.shape[0], x!.shape[1]] : [x!.shape[1], x!.shape[0]];
    const B = b ? numeric(b) : undefined;
    const L = lens ? Array.from(numeric(lens), Number) : undefined;
    const xAt = (t: number, n: number, i: number) => X[(p.layout === 0 ? t * batch + n : n * seq + t) * I + i];
    const stateAt = (d: number, n: number) => (p.layout === 0 ? d * batch + n : n * p.dirs + d) * H;
    const Y = new Float32Array(seq * p.dirs * batch * H);
    const Yh = new Float32Array(p.dirs * batch * H);
    const clip = (v: number) => (p.clip === undefined ? v : Math.min(p.clip, Math.max(-p.clip, v)));
    for (let d = 0; d < p.dirs; d++) {
      const reverse = p.direction === 'reverse' || d === 1;
      const [fAct, gAct] = p.activations.slice(2 * d, 2 * d + 2).map((a) => ACTIVATION[a]);
      for (let n = 0; n < batch; n++) {
        const h = new Float64Array(H);
        const s0 = stateAt(d, n);
        if (h0) for (let j = 0; j < H; j++) h[j] = numeric(h0)[s0 + j];
        const length = L ? L[n] : seq;
        const xw = new Float64Array(3 * H); // Xt·Wᵀ + Wb
        const hr = new Float64Array(3 * H); // Ht-1·Rᵀ + Rb
        for (let s = 0; s < length; s++) {
          const t = reverse ? length - 1 - s : s;
          for (let g = 0; g < 3 * H; g++) {
            let a = B ? B[d * 6 * H + g] : 0;
            for (let i = 0; i < I; i++) a += xAt(t, n, i) * W[(d * 3 * H + g) * I + i];
            xw[g] = a;
            let c = B ? B[d * 6 * H + 3 * H + g] : 0;
            for (let k = 0; k < H; k++) c += h[k] * R[(d * 3 * H + g) * H + k];
            hr[g] = c;
          }
          const z = Array.from({ length: H }, (_, j) => fAct(clip(xw[j] + hr[j])));
          const rg = Array.from({ length: H }, (_, j) => fAct(clip(xw[H + j] + hr[H + j])));
          const next = new Float64Array(H);
          for (let j = 0; j < H; j++) {
            let recurrent: number;
            if (p.linearBeforeReset) recurrent = rg[j] * hr[2 * H + j];
            else {
              recurrent = B ? B[d * 6 * H + 5 * H + j] : 0;
              for (let k = 0; k < H; k++) recurrent += rg[k] * h[k] * R[(d * 3 * H + 2 * H + j) * H + k];
            }
            const cand = gAct(clip(xw[2 * H + j] + recurrent));
            next[j] = (1 - z[j]) * cand + z[j] * h[j];
            const yAt = p.layout === 0 ? ((t * p.dirs + d) * batch + n) * H : ((n * seq + t) * p.dirs + d) * H;
            Y[yAt + j] = next[j];
          }
          h.set(next);
        }
        for (let j = 0; j < H; j++) Yh[s0 + j] = h[j];
      }
    }
    return [
      { dtype: x!.dtype, shape: p.layout === 0 ? [seq, p.dirs, batch, H] : [batch, seq, p.dirs, H], data: Y },
      { dtype: x!.dtype, shape: p.layout === 0 ? [p.dirs, batch, H] : [batch, p.dirs, H], data: Yh },
    ] as TensorValue[];
  },
};

registerOps([lstm, gru]);
