/**
 * DepthToSpace (DCR and CRD) and SpaceToDepth: ops/shape.ts references agree with onnxruntime; with fixed C, H, W
 * canonicalize.ts rewrites them to Reshape + 6-D Transpose + Reshape, the rewritten graph computes the same in the
 * interpreter and every node lowers (also after the layout pass, behind a convolution); the models compile for sm90
 * and sm80 and nvcc compiles model.cu.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { supportOf } from '../../../compiler/backends/support';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../../helpers/nvcc';

const CASES: { name: string; spec: ModelSpec; shape: number[] }[] = [
  {
    name: 'DepthToSpace DCR',
    spec: nodeModel('DepthToSpace', [input('float32', [2, 8, 3, 4])], { attrs: { blocksize: 2 } }),
    shape: [2, 8, 3, 4],
  },
  {
    name: 'DepthToSpace CRD',
    spec: nodeModel('DepthToSpace', [input('float32', [2, 18, 2, 3])], { attrs: { blocksize: 3, mode: 'CRD' } }),
    shape: [2, 18, 2, 3],
  },
  {
    name: 'SpaceToDepth',
    spec: nodeModel('SpaceToDepth', [input('float32', [2, 3, 4, 6])], { attrs: { blocksize: 2 } }),
    shape: [2, 3, 4, 6],
  },
];

/** A convolution, then the op on its NHWC output (the layout pass puts it back in NCHW order). */
function afterConv(op: string, attrs: Record<string, number | string>): ModelSpec {
  const w = tensor(
    'float32',
    [16, 4, 3, 3],
    Array.from({ length: 576 }, (_, i) => Math.sin(i) / 8),
  );
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 4, 8, 8] }],
    initializers: [{ ...w, name: 'w' }],
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op, inputs: ['c'], outputs: ['y'], attrs },
    ],
    outputs: ['y'],
  };
}

function write(model: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-d2s-'));
  fs.writeFileSync(path.join(dir, 'm.onnx'), buildModel(model));
  return path.join(dir, 'm.onnx');
}

describe('cuda backend: DepthToSpace / SpaceToDepth', function () {
  this.timeout(600_000);

  for (const c of CASES)
    it(`${c.name}: the reference agrees with onnxruntime; the Reshape/Transpose rewrite computes the same and lowers`, async () => {
      const m = inferModel(c.spec);
      assert.deepEqual(m.errors, []);
      const data = Array.from({ length: c.shape.reduce((a, b) => a * b, 1) }, (_, i) => i);
      const x = makeTensor('float32', c.shape, data);
      const [ours] = runGraph(m.graph, [x]);
      const session = await ort.InferenceSession.create(buildModel(c.spec));
      const theirs = (await session.run({ in0: new ort.Tensor('float32', Float32Array.from(data), c.shape) })).out0;
      assert.deepEqual(ours.shape, theirs.dims);
      assert.deepEqual(Array.from(numeric(ours)), Array.from(theirs.data as Float32Array));

      const { graph } = optimizeModel(write(c.spec), {});
      assert.ok(!graph.nodes.some((n) => n.op === 'DepthToSpace' || n.op === 'SpaceToDepth'), graph.nodes.map((n) => n.op).join(', '));
      for (const n of graph.nodes) {
        const support = supportOf(graph, n, 'cuda:sm90');
        assert.ok(support.supported, `${n.op}: ${support.reason}`);
      }
      const [rewritten] = runGraph(graph, [x]);
      assert.deepEqual(Array.from(numeric(rewritten)), Array.from(numeric(ours)));
    });

  for (const [name, model] of [
    ['DepthToSpace DCR after a conv', afterConv('DepthToSpace', { blocksize: 2 })],
    ['DepthToSpace CRD after a conv', afterConv('DepthToSpace', { blocksize: 2, mode: 'CRD' })],
    ['SpaceToDepth after a conv', afterConv('SpaceToDepth', { blocksize: 2 })],
  ] as const) {
    it(`${name}: the optimized graph (NHWC conv) computes what the reference computes`, () => {
      const m = inferModel(model);
      const x = makeTensor(
        'float32',
        [2, 4, 8, 8],
        Array.from({ length: 512 }, (_, i) => Math.cos(i)),
      );
      const [ref] = runGraph(m.graph, [x]);
      const { graph } = optimizeModel(write(model), {});
      const [got] = runGraph(graph, [x]);
      assert.deepEqual(got.shape, ref.shape);
      const r = Array.from(numeric(ref));
      Array.from(numeric(got)).forEach((v, i) =>
        assert.ok(Math.abs(v - r[i]) <= 1e-4 * Math.max(1, Math.abs(r[i])), `[${i}] ${v} vs ${r[i]}`),
      );
    });
    for (const target of ['cuda:sm90', 'cuda:sm80'])
      it(`${name}: compiles for ${target}; nvcc compiles model.cu`, () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-d2s-out-'));
        const result = compileModel(write(model), { out: dir, target, maxBatch: 4 });
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        if (haveNvcc())
          nvccCompileGenerated(dir, ['src/model.cu'], target === 'cuda:sm80' ? 'arch=compute_80,code=sm_80' : 'arch=compute_90,code=sm_90');
      });
  }
});
