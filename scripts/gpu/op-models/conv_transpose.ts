/**
 * Transposed convolution (ONNX ConvTranspose) models for the GPU op-model check (types.ts): each compiles for
 * cuda:sm90 and cuda:sm80 without unsupported nodes (test/backends/cuda/conv-transpose.test.ts), and the GPU host
 * compares it with onnxruntime.
 *
 *  - convt_mask_head: Mask R-CNN's mask predictor: 3x3 conv + relu on 14x14x256, ConvTranspose 2x2 stride 2 + relu
 *    (GEMM + the one-tap scatter, bias and relu fused), 1x1 conv to 91 classes + sigmoid.
 *  - convt_overlap: ConvTranspose 3x3 stride 2, pads 1, output_padding 1 on 40 channels, then 4x4 stride 2 pads 1
 *    to 24 channels (overlapping taps: GEMM + col2im), with the residual add of a 1x1 conv of a second input and a
 *    relu fused.
 *  - convt_odd: stride 3x2, asymmetric pads, dilation 1x2, 5 output channels (K odd: the align-1 GEMM and the
 *    per-element col2im), then auto_pad SAME_UPPER and an output_shape form (even total pads: the ONNX spec's text
 *    on where an odd one goes changed over time, so the GPU host's onnxruntime may split it either way).
 *  - convt_grouped: grouped ConvTranspose (group 4, 8 channels per group: the direct kernel's 16-byte path), then a
 *    depthwise 4x4 stride 2 (group = channels: FCN's bilinear upsampling form).
 */
import { seededRandom } from '../../../compiler/ir/tensor';
import { AttrSpec, ModelSpec, NodeSpec, TensorSpec, buildModel } from '../../../test/helpers/onnx-builder';
import { OpModel } from './types';

type Initializer = TensorSpec & { name: string };

class Weights {
  readonly initializers: Initializer[] = [];
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  uniform(name: string, dims: number[], bound: number): string {
    const count = dims.reduce((a, b) => a * b, 1);
    this.initializers.push({ name, dtype: 'float32', dims, values: Array.from({ length: count }, () => (this.random() * 2 - 1) * bound) });
    return name;
  }

  /** ConvTranspose weight [C, M/group, kh, kw]: each output sums about C/group · taps/stride² terms. */
  transposed(name: string, dims: [number, number, number, number]): string {
    return this.uniform(name, dims, Math.sqrt(3 / dims[0]));
  }

  conv(name: string, dims: [number, number, number, number]): string {
    return this.uniform(name, dims, Math.sqrt(3 / (dims[1] * dims[2] * dims[3])));
  }
}

const node = (op: string, name: string, inputs: string[], output: string, attrs?: Record<string, AttrSpec>): NodeSpec => ({
  op,
  name,
  inputs,
  outputs: [output],
  attrs,
});

export function maskHead(): ModelSpec {
  const w = new Weights(21);
  return {
    inputs: [{ name: 'features', dtype: 'float32', dims: ['N', 256, 14, 14] }],
    nodes: [
      node('Conv', 'mask_fcn4', ['features', w.conv('fcn4.weight', [256, 256, 3, 3]), w.uniform('fcn4.bias', [256], 0.1)], 'f', {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      }),
      node('Relu', 'relu4', ['f'], 'r'),
      node('ConvTranspose', 'conv5_mask', ['r', w.transposed('conv5.weight', [256, 256, 2, 2]), w.uniform('conv5.bias', [256], 0.1)], 't', {
        kernel_shape: [2, 2],
        strides: [2, 2],
      }),
      node('Relu', 'relu5', ['t'], 'u'),
      node('Conv', 'mask_fcn_logits', ['u', w.conv('logits.weight', [91, 256, 1, 1]), w.uniform('logits.bias', [91], 0.1)], 'l', {
        kernel_shape: [1, 1],
      }),
      node('Sigmoid', 'sigmoid', ['l'], 'masks'),
    ],
    outputs: [{ name: 'masks', dtype: 'float32', dims: ['N', 91, 28, 28] }],
    initializers: w.initializers,
  };
}

export function overlapping(): ModelSpec {
  const w = new Weights(22);
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: ['N', 40, 9, 7] },
      { name: 'skip', dtype: 'float32', dims: ['N', 24, 36, 28] },
    ],
    nodes: [
      node('ConvTranspose', 'up1', ['x', w.transposed('up1.weight', [40, 32, 3, 3]), w.uniform('up1.bias', [32], 0.1)], 'a', {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        output_padding: [1, 1],
      }),
      node('ConvTranspose', 'up2', ['a', w.transposed('up2.weight', [32, 24, 4, 4])], 'b', {
        kernel_shape: [4, 4],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
      }),
      // the skip path's conv comes after the ConvTranspose, so fuse-conv gives the residual add to the ConvTranspose
      node('Conv', 'skip_conv', ['skip', w.conv('skip.weight', [24, 24, 1, 1])], 'k', { kernel_shape: [1, 1] }),
      node('Add', 'skip_add', ['b', 'k'], 's'),
      node('Relu', 'relu', ['s'], 'y'),
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['N', 24, 36, 28] }],
    initializers: w.initializers,
  };
}

export function oddShapes(): ModelSpec {
  const w = new Weights(23);
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['N', 6, 5, 6] }],
    nodes: [
      node('ConvTranspose', 'odd', ['x', w.transposed('odd.weight', [6, 5, 3, 2]), w.uniform('odd.bias', [5], 0.1)], 'a', {
        kernel_shape: [3, 2],
        strides: [3, 2],
        pads: [2, 0, 1, 2],
        dilations: [1, 2],
        output_padding: [0, 1],
      }),
      // even total pads (see the header)
      node('ConvTranspose', 'same_upper', ['a', w.transposed('same.weight', [5, 8, 4, 4])], 'b', {
        kernel_shape: [4, 4],
        strides: [2, 2],
        auto_pad: 'SAME_UPPER',
      }),
      node('ConvTranspose', 'shaped', ['b', w.transposed('shaped.weight', [8, 8, 3, 3]), w.uniform('shaped.bias', [8], 0.1)], 'y', {
        kernel_shape: [3, 3],
        strides: [2, 2],
        output_shape: [47, 41],
      }),
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['N', 8, 47, 41] }],
    initializers: w.initializers,
  };
}

export function grouped(): ModelSpec {
  const w = new Weights(24);
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['N', 32, 8, 8] }],
    nodes: [
      node('ConvTranspose', 'grouped', ['x', w.transposed('g.weight', [32, 6, 3, 3]), w.uniform('g.bias', [24], 0.1)], 'a', {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        output_padding: [1, 1],
        group: 4,
      }),
      node('Relu', 'relu', ['a'], 'r'),
      node('ConvTranspose', 'depthwise_up', ['r', w.transposed('dw.weight', [24, 1, 4, 4])], 'y', {
        kernel_shape: [4, 4],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        group: 24,
      }),
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims: ['N', 24, 32, 32] }],
    initializers: w.initializers,
  };
}

export const convTransposeModelSpecs: { name: string; description: string; spec: () => ModelSpec }[] = [
  { name: 'convt_mask_head', description: "Mask R-CNN's mask predictor: ConvTranspose 2x2/2 + relu between convs", spec: maskHead },
  { name: 'convt_overlap', description: 'ConvTranspose 3x3/2 op 1 and 4x4/2 p1 (col2im), residual + relu fused', spec: overlapping },
  { name: 'convt_odd', description: 'ConvTranspose stride 3x2, dilation, K=5; SAME_UPPER; output_shape', spec: oddShapes },
  { name: 'convt_grouped', description: 'grouped ConvTranspose (g=4) and depthwise 4x4/2 upsampling (direct kernel)', spec: grouped },
];

export const opModels: OpModel[] = convTransposeModelSpecs.map(({ name, description, spec }) => ({
  name,
  description,
  onnx: buildModel(spec()),
  maxBatch: 8,
  batches: [1, 3, 8],
}));
