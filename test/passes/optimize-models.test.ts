/**
 * The optimizer on real models: the optimized graph computes what the original computes (CPU interpreter, seeded
 * random weights and inputs), kernel counts meet the targets, every ONNX node is accounted for, and the activation
 * arena is small.
 *
 * Runtime on a 2-core machine: ResNet-50 ~20 s, each ViT-B/16 ~1–2 min (the interpreter runs both graphs).
 */
import * as assert from 'node:assert/strict';
import '../../compiler/ops';
import { optimizeImported } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { Graph, Node } from '../../compiler/ir/graph';
import { TensorValue, makeTensor } from '../../compiler/ir/tensor';
import { importOnnxBytes, importOnnxFile } from '../../compiler/onnx/import';
import { materializeWeights, normalSampler } from '../../compiler/onnx/materialize';
import { isKernel } from '../../compiler/passes/cost';
import { inferShapes } from '../../compiler/passes/shape-inference';
import { MemoryPlan } from '../../compiler/passes/memory-plan';
import { sharedModel } from '../helpers/models';
import { relativeL2 } from '../helpers/metrics';

function randomInput(shape: number[], seed: number): TensorValue {
  const t = makeTensor('float32', shape);
  const normal = normalSampler(seed);
  const data = t.data as Float32Array;
  for (let i = 0; i < data.length; i++) data[i] = normal();
  return t;
}

function kernels(graph: Graph): Node[] {
  return graph.nodes.filter((n) => isKernel(graph, n));
}

function countOps(nodes: Node[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of nodes) out[n.op] = (out[n.op] ?? 0) + 1;
  return out;
}

/** Seeded weights, then the original (inferred) and the optimized graph on one random input. */
function compareOptimized(name: string, file: string, inputShape: number[]) {
  const source = importOnnxFile(file);
  const { bytes } = materializeWeights(source, { seed: 3 });
  const original = importOnnxBytes(bytes);
  inferShapes(original.graph);
  const optimized = optimizeImported(importOnnxBytes(bytes), file, { validate: true });
  const errors = optimized.context.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errors, []);
  const input = randomInput(inputShape, 11);
  let t0 = performance.now();
  const [expected] = runGraph(original.graph, [input]);
  const originalMs = performance.now() - t0;
  t0 = performance.now();
  const [actual] = runGraph(optimized.graph, [input]);
  const optimizedMs = performance.now() - t0;
  assert.deepEqual(actual.shape, expected.shape);
  const error = relativeL2(actual.data as Float32Array, expected.data as Float32Array);
  console.log(
    `      ${name}: relative L2 ${error.toExponential(2)}; interpreter ${originalMs.toFixed(0)} ms original, ${optimizedMs.toFixed(0)} ms optimized`,
  );
  assert.ok(error <= 1e-4, `relative L2 error ${error} > 1e-4`);
  return optimized;
}

describe('optimizer on real models', function () {
  // The interpreter runs each model twice in plain JavaScript: minutes on a loaded 2-core machine.
  this.timeout(900_000);
  it('ResNet-50: same outputs, ≤ 57 kernels, arena ≤ 40% of activations', function () {
    const file = sharedModel('resnet50', this);
    const { graph, context } = compareOptimized('resnet50', file, [1, 3, 224, 224]);
    const ops = countOps(kernels(graph));
    console.log(`      kernels: ${JSON.stringify(ops)}`);
    assert.equal(ops.conv2d, 53);
    assert.ok(kernels(graph).length <= 57, `${kernels(graph).length} kernels`);
    const plan = context.reports.memory as MemoryPlan;
    const ratio = plan.arenaBytes / plan.activationBytes;
    console.log(`      arena ${plan.arenaBytes} B of ${plan.activationBytes} B activations (${(ratio * 100).toFixed(1)}%)`);
    assert.ok(ratio <= 0.4);
  });

  for (const name of ['vit_base_patch16_224', 'vit_base_patch16_224_legacy']) {
    it(`${name}: same outputs, 7 kernels per encoder block`, function () {
      const file = sharedModel(name, this);
      const { graph } = compareOptimized(name, file, [1, 3, 224, 224]);
      const ops = countOps(kernels(graph));
      console.log(`      kernels: ${JSON.stringify(ops)}`);
      assert.equal(ops.attention, 12);
      assert.equal(ops.layernorm, 25);
      assert.equal(ops.gemm, 12 * 4 + 1);
      // 7 per block; patch embedding (input layout, conv, class token, position embedding) and head within 8 more
      assert.ok(kernels(graph).length <= 12 * 7 + 8, `${kernels(graph).length} kernels`);
    });
  }
});
