// Col2Im (ONNX opset 18, torch's F.fold): input [N, C·kd·kh·kw, L] holds per block position (bd·bh·bw of them,
// row-major) the window's values; output [N, C, D, H, W] (1-D and 2-D lifted with leading dims of 1) sums every value
// into the image element its window covers. One thread per output element gathers the windows that cover it, in
// fp32: along each dim the window offsets k with (o + pad − k·dilation) a non-negative multiple of the stride whose
// quotient is a block position.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {

template <class T>
struct Col2ImArgs {
  const T* input;
  T* output;
  int64_t batch, channels;
  int32_t image[3];      // D, H, W
  int32_t block[3];      // kd, kh, kw
  int32_t positions[3];  // block positions per dim
  int32_t strides[3];
  int32_t dilations[3];
  int32_t pads[3];  // at the start of each dim
};

template <class T>
__global__ void col2im_kernel(Col2ImArgs<T> a) {
  const int64_t plane = static_cast<int64_t>(a.image[0]) * a.image[1] * a.image[2];
  const int64_t total = a.batch * a.channels * plane;
  const int64_t windows = static_cast<int64_t>(a.positions[0]) * a.positions[1] * a.positions[2];
  const int kernel = a.block[0] * a.block[1] * a.block[2];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int ow = static_cast<int>(i % a.image[2]);
    const int oh = static_cast<int>((i / a.image[2]) % a.image[1]);
    const int od = static_cast<int>((i / (static_cast<int64_t>(a.image[2]) * a.image[1])) % a.image[0]);
    const int64_t nc = i / plane;  // n · channels + c
    const T* rows = a.input + nc * kernel * windows;
    float acc = 0.f;
    for (int t = 0; t < a.block[0]; ++t) {
      const int pd = od + a.pads[0] - t * a.dilations[0];
      if (pd < 0 || pd % a.strides[0] != 0 || pd / a.strides[0] >= a.positions[0]) continue;
      for (int r = 0; r < a.block[1]; ++r) {
        const int ph = oh + a.pads[1] - r * a.dilations[1];
        if (ph < 0 || ph % a.strides[1] != 0 || ph / a.strides[1] >= a.positions[1]) continue;
        for (int s = 0; s < a.block[2]; ++s) {
          const int pw = ow + a.pads[2] - s * a.dilations[2];
          if (pw < 0 || pw % a.strides[2] != 0 || pw / a.strides[2] >= a.positions[2]) continue;
          const int64_t row = (t * a.block[1] + r) * a.block[2] + s;
          const int64_t position = (static_cast<int64_t>(pd / a.strides[0]) * a.positions[1] + ph / a.strides[1]) * a.positions[2] + pw / a.strides[2];
          acc += to_float(rows[row * windows + position]);
        }
      }
    }
    a.output[i] = from_float<T>(acc);
  }
}

template <class T>
cudaError_t launch_col2im(const Col2ImArgs<T>& a, cudaStream_t stream) {
  for (int d = 0; d < 3; ++d)
    if (a.image[d] < 1 || a.block[d] < 1 || a.positions[d] < 1 || a.strides[d] < 1 || a.dilations[d] < 1 || a.pads[d] < 0)
      return cudaErrorInvalidValue;
  const int64_t total = a.batch * a.channels * a.image[0] * a.image[1] * a.image[2];
  if (total <= 0) return cudaSuccess;
  col2im_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(a);
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
