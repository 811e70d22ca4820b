// NonZero: the coordinates of x's non-zero elements, [rank, count] int64, in row-major order of the elements (ONNX
// and numpy order). The count is data-dependent: the launch function runs the count phase, reads the count back to
// the host (it becomes a run-time dim of the model, ait_model.h), then the write phase fills an output of exactly that
// many columns. Three kernels over tiles of kNonZeroTile elements:
//   1. nonzero_count_kernel: each CTA counts its tile's non-zeros;
//   2. nonzero_scan_kernel: one CTA turns the per-tile counts into exclusive offsets and writes the total;
//   3. nonzero_write_kernel: each CTA scans its tile's flags in element order and writes the coordinates.
// No atomics, so the order is exact and every run gives the same output. NaN counts as non-zero (it is != 0).
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

constexpr int kNonZeroThreads = 256;
constexpr int kNonZeroItems = 8;  // consecutive elements per thread: a thread's flags are in element order
constexpr int kNonZeroTile = kNonZeroThreads * kNonZeroItems;
constexpr int kMaxNonZeroRank = 8;

template <class T>
__device__ __forceinline__ bool is_nonzero(T v) {
  return v != T(0);
}
template <>
__device__ __forceinline__ bool is_nonzero<__half>(__half v) {
  return __half2float(v) != 0.f;
}
template <>
__device__ __forceinline__ bool is_nonzero<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v) != 0.f;
}

template <class T>
struct NonZeroArgs {
  const T* input;
  int64_t count;  // elements of the input
  int rank;
  int64_t shape[kMaxNonZeroRank];
  int64_t* tile_offsets;  // workspace: one per tile, then the total (nonzero_workspace_elements)
  int64_t* output;        // [rank, nonzeros]
};

// int64 elements of workspace for `count` input elements (per-tile counts/offsets and the total).
__host__ __device__ inline int64_t nonzero_workspace_elements(int64_t count) { return ceil_div(count, kNonZeroTile) + 1; }

// Block-wide exclusive scan of one int per thread (in thread order); `total` receives the block's sum.
__device__ __forceinline__ int block_exclusive_scan(int value, int* scratch, int* total) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  constexpr int kWarps = kNonZeroThreads / kWarpSize;
  // inclusive scan inside the warp
  int inclusive = value;
  for (int offset = 1; offset < kWarpSize; offset <<= 1) {
#if defined(__HIP_PLATFORM_AMD__)
    int other = __shfl_up(inclusive, offset);
#else
    int other = __shfl_up_sync(0xffffffffu, inclusive, offset);
#endif
    if (lane >= offset) inclusive += other;
  }
  if (lane == kWarpSize - 1) scratch[warp] = inclusive;
  __syncthreads();
  if (threadIdx.x == 0) {
    int running = 0;
    for (int w = 0; w < kWarps; ++w) {
      int s = scratch[w];
      scratch[w] = running;
      running += s;
    }
    scratch[kWarps] = running;
  }
  __syncthreads();
  const int result = scratch[warp] + inclusive - value;
  *total = scratch[kWarps];
  __syncthreads();  // scratch may be reused by the caller's next scan
  return result;
}

template <class T>
__device__ __forceinline__ int tile_flags(const NonZeroArgs<T>& a, int64_t first, bool* flags) {
  int n = 0;
#pragma unroll
  for (int k = 0; k < kNonZeroItems; ++k) {
    const int64_t i = first + k;
    flags[k] = i < a.count && is_nonzero(a.input[i]);
    n += flags[k];
  }
  return n;
}

template <class T>
__global__ void __launch_bounds__(kNonZeroThreads) nonzero_count_kernel(NonZeroArgs<T> a) {
  __shared__ int scratch[kNonZeroThreads / kWarpSize + 1];
  bool flags[kNonZeroItems];
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kNonZeroTile + threadIdx.x * kNonZeroItems;
  int total;
  block_exclusive_scan(tile_flags(a, first, flags), scratch, &total);
  if (threadIdx.x == 0) a.tile_offsets[blockIdx.x] = total;
}

// One CTA: per-tile counts -> exclusive offsets (in place); the total goes after the last tile.
template <class T>
__global__ void __launch_bounds__(kNonZeroThreads) nonzero_scan_kernel(NonZeroArgs<T> a, int64_t tiles) {
  __shared__ int64_t sums[kNonZeroThreads];
  int64_t carry = 0;
  for (int64_t base = 0; base < tiles; base += kNonZeroThreads) {
    const int64_t i = base + threadIdx.x;
    const int64_t v = i < tiles ? a.tile_offsets[i] : 0;
    sums[threadIdx.x] = v;
    __syncthreads();
    // Hillis-Steele inclusive scan of 256 values (tiles are few: 1 per 2048 elements)
    for (int offset = 1; offset < kNonZeroThreads; offset <<= 1) {
      const int64_t other = threadIdx.x >= offset ? sums[threadIdx.x - offset] : 0;
      __syncthreads();
      sums[threadIdx.x] += other;
      __syncthreads();
    }
    if (i < tiles) a.tile_offsets[i] = carry + sums[threadIdx.x] - v;
    carry += sums[kNonZeroThreads - 1];
    __syncthreads();
  }
  if (threadIdx.x == 0) a.tile_offsets[tiles] = carry;
}

template <class T>
__global__ void __launch_bounds__(kNonZeroThreads) nonzero_write_kernel(NonZeroArgs<T> a, int64_t nonzeros) {
  __shared__ int scratch[kNonZeroThreads / kWarpSize + 1];
  bool flags[kNonZeroItems];
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kNonZeroTile + threadIdx.x * kNonZeroItems;
  int total;
  int64_t position = a.tile_offsets[blockIdx.x] + block_exclusive_scan(tile_flags(a, first, flags), scratch, &total);
#pragma unroll
  for (int k = 0; k < kNonZeroItems; ++k) {
    if (!flags[k]) continue;
    // row-major coordinates of element first + k, last axis first
    int64_t rest = first + k;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t extent = a.shape[d];
      a.output[d * nonzeros + position] = rest % extent;
      rest /= extent;
    }
    ++position;
  }
}

// Phase 1 (count and scan): afterwards a.tile_offsets[ceil(count / kNonZeroTile)] holds the number of non-zeros.
template <class T>
cudaError_t launch_nonzero_count(const NonZeroArgs<T>& a, cudaStream_t stream) {
  const int64_t tiles = ceil_div(a.count, kNonZeroTile);
  if (tiles > 0) nonzero_count_kernel<T><<<static_cast<unsigned>(tiles), kNonZeroThreads, 0, stream>>>(a);
  nonzero_scan_kernel<T><<<1, kNonZeroThreads, 0, stream>>>(a, tiles);
  return launch_status();
}

// Where phase 1 leaves the total.
template <class T>
const int64_t* nonzero_total(const NonZeroArgs<T>& a) {
  return a.tile_offsets + ceil_div(a.count, kNonZeroTile);
}

// Phase 2: the coordinates, once the host knows `nonzeros` (the output has exactly that many columns).
template <class T>
cudaError_t launch_nonzero_write(const NonZeroArgs<T>& a, int64_t nonzeros, cudaStream_t stream) {
  const int64_t tiles = ceil_div(a.count, kNonZeroTile);
  if (tiles == 0 || nonzeros == 0) return cudaSuccess;
  nonzero_write_kernel<T><<<static_cast<unsigned>(tiles), kNonZeroThreads, 0, stream>>>(a, nonzeros);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
