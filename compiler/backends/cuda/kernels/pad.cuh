// Pad (ONNX modes constant, reflect, edge, wrap) of a tensor of any rank up to kMaxPadRank, any element type.
//
// out[c] = in[source(c)] where, per axis, i = c_d - begin_d is taken back into [0, size_d) by the mode (constant:
// the fill value when outside). Negative pads crop (begin < 0). The code generator merges neighbouring unpadded axes
// first, so NHWC padding of H and W is [N, H, W, C] with C unpadded: when that innermost axis is a multiple of a
// 16-byte vector and the pointers are aligned, each thread moves 16 bytes (the padded axes map whole vectors).
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

constexpr int kMaxPadRank = 6;

enum class PadMode : int32_t { kConstant = 0, kReflect = 1, kEdge = 2, kWrap = 3 };

template <class T>
struct PadArgs {
  const T* input;
  T* output;
  int32_t rank;
  int64_t input_shape[kMaxPadRank];
  int64_t output_shape[kMaxPadRank];
  int64_t begin[kMaxPadRank];  // pads at the start of each axis (negative: cropped)
  PadMode mode;
  double value;  // the constant mode's fill value
};

template <class T>
__host__ __device__ __forceinline__ T pad_fill(double v) {
  return static_cast<T>(v);
}
template <>
__host__ __device__ __forceinline__ __half pad_fill<__half>(double v) {
  return __float2half_rn(static_cast<float>(v));
}
template <>
__host__ __device__ __forceinline__ __nv_bfloat16 pad_fill<__nv_bfloat16>(double v) {
  return __float2bfloat16_rn(static_cast<float>(v));
}

// An index i outside [0, size) taken back inside by the mode; -1 for the constant mode's fill.
__device__ __forceinline__ int64_t pad_source(int64_t i, int64_t size, PadMode mode) {
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case PadMode::kEdge: return i < 0 ? 0 : size - 1;
    case PadMode::kReflect: {
      const int64_t period = size > 1 ? 2 * (size - 1) : 1;
      i %= period;
      if (i < 0) i += period;
      return i >= size ? period - i : i;
    }
    case PadMode::kWrap: {
      i %= size;
      return i < 0 ? i + size : i;
    }
    default: return -1;
  }
}

// E is T, or a 16-byte vector of T when the innermost axis is unpadded (shapes then count vectors on that axis).
template <class E>
__global__ void pad_kernel(const E* __restrict__ input, E* __restrict__ output, PadArgs<char> a, E fill) {
  int64_t total = 1;
  for (int d = 0; d < a.rank; ++d) total *= a.output_shape[d];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, source = 0, stride = 1;
    bool inside = true;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t c = rest % a.output_shape[d];
      rest /= a.output_shape[d];
      const int64_t s = pad_source(c - a.begin[d], a.input_shape[d], a.mode);
      if (s < 0) inside = false;
      source += s * stride;
      stride *= a.input_shape[d];
    }
    output[i] = inside ? input[source] : fill;
  }
}

template <class T>
cudaError_t launch_pad(const PadArgs<T>& a, cudaStream_t stream) {
  if (a.rank < 1 || a.rank > kMaxPadRank) return cudaErrorInvalidValue;
  int64_t total = 1, in_total = 1;
  for (int d = 0; d < a.rank; ++d) {
    total *= a.output_shape[d];
    in_total *= a.input_shape[d];
  }
  if (total <= 0) return cudaSuccess;
  if (in_total <= 0 && a.mode != PadMode::kConstant) return cudaErrorInvalidValue;  // nothing to reflect/repeat
  PadArgs<char> shape{nullptr, nullptr, a.rank, {}, {}, {}, a.mode, a.value};
  for (int d = 0; d < a.rank; ++d) {
    shape.input_shape[d] = a.input_shape[d];
    shape.output_shape[d] = a.output_shape[d];
    shape.begin[d] = a.begin[d];
  }
  constexpr int V = Vec16<T>::kElements;
  const int last = a.rank - 1;
  const bool vector = a.begin[last] == 0 && a.input_shape[last] == a.output_shape[last] && a.output_shape[last] % V == 0 &&
                      is_aligned16(a.input) && is_aligned16(a.output);
  if (vector) {
    shape.input_shape[last] /= V;
    shape.output_shape[last] /= V;
    Vec16<T> fill;
    for (int e = 0; e < V; ++e) fill.elements[e] = pad_fill<T>(a.value);
    pad_kernel<Vec16<T>><<<grid_for(total / V, 256), 256, 0, stream>>>(
        reinterpret_cast<const Vec16<T>*>(a.input), reinterpret_cast<Vec16<T>*>(a.output), shape, fill);
  } else {
    pad_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a.input, a.output, shape, pad_fill<T>(a.value));
  }
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
