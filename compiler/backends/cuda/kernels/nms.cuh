// NonMaxSuppression (ONNX opsets 10/11): boxes [B, N, 4], scores [B, C, N] -> selected_indices [num_selected, 3]
// int64 (batch, class, box), per batch, per class, by descending score (ties: lower box index first). num_selected is
// decided by the data: the launch function runs the selection, reads the total back to the host (a run-time dim of
// the model, ait_model.h), then the write phase fills exactly that many rows. Per segment s = (batch, class):
//   1. sort: the candidates (score > score_threshold; every non-NaN score without one) as 64-bit keys
//      (descending score, then ascending box index; others and padding get the largest key, so they sort last),
//      bitonic-sorted over the next power of two P ≥ N: chunks of kNmsSortChunk keys in shared memory, longer strides
//      in global memory (one launch per stride), each merge finished in shared memory. Counts the candidates, n.
//   2. mask: bit j of mask[i][j / 64] says sorted box i suppresses sorted box j > i (IoU > iou_threshold), one thread
//      per (row, 64-column word), the columns' boxes in shared memory (torchvision's CUDA nms). Computed in blocks of
//      R rows (rows [r0, r0 + R) against every column), each block swept before the next is computed, so the mask
//      takes R·ceil(N/64) words per segment, not N·ceil(N/64). R = N (one block) when N ≤ kNmsBlockRowsMax and the
//      whole mask fits `mask_capacity`; else the most rows, a multiple of 64, that fit (at most kNmsBlockRowsMax).
//   3. sweep: one CTA walks a block's sorted boxes in order, keeping those no kept box removed, OR-ing a kept box's
//      mask row into the removed-mask, and stops at max_output_boxes_per_class. The removed-mask words of the
//      block's own rows (at most kNmsBlockRowsMax / 64) live in shared memory, read and written at every step; the
//      words right of the block (rows of later blocks) live in global memory, only OR-ed here, each by the one thread
//      that owns it, and loaded into shared memory by the block that sweeps them. One path serves every N: with one
//      block there are no words right of it, so the usual case (N ≤ 32768) touches no global removed-mask.
//      The kept count carries from block to block in global memory.
//   4. scan of the per-segment counts (exclusive offsets, the total after them), then the write of the rows.
// The host launches the mask and sweep kernels for every block of the run's N (it does not know n); a kernel reads
// n (and the kept count) first and returns at once for blocks at or past n, or past the per-class limit, so a few
// hundred candidates out of 90000 boxes cost a handful of empty launches.
// No atomics decide an order, so every run gives the same output. The IoU is the reference's (ops/detection.ts), in
// fp32 with every operation rounded on its own (no FMA contraction): corners as min/max of the given coordinates (or
// from center format), intersection over union, 0 when the union is not positive; iou > threshold suppresses.
// Limits: B·C ≤ 65535 (a grid dimension), N ≤ kNmsMaxBoxes (so one 64-row block fits the budget). Memory: masks
// ≤ kNmsMaskBudgetWords words (128 MB; segments run in passes of as many whole masks as fit, one segment at a time
// when blocked), sort keys S·P·8 bytes, selected indices S·N·4, global removed-masks S·ceil(N/64)·8, O(S) counts.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

constexpr int kNmsSortChunk = 2048;  // keys bitonic-sorted in shared memory by one CTA (16 KB)
constexpr int kNmsSortThreads = 512;
constexpr int64_t kNmsMaxBoxes = int64_t(1) << 24;  // boxes per batch (N): a 64-row mask block fits the budget
constexpr int kNmsBlockRowsMax = 32768;  // rows of a mask block: the block's removed-mask words in shared memory (4 KB)
constexpr int kNmsSweepThreads = 256;
constexpr int kNmsWriteThreads = 256;
constexpr int64_t kNmsMaskCtas = 2048;  // mask CTAs per segment at most (they stride over the (row, word) pairs)
constexpr int64_t kNmsMaskBudgetWords = int64_t(1) << 24;  // 128 MB of masks per pass (at least one segment's)

template <class T>
struct NmsArgs {
  const T* boxes;   // [batches, boxes, 4]
  const T* scores;  // [batches, classes, boxes]
  int64_t batches, classes, boxes_count;
  bool center_point_box;
  // thresholds and the per-class limit: a value, or (pointer not null) a one-element device tensor read by the kernels
  float iou_threshold;
  float score_threshold;
  bool has_score_threshold;
  int64_t max_per_class;
  const T* iou_threshold_device;
  const T* score_threshold_device;
  const int64_t* max_per_class_device;
  void* workspace;         // nms_workspace_bytes(batches * classes, boxes_count, mask_capacity)
  int64_t mask_capacity;   // uint64 words for suppression masks (nms_mask_capacity at the dims' bounds)
  int64_t* output;         // [num_selected, 3]
  int64_t block_rows = 0;  // > 0: mask blocks of at most this many rows (rounded up to 64; tests force small blocks)
};

// Power of two ≥ n (at least 1): the bitonic sort's length.
__host__ __device__ inline int64_t nms_sort_length(int64_t n) {
  int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

__host__ __device__ inline int64_t nms_words(int64_t boxes) { return ceil_div(boxes, 64); }

// Mask words for `segments` segments of `boxes` boxes: every segment's whole mask when they fit the budget, else the
// budget (whole masks of as many segments as fit, or blocks of rows of one). Computed at the dims' bounds; a run
// with fewer boxes needs no more (its blocks are at least as tall).
__host__ __device__ inline int64_t nms_mask_capacity(int64_t segments, int64_t boxes) {
  const int64_t all = segments * boxes * nms_words(boxes);
  const int64_t least = 64 * nms_words(boxes);  // one 64-row block (≤ the budget for N ≤ kNmsMaxBoxes)
  return all <= kNmsMaskBudgetWords ? all : (least > kNmsMaskBudgetWords ? least : kNmsMaskBudgetWords);
}

// Rows R of a mask block: N when the whole mask of a segment fits (and N ≤ kNmsBlockRowsMax), else the most rows, a
// multiple of 64 (so blocks start at a word boundary), that fit `mask_capacity`; `forced` > 0 lowers it (rounded up
// to 64). 0: not even 64 rows fit (the workspace was sized for fewer boxes).
__host__ __device__ inline int64_t nms_block_rows(int64_t boxes, int64_t mask_capacity, int64_t forced) {
  const int64_t words = nms_words(boxes);
  int64_t rows = boxes;
  if (boxes > kNmsBlockRowsMax || boxes * words > mask_capacity) {
    rows = mask_capacity / words / 64 * 64;
    if (rows > kNmsBlockRowsMax) rows = kNmsBlockRowsMax;
  }
  const int64_t f = ceil_div(forced, 64) * 64;
  if (forced > 0 && f < rows) rows = f;
  return rows;
}

__host__ __device__ inline int64_t nms_align(int64_t bytes) { return (bytes + 255) / 256 * 256; }

// Workspace pieces (byte offsets), in order: sort keys [S, P], selected box indices [S, N] int32, removed-masks
// [S, ceil(N/64)] (the words right of a block), candidate counts [S], kept counts [S], offsets [S + 1] (the total
// last), masks (mask_capacity words). Each grows with S and N, so the bytes at the dims' bounds serve every run.
// codegen/nms-lowering.ts mirrors nms_workspace_bytes.
struct NmsLayout {
  int64_t keys, selected, removed, candidates, kept, offsets, mask, end;
};
__host__ __device__ inline NmsLayout nms_layout(int64_t segments, int64_t boxes, int64_t mask_capacity) {
  NmsLayout l;
  l.keys = 0;
  l.selected = nms_align(l.keys + segments * nms_sort_length(boxes) * 8);
  l.removed = nms_align(l.selected + segments * boxes * 4);
  l.candidates = nms_align(l.removed + segments * nms_words(boxes) * 8);
  l.kept = nms_align(l.candidates + segments * 8);
  l.offsets = nms_align(l.kept + segments * 8);
  l.mask = nms_align(l.offsets + (segments + 1) * 8);
  l.end = nms_align(l.mask + mask_capacity * 8);
  return l;
}
__host__ __device__ inline int64_t nms_workspace_bytes(int64_t segments, int64_t boxes, int64_t mask_capacity) {
  return nms_layout(segments, boxes, mask_capacity).end;
}

template <class T, class U>
__host__ __device__ inline U* nms_at(const NmsArgs<T>& a, int64_t offset) {
  return reinterpret_cast<U*>(static_cast<char*>(a.workspace) + offset);
}

template <class T>
__host__ __device__ inline NmsLayout nms_layout(const NmsArgs<T>& a) {
  return nms_layout(a.batches * a.classes, a.boxes_count, a.mask_capacity);
}

// Keys: ascending key order = descending score, then ascending index. -0 counts as +0 (the reference's comparison).
__device__ __forceinline__ uint64_t nms_key(float score, int64_t index) {
  if (score == 0.f) score = 0.f;
  const uint32_t bits = __float_as_uint(score);
  const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<uint64_t>(~ascending) << 32) | static_cast<uint32_t>(index);
}
constexpr uint64_t kNmsNoKey = ~uint64_t(0);

__device__ __forceinline__ void nms_compare_exchange(uint64_t& x, uint64_t& y, bool ascending) {
  if ((x > y) == ascending) {
    const uint64_t t = x;
    x = y;
    y = t;
  }
}

// Bitonic stages k in [k_lo, k_hi] (powers of two) on one chunk of a segment's keys in shared memory, strides j from
// min(k, chunk) / 2 down to 1 (the longer strides ran in global memory). With `build`, the keys are made from the
// scores first and the candidates counted.
template <class T>
__global__ void __launch_bounds__(kNmsSortThreads) nms_sort_local_kernel(NmsArgs<T> a, int64_t k_lo, int64_t k_hi, bool build) {
  __shared__ uint64_t keys[kNmsSortChunk];
  __shared__ int count;
  const int64_t s = blockIdx.y;
  const int64_t n = a.boxes_count;
  const int64_t length = nms_sort_length(n);
  const int chunk = static_cast<int>(length < kNmsSortChunk ? length : kNmsSortChunk);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * chunk;
  const NmsLayout l = nms_layout(a);
  uint64_t* global = nms_at<T, uint64_t>(a, l.keys) + s * length;
  if (build) {
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    const T* scores = a.scores + s * n;
    const bool has = a.has_score_threshold || a.score_threshold_device;
    const float threshold = a.score_threshold_device ? to_float(*a.score_threshold_device) : a.score_threshold;
    int mine = 0;
    for (int i = threadIdx.x; i < chunk; i += blockDim.x) {
      const int64_t index = first + i;
      uint64_t key = kNmsNoKey;
      if (index < n) {
        const float score = to_float(scores[index]);
        if (has ? score > threshold : score == score) {
          key = nms_key(score, index);
          ++mine;
        }
      }
      keys[i] = key;
    }
    if (mine) atomicAdd(&count, mine);
    __syncthreads();
    if (threadIdx.x == 0 && count) atomicAdd(reinterpret_cast<unsigned long long*>(nms_at<T, int64_t>(a, l.candidates) + s),
                                             static_cast<unsigned long long>(count));
  } else {
    for (int i = threadIdx.x; i < chunk; i += blockDim.x) keys[i] = global[first + i];
  }
  __syncthreads();
  for (int64_t k = k_lo; k <= k_hi; k <<= 1) {
    for (int j = static_cast<int>((k < chunk ? k : chunk) >> 1); j > 0; j >>= 1) {
      for (int p = threadIdx.x; p < chunk / 2; p += blockDim.x) {
        const int i = 2 * j * (p / j) + p % j;  // bit j of i is clear; its partner is i + j
        nms_compare_exchange(keys[i], keys[i + j], ((first + i) & k) == 0);
      }
      __syncthreads();
    }
  }
  for (int i = threadIdx.x; i < chunk; i += blockDim.x) global[first + i] = keys[i];
}

// One bitonic step (stage k, stride j ≥ the chunk) over a segment's keys in global memory.
template <class T>
__global__ void nms_sort_global_kernel(NmsArgs<T> a, int64_t k, int64_t j) {
  const int64_t length = nms_sort_length(a.boxes_count);
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= length / 2) return;
  uint64_t* keys = nms_at<T, uint64_t>(a, nms_layout(a).keys) + static_cast<int64_t>(blockIdx.y) * length;
  const int64_t i = 2 * j * (p / j) + p % j;
  uint64_t x = keys[i], y = keys[i + j];
  nms_compare_exchange(x, y, (i & k) == 0);
  keys[i] = x;
  keys[i + j] = y;
}

// Corners (y1, x1, y2, x2) with y1 ≤ y2 and x1 ≤ x2 as the reference makes them.
template <class T>
__device__ __forceinline__ float4 nms_corners(const NmsArgs<T>& a, int64_t batch, int64_t index) {
  const T* p = a.boxes + (batch * a.boxes_count + index) * 4;
  const float v0 = to_float(p[0]), v1 = to_float(p[1]), v2 = to_float(p[2]), v3 = to_float(p[3]);
  if (a.center_point_box) {  // [x_center, y_center, width, height]
    const float half_w = v2 / 2.f, half_h = v3 / 2.f;
    return make_float4(__fsub_rn(v1, half_h), __fsub_rn(v0, half_w), __fadd_rn(v1, half_h), __fadd_rn(v0, half_w));
  }
  return make_float4(fminf(v0, v2), fminf(v1, v3), fmaxf(v0, v2), fmaxf(v1, v3));
}

// Whether IoU(a, b) > threshold, each operation rounded on its own (as the reference, in fp32).
// (HIP's __f*_rn are plain operators, which hipcc contracts by default: the pragma keeps them apart.)
__device__ __forceinline__ bool nms_suppresses(float4 a, float4 b, float threshold) {
#if defined(__HIP_PLATFORM_AMD__)
#pragma clang fp contract(off)
#endif
  const float h = fmaxf(0.f, __fsub_rn(fminf(a.z, b.z), fmaxf(a.x, b.x)));
  const float w = fmaxf(0.f, __fsub_rn(fminf(a.w, b.w), fmaxf(a.y, b.y)));
  const float inter = __fmul_rn(h, w);
  const float area_a = __fmul_rn(__fsub_rn(a.z, a.x), __fsub_rn(a.w, a.y));
  const float area_b = __fmul_rn(__fsub_rn(b.z, b.x), __fsub_rn(b.w, b.y));
  const float uni = __fsub_rn(__fadd_rn(area_a, area_b), inter);
  const float iou = uni > 0.f ? __fdiv_rn(inter, uni) : 0.f;
  return iou > threshold;
}

// The per-class limit, at most n.
template <class T>
__device__ __forceinline__ int64_t nms_limit(const NmsArgs<T>& a, int64_t n) {
  const int64_t limit = a.max_per_class_device ? *a.max_per_class_device : a.max_per_class;
  return limit < n ? limit : n;
}

// Rows [r0, r0 + rows) of the suppression mask of segments [first_segment, first_segment + gridDim.y): a CTA per
// (64 rows, 64-column word) of the segment's candidates (n read on the device: the grid is sized at the bound, CTAs
// stride over the words the data needs, so segments with few candidates cost little); only words at or right of the
// rows' own are computed (the sweep reads no others). Nothing for a block at or past n, or once the sweep of the
// blocks before it reached the limit.
template <class T>
__global__ void __launch_bounds__(64) nms_mask_kernel(NmsArgs<T> a, int64_t first_segment, int64_t r0, int64_t rows) {
  __shared__ float4 columns[64];
  const int64_t s = first_segment + blockIdx.y;
  const NmsLayout l = nms_layout(a);
  const int64_t n = nms_at<T, int64_t>(a, l.candidates)[s];
  if (r0 >= n) return;
  if (r0 > 0 && nms_at<T, int64_t>(a, l.kept)[s] >= nms_limit(a, n)) return;
  const int64_t end = r0 + rows < n ? r0 + rows : n;
  const int64_t first_word = r0 / 64, row_words = nms_words(end) - first_word;
  const int64_t column_words = nms_words(n) - first_word, words = nms_words(a.boxes_count);
  const int64_t batch = s / a.classes;
  const uint64_t* keys = nms_at<T, uint64_t>(a, l.keys) + s * nms_sort_length(a.boxes_count);
  uint64_t* mask = nms_at<T, uint64_t>(a, l.mask) + static_cast<int64_t>(blockIdx.y) * rows * words;
  const float threshold = a.iou_threshold_device ? to_float(*a.iou_threshold_device) : a.iou_threshold;
  for (int64_t pair = blockIdx.x; pair < row_words * column_words; pair += gridDim.x) {
    const int64_t row_word = first_word + pair / column_words, column_word = first_word + pair % column_words;
    if (column_word < row_word) continue;  // uniform in the CTA
    const int64_t column = column_word * 64 + threadIdx.x;
    __syncthreads();  // the previous pair's columns are read
    if (column < n) columns[threadIdx.x] = nms_corners(a, batch, static_cast<uint32_t>(keys[column]));
    __syncthreads();
    const int64_t row = row_word * 64 + threadIdx.x;
    if (row >= end) continue;
    const float4 box = nms_corners(a, batch, static_cast<uint32_t>(keys[row]));
    const int columns_here = static_cast<int>(n - column_word * 64 < 64 ? n - column_word * 64 : 64);
    uint64_t bits = 0;
    for (int t = row_word == column_word ? threadIdx.x + 1 : 0; t < columns_here; ++t)
      if (nms_suppresses(box, columns[t], threshold)) bits |= uint64_t(1) << t;
    mask[(row - r0) * words + column_word] = bits;
  }
}

// Greedy selection over rows [r0, r0 + rows) of one segment per CTA, in sorted order, after the blocks before it.
// Every thread walks the same boxes (the current mask word in a register, identical in all threads); thread t owns
// the block's removed-mask words t, t + blockDim, … past the current one (shared memory), so only the step to the
// next word needs a barrier, and the words right of the block end_word + t, end_word + t + blockDim, … (global
// memory: the first block zeroes them, each block ORs into them, always by the thread that owns them, so no atomics;
// the block that sweeps those rows loads them into shared memory in a later launch).
template <class T>
__global__ void __launch_bounds__(kNmsSweepThreads) nms_sweep_kernel(NmsArgs<T> a, int64_t first_segment, int64_t r0, int64_t rows) {
  __shared__ uint64_t here[kNmsBlockRowsMax / 64];
  const int64_t s = first_segment + blockIdx.x;
  const NmsLayout l = nms_layout(a);
  const int64_t n = nms_at<T, int64_t>(a, l.candidates)[s];
  const int64_t limit = nms_limit(a, n);
  int64_t* kept_count = nms_at<T, int64_t>(a, l.kept) + s;
  int64_t kept = r0 == 0 ? 0 : *kept_count;
  if (r0 >= n || kept >= limit) {  // uniform: nothing in this block (the first still records its count)
    if (r0 == 0 && threadIdx.x == 0) *kept_count = 0;
    return;
  }
  const int64_t end = r0 + rows < n ? r0 + rows : n;
  const int64_t words = nms_words(a.boxes_count), used_words = nms_words(n);
  const int64_t first_word = r0 / 64, end_word = nms_words(end);
  const uint64_t* keys = nms_at<T, uint64_t>(a, l.keys) + s * nms_sort_length(a.boxes_count);
  const uint64_t* mask = nms_at<T, uint64_t>(a, l.mask) + static_cast<int64_t>(blockIdx.x) * rows * words;
  uint64_t* after = nms_at<T, uint64_t>(a, l.removed) + s * words;  // words [end_word, used_words) matter here
  int32_t* selected = nms_at<T, int32_t>(a, l.selected) + s * a.boxes_count;
  for (int64_t w = first_word + threadIdx.x; w < end_word; w += blockDim.x) here[w - first_word] = r0 == 0 ? 0 : after[w];
  if (r0 == 0)
    for (int64_t w = end_word + threadIdx.x; w < used_words; w += blockDim.x) after[w] = 0;
  __syncthreads();
  for (int64_t word = first_word; word < end_word && kept < limit; ++word) {
    uint64_t current = here[word - first_word];
    const int bits = static_cast<int>(end - word * 64 < 64 ? end - word * 64 : 64);
    for (int bit = 0; bit < bits; ++bit) {
      if ((current >> bit) & 1) continue;
      const int64_t i = word * 64 + bit;
      if (threadIdx.x == 0) selected[kept] = static_cast<int32_t>(static_cast<uint32_t>(keys[i]));
      if (++kept >= limit) break;
      const uint64_t* row = mask + (i - r0) * words;
      current |= row[word];
      for (int64_t w = word + 1 + threadIdx.x; w < end_word; w += blockDim.x) here[w - first_word] |= row[w];
      for (int64_t w = end_word + threadIdx.x; w < used_words; w += blockDim.x) after[w] |= row[w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *kept_count = kept;
}

// One thread: exclusive offsets of the per-segment counts, the total after them (segments are few: B·C).
template <class T>
__global__ void nms_scan_kernel(NmsArgs<T> a) {
  const NmsLayout l = nms_layout(a);
  const int64_t* kept = nms_at<T, int64_t>(a, l.kept);
  int64_t* offsets = nms_at<T, int64_t>(a, l.offsets);
  const int64_t segments = a.batches * a.classes;
  int64_t total = 0;
  for (int64_t s = 0; s < segments; ++s) {
    offsets[s] = total;
    total += kept[s];
  }
  offsets[segments] = total;
}

template <class T>
__global__ void __launch_bounds__(kNmsWriteThreads) nms_write_kernel(NmsArgs<T> a) {
  const int64_t s = blockIdx.x;
  const NmsLayout l = nms_layout(a);
  const int64_t kept = nms_at<T, int64_t>(a, l.kept)[s];
  const int64_t offset = nms_at<T, int64_t>(a, l.offsets)[s];
  const int32_t* selected = nms_at<T, int32_t>(a, l.selected) + s * a.boxes_count;
  for (int64_t k = threadIdx.x; k < kept; k += blockDim.x) {
    int64_t* row = a.output + (offset + k) * 3;
    row[0] = s / a.classes;
    row[1] = s % a.classes;
    row[2] = selected[k];
  }
}

// Phase 1 (sort, mask, sweep, scan): afterwards *nms_total(a) holds num_selected.
template <class T>
cudaError_t launch_nms_select(const NmsArgs<T>& a, cudaStream_t stream) {
  const int64_t segments = a.batches * a.classes;
  const int64_t n = a.boxes_count;
  const NmsLayout l = nms_layout(a);
  char* base = static_cast<char*>(a.workspace);
  if (segments <= 0 || n <= 0) {
    if (segments < 0) return cudaSuccess;
    return cudaMemsetAsync(base + l.offsets, 0, (segments + 1) * 8, stream);
  }
  if (n > kNmsMaxBoxes || segments > 65535) return cudaErrorInvalidValue;
  const int64_t rows = nms_block_rows(n, a.mask_capacity, a.block_rows);
  if (rows < 1) return cudaErrorInvalidValue;  // the workspace was sized for fewer boxes
  cudaError_t e = cudaMemsetAsync(base + l.candidates, 0, segments * 8, stream);
  if (e != cudaSuccess) return e;
  const int64_t length = nms_sort_length(n);
  const int64_t chunk = length < kNmsSortChunk ? length : kNmsSortChunk;
  const dim3 local_grid(static_cast<unsigned>(length / chunk), static_cast<unsigned>(segments));
  nms_sort_local_kernel<T><<<local_grid, kNmsSortThreads, 0, stream>>>(a, 2, chunk, true);
  for (int64_t k = 2 * chunk; k <= length; k <<= 1) {
    for (int64_t j = k / 2; j >= chunk; j >>= 1) {
      const dim3 grid(static_cast<unsigned>(ceil_div(length / 2, 256)), static_cast<unsigned>(segments));
      nms_sort_global_kernel<T><<<grid, 256, 0, stream>>>(a, k, j);
    }
    nms_sort_local_kernel<T><<<local_grid, kNmsSortThreads, 0, stream>>>(a, k, k, false);
  }
  const int64_t words = nms_words(n);
  int64_t per_pass = rows < n ? 1 : a.mask_capacity / (rows * words);
  if (per_pass > 65535) per_pass = 65535;
  const int64_t pairs = nms_words(rows) * words < kNmsMaskCtas ? nms_words(rows) * words : kNmsMaskCtas;
  for (int64_t first = 0; first < segments; first += per_pass) {
    const int64_t count = segments - first < per_pass ? segments - first : per_pass;
    for (int64_t r0 = 0; r0 < n; r0 += rows) {  // blocks at or past a segment's n return at once
      nms_mask_kernel<T><<<dim3(static_cast<unsigned>(pairs), static_cast<unsigned>(count)), 64, 0, stream>>>(a, first, r0, rows);
      nms_sweep_kernel<T><<<static_cast<unsigned>(count), kNmsSweepThreads, 0, stream>>>(a, first, r0, rows);
    }
  }
  nms_scan_kernel<T><<<1, 1, 0, stream>>>(a);
  return launch_status();
}

// Where phase 1 leaves num_selected.
template <class T>
const int64_t* nms_total(const NmsArgs<T>& a) {
  const NmsLayout l = nms_layout(a);
  return nms_at<T, int64_t>(a, l.offsets) + a.batches * a.classes;
}

// Phase 2: the rows, once the host knows num_selected (the output has exactly that many rows).
template <class T>
cudaError_t launch_nms_write(const NmsArgs<T>& a, int64_t selected, cudaStream_t stream) {
  const int64_t segments = a.batches * a.classes;
  if (selected <= 0 || segments <= 0 || a.boxes_count <= 0) return cudaSuccess;
  nms_write_kernel<T><<<static_cast<unsigned>(segments), kNmsWriteThreads, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
