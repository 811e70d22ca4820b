// One attention launch at ViT-L/16-384's batch-8 shape, for Nsight Compute (kernel_check times the same shape but
// launches it many times among other cases). Build and profile (GPU host, repository root):
//   nvcc -std=c++17 -O2 -arch=sm_90 -lineinfo -Icompiler/backends/cuda/kernels compiler/backends/cuda/tests/attention_one.cu -o attention_one
//   ncu --launch-skip 2 --launch-count 1 --kernel-name regex:attention_tc --section SpeedOfLight --section Occupancy \
//       --section WarpStateStats --section ComputeWorkloadAnalysis --section LaunchStats ./attention_one
#include <cstdio>
#include "attention.cuh"
using namespace ait::kernels;
__global__ void fill(__half* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __float2half(((i * 2654435761u) % 1000) / 1000.f - 0.5f);
}
int main() {
  const int64_t B = 8, S = 577; const int H = 16, D = 64;
  size_t n = B * S * 3 * H * D;
  __half *qkv, *out;
  cudaMalloc(&qkv, n * 2); cudaMalloc(&out, B * S * H * D * 2);
  fill<<<1024, 256>>>(qkv, n);
  const AttentionArgs<__half> a = packed_attention_args<__half>(qkv, out, B, S, H, D, 0.125f);
  for (int i = 0; i < 3; ++i) launch_attention(a, nullptr);
  cudaError_t e = cudaDeviceSynchronize();
  printf("done: %s\n", cudaGetErrorString(e));
  return 0;
}
