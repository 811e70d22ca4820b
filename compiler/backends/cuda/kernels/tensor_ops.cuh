// Data movement: concat, strided copy (slice and transpose), gather. Any element type (copies bytes of T).
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

constexpr int kMaxConcatInputs = 8;
constexpr int kMaxCopyRank = 6;

// Concatenation along one axis of tensors viewed as [outer, axis_i, inner].
template <class T>
struct ConcatArgs {
  const T* inputs[kMaxConcatInputs];
  int64_t axis_sizes[kMaxConcatInputs];
  int32_t num_inputs;
  T* output;  // [outer, sum(axis_sizes), inner]
  int64_t outer, inner;
};

template <class T>
__global__ void concat_kernel(ConcatArgs<T> a) {
  int64_t total_axis = 0;
  for (int k = 0; k < a.num_inputs; ++k) total_axis += a.axis_sizes[k];
  const int64_t row = total_axis * a.inner;
  const int64_t total = a.outer * row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = i / row, r = i % row;
    int64_t axis = r / a.inner;
    const int64_t in = r % a.inner;
    int k = 0;
    while (k < a.num_inputs - 1 && axis >= a.axis_sizes[k]) axis -= a.axis_sizes[k++];
    a.output[i] = a.inputs[k][(o * a.axis_sizes[k] + axis) * a.inner + in];
  }
}

template <class T>
cudaError_t launch_concat(const ConcatArgs<T>& a, cudaStream_t stream) {
  if (a.num_inputs < 1 || a.num_inputs > kMaxConcatInputs) return cudaErrorInvalidValue;
  int64_t total_axis = 0;
  for (int k = 0; k < a.num_inputs; ++k) total_axis += a.axis_sizes[k];
  const int64_t total = a.outer * total_axis * a.inner;
  if (total <= 0) return cudaSuccess;
  concat_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

// out[c0, .., cr] = in[offset + sum(c_d * input_strides[d])]: a slice (strides scaled by steps, offset at the
// starts, negative steps allowed) or a transpose (strides permuted), or both.
template <class T>
struct StridedCopyArgs {
  const T* input;
  T* output;
  int32_t rank;
  int64_t output_shape[kMaxCopyRank];
  int64_t input_strides[kMaxCopyRank];  // in elements, per output axis
  int64_t input_offset;
};

template <class T>
__global__ void strided_copy_kernel(StridedCopyArgs<T> a) {
  int64_t total = 1;
  for (int d = 0; d < a.rank; ++d) total *= a.output_shape[d];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, source = a.input_offset;
    for (int d = a.rank - 1; d >= 0; --d) {
      source += (rest % a.output_shape[d]) * a.input_strides[d];
      rest /= a.output_shape[d];
    }
    a.output[i] = a.input[source];
  }
}

template <class T>
cudaError_t launch_strided_copy(const StridedCopyArgs<T>& a, cudaStream_t stream) {
  if (a.rank < 0 || a.rank > kMaxCopyRank) return cudaErrorInvalidValue;
  int64_t total = 1;
  for (int d = 0; d < a.rank; ++d) total *= a.output_shape[d];
  if (total <= 0) return cudaSuccess;
  strided_copy_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

// Gather along one axis: input [outer, axis_size, inner], indices [count] (negative counts from the end),
// output [outer, count, inner]. Out-of-range indices are clamped (ONNX leaves them undefined).
template <class T, class Index>
struct GatherArgs {
  const T* input;
  const Index* indices;
  T* output;
  int64_t outer, axis_size, inner, count;
};

template <class T, class Index>
__global__ void gather_kernel(GatherArgs<T, Index> a) {
  const int64_t total = a.outer * a.count * a.inner;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t in = i % a.inner;
    const int64_t rest = i / a.inner;
    const int64_t j = rest % a.count, o = rest / a.count;
    int64_t index = static_cast<int64_t>(a.indices[j]);
    if (index < 0) index += a.axis_size;
    index = index < 0 ? 0 : index >= a.axis_size ? a.axis_size - 1 : index;
    a.output[i] = a.input[(o * a.axis_size + index) * a.inner + in];
  }
}

template <class T, class Index>
cudaError_t launch_gather(const GatherArgs<T, Index>& a, cudaStream_t stream) {
  const int64_t total = a.outer * a.count * a.inner;
  if (total <= 0) return cudaSuccess;
  if (a.axis_size <= 0) return cudaErrorInvalidValue;
  gather_kernel<T, Index><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
