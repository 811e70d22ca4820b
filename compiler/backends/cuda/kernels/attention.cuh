// Multi-head attention, softmax(Q·Kᵀ·scale + biases, causal)·V, reading Q, K and V straight from the projection
// GEMMs' outputs, token-major: either packed [batch, sequence, 3, heads, head_dim] (one QKV GEMM) or three
// [batch, sequence, heads, head_dim] tensors (`token_stride` apart per token), and writing [batch, sequence,
// heads * head_dim] (the layout the output projection GEMM reads), so no transpose kernels are needed.
// Keys and values may have their own length (`key_sequence`: cross-attention, PVT/SegFormer's spatial-reduction
// attention, whose keys come from a strided convolution of the tokens) and token stride (`kv_token_stride`: K and V
// packed [batch, key_sequence, 2, heads, head_dim] by one KV GEMM, or two [batch, key_sequence, heads·head_dim]);
// the equal-length case is the same code with key_sequence = sequence.
// Values may have a head dim of their own (`value_head_dim`: LeViT, EfficientFormer, whose per-head projection is
// split into q, k of D dims and v of Dv dims), and q, k and v their own head strides (a per-head split leaves
// head h of q at h·(D+D+Dv), of k at that + D, of v at that + 2D) and v its own token stride; the output is
// [batch, sequence, heads * value_head_dim]. Every such field defaults to -1: the packed/separate value as before.
//
// Masks (template flag kMasked, so the unmasked kernels are unchanged): up to two additive biases, each read at
// [b mod batch_modulo, h, query, key] through its strides (0 for a broadcast axis: a [1,H,S,S] relative position
// bias, Swin's [nW,1,S,S] shift mask over batch·nW windows, a [B,1,1,S] key mask), added to the scaled scores; and
// a causal flag (key > query masked; key tiles past a CTA's last query are skipped). The softmax stays in fp32 and
// takes -inf scores; a row whose keys are all masked gives 0 when zero_masked_rows is set (the graph guarded the
// softmax with Where(IsNaN(p), 0, p)), else NaN (softmax of all -inf).
//
// Two kernels, both flash-attention style (online softmax in fp32, base-2 exponentials with the scale folded in,
// any sequence length with constant memory):
// - attention_tc_kernel (fp16, padded max(D, Dv) up to 192, head dims, strides and pointers multiples of 8 halves
//   with 16-byte alignment or of 4 with 8-byte alignment, sm_80+): flash-attention-2 on tensor cores; see the
//   comment above it. Values with a head dim or strides of their own run here at the padded max(D, Dv).
// - attention_kernel (every other case: fp32/bf16 storage, unaligned pointers, head dims not a multiple of 4, padded
//   head dim 256): CUDA cores, one thread per query row keeps q and the output accumulator in registers; blocks of
//   64 queries stream tiles of K and V through shared memory.
//
// Head dims: any D (and Dv) in 1..256. The kernels are instantiated at a padded head dim kHeadDim >= max(D, Dv)
// (attention_padded_head_dim) and take the real D (and Dv) at run time (a.head_dim, a.value_head_dim): q and k
// dims d >= D and v dims d >= Dv are read as zeros (exact for Q·Kᵀ, and P·V's extra output columns are not stored),
// the output is written for d < Dv only, and the scale is the caller's (1/sqrt(D) usually). The padded sizes are
// multiples of 16 (the mma k-step) spaced so that the dims in use (32/64/128; 36, 40, 48, 60, 80, 96, 160) waste at
// most a quarter of the work: 32, 48, 64, 80, 96, 128, 160, 192, 256. The generated code instantiates only the
// padded dims its attention nodes need (launch_attention_padded); launch_attention dispatches over all of them.
// Values with a head dim of their own (D != Dv) run at two padded dims, not one (launch_attention_dims; the
// CUDA-core kernel's template takes kQKDim and kVDim): Q·Kᵀ, q's registers and the K tile at the padded D, P·V's
// accumulators and the V tile at the padded Dv, each from attention_padded_cuda_core_dim (8, 16, then the list
// above). At one padded max(D, Dv), EfficientFormer's D = 32, Dv = 128 did Q·Kᵀ over 128 dims, 4x its work, and
// held 128 q registers; launch_attention_padded (and launch_attention) still run those forms that way, correctly.
#pragma once

#include <type_traits>

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct AttentionBias {
  const T* data = nullptr;  // [batch_modulo, 1|heads, 1|sequence, 1|key_sequence]
  int64_t batch_modulo = 1;  // attention batch b reads bias batch b % batch_modulo
  int64_t batch_stride = 0, head_stride = 0, query_stride = 0, key_stride = 0;  // elements; 0 broadcasts
};

constexpr int kMaxAttentionBiases = 2;

template <class T>
struct AttentionArgs {
  const T* q;              // element (b, s, h, d) at q[(b * sequence + s) * token_stride + h * head_dim + d]
  const T* k;              // element (b, j, h, d) at k[(b * key_sequence + j) * kv_token_stride + h * head_dim + d]
  const T* v;              // likewise
  int64_t token_stride;    // 3 * heads * head_dim for packed qkv, heads * head_dim for a separate q
  T* output;               // [batch, sequence, heads * value_head_dim]
  int64_t batch;
  int64_t sequence;        // queries
  // Keys (= values) and the elements between consecutive key/value tokens (2 * heads * head_dim for packed kv,
  // heads * head_dim for separate k and v); -1: the same as the queries' (sequence, token_stride).
  int64_t key_sequence = -1;
  int64_t kv_token_stride = -1;
  int32_t heads;
  int32_t head_dim;        // of q and k
  float scale;             // usually 1/sqrt(head_dim)
  // Per-head split forms (see the top comment); -1: value_head_dim = head_dim, v_token_stride = kv_token_stride,
  // q_head_stride = k_head_stride = head_dim, v_head_stride = value_head_dim. Element (b, j, h, d) of v is at
  // v[(b * key_sequence + j) * v_token_stride + h * v_head_stride + d]; likewise q and k with their head strides.
  int32_t value_head_dim = -1;
  int64_t v_token_stride = -1;
  int64_t q_head_stride = -1;
  int64_t k_head_stride = -1;
  int64_t v_head_stride = -1;
  AttentionBias<T> bias[kMaxAttentionBiases] = {};
  int32_t bias_count = 0;
  bool causal = false;
  bool zero_masked_rows = false;
};

// Arguments for packed qkv [batch, sequence, 3, heads, head_dim], no masks.
template <class T>
AttentionArgs<T> packed_attention_args(const T* qkv, T* output, int64_t batch, int64_t sequence, int32_t heads,
                                       int32_t head_dim, float scale) {
  AttentionArgs<T> a{};
  const int64_t hd = static_cast<int64_t>(heads) * head_dim;
  a.q = qkv;
  a.k = qkv + hd;
  a.v = qkv + 2 * hd;
  a.token_stride = 3 * hd;
  a.output = output;
  a.batch = batch;
  a.sequence = sequence;
  a.heads = heads;
  a.head_dim = head_dim;
  a.scale = scale;
  return a;
}

// The masks as one (batch, head) sees them: the biases' (batch, head) slices; strides, count and the causal flag
// are read from the kernel arguments (constant memory), which keeps registers for the accumulators.
template <class T>
struct AttentionMask {
  const AttentionArgs<T>& a;
  const T* base[kMaxAttentionBiases];

  __host__ __device__ __forceinline__ AttentionMask(const AttentionArgs<T>& args, int64_t b, int h) : a(args) {
#pragma unroll
    for (int i = 0; i < kMaxAttentionBiases; ++i) {
      const AttentionBias<T>& p = a.bias[i];
      base[i] = i < a.bias_count ? p.data + (b % p.batch_modulo) * p.batch_stride + h * p.head_stride : nullptr;
    }
  }
  // Added to a score in base-2 units (scores are pre-multiplied by log2(e)); -inf where masked. `query` must be
  // within the sequence (bias rows past it are not read).
  __host__ __device__ __forceinline__ float log2_term(int64_t query, int64_t key) const {
    constexpr float kLog2e = 1.4426950408889634f;
    if (a.causal && key > query) return -INFINITY;
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxAttentionBiases; ++i)
      if (i < a.bias_count) sum += to_float(base[i][query * a.bias[i].query_stride + key * a.bias[i].key_stride]);
    return sum * kLog2e;
  }
};

// Row max to subtract in exp2: the max, or 0 when every score so far is -inf (fully masked), so exp2 gives 0, not NaN.
__device__ __forceinline__ float attention_safe_max(float m) { return m == -INFINITY ? 0.f : m; }

// 1 / row sum; a masked row (sum 0) gives 0 (zero_masked_rows) or NaN.
__device__ __forceinline__ float attention_inverse_sum(float sum, bool zero_masked_rows) {
  return sum > 0.f ? 1.f / sum : zero_masked_rows ? 0.f : __int_as_float(0x7fc00000);
}

// The padded head dim (kHeadDim) a head dim runs at: the smallest of 32, 48, 64, 80, 96, 128, 160, 192, 256 that
// is >= head_dim (see the top comment); 0 for a head dim outside 1..256.
constexpr int kMaxAttentionHeadDim = 256;
constexpr int attention_padded_head_dim(int head_dim) {
  return head_dim <= 0 ? 0 : head_dim <= 32 ? 32 : head_dim <= 48 ? 48 : head_dim <= 64 ? 64 : head_dim <= 80 ? 80
         : head_dim <= 96 ? 96 : head_dim <= 128 ? 128 : head_dim <= 160 ? 160 : head_dim <= 192 ? 192
         : head_dim <= 256 ? 256 : 0;
}

// The padded dim a head dim runs at in launch_attention_dims (values with a head dim of their own: q·k at the padded
// D, p·v at the padded Dv, each on its own bound): 8 or 16 below 17, else attention_padded_head_dim. The CUDA-core
// kernel only needs multiples of 8 (one 16-byte vector of fp16), so LeViT's D = 16 runs at 16, not 32.
constexpr int attention_padded_cuda_core_dim(int head_dim) {
  return head_dim <= 0 ? 0 : head_dim <= 8 ? 8 : head_dim <= 16 ? 16 : attention_padded_head_dim(head_dim);
}

namespace attention_detail {
constexpr int kQueriesPerBlock = 64;
constexpr int kKeysPerChunk = 16;
// Keys per shared-memory tile: 64, fewer where 64 rows of K (kQKDim) and V (kVDim) would pass the 48 KB static
// shared memory limit (fp16 at head dim 256, fp32 above 96).
template <class T, int kQKDim, int kVDim>
constexpr int kKeysPerTile = 64 * (kQKDim + kVDim) * static_cast<int>(sizeof(T)) <= 48 * 1024   ? 64
                             : 32 * (kQKDim + kVDim) * static_cast<int>(sizeof(T)) <= 48 * 1024 ? 32
                                                                                                : kKeysPerChunk;
}  // namespace attention_detail

// CUDA-core kernel at padded dims kQKDim >= head_dim (q, k: Q·Kᵀ's loop, q's registers, k_tile's rows) and kVDim >=
// value_head_dim (v: P·V's accumulators, v_tile's rows). Both are the one padded head dim for launch_attention_padded
// (D == Dv, and every form at max(D, Dv)); launch_attention_dims gives values of their own head dim their own bound,
// so EfficientFormer's D = 32, Dv = 128 does Q·Kᵀ over 32 dims (not 128) and holds 32 q registers, not 128.
template <class T, int kQKDim, int kVDim, bool kMasked>
__global__ void __launch_bounds__(attention_detail::kQueriesPerBlock)
    attention_kernel(AttentionArgs<T> a, bool vector_loads) {
  using namespace attention_detail;
  constexpr int kTileKeys = kKeysPerTile<T, kQKDim, kVDim>;
  // Dims head_dim..kQKDim-1 of k_tile and value_head_dim..kVDim-1 of v_tile hold zeros (q·0 = 0 needs them finite).
  __shared__ T k_tile[kTileKeys][kQKDim];
  __shared__ T v_tile[kTileKeys][kVDim];
  // The tile loads walk rows of the wider of the two; a column past the narrower one's width stores only the other.
  // When kQKDim == kVDim (the common case) both flags are true and the loads are the code of one head dim.
  constexpr int kRowDim = kQKDim > kVDim ? kQKDim : kVDim;
  constexpr bool kEveryKColumn = kQKDim >= kVDim, kEveryVColumn = kVDim >= kQKDim;

  const int64_t b = blockIdx.z;
  const int h = blockIdx.y;
  const int64_t block_start = static_cast<int64_t>(blockIdx.x) * kQueriesPerBlock;
  const int64_t s = block_start + threadIdx.x;
  const bool active = s < a.sequence;
  const int head_dim = a.head_dim;              // <= kQKDim
  const int value_head_dim = a.value_head_dim;  // <= kVDim
  const int64_t token_stride = a.token_stride;        // elements between consecutive query tokens
  const int64_t kv_token_stride = a.kv_token_stride;  // ... key tokens
  const int64_t v_token_stride = a.v_token_stride;    // ... value tokens
  const T* q_base = a.q + b * a.sequence * token_stride + h * a.q_head_stride;
  const T* k_base = a.k + b * a.key_sequence * kv_token_stride + h * a.k_head_stride;
  const T* v_base = a.v + b * a.key_sequence * v_token_stride + h * a.v_head_stride;
  // causal (key_sequence == sequence): keys past the block's last query are masked for all of its queries
  const int64_t key_end =
      kMasked && a.causal ? min(a.key_sequence, block_start + kQueriesPerBlock) : a.key_sequence;
  [[maybe_unused]] const AttentionMask<T> mask(a, b, h);

  constexpr float kLog2e = 1.4426950408889634f;
  float q[kQKDim], acc[kVDim];
  const float q_scale = a.scale * kLog2e;
#pragma unroll
  for (int d = 0; d < kQKDim; ++d)
    q[d] = active && d < head_dim ? to_float(q_base[s * token_stride + d]) * q_scale : 0.f;
#pragma unroll
  for (int d = 0; d < kVDim; ++d) acc[d] = 0.f;
  float running_max = -INFINITY, running_sum = 0.f;

  for (int64_t tile_start = 0; tile_start < key_end; tile_start += kTileKeys) {
    const int keys = static_cast<int>(min(static_cast<int64_t>(kTileKeys), key_end - tile_start));
    __syncthreads();  // the previous tile is no longer read
    if (vector_loads) {  // head_dim and value_head_dim are multiples of V
      constexpr int V = Vec16<T>::kElements;
      static_assert(kQKDim % V == 0 && kVDim % V == 0, "padded dims must be whole 16-byte vectors");
      constexpr int kVectorsPerRow = kRowDim / V;
      for (int i = threadIdx.x; i < kTileKeys * kVectorsPerRow; i += blockDim.x) {
        const int row = i / kVectorsPerRow, col = (i % kVectorsPerRow) * V;
        Vec16<T> kv, vv;
        kv.raw = make_uint4(0, 0, 0, 0);
        vv.raw = kv.raw;
        if (row < keys && col < head_dim) kv = load_vec16(k_base + (tile_start + row) * kv_token_stride + col);
        if (row < keys && col < value_head_dim) vv = load_vec16(v_base + (tile_start + row) * v_token_stride + col);
        if (kEveryKColumn || col < kQKDim) store_vec16(&k_tile[row][col], kv);
        if (kEveryVColumn || col < kVDim) store_vec16(&v_tile[row][col], vv);
      }
    } else {
      for (int i = threadIdx.x; i < kTileKeys * kRowDim; i += blockDim.x) {
        const int row = i / kRowDim, col = i % kRowDim;
        const int64_t key = tile_start + row;
        if (kEveryKColumn || col < kQKDim)
          k_tile[row][col] = row < keys && col < head_dim ? k_base[key * kv_token_stride + col] : from_float<T>(0.f);
        if (kEveryVColumn || col < kVDim)
          v_tile[row][col] =
              row < keys && col < value_head_dim ? v_base[key * v_token_stride + col] : from_float<T>(0.f);
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
        for (int d = 0; d < kQKDim; ++d) dot += q[d] * to_float(k_tile[chunk + j][d]);
        score[j] = chunk + j < keys ? dot : -INFINITY;
        if constexpr (kMasked) {
          if (active && chunk + j < keys) score[j] += mask.log2_term(s, tile_start + chunk + j);
        }
        chunk_max = fmaxf(chunk_max, score[j]);
      }
      // without masks new_max is finite (the chunk has at least one key); with them it may be -inf
      const float new_max = fmaxf(running_max, chunk_max);
      const float subtract = kMasked ? attention_safe_max(new_max) : new_max;
      const float correction = exp2f(running_max - subtract);
      running_sum *= correction;
#pragma unroll
      for (int d = 0; d < kVDim; ++d) acc[d] *= correction;
#pragma unroll
      for (int j = 0; j < kKeysPerChunk; ++j) {
        const float p = exp2f(score[j] - subtract);
        running_sum += p;
#pragma unroll
        for (int d = 0; d < kVDim; ++d) acc[d] += p * to_float(v_tile[chunk + j][d]);
      }
      running_max = new_max;
    }
  }

  if (!active) return;
  const float inv_sum = kMasked ? attention_inverse_sum(running_sum, a.zero_masked_rows) : 1.f / running_sum;
  const int64_t hdv = static_cast<int64_t>(a.heads) * value_head_dim;
  T* out = a.output + (b * a.sequence + s) * hdv + static_cast<int64_t>(h) * value_head_dim;
#pragma unroll
  for (int d = 0; d < kVDim; ++d)
    if (d < value_head_dim) out[d] = from_float<T>(acc[d] * inv_sum);
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor-core kernel (flash-attention-2 forward), fp16 storage, fp32 accumulation.
//
// Launch: grid (ceil(sequence / Q), heads, batch), 128 threads (4 warps). A CTA owns Q = 4·R·16 query rows of one
// (batch, head), R = 1 or 2 row blocks (see kWideGridCtas); warp w owns R blocks of 16 rows. The CTA streams
// 64-key tiles of K and V through shared memory with cp.async, double buffered (tile t+1 loads while tile t is
// computed). Per tile, warp and 16-row block:
//   S[16 x 64] = Q[16 x D] · K_tileᵀ      (mma m16n8k16: D/16 k-steps x 8 key n-tiles; each K fragment serves R blocks)
//   online softmax on S in registers (scale·log2e folded in, keys past `key_sequence` set to -inf)
//   O[16 x D] = O·correction + P[16 x 64] · V_tile[64 x D]   (P reused from the S accumulators as fp16 A fragments)
// At the end O is divided by the row sums and written through shared memory (the warp's own Q rows) as 16-byte
// coalesced stores; query rows past `sequence` compute on zero-filled Q and are not written.
//
// Shared memory rows are padded by 8 halves (16 bytes): row strides are an odd multiple of 16 bytes (80/144/272 for
// D = 32/64/128), so the 8 row addresses of one ldmatrix 8x8 matrix fall in 8 distinct 16-byte bank groups (no bank
// conflicts).
//
// D here is the padded head dim kHeadDim; the real one (a.head_dim) is a multiple of 8 (16-byte loads and stores) or
// of 4 (`narrow`: 8-byte ones), its dims past it are zero-filled in the Q, K and V tiles and not stored.
//
// Fragment ownership relied on (PTX ISA, "Matrix Fragments for mma.m16n8k16" with .f16 A/B and .f32 C/D).
// lane = threadIdx.x % 32, g = lane / 4 ("groupID"), t = lane % 4 ("threadID_in_group"); each .f16x2 register holds
// the element with the lower column (A) / lower k (B) index in its low 16 bits.
//   A (16x16, row-major), 4 x .f16x2:  a0 = A[g][2t..2t+1]     a1 = A[g+8][2t..2t+1]
//                                       a2 = A[g][2t+8..2t+9]   a3 = A[g+8][2t+8..2t+9]
//   B (16x8, K x N, "col"), 2 x .f16x2: b0 = B[2t..2t+1][g]     b1 = B[2t+8..2t+9][g]
//   C/D (16x8), 4 x f32:                c0,c1 = C[g][2t], C[g][2t+1]   c2,c3 = C[g+8][2t], C[g+8][2t+1]
// ldmatrix.m8n8.x4: lanes 8i..8i+7 give the row addresses of matrix i; result register i holds, in every lane,
// matrix i's row g, columns 2t..2t+1 (with .trans: rows 2t..2t+1 of column g, i.e. the transposed matrix).
// Hence:
//   Q (smem [query][dim]) -> A: lane addresses row (lane % 16), column (lane / 16) * 8 of the 16x16 block.
//   K (smem [key][dim])   -> B of S = Q·Kᵀ (k = dim, n = key): B[k][n] = K[n][k], so the non-transposed 8x8
//       block K[keys n0..n0+7][dims k0..k0+7] gives b0 directly. One x4 load covers two key n-tiles of one k-step:
//       matrices (keys +0, dims +0) b0, (keys +0, dims +8) b1, (keys +8, dims +0) b0', (keys +8, dims +8) b1'.
//   V (smem [key][dim])   -> B of O = P·V (k = key, n = dim): B[k][n] = V[k][n], needs V[2t..2t+1][g], i.e. the
//       .trans load. One x4 load covers two dim n-tiles of one k-step: matrices (keys +0, dims +0) b0,
//       (keys +8, dims +0) b1, (keys +0, dims +8) b0', (keys +8, dims +8) b1'.
//   P -> A of P·V: the S accumulators of key n-tiles 2j and 2j+1 are exactly the A fragment of key k-step j:
//       a0 = S(2j).c0c1, a1 = S(2j).c2c3, a2 = S(2j+1).c0c1, a3 = S(2j+1).c2c3.
#ifndef AIT_HIP  // the tensor-core kernel is PTX (cp.async, ldmatrix, mma.sync): CUDA only
namespace attention_tc_detail {
constexpr int kKeysPerTile = 64;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowPadHalves = 8;
// kRows: 16-row blocks of queries per warp (1 or 2). With two, every K and V fragment a warp loads from shared
// memory feeds two MMAs and a CTA covers 128 queries; it doubles the accumulators (D <= 64 only, to stay within 255
// registers) and halves the CTA count. Measured on an H200 in ViT-B/16 and ViT-L/16-384: 2-4 % faster end to end at
// batch 64 and 256, slower where the grid is small (B2 S197: 9.7 vs 6.5 us), equal at B8 S577; the launcher takes two
// blocks from kWideGridCtas 128-query CTAs on.
constexpr int64_t kWideGridCtas = 1024;
template <int kRows>
constexpr int kQueriesPerBlock = kWarps * 16 * kRows;
// Occupancy hint for ptxas (registers per thread = 65536 / (kThreads · blocks)): with one row block, without it
// nvcc 13 caps the D=32 kernel at 96 registers and spills; these values give no spills for any head dim on sm_90.
template <int kHeadDim, int kRows>
constexpr int kMinBlocksPerSm = kRows == 2 ? 2 : kHeadDim <= 32 ? 4 : kHeadDim <= 64 ? 3 : 1;

template <int kHeadDim, int kRows>
struct Layout {
  static constexpr int kRowStride = kHeadDim + kRowPadHalves;  // halves
  static constexpr int kTileHalves = kKeysPerTile * kRowStride;
  // Q tile, then K tiles [2], then V tiles [2].
  static constexpr int kSharedBytes = (kQueriesPerBlock<kRows> * kRowStride + 4 * kTileHalves) * 2;
};

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global->shared copy; src_bytes = 0 zero-fills the destination (rows past the sequence).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
// 8-byte global->shared copy (head dims that are a multiple of 4 but not of 8); src_bytes = 0 zero-fills.
__device__ __forceinline__ void cp_async_8(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// c += a · b, m16n8k16, fp16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_half2(float low, float high) {
  const __half2 h = __floats2half2_rn(low, high);  // .x (low 16 bits) = low
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Copies `rows_valid` (<= kRows) rows of `dims` (<= kHeadDim) halves, `row_stride_elements` apart in global memory,
// into a padded kRows-row shared tile of kHeadDim dims; rows past rows_valid and dims past `dims` are zero-filled
// (so masked keys contribute 0·0, never NaN, and padded dims add 0 to Q·Kᵀ). In 16-byte chunks (dims a multiple of
// 8, 16-byte aligned rows), or in 8-byte ones when `narrow` (dims a multiple of 4, 8-byte aligned rows).
template <int kHeadDim, int kRows>
__device__ __forceinline__ void load_tile_async(__half* tile, const __half* rows, int64_t row_stride_elements,
                                                int rows_valid, int dims, bool narrow) {
  constexpr int kRowStride = kHeadDim + kRowPadHalves;
  if (!narrow) {
    constexpr int kChunksPerRow = kHeadDim / 8;
    static_assert(kRows * kChunksPerRow % kThreads == 0, "tile chunks must split evenly over the threads");
#pragma unroll
    for (int j = 0; j < kRows * kChunksPerRow / kThreads; ++j) {
      const int i = threadIdx.x + j * kThreads;
      const int row = i / kChunksPerRow, chunk = i % kChunksPerRow;
      const bool valid = row < rows_valid && chunk * 8 < dims;
      const __half* src = valid ? rows + row * row_stride_elements + chunk * 8 : rows;
      cp_async_16(shared_address(tile + row * kRowStride + chunk * 8), src, valid ? 16 : 0);
    }
  } else {
    constexpr int kChunksPerRow = kHeadDim / 4;
#pragma unroll
    for (int j = 0; j < kRows * kChunksPerRow / kThreads; ++j) {
      const int i = threadIdx.x + j * kThreads;
      const int row = i / kChunksPerRow, chunk = i % kChunksPerRow;
      const bool valid = row < rows_valid && chunk * 4 < dims;
      const __half* src = valid ? rows + row * row_stride_elements + chunk * 4 : rows;
      cp_async_8(shared_address(tile + row * kRowStride + chunk * 4), src, valid ? 8 : 0);
    }
  }
}
// The masks of one 64-key tile, for one thread's scores s[rb][n][c] (row g + 8·(c >> 1) of row block rb, column
// 8n + 2t + (c & 1)): S scaled to base 2, then the causal cut and each bias's terms (its value · log2(e)) added, a
// row of a bias at a time: one row pointer per (query row, bias), the 16 columns of a thread at constant offsets from
// it when the bias's key stride is 1 (every mask seen so far), so the loads of a tile are independent and issue
// together. Per score: a load, a convert and an FMA; the earlier per-score log2_term (64-bit index math, the causal
// test and the bias count on every score) made the masked kernel 2-5x slower than the plain one (kernel_check).
// Rows past the sequence are only scaled; columns past `keys` (kTail) are not read (the softmax masks them).
// Host and device: test/backends/cuda/attention-masks.test.ts runs it on the host against AttentionMask::log2_term.
template <int kBlocks, int kKeyTiles, bool kTail>
__host__ __device__ __forceinline__ void attention_tc_apply_masks(float (&s)[kBlocks][kKeyTiles][4],
                                                                  const AttentionMask<__half>& mask, float scale_log2,
                                                                  int64_t first_query, int64_t key_start,
                                                                  int64_t sequence, int keys, int t, int g) {
  constexpr float kLog2e = 1.4426950408889634f;
#pragma unroll
  for (int rb = 0; rb < kBlocks; ++rb)
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) s[rb][n][c] *= scale_log2;
  const int64_t key0 = key_start + 2 * t;  // the key of this thread's column 0; its columns are 8n + e after it
#pragma unroll
  for (int rb = 0; rb < kBlocks; ++rb)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int64_t query = first_query + rb * 16 + g + 8 * r;
      if (query >= sequence) continue;  // a row past the sequence is never stored and has no bias row
      if (mask.a.causal && key_start + 8 * kKeyTiles - 1 > query) {  // the tile crosses the diagonal
#pragma unroll
        for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
          for (int e = 0; e < 2; ++e)
            if (key0 + 8 * n + e > query) s[rb][n][2 * r + e] = -INFINITY;
      }
#pragma unroll
      for (int i = 0; i < kMaxAttentionBiases; ++i) {  // unrolled: a constant index keeps the arguments in param space
        if (i >= mask.a.bias_count) break;
        const AttentionBias<__half>& bias = mask.a.bias[i];
        const __half* row = mask.base[i] + query * bias.query_stride + key0 * bias.key_stride;
        if (bias.key_stride == 1) {
#pragma unroll
          for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (!kTail || 8 * n + 2 * t + e < keys) s[rb][n][2 * r + e] += kLog2e * __half2float(row[8 * n + e]);
        } else {
          const int64_t key_stride = bias.key_stride;
#pragma unroll
          for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (!kTail || 8 * n + 2 * t + e < keys)
                s[rb][n][2 * r + e] += kLog2e * __half2float(row[(8 * n + e) * key_stride]);
        }
      }
    }
}
}  // namespace attention_tc_detail

// One 64-key tile of the tensor-core kernel for one warp's kRowBlocks·16 query rows: S = Q·K_tileᵀ, online
// softmax, O += P·V. Each K/V fragment loaded from shared memory is used by every row block.
// kTail: the tile holds fewer than 64 keys (the keys' last tile); key columns past `keys` are masked, and
// 16-key steps wholly past them skip their MMAs (e.g. 577 keys = 9·64 + 1 computes 1 of 4 steps in its last tile).
// kMasked: scores get the masks' terms (the causal cut, the biases) for query rows first_query + 16·rb + g (+8) that
// lie within the sequence, and rows may have no unmasked key yet (max -inf: exp2 is taken against 0 instead).
template <int kHeadDim, int kBlocks, bool kTail, bool kMasked>
__device__ __forceinline__ void attention_tc_tile(const __half* k_tile, const __half* v_tile, int keys,
                                                  const uint32_t (&q_fragments)[kBlocks][kHeadDim / 16][4],
                                                  float (&o)[kBlocks][kHeadDim / 8][4], float (&row_max)[kBlocks][2],
                                                  float (&row_sum)[kBlocks][2], float scale_log2,
                                                  const AttentionMask<__half>& mask, int64_t first_query,
                                                  int64_t key_start, int64_t sequence) {
  using namespace attention_tc_detail;
  constexpr int kRowStride = Layout<kHeadDim, kBlocks>::kRowStride;
  constexpr int kKeySteps = kHeadDim / 16;
  constexpr int kKeyTiles = kKeysPerTile / 8;
  constexpr int kDimTiles = kHeadDim / 8;
  const int lane = threadIdx.x & 31;
  const int t = lane & 3;
  [[maybe_unused]] const int g = lane >> 2;

  // S = Q · K_tileᵀ
  float s[kBlocks][kKeyTiles][4];
#pragma unroll
  for (int rb = 0; rb < kBlocks; ++rb)
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n) s[rb][n][0] = s[rb][n][1] = s[rb][n][2] = s[rb][n][3] = 0.f;
  {
    const int key = (lane & 7) + (lane >> 4) * 8, dim = ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int ks = 0; ks < kKeySteps; ++ks) {
#pragma unroll
      for (int np = 0; np < kKeyTiles / 2; ++np) {
        if (kTail && np * 16 >= keys) continue;  // keys past the sequence: S stays 0, masked below
        uint32_t kb[4];
        ldmatrix_x4(kb, shared_address(k_tile + (np * 16 + key) * kRowStride + ks * 16 + dim));
#pragma unroll
        for (int rb = 0; rb < kBlocks; ++rb) {
          mma_16816(s[rb][2 * np], q_fragments[rb][ks], kb[0], kb[1]);
          mma_16816(s[rb][2 * np + 1], q_fragments[rb][ks], kb[2], kb[3]);
        }
      }
    }
  }

  if constexpr (kMasked)
    attention_tc_apply_masks<kBlocks, kKeyTiles, kTail>(s, mask, scale_log2, first_query, key_start, sequence, keys, t, g);

  // Online softmax (base 2), per row block. Column of s[rb][n][c] within the tile: 8n + 2t + (c & 1); row within
  // the block: g + 8 * (c >> 1).
#pragma unroll
  for (int rb = 0; rb < kBlocks; ++rb) {
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        float v = kMasked ? s[rb][n][c] : s[rb][n][c] * scale_log2;  // masked: scaled with its terms above
        if (kTail && 8 * n + 2 * t + (c & 1) >= keys) v = -INFINITY;
        s[rb][n][c] = v;
        tile_max[c >> 1] = fmaxf(tile_max[c >> 1], v);
      }
    float correction[2], subtract[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // The 4 lanes of a quad hold the 64 columns of a row.
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
      // Unmasked: finite, every tile has at least one valid key. Masked: -inf while the row has no unmasked key.
      const float new_max = fmaxf(row_max[rb][r], tile_max[r]);
      subtract[r] = kMasked ? attention_safe_max(new_max) : new_max;
      correction[r] = exp2f(row_max[rb][r] - subtract[r]);  // 0 on the first tile (-inf - finite)
      row_max[rb][r] = new_max;
      row_sum[rb][r] *= correction[r];
    }
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float p = exp2f(s[rb][n][c] - subtract[c >> 1]);
        s[rb][n][c] = p;
        row_sum[rb][c >> 1] += p;
      }
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      o[rb][n][0] *= correction[0];
      o[rb][n][1] *= correction[0];
      o[rb][n][2] *= correction[1];
      o[rb][n][3] *= correction[1];
    }
  }

  // O += P · V_tile
  {
    const int key = (lane & 7) + ((lane >> 3) & 1) * 8, dim = (lane >> 4) * 8;
#pragma unroll
    for (int ks = 0; ks < kKeysPerTile / 16; ++ks) {
      if (kTail && ks * 16 >= keys) continue;  // P is 0 there
      uint32_t p[kBlocks][4];
#pragma unroll
      for (int rb = 0; rb < kBlocks; ++rb) {
        p[rb][0] = pack_half2(s[rb][2 * ks][0], s[rb][2 * ks][1]);
        p[rb][1] = pack_half2(s[rb][2 * ks][2], s[rb][2 * ks][3]);
        p[rb][2] = pack_half2(s[rb][2 * ks + 1][0], s[rb][2 * ks + 1][1]);
        p[rb][3] = pack_half2(s[rb][2 * ks + 1][2], s[rb][2 * ks + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kDimTiles / 2; ++dp) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, shared_address(v_tile + (ks * 16 + key) * kRowStride + dp * 16 + dim));
#pragma unroll
        for (int rb = 0; rb < kBlocks; ++rb) {
          mma_16816(o[rb][2 * dp], p[rb], vb[0], vb[1]);
          mma_16816(o[rb][2 * dp + 1], p[rb], vb[2], vb[3]);
        }
      }
    }
  }
}

template <int kHeadDim, int kBlocks, bool kMasked>
__global__ void __launch_bounds__(attention_tc_detail::kThreads, attention_tc_detail::kMinBlocksPerSm<kHeadDim, kBlocks>)
    attention_tc_kernel(AttentionArgs<__half> a, bool narrow) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace attention_tc_detail;
  static_assert(kHeadDim % 16 == 0, "head dim must be a multiple of 16");
  constexpr int kQueries = kQueriesPerBlock<kBlocks>;
  constexpr int kWarpRows = 16 * kBlocks;
  constexpr int kRowStride = Layout<kHeadDim, kBlocks>::kRowStride;
  constexpr int kTileHalves = Layout<kHeadDim, kBlocks>::kTileHalves;
  constexpr int kKeySteps = kHeadDim / 16;        // k-steps of S = Q·Kᵀ
  constexpr int kDimTiles = kHeadDim / 8;         // n-tiles of O (8 dims each)
  constexpr float kLog2e = 1.4426950408889634f;

  extern __shared__ __align__(16) unsigned char attention_shared[];
  __half* q_tile = reinterpret_cast<__half*>(attention_shared);
  __half* k_tiles = q_tile + kQueries * kRowStride;  // [2][64][kRowStride]
  __half* v_tiles = k_tiles + 2 * kTileHalves;       // [2][64][kRowStride]

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t b = blockIdx.z;
  const int h = blockIdx.y;
  const int64_t query_start = static_cast<int64_t>(blockIdx.x) * kQueries;
  // q and k at head_dim, v and the output at value_head_dim, both <= kHeadDim: the dims past them are zeros in shared
  // memory (exact for Q·Kᵀ; P·V's extra output columns are not stored). Each of q, k, v has its head stride and token
  // stride (per-head split projections: LeViT's [B, S, H, D + D + Dv]).
  const int head_dim = a.head_dim, value_head_dim = a.value_head_dim;
  const int64_t hd = static_cast<int64_t>(a.heads) * value_head_dim;  // output row
  const int64_t token_stride = a.token_stride, kv_token_stride = a.kv_token_stride, v_token_stride = a.v_token_stride;
  const int64_t head_offset = b * a.sequence * token_stride + h * a.q_head_stride;
  const int64_t k_head_offset = b * a.key_sequence * kv_token_stride + h * a.k_head_stride;
  const int64_t v_head_offset = b * a.key_sequence * v_token_stride + h * a.v_head_stride;
  const int queries_valid = static_cast<int>(min(static_cast<int64_t>(kQueries), a.sequence - query_start));
  // causal (key_sequence == sequence): key tiles wholly past the CTA's last query are masked for all of its rows,
  // and skipped
  const int64_t key_end = kMasked && a.causal ? min(a.key_sequence, query_start + kQueries) : a.key_sequence;
  const int tiles = static_cast<int>(ceil_div(key_end, kKeysPerTile));
  [[maybe_unused]] const AttentionMask<__half> mask(a, b, h);

  auto load_kv = [&](int tile, int buffer) {
    const int64_t key_start = static_cast<int64_t>(tile) * kKeysPerTile;
    const int keys = static_cast<int>(min(static_cast<int64_t>(kKeysPerTile), a.key_sequence - key_start));
    load_tile_async<kHeadDim, kKeysPerTile>(k_tiles + buffer * kTileHalves, a.k + k_head_offset + key_start * kv_token_stride,
                                            kv_token_stride, keys, head_dim, narrow);
    load_tile_async<kHeadDim, kKeysPerTile>(v_tiles + buffer * kTileHalves, a.v + v_head_offset + key_start * v_token_stride,
                                            v_token_stride, keys, value_head_dim, narrow);
  };

  load_tile_async<kHeadDim, kQueries>(q_tile, a.q + head_offset + query_start * token_stride, token_stride,
                                      queries_valid, head_dim, narrow);
  cp_async_commit();
  load_kv(0, 0);
  cp_async_commit();

  // Q fragments of this warp's rows stay in registers for the whole kernel.
  cp_async_wait<1>();  // Q landed (tile 0 may still be in flight)
  __syncthreads();
  uint32_t q_fragments[kBlocks][kKeySteps][4];
#pragma unroll
  for (int rb = 0; rb < kBlocks; ++rb) {
    const int row = warp * kWarpRows + rb * 16 + (lane & 15), column = (lane >> 4) * 8;
#pragma unroll
    for (int ks = 0; ks < kKeySteps; ++ks)
      ldmatrix_x4(q_fragments[rb][ks], shared_address(q_tile + row * kRowStride + column + ks * 16));
  }

  float o[kBlocks][kDimTiles][4];
#pragma unroll
  for (int rb = 0; rb < kBlocks; ++rb)
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) o[rb][n][0] = o[rb][n][1] = o[rb][n][2] = o[rb][n][3] = 0.f;
  // Per thread and row block: rows g and g+8 of the block's 16. Max is quad-uniform; sums are this thread's partial
  // sums over its columns (reduced across the quad once, at the end).
  float row_max[kBlocks][2], row_sum[kBlocks][2];
#pragma unroll
  for (int rb = 0; rb < kBlocks; ++rb) {
    row_max[rb][0] = row_max[rb][1] = -INFINITY;
    row_sum[rb][0] = row_sum[rb][1] = 0.f;
  }
  const float scale_log2 = a.scale * kLog2e;
  // Warps whose rows all lie past the sequence (in the last query block) only help load K and V.
  const bool warp_active = warp * kWarpRows < queries_valid;

  for (int tile = 0; tile < tiles; ++tile) {
    const int buffer = tile & 1;
    if (tile + 1 < tiles) load_kv(tile + 1, buffer ^ 1);
    cp_async_commit();   // possibly empty group, so that wait<1> below always means "tile `tile` landed"
    cp_async_wait<1>();
    __syncthreads();
    const __half* k_tile = k_tiles + buffer * kTileHalves;
    const __half* v_tile = v_tiles + buffer * kTileHalves;
    const int64_t key_start = static_cast<int64_t>(tile) * kKeysPerTile;
    const int keys = static_cast<int>(min(static_cast<int64_t>(kKeysPerTile), a.key_sequence - key_start));
    if (warp_active) {
      const int64_t first_query = query_start + warp * kWarpRows;
      if (keys < kKeysPerTile)
        attention_tc_tile<kHeadDim, kBlocks, true, kMasked>(k_tile, v_tile, keys, q_fragments, o, row_max, row_sum,
                                                            scale_log2, mask, first_query, key_start, a.sequence);
      else
        attention_tc_tile<kHeadDim, kBlocks, false, kMasked>(k_tile, v_tile, keys, q_fragments, o, row_max, row_sum,
                                                             scale_log2, mask, first_query, key_start, a.sequence);
    }
    __syncthreads();  // the next iteration's cp.async overwrites this buffer
  }
  cp_async_wait<0>();

  // Normalize, stage the warp's output rows in its own Q rows (only this warp reads them), store 16 bytes a lane.
  __half* staged = q_tile + warp * kWarpRows * kRowStride;
#pragma unroll
  for (int rb = 0; rb < kBlocks; ++rb) {
    float inverse_sum[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = row_sum[rb][r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      inverse_sum[r] = kMasked ? attention_inverse_sum(sum, a.zero_masked_rows) : 1.f / sum;
    }
    __half* block_rows = staged + rb * 16 * kRowStride;
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      *reinterpret_cast<__half2*>(block_rows + g * kRowStride + n * 8 + 2 * t) =
          __floats2half2_rn(o[rb][n][0] * inverse_sum[0], o[rb][n][1] * inverse_sum[0]);
      *reinterpret_cast<__half2*>(block_rows + (g + 8) * kRowStride + n * 8 + 2 * t) =
          __floats2half2_rn(o[rb][n][2] * inverse_sum[1], o[rb][n][3] * inverse_sum[1]);
    }
  }
  __syncwarp();
  // Dims < value_head_dim only, in 16-byte chunks (8-byte ones when narrow).
  __half* out = a.output + (b * a.sequence + query_start) * hd + static_cast<int64_t>(h) * value_head_dim;
  if (!narrow) {
    constexpr int kChunksPerRow = kHeadDim / 8;
    static_assert(kWarpRows * kChunksPerRow % 32 == 0, "output chunks must split evenly over the lanes");
#pragma unroll
    for (int j = 0; j < kWarpRows * kChunksPerRow / 32; ++j) {
      const int i = lane + j * 32;
      const int row = i / kChunksPerRow, chunk = i % kChunksPerRow;
      const int query = warp * kWarpRows + row;
      if (query < queries_valid && chunk * 8 < value_head_dim)
        *reinterpret_cast<uint4*>(out + query * hd + chunk * 8) =
            *reinterpret_cast<const uint4*>(staged + row * kRowStride + chunk * 8);
    }
  } else {
    constexpr int kChunksPerRow = kHeadDim / 4;
#pragma unroll
    for (int j = 0; j < kWarpRows * kChunksPerRow / 32; ++j) {
      const int i = lane + j * 32;
      const int row = i / kChunksPerRow, chunk = i % kChunksPerRow;
      const int query = warp * kWarpRows + row;
      if (query < queries_valid && chunk * 4 < value_head_dim)
        *reinterpret_cast<uint2*>(out + query * hd + chunk * 4) =
            *reinterpret_cast<const uint2*>(staged + row * kRowStride + chunk * 4);
    }
  }
#else
  __trap();  // cp.async and mma.m16n8k16 need sm_80+; fail loudly rather than leave the output unwritten
#endif
}
#endif  // AIT_HIP

#ifndef AIT_HIP
// Padded head dims up to this take the tensor-core kernel: at 256 the O accumulators and Q fragments (192 registers
// a thread) spill and the shared memory (165 KB) passes sm_80's 163 KB, so 256 runs on CUDA cores.
constexpr int kMaxTensorCoreHeadDim = 192;

template <int kHeadDim, int kRows, bool kMasked>
cudaError_t launch_attention_tc(const AttentionArgs<__half>& a, bool narrow, cudaStream_t stream) {
  using namespace attention_tc_detail;
  constexpr int kSharedBytes = Layout<kHeadDim, kRows>::kSharedBytes;
  if (kSharedBytes > 48 * 1024) {
    // Cheap host-side call; done on every launch so that it holds on whichever device is current.
    const cudaError_t attribute = cudaFuncSetAttribute(attention_tc_kernel<kHeadDim, kRows, kMasked>,
                                                       cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedBytes);
    if (attribute != cudaSuccess) return attribute;
  }
  const dim3 grid(static_cast<unsigned>(ceil_div(a.sequence, kQueriesPerBlock<kRows>)), static_cast<unsigned>(a.heads),
                  static_cast<unsigned>(a.batch));
  attention_tc_kernel<kHeadDim, kRows, kMasked><<<grid, kThreads, kSharedBytes, stream>>>(a, narrow);
  return launch_status();
}

// Launches the tensor-core kernel when it applies (q, k, v rows and the output 16-byte aligned with a head dim that
// is a multiple of 8, or 8-byte aligned with one that is a multiple of 4); returns false (launching nothing)
// otherwise, so the caller falls back to the CUDA-core kernel.
template <int kHeadDim, bool kMasked>
bool launch_attention_tensor_core_f16(const AttentionArgs<__half>& a, cudaStream_t stream, cudaError_t* status) {
  using namespace attention_tc_detail;
  // Values with a head dim, token stride or head strides of their own (per-head split projections: LeViT,
  // EfficientFormer, D = 16 or 32 with Dv = 2-4 D) run here at kHeadDim >= max(D, Dv): the narrower side's extra dims
  // are zeros, which the tensor cores do for less than the CUDA-core kernel's work (kernel_check measured the
  // CUDA-core kernel 20x slower at D = 64).
  const auto aligned = [&](uintptr_t bytes) {
    for (const void* p : {static_cast<const void*>(a.q), static_cast<const void*>(a.k), static_cast<const void*>(a.v),
                          static_cast<const void*>(a.output)})
      if (reinterpret_cast<uintptr_t>(p) % bytes != 0) return false;
    return true;
  };
  // In halves: every row start (b, s, h) is then a multiple of the chunk from an aligned base.
  const auto chunks_of = [&](int halves) {
    return a.head_dim % halves == 0 && a.value_head_dim % halves == 0 && a.token_stride % halves == 0 &&
           a.kv_token_stride % halves == 0 && a.v_token_stride % halves == 0 && a.q_head_stride % halves == 0 &&
           a.k_head_stride % halves == 0 && a.v_head_stride % halves == 0;
  };
  bool narrow;
  if (chunks_of(8) && aligned(16))
    narrow = false;
  else if (chunks_of(4) && aligned(8))
    narrow = true;
  else
    return false;
  if constexpr (kHeadDim <= 64) {
    if (ceil_div(a.sequence, kQueriesPerBlock<2>) * a.heads * a.batch >= kWideGridCtas) {
      *status = launch_attention_tc<kHeadDim, 2, kMasked>(a, narrow, stream);
      return true;
    }
  }
  *status = launch_attention_tc<kHeadDim, 1, kMasked>(a, narrow, stream);
  return true;
}
#endif  // AIT_HIP: every case runs attention_kernel

// kQKDim == kVDim: the tensor-core kernel where it applies (fp16, padded head dims 32..192), else the CUDA-core one.
template <class T, int kQKDim, int kVDim, bool kMasked>
cudaError_t launch_attention_for(const AttentionArgs<T>& a, cudaStream_t stream) {
  using namespace attention_detail;
#ifndef AIT_HIP
  // The tensor-core kernel at one padded dim covering both (D != Dv: the padded max; launch_attention_dims's dims 8
  // and 16 become 32)
  constexpr int kTensorCoreDim = attention_padded_head_dim(kQKDim > kVDim ? kQKDim : kVDim);
  if constexpr (std::is_same<T, __half>::value && (kQKDim != kVDim || attention_padded_head_dim(kQKDim) == kQKDim) &&
                kTensorCoreDim <= kMaxTensorCoreHeadDim) {
    cudaError_t tensor_core_status = cudaSuccess;
    if (launch_attention_tensor_core_f16<kTensorCoreDim, kMasked>(a, stream, &tensor_core_status)) return tensor_core_status;
  }
#endif
  const dim3 grid(static_cast<unsigned>(ceil_div(a.sequence, kQueriesPerBlock)), static_cast<unsigned>(a.heads),
                  static_cast<unsigned>(a.batch));
  constexpr int V = Vec16<T>::kElements;
  const bool vector_loads = a.head_dim % V == 0 && a.value_head_dim % V == 0 && is_aligned16(a.k) &&
                            is_aligned16(a.v) && a.kv_token_stride % V == 0 && a.v_token_stride % V == 0 &&
                            a.k_head_stride % V == 0 && a.v_head_stride % V == 0;
  attention_kernel<T, kQKDim, kVDim, kMasked><<<grid, kQueriesPerBlock, 0, stream>>>(a, vector_loads);
  return launch_status();
}

namespace attention_detail {
// The arguments with their -1 defaults filled in (see AttentionArgs).
template <class T>
AttentionArgs<T> with_defaults(const AttentionArgs<T>& args) {
  AttentionArgs<T> a = args;
  if (a.key_sequence < 0) a.key_sequence = a.sequence;
  if (a.kv_token_stride < 0) a.kv_token_stride = a.token_stride;
  if (a.value_head_dim < 0) a.value_head_dim = a.head_dim;
  if (a.v_token_stride < 0) a.v_token_stride = a.kv_token_stride;
  if (a.q_head_stride < 0) a.q_head_stride = a.head_dim;
  if (a.k_head_stride < 0) a.k_head_stride = a.head_dim;
  if (a.v_head_stride < 0) a.v_head_stride = a.value_head_dim;
  return a;
}

// The checks after the head dims' (see launch_attention_padded), then the launch.
template <class T, int kQKDim, int kVDim, bool kMasked>
cudaError_t check_and_launch(const AttentionArgs<T>& a, cudaStream_t stream) {
  if (a.causal && a.key_sequence != a.sequence) return cudaErrorInvalidValue;
  if (a.batch <= 0 || a.sequence <= 0 || a.heads <= 0) return cudaSuccess;
  if (a.key_sequence <= 0) return cudaErrorInvalidValue;  // queries and no keys
  if (a.batch > 65535 || a.heads > 65535) return cudaErrorInvalidValue;
  if (a.bias_count < 0 || a.bias_count > kMaxAttentionBiases || (!kMasked && (a.bias_count > 0 || a.causal)))
    return cudaErrorInvalidValue;
  for (int i = 0; i < a.bias_count; ++i)
    if (a.bias[i].data == nullptr || a.bias[i].batch_modulo <= 0) return cudaErrorInvalidValue;
  return launch_attention_for<T, kQKDim, kVDim, kMasked>(a, stream);
}
}  // namespace attention_detail

// Attention at padded head dim kHeadDim (attention_padded_head_dim(max(head_dim, value_head_dim)), which the
// generated code names, so a build compiles only the head dims it uses). kMasked: the variant that reads a.bias /
// a.causal (the code generator picks it when the node has masks, so builds without masks compile only the unmasked
// kernels). Returns cudaErrorInvalidValue for head dims that do not run at kHeadDim, for masks given to the unmasked
// variant, for bad bias counts, and for a causal mask over keys of another length than the queries.
template <class T, int kHeadDim, bool kMasked = false>
cudaError_t launch_attention_padded(const AttentionArgs<T>& args, cudaStream_t stream) {
  static_assert(attention_padded_head_dim(kHeadDim) == kHeadDim, "kHeadDim must be a padded head dim");
  const AttentionArgs<T> a = attention_detail::with_defaults(args);
  if (a.head_dim <= 0 || a.value_head_dim <= 0) return cudaErrorInvalidValue;
  if (attention_padded_head_dim(a.head_dim > a.value_head_dim ? a.head_dim : a.value_head_dim) != kHeadDim)
    return cudaErrorInvalidValue;
  return attention_detail::check_and_launch<T, kHeadDim, kHeadDim, kMasked>(a, stream);
}

// Attention whose values have a head dim of their own, at padded dims kHeadDim = attention_padded_cuda_core_dim(D)
// for q·k and kValueHeadDim = attention_padded_cuda_core_dim(Dv) for p·v (the generated code names both): fp16 with
// aligned rows takes the tensor-core kernel at the padded max(D, Dv) (launch_attention_for); otherwise the CUDA-core
// kernel at the two dims, without padding the narrower of the two to the wider. Otherwise as
// launch_attention_padded (which runs the same forms at max(D, Dv)).
template <class T, int kHeadDim, int kValueHeadDim, bool kMasked = false>
cudaError_t launch_attention_dims(const AttentionArgs<T>& args, cudaStream_t stream) {
  static_assert(attention_padded_cuda_core_dim(kHeadDim) == kHeadDim &&
                    attention_padded_cuda_core_dim(kValueHeadDim) == kValueHeadDim,
                "kHeadDim and kValueHeadDim must be padded CUDA-core dims");
  const AttentionArgs<T> a = attention_detail::with_defaults(args);
  if (attention_padded_cuda_core_dim(a.head_dim) != kHeadDim ||
      attention_padded_cuda_core_dim(a.value_head_dim) != kValueHeadDim)
    return cudaErrorInvalidValue;
  return attention_detail::check_and_launch<T, kHeadDim, kValueHeadDim, kMasked>(a, stream);
}

// Any head dims 1..256: dispatches to launch_attention_padded over every padded head dim (compiles all of them);
// values of their own head dim run at the padded max(D, Dv) (launch_attention_dims, at their own pair, is faster).
template <class T, bool kMasked = false>
cudaError_t launch_attention(const AttentionArgs<T>& a, cudaStream_t stream) {
  switch (attention_padded_head_dim(a.value_head_dim > a.head_dim ? a.value_head_dim : a.head_dim)) {
    case 32: return launch_attention_padded<T, 32, kMasked>(a, stream);
    case 48: return launch_attention_padded<T, 48, kMasked>(a, stream);
    case 64: return launch_attention_padded<T, 64, kMasked>(a, stream);
    case 80: return launch_attention_padded<T, 80, kMasked>(a, stream);
    case 96: return launch_attention_padded<T, 96, kMasked>(a, stream);
    case 128: return launch_attention_padded<T, 128, kMasked>(a, stream);
    case 160: return launch_attention_padded<T, 160, kMasked>(a, stream);
    case 192: return launch_attention_padded<T, 192, kMasked>(a, stream);
    case 256: return launch_attention_padded<T, 256, kMasked>(a, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace kernels
}  // namespace ait
