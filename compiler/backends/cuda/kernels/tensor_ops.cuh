// Data movement: concat, strided copy (slice and transpose), roll, gather (Gather, GatherElements, GatherND), range.
// Any element type (copies bytes of T).
#pragma once

#include "common.cuh"
#include "copy_plan.h"

namespace ait {
namespace kernels {

constexpr int kMaxConcatInputs = 8;
constexpr int kMaxCopyRank = 6;
static_assert(kMaxConcatInputs == kMaxPlanInputs && kMaxCopyRank == kMaxPlanRank, "the plans (copy_plan.h) take these");

// Concatenation along one axis of tensors viewed as [outer, axis_i, inner].
//
// A Concat of more than kMaxConcatInputs inputs is ceil(N / kMaxConcatInputs) launches, each copying up to
// kMaxConcatInputs inputs into their slab of the one output: output_axis is the output's whole axis and
// output_axis_offset where this launch's first input starts on it (both 0: one launch, the output's axis is the sum
// of axis_sizes). Launches rather than a larger input table: the kernel parameter stays small (a table passed by value
// must fit the 4 KB parameter limit of sm80/sm90 launches; larger needs CUDA 12.1 and a recent driver), any N works,
// and the per-element input search stays at most 8 steps.
template <class T>
struct ConcatArgs {
  const T* inputs[kMaxConcatInputs];
  int64_t axis_sizes[kMaxConcatInputs];
  int32_t num_inputs;
  T* output;  // [outer, output_axis, inner]
  int64_t outer, inner;
  int64_t output_axis;         // 0: sum(axis_sizes)
  int64_t output_axis_offset;  // where inputs[0] starts on the output's axis
};

// One unit (an element, or 16 bytes on the vector path) of the concat: output row o gets each input's row in turn.
// Index is uint32_t when the plan found every index below 2^31 (cheap div/mod), else uint64_t.
template <class U>
struct ConcatPointers {
  const U* inputs[kMaxConcatInputs];
  U* output;
};

template <class U, class Index>
__global__ void concat_kernel(ConcatPointers<U> ptr, ConcatPlan p) {
  const Index row = static_cast<Index>(p.row), total = static_cast<Index>(p.total);
  for (Index i = blockIdx.x * static_cast<Index>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index o = i / row;
    Index r = i - o * row, in = r;
    int k = 0;
    while (k < p.num_inputs - 1 && in >= static_cast<Index>(p.sizes[k])) in -= static_cast<Index>(p.sizes[k++]);
    ptr.output[o * static_cast<Index>(p.out_row) + static_cast<Index>(p.out_offset) + r] =
        ptr.inputs[k][o * static_cast<Index>(p.sizes[k]) + in];
  }
}

template <class U, class T>
void launch_concat_plan(const ConcatArgs<T>& a, const ConcatPlan& p, cudaStream_t stream) {
  ConcatPointers<U> ptr;
  for (int k = 0; k < kMaxConcatInputs; ++k)
    ptr.inputs[k] = k < a.num_inputs ? reinterpret_cast<const U*>(a.inputs[k]) : nullptr;
  ptr.output = reinterpret_cast<U*>(a.output);
  if (p.wide)
    concat_kernel<U, uint64_t><<<grid_for(p.total, 256), 256, 0, stream>>>(ptr, p);
  else
    concat_kernel<U, uint32_t><<<grid_for(p.total, 256), 256, 0, stream>>>(ptr, p);
}

// Speed: planned for bandwidth (16-byte units, 32-bit indices; see copy_plan.h), not yet measured on a GPU.
template <class T>
cudaError_t launch_concat(const ConcatArgs<T>& a, cudaStream_t stream) {
  bool aligned = is_aligned16(a.output);
  for (int k = 0; k < a.num_inputs && k < kMaxConcatInputs; ++k) aligned = aligned && is_aligned16(a.inputs[k]);
  ConcatPlan p;
  if (!plan_concat(a.num_inputs, a.axis_sizes, a.outer, a.inner, a.output_axis, a.output_axis_offset,
                   static_cast<int>(sizeof(T)), aligned, &p))
    return cudaErrorInvalidValue;
  if (p.total <= 0) return cudaSuccess;
  if (p.vector > 1)
    launch_concat_plan<uint4>(a, p, stream);
  else
    launch_concat_plan<T>(a, p, stream);
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

// One unit per thread over the coalesced plan (copy_plan.h): U is T, or uint4 for 16 bytes; Index uint32_t when
// every index fits below 2^31. Negative strides are fine in uint32_t: the sum wraps modulo 2^32 to the true index.
template <class U, class Index>
__global__ void strided_copy_kernel(const U* input, U* output, StridedCopyPlan p) {
  const Index total = static_cast<Index>(p.total);
  for (Index i = blockIdx.x * static_cast<Index>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    Index rest = i, source = static_cast<Index>(p.offset);
    for (int d = p.rank - 1; d > 0; --d) {
      const Index size = static_cast<Index>(p.shape[d]), q = rest / size;
      source += (rest - q * size) * static_cast<Index>(p.strides[d]);
      rest = q;
    }
    output[i] = input[source + rest * static_cast<Index>(p.strides[0])];
  }
}

template <class U, class T>
void launch_strided_copy_plan(const StridedCopyArgs<T>& a, const StridedCopyPlan& p, cudaStream_t stream) {
  const U* input = reinterpret_cast<const U*>(a.input);
  U* output = reinterpret_cast<U*>(a.output);
  if (p.wide)
    strided_copy_kernel<U, uint64_t><<<grid_for(p.total, 256), 256, 0, stream>>>(input, output, p);
  else
    strided_copy_kernel<U, uint32_t><<<grid_for(p.total, 256), 256, 0, stream>>>(input, output, p);
}

// Speed: planned for bandwidth (coalesced axes, 16-byte units, 32-bit indices; see copy_plan.h), not yet measured
// on a GPU.
template <class T>
cudaError_t launch_strided_copy(const StridedCopyArgs<T>& a, cudaStream_t stream) {
  StridedCopyPlan p;
  if (!plan_strided_copy(a.rank, a.output_shape, a.input_strides, a.input_offset, static_cast<int>(sizeof(T)),
                         is_aligned16(a.input) && is_aligned16(a.output), &p))
    return cudaErrorInvalidValue;
  if (p.total <= 0) return cudaSuccess;
  if (p.vector > 1)
    launch_strided_copy_plan<uint4>(a, p, stream);
  else
    launch_strided_copy_plan<T>(a, p, stream);
  return launch_status();
}

// Cyclic shift (torch.roll, our Roll op): out[c0, .., cr] = in[(c0 - shifts[0]) mod output_shape[0], ..], both
// tensors row-major over `shape`. Unshifted axes may be passed merged (any rank up to kMaxCopyRank).
template <class T>
struct RollArgs {
  const T* input;
  T* output;
  int32_t rank;
  int64_t shape[kMaxCopyRank];
  int64_t shifts[kMaxCopyRank];  // any sign, taken mod the axis size
};

// One unit per thread over the plan (copy_plan.h plan_roll): consecutive threads write consecutive units and read
// consecutive ones except where an axis wraps, so both sides stay coalesced. U is T, or uint4 for 16 bytes; Index
// uint32_t when the tensor has fewer than 2^31 units.
template <class U, class Index>
__global__ void roll_kernel(const U* input, U* output, RollPlan p) {
  const Index total = static_cast<Index>(p.total);
  for (Index i = blockIdx.x * static_cast<Index>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    Index rest = i, source = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const Index size = static_cast<Index>(p.shape[d]), shift = static_cast<Index>(p.shift[d]);
      const Index q = d > 0 ? rest / size : 0, c = rest - q * size;  // the outermost coordinate is what is left
      // (c - shift) mod size without a second division: shift < size
      source += (c >= shift ? c - shift : c + size - shift) * static_cast<Index>(p.stride[d]);
      rest = q;
    }
    output[i] = input[source];
  }
}

template <class U, class T>
void launch_roll_plan(const RollArgs<T>& a, const RollPlan& p, cudaStream_t stream) {
  const U* input = reinterpret_cast<const U*>(a.input);
  U* output = reinterpret_cast<U*>(a.output);
  if (p.wide)
    roll_kernel<U, uint64_t><<<grid_for(p.total, 256), 256, 0, stream>>>(input, output, p);
  else
    roll_kernel<U, uint32_t><<<grid_for(p.total, 256), 256, 0, stream>>>(input, output, p);
}

// Speed: one read and one write of the tensor (the Slice, Slice, Concat it replaces move it twice), 16-byte units
// when the innermost axis allows; not yet measured on a GPU.
template <class T>
cudaError_t launch_roll(const RollArgs<T>& a, cudaStream_t stream) {
  RollPlan p;
  if (!plan_roll(a.rank, a.shape, a.shifts, static_cast<int>(sizeof(T)), is_aligned16(a.input) && is_aligned16(a.output),
                 &p))
    return cudaErrorInvalidValue;
  if (p.total <= 0) return cudaSuccess;
  if (p.vector > 1)
    launch_roll_plan<uint4>(a, p, stream);
  else
    launch_roll_plan<T>(a, p, stream);
  return launch_status();
}

// NCHW → NHWC with the channel axis zero-padded to out_c (>= c): input [n, c, hw], output [n, hw, out_c].
// A block moves one [kNhwcTileC × kNhwcTileHw] tile through shared memory: reads are coalesced along hw, writes
// along the channels, 16 bytes per thread when out_c is a multiple of the vector width (8 fp16) and the output is
// 16-byte aligned. Channels c..out_c-1 are written as zeros (a C=3 image padded to 8 for the convolution kernels).
constexpr int kNhwcTileC = 32;
template <class T>
__device__ __forceinline__ void zero_bytes(T& v) {  // any T whose zero is all-zero bytes (floats, halves, ints)
  unsigned char* bytes = reinterpret_cast<unsigned char*>(&v);
#pragma unroll
  for (int k = 0; k < static_cast<int>(sizeof(T)); ++k) bytes[k] = 0;
}
constexpr int kNhwcTileHw = 128;
constexpr int kNhwcThreads = 256;

template <class T>
struct NchwToNhwcArgs {
  const T* input;  // [n, c, hw]
  T* output;       // [n, hw, out_c]
  int64_t n, hw;
  int32_t c, out_c;
};

template <class T, bool kVector>
__global__ void __launch_bounds__(kNhwcThreads) nchw_to_nhwc_kernel(NchwToNhwcArgs<T> a) {
  constexpr int kVec = 16 / sizeof(T);
  // +1 element per row staggers the banks for the column reads of the write phase
  __shared__ T tile[kNhwcTileC][kNhwcTileHw + 1];
  const int64_t hw_tiles = (a.hw + kNhwcTileHw - 1) / kNhwcTileHw;
  const int64_t image = blockIdx.y;
  const int64_t hw0 = (blockIdx.x % hw_tiles) * kNhwcTileHw;
  const int c0 = static_cast<int>(blockIdx.x / hw_tiles) * kNhwcTileC;
  const int tile_hw = static_cast<int>(a.hw - hw0 < kNhwcTileHw ? a.hw - hw0 : kNhwcTileHw);
  const int tile_c_in = max(0, min(kNhwcTileC, a.c - c0));       // real channels in this tile
  const int tile_c_out = min(kNhwcTileC, a.out_c - c0);            // channels written (real + zero padding)
  const T* in = a.input + (image * a.c + c0) * a.hw + hw0;
  // only the rows the write phase reads: real channels, then zeros up to a whole vector (3 → 8 rows, not 32)
  const int rows = min(kNhwcTileC, (tile_c_out + kVec - 1) / kVec * kVec);
  for (int i = threadIdx.x; i < rows * kNhwcTileHw; i += kNhwcThreads) {
    const int ci = i / kNhwcTileHw, j = i % kNhwcTileHw;
    T v;
    zero_bytes(v);
    if (ci < tile_c_in && j < tile_hw) v = in[static_cast<int64_t>(ci) * a.hw + j];
    tile[ci][j] = v;
  }
  __syncthreads();
  T* out = a.output + (image * a.hw + hw0) * a.out_c + c0;
  if (kVector) {
    const int vectors_per_row = (tile_c_out + kVec - 1) / kVec;  // out_c % kVec == 0, so rows are whole vectors
    for (int i = threadIdx.x; i < tile_hw * vectors_per_row; i += kNhwcThreads) {
      const int j = i / vectors_per_row, q = i % vectors_per_row;
      union {
        uint4 bits;
        T values[kVec];
      } pack;
#pragma unroll
      for (int k = 0; k < kVec; ++k) pack.values[k] = tile[q * kVec + k][j];
      *reinterpret_cast<uint4*>(out + static_cast<int64_t>(j) * a.out_c + q * kVec) = pack.bits;
    }
  } else {
    for (int i = threadIdx.x; i < tile_hw * tile_c_out; i += kNhwcThreads) {
      const int j = i / tile_c_out, ci = i % tile_c_out;
      out[static_cast<int64_t>(j) * a.out_c + ci] = tile[ci][j];
    }
  }
}

template <class T>
cudaError_t launch_nchw_to_nhwc(const NchwToNhwcArgs<T>& a, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  static_assert(kNhwcTileC % kVec == 0, "a tile holds whole vectors");
  if (a.out_c < a.c || a.c < 0 || a.n > 65535) return cudaErrorInvalidValue;
  if (a.n <= 0 || a.hw <= 0 || a.out_c <= 0) return cudaSuccess;
  const int64_t hw_tiles = (a.hw + kNhwcTileHw - 1) / kNhwcTileHw;
  const int64_t c_tiles = (a.out_c + kNhwcTileC - 1) / kNhwcTileC;
  if (hw_tiles * c_tiles > 0x7fffffffLL) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(hw_tiles * c_tiles), static_cast<unsigned>(a.n));
  const bool vector = a.out_c % kVec == 0 && reinterpret_cast<uintptr_t>(a.output) % 16 == 0;
  if (vector)
    nchw_to_nhwc_kernel<T, true><<<grid, kNhwcThreads, 0, stream>>>(a);
  else
    nchw_to_nhwc_kernel<T, false><<<grid, kNhwcThreads, 0, stream>>>(a);
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

// Range: out[i] = start + i * delta, i < count (the bounds are the run's dims, evaluated at launch). V is the math
// type (int64_t for integer outputs, float for float ones).
template <class T, class V>
struct RangeArgs {
  T* output;
  int64_t count;
  V start, delta;
};

template <class T, class V>
__global__ void range_kernel(RangeArgs<T, V> a) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a.output[i] = static_cast<T>(a.start + static_cast<V>(i) * a.delta);
}

template <class T, class V>
cudaError_t launch_range(const RangeArgs<T, V>& a, cudaStream_t stream) {
  if (a.count <= 0) return cudaSuccess;
  range_kernel<T, V><<<grid_for(a.count, 256), 256, 0, stream>>>(a);
  return launch_status();
}

// A few values computed on the host (shape arithmetic a kernel reads, e.g. numel == 0 feeding an If) written to a
// device buffer. By kernel argument, not a host-to-device copy, so a captured CUDA graph replays the values of the
// batch it was captured for (graphs are per batch) rather than reading a host address that is gone.
constexpr int kMaxSmallValues = 8;
template <class T>
struct SmallValues {
  T values[kMaxSmallValues];
  int count;
};

template <class T>
__global__ void write_values_kernel(T* output, SmallValues<T> v) {
  if (static_cast<int>(threadIdx.x) < v.count) output[threadIdx.x] = v.values[threadIdx.x];
}

template <class T>
cudaError_t launch_write_values(T* output, const SmallValues<T>& v, cudaStream_t stream) {
  if (v.count <= 0) return cudaSuccess;
  write_values_kernel<T><<<1, kMaxSmallValues, 0, stream>>>(output, v);
  return launch_status();
}

// GatherElements: output[idx] = input[idx with idx[axis] = indices[idx]]; output and indices share a shape (rank
// <= kMaxCopyRank), input_strides are the input's row-major strides. Negative indices count from the end; out of
// range ones are clamped.
template <class T, class Index>
struct GatherElementsArgs {
  const T* input;
  const Index* indices;
  T* output;
  int rank, axis;
  int64_t axis_size;
  int64_t shape[kMaxCopyRank];          // output (= indices) shape
  int64_t input_strides[kMaxCopyRank];  // input strides, elements
};

template <class T, class Index>
__global__ void gather_elements_kernel(GatherElementsArgs<T, Index> a, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t index = static_cast<int64_t>(a.indices[i]);
    if (index < 0) index += a.axis_size;
    index = index < 0 ? 0 : index >= a.axis_size ? a.axis_size - 1 : index;
    int64_t rest = i, offset = 0;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t q = rest / a.shape[d];
      offset += (d == a.axis ? index : rest - q * a.shape[d]) * a.input_strides[d];
      rest = q;
    }
    a.output[i] = a.input[offset];
  }
}

template <class T, class Index>
cudaError_t launch_gather_elements(const GatherElementsArgs<T, Index>& a, cudaStream_t stream) {
  int64_t total = 1;
  for (int d = 0; d < a.rank; ++d) total *= a.shape[d];
  if (total <= 0) return cudaSuccess;
  if (a.axis_size <= 0) return cudaErrorInvalidValue;
  gather_elements_kernel<T, Index><<<grid_for(total, 256), 256, 0, stream>>>(a, total);
  return launch_status();
}

// GatherND: input [batch, d_0 .. d_{k-1}, slice], indices [batch, tuples, k] (batch: the product of the first
// batch_dims axes), output [batch, tuples, slice]. Each index tuple picks a slice; negative entries count from the
// end, out of range ones are clamped.
template <class T, class Index>
struct GatherNDArgs {
  const T* input;
  const Index* indices;
  T* output;
  int64_t batch, tuples, slice;
  int k;
  int64_t dims[kMaxCopyRank];     // d_0 .. d_{k-1}
  int64_t strides[kMaxCopyRank];  // their strides in the input, elements
  int64_t batch_stride;           // input elements per batch
};

template <class T, class Index>
__global__ void gather_nd_kernel(GatherNDArgs<T, Index> a, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = i % a.slice, t = i / a.slice;  // t = batch * tuples + tuple
    const Index* tuple = a.indices + t * a.k;
    int64_t offset = (t / a.tuples) * a.batch_stride + s;
    for (int m = 0; m < a.k; ++m) {
      int64_t index = static_cast<int64_t>(tuple[m]);
      if (index < 0) index += a.dims[m];
      index = index < 0 ? 0 : index >= a.dims[m] ? a.dims[m] - 1 : index;
      offset += index * a.strides[m];
    }
    a.output[i] = a.input[offset];
  }
}

template <class T, class Index>
cudaError_t launch_gather_nd(const GatherNDArgs<T, Index>& a, cudaStream_t stream) {
  const int64_t total = a.batch * a.tuples * a.slice;
  if (total <= 0) return cudaSuccess;
  for (int m = 0; m < a.k; ++m)
    if (a.dims[m] <= 0) return cudaErrorInvalidValue;
  gather_nd_kernel<T, Index><<<grid_for(total, 256), 256, 0, stream>>>(a, total);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
