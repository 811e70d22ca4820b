// RoiAlign (ONNX opset 10 and 16) as onnxruntime computes it: each roi [x1, y1, x2, y2] (input-image coordinates,
// times spatial_scale, minus 0.5 with half_pixel) is cut into out_h × out_w bins; each bin averages a grid of
// bilinear samples (sampling_ratio per axis, or ceil(roi size / output size) per roi when it is 0). Max mode takes,
// per sample, the largest of the four weighted corners w·v (onnxruntime's formula, not max of the interpolated
// values), then the largest over the samples. A sample more than one pixel outside the map contributes 0.
//
// The output is [num_rois, C, out_h, out_w] whatever the input layout. X is NCHW (one thread per output element,
// neighbouring threads on neighbouring bins of one plane) or NHWC ([n, h, w, c], where the layout pass keeps the
// FPN's conv outputs): then a block computes a tile of 32 bins × 8 channel vectors of one roi, each thread one bin
// and 16 bytes of channels per bilinear corner (coalesced along C), into shared memory, and writes the tile back as
// channel rows of contiguous bins, so that the NCHW output is written coalesced too.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

enum class RoiAlignMode : int32_t { kAvg = 0, kMax = 1 };

// T: the feature map's and the output's storage; R: the rois' (fp32 when the storage-precision pass keeps
// coordinates in fp32, passes/storage-precision.ts; fp16 rounds a 1000-pixel coordinate to half a pixel).
template <class T, class R = T>
struct RoiAlignArgs {
  const T* input;                // [n, c, h, w], or [n, h, w, c] when channels_last
  const R* rois;                 // [num_rois, 4]: x1, y1, x2, y2
  const int64_t* batch_indices;  // [num_rois]; an index outside [0, n) gives a roi of zeros
  T* output;                     // [num_rois, c, out_h, out_w]
  int64_t n, c, h, w, num_rois;
  int32_t out_h, out_w;
  int32_t sampling_ratio;  // samples per bin and axis; 0: adaptive
  float spatial_scale;
  bool half_pixel;  // coordinate_transformation_mode half_pixel (opset 16's default); else output_half_pixel
  RoiAlignMode mode;
  bool channels_last;
};

// One roi's bins in feature-map coordinates (onnxruntime's arithmetic, in float).
struct RoiGeometry {
  float y0, x0, bin_h, bin_w;
  int grid_h, grid_w;  // samples per bin; may be <= 0 for an inverted roi (no samples: the bin is 0)
  float count;         // what avg divides by: at least 1
  int64_t image;       // batch index, -1 when out of range
};

template <class T, class R>
__device__ __forceinline__ RoiGeometry roi_geometry(const RoiAlignArgs<T, R>& a, int64_t r) {
  const float offset = a.half_pixel ? 0.5f : 0.f;
  const R* box = a.rois + r * 4;
  const float x1 = to_float(box[0]) * a.spatial_scale - offset, y1 = to_float(box[1]) * a.spatial_scale - offset;
  const float x2 = to_float(box[2]) * a.spatial_scale - offset, y2 = to_float(box[3]) * a.spatial_scale - offset;
  float roi_w = x2 - x1, roi_h = y2 - y1;
  if (!a.half_pixel) {  // output_half_pixel: a roi is at least one pixel
    roi_w = fmaxf(roi_w, 1.f);
    roi_h = fmaxf(roi_h, 1.f);
  }
  RoiGeometry g;
  g.y0 = y1;
  g.x0 = x1;
  g.bin_h = roi_h / a.out_h;
  g.bin_w = roi_w / a.out_w;
  g.grid_h = a.sampling_ratio > 0 ? a.sampling_ratio : static_cast<int>(ceilf(roi_h / a.out_h));
  g.grid_w = a.sampling_ratio > 0 ? a.sampling_ratio : static_cast<int>(ceilf(roi_w / a.out_w));
  g.count = static_cast<float>(max(g.grid_h * g.grid_w, 1));
  const int64_t image = a.batch_indices[r];
  g.image = image >= 0 && image < a.n ? image : -1;
  return g;
}

// The bilinear corners of sample (y, x) of an h × w map, as pixel offsets y·w + x, and their weights; false for a
// sample outside [-1, h] × [-1, w] (it contributes 0).
struct RoiBilinear {
  int64_t pixel[4];
  float weight[4];
};

__device__ __forceinline__ bool roi_bilinear(float y, float x, int64_t h, int64_t w, RoiBilinear& b) {
  if (y < -1.f || y > static_cast<float>(h) || x < -1.f || x > static_cast<float>(w)) return false;
  y = fmaxf(y, 0.f);
  x = fmaxf(x, 0.f);
  int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
  if (y_low >= h - 1) {
    y_low = y_high = h - 1;
    y = static_cast<float>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= w - 1) {
    x_low = x_high = w - 1;
    x = static_cast<float>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const float ly = y - y_low, lx = x - x_low, hy = 1.f - ly, hx = 1.f - lx;
  b.pixel[0] = y_low * w + x_low;
  b.pixel[1] = y_low * w + x_high;
  b.pixel[2] = y_high * w + x_low;
  b.pixel[3] = y_high * w + x_high;
  b.weight[0] = hy * hx;
  b.weight[1] = hy * lx;
  b.weight[2] = ly * hx;
  b.weight[3] = ly * lx;
  return true;
}

// NCHW input: one thread per output element.
template <class T, class R, bool kMax>
__global__ void roi_align_nchw_kernel(RoiAlignArgs<T, R> a) {
  const int64_t bins = static_cast<int64_t>(a.out_h) * a.out_w;
  const int64_t total = a.num_rois * a.c * bins;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t bin = i % bins, rest = i / bins;
    const int64_t c = rest % a.c, r = rest / a.c;
    const int ph = static_cast<int>(bin / a.out_w), pw = static_cast<int>(bin % a.out_w);
    const RoiGeometry g = roi_geometry(a, r);
    float acc = 0.f;
    bool first = true;
    if (g.image >= 0) {
      const T* plane = a.input + (g.image * a.c + c) * a.h * a.w;
      for (int iy = 0; iy < g.grid_h; ++iy) {
        const float y = g.y0 + ph * g.bin_h + (iy + .5f) * g.bin_h / g.grid_h;
        for (int ix = 0; ix < g.grid_w; ++ix) {
          const float x = g.x0 + pw * g.bin_w + (ix + .5f) * g.bin_w / g.grid_w;
          RoiBilinear b;
          float e[4] = {0.f, 0.f, 0.f, 0.f};
          if (roi_bilinear(y, x, a.h, a.w, b)) {
#pragma unroll
            for (int k = 0; k < 4; ++k) e[k] = b.weight[k] * to_float(plane[b.pixel[k]]);
          }
          if (kMax) {
            const float m = fmaxf(fmaxf(e[0], e[1]), fmaxf(e[2], e[3]));
            acc = first ? m : fmaxf(acc, m);
            first = false;
          } else {
            acc += e[0] + e[1] + e[2] + e[3];
          }
        }
      }
    }
    a.output[i] = from_float<T>(kMax ? acc : acc / g.count);
  }
}

constexpr int kRoiTileBins = 32;    // output bins (ph, pw) of one roi per block
constexpr int kRoiTileVectors = 8;  // channel vectors per block
constexpr int kRoiThreads = kRoiTileBins * kRoiTileVectors;

// NHWC input: V channels per thread (a 16-byte vector, or 1 when C is not a multiple of it or X is misaligned).
// Block = (bin tile, channel tile, roi), flattened into blockIdx.x with the bin tile fastest.
template <class T, class R, int V, bool kMax>
__global__ void __launch_bounds__(kRoiThreads) roi_align_nhwc_kernel(RoiAlignArgs<T, R> a, int64_t bin_tiles, int64_t channel_tiles) {
  constexpr int kTileC = kRoiTileVectors * V;
  __shared__ float tile[kTileC][kRoiTileBins + 1];  // +1: the write-back reads columns without bank conflicts
  const int64_t bins = static_cast<int64_t>(a.out_h) * a.out_w;
  int64_t block = blockIdx.x;
  const int64_t bin_tile = block % bin_tiles;
  block /= bin_tiles;
  const int64_t channel_tile = block % channel_tiles, r = block / channel_tiles;
  // neighbouring threads read neighbouring channel vectors of one pixel: 8 × 16 bytes contiguous per corner
  const int v = threadIdx.x % kRoiTileVectors, b = threadIdx.x / kRoiTileVectors;
  const int64_t bin = bin_tile * kRoiTileBins + b;
  const int64_t c0 = channel_tile * kTileC + v * V;
  if (bin < bins && c0 < a.c) {
    const int ph = static_cast<int>(bin / a.out_w), pw = static_cast<int>(bin % a.out_w);
    const RoiGeometry g = roi_geometry(a, r);
    float acc[V];
#pragma unroll
    for (int e = 0; e < V; ++e) acc[e] = 0.f;
    bool first = true;
    if (g.image >= 0) {
      const T* image = a.input + g.image * a.h * a.w * a.c + c0;
      for (int iy = 0; iy < g.grid_h; ++iy) {
        const float y = g.y0 + ph * g.bin_h + (iy + .5f) * g.bin_h / g.grid_h;
        for (int ix = 0; ix < g.grid_w; ++ix) {
          const float x = g.x0 + pw * g.bin_w + (ix + .5f) * g.bin_w / g.grid_w;
          RoiBilinear bl;
          const bool inside = roi_bilinear(y, x, a.h, a.w, bl);
          float m[V];  // max mode: the largest weighted corner per channel
#pragma unroll
          for (int e = 0; e < V; ++e) m[e] = inside ? -INFINITY : 0.f;
          if (inside) {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
              const T* p = image + bl.pixel[k] * a.c;
              float values[V];
              if constexpr (V == Vec16<T>::kElements) {
                const Vec16<T> q = load_vec16(p);
#pragma unroll
                for (int e = 0; e < V; ++e) values[e] = to_float(q.elements[e]);
              } else {
#pragma unroll
                for (int e = 0; e < V; ++e) values[e] = to_float(p[e]);
              }
#pragma unroll
              for (int e = 0; e < V; ++e) {
                const float wv = bl.weight[k] * values[e];
                if (kMax)
                  m[e] = fmaxf(m[e], wv);
                else
                  acc[e] += wv;
              }
            }
          }
          if (kMax) {
#pragma unroll
            for (int e = 0; e < V; ++e) acc[e] = first ? m[e] : fmaxf(acc[e], m[e]);
            first = false;
          }
        }
      }
    }
#pragma unroll
    for (int e = 0; e < V; ++e) tile[v * V + e][b] = kMax ? acc[e] : acc[e] / g.count;
  }
  __syncthreads();
  // write-back: row cl of the tile is channel c of the roi, its bins contiguous in the output
  const int64_t channel_base = channel_tile * kTileC, bin_base = bin_tile * kRoiTileBins;
  for (int i = threadIdx.x; i < kTileC * kRoiTileBins; i += kRoiThreads) {
    const int cl = i / kRoiTileBins, bl = i % kRoiTileBins;
    const int64_t c = channel_base + cl, out_bin = bin_base + bl;
    if (c < a.c && out_bin < bins) a.output[(r * a.c + c) * bins + out_bin] = from_float<T>(tile[cl][bl]);
  }
}

template <class T, class R>
cudaError_t launch_roi_align(const RoiAlignArgs<T, R>& a, cudaStream_t stream) {
  if (a.out_h <= 0 || a.out_w <= 0 || a.sampling_ratio < 0 || a.num_rois < 0 || a.c < 0) return cudaErrorInvalidValue;
  if (a.num_rois == 0 || a.c == 0) return cudaSuccess;
  if (a.h <= 0 || a.w <= 0) return cudaErrorInvalidValue;  // an empty map has no pixel to sample
  const bool max_mode = a.mode == RoiAlignMode::kMax;
  if (!a.channels_last) {
    const int64_t total = a.num_rois * a.c * a.out_h * a.out_w;
    if (max_mode)
      roi_align_nchw_kernel<T, R, true><<<grid_for(total, 256), 256, 0, stream>>>(a);
    else
      roi_align_nchw_kernel<T, R, false><<<grid_for(total, 256), 256, 0, stream>>>(a);
    return launch_status();
  }
  constexpr int kVector = Vec16<T>::kElements;
  const bool vector = a.c % kVector == 0 && is_aligned16(a.input);
  const int64_t bin_tiles = ceil_div(static_cast<int64_t>(a.out_h) * a.out_w, kRoiTileBins);
  const int64_t channel_tiles = ceil_div(a.c, kRoiTileVectors * (vector ? kVector : 1));
  const int64_t blocks = a.num_rois * channel_tiles * bin_tiles;
  if (blocks > 0x7fffffffLL) return cudaErrorInvalidValue;
  const unsigned grid = static_cast<unsigned>(blocks);
  if (vector) {
    if (max_mode)
      roi_align_nhwc_kernel<T, R, kVector, true><<<grid, kRoiThreads, 0, stream>>>(a, bin_tiles, channel_tiles);
    else
      roi_align_nhwc_kernel<T, R, kVector, false><<<grid, kRoiThreads, 0, stream>>>(a, bin_tiles, channel_tiles);
  } else {
    if (max_mode)
      roi_align_nhwc_kernel<T, R, 1, true><<<grid, kRoiThreads, 0, stream>>>(a, bin_tiles, channel_tiles);
    else
      roi_align_nhwc_kernel<T, R, 1, false><<<grid, kRoiThreads, 0, stream>>>(a, bin_tiles, channel_tiles);
  }
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
