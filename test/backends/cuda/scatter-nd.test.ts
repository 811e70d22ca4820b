/**
 * ScatterND on the CUDA backend. No GPU here, so scatter.cuh's three paths (the column kernel; the election of the
 * last duplicate tuple then a thread per update element, for reduction none; the compare-and-swap element kernel for
 * the reductions) are replayed in TypeScript on what the lowering hands them and compared with the interpreter (the
 * reference, checked against onnxruntime in test/ops/scatter-nd.test.ts). Refusals carry their reason; a chained
 * ScatterND writes in place; a model with the batch in its tuples and slices compiles for sm90 and sm80 with no
 * unsupported node, its workspace reserved for the election, and nvcc compiles its model.cu (skipped without nvcc).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { scatterNDPlan, scatterNDWorkspaceBytes } from '../../../compiler/backends/cuda/codegen/scatter-lowering';
import { supportOf } from '../../../compiler/backends/support';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { planMemory } from '../../../compiler/passes/memory-plan';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { AttrSpec, ModelSpec, buildModel, input, nodeModel } from '../../helpers/onnx-builder';
import { nvccCompileGenerated, requireNvcc, GPU_TARGETS } from '../../helpers/nvcc';

// ---- scatter.cuh ScatterND replayed ----

interface Args {
  output: Float64Array;
  indices: number[];
  updates: number[];
  tuples: number;
  slice: number;
  k: number;
  dims: number[];
  reduction: string;
}

function combine(reduction: string, old: number, v: number): number {
  if (reduction === 'add') return old + v;
  if (reduction === 'mul') return old * v;
  if (reduction === 'max') return Math.max(old, v);
  if (reduction === 'min') return Math.min(old, v);
  return v;
}

/** scatter_nd_position: the row-major slice position of tuple t, or -1 when an entry is out of range. */
function position(a: Args, t: number): number {
  let p = 0;
  for (let m = 0; m < a.k; m++) {
    let index = a.indices[t * a.k + m];
    if (index < 0) index += a.dims[m];
    if (index < 0 || index >= a.dims[m]) return -1;
    p = p * a.dims[m] + index;
  }
  return p;
}

/** scatter_nd_columns_kernel: a thread per slice element, the tuples in order. */
function replayColumns(a: Args): void {
  for (let s = 0; s < a.slice; s++)
    for (let t = 0; t < a.tuples; t++) {
      const p = position(a, t);
      if (p < 0) continue;
      const at = p * a.slice + s;
      a.output[at] = combine(a.reduction, a.output[at], a.updates[t * a.slice + s]);
    }
}

/**
 * The element path in the order `order` of update elements (the GPU's is unspecified): reduction none elects the
 * last tuple per position first (scatter_nd_elect_kernel, winners from -1) and only the winners store.
 */
function replayElements(a: Args, order: number[]): void {
  const positions = a.dims.reduce((p, d) => p * d, 1);
  const winners = new Int32Array(positions).fill(-1);
  if (a.reduction === 'none')
    for (let t = a.tuples - 1; t >= 0; t--) {
      const p = position(a, t);
      if (p >= 0) winners[p] = Math.max(winners[p], t);
    }
  for (const i of order) {
    const t = Math.floor(i / a.slice);
    const s = i - t * a.slice;
    const p = position(a, t);
    if (p < 0) continue;
    const at = p * a.slice + s;
    if (a.reduction !== 'none') a.output[at] = combine(a.reduction, a.output[at], a.updates[i]);
    else if (winners[p] === t) a.output[at] = a.updates[i];
  }
}

function reference(spec: ModelSpec, inputs: ReturnType<typeof makeTensor>[]) {
  const model = importOnnxBytes(buildModel(spec));
  inferShapes(model.graph);
  const node = model.graph.nodes[model.graph.nodes.length - 1];
  const [expected] = runGraph(model.graph, inputs);
  return { graph: model.graph, node, expected, ctx: CodegenContext.forChecks(model.graph) };
}

function refusal(spec: ModelSpec): string | undefined {
  const model = importOnnxBytes(buildModel(spec));
  inferShapes(model.graph);
  return supportOf(model.graph, model.graph.nodes[model.graph.nodes.length - 1], 'cuda:sm90').reason;
}

/** x → Relu → ScatterND(rows of the batch, reduction none) → ScatterND(element tuples, reduction add) → Neg → y. */
function chainModel(): ModelSpec {
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', 64, 8] },
      { name: 'rows', dtype: 'int64', dims: ['B', 1] },
      { name: 'rowValues', dtype: 'float32', dims: ['B', 64, 8] },
      { name: 'cells', dtype: 'int64', dims: [1000, 3] },
      { name: 'cellValues', dtype: 'float32', dims: [1000] },
    ],
    nodes: [
      { op: 'Relu', inputs: ['x'], outputs: ['r'] },
      { op: 'ScatterND', name: 'put_rows', inputs: ['r', 'rows', 'rowValues'], outputs: ['s'] },
      { op: 'ScatterND', name: 'put_cells', inputs: ['s', 'cells', 'cellValues'], outputs: ['t'] },
      { op: 'Neg', inputs: ['t'], outputs: ['y'] },
    ],
    outputs: ['y'],
    opset: 16,
  };
}

describe('cuda backend: ScatterND', function () {
  this.timeout(600_000);

  describe('the column, elected and compare-and-swap paths replayed compute the interpreter ScatterND', () => {
    const cases: { name: string; data: number[]; indices: number[]; reduction?: string }[] = [
      { name: 'rows of a cache, duplicates, reduction none', data: [6, 4, 5], indices: [9, 1] },
      { name: 'single elements (k = rank), duplicates, reduction none', data: [4, 3, 5], indices: [40, 3] },
      { name: 'add of [2,3]-tuple blocks', data: [5, 4, 3], indices: [3, 4, 2], reduction: 'add' },
      { name: 'mul', data: [4, 6], indices: [10, 1], reduction: 'mul' },
      { name: 'max', data: [3, 3, 2], indices: [20, 2], reduction: 'max' },
      { name: 'min, tuples of the whole rank 6', data: [2, 2, 1, 3, 2, 2], indices: [30, 6], reduction: 'min' },
    ];
    for (const k of cases)
      it(k.name, () => {
        const random = seededRandom(23);
        const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
        const tupleLength = k.indices[k.indices.length - 1];
        const updatesShape = [...k.indices.slice(0, -1), ...k.data.slice(tupleLength)];
        const data = Array.from({ length: count(k.data) }, () => Math.round(random() * 8 - 4) / 2);
        const updates = Array.from({ length: count(updatesShape) }, () => Math.round(random() * 8 - 4) / 2);
        // in range, negative ones included, duplicates likely
        const indices = Array.from({ length: count(k.indices) }, (_, i) => {
          const size = k.data[i % tupleLength];
          return Math.floor(random() * 2 * size) - size;
        });
        const attrs: Record<string, AttrSpec> = {};
        if (k.reduction) attrs.reduction = k.reduction;
        const spec = nodeModel('ScatterND', [input('float32', k.data), input('int64', k.indices), input('float32', updatesShape)], {
          attrs,
          opset: 18,
        });
        const { node, expected, ctx } = reference(spec, [
          makeTensor('float32', k.data, data),
          makeTensor('int64', k.indices, indices),
          makeTensor('float32', updatesShape, updates),
        ]);
        const plan = scatterNDPlan(ctx, node);
        assert.equal(plan.k, tupleLength);
        const args = (): Args => ({
          output: Float64Array.from(data), // the launcher's copy of data
          indices,
          updates,
          tuples: Number(plan.tuples),
          slice: Number(plan.slice),
          k: plan.k,
          dims: plan.dims.map(Number),
          reduction: plan.reduction,
        });
        const columns = args();
        replayColumns(columns);
        assert.deepEqual(Array.from(columns.output), Array.from(numeric(expected)), 'column kernel');
        // the element path in reverse order: the election keeps the last tuple whatever order the threads run in
        const elements = args();
        replayElements(
          elements,
          updates.map((_, i) => updates.length - 1 - i),
        );
        assert.deepEqual(Array.from(elements.output), Array.from(numeric(expected)), 'element path');
      });

    it('workspace: an int32 per slice position for reduction none on the element path, none otherwise', () => {
      assert.equal(scatterNDWorkspaceBytes('none', 20000, 8, 3200, true), 3200 * 4);
      assert.equal(scatterNDWorkspaceBytes('none', 20, 8, 3200, true), 0); // few tuples: the column kernel
      assert.equal(scatterNDWorkspaceBytes('none', 500, 40000, 300, true), 0); // long slices: the column kernel
      assert.equal(scatterNDWorkspaceBytes('none', 20, 8, 3200, false), 3200 * 4); // run-time sizes: reserved
      assert.equal(scatterNDWorkspaceBytes('add', 20000, 8, 3200, true), 0);
    });
  });

  it('refuses what the kernels do not take, with the reason', () => {
    const bools = nodeModel('ScatterND', [input('bool', [4, 3]), input('int64', [2, 1]), input('bool', [2, 3])], {
      attrs: { reduction: 'add' },
      opset: 18,
    });
    assert.match(refusal(bools) ?? '', /^ScatterND reduction 'add' of bool data$/);
    const shape7 = [2, 1, 1, 1, 1, 1, 2];
    const rank7 = nodeModel('ScatterND', [input('float32', shape7), input('int64', [3, 7]), input('float32', [3])], { opset: 18 });
    assert.match(refusal(rank7) ?? '', /^ScatterND index tuples of 7 entries \(the kernel takes at most 6\)$/);
    const plain = nodeModel('ScatterND', [input('bool', [4, 3]), input('int64', [2, 1]), input('bool', [2, 3])], { opset: 18 });
    assert.equal(refusal(plain), undefined);
    const tuples6 = nodeModel('ScatterND', [input('float32', shape7), input('int64', [3, 6]), input('float32', [3, 2])], { opset: 18 });
    assert.equal(refusal(tuples6), undefined);
  });

  it('a ScatterND over the previous one writes in place, and the optimized graph computes what the original does', () => {
    const spec = chainModel();
    const result = optimizeImported(importOnnxBytes(buildModel(spec)), 'chain.onnx', { validate: true });
    assert.deepEqual(
      result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const graph = result.graph;
    const plan = planMemory(graph, 8);
    const [first, second] = graph.nodes.filter((n) => n.op === 'ScatterND');
    assert.notEqual(plan.offsets[first.outputs[0]], undefined);
    assert.equal(plan.offsets[first.outputs[0]], plan.offsets[first.inputs[0]]);
    assert.equal(plan.offsets[second.outputs[0]], plan.offsets[first.outputs[0]]);
    const random = seededRandom(29);
    const B = 3;
    const inputs = [
      makeTensor(
        'float32',
        [B, 64, 8],
        Array.from({ length: B * 512 }, () => random() * 2 - 1),
      ),
      makeTensor('int64', [B, 1], [2, -3, 1]),
      makeTensor(
        'float32',
        [B, 64, 8],
        Array.from({ length: B * 512 }, () => random()),
      ),
      makeTensor(
        'int64',
        [1000, 3],
        Array.from({ length: 3000 }, (_, i) => Math.floor(random() * [B, 64, 8][i % 3])),
      ),
      makeTensor(
        'float32',
        [1000],
        Array.from({ length: 1000 }, () => random()),
      ),
    ];
    const original = importOnnxBytes(buildModel(spec));
    inferShapes(original.graph);
    const [expected] = runGraph(original.graph, inputs);
    const [actual] = runGraph(graph, inputs);
    assert.deepEqual(Array.from(numeric(actual)), Array.from(numeric(expected)));
  });

  function compileChain(target: string, reduction = 'add') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-scatter-nd-'));
    const file = path.join(dir, 'chain.onnx');
    const spec = chainModel();
    spec.nodes[2].attrs = { reduction };
    fs.writeFileSync(file, buildModel(spec));
    const out = path.join(dir, 'out');
    return { out, result: compileModel(file, { out, target, maxBatch: 16 }) };
  }

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: compiles with no unsupported node, sizes from the run, the election's workspace reserved`, () => {
      const { out, result } = compileChain(target, 'none');
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { op: string; status?: { supported: boolean }; kernel?: { name: string } }[];
      };
      assert.deepEqual(
        graph.nodes.filter((n) => n.status?.supported === false).map((n) => n.op),
        [],
      );
      assert.equal(graph.nodes.filter((n) => n.kernel?.name === 'ait_scatter_nd_f16').length, 2);
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      // rows: B tuples of 512-element slices over [B]; cells: 1000 tuples of single elements over [B, 64, 8]
      assert.match(model, /ScatterNDArgs<__half, int64_t> args\{[^\n]+\n\s+[^,]+, batch, 512, 1,\n\s+\{batch\},/);
      assert.match(
        model,
        /ScatterNDArgs<__half, int64_t> args\{[^\n]+\n\s+[^,]+, 1000, 1, 3,\n\s+\{batch, 64, 8\},\n\s+ait::kernels::ScatterReduction::kNone\}/,
      );
      assert.match(model, /launch_scatter_nd\(args, c\.workspace, c\.workspace_bytes, c\.stream\)/);
      // the description's workspace covers the cells' election at the largest batch: 16 · 64 · 8 int32
      const description = /kOps, \d+, \d+, (\d+), kPrepareOps/.exec(model);
      assert.ok(description && Number(description[1]) >= 16 * 64 * 8 * 4, `workspace ${description?.[1]}`);
    });

  describe('nvcc compiles the generated model.cu for sm_80 and sm_90a', function () {
    before(function () {
      requireNvcc(this);
    });
    for (const [target, arch] of GPU_TARGETS)
      it(target, () => {
        const { out, result } = compileChain(target);
        assert.ok(result.ok);
        nvccCompileGenerated(out, ['src/model.cu'], arch);
      });
  });
});
