// Reductions of a tensor viewed as [outer, reduced, inner] into [outer, inner]: sum, mean, max, min, product, sum of
// squares, L1, L2, log-sum-exp (ONNX ReduceSum/Mean/Max/Min/Prod/SumSquare/L1/L2/LogSumExp; the code generator
// merges neighbouring axes, so any contiguous set of reduced axes is this view; other sets are a strided view).
// inner == 1 (reducing the last axes): one block per row with a block reduction. Otherwise a block of 32 × 8 threads
// per 32 inner elements of one outer index: the 8 thread rows split the reduced axis, lanes read neighbouring inner
// elements (coalesced), and the rows combine through shared memory. ReduceStridedArgs reduces any set of axes: one
// thread per output over up to kMaxReduceRank reduced axes.
// Float storage (fp16/bf16/fp32) accumulates in float. Integer and bool storage (int64, int32, uint8) accumulates in
// int64, exactly, for Sum/Max/Min/Prod/SumSquare/L1 (the result is cast back to the storage type, wrapping as the
// typed arithmetic would); Mean/L2/LogSumExp of integers are refused by the code generator.
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

// The accumulator of a reduction over storage T: float for float storage, int64_t for integer and bool storage.
template <class T>
struct ReduceAccumulator {
  using type = float;
};
template <>
struct ReduceAccumulator<int64_t> {
  using type = int64_t;
};
template <>
struct ReduceAccumulator<int32_t> {
  using type = int64_t;
};
template <>
struct ReduceAccumulator<uint8_t> {
  using type = int64_t;
};

// A stored element as its accumulator type, and an accumulator stored back.
__device__ __forceinline__ float reduce_load(float v) { return v; }
__device__ __forceinline__ float reduce_load(__half v) { return __half2float(v); }
__device__ __forceinline__ float reduce_load(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ int64_t reduce_load(int64_t v) { return v; }
__device__ __forceinline__ int64_t reduce_load(int32_t v) { return v; }
__device__ __forceinline__ int64_t reduce_load(uint8_t v) { return v; }
template <class T>
__device__ __forceinline__ T reduce_store(float v) { return from_float<T>(v); }
template <class T>
__device__ __forceinline__ T reduce_store(int64_t v) { return static_cast<T>(v); }

// How partial results combine: max, min, product, or a sum (every other op).
template <class Acc>
__device__ __forceinline__ Acc reduce_identity(ReduceOp op);
template <>
__device__ __forceinline__ float reduce_identity<float>(ReduceOp op) {
  return op == ReduceOp::kMax ? -INFINITY : op == ReduceOp::kMin ? INFINITY : op == ReduceOp::kProd ? 1.f : 0.f;
}
template <>
__device__ __forceinline__ int64_t reduce_identity<int64_t>(ReduceOp op) {
  return op == ReduceOp::kMax ? INT64_MIN : op == ReduceOp::kMin ? INT64_MAX : op == ReduceOp::kProd ? 1 : 0;
}
__device__ __forceinline__ float reduce_combine(ReduceOp op, float a, float b) {
  switch (op) {
    case ReduceOp::kMax: return fmaxf(a, b);
    case ReduceOp::kMin: return fminf(a, b);
    case ReduceOp::kProd: return a * b;
    default: return a + b;
  }
}
__device__ __forceinline__ int64_t reduce_combine(ReduceOp op, int64_t a, int64_t b) {
  switch (op) {
    case ReduceOp::kMax: return a > b ? a : b;
    case ReduceOp::kMin: return a < b ? a : b;
    // through uint64: wraps like the typed arithmetic instead of signed overflow (undefined in C++)
    case ReduceOp::kProd: return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
    default: return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
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
__device__ __forceinline__ int64_t reduce_step(ReduceOp op, int64_t acc, int64_t v) {
  switch (op) {
    case ReduceOp::kSumSquare: return reduce_combine(ReduceOp::kSum, acc, reduce_combine(ReduceOp::kProd, v, v));
    case ReduceOp::kL1: return reduce_combine(ReduceOp::kSum, acc, v < 0 ? reduce_combine(ReduceOp::kProd, v, -1) : v);
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
__device__ __forceinline__ int64_t reduce_finish(ReduceOp, int64_t acc, int64_t) { return acc; }

template <class Acc>
__device__ __forceinline__ Acc warp_reduce(ReduceOp op, Acc v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) v = reduce_combine(op, v, shfl_xor(v, offset));
  return v;
}

template <class T>
__global__ void reduce_rows_kernel(ReduceArgs<T> a) {
  using Acc = typename ReduceAccumulator<T>::type;
  __shared__ Acc scratch[32];
  const T* row = a.input + static_cast<int64_t>(blockIdx.x) * a.reduced;
  Acc acc = reduce_identity<Acc>(a.op);
  for (int64_t i = threadIdx.x; i < a.reduced; i += blockDim.x) acc = reduce_step(a.op, acc, reduce_load(row[i]));
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  acc = warp_reduce(a.op, acc);
  if (lane == 0) scratch[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = warp_reduce(a.op, lane < warps ? scratch[lane] : reduce_identity<Acc>(a.op));
    if (lane == 0) a.output[blockIdx.x] = reduce_store<T>(reduce_finish(a.op, acc, a.reduced));
  }
}

constexpr int kReduceColumnRows = 8;

// blockIdx.x: a tile of 32 inner elements; blockIdx.y (and z): the outer index.
template <class T>
__global__ void __launch_bounds__(32 * kReduceColumnRows) reduce_columns_kernel(ReduceArgs<T> a) {
  using Acc = typename ReduceAccumulator<T>::type;
  __shared__ Acc partial[kReduceColumnRows][33];
  const int64_t o = blockIdx.y + static_cast<int64_t>(blockIdx.z) * gridDim.y;
  if (o >= a.outer) return;  // uniform per block
  const int64_t in = blockIdx.x * 32LL + threadIdx.x;
  Acc acc = reduce_identity<Acc>(a.op);
  if (in < a.inner) {
    const T* p = a.input + o * a.reduced * a.inner + in;
    for (int64_t r = threadIdx.y; r < a.reduced; r += kReduceColumnRows) acc = reduce_step(a.op, acc, reduce_load(p[r * a.inner]));
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && in < a.inner) {
#pragma unroll
    for (int r = 1; r < kReduceColumnRows; ++r) acc = reduce_combine(a.op, acc, partial[r][threadIdx.x]);
    a.output[o * a.inner + in] = reduce_store<T>(reduce_finish(a.op, acc, a.reduced));
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
    using Acc = typename ReduceAccumulator<T>::type;
    Acc acc = reduce_identity<Acc>(a.op);
    for (int64_t r = 0; r < count; ++r) {
      int64_t rr = r, offset = base;
      for (int d = a.reduced_rank - 1; d >= 0; --d) {
        offset += (rr % a.reduced_shape[d]) * a.reduced_strides[d];
        rr /= a.reduced_shape[d];
      }
      acc = reduce_step(a.op, acc, reduce_load(a.input[offset]));
    }
    a.output[i] = reduce_store<T>(reduce_finish(a.op, acc, count));
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
