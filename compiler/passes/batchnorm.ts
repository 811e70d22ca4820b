/**
 * BatchNormalization folding.
 *
 * Conv → BatchNormalization with the conv output read only by the BN: when every parameter is present, the BN is
 * folded into the conv's weights and bias (W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β). When weights are absent,
 * the BN becomes a per-channel Mul + Add whose scale and shift are computed from the parameters by nodes that
 * fold as soon as weights are bound; the conv epilogue fusion then absorbs the Mul and Add. A BN not after a conv
 * is rewritten to the same Mul + Add.
 */
import { Graph, Node, attrFloat } from '../ir/graph';
import { Dim } from '../ir/symbolic';
import { makeTensor, numeric } from '../ir/tensor';
import { Pass, PassContext } from './pass';
import { absorb, addConstant, soleConsumer } from './rewrite';

export const foldBatchNormPass: Pass = {
  name: 'fold-batchnorm',
  description: 'fold BatchNormalization into the preceding conv (or rewrite it to a per-channel scale and shift)',
  run(graph, ctx) {
    const producers = graph.producers();
    const consumers = graph.consumers();
    for (const bn of graph.nodes.filter((n) => n.op === 'BatchNormalization')) {
      if (bn.outputs.slice(1).some((o) => o)) continue; // training-mode outputs: leave it
      const conv = producers.get(bn.inputs[0]);
      const params = bn.inputs.slice(1, 5).map((n) => graph.lookupTensor(n));
      const present = params.every((t) => t?.value);
      if (
        conv?.op === 'Conv' &&
        soleConsumer(graph, consumers, bn.inputs[0]) === bn &&
        present &&
        graph.lookupTensor(conv.inputs[1])?.value
      ) {
        foldIntoConv(graph, conv, bn, ctx);
      } else {
        rewriteAsScaleShift(graph, bn);
      }
    }
  },
};

function channelsShape(graph: Graph, bn: Node): number[] {
  const rank = graph.lookupTensor(bn.inputs[0])?.shape?.length ?? 4;
  const c = graph.lookupTensor(bn.inputs[1])?.shape?.[0];
  return [typeof c === 'number' ? c : 1, ...new Array(Math.max(0, rank - 2)).fill(1)];
}

function foldIntoConv(graph: Graph, conv: Node, bn: Node, ctx: PassContext): void {
  const eps = attrFloat(bn, 'epsilon', 1e-5);
  const [gamma, beta, mean, variance] = bn.inputs.slice(1, 5).map((n) => numeric(graph.lookupTensor(n)!.value!));
  const w = graph.lookupTensor(conv.inputs[1])!.value!;
  const k = w.shape[0];
  const perK = w.shape.slice(1).reduce((a, b) => a * b, 1);
  const wData = numeric(w);
  const newW = makeTensor(w.dtype, w.shape);
  const nw = newW.data as Float32Array;
  const bias = conv.inputs[2] ? numeric(graph.lookupTensor(conv.inputs[2])!.value!) : new Float32Array(k);
  const newB = makeTensor(w.dtype, [k]);
  const nb = newB.data as Float32Array;
  for (let o = 0; o < k; o++) {
    const s = gamma[o] / Math.sqrt(variance[o] + eps);
    for (let i = 0; i < perK; i++) nw[o * perK + i] = wData[o * perK + i] * s;
    nb[o] = (bias[o] - mean[o]) * s + beta[o];
  }
  conv.inputs[1] = addConstant(graph, `${conv.inputs[1]}_bnfolded`, newW);
  graph.tensors.get(conv.inputs[1])!.kind = 'param';
  graph.tensors.get(conv.inputs[1])!.weights = 'present';
  conv.inputs[2] = addConstant(graph, `${bn.outputs[0]}_bias`, newB);
  graph.tensors.get(conv.inputs[2])!.kind = 'param';
  graph.tensors.get(conv.inputs[2])!.weights = 'present';
  graph.tensors.delete(conv.outputs[0]);
  conv.outputs[0] = bn.outputs[0];
  absorb(conv, bn);
  graph.nodes = graph.nodes.filter((n) => n !== bn);
  void ctx;
}

/** y = x·scale + shift with scale = γ/√(σ²+ε), shift = β − μ·scale, both computed by parameter-only nodes. */
function rewriteAsScaleShift(graph: Graph, bn: Node): void {
  const eps = attrFloat(bn, 'epsilon', 1e-5);
  const [x, gamma, beta, mean, variance] = bn.inputs;
  const dtype = graph.lookupTensor(x)!.dtype!;
  const cshape = channelsShape(graph, bn);
  const base = bn.outputs[0];
  // Tensors computed from parameters alone are parameters too (weight preparation: folded when weights are present).
  const t = (suffix: string, shape: Dim[], kind: 'param' | 'activation' = 'param') => {
    const name = graph.newTensorName(`${base}_${suffix}`);
    graph.addTensor({ name, kind, dtype, shape });
    return name;
  };
  const c = cshape[0];
  const mk = (op: string, inputs: string[], output: string): Node => ({
    id: graph.newNodeId(),
    op,
    domain: '',
    name: `${bn.name}/${output.slice(base.length + 1)}`,
    inputs,
    outputs: [output],
    attrs: {},
    sourceNodes: [],
    scope: bn.scope,
  });
  const epsName = addConstant(graph, `${base}_eps`, makeTensor('float32', [], [eps]));
  const shapeName = addConstant(graph, `${base}_cshape`, makeTensor('int64', [cshape.length], cshape));
  const varEps = t('var_eps', [c]);
  const std = t('std', [c]);
  const scale = t('scale', [c]);
  const meanScaled = t('mean_scaled', [c]);
  const shift = t('shift', [c]);
  const scaleB = t('scale_b', cshape);
  const shiftB = t('shift_b', cshape);
  const scaled = t('scaled', graph.lookupTensor(x)!.shape!, 'activation');
  const nodes = [
    mk('Add', [variance, epsName], varEps),
    mk('Sqrt', [varEps], std),
    mk('Div', [gamma, std], scale),
    mk('Mul', [mean, scale], meanScaled),
    mk('Sub', [beta, meanScaled], shift),
    mk('Reshape', [scale, shapeName], scaleB),
    mk('Reshape', [shift, shapeName], shiftB),
    mk('Mul', [x, scaleB], scaled),
  ];
  const add = mk('Add', [scaled, shiftB], bn.outputs[0]);
  add.sourceNodes = [...bn.sourceNodes];
  add.name = bn.name;
  const at = graph.nodes.indexOf(bn);
  graph.nodes.splice(at, 1, ...nodes, add);
}
