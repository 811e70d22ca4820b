/**
 * The memory plan's in-place rule on small graphs: a conv or GEMM may write its output over its residual operand
 * (read by the epilogue at the element written), but not when that tensor is also the op's main input — other CTAs
 * still read it as the convolution / GEMM input while one writes its output tile.
 */
import * as assert from 'node:assert/strict';
import '../../compiler/ops';
import { optimizeImported } from '../../compiler/compile';
import { Graph, Node } from '../../compiler/ir/graph';
import { seededRandom } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { epilogueOf } from '../../compiler/ops/fused';
import { ArenaBuffer, MemoryPlan, planMemory } from '../../compiler/passes/memory-plan';
import { ModelSpec, TensorSpec, buildModel } from '../helpers/onnx-builder';

const random = seededRandom(7);
function weight(name: string, dims: number[]): TensorSpec & { name: string } {
  const n = dims.reduce((a, b) => a * b, 1);
  return { name, dtype: 'float32', dims, values: Array.from({ length: n }, () => random() - 0.5) };
}

function optimize(spec: ModelSpec): { graph: Graph; plan: MemoryPlan } {
  const result = optimizeImported(importOnnxBytes(buildModel(spec)), 'test.onnx', { validate: true });
  assert.deepEqual(
    result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  return { graph: result.graph, plan: result.context.reports.memory as MemoryPlan };
}

function bufferHolding(plan: MemoryPlan, tensor: string): ArenaBuffer {
  const buffer = plan.buffers.find((b) => b.tensors.includes(tensor));
  assert.ok(buffer, `${tensor} is not in the arena`);
  return buffer;
}

/** Asserts the two tensors' arena byte ranges are disjoint. */
function assertApart(plan: MemoryPlan, a: string, b: string): void {
  const x = bufferHolding(plan, a);
  const y = bufferHolding(plan, b);
  assert.notEqual(x, y, `${a} and ${b} share one buffer`);
  const disjoint = x.offset + x.bytes <= y.offset || y.offset + y.bytes <= x.offset;
  assert.ok(disjoint, `${a} [${x.offset}, ${x.offset + x.bytes}) overlaps ${b} [${y.offset}, ${y.offset + y.bytes})`);
}

/** The single `op` node with a residual add in its epilogue. */
function fusedWithResidual(graph: Graph, op: string): Node {
  const nodes = graph.nodes.filter((n) => n.op === op && epilogueOf(n).includes('residual_add'));
  const all = graph.nodes.filter((n) => n.op === op).map((n) => `[${epilogueOf(n).join(', ')}]`);
  assert.equal(nodes.length, 1, `${op} epilogues: ${all.join(' ')}`);
  return nodes[0];
}

/**
 * r = Relu(x); s = conv(r) + r (or + conv'(r): one conv then fuses the other's output as its residual); y = Relu(s) + Sigmoid(s): r and s are arena tensors (s's two readers stop the
 * epilogue fusion).
 */
function convSpec(residual: 'input' | 'other'): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [1, 8, 6, 6] }],
    initializers: [weight('w', [8, 8, 3, 3]), weight('w_other', [8, 8, 1, 1]), weight('b', [8])],
    nodes: [
      { op: 'Relu', name: 'pre', inputs: ['x'], outputs: ['r'] },
      { op: 'Conv', name: 'other', inputs: ['r', 'w_other'], outputs: ['o'], attrs: { kernel_shape: [1, 1] } },
      { op: 'Conv', name: 'conv', inputs: ['r', 'w', 'b'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: 'Add', name: 'add', inputs: ['c', residual === 'input' ? 'r' : 'o'], outputs: ['s'] },
      { op: 'Relu', name: 'post_relu', inputs: ['s'], outputs: ['t'] },
      { op: 'Sigmoid', name: 'post_sigmoid', inputs: ['s'], outputs: ['u'] },
      { op: 'Add', name: 'post_add', inputs: ['t', 'u'], outputs: ['y'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: [1, 8, 6, 6] }],
  };
}

/** r = Relu(x); s = r·W + r (MatMul with a static weight → gemm); y = Relu(s) + Sigmoid(s). */
function gemmSpec(): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [2, 4, 32] }],
    initializers: [weight('w', [32, 32])],
    nodes: [
      { op: 'Relu', name: 'pre', inputs: ['x'], outputs: ['r'] },
      { op: 'MatMul', name: 'matmul', inputs: ['r', 'w'], outputs: ['m'] },
      { op: 'Add', name: 'add', inputs: ['m', 'r'], outputs: ['s'] },
      { op: 'Relu', name: 'post_relu', inputs: ['s'], outputs: ['t'] },
      { op: 'Sigmoid', name: 'post_sigmoid', inputs: ['s'], outputs: ['u'] },
      { op: 'Add', name: 'post_add', inputs: ['t', 'u'], outputs: ['y'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: [2, 4, 32] }],
  };
}

describe('memory plan: in-place reuse', () => {
  it('y = x + conv(x): the output gets its own range, not over x (other CTAs still read x)', () => {
    const { graph, plan } = optimize(convSpec('input'));
    const conv = fusedWithResidual(graph, 'conv2d');
    assert.equal(conv.inputs[0], conv.inputs[conv.inputs.length - 1], 'the residual is the conv input');
    assertApart(plan, conv.inputs[0], conv.outputs[0]);
  });

  it('y = x + x·W: the GEMM output gets its own range, not over x', () => {
    const { graph, plan } = optimize(gemmSpec());
    const gemm = fusedWithResidual(graph, 'gemm');
    assert.equal(gemm.inputs[0], gemm.inputs[gemm.inputs.length - 1], 'the residual is the GEMM input');
    assertApart(plan, gemm.inputs[0], gemm.outputs[0]);
  });

  it('y = x + gemm(view of x): a view of the main input in the residual position is not reused either', () => {
    const { graph } = optimize(gemmSpec());
    const gemm = fusedWithResidual(graph, 'gemm');
    const base = gemm.inputs[0];
    const info = graph.lookupTensor(base)!;
    graph.addTensor({ ...info, name: 'r_view', kind: 'activation', value: undefined });
    const view: Node = {
      ...gemm,
      id: graph.newNodeId(),
      op: 'Identity',
      domain: '',
      name: 'view',
      inputs: [base],
      outputs: ['r_view'],
      attrs: {},
    };
    graph.nodes.splice(graph.nodes.indexOf(gemm), 0, view);
    gemm.inputs[gemm.inputs.length - 1] = 'r_view';
    const plan = planMemory(graph, 1);
    assert.equal(bufferHolding(plan, 'r_view'), bufferHolding(plan, base), 'the view shares its base buffer');
    assertApart(plan, base, gemm.outputs[0]);
  });

  it('a residual that is not the conv input is still written over in place', () => {
    const { graph, plan } = optimize(convSpec('other'));
    const conv = fusedWithResidual(graph, 'conv2d');
    const residual = conv.inputs[conv.inputs.length - 1];
    assert.notEqual(residual, conv.inputs[0]);
    assert.equal(bufferHolding(plan, conv.outputs[0]), bufferHolding(plan, residual));
  });

  it('an elementwise op still writes over an input it reads at the same element (Relu(s) + Sigmoid(s) over s)', () => {
    const { graph, plan } = optimize(convSpec('input'));
    const conv = fusedWithResidual(graph, 'conv2d');
    const square = graph.nodes.find((n) => n.inputs[0] === conv.outputs[0]);
    assert.ok(square, 'the node after the conv');
    assert.equal(bufferHolding(plan, square.outputs[0]), bufferHolding(plan, conv.outputs[0]));
  });
});
