/**
 * Softmax/LogSoftmax over any axis, LpNormalization, ArgMax/ArgMin (kernels/axis_norm.cuh) and Instance/
 * GroupNormalization (kernels/group_norm.cuh) on the CUDA backend. No GPU here, so:
 *  - the op references agree with onnxruntime (every axis, opset 11 and 13 Softmax, zero norms, ties, both
 *    GroupNormalization opsets' scale shapes, rank 3–5 InstanceNormalization);
 *  - the kernels' index arithmetic is replayed in TypeScript on the view the lowering hands them ([outer, n, inner];
 *    the group norm's NCHW and channels-last offsets) and compared with the interpreter;
 *  - between NHWC convolutions InstanceNormalization reads the conv output as it is (channels_last, no transposes)
 *    and the optimized graph computes what the original does;
 *  - a model with every op compiles for sm90 and sm80 with no unsupported node, and nvcc compiles its model.cu.
 * The kernels' GPU cases are in compiler/backends/cuda/tests/kernel_check.cu (check_axis_norm, check_arg_reduce,
 * check_group_norm).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { axisNormPlan, isRowView } from '../../../compiler/backends/cuda/codegen/axis-norm-lowering';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { groupNormPlan } from '../../../compiler/backends/cuda/codegen/group-norm-lowering';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { Dim } from '../../../compiler/ir/symbolic';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { ModelSpec, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { nvccCompileGenerated, requireNvcc, gencodeOf } from '../../helpers/nvcc';

const f32 = (...dims: (number | string)[]) => input('float32', dims);

/** Random data; `ties`: small integers (many equal values, for the arg-reductions). */
function data(count: number, seed: number, ties = false): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => (ties ? Math.floor(random() * 5) - 2 : random() * 6 - 3));
}

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tolerance = 1e-5) => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tolerance * (1 + Math.abs(expected[i])),
      `${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`,
    );
};

interface Case {
  name: string;
  spec: ModelSpec;
  shape: number[];
  ties?: boolean;
  /** Zeroes these input elements (a zero norm). */
  zero?: number[];
}

const w = (dims: number[], seed: number) =>
  tensor(
    'float32',
    dims,
    data(
      dims.reduce((a, b) => a * b, 1),
      seed,
    ).map((v) => v / 3 + 1),
  );

const CASES: Case[] = [
  {
    name: 'Softmax axis 1 of [2,5,3,4] (opset 13)',
    spec: nodeModel('Softmax', [f32(2, 5, 3, 4)], { attrs: { axis: 1 }, opset: 13 }),
    shape: [2, 5, 3, 4],
  },
  { name: 'Softmax axis 0 of [6,7]', spec: nodeModel('Softmax', [f32(6, 7)], { attrs: { axis: 0 }, opset: 13 }), shape: [6, 7] },
  {
    name: 'Softmax opset 11, axis 1 of [2,3,4] (flattened)',
    spec: nodeModel('Softmax', [f32(2, 3, 4)], { attrs: { axis: 1 }, opset: 11 }),
    shape: [2, 3, 4],
  },
  { name: 'LogSoftmax last axis of [3,9]', spec: nodeModel('LogSoftmax', [f32(3, 9)], { opset: 13 }), shape: [3, 9] },
  {
    name: 'LogSoftmax axis -3 of [2,4,3,5]',
    spec: nodeModel('LogSoftmax', [f32(2, 4, 3, 5)], { attrs: { axis: -3 }, opset: 13 }),
    shape: [2, 4, 3, 5],
  },
  { name: 'LogSoftmax opset 11 default axis of [2,3,4]', spec: nodeModel('LogSoftmax', [f32(2, 3, 4)], { opset: 11 }), shape: [2, 3, 4] },
  {
    name: 'LpNormalization p=2 last axis, a zero row',
    spec: nodeModel('LpNormalization', [f32(4, 6)], { attrs: { axis: -1, p: 2 } }),
    shape: [4, 6],
    zero: [6, 7, 8, 9, 10, 11],
  },
  {
    name: 'LpNormalization p=1 axis 1 of [2,4,3], a zero column',
    spec: nodeModel('LpNormalization', [f32(2, 4, 3)], { attrs: { axis: 1, p: 1 } }),
    shape: [2, 4, 3],
    zero: [1, 4, 7, 10],
  },
  {
    name: 'ArgMax axis 1, keepdims 0, select_last_index 1 (ties)',
    spec: nodeModel('ArgMax', [f32(3, 8, 2)], { attrs: { axis: 1, keepdims: 0, select_last_index: 1 }, opset: 13 }),
    shape: [3, 8, 2],
    ties: true,
  },
  {
    name: 'ArgMax last axis, first of ties',
    spec: nodeModel('ArgMax', [f32(5, 9)], { attrs: { axis: -1 }, opset: 13 }),
    shape: [5, 9],
    ties: true,
  },
  {
    name: 'ArgMin axis 0, keepdims 1, select_last_index 1',
    spec: nodeModel('ArgMin', [f32(7, 3)], { attrs: { axis: 0, select_last_index: 1 }, opset: 13 }),
    shape: [7, 3],
    ties: true,
  },
  {
    name: 'ArgMax of long rows [4,300] (warp per row), select_last_index 1',
    spec: nodeModel('ArgMax', [f32(4, 300)], { attrs: { axis: 1, select_last_index: 1 }, opset: 13 }),
    shape: [4, 300],
    ties: true,
  },
  {
    name: 'ArgMin of long rows [3,1000] (warp per row)',
    spec: nodeModel('ArgMin', [f32(3, 1000)], { attrs: { axis: -1, keepdims: 0 }, opset: 13 }),
    shape: [3, 1000],
    ties: true,
  },
  {
    name: 'InstanceNormalization rank 3',
    spec: nodeModel('InstanceNormalization', [f32(2, 3, 10), w([3], 1), w([3], 2)]),
    shape: [2, 3, 10],
  },
  {
    name: 'InstanceNormalization rank 4',
    spec: nodeModel('InstanceNormalization', [f32(2, 4, 3, 5), w([4], 3), w([4], 4)]),
    shape: [2, 4, 3, 5],
  },
  {
    name: 'InstanceNormalization rank 5, epsilon 0.01',
    spec: nodeModel('InstanceNormalization', [f32(1, 2, 3, 2, 4), w([2], 5), w([2], 6)], { attrs: { epsilon: 0.01 } }),
    shape: [1, 2, 3, 2, 4],
  },
  {
    name: 'GroupNormalization opset 18 (per-group scale, bias)',
    spec: nodeModel('GroupNormalization', [f32(2, 6, 4, 3), w([3], 7), w([3], 8)], { attrs: { num_groups: 3 }, opset: 18 }),
    shape: [2, 6, 4, 3],
  },
  {
    name: 'GroupNormalization opset 21 (per-channel scale, bias)',
    spec: nodeModel('GroupNormalization', [f32(2, 6, 5), w([6], 9), w([6], 10)], { attrs: { num_groups: 2 }, opset: 21 }),
    shape: [2, 6, 5],
  },
];

function inputOf(c: Case, seed = 7): TensorValue {
  const values = data(
    c.shape.reduce((a, b) => a * b, 1),
    seed,
    c.ties,
  );
  for (const i of c.zero ?? []) values[i] = 0;
  return makeTensor('float32', c.shape, values);
}

/** axis_norm.cuh on the [outer, n, inner] view: the rows kernel (inner 1) or the column kernel, as written. */
function replayAxisNorm(op: string, p: number, x: ArrayLike<number>, outer: number, n: number, inner: number): number[] {
  const y = new Array<number>(x.length).fill(Number.NaN);
  const softmax = op === 'Softmax' || op === 'LogSoftmax';
  for (let column = 0; column < outer * inner; column++) {
    const o = Math.floor(column / inner);
    const i = column % inner;
    const base = o * n * inner + i;
    let max = softmax ? Number.NEGATIVE_INFINITY : 0;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const v = x[base + k * inner];
      if (softmax && v > max) {
        sum *= Math.exp(max - v);
        max = v;
      }
      sum += softmax ? Math.exp(v - max) : p === 1 ? Math.abs(v) : v * v;
    }
    for (let k = 0; k < n; k++) {
      const v = x[base + k * inner];
      y[base + k * inner] =
        op === 'Softmax'
          ? Math.exp(v - max) / sum
          : op === 'LogSoftmax'
            ? v - max - Math.log(sum)
            : sum === 0
              ? 0
              : p === 1
                ? v / sum
                : v / Math.sqrt(sum);
    }
  }
  return y;
}

/** axis_norm.cuh arg_better: (v, k) beats (best, at). */
const argBetter = (isMax: boolean, last: boolean, v: number, k: number, best: number, at: number) =>
  v === best ? (last ? k > at : k < at) : isMax ? v > best : v < best;

/** axis_norm.cuh arg_reduce_rows_kernel (inner 1, n >= 256): lanes' strided scans, then the shfl_xor butterfly. */
function replayArgRows(isMax: boolean, last: boolean, x: ArrayLike<number>, outer: number, n: number, warp: number): number[] {
  const y: number[] = [];
  for (let row = 0; row < outer; row++) {
    let lanes = Array.from({ length: warp }, (_, lane) => {
      let best = x[row * n + lane];
      let at = lane;
      for (let k = lane + warp; k < n; k += warp) if (argBetter(isMax, last, x[row * n + k], k, best, at)) [best, at] = [x[row * n + k], k];
      return { best, at };
    });
    for (let offset = warp / 2; offset > 0; offset >>= 1)
      lanes = lanes.map((mine, lane) => {
        const other = lanes[lane ^ offset];
        return argBetter(isMax, last, other.best, other.at, mine.best, mine.at) ? other : mine;
      });
    assert.ok(
      lanes.every((l) => l.at === lanes[0].at),
      'every lane ends with the same winner',
    );
    y.push(lanes[0].at);
  }
  return y;
}

/** axis_norm.cuh arg_reduce_kernel. */
function replayArgReduce(isMax: boolean, last: boolean, x: ArrayLike<number>, outer: number, n: number, inner: number): number[] {
  const y: number[] = [];
  for (let column = 0; column < outer * inner; column++) {
    const o = Math.floor(column / inner);
    const i = column % inner;
    const base = o * n * inner + i;
    let best = x[base];
    let at = 0;
    for (let k = 1; k < n; k++) {
      const v = x[base + k * inner];
      if (isMax ? v > best || (last && v === best) : v < best || (last && v === best)) {
        best = v;
        at = k;
      }
    }
    y.push(at);
  }
  return y;
}

/** group_norm.cuh: per (n, g) block, group_norm_offset for each element index, two-pass statistics. */
function replayGroupNorm(
  x: ArrayLike<number>,
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
  a: { batch: number; channels: number; spatial: number; groups: number; channelsLast: boolean; affinePerGroup: boolean; eps: number },
): number[] {
  const y = new Array<number>(x.length).fill(Number.NaN);
  const perGroup = a.channels / a.groups;
  const count = perGroup * a.spatial;
  const offset = (n: number, g: number, idx: number): [number, number] => {
    if (a.channelsLast) {
      const s = Math.floor(idx / perGroup);
      const channel = g * perGroup + (idx % perGroup);
      return [(n * a.spatial + s) * a.channels + channel, channel];
    }
    return [(n * a.channels + g * perGroup) * a.spatial + idx, g * perGroup + Math.floor(idx / a.spatial)];
  };
  for (let block = 0; block < a.batch * a.groups; block++) {
    const n = Math.floor(block / a.groups);
    const g = block % a.groups;
    let sum = 0;
    for (let idx = 0; idx < count; idx++) sum += x[offset(n, g, idx)[0]];
    const mean = sum / count;
    let squares = 0;
    for (let idx = 0; idx < count; idx++) squares += (x[offset(n, g, idx)[0]] - mean) ** 2;
    const inv = 1 / Math.sqrt(squares / count + a.eps);
    for (let idx = 0; idx < count; idx++) {
      const [at, channel] = offset(n, g, idx);
      const p = a.affinePerGroup ? g : channel;
      y[at] = (x[at] - mean) * inv * scale[p] + bias[p];
    }
  }
  return y;
}

const concrete = (dims: Dim[]) => dims.reduce<number>((p, d) => p * (d as number), 1);

describe('cuda backend: Softmax/LogSoftmax any axis, LpNormalization, ArgMax/ArgMin, Instance/GroupNormalization', function () {
  this.timeout(600_000);

  describe('the reference agrees with onnxruntime', () => {
    for (const c of CASES)
      it(c.name, async () => {
        const x = inputOf(c);
        const m = inferModel(c.spec);
        assert.deepEqual(m.errors, []);
        const [ours] = runGraph(m.graph, [x]);
        const session = await ort.InferenceSession.create(buildModel(c.spec));
        const theirs = (await session.run({ in0: new ort.Tensor('float32', Float32Array.from(numeric(x)), c.shape) })).out0;
        assert.deepEqual(ours.shape, [...theirs.dims]);
        if (ours.dtype === 'int64') assert.deepEqual(Array.from(numeric(ours)), Array.from(theirs.data as BigInt64Array, Number));
        else close(numeric(ours), theirs.data as Float32Array, c.name, 2e-5);
      });
  });

  describe("the kernels' index arithmetic on the lowering's view computes the interpreter's result", () => {
    for (const c of CASES)
      it(c.name, () => {
        const m = inferModel(c.spec);
        const node = m.graph.nodes[m.graph.nodes.length - 1];
        const ctx = CodegenContext.forChecks(m.graph);
        const x = inputOf(c, 13);
        const [expected] = runGraph(m.graph, [x]);
        const xd = numeric(x);
        let actual: number[];
        if (node.op === 'InstanceNormalization' || node.op === 'GroupNormalization') {
          const p = groupNormPlan(ctx, node);
          const scale = numeric(m.graph.tensor(node.inputs[1]).value!);
          const bias = numeric(m.graph.tensor(node.inputs[2]).value!);
          const eps = node.attrs.epsilon?.type === 'float' ? (node.attrs.epsilon.value as number) : 1e-5;
          const args = { batch: p.batch as number, channels: p.channels, spatial: concrete(p.spatial), groups: p.groups, eps };
          actual = replayGroupNorm(xd, scale, bias, { ...args, channelsLast: p.channelsLast, affinePerGroup: p.affinePerGroup });
          assert.equal(p.affinePerGroup, scale.length !== p.channels);
        } else {
          const view = axisNormPlan(ctx, node);
          const [outer, n, inner] = [view.outer, view.n, view.inner].map(concrete);
          assert.equal(outer * n * inner, xd.length);
          if (node.op === 'ArgMax' || node.op === 'ArgMin') {
            const last = node.attrs.select_last_index?.value === 1;
            actual = replayArgReduce(node.op === 'ArgMax', last, xd, outer, n, inner);
            // long innermost axes take the warp-per-row kernel: 32 lanes (CUDA) or 64 (a CDNA wavefront)
            if (inner === 1 && n >= 256)
              for (const warp of [32, 64])
                close(replayArgRows(node.op === 'ArgMax', last, xd, outer, n, warp), numeric(expected), `${c.name}, warp ${warp}`, 0);
          } else {
            const p = node.attrs.p?.value === 1 ? 1 : 2;
            actual = replayAxisNorm(node.op, p, xd, outer, n, inner);
            if (node.op === 'Softmax' && isRowView(view)) assert.equal(inner, 1); // normalization.cuh's row kernel
          }
        }
        close(actual, numeric(expected), c.name, 1e-5);
      });

    it('channels-last group norm offsets (the layout pass form) compute the NCHW result, per-group and per-channel affine', () => {
      for (const [channels, groups, perGroupAffine] of [
        [6, 3, true],
        [6, 2, false],
        [4, 4, false],
      ] as const) {
        const [batch, h, wd] = [2, 3, 5];
        const spec = nodeModel(
          'GroupNormalization',
          [f32(batch, channels, h, wd), w([perGroupAffine ? groups : channels], 21), w([perGroupAffine ? groups : channels], 22)],
          { attrs: { num_groups: groups }, opset: perGroupAffine ? 18 : 21 },
        );
        const m = inferModel(spec);
        const x = makeTensor('float32', [batch, channels, h, wd], data(batch * channels * h * wd, 5));
        const [nchw] = runGraph(m.graph, [x]);
        // x as [N, H, W, C]
        const xd = numeric(x);
        const nhwc = new Array<number>(xd.length);
        for (let n = 0; n < batch; n++)
          for (let c = 0; c < channels; c++)
            for (let s = 0; s < h * wd; s++) nhwc[(n * h * wd + s) * channels + c] = xd[(n * channels + c) * h * wd + s];
        const node = m.graph.nodes[0];
        node.attrs.channels_last = { type: 'int', value: 1 };
        m.graph.tensor(node.inputs[0]).shape = [batch, h, wd, channels];
        m.graph.tensor(node.outputs[0]).shape = [batch, h, wd, channels];
        const ctx = CodegenContext.forChecks(m.graph);
        const p = groupNormPlan(ctx, node);
        assert.equal(p.channelsLast, true);
        assert.equal(p.affinePerGroup, perGroupAffine);
        const scale = numeric(m.graph.tensor(node.inputs[1]).value!);
        const bias = numeric(m.graph.tensor(node.inputs[2]).value!);
        const args = { batch, channels, spatial: h * wd, groups, channelsLast: true, affinePerGroup: perGroupAffine, eps: 1e-5 };
        const replayed = replayGroupNorm(nhwc, scale, bias, args);
        // and the reference itself on channels_last data
        const [reference] = runGraph(m.graph, [makeTensor('float32', [batch, h, wd, channels], nhwc)]);
        close(numeric(reference), replayed, 'reference channels_last vs replay', 1e-5);
        const nd = numeric(nchw);
        for (let n = 0; n < batch; n++)
          for (let c = 0; c < channels; c++)
            for (let s = 0; s < h * wd; s++) {
              const want = nd[(n * channels + c) * h * wd + s];
              const got = replayed[(n * h * wd + s) * channels + c];
              assert.ok(Math.abs(got - want) <= 1e-5 * (1 + Math.abs(want)), `n${n} c${c} s${s}: ${got} vs ${want}`);
            }
      }
    });

    it('refuses what the kernels do not take, with the reason', () => {
      const m = inferModel(nodeModel('LpNormalization', [input('float32', [2, 3])], { attrs: { p: 2 } }));
      const node = m.graph.nodes[0];
      node.attrs.p = { type: 'int', value: 3 };
      assert.throws(() => axisNormPlan(CodegenContext.forChecks(m.graph), node), /p = 3/);
      const b = inferModel(nodeModel('ArgMax', [input('bool', [2, 3])], { attrs: { axis: 1 } }));
      assert.throws(() => axisNormPlan(CodegenContext.forChecks(b.graph), b.graph.nodes[0]), /bool/);
    });
  });

  /** Conv → InstanceNorm → Relu → Conv → LogSoftmax(axis 1) and ArgMax(axis 1): the layout pass's NHWC data throughout. */
  function nhwcModel(): ModelSpec {
    const C = 8;
    return {
      opset: 13,
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, 12, 10] }],
      initializers: [
        { ...w([C, 3, 3, 3], 31), name: 'w1' },
        { ...w([C, C, 1, 1], 32), name: 'w2' },
        { ...w([C], 33), name: 'scale' },
        { ...w([C], 34), name: 'bias' },
      ],
      nodes: [
        { op: 'Conv', name: 'conv1', inputs: ['x', 'w1'], outputs: ['c1'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
        { op: 'InstanceNormalization', name: 'norm', inputs: ['c1', 'scale', 'bias'], outputs: ['n1'] },
        { op: 'Relu', name: 'relu', inputs: ['n1'], outputs: ['r1'] },
        { op: 'Conv', name: 'conv2', inputs: ['r1', 'w2'], outputs: ['c2'], attrs: { kernel_shape: [1, 1] } },
        { op: 'LogSoftmax', name: 'logits', inputs: ['c2'], outputs: ['p'], attrs: { axis: 1 } },
        { op: 'ArgMax', name: 'classes', inputs: ['c2'], outputs: ['y'], attrs: { axis: 1, keepdims: 0 } },
      ],
      outputs: ['p', 'y'],
    };
  }

  it('between NHWC convolutions: InstanceNormalization reads the conv output channels-last, no transposes; same result', () => {
    const spec = nhwcModel();
    const result = optimizeImported(importOnnxBytes(buildModel(spec)), 'm.onnx', { validate: true });
    assert.deepEqual(
      result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const graph = result.graph;
    const norm = graph.nodes.find((n) => n.op === 'InstanceNormalization')!;
    assert.equal(norm.attrs.channels_last?.value, 1);
    const producers = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    assert.equal(producers.get(norm.inputs[0])?.op, 'conv2d');
    // transposes: the input's NCHW→NHWC and the graph output p back to NCHW, nothing around the normalization
    const transposes = graph.nodes.filter((n) => n.op === 'Transpose' || n.op === 'transpose_pad');
    assert.deepEqual(
      transposes.map((t) => (graph.inputs.includes(t.inputs[0]) ? 'input' : graph.outputs.includes(t.outputs[0]) ? 'output' : t.inputs[0])),
      ['input', 'output'],
    );
    // LogSoftmax and ArgMax follow the NHWC data: the channel axis is the last one
    for (const op of ['LogSoftmax', 'ArgMax']) assert.equal(graph.nodes.find((n) => n.op === op)!.attrs.axis?.value, 3, op);
    const x = makeTensor('float32', [2, 3, 12, 10], data(2 * 3 * 12 * 10, 41));
    const original = importOnnxBytes(buildModel(spec));
    inferShapes(original.graph);
    const expected = runGraph(original.graph, [x]);
    const actual = runGraph(graph, [x]);
    close(numeric(actual[0]), numeric(expected[0]), 'log-probabilities', 1e-4);
    assert.deepEqual(Array.from(numeric(actual[1])), Array.from(numeric(expected[1])));
  });

  /** Every op of this file in one model (Softmax over a non-last axis, both GroupNormalization forms, torch's old GroupNorm). */
  function allOpsModel(): ModelSpec {
    return {
      opset: 18,
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 6, 4, 5] }],
      initializers: [
        { ...w([6], 51), name: 's6' },
        { ...w([6], 52), name: 'b6' },
        { ...w([3], 53), name: 's3' },
        { ...w([3], 54), name: 'b3' },
        { ...w([6, 1, 1], 55), name: 'g611' },
        { ...tensor('int64', [3], [0, 3, -1]), name: 'grouped' },
        { ...tensor('int64', [4], [0, 6, 4, 5]), name: 'back' },
      ],
      nodes: [
        { op: 'InstanceNormalization', name: 'inorm', inputs: ['x', 's6', 'b6'], outputs: ['a'] },
        { op: 'GroupNormalization', name: 'gnorm', inputs: ['a', 's3', 'b3'], outputs: ['b'], attrs: { num_groups: 3 } },
        // torch.onnx GroupNorm before opset 18: Reshape → InstanceNormalization → Reshape → Mul → Add
        { op: 'Reshape', name: 'r1', inputs: ['b', 'grouped'], outputs: ['b1'] },
        { op: 'InstanceNormalization', name: 'tnorm', inputs: ['b1', 's3', 'b3'], outputs: ['b2'] },
        { op: 'Reshape', name: 'r2', inputs: ['b2', 'back'], outputs: ['b3x'] },
        { op: 'Mul', name: 'mul', inputs: ['b3x', 'g611'], outputs: ['b4'] },
        { op: 'Softmax', name: 'sm', inputs: ['b4'], outputs: ['c'], attrs: { axis: 1 } },
        { op: 'LogSoftmax', name: 'lsm', inputs: ['c'], outputs: ['d'], attrs: { axis: 2 } },
        { op: 'LpNormalization', name: 'lp', inputs: ['d'], outputs: ['e'], attrs: { axis: 1, p: 1 } },
        { op: 'ArgMin', name: 'am', inputs: ['e'], outputs: ['f'], attrs: { axis: 2, select_last_index: 1 } },
      ],
      outputs: ['e', 'f'],
    };
  }

  it('the all-ops model: the optimized graph computes what onnxruntime does', async () => {
    const spec = allOpsModel();
    const result = optimizeImported(importOnnxBytes(buildModel(spec)), 'm.onnx', { validate: true });
    const x = makeTensor('float32', [2, 6, 4, 5], data(240, 61));
    const [e, f] = runGraph(result.graph, [x]);
    const session = await ort.InferenceSession.create(buildModel(spec));
    const theirs = await session.run({ x: new ort.Tensor('float32', Float32Array.from(numeric(x)), [2, 6, 4, 5]) });
    close(numeric(e), theirs.e.data as Float32Array, 'e', 1e-4);
    assert.deepEqual(Array.from(numeric(f)), Array.from(theirs.f.data as BigInt64Array, Number));
  });

  function compileAll(target: string, spec: ModelSpec) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-axis-norm-'));
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, buildModel(spec));
    const out = path.join(dir, 'out');
    return { out, result: compileModel(file, { out, target, maxBatch: 8 }) };
  }

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: every op compiles with no unsupported node onto axis_norm.cuh / group_norm.cuh; nvcc compiles model.cu`, function () {
      for (const spec of [allOpsModel(), nhwcModel()]) {
        const { out, result } = compileAll(target, spec);
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        const source = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
        for (const launch of ['launch_group_norm', 'launch_axis_norm', 'launch_arg_reduce'])
          assert.ok(source.includes(`ait::kernels::${launch}(`), launch);
      }
      requireNvcc(this);
      const { out } = compileAll(target, allOpsModel());
      nvccCompileGenerated(out, ['src/model.cu'], gencodeOf(target));
    });
});
