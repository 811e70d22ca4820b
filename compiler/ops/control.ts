/**
 * Op family: control flow — If and Loop, whose bodies are subgraphs that read outer-scope tensors.
 *
 * Inference types each body's inputs, infers the body with the run in progress (so its diagnostics and folded
 * nodes are reported with the main graph's), and derives the node's outputs from the body's outputs:
 * - If: with a constant condition, the taken branch's types (and values); otherwise both branches merged — equal
 *   dims kept, differing dims a fresh symbol whose bounds cover both.
 * - Loop: final loop-carried values (a dim that changes across iterations becomes a fresh symbol) and scan
 *   outputs stacked on a new leading dim: the trip count, concrete when M is constant and the body cannot exit
 *   early, else a symbol bounded by M.
 */
import { DType } from '../ir/dtype';
import { Graph, Node, TensorInfo, attrGraph } from '../ir/graph';
import { Dim, SymDim, dimAdd, dimEquals, dimMul, dimSub, dimToString, isConcrete, shapeEquals } from '../ir/symbolic';
import { TensorValue, makeTensor, numel, numeric, storageFor } from '../ir/tensor';
import { ShapeInferenceResult, currentInference, inferSubgraph } from '../passes/shape-inference';
import { InferContext, OpDefinition, OutputType, nodeError, registerOps } from './registry';

/** What inference knows about a body's outputs. */
function bodyOutputs(ctx: InferContext, body: Graph): OutputType[] {
  return body.outputs.map((name) => {
    const t = body.lookupTensor(name);
    if (!t?.dtype || (!t.shape && t.valueType !== 'sequence'))
      ctx.fail(`output '${name}' of body '${body.name}' has no inferred type (see the diagnostics of the body's nodes)`);
    return { dtype: t.dtype, shape: t.shape ?? [], value: t.value, shapeValue: t.shapeValue, valueType: t.valueType };
  });
}

function inferBody(body: Graph, into?: ShapeInferenceResult): void {
  const { options, result } = currentInference();
  inferSubgraph(body, options, into ?? result);
}

/** A dim covering two alternatives: the dim itself when they agree, else a fresh symbol bounding both. */
function mergeDim(ctx: InferContext, a: Dim, b: Dim, what: string): Dim {
  if (dimEquals(a, b)) return a;
  const ba = ctx.symbols.bounds(a);
  const bb = ctx.symbols.bounds(b);
  return ctx.dataDependentDim(what, Math.min(ba.min, bb.min), Math.max(ba.max, bb.max));
}

function mergeShapes(ctx: InferContext, a: Dim[], b: Dim[], what: string, output: string): Dim[] {
  if (a.length !== b.length)
    ctx.fail(
      `${output} has rank ${a.length} in one case and ${b.length} in the other ([${a.map(dimToString)}] vs [${b.map(dimToString)}])`,
    );
  return a.map((d, i) => mergeDim(ctx, d, b[i], what));
}

// ---- If ----

const ifOp: OpDefinition = {
  op: 'If',
  infer(ctx) {
    const thenBranch = attrGraph(ctx.node, 'then_branch');
    const elseBranch = attrGraph(ctx.node, 'else_branch');
    inferBody(thenBranch);
    inferBody(elseBranch);
    const thenOut = bodyOutputs(ctx, thenBranch);
    const elseOut = bodyOutputs(ctx, elseBranch);
    if (thenOut.length !== elseOut.length) ctx.fail(`then_branch has ${thenOut.length} outputs, else_branch ${elseOut.length}`);
    const cond = ctx.value(0);
    if (cond) return numeric(cond)[0] ? thenOut : elseOut;
    return thenOut.map((t, i) => {
      const e = elseOut[i];
      const name = ctx.node.outputs[i] ?? `output ${i}`;
      if (t.dtype !== e.dtype) ctx.fail(`output '${name}' is ${t.dtype} in then_branch and ${e.dtype} in else_branch`);
      if (t.valueType === 'sequence' || e.valueType === 'sequence') return { dtype: t.dtype, shape: [], valueType: 'sequence' };
      return { dtype: t.dtype, shape: mergeShapes(ctx, t.shape, e.shape, 'if', `output '${name}'`) };
    });
  },
  evaluate(node, [cond], env) {
    const branch = attrGraph(node, numeric(cond!)[0] ? 'then_branch' : 'else_branch');
    return env.runSubgraph(branch, [], env.lookup);
  },
};

// ---- if_select (an If whose branches passes/inline-if.ts inlined as guarded nodes) ----

/** if_select(cond, then_0..then_{n-1}, else_0..else_{n-1}): outputs are the then values when cond, else the else values. */
const ifSelectOp: OpDefinition = {
  op: 'if_select',
  domain: 'ait',
  infer(ctx) {
    const n = (ctx.inputCount - 1) / 2;
    if (!Number.isInteger(n) || n < 1 || ctx.node.outputs.length !== n)
      ctx.fail(`needs a condition and ${ctx.node.outputs.length} pairs of values`);
    const cond = ctx.value(0);
    return Array.from({ length: n }, (_, i) => {
      const name = ctx.node.outputs[i];
      const [t, e] = [1 + i, 1 + n + i];
      if (ctx.dtype(t) !== ctx.dtype(e)) ctx.fail(`output '${name}' is ${ctx.dtype(t)} in then_branch and ${ctx.dtype(e)} in else_branch`);
      if (cond) {
        const chosen = numeric(cond)[0] ? t : e;
        return { dtype: ctx.dtype(chosen), shape: ctx.shape(chosen), value: ctx.value(chosen) };
      }
      return { dtype: ctx.dtype(t), shape: mergeShapes(ctx, ctx.shape(t), ctx.shape(e), 'if', `output '${name}'`) };
    });
  },
  evaluate(node, args) {
    const n = (node.inputs.length - 1) / 2;
    const picked = numeric(args[0]!)[0] ? args.slice(1, 1 + n) : args.slice(1 + n);
    if (picked.some((v) => !v)) throw nodeError(node, 'run.missing-value', 'the taken branch computed no value');
    return picked as TensorValue[];
  },
};

// ---- Loop ----

/** Types a body input: no value, no symbolic contents (they change from one iteration to the next). */
function setBodyInput(body: Graph, index: number, dtype: DType, shape: Dim[]): void {
  const name = body.inputs[index];
  const t: TensorInfo = body.tensors.get(name) ?? body.addTensor({ name, kind: 'input' });
  t.dtype = dtype;
  t.shape = shape;
  delete t.value;
  delete t.shapeValue;
}

/** True when the body's condition output is known to stay true (no early exit). */
function neverExitsEarly(ctx: InferContext, body: Graph): boolean {
  let condOut = body.outputs[0];
  const t = body.lookupTensor(condOut);
  if (t?.value) return numeric(t.value)[0] !== 0;
  // The condition passes through unchanged (directly or through Identity nodes): it stays what it was before the
  // first iteration.
  const producers = body.producers();
  for (let p = producers.get(condOut); p?.op === 'Identity'; p = producers.get(condOut)) condOut = p.inputs[0];
  if (condOut === body.inputs[1]) {
    if (!ctx.node.inputs[1]) return true;
    const initial = ctx.value(1);
    return initial !== undefined && numeric(initial)[0] !== 0;
  }
  return false;
}

const loopOp: OpDefinition = {
  op: 'Loop',
  infer(ctx) {
    const body = attrGraph(ctx.node, 'body');
    const carried = ctx.node.inputs.length - 2;
    if (body.inputs.length !== carried + 2)
      ctx.fail(`the body has ${body.inputs.length} inputs; it needs 2 + ${carried} (iteration number, condition, loop-carried values)`);
    if (body.outputs.length < carried + 1) ctx.fail(`the body has ${body.outputs.length} outputs; it needs at least 1 + ${carried}`);
    const initial = Array.from({ length: carried }, (_, k) => ({ dtype: ctx.dtype(k + 2), shape: ctx.shape(k + 2) }));
    const typeBody = (shapes: Dim[][]) => {
      setBodyInput(body, 0, 'int64', []);
      setBodyInput(body, 1, 'bool', []);
      initial.forEach((v, k) => setBodyInput(body, k + 2, v.dtype, shapes[k]));
    };

    // First pass with the initial shapes. If a carried value changes shape in the body, each dim that changes
    // becomes a symbol (its value in a given iteration) and the body is inferred again; the second pass's
    // results are the ones reported.
    let shapes = initial.map((v) => v.shape);
    typeBody(shapes);
    const firstPass: ShapeInferenceResult = { diagnostics: [], foldedNodes: new Set() };
    inferBody(body, firstPass);
    let outs = bodyOutputs(ctx, body);
    const varying = new Set<Dim>();
    const changed = initial.some((v, k) => !shapeEquals(outs[k + 1].shape, v.shape));
    if (changed) {
      shapes = initial.map((v, k) => {
        const out = outs[k + 1].shape;
        if (out.length !== v.shape.length)
          ctx.fail(
            `loop-carried value '${ctx.node.inputs[k + 2]}' changes rank in the body ([${v.shape.map(dimToString)}] to [${out.map(dimToString)}])`,
          );
        return v.shape.map((d, i) => {
          if (dimEquals(d, out[i])) return d;
          const symbol = ctx.dataDependentDim('carried', 0, 2 ** 31);
          varying.add(symbol);
          return symbol;
        });
      });
      typeBody(shapes);
      inferBody(body);
      outs = bodyOutputs(ctx, body);
    } else {
      const { result } = currentInference();
      result.diagnostics.push(...firstPass.diagnostics);
      for (const n of firstPass.foldedNodes) result.foldedNodes.add(n);
    }
    initial.forEach((v, k) => {
      if (outs[k + 1].dtype !== v.dtype)
        ctx.fail(`loop-carried value ${k} enters as ${v.dtype} and leaves the body as ${outs[k + 1].dtype}`);
    });

    const trips = loopTripCount(ctx, body);
    const finals: OutputType[] = shapes.map((shape, k) => ({
      dtype: initial[k].dtype,
      shape: shape.map((d, i) => (varying.has(d) ? finalCarriedDim(ctx, d, initial[k].shape[i], outs[k + 1].shape[i], trips) : d)),
    }));
    const scans: OutputType[] = outs.slice(carried + 1).map((o) => ({ dtype: o.dtype, shape: [trips, ...o.shape] }));
    return [...finals, ...scans];
  },
  evaluate(node, inputs, env) {
    const body = attrGraph(node, 'body');
    const [maxTrip, condIn, ...initial] = inputs;
    const limit = maxTrip ? numeric(maxTrip)[0] : Infinity;
    let cond = condIn ? numeric(condIn)[0] !== 0 : true;
    let values = initial.map((v) => v!);
    const carried = values.length;
    const scans: TensorValue[][] = [];
    for (let i = 0; i < limit && cond; i++) {
      const outs = env.runSubgraph(body, [makeTensor('int64', [], [i]), makeTensor('bool', [], [1]), ...values], env.lookup);
      cond = numeric(outs[0])[0] !== 0;
      values = outs.slice(1, carried + 1);
      outs.slice(carried + 1).forEach((s, k) => (scans[k] ??= []).push(s));
    }
    const scanCount = body.outputs.length - 1 - carried;
    const stacked = Array.from({ length: scanCount }, (_, k) =>
      stack(node, scans[k] ?? [], body.lookupTensor(body.outputs[carried + 1 + k])),
    );
    return [...values, ...stacked];
  },
};

/**
 * The final value of a carried dim that changes across iterations. When each iteration adds a constant
 * (`next = current + delta`, e.g. a Concat that appends one row), it is initial + trips × delta, and the
 * per-iteration symbol gets the bounds that implies; otherwise it stays the per-iteration symbol.
 */
function finalCarriedDim(ctx: InferContext, symbol: Dim, initial: Dim, next: Dim, trips: Dim): Dim {
  const delta = dimSub(next, symbol);
  if (!isConcrete(delta)) return symbol;
  const init = ctx.symbols.bounds(initial);
  const tripsMax = ctx.symbols.maxOf(trips);
  const [lo, hi] = delta >= 0 ? [init.min, init.max + tripsMax * delta] : [Math.max(0, init.min + tripsMax * delta), init.max];
  for (const name of (symbol as SymDim).symbols) ctx.symbols.define(name, lo, Math.min(hi, 2 ** 31), '');
  return dimAdd(initial, dimMul(trips, delta));
}

function loopTripCount(ctx: InferContext, body: Graph): Dim {
  const m = ctx.node.inputs[0] ? ctx.dims(0)?.[0] : undefined;
  if (m !== undefined && neverExitsEarly(ctx, body)) return isConcrete(m) ? Math.max(m, 0) : m;
  const bound = m !== undefined ? ctx.symbols.maxOf(m) : 2 ** 31;
  return ctx.dataDependentDim('trips', 0, Number.isFinite(bound) ? bound : 2 ** 31);
}

/** Stacks per-iteration scan values on a new leading axis. */
function stack(node: Node, parts: TensorValue[], info: TensorInfo | undefined): TensorValue {
  if (parts.length === 0) {
    const inner = info?.shape?.every(isConcrete) ? (info.shape as number[]) : [];
    return makeTensor(info?.dtype ?? 'float32', [0, ...inner]);
  }
  const shape = parts[0].shape;
  for (const p of parts)
    if (p.shape.length !== shape.length || p.shape.some((d, i) => d !== shape[i]))
      throw nodeError(node, 'run.invalid', `scan output changes shape across iterations ([${shape}] then [${p.shape}])`);
  const n = numel(shape);
  const out = storageFor(parts[0].dtype, n * parts.length);
  parts.forEach((p, i) => out.set(numeric(p), i * n));
  return { dtype: parts[0].dtype, shape: [parts.length, ...shape], data: out };
}

registerOps([ifSelectOp, ifOp, loopOp]);
