// ScatterElements (ONNX opsets 11-18): output = data, then for every element u of updates (indices has its shape),
// output[u's coordinates with the axis one replaced by indices[u]] is set to updates[u] or combined with it by the
// reduction (add, mul, max, min). Negative indices count from the end of data's axis; out-of-range ones are skipped
// (ONNX leaves them undefined). The copy of data is skipped when the memory plan gave the output data's buffer.
//
// Two kernels. The column kernel gives each thread one column (the update elements that share every coordinate but
// the axis one; they write only into the same column of the output) and applies them in index order: no atomics, and
// the result is exactly the sequential order of the reference, for every reduction and for duplicate indices with
// reduction none. It is used when the columns alone fill the GPU, or the axis is short. Otherwise (few long columns,
// e.g. Mask R-CNN's rois scattered along axis 0 of [rois, 256, 7, 7]) one thread per update element: a plain store
// for reduction none (duplicate indices then keep one of the writes, unspecified which) and a compare-and-swap loop
// for the reductions (max and min and integer add/mul are exact; fp16 add/mul round in an unspecified order).
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

constexpr int kMaxScatterRank = 6;

enum class ScatterReduction : int32_t { kNone = 0, kAdd = 1, kMul = 2, kMax = 3, kMin = 4 };

template <class T, class Index>
struct ScatterElementsArgs {
  const T* data;
  const Index* indices;  // shape: update_shape
  const T* updates;      // shape: update_shape
  T* output;             // shape: data_shape (may be data itself)
  int32_t rank, axis;
  int64_t data_shape[kMaxScatterRank];
  int64_t update_shape[kMaxScatterRank];  // each at most data's, except along the axis
  ScatterReduction reduction;
};

// Columns at least this many: the column kernel fills the GPU by itself.
constexpr int64_t kScatterColumnThreads = 32768;
// An axis at most this long: few enough steps per thread for the column kernel whatever the column count.
constexpr int64_t kScatterShortAxis = 32;

template <class T>
__device__ __forceinline__ T scatter_combine(T old, T v, ScatterReduction r) {
  switch (r) {
    case ScatterReduction::kAdd: return static_cast<T>(old + v);
    case ScatterReduction::kMul: return static_cast<T>(old * v);
    case ScatterReduction::kMax: return old > v ? old : v;
    case ScatterReduction::kMin: return old < v ? old : v;
    default: return v;
  }
}

// fp16/bf16: fp32 math, one rounding per step.
template <>
__device__ __forceinline__ __half scatter_combine<__half>(__half old, __half v, ScatterReduction r) {
  return from_float<__half>(scatter_combine(to_float(old), to_float(v), r));
}
template <>
__device__ __forceinline__ __nv_bfloat16 scatter_combine<__nv_bfloat16>(__nv_bfloat16 old, __nv_bfloat16 v, ScatterReduction r) {
  return from_float<__nv_bfloat16>(scatter_combine(to_float(old), to_float(v), r));
}

// *p = scatter_combine(*p, v, r) atomically, for any element size: a compare-and-swap loop on the 64-bit element,
// or on the aligned 32-bit word that holds a 32/16/8-bit element (its other bytes are written back unchanged; for
// the last element the word may reach up to 3 bytes past it, inside the 256-byte alignment of arena buffers and of
// cudaMalloc). atomicCAS on 32 and 64 bits exists under CUDA and HIP alike.
template <class T>
__device__ __forceinline__ void scatter_atomic_combine(T* p, T v, ScatterReduction r) {
  static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8, "element size");
  if constexpr (sizeof(T) == 8) {
    unsigned long long* word = reinterpret_cast<unsigned long long*>(p);
    unsigned long long seen = *word, assumed;
    do {
      assumed = seen;
      T current;
      memcpy(&current, &assumed, sizeof(T));
      const T next = scatter_combine(current, v, r);
      unsigned long long bits;
      memcpy(&bits, &next, sizeof(T));
      seen = atomicCAS(word, assumed, bits);
    } while (seen != assumed);
  } else {
    const uintptr_t address = reinterpret_cast<uintptr_t>(p);
    unsigned int* word = reinterpret_cast<unsigned int*>(address & ~static_cast<uintptr_t>(3));
    const unsigned int shift = static_cast<unsigned int>(address & 3) * 8;  // little-endian byte offset in the word
    const unsigned int mask = sizeof(T) == 4 ? 0xffffffffu : ((1u << (8 * sizeof(T))) - 1u) << shift;
    unsigned int seen = *word, assumed;
    do {
      assumed = seen;
      const unsigned int old_bits = assumed >> shift;
      T current;
      memcpy(&current, &old_bits, sizeof(T));
      const T next = scatter_combine(current, v, r);
      unsigned int new_bits = 0;
      memcpy(&new_bits, &next, sizeof(T));
      seen = atomicCAS(word, assumed, (assumed & ~mask) | ((new_bits << shift) & mask));
    } while (seen != assumed);
  }
}

__device__ __forceinline__ bool scatter_index(int64_t index, int64_t size, int64_t& out) {
  if (index < 0) index += size;
  out = index;
  return index >= 0 && index < size;
}

// One thread per column; the axis walked in order.
template <class T, class Index>
__global__ void scatter_elements_columns_kernel(ScatterElementsArgs<T, Index> a, int64_t columns) {
  const int64_t axis_length = a.update_shape[a.axis];
  for (int64_t column = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; column < columns;
       column += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // the column's coordinates (all but the axis) as offsets in updates and in the output, and both axis strides
    int64_t rest = column, update_offset = 0, output_offset = 0, update_stride = 1, output_stride = 1;
    int64_t update_axis_stride = 1, output_axis_stride = 1;
    for (int d = a.rank - 1; d >= 0; --d) {
      if (d == a.axis) {
        update_axis_stride = update_stride;
        output_axis_stride = output_stride;
      } else {
        const int64_t q = rest / a.update_shape[d];
        const int64_t coordinate = rest - q * a.update_shape[d];
        rest = q;
        update_offset += coordinate * update_stride;
        output_offset += coordinate * output_stride;
      }
      update_stride *= a.update_shape[d];
      output_stride *= a.data_shape[d];
    }
    for (int64_t k = 0; k < axis_length; ++k) {
      const int64_t u = update_offset + k * update_axis_stride;
      int64_t index;
      if (!scatter_index(static_cast<int64_t>(a.indices[u]), a.data_shape[a.axis], index)) continue;
      T* target = a.output + output_offset + index * output_axis_stride;
      *target = a.reduction == ScatterReduction::kNone ? a.updates[u] : scatter_combine(*target, a.updates[u], a.reduction);
    }
  }
}

// One thread per update element; kAtomic for the reductions.
template <class T, class Index, bool kAtomic>
__global__ void scatter_elements_kernel(ScatterElementsArgs<T, Index> a, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, offset = 0, stride = 1;
    bool inside = true;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t q = rest / a.update_shape[d];
      int64_t coordinate = rest - q * a.update_shape[d];
      rest = q;
      if (d == a.axis) inside = scatter_index(static_cast<int64_t>(a.indices[i]), a.data_shape[d], coordinate);
      offset += coordinate * stride;
      stride *= a.data_shape[d];
    }
    if (!inside) continue;
    if (kAtomic)
      scatter_atomic_combine(a.output + offset, a.updates[i], a.reduction);
    else
      a.output[offset] = a.updates[i];
  }
}

template <class T, class Index>
cudaError_t launch_scatter_elements(const ScatterElementsArgs<T, Index>& a, cudaStream_t stream) {
  if (a.rank < 1 || a.rank > kMaxScatterRank || a.axis < 0 || a.axis >= a.rank) return cudaErrorInvalidValue;
  int64_t data_total = 1, total = 1;
  for (int d = 0; d < a.rank; ++d) {
    if (a.update_shape[d] < 0 || a.data_shape[d] < 0) return cudaErrorInvalidValue;
    if (d != a.axis && a.update_shape[d] > a.data_shape[d]) return cudaErrorInvalidValue;
    data_total *= a.data_shape[d];
    total *= a.update_shape[d];
  }
  if (a.output != a.data && data_total > 0) {
    const cudaError_t copied =
        cudaMemcpyAsync(a.output, a.data, static_cast<size_t>(data_total) * sizeof(T), cudaMemcpyDeviceToDevice, stream);
    if (copied != cudaSuccess) return copied;
  }
  if (total == 0 || a.data_shape[a.axis] == 0) return cudaSuccess;  // nothing to scatter, or every index out of range
  const int64_t axis_length = a.update_shape[a.axis], columns = total / axis_length;
  if (columns >= kScatterColumnThreads || axis_length <= kScatterShortAxis)
    scatter_elements_columns_kernel<T, Index><<<grid_for(columns, 256), 256, 0, stream>>>(a, columns);
  else if (a.reduction == ScatterReduction::kNone)
    scatter_elements_kernel<T, Index, false><<<grid_for(total, 256), 256, 0, stream>>>(a, total);
  else
    scatter_elements_kernel<T, Index, true><<<grid_for(total, 256), 256, 0, stream>>>(a, total);
  return launch_status();
}

// ScatterND (ONNX opsets 11-18): output = data, then each index tuple t (the last axis of indices, k entries) names a
// slice of data — data[i_0, .., i_{k-1}, :, ..] of `slice` elements — into which updates[t, :] is put or combined by
// the reduction. Negative entries count from the end of their axis; a tuple with an entry out of range is skipped
// (ONNX leaves it undefined). The copy of data is skipped when the memory plan gave the output data's buffer.
//
// Every path applies the tuples in their order for equal targets, as the sequential reference does; ONNX leaves
// duplicate tuples under reduction none unspecified, and this keeps the last one, on every run:
//  - the column kernel: a thread per slice element walks all tuples in order (the slice alone fills the GPU, or the
//    tuples are few); no atomics, exactly the reference for every reduction;
//  - otherwise a thread per update element. The reductions combine by compare-and-swap (max/min and integer add/mul
//    exact; fp16 add/mul round in an unspecified order). Reduction none first elects, per target slice, the last
//    tuple that names it (atomicMax of the tuple number into an int32 per slice position of data, in the workspace:
//    scatter_nd_workspace_bytes), then only the elected tuples write.
template <class T, class Index>
struct ScatterNDArgs {
  const T* data;
  const Index* indices;  // [tuples, k]
  const T* updates;      // [tuples, slice]
  T* output;             // data's shape, [dims[0] .. dims[k-1], slice] (may be data itself)
  int64_t tuples, slice;
  int32_t k;                       // 0 .. kMaxScatterRank
  int64_t dims[kMaxScatterRank];   // data's first k dims
  ScatterReduction reduction;
};

// The slice position (in units of slices: the row-major index over dims[0..k-1]) tuple t names, or -1 when an entry
// is out of range.
template <class T, class Index>
__device__ __forceinline__ int64_t scatter_nd_position(const ScatterNDArgs<T, Index>& a, int64_t t) {
  const Index* tuple = a.indices + t * a.k;
  int64_t position = 0;
  for (int m = 0; m < a.k; ++m) {
    int64_t index;
    if (!scatter_index(static_cast<int64_t>(tuple[m]), a.dims[m], index)) return -1;
    position = position * a.dims[m] + index;
  }
  return position;
}

// One thread per slice element; the tuples walked in order.
template <class T, class Index>
__global__ void scatter_nd_columns_kernel(ScatterNDArgs<T, Index> a) {
  for (int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; s < a.slice;
       s += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    for (int64_t t = 0; t < a.tuples; ++t) {
      const int64_t position = scatter_nd_position(a, t);
      if (position < 0) continue;
      T* target = a.output + position * a.slice + s;
      const T v = a.updates[t * a.slice + s];
      *target = a.reduction == ScatterReduction::kNone ? v : scatter_combine(*target, v, a.reduction);
    }
  }
}

// Reduction none: winners[position] = the last tuple naming it (winners start at -1).
template <class T, class Index>
__global__ void scatter_nd_elect_kernel(ScatterNDArgs<T, Index> a, int32_t* winners) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < a.tuples;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t position = scatter_nd_position(a, t);
    if (position >= 0) atomicMax(winners + position, static_cast<int32_t>(t));
  }
}

// One thread per update element: kAtomic combines by compare-and-swap; else only the elected tuple stores.
template <class T, class Index, bool kAtomic>
__global__ void scatter_nd_kernel(ScatterNDArgs<T, Index> a, const int32_t* winners, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / a.slice, s = i - t * a.slice;
    const int64_t position = scatter_nd_position(a, t);
    if (position < 0) continue;
    T* target = a.output + position * a.slice + s;
    if (kAtomic)
      scatter_atomic_combine(target, a.updates[i], a.reduction);
    else if (winners[position] == t)
      *target = a.updates[i];
  }
}

// The slice positions of data (the product of its first k dims), or -1 when a dim is negative.
template <class T, class Index>
inline int64_t scatter_nd_positions(const ScatterNDArgs<T, Index>& a) {
  int64_t positions = 1;
  for (int m = 0; m < a.k; ++m) {
    if (a.dims[m] < 0) return -1;
    positions *= a.dims[m];
  }
  return positions;
}

inline bool scatter_nd_uses_columns(int64_t tuples, int64_t slice) {
  return slice >= kScatterColumnThreads || tuples <= kScatterShortAxis;
}

// Workspace bytes of a launch (the election's winners: reduction none on the element path), 0 otherwise.
inline size_t scatter_nd_workspace_bytes(int64_t tuples, int64_t slice, int64_t positions, ScatterReduction reduction) {
  if (reduction != ScatterReduction::kNone || scatter_nd_uses_columns(tuples, slice) || tuples * slice == 0) return 0;
  return static_cast<size_t>(positions) * sizeof(int32_t);
}

template <class T, class Index>
cudaError_t launch_scatter_nd(const ScatterNDArgs<T, Index>& a, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const int64_t positions = scatter_nd_positions(a);
  if (a.k < 0 || a.k > kMaxScatterRank || positions < 0 || a.tuples < 0 || a.slice < 0) return cudaErrorInvalidValue;
  // the election numbers tuples in int32
  if (a.tuples > INT32_MAX) return cudaErrorInvalidValue;
  const int64_t data_total = positions * a.slice;
  if (a.output != a.data && data_total > 0) {
    const cudaError_t copied =
        cudaMemcpyAsync(a.output, a.data, static_cast<size_t>(data_total) * sizeof(T), cudaMemcpyDeviceToDevice, stream);
    if (copied != cudaSuccess) return copied;
  }
  const int64_t total = a.tuples * a.slice;
  if (total == 0 || positions == 0) return cudaSuccess;  // nothing to scatter, or every tuple out of range
  if (scatter_nd_uses_columns(a.tuples, a.slice)) {
    scatter_nd_columns_kernel<T, Index><<<grid_for(a.slice, 256), 256, 0, stream>>>(a);
  } else if (a.reduction != ScatterReduction::kNone) {
    scatter_nd_kernel<T, Index, true><<<grid_for(total, 256), 256, 0, stream>>>(a, nullptr, total);
  } else {
    const size_t needed = scatter_nd_workspace_bytes(a.tuples, a.slice, positions, a.reduction);
    if (workspace == nullptr || workspace_bytes < needed) return cudaErrorInvalidValue;
    int32_t* winners = static_cast<int32_t*>(workspace);
    const cudaError_t cleared = cudaMemsetAsync(winners, 0xff, needed, stream);  // every winner -1
    if (cleared != cudaSuccess) return cleared;
    scatter_nd_elect_kernel<T, Index><<<grid_for(a.tuples, 256), 256, 0, stream>>>(a, winners);
    scatter_nd_kernel<T, Index, false><<<grid_for(total, 256), 256, 0, stream>>>(a, winners, total);
  }
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
