/**
 * One op registry (issue 13): every CUDA lowering is registered for an op the op registry knows, and support
 * (supportOf, what inspect/compile/the Problems panel/the graph view report) agrees with code generation on a
 * table of small models, one per lowered op plus the refusals the predicates know up front. ReduceMean and Split,
 * as in the issue, are reported the same way by inspect and compile.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loweredOps, supportOf } from '../../compiler/backends/support';
import { needsLowering } from '../../compiler/backends/cuda/codegen/context';
import { generateCuda } from '../../compiler/backends/cuda/codegen/index';
import { CUDA_BACKEND } from '../../compiler/backends/cuda/codegen/lower';
import { compileModel, optimizeImported } from '../../compiler/compile';
import { Graph, attrInt } from '../../compiler/ir/graph';
import { inspectModel } from '../../compiler/inspect';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { findOp, registeredLowerings } from '../../compiler/ops/registry';
import { backendById } from '../../compiler/backends/index';
import { ModelSpec, buildModel, input, nodeModel, tensor } from '../helpers/onnx-builder';
import { pasteMasksLoopModel } from '../helpers/paste-masks-model';

const f32 = (...dims: (number | string)[]) => input('float32', dims);
const values = (n: number) => Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);
const weight = (...dims: number[]) => tensor('float32', dims, values(dims.reduce((a, b) => a * b, 1)));
const i64 = (values: number[]) => tensor('int64', [values.length], values);

interface Case {
  name: string;
  spec: ModelSpec;
  /** A node of this op must be refused by supportOf with a reason matching this. */
  refused?: { op: string; reason: RegExp };
}

const UNARY = ['Relu', 'Sigmoid', 'Tanh', 'Exp', 'Sqrt', 'Reciprocal', 'Neg', 'Abs', 'Erf', 'HardSwish', 'LeakyRelu', 'HardSigmoid'];
const BINARY = ['Add', 'Mul', 'Max', 'Min', 'Sub', 'Div'];
const REDUCE = [
  'ReduceSum',
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceSumSquare',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSumExp',
];

const CASES: Case[] = [
  ...UNARY.map((op) => ({ name: op, spec: nodeModel(op, [f32('B', 4, 8)]) })),
  ...BINARY.map((op) => ({ name: op, spec: nodeModel(op, [f32('B', 4, 8), f32('B', 4, 8)]) })),
  { name: 'Add of a bias (inner broadcast)', spec: nodeModel('Add', [f32('B', 4, 8), weight(8)]) },
  { name: 'Pow by a constant', spec: nodeModel('Pow', [f32('B', 8), tensor('float32', [], [3])]) },
  { name: 'Clip', spec: nodeModel('Clip', [f32('B', 8), tensor('float32', [], [-1]), tensor('float32', [], [1])]) },
  { name: 'Gelu (opset 20)', spec: nodeModel('Gelu', [f32('B', 8)], { opset: 20 }) },
  {
    name: 'elementwise chain',
    spec: {
      inputs: [{ name: 'x', ...f32('B', 8) }],
      nodes: [
        { op: 'Relu', inputs: ['x'], outputs: ['r'] },
        { op: 'Sigmoid', inputs: ['r'], outputs: ['y'] },
      ],
      outputs: ['y'],
    },
  },
  {
    name: 'Conv (conv2d, transpose_pad, Transpose)',
    spec: nodeModel('Conv', [f32('B', 3, 8, 8), weight(8, 3, 3, 3), weight(8)], { attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } }),
  },
  {
    name: 'ConvTranspose (conv_transpose2d: GEMM + col2im)',
    spec: nodeModel('ConvTranspose', [f32('B', 8, 6, 6), weight(8, 4, 3, 3), weight(4)], {
      attrs: { strides: [2, 2], pads: [1, 1, 1, 1] },
    }),
  },
  {
    name: 'grouped ConvTranspose (conv_transpose2d: the direct kernel)',
    spec: nodeModel('ConvTranspose', [f32('B', 8, 6, 6), weight(8, 2, 2, 2)], { attrs: { strides: [2, 2], group: 4 } }),
  },
  {
    name: '1-D ConvTranspose (lifted to conv_transpose2d with H = 1)',
    spec: nodeModel('ConvTranspose', [f32('B', 8, 6), weight(8, 4, 3)], { attrs: { strides: [2] } }),
  },
  { name: 'Gemm', spec: nodeModel('Gemm', [f32('B', 16), weight(8, 16), weight(8)], { attrs: { transB: 1 } }) },
  {
    name: '1-D Conv over the run-time length, strided',
    spec: nodeModel('Conv', [f32(1, 16, 'L'), weight(32, 16, 3)], { attrs: { pads: [1, 1], strides: [2] } }),
  },
  { name: 'MatMul by a weight', spec: nodeModel('MatMul', [f32('B', 4, 16), weight(16, 8)]) },
  { name: 'batched MatMul', spec: nodeModel('MatMul', [f32('B', 4, 16), f32('B', 16, 8)]) },
  { name: 'MatMul with A broadcast over the batch of B', spec: nodeModel('MatMul', [f32(4, 16), f32('B', 16, 8)]) },
  { name: 'MatMul by a 1-D activation', spec: nodeModel('MatMul', [f32('B', 4, 16), f32(16)]) },
  { name: 'Gemm of two activations', spec: nodeModel('Gemm', [f32('B', 16), f32(8, 16)], { attrs: { transB: 1 } }) },
  // N or K a run-time dim: instances of alignment 8 and 1, the launch picks by the sizes
  { name: 'batched MatMul with a symbolic K', spec: nodeModel('MatMul', [f32(4, 'B'), f32('B', 8)]) },
  {
    name: 'LSTM (bidirectional)',
    spec: nodeModel('LSTM', [f32(5, 'B', 8), weight(2, 16, 8), weight(2, 16, 4), weight(2, 32)], {
      attrs: { hidden_size: 4, direction: 'bidirectional' },
      outputs: 3,
    }),
  },
  {
    name: 'GRU (linear_before_reset, as PyTorch exports it)',
    spec: nodeModel('GRU', [f32(5, 'B', 8), weight(1, 12, 8), weight(1, 12, 4), weight(1, 24)], {
      attrs: { hidden_size: 4, linear_before_reset: 1 },
      outputs: 2,
    }),
  },
  {
    name: 'Col2Im (F.fold)',
    spec: nodeModel('Col2Im', [f32('B', 18, 16), i64([4, 5]), i64([3, 2])], { attrs: { pads: [1, 0, 1, 0] }, opset: 18 }),
  },
  { name: 'MaxPool', spec: nodeModel('MaxPool', [f32('B', 8, 8, 8)], { attrs: { kernel_shape: [2, 2], strides: [2, 2] } }) },
  { name: 'GlobalAveragePool', spec: nodeModel('GlobalAveragePool', [f32('B', 8, 4, 4)]) },
  {
    name: '3-D Conv (conv3d: 3-D im2col + a CUTLASS / CK GEMM)',
    spec: nodeModel('Conv', [f32('B', 3, 4, 8, 8), weight(8, 3, 3, 3, 3), weight(8)], { attrs: { pads: [1, 1, 1, 1, 1, 1] } }),
  },
  {
    name: '3-D depthwise Conv (conv3d: the depthwise kernel)',
    spec: nodeModel('Conv', [f32('B', 8, 4, 6, 6), weight(8, 1, 3, 3, 3)], { attrs: { pads: [1, 1, 1, 1, 1, 1], group: 8 } }),
  },
  {
    name: '3-D MaxPool and GlobalAveragePool (pool3d, global_pool over D, H, W)',
    spec: {
      inputs: [{ name: 'x', ...f32('B', 8, 4, 8, 8) }],
      nodes: [
        { op: 'MaxPool', inputs: ['x'], outputs: ['p'], attrs: { kernel_shape: [1, 3, 3], strides: [1, 2, 2], pads: [0, 1, 1, 0, 1, 1] } },
        { op: 'GlobalAveragePool', inputs: ['p'], outputs: ['y'] },
      ],
      outputs: ['y'],
    },
  },
  { name: 'Softmax', spec: nodeModel('Softmax', [f32('B', 4, 8)], { attrs: { axis: -1 } }) },
  { name: 'Softmax over axis 1 of 3 (column kernel)', spec: nodeModel('Softmax', [f32('B', 4, 8)], { attrs: { axis: 1 } }) },
  { name: 'LogSoftmax', spec: nodeModel('LogSoftmax', [f32('B', 4, 8)], { attrs: { axis: 1 } }) },
  { name: 'LpNormalization', spec: nodeModel('LpNormalization', [f32('B', 8)], { attrs: { axis: -1, p: 1 } }) },
  { name: 'ArgMax', spec: nodeModel('ArgMax', [f32('B', 8)], { attrs: { axis: 1, keepdims: 0 } }) },
  { name: 'ArgMin', spec: nodeModel('ArgMin', [f32('B', 8, 3)], { attrs: { axis: 1, select_last_index: 1 } }) },
  { name: 'InstanceNormalization', spec: nodeModel('InstanceNormalization', [f32('B', 4, 10), weight(4), weight(4)]) },
  {
    name: 'GroupNormalization',
    spec: nodeModel('GroupNormalization', [f32('B', 4, 3, 3), weight(2), weight(2)], { attrs: { num_groups: 2 }, opset: 18 }),
  },
  { name: 'LayerNormalization', spec: nodeModel('LayerNormalization', [f32('B', 4, 8), weight(8), weight(8)], { attrs: { axis: -1 } }) },
  { name: 'Transpose', spec: nodeModel('Transpose', [f32('B', 4, 8)], { attrs: { perm: [0, 2, 1] } }) },
  { name: 'Expand', spec: nodeModel('Expand', [f32('B', 1, 8), i64([1, 4, 8])]) },
  { name: 'Slice', spec: nodeModel('Slice', [f32('B', 8, 8), i64([2]), i64([6]), i64([2])]) },
  { name: 'Gather', spec: nodeModel('Gather', [f32('B', 8, 8), tensor('int64', [], [3])], { attrs: { axis: 1 } }) },
  { name: 'Concat', spec: nodeModel('Concat', [f32('B', 4), f32('B', 4), f32('B', 4)], { attrs: { axis: 1 } }) },
  {
    name: 'Concat of 20 inputs (launches of up to 8)',
    spec: nodeModel(
      'Concat',
      Array.from({ length: 20 }, () => f32('B', 4)),
      { attrs: { axis: 1 } },
    ),
  },
  {
    name: 'Resize',
    spec: nodeModel('Resize', [f32('B', 4, 8, 8), undefined, tensor('float32', [4], [1, 1, 2, 2])], { attrs: { mode: 'nearest' } }),
  },
  { name: 'Reshape (a model output)', spec: nodeModel('Reshape', [f32('B', 4, 8), i64([0, 32])]) },
  { name: 'Squeeze (a model output)', spec: nodeModel('Squeeze', [f32('B', 1, 8), i64([1])]) },
  { name: 'Unsqueeze (a model output)', spec: nodeModel('Unsqueeze', [f32('B', 8), i64([1])]) },
  // refusals the predicates know before code generation
  {
    name: 'ArgMax of bool data',
    spec: nodeModel('ArgMax', [input('bool', ['B', 8])], { attrs: { axis: 1 } }),
    refused: { op: 'ArgMax', reason: /^ArgMax of bool data$/ },
  },
  {
    name: 'Add with a general broadcast ([1,4,1] over [B,4,8]: kStrided)',
    spec: nodeModel('Add', [f32('B', 4, 8), f32(1, 4, 1)]),
  },
  {
    name: 'Add with a broadcast alternating over 7 axis runs',
    spec: nodeModel('Add', [f32('B', 3, 2, 3, 2, 3, 2), f32(1, 3, 1, 3, 1, 3, 1)]),
    refused: { op: 'Add', reason: /^broadcast of \[.*\] to \[.*\] alternates over 7 axis runs \(the kernel takes 6\)$/ },
  },
  { name: 'Add with a broadcast in no fixed pattern (strided reads)', spec: nodeModel('Add', [f32('B', 4, 8), f32(1, 4, 1)]) },
  ...['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual'].map((op) => ({
    name: `${op} of float data (bool out)`,
    spec: nodeModel(op, [f32('B', 8), f32('B', 8)]),
  })),
  ...['And', 'Or', 'Xor'].map((op) => ({ name: `${op} of bools`, spec: nodeModel(op, [input('bool', ['B', 8]), input('bool', [1, 8])]) })),
  { name: 'Not', spec: nodeModel('Not', [input('bool', ['B', 8])]) },
  ...['IsNaN', 'IsInf', 'Floor', 'Ceil'].map((op) => ({ name: op, spec: nodeModel(op, [f32('B', 8)]) })),
  { name: 'Mod on int64 data', spec: nodeModel('Mod', [input('int64', ['B', 8]), tensor('int64', [], [3])]) },
  { name: 'Cast int64 → float', spec: nodeModel('Cast', [input('int64', ['B', 8])], { attrs: { to: 1 } }) },
  { name: 'Where over a bool mask', spec: nodeModel('Where', [input('bool', ['B', 1, 8]), f32('B', 4, 8), tensor('float32', [], [0])]) },
  {
    name: 'GatherElements',
    spec: nodeModel('GatherElements', [f32('B', 4, 8), input('int64', ['B', 4, 2])], { attrs: { axis: 2 } }),
  },
  { name: 'GatherND', spec: nodeModel('GatherND', [f32('B', 4, 8), input('int64', ['B', 3, 2])], { attrs: { batch_dims: 1 } }) },
  {
    name: 'Range over the batch',
    spec: {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 8] }],
      outputs: ['r'],
      initializers: [
        { ...tensor('int64', [], [0]), name: 'zero' },
        { ...tensor('int64', [], [1]), name: 'one' },
      ],
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['s'], attrs: { start: 0, end: 1 } },
        { op: 'Squeeze', inputs: ['s'], outputs: ['b'] },
        { op: 'Range', inputs: ['zero', 'b', 'one'], outputs: ['r'] },
      ],
    },
  },
  {
    name: 'Range with a bound from tensor data',
    spec: nodeModel('Range', [tensor('int64', [], [0]), input('int64', []), tensor('int64', [], [1])]),
    refused: { op: 'Range', reason: /^Range with bounds computed from tensor data/ },
  },
  {
    name: 'Add broadcasting over a middle axis ([B,1,8] over [B,4,8]: kMiddle)',
    spec: nodeModel('Add', [f32('B', 4, 8), f32('B', 1, 8)]),
  },
  { name: 'Add on int32 data', spec: nodeModel('Add', [input('int32', ['B', 8]), input('int32', ['B', 8])]) },
  { name: 'Gather with run-time indices', spec: nodeModel('Gather', [f32('B', 8, 8), input('int64', [2])], { attrs: { axis: 1 } }) },
  {
    // starts computed on the device are read back to the host (run-time dims): supported
    name: 'Slice with run-time starts',
    spec: nodeModel('Slice', [f32('B', 8, 8), input('int64', [1]), i64([6]), i64([2])]),
  },
  {
    name: 'Resize along the batch axis',
    spec: nodeModel('Resize', [f32(2, 4, 8, 8), undefined, tensor('float32', [4], [2, 1, 1, 1])], { attrs: { mode: 'nearest' } }),
    refused: { op: 'Resize', reason: /^Resize along the batch axis \(axis 0\)$/ },
  },
  {
    name: 'Resize tf_crop_and_resize',
    spec: nodeModel('Resize', [f32('B', 4, 8, 8), undefined, tensor('float32', [4], [1, 1, 2, 2])], {
      attrs: { mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' },
    }),
    refused: { op: 'Resize', reason: /^Resize coordinate_transformation_mode 'half_pixel_symmetric'/ },
  },
  {
    name: 'LayerNormalization over two axes',
    spec: nodeModel('LayerNormalization', [f32('B', 4, 8), weight(4, 8), weight(4, 8)], { attrs: { axis: 1 } }),
    refused: { op: 'LayerNormalization', reason: /^LayerNormalization over more than the last axis$/ },
  },
  ...REDUCE.map((op) => ({ name: `${op} over axes 0 and 2`, spec: nodeModel(op, [f32('B', 4, 8), i64([0, 2])], { opset: 18 }) })),
  { name: 'ReduceMean over the last axis', spec: nodeModel('ReduceMean', [f32('B', 4, 8), i64([-1])], { opset: 18 }) },
  { name: 'Pad (reflect)', spec: nodeModel('Pad', [f32('B', 4, 8), i64([0, 1, 2, 0, 1, 2])], { attrs: { mode: 'reflect' } }) },
  {
    name: 'Pad (constant, negative pads crop)',
    spec: nodeModel('Pad', [f32('B', 4, 8), i64([0, 0, -1, 0, 0, 2]), tensor('float32', [], [1])]),
  },
  {
    name: 'RoiAlign',
    spec: nodeModel('RoiAlign', [f32(2, 8, 6, 6), f32('B', 4), input('int64', ['B'])], { attrs: { output_height: 2, output_width: 2 } }),
  },
  {
    name: 'ScatterElements',
    spec: nodeModel('ScatterElements', [f32('B', 4, 8), input('int64', ['B', 2, 8]), f32('B', 2, 8)], { attrs: { axis: 1 } }),
  },
  { name: 'ScatterND', spec: nodeModel('ScatterND', [f32('B', 4, 8), input('int64', [5, 2]), f32(5, 8)], { opset: 16 }) },
  {
    name: 'ScatterND with index tuples of 7 entries',
    spec: nodeModel('ScatterND', [f32(2, 1, 1, 1, 1, 1, 2), input('int64', [3, 7]), f32(3)], { opset: 16 }),
    refused: { op: 'ScatterND', reason: /^ScatterND index tuples of 7 entries \(the kernel takes at most 6\)$/ },
  },
  {
    name: 'ConstantOfShape of the run',
    spec: {
      inputs: [{ name: 'x', ...f32('B', 8) }],
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['s'] },
        { op: 'ConstantOfShape', inputs: ['s'], outputs: ['y'], attrs: { value: tensor('float32', [1], [2]) } },
      ],
      outputs: ['y'],
    },
  },
  { name: 'LRN', spec: nodeModel('LRN', [f32('B', 8, 4, 4)], { attrs: { size: 3 } }) },
  {
    name: 'Split',
    spec: nodeModel('Split', [f32('B', 8), i64([3, 5])], { attrs: { axis: 1 }, outputs: 2 }),
  },
  ...[
    'Log',
    'Round',
    'Sin',
    'Cos',
    'Softplus',
    'Elu',
    'Selu',
    'Sign',
    'Shrink',
    'Tan',
    'Asin',
    'Acos',
    'Atan',
    'Sinh',
    'Cosh',
    'Asinh',
    'Acosh',
    'Atanh',
    'Softsign',
    'Celu',
    'ThresholdedRelu',
  ].map((op) => ({
    name: op,
    spec: nodeModel(op, [f32('B', 8)]),
  })),
  {
    name: 'Einsum taking a diagonal',
    spec: nodeModel('Einsum', [f32('B', 8, 8), f32('B', 8, 5)], { attrs: { equation: 'bii,bik->bk' }, opset: 12 }),
    refused: { op: 'Einsum', reason: /^Einsum 'bii,bik->bk' is not a sum\/permutation or a chain of products: a letter repeated/ },
  },
  { name: 'CumSum (position ids)', spec: nodeModel('CumSum', [input('int64', ['B', 16]), tensor('int64', [], [1])]) },
  { name: 'Tile', spec: nodeModel('Tile', [f32('B', 4, 8), i64([1, 2, 1])]) },
  { name: 'Mish', spec: nodeModel('Mish', [f32('B', 8)], { opset: 18 }) },
  { name: 'PRelu with per-channel slopes', spec: nodeModel('PRelu', [f32('B', 8), weight(8)]) },
  { name: 'ReduceMin on int64 data', spec: nodeModel('ReduceMin', [input('int64', ['B', 8]), i64([1])], { opset: 18 }) },
  {
    name: 'ReduceMean on int64 data',
    spec: nodeModel('ReduceMean', [input('int64', ['B', 8]), i64([1])], { opset: 18 }),
    refused: { op: 'ReduceMean', reason: /^ReduceMean on int64 data \(integer reductions are Sum, Max, Min, Prod, SumSquare and L1/ },
  },
  // the count is a run-time dim (LaunchContext::dims), read back after the count kernels
  { name: 'NonZero', spec: nodeModel('NonZero', [f32(4, 8)]) },
  // torch.roll as exported (a Concat of Slices covering an axis cyclically), which passes/roll.ts turns into our Roll
  {
    name: 'Roll (torch.roll as Slice, Slice, Concat)',
    spec: {
      inputs: [{ name: 'x', ...f32('B', 7, 8) }],
      initializers: [
        { ...i64([3]), name: 'three' },
        { ...i64([2 ** 40]), name: 'end' },
        { ...i64([0]), name: 'zero' },
        { ...i64([1]), name: 'axis' },
      ],
      nodes: [
        { op: 'Slice', inputs: ['x', 'three', 'end', 'axis'], outputs: ['tail'] },
        { op: 'Slice', inputs: ['x', 'zero', 'three', 'axis'], outputs: ['head'] },
        { op: 'Concat', inputs: ['tail', 'head'], outputs: ['y'], attrs: { axis: 1 } },
      ],
      outputs: ['y'],
    },
  },
  // torchvision's mask-paste Loop, which passes/paste-masks.ts turns into our PasteMasks
  { name: 'PasteMasks (the mask-paste Loop)', spec: pasteMasksLoopModel({ height: 20, width: 24, maskH: 7, maskW: 9 }) },
  {
    name: 'NonMaxSuppression',
    spec: nodeModel('NonMaxSuppression', [f32(1, 100, 4), f32(1, 2, 100), i64([10]), tensor('float32', [1], [0.5])], { opset: 11 }),
  },
  // more than 32768 boxes: the suppression mask in blocks of rows (R-CNN heads: 1000 proposals x 90 classes)
  {
    name: 'NonMaxSuppression over 90000 boxes',
    spec: nodeModel('NonMaxSuppression', [f32(1, 90000, 4), f32(1, 1, 90000), i64([10])], { opset: 11 }),
  },
  {
    name: 'NonMaxSuppression over more boxes than the kernel takes',
    spec: nodeModel('NonMaxSuppression', [f32(1, 20000000, 4), f32(1, 1, 20000000), i64([10])], { opset: 11 }),
    refused: { op: 'NonMaxSuppression', reason: /^20000000 boxes per batch/ },
  },
  { name: 'TopK', spec: nodeModel('TopK', [f32('B', 4, 300), i64([5])], { outputs: 2, opset: 11 }) },
  {
    name: 'TopK of uint8 data',
    spec: nodeModel('TopK', [input('uint8', ['B', 8]), i64([2])], { outputs: 2, opset: 11 }),
    refused: { op: 'TopK', reason: /^TopK of uint8 data/ },
  },
];

/** Lowered ops no single-node case reaches as a node that needs lowering (each says why). */
const NOT_REACHED: Record<string, string> = {
  attention: 'fused from the attention pattern (test/passes, codegen tests)',
  LayerNormalization: 'fused into layernorm when over the last axis (the refused form is a case above)',
  Upsample: 'opset < 10 op; rewritten by the importer/shape rules of older models',
  Flatten: 'canonicalized to Reshape',
  Einsum: 'canonicalized to ReduceSum/Transpose/Reshape + MatMul (einsumToMatMul); the forms it leaves are refused (a case above)',
  Identity: 'removed by canonicalize',
  ConvTranspose: 'becomes conv_transpose2d in the layout pass; the forms it leaves are refused (a case above)',
  if_select: 'made by inline-if from an If with a run-time condition (test/passes/inline-if.test.ts)',
};

function optimized(spec: ModelSpec): Graph {
  const model = importOnnxBytes(buildModel(spec));
  const { graph, context } = optimizeImported(model, 'case.onnx');
  const errors = context.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errors, [], 'the case optimizes without errors');
  return graph;
}

describe('op registry: CUDA lowerings and support agree', () => {
  it('every registered CUDA lowering is for an op the op registry knows', () => {
    const lowerings = registeredLowerings(CUDA_BACKEND);
    assert.ok(lowerings.length > 20, 'the CUDA lowerings are registered');
    for (const { op, domain } of lowerings)
      assert.ok(findOp({ op, domain }), `CUDA lowering for ${domain ? `${domain}.` : ''}${op}: no op definition`);
    assert.deepEqual([...new Set(loweredOps('cuda:sm90'))].sort(), lowerings.map((l) => l.op).sort());
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: supportOf agrees with generateCuda on every case, and the cases reach every lowering`, () => {
      const reached = new Set<string>();
      for (const c of CASES) {
        const graph = optimized(c.spec);
        const support = new Map(graph.nodes.map((n) => [n, supportOf(graph, n, target)]));
        const result = generateCuda(graph, { target, modelName: 'case', maxBatch: 8 });
        for (const node of graph.nodes) {
          const s = support.get(node)!;
          const refusal = result.diagnostics.find((d) => d.code === 'cuda.unsupported' && d.location?.nodeId === node.id);
          const what = `${c.name}: ${node.op} node '${node.name}'`;
          if (s.supported) {
            assert.equal(refusal, undefined, `${what} is supported, but codegen says: ${refusal?.message}`);
            if (needsLowering(graph, node)) reached.add(node.op);
          } else {
            assert.ok(refusal, `${what} is unsupported (${s.reason}), but codegen lowers it`);
            assert.equal(node.status?.reason, s.reason, `${what}: codegen's reason`);
          }
        }
        if (c.refused) {
          const node = graph.nodes.find((n) => n.op === c.refused!.op);
          assert.ok(node, `${c.name}: no ${c.refused.op} node after optimization`);
          const s = support.get(node)!;
          assert.equal(s.supported, false, `${c.name}: supported`);
          assert.match(s.reason!, c.refused.reason);
        } else {
          const refused = result.diagnostics.filter((d) => d.severity === 'error');
          assert.deepEqual(
            refused.map((d) => d.message),
            [],
            `${c.name}: compiles`,
          );
        }
      }
      const missing = registeredLowerings(CUDA_BACKEND)
        .map((l) => l.op)
        .filter((op) => !reached.has(op) && !(op in NOT_REACHED));
      assert.deepEqual(missing, [], 'lowered ops no case reaches');
      const stale = Object.keys(NOT_REACHED).filter((op) => reached.has(op) || !loweredOps(target).includes(op));
      assert.deepEqual(stale, [], 'NOT_REACHED entries that a case reaches or that have no lowering');
    });
});

describe('op registry: ReduceMean and Split (issue 13)', () => {
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ait-registry-'));
  const write = (dir: string, spec: ModelSpec) => {
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, buildModel(spec));
    return file;
  };
  const cases: { name: string; spec: ModelSpec; op: string; lowered: boolean }[] = [
    { name: 'ReduceMean over the last axis', spec: nodeModel('ReduceMean', [f32('B', 4, 8), i64([-1])]), op: 'ReduceMean', lowered: true },
    {
      name: 'Split on channels',
      spec: nodeModel('Split', [f32('B', 8), i64([4, 4])], { attrs: { axis: 1 }, outputs: 2 }),
      op: 'Split',
      lowered: true,
    },
    {
      name: 'ReduceMean over H,W (a global pool)',
      spec: nodeModel('ReduceMean', [f32('B', 8, 4, 4), i64([2, 3])]),
      op: 'ReduceMean',
      lowered: true,
    },
  ];
  for (const c of cases)
    it(`${c.name}: inspect and compile give one answer (${c.lowered ? 'lowered' : 'unsupported'})`, () => {
      const dir = tmp();
      try {
        const file = write(dir, c.spec);
        const inspected = inspectModel(file).summary.unsupportedOps.find((u) => u.op === c.op);
        const compiled = compileModel(file, { out: path.join(dir, 'out'), target: 'cuda:sm90' });
        const errors = compiled.diagnostics.filter((d) => d.severity === 'error');
        assert.equal(
          errors.some((d) => d.code === 'cuda.unsupported'),
          false,
          'no refusal is left to code generation',
        );
        if (c.lowered) {
          assert.equal(inspected, undefined, 'inspect lists it as unsupported');
          assert.equal(compiled.ok, true, errors.map((d) => d.message).join('\n'));
        } else {
          assert.ok(inspected, 'inspect does not list it');
          assert.equal(compiled.ok, false);
          const refusal = errors.find((d) => d.code === 'op.unsupported');
          assert.ok(refusal, 'compile does not report it unsupported');
          assert.ok(refusal.message.includes(`: ${inspected.reason}`), `inspect: ${inspected.reason}; compile: ${refusal.message}`);
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
});

describe('op registry: the ROCm backend reuses the CUDA lowerings onto our kernels', () => {
  const rocm = backendById('rocm')!;

  it('registers every CUDA lowering, GEMM/conv ones with their own (CK) predicates, attention/layernorm/softmax CK-or-ours with the CUDA predicate', () => {
    assert.ok(rocm, 'the ROCm backend is registered');
    assert.deepEqual(
      registeredLowerings('rocm')
        .map((l) => `${l.domain}:${l.op}`)
        .sort(),
      registeredLowerings(CUDA_BACKEND)
        .map((l) => `${l.domain}:${l.op}`)
        .sort(),
    );
    for (const { op, domain, lowering } of registeredLowerings('rocm')) {
      const cuda = registeredLowerings(CUDA_BACKEND).find((l) => l.op === op && l.domain === domain)!;
      const cutlass = ['ait:gemm', 'ait:conv2d', 'ait:conv3d', 'ait:conv_transpose2d', ':MatMul'].includes(`${domain}:${op}`);
      // a CK instance where CK takes the form, else the CUDA lowering: its own lower, the CUDA predicate
      const ckOrOurs = ['ait:attention', 'ait:layernorm', ':LayerNormalization', ':Softmax'].includes(`${domain}:${op}`);
      assert.equal(lowering === cuda.lowering, !cutlass && !ckOrOurs, `${domain}:${op}`);
      if (ckOrOurs) assert.equal(lowering.supports, cuda.lowering.supports, `${domain}:${op} predicate`);
    }
  });

  for (const target of ['rocm:gfx90a', 'rocm:gfx942'])
    it(`${target}: supportOf agrees with code generation on every case; GEMMs and convs are CK instances`, () => {
      for (const c of CASES) {
        const graph = optimized(c.spec);
        const support = new Map(graph.nodes.map((n) => [n, supportOf(graph, n, target)]));
        const result = rocm.generate(graph, { target, modelName: 'case', maxBatch: 8 });
        const errors = result.diagnostics.filter((d) => d.severity === 'error');
        for (const node of graph.nodes) {
          const s = support.get(node)!;
          const refusal = result.diagnostics.find((d) => d.code === 'rocm.unsupported' && d.location?.nodeId === node.id);
          const what = `${c.name}: ${node.op} node '${node.name}'`;
          if (s.supported) assert.equal(refusal, undefined, `${what} is supported, but codegen says: ${refusal?.message}`);
          else {
            assert.ok(refusal, `${what} is unsupported (${s.reason}), but codegen lowers it`);
            assert.equal(node.status?.reason, s.reason, `${what}: codegen's reason`);
          }
          // GEMMs and convs are CK instances (a depthwise conv is our kernel; a group-1 transposed conv a CK GEMM +
          // our col2im, a grouped one our kernel) when the build is written
          if (
            !errors.length &&
            (['gemm', 'MatMul', 'conv2d'].includes(node.op) ||
              (['conv_transpose2d', 'conv3d'].includes(node.op) && attrInt(node, 'group', 1) === 1))
          )
            assert.ok(
              node.kernel?.library === 'ck' || (node.op === 'conv2d' && node.kernel?.library === 'ait'),
              `${what}: ${node.kernel?.library}`,
            );
        }
        if (![...support.values()].some((s) => !s.supported) && !c.refused) {
          assert.deepEqual(
            errors.map((d) => d.message),
            [],
            `${c.name}: compiles`,
          );
          assert.ok(result.files.has('src/hip/ait_hip.h') && result.files.has('src/model.cu'), `${c.name}: HIP sources`);
          assert.match(String(result.files.get('Makefile')), /--offload-arch=\$\(OFFLOAD_ARCH\)/);
        }
      }
    });
});
