/**
 * BatchNormalization folding.
 *
 * Conv → BatchNormalization with the conv output read only by the BN, and the conv's weights and the BN's
 * parameters static: the BN is folded into the conv's weights and bias (W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β),
 * computed by parameter-only nodes (weight preparation). With the weights present they fold at the next shape
 * inference; graph-only they run when the weights are bound. Either way the graph is the same: a conv with a bias.
 * Any other BN becomes a per-channel Mul + Add whose scale and shift are weight preparation the same way; the
 * epilogue fusion then absorbs them.
 */
import { Graph, Node, attrFloat } from '../ir/graph';
import { Dim, allConcrete } from '../ir/symbolic';
import { makeTensor } from '../ir/tensor';
import { Pass } from './pass';
import { absorb, addConstant, isStatic, soleConsumer } from './rewrite';

export const foldBatchNormPass: Pass = {
  name: 'fold-batchnorm',
  description: 'fold BatchNormalization into the preceding conv (or rewrite it to a per-channel scale and shift)',
  run(graph) {
    const producers = graph.producers();
    const consumers = graph.consumers();
    for (const bn of graph.nodes.filter((n) => n.op === 'BatchNormalization')) {
      if (bn.outputs.slice(1).some((o) => o)) continue; // training-mode outputs: leave it
      const conv = producers.get(bn.inputs[0]);
      const staticInput = (name: string | undefined) => !name || isStatic(graph.lookupTensor(name));
      if (
        conv?.op === 'Conv' &&
        soleConsumer(graph, consumers, bn.inputs[0]) === bn &&
        bn.inputs.slice(1, 5).every((n) => n && staticInput(n)) &&
        conv.inputs.slice(1).every(staticInput) &&
        concreteShape(graph.lookupTensor(conv.inputs[1])?.shape)
      ) {
        foldIntoConv(graph, conv, bn);
      } else {
        rewriteAsScaleShift(graph, bn);
      }
    }
  },
};

const concreteShape = (shape: Dim[] | undefined) => !!shape && shape.length > 0 && allConcrete(shape);

function channelsShape(graph: Graph, bn: Node): number[] {
  const rank = graph.lookupTensor(bn.inputs[0])?.shape?.length ?? 4;
  const c = graph.lookupTensor(bn.inputs[1])?.shape?.[0];
  return [typeof c === 'number' ? c : 1, ...new Array(Math.max(0, rank - 2)).fill(1)];
}

/** Adds the nodes and tensors of one BN's rewrite; every tensor computed from parameters alone is a parameter too. */
function builder(graph: Graph, bn: Node) {
  const base = bn.outputs[0];
  const dtype = graph.lookupTensor(bn.inputs[0])!.dtype!;
  const nodes: Node[] = [];
  const tensor = (name: string, shape: Dim[], kind: 'param' | 'activation' = 'param') => {
    const unique = graph.newTensorName(name);
    graph.addTensor({ name: unique, kind, dtype, shape });
    return unique;
  };
  const node = (op: string, inputs: string[], output: string): Node => {
    const n: Node = {
      id: graph.newNodeId(),
      op,
      domain: '',
      name: `${bn.name}/${output.startsWith(`${base}_`) ? output.slice(base.length + 1) : output}`,
      inputs,
      outputs: [output],
      attrs: {},
      sourceNodes: [],
      scope: bn.scope,
    };
    nodes.push(n);
    return n;
  };
  /** scale = γ/√(σ²+ε) and shift = β − μ·scale, per channel. */
  const scaleShift = (c: Dim) => {
    const [, gamma, beta, mean, variance] = bn.inputs;
    const eps = addConstant(graph, `${base}_eps`, makeTensor('float32', [], [attrFloat(bn, 'epsilon', 1e-5)]));
    const varEps = tensor(`${base}_var_eps`, [c]);
    const std = tensor(`${base}_std`, [c]);
    const scale = tensor(`${base}_scale`, [c]);
    const meanScaled = tensor(`${base}_mean_scaled`, [c]);
    const shift = tensor(`${base}_shift`, [c]);
    node('Add', [variance, eps], varEps);
    node('Sqrt', [varEps], std);
    node('Div', [gamma, std], scale);
    node('Mul', [mean, scale], meanScaled);
    node('Sub', [beta, meanScaled], shift);
    return { scale, shift };
  };
  const reshaped = (name: string, shape: number[]) => {
    const target = addConstant(graph, `${base}_shape`, makeTensor('int64', [shape.length], shape));
    const out = tensor(`${name}_b`, shape);
    node('Reshape', [name, target], out);
    return out;
  };
  return { base, nodes, tensor, node, scaleShift, reshaped };
}

function foldIntoConv(graph: Graph, conv: Node, bn: Node): void {
  const b = builder(graph, bn);
  const [, w, bias] = conv.inputs;
  const wShape = graph.lookupTensor(w)!.shape as number[];
  const k = wShape[0];
  const { scale, shift } = b.scaleShift(k);
  const scaleK = b.reshaped(scale, [k, ...new Array<number>(wShape.length - 1).fill(1)]);
  const folded = b.tensor(`${w}_bnfolded`, wShape);
  b.node('Mul', [w, scaleK], folded);
  let newBias = shift;
  if (bias) {
    const biasScaled = b.tensor(`${b.base}_bias_scaled`, [k]);
    newBias = b.tensor(`${b.base}_bias`, [k]);
    b.node('Mul', [bias, scale], biasScaled);
    b.node('Add', [biasScaled, shift], newBias);
  }
  conv.inputs[1] = folded;
  conv.inputs[2] = newBias;
  graph.tensors.delete(conv.outputs[0]);
  conv.outputs[0] = bn.outputs[0];
  absorb(conv, bn);
  graph.nodes.splice(graph.nodes.indexOf(conv), 0, ...b.nodes);
  graph.nodes = graph.nodes.filter((n) => n !== bn);
}

/** y = x·scale + shift with scale = γ/√(σ²+ε), shift = β − μ·scale, both computed by parameter-only nodes. */
function rewriteAsScaleShift(graph: Graph, bn: Node): void {
  const b = builder(graph, bn);
  const x = bn.inputs[0];
  const cshape = channelsShape(graph, bn);
  const { scale, shift } = b.scaleShift(cshape[0]);
  const scaleB = b.reshaped(scale, cshape);
  const shiftB = b.reshaped(shift, cshape);
  const scaled = b.tensor(`${b.base}_scaled`, graph.lookupTensor(x)!.shape!, 'activation');
  b.node('Mul', [x, scaleB], scaled);
  const add = b.node('Add', [scaled, shiftB], bn.outputs[0]);
  add.sourceNodes = [...bn.sourceNodes];
  add.name = bn.name;
  graph.nodes.splice(graph.nodes.indexOf(bn), 1, ...b.nodes);
}
