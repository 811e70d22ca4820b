// Fill: every element of a tensor set to one value (ONNX ConstantOfShape, whose shape may be the run's dims).
// 16 bytes per thread when the output is aligned; the tail element by element.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct FillArgs {
  T* output;
  int64_t count;
  T value;
};

template <class T>
__global__ void fill_kernel(FillArgs<T> a) {
  constexpr int V = Vec16<T>::kElements;
  const bool vector = is_aligned16(a.output);
  const int64_t vectors = vector ? a.count / V : 0;
  Vec16<T> pack;
#pragma unroll
  for (int e = 0; e < V; ++e) pack.elements[e] = a.value;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) store_vec16(a.output + i * V, pack);
  for (int64_t i = vectors * V + first; i < a.count; i += stride) a.output[i] = a.value;
}

template <class T>
cudaError_t launch_fill(const FillArgs<T>& a, cudaStream_t stream) {
  if (a.count < 0) return cudaErrorInvalidValue;
  if (a.count == 0) return cudaSuccess;
  fill_kernel<T><<<grid_for(ceil_div(a.count, Vec16<T>::kElements), 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
