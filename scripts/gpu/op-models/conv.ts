/**
 * Grouped and depthwise convolution models for the GPU op-model check (types.ts): each compiles for cuda:sm90 and
 * cuda:sm80 without unsupported nodes (test/backends/cuda/grouped-conv.test.ts), and the GPU host compares it with
 * onnxruntime.
 *
 *  - conv_resnext_block: ResNeXt bottleneck: 1x1 → grouped 3x3 (g=32, 4 channels per group: CUTLASS kMultipleGroup)
 *    → 1x1, residual add, relu.
 *  - conv_grouped_g4_residual: grouped 3x3 with 64 channels per group (kSingleGroup) whose epilogue bias + residual
 *    + relu is split: bias fused in CUTLASS, residual + relu as an elementwise kernel.
 *  - conv_mobilenetv2_blocks: two inverted residuals: 1x1 expand + relu6, depthwise 3x3 (stride 1, then 2) + relu6,
 *    1x1 project (+ the block input on the stride-1 block).
 *  - conv_depthwise_5x5_dilated: depthwise 5x5 dilation 2 on 20 channels (not a multiple of 8: the per-channel
 *    path), then a depthwise 3x3 stride 2 with channel multiplier 2 (40 channels: the 16-byte path, multiplier > 1).
 */
import { seededRandom } from '../../../compiler/ir/tensor';
import { ModelSpec, NodeSpec, TensorSpec, buildModel } from '../../../test/helpers/onnx-builder';
import { OpModel } from './types';

type Initializer = TensorSpec & { name: string };

/** Initializers with seeded uniform values, weights scaled by 1/sqrt(fan-in) so activations stay O(1). */
class Weights {
  readonly initializers: Initializer[] = [];
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  uniform(name: string, dims: number[], bound: number): string {
    const count = dims.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: count }, () => (this.random() * 2 - 1) * bound);
    this.initializers.push({ name, dtype: 'float32', dims, values });
    return name;
  }

  /** OIHW conv weight [out, in/group, kh, kw]. */
  conv(name: string, dims: [number, number, number, number]): string {
    return this.uniform(name, dims, Math.sqrt(3 / (dims[1] * dims[2] * dims[3])));
  }

  bias(name: string, channels: number): string {
    return this.uniform(name, [channels], 0.2);
  }

  scalar(name: string, value: number): string {
    this.initializers.push({ name, dtype: 'float32', dims: [], values: [value] });
    return name;
  }
}

interface ConvAttrs {
  kernel: number;
  stride?: number;
  dilation?: number;
  group?: number;
}

function conv(name: string, x: string, w: string, b: string, y: string, a: ConvAttrs): NodeSpec {
  const stride = a.stride ?? 1;
  const dilation = a.dilation ?? 1;
  const pad = (dilation * (a.kernel - 1)) >> 1;
  return {
    op: 'Conv',
    name,
    inputs: [x, w, b],
    outputs: [y],
    attrs: {
      kernel_shape: [a.kernel, a.kernel],
      strides: [stride, stride],
      dilations: [dilation, dilation],
      pads: [pad, pad, pad, pad],
      group: a.group ?? 1,
    },
  };
}

/** x [B,64,14,14] → 1x1 (128) + relu → 3x3 g=32 (128, 4 per group) + relu → 1x1 (64) → + x → relu. */
export function resnextBlock(): ModelSpec {
  const weights = new Weights(101);
  const nodes: NodeSpec[] = [
    conv('conv_reduce', 'x', weights.conv('reduce.weight', [128, 64, 1, 1]), weights.bias('reduce.bias', 128), 'a', { kernel: 1 }),
    { op: 'Relu', name: 'relu_reduce', inputs: ['a'], outputs: ['a_relu'] },
    conv('conv_grouped', 'a_relu', weights.conv('grouped.weight', [128, 4, 3, 3]), weights.bias('grouped.bias', 128), 'g', {
      kernel: 3,
      group: 32,
    }),
    { op: 'Relu', name: 'relu_grouped', inputs: ['g'], outputs: ['g_relu'] },
    conv('conv_expand', 'g_relu', weights.conv('expand.weight', [64, 128, 1, 1]), weights.bias('expand.bias', 64), 'e', { kernel: 1 }),
    { op: 'Add', name: 'residual', inputs: ['e', 'x'], outputs: ['sum'] },
    { op: 'Relu', name: 'relu_out', inputs: ['sum'], outputs: ['y'] },
  ];
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 64, 14, 14] }],
    initializers: weights.initializers,
    nodes,
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 64, 14, 14] }],
  };
}

/** x [B,256,10,10] → relu(grouped 3x3 g=4 (64 per group) + bias + x). */
export function groupedResidual(): ModelSpec {
  const weights = new Weights(202);
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 256, 10, 10] }],
    initializers: weights.initializers,
    nodes: [
      conv('conv_grouped', 'x', weights.conv('grouped.weight', [256, 64, 3, 3]), weights.bias('grouped.bias', 256), 'g', {
        kernel: 3,
        group: 4,
      }),
      { op: 'Add', name: 'residual', inputs: ['g', 'x'], outputs: ['sum'] },
      { op: 'Relu', name: 'relu', inputs: ['sum'], outputs: ['y'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 256, 10, 10] }],
  };
}

/** x [B,16,28,28] → inverted residual (stride 1, + x) → inverted residual (stride 2, 24 channels out). */
export function mobilenetV2Blocks(): ModelSpec {
  const weights = new Weights(303);
  const zero = weights.scalar('relu6.min', 0);
  const six = weights.scalar('relu6.max', 6);
  const nodes: NodeSpec[] = [];
  const block = (prefix: string, x: string, inChannels: number, outChannels: number, stride: number, residual: boolean): string => {
    const hidden = inChannels * 6;
    nodes.push(
      conv(
        `${prefix}_expand`,
        x,
        weights.conv(`${prefix}.expand.weight`, [hidden, inChannels, 1, 1]),
        weights.bias(`${prefix}.expand.bias`, hidden),
        `${prefix}_e`,
        {
          kernel: 1,
        },
      ),
      { op: 'Clip', name: `${prefix}_expand_relu6`, inputs: [`${prefix}_e`, zero, six], outputs: [`${prefix}_e6`] },
      conv(
        `${prefix}_depthwise`,
        `${prefix}_e6`,
        weights.conv(`${prefix}.depthwise.weight`, [hidden, 1, 3, 3]),
        weights.bias(`${prefix}.depthwise.bias`, hidden),
        `${prefix}_d`,
        { kernel: 3, stride, group: hidden },
      ),
      { op: 'Clip', name: `${prefix}_depthwise_relu6`, inputs: [`${prefix}_d`, zero, six], outputs: [`${prefix}_d6`] },
      conv(
        `${prefix}_project`,
        `${prefix}_d6`,
        weights.conv(`${prefix}.project.weight`, [outChannels, hidden, 1, 1]),
        weights.bias(`${prefix}.project.bias`, outChannels),
        `${prefix}_p`,
        { kernel: 1 },
      ),
    );
    if (!residual) return `${prefix}_p`;
    nodes.push({ op: 'Add', name: `${prefix}_residual`, inputs: [`${prefix}_p`, x], outputs: [`${prefix}_out`] });
    return `${prefix}_out`;
  };
  const first = block('block1', 'x', 16, 16, 1, true);
  const second = block('block2', first, 16, 24, 2, false);
  nodes.push({ op: 'Identity', name: 'output', inputs: [second], outputs: ['y'] });
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 16, 28, 28] }],
    initializers: weights.initializers,
    nodes,
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 24, 14, 14] }],
  };
}

/** x [B,20,20,20] → depthwise 5x5 dilation 2 + bias → relu → depthwise 3x3 stride 2, multiplier 2 (40) + bias. */
export function depthwiseDilated(): ModelSpec {
  const weights = new Weights(404);
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 20, 20, 20] }],
    initializers: weights.initializers,
    nodes: [
      conv('depthwise_5x5', 'x', weights.conv('dw5.weight', [20, 1, 5, 5]), weights.bias('dw5.bias', 20), 'd', {
        kernel: 5,
        dilation: 2,
        group: 20,
      }),
      { op: 'Relu', name: 'relu', inputs: ['d'], outputs: ['r'] },
      conv('depthwise_multiplier2', 'r', weights.conv('dw3.weight', [40, 1, 3, 3]), weights.bias('dw3.bias', 40), 'y', {
        kernel: 3,
        stride: 2,
        group: 20,
      }),
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['B', 40, 10, 10] }],
  };
}

/** The models by name, with what each checks (the tests compile the same specs). */
export const convModelSpecs: { name: string; description: string; spec: () => ModelSpec }[] = [
  {
    name: 'conv_resnext_block',
    description: 'ResNeXt block: 1x1, grouped 3x3 g=32 (4 channels/group, CUTLASS kMultipleGroup), 1x1, residual, relu',
    spec: resnextBlock,
  },
  {
    name: 'conv_grouped_g4_residual',
    description: 'grouped 3x3 g=4 (64 channels/group, kSingleGroup), bias fused, residual + relu as elementwise',
    spec: groupedResidual,
  },
  {
    name: 'conv_mobilenetv2_blocks',
    description: 'MobileNetV2 inverted residuals: 1x1 + relu6, depthwise 3x3 s1/s2 + relu6, 1x1 project, residual',
    spec: mobilenetV2Blocks,
  },
  {
    name: 'conv_depthwise_5x5_dilated',
    description: 'depthwise 5x5 dilation 2 on 20 channels (per-channel path), depthwise 3x3 s2 multiplier 2 (40 channels)',
    spec: depthwiseDilated,
  },
];

export const opModels: OpModel[] = convModelSpecs.map(({ name, description, spec }) => ({
  name,
  description,
  onnx: buildModel(spec()),
  maxBatch: 8,
  batches: [1, 3, 8],
}));
