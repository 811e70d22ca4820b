// GPU check of the grouped convolution kernel (kernels/grouped_conv.cuh), both of its paths (direct FMAs and tensor
// cores), against a CPU reference in double precision; the same harness and table as kernel_check.cu, with the
// path in the kernel column. A separate binary because it builds in a minute where kernel_check takes many.
//
// Build and run (from the repository root):
//   nvcc -std=c++17 -O2 -arch=sm_90a -Icompiler/backends/cuda/kernels compiler/backends/cuda/tests/grouped_conv_check.cu -o grouped_conv_check && ./grouped_conv_check
//   (-arch=sm_80 for A100/A10/L4)
// Exits 1 if any case fails. The RegNetX-016 rows at batch 64 time the stage shapes of that model (group width 24).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "all.cuh"

using namespace ait::kernels;

#include "kernel_check_harness.h"

namespace {

// input [n, h, w, c], weight [k, kernel, kernel, c / group] (OHWI); epilogue relu(acc + bias) + residual, or the bare
// accumulator. Every path runs against one reference.
void check_grouped_conv(int64_t n, int h, int w, int c, int k, int group, int kernel, int stride, int pad, int dilation,
                        bool with_epilogue) {
  const int cg = c / group, kg = k / group;
  const int oh = (h + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  const int ow = (w + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  const int64_t outputs = n * oh * ow * k, weights = int64_t(k) * kernel * kernel * cg;
  std::vector<double> x, weight, bias, residual;
  auto hx = random_tensor<__half>(n * h * w * c, &x);
  const float bound = 1.f / std::sqrt(float(kernel * kernel * cg));
  auto hw = random_tensor<__half>(weights, &weight, -bound, bound);
  auto hb = random_tensor<__half>(k, &bias, -0.5f, 0.5f);
  auto hr = random_tensor<__half>(outputs, &residual);
  DeviceBuffer<__half> dx(n * h * w * c), dw(weights), db(k), dr(outputs), dy(outputs);
  upload(dx, hx);
  upload(dw, hw);
  upload(db, hb);
  upload(dr, hr);
  std::vector<double> ref(outputs);
  for (int64_t b = 0; b < n; ++b)
    for (int y = 0; y < oh; ++y)
      for (int xo = 0; xo < ow; ++xo)
        for (int ch = 0; ch < k; ++ch) {
          const int g = ch / kg;
          double acc = 0;
          for (int r = 0; r < kernel; ++r)
            for (int s = 0; s < kernel; ++s) {
              const int iy = y * stride - pad + r * dilation, ix = xo * stride - pad + s * dilation;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const double* xp = &x[((b * h + iy) * w + ix) * c + g * cg];
              const double* wp = &weight[((int64_t(ch) * kernel + r) * kernel + s) * cg];
              for (int ci = 0; ci < cg; ++ci) acc += xp[ci] * wp[ci];
            }
          const int64_t i = ((b * oh + y) * ow + xo) * k + ch;
          ref[i] = with_epilogue ? std::max(acc + bias[ch], 0.0) + residual[i] : acc;
        }
  const std::string shape = "[" + std::to_string(n) + "," + std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c) +
                            "] K" + std::to_string(k) + " g" + std::to_string(group) + " k" + std::to_string(kernel) + " s" +
                            std::to_string(stride) + " d" + std::to_string(dilation);
  const std::pair<GroupedConvPath, const char*> paths[] = {{GroupedConvPath::kDirect, "direct"},
                                                           {GroupedConvPath::kTensorCore, "tensor core"}};
  for (const auto& entry : paths) {
    const GroupedConvPath path = entry.first;
    const std::string name = std::string("grouped ") + entry.second + (with_epilogue ? " relu+res" : "");
    if (with_epilogue) {
      GroupedConv2dArgs<__half, 2> args{dx.ptr, dw.ptr, dy.ptr, {db.ptr, dr.ptr}, {GroupedConvOperand::kChannel, GroupedConvOperand::kFull},
                                        n, h, w, c, oh, ow, k, group, kernel, kernel, stride, stride, pad, pad, dilation, dilation};
      const auto epilogue = ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Relu{}, ew::AddInput<2>{});
      run_case(name, shape, dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_grouped_conv2d_nhwc(args, epilogue, st, path); });
    } else {
      GroupedConv2dArgs<__half, 0> args{dx.ptr, dw.ptr, dy.ptr, {nullptr}, {GroupedConvOperand::kChannel},
                                        n, h, w, c, oh, ow, k, group, kernel, kernel, stride, stride, pad, pad, dilation, dilation};
      const auto epilogue = ew::make_chain(ew::Input<0>{});
      run_case(name, shape, dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_grouped_conv2d_nhwc(args, epilogue, st, path); });
    }
  }
}

}  // namespace

int main() {
  int device = 0;
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  std::printf("AIT grouped conv check on %s (sm_%d%d)\n\n", prop.name, prop.major, prop.minor);
  std::printf("%-28s %-34s %12s  %-4s %10s\n", "kernel", "shape", "rel L2 err", "ok", "time us");
  // RegNetX's 24 channels per group (stride 1 and 2), odd groups and channel counts (the element-wise gathers), a
  // 5x5 dilated conv with 40 outputs per group (two blocks of 24 on the tensor cores), C/group 96, 4 per group
  // (ResNeXt's, one 8-wide block), a pixel count that is not a multiple of the 128-pixel block
  check_grouped_conv(8, 28, 28, 168, 168, 7, 3, 1, 1, 1, true);
  check_grouped_conv(8, 56, 56, 72, 72, 3, 3, 2, 1, 1, true);
  check_grouped_conv(2, 13, 11, 9, 15, 3, 3, 1, 1, 1, true);
  check_grouped_conv(2, 17, 17, 16, 80, 2, 5, 1, 4, 2, false);
  check_grouped_conv(2, 9, 9, 192, 64, 2, 3, 1, 1, 1, true);
  check_grouped_conv(4, 14, 14, 128, 128, 32, 3, 1, 1, 1, true);
  check_grouped_conv(3, 7, 5, 96, 48, 4, 1, 1, 0, 1, false);
  // RegNetX-016 at batch 64 (224x224 input): the 3x3 grouped convs of its four stages, stride 1
  check_grouped_conv(64, 56, 56, 72, 72, 3, 3, 1, 1, 1, true);
  check_grouped_conv(64, 28, 28, 168, 168, 7, 3, 1, 1, 1, true);
  check_grouped_conv(64, 14, 14, 408, 408, 17, 3, 1, 1, 1, true);
  check_grouped_conv(64, 7, 7, 912, 912, 38, 3, 1, 1, 1, true);
  std::printf("\n%s: %d failing case(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
