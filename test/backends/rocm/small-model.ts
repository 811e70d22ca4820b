/**
 * A small model with no GEMM or convolution: its layernorm and softmax are CK instances (ck/norm-instances.ts), the
 * rest our kernels. SMALL_HIP_MODEL_OURS is the same model in forms CK does not take (a layernorm without beta, a
 * softmax over a middle axis): no CK instance, so CI builds it whole without CK headers.
 */
import { ModelSpec, input, tensor } from '../../helpers/onnx-builder';

const values = (n: number) => Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);

export const SMALL_HIP_MODEL: ModelSpec = {
  inputs: [{ name: 'x', ...input('float32', ['B', 4, 64]) }],
  initializers: [
    { ...tensor('float32', [64], values(64)), name: 'gamma' },
    { ...tensor('float32', [64], values(64).reverse()), name: 'beta' },
  ],
  nodes: [
    { op: 'LayerNormalization', inputs: ['x', 'gamma', 'beta'], outputs: ['n'], attrs: { axis: -1 } },
    { op: 'Add', inputs: ['n', 'beta'], outputs: ['a'] },
    { op: 'Relu', inputs: ['a'], outputs: ['r'] },
    { op: 'Softmax', inputs: ['r'], outputs: ['s'], attrs: { axis: -1 } },
    { op: 'Transpose', inputs: ['s'], outputs: ['t'], attrs: { perm: [0, 2, 1] } },
    { op: 'ReduceMean', inputs: ['t'], outputs: ['y'], attrs: { axes: [2], keepdims: 0 } },
  ],
  outputs: ['y'],
};

export const SMALL_HIP_MODEL_OURS: ModelSpec = {
  ...SMALL_HIP_MODEL,
  nodes: [
    { op: 'LayerNormalization', inputs: ['x', 'gamma'], outputs: ['n'], attrs: { axis: -1 } },
    { op: 'Add', inputs: ['n', 'beta'], outputs: ['a'] },
    { op: 'Relu', inputs: ['a'], outputs: ['r'] },
    { op: 'Softmax', inputs: ['r'], outputs: ['s'], attrs: { axis: 1 } },
    { op: 'Transpose', inputs: ['s'], outputs: ['t'], attrs: { perm: [0, 2, 1] } },
    { op: 'ReduceMean', inputs: ['t'], outputs: ['y'], attrs: { axes: [2], keepdims: 0 } },
  ],
};
