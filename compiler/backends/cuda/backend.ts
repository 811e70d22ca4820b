/**
 * The CUDA backend: our kernels (kernels/*.cuh) and CUTLASS GEMM/conv instances, built with nvcc (README.md).
 */
import { registerBackend } from '../backend';
import { needsLowering, runtimeDimErrors } from './codegen/context';
import { generateCuda } from './codegen/index';
import { CUDA_BACKEND, noLoweringReason } from './codegen/lower';

registerBackend({
  id: CUDA_BACKEND,
  name: 'CUDA',
  kernelLibrary: 'CUTLASS',
  targets: [
    { id: 'cuda:sm90', label: 'cuda:sm90', detail: 'NVIDIA Hopper (H100, H200)' },
    { id: 'cuda:sm80', label: 'cuda:sm80', detail: 'NVIDIA Ampere (A100, A10, A30)' },
  ],
  host: { compiler: 'nvcc', libraryDir: 'CUTLASS_DIR', visibleDevices: 'CUDA_VISIBLE_DEVICES' },
  needsLowering,
  noLoweringReason: (op) => noLoweringReason(op, CUDA_BACKEND),
  runtimeDimErrors,
  generate: generateCuda,
});
