// Multi-head attention, softmax(Q·Kᵀ·scale)·V, reading Q, K and V straight from the packed output of the QKV
// projection GEMM, laid out [batch, sequence, 3, heads, head_dim], and writing [batch, sequence, heads * head_dim]
// (the layout the output projection GEMM reads), so no transpose kernels are needed.
//
// Flash-attention style on CUDA cores (v1): one thread per query row keeps q and the output accumulator in
// registers; blocks of 64 queries stream 64-key tiles of K and V through shared memory; the softmax is computed
// online in fp32 (base-2 exponentials with the scale folded into q), so any sequence length works with constant
// memory. Head dims instantiated: 32, 64, 128 (64 is what ViT-B/16 and ViT-L/16 use; each
// added head dim costs compile time in every build).
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct AttentionArgs {
  const T* qkv;    // [batch, sequence, 3, heads, head_dim]
  T* output;       // [batch, sequence, heads * head_dim]
  int64_t batch;
  int64_t sequence;
  int32_t heads;
  int32_t head_dim;
  float scale;     // usually 1/sqrt(head_dim)
};

namespace attention_detail {
constexpr int kQueriesPerBlock = 64;
constexpr int kKeysPerTile = 64;
constexpr int kKeysPerChunk = 16;
}  // namespace attention_detail

template <class T, int kHeadDim>
__global__ void __launch_bounds__(attention_detail::kQueriesPerBlock)
    attention_kernel(AttentionArgs<T> a, bool vector_loads) {
  using namespace attention_detail;
  __shared__ T k_tile[kKeysPerTile][kHeadDim];
  __shared__ T v_tile[kKeysPerTile][kHeadDim];

  const int64_t b = blockIdx.z;
  const int h = blockIdx.y;
  const int64_t s = static_cast<int64_t>(blockIdx.x) * kQueriesPerBlock + threadIdx.x;
  const bool active = s < a.sequence;
  const int64_t hd = static_cast<int64_t>(a.heads) * kHeadDim;
  const int64_t token_stride = 3 * hd;  // elements between consecutive tokens in qkv
  const T* base = a.qkv + b * a.sequence * token_stride + static_cast<int64_t>(h) * kHeadDim;

  constexpr float kLog2e = 1.4426950408889634f;
  float q[kHeadDim], acc[kHeadDim];
  const float q_scale = a.scale * kLog2e;
#pragma unroll
  for (int d = 0; d < kHeadDim; ++d) {
    q[d] = active ? to_float(base[s * token_stride + d]) * q_scale : 0.f;
    acc[d] = 0.f;
  }
  float running_max = -INFINITY, running_sum = 0.f;

  for (int64_t tile_start = 0; tile_start < a.sequence; tile_start += kKeysPerTile) {
    const int keys = static_cast<int>(min(static_cast<int64_t>(kKeysPerTile), a.sequence - tile_start));
    __syncthreads();  // the previous tile is no longer read
    if (vector_loads) {
      constexpr int V = Vec16<T>::kElements;
      constexpr int kVectorsPerRow = kHeadDim / V;
      for (int i = threadIdx.x; i < kKeysPerTile * kVectorsPerRow; i += blockDim.x) {
        const int row = i / kVectorsPerRow, col = (i % kVectorsPerRow) * V;
        Vec16<T> kv, vv;
        if (row < keys) {
          const T* token = base + (tile_start + row) * token_stride + col;
          kv = load_vec16(token + hd);
          vv = load_vec16(token + 2 * hd);
        } else {
          kv.raw = make_uint4(0, 0, 0, 0);
          vv.raw = kv.raw;
        }
        store_vec16(&k_tile[row][col], kv);
        store_vec16(&v_tile[row][col], vv);
      }
    } else {
      for (int i = threadIdx.x; i < kKeysPerTile * kHeadDim; i += blockDim.x) {
        const int row = i / kHeadDim, col = i % kHeadDim;
        const T* token = base + (tile_start + row) * token_stride + col;
        k_tile[row][col] = row < keys ? token[hd] : from_float<T>(0.f);
        v_tile[row][col] = row < keys ? token[2 * hd] : from_float<T>(0.f);
      }
    }
    __syncthreads();

    for (int chunk = 0; chunk < keys; chunk += kKeysPerChunk) {
      float score[kKeysPerChunk];
      float chunk_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < kKeysPerChunk; ++j) {
        float dot = 0.f;
#pragma unroll
        for (int d = 0; d < kHeadDim; ++d) dot += q[d] * to_float(k_tile[chunk + j][d]);
        score[j] = chunk + j < keys ? dot : -INFINITY;
        chunk_max = fmaxf(chunk_max, score[j]);
      }
      const float new_max = fmaxf(running_max, chunk_max);  // finite: the chunk has at least one key
      const float correction = exp2f(running_max - new_max);
      running_sum *= correction;
#pragma unroll
      for (int d = 0; d < kHeadDim; ++d) acc[d] *= correction;
#pragma unroll
      for (int j = 0; j < kKeysPerChunk; ++j) {
        const float p = exp2f(score[j] - new_max);
        running_sum += p;
#pragma unroll
        for (int d = 0; d < kHeadDim; ++d) acc[d] += p * to_float(v_tile[chunk + j][d]);
      }
      running_max = new_max;
    }
  }

  if (!active) return;
  const float inv_sum = 1.f / running_sum;
  T* out = a.output + (b * a.sequence + s) * hd + static_cast<int64_t>(h) * kHeadDim;
#pragma unroll
  for (int d = 0; d < kHeadDim; ++d) out[d] = from_float<T>(acc[d] * inv_sum);
}

template <class T, int kHeadDim>
cudaError_t launch_attention_for(const AttentionArgs<T>& a, cudaStream_t stream) {
  using namespace attention_detail;
  const dim3 grid(static_cast<unsigned>(ceil_div(a.sequence, kQueriesPerBlock)), static_cast<unsigned>(a.heads),
                  static_cast<unsigned>(a.batch));
  const bool vector_loads = kHeadDim % Vec16<T>::kElements == 0 && is_aligned16(a.qkv);
  attention_kernel<T, kHeadDim><<<grid, kQueriesPerBlock, 0, stream>>>(a, vector_loads);
  return launch_status();
}

// Returns cudaErrorInvalidValue for a head dim that is not instantiated (the compiler checks this first).
template <class T>
cudaError_t launch_attention(const AttentionArgs<T>& a, cudaStream_t stream) {
  if (a.batch <= 0 || a.sequence <= 0 || a.heads <= 0) return cudaSuccess;
  if (a.batch > 65535 || a.heads > 65535) return cudaErrorInvalidValue;
  switch (a.head_dim) {
    case 32: return launch_attention_for<T, 32>(a, stream);
    case 64: return launch_attention_for<T, 64>(a, stream);
    case 128: return launch_attention_for<T, 128>(a, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace kernels
}  // namespace ait
