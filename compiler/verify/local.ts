/**
 * `ait verify`: the per-node check on this machine. Reference: onnxruntime-node (CPU) on the original model with the
 * ONNX tensors the fused nodes stand for exposed as graph outputs. Candidate: the interpreter running the optimized
 * graph with fp16 storage (every activation and weight rounded as the GPU build stores them), so that values that
 * overflow fp16 on the GPU are Inf here too. Absent weights (graph-only models) are filled with the same seeded
 * random data on both sides (onnx/materialize.ts); external data is read under the importer's containment rules and
 * handed to onnxruntime inline, never by path.
 */
import * as path from 'node:path';
import '../ops';
import { optimizeImported } from '../compile';
import { CompileError, type Diagnostic, error } from '../diagnostics';
import { runGraphNamed } from '../interpreter/interpreter';
import { isFloatType } from '../ir/dtype';
import type { Graph, OnnxModelInfo } from '../ir/graph';
import { evaluateDim } from '../ir/symbolic';
import { makeTensor, type TensorValue } from '../ir/tensor';
import { importOnnxBytes, importOnnxFile, type ImportOptions } from '../onnx/import';
import { materializeWeights, normalSampler } from '../onnx/materialize';
import { inferShapes } from '../passes/shape-inference';
import { integerInputValues, isIntegerInputType, type IntegerInputType } from './inputs';
import { loadOnnxruntime, type OrtModule, type OrtTensor } from './onnxruntime';
import {
  DEFAULT_ERROR_THRESHOLD,
  compareRow,
  exposeTensors,
  nodeRows,
  onnxTensorOfNodes,
  summarizeRows,
  type PerNodeReport,
} from './per-node';

export type { PerNodeReport };

export interface VerifyPerNodeOptions {
  batch?: number;
  /** Seed of the random inputs and of materialized weights (default 0). */
  seed?: number;
  /** Std of randomized conv/linear weights (default 1/sqrt(fan_in)); see MaterializeOptions.weightStd. */
  weightStd?: number;
  /** Relative L2 above which a node's error counts (default 1e-2). */
  threshold?: number;
  /** Candidate storage (default float16, as the GPU build). */
  storage?: 'float16' | 'float32';
  dimBounds?: ImportOptions['dimBounds'];
  log?: (line: string) => void;
}

/** Runs the per-node check; returns the report and the optimized graph (whose node ids the report uses). */
export async function verifyPerNodeLocal(
  modelPath: string,
  options: VerifyPerNodeOptions = {},
): Promise<{ report: PerNodeReport; graph: Graph; info: OnnxModelInfo; diagnostics: Diagnostic[] }> {
  const log = options.log ?? (() => {});
  const seed = options.seed ?? 0;
  const batch = options.batch ?? 1;
  const threshold = options.threshold ?? DEFAULT_ERROR_THRESHOLD;
  const storage = options.storage ?? 'float16';
  const importOptions: ImportOptions = { dimBounds: options.dimBounds };

  const imported = importOnnxFile(modelPath, importOptions);
  const { bytes, randomized } = materializeWeights(imported, { seed, weightStd: options.weightStd });
  if (randomized.length) log(`weights: ${randomized.length} absent parameters filled with seeded random data (seed ${seed})`);

  const original = importOnnxBytes(bytes, importOptions, modelPath);
  const inference = inferShapes(original.graph);
  stopOnErrors([...original.diagnostics, ...inference.diagnostics]);
  const optimized = optimizeImported(importOnnxBytes(bytes, importOptions, modelPath), modelPath, { ...importOptions, batch });
  stopOnErrors(optimized.context.diagnostics);
  const graph = optimized.graph;

  const inputs = makeInputs(original.graph, batch, seed, modelPath);
  const targets = onnxTensorOfNodes(graph, original.graph);
  const wanted = new Set<string>();
  for (const t of targets.values()) if ('tensor' in t) wanted.add(t.tensor);

  // Reference: the model with every wanted tensor as a graph output.
  const { ort, version } = loadOnnxruntime([path.dirname(path.resolve(modelPath))]);
  const { bytes: exposed, added } = exposeTensors(bytes, wanted, modelPath);
  let started = performance.now();
  const session = await ort.InferenceSession.create(exposed, { graphOptimizationLevel: 'basic' });
  const feeds: Record<string, unknown> = {};
  inputs.forEach((v, i) => (feeds[original.graph.inputs[i]] = ortInput(ort, v)));
  const reference = await session.run(feeds);
  const referenceMs = performance.now() - started;
  await session.release?.();
  log(`reference: onnxruntime-node ${version ?? ''} in ${(referenceMs / 1000).toFixed(2)} s, ${added.length} tensors exposed`);

  const rows = nodeRows(graph, targets);
  const rowOf = new Map(rows.map((r) => [r.id, r]));
  const nodeById = new Map(graph.nodes.map((n) => [n.id, n]));
  started = performance.now();
  runGraphNamed(graph, inputs, {
    storage,
    onNode: (id, produced) => {
      const row = rowOf.get(id);
      if (!row || row.skipped) return;
      const node = nodeById.get(id);
      const value = produced.get(node?.outputs[0] ?? '');
      const expected = reference[row.onnxTensor!];
      if (!value || !expected) {
        row.skipped = value ? `onnxruntime gives no value for '${row.onnxTensor}'` : 'the node computes no output value';
        return;
      }
      const refValues = referenceValues(expected);
      if (!refValues || Array.isArray(value.data) || !isFloatType(value.dtype)) {
        row.skipped = `not a float tensor (${value.dtype} / ${expected.type})`;
        return;
      }
      compareRow(row, { values: value.data, shape: value.shape }, { values: refValues, shape: expected.dims });
    },
  });
  const candidateMs = performance.now() - started;
  log(`candidate: interpreter (${storage} storage) in ${(candidateMs / 1000).toFixed(2)} s`);

  const report: PerNodeReport = {
    format: 'ait-verify-per-node',
    version: 1,
    model: modelPath,
    batch,
    seed,
    threshold,
    candidate: `interpreter on the optimized graph, ${storage} storage`,
    reference: { kind: 'onnxruntime-node', version },
    randomizedWeights: randomized.length,
    inputs: inputs.map((v, i) => ({ name: original.graph.inputs[i], shape: v.shape })),
    nodes: rows,
    ...summarizeRows(graph, rows, threshold),
    timings: { referenceMs, candidateMs },
  };
  return { report, graph, info: { ...original.info, path: modelPath }, diagnostics: optimized.context.diagnostics };
}

function stopOnErrors(diagnostics: Diagnostic[]): void {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new CompileError(errors);
}

/** An input as onnxruntime takes it: int64 as BigInt64Array, int32 as Int32Array, bool and uint8 as Uint8Array. */
function ortInput(ort: OrtModule, v: TensorValue): unknown {
  const data = v.data as ArrayLike<number>;
  switch (v.dtype) {
    case 'int64':
      return new ort.Tensor(
        'int64',
        BigInt64Array.from(data, (x) => BigInt(x)),
        v.shape,
      );
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(data), v.shape);
    case 'bool':
      return new ort.Tensor('bool', Uint8Array.from(data), v.shape);
    case 'uint8':
      return new ort.Tensor('uint8', Uint8Array.from(data), v.shape);
    case 'int8':
      return new ort.Tensor('int8', Int8Array.from(data), v.shape);
    default:
      return new ort.Tensor('float32', v.data as Float32Array, v.shape);
  }
}

function referenceValues(t: OrtTensor): ArrayLike<number> | null {
  return t.type === 'float32' || t.type === 'float64' ? (t.data as ArrayLike<number>) : null;
}

/**
 * Seeded standard normal inputs. Dims: the batch symbol (a symbolic first dim) takes `batch`; other symbols their
 * upper bound.
 */
function makeInputs(graph: Graph, batch: number, seed: number, file: string): TensorValue[] {
  return graph.inputs.map((name, index) => {
    const t = graph.tensors.get(name)!;
    const integer = !!t.dtype && isIntegerInputType(t.dtype);
    if (!t.dtype || !(isFloatType(t.dtype) || integer) || !t.shape)
      throw new CompileError(
        error(
          'verify.input-dtype',
          `input '${name}' is ${t.dtype ?? 'of unknown type'}: verify makes float, integer and bool inputs of known rank only`,
          { file, tensor: name },
        ),
      );
    const first = t.shape[0];
    const batchSymbol = typeof first === 'number' ? undefined : first.toString();
    const shape = t.shape.map((d, axis) =>
      evaluateDim(d, (s) => (axis === 0 && s === batchSymbol ? batch : (graph.symbols.get(s)?.max ?? batch))),
    );
    const normal = normalSampler((seed * 7919 + index + 1) >>> 0);
    if (integer) {
      const v = makeTensor(t.dtype!, shape);
      const ints = v.data as Float64Array;
      ints.set(integerInputValues(name, t.dtype as IntegerInputType, ints.length, normal));
      return v;
    }
    const v = makeTensor('float32', shape);
    const data = v.data as Float32Array;
    for (let i = 0; i < data.length; i++) data[i] = normal();
    return v;
  });
}
