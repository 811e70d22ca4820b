/**
 * Op family: MatMul between activations (batched CUTLASS GEMMs) and Resize. Small models with weights, each shaped
 * like the place the lowering meets in real models (vitmatte's VitDet backbone and decoder).
 */
import { ModelSpec, TensorSpec, buildModel } from '../../../test/helpers/onnx-builder';
import type { OpModel } from './types';

/** Deterministic weights in about [-scale, scale] (no RNG state shared between models). */
function weight(name: string, dims: number[], seed: number, scale = 0.2): TensorSpec & { name: string } {
  const count = dims.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: count }, (_, i) => Math.sin(i * 0.731 + seed * 1.3) * scale);
  return { name, dtype: 'float32', dims, values };
}

const int64 = (name: string, values: number[]): TensorSpec & { name: string } => ({
  name,
  dtype: 'int64',
  dims: [values.length],
  values,
});
const float = (name: string, values: number[]): TensorSpec & { name: string } => ({
  name,
  dtype: 'float32',
  dims: [values.length],
  values,
});

/**
 * Windowed attention (VitDet style) over x [B, 4 windows, 16 tokens, 64 channels], 2 heads of 32: qkv projection,
 * Reshape/Transpose to [3, B·4, 2, 16, 32], Gather q/k/v, q scaled, scores = q · Transpose(k) (the Transpose of the
 * last two axes is read in place as a column-major B), Softmax, · v (row-major B), heads merged, output projection.
 */
function windowedAttention(): ModelSpec {
  const c = 64;
  const heads = 2;
  const headDim = 32;
  const tokens = 16;
  const windows = 4;
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', windows, tokens, c] }],
    initializers: [
      weight('qkv.weight', [c, 3 * c], 1),
      weight('qkv.bias', [3 * c], 2, 0.05),
      weight('proj.weight', [c, c], 3),
      weight('proj.bias', [c], 4, 0.05),
      int64('qkv_shape', [-1, tokens, 3, heads, headDim]),
      int64('out_shape', [-1, windows, tokens, c]),
      { name: 'q_index', dtype: 'int64', dims: [], values: [0] },
      { name: 'k_index', dtype: 'int64', dims: [], values: [1] },
      { name: 'v_index', dtype: 'int64', dims: [], values: [2] },
      { name: 'scale', dtype: 'float32', dims: [], values: [1 / Math.sqrt(headDim)] },
    ],
    nodes: [
      { op: 'MatMul', name: 'qkv/MatMul', inputs: ['x', 'qkv.weight'], outputs: ['qkv_mm'] },
      { op: 'Add', name: 'qkv/Add', inputs: ['qkv_mm', 'qkv.bias'], outputs: ['qkv'] },
      { op: 'Reshape', name: 'Reshape', inputs: ['qkv', 'qkv_shape'], outputs: ['qkv5'] },
      { op: 'Transpose', name: 'Transpose', inputs: ['qkv5'], outputs: ['qkvT'], attrs: { perm: [2, 0, 3, 1, 4] } },
      { op: 'Gather', name: 'q', inputs: ['qkvT', 'q_index'], outputs: ['q'], attrs: { axis: 0 } },
      { op: 'Gather', name: 'k', inputs: ['qkvT', 'k_index'], outputs: ['k'], attrs: { axis: 0 } },
      { op: 'Gather', name: 'v', inputs: ['qkvT', 'v_index'], outputs: ['v'], attrs: { axis: 0 } },
      { op: 'Mul', name: 'q_scaled', inputs: ['q', 'scale'], outputs: ['qs'] },
      { op: 'Transpose', name: 'k_T', inputs: ['k'], outputs: ['kT'], attrs: { perm: [0, 1, 3, 2] } },
      { op: 'MatMul', name: 'scores', inputs: ['qs', 'kT'], outputs: ['s'] },
      { op: 'Softmax', name: 'Softmax', inputs: ['s'], outputs: ['p'], attrs: { axis: -1 } },
      { op: 'MatMul', name: 'context', inputs: ['p', 'v'], outputs: ['o'] },
      { op: 'Transpose', name: 'merge_heads', inputs: ['o'], outputs: ['oT'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', name: 'Reshape_out', inputs: ['oT', 'out_shape'], outputs: ['o4'] },
      { op: 'MatMul', name: 'proj/MatMul', inputs: ['o4', 'proj.weight'], outputs: ['y_mm'] },
      { op: 'Add', name: 'proj/Add', inputs: ['y_mm', 'proj.bias'], outputs: ['y'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', windows, tokens, c] }],
  };
}

/**
 * Broadcast batch dims: x [B,2,8,16] × z [B,1,16,8] (z broadcast over the heads axis: folded into M, batch B), then
 * sigmoid(·) × relu(y) with y [8,24] a model input (a 2-D activation: every batch dim of A folded into M).
 */
function broadcastMatMul(): ModelSpec {
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', 2, 8, 16] },
      { name: 'z', dtype: 'float32', dims: ['B', 1, 16, 8] },
      { name: 'y', dtype: 'float32', dims: [8, 24] },
    ],
    nodes: [
      { op: 'MatMul', name: 'xz', inputs: ['x', 'z'], outputs: ['xz'] },
      { op: 'Sigmoid', name: 'gate', inputs: ['xz'], outputs: ['g'] },
      { op: 'Relu', name: 'y_relu', inputs: ['y'], outputs: ['yr'] },
      { op: 'MatMul', name: 'gy', inputs: ['g', 'yr'], outputs: ['out'] },
    ],
    outputs: [{ name: 'out', dtype: 'float32', dims: ['B', 2, 8, 24] }],
  };
}

/**
 * A decoder fusion step (vitmatte): conv 3x3 + ReLU (NHWC after the layout pass) → Resize ×2 (linear, the given
 * coordinate transformation) → concat with a skip input → conv 3x3.
 */
function convResizeConv(transform: 'half_pixel' | 'align_corners', sizes: boolean): ModelSpec {
  const resizeInputs = sizes ? ['f', '', '', 'sizes'] : ['f', '', 'scales'];
  const [outH, outW] = sizes ? [19, 23] : [20, 24];
  return {
    opset: 18, // sizes for the spatial axes only (`axes`), so that the batch stays dynamic
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['B', 8, 10, 12] },
      { name: 'skip', dtype: 'float32', dims: ['B', 4, outH, outW] },
    ],
    initializers: [
      weight('conv1.weight', [16, 8, 3, 3], 6),
      weight('conv1.bias', [16], 7, 0.05),
      weight('conv2.weight', [8, 20, 3, 3], 8),
      weight('conv2.bias', [8], 9, 0.05),
      sizes ? int64('sizes', [outH, outW]) : float('scales', [1, 1, 2, 2]),
    ],
    nodes: [
      { op: 'Conv', name: 'conv1', inputs: ['x', 'conv1.weight', 'conv1.bias'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', name: 'relu1', inputs: ['c1'], outputs: ['f'] },
      {
        op: 'Resize',
        name: 'Resize',
        inputs: resizeInputs,
        outputs: ['up'],
        attrs: { mode: 'linear', coordinate_transformation_mode: transform, ...(sizes ? { axes: [2, 3] } : {}) },
      },
      { op: 'Concat', name: 'Concat', inputs: ['skip', 'up'], outputs: ['cat'], attrs: { axis: 1 } },
      { op: 'Conv', name: 'conv2', inputs: ['cat', 'conv2.weight', 'conv2.bias'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1] } },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 8, outH, outW] }],
  };
}

/** Position-embedding style resizes: bicubic by sizes (14 → 20, a = -0.75), then nearest ×2 (round_prefer_floor). */
function cubicNearest(): ModelSpec {
  return {
    opset: 18,
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 6, 14, 14] }],
    initializers: [int64('sizes', [20, 20]), float('scales', [1, 1, 2, 2])],
    nodes: [
      {
        op: 'Resize',
        name: 'Resize_cubic',
        inputs: ['x', '', '', 'sizes'],
        outputs: ['c'],
        attrs: { mode: 'cubic', coordinate_transformation_mode: 'half_pixel', cubic_coeff_a: -0.75, axes: [2, 3] },
      },
      {
        op: 'Resize',
        name: 'Resize_nearest',
        inputs: ['c', '', 'scales'],
        outputs: ['y'],
        attrs: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
      },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 6, 40, 40] }],
  };
}

export const opModels: OpModel[] = [
  {
    name: 'bmm_windowed_attention',
    description:
      'windowed attention: q·Transpose(k) (B column-major, Transpose absorbed), softmax, ·v (B row-major), batched over B·windows×heads',
    onnx: buildModel(windowedAttention()),
    maxBatch: 4,
    batches: [1, 3, 4],
  },
  {
    name: 'bmm_broadcast',
    description: 'MatMul [B,2,8,16]×[B,1,16,8] (broadcast dim folded into M), then ×relu(y) [8,24] activation (all batch dims into M)',
    onnx: buildModel(broadcastMatMul()),
    maxBatch: 4,
    batches: [1, 4],
  },
  {
    name: 'resize_bilinear_half_pixel',
    description: 'conv → Resize linear half_pixel ×2 (scales) → concat → conv',
    onnx: buildModel(convResizeConv('half_pixel', false)),
    maxBatch: 2,
    batches: [1, 2],
  },
  {
    name: 'resize_bilinear_align_corners',
    description: 'conv → Resize linear align_corners to odd sizes 19x23 → concat → conv',
    onnx: buildModel(convResizeConv('align_corners', true)),
    maxBatch: 2,
    batches: [1, 2],
  },
  {
    name: 'resize_cubic_nearest',
    description: 'Resize cubic (sizes 14→20, half_pixel, a=-0.75) then nearest ×2 (asymmetric, floor), NCHW',
    onnx: buildModel(cubicNearest()),
    maxBatch: 2,
    batches: [1, 2],
  },
];
