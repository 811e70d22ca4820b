// Pooling over NHWC tensors: max / average 2-D pooling with padding and strides (3-D over NDHWC: the depth fields of
// Pool2dArgs), and global average / max pooling (any number of spatial axes between batch and channels).
// Windowed pools: one thread per output element (or per 8 fp16 channels when C % 8 == 0), channels innermost, so
// neighbouring threads read neighbouring channels. Global pools: a block reduction (global_pool_nhwc_kernel below).
#pragma once

#include <algorithm>

#include "common.cuh"

namespace ait {
namespace kernels {

enum class PoolMode : int32_t { kMax = 0, kAverage = 1 };

// 2-D pooling over [n, in_h, in_w, c]; 3-D (video networks' MaxPool3d / AvgPool3d) over [n, in_d, in_h, in_w, c]
// with the depth fields set (they default to depth 1, the 2-D pool).
template <class T>
struct Pool2dArgs {
  const T* input;  // [n, in_h, in_w, c] (3-D: [n, in_d, in_h, in_w, c])
  T* output;       // [n, out_h, out_w, c] (3-D: [n, out_d, out_h, out_w, c])
  int64_t n;
  int32_t in_h, in_w, c, out_h, out_w;
  int32_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
  PoolMode mode;
  bool count_include_pad;  // average: divide by the full window (ONNX count_include_pad=1) or by the valid taps
  int32_t in_d = 1, out_d = 1, kernel_d = 1, stride_d = 1, pad_front = 0, dilation_d = 1;
  // count_include_pad with end pads unlike the begin pads (back, bottom, right); -1: the same as the begin pad
  int32_t pad_back = -1, pad_bottom = -1, pad_right = -1;
};

// Window taps along one axis inside the padded input, for count_include_pad: the window from `start` clipped at
// in + end pad (ONNX, as onnxruntime computes it: padding counts, the part of a ceil_mode window beyond it does not).
__device__ __forceinline__ int pool_padded_taps(int start, int kernel, int dilation, int in, int end_pad) {
  const int end = min(start + (kernel - 1) * dilation + 1, in + end_pad);
  return (end - start + dilation - 1) / dilation;
}

// The output position (n, od, oh, ow) of flattened position `rest` (channels already divided out).
struct PoolPosition {
  int64_t n;
  int od, oh, ow;
};

template <class T>
__device__ __forceinline__ PoolPosition pool_position(const Pool2dArgs<T>& a, int64_t rest) {
  PoolPosition p;
  p.ow = static_cast<int>(rest % a.out_w);
  rest /= a.out_w;
  p.oh = static_cast<int>(rest % a.out_h);
  rest /= a.out_h;
  p.od = static_cast<int>(rest % a.out_d);
  p.n = rest / a.out_d;
  return p;
}

// The average's divisor at an output position (taps: the valid taps counted by the window loop).
template <class T>
__device__ __forceinline__ int pool_divisor(const Pool2dArgs<T>& a, const PoolPosition& p, int taps) {
  if (!a.count_include_pad) return taps;
  return pool_padded_taps(p.od * a.stride_d - a.pad_front, a.kernel_d, a.dilation_d, a.in_d, a.pad_back < 0 ? a.pad_front : a.pad_back) *
         pool_padded_taps(p.oh * a.stride_h - a.pad_top, a.kernel_h, a.dilation_h, a.in_h, a.pad_bottom < 0 ? a.pad_top : a.pad_bottom) *
         pool_padded_taps(p.ow * a.stride_w - a.pad_left, a.kernel_w, a.dilation_w, a.in_w, a.pad_right < 0 ? a.pad_left : a.pad_right);
}

template <class T>
__global__ void pool2d_nhwc_kernel(Pool2dArgs<T> a) {
  const int64_t total = a.n * a.out_d * a.out_h * a.out_w * a.c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % a.c);
    const PoolPosition p = pool_position(a, i / a.c);
    float result = a.mode == PoolMode::kMax ? -INFINITY : 0.f;
    int taps = 0;
    for (int kd = 0; kd < a.kernel_d; ++kd) {
      const int id = p.od * a.stride_d - a.pad_front + kd * a.dilation_d;
      if (id < 0 || id >= a.in_d) continue;
      for (int kh = 0; kh < a.kernel_h; ++kh) {
        const int ih = p.oh * a.stride_h - a.pad_top + kh * a.dilation_h;
        if (ih < 0 || ih >= a.in_h) continue;
        for (int kw = 0; kw < a.kernel_w; ++kw) {
          const int iw = p.ow * a.stride_w - a.pad_left + kw * a.dilation_w;
          if (iw < 0 || iw >= a.in_w) continue;
          const float v = to_float(a.input[(((p.n * a.in_d + id) * a.in_h + ih) * a.in_w + iw) * a.c + c]);
          result = a.mode == PoolMode::kMax ? fmaxf(result, v) : result + v;
          ++taps;
        }
      }
    }
    if (a.mode == PoolMode::kAverage) {
      const int divisor = pool_divisor(a, p, taps);
      result = divisor > 0 ? result / static_cast<float>(divisor) : 0.f;
    }
    a.output[i] = from_float<T>(result);
  }
}

// The same with 16 bytes of channels (8 fp16) per thread: one 16-byte load per tap and one store. Needs
// c % kVec == 0 and 16-byte aligned input and output (the launcher checks and otherwise takes the scalar kernel).
template <class T>
__global__ void pool2d_nhwc_vector_kernel(Pool2dArgs<T> a) {
  constexpr int kVec = 16 / sizeof(T);
  union Pack {
    uint4 bits;
    T values[kVec];
  };
  const int groups = a.c / kVec;
  const int64_t total = a.n * a.out_d * a.out_h * a.out_w * groups;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int g = static_cast<int>(i % groups);
    const PoolPosition p = pool_position(a, i / groups);
    float result[kVec];
#pragma unroll
    for (int k = 0; k < kVec; ++k) result[k] = a.mode == PoolMode::kMax ? -INFINITY : 0.f;
    int taps = 0;
    for (int kd = 0; kd < a.kernel_d; ++kd) {
      const int id = p.od * a.stride_d - a.pad_front + kd * a.dilation_d;
      if (id < 0 || id >= a.in_d) continue;
      for (int kh = 0; kh < a.kernel_h; ++kh) {
        const int ih = p.oh * a.stride_h - a.pad_top + kh * a.dilation_h;
        if (ih < 0 || ih >= a.in_h) continue;
        for (int kw = 0; kw < a.kernel_w; ++kw) {
          const int iw = p.ow * a.stride_w - a.pad_left + kw * a.dilation_w;
          if (iw < 0 || iw >= a.in_w) continue;
          Pack v;
          v.bits = __ldg(reinterpret_cast<const uint4*>(a.input + (((p.n * a.in_d + id) * a.in_h + ih) * a.in_w + iw) * a.c) + g);
#pragma unroll
          for (int k = 0; k < kVec; ++k) {
            const float x = to_float(v.values[k]);
            result[k] = a.mode == PoolMode::kMax ? fmaxf(result[k], x) : result[k] + x;
          }
          ++taps;
        }
      }
    }
    float scale = 1.f;
    if (a.mode == PoolMode::kAverage) {
      const int divisor = pool_divisor(a, p, taps);
      scale = divisor > 0 ? 1.f / static_cast<float>(divisor) : 0.f;
    }
    Pack out;
#pragma unroll
    for (int k = 0; k < kVec; ++k) out.values[k] = from_float<T>(a.mode == PoolMode::kAverage ? result[k] * scale : result[k]);
    reinterpret_cast<uint4*>(a.output)[i] = out.bits;
  }
}

template <class T>
cudaError_t launch_pool2d_nhwc(const Pool2dArgs<T>& a, cudaStream_t stream) {
  const int64_t total = a.n * a.out_d * a.out_h * a.out_w * a.c;
  if (total <= 0) return cudaSuccess;
  constexpr int kVec = 16 / sizeof(T);
  const bool vector = a.c % kVec == 0 && reinterpret_cast<uintptr_t>(a.input) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(a.output) % 16 == 0;
  if (vector)
    pool2d_nhwc_vector_kernel<T><<<grid_for(total / kVec, 256), 256, 0, stream>>>(a);
  else
    pool2d_nhwc_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

template <class T>
struct GlobalPoolArgs {
  const T* input;  // [n, h*w, c]
  T* output;       // [n, c]
  int64_t n;
  int64_t spatial;  // h * w (d * h * w over NDHWC)
  int32_t c;
  PoolMode mode;
};

// Global pooling as a real reduction (SE blocks' pools are small n*c over large h*w: one thread per (n, c) left the
// GPU nearly idle). A block is lanes x rows threads (blockDim.x = lanes along channels, blockDim.y = rows along
// positions): lane x reads `vec` contiguous channels (16 bytes when C and the pointers allow, else one), row y reads
// positions y, y + rows, ... of the block's position range; fp32 accumulation, then a shared-memory tree over rows.
// The grid is (n * channel chunks, splits). When n * chunks alone does not fill the GPU and h*w is large, the
// positions are split over `splits` blocks that write fp32 partials to the workspace ([splits, n, c]) and a second
// kernel combines them; without enough workspace it runs unsplit (never fails for lack of it).
// Speed not yet measured on a GPU (the next GPU run measures it; replaces a 0.90 ms thread-per-(n, c) kernel on
// EfficientNet-B2's [8, 128, 128, 32] pool). global_pool_plan is replayed in TypeScript (codegen/global-pool-lowering.ts).
constexpr int kGlobalPoolThreads = 256;
constexpr int kGlobalPoolMaxLanes = 32;  // a partition of the block, not a warp size
constexpr int64_t kGlobalPoolTargetBlocks = 512;
constexpr int kGlobalPoolMaxSplits = 256;
constexpr int kGlobalPoolMinPerRow = 4;  // a split gives each row at least this many positions

struct GlobalPoolPlan {
  int vec;            // channels per lane load
  int lanes, rows;    // blockDim.x, blockDim.y (powers of two, lanes * rows == kGlobalPoolThreads)
  int64_t chunks;     // channel chunks of lanes * vec channels per image
  int splits;         // blocks per (image, chunk) along the positions (1: no workspace)
  int per_split;      // positions per split (the last may have fewer; none is empty)
};

// The launch of a global pool over [n, spatial, c] with `vec` channels per load (c % vec == 0) and
// `workspace_bytes` of workspace.
inline GlobalPoolPlan global_pool_plan(int64_t n, int64_t spatial, int c, int vec, size_t workspace_bytes) {
  GlobalPoolPlan p;
  p.vec = vec;
  const int groups = c / vec;
  p.lanes = 1;
  while (p.lanes < groups && p.lanes < kGlobalPoolMaxLanes) p.lanes *= 2;
  p.rows = kGlobalPoolThreads / p.lanes;
  p.chunks = ceil_div(groups, p.lanes);
  const int64_t blocks = n * p.chunks;
  int64_t splits = 1;
  if (blocks < kGlobalPoolTargetBlocks) {
    splits = ceil_div(kGlobalPoolTargetBlocks, blocks);
    splits = std::min<int64_t>(splits, spatial / (static_cast<int64_t>(p.rows) * kGlobalPoolMinPerRow));
    splits = std::min<int64_t>(splits, kGlobalPoolMaxSplits);
    const int64_t partial_bytes = n * c * static_cast<int64_t>(sizeof(float));
    splits = std::min<int64_t>(splits, static_cast<int64_t>(workspace_bytes) / partial_bytes);
    if (splits < 2) splits = 1;
  }
  if (spatial <= 0) {  // nothing to read: one unsplit pass writes the empty max / mean
    p.splits = 1;
    p.per_split = 0;
    return p;
  }
  p.per_split = static_cast<int>(ceil_div(spatial, splits));
  p.splits = static_cast<int>(ceil_div(spatial, p.per_split));  // no empty split
  return p;
}

template <int kVec>
__device__ __forceinline__ void global_pool_combine(float (&acc)[kVec], const float* other, PoolMode mode) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) acc[k] = mode == PoolMode::kMax ? fmaxf(acc[k], other[k]) : acc[k] + other[k];
}

template <class T, int kVec>
__global__ void __launch_bounds__(kGlobalPoolThreads) global_pool_nhwc_kernel(GlobalPoolArgs<T> a, int chunks, int per_split, float* partials) {
  union Pack {
    uint4 bits;
    T values[kVec];
  };
  __shared__ float smem[kGlobalPoolThreads * kVec];  // [rows][lanes][kVec]
  const int lanes = blockDim.x, rows = blockDim.y;
  const int64_t image = blockIdx.x / chunks;
  const int group = static_cast<int>(blockIdx.x % chunks) * lanes + threadIdx.x;  // this lane's kVec channels
  const bool active = group < a.c / kVec;
  const int begin = blockIdx.y * per_split;
  const int end = min(per_split, static_cast<int>(a.spatial) - begin) + begin;
  float acc[kVec];
#pragma unroll
  for (int k = 0; k < kVec; ++k) acc[k] = a.mode == PoolMode::kMax ? -INFINITY : 0.f;
  if (active) {
    const int s0 = begin + threadIdx.y;
    const T* p = a.input + (image * a.spatial + s0) * a.c + group * kVec;
    const int64_t step = static_cast<int64_t>(rows) * a.c;
    for (int s = s0; s < end; s += rows, p += step) {
      float v[kVec];
      if constexpr (kVec > 1) {
        Pack pack;
        pack.bits = __ldg(reinterpret_cast<const uint4*>(p));
#pragma unroll
        for (int k = 0; k < kVec; ++k) v[k] = to_float(pack.values[k]);
      } else {
        v[0] = to_float(*p);
      }
      global_pool_combine<kVec>(acc, v, a.mode);
    }
  }
  // tree over rows: row y takes row y + half until row 0 holds the block's result
  float* mine = smem + (threadIdx.y * lanes + threadIdx.x) * kVec;
#pragma unroll
  for (int k = 0; k < kVec; ++k) mine[k] = acc[k];
  for (int half = rows / 2; half > 0; half /= 2) {
    __syncthreads();
    if (threadIdx.y < half) {
      global_pool_combine<kVec>(acc, mine + half * lanes * kVec, a.mode);
#pragma unroll
      for (int k = 0; k < kVec; ++k) mine[k] = acc[k];
    }
  }
  if (threadIdx.y != 0 || !active) return;
  if (gridDim.y > 1) {
    float* out = partials + (blockIdx.y * a.n + image) * a.c + group * kVec;
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = acc[k];
    return;
  }
  const float scale = a.mode == PoolMode::kAverage ? 1.f / static_cast<float>(a.spatial) : 1.f;
  if constexpr (kVec > 1) {
    Pack out;
#pragma unroll
    for (int k = 0; k < kVec; ++k) out.values[k] = from_float<T>(acc[k] * scale);
    reinterpret_cast<uint4*>(a.output + image * a.c)[group] = out.bits;
  } else {
    a.output[image * a.c + group] = from_float<T>(acc[0] * scale);
  }
}

// The split path's second kernel: one thread per (image, channel) over the [splits, n, c] partials.
template <class T>
__global__ void global_pool_combine_kernel(GlobalPoolArgs<T> a, int splits, const float* partials) {
  const int64_t total = a.n * a.c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float result = partials[i];
    for (int s = 1; s < splits; ++s) {
      const float v = partials[s * total + i];
      result = a.mode == PoolMode::kMax ? fmaxf(result, v) : result + v;
    }
    if (a.mode == PoolMode::kAverage) result /= static_cast<float>(a.spatial);
    a.output[i] = from_float<T>(result);
  }
}

template <class T>
cudaError_t launch_global_pool_nhwc(const GlobalPoolArgs<T>& a, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (a.n <= 0 || a.c <= 0) return cudaSuccess;
  // positions index in 32 bits inside an image (2^30 positions of one image would be 2 GB per channel)
  if (a.spatial < 0 || a.spatial > (int64_t{1} << 30)) return cudaErrorInvalidValue;
  constexpr int kVec = 16 / sizeof(T);
  const bool vector = a.c % kVec == 0 && is_aligned16(a.input) && is_aligned16(a.output);
  const GlobalPoolPlan p = global_pool_plan(a.n, a.spatial, a.c, vector ? kVec : 1, workspace == nullptr ? 0 : workspace_bytes);
  if (a.n * p.chunks > INT32_MAX) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(a.n * p.chunks), static_cast<unsigned>(p.splits));
  const dim3 block(p.lanes, p.rows);
  float* partials = static_cast<float*>(workspace);
  if (vector)
    global_pool_nhwc_kernel<T, kVec><<<grid, block, 0, stream>>>(a, static_cast<int>(p.chunks), p.per_split, partials);
  else
    global_pool_nhwc_kernel<T, 1><<<grid, block, 0, stream>>>(a, static_cast<int>(p.chunks), p.per_split, partials);
  if (p.splits > 1) {
    const cudaError_t status = launch_status();
    if (status != cudaSuccess) return status;
    global_pool_combine_kernel<T><<<grid_for(a.n * a.c, 256), 256, 0, stream>>>(a, p.splits, partials);
  }
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
