// LRN (local response normalization, ONNX): the tensor viewed as [outer, channels, inner] around the channel axis;
// y = x / (bias + alpha / size · Σ x²)^beta, the sum over channels c − ⌊(size − 1) / 2⌋ … c + ⌈(size − 1) / 2⌉ inside
// [0, channels). One thread per element reads its `size` neighbours along the channel axis (size is small, 3 to 11
// in the models that use it); neighbouring threads take neighbouring inner positions, so reads coalesce. Math in float.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct LrnArgs {
  const T* input;
  T* output;
  int64_t outer, channels, inner;
  int32_t size;
  float alpha, beta, bias;
};

template <class T>
__global__ void lrn_kernel(LrnArgs<T> a) {
  const int64_t total = a.outer * a.channels * a.inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t before = (a.size - 1) / 2, after = a.size - 1 - before;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total; i += stride) {
    const int64_t q = i % a.inner;
    const int64_t c = (i / a.inner) % a.channels;
    const int64_t base = i - c * a.inner;  // element (o, 0, q)
    const int64_t lo = c - before < 0 ? 0 : c - before;
    const int64_t hi = c + after >= a.channels ? a.channels - 1 : c + after;
    float sum = 0.f;
    for (int64_t k = lo; k <= hi; ++k) {
      const float v = to_float(a.input[base + k * a.inner]);
      sum += v * v;
    }
    const float x = to_float(a.input[i]);
    a.output[i] = from_float<T>(x / powf(a.bias + a.alpha / a.size * sum, a.beta));
  }
}

template <class T>
cudaError_t launch_lrn(const LrnArgs<T>& a, cudaStream_t stream) {
  if (a.outer < 0 || a.channels < 0 || a.inner < 0 || a.size < 1) return cudaErrorInvalidValue;
  const int64_t total = a.outer * a.channels * a.inner;
  if (total == 0) return cudaSuccess;
  lrn_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
