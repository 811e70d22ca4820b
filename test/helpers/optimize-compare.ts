/**
 * The optimizer's contract on a small model: it optimizes with the graph validated after every pass, reports no
 * error, and the optimized graph computes what the original computes (reference interpreter, random inputs,
 * relative L2 ≤ 1e-4 per output).
 */
import * as assert from 'node:assert/strict';
import '../../compiler/ops';
import { optimizeImported } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { Graph } from '../../compiler/ir/graph';
import { TensorValue, makeTensor } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { inferShapes } from '../../compiler/passes/shape-inference';
import { ModelSpec, buildModel } from './onnx-builder';
import { relativeL2 } from './metrics';

/** Optimizes `spec` and checks it against the original on inputs of `inputShapes` (values from `random(n)`). */
export function optimizeAndCompare(spec: ModelSpec, inputShapes: number[][], random: (n: number) => number[]): Graph {
  const bytes = buildModel(spec);
  const original = importOnnxBytes(bytes);
  inferShapes(original.graph);
  const result = optimizeImported(importOnnxBytes(bytes), 'test.onnx', { validate: true });
  assert.deepEqual(
    result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  const inputs: TensorValue[] = inputShapes.map((s) => makeTensor('float32', s, random(s.reduce((a, b) => a * b, 1))));
  const expected = runGraph(original.graph, inputs);
  const actual = runGraph(result.graph, inputs);
  expected.forEach((e, i) => {
    assert.deepEqual(actual[i].shape, e.shape);
    const err = relativeL2(actual[i].data as Float32Array, e.data as Float32Array);
    assert.ok(err <= 1e-4, `output ${i}: relative L2 error ${err}`);
  });
  return result.graph;
}
