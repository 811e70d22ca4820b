// GPU check of the layout kernels the ResNet-50 stem runs: NCHW → NHWC with zero channel padding
// (launch_nchw_to_nhwc) and NHWC max/avg pooling (launch_pool2d_nhwc: 16-byte vector path for C % 8 == 0, scalar
// path otherwise), against CPU references, with timings at the ResNet-50 batch-64 shapes.
//
// Build and run (from the repository root; sm_90 for H100/H200):
//   nvcc -std=c++17 -O2 -arch=sm_90 -Icompiler/backends/cuda/kernels compiler/backends/cuda/tests/layout_check.cu -o layout_check && ./layout_check
// Output buffers are poisoned (all bytes 0xFF: NaN in fp16) before each run, so an element the kernel forgets to
// write fails. The transpose must match exactly (it moves bits); pooling to fp16 rounding of the float result.
// Prints one row per case: kernel, shape, max abs error, pass/fail, mean time (µs) and effective GB/s;
// exits 1 if any case fails.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "pooling.cuh"
#include "tensor_ops.cuh"

using namespace ait::kernels;

#define CHECK_CUDA(expr)                                                                                      \
  do {                                                                                                        \
    cudaError_t status_ = (expr);                                                                             \
    if (status_ != cudaSuccess) {                                                                             \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(status_)); \
      std::exit(2);                                                                                           \
    }                                                                                                         \
  } while (0)

namespace {

int failures = 0;

std::vector<__half> random_halves(size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-4.f, 4.f);
  std::vector<__half> v(count);
  for (auto& x : v) x = __float2half(dist(rng));
  return v;
}

template <class T>
T* to_device(const std::vector<T>& host) {
  T* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, host.size() * sizeof(T) + 16));
  CHECK_CUDA(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

// Mean microseconds of `launch` over `iterations` runs (after a warm-up run).
float time_us(const std::function<cudaError_t()>& launch, int iterations = 50) {
  CHECK_CUDA(launch());
  CHECK_CUDA(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  CHECK_CUDA(cudaEventRecord(start));
  for (int i = 0; i < iterations; ++i) CHECK_CUDA(launch());
  CHECK_CUDA(cudaEventRecord(stop));
  CHECK_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return ms * 1000.f / iterations;
}

void report(const char* kernel, const std::string& shape, double max_error, bool pass, float us, double bytes) {
  std::printf("%-28s %-40s max|err| %-10.3g %-4s %9.1f us %8.1f GB/s\n", kernel, shape.c_str(), max_error, pass ? "ok" : "FAIL", us,
              bytes / (us * 1e3));
  if (!pass) ++failures;
}

// NCHW [n, c, h, w] → NHWC [n, h, w, out_c], channels c..out_c-1 zero. `misalign` offsets the output by one
// element so that the launcher must take the scalar path.
void check_nchw_to_nhwc(int64_t n, int c, int64_t h, int64_t w, int out_c, bool misalign = false) {
  const int64_t hw = h * w;
  const auto input = random_halves(static_cast<size_t>(n * c * hw), 7);
  const size_t out_count = static_cast<size_t>(n * hw * out_c);
  __half* d_in = to_device(input);
  __half* d_out_base = nullptr;
  CHECK_CUDA(cudaMalloc(&d_out_base, (out_count + 8) * sizeof(__half)));
  __half* d_out = d_out_base + (misalign ? 1 : 0);
  CHECK_CUDA(cudaMemset(d_out_base, 0xFF, (out_count + 8) * sizeof(__half)));
  NchwToNhwcArgs<__half> args{d_in, d_out, n, hw, c, out_c};
  CHECK_CUDA(launch_nchw_to_nhwc(args, 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<__half> out(out_count);
  CHECK_CUDA(cudaMemcpy(out.data(), d_out, out_count * sizeof(__half), cudaMemcpyDeviceToHost));
  double max_error = 0;
  bool pass = true;
  for (int64_t b = 0; b < n && pass; ++b)
    for (int64_t p = 0; p < hw; ++p)
      for (int ch = 0; ch < out_c; ++ch) {
        const float expected = ch < c ? __half2float(input[static_cast<size_t>((b * c + ch) * hw + p)]) : 0.f;
        const float actual = __half2float(out[static_cast<size_t>((b * hw + p) * out_c + ch)]);
        const double e = std::isnan(actual) ? INFINITY : std::fabs(actual - expected);
        if (e > max_error) max_error = e;
        if (e != 0) pass = false;
      }
  const float us = time_us([&] { return launch_nchw_to_nhwc(args, 0); });
  const double bytes = (static_cast<double>(n * c * hw) + static_cast<double>(out_count)) * sizeof(__half);
  char shape[96];
  std::snprintf(shape, sizeof shape, "[%lld,%d,%lld,%lld]->C%d%s", static_cast<long long>(n), c, static_cast<long long>(h),
                static_cast<long long>(w), out_c, misalign ? " (unaligned)" : "");
  report(out_c % 8 == 0 && !misalign ? "nchw_to_nhwc (16B stores)" : "nchw_to_nhwc (scalar)", shape, max_error, pass, us, bytes);
  CHECK_CUDA(cudaFree(d_in));
  CHECK_CUDA(cudaFree(d_out_base));
}

// NHWC pooling against a CPU reference in float (ONNX semantics, dilation 1).
void check_pool(PoolMode mode, int64_t n, int h, int w, int c, int k, int stride, int pad, bool count_include_pad = false) {
  const int out_h = (h + 2 * pad - k) / stride + 1, out_w = (w + 2 * pad - k) / stride + 1;
  const auto input = random_halves(static_cast<size_t>(n * h * w * c), 11);
  const size_t out_count = static_cast<size_t>(n * out_h * out_w * c);
  __half* d_in = to_device(input);
  __half* d_out = nullptr;
  CHECK_CUDA(cudaMalloc(&d_out, out_count * sizeof(__half)));
  CHECK_CUDA(cudaMemset(d_out, 0xFF, out_count * sizeof(__half)));
  Pool2dArgs<__half> args{d_in, d_out, n, h, w, c, out_h, out_w, k, k, stride, stride, pad, pad, 1, 1, mode, count_include_pad};
  CHECK_CUDA(launch_pool2d_nhwc(args, 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<__half> out(out_count);
  CHECK_CUDA(cudaMemcpy(out.data(), d_out, out_count * sizeof(__half), cudaMemcpyDeviceToHost));
  double max_error = 0;
  bool pass = true;
  for (int64_t b = 0; b < n; ++b)
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow)
        for (int ch = 0; ch < c; ++ch) {
          float acc = mode == PoolMode::kMax ? -INFINITY : 0.f;
          int taps = 0;
          for (int kh = 0; kh < k; ++kh)
            for (int kw = 0; kw < k; ++kw) {
              const int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
              if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
              const float v = __half2float(input[static_cast<size_t>(((b * h + ih) * w + iw) * c + ch)]);
              acc = mode == PoolMode::kMax ? std::fmax(acc, v) : acc + v;
              ++taps;
            }
          if (mode == PoolMode::kAverage) {
            const int h0 = oh * stride - pad, w0 = ow * stride - pad;
            const int h1 = std::min(h0 + k, h + pad), w1 = std::min(w0 + k, w + pad);
            acc /= static_cast<float>(count_include_pad ? (h1 - h0) * (w1 - w0) : taps);
          }
          const float actual = __half2float(out[static_cast<size_t>(((b * out_h + oh) * out_w + ow) * c + ch)]);
          const double e = std::isnan(actual) ? INFINITY : std::fabs(actual - acc);
          if (e > max_error) max_error = e;
          if (!(e <= 4e-3 * std::fmax(1.f, std::fabs(acc)))) pass = false;
        }
  const float us = time_us([&] { return launch_pool2d_nhwc(args, 0); });
  const double bytes = (static_cast<double>(input.size()) + static_cast<double>(out_count)) * sizeof(__half);
  char shape[96];
  std::snprintf(shape, sizeof shape, "[%lld,%d,%d,%d] k%d s%d p%d", static_cast<long long>(n), h, w, c, k, stride, pad);
  const char* name = mode == PoolMode::kMax ? (c % 8 == 0 ? "max_pool (16B vectors)" : "max_pool (scalar)")
                                            : (c % 8 == 0 ? "avg_pool (16B vectors)" : "avg_pool (scalar)");
  report(name, shape, max_error, pass, us, bytes);
  CHECK_CUDA(cudaFree(d_in));
  CHECK_CUDA(cudaFree(d_out));
}

}  // namespace

int main() {
  // ResNet-50 batch 64: the model input [64,3,224,224] NCHW → NHWC padded to 8 channels (the stem conv's input)
  check_nchw_to_nhwc(64, 3, 224, 224, 8);
  // the stem weight OIHW [64,3,7,7] → OHWI padded to 8 (the bind-time prepare op of a graph-only model)
  check_nchw_to_nhwc(64, 3, 7, 7, 8);
  // a plain transpose (no padding), multiple C tiles with a ragged last tile, odd spatial size, and the scalar paths
  check_nchw_to_nhwc(4, 64, 56, 56, 64);
  check_nchw_to_nhwc(3, 40, 9, 13, 48);
  check_nchw_to_nhwc(2, 3, 17, 19, 3);
  check_nchw_to_nhwc(2, 5, 11, 7, 8, true);
  // ResNet-50 batch 64: the stem max pool 3x3/2 pad 1 on [64,112,112,64]
  check_pool(PoolMode::kMax, 64, 112, 112, 64, 3, 2, 1);
  check_pool(PoolMode::kMax, 2, 15, 15, 24, 3, 2, 1);
  check_pool(PoolMode::kMax, 2, 15, 15, 3, 3, 2, 1);
  check_pool(PoolMode::kAverage, 2, 14, 14, 32, 3, 1, 1, false);
  check_pool(PoolMode::kAverage, 2, 14, 14, 32, 3, 2, 1, true);
  check_pool(PoolMode::kAverage, 2, 9, 9, 5, 2, 2, 0);
  if (failures) std::printf("%d case(s) FAILED\n", failures);
  else std::printf("all cases passed\n");
  return failures ? 1 : 0;
}
