// Resize of NHWC tensors (ONNX Resize, 2-D spatial): nearest and bilinear, with ONNX's coordinate transformations.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

enum class ResizeMode : int32_t { kNearest = 0, kBilinear = 1 };
enum class CoordinateTransform : int32_t { kHalfPixel = 0, kAsymmetric = 1, kAlignCorners = 2, kPytorchHalfPixel = 3 };
enum class NearestRounding : int32_t { kRoundPreferFloor = 0, kRoundPreferCeil = 1, kFloor = 2, kCeil = 3 };

template <class T>
struct ResizeArgs {
  const T* input;  // [n, in_h, in_w, c]
  T* output;       // [n, out_h, out_w, c]
  int64_t n;
  int32_t in_h, in_w, out_h, out_w, c;
  float scale_h, scale_w;  // out / in (ONNX scales; pass out_h / in_h when sizes were given)
  ResizeMode mode;
  CoordinateTransform transform;
  NearestRounding rounding;
};

__device__ __forceinline__ float resize_source_coordinate(CoordinateTransform t, int out, float scale, int in_size,
                                                          int out_size) {
  switch (t) {
    case CoordinateTransform::kAsymmetric: return out / scale;
    case CoordinateTransform::kAlignCorners:
      return out_size > 1 ? out * static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1) : 0.f;
    case CoordinateTransform::kPytorchHalfPixel: return out_size > 1 ? (out + 0.5f) / scale - 0.5f : 0.f;
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

template <class T>
__global__ void resize_nhwc_kernel(ResizeArgs<T> a) {
  const int64_t total = a.n * a.out_h * a.out_w * a.c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % a.c);
    int64_t rest = i / a.c;
    const int ow = static_cast<int>(rest % a.out_w);
    rest /= a.out_w;
    const int oh = static_cast<int>(rest % a.out_h);
    const int64_t n = rest / a.out_h;
    const float y = resize_source_coordinate(a.transform, oh, a.scale_h, a.in_h, a.out_h);
    const float x = resize_source_coordinate(a.transform, ow, a.scale_w, a.in_w, a.out_w);
    const T* image = a.input + n * a.in_h * a.in_w * a.c + c;
    float value;
    if (a.mode == ResizeMode::kNearest) {
      const int iy = nearest_index(a.rounding, y, a.in_h), ix = nearest_index(a.rounding, x, a.in_w);
      value = to_float(image[(static_cast<int64_t>(iy) * a.in_w + ix) * a.c]);
    } else {
      const float yc = fminf(fmaxf(y, 0.f), static_cast<float>(a.in_h - 1));
      const float xc = fminf(fmaxf(x, 0.f), static_cast<float>(a.in_w - 1));
      const int y0 = static_cast<int>(floorf(yc)), x0 = static_cast<int>(floorf(xc));
      const int y1 = min(y0 + 1, a.in_h - 1), x1 = min(x0 + 1, a.in_w - 1);
      const float fy = yc - y0, fx = xc - x0;
      auto at = [&](int yy, int xx) { return to_float(image[(static_cast<int64_t>(yy) * a.in_w + xx) * a.c]); };
      value = (1.f - fy) * ((1.f - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1.f - fx) * at(y1, x0) + fx * at(y1, x1));
    }
    a.output[i] = from_float<T>(value);
  }
}

template <class T>
cudaError_t launch_resize_nhwc(const ResizeArgs<T>& a, cudaStream_t stream) {
  const int64_t total = a.n * a.out_h * a.out_w * a.c;
  if (total <= 0) return cudaSuccess;
  if (a.in_h <= 0 || a.in_w <= 0) return cudaErrorInvalidValue;
  resize_nhwc_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
