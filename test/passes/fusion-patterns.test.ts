/**
 * Each fusion pattern on a small graph: what must fuse does (and computes the same thing, by the interpreter),
 * and what must not fuse stays apart (an intermediate with a second reader, a broadcast that changes the shape).
 */
import * as assert from 'node:assert/strict';
import '../../compiler/ops';
import { optimizeImported } from '../../compiler/compile';
import { Graph, Node, attrInts } from '../../compiler/ir/graph';
import { seededRandom } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { epilogueOf } from '../../compiler/ops/fused';
import { isKernel } from '../../compiler/passes/cost';
import { ModelSpec, TensorSpec, attr, buildModel } from '../helpers/onnx-builder';
import { optimizeAndCompare as compareOptimized } from '../helpers/optimize-compare';

const rand = seededRandom(42);
function randomValues(n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}
function weight(name: string, dims: number[], scale?: number): TensorSpec & { name: string } {
  const n = dims.reduce((a, b) => a * b, 1);
  return { name, dtype: 'float32', dims, values: randomValues(n, scale ?? 1 / Math.sqrt(n / dims[0])) };
}
function constant(name: string, dims: number[], values: number[]): TensorSpec & { name: string } {
  return { name, dtype: 'float32', dims, values };
}
function ints(name: string, values: number[]): TensorSpec & { name: string } {
  return { name, dtype: 'int64', dims: [values.length], values };
}

/** Optimizes the model (graph validated after every pass) and checks it against the original on random inputs. */
function optimizeAndCompare(spec: ModelSpec, inputShapes: number[][]): Graph {
  return compareOptimized(spec, inputShapes, (n) => randomValues(n));
}

const kernelOps = (g: Graph) => g.nodes.filter((n) => isKernel(g, n)).map((n) => n.op);
const nodesOf = (g: Graph, op: string): Node[] => g.nodes.filter((n) => n.op === op);

const conv = (name: string, x: string, w: string, b: string | undefined, y: string) => ({
  op: 'Conv',
  name,
  inputs: b ? [x, w, b] : [x, w],
  outputs: [y],
  attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] },
});

describe('fusion patterns', function () {
  this.timeout(300_000);
  it('conv + bias + relu, and conv + bias + residual add + relu, with only the model input/output converted to NHWC', () => {
    const g = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: ['N', 8, 6, 6] }],
        outputs: ['y'],
        initializers: [weight('w1', [8, 8, 3, 3]), weight('b1', [8], 0.1), weight('w2', [8, 8, 3, 3]), weight('b2', [8], 0.1)],
        nodes: [
          conv('conv1', 'x', 'w1', 'b1', 'c1'),
          { op: 'Relu', inputs: ['c1'], outputs: ['r1'] },
          conv('conv2', 'r1', 'w2', 'b2', 'c2'),
          { op: 'Add', inputs: ['c2', 'x'], outputs: ['s'] },
          { op: 'Relu', inputs: ['s'], outputs: ['y'] },
        ],
      },
      [[2, 8, 6, 6]],
    );
    const convs = nodesOf(g, 'conv2d');
    assert.deepEqual(
      convs.map((c) => epilogueOf(c)),
      [
        ['bias', 'relu'],
        ['bias', 'residual_add', 'relu'],
      ],
    );
    // the residual input is NHWC too: one transpose of x feeds both conv1 and the residual
    assert.deepEqual(kernelOps(g).sort(), ['Transpose', 'Transpose', 'conv2d', 'conv2d']);
  });

  it('does not fuse an activation when the conv output has a second reader', () => {
    const g = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: [1, 4, 5, 5] }],
        outputs: ['y1', 'y2'],
        initializers: [weight('w', [4, 4, 3, 3]), weight('b', [4], 0.1)],
        nodes: [
          conv('conv', 'x', 'w', 'b', 'c'),
          { op: 'Relu', inputs: ['c'], outputs: ['y1'] },
          { op: 'Sigmoid', inputs: ['c'], outputs: ['y2'] },
        ],
      },
      [[1, 4, 5, 5]],
    );
    assert.deepEqual(epilogueOf(nodesOf(g, 'conv2d')[0]), ['bias']);
  });

  it('does not take an add whose operand broadcasts (a shape change) as the residual', () => {
    const g = optimizeAndCompare(
      {
        inputs: [
          { name: 'x', dtype: 'float32', dims: [1, 4, 5, 5] },
          { name: 'gate', dtype: 'float32', dims: [1, 4, 1, 1] },
        ],
        outputs: ['y'],
        initializers: [weight('w', [4, 4, 3, 3])],
        nodes: [conv('conv', 'x', 'w', undefined, 'c'), { op: 'Add', inputs: ['c', 'gate'], outputs: ['y'] }],
      },
      [
        [1, 4, 5, 5],
        [1, 4, 1, 1],
      ],
    );
    assert.ok(!epilogueOf(nodesOf(g, 'conv2d')[0]).includes('residual_add'));
  });

  it('folds BatchNormalization into the conv, with weights present or absent', () => {
    const bn = (present: boolean): ModelSpec => ({
      inputs: [{ name: 'x', dtype: 'float32', dims: [1, 4, 5, 5] }],
      outputs: ['y'],
      initializers: present
        ? [
            weight('w', [4, 4, 3, 3]),
            constant('g', [4], [1, 0.5, 2, 1.5]),
            constant('be', [4], [0.1, 0, -0.1, 0.2]),
            constant('m', [4], [0, 0.1, -0.2, 0.3]),
            constant('v', [4], [1, 0.5, 2, 1.5]),
          ]
        : ['w', 'g', 'be', 'm', 'v'].map((name) => ({
            name,
            dtype: 'float32' as const,
            dims: name === 'w' ? [4, 4, 3, 3] : [4],
            external: 'absent.bin',
          })),
      nodes: [
        conv('conv', 'x', 'w', undefined, 'c'),
        { op: 'BatchNormalization', inputs: ['c', 'g', 'be', 'm', 'v'], outputs: ['b'], attrs: { epsilon: attr.float(1e-5) } },
        { op: 'Relu', inputs: ['b'], outputs: ['y'] },
      ],
    });
    const g = optimizeAndCompare(bn(true), [[1, 4, 5, 5]]);
    assert.deepEqual(epilogueOf(nodesOf(g, 'conv2d')[0]), ['bias', 'relu']);
    assert.equal(nodesOf(g, 'BatchNormalization').length, 0);
    // absent weights: the same fold, computed by weight preparation when the weights are bound
    const absent = optimizeImported(importOnnxBytes(buildModel(bn(false))), 'absent.onnx', { validate: true });
    assert.deepEqual(epilogueOf(nodesOf(absent.graph, 'conv2d')[0]), ['bias', 'relu']);
    assert.equal(nodesOf(absent.graph, 'BatchNormalization').length, 0);
  });

  it('gemm + bias + exact GELU (Erf form), and gemm + bias + residual add', () => {
    const g = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 5, 16] }],
        outputs: ['y'],
        initializers: [
          weight('w1', [16, 32]),
          weight('b1', [32], 0.1),
          weight('w2', [32, 16]),
          weight('b2', [16], 0.1),
          constant('sqrt2', [], [Math.SQRT2]),
          constant('one', [], [1]),
          constant('half', [], [0.5]),
        ],
        nodes: [
          { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['m1'] },
          { op: 'Add', inputs: ['m1', 'b1'], outputs: ['h'] },
          { op: 'Div', inputs: ['h', 'sqrt2'], outputs: ['d'] },
          { op: 'Erf', inputs: ['d'], outputs: ['e'] },
          { op: 'Add', inputs: ['e', 'one'], outputs: ['e1'] },
          { op: 'Mul', inputs: ['h', 'half'], outputs: ['hh'] },
          { op: 'Mul', inputs: ['hh', 'e1'], outputs: ['gelu'] },
          { op: 'MatMul', inputs: ['gelu', 'w2'], outputs: ['m2'] },
          { op: 'Add', inputs: ['m2', 'b2'], outputs: ['o'] },
          { op: 'Add', inputs: ['o', 'x'], outputs: ['y'] },
        ],
      },
      [[2, 5, 16]],
    );
    assert.deepEqual(nodesOf(g, 'gemm').map(epilogueOf), [
      ['bias', 'gelu'],
      ['bias', 'residual_add'],
    ]);
    assert.equal(kernelOps(g).length, 2);
  });

  it('layernorm from its decomposed form', () => {
    const g = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: [2, 3, 8] }],
        outputs: ['y'],
        initializers: [
          ints('axes', [-1]),
          constant('two', [], [2]),
          constant('eps', [], [1e-5]),
          weight('gamma', [8], 1),
          weight('beta', [8], 0.1),
        ],
        opset: 18,
        nodes: [
          { op: 'ReduceMean', inputs: ['x', 'axes'], outputs: ['mean'] },
          { op: 'Sub', inputs: ['x', 'mean'], outputs: ['d'] },
          { op: 'Pow', inputs: ['d', 'two'], outputs: ['d2'] },
          { op: 'ReduceMean', inputs: ['d2', 'axes'], outputs: ['var'] },
          { op: 'Add', inputs: ['var', 'eps'], outputs: ['ve'] },
          { op: 'Sqrt', inputs: ['ve'], outputs: ['std'] },
          { op: 'Div', inputs: ['d', 'std'], outputs: ['n'] },
          { op: 'Mul', inputs: ['n', 'gamma'], outputs: ['ng'] },
          { op: 'Add', inputs: ['ng', 'beta'], outputs: ['y'] },
        ],
      },
      [[2, 3, 8]],
    );
    assert.deepEqual(kernelOps(g), ['layernorm']);
  });

  for (const split of ['Gather', 'Split'] as const) {
    it(`multi-head attention with the head split/merge absorbed (q/k/v by ${split === 'Gather' ? 'Slice+Squeeze' : 'Split+Squeeze'})`, () => {
      const [B, S, H, D] = [2, 5, 2, 4];
      const unbind =
        split === 'Gather'
          ? ['q', 'k', 'v'].flatMap((t, i) => [
              { op: 'Slice', inputs: ['p', `s${i}`, `e${i}`, 'ax0'], outputs: [`${t}5`] },
              { op: 'Squeeze', inputs: [`${t}5`, 'ax0'], outputs: [t] },
            ])
          : [
              { op: 'Split', inputs: ['p', 'ones3'], outputs: ['q5', 'k5', 'v5'], attrs: { axis: 0 } },
              ...['q', 'k', 'v'].map((t) => ({ op: 'Squeeze', inputs: [`${t}5`, 'ax0'], outputs: [t] })),
            ];
      const g = optimizeAndCompare(
        {
          inputs: [{ name: 'qkv', dtype: 'float32', dims: ['B', S, 3 * H * D] }],
          outputs: ['y'],
          initializers: [
            ints('split_shape', [0, S, 3, H, D]),
            ints('ax0', [0]),
            ints('s0', [0]),
            ints('e0', [1]),
            ints('s1', [1]),
            ints('e1', [2]),
            ints('s2', [2]),
            ints('e2', [3]),
            ints('ones3', [1, 1, 1]),
            ints('merge_shape', [0, S, H * D]),
            constant('scale', [], [Math.sqrt(1 / Math.sqrt(D))]),
          ],
          nodes: [
            { op: 'Reshape', inputs: ['qkv', 'split_shape'], outputs: ['r'] },
            { op: 'Transpose', inputs: ['r'], outputs: ['p'], attrs: { perm: [2, 0, 3, 1, 4] } },
            ...unbind,
            { op: 'Mul', inputs: ['q', 'scale'], outputs: ['qs'] },
            { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
            { op: 'Mul', inputs: ['kt', 'scale'], outputs: ['kts'] },
            { op: 'MatMul', inputs: ['qs', 'kts'], outputs: ['scores'] },
            { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
            { op: 'MatMul', inputs: ['probs', 'v'], outputs: ['o'] },
            { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
            { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['y'] },
          ],
        },
        [[B, S, 3 * H * D]],
      );
      assert.deepEqual(kernelOps(g), ['attention']);
      const att = nodesOf(g, 'attention')[0];
      assert.equal(att.attrs.num_heads.value, H);
      assert.ok(Math.abs((att.attrs.scale.value as number) - 1 / Math.sqrt(D)) < 1e-6);
    });
  }

  describe('masked attention', () => {
    const [B, S, H, D] = [2, 6, 2, 4];
    const HD = H * D;
    /** x [B,S,HD] → three projections → [B,H,S,D] heads (k as [B,H,D,S]); scores = q·kᵀ / √D → `scores`. */
    const separateHeads = (): ModelSpec['nodes'] => [
      ...['q', 'k', 'v'].flatMap((t) => [
        { op: 'MatMul', inputs: ['x', `w${t}`], outputs: [`${t}_lin`] },
        { op: 'Reshape', inputs: [`${t}_lin`, 'heads_shape'], outputs: [`${t}_4`] },
        { op: 'Transpose', inputs: [`${t}_4`], outputs: [`${t}_h`], attrs: { perm: t === 'k' ? [0, 2, 3, 1] : [0, 2, 1, 3] } },
      ]),
      { op: 'MatMul', inputs: ['q_h', 'k_h'], outputs: ['qk'] },
      { op: 'Div', inputs: ['qk', 'sqrt_d'], outputs: ['scores'] },
    ];
    const separateInitializers = () => [
      weight('wq', [HD, HD]),
      weight('wk', [HD, HD]),
      weight('wv', [HD, HD]),
      ints('heads_shape', [0, S, H, D]),
      ints('merge_shape', [0, S, HD]),
      constant('sqrt_d', [], [Math.sqrt(D)]),
      constant('zero', [], [0]),
      constant('neg_inf', [], [-Infinity]),
    ];
    /** probs (or `guarded`) · v → [B,S,HD] */
    const merge = (probs: string): ModelSpec['nodes'] => [
      { op: 'MatMul', inputs: [probs, 'v_h'], outputs: ['o'] },
      { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['y'] },
    ];
    const single = (g: Graph): Node => {
      assert.deepEqual(
        kernelOps(g).filter((op) => op !== 'gemm' && op !== 'elementwise' && op !== 'Where'),
        ['attention'],
      );
      assert.equal(nodesOf(g, 'Softmax').length + nodesOf(g, 'MatMul').length, 0);
      return nodesOf(g, 'attention')[0];
    };

    it('BERT key mask: Where(mask == 0, -inf, scores), softmax, Where(IsNaN) guard; a fully masked batch gives 0 as the guard does', () => {
      let call = 0;
      // input 0: x; input 1: the key mask, 1/0 per key: batch 0 keeps keys 0, 2, 3; batch 1 masks every key
      const inputs = (n: number) => (call++ === 0 ? randomValues(n) : [1, 0, 1, 1, 0, 0, ...new Array<number>(S).fill(0)].slice(0, n));
      const g = compareOptimized(
        {
          inputs: [
            { name: 'x', dtype: 'float32', dims: ['B', S, HD] },
            { name: 'mask', dtype: 'float32', dims: ['B', S] },
          ],
          outputs: ['y'],
          initializers: [...separateInitializers(), ints('mask_shape', [0, 1, 1, S])],
          nodes: [
            ...separateHeads(),
            { op: 'Reshape', inputs: ['mask', 'mask_shape'], outputs: ['mask4'] },
            { op: 'Equal', inputs: ['mask4', 'zero'], outputs: ['masked'] },
            { op: 'Where', inputs: ['masked', 'neg_inf', 'scores'], outputs: ['masked_scores'] },
            { op: 'Softmax', inputs: ['masked_scores'], outputs: ['probs'], attrs: { axis: -1 } },
            { op: 'IsNaN', inputs: ['probs'], outputs: ['nan'] },
            { op: 'Where', inputs: ['nan', 'zero', 'probs'], outputs: ['guarded'] },
            ...merge('guarded'),
          ],
        },
        [
          [B, S, HD],
          [B, S],
        ],
        inputs,
      );
      const att = single(g);
      // the three projections over x are one GEMM (passes/merge-projections.ts): the packed layout
      assert.equal(att.attrs.layout.value, 'packed');
      assert.equal(att.attrs.zero_masked_rows.value, 1);
      assert.equal(att.inputs.length, 2);
      assert.deepEqual(g.tensor(att.inputs[1]).shape!.map(String), ['B', '1', '1', String(S)]);
    });

    it('BERT additive mask [B,1,1,S] (HF (1 - mask)·-1e4 form) as a bias', () => {
      const g = optimizeAndCompare(
        {
          inputs: [
            { name: 'x', dtype: 'float32', dims: ['B', S, HD] },
            { name: 'amask', dtype: 'float32', dims: ['B', 1, 1, S] },
          ],
          outputs: ['y'],
          initializers: separateInitializers(),
          nodes: [
            ...separateHeads(),
            { op: 'Add', inputs: ['amask', 'scores'], outputs: ['biased'] },
            { op: 'Softmax', inputs: ['biased'], outputs: ['probs'], attrs: { axis: -1 } },
            ...merge('probs'),
          ],
        },
        [
          [B, S, HD],
          [B, 1, 1, S],
        ],
      );
      const att = single(g);
      assert.equal(att.inputs[1], 'amask');
      assert.equal(att.attrs.zero_masked_rows, undefined);
    });

    for (const form of ['where', 'additive'] as const) {
      it(`GPT-2 causal mask (${form === 'where' ? 'Where(tril, scores, -inf)' : 'scores + upper-triangular -1e4'}) becomes the causal flag`, () => {
        const tril = Array.from({ length: S * S }, (_, i) => (i % S <= Math.floor(i / S) ? 1 : 0));
        const g = optimizeAndCompare(
          {
            inputs: [{ name: 'x', dtype: 'float32', dims: ['B', S, HD] }],
            outputs: ['y'],
            initializers: [
              ...separateInitializers(),
              { name: 'tril', dtype: 'bool', dims: [1, 1, S, S], values: tril },
              constant(
                'upper',
                [S, S],
                tril.map((t) => (t ? 0 : -1e4)),
              ),
            ],
            nodes: [
              ...separateHeads(),
              form === 'where'
                ? { op: 'Where', inputs: ['tril', 'scores', 'neg_inf'], outputs: ['masked_scores'] }
                : { op: 'Add', inputs: ['scores', 'upper'], outputs: ['masked_scores'] },
              { op: 'Softmax', inputs: ['masked_scores'], outputs: ['probs'], attrs: { axis: -1 } },
              ...merge('probs'),
            ],
          },
          [[B, S, HD]],
        );
        const att = single(g);
        assert.equal(att.attrs.causal.value, 1);
        assert.equal(att.inputs.length, 1); // no bias left (q, k, v: one packed GEMM output)
      });
    }

    it("GPT-2's one c_attn projection split on its last axis into q, k, v: packed attention on it, causal", () => {
      const tril = Array.from({ length: S * S }, (_, i) => (i % S <= Math.floor(i / S) ? 1 : 0));
      const g = optimizeAndCompare(
        {
          inputs: [{ name: 'x', dtype: 'float32', dims: ['B', S, HD] }],
          outputs: ['y'],
          initializers: [
            ...separateInitializers(),
            weight('w_attn', [HD, 3 * HD]),
            ints('sizes', [HD, HD, HD]),
            { name: 'tril', dtype: 'bool', dims: [1, 1, S, S], values: tril },
          ],
          nodes: [
            { op: 'MatMul', inputs: ['x', 'w_attn'], outputs: ['c_attn'] },
            { op: 'Split', inputs: ['c_attn', 'sizes'], outputs: ['q_lin', 'k_lin', 'v_lin'], attrs: { axis: 2 } },
            ...separateHeads().filter((n) => n.op !== 'MatMul' || n.inputs[0] !== 'x'),
            { op: 'Where', inputs: ['tril', 'scores', 'neg_inf'], outputs: ['masked_scores'] },
            { op: 'Softmax', inputs: ['masked_scores'], outputs: ['probs'], attrs: { axis: -1 } },
            ...merge('probs'),
          ],
        },
        [[B, S, HD]],
      );
      assert.deepEqual(kernelOps(g), ['gemm', 'attention']);
      const att = nodesOf(g, 'attention')[0];
      assert.equal(att.attrs.layout, undefined); // packed: q, k, v at offsets 0, H·D, 2·H·D of the projection
      assert.equal(att.attrs.causal.value, 1);
      assert.equal(att.inputs.length, 1);
    });

    it('a constant mask that is not triangular stays a bias (not the causal flag)', () => {
      const mask = Array.from({ length: S * S }, (_, i) => (i % S === 0 || i % 3 === 1 ? 1 : 0));
      const g = optimizeAndCompare(
        {
          inputs: [{ name: 'x', dtype: 'float32', dims: ['B', S, HD] }],
          outputs: ['y'],
          initializers: [...separateInitializers(), { name: 'keep', dtype: 'bool', dims: [S, S], values: mask }],
          nodes: [
            ...separateHeads(),
            { op: 'Where', inputs: ['keep', 'scores', 'neg_inf'], outputs: ['masked_scores'] },
            { op: 'Softmax', inputs: ['masked_scores'], outputs: ['probs'], attrs: { axis: -1 } },
            ...merge('probs'),
          ],
        },
        [[B, S, HD]],
      );
      const att = single(g);
      assert.equal(att.attrs.causal, undefined);
      assert.deepEqual(g.tensor(att.inputs[1]).shape, [1, 1, S, S]);
    });

    for (const shiftMask of ['constant', 'input'] as const) {
      it(`Swin window attention: packed QKV, relative position bias [1,H,S,S], shift mask [nW,1,S,S] across the window reshape (${shiftMask} mask)`, () => {
        const nW = 3;
        const shift = Array.from({ length: nW * S * S }, (_, i) =>
          Math.floor(i / (S * S)) > 0 && (i % 5 === 0 || i % 7 === 2) ? -100 : 0,
        );
        const unbind = ['q', 'k', 'v'].map((t, i) => ({ op: 'Gather', inputs: ['p', `i${i}`], outputs: [t], attrs: { axis: 0 } }));
        const g = optimizeAndCompare(
          {
            inputs: [
              { name: 'x', dtype: 'float32', dims: ['B', nW, S, 3 * HD] },
              ...(shiftMask === 'input' ? [{ name: 'shift', dtype: 'float32' as const, dims: [1, nW, 1, S, S] }] : []),
            ],
            outputs: ['y'],
            initializers: [
              ints('windows_shape', [-1, S, 3 * HD]),
              ints('split_shape', [-1, S, 3, H, D]),
              { name: 'i0', dtype: 'int64', dims: [], values: [0] },
              { name: 'i1', dtype: 'int64', dims: [], values: [1] },
              { name: 'i2', dtype: 'int64', dims: [], values: [2] },
              constant('scale', [], [1 / Math.sqrt(D)]),
              weight('rel_bias', [1, H, S, S], 1),
              ints('per_window', [-1, nW, H, S, S]),
              ints('per_head', [-1, H, S, S]),
              ints('merge_shape', [-1, S, HD]),
              ...(shiftMask === 'constant' ? [constant('shift', [1, nW, 1, S, S], shift)] : []),
            ],
            nodes: [
              { op: 'Reshape', inputs: ['x', 'windows_shape'], outputs: ['xw'] },
              { op: 'Reshape', inputs: ['xw', 'split_shape'], outputs: ['r'] },
              { op: 'Transpose', inputs: ['r'], outputs: ['p'], attrs: { perm: [2, 0, 3, 1, 4] } },
              ...unbind,
              { op: 'Mul', inputs: ['q', 'scale'], outputs: ['qs'] },
              { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
              { op: 'MatMul', inputs: ['qs', 'kt'], outputs: ['qk'] },
              { op: 'Add', inputs: ['qk', 'rel_bias'], outputs: ['biased'] },
              { op: 'Reshape', inputs: ['biased', 'per_window'], outputs: ['bw'] },
              { op: 'Add', inputs: ['bw', 'shift'], outputs: ['shifted'] },
              { op: 'Reshape', inputs: ['shifted', 'per_head'], outputs: ['scores'] },
              { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
              { op: 'MatMul', inputs: ['probs', 'v'], outputs: ['o'] },
              { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
              { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['y'] },
            ],
          },
          shiftMask === 'input'
            ? [
                [B, nW, S, 3 * HD],
                [1, nW, 1, S, S],
              ]
            : [[B, nW, S, 3 * HD]],
        );
        assert.deepEqual(kernelOps(g), ['attention']);
        const att = nodesOf(g, 'attention')[0];
        assert.equal(att.attrs.layout, undefined); // packed
        const biasShapes = att.inputs.slice(1).map((t) => g.tensor(t).shape!.join());
        assert.deepEqual(biasShapes.sort(), [`${nW},1,${S},${S}`, `1,${H},${S},${S}`].sort());
      });
    }

    it('q from one projection and a packed k|v from another: one attention over q and the kv projection (kv_packed)', () => {
      const g = optimizeAndCompare(
        {
          inputs: [{ name: 'x', dtype: 'float32', dims: ['B', S, HD] }],
          outputs: ['y'],
          initializers: [
            ...separateInitializers(),
            weight('wkv', [HD, 2 * HD]),
            ints('kv_shape', [0, S, 2, H, D]),
            { name: 'i0', dtype: 'int64', dims: [], values: [0] },
            { name: 'i1', dtype: 'int64', dims: [], values: [1] },
          ],
          nodes: [
            { op: 'MatMul', inputs: ['x', 'wq'], outputs: ['q_lin'] },
            { op: 'Reshape', inputs: ['q_lin', 'heads_shape'], outputs: ['q_4'] },
            { op: 'Transpose', inputs: ['q_4'], outputs: ['q_h'], attrs: { perm: [0, 2, 1, 3] } },
            { op: 'MatMul', inputs: ['x', 'wkv'], outputs: ['kv_lin'] },
            { op: 'Reshape', inputs: ['kv_lin', 'kv_shape'], outputs: ['kv5'] },
            { op: 'Transpose', inputs: ['kv5'], outputs: ['kvp'], attrs: { perm: [2, 0, 3, 1, 4] } },
            { op: 'Gather', inputs: ['kvp', 'i0'], outputs: ['k'], attrs: { axis: 0 } },
            { op: 'Gather', inputs: ['kvp', 'i1'], outputs: ['v_h'], attrs: { axis: 0 } },
            { op: 'Transpose', inputs: ['k'], outputs: ['k_h'], attrs: { perm: [0, 1, 3, 2] } },
            { op: 'MatMul', inputs: ['q_h', 'k_h'], outputs: ['qk'] },
            { op: 'Div', inputs: ['qk', 'sqrt_d'], outputs: ['scores'] },
            { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
            ...merge('probs'),
          ],
        },
        [[B, S, HD]],
      );
      const att = single(g);
      assert.equal(att.attrs.layout.value, 'kv_packed');
      assert.deepEqual(
        att.inputs.map((t) => g.tensor(t).shape!.map(String)),
        [
          ['B', String(S), String(HD)],
          ['B', String(S), String(2 * HD)],
        ],
      );
    });
  });

  it('fuses an elementwise chain into one kernel, but not across an intermediate that is also a model output', () => {
    const spec = (alsoOutput: boolean): ModelSpec => ({
      inputs: [
        { name: 'x', dtype: 'float32', dims: [3, 7] },
        { name: 'z', dtype: 'float32', dims: [3, 7] },
      ],
      outputs: alsoOutput ? ['y', 't'] : ['y'],
      initializers: [constant('two', [], [2]), constant('one', [], [1])],
      nodes: [
        { op: 'Mul', inputs: ['x', 'two'], outputs: ['a'] },
        { op: 'Add', inputs: ['a', 'one'], outputs: ['t'] },
        { op: 'Tanh', inputs: ['t'], outputs: ['u'] },
        { op: 'Mul', inputs: ['u', 'z'], outputs: ['y'] },
      ],
    });
    const g = optimizeAndCompare(spec(false), [
      [3, 7],
      [3, 7],
    ]);
    assert.deepEqual(kernelOps(g), ['elementwise']);
    const split = optimizeAndCompare(spec(true), [
      [3, 7],
      [3, 7],
    ]);
    assert.deepEqual(kernelOps(split), ['elementwise', 'elementwise']);
  });

  it('sinks and cancels layout transposes through relu and max pooling between convs', () => {
    const g = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: [1, 4, 8, 8] }],
        outputs: ['y'],
        initializers: [weight('w1', [4, 4, 3, 3]), weight('w2', [4, 4, 3, 3])],
        nodes: [
          conv('conv1', 'x', 'w1', undefined, 'c1'),
          { op: 'Relu', inputs: ['c1'], outputs: ['r'] },
          { op: 'MaxPool', inputs: ['r'], outputs: ['m'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
          conv('conv2', 'm', 'w2', undefined, 'y'),
        ],
      },
      [[1, 4, 8, 8]],
    );
    // conv1's C=4 input is padded to 8 by the input transpose; conv2's comes from the pool and stays C=4
    assert.deepEqual(kernelOps(g), ['transpose_pad', 'conv2d', 'pool2d', 'conv2d', 'Transpose']);
    const [conv1, conv2] = nodesOf(g, 'conv2d');
    assert.deepEqual(g.tensor(conv1.inputs[0]).shape, [1, 8, 8, 8]);
    assert.deepEqual(g.tensor(conv2.inputs[0]).shape, [1, 4, 4, 4]);
  });

  it('sinks the layout transpose through an op that reads the same tensor twice (Mul(y, y))', () => {
    // Each occurrence of y used to count as a reader: the transpose was split into copies without end (10,000
    // rounds, ~20 s) and never moved past the Mul.
    const started = Date.now();
    const g = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: [1, 8, 6, 6] }],
        outputs: ['z'],
        initializers: [weight('w', [8, 8, 3, 3])],
        nodes: [conv('conv', 'x', 'w', undefined, 'y'), { op: 'Mul', inputs: ['y', 'y'], outputs: ['z'] }],
      },
      [[1, 8, 6, 6]],
    );
    assert.ok(Date.now() - started < 5000, `optimizing took ${Date.now() - started} ms`);
    assert.deepEqual(kernelOps(g), ['Transpose', 'conv2d', 'Mul', 'Transpose']);
    const mul = nodesOf(g, 'Mul')[0];
    assert.equal(mul.inputs[0], mul.inputs[1]);
    assert.equal(g.tensor(mul.inputs[0]).shape!.length, 4);
    assert.deepEqual(g.tensor(mul.inputs[0]).shape, [1, 6, 6, 8]); // NHWC: the Mul runs before the output transpose
  });
});

describe('pad-channels', function () {
  this.timeout(300_000);
  const stem = (weights: 'present' | 'absent'): ModelSpec => ({
    inputs: [{ name: 'x', dtype: 'float32', dims: ['N', 3, 12, 12] }],
    outputs: ['y'],
    initializers:
      weights === 'present'
        ? [weight('w', [16, 3, 7, 7]), weight('b', [16], 0.1)]
        : [
            { name: 'w', dtype: 'float32', dims: [16, 3, 7, 7], external: 'model.onnx.data' },
            { name: 'b', dtype: 'float32', dims: [16], external: 'model.onnx.data' },
          ],
    nodes: [
      {
        op: 'Conv',
        name: 'stem',
        inputs: ['x', 'w', 'b'],
        outputs: ['c'],
        attrs: { kernel_shape: [7, 7], pads: [3, 3, 3, 3], strides: [2, 2] },
      },
      { op: 'Relu', inputs: ['c'], outputs: ['r'] },
      { op: 'MaxPool', inputs: ['r'], outputs: ['y'], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
    ],
  });

  it('a 7x7/2 C=3 stem (weights present): the input transpose writes C padded to 8, the weights get zero channels, same result', () => {
    const g = optimizeAndCompare(stem('present'), [[2, 3, 12, 12]]);
    assert.deepEqual(kernelOps(g), ['transpose_pad', 'conv2d', 'pool2d', 'Transpose']);
    const [pad] = nodesOf(g, 'transpose_pad');
    assert.deepEqual(pad.inputs, ['x']);
    assert.equal(pad.attrs.channels.value, 8);
    const [conv] = nodesOf(g, 'conv2d');
    assert.equal(conv.inputs[0], pad.outputs[0]);
    const w = g.tensor(conv.inputs[1]);
    assert.deepEqual(w.shape, [16, 7, 7, 8]);
    const values = w.value!.data as Float32Array;
    for (let i = 0; i < values.length; i++) if (i % 8 >= 3) assert.equal(values[i], 0, `weight element ${i} is a padding channel`);
    assert.ok(values.some((v, i) => i % 8 < 3 && v !== 0));
  });

  it('weights absent: the OIHW → OHWI preparation transpose pads them, reading the weight by its ONNX name', () => {
    const bytes = buildModel(stem('absent'));
    const result = optimizeImported(importOnnxBytes(bytes), 'test.onnx', { validate: true });
    const g = result.graph;
    const pads = nodesOf(g, 'transpose_pad');
    assert.deepEqual(
      pads.map((n) => [n.inputs[0], attrInts(n, 'perm'), n.attrs.channels.value]),
      [
        ['x', [0, 2, 3, 1], 8],
        ['w', [0, 2, 3, 1], 8],
      ],
    );
    assert.ok(!isKernel(g, pads[1]), 'the weight padding is weight preparation');
    assert.deepEqual(g.tensor(pads[1].outputs[0]).shape, [16, 7, 7, 8]);
  });

  it('leaves a conv alone when its input transpose has a second reader (a residual would see the padded channels)', () => {
    const g = optimizeAndCompare(
      {
        inputs: [{ name: 'x', dtype: 'float32', dims: [1, 4, 6, 6] }],
        outputs: ['y'],
        initializers: [weight('w1', [4, 4, 3, 3])],
        nodes: [conv('conv1', 'x', 'w1', undefined, 'c1'), { op: 'Add', inputs: ['c1', 'x'], outputs: ['y'] }],
      },
      [[1, 4, 6, 6]],
    );
    assert.deepEqual(nodesOf(g, 'transpose_pad'), []);
    assert.deepEqual(g.tensor(nodesOf(g, 'conv2d')[0].inputs[0]).shape, [1, 6, 6, 4]);
  });
});
