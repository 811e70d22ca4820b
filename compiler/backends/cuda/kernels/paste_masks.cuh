// PasteMasks (ours: torchvision's paste_masks_in_image, the mask-paste Loop of every Mask R-CNN export, rewritten by
// passes/paste-masks.ts; the op's reference is ops/detection.ts): mask d ([mask_h, mask_w]) is resized to its box
// (x0, y0, x1, y1: integer pixels, inclusive ends) as ONNX Resize linear with half_pixel does it — scale = box size /
// mask size in float, source coordinate (o + 0.5) / scale - 0.5 clamped to [0, size - 1], then the two taps
// floor(c) and min(floor(c) + 1, size - 1) — and pasted with its top-left pixel at (y0, x0) on a zero
// height × width canvas. Pixels outside the box, and the parts of a box outside the canvas, are 0.
//
// One thread per output element in storage order ([d, height, width], coalesced writes; most of a canvas lies
// outside its box and is only written). The detection count is a run-time value (it comes from the detector's NMS):
// zero detections launch nothing.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

// T: the masks' and the output's storage; B: the boxes' integer type (int64 as torchvision exports them, or int32).
template <class T, class B>
struct PasteMasksArgs {
  const T* masks;  // [detections, 1, mask_h, mask_w]
  const B* boxes;  // [detections, 4]: x0, y0, x1, y1 (inclusive)
  T* output;       // [detections, height, width]
  int64_t detections;
  int32_t mask_h, mask_w;
  int32_t height, width;  // the canvas (image) size
};

// Source coordinate and taps of output position o (relative to the box's first pixel) along an axis that Resize
// scales from `in` to `out` pixels: onnxruntime's linear half_pixel arithmetic, in float.
struct LinearTaps {
  int lo, hi;
  float frac;  // weight of hi; lo gets 1 - frac
};

__device__ __forceinline__ LinearTaps paste_linear_taps(int64_t o, int64_t out, int in) {
  const float scale = static_cast<float>(out) / static_cast<float>(in);
  float c = (static_cast<float>(o) + 0.5f) / scale - 0.5f;
  c = fminf(fmaxf(c, 0.f), static_cast<float>(in - 1));
  LinearTaps t;
  t.lo = static_cast<int>(floorf(c));
  t.hi = min(t.lo + 1, in - 1);
  t.frac = c - static_cast<float>(t.lo);
  return t;
}

template <class T, class B>
__global__ void paste_masks_kernel(PasteMasksArgs<T, B> a) {
  const int64_t plane = static_cast<int64_t>(a.height) * a.width;
  const int64_t total = a.detections * plane;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = i / plane, pixel = i % plane;
    const int64_t y = pixel / a.width, x = pixel % a.width;
    const B* box = a.boxes + d * 4;
    const int64_t x0 = static_cast<int64_t>(box[0]), y0 = static_cast<int64_t>(box[1]);
    const int64_t x1 = static_cast<int64_t>(box[2]), y1 = static_cast<int64_t>(box[3]);
    float value = 0.f;
    // inside the box (an inverted box, x1 < x0 or y1 < y0, covers nothing: the Loop pastes nothing for it either)
    if (y >= y0 && y <= y1 && x >= x0 && x <= x1) {
      const LinearTaps ty = paste_linear_taps(y - y0, y1 - y0 + 1, a.mask_h);
      const LinearTaps tx = paste_linear_taps(x - x0, x1 - x0 + 1, a.mask_w);
      const T* m = a.masks + d * a.mask_h * a.mask_w;
      const float v00 = to_float(m[ty.lo * a.mask_w + tx.lo]), v01 = to_float(m[ty.lo * a.mask_w + tx.hi]);
      const float v10 = to_float(m[ty.hi * a.mask_w + tx.lo]), v11 = to_float(m[ty.hi * a.mask_w + tx.hi]);
      value = (1.f - ty.frac) * ((1.f - tx.frac) * v00 + tx.frac * v01) + ty.frac * ((1.f - tx.frac) * v10 + tx.frac * v11);
    }
    a.output[i] = from_float<T>(value);
  }
}

template <class T, class B>
cudaError_t launch_paste_masks(const PasteMasksArgs<T, B>& a, cudaStream_t stream) {
  if (a.detections < 0 || a.mask_h <= 0 || a.mask_w <= 0 || a.height <= 0 || a.width <= 0) return cudaErrorInvalidValue;
  if (a.detections == 0) return cudaSuccess;
  const int64_t total = a.detections * a.height * a.width;
  paste_masks_kernel<T, B><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
