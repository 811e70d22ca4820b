/**
 * The ROCm backend's lowerings (backend id 'rocm'). Our kernels are one source for CUDA and HIP (kernels/*.cuh with
 * the portability headers of cuda/hip/), so every CUDA lowering onto them is registered here too, with the same
 * predicate. GEMM and convolution are the exception: on CUDA they are CUTLASS instances, on ROCm Composable Kernel
 * instances with the whole epilogue fused (ck/library.ts: DeviceGemmMultipleD, DeviceBatchedGemmMultiD,
 * DeviceGroupedConvFwdMultipleD), except depthwise convolution and grouped transposed convolution, which are our
 * kernels; a transposed convolution of group 1 is a CK GEMM into the workspace + our col2im. Attention, layernorm and
 * last-axis softmax are CK instances where CK takes the node's form (ck/library.ts attention, rowOp), else the CUDA
 * lowering onto our kernel, with the same predicate. Ops of ours on our kernels (PasteMasks, Roll) come with the loop below.
 */
import { Node, attrInt } from '../../ir/graph';
import { registerLowering, registeredLowerings } from '../../ops/registry';
import { CodegenContext, Unsupported } from '../cuda/codegen/context';
import { conv3dShapeOf, convShapeOf } from '../cuda/codegen/conv-lowering';
import { convTransposeShapeOf, lowerConvTranspose } from '../cuda/codegen/conv-transpose-lowering';
import { analyzeBatchedMatMul } from '../cuda/codegen/batched-gemm';
import type { LoweredGemm } from '../cuda/codegen/gemm-lowering';
import { CUDA_BACKEND, CudaLowerEnv, CudaLowerFn, predicateOf } from '../cuda/codegen/lower';
import { isDepthwise } from '../cuda/cutlass/conv';
import { CkLibrary, ckEpilogue, staticSpatial } from './ck/library';

export const ROCM_BACKEND = 'rocm';

/** The ops whose CUDA lowering is a CUTLASS instance. */
const CUTLASS_OPS = new Set(['ait:conv2d', 'ait:conv3d', 'ait:conv_transpose2d', 'ait:gemm', ':MatMul']);

/** Ops that are a CK instance where CK takes the form, else our kernel (the CUDA lowering). */
const CK_OR_OURS: Record<string, (library: CkLibrary, node: Node) => LoweredGemm | string> = {
  'ait:attention': (library, node) => library.attention(node),
  'ait:layernorm': (library, node) => library.rowOp(node, 'layernorm'),
  ':LayerNormalization': (library, node) => library.rowOp(node, 'layernorm'),
  ':Softmax': (library, node) => library.rowOp(node, 'softmax'),
};

for (const { op, domain, lowering } of registeredLowerings(CUDA_BACKEND)) {
  const key = `${domain}:${op}`;
  if (CUTLASS_OPS.has(key)) continue;
  const viaCk = CK_OR_OURS[key];
  if (!viaCk) {
    registerLowering(ROCM_BACKEND, op, lowering, domain);
    continue;
  }
  const ours = lowering.lower as CudaLowerFn;
  const lower: CudaLowerFn = (env, node) => {
    const g = viaCk(ck(env), node);
    if (typeof g === 'string') {
      const [kernel, ...rest] = ours(env, node);
      return [{ ...kernel, reason: `${kernel.reason} (not CK: ${g})` }, ...rest];
    }
    return [g.kernel, g.body, g.headers, g.workspaceBytes];
  };
  registerLowering<CudaLowerFn>(ROCM_BACKEND, op, { supports: lowering.supports, lower }, domain);
}

/** The per-compile Composable Kernel library (ck/library.ts): rocmPlatform makes one per compile. */
function ck(env: CudaLowerEnv): CkLibrary {
  if (!(env.library instanceof CkLibrary)) throw new Error('ROCm lowering without its Composable Kernel library');
  return env.library;
}

/**
 * What a CK instance needs that the graph knows before code generation: the CUDA GEMM checks (B a 2-D weight or a
 * batched MatMul the analysis takes, fp16 output) and an epilogue CK can fuse (ck/library.ts ckEpilogue).
 */
function checkGemm(ctx: CodegenContext, node: Node): void {
  const [a, b] = node.inputs;
  ctx.shapeOf(a);
  const bShape = ctx.shapeOf(b);
  let n: number;
  if (bShape.length !== 2 || !ctx.isWeight(b)) {
    if (node.op !== 'MatMul') throw new Unsupported('GEMM with a B operand that is not a 2-D weight');
    // N may be a run-time size (ck/library.ts dispatches on it): the epilogue's channel vectors are of its largest
    n = ctx.maxOf(analyzeBatchedMatMul(node, (t) => ctx.shapeOf(t), new Map()).n);
  } else n = (node.op !== 'MatMul' && attrInt(node, 'trans_b', 0) ? bShape[0] : bShape[1]) as number;
  if (ctx.typeOf(node.outputs[0]) !== 'half') throw new Unsupported('GEMM output is not a float tensor');
  ckEpilogue(ctx, node, n);
}
const gemm: CudaLowerFn = (env, node) => {
  const g = ck(env).gemm(node);
  return [g.kernel, g.body, g.headers, g.workspaceBytes];
};
registerLowering<CudaLowerFn>(ROCM_BACKEND, 'gemm', { supports: predicateOf(checkGemm), lower: gemm }, 'ait');
registerLowering<CudaLowerFn>(ROCM_BACKEND, 'MatMul', { supports: predicateOf(checkGemm), lower: gemm });

/** Depthwise convolution runs on our direct kernel; every other convolution is a CK grouped conv forward. */
function checkConv(ctx: CodegenContext, node: Node): void {
  const shape = convShapeOf(ctx, node);
  if (isDepthwise(shape)) return;
  if (shape.k % shape.group !== 0) throw new Unsupported(`convolution with ${shape.k} output channels in ${shape.group} groups`);
  staticSpatial(shape);
  ckEpilogue(ctx, node, shape.k);
}
registerLowering<CudaLowerFn>(
  ROCM_BACKEND,
  'conv2d',
  {
    supports: predicateOf(checkConv),
    lower: (env, node) => {
      const g = isDepthwise(convShapeOf(env.ctx, node)) ? env.conv.conv2d(node) : ck(env).conv2d(node);
      return [g.kernel, g.body, g.headers, g.workspaceBytes];
    },
  },
  'ait',
);

/** 3-D convolution: grouped and depthwise on our kernels (as on CUDA); group 1 our 3-D im2col + a CK GEMM. */
function checkConv3d(ctx: CodegenContext, node: Node): void {
  const shape = conv3dShapeOf(ctx, node);
  if (shape.group === 1) ckEpilogue(ctx, node, shape.k);
}
registerLowering<CudaLowerFn>(
  ROCM_BACKEND,
  'conv3d',
  {
    supports: predicateOf(checkConv3d),
    lower: (env, node) => {
      const g = conv3dShapeOf(env.ctx, node).group === 1 ? ck(env).conv3d(node) : env.conv.conv3d(node);
      return [g.kernel, g.body, g.headers, g.workspaceBytes];
    },
  },
  'ait',
);

/** ConvTranspose: grouped on our direct kernel, group 1 a CK GEMM into the workspace + our col2im (as on CUDA). */
registerLowering<CudaLowerFn>(
  ROCM_BACKEND,
  'conv_transpose2d',
  {
    supports: predicateOf(convTransposeShapeOf),
    lower: (env, node) => {
      const g = lowerConvTranspose(env.ctx, ck(env), node);
      return [g.kernel, g.body, g.headers, g.workspaceBytes];
    },
  },
  'ait',
);
