// Convolution as GEMM without CUTLASS's implicit-GEMM conv: im2col of NHWC activations into [N·P·Q, K_padded]
// columns ordered (r, s, c) like OHWI weights, so a GEMM with the weight viewed as [K_out, R·S·C] (column-major B)
// computes the convolution; and the zero padding of weight rows to K_padded (a multiple of 8 keeps GEMM operands
// 16-byte aligned, e.g. the 7×7×3 = 147 stem). The same with a depth axis (3-D convolution, video networks): NDHWC
// activations into [N·O·P·Q, K_padded] columns ordered (t, r, s, c) like ODHWI weights [K_out, T, R, S, C]; the depth
// fields default to a 2-D convolution (depth 1, kernel depth 1).
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct Im2colArgs {
  const T* input;  // [n, h, w, c]
  T* columns;      // [n * p * q, k_padded]
  int64_t n;
  int32_t h, w, c, p, q, r, s;
  int32_t stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
  int32_t k_padded;  // >= t * r * s * c; columns beyond are zero
  // 3-D convolution: input [n, d, h, w, c], output rows (n, o, p, q) with o = out_d; taps (t, r, s, c), t = kernel_d
  int32_t d = 1, out_d = 1, kernel_d = 1, stride_d = 1, pad_front = 0, dilation_d = 1;
};

// One thread per `kVector` consecutive channels of one column entry (kVector = 8 when c % 8 == 0, else 1), or with
// kGather8 per 8 consecutive column entries gathered one by one and stored as one 16-byte vector: channel counts that
// are not a multiple of 8 (c = 3, 7×7 taps, k_padded = 152) whose rows are not 16-byte runs of the input.
template <class T, int kVector, bool kGather8 = false>
__global__ void im2col_nhwc_kernel(Im2colArgs<T> a) {
  const int64_t groups_per_row = a.k_padded / kVector;
  const int64_t total = a.n * a.out_d * a.p * a.q * groups_per_row;
  const int32_t plane_taps = a.r * a.s;
  const int32_t taps = a.kernel_d * plane_taps * a.c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / groups_per_row;
    const int32_t k = static_cast<int32_t>(i % groups_per_row) * kVector;
    T* dst = a.columns + row * a.k_padded + k;
    const int32_t oq = static_cast<int32_t>(row % a.q);
    const int32_t op = static_cast<int32_t>((row / a.q) % a.p);
    const int32_t oz = static_cast<int32_t>((row / (static_cast<int64_t>(a.q) * a.p)) % a.out_d);
    const int64_t image = row / (static_cast<int64_t>(a.q) * a.p * a.out_d);
    // the input element of column kk (-1: zero in the padding and past the taps): tap (kt, kr, ks), channel ch
    auto source_of = [&](int32_t kk) -> int64_t {
      if (kk >= taps) return -1;
      const int32_t ch = kk % a.c, tap = kk / a.c;
      const int32_t kt = tap / plane_taps, kr = (tap % plane_taps) / a.s, ks = tap % a.s;
      const int32_t iz = oz * a.stride_d - a.pad_front + kt * a.dilation_d;
      const int32_t iy = op * a.stride_h - a.pad_top + kr * a.dilation_h;
      const int32_t ix = oq * a.stride_w - a.pad_left + ks * a.dilation_w;
      if (iz < 0 || iz >= a.d || iy < 0 || iy >= a.h || ix < 0 || ix >= a.w) return -1;
      return (((image * a.d + iz) * a.h + iy) * a.w + ix) * a.c + ch;
    };
    if constexpr (kGather8) {
      Vec16<T> v;
      v.raw = make_uint4(0, 0, 0, 0);
      for (int j = 0; j < 8; ++j) {
        const int64_t source = source_of(k + j);
        if (source >= 0) v.elements[j] = a.input[source];
      }
      store_vec16(dst, v);
    } else if constexpr (kVector == 8) {
      const int64_t source = source_of(k);
      Vec16<T> v;
      v.raw = make_uint4(0, 0, 0, 0);
      if (source >= 0) v = load_vec16(a.input + source);
      store_vec16(dst, v);
    } else {
      const int64_t source = source_of(k);
      *dst = source >= 0 ? a.input[source] : from_float<T>(0.f);
    }
  }
}

template <class T>
cudaError_t launch_im2col_nhwc(const Im2colArgs<T>& a, cudaStream_t stream) {
  // 8 elements per 16-byte vector: fp16 (or bf16) only
  const bool vector_rows = sizeof(T) == 2 && a.k_padded % 8 == 0 && is_aligned16(a.columns);
  const bool vector = vector_rows && a.c % 8 == 0 && is_aligned16(a.input);
  const int64_t total = a.n * a.out_d * a.p * a.q * (vector_rows ? a.k_padded / 8 : a.k_padded);
  if (total <= 0) return cudaSuccess;
  if (vector) im2col_nhwc_kernel<T, 8><<<grid_for(total, 256), 256, 0, stream>>>(a);
  else if (vector_rows) im2col_nhwc_kernel<T, 8, true><<<grid_for(total, 256), 256, 0, stream>>>(a);
  else im2col_nhwc_kernel<T, 1><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

// Patchify: im2col of a convolution whose window tiles the input (stride = kernel R×S, no padding, no dilation; a
// ViT patch embedding). columns[(n, y, x), (ky, kx, c)] = input[n, y·R + ky, x·S + kx, c]. For one (patch, ky) the
// S·C source values are contiguous, and so are the destination's, so the copy moves 16-byte vectors; it needs
// S·C % 8 == 0 (the 16×16 RGB patch: 48 values = 6 vectors) and 16-byte aligned pointers. Destination vector i is
// columns + 8·i, so writes are fully coalesced.
template <class T>
struct PatchifyArgs {
  const T* input;  // [n, h, w, c]
  T* columns;      // [n * p * q, r * s * c]
  int64_t n;
  int32_t h, w, c, p, q, r, s;
};

template <class T>
__global__ void patchify_nhwc_kernel(PatchifyArgs<T> a) {
  const int32_t run = a.s * a.c / 8;  // vectors per (patch, ky)
  const int32_t per_image = a.p * a.q * a.r * run;
  const int64_t total = a.n * per_image;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t image = i / per_image;
    int32_t rest = static_cast<int32_t>(i - image * per_image);
    const int32_t v = rest % run;
    rest /= run;
    const int32_t ky = rest % a.r;
    rest /= a.r;
    const int32_t x = rest % a.q, y = rest / a.q;
    const T* src = a.input + ((image * a.h + y * a.r + ky) * a.w + static_cast<int64_t>(x) * a.s) * a.c + v * 8;
    store_vec16(a.columns + i * 8, load_vec16(src));
  }
}

template <class T>
bool can_patchify(const PatchifyArgs<T>& a) {
  return (a.s * a.c) % 8 == 0 && is_aligned16(a.input) && is_aligned16(a.columns);
}

// The patchify copy where can_patchify holds, else the general im2col (same column layout, K = R·S·C unpadded).
template <class T>
cudaError_t launch_patchify_nhwc(const PatchifyArgs<T>& a, cudaStream_t stream) {
  if (!can_patchify(a)) {
    const int32_t taps = a.r * a.s * a.c;
    return launch_im2col_nhwc(Im2colArgs<T>{a.input, a.columns, a.n, a.h, a.w, a.c, a.p, a.q, a.r, a.s, a.r, a.s, 0, 0, 1, 1, taps},
                              stream);
  }
  const int64_t total = a.n * a.p * a.q * a.r * (a.s * a.c / 8);
  if (total <= 0) return cudaSuccess;
  patchify_nhwc_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

// dst[row, k] = k < columns ? src[row, k] : 0, for `rows` rows (weight preparation).
template <class T>
__global__ void pad_rows_kernel(const T* src, T* dst, int64_t rows, int32_t columns, int32_t padded_columns) {
  const int64_t total = rows * padded_columns;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / padded_columns;
    const int32_t k = static_cast<int32_t>(i % padded_columns);
    dst[i] = k < columns ? src[row * columns + k] : from_float<T>(0.f);
  }
}

template <class T>
cudaError_t launch_pad_rows(const T* src, T* dst, int64_t rows, int32_t columns, int32_t padded_columns, cudaStream_t stream) {
  const int64_t total = rows * padded_columns;
  if (total <= 0) return cudaSuccess;
  pad_rows_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(src, dst, rows, columns, padded_columns);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
