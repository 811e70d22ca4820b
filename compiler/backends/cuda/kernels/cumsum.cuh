// CumSum along one axis of a tensor viewed as [outer, length, inner]: one thread per (outer, inner) line, walking the
// axis in order (or reversed), so the sum is exact for integers and accumulated in float for fp16/bf16. Neighbouring
// threads take neighbouring inner positions, so reads coalesce when the axis is not the innermost; along the innermost
// axis (position ids over a mask) each thread walks its own row, which is fine for the short rows it is used on.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct CumSumArgs {
  const T* input;
  T* output;
  int64_t outer, length, inner;
  bool exclusive;  // each output excludes its own element (starts from 0)
  bool reverse;    // sum from the end of the axis
};

// The accumulator: float for 16-bit floats, the type itself otherwise.
template <class T>
struct CumSumAcc {
  using type = T;
  __device__ __forceinline__ static T load(T v) { return v; }
  __device__ __forceinline__ static T store(T v) { return v; }
};
template <>
struct CumSumAcc<__half> {
  using type = float;
  __device__ __forceinline__ static float load(__half v) { return to_float(v); }
  __device__ __forceinline__ static __half store(float v) { return from_float<__half>(v); }
};

template <class T>
__global__ void cumsum_kernel(CumSumArgs<T> a) {
  using Acc = CumSumAcc<T>;
  const int64_t lines = a.outer * a.inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t line = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; line < lines; line += stride) {
    const int64_t o = line / a.inner;
    const int64_t q = line - o * a.inner;
    const int64_t base = o * a.length * a.inner + q;
    typename Acc::type acc = 0;
    for (int64_t k = 0; k < a.length; ++k) {
      const int64_t at = base + (a.reverse ? a.length - 1 - k : k) * a.inner;
      const typename Acc::type v = Acc::load(a.input[at]);
      if (a.exclusive) {
        a.output[at] = Acc::store(acc);
        acc += v;
      } else {
        acc += v;
        a.output[at] = Acc::store(acc);
      }
    }
  }
}

template <class T>
cudaError_t launch_cumsum(const CumSumArgs<T>& a, cudaStream_t stream) {
  if (a.outer < 0 || a.length < 0 || a.inner < 0) return cudaErrorInvalidValue;
  if (a.outer * a.length * a.inner == 0) return cudaSuccess;
  cumsum_kernel<T><<<grid_for(a.outer * a.inner, 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
