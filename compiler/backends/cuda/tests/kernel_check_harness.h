// The harness of the CUDA kernel checks (kernel_check.cu, grouped_conv_check.cu): device buffers, random inputs
// recorded as stored, and run_case (poison the output, launch, compare with a double-precision reference by relative
// L2, then time 20 launches). Each check binary includes it once; `failures` counts the failed cases.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#define CHECK_CUDA(expr)                                                                                    \
  do {                                                                                                      \
    cudaError_t status_ = (expr);                                                                           \
    if (status_ != cudaSuccess) {                                                                           \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(status_)); \
      std::exit(2);                                                                                         \
    }                                                                                                       \
  } while (0)

namespace {

std::mt19937_64 rng(20261121);

template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t count = 0;
  explicit DeviceBuffer(size_t n) : count(n) { CHECK_CUDA(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T))); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

float to_host_float(__half v) { return __half2float(v); }
float to_host_float(float v) { return v; }
double to_host_float(int64_t v) { return static_cast<double>(v); }  // integer outputs: compared exactly
double to_host_float(int32_t v) { return v; }
double to_host_float(uint8_t v) { return v; }
template <class T>
T from_host_float(float v);
template <>
__half from_host_float<__half>(float v) { return __float2half_rn(v); }
template <>
float from_host_float<float>(float v) { return v; }

// Random values in [low, high], stored as T; `values` receives them exactly as stored (for the reference).
template <class T>
std::vector<T> random_tensor(size_t n, std::vector<double>* values, float low = -1.f, float high = 1.f) {
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<T> out(n);
  values->resize(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = from_host_float<T>(dist(rng));
    (*values)[i] = to_host_float(out[i]);
  }
  return out;
}

template <class T>
void upload(DeviceBuffer<T>& d, const std::vector<T>& h) {
  CHECK_CUDA(cudaMemcpy(d.ptr, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}

int failures = 0;

// Poisons `out`, launches once and checks against `reference`, then times `repetitions` launches.
// `poison`: the byte written over the output first (0xFF is NaN in fp16/fp32; integer cases whose results may be
// -1 pass another).
template <class T>
void run_case(const std::string& kernel, const std::string& shape, DeviceBuffer<T>& out, const std::vector<double>& reference,
              double tolerance, const std::function<cudaError_t(cudaStream_t)>& launch, int poison = 0xFF) {
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));
  CHECK_CUDA(cudaMemset(out.ptr, poison, out.count * sizeof(T)));
  cudaError_t launched = launch(stream);
  if (launched != cudaSuccess) {
    std::printf("%-28s %-34s %12s  FAIL (launch: %s)\n", kernel.c_str(), shape.c_str(), "-", cudaGetErrorString(launched));
    ++failures;
    CHECK_CUDA(cudaStreamDestroy(stream));
    return;
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<T> host(out.count);
  CHECK_CUDA(cudaMemcpy(host.data(), out.ptr, out.count * sizeof(T), cudaMemcpyDeviceToHost));
  double error_sq = 0, reference_sq = 0;
  bool finite = true;
  for (size_t i = 0; i < out.count; ++i) {
    const double y = to_host_float(host[i]);
    if (!std::isfinite(y)) finite = false;
    error_sq += (y - reference[i]) * (y - reference[i]);
    reference_sq += reference[i] * reference[i];
  }
  const double relative_l2 = finite ? std::sqrt(error_sq) / std::max(std::sqrt(reference_sq), 1e-30) : INFINITY;
  const bool pass = finite && relative_l2 <= tolerance;

  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  const int repetitions = 20;
  CHECK_CUDA(launch(stream));  // warm-up
  CHECK_CUDA(cudaEventRecord(start, stream));
  for (int r = 0; r < repetitions; ++r) CHECK_CUDA(launch(stream));
  CHECK_CUDA(cudaEventRecord(stop, stream));
  CHECK_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  CHECK_CUDA(cudaStreamDestroy(stream));
  std::printf("%-28s %-34s %12.3e  %-4s %10.2f%s\n", kernel.c_str(), shape.c_str(), relative_l2, pass ? "pass" : "FAIL",
              ms * 1000.0 / repetitions, finite ? "" : "  (non-finite output: unwritten or overflow)");
  if (!pass) ++failures;
}

constexpr double kHalfTolerance = 4e-3;  // fp16 output rounding is ~3e-4 relative; fp32 math inside
constexpr double kExact = 0.0;

}  // namespace
