/**
 * A Concat read only by an elementwise group is not materialized (passes/fuse-elementwise.ts absorbConcats): the
 * group reads the Concat's pieces in its place (ops/fused.ts ConcatSlot, the `concat` attribute), and the kernels
 * load each element from the piece holding it (kConcat in kernels/elementwise.cuh). A DenseNet-style block (channel
 * Concat of three pieces, symbolic batch, then BatchNormalization and ReLU, then a convolution) loses its Concat; a
 * Concat that is also a model output, or that another op reads, stays. The interpreter on the optimized graph matches
 * onnxruntime on the original; the load index math, replayed on the host, reads what the concatenation holds; the
 * generated model.cu compiles with nvcc for sm90 and sm80, on the fp16 kernel and (pieces stored in fp32) the mixed one.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import type { MemoryPlan } from '../../../compiler/passes/memory-plan';
import { supportOf } from '../../../compiler/backends/support';
import { runGraphNamed } from '../../../compiler/interpreter/interpreter';
import { Graph, Node } from '../../../compiler/ir/graph';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { MAX_CONCAT_PIECES, concatSlotsOf, concatValues, elementwiseSlotsOf } from '../../../compiler/ops/fused';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';
import { concatLoadIndex } from '../../helpers/ew-replay';
import { GPU_TARGETS, haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const B = 2;

function values(n: number, seed: number, scale = 1): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => scale * (2 * r() - 1));
}

/**
 * x [B,8,5,5] → a = Conv 3×3 (16 channels), b = Conv 1×1 (8 channels); cat = Concat(x, a, b) on channels (32), then
 * BatchNormalization and Relu, then a 1×1 Conv: `out`. Beside it: `kept` = Concat(a, b), a model output and read by
 * a Relu; `shared` = Concat(x, b), read by a Sigmoid and by a Conv; and a lone Mul over a Concat of three model inputs
 * along the last axis (not channels, extents 3, 6, 5: no vector of 8 fits).
 */
function denseModel(): ModelSpec {
  const w = (name: string, dims: number[], seed: number, scale = 0.3) => ({
    ...tensor(
      'float32',
      dims,
      values(
        dims.reduce((a, b) => a * b, 1),
        seed,
        scale,
      ),
    ),
    name,
  });
  const positive = (name: string, n: number, seed: number) => ({
    ...tensor(
      'float32',
      [n],
      values(n, seed).map((v) => 0.5 + Math.abs(v)),
    ),
    name,
  });
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', 8, 5, 5] },
      { name: 'p', dtype: 'float32', dims: ['B', 4, 3] },
      { name: 'q', dtype: 'float32', dims: ['B', 4, 6] },
      { name: 'r', dtype: 'float32', dims: ['B', 4, 5] },
    ],
    outputs: ['out', 'kept', 'kept_relu', 'shared_sig', 'shared_conv', 'tail'],
    initializers: [
      w('wa', [16, 8, 3, 3], 1),
      w('ba', [16], 2),
      w('wb', [8, 8, 1, 1], 3),
      w('bb', [8], 4),
      w('wo', [16, 32, 1, 1], 5),
      w('ws', [8, 16, 1, 1], 6),
      positive('gamma', 32, 7),
      w('beta', [32], 8),
      w('mean', [32], 9),
      positive('var', 32, 10),
      { ...tensor('float32', [], [1.5]), name: 'k' },
    ],
    nodes: [
      { op: 'Conv', inputs: ['x', 'wa', 'ba'], outputs: ['a'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
      { op: 'Conv', inputs: ['x', 'wb', 'bb'], outputs: ['b'], attrs: { kernel_shape: [1, 1] } },
      { op: 'Concat', inputs: ['x', 'a', 'b'], outputs: ['cat'], attrs: { axis: 1 } },
      { op: 'BatchNormalization', inputs: ['cat', 'gamma', 'beta', 'mean', 'var'], outputs: ['bn'], attrs: { epsilon: 1e-5 } },
      { op: 'Relu', inputs: ['bn'], outputs: ['act'] },
      { op: 'Conv', inputs: ['act', 'wo'], outputs: ['out'], attrs: { kernel_shape: [1, 1] } },
      // a Concat that is a model output stays
      { op: 'Concat', inputs: ['a', 'b'], outputs: ['kept'], attrs: { axis: 1 } },
      { op: 'Relu', inputs: ['kept'], outputs: ['kept_relu'] },
      // a Concat another op reads stays
      { op: 'Concat', inputs: ['x', 'b'], outputs: ['shared'], attrs: { axis: 1 } },
      { op: 'Sigmoid', inputs: ['shared'], outputs: ['shared_sig'] },
      { op: 'Conv', inputs: ['shared', 'ws'], outputs: ['shared_conv'], attrs: { kernel_shape: [1, 1] } },
      // a lone elementwise node over a Concat along the last axis
      { op: 'Concat', inputs: ['p', 'q', 'r'], outputs: ['tail_cat'], attrs: { axis: -1 } },
      { op: 'Mul', inputs: ['tail_cat', 'k'], outputs: ['tail'] },
    ],
  };
}

function inputValues(): TensorValue[] {
  return [
    makeTensor('float32', [B, 8, 5, 5], values(B * 200, 11)),
    makeTensor('float32', [B, 4, 3], values(B * 12, 12)),
    makeTensor('float32', [B, 4, 6], values(B * 24, 13)),
    makeTensor('float32', [B, 4, 5], values(B * 20, 14)),
  ];
}

function write(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-catew-'));
  const file = path.join(dir, 'dense.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

const concats = (graph: Graph) => graph.nodes.filter((n) => n.op === 'Concat');
const withConcatSlots = (graph: Graph) => graph.nodes.filter((n) => n.op === 'elementwise' && concatSlotsOf(n).length > 0);

describe('cuda backend: a Concat read only by an elementwise op is not materialized', function () {
  this.timeout(600_000);
  const file = write(denseModel());

  it('the Concats read only by elementwise ops leave the graph; those with other readers stay', () => {
    const { graph, context } = optimizeModel(file, { validate: true });
    // (NHWC after layout: the model outputs are transposes of `kept_pre…` and a Conv reads `shared_pre…`)
    const kept = concats(graph).map((n) => n.outputs[0].replace(/_pre.*$/, ''));
    assert.deepEqual(kept.sort(), ['kept', 'shared']);
    const fused = withConcatSlots(graph);
    assert.equal(fused.length, 2, fused.map((n) => n.name).join(', '));
    const pieces = fused.map((n) => elementwiseSlotsOf(n).find((s) => s.concat)!);
    // the DenseNet block: NHWC after layout, so the channel Concat is along the last axis, pieces of 8, 16, 8
    const dense = pieces.find((s) => s.concat!.extents.length === 3 && s.concat!.extents[0] === 8)!;
    assert.ok(dense, JSON.stringify(pieces.map((s) => s.concat)));
    assert.deepEqual(dense.concat, { axis: 3, extents: [8, 16, 8] });
    const tail = pieces.find((s) => s.concat!.extents[0] === 3)!;
    assert.deepEqual(tail.concat, { axis: 2, extents: [3, 6, 5] });
    assert.deepEqual(tail.inputs, ['p', 'q', 'r']);
    // the memory plan keeps the pieces until the fused node has read them, and never places its output over one
    const plan = context.reports.memory as MemoryPlan;
    const bufferOf = (t: string) => plan.buffers.find((b) => b.tensors.includes(t));
    let checked = 0;
    for (const n of fused) {
      const at = graph.nodes.indexOf(n);
      const out = bufferOf(n.outputs[0]);
      for (const piece of elementwiseSlotsOf(n).flatMap((s) => (s.concat ? s.inputs : []))) {
        const b = bufferOf(piece);
        if (!b || !out) continue; // a model input or output: not in the arena
        assert.ok(b.lastNode >= at, `${piece} lives until the fused node`);
        assert.ok(b !== out && (b.offset + b.bytes <= out.offset || out.offset + out.bytes <= b.offset), `${piece} apart from the output`);
        checked++;
      }
    }
    assert.equal(checked, 3, "the DenseNet block's three pieces are arena tensors");
    // every node lowers on both backends (the ROCm lowering is the same predicate over the HIP build of the kernels)
    for (const target of ['cuda:sm90', 'rocm:gfx942'])
      for (const n of fused) {
        const support = supportOf(graph, n, target);
        assert.ok(support.supported, `${target}: ${n.name}: ${support.reason}`);
      }
  });

  it('the interpreter on the optimized graph matches onnxruntime on the original', async () => {
    const inputs = inputValues();
    const { graph } = optimizeModel(file, {});
    const ours = runGraphNamed(graph, inputs);
    const session = await ort.InferenceSession.create(file);
    const feeds = Object.fromEntries(
      ['x', 'p', 'q', 'r'].map((name, i) => [name, new ort.Tensor('float32', Float32Array.from(numeric(inputs[i])), inputs[i].shape)]),
    );
    const theirs = await session.run(feeds);
    for (const name of denseModel().outputs as string[]) {
      const a = numeric(ours.get(name)!);
      const b = theirs[name].data as Float32Array;
      assert.equal(a.length, b.length, name);
      for (let i = 0; i < a.length; i++)
        assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * (1 + Math.abs(b[i])), `${name}[${i}]: ${a[i]} vs ${b[i]}`);
    }
  });

  it('the reference of a concat slot concatenates its pieces', () => {
    const a = makeTensor('float32', [2, 1, 2], [1, 2, 3, 4]);
    const b = makeTensor('float32', [2, 2, 2], [5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(Array.from(numeric(concatValues([a, b], 1))), [1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12]);
  });

  it('a Concat of more pieces than the kernel takes, or along a symbolic axis, stays', () => {
    const n = MAX_CONCAT_PIECES + 1;
    const spec: ModelSpec = {
      inputs: Array.from({ length: n }, (_, k) => ({ name: `i${k}`, dtype: 'float32' as const, dims: ['B', 2] })),
      outputs: ['y', 'z', 'w'],
      nodes: [
        { op: 'Concat', inputs: Array.from({ length: n }, (_, k) => `i${k}`), outputs: ['c'], attrs: { axis: 1 } },
        { op: 'Relu', inputs: ['c'], outputs: ['y'] },
        { op: 'Concat', inputs: Array.from({ length: n - 1 }, (_, k) => `i${k}`), outputs: ['d'], attrs: { axis: 1 } },
        { op: 'Relu', inputs: ['d'], outputs: ['z'] },
        // along the batch axis: the pieces' extents are not compile-time numbers
        { op: 'Concat', inputs: ['i0', 'i1'], outputs: ['e'], attrs: { axis: 0 } },
        { op: 'Relu', inputs: ['e'], outputs: ['w'] },
      ],
    };
    const { graph } = optimizeModel(write(spec), { validate: true });
    assert.deepEqual(
      concats(graph)
        .map((c) => c.outputs[0])
        .sort(),
      ['c', 'e'],
    );
    const fused = withConcatSlots(graph);
    assert.equal(fused.length, 1);
    assert.equal(concatSlotsOf(fused[0])[0].extents.length, MAX_CONCAT_PIECES);
  });

  it('the kernel load index, replayed on the host, reads what the concatenation holds; vectors never straddle pieces', () => {
    const cases: { shape: number[]; axis: number; extents: number[] }[] = [
      { shape: [3, 4, 4], axis: 2, extents: [8, 16, 8, 32] }, // NHWC channels, multiples of 8
      { shape: [2, 3], axis: 1, extents: [3, 6, 5, 1] }, // last axis, odd extents (the scalar path)
      { shape: [2, 5], axis: 0, extents: [1, 2, 4] }, // the first axis
      { shape: [2, 2, 3], axis: 1, extents: Array.from({ length: MAX_CONCAT_PIECES }, (_, k) => 1 + (k % 3)) },
    ];
    let seed = 20;
    for (const c of cases) {
      const pieces = c.extents.map((e) => {
        const shape = [...c.shape.slice(0, c.axis), e, ...c.shape.slice(c.axis)];
        return makeTensor(
          'float32',
          shape,
          values(
            shape.reduce((a, b) => a * b, 1),
            seed++,
          ),
        );
      });
      const whole = numeric(concatValues(pieces, c.axis));
      const outShape = [...pieces[0].shape];
      outShape[c.axis] = c.extents.reduce((a, b) => a + b, 0);
      const inner = outShape.slice(c.axis + 1).reduce((a, b) => a * b, 1);
      const span = outShape[c.axis] * inner;
      for (let i = 0; i < whole.length; i++) {
        const { piece, index } = concatLoadIndex(c.extents, inner, span, i);
        assert.equal(numeric(pieces[piece])[index], whole[i], `${JSON.stringify(c)} element ${i}`);
      }
      // the vector path's condition (every start and extent × inner a multiple of 8): 8 consecutive elements from
      // one piece, consecutive there
      if (c.extents.every((e) => (e * inner) % 8 === 0))
        for (let base = 0; base < whole.length; base += 8) {
          const first = concatLoadIndex(c.extents, inner, span, base);
          for (let e = 1; e < 8; e++)
            assert.deepEqual(concatLoadIndex(c.extents, inner, span, base + e), { piece: first.piece, index: first.index + e });
        }
    }
  });

  for (const [target, arch] of GPU_TARGETS)
    it(`compiles for ${target}: the fp16 kernel reads the pieces; with the pieces in fp32, the mixed kernel; nvcc compiles model.cu`, function () {
      for (const fp32 of [[], ['tail']]) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-catew-out-'));
        const result = compileModel(file, { out: dir, target, maxBatch: 4, fp32 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        const modelCu = fs.readFileSync(path.join(dir, 'src', 'model.cu'), 'utf8');
        assert.match(modelCu, /ew::ElementwiseArgs<__half, \d+, 3> args/);
        assert.match(modelCu, /args\.concat = \{/);
        if (fp32.length)
          assert.match(modelCu, /ew::MixedArgs<float, 2, 3> args[\s\S]*?ew::Storage::kFloat, ew::Storage::kFloat, ew::Storage::kFloat/);
        const graphJson = JSON.parse(fs.readFileSync(path.join(dir, 'graph.json'), 'utf8')) as { nodes: Node[] };
        assert.equal(graphJson.nodes.filter((n) => n.op === 'Concat').length, 2);
        if (haveNvcc()) nvccCompileGenerated(dir, ['src/model.cu'], arch);
      }
    });
});
