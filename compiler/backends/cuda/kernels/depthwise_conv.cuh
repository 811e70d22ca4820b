// Depthwise convolution over NHWC tensors: ONNX Conv with group == C input channels and K = C · multiplier output
// channels (MobileNet, EfficientNet, ConvNeXt's 7x7), any kernel size, stride, padding and dilation, with the fused
// conv2d epilogue (bias, per-channel scale, residual add, activations in step order) applied before the one store.
//
// Why not CUTLASS: a depthwise conv has R·S multiply-adds per output (9 for 3x3), so it is memory-bound; an
// implicit GEMM would run tensor cores on GEMM-K = R·S with one useful column per output channel. A direct
// convolution reads each input pixel's channels as 16-byte vectors (neighbouring threads: neighbouring channels, so
// a warp reads contiguous 512-byte runs), keeps fp32 accumulators in registers and writes each output once.
//
// Work split: one thread per output pixel and 8 output channels (16 bytes of fp16) when K % 8 == 0 and every
// pointer is 16-byte aligned; otherwise one thread per output element (odd channel counts). Input rows re-read by
// the R·S taps of neighbouring pixels come from L1/L2; the weight vector of a tap is the same for all pixels of a
// channel group and stays in L1.
//
// Layouts: input [n, in_h, in_w, c]; weight [kernel_h, kernel_w, k] (channels innermost: the code generator
// prepares it from ONNX [k, 1, kernel_h, kernel_w]); output [n, out_h, out_w, k]. 3-D (X3D's and MViT's depthwise
// 3x3x3 over video): the depth fields of the args set, input [n, in_d, in_h, in_w, c], weight [kernel_d, kernel_h,
// kernel_w, k], output [n, out_d, out_h, out_w, k]; they default to depth 1, the 2-D convolution. Output channel k reads input
// channel k / multiplier (ONNX grouping: group g = input channel g holds output channels g·m … g·m + m − 1).
//
// The epilogue is an ew::Chain (elementwise.cuh) over inputs in[0] = the accumulator and in[1 + j] = operand j, e.g.
// relu6(acc + bias) = ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Clip{0.f, 6.f}). An operand is a
// per-channel vector [k] or a full tensor shaped like the output (the residual). A residual may share the output's
// buffer: each thread reads its residual elements before it writes the same elements.
#pragma once

#include "common.cuh"
#include "elementwise.cuh"

namespace ait {
namespace kernels {

enum class DepthwiseOperand : int32_t {
  kChannel = 0,  // [k]: element (channel)
  kFull = 1,     // [n, out_h, out_w, k]: element (output index)
};

template <class T, int kOperands>
struct DepthwiseConv2dArgs {
  const T* input;   // [n, in_h, in_w, c]
  const T* weight;  // [kernel_h, kernel_w, k]
  T* output;        // [n, out_h, out_w, k]
  const T* operands[kOperands > 0 ? kOperands : 1];
  DepthwiseOperand operand_kinds[kOperands > 0 ? kOperands : 1];
  int64_t n;
  int32_t in_h, in_w, c, out_h, out_w, k;  // k = c · multiplier
  int32_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
  // 3-D: the depth axis (input and output depth, kernel depth, stride, front pad, dilation); 1/0 for 2-D
  int32_t in_d = 1, out_d = 1, kernel_d = 1, stride_d = 1, pad_front = 0, dilation_d = 1;
};

// Channel-vector path: kVec output channels [k0, k0 + kVec) of one output pixel. kUnitMultiplier: input channel ==
// output channel, so the input is read as one 16-byte vector per tap (else element by element).
template <class T, int kOperands, class Fn, bool kUnitMultiplier>
__global__ void depthwise_conv2d_nhwc_vector_kernel(DepthwiseConv2dArgs<T, kOperands> a, Fn fn) {
  constexpr int kVec = Vec16<T>::kElements;
  const int groups = a.k / kVec;
  const int multiplier = a.k / a.c;
  const int64_t total = a.n * a.out_d * a.out_h * a.out_w * groups;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int k0 = static_cast<int>(i % groups) * kVec;
    const int64_t pixel = i / groups;  // (n, od, oh, ow) flattened
    const int ow = static_cast<int>(pixel % a.out_w);
    const int oh = static_cast<int>((pixel / a.out_w) % a.out_h);
    const int od = static_cast<int>((pixel / (static_cast<int64_t>(a.out_w) * a.out_h)) % a.out_d);
    const int64_t n = pixel / (static_cast<int64_t>(a.out_w) * a.out_h * a.out_d);
    float acc[kVec];
#pragma unroll
    for (int e = 0; e < kVec; ++e) acc[e] = 0.f;
    for (int t = 0; t < a.kernel_d; ++t) {
      const int id = od * a.stride_d - a.pad_front + t * a.dilation_d;
      if (id < 0 || id >= a.in_d) continue;
      for (int r = 0; r < a.kernel_h; ++r) {
        const int ih = oh * a.stride_h - a.pad_top + r * a.dilation_h;
        if (ih < 0 || ih >= a.in_h) continue;
        for (int s = 0; s < a.kernel_w; ++s) {
          const int iw = ow * a.stride_w - a.pad_left + s * a.dilation_w;
          if (iw < 0 || iw >= a.in_w) continue;
          const T* x = a.input + (((n * a.in_d + id) * a.in_h + ih) * a.in_w + iw) * a.c;
          Vec16<T> w;
          const int64_t tap = (static_cast<int64_t>(t) * a.kernel_h + r) * a.kernel_w + s;
          w.raw = __ldg(reinterpret_cast<const uint4*>(a.weight + tap * a.k + k0));
          if (kUnitMultiplier) {
            Vec16<T> xv;
            xv.raw = __ldg(reinterpret_cast<const uint4*>(x + k0));
#pragma unroll
            for (int e = 0; e < kVec; ++e) acc[e] = fmaf(to_float(xv.elements[e]), to_float(w.elements[e]), acc[e]);
          } else {
#pragma unroll
            for (int e = 0; e < kVec; ++e) acc[e] = fmaf(to_float(x[(k0 + e) / multiplier]), to_float(w.elements[e]), acc[e]);
          }
        }
      }
    }
    const int64_t out = pixel * a.k + k0;
    Vec16<T> loaded[kOperands > 0 ? kOperands : 1];
#pragma unroll
    for (int j = 0; j < kOperands; ++j)
      loaded[j] = load_vec16(a.operands[j] + (a.operand_kinds[j] == DepthwiseOperand::kFull ? out : k0));
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

// Scalar path: one output element per thread (K not a multiple of 8, or unaligned pointers).
template <class T, int kOperands, class Fn>
__global__ void depthwise_conv2d_nhwc_scalar_kernel(DepthwiseConv2dArgs<T, kOperands> a, Fn fn) {
  const int multiplier = a.k / a.c;
  const int64_t total = a.n * a.out_d * a.out_h * a.out_w * a.k;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int channel = static_cast<int>(i % a.k);
    const int64_t pixel = i / a.k;
    const int ow = static_cast<int>(pixel % a.out_w);
    const int oh = static_cast<int>((pixel / a.out_w) % a.out_h);
    const int od = static_cast<int>((pixel / (static_cast<int64_t>(a.out_w) * a.out_h)) % a.out_d);
    const int64_t n = pixel / (static_cast<int64_t>(a.out_w) * a.out_h * a.out_d);
    const int input_channel = channel / multiplier;
    float acc = 0.f;
    for (int t = 0; t < a.kernel_d; ++t) {
      const int id = od * a.stride_d - a.pad_front + t * a.dilation_d;
      if (id < 0 || id >= a.in_d) continue;
      for (int r = 0; r < a.kernel_h; ++r) {
        const int ih = oh * a.stride_h - a.pad_top + r * a.dilation_h;
        if (ih < 0 || ih >= a.in_h) continue;
        for (int s = 0; s < a.kernel_w; ++s) {
          const int iw = ow * a.stride_w - a.pad_left + s * a.dilation_w;
          if (iw < 0 || iw >= a.in_w) continue;
          const float x = to_float(a.input[(((n * a.in_d + id) * a.in_h + ih) * a.in_w + iw) * a.c + input_channel]);
          const float w = to_float(a.weight[((static_cast<int64_t>(t) * a.kernel_h + r) * a.kernel_w + s) * a.k + channel]);
          acc = fmaf(x, w, acc);
        }
      }
    }
    float in[1 + kOperands];
    in[0] = acc;
#pragma unroll
    for (int j = 0; j < kOperands; ++j)
      in[1 + j] = to_float(a.operands[j][a.operand_kinds[j] == DepthwiseOperand::kFull ? i : channel]);
    a.output[i] = from_float<T>(fn(0.f, in));
  }
}

template <class T, int kOperands, class Fn>
cudaError_t launch_depthwise_conv2d_nhwc(const DepthwiseConv2dArgs<T, kOperands>& a, Fn fn, cudaStream_t stream) {
  if (a.c <= 0 || a.k % a.c != 0) return cudaErrorInvalidValue;
  const int64_t total = a.n * a.out_d * a.out_h * a.out_w * a.k;
  if (total <= 0) return cudaSuccess;
  constexpr int kVec = Vec16<T>::kElements;
  const bool unit_multiplier = a.k == a.c;
  bool vector = a.k % kVec == 0 && is_aligned16(a.weight) && is_aligned16(a.output) && (!unit_multiplier || is_aligned16(a.input));
  for (int j = 0; j < kOperands; ++j) vector = vector && is_aligned16(a.operands[j]);
  constexpr int kThreads = 256;
  if (vector && unit_multiplier)
    depthwise_conv2d_nhwc_vector_kernel<T, kOperands, Fn, true><<<grid_for(total / kVec, kThreads), kThreads, 0, stream>>>(a, fn);
  else if (vector)
    depthwise_conv2d_nhwc_vector_kernel<T, kOperands, Fn, false><<<grid_for(total / kVec, kThreads), kThreads, 0, stream>>>(a, fn);
  else
    depthwise_conv2d_nhwc_scalar_kernel<T, kOperands, Fn><<<grid_for(total, kThreads), kThreads, 0, stream>>>(a, fn);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
