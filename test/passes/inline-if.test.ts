/**
 * inline-if: an If with a run-time condition becomes its branches' nodes, each guarded by the condition, and an
 * ait.if_select of the outputs. Checked: the optimized graph has no If, gives the original's outputs in the
 * interpreter for both conditions (and the original matches onnxruntime), and on cuda:sm90/sm80 compiles with the
 * condition read back once, each guarded launch wrapped in `if`, the select's copy and its run-time output size;
 * nvcc compiles the generated model.cu.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel, optimizeModel } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { inferShapes } from '../../compiler/passes/shape-inference';
import { makeTensor, numeric } from '../../compiler/ir/tensor';
import { GraphSpec, ModelSpec, buildModel } from '../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated, gencodeOf } from '../helpers/nvcc';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');

/** y = if sum(x) > 0 then relu(x)[:, :3] * 2 else concat(x, -x) along axis 1: the branches' widths differ. */
function model(): ModelSpec {
  const thenBranch: GraphSpec = {
    name: 'then',
    inputs: [],
    initializers: [
      { name: 'starts', dtype: 'int64', dims: [1], values: [0] },
      { name: 'ends', dtype: 'int64', dims: [1], values: [3] },
      { name: 'axes', dtype: 'int64', dims: [1], values: [1] },
      { name: 'two', dtype: 'float32', dims: [], values: [2] },
    ],
    nodes: [
      { op: 'Relu', name: 'relu', inputs: ['x'], outputs: ['r'] },
      { op: 'Slice', name: 'first3', inputs: ['r', 'starts', 'ends', 'axes'], outputs: ['s'] },
      { op: 'Mul', name: 'double', inputs: ['s', 'two'], outputs: ['t'] },
    ],
    outputs: ['t'],
  };
  const elseBranch: GraphSpec = {
    name: 'else',
    inputs: [],
    nodes: [
      { op: 'Neg', name: 'neg', inputs: ['x'], outputs: ['n'] },
      { op: 'Concat', name: 'both', inputs: ['x', 'n'], outputs: ['e'], attrs: { axis: 1 } },
    ],
    outputs: ['e'],
  };
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [2, 8] }],
    initializers: [{ name: 'zero', dtype: 'float32', dims: [], values: [0] }],
    nodes: [
      { op: 'ReduceSum', name: 'total', inputs: ['x'], outputs: ['sum'], attrs: { keepdims: 0 } },
      { op: 'Greater', name: 'positive', inputs: ['sum', 'zero'], outputs: ['c'] },
      { op: 'If', name: 'choose', inputs: ['c'], outputs: ['y'], attrs: { then_branch: thenBranch, else_branch: elseBranch } },
      { op: 'Sigmoid', name: 'after', inputs: ['y'], outputs: ['z'] },
    ],
    outputs: [{ name: 'z', dtype: 'float32', dims: [2, null] }],
    opset: 13,
  };
}

function writeModel(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-inline-if-'));
  const file = path.join(dir, 'if.onnx');
  fs.writeFileSync(file, buildModel(model()));
  return file;
}

const inputs = {
  positive: Array.from({ length: 16 }, (_, i) => (i % 3) - 0.5),
  negative: Array.from({ length: 16 }, (_, i) => -((i % 3) + 0.5)),
};

describe('inline-if pass (If with a run-time condition)', () => {
  it('leaves no If: guarded branch nodes and an if_select that give the original outputs, for both conditions', async () => {
    const file = writeModel();
    const original = importOnnxBytes(fs.readFileSync(file));
    inferShapes(original.graph);
    const { graph } = optimizeModel(file, {});
    assert.equal(
      graph.nodes.some((n) => n.op === 'If'),
      false,
    );
    const select = graph.nodes.find((n) => n.op === 'if_select')!;
    assert.ok(select, 'an if_select');
    assert.equal(select.name, 'choose');
    const guarded = graph.nodes.filter((n) => n.guard);
    assert.deepEqual(new Set(guarded.map((n) => n.guard!.taken)), new Set([true, false]));
    assert.ok(
      guarded.every((n) => graph.nodes.indexOf(n) < graph.nodes.indexOf(select)),
      'branch nodes run before the select',
    );
    const session = await ort.InferenceSession.create(file);
    for (const [which, data] of Object.entries(inputs)) {
      const x = makeTensor('float32', [2, 8], data);
      const [expected] = runGraph(original.graph, [x]);
      const [actual] = runGraph(graph, [x]);
      assert.deepEqual(actual.shape, expected.shape, which);
      assert.deepEqual(Array.from(numeric(actual)), Array.from(numeric(expected)), which);
      const ref = await session.run({ x: new ort.Tensor('float32', Float32Array.from(data), [2, 8]) });
      assert.deepEqual(expected.shape, [...ref.z.dims], `${which}: reference shape vs onnxruntime`);
      const z = ref.z.data as Float32Array;
      Array.from(numeric(expected)).forEach((v, i) => assert.ok(Math.abs(v - z[i]) < 1e-6, `${which}: element ${i}`));
    }
    assert.equal(inputs.positive.reduce((a, b) => a + b, 0) > 0, true);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: the condition is read back once; guarded launches, the select's copy and its run-time size`, function () {
      const file = writeModel();
      const out = path.join(path.dirname(file), `out-${target.replace(':', '-')}`);
      const result = compileModel(file, { out, target, maxBatch: 1 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const src = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
      assert.equal((src.match(/ait::read_device\(c, &condition,/g) ?? []).length, 1, 'one read of the condition');
      assert.match(src, /if \(c\.dims\[0\] != 0\) \{/);
      assert.match(src, /if \(c\.dims\[0\] == 0\) \{/);
      // the output width is 3 (then) or 16 (else): a run-time dim set by the select
      assert.match(src, /c\.dims\[1\] = c\.dims\[0\] \? 3 : 16;/);
      assert.match(src, /cudaMemcpyAsync\([^;]*c\.dims\[0\] \? /);
      assert.match(src, /if \(!\(c\.dims\[0\] (!=|==) 0\)\) return false;\s{2}\/\/ its If branch was not taken/);
      if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], gencodeOf(target));
    });
});
