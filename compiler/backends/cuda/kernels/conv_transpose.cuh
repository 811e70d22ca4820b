// Transposed convolution (ONNX ConvTranspose, 2-D) over NHWC tensors, any kernel, stride, padding, dilation and
// output padding, with the fused epilogue (bias, per-channel scale, residual add, activations in step order) applied
// before the one store. Two kernels:
//
//  - col2im (group 1): the code generator first runs one GEMM, columns[N·H·W, KH·KW·K] = x[N·H·W, C] · W[C, KH·KW·K]
//    (a CUTLASS instance; every input pixel times every tap), then this kernel gathers: output pixel (oh, ow) sums
//    the column entries of the taps (r, s) and input pixels (ih, iw) with ih·stride_h + r·dilation_h = oh + pad_top
//    (the same along w). Each output element is written once by one thread: no atomics, no zero fill. When a stride
//    window holds every tap, (kernel − 1)·dilation < stride on both axes (Mask R-CNN's mask head: 2×2 stride 2),
//    each output pixel has at most one tap and kOneTap finds it in O(1): the gather is the scatter of the taps to
//    their output pixels, with the epilogue fused.
//  - direct (grouped, where x · W is no single GEMM): one thread per output element sums over its taps and its
//    group's C/group input channels, 16-byte vectors along C/group when C/group % 8 == 0 (fp16). Not tuned: grouped
//    transposed convolutions are rare and small (depthwise upsampling); it keeps them on the GPU.
//
// Layouts: input [n, in_h, in_w, c]; columns [n, in_h, in_w, kernel_h, kernel_w, k]; weight (direct)
// [kernel_h, kernel_w, k / group, c] (conv_transpose2d's weight: ONNX [c, k / group, kernel_h, kernel_w] transposed by
// the layout pass); output [n, out_h, out_w, k]. Output channel m of group g = m / (k / group) reads weight row
// (r, s, m mod k / group) at the group's input channels [g · c / group, (g + 1) · c / group).
//
// The epilogue is an ew::Chain (elementwise.cuh) over in[0] = the accumulator and in[1 + j] = operand j; an operand
// is a per-channel vector [k] or a full tensor shaped like the output (the residual, which may share the output's
// buffer: each element is read by the thread that then writes it). Output pixels no tap reaches (output padding,
// kernel < stride) get the epilogue of 0 (the bias).
#pragma once

#include "common.cuh"
#include "elementwise.cuh"

namespace ait {
namespace kernels {

enum class ConvTransposeOperand : int32_t {
  kChannel = 0,  // [k]: element (channel)
  kFull = 1,     // [n, out_h, out_w, k]: element (output index)
};

// The window of one transposed convolution (both kernels).
struct ConvTransposeWindow {
  int64_t n;
  int32_t in_h, in_w, out_h, out_w;
  int32_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
};

template <class T, int kOperands>
struct ConvTransposeCol2imArgs {
  const T* columns;  // [n, in_h, in_w, kernel_h, kernel_w, k]
  T* output;         // [n, out_h, out_w, k]
  const T* operands[kOperands > 0 ? kOperands : 1];
  ConvTransposeOperand operand_kinds[kOperands > 0 ? kOperands : 1];
  int32_t k;
  ConvTransposeWindow window;
};

template <class T, int kOperands>
struct ConvTransposeDirectArgs {
  const T* input;   // [n, in_h, in_w, c]
  const T* weight;  // [kernel_h, kernel_w, k / group, c]
  T* output;        // [n, out_h, out_w, k]
  const T* operands[kOperands > 0 ? kOperands : 1];
  ConvTransposeOperand operand_kinds[kOperands > 0 ? kOperands : 1];
  int32_t c, k, group;
  ConvTransposeWindow window;
};

// Calls visit(tap, input index) for each tap of one axis that reaches output coordinate `o`: input index i and tap t
// with i·stride + t·dilation = o + pad, 0 <= i < in, 0 <= t < kernel. kOneTap: (kernel − 1)·dilation < stride, so
// two taps of one output differ by less than a stride and at most one exists: i = (o + pad) / stride, and the
// remainder must be t·dilation.
template <bool kOneTap, class Visit>
__device__ __forceinline__ void for_each_transposed_tap(int o, int in, int kernel, int stride, int pad, int dilation, Visit&& visit) {
  const int shifted = o + pad;  // >= 0: pads and o are
  if constexpr (kOneTap) {
    const int i = shifted / stride, remainder = shifted - i * stride;
    if (i < in && remainder % dilation == 0 && remainder / dilation < kernel) visit(remainder / dilation, i);
  } else {
    for (int t = 0; t < kernel; ++t) {
      const int at = shifted - t * dilation;
      if (at < 0) break;  // larger taps reach only further below 0
      const int i = at / stride;
      if (i * stride == at && i < in) visit(t, i);
    }
  }
}

// One output pixel (flattened n·out_h·out_w) as (n, oh, ow).
__device__ __forceinline__ void transposed_pixel(const ConvTransposeWindow& w, int64_t pixel, int64_t* n, int* oh, int* ow) {
  *ow = static_cast<int>(pixel % w.out_w);
  *oh = static_cast<int>((pixel / w.out_w) % w.out_h);
  *n = pixel / (static_cast<int64_t>(w.out_w) * w.out_h);
}

// col2im, 16-byte path: kVec output channels [k0, k0 + kVec) of one output pixel per thread.
template <class T, int kOperands, class Fn, bool kOneTap>
__global__ void conv_transpose2d_col2im_vector_kernel(ConvTransposeCol2imArgs<T, kOperands> a, Fn fn) {
  constexpr int kVec = Vec16<T>::kElements;
  const ConvTransposeWindow& w = a.window;
  const int vectors = a.k / kVec;
  const int64_t total = w.n * w.out_h * w.out_w * vectors;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int k0 = static_cast<int>(idx % vectors) * kVec;
    const int64_t pixel = idx / vectors;
    int64_t n;
    int oh, ow;
    transposed_pixel(w, pixel, &n, &oh, &ow);
    float acc[kVec];
#pragma unroll
    for (int e = 0; e < kVec; ++e) acc[e] = 0.f;
    for_each_transposed_tap<kOneTap>(oh, w.in_h, w.kernel_h, w.stride_h, w.pad_top, w.dilation_h, [&](int r, int ih) {
      for_each_transposed_tap<kOneTap>(ow, w.in_w, w.kernel_w, w.stride_w, w.pad_left, w.dilation_w, [&](int s, int iw) {
        const int64_t row = (n * w.in_h + ih) * w.in_w + iw;
        Vec16<T> v;
        v.raw = __ldg(reinterpret_cast<const uint4*>(a.columns + ((row * w.kernel_h + r) * w.kernel_w + s) * a.k + k0));
#pragma unroll
        for (int e = 0; e < kVec; ++e) acc[e] += to_float(v.elements[e]);
      });
    });
    const int64_t out = pixel * a.k + k0;
    Vec16<T> loaded[kOperands > 0 ? kOperands : 1];
#pragma unroll
    for (int j = 0; j < kOperands; ++j)
      loaded[j] = load_vec16(a.operands[j] + (a.operand_kinds[j] == ConvTransposeOperand::kFull ? out : k0));
    Vec16<T> result;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      float in[1 + kOperands];
      in[0] = acc[e];
#pragma unroll
      for (int j = 0; j < kOperands; ++j) in[1 + j] = to_float(loaded[j].elements[e]);
      result.elements[e] = from_float<T>(fn(0.f, in));
    }
    store_vec16(a.output + out, result);
  }
}

// col2im, scalar path: one output element per thread (k not a multiple of 8, or unaligned pointers).
template <class T, int kOperands, class Fn, bool kOneTap>
__global__ void conv_transpose2d_col2im_scalar_kernel(ConvTransposeCol2imArgs<T, kOperands> a, Fn fn) {
  const ConvTransposeWindow& w = a.window;
  const int64_t total = w.n * w.out_h * w.out_w * a.k;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int channel = static_cast<int>(idx % a.k);
    int64_t n;
    int oh, ow;
    transposed_pixel(w, idx / a.k, &n, &oh, &ow);
    float acc = 0.f;
    for_each_transposed_tap<kOneTap>(oh, w.in_h, w.kernel_h, w.stride_h, w.pad_top, w.dilation_h, [&](int r, int ih) {
      for_each_transposed_tap<kOneTap>(ow, w.in_w, w.kernel_w, w.stride_w, w.pad_left, w.dilation_w, [&](int s, int iw) {
        const int64_t row = (n * w.in_h + ih) * w.in_w + iw;
        acc += to_float(a.columns[((row * w.kernel_h + r) * w.kernel_w + s) * a.k + channel]);
      });
    });
    float in[1 + kOperands];
    in[0] = acc;
#pragma unroll
    for (int j = 0; j < kOperands; ++j)
      in[1 + j] = to_float(a.operands[j][a.operand_kinds[j] == ConvTransposeOperand::kFull ? idx : channel]);
    a.output[idx] = from_float<T>(fn(0.f, in));
  }
}

// Whether every output pixel has at most one tap (the O(1) tap lookup of for_each_transposed_tap).
inline bool conv_transpose_one_tap(const ConvTransposeWindow& w) {
  return (w.kernel_h - 1) * w.dilation_h < w.stride_h && (w.kernel_w - 1) * w.dilation_w < w.stride_w;
}

inline bool conv_transpose_window_valid(const ConvTransposeWindow& w) {
  return w.n >= 0 && w.in_h > 0 && w.in_w > 0 && w.out_h > 0 && w.out_w > 0 && w.kernel_h > 0 && w.kernel_w > 0 && w.stride_h > 0 &&
         w.stride_w > 0 && w.dilation_h > 0 && w.dilation_w > 0 && w.pad_top >= 0 && w.pad_left >= 0;
}

template <class T, int kOperands, class Fn>
cudaError_t launch_conv_transpose2d_col2im_nhwc(const ConvTransposeCol2imArgs<T, kOperands>& a, Fn fn, cudaStream_t stream) {
  if (!conv_transpose_window_valid(a.window) || a.k <= 0) return cudaErrorInvalidValue;
  const int64_t total = a.window.n * a.window.out_h * a.window.out_w * a.k;
  if (total == 0) return cudaSuccess;
  constexpr int kVec = Vec16<T>::kElements;
  bool vector = a.k % kVec == 0 && is_aligned16(a.columns) && is_aligned16(a.output);
  for (int j = 0; j < kOperands; ++j) vector = vector && is_aligned16(a.operands[j]);
  const bool one_tap = conv_transpose_one_tap(a.window);
  constexpr int kThreads = 256;
  if (vector) {
    const unsigned grid = grid_for(total / kVec, kThreads);
    if (one_tap)
      conv_transpose2d_col2im_vector_kernel<T, kOperands, Fn, true><<<grid, kThreads, 0, stream>>>(a, fn);
    else
      conv_transpose2d_col2im_vector_kernel<T, kOperands, Fn, false><<<grid, kThreads, 0, stream>>>(a, fn);
  } else {
    const unsigned grid = grid_for(total, kThreads);
    if (one_tap)
      conv_transpose2d_col2im_scalar_kernel<T, kOperands, Fn, true><<<grid, kThreads, 0, stream>>>(a, fn);
    else
      conv_transpose2d_col2im_scalar_kernel<T, kOperands, Fn, false><<<grid, kThreads, 0, stream>>>(a, fn);
  }
  return launch_status();
}

// Direct: one output element per thread (neighbouring threads: neighbouring output channels, so the input vector of
// a tap is shared by the warp and comes from L1). kVecIn: C/group a multiple of a 16-byte vector (8 fp16) and
// 16-byte aligned input and weight.
template <class T, int kOperands, class Fn, bool kVecIn>
__global__ void conv_transpose2d_direct_kernel(ConvTransposeDirectArgs<T, kOperands> a, Fn fn) {
  const ConvTransposeWindow& w = a.window;
  const int cg = a.c / a.group, kg = a.k / a.group;
  const int64_t total = w.n * w.out_h * w.out_w * a.k;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int channel = static_cast<int>(idx % a.k);
    const int g = channel / kg;
    int64_t n;
    int oh, ow;
    transposed_pixel(w, idx / a.k, &n, &oh, &ow);
    float acc = 0.f;
    for_each_transposed_tap<false>(oh, w.in_h, w.kernel_h, w.stride_h, w.pad_top, w.dilation_h, [&](int r, int ih) {
      for_each_transposed_tap<false>(ow, w.in_w, w.kernel_w, w.stride_w, w.pad_left, w.dilation_w, [&](int s, int iw) {
        const T* x = a.input + ((n * w.in_h + ih) * w.in_w + iw) * a.c + g * cg;
        const T* wt = a.weight + ((static_cast<int64_t>(r) * w.kernel_w + s) * kg + channel % kg) * a.c + g * cg;
        if (kVecIn) {
          constexpr int kVec = Vec16<T>::kElements;
          for (int ci = 0; ci < cg; ci += kVec) {
            Vec16<T> xv, wv;
            xv.raw = __ldg(reinterpret_cast<const uint4*>(x + ci));
            wv.raw = __ldg(reinterpret_cast<const uint4*>(wt + ci));
#pragma unroll
            for (int e = 0; e < kVec; ++e) acc = fmaf(to_float(xv.elements[e]), to_float(wv.elements[e]), acc);
          }
        } else {
          for (int ci = 0; ci < cg; ++ci) acc = fmaf(to_float(x[ci]), to_float(wt[ci]), acc);
        }
      });
    });
    float in[1 + kOperands];
    in[0] = acc;
#pragma unroll
    for (int j = 0; j < kOperands; ++j)
      in[1 + j] = to_float(a.operands[j][a.operand_kinds[j] == ConvTransposeOperand::kFull ? idx : channel]);
    a.output[idx] = from_float<T>(fn(0.f, in));
  }
}

template <class T, int kOperands, class Fn>
cudaError_t launch_conv_transpose2d_direct_nhwc(const ConvTransposeDirectArgs<T, kOperands>& a, Fn fn, cudaStream_t stream) {
  if (!conv_transpose_window_valid(a.window) || a.group <= 0 || a.c % a.group != 0 || a.k % a.group != 0 || a.k <= 0)
    return cudaErrorInvalidValue;
  const int64_t total = a.window.n * a.window.out_h * a.window.out_w * a.k;
  if (total == 0) return cudaSuccess;
  const bool vector_in = (a.c / a.group) % Vec16<T>::kElements == 0 && is_aligned16(a.input) && is_aligned16(a.weight);
  constexpr int kThreads = 256;
  const unsigned grid = grid_for(total, kThreads);
  if (vector_in)
    conv_transpose2d_direct_kernel<T, kOperands, Fn, true><<<grid, kThreads, 0, stream>>>(a, fn);
  else
    conv_transpose2d_direct_kernel<T, kOperands, Fn, false><<<grid, kThreads, 0, stream>>>(a, fn);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
