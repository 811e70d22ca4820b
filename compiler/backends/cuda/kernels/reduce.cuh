// Reductions of a tensor viewed as [outer, reduced, inner] into [outer, inner]: sum, mean, max, min, product, sum of
// squares, L1, L2, log-sum-exp (ONNX ReduceSum/Mean/Max/Min/Prod/SumSquare/L1/L2/LogSumExp; the code generator
// merges neighbouring axes, so any contiguous set of reduced axes is this view; other sets are a strided view).
// inner == 1 (reducing the last axes): one block per row with a block reduction. Otherwise a block of 32 × 8 threads
// per 32 inner elements of one outer index: the 8 thread rows split the reduced axis, lanes read neighbouring inner
// elements (coalesced), and the rows combine through shared memory. ReduceStridedArgs reduces any set of axes: one
// thread per output over up to kMaxReduceRank reduced axes.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

enum class ReduceOp : int32_t {
  kSum = 0,
  kMean = 1,
  kMax = 2,
  kMin = 3,
  kSumSquare = 4,
  kProd = 5,
  kL1 = 6,
  kL2 = 7,
  kLogSumExp = 8,
};

template <class T>
struct ReduceArgs {
  const T* input;
  T* output;
  int64_t outer, reduced, inner;
  ReduceOp op;
};

// How partial results combine: max, min, product, or a sum (every other op).
__device__ __forceinline__ float reduce_identity(ReduceOp op) {
  return op == ReduceOp::kMax ? -INFINITY : op == ReduceOp::kMin ? INFINITY : op == ReduceOp::kProd ? 1.f : 0.f;
}
__device__ __forceinline__ float reduce_combine(ReduceOp op, float a, float b) {
  switch (op) {
    case ReduceOp::kMax: return fmaxf(a, b);
    case ReduceOp::kMin: return fminf(a, b);
    case ReduceOp::kProd: return a * b;
    default: return a + b;
  }
}
// One element into an accumulator.
__device__ __forceinline__ float reduce_step(ReduceOp op, float acc, float v) {
  switch (op) {
    case ReduceOp::kSumSquare:
    case ReduceOp::kL2: return acc + v * v;
    case ReduceOp::kL1: return acc + fabsf(v);
    case ReduceOp::kLogSumExp: return acc + __expf(v);
    default: return reduce_combine(op, acc, v);
  }
}
__device__ __forceinline__ float reduce_finish(ReduceOp op, float acc, int64_t count) {
  switch (op) {
    case ReduceOp::kMean: return acc / static_cast<float>(count);
    case ReduceOp::kL2: return sqrtf(acc);
    case ReduceOp::kLogSumExp: return __logf(acc);
    default: return acc;
  }
}

__device__ __forceinline__ float warp_reduce(ReduceOp op, float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) v = reduce_combine(op, v, shfl_xor(v, offset));
  return v;
}

template <class T>
__global__ void reduce_rows_kernel(ReduceArgs<T> a) {
  __shared__ float scratch[32];
  const T* row = a.input + static_cast<int64_t>(blockIdx.x) * a.reduced;
  float acc = reduce_identity(a.op);
  for (int64_t i = threadIdx.x; i < a.reduced; i += blockDim.x) acc = reduce_step(a.op, acc, to_float(row[i]));
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  acc = warp_reduce(a.op, acc);
  if (lane == 0) scratch[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = warp_reduce(a.op, lane < warps ? scratch[lane] : reduce_identity(a.op));
    if (lane == 0) a.output[blockIdx.x] = from_float<T>(reduce_finish(a.op, acc, a.reduced));
  }
}

constexpr int kReduceColumnRows = 8;

// blockIdx.x: a tile of 32 inner elements; blockIdx.y (and z): the outer index.
template <class T>
__global__ void __launch_bounds__(32 * kReduceColumnRows) reduce_columns_kernel(ReduceArgs<T> a) {
  __shared__ float partial[kReduceColumnRows][33];
  const int64_t o = blockIdx.y + static_cast<int64_t>(blockIdx.z) * gridDim.y;
  if (o >= a.outer) return;  // uniform per block
  const int64_t in = blockIdx.x * 32LL + threadIdx.x;
  float acc = reduce_identity(a.op);
  if (in < a.inner) {
    const T* p = a.input + o * a.reduced * a.inner + in;
    for (int64_t r = threadIdx.y; r < a.reduced; r += kReduceColumnRows) acc = reduce_step(a.op, acc, to_float(p[r * a.inner]));
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && in < a.inner) {
#pragma unroll
    for (int r = 1; r < kReduceColumnRows; ++r) acc = reduce_combine(a.op, acc, partial[r][threadIdx.x]);
    a.output[o * a.inner + in] = from_float<T>(reduce_finish(a.op, acc, a.reduced));
  }
}

template <class T>
cudaError_t launch_reduce(const ReduceArgs<T>& a, cudaStream_t stream) {
  if (a.outer <= 0 || a.inner <= 0) return cudaSuccess;
  if (a.inner == 1 && a.outer <= 0x7fffffff) {
    int threads = kWarpSize;  // whole warps: the reduction shuffles across every lane
    while (threads < 512 && threads < a.reduced) threads *= 2;
    reduce_rows_kernel<T><<<static_cast<unsigned>(a.outer), threads, 0, stream>>>(a);
  } else {
    const int64_t tiles = ceil_div(a.inner, 32);
    const int64_t y = a.outer < 65535 ? a.outer : 65535;
    const int64_t z = ceil_div(a.outer, y);
    if (tiles > 0x7fffffff || z > 65535) return cudaErrorInvalidValue;
    reduce_columns_kernel<T><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(y), static_cast<unsigned>(z)),
                               dim3(32, kReduceColumnRows), 0, stream>>>(a);
  }
  return launch_status();
}

constexpr int kMaxReduceRank = 6;

// Any set of reduced axes: output element i at kept coordinates (decomposed over kept_shape) reads
// input[sum(kept_c * kept_strides) + sum(reduced_c * reduced_strides)] for every reduced coordinate.
template <class T>
struct ReduceStridedArgs {
  const T* input;
  T* output;
  int32_t kept_rank, reduced_rank;
  int64_t kept_shape[kMaxReduceRank], kept_strides[kMaxReduceRank];
  int64_t reduced_shape[kMaxReduceRank], reduced_strides[kMaxReduceRank];
  ReduceOp op;
};

template <class T>
__global__ void reduce_strided_kernel(ReduceStridedArgs<T> a) {
  int64_t total = 1, count = 1;
  for (int d = 0; d < a.kept_rank; ++d) total *= a.kept_shape[d];
  for (int d = 0; d < a.reduced_rank; ++d) count *= a.reduced_shape[d];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, base = 0;
    for (int d = a.kept_rank - 1; d >= 0; --d) {
      base += (rest % a.kept_shape[d]) * a.kept_strides[d];
      rest /= a.kept_shape[d];
    }
    float acc = reduce_identity(a.op);
    for (int64_t r = 0; r < count; ++r) {
      int64_t rr = r, offset = base;
      for (int d = a.reduced_rank - 1; d >= 0; --d) {
        offset += (rr % a.reduced_shape[d]) * a.reduced_strides[d];
        rr /= a.reduced_shape[d];
      }
      acc = reduce_step(a.op, acc, to_float(a.input[offset]));
    }
    a.output[i] = from_float<T>(reduce_finish(a.op, acc, count));
  }
}

template <class T>
cudaError_t launch_reduce_strided(const ReduceStridedArgs<T>& a, cudaStream_t stream) {
  if (a.kept_rank < 0 || a.kept_rank > kMaxReduceRank || a.reduced_rank < 0 || a.reduced_rank > kMaxReduceRank)
    return cudaErrorInvalidValue;
  int64_t total = 1;
  for (int d = 0; d < a.kept_rank; ++d) total *= a.kept_shape[d];
  if (total <= 0) return cudaSuccess;
  reduce_strided_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
