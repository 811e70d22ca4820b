/**
 * 3-D convolution and pooling models (video networks: torchvision r3d_18 / mc3_18 / r2plus1d_18, X3D, S3D) for the
 * GPU op-model check (types.ts): each compiles for cuda:sm90 and cuda:sm80 without unsupported nodes
 * (test/backends/cuda/video3d.test.ts), and the GPU host compares it with onnxruntime.
 *
 *  - video3d_r3d_blocks: r3d_18's stem (3x7x7 stride 1x2x2, 3 channels: K = 441 padded to 448) + BN + relu, a 1x3x3
 *    max pool, a basic block (two 3x3x3 convs, residual, relu), r2plus1d's (2+1)-D pair (1x3x3 stride 1x2x2, then
 *    3x1x1 stride 2x1x1), global average pool, flatten, linear.
 *  - video3d_x3d_pools: a 1x1x1 conv, X3D's depthwise 3x3x3 (channel multiplier 1, bias, sigmoid), a grouped 3x3x3
 *    (g=4, 4 channels per group, + residual), average pools with count_include_pad (asymmetric pads: the end pads
 *    clip the divisor) and ceil_mode, a 3-D global max.
 */
import { seededRandom } from '../../../compiler/ir/tensor';
import { ModelSpec, NodeSpec, TensorSpec, buildModel } from '../../../test/helpers/onnx-builder';
import { OpModel } from './types';

type Initializer = TensorSpec & { name: string };

class Weights {
  readonly initializers: Initializer[] = [];
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  uniform(name: string, dims: number[], bound: number, offset = 0): string {
    const count = dims.reduce((a, b) => a * b, 1);
    this.initializers.push({
      name,
      dtype: 'float32',
      dims,
      values: Array.from({ length: count }, () => offset + (this.random() * 2 - 1) * bound),
    });
    return name;
  }

  /** OIDHW weight [out, in/group, kd, kh, kw], scaled by 1/sqrt(fan-in). */
  conv(name: string, dims: number[]): string {
    return this.uniform(name, dims, Math.sqrt(3 / dims.slice(1).reduce((a, b) => a * b, 1)));
  }

  bias(name: string, channels: number): string {
    return this.uniform(name, [channels], 0.2);
  }
}

interface Conv3dAttrs {
  kernel: [number, number, number];
  stride?: [number, number, number];
  group?: number;
}

function conv3d(name: string, inputs: string[], y: string, a: Conv3dAttrs): NodeSpec {
  const stride = a.stride ?? [1, 1, 1];
  const pad = a.kernel.map((k) => (k - 1) >> 1);
  return {
    op: 'Conv',
    name,
    inputs,
    outputs: [y],
    attrs: { kernel_shape: a.kernel, strides: stride, pads: [...pad, ...pad], group: a.group ?? 1 },
  };
}

/** x [B,3,8,32,32] → r3d stem + BN + relu → max pool 1x3x3/1x2x2 → basic block → (2+1)-D pair → GAP → linear (10). */
export function r3dBlocks(): ModelSpec {
  const w = new Weights(303);
  const bn = (name: string, x: string, y: string, c: number): NodeSpec => ({
    op: 'BatchNormalization',
    name,
    inputs: [
      x,
      w.uniform(`${name}.scale`, [c], 0.2, 1),
      w.uniform(`${name}.bias`, [c], 0.2),
      w.uniform(`${name}.mean`, [c], 0.1),
      w.uniform(`${name}.var`, [c], 0.2, 1),
    ],
    outputs: [y],
    attrs: { epsilon: 1e-5 },
  });
  const nodes: NodeSpec[] = [
    conv3d('stem', ['x', w.conv('stem.weight', [16, 3, 3, 7, 7])], 'stem', { kernel: [3, 7, 7], stride: [1, 2, 2] }),
    bn('stem_bn', 'stem', 'stem_bn', 16),
    { op: 'Relu', name: 'stem_relu', inputs: ['stem_bn'], outputs: ['s'] },
    {
      op: 'MaxPool',
      name: 'pool',
      inputs: ['s'],
      outputs: ['p'],
      attrs: { kernel_shape: [1, 3, 3], strides: [1, 2, 2], pads: [0, 1, 1, 0, 1, 1] },
    },
    conv3d('block_conv1', ['p', w.conv('block.conv1.weight', [16, 16, 3, 3, 3]), w.bias('block.conv1.bias', 16)], 'b1', {
      kernel: [3, 3, 3],
    }),
    { op: 'Relu', name: 'block_relu1', inputs: ['b1'], outputs: ['b1r'] },
    conv3d('block_conv2', ['b1r', w.conv('block.conv2.weight', [16, 16, 3, 3, 3]), w.bias('block.conv2.bias', 16)], 'b2', {
      kernel: [3, 3, 3],
    }),
    { op: 'Add', name: 'block_residual', inputs: ['b2', 'p'], outputs: ['sum'] },
    { op: 'Relu', name: 'block_relu2', inputs: ['sum'], outputs: ['blk'] },
    conv3d('spatial', ['blk', w.conv('spatial.weight', [24, 16, 1, 3, 3]), w.bias('spatial.bias', 24)], 'sp', {
      kernel: [1, 3, 3],
      stride: [1, 2, 2],
    }),
    { op: 'Relu', name: 'spatial_relu', inputs: ['sp'], outputs: ['spr'] },
    conv3d('temporal', ['spr', w.conv('temporal.weight', [32, 24, 3, 1, 1]), w.bias('temporal.bias', 32)], 'tp', {
      kernel: [3, 1, 1],
      stride: [2, 1, 1],
    }),
    { op: 'Relu', name: 'temporal_relu', inputs: ['tp'], outputs: ['tpr'] },
    { op: 'GlobalAveragePool', name: 'gap', inputs: ['tpr'], outputs: ['g'] },
    { op: 'Flatten', name: 'flatten', inputs: ['g'], outputs: ['f'], attrs: { axis: 1 } },
    { op: 'Gemm', name: 'fc', inputs: ['f', w.conv('fc.weight', [10, 32]), w.bias('fc.bias', 10)], outputs: ['y'], attrs: { transB: 1 } },
  ];
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, 8, 32, 32] }],
    initializers: w.initializers,
    nodes,
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 10] }],
  };
}

/**
 * x [B,16,6,10,10] → 1x1x1 (16) → depthwise 3x3x3 + bias + sigmoid → grouped 3x3x3 g=4 + bias + x → avg pool
 * 2x3x3/2x2x2 pads 0x1x1 / 1x2x2 count_include_pad → avg pool 2x2x2/2 ceil_mode → global max pool → [B,16,1,1,1].
 */
export function x3dPools(): ModelSpec {
  const w = new Weights(404);
  const nodes: NodeSpec[] = [
    conv3d('pointwise', ['x', w.conv('pw.weight', [16, 16, 1, 1, 1]), w.bias('pw.bias', 16)], 'a', { kernel: [1, 1, 1] }),
    conv3d('depthwise', ['a', w.conv('dw.weight', [16, 1, 3, 3, 3]), w.bias('dw.bias', 16)], 'd', { kernel: [3, 3, 3], group: 16 }),
    { op: 'Sigmoid', name: 'dw_sigmoid', inputs: ['d'], outputs: ['ds'] },
    conv3d('grouped', ['ds', w.conv('gc.weight', [16, 4, 3, 3, 3]), w.bias('gc.bias', 16)], 'gc', { kernel: [3, 3, 3], group: 4 }),
    { op: 'Add', name: 'residual', inputs: ['gc', 'x'], outputs: ['r'] },
    {
      op: 'AveragePool',
      name: 'avg_pad',
      inputs: ['r'],
      outputs: ['ap'],
      attrs: { kernel_shape: [2, 3, 3], strides: [2, 2, 2], pads: [0, 1, 1, 1, 2, 2], count_include_pad: 1 },
    },
    {
      op: 'AveragePool',
      name: 'avg_ceil',
      inputs: ['ap'],
      outputs: ['ac'],
      attrs: { kernel_shape: [2, 2, 2], strides: [2, 2, 2], ceil_mode: 1 },
    },
    { op: 'GlobalMaxPool', name: 'gmax', inputs: ['ac'], outputs: ['y'] },
  ];
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 16, 6, 10, 10] }],
    initializers: w.initializers,
    nodes,
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 16, 1, 1, 1] }],
  };
}

export const videoModelSpecs: { name: string; description: string; spec: () => ModelSpec }[] = [
  {
    name: 'video3d_r3d_blocks',
    description: 'r3d stem 3x7x7/1x2x2 + BN + relu, max pool 1x3x3, 3x3x3 basic block + residual, (2+1)-D pair, GAP, linear',
    spec: r3dBlocks,
  },
  {
    name: 'video3d_x3d_pools',
    description: '1x1x1, depthwise 3x3x3 + sigmoid, grouped 3x3x3 g=4 + residual, avg pools (count_include_pad, ceil), global max',
    spec: x3dPools,
  },
];

export const opModels: OpModel[] = videoModelSpecs.map(({ name, description, spec }) => ({
  name,
  description,
  onnx: buildModel(spec()),
  maxBatch: 4,
  batches: [1, 4],
}));
