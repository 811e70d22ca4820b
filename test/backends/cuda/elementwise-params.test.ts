/**
 * The fused elementwise kernels take their inputs by value, and kernel parameters are at most 4 KB on every target
 * (ELEMENTWISE_PARAM_BYTES of ops/fused.ts; kernels/elementwise.cuh asserts it at compile time). A sum of 48 inputs
 * is fused into groups that each stay within it, and a Concat stays where its pieces would take a group past it. The
 * bound the compiler uses is at least what the kernels' argument structs take (nvcc evaluates static_asserts on
 * sizeof), the interpreter on the optimized graph matches onnxruntime, and nvcc compiles the generated model.cu (where
 * the launchers assert the 4 KB).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { runGraphNamed } from '../../../compiler/interpreter/interpreter';
import { Graph, Node, attrGraph } from '../../../compiler/ir/graph';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { ELEMENTWISE_PARAM_BYTES, concatSlotsOf, elementwiseParamBytes, elementwiseSlotsOf } from '../../../compiler/ops/fused';
import { ModelSpec, buildModel } from '../../helpers/onnx-builder';
import { gencodeOf, haveNvcc, nvccCompileCutlass, nvccCompileGenerated } from '../../helpers/nvcc';

const SUMMANDS = 48;
const PIECES = 60;
const OTHERS = 14;

/**
 * `sum` = Relu(i0 + i1 + … + i47), each iK [B, 40]; `mixed` = Concat of 60 pieces pK [B, 1] on axis 1, plus
 * o0 … o13 [B, 60] one after another (the group's 15 slots and 14 nodes leave no room for the 60 pieces).
 */
function model(): ModelSpec {
  const summands = Array.from({ length: SUMMANDS }, (_, k) => `i${k}`);
  const pieces = Array.from({ length: PIECES }, (_, k) => `p${k}`);
  const others = Array.from({ length: OTHERS }, (_, k) => `o${k}`);
  const nodes: ModelSpec['nodes'] = [];
  let acc = summands[0];
  for (let k = 1; k < SUMMANDS; k++) {
    nodes.push({ op: 'Add', inputs: [acc, summands[k]], outputs: [`s${k}`] });
    acc = `s${k}`;
  }
  nodes.push({ op: 'Relu', inputs: [acc], outputs: ['sum'] });
  nodes.push({ op: 'Concat', inputs: pieces, outputs: ['cat'], attrs: { axis: 1 } });
  acc = 'cat';
  for (let k = 0; k < OTHERS; k++) {
    nodes.push({ op: 'Add', inputs: [acc, others[k]], outputs: [k === OTHERS - 1 ? 'mixed' : `m${k}`] });
    acc = `m${k}`;
  }
  return {
    inputs: [
      ...summands.map((name) => ({ name, dtype: 'float32' as const, dims: ['B', 40] })),
      ...pieces.map((name) => ({ name, dtype: 'float32' as const, dims: ['B', 1] })),
      ...others.map((name) => ({ name, dtype: 'float32' as const, dims: ['B', PIECES] })),
    ],
    outputs: ['sum', 'mixed'],
    nodes,
  };
}

function write(spec: ModelSpec): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ewparams-'));
  const file = path.join(dir, 'many-inputs.onnx');
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

/** The compiler's bound of a fused node's kernel parameters. */
function paramBytes(n: Node): number {
  const slots = elementwiseSlotsOf(n);
  const pieces = concatSlotsOf(n).reduce((a, c) => a + c.extents.length, 0);
  return elementwiseParamBytes(slots.length, pieces, attrGraph(n, 'body').nodes.length);
}

const fusedOf = (graph: Graph) => graph.nodes.filter((n) => n.op === 'elementwise');

describe('cuda backend: fused elementwise kernels stay within 4 KB of parameters', function () {
  this.timeout(600_000);
  const file = write(model());

  it('a sum of 48 inputs is fused into groups within the bound; a Concat that would pass it stays', () => {
    const { graph } = optimizeModel(file, { validate: true });
    const fused = fusedOf(graph);
    for (const n of fused) assert.ok(paramBytes(n) <= ELEMENTWISE_PARAM_BYTES, `${n.name}: ${paramBytes(n)} bytes`);
    // the 47 Adds and the Relu: more than one group (one group would take 48 slots, ~7 KB), none of them lone
    const adds = fused.filter((n) => attrGraph(n, 'body').nodes.some((b) => b.op === 'Add') && n.outputs[0] !== 'mixed');
    assert.ok(adds.length >= 2, `${adds.length} groups`);
    const summed = adds.reduce((a, n) => a + attrGraph(n, 'body').nodes.filter((b) => b.op === 'Add').length, 0);
    const mixed = fused.find((n) => n.outputs[0] === 'mixed')!;
    assert.equal(summed, SUMMANDS - 1);
    // the Concat's 60 pieces would take the 14 Adds' group to 4,368 bytes: the Concat stays, the group reads it whole
    assert.equal(graph.nodes.filter((n) => n.op === 'Concat').length, 1);
    assert.deepEqual(concatSlotsOf(mixed), []);
    assert.equal(attrGraph(mixed, 'body').nodes.length, OTHERS);
  });

  it('the interpreter on the optimized graph matches onnxruntime on the original', async () => {
    const spec = model();
    const r = seededRandom(3);
    const inputs = spec.inputs.map((i) => {
      const dims = [2, ...((i.dims ?? []).slice(1) as number[])];
      return makeTensor(
        'float32',
        dims,
        Array.from({ length: dims[0] * dims[1] }, () => 2 * r() - 1),
      );
    });
    const { graph } = optimizeModel(file, {});
    const ours = runGraphNamed(graph, inputs);
    const session = await ort.InferenceSession.create(file);
    const feeds = Object.fromEntries(
      spec.inputs.map((i, k) => [i.name, new ort.Tensor('float32', Float32Array.from(numeric(inputs[k])), inputs[k].shape)]),
    );
    const theirs = await session.run(feeds);
    for (const name of ['sum', 'mixed']) {
      const a = numeric(ours.get(name)!);
      const b = theirs[name].data as Float32Array;
      assert.equal(a.length, b.length, name);
      for (let i = 0; i < a.length; i++)
        assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * (1 + Math.abs(b[i])), `${name}[${i}]: ${a[i]} vs ${b[i]}`);
    }
  });

  it("the compiler's bound is at least the size of the kernels' argument structs (nvcc static_asserts)", function () {
    if (!haveNvcc()) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ewparams-sizeof-'));
    const cases: [number, number][] = [
      [1, 0],
      [2, 0],
      [13, 0],
      [24, 0],
      [1, 64],
      [4, 32],
      [12, 64],
    ];
    const asserts = cases.flatMap(([slots, pieces]) => [
      `static_assert(sizeof(ew::ElementwiseArgs<__half, ${slots}, ${pieces}>) <= ${elementwiseParamBytes(slots, pieces, 0)}, "fp16 ${slots}/${pieces}");`,
      `static_assert(sizeof(ew::MixedArgs<__half, ${slots}, ${pieces}>) <= ${elementwiseParamBytes(slots, pieces, 0)}, "mixed ${slots}/${pieces}");`,
    ]);
    const source = path.join(dir, 'sizes.cu');
    fs.writeFileSync(source, ['#include "elementwise.cuh"', 'using namespace ait::kernels;', ...asserts, ''].join('\n'));
    nvccCompileCutlass(source, '-arch=sm_90');
  });

  it('compiles for cuda:sm90; nvcc compiles model.cu, whose launchers assert the 4 KB', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ewparams-out-'));
    const result = compileModel(file, { out: dir, target: 'cuda:sm90', maxBatch: 4 });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    if (haveNvcc()) nvccCompileGenerated(dir, ['src/model.cu'], gencodeOf('cuda:sm90'));
  });
});
