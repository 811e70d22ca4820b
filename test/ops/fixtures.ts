/**
 * Single-node IR graphs for op tests: build, infer shapes, run with the reference interpreter.
 * (Whole ONNX models are built with test/helpers/onnx-builder.ts; these tests need only the IR.)
 */
import '../../compiler/ops';
import { DType } from '../../compiler/ir/dtype';
import { AttrValue, Graph } from '../../compiler/ir/graph';
import { Dim } from '../../compiler/ir/symbolic';
import { TensorValue, makeTensor, seededRandom } from '../../compiler/ir/tensor';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { ShapeInferenceResult, inferShapes } from '../../compiler/passes/shape-inference';

export interface FixtureInput {
  name: string;
  dtype?: DType;
  /** Shape as the graph declares it (symbolic dims allowed). */
  shape: Dim[];
  /** A constant input (an initializer); otherwise a graph input. */
  value?: TensorValue;
  /** Symbolic contents, for shape-arithmetic tests. */
  shapeValue?: Dim[];
}

export function attrs(
  values: Record<string, number | number[] | string | { floats: number[] } | { float: number }>,
): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === 'number') out[k] = { type: 'int', value: v };
    else if (typeof v === 'string') out[k] = { type: 'string', value: v };
    else if (Array.isArray(v)) out[k] = { type: 'ints', value: v };
    else if ('floats' in v) out[k] = { type: 'floats', value: v.floats };
    else out[k] = { type: 'float', value: v.float };
  }
  return out;
}

/** A graph with one node `op` reading `inputs` (undefined = omitted optional input) and writing `outputs`. */
export function singleNodeGraph(
  op: string,
  inputs: (FixtureInput | undefined)[],
  options: { attrs?: Record<string, AttrValue>; outputs?: number; opset?: number; name?: string; domain?: string } = {},
): Graph {
  const graph = new Graph('test', { opsets: { '': options.opset ?? 18 } });
  for (const i of inputs) {
    if (!i) continue;
    if (i.value) graph.addTensor({ name: i.name, kind: 'constant', dtype: i.value.dtype, shape: [...i.value.shape], value: i.value });
    else {
      graph.addTensor({ name: i.name, kind: 'input', dtype: i.dtype ?? 'float32', shape: i.shape, shapeValue: i.shapeValue });
      graph.inputs.push(i.name);
    }
  }
  const outputs = [...Array(options.outputs ?? 1).keys()].map((k) => `y${k}`);
  for (const o of outputs) graph.addTensor({ name: o, kind: 'output' });
  graph.outputs = outputs;
  graph.nodes.push({
    id: 'n0',
    op,
    domain: options.domain ?? '',
    name: options.name ?? `${op}_node`,
    inputs: inputs.map((i) => i?.name ?? ''),
    outputs,
    attrs: options.attrs ?? {},
    sourceNodes: [],
    scope: [],
  });
  return graph;
}

/** Infers shapes; throws the first diagnostic as an Error (tests assert on its message). */
export function infer(graph: Graph): ShapeInferenceResult {
  const result = inferShapes(graph, { fold: false });
  if (result.diagnostics.length) throw new Error(result.diagnostics.map((d) => d.message).join('\n'));
  return result;
}

/** Runs a single-node op on concrete values (graph inputs in order) after inferring shapes. */
export function runOp(
  op: string,
  values: (TensorValue | undefined)[],
  options: { attrs?: Record<string, AttrValue>; outputs?: number; opset?: number; constants?: boolean[] } = {},
): TensorValue[] {
  const inputs = values.map((v, i): FixtureInput | undefined =>
    v ? { name: `x${i}`, dtype: v.dtype, shape: v.shape, value: options.constants?.[i] ? v : undefined } : undefined,
  );
  const graph = singleNodeGraph(op, inputs, options);
  infer(graph);
  const runtime = values.filter((v, i) => v !== undefined && !options.constants?.[i]) as TensorValue[];
  return runGraph(graph, runtime);
}

export function randomTensor(shape: number[], seed: number, dtype: DType = 'float32', scale = 1): TensorValue {
  const rand = seededRandom(seed);
  const t = makeTensor(dtype, shape);
  const data = t.data as Float32Array;
  for (let i = 0; i < data.length; i++) data[i] = (rand() * 2 - 1) * scale;
  return t;
}

export function f32(shape: number[], data: number[]): TensorValue {
  return makeTensor('float32', shape, data);
}

export function i64(shape: number[], data: number[]): TensorValue {
  return makeTensor('int64', shape, data);
}

/** Asserts every element of `actual` is within `tolerance` (absolute + relative) of `expected`. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-5, what = 'values'): void {
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} elements, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!(Math.abs(a - e) <= tolerance * (1 + Math.abs(e))))
      throw new Error(`${what}[${i}] = ${a}, expected ${e} (tolerance ${tolerance})`);
  }
}
