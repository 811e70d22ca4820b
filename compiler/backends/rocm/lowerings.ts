/**
 * The ROCm backend's lowerings (backend id 'rocm'). Our kernels are one source for CUDA and HIP (kernels/*.cuh with
 * the portability headers of cuda/hip/), so every CUDA lowering onto them is registered here too, with the same
 * predicate. GEMM and convolution are the exception: on CUDA they are CUTLASS instances, on ROCm they would be
 * Composable Kernel instances (DeviceGemm / DeviceGroupedConvFwd with fused epilogues), which this backend does not
 * generate yet, so their predicates refuse with that reason — except depthwise convolution and grouped transposed
 * convolution, which are our kernels.
 */
import { Node } from '../../ir/graph';
import { registerLowering, registeredLowerings } from '../../ops/registry';
import { CodegenContext, Unsupported } from '../cuda/codegen/context';
import { convShapeOf } from '../cuda/codegen/conv-lowering';
import { convTransposeShapeOf, lowerConvTranspose } from '../cuda/codegen/conv-transpose-lowering';
import { CUDA_BACKEND, CudaLowerFn, predicateOf } from '../cuda/codegen/lower';
import { isDepthwise } from '../cuda/cutlass/conv';

export const ROCM_BACKEND = 'rocm';

/** The ops whose CUDA lowering is a CUTLASS instance. */
const CUTLASS_OPS = new Set(['ait:conv2d', 'ait:conv_transpose2d', 'ait:gemm', ':MatMul']);

/** The refusal of a GEMM or convolution: which CK device operation it needs. */
export function ckMissing(what: string, deviceOp: string): string {
  return `${what}: on ROCm this needs a Composable Kernel ${deviceOp} instance, which the ROCm backend does not generate yet`;
}

for (const { op, domain, lowering } of registeredLowerings(CUDA_BACKEND))
  if (!CUTLASS_OPS.has(`${domain}:${op}`)) registerLowering(ROCM_BACKEND, op, lowering, domain);

const refuse = (what: string) => (): never => {
  throw new Unsupported(ckMissing(what, what === 'GEMM' ? 'DeviceGemm' : 'DeviceBatchedGemm / DeviceGemm'));
};
registerLowering<CudaLowerFn>(ROCM_BACKEND, 'gemm', { supports: predicateOf(refuse('GEMM')), lower: refuse('GEMM') }, 'ait');
registerLowering<CudaLowerFn>(ROCM_BACKEND, 'MatMul', { supports: predicateOf(refuse('MatMul')), lower: refuse('MatMul') });

/** Depthwise convolution runs on our direct kernel; every other convolution needs CK. */
function checkConv(ctx: CodegenContext, node: Node): void {
  const shape = convShapeOf(ctx, node);
  if (!isDepthwise(shape))
    throw new Unsupported(ckMissing(`convolution (group ${shape.group}, C=${shape.c}, K=${shape.k})`, 'DeviceGroupedConvFwd'));
}
registerLowering<CudaLowerFn>(
  ROCM_BACKEND,
  'conv2d',
  {
    supports: predicateOf(checkConv),
    lower: ({ conv }, node) => {
      const g = conv.conv2d(node);
      return [g.kernel, g.body, g.headers, g.workspaceBytes];
    },
  },
  'ait',
);

/** A grouped ConvTranspose runs on our direct kernel; group 1 is a GEMM (+ our col2im), which needs CK. */
function checkConvTranspose(ctx: CodegenContext, node: Node): void {
  const shape = convTransposeShapeOf(ctx, node);
  if (shape.group === 1)
    throw new Unsupported(ckMissing(`transposed convolution (C=${shape.c}, K=${shape.k}) as GEMM + col2im`, 'DeviceGemm'));
}
registerLowering<CudaLowerFn>(
  ROCM_BACKEND,
  'conv_transpose2d',
  {
    supports: predicateOf(checkConvTranspose),
    lower: ({ ctx }, node) => {
      const g = lowerConvTranspose(ctx, undefined, node);
      return [g.kernel, g.body, g.headers, g.workspaceBytes];
    },
  },
  'ait',
);
