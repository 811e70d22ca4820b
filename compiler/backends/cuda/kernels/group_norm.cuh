// Group normalization (ONNX GroupNormalization; InstanceNormalization is the case groups == channels): per image n
// and group g, the mean and variance of the group's channels over all spatial positions, then a per-channel (or,
// opset 18 GroupNormalization, per-group) scale and bias. Data is NCHW ([N, C, S], a group's elements contiguous) or
// channels-last ([N, S, C], what the layout pass leaves between NHWC convolutions: the group's channels are a run of
// C/G at each position, so no transposes are needed around the op).
// Two paths:
//  - one block per (n, g) (group_norm_kernel): fp32 statistics in two passes (mean, then the centred sum of squares)
//    re-reading the group from global memory (L2 resident for the group sizes of the models), then a third pass
//    writes. Good when there are many (n, g) pairs (every SM busy) or the groups are small.
//  - split (group_norm_split_stats_kernel + group_norm_split_apply_kernel): few pairs of large groups, e.g.
//    PoolFormer's GroupNorm(1, C) at batch 1..8, where one block per pair leaves most SMs idle. Each group is cut into
//    `splits` slices of about equal size, a block per (pair, slice): the first kernel writes each slice's fp32
//    (mean, M2) to the workspace (two passes over the slice, which stays in L1/L2: no E[x²] − E[x]² cancellation);
//    the second kernel, with the same grid, combines the pair's partials (Chan's formula, at most 64) and writes the
//    slice normalized. Index math within an image in 32 bits (the split path takes images of < 2^31 elements).
//    The speed of the split path is not yet measured on a GPU (the next GPU run measures it).
#pragma once

#include <algorithm>

#include "common.cuh"
#include "normalization.cuh"  // row_threads

namespace ait {
namespace kernels {

template <class T>
struct GroupNormArgs {
  const T* input;   // [batch, channels, spatial] or, channels_last, [batch, spatial, channels]
  const T* scale;   // [channels] or, affine_per_group, [groups]
  const T* bias;    // as scale
  T* output;        // as input
  int64_t batch, channels, spatial, groups;
  bool channels_last;
  bool affine_per_group;
  float epsilon;
};

// The offset of element `idx` of group (n, g) (idx in [0, C/G · S)) and its channel.
template <class T>
__device__ __forceinline__ int64_t group_norm_offset(const GroupNormArgs<T>& a, int64_t n, int64_t g, int64_t idx, int64_t* channel) {
  const int64_t per_group = a.channels / a.groups;
  if (a.channels_last) {
    const int64_t s = idx / per_group, j = idx % per_group;
    *channel = g * per_group + j;
    return (n * a.spatial + s) * a.channels + *channel;
  }
  *channel = g * per_group + idx / a.spatial;
  return (n * a.channels + g * per_group) * a.spatial + idx;
}

template <class T>
__global__ void group_norm_kernel(GroupNormArgs<T> a) {
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x / a.groups, g = blockIdx.x % a.groups;
  const int64_t count = a.channels / a.groups * a.spatial;
  int64_t channel;
  float sum = 0.f;
  for (int64_t idx = threadIdx.x; idx < count; idx += blockDim.x) sum += to_float(a.input[group_norm_offset(a, n, g, idx, &channel)]);
  const float mean = block_sum(sum, scratch) / static_cast<float>(count);
  float squares = 0.f;
  for (int64_t idx = threadIdx.x; idx < count; idx += blockDim.x) {
    const float d = to_float(a.input[group_norm_offset(a, n, g, idx, &channel)]) - mean;
    squares += d * d;
  }
  const float inv_std = rsqrtf(block_sum(squares, scratch) / static_cast<float>(count) + a.epsilon);
  for (int64_t idx = threadIdx.x; idx < count; idx += blockDim.x) {
    const int64_t at = group_norm_offset(a, n, g, idx, &channel);
    const int64_t p = a.affine_per_group ? g : channel;
    const float y = (to_float(a.input[at]) - mean) * inv_std * to_float(a.scale[p]) + to_float(a.bias[p]);
    a.output[at] = from_float<T>(y);
  }
}

// ---- split path ----
constexpr int kGroupNormMaxSplits = 64;              // partials per (n, g): one lane each, at most two per lane
constexpr int64_t kGroupNormMinSlice = 4096;         // elements per block at least (16 per thread)
constexpr int64_t kGroupNormMaxSplitPairs = 1024;    // pairs at or above this never split (2 × 512 SMs)
constexpr int kGroupNormSplitThreads = 256;

// Slices per (n, g) pair on a device of `sm_count` SMs; 1 takes the one-block path. Splits when the pairs would
// fill fewer than two blocks per SM (a fixed SM threshold would misjudge A100 vs H100 vs MI300; the attribute query
// costs well under a microsecond), aiming at about 4 blocks per SM in all, each slice at least kGroupNormMinSlice
// elements. `image_elements` (channels · spatial) must fit 32-bit index math. Keep in step with
// codegen/group-norm-lowering.ts groupNormSplits.
inline int group_norm_splits(int64_t pairs, int64_t count, int64_t image_elements, int sm_count) {
  if (pairs <= 0 || pairs >= kGroupNormMaxSplitPairs || pairs >= 2 * static_cast<int64_t>(sm_count)) return 1;
  if (image_elements > 0x7fffffff) return 1;
  const int64_t wanted = (4 * static_cast<int64_t>(sm_count) + pairs - 1) / pairs;
  const int64_t splits = std::min<int64_t>(std::min<int64_t>(kGroupNormMaxSplits, count / kGroupNormMinSlice), wanted);
  return splits >= 2 ? static_cast<int>(splits) : 1;
}

// Workspace the split path may need at these sizes on any device (its largest split count; pairs past the
// threshold never split): a float2 (mean, M2) per (pair, slice). Grows with pairs and count, so the bytes at the
// largest sizes serve every run. 0: the path is never taken. Keep in step with groupNormWorkspaceBytes (TypeScript).
inline size_t group_norm_workspace_bytes(int64_t pairs, int64_t count, int64_t image_elements) {
  if (pairs <= 0 || image_elements > 0x7fffffff) return 0;
  const int64_t splits = std::min<int64_t>(kGroupNormMaxSplits, count / kGroupNormMinSlice);
  if (splits < 2) return 0;
  return static_cast<size_t>(std::min<int64_t>(pairs, kGroupNormMaxSplitPairs - 1) * splits) * 2 * sizeof(float);
}

// The split path's view of one (pair, slice) block: the pair's base offset, its slice [begin, end) of the group's
// element indices, and 32-bit offsets within the image.
struct GroupNormSlice {
  int64_t base;        // offset of the group's first element (NCHW) or of the image plus the group's first channel
  uint32_t begin, end;
  uint32_t per_group;  // channels per group
  uint32_t spatial, channels;
  uint32_t g;
};

__host__ __device__ __forceinline__ uint32_t group_norm_slice_begin(uint32_t count, int splits, int s) {
  // slices as equal as integers allow: [count·s/splits, count·(s+1)/splits), never empty when count ≥ splits
  return static_cast<uint32_t>(static_cast<uint64_t>(count) * static_cast<uint32_t>(s) / static_cast<uint32_t>(splits));
}

template <class T>
__device__ __forceinline__ GroupNormSlice group_norm_slice(const GroupNormArgs<T>& a, int pair, int s, int splits) {
  GroupNormSlice v;
  const int64_t n = pair / a.groups;
  v.g = static_cast<uint32_t>(pair % a.groups);
  v.per_group = static_cast<uint32_t>(a.channels / a.groups);
  v.spatial = static_cast<uint32_t>(a.spatial);
  v.channels = static_cast<uint32_t>(a.channels);
  const uint32_t count = v.per_group * v.spatial;
  v.begin = group_norm_slice_begin(count, splits, s);
  v.end = group_norm_slice_begin(count, splits, s + 1);
  v.base = a.channels_last ? n * a.spatial * a.channels + static_cast<int64_t>(v.g) * v.per_group
                           : (n * a.channels + static_cast<int64_t>(v.g) * v.per_group) * a.spatial;
  return v;
}

// Offset (from v.base) of the group's element `idx`, and its channel.
__device__ __forceinline__ uint32_t group_norm_slice_offset(const GroupNormSlice& v, bool channels_last, uint32_t idx, uint32_t* channel) {
  if (channels_last) {
    const uint32_t s = idx / v.per_group, j = idx - s * v.per_group;
    *channel = v.g * v.per_group + j;
    return s * v.channels + j;
  }
  *channel = v.g * v.per_group + idx / v.spatial;
  return idx;
}

// grid (splits, pairs): the (mean, M2) of one slice, two passes (the second re-reads the slice from L1/L2).
template <class T>
__global__ void __launch_bounds__(kGroupNormSplitThreads) group_norm_split_stats_kernel(GroupNormArgs<T> a, float2* partials) {
  __shared__ float scratch[32];
  const int splits = gridDim.x, s = blockIdx.x, pair = blockIdx.y;
  const GroupNormSlice v = group_norm_slice(a, pair, s, splits);
  const T* x = a.input + v.base;
  uint32_t channel;
  float sum = 0.f;
  for (uint32_t idx = v.begin + threadIdx.x; idx < v.end; idx += blockDim.x) sum += to_float(x[group_norm_slice_offset(v, a.channels_last, idx, &channel)]);
  const float n = static_cast<float>(v.end - v.begin);
  const float mean = v.end > v.begin ? block_sum(sum, scratch) / n : 0.f;
  float squares = 0.f;
  for (uint32_t idx = v.begin + threadIdx.x; idx < v.end; idx += blockDim.x) {
    const float d = to_float(x[group_norm_slice_offset(v, a.channels_last, idx, &channel)]) - mean;
    squares += d * d;
  }
  const float m2 = block_sum(squares, scratch);
  if (threadIdx.x == 0) partials[static_cast<int64_t>(pair) * splits + s] = make_float2(mean, m2);
}

// Chan et al.: (count, mean, M2) of the union of two disjoint sets. The mean moves by the weighted difference of
// the means and M2 gains the between-set term, so no large sums of squares are ever subtracted.
__device__ __forceinline__ void group_norm_chan(float& count, float& mean, float& m2, float count_b, float mean_b, float m2_b) {
  const float total = count + count_b;
  if (count_b == 0.f) return;
  const float delta = mean_b - mean, weight = count_b / total;
  mean += delta * weight;
  m2 += m2_b + delta * delta * count * weight;
  count = total;
}

// grid (splits, pairs), the stats kernel's: warp 0 combines the pair's partials (each lane folds its own, then a
// butterfly across lanes; lane 0's result is broadcast through shared memory so the whole block uses one value),
// then the block writes its slice.
template <class T>
__global__ void __launch_bounds__(kGroupNormSplitThreads) group_norm_split_apply_kernel(GroupNormArgs<T> a, const float2* partials) {
  __shared__ float stats[2];
  const int splits = gridDim.x, s = blockIdx.x, pair = blockIdx.y;
  const GroupNormSlice v = group_norm_slice(a, pair, s, splits);
  if (threadIdx.x < kWarpSize) {
    const uint32_t count = v.per_group * v.spatial;
    float n = 0.f, mean = 0.f, m2 = 0.f;
    for (int p = threadIdx.x; p < splits; p += kWarpSize) {
      const float2 part = partials[static_cast<int64_t>(pair) * splits + p];
      const float np = static_cast<float>(group_norm_slice_begin(count, splits, p + 1) - group_norm_slice_begin(count, splits, p));
      group_norm_chan(n, mean, m2, np, part.x, part.y);
    }
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
      const float n_b = shfl_xor(n, offset), mean_b = shfl_xor(mean, offset), m2_b = shfl_xor(m2, offset);
      group_norm_chan(n, mean, m2, n_b, mean_b, m2_b);
    }
    if (threadIdx.x == 0) {
      stats[0] = mean;
      stats[1] = rsqrtf(fmaxf(m2, 0.f) / static_cast<float>(count) + a.epsilon);
    }
  }
  __syncthreads();
  const float mean = stats[0], inv_std = stats[1];
  const T* x = a.input + v.base;
  T* y = a.output + v.base;
  for (uint32_t idx = v.begin + threadIdx.x; idx < v.end; idx += blockDim.x) {
    uint32_t channel;
    const uint32_t at = group_norm_slice_offset(v, a.channels_last, idx, &channel);
    const uint32_t p = a.affine_per_group ? v.g : channel;
    y[at] = from_float<T>((to_float(x[at]) - mean) * inv_std * to_float(a.scale[p]) + to_float(a.bias[p]));
  }
}

// `workspace` (workspace_bytes long, may be null) holds the split path's partials; too small a workspace takes the
// one-block path (never an error).
template <class T>
cudaError_t launch_group_norm(const GroupNormArgs<T>& a, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (a.batch <= 0 || a.channels <= 0 || a.spatial <= 0) return cudaSuccess;
  if (a.groups <= 0 || a.channels % a.groups != 0 || a.batch * a.groups > 0x7fffffff) return cudaErrorInvalidValue;
  const int64_t pairs = a.batch * a.groups, count = a.channels / a.groups * a.spatial, image = a.channels * a.spatial;
  if (workspace && workspace_bytes > 0 && group_norm_workspace_bytes(pairs, count, image) > 0) {
    int device = 0, sm_count = 0;
    cudaError_t status = cudaGetDevice(&device);
    if (status == cudaSuccess) status = cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device);
    if (status != cudaSuccess) return status;
    const int splits = group_norm_splits(pairs, count, image, sm_count);
    if (splits > 1 && static_cast<size_t>(pairs * splits) * 2 * sizeof(float) <= workspace_bytes) {
      float2* partials = static_cast<float2*>(workspace);
      const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(pairs));
      group_norm_split_stats_kernel<T><<<grid, kGroupNormSplitThreads, 0, stream>>>(a, partials);
      if ((status = launch_status()) != cudaSuccess) return status;
      group_norm_split_apply_kernel<T><<<grid, kGroupNormSplitThreads, 0, stream>>>(a, partials);
      return launch_status();
    }
  }
  const unsigned blocks = static_cast<unsigned>(pairs);
  group_norm_kernel<T><<<blocks, row_threads(count), 0, stream>>>(a);
  return launch_status();
}

// The one-block path only (no workspace).
template <class T>
cudaError_t launch_group_norm(const GroupNormArgs<T>& a, cudaStream_t stream) {
  return launch_group_norm(a, nullptr, 0, stream);
}

}  // namespace kernels
}  // namespace ait
