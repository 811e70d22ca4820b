/**
 * The projections of one attention as one GEMM. Where an `attention` node (ops/fused.ts) reads q, k and v from three
 * GEMMs over one input (BERT, RoBERTa, DistilBERT, LLaMA's q/k/v Linears: layout 'separate'), the three become one
 * GEMM whose weight is the three weights side by side and whose output [B,S,3·H·D] is the op's packed layout, q|k|v
 * per token; where only k and v share their input (cross-attention: keys and values from the encoder), those two
 * become one GEMM and the op reads q and kv [B,Sk,2·H·D] ('kv_packed'). One launch instead of three (two), and a
 * GEMM three (two) times as wide: at small batch the separate GEMMs fill a fraction of the SMs.
 *
 * Conditions, for the GEMMs merged:
 *   - each is a fused `gemm` whose output only this attention reads (directly, or through one Reshape that only
 *     splits its rows [B·S, N] → [B, S, N]), and is no graph output;
 *   - the same input a, the same trans_b and the same epilogue, which is [] or ['bias'] (a per-column bias);
 *   - weights and biases known before the inference: parameters, constants, or outputs of weight preparation;
 *   - each N = heads · head_dim, and the value head dim is the head dim (the packed layouts hold one D).
 * The weights are concatenated along N (axis 1 of [K,N], axis 0 of [N,K]; the biases along their one axis): at compile
 * time when their values are known, else by a Concat node that runs as weight preparation when the weights are bound.
 * The merged GEMM computes exactly the three GEMMs' columns, so outputs do not change.
 */
import { Graph, Node, attrInt, attrString } from '../ir/graph';
import { Dim, dimEquals, isConcrete } from '../ir/symbolic';
import { TensorValue, makeTensor } from '../ir/tensor';
import { FUSED_DOMAIN, attentionValueHeadDim, epilogueOf } from '../ops/fused';
import { findOp } from '../ops/registry';
import { isWeightPreparation } from './cost';
import { Pass } from './pass';
import { absorb, addConstant, isStatic, soleConsumer, valueOf } from './rewrite';

export const mergeProjectionsPass: Pass = {
  name: 'merge-projections',
  description: "attention's q, k, v GEMMs over one input → one GEMM into its packed layout (k, v of cross-attention → kv_packed)",
  run(graph) {
    let merged = false;
    for (const node of [...graph.nodes]) {
      if (node.op !== 'attention' || node.domain !== FUSED_DOMAIN) continue;
      if (attrString(node, 'layout', 'packed') !== 'separate' || attrInt(node, 'per_head', 0) !== 0) continue;
      if (attentionValueHeadDim(node) !== attrInt(node, 'head_dim')) continue;
      merged = mergeAttentionInputs(graph, node) || merged;
    }
    if (merged) {
      graph.sortTopologically();
      graph.removeDeadNodes();
    }
  },
};

/** One of q, k, v: the GEMM that writes it and the row Reshape after it, if any. */
interface Projection {
  gemm: Node;
  reshape?: Node;
}

function projectionOf(
  graph: Graph,
  tensor: string,
  attention: Node,
  producers: Map<string, Node>,
  consumers: Map<string, Node[]>,
): Projection | undefined {
  if (soleConsumer(graph, consumers, tensor) !== attention) return undefined;
  let producer = producers.get(tensor);
  let reshape: Node | undefined;
  if (producer?.op === 'Reshape' && producer.domain === '') {
    // [B·S, N] rows → [B, S, N]: the last dim kept
    const from = graph.lookupTensor(producer.inputs[0])?.shape;
    const to = graph.lookupTensor(tensor)?.shape;
    if (!from || !to || from.length !== 2 || to.length !== 3 || !dimEquals(from[1], to[2])) return undefined;
    if (!isConcrete(to[0]) && !isConcrete(to[1])) return undefined; // the merged Reshape's shape holds one -1
    if (soleConsumer(graph, consumers, producer.inputs[0]) !== producer) return undefined;
    reshape = producer;
    producer = producers.get(producer.inputs[0]);
  }
  if (!producer || producer.op !== 'gemm' || producer.domain !== FUSED_DOMAIN) return undefined;
  const steps = epilogueOf(producer);
  if (!(steps.length === 0 || (steps.length === 1 && steps[0] === 'bias'))) return undefined;
  if (producer.inputs.length !== 2 + steps.length) return undefined;
  const known = (t: string) =>
    isStatic(graph.lookupTensor(t)) || (producers.get(t) !== undefined && isWeightPreparation(graph, producers.get(t)!));
  if (!producer.inputs.slice(1).every(known)) return undefined;
  return { gemm: producer, reshape };
}

/** Whether the projections can be one GEMM: same input, trans_b, epilogue, dtype and shapes. */
function compatible(graph: Graph, ps: Projection[]): boolean {
  const [first] = ps;
  const shapeOf = (t: string) => graph.lookupTensor(t)?.shape;
  return ps.every(
    (p) =>
      p.gemm.inputs[0] === first.gemm.inputs[0] &&
      attrInt(p.gemm, 'trans_b', 0) === attrInt(first.gemm, 'trans_b', 0) &&
      epilogueOf(p.gemm).join() === epilogueOf(first.gemm).join() &&
      !!p.reshape === !!first.reshape &&
      p.gemm.inputs.slice(1).every((t, i) => {
        const a = shapeOf(t);
        const b = shapeOf(first.gemm.inputs[1 + i]);
        return (
          !!a &&
          !!b &&
          a.length === b.length &&
          a.every((d, k) => dimEquals(d, b[k])) &&
          graph.lookupTensor(t)?.dtype === graph.lookupTensor(first.gemm.inputs[1 + i])?.dtype
        );
      }),
  );
}

/** The tensors concatenated along `axis`: a constant when all values are known, else a Concat node (weight preparation). */
function concatenated(graph: Graph, parts: string[], axis: number, base: string, scope: string[], added: Node[]): string {
  const infos = parts.map((p) => graph.lookupTensor(p)!);
  const shape: Dim[] = [...infos[0].shape!];
  shape[axis] = (infos.map((i) => i.shape![axis]) as number[]).reduce((a, b) => a + b, 0);
  const node: Node = {
    id: graph.newNodeId(),
    op: 'Concat',
    domain: '',
    name: `${base}/concat`,
    inputs: [...parts],
    outputs: [],
    attrs: { axis: { type: 'int', value: axis } },
    sourceNodes: [],
    scope,
  };
  const values = parts.map((p) => valueOf(graph, p));
  if (values.every((v): v is TensorValue => v !== undefined)) {
    const env = {
      runSubgraph: () => {
        throw new Error('Concat has no subgraph');
      },
      lookup: () => undefined,
    };
    const [value] = findOp(node)!.evaluate!(node, values, env);
    return addConstant(graph, base, value);
  }
  const out = graph.newTensorName(base);
  graph.addTensor({ name: out, kind: 'activation', dtype: infos[0].dtype, shape });
  node.outputs = [out];
  added.push(node);
  return out;
}

/** The longest scope every node shares (the attention module of q_lin, k_lin, v_lin). */
function commonScope(nodes: Node[]): string[] {
  const [first, ...rest] = nodes.map((n) => n.scope);
  let k = 0;
  while (k < first.length && rest.every((s) => s[k] === first[k])) k++;
  return first.slice(0, k);
}

/** Merges `ps` into one GEMM; returns its output as the attention reads it ([B,S,n·N]). */
function mergeGemms(graph: Graph, ps: Projection[], name: string): string {
  const [first] = ps;
  const transB = attrInt(first.gemm, 'trans_b', 0);
  const scope = commonScope(ps.map((p) => p.gemm));
  const added: Node[] = [];
  const weight = concatenated(
    graph,
    ps.map((p) => p.gemm.inputs[1]),
    transB ? 0 : 1,
    `${name}_weight`,
    scope,
    added,
  );
  const operands = epilogueOf(first.gemm).length
    ? [
        concatenated(
          graph,
          ps.map((p) => p.gemm.inputs[2]),
          0,
          `${name}_bias`,
          scope,
          added,
        ),
      ]
    : [];
  const gemmOut = graph.lookupTensor(first.gemm.outputs[0])!;
  const width = ps.length * (gemmOut.shape![gemmOut.shape!.length - 1] as number);
  const out = graph.newTensorName(name);
  graph.addTensor({ name: out, kind: 'activation', dtype: gemmOut.dtype, shape: [...gemmOut.shape!.slice(0, -1), width] });
  const gemm: Node = {
    id: graph.newNodeId(),
    op: 'gemm',
    domain: FUSED_DOMAIN,
    name,
    inputs: [first.gemm.inputs[0], weight, ...operands],
    outputs: [out],
    attrs: { ...first.gemm.attrs },
    sourceNodes: [],
    scope,
  };
  absorb(gemm, ...ps.map((p) => p.gemm));
  added.push(gemm);
  let result = out;
  if (first.reshape) {
    // rows [B·S, n·N] → [B, S, n·N], as the Reshapes did for each: their leading dims, one of them symbolic at most
    const [b, seq] = graph.lookupTensor(first.reshape.outputs[0])!.shape!;
    const shapeConst = addConstant(
      graph,
      `${name}_rows_shape`,
      makeTensor('int64', [3], [isConcrete(b) ? b : -1, isConcrete(seq) ? seq : -1, width]),
    );
    result = graph.newTensorName(`${name}_rows`);
    graph.addTensor({ name: result, kind: 'activation', dtype: gemmOut.dtype, shape: [b, seq, width] });
    added.push({
      id: graph.newNodeId(),
      op: 'Reshape',
      domain: '',
      name: `${name}/rows_reshape`,
      inputs: [out, shapeConst],
      outputs: [result],
      attrs: {},
      sourceNodes: [],
      scope,
    });
  }
  const removed = new Set(ps.flatMap((p) => [p.gemm, ...(p.reshape ? [p.reshape] : [])]));
  graph.nodes = [...graph.nodes.filter((n) => !removed.has(n)), ...added];
  return result;
}

function mergeAttentionInputs(graph: Graph, attention: Node): boolean {
  const producers = graph.producers();
  const consumers = graph.consumers();
  const heads = attrInt(attention, 'num_heads');
  const headDim = attrInt(attention, 'head_dim');
  const [q, k, v] = attention.inputs.slice(0, 3).map((t) => projectionOf(graph, t, attention, producers, consumers));
  if (!k || !v || attention.inputs[1] === attention.inputs[2]) return false;
  const widthOk = (p: Projection) => dimEquals(graph.lookupTensor(p.gemm.outputs[0])!.shape!.at(-1)!, heads * headDim);
  if (![k, v].every(widthOk)) return false;
  if (q && widthOk(q) && compatible(graph, [q, k, v])) {
    const qkv = mergeGemms(graph, [q, k, v], `${attention.name}/qkv`);
    attention.inputs = [qkv, ...attention.inputs.slice(3)];
    attention.attrs.layout = { type: 'string', value: 'packed' };
    return true;
  }
  if (!compatible(graph, [k, v])) return false;
  const kv = mergeGemms(graph, [k, v], `${attention.name}/kv`);
  attention.inputs = [attention.inputs[0], kv, ...attention.inputs.slice(3)];
  attention.attrs.layout = { type: 'string', value: 'kv_packed' };
  return true;
}
