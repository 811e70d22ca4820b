// Group normalization (ONNX GroupNormalization; InstanceNormalization is the case groups == channels): per image n
// and group g, the mean and variance of the group's channels over all spatial positions, then a per-channel (or,
// opset 18 GroupNormalization, per-group) scale and bias. Data is NCHW ([N, C, S], a group's elements contiguous) or
// channels-last ([N, S, C], what the layout pass leaves between NHWC convolutions: the group's channels are a run of
// C/G at each position, so no transposes are needed around the op).
// One block per (n, g); fp32 statistics in two passes (mean, then the centred sum of squares) re-reading the group
// from global memory (L2 resident for the group sizes of the models), then a third pass writes.
#pragma once

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

template <class T>
cudaError_t launch_group_norm(const GroupNormArgs<T>& a, cudaStream_t stream) {
  if (a.batch <= 0 || a.channels <= 0 || a.spatial <= 0) return cudaSuccess;
  if (a.groups <= 0 || a.channels % a.groups != 0 || a.batch * a.groups > 0x7fffffff) return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>(a.batch * a.groups);
  group_norm_kernel<T><<<blocks, row_threads(a.channels / a.groups * a.spatial), 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
