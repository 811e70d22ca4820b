// Normalizations and arg-reductions along ONE axis of a tensor viewed as [outer, n, inner] (the code generator
// merges the axes before and after it): Softmax, LogSoftmax, L1 and L2 normalization (ONNX Softmax/LogSoftmax over
// any axis, LpNormalization p = 1, 2), and ArgMax/ArgMin (keepdims is only the output's shape; select_last_index).
//  - inner == 1 (the axis is innermost): one block per row, block reductions (rows of any length).
//  - inner > 1: one thread per (outer, inner) column walking the axis with stride `inner`: neighbouring threads read
//    neighbouring elements (coalesced), so no transpose is needed. Softmax keeps a running max and rescaled sum
//    (one read for the statistics, one for the output).
// Arg-reductions: a warp per row for long innermost axes (n >= kArgRowMin), else a thread per output.
// fp32 math; storage fp16/bf16/fp32 (arg-reductions also int32/int64/uint8, compared exactly in int64).
#pragma once

#include "common.cuh"
#include "normalization.cuh"  // row_threads
#include "reduce.cuh"  // reduce_load: a stored element as float (float storage) or int64 (integer storage)

namespace ait {
namespace kernels {

enum class AxisNormOp : int32_t {
  kSoftmax = 0,
  kLogSoftmax = 1,
  kL1 = 2,  // x / Σ|x| (0 where the sum is 0, as onnxruntime)
  kL2 = 3,  // x / sqrt(Σx²) (0 where the norm is 0)
};

template <class T>
struct AxisNormArgs {
  const T* input;  // [outer, n, inner]
  T* output;       // [outer, n, inner]
  int64_t outer, n, inner;
  AxisNormOp op;
};

// What a row's statistics accumulate: exp(x - max) for the softmaxes, |x| or x² for the norms.
__device__ __forceinline__ float axis_norm_term(AxisNormOp op, float x, float max) {
  switch (op) {
    case AxisNormOp::kL1:
      return fabsf(x);
    case AxisNormOp::kL2:
      return x * x;
    default:
      return __expf(x - max);
  }
}

// One output element from its input and the row's max and accumulated sum.
__device__ __forceinline__ float axis_norm_value(AxisNormOp op, float x, float max, float sum) {
  switch (op) {
    case AxisNormOp::kSoftmax:
      return __expf(x - max) / sum;
    case AxisNormOp::kLogSoftmax:
      return x - max - __logf(sum);
    case AxisNormOp::kL1:
      return sum == 0.f ? 0.f : x / sum;
    default:
      return sum == 0.f ? 0.f : x * rsqrtf(sum);
  }
}

template <class T>
__global__ void axis_norm_rows_kernel(AxisNormArgs<T> a) {
  __shared__ float scratch[32];
  const T* x = a.input + static_cast<int64_t>(blockIdx.x) * a.n;
  T* y = a.output + static_cast<int64_t>(blockIdx.x) * a.n;
  const bool softmax = a.op == AxisNormOp::kSoftmax || a.op == AxisNormOp::kLogSoftmax;
  float max = 0.f;
  if (softmax) {
    float local = -INFINITY;
    for (int64_t k = threadIdx.x; k < a.n; k += blockDim.x) local = fmaxf(local, to_float(x[k]));
    max = block_max(local, scratch);
  }
  float local = 0.f;
  for (int64_t k = threadIdx.x; k < a.n; k += blockDim.x) local += axis_norm_term(a.op, to_float(x[k]), max);
  const float sum = block_sum(local, scratch);
  for (int64_t k = threadIdx.x; k < a.n; k += blockDim.x) y[k] = from_float<T>(axis_norm_value(a.op, to_float(x[k]), max, sum));
}

template <class T>
__global__ void axis_norm_columns_kernel(AxisNormArgs<T> a) {
  for (int64_t column = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; column < a.outer * a.inner;
       column += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = column / a.inner, i = column % a.inner;
    const T* x = a.input + o * a.n * a.inner + i;
    T* y = a.output + o * a.n * a.inner + i;
    const bool softmax = a.op == AxisNormOp::kSoftmax || a.op == AxisNormOp::kLogSoftmax;
    float max = softmax ? -INFINITY : 0.f, sum = 0.f;
    for (int64_t k = 0; k < a.n; ++k) {
      const float v = to_float(x[k * a.inner]);
      if (softmax && v > max) {
        // online softmax: rescale what was summed against the old max (exp(-inf) = 0 for the first element)
        sum *= __expf(max - v);
        max = v;
      }
      sum += axis_norm_term(a.op, v, max);
    }
    for (int64_t k = 0; k < a.n; ++k) y[k * a.inner] = from_float<T>(axis_norm_value(a.op, to_float(x[k * a.inner]), max, sum));
  }
}

template <class T>
cudaError_t launch_axis_norm(const AxisNormArgs<T>& a, cudaStream_t stream) {
  if (a.outer <= 0 || a.n <= 0 || a.inner <= 0) return cudaSuccess;
  if (a.inner == 1) {
    if (a.outer > 0x7fffffff) return cudaErrorInvalidValue;
    axis_norm_rows_kernel<T><<<static_cast<unsigned>(a.outer), row_threads(a.n), 0, stream>>>(a);
  } else {
    constexpr int kThreads = 256;
    axis_norm_columns_kernel<T><<<grid_for(a.outer * a.inner, kThreads), kThreads, 0, stream>>>(a);
  }
  return launch_status();
}

template <class T>
struct ArgReduceArgs {
  const T* input;   // [outer, n, inner]
  int64_t* output;  // [outer, inner]: the index along the axis
  int64_t outer, n, inner;
  bool is_max;      // ArgMax (else ArgMin)
  bool select_last; // ties: the last index (else the first)
};

// Whether (v, k) beats (best, at): a strictly better value, or an equal one at the index the tie rule prefers. A total
// order on (value, index) pairs, so lanes can combine their winners in any order (the warp butterfly below).
template <class Acc>
__device__ __forceinline__ bool arg_better(bool is_max, bool select_last, Acc v, int64_t k, Acc best, int64_t at) {
  if (v == best) return select_last ? k > at : k < at;
  return is_max ? v > best : v < best;
}

// One thread per output (outer, inner; grid-stride): coalesced across inner (short rows: one thread's serial walk).
template <class T>
__global__ void arg_reduce_kernel(ArgReduceArgs<T> a) {
  for (int64_t column = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; column < a.outer * a.inner;
       column += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = column / a.inner, i = column % a.inner;
    const T* x = a.input + o * a.n * a.inner + i;
    auto best = reduce_load(x[0]);
    int64_t at = 0;
    for (int64_t k = 1; k < a.n; ++k) {
      const auto v = reduce_load(x[k * a.inner]);
      if (arg_better(a.is_max, a.select_last, v, k, best, at)) {
        best = v;
        at = k;
      }
    }
    a.output[column] = at;
  }
}

// Long rows (inner == 1, n >= kArgRowMin): one warp per row; lane l scans k = l, l + kWarpSize, … (coalesced), then
// the lanes' winners meet in a shfl_xor butterfly. NaNs compare unordered (the result is then unspecified).
constexpr int kArgRowMin = 256;
constexpr int kArgRowsPerBlock = 8;

template <class T>
__global__ void __launch_bounds__(kArgRowsPerBlock * kWarpSize) arg_reduce_rows_kernel(ArgReduceArgs<T> a) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kArgRowsPerBlock + threadIdx.x / kWarpSize;
  if (row >= a.outer) return;  // warp-uniform
  const T* x = a.input + row * a.n;
  auto best = reduce_load(x[lane]);  // n >= kArgRowMin > kWarpSize
  int64_t at = lane;
  for (int64_t k = lane + kWarpSize; k < a.n; k += kWarpSize) {
    const auto v = reduce_load(x[k]);
    if (arg_better(a.is_max, a.select_last, v, k, best, at)) best = v, at = k;
  }
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
    const auto v = shfl_xor(best, offset);
    const int64_t k = shfl_xor(at, offset);
    if (arg_better(a.is_max, a.select_last, v, k, best, at)) best = v, at = k;
  }
  if (lane == 0) a.output[row] = at;
}

template <class T>
cudaError_t launch_arg_reduce(const ArgReduceArgs<T>& a, cudaStream_t stream) {
  if (a.outer <= 0 || a.n <= 0 || a.inner <= 0) return cudaSuccess;
  if (a.inner == 1 && a.n >= kArgRowMin) {
    const int64_t blocks = ceil_div(a.outer, kArgRowsPerBlock);
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    arg_reduce_rows_kernel<T><<<static_cast<unsigned>(blocks), kArgRowsPerBlock * kWarpSize, 0, stream>>>(a);
    return launch_status();
  }
  constexpr int kThreads = 256;
  arg_reduce_kernel<T><<<grid_for(a.outer * a.inner, kThreads), kThreads, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
