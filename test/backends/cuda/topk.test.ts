/**
 * TopK on the CUDA backend (kernels/topk.cuh, codegen/topk-lowering.ts). There is no GPU here and a sort has no index
 * arithmetic worth replaying, so:
 *  - the op reference (the spec the kernel follows) agrees with onnxruntime on every axis, both directions, opsets
 *    1/10/11, float/int32/int64 data, heavy ties (lower index first) and -0/+0 (equal); NaN is the largest value in
 *    the reference, as in PyTorch and the kernel (onnxruntime's comparison leaves NaN's place undefined);
 *  - the lowering hands the kernel the [outer, n, inner] view, k and largest of real nodes, every size through the
 *    context's dim rendering (a k from the batch dim is an expression of the batch; a k computed from data reaches
 *    the kernel as the context's run-time value), and sizes the workspace for the largest dims;
 *  - the TypeScript workspace formula equals the C++ one (nvcc compiles topk.cuh's, run on the host);
 *  - small models with TopK compile for sm90 and sm80 with no unsupported node, and nvcc compiles their model.cu;
 *  - the RPN's TopK nodes of Mask R-CNN are supported.
 * The kernel's GPU cases (random data, ties, NaNs, n from 1 to 250k, k = 1 and k = n, inner > 1, every path and data
 * type) are in compiler/backends/cuda/tests/kernel_check.cu.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { supportOf } from '../../../compiler/backends/support';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { topkPlan, topkSortMax, topkWorkspaceBytes } from '../../../compiler/backends/cuda/codegen/topk-lowering';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { Dim, isConcrete } from '../../../compiler/ir/symbolic';
import { DType } from '../../../compiler/ir/dtype';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel, inferModel, input, nodeModel, tensor } from '../../helpers/onnx-builder';
import { sharedModel } from '../../helpers/models';
import { KERNELS_DIR, haveNvcc, nvccCompileGenerated, requireNvcc, GPU_TARGETS } from '../../helpers/nvcc';

const i64 = (values: number[]) => tensor('int64', [values.length], values);

/** A TopK model over input `in0` of `shape` (k an initializer from opset 10, the attribute before). */
function topkModel(dtype: DType, shape: (number | string)[], k: number, attrs: Record<string, number>, opset: number): ModelSpec {
  return opset < 10
    ? nodeModel('TopK', [input(dtype, shape)], { attrs: { ...attrs, k }, outputs: 2, opset })
    : nodeModel('TopK', [input(dtype, shape), i64([k])], { attrs, outputs: 2, opset });
}

const ORT_TYPES: Record<string, (data: number[]) => ort.Tensor['data']> = {
  float32: (d) => Float32Array.from(d),
  int32: (d) => Int32Array.from(d),
  int64: (d) => BigInt64Array.from(d.map((v) => BigInt(v))),
};

describe('cuda backend: TopK', function () {
  this.timeout(600_000);

  describe('the reference agrees with onnxruntime (ties: lower index first)', () => {
    const cases: {
      name: string;
      dtype: 'float32' | 'int32' | 'int64';
      shape: number[];
      k: number;
      axis?: number;
      largest?: number;
      opset: number;
    }[] = [
      { name: 'last axis, largest, opset 11', dtype: 'float32', shape: [3, 50], k: 10, opset: 11 },
      { name: 'middle axis, smallest, k = n', dtype: 'float32', shape: [2, 40, 3], k: 40, axis: 1, largest: 0, opset: 11 },
      { name: 'axis 0, opset 1 (k attribute)', dtype: 'float32', shape: [30, 4], k: 5, axis: 0, opset: 1 },
      { name: 'negative axis, opset 10', dtype: 'float32', shape: [4, 33, 2], k: 1, axis: -2, opset: 10 },
      { name: 'int64, smallest', dtype: 'int64', shape: [5, 64], k: 17, largest: 0, opset: 11 },
      { name: 'int32, largest, inner axis', dtype: 'int32', shape: [2, 70, 5], k: 70, axis: 1, opset: 11 },
    ];
    for (const c of cases)
      it(c.name, async () => {
        const attrs: Record<string, number> = {};
        if (c.axis !== undefined) attrs.axis = c.axis;
        if (c.largest !== undefined) attrs.largest = c.largest;
        const spec = topkModel(c.dtype, c.shape, c.k, attrs, c.opset);
        const random = seededRandom(c.shape.length * 31 + c.k);
        const count = c.shape.reduce((a, b) => a * b, 1);
        // 9 distinct values: every row holds many ties; floats: -0 next to +0 (equal, so ordered by index; values are
        // compared with their sign)
        const data = Array.from({ length: count }, (_, i) => (i % 11 === 5 && c.dtype === 'float32' ? -0 : Math.floor(random() * 9) - 4));
        const m = inferModel(spec);
        assert.deepEqual(m.errors, []);
        const [values, indices] = runGraph(m.graph, [makeTensor(c.dtype, c.shape, data)]);
        const session = await ort.InferenceSession.create(buildModel(spec));
        const theirs = await session.run({ in0: new ort.Tensor(c.dtype, ORT_TYPES[c.dtype](data), c.shape) });
        assert.deepEqual(indices.shape, [...theirs.out1.dims]);
        assert.deepEqual(Array.from(numeric(indices)), Array.from(theirs.out1.data as BigInt64Array, Number));
        const expected = Array.from(theirs.out0.data as ArrayLike<number | bigint>, Number);
        assert.deepEqual(Array.from(numeric(values)), expected);
      });
  });

  describe('the lowering: the [outer, n, inner] view, k and largest of real nodes', () => {
    /** Optimizes `spec` and returns the plan of its TopK node, from a context whose dims render symbols visibly. */
    function optimizedTopK(spec: ModelSpec) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-topk-plan-'));
      const file = path.join(dir, 'm.onnx');
      fs.writeFileSync(file, buildModel(spec));
      const { graph } = optimizeModel(file);
      const node = graph.nodes.find((n) => n.op === 'TopK')!;
      const ctx = CodegenContext.forChecks(graph);
      // a run-time dim (the lead's data-dependent values) as the context would render it: here a visible marker
      const runtime = Object.create(ctx) as CodegenContext;
      runtime.dim = (d: Dim, n) => (isConcrete(d) || d.symbols.every((s) => s === ctx.batchSymbol) ? ctx.dim(d, n) : `rt(${d.toString()})`);
      runtime.product = (dims: readonly Dim[], n) =>
        dims.every((d) => runtime.dim(d, n) === ctx.dim(d, n)) ? ctx.product(dims, n) : dims.map((d) => runtime.dim(d, n)).join(' * ');
      return { graph, node, plan: () => topkPlan(runtime, node) };
    }

    it('last axis of [B, 5, 100000], k = 1000 largest: outer 5·batch, inner 1', () => {
      const p = optimizedTopK(topkModel('float32', ['B', 5, 100000], 1000, {}, 11)).plan();
      assert.deepEqual(p.cpp, { outer: '5 * batch', n: '100000', inner: '1', k: '1000' });
      assert.equal(p.largest, true);
      assert.equal(p.type, 'half');
    });

    it('middle axis of int64 [B, 7, 3], smallest (opset 1 attribute k): inner 3, k 4', () => {
      const p = optimizedTopK(topkModel('int64', ['B', 7, 3], 4, { axis: 1, largest: 0 }, 1)).plan();
      assert.deepEqual(p.cpp, { outer: 'batch', n: '7', inner: '3', k: '4' });
      assert.equal(p.largest, false);
      assert.equal(p.type, 'int64');
    });

    it('k from the batch dim (Shape(x)[0], axis 0): n and k are expressions of the batch', () => {
      const p = optimizedTopK({
        opset: 11,
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 6] }],
        initializers: [{ name: 'zero', dtype: 'int64', dims: [1], values: [0] }],
        nodes: [
          { op: 'Shape', inputs: ['x'], outputs: ['s'] },
          { op: 'Gather', inputs: ['s', 'zero'], outputs: ['k'] },
          { op: 'TopK', inputs: ['x', 'k'], outputs: ['v', 'i'], attrs: { axis: 0 } },
        ],
        outputs: ['v', 'i'],
      }).plan();
      assert.deepEqual(p.cpp, { outer: '1', n: 'batch', inner: '6', k: 'batch' });
    });

    it('k computed from data: the output dim is a bounded symbol, handed to the kernel as a run-time value', () => {
      const { graph, plan: planOf } = optimizedTopK({
        opset: 11,
        inputs: [
          { name: 'scores', dtype: 'float32', dims: [1, 4000] },
          { name: 'k', dtype: 'int64', dims: [1] },
        ],
        nodes: [{ op: 'TopK', inputs: ['scores', 'k'], outputs: ['v', 'i'], attrs: { axis: 1 } }],
        outputs: ['v', 'i'],
      });
      const p = planOf();
      assert.match(p.cpp.k, /^rt\(topk_\d+\)$/);
      assert.deepEqual([p.cpp.outer, p.cpp.n, p.cpp.inner], ['1', '4000', '1']);
      // the workspace is sized for the symbol's bound (k ≤ n)
      const ctx = CodegenContext.forChecks(graph);
      assert.equal(ctx.maxOf(p.dims.k!), 4000);
    });

    it('an output the model does not read is not written (nullptr)', () => {
      const spec = topkModel('float32', ['B', 9000], 100, {}, 11);
      spec.outputs = ['out1'];
      const p = optimizedTopK(spec).plan();
      assert.equal(p.values, undefined);
      assert.equal(p.indices, 'out1');
    });

    it('uint8 data is refused with the reason', () => {
      const { graph, node } = optimizedTopK(nodeModel('TopK', [input('uint8', ['B', 8]), i64([2])], { outputs: 2, opset: 11 }));
      assert.match(supportOf(graph, node, 'cuda:sm90').reason ?? '', /^TopK of uint8 data/);
    });
  });

  describe('the workspace: TypeScript formula = topk_workspace_bytes', () => {
    const grid: { type: 'half' | 'int32' | 'int64'; rows: number; n: number; k: number }[] = [];
    for (const type of ['half', 'int32', 'int64'] as const)
      for (const rows of [1, 3, 15, 16, 17, 300, 511, 512, 513, 5000])
        for (const [n, k] of [
          [64, 64],
          [2048, 100],
          [2049, 2049],
          [4096, 4096],
          [4097, 1],
          [91200, 1000],
          [250000, 250000],
          [250000, 4096],
          [250000, 4097],
        ])
          grid.push({ type, rows, n, k });

    it('grows with rows, n and k (so the largest dims bound every run)', () => {
      const random = seededRandom(5);
      for (let t = 0; t < 2000; t++) {
        const type = (['half', 'int32', 'int64'] as const)[t % 3];
        const rows = 1 + Math.floor(random() * 2000);
        const n = 1 + Math.floor(random() * 300000);
        const k = 1 + Math.floor(random() * n);
        const bytes = topkWorkspaceBytes(type, rows, n, k);
        for (const [r2, n2, k2] of [
          [rows + 1 + Math.floor(random() * 100), n, k],
          [rows, n + 1 + Math.floor(random() * 10000), k],
          [rows, n + 1 + Math.floor(random() * 10000), Math.min(n, k + 1 + Math.floor(random() * 5000))],
        ])
          assert.ok(topkWorkspaceBytes(type, r2, n2, k2) >= bytes, `${type} (${rows}, ${n}, ${k}) → (${r2}, ${n2}, ${k2})`);
      }
      assert.equal(topkWorkspaceBytes('half', 1000, topkSortMax('half'), 10), 0);
      assert.equal(topkWorkspaceBytes('int64', 1000, 2048, 10), 0);
      assert.ok(topkWorkspaceBytes('int64', 1, 2049, 10) > 0);
    });

    it('nvcc: the C++ function gives the same bytes', function () {
      if (!haveNvcc()) this.skip();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-topk-ws-'));
      const source = path.join(dir, 'ws.cu');
      const cpp = { half: '__half', int32: 'int32_t', int64: 'int64_t' };
      fs.writeFileSync(
        source,
        [
          '#include <cstdio>',
          '#include "topk.cuh"',
          'using namespace ait::kernels;',
          'int main() {',
          ...grid.map((g) => `  std::printf("%zu\\n", topk_workspace_bytes<${cpp[g.type]}>(${g.rows}, ${g.n}, ${g.k}));`),
          '  return 0;',
          '}',
        ].join('\n'),
      );
      const exe = path.join(dir, 'ws');
      const built = spawnSync('nvcc', ['-std=c++17', `-I${KERNELS_DIR}`, source, '-o', exe], { encoding: 'utf8' });
      assert.equal(built.status, 0, built.stderr);
      const ran = spawnSync(exe, [], { encoding: 'utf8' });
      assert.equal(ran.status, 0, ran.stderr);
      const bytes = ran.stdout.trim().split('\n').map(Number);
      assert.deepEqual(
        bytes,
        grid.map((g) => topkWorkspaceBytes(g.type, g.rows, g.n, g.k)),
      );
    });
  });

  /** fp16 scores [B, 3, 20000] (the select path) and int64 [B, 7, 3] (row sort, middle axis, smallest, opset 1 k). */
  function opsModel(opset: number): ModelSpec {
    return {
      opset,
      inputs: [
        { name: 'x', dtype: 'float32', dims: ['B', 3, 20000] },
        { name: 'y', dtype: 'int64', dims: ['B', 7, 3] },
      ],
      initializers: opset >= 10 ? [{ name: 'k', dtype: 'int64', dims: [1], values: [1000] }] : [],
      nodes: [
        opset >= 10
          ? { op: 'TopK', name: 'scores_topk', inputs: ['x', 'k'], outputs: ['v', 'i'] }
          : { op: 'TopK', name: 'scores_topk', inputs: ['x'], outputs: ['v', 'i'], attrs: { k: 1000 } },
        { op: 'Relu', name: 'relu', inputs: ['v'], outputs: ['r'] },
        ...(opset >= 11
          ? [{ op: 'TopK', name: 'ints_topk', inputs: ['y', 'k4'], outputs: ['v2', 'i2'], attrs: { axis: 1, largest: 0 } }]
          : []),
      ],
      outputs: opset >= 11 ? ['r', 'i', 'v2', 'i2'] : ['r', 'i'],
    };
  }

  function compileOps(target: string, opset: number) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-topk-'));
    const file = path.join(dir, 'topk.onnx');
    const spec = opsModel(opset);
    if (opset >= 11) spec.initializers!.push({ name: 'k4', dtype: 'int64', dims: [1], values: [4] });
    fs.writeFileSync(file, buildModel(spec));
    const out = path.join(dir, 'out');
    return { out, result: compileModel(file, { out, target, maxBatch: 4 }) };
  }

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    for (const opset of [1, 11])
      it(`${target}, opset ${opset}: every TopK on ait_topk, the arguments and the workspace in model.cu`, () => {
        const { out, result } = compileOps(target, opset);
        assert.deepEqual(
          result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
          [],
        );
        const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
          nodes: { op: string; kernel?: { name: string }; status?: { supported: boolean } }[];
        };
        const topks = graph.nodes.filter((n) => n.op === 'TopK');
        assert.equal(topks.length, opset >= 11 ? 2 : 1);
        assert.deepEqual(
          topks.map((n) => n.kernel?.name),
          opset >= 11 ? ['ait_topk_f16', 'ait_topk_int64'] : ['ait_topk_f16'],
        );
        const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
        assert.match(model, /TopKArgs<__half> args\{[^}]*\n\s+3 \* batch, 20000, 1, 1000, true\};/);
        if (opset >= 11) assert.match(model, /TopKArgs<int64_t> args\{[^}]*\n\s+batch, 7, 3, 4, false\};/);
        assert.match(model, /launch_topk\(args, c\.workspace, c\.workspace_bytes, c\.stream\)/);
        // the model's workspace: TopK's at max batch 4 (rows 12, n 20000, k 1000), the only op that needs one
        assert.match(model, new RegExp(`kOps, ${opset >= 11 ? 3 : 2}, \\d+, ${topkWorkspaceBytes('half', 12, 20000, 1000)}, kPrepareOps`));
      });

  describe('nvcc compiles the generated model.cu for sm_80 and sm_90a', function () {
    before(function () {
      requireNvcc(this);
    });
    for (const [target, arch] of GPU_TARGETS)
      it(target, () => {
        const { out, result } = compileOps(target, 11);
        assert.ok(result.ok);
        nvccCompileGenerated(out, ['src/model.cu'], arch);
      });
  });

  it("Mask R-CNN: the RPN's TopK nodes (constant k over each FPN level's anchors) are supported", function () {
    const file = sharedModel('maskrcnn_resnet50_fpn', this);
    const { graph } = optimizeModel(file);
    const topks = graph.nodes.filter((n) => n.op === 'TopK');
    assert.equal(topks.length, 5);
    for (const node of topks) assert.deepEqual(supportOf(graph, node, 'cuda:sm90'), { supported: true }, node.name);
  });
});
