// Reductions of a tensor viewed as [outer, reduced, inner] into [outer, inner]: sum, mean, max, min, sum of squares.
// inner == 1 (reducing the last axes): one block per row with a block reduction. Otherwise one thread per output,
// neighbouring threads on neighbouring inner elements (coalesced).
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

enum class ReduceOp : int32_t { kSum = 0, kMean = 1, kMax = 2, kMin = 3, kSumSquare = 4 };

template <class T>
struct ReduceArgs {
  const T* input;
  T* output;
  int64_t outer, reduced, inner;
  ReduceOp op;
};

__device__ __forceinline__ float reduce_identity(ReduceOp op) {
  return op == ReduceOp::kMax ? -INFINITY : op == ReduceOp::kMin ? INFINITY : 0.f;
}
__device__ __forceinline__ float reduce_step(ReduceOp op, float acc, float v) {
  switch (op) {
    case ReduceOp::kMax: return fmaxf(acc, v);
    case ReduceOp::kMin: return fminf(acc, v);
    case ReduceOp::kSumSquare: return acc + v * v;
    default: return acc + v;
  }
}
__device__ __forceinline__ float reduce_finish(ReduceOp op, float acc, int64_t count) {
  return op == ReduceOp::kMean ? acc / static_cast<float>(count) : acc;
}

template <class T>
__global__ void reduce_rows_kernel(ReduceArgs<T> a) {
  __shared__ float scratch[32];
  const T* row = a.input + static_cast<int64_t>(blockIdx.x) * a.reduced;
  float acc = reduce_identity(a.op);
  for (int64_t i = threadIdx.x; i < a.reduced; i += blockDim.x) acc = reduce_step(a.op, acc, to_float(row[i]));
  if (a.op == ReduceOp::kMax) acc = block_max(acc, scratch);
  else if (a.op == ReduceOp::kMin) acc = -block_max(-acc, scratch);
  else acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) a.output[blockIdx.x] = from_float<T>(reduce_finish(a.op, acc, a.reduced));
}

template <class T>
__global__ void reduce_columns_kernel(ReduceArgs<T> a) {
  const int64_t total = a.outer * a.inner;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = i / a.inner, in = i % a.inner;
    const T* p = a.input + o * a.reduced * a.inner + in;
    float acc = reduce_identity(a.op);
    for (int64_t r = 0; r < a.reduced; ++r) acc = reduce_step(a.op, acc, to_float(p[r * a.inner]));
    a.output[i] = from_float<T>(reduce_finish(a.op, acc, a.reduced));
  }
}

template <class T>
cudaError_t launch_reduce(const ReduceArgs<T>& a, cudaStream_t stream) {
  if (a.outer <= 0 || a.inner <= 0 || a.reduced <= 0) return cudaSuccess;
  if (a.inner == 1 && a.outer <= 0x7fffffff) {
    int threads = 32;
    while (threads < 512 && threads < a.reduced) threads *= 2;
    reduce_rows_kernel<T><<<static_cast<unsigned>(a.outer), threads, 0, stream>>>(a);
  } else {
    reduce_columns_kernel<T><<<grid_for(a.outer * a.inner, 256), 256, 0, stream>>>(a);
  }
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
