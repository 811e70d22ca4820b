// Row-wise normalizations over the last axis: layer normalization and softmax. One block per row (layer norm: one
// warp per row when the row fits in a warp's registers, see layernorm_warp_kernel), fp32 math,
// 16-byte accesses when the row length and pointers allow. Rows are re-read from global memory (L1/L2 resident for
// the row lengths of the models: up to a few thousand elements) rather than staged in shared memory.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct LayerNormArgs {
  const T* input;   // [rows, columns]
  const T* gamma;   // [columns] or nullptr (1)
  const T* beta;    // [columns] or nullptr (0)
  T* output;        // [rows, columns]
  int64_t rows;
  int64_t columns;
  float epsilon;
};

template <class T, bool kVector>
__global__ void layernorm_kernel(LayerNormArgs<T> a) {
  __shared__ float scratch[32];
  constexpr int V = kVector ? Vec16<T>::kElements : 1;
  const int64_t row = blockIdx.x;
  const T* x = a.input + row * a.columns;
  T* y = a.output + row * a.columns;
  const int64_t groups = a.columns / V;

  float sum = 0.f;
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    if (kVector) {
      Vec16<T> v = load_vec16(x + g * V);
#pragma unroll
      for (int e = 0; e < V; ++e) sum += to_float(v.elements[e]);
    } else {
      sum += to_float(x[g]);
    }
  }
  const float mean = block_sum(sum, scratch) / static_cast<float>(a.columns);

  float squares = 0.f;
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    if (kVector) {
      Vec16<T> v = load_vec16(x + g * V);
#pragma unroll
      for (int e = 0; e < V; ++e) {
        float d = to_float(v.elements[e]) - mean;
        squares += d * d;
      }
    } else {
      float d = to_float(x[g]) - mean;
      squares += d * d;
    }
  }
  const float inv_std = rsqrtf(block_sum(squares, scratch) / static_cast<float>(a.columns) + a.epsilon);

  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    if (kVector) {
      Vec16<T> v = load_vec16(x + g * V), out;
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const int64_t c = g * V + e;
        float r = (to_float(v.elements[e]) - mean) * inv_std;
        if (a.gamma) r *= to_float(a.gamma[c]);
        if (a.beta) r += to_float(a.beta[c]);
        out.elements[e] = from_float<T>(r);
      }
      store_vec16(y + g * V, out);
    } else {
      float r = (to_float(x[g]) - mean) * inv_std;
      if (a.gamma) r *= to_float(a.gamma[g]);
      if (a.beta) r += to_float(a.beta[g]);
      y[g] = from_float<T>(r);
    }
  }
}

// Rows of up to kMaxVectorsPerLane·kWarpSize 16-byte vectors (2048 fp16 columns, 4096 on a 64-lane wavefront): one warp per row, the row held in
// registers between the passes, warp shuffles only (no shared memory, no __syncthreads), vector loads of gamma and
// beta. Transformer hidden sizes (384..2048) take this path; it moves each element once in and once out.
constexpr int kLayerNormMaxVectorsPerLane = 8;
constexpr int kLayerNormRowsPerBlock = 4;

template <class T>
__global__ void __launch_bounds__(kLayerNormRowsPerBlock * kWarpSize) layernorm_warp_kernel(LayerNormArgs<T> a) {
  constexpr int V = Vec16<T>::kElements;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kLayerNormRowsPerBlock + threadIdx.x / kWarpSize;
  if (row >= a.rows) return;  // warp-uniform
  const T* x = a.input + row * a.columns;
  T* y = a.output + row * a.columns;
  const int groups = static_cast<int>(a.columns / V);
  Vec16<T> v[kLayerNormMaxVectorsPerLane];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kLayerNormMaxVectorsPerLane; ++i) {
    const int g = lane + kWarpSize * i;
    if (g < groups) {
      v[i] = load_vec16(x + static_cast<int64_t>(g) * V);
#pragma unroll
      for (int e = 0; e < V; ++e) sum += to_float(v[i].elements[e]);
    }
  }
  const float mean = warp_sum(sum) / static_cast<float>(a.columns);
  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < kLayerNormMaxVectorsPerLane; ++i) {
    if (lane + kWarpSize * i < groups) {
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float d = to_float(v[i].elements[e]) - mean;
        squares += d * d;
      }
    }
  }
  const float inv_std = rsqrtf(warp_sum(squares) / static_cast<float>(a.columns) + a.epsilon);
#pragma unroll
  for (int i = 0; i < kLayerNormMaxVectorsPerLane; ++i) {
    const int g = lane + kWarpSize * i;
    if (g < groups) {
      Vec16<T> gamma, beta, out;
      if (a.gamma) gamma = load_vec16(a.gamma + static_cast<int64_t>(g) * V);
      if (a.beta) beta = load_vec16(a.beta + static_cast<int64_t>(g) * V);
#pragma unroll
      for (int e = 0; e < V; ++e) {
        float r = (to_float(v[i].elements[e]) - mean) * inv_std;
        if (a.gamma) r *= to_float(gamma.elements[e]);
        if (a.beta) r += to_float(beta.elements[e]);
        out.elements[e] = from_float<T>(r);
      }
      store_vec16(y + static_cast<int64_t>(g) * V, out);
    }
  }
}

inline int row_threads(int64_t work_per_row) {
  int threads = kWarpSize;  // whole warps: block_sum/block_max shuffle across every lane
  while (threads < 512 && threads < work_per_row) threads *= 2;
  return threads;
}

template <class T>
cudaError_t launch_layernorm(const LayerNormArgs<T>& a, cudaStream_t stream) {
  if (a.rows <= 0 || a.columns <= 0) return cudaSuccess;
  if (a.rows > 0x7fffffff) return cudaErrorInvalidValue;
  constexpr int V = Vec16<T>::kElements;
  const bool vector = a.columns % V == 0 && is_aligned16(a.input) && is_aligned16(a.output);
  const bool affine_aligned = (!a.gamma || is_aligned16(a.gamma)) && (!a.beta || is_aligned16(a.beta));
  if (vector && affine_aligned && a.columns / V <= kWarpSize * kLayerNormMaxVectorsPerLane) {
    const unsigned blocks = static_cast<unsigned>(ceil_div(a.rows, kLayerNormRowsPerBlock));
    layernorm_warp_kernel<T><<<blocks, kLayerNormRowsPerBlock * kWarpSize, 0, stream>>>(a);
  } else if (vector)
    layernorm_kernel<T, true><<<static_cast<unsigned>(a.rows), row_threads(a.columns / V), 0, stream>>>(a);
  else
    layernorm_kernel<T, false><<<static_cast<unsigned>(a.rows), row_threads(a.columns), 0, stream>>>(a);
  return launch_status();
}

template <class T>
struct SoftmaxArgs {
  const T* input;   // [rows, columns]
  T* output;        // [rows, columns]
  int64_t rows;
  int64_t columns;
  float scale;      // softmax(scale * x); 1 for plain softmax
};

template <class T, bool kVector>
__global__ void softmax_kernel(SoftmaxArgs<T> a) {
  __shared__ float scratch[32];
  constexpr int V = kVector ? Vec16<T>::kElements : 1;
  const int64_t row = blockIdx.x;
  const T* x = a.input + row * a.columns;
  T* y = a.output + row * a.columns;
  const int64_t groups = a.columns / V;

  float local_max = -INFINITY;
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    if (kVector) {
      Vec16<T> v = load_vec16(x + g * V);
#pragma unroll
      for (int e = 0; e < V; ++e) local_max = fmaxf(local_max, a.scale * to_float(v.elements[e]));
    } else {
      local_max = fmaxf(local_max, a.scale * to_float(x[g]));
    }
  }
  const float row_max = block_max(local_max, scratch);

  float local_sum = 0.f;
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    if (kVector) {
      Vec16<T> v = load_vec16(x + g * V);
#pragma unroll
      for (int e = 0; e < V; ++e) local_sum += __expf(a.scale * to_float(v.elements[e]) - row_max);
    } else {
      local_sum += __expf(a.scale * to_float(x[g]) - row_max);
    }
  }
  const float inv_sum = 1.f / block_sum(local_sum, scratch);

  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    if (kVector) {
      Vec16<T> v = load_vec16(x + g * V), out;
#pragma unroll
      for (int e = 0; e < V; ++e) out.elements[e] = from_float<T>(__expf(a.scale * to_float(v.elements[e]) - row_max) * inv_sum);
      store_vec16(y + g * V, out);
    } else {
      y[g] = from_float<T>(__expf(a.scale * to_float(x[g]) - row_max) * inv_sum);
    }
  }
}

template <class T>
cudaError_t launch_softmax(const SoftmaxArgs<T>& a, cudaStream_t stream) {
  if (a.rows <= 0 || a.columns <= 0) return cudaSuccess;
  if (a.rows > 0x7fffffff) return cudaErrorInvalidValue;
  constexpr int V = Vec16<T>::kElements;
  const bool vector = a.columns % V == 0 && is_aligned16(a.input) && is_aligned16(a.output);
  if (vector)
    softmax_kernel<T, true><<<static_cast<unsigned>(a.rows), row_threads(a.columns / V), 0, stream>>>(a);
  else
    softmax_kernel<T, false><<<static_cast<unsigned>(a.rows), row_threads(a.columns), 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
