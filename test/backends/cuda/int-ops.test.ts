/**
 * Integer, bool and index ops through the CUDA backend: elementwise on int64/int32/bool data and mixed types (the
 * mixed kernel, kernels/elementwise.cuh), Where/IsNaN/comparisons/logic/Cast as functors (also inside fused chains),
 * Gather with a tensor of indices, GatherElements, GatherND and Range from the run's dims. The op references agree
 * with onnxruntime on one model holding all of them; the model compiles for sm80 and sm90 with every node on a kernel
 * of ours and nvcc compiles its model.cu; a dim fixed with --dim is a constant (batched MatMul over it lowers) and a
 * symbolic one is one clear error; DistilBERT and ConvNeXt from the shared zoo compile for both targets.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { chainOfNode } from '../../../compiler/backends/cuda/codegen/elementwise';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor } from '../../../compiler/ir/tensor';

import { ModelSpec, buildModel, inferModel, tensor } from '../../helpers/onnx-builder';
import { sharedModel } from '../../helpers/models';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

/**
 * ids int64 [B,6], mask int64 [B,6], x float [B,6,4], y float [B,4,6]: an embedding lookup, a position Range over B, integer index
 * math, a bool mask broadcast in no fixed pattern, an additive -inf mask with a NaN guard, GatherElements, GatherND.
 */
function indexModel(): ModelSpec {
  return {
    inputs: [
      { name: 'ids', dtype: 'int64', dims: ['B', 6] },
      { name: 'mask', dtype: 'int64', dims: ['B', 6] },
      { name: 'x', dtype: 'float32', dims: ['B', 6, 4] },
      { name: 'y', dtype: 'float32', dims: ['B', 4, 6] },
    ],
    outputs: ['emb', 'idx', 'both', 'guarded', 'ge', 'gnd', 'castf', 'modded'],
    initializers: [
      {
        ...tensor(
          'float32',
          [10, 4],
          Array.from({ length: 40 }, (_, i) => (i % 7) - 3),
        ),
        name: 'table',
      },
      { ...tensor('int64', [], [0]), name: 'zero' },
      { ...tensor('int64', [], [1]), name: 'one' },
      { ...tensor('int64', [], [6]), name: 'six' },
      { ...tensor('int64', [1, 6], [0, 1, 2, 3, 4, 5]), name: 'cols' },
      { ...tensor('bool', [1, 6, 1], [1, 0, 1, 1, 0, 1]), name: 'rowmask' },
      { ...tensor('float32', [], [-Infinity]), name: 'neginf' },
      { ...tensor('float32', [], [0]), name: 'fzero' },
      { ...tensor('int64', [6, 4], [0, 1, 2, 3, 1, 2, 3, 0, 2, 3, 0, 1, 3, 0, 1, 2, 0, 0, 0, 0, 3, 3, 3, 3]), name: 'ge_idx' },
      { ...tensor('int64', [3, 2], [0, 1, 5, 3, -1, 0]), name: 'nd_idx' },
      { ...tensor('int64', [], [4]), name: 'four' },
      { ...tensor('int64', [2], [-1, 6]), name: 'rows_shape' },
    ],
    nodes: [
      { op: 'Gather', inputs: ['table', 'ids'], outputs: ['emb'] },
      // row offsets: Range(0, B) * 6 + cols → flat indices of the mask, gathered back (as_strided-style)
      { op: 'Shape', inputs: ['ids'], outputs: ['ids_shape'], attrs: { start: 0, end: 1 } },
      { op: 'Squeeze', inputs: ['ids_shape'], outputs: ['b'] },
      { op: 'Range', inputs: ['zero', 'b', 'one'], outputs: ['rows'] },
      { op: 'Mul', inputs: ['rows', 'six'], outputs: ['row_start'] },
      { op: 'Unsqueeze', inputs: ['row_start', 'one'], outputs: ['row_start2'] },
      { op: 'Add', inputs: ['row_start2', 'cols'], outputs: ['idx'] },
      { op: 'Cast', inputs: ['mask'], outputs: ['maskb'], attrs: { to: 9 } },
      { op: 'Flatten', inputs: ['maskb'], outputs: ['maskflat'], attrs: { axis: 2 } },
      { op: 'Gather', inputs: ['maskflat', 'idx'], outputs: ['mask_again'], attrs: { axis: 0 } },
      { op: 'Reshape', inputs: ['mask_again', 'rows_shape'], outputs: ['mask_rows'] },
      { op: 'Unsqueeze', inputs: ['mask_rows', 'one'], outputs: ['mask_cols'] },
      { op: 'And', inputs: ['rowmask', 'mask_cols'], outputs: ['both'] },
      // scores: x with -inf where masked, softmax, NaN (a fully masked row) → 0
      { op: 'Not', inputs: ['mask_rows'], outputs: ['masked'] },
      { op: 'Unsqueeze', inputs: ['masked', 'one'], outputs: ['masked3'] },
      { op: 'Where', inputs: ['masked3', 'neginf', 'y'], outputs: ['scores'] },
      { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
      { op: 'IsNaN', inputs: ['probs'], outputs: ['nan'] },
      { op: 'Where', inputs: ['nan', 'fzero', 'probs'], outputs: ['guarded'] },
      { op: 'GatherElements', inputs: ['x', 'ge_idx_b'], outputs: ['ge'], attrs: { axis: 2 } },
      { op: 'Expand', inputs: ['ge_idx', 'x_shape'], outputs: ['ge_idx_b'] },
      { op: 'Shape', inputs: ['x'], outputs: ['x_shape'] },
      { op: 'GatherND', inputs: ['x', 'nd_idx_b'], outputs: ['gnd'], attrs: { batch_dims: 1 } },
      { op: 'Unsqueeze', inputs: ['nd_idx', 'zero'], outputs: ['nd_idx1'] },
      { op: 'Shape', inputs: ['ids'], outputs: ['b1'], attrs: { start: 0, end: 1 } },
      { op: 'Concat', inputs: ['b1', 'nd_shape_tail'], outputs: ['nd_shape'], attrs: { axis: 0 } },
      { op: 'Constant', inputs: [], outputs: ['nd_shape_tail'], attrs: { value: tensor('int64', [2], [3, 2]) } },
      { op: 'Expand', inputs: ['nd_idx1', 'nd_shape'], outputs: ['nd_idx_b'] },
      { op: 'Cast', inputs: ['ids'], outputs: ['castf'], attrs: { to: 1 } },
      { op: 'Sub', inputs: ['ids', 'mask'], outputs: ['diff'] },
      { op: 'Mod', inputs: ['diff', 'four'], outputs: ['modded'] },
    ],
  };
}

function sortedNodes(spec: ModelSpec): ModelSpec {
  // the builder keeps node order; put producers first (the spec lists a few after their readers)
  const produced = new Set([...spec.inputs.map((i) => i.name), ...(spec.initializers ?? []).map((i) => i.name!)]);
  const order: typeof spec.nodes = [];
  const rest = [...spec.nodes];
  while (rest.length) {
    const k = rest.findIndex((n) => n.inputs.every((i) => !i || produced.has(i)));
    assert.ok(k >= 0, 'the test model has a cycle');
    const [n] = rest.splice(k, 1);
    order.push(n);
    for (const o of n.outputs) produced.add(o);
  }
  return { ...spec, nodes: order };
}

const MODEL = sortedNodes(indexModel());

function write(spec: ModelSpec, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-int-ops-'));
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

describe('cuda backend: integer, bool and index ops', function () {
  this.timeout(600_000);

  it('the op references agree with onnxruntime (Gather/GatherElements/GatherND, Range, int math, Mod, Cast, And/Not, Where, IsNaN)', async () => {
    const B = 3;
    const ids = Array.from({ length: B * 6 }, (_, i) => (i * 7) % 10);
    const mask = Array.from({ length: B * 6 }, (_, i) => (i < 6 ? 0 : i % 4 === 0 ? 0 : 1)); // row 0 fully masked
    const x = Array.from({ length: B * 24 }, (_, i) => ((i * 37) % 11) - 5);
    const m = inferModel(MODEL);
    assert.deepEqual(m.errors, []);
    const ours = runGraph(m.graph, [
      makeTensor('int64', [B, 6], ids),
      makeTensor('int64', [B, 6], mask),
      makeTensor('float32', [B, 6, 4], x),
      makeTensor('float32', [B, 4, 6], x),
    ]);
    const session = await ort.InferenceSession.create(buildModel(MODEL));
    const theirs = await session.run({
      ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [B, 6]),
      mask: new ort.Tensor('int64', BigInt64Array.from(mask.map(BigInt)), [B, 6]),
      x: new ort.Tensor('float32', Float32Array.from(x), [B, 6, 4]),
      y: new ort.Tensor('float32', Float32Array.from(x), [B, 4, 6]),
    });
    MODEL.outputs.forEach((name, k) => {
      const expected = Array.from(theirs[name as string].data as ArrayLike<number | bigint | boolean>, Number);
      const actual = Array.from(ours[k].data as ArrayLike<number>, Number);
      assert.deepEqual(ours[k].shape, theirs[name as string].dims, `${String(name)} shape`);
      actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-5, `${String(name)}[${i}]: ${v} vs onnxruntime ${expected[i]}`));
    });
  });

  it('fusion keeps integer and float math apart, and shape arithmetic on the host', () => {
    const { graph } = optimizeModel(write(MODEL, 'index'), {});
    const fused = graph.nodes.filter((n) => n.op === 'elementwise');
    // the NaN guard (IsNaN + Where, float math over a bool) fuses; the -inf mask (Not + Where) cannot (Not is bool math)
    const guard = fused.find((n) => n.outputs[0] === 'guarded');
    assert.ok(guard, 'IsNaN + Where fused');
    assert.deepEqual(chainOfNode(guard, graph), [
      'ew::Input<0>{}',
      'ew::IsNaN{}',
      'ew::Select<ew::Running, ew::In<1>, ew::In<0>>{{}, {}, {}}',
    ]);
    // Range * 6 stays apart from the Unsqueeze view; the Shape → Squeeze chain is shape arithmetic, launching nothing
    const mul = graph.nodes.find((n) => n.op === 'Mul');
    assert.ok(mul, 'integer Mul kept');
    assert.deepEqual(chainOfNode(mul, graph), ['ew::Input<0>{}', 'ew::Binary<ew::op::Mul, ew::Running, ew::In<1>>{{}, {}}']);
    assert.ok(!graph.nodes.some((n) => n.op === 'elementwise' && n.inputs.includes('b')), 'shape arithmetic is not fused');
  });

  for (const target of ['cuda:sm80', 'cuda:sm90']) {
    it(`compiles for ${target}: every op on a kernel of ours; nvcc compiles model.cu`, () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-int-ops-out-'));
      const result = compileModel(write(MODEL, 'index'), { out: dir, target, maxBatch: 4 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const modelCu = fs.readFileSync(path.join(dir, 'src', 'model.cu'), 'utf8');
      for (const launch of [
        'launch_gather(',
        'launch_gather_elements(',
        'launch_gather_nd(',
        'launch_range(',
        'launch_mixed_elementwise<int64_t',
      ])
        assert.ok(modelCu.includes(launch), `model.cu launches ${launch}`);
      // the bool mask [1,6,1] over [B,6,6] is read with strides; Range's length is the run's batch
      assert.match(modelCu, /ew::Broadcast::kStrided/);
      assert.match(modelCu, /RangeArgs<int64_t, int64_t> args\{[^,]+, batch, int64_t\{0\}, int64_t\{1\}\}/);
      if (haveNvcc())
        nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
    });
  }

  describe('dims other than the batch', () => {
    const attention: ModelSpec = {
      inputs: [
        { name: 'q', dtype: 'float32', dims: ['batch', 2, 'seq', 8] },
        { name: 'k', dtype: 'float32', dims: ['batch', 2, 8, 'seq'] },
      ],
      outputs: ['s'],
      nodes: [{ op: 'MatMul', inputs: ['q', 'k'], outputs: ['s'] }],
    };

    it('a dim fixed with --dim (min == max) is a constant everywhere: the batched MatMul over it lowers', () => {
      const m = inferModel(attention, { dimBounds: { seq: [16, 16] } });
      assert.equal(m.shape('s'), '[batch, 2, 16, 16]');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-int-ops-dim-'));
      const result = compileModel(write(attention, 'attn'), { out: dir, target: 'cuda:sm80', maxBatch: 4, dimBounds: { seq: [16, 16] } });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
    });

    it('a bounded symbolic one is a run-time input dim (no --dim error); a batched MatMul with it as N or K dispatches on it', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-int-ops-dim-'));
      const result = compileModel(write(attention, 'attn'), { out: dir, target: 'cuda:sm90', maxBatch: 4 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      assert.ok(result.ok);
      const model = fs.readFileSync(path.join(dir, 'src', 'model.cu'), 'utf8');
      assert.match(model, /if \(gemm\.n % 8 == 0 && gemm\.k % 8 == 0\) \{/);
      // on rocm the same: CK instances with vectors of 8 when both are multiples of 8, else of 1
      const rocm = compileModel(write(attention, 'attn'), { out: `${dir}-rocm`, target: 'rocm:gfx942', maxBatch: 4 });
      assert.deepEqual(
        rocm.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const rocmModel = fs.readFileSync(path.join(`${dir}-rocm`, 'src', 'model.cu'), 'utf8');
      assert.match(rocmModel, /AitCkGemmArgs gemm\{[^;]*static_cast<int>\(c\.dims\[\d\]\)/);
      assert.match(rocmModel, /if \(gemm\.n % 8 == 0 && gemm\.k % 8 == 0\) \{/);
      const graph = JSON.parse(fs.readFileSync(path.join(`${dir}-rocm`, 'graph.json'), 'utf8')) as {
        nodes: { kernel?: { library: string; config: { instances: { name: string; when?: string }[] } } }[];
      };
      const ck = graph.nodes.find((n) => n.kernel?.library === 'ck')!;
      assert.deepEqual([...new Set(ck.kernel!.config.instances.map((i) => i.when))], ['N and K multiples of 8', 'otherwise']);
    });

    it('an unbounded one is one error naming it, with the --dim fix', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-int-ops-dim-'));
      const result = compileModel(write(attention, 'attn'), {
        out: dir,
        target: 'cuda:sm90',
        maxBatch: 4,
        dimBounds: { seq: [1, Infinity] },
      });
      const dims = result.diagnostics.filter((d) => d.code === 'cuda.symbolic-dim');
      assert.equal(dims.length, 1);
      assert.match(dims[0].message, /'seq' \(1\.\.Infinity\).*no upper bound.*--dim seq=1\.\.N/);
      assert.ok(!result.ok);
    });
  });

  describe('shared zoo models (skipped without ../shared/models)', () => {
    for (const target of ['cuda:sm90', 'cuda:sm80'])
      for (const [model, dimBounds] of [
        ['zoo/distilbert_base', { seq: [128, 128] }],
        ['zoo/convnext_small', undefined],
      ] as const)
        it(`${model} compiles for ${target} with no unsupported node`, function () {
          const file = sharedModel(model, this);
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-int-ops-zoo-'));
          const result = compileModel(file, { out: dir, target, dimBounds: dimBounds && { seq: [...dimBounds.seq] as [number, number] } });
          assert.deepEqual(
            result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
            [],
          );
          assert.ok(result.ok);
          if (model === 'zoo/distilbert_base') {
            // the 6 attention blocks fused: the separate q/k/v projections merged into one GEMM each (packed), the
            // key mask Where(mask == 0, -inf) as a [B,1,S,S] bias, the softmax's IsNaN guard as zero_masked_rows
            const graph = JSON.parse(fs.readFileSync(path.join(dir, 'graph.json'), 'utf8')) as {
              nodes: { op: string; name: string; attrs: Record<string, unknown>; kernel?: { name: string } }[];
            };
            assert.equal(graph.nodes.filter((n) => n.op === 'gemm' && n.name.endsWith('/qkv')).length, 6);
            const attention = graph.nodes.filter((n) => n.op === 'attention');
            assert.equal(attention.length, 6);
            assert.equal(graph.nodes.filter((n) => ['Softmax', 'MatMul', 'IsNaN'].includes(n.op)).length, 0);
            for (const n of attention) {
              assert.equal(n.attrs.layout, 'packed');
              assert.equal(n.attrs.zero_masked_rows, 1);
              assert.equal(n.kernel?.name, 'ait_attention_f16_d64_masked');
            }
          }
        });
  });
});
