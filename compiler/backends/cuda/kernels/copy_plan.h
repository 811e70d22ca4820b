// Host-side plans of tensor_ops.cuh's copy kernels (strided copy, concat, roll): plain C++, no CUDA, so the tests build
// it with g++ and check the planned index mapping against the per-element formula on the CPU
// (test/backends/cuda/copy-plan.test.ts).
//
// Why: one element per thread with 64-bit div/mod on every axis (rank up to 6) made a Slice or Transpose of an fp16
// [8, 56, 56, 96] tensor ~25x slower than memory bandwidth on an H100. A plan
//   - coalesces axes: size-1 axes go, and neighbours whose input is contiguous across them merge, so a slice over
//     H/W of an NHWC tensor or Swin's window transpose becomes rank 2-4 with a contiguous innermost run;
//   - moves 16 bytes per thread when that run, every other stride, the offset and both pointers allow it;
//   - indexes in 32 bits (unsigned) when every index fits below 2^31, in 64 bits otherwise.
#pragma once

#include <stdint.h>

namespace ait {
namespace kernels {

constexpr int kMaxPlanRank = 6;
// Below this every index (and a grid-stride index plus one stride of at most 65535 * 32 * 256 threads) fits in an
// unsigned 32-bit integer.
constexpr int64_t kNarrowIndexLimit = int64_t(1) << 31;

// out[c0, .., cr] = in[offset + sum(c_d * strides[d])], in units of `vector` elements (1: elements).
struct StridedCopyPlan {
  int rank;  // >= 1 when total > 0
  int64_t shape[kMaxPlanRank];
  int64_t strides[kMaxPlanRank];
  int64_t offset;
  int64_t total;  // units copied (0: nothing to do)
  int vector;     // elements per unit: 16 / element_bytes on the vector path, else 1
  bool wide;      // 64-bit indices
};

// false: a rank outside [0, kMaxPlanRank] or a source index below 0. A size <= 0 is an empty copy (total 0).
// `aligned`: both pointers are 16-byte aligned.
inline bool plan_strided_copy(int rank, const int64_t* shape, const int64_t* strides, int64_t offset,
                              int element_bytes, bool aligned, StridedCopyPlan* p) {
  if (rank < 0 || rank > kMaxPlanRank) return false;
  p->rank = 0;
  p->offset = offset;
  p->total = 1;
  p->vector = 1;
  p->wide = false;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] <= 0) {
      p->total = 0;
      return true;
    }
    p->total *= shape[d];
  }
  // Coalesce, outermost first: a size-1 axis contributes nothing; axis d folds into the kept axis before it when
  // stepping that one is the same as stepping d through all its values (stride[prev] == stride[d] * shape[d]).
  for (int d = 0; d < rank; ++d) {
    if (shape[d] == 1) continue;
    const int last = p->rank - 1;
    if (last >= 0 && p->strides[last] == strides[d] * shape[d]) {
      p->shape[last] *= shape[d];
      p->strides[last] = strides[d];
    } else {
      p->shape[p->rank] = shape[d];
      p->strides[p->rank] = strides[d];
      ++p->rank;
    }
  }
  if (p->rank == 0) {  // one element
    p->rank = 1;
    p->shape[0] = 1;
    p->strides[0] = 1;
  }
  // 16-byte units: the innermost axis is a contiguous run whose length, like every other stride and the offset, is
  // a whole number of vectors, so each unit is 16 aligned bytes of the input and of the output.
  const int v = element_bytes > 0 && element_bytes < 16 && 16 % element_bytes == 0 ? 16 / element_bytes : 1;
  const int inner = p->rank - 1;
  bool vector = v > 1 && aligned && p->strides[inner] == 1 && p->shape[inner] % v == 0 && p->offset % v == 0;
  for (int d = 0; vector && d < inner; ++d) vector = p->strides[d] % v == 0;
  if (vector) {
    p->vector = v;
    p->shape[inner] /= v;
    for (int d = 0; d < inner; ++d) p->strides[d] /= v;
    p->offset /= v;
    p->total /= v;
  }
  // Index width: the unit count and the source range (negative strides lower the smallest index).
  int64_t low = p->offset, high = p->offset;
  for (int d = 0; d < p->rank; ++d) {
    const int64_t reach = (p->shape[d] - 1) * p->strides[d];
    (reach < 0 ? low : high) += reach;
  }
  if (low < 0) return false;
  p->wide = p->total >= kNarrowIndexLimit || high >= kNarrowIndexLimit;
  return true;
}

// A cyclic shift (torch.roll): out[c0, .., cr] = in[(c0 - shift0) mod shape0, .., (cr - shiftr) mod shaper], both
// row-major over `shape`, in units of `vector` elements. Every shift is in [0, shape[d]).
struct RollPlan {
  int rank;  // >= 1 when total > 0
  int64_t shape[kMaxPlanRank];
  int64_t shift[kMaxPlanRank];
  int64_t stride[kMaxPlanRank];  // row-major strides of shape (the input's and the output's)
  int64_t total;                 // units copied (0: nothing to do)
  int vector;
  bool wide;
};

// false: a rank outside [0, kMaxPlanRank]. A size <= 0 is an empty roll; shifts of any sign are taken mod the size.
// `aligned`: both pointers are 16-byte aligned.
inline bool plan_roll(int rank, const int64_t* shape, const int64_t* shifts, int element_bytes, bool aligned,
                      RollPlan* p) {
  if (rank < 0 || rank > kMaxPlanRank) return false;
  p->rank = 0;
  p->total = 1;
  p->vector = 1;
  p->wide = false;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] <= 0) {
      p->total = 0;
      return true;
    }
    p->total *= shape[d];
  }
  // Coalesce, outermost first: size-1 axes go (nothing to shift), and an unshifted axis folds into an unshifted
  // neighbour before it (together they are one contiguous run). Shifted axes stay: each needs its own wrap.
  for (int d = 0; d < rank; ++d) {
    if (shape[d] == 1) continue;
    const int64_t s = ((shifts[d] % shape[d]) + shape[d]) % shape[d];
    const int last = p->rank - 1;
    if (last >= 0 && s == 0 && p->shift[last] == 0) {
      p->shape[last] *= shape[d];
    } else {
      p->shape[p->rank] = shape[d];
      p->shift[p->rank] = s;
      ++p->rank;
    }
  }
  if (p->rank == 0) {  // one element
    p->rank = 1;
    p->shape[0] = 1;
    p->shift[0] = 0;
  }
  // 16-byte units: the innermost axis (an unshifted run, or a shifted axis) holds whole vectors and is shifted by
  // whole vectors, so each unit is 16 aligned bytes of a contiguous run of both tensors. Swin's roll over H, W of
  // NHWC [b, 56, 56, 96] fp16 is [b, 56, 56, 12] units.
  const int v = element_bytes > 0 && element_bytes < 16 && 16 % element_bytes == 0 ? 16 / element_bytes : 1;
  const int inner = p->rank - 1;
  if (v > 1 && aligned && p->shape[inner] % v == 0 && p->shift[inner] % v == 0) {
    p->vector = v;
    p->shape[inner] /= v;
    p->shift[inner] /= v;
    p->total /= v;
  }
  int64_t stride = 1;
  for (int d = p->rank - 1; d >= 0; --d) {
    p->stride[d] = stride;
    stride *= p->shape[d];
  }
  // every source index is below the unit count
  p->wide = p->total >= kNarrowIndexLimit;
  return true;
}

constexpr int kMaxPlanInputs = 8;

// Concatenation of rows: output[o, out_offset + r] for r in the row of inputs[0] | inputs[1] | ..., each input k
// [outer, sizes[k]], the output [outer, out_row]; units of `vector` elements.
struct ConcatPlan {
  int num_inputs;
  int64_t sizes[kMaxPlanInputs];
  int64_t outer, row, out_row, out_offset;
  int64_t total;  // outer * row
  int vector;
  bool wide;
};

// The kernel's [outer, axis_k, inner] view folded into rows of axis_k * inner (`inner` is contiguous, so the pair
// is one run per input and row). `output_axis` 0: the sum of the axis sizes. false: inputs or sizes out of range.
inline bool plan_concat(int num_inputs, const int64_t* axis_sizes, int64_t outer, int64_t inner, int64_t output_axis,
                        int64_t output_axis_offset, int element_bytes, bool aligned, ConcatPlan* p) {
  if (num_inputs < 1 || num_inputs > kMaxPlanInputs || outer < 0 || inner < 0) return false;
  int64_t total_axis = 0;
  for (int k = 0; k < num_inputs; ++k) {
    if (axis_sizes[k] < 0) return false;
    total_axis += axis_sizes[k];
  }
  if (output_axis < 0 || output_axis_offset < 0 || (output_axis > 0 && output_axis_offset + total_axis > output_axis))
    return false;
  p->num_inputs = num_inputs;
  for (int k = 0; k < num_inputs; ++k) p->sizes[k] = axis_sizes[k] * inner;
  p->outer = outer;
  p->row = total_axis * inner;
  p->out_row = (output_axis > 0 ? output_axis : total_axis) * inner;
  p->out_offset = output_axis_offset * inner;
  p->total = outer * p->row;
  p->vector = 1;
  // 16-byte units when every run (each input's row, the output's row and where this launch starts on it) is whole
  // vectors: NHWC channel concats of multiples of 8 fp16 channels, any concat over an outer axis of such a tensor.
  const int v = element_bytes > 0 && element_bytes < 16 && 16 % element_bytes == 0 ? 16 / element_bytes : 1;
  bool vector = v > 1 && aligned && p->out_row % v == 0 && p->out_offset % v == 0;
  for (int k = 0; vector && k < num_inputs; ++k) vector = p->sizes[k] % v == 0;
  if (vector) {
    p->vector = v;
    for (int k = 0; k < num_inputs; ++k) p->sizes[k] /= v;
    p->row /= v;
    p->out_row /= v;
    p->out_offset /= v;
    p->total /= v;
  }
  // The output's extent bounds every index (each input is smaller than its slab of the output).
  p->wide = p->total >= kNarrowIndexLimit || p->outer * p->out_row >= kNarrowIndexLimit;
  return true;
}

}  // namespace kernels
}  // namespace ait
