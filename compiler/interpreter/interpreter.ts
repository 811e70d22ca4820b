/**
 * Reference CPU interpreter: runs an IR graph node by node with each op's CPU reference (float32, plain
 * loops). It is the oracle that passes and backends are tested against, not a fast runtime.
 */
import { CompileError, error } from '../diagnostics';
import { Graph, TensorInfo, subgraphsOf } from '../ir/graph';
import { roundArrayToHalf } from '../ir/half';
import { TensorValue, numeric } from '../ir/tensor';
import { EvalEnv, findOp } from '../ops/registry';

export interface RunOptions {
  /** Values of the model's symbols (default: bound from the inputs' actual shapes). */
  symbols?: Map<string, number>;
  /** Values of tensors defined outside this graph (for subgraphs). */
  outer?: (name: string) => TensorValue | undefined;
  /** Called after each node with its outputs (per-node comparisons, tracing). */
  onNode?: (nodeId: string, outputs: Map<string, TensorValue>) => void;
  /** Keep every intermediate tensor (default: free each once its last reader has run). */
  keepIntermediates?: boolean;
  /**
   * Storage of float activations and weights. 'float16' rounds every float32 input, parameter, constant and node
   * output to fp16 as the GPU's fp16 buffers hold them (math stays float32, as in the CUDA kernels): a value beyond
   * 65504 becomes Inf here as it does there. Tensors the storage-precision pass keeps in fp32 (TensorInfo.storage)
   * are not rounded. Default 'float32'.
   */
  storage?: 'float32' | 'float16';
}

/** The value as an fp16 buffer would hold it (a copy; non-float32 tensors and fp32-stored ones unchanged). */
function stored(v: TensorValue, info?: TensorInfo): TensorValue {
  if (v.dtype !== 'float32' || !(v.data instanceof Float32Array) || info?.storage === 'float32') return v;
  return { ...v, data: roundArrayToHalf(Float32Array.from(v.data)) };
}

/** Runs `graph` on `inputs` (in graph.inputs order); returns the outputs in graph.outputs order. */
export function runGraph(graph: Graph, inputs: TensorValue[], options: RunOptions = {}): TensorValue[] {
  return [...runGraphNamed(graph, inputs, options).values()];
}

export function runGraphNamed(graph: Graph, inputs: TensorValue[], options: RunOptions = {}): Map<string, TensorValue> {
  if (inputs.length !== graph.inputs.length)
    throw new CompileError(error('run.inputs', `graph '${graph.name}' takes ${graph.inputs.length} inputs, ${inputs.length} given`));
  const half = options.storage === 'float16';
  const env = new Map<string, TensorValue>();
  graph.inputs.forEach((name, i) => env.set(name, half ? stored(inputs[i], graph.tensors.get(name)) : inputs[i]));
  const symbols = options.symbols ?? bindSymbols(graph, inputs);
  // fp16 storage: parameters and constants rounded once, on first read
  const rounded = new Map<string, TensorValue>();
  const constant = (name: string): TensorValue | undefined => {
    const v = graph.tensors.get(name)?.value;
    if (!v || !half) return v;
    let r = rounded.get(name);
    if (!r) rounded.set(name, (r = stored(v, graph.tensors.get(name))));
    return r;
  };
  const lookup = (name: string): TensorValue | undefined => env.get(name) ?? constant(name) ?? options.outer?.(name);

  // Last reader of each tensor, so intermediates can be dropped as the run goes.
  const lastUse = new Map<string, number>();
  // A subgraph (If/Loop body) reads outer tensors by name: those count as read by the node that holds it.
  graph.nodes.forEach((n, i) => {
    n.inputs.forEach((x) => x && lastUse.set(x, i));
    for (const sub of subgraphsOf(n)) for (const x of sub.outerReads()) lastUse.set(x, i);
  });
  const keep = new Set(graph.outputs);

  const evalEnv: EvalEnv = {
    runSubgraph: (g, subInputs, outer) =>
      runGraph(g, subInputs, { outer: (n) => outer(n) ?? lookup(n), symbols, storage: options.storage }),
    lookup,
    symbol: (name) => symbols.get(name),
    opset: graph.opset,
  };

  graph.nodes.forEach((node, index) => {
    // an inlined If branch's node runs only when its branch is taken (passes/inline-if.ts)
    if (node.guard) {
      const c = lookup(node.guard.condition);
      if (!c || (numeric(c)[0] !== 0) !== node.guard.taken) return;
    }
    const def = findOp(node);
    if (!def?.evaluate)
      throw new CompileError(
        error('run.unsupported', `the reference interpreter cannot run ${node.op} (node '${node.name}')`, {
          onnxNode: node.name,
          nodeId: node.id,
        }),
      );
    const args = node.inputs.map((name) => {
      if (!name) return undefined;
      const v = lookup(name);
      if (!v && node.op === 'if_select') return undefined; // the branch not taken computed nothing
      if (!v) {
        const t = graph.lookupTensor(name);
        const why = t?.weights === 'absent' ? 'its weights are absent (bind or randomize them first)' : 'no value was computed for it';
        throw new CompileError(
          error('run.missing-value', `node '${node.name}' reads '${name}', but ${why}`, { onnxNode: node.name, tensor: name }),
        );
      }
      return v;
    });
    let outs: TensorValue[];
    try {
      outs = def.evaluate(node, args, evalEnv);
    } catch (e) {
      if (e instanceof CompileError) throw e;
      throw new CompileError(
        error('run.failed', `${node.op} node '${node.name}' failed: ${(e as Error).message}`, { onnxNode: node.name, nodeId: node.id }),
      );
    }
    const produced = new Map<string, TensorValue>();
    node.outputs.forEach((name, i) => {
      if (name && outs[i]) {
        const v = half ? stored(outs[i], graph.tensors.get(name)) : outs[i];
        env.set(name, v);
        produced.set(name, v);
      }
    });
    options.onNode?.(node.id, produced);
    if (!options.keepIntermediates)
      for (const x of node.inputs) if (x && lastUse.get(x) === index && !keep.has(x) && graph.inputs.indexOf(x) < 0) env.delete(x);
  });

  const out = new Map<string, TensorValue>();
  for (const name of graph.outputs) {
    const v = lookup(name);
    if (!v) throw new CompileError(error('run.missing-output', `graph output '${name}' was not computed`, { tensor: name }));
    out.set(name, v);
  }
  return out;
}

/** Symbol values from the actual shapes of the inputs (a dim that is a single symbol binds it). */
export function bindSymbols(graph: Graph, inputs: TensorValue[]): Map<string, number> {
  const out = new Map<string, number>();
  graph.inputs.forEach((name, i) => {
    const shape = graph.tensors.get(name)?.shape;
    const actual = inputs[i]?.shape;
    if (!shape || !actual) return;
    shape.forEach((d, k) => {
      if (typeof d !== 'number' && d.terms.size === 1) {
        const [[mono, coeff]] = [...d.terms];
        if (coeff === 1 && mono && !mono.includes('\u0000')) out.set(mono, actual[k]);
      }
    });
  });
  return out;
}
