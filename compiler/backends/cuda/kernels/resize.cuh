// Resize of 4-D images (ONNX Resize over the two spatial axes): nearest, bilinear and bicubic, with ONNX's coordinate
// transformations, on NHWC (channels innermost, where the layout pass put the tensor) or NCHW tensors. The output is
// written in the input's layout, one thread per output element in storage order (coalesced writes).
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

enum class ResizeMode : int32_t { kNearest = 0, kBilinear = 1, kBicubic = 2 };
enum class CoordinateTransform : int32_t {
  kHalfPixel = 0,
  kAsymmetric = 1,
  kAlignCorners = 2,
  kPytorchHalfPixel = 3,
  kTfHalfPixelForNn = 4
};
enum class NearestRounding : int32_t { kRoundPreferFloor = 0, kRoundPreferCeil = 1, kFloor = 2, kCeil = 3 };
enum class ImageLayout : int32_t { kNhwc = 0, kNchw = 1 };

template <class T>
struct ResizeArgs {
  const T* input;  // [n, in_h, in_w, c] (NHWC) or [n, c, in_h, in_w] (NCHW)
  T* output;       // [n, out_h, out_w, c] or [n, c, out_h, out_w]
  int64_t n;
  int32_t in_h, in_w, out_h, out_w, c;
  float scale_h, scale_w;  // out / in (ONNX scales; pass out_h / in_h when sizes were given)
  ResizeMode mode;
  CoordinateTransform transform;
  NearestRounding rounding;
  ImageLayout layout = ImageLayout::kNhwc;
  float cubic_a = -0.75f;        // ONNX cubic_coeff_a
  bool exclude_outside = false;  // ONNX exclude_outside (cubic): taps outside the image get weight 0, renormalized
};

__device__ __forceinline__ float resize_source_coordinate(CoordinateTransform t, int out, float scale, int in_size,
                                                          int out_size) {
  switch (t) {
    case CoordinateTransform::kAsymmetric: return out / scale;
    case CoordinateTransform::kAlignCorners:
      return out_size > 1 ? out * static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1) : 0.f;
    case CoordinateTransform::kPytorchHalfPixel: return out_size > 1 ? (out + 0.5f) / scale - 0.5f : 0.f;
    case CoordinateTransform::kTfHalfPixelForNn: return (out + 0.5f) / scale;
    default: return (out + 0.5f) / scale - 0.5f;
  }
}

__device__ __forceinline__ int nearest_index(NearestRounding r, float x, int size) {
  int i;
  switch (r) {
    case NearestRounding::kFloor: i = static_cast<int>(floorf(x)); break;
    case NearestRounding::kCeil: i = static_cast<int>(ceilf(x)); break;
    case NearestRounding::kRoundPreferCeil: i = static_cast<int>(floorf(x + 0.5f)); break;
    default: i = static_cast<int>(ceilf(x - 0.5f)); break;  // round half down
  }
  return i < 0 ? 0 : i >= size ? size - 1 : i;
}

// The four cubic convolution weights (Keys, parameter a) of taps floor(x)-1 .. floor(x)+2 for fraction t = x - floor(x);
// with exclude_outside, taps outside [0, size) get 0 and the rest are renormalized (ONNX Resize).
__device__ __forceinline__ void cubic_weights(float t, float a, int first, int size, bool exclude_outside, float w[4]) {
  const float d[4] = {t + 1.f, t, 1.f - t, 2.f - t};
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float x = d[j];
    w[j] = x <= 1.f ? ((a + 2.f) * x - (a + 3.f)) * x * x + 1.f : ((a * x - 5.f * a) * x + 8.f * a) * x - 4.f * a;
    if (exclude_outside && (first + j < 0 || first + j >= size)) w[j] = 0.f;
    sum += w[j];
  }
  if (exclude_outside && sum != 0.f) {
#pragma unroll
    for (int j = 0; j < 4; ++j) w[j] /= sum;
  }
}

template <class T>
__global__ void resize_kernel(ResizeArgs<T> a) {
  const int64_t total = a.n * a.out_h * a.out_w * a.c;
  const bool nhwc = a.layout == ImageLayout::kNhwc;
  // element (y, x) of one channel of one image: stride_y, stride_x in elements
  const int64_t in_stride_x = nhwc ? a.c : 1, in_stride_y = static_cast<int64_t>(a.in_w) * in_stride_x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int c, ow, oh;
    int64_t n, rest = i;
    if (nhwc) {
      c = static_cast<int>(rest % a.c);
      rest /= a.c;
      ow = static_cast<int>(rest % a.out_w);
      rest /= a.out_w;
      oh = static_cast<int>(rest % a.out_h);
      n = rest / a.out_h;
    } else {
      ow = static_cast<int>(rest % a.out_w);
      rest /= a.out_w;
      oh = static_cast<int>(rest % a.out_h);
      rest /= a.out_h;
      c = static_cast<int>(rest % a.c);
      n = rest / a.c;
    }
    const float y = resize_source_coordinate(a.transform, oh, a.scale_h, a.in_h, a.out_h);
    const float x = resize_source_coordinate(a.transform, ow, a.scale_w, a.in_w, a.out_w);
    const int64_t image_elements = static_cast<int64_t>(a.in_h) * a.in_w * a.c;
    const T* plane = a.input + n * image_elements + (nhwc ? c : static_cast<int64_t>(c) * a.in_h * a.in_w);
    auto at = [&](int yy, int xx) { return to_float(plane[yy * in_stride_y + xx * in_stride_x]); };
    float value;
    if (a.mode == ResizeMode::kNearest) {
      value = at(nearest_index(a.rounding, y, a.in_h), nearest_index(a.rounding, x, a.in_w));
    } else if (a.mode == ResizeMode::kBilinear) {
      const float yc = fminf(fmaxf(y, 0.f), static_cast<float>(a.in_h - 1));
      const float xc = fminf(fmaxf(x, 0.f), static_cast<float>(a.in_w - 1));
      const int y0 = static_cast<int>(floorf(yc)), x0 = static_cast<int>(floorf(xc));
      const int y1 = min(y0 + 1, a.in_h - 1), x1 = min(x0 + 1, a.in_w - 1);
      const float fy = yc - y0, fx = xc - x0;
      value = (1.f - fy) * ((1.f - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1.f - fx) * at(y1, x0) + fx * at(y1, x1));
    } else {
      // bicubic: 4×4 taps around floor(y), floor(x), indices clamped to the edge (ONNX pads with edge values)
      const float fy = floorf(y), fx = floorf(x);
      const int y0 = static_cast<int>(fy) - 1, x0 = static_cast<int>(fx) - 1;
      float wy[4], wx[4];
      cubic_weights(y - fy, a.cubic_a, y0, a.in_h, a.exclude_outside, wy);
      cubic_weights(x - fx, a.cubic_a, x0, a.in_w, a.exclude_outside, wx);
      value = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int yy = min(max(y0 + j, 0), a.in_h - 1);
        float row = 0.f;
#pragma unroll
        for (int q = 0; q < 4; ++q) row += wx[q] * at(yy, min(max(x0 + q, 0), a.in_w - 1));
        value += wy[j] * row;
      }
    }
    a.output[i] = from_float<T>(value);
  }
}

template <class T>
cudaError_t launch_resize(const ResizeArgs<T>& a, cudaStream_t stream) {
  const int64_t total = a.n * a.out_h * a.out_w * a.c;
  if (total <= 0) return cudaSuccess;
  if (a.in_h <= 0 || a.in_w <= 0) return cudaErrorInvalidValue;
  resize_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
