// Grouped convolution over NHWC tensors (1 < group < C), any channels per group (odd, not multiples of 8: RegNet's
// 24, ResNeXt's 4, ShuffleNet's), any kernel size, stride, padding and dilation, with the fused conv2d epilogue
// (bias, per-channel scale, residual add, activations in step order) applied before the one store. The code
// generator uses it where CUTLASS's group kernels refuse the channel counts (cutlass/conv.ts chooseGroupConv).
//
// Work split: a block owns one group's chunk of kt <= 32 output channels (a multiple of 8) and kPixels output pixels
// (flattened n·p·q); each thread computes 8 output channels of one pixel with fp32 accumulators. The weights of the
// chunk go through shared memory as [tap][channel][kt], so a thread reads its 8 weights of a (tap, channel) as one
// 16-byte vector, the same for every thread of the warp (a broadcast). The input channels of the group are read as
// 16-byte vectors when C/group % 8 == 0 (else element by element); the taps of neighbouring pixels hit L1/L2.
// Channels per group beyond what shared memory holds are taken in chunks of `cc` channels.
//
// Layouts: input [n, in_h, in_w, c]; weight [k, kernel_h, kernel_w, c / group] (OHWI, as the layout pass prepares
// it); output [n, out_h, out_w, k]. Output channel k belongs to group k / (k / group) and reads that group's input
// channels. The epilogue is an ew::Chain (elementwise.cuh) over in[0] = the accumulator and in[1 + j] = operand j;
// an operand is a per-channel vector [k] or a full tensor shaped like the output (the residual, which may share the
// output's buffer: each element is read before the same thread writes it).
//
// Two paths, one launcher (launch_grouped_conv2d_nhwc; GroupedConvPath picks, kAuto = the tensor-core path for fp16
// storage on CUDA):
// - direct (grouped_conv2d_nhwc_kernel): fp32 FMAs on the CUDA cores, described above; any T, and the only path on HIP.
// - tensor core (grouped_conv2d_nhwc_mma_kernel): per group an implicit GEMM, M = output pixels, N = the group's
//   output channels, K = the flattened (tap, input channel) index f = tap · C/group + c, which is exactly the OHWI
//   weight's inner index, so a row of the weight is a contiguous K row of B. A block owns 128 pixels and kN <= 32 of
//   the group's output channels (a multiple of 8: wmma's m32n8k16 shape covers 8, 16, 24, 32 with no padding, e.g.
//   RegNet's 24); each of its 4 warps owns 32 pixels. K goes in steps of 32: the im2col rows of the step are gathered
//   into shared memory (16-byte vectors when C/group % 8 == 0, zeros for padding taps and f past the end), the weight
//   rows beside them, then two k16 MMAs per fragment with fp32 accumulators. The accumulators go through shared memory
//   (the same bytes as the tiles) to the epilogue, one thread per output element.
//   Measured against the direct path on the GPU by grouped_conv_check (compiler/backends/cuda/tests); its gathers run
//   on the host in grouped_conv_gather_host.cu.
//
// 3-D (grouped convolution over video, NDHWC): the depth fields of the args set, input [n, in_d, in_h, in_w, c],
// weight [k, kernel_d, kernel_h, kernel_w, c / group] (ODHWI), output [n, out_d, out_h, out_w, k]; pixels are then
// (n, od, oh, ow) and taps (t, r, s). The fields default to depth 1, the 2-D convolution.
#pragma once

#include "common.cuh"
#include "elementwise.cuh"

#ifndef AIT_HIP  // the tensor-core path is wmma (CUDA only); HIP builds take the direct path
#include <mma.h>

#include <type_traits>
#endif

namespace ait {
namespace kernels {

enum class GroupedConvOperand : int32_t {
  kChannel = 0,  // [k]: element (channel)
  kFull = 1,     // [n, out_h, out_w, k]: element (output index)
};

template <class T, int kOperands>
struct GroupedConv2dArgs {
  const T* input;   // [n, in_h, in_w, c]
  const T* weight;  // [k, kernel_h, kernel_w, c / group]
  T* output;        // [n, out_h, out_w, k]
  const T* operands[kOperands > 0 ? kOperands : 1];
  GroupedConvOperand operand_kinds[kOperands > 0 ? kOperands : 1];
  int64_t n;
  int32_t in_h, in_w, c, out_h, out_w, k, group;
  int32_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
  // 3-D: the depth axis (input and output depth, kernel depth, stride, front pad, dilation); 1/0 for 2-D
  int32_t in_d = 1, out_d = 1, kernel_d = 1, stride_d = 1, pad_front = 0, dilation_d = 1;
};

constexpr int kGroupedConvPixels = 64;        // output pixels per block
constexpr int kGroupedConvChannels = 8;       // output channels per thread
constexpr int kGroupedConvMaxChunk = 32;      // output channels per block
constexpr int kGroupedConvSmemBytes = 40960;  // weight tile budget

struct GroupedConvTiling {
  int kt;  // output channels per block (multiple of 8, <= 32)
  int cc;  // input channels per weight chunk
};

inline GroupedConvTiling grouped_conv_tiling(int k_per_group, int c_per_group, int taps, int element_bytes) {
  GroupedConvTiling t;
  t.kt = static_cast<int>(ceil_div(k_per_group < kGroupedConvMaxChunk ? k_per_group : kGroupedConvMaxChunk, 8) * 8);
  int cc = kGroupedConvSmemBytes / (t.kt * taps * element_bytes);
  if (cc >= 8) cc -= cc % 8;
  if (cc < 1) cc = 1;
  t.cc = cc < c_per_group ? cc : c_per_group;
  return t;
}

// kVecIn: C/group % 8 == 0 and 16-byte aligned input; the group's channels are read 8 at a time (cc is a multiple of 8).
template <class T, int kOperands, class Fn, bool kVecIn>
__global__ void grouped_conv2d_nhwc_kernel(GroupedConv2dArgs<T, kOperands> a, Fn fn, GroupedConvTiling tiling) {
  extern __shared__ __align__(16) unsigned char grouped_conv_smem[];
  T* wsm = reinterpret_cast<T*>(grouped_conv_smem);  // [taps][cc][kt]
  const int kt = tiling.kt, cc_max = tiling.cc;
  const int cg = a.c / a.group, kg = a.k / a.group;
  const int taps = a.kernel_d * a.kernel_h * a.kernel_w;
  const int chunks = (kg + kt - 1) / kt;
  const int g = blockIdx.y / chunks;
  const int kbase = (blockIdx.y % chunks) * kt;  // within the group
  const int columns = kt / kGroupedConvChannels;
  const int column = threadIdx.x / kGroupedConvPixels;  // warps share a column: weight reads are broadcasts
  const int64_t pixel = blockIdx.x * static_cast<int64_t>(kGroupedConvPixels) + threadIdx.x % kGroupedConvPixels;
  const int64_t pixels = a.n * a.out_d * a.out_h * a.out_w;
  const bool active = pixel < pixels && column < columns;
  const int ow = static_cast<int>(pixel % a.out_w);
  const int oh = static_cast<int>((pixel / a.out_w) % a.out_h);
  const int od = static_cast<int>((pixel / (static_cast<int64_t>(a.out_w) * a.out_h)) % a.out_d);
  const int64_t n = pixel / (static_cast<int64_t>(a.out_w) * a.out_h * a.out_d);
  const int k0 = kbase + column * kGroupedConvChannels;  // first output channel (within the group) of this thread

  float acc[kGroupedConvChannels];
#pragma unroll
  for (int j = 0; j < kGroupedConvChannels; ++j) acc[j] = 0.f;

  for (int c0 = 0; c0 < cg; c0 += cc_max) {
    const int cc = cg - c0 < cc_max ? cg - c0 : cc_max;
    __syncthreads();  // the previous chunk's weights are no longer read
    const int tile = taps * cc * kt;
    for (int i = threadIdx.x; i < tile; i += blockDim.x) {
      const int kk = i % kt, rest = i / kt;
      const int ci = rest % cc, tap = rest / cc;
      const int kc = kbase + kk;
      wsm[i] = kc < kg ? a.weight[(static_cast<int64_t>(g * kg + kc) * taps + tap) * cg + c0 + ci] : from_float<T>(0.f);
    }
    __syncthreads();
    if (!active) continue;
    for (int t = 0; t < a.kernel_d; ++t) {
      const int id = od * a.stride_d - a.pad_front + t * a.dilation_d;
      if (id < 0 || id >= a.in_d) continue;
      for (int r = 0; r < a.kernel_h; ++r) {
        const int ih = oh * a.stride_h - a.pad_top + r * a.dilation_h;
        if (ih < 0 || ih >= a.in_h) continue;
        for (int s = 0; s < a.kernel_w; ++s) {
          const int iw = ow * a.stride_w - a.pad_left + s * a.dilation_w;
          if (iw < 0 || iw >= a.in_w) continue;
          const T* x = a.input + (((n * a.in_d + id) * a.in_h + ih) * a.in_w + iw) * a.c + g * cg + c0;
          const T* w = wsm + (((t * a.kernel_h + r) * a.kernel_w + s) * cc) * kt + column * kGroupedConvChannels;
          if (kVecIn) {
            for (int ci = 0; ci < cc; ci += 8) {
              Vec16<T> xv;
              xv.raw = __ldg(reinterpret_cast<const uint4*>(x + ci));
#pragma unroll
              for (int e = 0; e < 8; ++e) {
                const float xf = to_float(xv.elements[e]);
                const Vec16<T> wv = *reinterpret_cast<const Vec16<T>*>(w + (ci + e) * kt);
#pragma unroll
                for (int j = 0; j < kGroupedConvChannels; ++j) acc[j] = fmaf(xf, to_float(wv.elements[j]), acc[j]);
              }
            }
          } else {
            for (int ci = 0; ci < cc; ++ci) {
              const float xf = to_float(x[ci]);
              const Vec16<T> wv = *reinterpret_cast<const Vec16<T>*>(w + ci * kt);
#pragma unroll
              for (int j = 0; j < kGroupedConvChannels; ++j) acc[j] = fmaf(xf, to_float(wv.elements[j]), acc[j]);
            }
          }
        }
      }
    }
  }
  if (!active) return;
  const int64_t out = pixel * a.k + g * kg + k0;
#pragma unroll
  for (int j = 0; j < kGroupedConvChannels; ++j) {
    if (k0 + j >= kg) break;
    const int channel = g * kg + k0 + j;
    float in[1 + kOperands];
    in[0] = acc[j];
#pragma unroll
    for (int o = 0; o < kOperands; ++o)
      in[1 + o] = to_float(a.operands[o][a.operand_kinds[o] == GroupedConvOperand::kFull ? out + j : channel]);
    a.output[out + j] = from_float<T>(fn(0.f, in));
  }
}

enum class GroupedConvPath : int32_t {
  kAuto = 0,        // the tensor-core path where it exists (fp16 storage, CUDA), else the direct one
  kDirect = 1,      // fp32 FMAs on the CUDA cores
  kTensorCore = 2,  // wmma; fp16 storage on CUDA only (the launch returns cudaErrorInvalidValue otherwise)
};

constexpr int kGroupedMmaPixels = 128;  // output pixels per block: 4 warps x 32 rows (the m32n8k16 fragment's M)
constexpr int kGroupedMmaK = 32;        // flattened (tap, channel) elements per shared-memory step
constexpr int kGroupedMmaThreads = 128;
constexpr int kGroupedMmaPad = 8;       // halves after each tile row: wmma's ldm a multiple of 8, rows off-bank

// Output channels per block (kN) for a group of kg: each extra block re-gathers the same im2col rows, which costs
// about as much as 16 output channels of MMA work, so kN minimizes ceil(kg / kN) * (kN + 16) over 8, 16, 24, 32.
inline int grouped_mma_channels(int kg) {
  const int widths[] = {32, 24, 16, 8};  // ties keep the wider tile
  int best = 32;
  int64_t best_cost = ceil_div(kg, 32) * (32 + 16);
  for (int n : widths) {
    const int64_t cost = ceil_div(kg, n) * (n + 16);
    if (cost < best_cost) best = n, best_cost = cost;
  }
  return best;
}

// The tensor-core path's gathers, host and device (test/backends/cuda/grouped-conv-gather.test.ts runs them on the
// host: tests/grouped_conv_gather_host.cu). A block's row table: for each of its 128 rows (output pixels) the image's
// first input pixel and the window origin, which may be negative (padding); rows past the last pixel get an origin
// no tap reaches, so they gather zeros and are not stored.
struct GroupedMmaRows {
  int64_t pixel[kGroupedMmaPixels];  // n · in_d · in_h · in_w: the row's image, in input pixels
  int d[kGroupedMmaPixels], h[kGroupedMmaPixels], w[kGroupedMmaPixels];
};

template <class T, int kOperands>
__host__ __device__ __forceinline__ void grouped_mma_row(const GroupedConv2dArgs<T, kOperands>& a, int64_t pixel0, int m,
                                                         GroupedMmaRows& rows) {
  const int64_t p = pixel0 + m;
  if (p < a.n * a.out_d * a.out_h * a.out_w) {
    const int ow = static_cast<int>(p % a.out_w);
    const int oh = static_cast<int>((p / a.out_w) % a.out_h);
    const int od = static_cast<int>((p / (static_cast<int64_t>(a.out_w) * a.out_h)) % a.out_d);
    const int64_t n = p / (static_cast<int64_t>(a.out_w) * a.out_h * a.out_d);
    rows.pixel[m] = n * a.in_d * a.in_h * a.in_w;
    rows.d[m] = od * a.stride_d - a.pad_front;
    rows.h[m] = oh * a.stride_h - a.pad_top;
    rows.w[m] = ow * a.stride_w - a.pad_left;
  } else {
    rows.pixel[m] = 0;
    rows.d[m] = rows.h[m] = rows.w[m] = -(1 << 30);
  }
}

// The offset of (row m, flattened f = tap · C/group + c) from the group's first input channel, or -1 where the tap
// falls in the padding.
template <class T, int kOperands>
__host__ __device__ __forceinline__ int64_t grouped_mma_input_offset(const GroupedConv2dArgs<T, kOperands>& a,
                                                                     const GroupedMmaRows& rows, int cg, int m, int f) {
  const int tap = f / cg, ci = f - tap * cg;
  const int s = tap % a.kernel_w, r = (tap / a.kernel_w) % a.kernel_h, t = tap / (a.kernel_w * a.kernel_h);
  const int id = rows.d[m] + t * a.dilation_d, ih = rows.h[m] + r * a.dilation_h, iw = rows.w[m] + s * a.dilation_w;
  if (id < 0 || id >= a.in_d || ih < 0 || ih >= a.in_h || iw < 0 || iw >= a.in_w) return -1;
  return (rows.pixel[m] + (static_cast<int64_t>(id) * a.in_h + ih) * a.in_w + iw) * a.c + ci;
}

template <class V>
__host__ __device__ __forceinline__ V grouped_mma_load(const V* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

// One K step's tiles, the share of thread `thread` of `threads`: as [BM][LD] the im2col rows (f0 .. f0 + 32), bs
// [kN][LD] the weight rows of output channels kbase .. kbase + kN of group g; zeros past F, past the group's
// channels and in the padding. kVec: 16-byte vectors (C/group % 8 == 0, aligned input and weight).
template <class T, int kOperands, int kN, bool kVec>
__host__ __device__ __forceinline__ void grouped_mma_load_step(const GroupedConv2dArgs<T, kOperands>& a,
                                                               const GroupedMmaRows& rows, int g, int kbase, int f0,
                                                               T* as, T* bs, int thread, int threads) {
  constexpr int BM = kGroupedMmaPixels, BK = kGroupedMmaK, LD = BK + kGroupedMmaPad;
  const int cg = a.c / a.group, kg = a.k / a.group;
  const int F = a.kernel_d * a.kernel_h * a.kernel_w * cg;
  const T* group_input = a.input + static_cast<int64_t>(g) * cg;
  const T* group_weight = a.weight + static_cast<int64_t>(g * kg + kbase) * F;
  if (kVec) {
    for (int i = thread; i < BM * BK / 8; i += threads) {
      const int m = i / (BK / 8), v = (i % (BK / 8)) * 8;
      uint4 value = make_uint4(0, 0, 0, 0);
      if (f0 + v < F) {
        const int64_t at = grouped_mma_input_offset(a, rows, cg, m, f0 + v);
        if (at >= 0) value = grouped_mma_load(reinterpret_cast<const uint4*>(group_input + at));
      }
      *reinterpret_cast<uint4*>(as + m * LD + v) = value;
    }
    for (int i = thread; i < kN * BK / 8; i += threads) {
      const int n = i / (BK / 8), v = (i % (BK / 8)) * 8;
      uint4 value = make_uint4(0, 0, 0, 0);
      if (kbase + n < kg && f0 + v < F)
        value = grouped_mma_load(reinterpret_cast<const uint4*>(group_weight + static_cast<int64_t>(n) * F + f0 + v));
      *reinterpret_cast<uint4*>(bs + n * LD + v) = value;
    }
  } else {
    const T zero{};  // all bits zero: +0 in every storage type
    for (int i = thread; i < BM * BK; i += threads) {
      const int m = i / BK, f = i % BK;
      T value = zero;
      if (f0 + f < F) {
        const int64_t at = grouped_mma_input_offset(a, rows, cg, m, f0 + f);
        if (at >= 0) value = group_input[at];
      }
      as[m * LD + f] = value;
    }
    for (int i = thread; i < kN * BK; i += threads) {
      const int n = i / BK, f = i % BK;
      bs[n * LD + f] = kbase + n < kg && f0 + f < F ? group_weight[static_cast<int64_t>(n) * F + f0 + f] : zero;
    }
  }
}

#ifndef AIT_HIP
// kVec: C/group % 8 == 0 with 16-byte aligned input and weight: im2col and weight rows read 8 elements at a time (a
// vector of 8 never crosses a tap, since f0 and C/group are multiples of 8).
template <class T, int kOperands, class Fn, int kN, bool kVec>
__global__ void __launch_bounds__(kGroupedMmaThreads) grouped_conv2d_nhwc_mma_kernel(GroupedConv2dArgs<T, kOperands> a, Fn fn) {
  using namespace nvcuda;
  constexpr int BM = kGroupedMmaPixels, BK = kGroupedMmaK, LD = BK + kGroupedMmaPad, LDC = kN + 4;
  constexpr int kTileBytes = (BM + kN) * LD * 2, kAccBytes = BM * LDC * 4;
  // the A and B tiles during the K loop, then the fp32 accumulators for the epilogue
  __shared__ __align__(32) unsigned char smem[kTileBytes > kAccBytes ? kTileBytes : kAccBytes];
  __shared__ GroupedMmaRows rows;
  T* as = reinterpret_cast<T*>(smem);     // [BM][LD]: im2col rows, (tap, channel) along K
  T* bs = as + BM * LD;                   // [kN][LD]: weight rows (B column-major: element (f, n) at n·LD + f)
  float* cs = reinterpret_cast<float*>(smem);  // [BM][LDC]

  const int cg = a.c / a.group, kg = a.k / a.group;
  const int F = a.kernel_d * a.kernel_h * a.kernel_w * cg;
  const int chunks = (kg + kN - 1) / kN;
  const int g = blockIdx.y / chunks;
  const int kbase = (blockIdx.y % chunks) * kN;  // within the group
  const int64_t pixels = a.n * a.out_d * a.out_h * a.out_w;
  const int64_t pixel0 = blockIdx.x * static_cast<int64_t>(BM);
  for (int m = threadIdx.x; m < BM; m += blockDim.x) grouped_mma_row(a, pixel0, m, rows);

  const int warp = threadIdx.x / 32;
  wmma::fragment<wmma::accumulator, 32, 8, 16, float> acc[kN / 8];
#pragma unroll
  for (int j = 0; j < kN / 8; ++j) wmma::fill_fragment(acc[j], 0.f);
  for (int f0 = 0; f0 < F; f0 += BK) {
    __syncthreads();  // the previous step's tiles (or the row table) are ready / no longer read
    grouped_mma_load_step<T, kOperands, kN, kVec>(a, rows, g, kbase, f0, as, bs, threadIdx.x, blockDim.x);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 32, 8, 16, __half, wmma::row_major> fa;
      wmma::load_matrix_sync(fa, as + warp * 32 * LD + kk, LD);
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) {
        wmma::fragment<wmma::matrix_b, 32, 8, 16, __half, wmma::col_major> fb;
        wmma::load_matrix_sync(fb, bs + j * 8 * LD + kk, LD);
        wmma::mma_sync(acc[j], fa, fb, acc[j]);
      }
    }
  }
  __syncthreads();  // the tiles' bytes become the accumulators'
#pragma unroll
  for (int j = 0; j < kN / 8; ++j) wmma::store_matrix_sync(cs + warp * 32 * LDC + j * 8, acc[j], LDC, wmma::mem_row_major);
  __syncthreads();
  for (int i = threadIdx.x; i < BM * kN; i += blockDim.x) {  // consecutive threads: consecutive channels of a pixel
    const int m = i / kN, column = i % kN;
    const int64_t p = pixel0 + m;
    if (p >= pixels || kbase + column >= kg) continue;
    const int channel = g * kg + kbase + column;
    const int64_t out = p * a.k + channel;
    float in[1 + kOperands];
    in[0] = cs[m * LDC + column];
#pragma unroll
    for (int o = 0; o < kOperands; ++o)
      in[1 + o] = to_float(a.operands[o][a.operand_kinds[o] == GroupedConvOperand::kFull ? out : channel]);
    a.output[out] = from_float<T>(fn(0.f, in));
  }
}

template <class T, int kOperands, class Fn, int kN>
cudaError_t launch_grouped_conv2d_nhwc_mma(const GroupedConv2dArgs<T, kOperands>& a, Fn fn, cudaStream_t stream) {
  const int cg = a.c / a.group, kg = a.k / a.group;
  const int64_t pixels = a.n * a.out_d * a.out_h * a.out_w;
  const int64_t blocks_y = static_cast<int64_t>(a.group) * ceil_div(kg, kN);
  const int64_t blocks_x = ceil_div(pixels, kGroupedMmaPixels);
  if (blocks_y > 65535 || blocks_x > 0x7fffffff) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(blocks_y));
  const bool vec = cg % 8 == 0 && is_aligned16(a.input) && is_aligned16(a.weight);
  if (vec)
    grouped_conv2d_nhwc_mma_kernel<T, kOperands, Fn, kN, true><<<grid, kGroupedMmaThreads, 0, stream>>>(a, fn);
  else
    grouped_conv2d_nhwc_mma_kernel<T, kOperands, Fn, kN, false><<<grid, kGroupedMmaThreads, 0, stream>>>(a, fn);
  return launch_status();
}
#endif  // AIT_HIP

template <class T, int kOperands, class Fn>
cudaError_t launch_grouped_conv2d_nhwc(const GroupedConv2dArgs<T, kOperands>& a, Fn fn, cudaStream_t stream,
                                       GroupedConvPath path = GroupedConvPath::kAuto) {
  static_assert(Vec16<T>::kElements >= kGroupedConvChannels, "8 output channels per 16-byte weight vector");
  if (a.group <= 0 || a.c % a.group != 0 || a.k % a.group != 0) return cudaErrorInvalidValue;
  const int64_t pixels = a.n * a.out_d * a.out_h * a.out_w;
  if (pixels <= 0 || a.k <= 0) return cudaSuccess;
#ifndef AIT_HIP
  if constexpr (std::is_same<T, __half>::value) {
    if (path != GroupedConvPath::kDirect) {
      switch (grouped_mma_channels(a.k / a.group)) {
        case 8: return launch_grouped_conv2d_nhwc_mma<T, kOperands, Fn, 8>(a, fn, stream);
        case 16: return launch_grouped_conv2d_nhwc_mma<T, kOperands, Fn, 16>(a, fn, stream);
        case 24: return launch_grouped_conv2d_nhwc_mma<T, kOperands, Fn, 24>(a, fn, stream);
        default: return launch_grouped_conv2d_nhwc_mma<T, kOperands, Fn, 32>(a, fn, stream);
      }
    }
  }
#endif
  if (path == GroupedConvPath::kTensorCore) return cudaErrorInvalidValue;
  const int cg = a.c / a.group, kg = a.k / a.group;
  const int taps = a.kernel_d * a.kernel_h * a.kernel_w;
  const GroupedConvTiling tiling = grouped_conv_tiling(kg, cg, taps, static_cast<int>(sizeof(T)));
  const int chunks = (kg + tiling.kt - 1) / tiling.kt;
  const int64_t blocks_y = static_cast<int64_t>(a.group) * chunks;
  const int64_t blocks_x = ceil_div(pixels, kGroupedConvPixels);
  if (blocks_y > 65535 || blocks_x > 0x7fffffff) return cudaErrorInvalidValue;
  // 8-element vectors of T hold the 8 weights of a thread; fp32 storage (4 per 16 bytes) is not instantiated
  const size_t smem = static_cast<size_t>(taps) * tiling.cc * tiling.kt * sizeof(T);
  if (smem > 48 * 1024) return cudaErrorInvalidValue;  // a kernel of more than 640 taps
  const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(blocks_y));
  const dim3 block(kGroupedConvPixels * (tiling.kt / kGroupedConvChannels));
  const bool vec_in = cg % 8 == 0 && tiling.cc % 8 == 0 && is_aligned16(a.input);
  if (vec_in)
    grouped_conv2d_nhwc_kernel<T, kOperands, Fn, true><<<grid, block, smem, stream>>>(a, fn, tiling);
  else
    grouped_conv2d_nhwc_kernel<T, kOperands, Fn, false><<<grid, block, smem, stream>>>(a, fn, tiling);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
