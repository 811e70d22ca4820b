/**
 * Shape and type inference with constant folding, over a graph and its subgraphs.
 *
 * Every node's op definition gives its outputs' dtypes and shapes (concrete or symbolic). When all of a node's
 * inputs are known at compile time (constants, present weights, or shapes of tensors) and its outputs are small (or
 * no larger than its inputs, for per-element ops), the node is evaluated by its CPU reference and its outputs become
 * constants: this is what collapses the TorchScript exporter's Shape → Gather → Unsqueeze → Concat chains into
 * constants or symbolic shapes, and what folds weight preparation when the weights are present.
 */
import { Diagnostic, CompileError, error } from '../diagnostics';
import { DType } from '../ir/dtype';
import { Graph, Node, TensorInfo, subgraphsOf } from '../ir/graph';
import { Dim, allConcrete, isConcrete } from '../ir/symbolic';
import { shapeProblem } from '../ir/limits';
import { TensorValue, numel } from '../ir/tensor';
import { EvalEnv, InferContext, OutputType, findOp, nodeError } from '../ops/registry';
import { runGraph } from '../interpreter/interpreter';
import { PER_ELEMENT_OPS } from '../ops/op-classes';

export interface ShapeInferenceOptions {
  /** Evaluate nodes whose inputs are all known (default true). */
  fold?: boolean;
  /** Largest output (in elements) that folding may create; larger results stay as computations. */
  maxFoldElements?: number;
}

export interface ShapeInferenceResult {
  diagnostics: Diagnostic[];
  /** Nodes whose outputs became compile-time constants. */
  foldedNodes: Set<Node>;
}

/** Infers every tensor of `graph` (and of its subgraphs). Unknown ops and failures become error diagnostics. */
export function inferShapes(graph: Graph, options: ShapeInferenceOptions = {}): ShapeInferenceResult {
  const result: ShapeInferenceResult = { diagnostics: [], foldedNodes: new Set() };
  graph.sortTopologically();
  inferGraphInto(graph, options, result);
  return result;
}

/** Used by control-flow ops to infer their bodies once the body inputs are typed. */
export function inferSubgraph(graph: Graph, options: ShapeInferenceOptions, result: ShapeInferenceResult): void {
  graph.sortTopologically();
  inferGraphInto(graph, options, result);
}

let activeOptions: ShapeInferenceOptions = {};
let activeResult: ShapeInferenceResult | undefined;

/** The options and result of the inference run in progress (for control-flow ops inferring their bodies). */
export function currentInference(): { options: ShapeInferenceOptions; result: ShapeInferenceResult } {
  return { options: activeOptions, result: activeResult ?? { diagnostics: [], foldedNodes: new Set() } };
}

function inferGraphInto(graph: Graph, options: ShapeInferenceOptions, result: ShapeInferenceResult): void {
  const savedOptions = activeOptions;
  const savedResult = activeResult;
  activeOptions = options;
  activeResult = result;
  try {
    for (const node of graph.nodes) {
      try {
        inferNode(graph, node, options, result);
      } catch (e) {
        if (e instanceof CompileError) result.diagnostics.push(...e.diagnostics);
        else
          result.diagnostics.push(
            error('shape.internal', `${node.op} node '${node.name}': ${(e as Error).message}`, { onnxNode: node.name, nodeId: node.id }),
          );
      }
    }
  } finally {
    activeOptions = savedOptions;
    activeResult = savedResult;
  }
}

function makeContext(graph: Graph, node: Node): InferContext {
  const inputInfo = (i: number): TensorInfo | undefined => {
    const name = node.inputs[i];
    return name ? graph.lookupTensor(name) : undefined;
  };
  let dataDependentCalls = 0;
  let inputCount = node.inputs.length;
  while (inputCount > 0 && !node.inputs[inputCount - 1]) inputCount--;
  const ctx: InferContext = {
    node,
    graph,
    symbols: graph.symbols,
    opset: graph.opset,
    inputCount,
    input: inputInfo,
    shape(i) {
      const t = inputInfo(i);
      if (!t) throw nodeError(node, 'shape.missing-input', `input ${i} is missing`);
      if (!t.shape) throw nodeError(node, 'shape.unknown-input', `the shape of input ${i} ('${t.name}') is unknown`);
      return t.shape;
    },
    dtype(i) {
      const t = inputInfo(i);
      if (!t) throw nodeError(node, 'shape.missing-input', `input ${i} is missing`);
      if (!t.dtype) throw nodeError(node, 'shape.unknown-input', `the type of input ${i} ('${t.name}') is unknown`);
      return t.dtype;
    },
    value(i) {
      return inputInfo(i)?.value;
    },
    dims(i) {
      const t = inputInfo(i);
      if (!t) return undefined;
      if (t.value && !Array.isArray(t.value.data) && t.value.shape.length <= 1) return Array.from(t.value.data as ArrayLike<number>);
      return t.shapeValue;
    },
    fail(message) {
      throw nodeError(node, 'shape.invalid', message);
    },
    dataDependentDim(what, min, max) {
      // The same node's k-th data-dependent dim is the same symbol every time inference runs (passes re-infer):
      // shape arithmetic folded from it earlier keeps meaning the same value.
      const key = `${node.op}\u0000${node.name}\u0000${node.id}\u0000${dataDependentCalls++}`;
      return graph.symbols.freshFor(key, `${what}_`, min, max, `${what} of ${node.op} node '${node.name}'`, node.name);
    },
  };
  return ctx;
}

function inferNode(graph: Graph, node: Node, options: ShapeInferenceOptions, result: ShapeInferenceResult): void {
  const def = findOp(node);
  if (!def) {
    throw new CompileError(
      error('op.unknown', `op '${node.domain ? node.domain + '.' : ''}${node.op}' is not known to the compiler (node '${node.name}')`, {
        onnxNode: node.name,
        nodeId: node.id,
      }),
    );
  }
  for (let i = 0; i < node.inputs.length; i++) {
    const name = node.inputs[i];
    if (!name) continue;
    const t = graph.lookupTensor(name);
    if (!t)
      throw new CompileError(
        error(
          'graph.dangling-input',
          `${node.op} node '${node.name}' reads tensor '${name}', which no node, input or initializer defines`,
          {
            onnxNode: node.name,
            nodeId: node.id,
            tensor: name,
          },
        ),
      );
    if (!t.shape && t.valueType !== 'sequence') return; // its producer already reported why; do not cascade
  }
  const ctx = makeContext(graph, node);
  const outputs = def.infer(ctx);
  // One check for every op's rule: an output no tensor can have (Expand to [2^31, 2^31], a negative dim from
  // hostile attributes) stops here, naming the node, before folding allocates it or codegen sizes buffers by it.
  outputs.forEach((out, i) => {
    const problem = out?.shape ? shapeProblem(out.shape) : undefined;
    if (problem) throw nodeError(node, 'shape.invalid', `output ${i} ('${node.outputs[i] ?? ''}'): ${problem}`);
  });
  const fold = options.fold !== false;
  const maxFold = options.maxFoldElements ?? 1 << 20;

  let folded: TensorValue[] | undefined;
  if (fold && def.evaluate && subgraphsOf(node).length === 0) {
    const inputs = node.inputs.map((n) => (n ? graph.lookupTensor(n) : undefined));
    const allKnown = inputs.every((t) => t === undefined || t.value !== undefined);
    const shapeOnlyKnown = def.shapeOnly && inputs.every((t) => t === undefined || (t.shape && allConcrete(t.shape)));
    // Folding creates at most maxFold elements per output; a per-element op (a weight transposed or rescaled: weight
    // preparation) also as many as its largest input holds, so it folds whatever the weight's size.
    const perElement = PER_ELEMENT_OPS.has(node.op) && allKnown;
    const largestInput = perElement ? Math.max(0, ...inputs.map((t) => (t?.value ? numel(t.value.shape) : 0))) : 0;
    const small = outputs.every((o) => allConcrete(o.shape) && numel(o.shape as number[]) <= Math.max(maxFold, largestInput));
    const anyInput = inputs.some((t) => t !== undefined);
    if ((allKnown || shapeOnlyKnown) && small && (anyInput || node.op === 'Constant' || outputs.every((o) => o.value))) {
      const values = inputs.map((t) =>
        t === undefined
          ? undefined
          : (t.value ?? ({ dtype: t.dtype!, shape: t.shape as number[], data: new Float32Array(0) } as TensorValue)),
      );
      folded = tryEvaluate(() => def.evaluate!(node, values, foldEnv(graph)));
    }
  }

  node.outputs.forEach((name, i) => {
    if (!name) return;
    const out: OutputType | undefined = outputs[i];
    if (!out) return;
    const t = graph.tensors.get(name) ?? graph.addTensor({ name, kind: 'activation' });
    checkDeclared(node, t, out.dtype);
    t.dtype = out.dtype;
    t.shape = out.shape;
    if (out.valueType) t.valueType = out.valueType;
    const value = folded?.[i] ?? out.value;
    if (value) {
      t.value = value;
      if (t.kind === 'activation') t.kind = 'constant';
      t.shape = [...value.shape];
    }
    if (out.shapeValue) t.shapeValue = out.shapeValue;
    else if (value && !Array.isArray(value.data) && value.shape.length <= 1 && numel(value.shape) <= 64)
      t.shapeValue = Array.from(value.data as ArrayLike<number>);
  });
  if (folded || outputs.every((o) => o.value)) result.foldedNodes.add(node);
}

/**
 * Folding is an optimization: a node whose reference refuses these inputs (an op or mode the CPU reference does
 * not evaluate) stays a computation with its inferred outputs, so it runs where it would have run without the values
 * (on the device, at weight binding or per inference), and a model compiles the same with its weights as without.
 * Only the reference's deliberate refusals (CompileError) are caught; a bug in a reference still surfaces.
 */
function tryEvaluate(evaluate: () => TensorValue[]): TensorValue[] | undefined {
  try {
    return evaluate();
  } catch (e) {
    if (e instanceof CompileError) return undefined;
    throw e;
  }
}

function checkDeclared(node: Node, t: TensorInfo, dtype: DType): void {
  // Graph outputs can carry a declared dtype from the model; a mismatch means our inference is wrong.
  if (t.kind === 'output' && t.dtype && t.dtype !== dtype)
    throw nodeError(node, 'shape.dtype-mismatch', `infers ${dtype} for output '${t.name}', the model declares ${t.dtype}`);
}

function foldEnv(graph: Graph): EvalEnv {
  return {
    runSubgraph: (g, inputs, outer) => runGraph(g, inputs, { outer }),
    lookup: (name) => graph.lookupTensor(name)?.value,
    opset: graph.opset,
  };
}

export function dimsKnown(dims: Dim[] | undefined): dims is Dim[] {
  return dims !== undefined;
}

export function concreteOr<T>(d: Dim, f: (n: number) => T, otherwise: T): T {
  return isConcrete(d) ? f(d) : otherwise;
}
