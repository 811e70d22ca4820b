// TopK (ONNX TopK, opsets 1, 10, 11) of a tensor viewed as [outer, n, inner] along n: for each of the outer × inner
// rows, the k largest (or smallest) elements sorted, and their indices on the axis (int64). T: __half,
// __nv_bfloat16, float, int32_t, int64_t; values are copied bit for bit.
//
// Order. Each element gets an unsigned key of T's width whose ascending order is the output order: float bits
// mapped to a monotone integer (sign flipped, negatives inverted; -0 and +0 one key; every NaN the largest value,
// as in PyTorch), integers with the sign bit flipped, and all bits inverted for largest=1. Ties keep the lower index
// first (ONNX). (key, index) is a total order, so the result is unique and every path below gives the same bits.
//
// Paths (launch_topk picks one):
//  - n ≤ topk_sort_max<T>() (4096; 2048 for int64): one block per row reads the whole row into shared memory and
//    bitonic-sorts it (tiles of 64, 256, 1024 or the maximum, the smallest that holds n).
//  - Larger n: radix select, then a sort of the k winners. Select: 8-bit digits of the key, most significant first;
//    each pass counts the digit among the keys that share the digits chosen so far and picks the digit holding the
//    k-th smallest key. After sizeof(key) passes that key K is known exactly, with `less` = #keys < K, and the
//    winners are every key < K plus the first k - less elements (by index) whose key is K. They are compacted into
//    k slots: keys below K at atomically claimed slots (the sort orders them), the ties at their rank in index order.
//      * Rows that fill the GPU (or a row too short to split): one block per row does every pass in shared memory,
//        and when k fits a sort tile the winners go straight to shared memory and are sorted there: one launch.
//      * Few rows of a large n: each row is split into slices of at least kTopKMinSlice elements over up to
//        2 blocks per SM; one launch per pass adds the slices' histograms in global memory (the next launch replays
//        the digit choices from them); the last pass also keeps each slice's own histogram, so that the compaction
//        knows how many ties of K lie in the slices before its own. Then a sort launch.
//  - Sorting the k winners: bitonic in shared memory when k ≤ topk_sort_max<T>(); otherwise chunks of that size are
//    sorted in shared memory, then merged pairwise in global memory until one run remains (an element's place is its
//    rank in its run plus the count of the partner run's elements before it, by binary search: (key, index) pairs
//    are distinct), the last merge writing the outputs.
// Histograms count per warp: lanes with the same digit (found with a ballot per digit bit) add once, so keys that
// crowd into a few bins (scores in [0, 1]) cause no shared-memory atomic conflicts. Loops holding warp operations
// step over block-wide tiles, so every warp of a block runs them equally often.
// Cost: the select reads a row sizeof(key) + 1 times (fp16: 3). One block per row is one launch, but a lone row of
// n < 2 · kTopKMinSlice keeps one SM busy; the split path takes sizeof(key) + 3 launches (memset, passes, compaction,
// sort) and spreads the reads over up to 2 blocks per SM.
// The workspace (topk_workspace_bytes) is needed only when n > topk_sort_max<T>(): winners of every row (twice when
// k > topk_sort_max<T>(), for the merges) and the split path's histograms.
// inner > 1 (an axis other than the last) reads and writes with a stride of `inner`: correct, not coalesced.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct TopKArgs {
  const T* input;    // [outer, n, inner]
  T* values;         // [outer, k, inner]; nullptr when the model does not read it
  int64_t* indices;  // [outer, k, inner]; nullptr when the model does not read it
  int64_t outer, n, inner, k;
  bool largest;
};

// The key of T: an unsigned integer of T's width. kInf: the magnitude bits of +inf (floats; larger is a NaN).
template <class T>
struct TopKTraits;
template <>
struct TopKTraits<__half> {
  using Key = uint16_t;
  static constexpr bool kFloat = true;
  static constexpr Key kInf = 0x7c00u;
};
template <>
struct TopKTraits<__nv_bfloat16> {
  using Key = uint16_t;
  static constexpr bool kFloat = true;
  static constexpr Key kInf = 0x7f80u;
};
template <>
struct TopKTraits<float> {
  using Key = uint32_t;
  static constexpr bool kFloat = true;
  static constexpr Key kInf = 0x7f800000u;
};
template <>
struct TopKTraits<int32_t> {
  using Key = uint32_t;
  static constexpr bool kFloat = false;
  static constexpr Key kInf = 0;
};
template <>
struct TopKTraits<int64_t> {
  using Key = uint64_t;
  static constexpr bool kFloat = false;
  static constexpr Key kInf = 0;
};

constexpr int kTopKRadixBits = 8;
constexpr int kTopKBins = 1 << kTopKRadixBits;
constexpr int kTopKSelectThreads = 512;  // select blocks (at least kTopKBins: one thread per bin when choosing)
constexpr int kTopKSelectWarps = kTopKSelectThreads / kWarpSize;
constexpr int kTopKMergeThreads = 256;
constexpr int64_t kTopKMaxCtas = 512;     // the split path aims at 2 blocks per SM, at most this many
constexpr int64_t kTopKMaxSplits = 64;    // slices of one row
constexpr int64_t kTopKMinSlice = 16384;  // elements of a slice, at least (shorter rows: one block per row)

// Rows of at most this many elements are sorted whole; winners of at most this many are sorted in one tile.
template <class T>
constexpr int topk_sort_max() {
  return sizeof(typename TopKTraits<T>::Key) == 8 ? 2048 : 4096;
}
// Threads of a sort block for a tile: one compare-exchange per thread per step, at most 512.
constexpr int topk_sort_threads(int tile) { return tile / 2 < 512 ? tile / 2 : 512; }

template <class T>
__host__ __device__ __forceinline__ typename TopKTraits<T>::Key topk_key(typename TopKTraits<T>::Key bits, bool largest) {
  using Key = typename TopKTraits<T>::Key;
  constexpr Key kSign = static_cast<Key>(Key(1) << (sizeof(Key) * 8 - 1));
  Key ordered;
  if (TopKTraits<T>::kFloat) {
    const Key magnitude = static_cast<Key>(bits & static_cast<Key>(~kSign));
    if (magnitude > TopKTraits<T>::kInf)
      ordered = static_cast<Key>(~Key(0));  // a NaN, any sign or payload: above +inf
    else if (magnitude == 0)
      ordered = kSign;  // -0 == +0
    else
      ordered = (bits & kSign) ? static_cast<Key>(~bits) : static_cast<Key>(bits | kSign);
  } else {
    ordered = static_cast<Key>(bits ^ kSign);
  }
  return largest ? static_cast<Key>(~ordered) : ordered;
}

// Where row `row` (o * inner + q) starts: input element i at in + i * inner, output position j at out + j * inner.
struct TopKRow {
  int64_t in, out;
};
template <class T>
__device__ __forceinline__ TopKRow topk_row(const TopKArgs<T>& a, int64_t row) {
  const int64_t o = row / a.inner, q = row - o * a.inner;
  return {o * a.n * a.inner + q, o * a.k * a.inner + q};
}

// Writes output position `position` of a row: the input element `index` (its bits) and the index.
template <class T>
__device__ __forceinline__ void topk_emit(const TopKArgs<T>& a, const TopKRow& r, int64_t position, uint32_t index) {
  using Key = typename TopKTraits<T>::Key;
  const int64_t at = r.out + position * a.inner;
  if (a.values)
    reinterpret_cast<Key*>(a.values)[at] = reinterpret_cast<const Key*>(a.input)[r.in + static_cast<int64_t>(index) * a.inner];
  if (a.indices) a.indices[at] = index;
}

// Warp primitives over whole warps (every lane of the warp calls them): a ballot as a 64-bit lane mask, a broadcast.
#ifdef AIT_HIP
__device__ __forceinline__ uint64_t topk_ballot(bool p) { return __ballot(p); }
__device__ __forceinline__ uint32_t topk_shfl(uint32_t v, int lane) { return __shfl(v, lane); }
#else
__device__ __forceinline__ uint64_t topk_ballot(bool p) { return __ballot_sync(0xffffffffu, p); }
__device__ __forceinline__ uint32_t topk_shfl(uint32_t v, int lane) { return __shfl_sync(0xffffffffu, v, lane); }
#endif
__device__ __forceinline__ uint64_t topk_lanes_below(int lane) { return lane == 0 ? 0ull : (~0ull >> (64 - lane)); }
__device__ __forceinline__ uint32_t topk_popc(uint64_t mask) { return static_cast<uint32_t>(__popcll(mask)); }

// Whether `key` has the digits above bit `shift` of `prefix`.
template <class Key>
__device__ __forceinline__ bool topk_matches(Key key, Key prefix, int shift) {
  const int high = shift + kTopKRadixBits;
  return high >= static_cast<int>(sizeof(Key) * 8) || ((key ^ prefix) >> high) == 0;
}

// Adds to `hist` (shared, kTopKBins) the digit at `shift` of every key of elements [begin, end) of a row that
// matches `prefix` above it. Same-digit lanes of a warp add once, their count. Whole blocks (the trip count is the
// block's), blockDim.x a multiple of kWarpSize.
template <class T>
__device__ void topk_histogram(const typename TopKTraits<T>::Key* in, int64_t inner, int64_t begin, int64_t end,
                               typename TopKTraits<T>::Key prefix, int shift, bool largest, uint32_t* hist) {
  using Key = typename TopKTraits<T>::Key;
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t base = begin; base < end; base += blockDim.x) {
    const int64_t i = base + threadIdx.x;
    bool counted = false;
    uint32_t digit = 0;
    if (i < end) {
      const Key key = topk_key<T>(in[i * inner], largest);
      counted = topk_matches(key, prefix, shift);
      digit = static_cast<uint32_t>(key >> shift) & (kTopKBins - 1);
    }
    uint64_t peers = topk_ballot(counted);
#pragma unroll
    for (int b = 0; b < kTopKRadixBits; ++b) {
      const bool bit = (digit >> b) & 1u;
      const uint64_t set = topk_ballot(bit);
      peers &= bit ? set : ~set;
    }
    if (counted && (peers & topk_lanes_below(lane)) == 0) atomicAdd(&hist[digit], topk_popc(peers));
  }
}

// The digit whose bin holds the rank-th (1-based) counted key in ascending order, and how many counted keys lie in
// lower bins: written to result[0], result[1]. `hist` and `scratch` (kTopKSelectWarps) are shared; blockDim.x ≥
// kTopKBins. Starts and ends with __syncthreads (hist may be overwritten once it returns).
__device__ __forceinline__ void topk_find_digit(const uint32_t* hist, uint32_t rank, uint32_t* scratch, uint32_t* result) {
  const int t = threadIdx.x, lane = t % kWarpSize, warp = t / kWarpSize;
  __syncthreads();
  const uint32_t count = t < kTopKBins ? hist[t] : 0u;
  uint32_t inclusive = count;  // inclusive scan of the bins, a warp at a time
  for (int d = 1; d < kWarpSize; d <<= 1) {
    const uint32_t v = topk_shfl(inclusive, lane >= d ? lane - d : lane);
    if (lane >= d) inclusive += v;
  }
  if (lane == kWarpSize - 1) scratch[warp] = inclusive;
  __syncthreads();
  for (int w = 0; w < warp; ++w) inclusive += scratch[w];
  const uint32_t exclusive = inclusive - count;
  if (t < kTopKBins && exclusive < rank && rank <= inclusive) {  // exactly one bin (empty bins never qualify)
    result[0] = static_cast<uint32_t>(t);
    result[1] = exclusive;
  }
  __syncthreads();
}

// The radix select's progress on a row: digits chosen so far (`prefix`), the rank still sought among the keys that
// share them, and how many keys lie below them.
template <class Key>
struct TopKSelect {
  Key prefix;
  uint32_t rank;
  uint32_t less;
};

template <class Key>
__device__ __forceinline__ int topk_shift(int pass) {
  return (static_cast<int>(sizeof(Key)) - 1 - pass) * kTopKRadixBits;
}

template <class Key>
__device__ __forceinline__ void topk_choose(TopKSelect<Key>& s, int pass, const uint32_t* result) {
  s.prefix = static_cast<Key>(s.prefix | static_cast<Key>(static_cast<Key>(result[0]) << topk_shift<Key>(pass)));
  s.rank -= result[1];
  s.less += result[1];
}

// Writes the winners among elements [begin, end) of a row to keys_out/idx_out: keys below `kth` at slots claimed from
// *cursor (shared or global, counting from 0: `less` of them in the whole row), keys equal to `kth` at less + their
// rank among the row's ties in index order while that rank is below `ties_wanted` (`ties_before` ties lie in earlier
// slices). `scratch`: 2 × kTopKSelectWarps shared. Whole blocks.
template <class T>
__device__ void topk_compact(const typename TopKTraits<T>::Key* in, int64_t inner, int64_t begin, int64_t end,
                             typename TopKTraits<T>::Key kth, uint32_t less, uint32_t ties_wanted, uint32_t ties_before,
                             bool largest, uint32_t* cursor, typename TopKTraits<T>::Key* keys_out, uint32_t* idx_out,
                             uint32_t* scratch) {
  using Key = typename TopKTraits<T>::Key;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, warps = blockDim.x / kWarpSize;
  uint32_t ties_seen = ties_before;  // ties before this tile of blockDim.x elements (block-uniform)
  int parity = 0;                    // double-buffered warp counts: one barrier per tile
  for (int64_t base = begin; base < end; base += blockDim.x, parity ^= 1) {
    const int64_t i = base + threadIdx.x;
    Key key = 0;
    bool below = false, tie = false;
    if (i < end) {
      key = topk_key<T>(in[i * inner], largest);
      below = key < kth;
      tie = key == kth;
    }
    // keys below: one atomic claims the warp's slots (every warp shuffles, so that warp operations stay uniform)
    const uint64_t below_mask = topk_ballot(below);
    const int leader = static_cast<int>(topk_popc((below_mask & (~below_mask + 1)) - 1));  // lowest lane (64 when none)
    uint32_t first = 0;
    if (below_mask && lane == leader) first = atomicAdd(cursor, topk_popc(below_mask));
    first = topk_shfl(first, leader % kWarpSize);
    if (below) {
      const uint32_t slot = first + topk_popc(below_mask & topk_lanes_below(lane));
      keys_out[slot] = key;
      idx_out[slot] = static_cast<uint32_t>(i);
    }
    const uint64_t tie_mask = topk_ballot(tie);
    uint32_t* counts = scratch + parity * kTopKSelectWarps;
    if (lane == 0) counts[warp] = topk_popc(tie_mask);
    __syncthreads();
    uint32_t rank = ties_seen + topk_popc(tie_mask & topk_lanes_below(lane)), total = 0;
    for (int w = 0; w < warps; ++w) {
      const uint32_t c = counts[w];
      if (w < warp) rank += c;
      total += c;
    }
    if (tie && rank < ties_wanted) {
      keys_out[less + rank] = key;
      idx_out[less + rank] = static_cast<uint32_t>(i);
    }
    ties_seen += total;
  }
}

// Sorts kTile (key, index) pairs in shared memory ascending: a bitonic network, the block's threads sharing each
// step's kTile / 2 compare-exchanges. Callers synchronize before (the tile is written) and it ends synchronized.
template <class Key, int kTile>
__device__ void topk_bitonic(Key* keys, uint32_t* idx) {
  for (int size = 2; size <= kTile; size <<= 1)
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < kTile / 2; t += blockDim.x) {
        const int i = 2 * t - (t & (stride - 1)), j = i + stride;  // i has bit `stride` clear
        const Key ki = keys[i], kj = keys[j];
        const uint32_t ii = idx[i], ij = idx[j];
        if ((ki > kj || (ki == kj && ii > ij)) == ((i & size) == 0)) {
          keys[i] = kj;
          keys[j] = ki;
          idx[i] = ij;
          idx[j] = ii;
        }
      }
      __syncthreads();
    }
}

// One block per (row, chunk of kTile): sorts a row of n ≤ kTile elements read from the input (cand_keys null; emits
// the first k), or kTile winners of a row from the workspace (cand_keys/cand_idx: k per row). With one chunk per
// row it emits the outputs; with several (k > kTile) it writes each sorted chunk back in place for the merges.
template <class T, int kTile>
__global__ void __launch_bounds__(topk_sort_threads(kTile))
    topk_sort_kernel(TopKArgs<T> a, int64_t rows, typename TopKTraits<T>::Key* cand_keys, uint32_t* cand_idx) {
  using Key = typename TopKTraits<T>::Key;
  __shared__ Key keys[kTile];
  __shared__ uint32_t idx[kTile];
  const Key* in = reinterpret_cast<const Key*>(a.input);
  const int64_t count = cand_keys ? a.k : a.n;
  const int64_t chunks = (count + kTile - 1) / kTile;
  for (int64_t block = blockIdx.x; block < rows * chunks; block += gridDim.x) {
    const int64_t row = block / chunks, first = (block - row * chunks) * kTile;
    const int len = static_cast<int>(count - first < kTile ? count - first : kTile);
    const TopKRow r = topk_row(a, row);
    for (int i = threadIdx.x; i < kTile; i += blockDim.x) {
      if (i >= len) {  // padding sorts last: no element has the largest index
        keys[i] = static_cast<Key>(~Key(0));
        idx[i] = 0xffffffffu;
      } else if (cand_keys) {
        keys[i] = cand_keys[row * a.k + first + i];
        idx[i] = cand_idx[row * a.k + first + i];
      } else {
        keys[i] = topk_key<T>(in[r.in + i * a.inner], a.largest);
        idx[i] = static_cast<uint32_t>(i);
      }
    }
    __syncthreads();
    topk_bitonic<Key, kTile>(keys, idx);
    if (chunks == 1) {
      for (int j = threadIdx.x; j < a.k; j += blockDim.x) topk_emit(a, r, j, idx[j]);
    } else {
      for (int j = threadIdx.x; j < len; j += blockDim.x) {
        cand_keys[row * a.k + first + j] = keys[j];
        cand_idx[row * a.k + first + j] = idx[j];
      }
    }
    __syncthreads();  // the tile is rewritten for the next block-row
  }
}

// One block per row: every radix pass in shared memory, then the compaction, into shared memory and sorted there
// when k ≤ kTile (emitting the outputs), else into the workspace (cand_keys/cand_idx, k per row) for the merge sort.
template <class T, int kTile>
__global__ void __launch_bounds__(kTopKSelectThreads)
    topk_select_rows_kernel(TopKArgs<T> a, int64_t rows, typename TopKTraits<T>::Key* cand_keys, uint32_t* cand_idx) {
  using Key = typename TopKTraits<T>::Key;
  constexpr int kPasses = sizeof(Key);
  __shared__ uint32_t hist[kTopKBins];
  __shared__ uint32_t scratch[2 * kTopKSelectWarps];
  __shared__ uint32_t result[2];
  __shared__ uint32_t cursor;
  __shared__ Key keys[kTile];
  __shared__ uint32_t idx[kTile];
  const Key* in = reinterpret_cast<const Key*>(a.input);
  const bool in_tile = a.k <= kTile;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const TopKRow r = topk_row(a, row);
    TopKSelect<Key> s{0, static_cast<uint32_t>(a.k), 0};
    for (int pass = 0; pass < kPasses; ++pass) {
      for (int t = threadIdx.x; t < kTopKBins; t += blockDim.x) hist[t] = 0;
      __syncthreads();
      topk_histogram<T>(in + r.in, a.inner, 0, a.n, s.prefix, topk_shift<Key>(pass), a.largest, hist);
      topk_find_digit(hist, s.rank, scratch, result);
      topk_choose(s, pass, result);
    }
    if (threadIdx.x == 0) cursor = 0;
    __syncthreads();
    topk_compact<T>(in + r.in, a.inner, 0, a.n, s.prefix, s.less, s.rank, 0, a.largest, &cursor,
                    in_tile ? keys : cand_keys + row * a.k, in_tile ? idx : cand_idx + row * a.k, scratch);
    if (in_tile) {
      for (int i = static_cast<int>(a.k) + threadIdx.x; i < kTile; i += blockDim.x) {
        keys[i] = static_cast<Key>(~Key(0));
        idx[i] = 0xffffffffu;
      }
      __syncthreads();
      topk_bitonic<Key, kTile>(keys, idx);
      for (int j = threadIdx.x; j < a.k; j += blockDim.x) topk_emit(a, r, j, idx[j]);
    }
    __syncthreads();  // shared state is rewritten for the next row
  }
}

// Replays the digit choices of passes [0, passes) of a row from its histograms in global memory ([passes][bins]).
template <class Key>
__device__ TopKSelect<Key> topk_replay(const uint32_t* row_hist, int passes, uint32_t k, uint32_t* hist, uint32_t* scratch,
                                       uint32_t* result) {
  TopKSelect<Key> s{0, k, 0};
  for (int pass = 0; pass < passes; ++pass) {
    for (int t = threadIdx.x; t < kTopKBins; t += blockDim.x) hist[t] = row_hist[pass * kTopKBins + t];
    topk_find_digit(hist, s.rank, scratch, result);
    topk_choose(s, pass, result);
  }
  return s;
}

// The split path's workspace: per row a cursor (winners below the k-th key) and a histogram per pass (both zeroed
// before the first pass), a histogram per slice of the last pass, the winners.
template <class Key>
struct TopKSplitState {
  uint32_t* cursor;  // [rows]
  uint32_t* hist;    // [rows][passes][bins]
  uint32_t* local;   // [rows][splits][bins]
  Key* keys;         // [rows][k]
  uint32_t* idx;     // [rows][k]
};

// Block (row, slice) of a split row: pass `pass` over the slice, added to the row's histogram.
template <class T>
__global__ void __launch_bounds__(kTopKSelectThreads)
    topk_pass_kernel(TopKArgs<T> a, TopKSplitState<typename TopKTraits<T>::Key> w, int pass, int splits) {
  using Key = typename TopKTraits<T>::Key;
  constexpr int kPasses = sizeof(Key);
  __shared__ uint32_t hist[kTopKBins];
  __shared__ uint32_t scratch[kTopKSelectWarps];
  __shared__ uint32_t result[2];
  const int64_t row = blockIdx.x / splits, split = blockIdx.x % splits;
  const int64_t slice = (a.n + splits - 1) / splits, begin = split * slice, end = begin + slice < a.n ? begin + slice : a.n;
  uint32_t* row_hist = w.hist + row * kPasses * kTopKBins;
  const TopKSelect<Key> s = topk_replay<Key>(row_hist, pass, static_cast<uint32_t>(a.k), hist, scratch, result);
  for (int t = threadIdx.x; t < kTopKBins; t += blockDim.x) hist[t] = 0;
  __syncthreads();
  const TopKRow r = topk_row(a, row);
  topk_histogram<T>(reinterpret_cast<const Key*>(a.input) + r.in, a.inner, begin, end, s.prefix, topk_shift<Key>(pass),
                    a.largest, hist);
  __syncthreads();
  for (int t = threadIdx.x; t < kTopKBins; t += blockDim.x) {
    const uint32_t c = hist[t];
    if (c) atomicAdd(&row_hist[pass * kTopKBins + t], c);
    if (pass == kPasses - 1) w.local[(row * splits + split) * kTopKBins + t] = c;
  }
}

// Block (row, slice) of a split row after the last pass: its winners into the workspace.
template <class T>
__global__ void __launch_bounds__(kTopKSelectThreads)
    topk_compact_kernel(TopKArgs<T> a, TopKSplitState<typename TopKTraits<T>::Key> w, int splits) {
  using Key = typename TopKTraits<T>::Key;
  constexpr int kPasses = sizeof(Key);
  __shared__ uint32_t hist[kTopKBins];
  __shared__ uint32_t scratch[2 * kTopKSelectWarps];
  __shared__ uint32_t result[2];
  __shared__ uint32_t ties_before;
  const int64_t row = blockIdx.x / splits, split = blockIdx.x % splits;
  const int64_t slice = (a.n + splits - 1) / splits, begin = split * slice, end = begin + slice < a.n ? begin + slice : a.n;
  const TopKSelect<Key> s =
      topk_replay<Key>(w.hist + row * kPasses * kTopKBins, kPasses, static_cast<uint32_t>(a.k), hist, scratch, result);
  if (threadIdx.x == 0) ties_before = 0;
  __syncthreads();
  const uint32_t last_digit = static_cast<uint32_t>(s.prefix) & (kTopKBins - 1);
  for (int64_t p = threadIdx.x; p < split; p += blockDim.x)
    atomicAdd(&ties_before, w.local[(row * splits + p) * kTopKBins + last_digit]);
  __syncthreads();
  const TopKRow r = topk_row(a, row);
  topk_compact<T>(reinterpret_cast<const Key*>(a.input) + r.in, a.inner, begin, end, s.prefix, s.less, s.rank, ties_before,
                  a.largest, w.cursor + row, w.keys + row * a.k, w.idx + row * a.k, scratch);
}

// One merge pass over every row's k winners, runs of `width` sorted pairs merged two by two (src → dst), or into
// the outputs when dst_keys is null (the last pass).
template <class T>
__global__ void __launch_bounds__(kTopKMergeThreads)
    topk_merge_kernel(TopKArgs<T> a, int64_t rows, const typename TopKTraits<T>::Key* src_keys, const uint32_t* src_idx,
                      typename TopKTraits<T>::Key* dst_keys, uint32_t* dst_idx, int64_t width) {
  using Key = typename TopKTraits<T>::Key;
  const int64_t total = rows * a.k;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = e / a.k, p = e - row * a.k, run = p / width;
    const int64_t partner = (run ^ 1) * width;
    int64_t length = a.k - partner;
    length = length < 0 ? 0 : length < width ? length : width;
    const Key* keys = src_keys + row * a.k;
    const uint32_t* idx = src_idx + row * a.k;
    const Key key = keys[p];
    const uint32_t index = idx[p];
    int64_t lo = 0, hi = length;  // partner elements ordered before (key, index)
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      const Key k2 = keys[partner + mid];
      if (k2 < key || (k2 == key && idx[partner + mid] < index))
        lo = mid + 1;
      else
        hi = mid;
    }
    const int64_t position = (run & ~int64_t(1)) * width + (p - run * width) + lo;
    if (dst_keys) {
      dst_keys[row * a.k + position] = key;
      dst_idx[row * a.k + position] = index;
    } else {
      topk_emit(a, topk_row(a, row), position, index);
    }
  }
}

inline size_t topk_align(size_t bytes) { return (bytes + 255) & ~static_cast<size_t>(255); }

// The workspace's layout for a call (byte offsets; bytes = 0 when the whole row is sorted in shared memory). Every
// size grows with rows, n and k, so the layout at the largest ones bounds every smaller call's.
struct TopKWorkspace {
  size_t cursor, hist, local, keys[2], idx[2], bytes;
};
template <class T>
TopKWorkspace topk_workspace(int64_t rows, int64_t n, int64_t k) {
  using Key = typename TopKTraits<T>::Key;
  TopKWorkspace w{};
  if (n <= topk_sort_max<T>() || rows <= 0 || k <= 0) return w;
  const size_t passes = sizeof(Key);
  // the split path runs only with rows < its block target ≤ kTopKMaxCtas, rows × splits < 2 × kTopKMaxCtas
  const size_t split_rows = static_cast<size_t>(rows < kTopKMaxCtas ? rows : kTopKMaxCtas);
  const size_t slices = static_cast<size_t>(rows < 2 * kTopKMaxCtas / kTopKMaxSplits ? rows * kTopKMaxSplits : 2 * kTopKMaxCtas);
  const size_t winners = static_cast<size_t>(rows) * static_cast<size_t>(k);
  size_t at = 0;
  w.cursor = at;  // cursor and hist adjoin: one memset clears both
  w.hist = at + split_rows * sizeof(uint32_t);
  at = topk_align(w.hist + split_rows * passes * kTopKBins * sizeof(uint32_t));
  w.local = at;
  at = topk_align(at + slices * kTopKBins * sizeof(uint32_t));
  const int buffers = k > topk_sort_max<T>() ? 2 : 1;
  for (int b = 0; b < buffers; ++b) {
    w.keys[b] = at;
    at = topk_align(at + winners * sizeof(Key));
    w.idx[b] = at;
    at = topk_align(at + winners * sizeof(uint32_t));
  }
  w.bytes = at;
  return w;
}

template <class T>
size_t topk_workspace_bytes(int64_t rows, int64_t n, int64_t k) {
  return topk_workspace<T>(rows, n, k).bytes;
}

// Blocks per row for the radix select: enough slices of at least kTopKMinSlice to give the GPU 2 blocks per SM
// (at most kTopKMaxCtas, kTopKMaxSplits per row); 1 when the rows alone fill it or a row is too short to split.
inline int topk_splits(int64_t rows, int64_t n, int sm_count) {
  int64_t target = 2 * static_cast<int64_t>(sm_count);
  if (target > kTopKMaxCtas) target = kTopKMaxCtas;
  int64_t splits = (target + rows - 1) / rows;
  if (splits > n / kTopKMinSlice) splits = n / kTopKMinSlice;
  if (splits > kTopKMaxSplits) splits = kTopKMaxSplits;
  return splits < 2 ? 1 : static_cast<int>(splits);
}

inline unsigned topk_grid(int64_t blocks) { return static_cast<unsigned>(blocks < (1 << 20) ? blocks : (1 << 20)); }

// Sorts the rows (cand_keys null: n ≤ topk_sort_max) or the winners (k per row) in the smallest tile that holds
// `count`, or in chunks of topk_sort_max when count is larger.
template <class T>
cudaError_t topk_launch_sort(const TopKArgs<T>& a, int64_t rows, int64_t count, typename TopKTraits<T>::Key* cand_keys,
                             uint32_t* cand_idx, cudaStream_t stream) {
  constexpr int kMax = topk_sort_max<T>();
  const int64_t chunks = (count + kMax - 1) / kMax;
  if (count <= 64)
    topk_sort_kernel<T, 64><<<topk_grid(rows), topk_sort_threads(64), 0, stream>>>(a, rows, cand_keys, cand_idx);
  else if (count <= 256)
    topk_sort_kernel<T, 256><<<topk_grid(rows), topk_sort_threads(256), 0, stream>>>(a, rows, cand_keys, cand_idx);
  else if (count <= 1024)
    topk_sort_kernel<T, 1024><<<topk_grid(rows), topk_sort_threads(1024), 0, stream>>>(a, rows, cand_keys, cand_idx);
  else
    topk_sort_kernel<T, kMax><<<topk_grid(rows * chunks), topk_sort_threads(kMax), 0, stream>>>(a, rows, cand_keys, cand_idx);
  return launch_status();
}

template <class T>
cudaError_t topk_launch_select_rows(const TopKArgs<T>& a, int64_t rows, typename TopKTraits<T>::Key* cand_keys,
                                    uint32_t* cand_idx, cudaStream_t stream) {
  constexpr int kMax = topk_sort_max<T>();
  const unsigned grid = topk_grid(rows);
  if (a.k <= 256 || a.k > kMax)  // winners beyond a tile go to the workspace: the smallest tile
    topk_select_rows_kernel<T, 256><<<grid, kTopKSelectThreads, 0, stream>>>(a, rows, cand_keys, cand_idx);
  else if (a.k <= 1024)
    topk_select_rows_kernel<T, 1024><<<grid, kTopKSelectThreads, 0, stream>>>(a, rows, cand_keys, cand_idx);
  else
    topk_select_rows_kernel<T, kMax><<<grid, kTopKSelectThreads, 0, stream>>>(a, rows, cand_keys, cand_idx);
  return launch_status();
}

// `workspace`: at least topk_workspace_bytes<T>(outer * inner, n, k) bytes, 256-byte aligned (or null when that is 0).
template <class T>
cudaError_t launch_topk(const TopKArgs<T>& a, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  using Key = typename TopKTraits<T>::Key;
  constexpr int kPasses = sizeof(Key);
  constexpr int kMax = topk_sort_max<T>();
  if (a.outer < 0 || a.n < 0 || a.inner < 0 || a.k < 0 || a.k > a.n || a.n > 0x7fffffff) return cudaErrorInvalidValue;
  const int64_t rows = a.outer * a.inner;
  if (rows == 0 || a.k == 0 || (!a.values && !a.indices)) return cudaSuccess;
  if (a.n <= kMax) return topk_launch_sort(a, rows, a.n, static_cast<Key*>(nullptr), nullptr, stream);

  const TopKWorkspace layout = topk_workspace<T>(rows, a.n, a.k);
  if (!workspace || layout.bytes > workspace_bytes) return cudaErrorInvalidValue;
  uint8_t* base = static_cast<uint8_t*>(workspace);
  Key* keys[2] = {reinterpret_cast<Key*>(base + layout.keys[0]), reinterpret_cast<Key*>(base + layout.keys[1])};
  uint32_t* idx[2] = {reinterpret_cast<uint32_t*>(base + layout.idx[0]), reinterpret_cast<uint32_t*>(base + layout.idx[1])};

  int device = 0, sm_count = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) status = cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device);
  if (status != cudaSuccess) return status;
  const int splits = topk_splits(rows, a.n, sm_count);
  if (splits == 1) {
    status = topk_launch_select_rows(a, rows, keys[0], idx[0], stream);
    if (status != cudaSuccess || a.k <= kMax) return status;
  } else {
    TopKSplitState<Key> w{reinterpret_cast<uint32_t*>(base + layout.cursor), reinterpret_cast<uint32_t*>(base + layout.hist),
                          reinterpret_cast<uint32_t*>(base + layout.local), keys[0], idx[0]};
    status = cudaMemsetAsync(base + layout.cursor, 0, layout.hist + rows * kPasses * kTopKBins * sizeof(uint32_t) - layout.cursor,
                             stream);
    if (status != cudaSuccess) return status;
    const unsigned grid = static_cast<unsigned>(rows * splits);
    for (int pass = 0; pass < kPasses; ++pass) {
      topk_pass_kernel<T><<<grid, kTopKSelectThreads, 0, stream>>>(a, w, pass, splits);
      if ((status = launch_status()) != cudaSuccess) return status;
    }
    topk_compact_kernel<T><<<grid, kTopKSelectThreads, 0, stream>>>(a, w, splits);
    if ((status = launch_status()) != cudaSuccess) return status;
    if (a.k <= kMax) return topk_launch_sort(a, rows, a.k, keys[0], idx[0], stream);
  }
  // k > kMax: sorted chunks of kMax, then merges of runs of kMax, 2·kMax, … (the last into the outputs)
  status = topk_launch_sort(a, rows, a.k, keys[0], idx[0], stream);
  int from = 0;
  for (int64_t width = kMax; status == cudaSuccess && width < a.k; width *= 2, from ^= 1) {
    const bool last = 2 * width >= a.k;
    topk_merge_kernel<T><<<grid_for(rows * a.k, kTopKMergeThreads), kTopKMergeThreads, 0, stream>>>(
        a, rows, keys[from], idx[from], last ? nullptr : keys[from ^ 1], last ? nullptr : idx[from ^ 1], width);
    status = launch_status();
  }
  return status;
}

}  // namespace kernels
}  // namespace ait
