// Shared helpers of AIT's CUDA kernels: fp16/bf16/fp32 storage with fp32 math, 16-byte vectors, launch checks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace ait {
namespace kernels {

// Host too: host-side replays of device helpers (test/backends/cuda/attention-masks.test.ts) call them.
__host__ __device__ __forceinline__ float to_float(float v) { return v; }
__host__ __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__host__ __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Elements of T in one 16-byte access.
template <class T>
struct Vec16 {
  static constexpr int kElements = 16 / sizeof(T);
  union {
    uint4 raw;
    T elements[kElements];
  };
#ifdef AIT_HIP
  // HIP's __half assigns through its own operator= (CUDA's is trivial), which deletes the union's copy: copy bytes.
  __host__ __device__ Vec16() {}
  __host__ __device__ Vec16(const Vec16& o) : raw(o.raw) {}
  __host__ __device__ Vec16& operator=(const Vec16& o) {
    raw = o.raw;
    return *this;
  }
#endif
};

template <class T>
__device__ __forceinline__ Vec16<T> load_vec16(const T* p) {
  Vec16<T> v;
  v.raw = *reinterpret_cast<const uint4*>(p);
  return v;
}

template <class T>
__device__ __forceinline__ void store_vec16(T* p, const Vec16<T>& v) {
  *reinterpret_cast<uint4*>(p) = v.raw;
}

__host__ __device__ __forceinline__ bool is_aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grid size for a grid-stride loop over `work` items: enough blocks to fill the GPU, capped.
inline unsigned grid_for(int64_t work, int threads) {
  int64_t blocks = ceil_div(work, threads);
  if (blocks > 65535LL * 32) blocks = 65535LL * 32;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

// Lanes of a warp: 32 on NVIDIA GPUs, 64 (a wavefront) on CDNA under HIP (hip/ait_hip.h). Every warp-level
// reduction and warp-per-row launch is written in terms of it.
#ifdef AIT_HIP
constexpr int kWarpSize = 64;
__device__ __forceinline__ float shfl_xor(float v, int lane_mask) { return __shfl_xor(v, lane_mask); }
__device__ __forceinline__ int64_t shfl_xor(int64_t v, int lane_mask) {
  return static_cast<int64_t>(__shfl_xor(static_cast<long long>(v), lane_mask));
}
#else
constexpr int kWarpSize = 32;
__device__ __forceinline__ float shfl_xor(float v, int lane_mask) { return __shfl_xor_sync(0xffffffffu, v, lane_mask); }
__device__ __forceinline__ int64_t shfl_xor(int64_t v, int lane_mask) {
  return static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v), lane_mask));
}
#endif

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) v += shfl_xor(v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) v = fmaxf(v, shfl_xor(v, offset));
  return v;
}

// Block-wide reductions; `scratch` holds 32 floats of shared memory (blocks of at most 32 warps). Every thread
// receives the result.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// Launch status of the last kernel launch on this thread.
inline cudaError_t launch_status() { return cudaGetLastError(); }

}  // namespace kernels
}  // namespace ait
