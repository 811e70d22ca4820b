// Pooling over NHWC tensors: max / average 2-D pooling with padding and strides (3-D over NDHWC: the depth fields of
// Pool2dArgs), and global average / max pooling (any number of spatial axes between batch and channels).
// One thread per output element (or per 8 fp16 channels when C % 8 == 0), channels innermost, so neighbouring
// threads read neighbouring channels.
#pragma once

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
  int64_t spatial;  // h * w
  int32_t c;
  PoolMode mode;
};

template <class T>
__global__ void global_pool_nhwc_kernel(GlobalPoolArgs<T> a) {
  const int64_t total = a.n * a.c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / a.c, c = i % a.c;
    const T* p = a.input + n * a.spatial * a.c + c;
    float result = a.mode == PoolMode::kMax ? -INFINITY : 0.f;
    for (int64_t s = 0; s < a.spatial; ++s) {
      const float v = to_float(p[s * a.c]);
      result = a.mode == PoolMode::kMax ? fmaxf(result, v) : result + v;
    }
    if (a.mode == PoolMode::kAverage) result /= static_cast<float>(a.spatial);
    a.output[i] = from_float<T>(result);
  }
}

template <class T>
cudaError_t launch_global_pool_nhwc(const GlobalPoolArgs<T>& a, cudaStream_t stream) {
  const int64_t total = a.n * a.c;
  if (total <= 0) return cudaSuccess;
  global_pool_nhwc_kernel<T><<<grid_for(total, 128), 128, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
