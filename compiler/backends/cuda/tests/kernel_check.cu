// GPU check of AIT's own CUDA kernels against CPU references in double precision.
//
// Build and run (from the repository root; sm_90 for H100/H200, sm_80 for A100/A10/L4/RTX 30-40):
//   nvcc -std=c++17 -O2 -gencode=arch=compute_90a,code=sm_90a -Icompiler/backends/cuda/kernels compiler/backends/cuda/tests/kernel_check.cu -o kernel_check && ./kernel_check
//   nvcc -std=c++17 -O2 -arch=sm_80 -Icompiler/backends/cuda/kernels compiler/backends/cuda/tests/kernel_check.cu -o kernel_check && ./kernel_check
// Every output buffer is poisoned (all bytes 0xFF: NaN in fp16/fp32) before the kernel runs, so an element the
// kernel forgets to write fails the check. Every CUDA call is checked. Prints one row per case:
// kernel, shape, relative L2 error, pass/fail, mean time in microseconds; exits 1 if any case fails.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "all.cuh"
#include "gelu.cuh"

using namespace ait::kernels;

#include "kernel_check_harness.h"

namespace {

double gelu_reference(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

void check_elementwise() {
  {  // relu(x + bias[c]) over NHWC, the vector path
    const int64_t n = 8, hw = 56 * 56, c = 64, count = n * hw * c;
    std::vector<double> x, bias;
    auto hx = random_tensor<__half>(count, &x);
    auto hb = random_tensor<__half>(c, &bias);
    DeviceBuffer<__half> dx(count), db(c), dy(count);
    upload(dx, hx);
    upload(db, hb);
    std::vector<double> ref(count);
    for (int64_t i = 0; i < count; ++i) ref[i] = std::max(0.0, x[i] + bias[i % c]);
    ew::ElementwiseArgs<__half, 2> args{{dx.ptr, db.ptr}, {ew::Broadcast::kFull, ew::Broadcast::kInner}, {0, c}, dy.ptr, count};
    auto fn = ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Relu{});
    run_case("elementwise relu(x+bias)", "[8,56,56,64] f16 vec", dy, ref, kHalfTolerance,
             [&](cudaStream_t s) { return launch_fused_elementwise(args, fn, s); });
  }
  {  // gelu(x * y[row] + 0.5) with an odd count: the scalar path, outer broadcast
    const int64_t rows = 1001, inner = 37, count = rows * inner;
    std::vector<double> x, scale;
    auto hx = random_tensor<__half>(count, &x, -3.f, 3.f);
    auto hs = random_tensor<__half>(rows, &scale);
    DeviceBuffer<__half> dx(count), ds(rows), dy(count);
    upload(dx, hx);
    upload(ds, hs);
    std::vector<double> ref(count);
    for (int64_t i = 0; i < count; ++i) ref[i] = gelu_reference(x[i] * scale[i / inner] + 0.5);
    ew::ElementwiseArgs<__half, 2> args{{dx.ptr, ds.ptr}, {ew::Broadcast::kFull, ew::Broadcast::kOuter}, {0, inner}, dy.ptr, count};
    auto fn = ew::make_chain(ew::Input<0>{}, ew::MulInput<1>{}, ew::AddConst{0.5f}, ew::Gelu{});
    run_case("elementwise gelu(x*s+0.5)", "[1001,37] f16 scalar", dy, ref, kHalfTolerance,
             [&](cudaStream_t s) { return launch_fused_elementwise(args, fn, s); });
  }
  {  // silu(x) + residual, fp32, vector path with a scalar multiplier input
    const int64_t count = 1 << 20;
    std::vector<double> x, r, k;
    auto hx = random_tensor<float>(count, &x, -4.f, 4.f);
    auto hr = random_tensor<float>(count, &r);
    auto hk = random_tensor<float>(1, &k);
    DeviceBuffer<float> dx(count), dr(count), dk(1), dy(count);
    upload(dx, hx);
    upload(dr, hr);
    upload(dk, hk);
    std::vector<double> ref(count);
    for (int64_t i = 0; i < count; ++i) ref[i] = x[i] / (1.0 + std::exp(-x[i])) * k[0] + r[i];
    ew::ElementwiseArgs<float, 3> args{{dx.ptr, dr.ptr, dk.ptr},
                                       {ew::Broadcast::kFull, ew::Broadcast::kFull, ew::Broadcast::kScalar},
                                       {0, 0, 0},
                                       dy.ptr,
                                       count};
    auto fn = ew::make_chain(ew::Input<0>{}, ew::Silu{}, ew::MulInput<2>{}, ew::AddInput<1>{});
    run_case("elementwise silu(x)*k+r", "[1048576] f32 vec", dy, ref, 1e-5,
             [&](cudaStream_t s) { return launch_fused_elementwise(args, fn, s); });
  }
}

void check_layernorm(int64_t rows, int64_t columns) {
  std::vector<double> x, gamma, beta;
  auto hx = random_tensor<__half>(rows * columns, &x, -2.f, 3.f);
  auto hg = random_tensor<__half>(columns, &gamma, 0.5f, 1.5f);
  auto hb = random_tensor<__half>(columns, &beta);
  DeviceBuffer<__half> dx(rows * columns), dg(columns), db(columns), dy(rows * columns);
  upload(dx, hx);
  upload(dg, hg);
  upload(db, hb);
  std::vector<double> ref(rows * columns);
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < columns; ++c) mean += x[r * columns + c];
    mean /= columns;
    for (int64_t c = 0; c < columns; ++c) var += (x[r * columns + c] - mean) * (x[r * columns + c] - mean);
    var /= columns;
    for (int64_t c = 0; c < columns; ++c)
      ref[r * columns + c] = (x[r * columns + c] - mean) / std::sqrt(var + 1e-6) * gamma[c] + beta[c];
  }
  LayerNormArgs<__half> args{dx.ptr, dg.ptr, db.ptr, dy.ptr, rows, columns, 1e-6f};
  run_case("layernorm", "[" + std::to_string(rows) + "," + std::to_string(columns) + "] f16", dy, ref, kHalfTolerance,
           [&](cudaStream_t s) { return launch_layernorm(args, s); });
}

void check_softmax(int64_t rows, int64_t columns, float scale) {
  std::vector<double> x;
  auto hx = random_tensor<__half>(rows * columns, &x, -8.f, 8.f);
  DeviceBuffer<__half> dx(rows * columns), dy(rows * columns);
  upload(dx, hx);
  std::vector<double> ref(rows * columns);
  for (int64_t r = 0; r < rows; ++r) {
    double m = -INFINITY, sum = 0;
    for (int64_t c = 0; c < columns; ++c) m = std::max(m, scale * x[r * columns + c]);
    for (int64_t c = 0; c < columns; ++c) sum += std::exp(scale * x[r * columns + c] - m);
    for (int64_t c = 0; c < columns; ++c) ref[r * columns + c] = std::exp(scale * x[r * columns + c] - m) / sum;
  }
  SoftmaxArgs<__half> args{dx.ptr, dy.ptr, rows, columns, scale};
  run_case("softmax", "[" + std::to_string(rows) + "," + std::to_string(columns) + "] f16", dy, ref, kHalfTolerance,
           [&](cudaStream_t s) { return launch_softmax(args, s); });
}

// axis_norm.cuh: softmax / log-softmax / L1 / L2 along the middle axis of [outer, n, inner] (inner 1: rows kernel)
void check_axis_norm(int64_t outer, int64_t n, int64_t inner, AxisNormOp op) {
  const int64_t count = outer * n * inner;
  std::vector<double> x;
  auto hx = random_tensor<__half>(count, &x, -6.f, 6.f);
  if (op == AxisNormOp::kL2 && count > 0)  // a zero column: the norm is 0, the output 0 (onnxruntime)
    for (int64_t k = 0; k < n; ++k) hx[k * inner] = __float2half_rn(0.f), x[k * inner] = 0;
  DeviceBuffer<__half> dx(count), dy(count);
  upload(dx, hx);
  std::vector<double> ref(count);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
      double m = -INFINITY, sum = 0;
      for (int64_t k = 0; k < n; ++k) m = std::max(m, x[at(k)]);
      for (int64_t k = 0; k < n; ++k)
        sum += op == AxisNormOp::kL1 ? std::fabs(x[at(k)]) : op == AxisNormOp::kL2 ? x[at(k)] * x[at(k)] : std::exp(x[at(k)] - m);
      for (int64_t k = 0; k < n; ++k)
        ref[at(k)] = op == AxisNormOp::kSoftmax      ? std::exp(x[at(k)] - m) / sum
                     : op == AxisNormOp::kLogSoftmax ? x[at(k)] - m - std::log(sum)
                     : sum == 0                      ? 0
                     : op == AxisNormOp::kL1         ? x[at(k)] / sum
                                                     : x[at(k)] / std::sqrt(sum);
    }
  AxisNormArgs<__half> args{dx.ptr, dy.ptr, outer, n, inner, op};
  const char* names[] = {"softmax", "log_softmax", "l1_norm", "l2_norm"};
  run_case(std::string("axis_norm ") + names[static_cast<int>(op)],
           "[" + std::to_string(outer) + "," + std::to_string(n) + "," + std::to_string(inner) + "] f16", dy, ref, kHalfTolerance,
           [&](cudaStream_t s) { return launch_axis_norm(args, s); });
}

// axis_norm.cuh arg_reduce: values on a coarse grid (many ties) so select_last_index matters; exact int64 indices
void check_arg_reduce(int64_t outer, int64_t n, int64_t inner, bool is_max, bool select_last) {
  const int64_t count = outer * n * inner;
  std::vector<double> x;
  auto hx = random_tensor<__half>(count, &x, -4.f, 4.f);
  for (int64_t j = 0; j < count; ++j) hx[j] = __float2half_rn(std::round(x[j])), x[j] = std::round(x[j]);
  DeviceBuffer<__half> dx(count);
  DeviceBuffer<int64_t> dy(outer * inner);
  upload(dx, hx);
  std::vector<double> ref(outer * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < n; ++k) {
        const double v = x[(o * n + k) * inner + i], b = x[(o * n + best) * inner + i];
        if (is_max ? (v > b || (select_last && v == b)) : (v < b || (select_last && v == b))) best = k;
      }
      ref[o * inner + i] = static_cast<double>(best);
    }
  ArgReduceArgs<__half> args{dx.ptr, dy.ptr, outer, n, inner, is_max, select_last};
  run_case(std::string(is_max ? "arg_max" : "arg_min") + (select_last ? " last" : ""),
           "[" + std::to_string(outer) + "," + std::to_string(n) + "," + std::to_string(inner) + "] f16", dy, ref, 0.0,
           [&](cudaStream_t s) { return launch_arg_reduce(args, s); });
}

// group_norm.cuh: NCHW or channels-last, per-channel or per-group affine (instance norm: groups == channels)
void check_group_norm(int64_t batch, int64_t channels, int64_t spatial, int64_t groups, bool channels_last, bool per_group) {
  const int64_t count = batch * channels * spatial, params = per_group ? groups : channels;
  std::vector<double> x, scale, bias;
  auto hx = random_tensor<__half>(count, &x, -3.f, 5.f);
  auto hs = random_tensor<__half>(params, &scale, 0.5f, 1.5f);
  auto hb = random_tensor<__half>(params, &bias, -1.f, 1.f);
  DeviceBuffer<__half> dx(count), ds(params), db(params), dy(count);
  upload(dx, hx);
  upload(ds, hs);
  upload(db, hb);
  std::vector<double> ref(count);
  const int64_t per = channels / groups;
  auto at = [&](int64_t n, int64_t c, int64_t s) { return channels_last ? (n * spatial + s) * channels + c : (n * channels + c) * spatial + s; };
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      double mean = 0, var = 0;
      for (int64_t c = g * per; c < (g + 1) * per; ++c)
        for (int64_t s = 0; s < spatial; ++s) mean += x[at(n, c, s)];
      mean /= per * spatial;
      for (int64_t c = g * per; c < (g + 1) * per; ++c)
        for (int64_t s = 0; s < spatial; ++s) var += (x[at(n, c, s)] - mean) * (x[at(n, c, s)] - mean);
      var /= per * spatial;
      for (int64_t c = g * per; c < (g + 1) * per; ++c)
        for (int64_t s = 0; s < spatial; ++s) {
          const int64_t p = per_group ? g : c;
          ref[at(n, c, s)] = (x[at(n, c, s)] - mean) / std::sqrt(var + 1e-5) * scale[p] + bias[p];
        }
    }
  GroupNormArgs<__half> args{dx.ptr, ds.ptr, db.ptr, dy.ptr, batch, channels, spatial, groups, channels_last, per_group, 1e-5f};
  run_case(std::string("group_norm") + (channels_last ? " nhwc" : " nchw") + (per_group ? " g-affine" : ""),
           "[" + std::to_string(batch) + "," + std::to_string(channels) + "," + std::to_string(spatial) + "]/" + std::to_string(groups) + " f16",
           dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_group_norm(args, s); });
}

// group_norm.cuh through the launch with a workspace: the split path (few (image, group) pairs of large groups) or,
// where the decision or the workspace says so, the one-block path. `expect_split`: whether the split path must be
// taken on this device (checked against group_norm_splits, a failure otherwise). `offset`: added to every input
// value (1000: statistics from E[x²] − E[x]² in fp32 would lose the variance). `workspace_bytes` < 0: the bytes the
// lowering declares (group_norm_workspace_bytes); else that many (too few: the one-block path). The workspace starts
// poisoned.
void check_group_norm_split(int64_t batch, int64_t channels, int64_t spatial, int64_t groups, bool channels_last, bool per_group,
                            bool expect_split, float offset = 0.f, int64_t workspace_bytes = -1) {
  const int64_t count = batch * channels * spatial, params = per_group ? groups : channels;
  std::vector<double> x, scale, bias;
  auto hx = random_tensor<__half>(count, &x, offset - 3.f, offset + 5.f);
  auto hs = random_tensor<__half>(params, &scale, 0.5f, 1.5f);
  auto hb = random_tensor<__half>(params, &bias, -1.f, 1.f);
  DeviceBuffer<__half> dx(count), ds(params), db(params), dy(count);
  upload(dx, hx);
  upload(ds, hs);
  upload(db, hb);
  const int64_t per = channels / groups, pairs = batch * groups;
  const size_t bytes = workspace_bytes < 0 ? group_norm_workspace_bytes(pairs, per * spatial, channels * spatial) : static_cast<size_t>(workspace_bytes);
  DeviceBuffer<uint8_t> workspace(bytes);
  CHECK_CUDA(cudaMemset(workspace.ptr, 0xFF, workspace.count));
  int device = 0, sm_count = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
  const int splits = group_norm_splits(pairs, per * spatial, channels * spatial, sm_count);
  const bool split = splits > 1 && static_cast<size_t>(pairs * splits) * 2 * sizeof(float) <= bytes;
  const std::string name = std::string("group_norm") + (split ? " split" + std::to_string(splits) : " 1-block") + (channels_last ? " nhwc" : " nchw") +
                           (per_group ? " g-affine" : "") + (offset != 0.f ? " mean" + std::to_string(static_cast<int>(offset)) : "");
  if (split != expect_split) {
    std::printf("%-28s FAIL (expected the %s path on %d SMs)\n", name.c_str(), expect_split ? "split" : "one-block", sm_count);
    ++failures;
    return;
  }
  std::vector<double> ref(count);
  auto at = [&](int64_t n, int64_t c, int64_t s) { return channels_last ? (n * spatial + s) * channels + c : (n * channels + c) * spatial + s; };
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t g = 0; g < groups; ++g) {
      double mean = 0, var = 0;
      for (int64_t c = g * per; c < (g + 1) * per; ++c)
        for (int64_t s = 0; s < spatial; ++s) mean += x[at(n, c, s)];
      mean /= per * spatial;
      for (int64_t c = g * per; c < (g + 1) * per; ++c)
        for (int64_t s = 0; s < spatial; ++s) var += (x[at(n, c, s)] - mean) * (x[at(n, c, s)] - mean);
      var /= per * spatial;
      for (int64_t c = g * per; c < (g + 1) * per; ++c)
        for (int64_t s = 0; s < spatial; ++s) {
          const int64_t p = per_group ? g : c;
          ref[at(n, c, s)] = (x[at(n, c, s)] - mean) / std::sqrt(var + 1e-5) * scale[p] + bias[p];
        }
    }
  GroupNormArgs<__half> args{dx.ptr, ds.ptr, db.ptr, dy.ptr, batch, channels, spatial, groups, channels_last, per_group, 1e-5f};
  run_case(name, "[" + std::to_string(batch) + "," + std::to_string(channels) + "," + std::to_string(spatial) + "]/" + std::to_string(groups) + " f16",
           dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_group_norm(args, bytes ? workspace.ptr : nullptr, bytes, s); });
}

void check_group_norm_split_cases() {
  // PoolFormer-S12's GroupNorm(1, 64) at 56×56, batch 1 and 8, NCHW and channels-last
  check_group_norm_split(1, 64, 56 * 56, 1, false, false, true);
  check_group_norm_split(1, 64, 56 * 56, 1, true, false, true);
  check_group_norm_split(8, 64, 56 * 56, 1, false, false, true);
  check_group_norm_split(8, 64, 56 * 56, 1, true, false, true);
  // values ~1000 + noise: the variance (~5) is 2e-7 of E[x²]; fp32 E[x²] − E[x]² would be noise
  check_group_norm_split(8, 64, 56 * 56, 1, false, false, true, 1000.f);
  check_group_norm_split(1, 64, 56 * 56, 1, true, false, true, 1000.f);
  check_group_norm_split(2, 320, 32 * 32, 32, false, false, true, 1000.f);  // a diffusion UNet's GroupNorm(32)
  // GroupNormalization-18 per-group affine, several groups per image, both layouts
  check_group_norm_split(2, 96, 28 * 28, 4, false, true, true);
  check_group_norm_split(2, 96, 28 * 28, 4, true, true, true);
  check_group_norm_split(1, 3, 9001, 1, true, false, true);  // odd sizes: slices of unequal length, 3 channels
  // the one-block path: small groups (no split declared), too small a workspace, many pairs
  check_group_norm_split(2, 32, 100, 1, false, false, false);
  check_group_norm_split(1, 64, 56 * 56, 1, true, false, false, 0.f, 8);
  check_group_norm_split(64, 64, 56 * 56, 64, false, false, false);
}

void check_pool2d(PoolMode mode, int64_t n, int h, int w, int c, int k, int stride, int pad, bool include_pad) {
  const int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  std::vector<double> x;
  auto hx = random_tensor<__half>(n * h * w * c, &x);
  DeviceBuffer<__half> dx(n * h * w * c), dy(n * oh * ow * c);
  upload(dx, hx);
  std::vector<double> ref(n * oh * ow * c);
  for (int64_t b = 0; b < n; ++b)
    for (int y = 0; y < oh; ++y)
      for (int xo = 0; xo < ow; ++xo)
        for (int ch = 0; ch < c; ++ch) {
          double acc = mode == PoolMode::kMax ? -INFINITY : 0;
          int taps = 0;
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              int iy = y * stride - pad + ky, ix = xo * stride - pad + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              double v = x[((b * h + iy) * w + ix) * c + ch];
              acc = mode == PoolMode::kMax ? std::max(acc, v) : acc + v;
              ++taps;
            }
          if (mode == PoolMode::kAverage) acc /= include_pad ? k * k : taps;
          ref[((b * oh + y) * ow + xo) * c + ch] = acc;
        }
  Pool2dArgs<__half> args{dx.ptr, dy.ptr, n, h, w, c, oh, ow, k, k, stride, stride, pad, pad, 1, 1, mode, include_pad};
  std::string name = mode == PoolMode::kMax ? "maxpool2d nhwc" : include_pad ? "avgpool2d nhwc (incl. pad)" : "avgpool2d nhwc";
  run_case(name,
           "[" + std::to_string(n) + "," + std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c) + "] k" +
               std::to_string(k) + " s" + std::to_string(stride) + " p" + std::to_string(pad),
           dy, ref, mode == PoolMode::kMax ? kExact : kHalfTolerance, [&](cudaStream_t s) { return launch_pool2d_nhwc(args, s); });
}

// Global pool over [n, spatial, c] (NHWC with h*w = spatial): `workspace` bytes of workspace (poisoned too, so a
// partial the combining kernel reads unwritten fails), `offset` elements past an aligned allocation (1: the scalar
// path even when c % 8 == 0). The shape column names the plan (lanes x rows, splits) the launcher takes.
template <class T>
void check_global_pool(PoolMode mode, int64_t n, int64_t spatial, int c, size_t workspace = size_t{8} << 20, int offset = 0) {
  std::vector<double> x;
  auto hx = random_tensor<T>(n * spatial * c + offset, &x, -1.f, 3.f);
  DeviceBuffer<T> dx(n * spatial * c + offset), dy(n * c + offset);
  DeviceBuffer<uint8_t> dw(std::max<size_t>(workspace, 1));
  upload(dx, hx);
  CHECK_CUDA(cudaMemset(dw.ptr, 0xFF, dw.count));
  std::vector<double> ref(n * c + offset, 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int ch = 0; ch < c; ++ch) {
      double acc = mode == PoolMode::kMax ? -INFINITY : 0.0;
      for (int64_t s = 0; s < spatial; ++s) {
        const double v = x[offset + (b * spatial + s) * c + ch];
        acc = mode == PoolMode::kMax ? std::max(acc, v) : acc + v;
      }
      ref[offset + b * c + ch] = mode == PoolMode::kMax ? acc : acc / spatial;
    }
  // the first `offset` output elements are not the kernel's: the launch zeroes them (the reference's zeros there)
  GlobalPoolArgs<T> args{dx.ptr + offset, dy.ptr + offset, n, spatial, c, mode};
  constexpr int kVec = 16 / sizeof(T);
  const bool vector = c % kVec == 0 && offset % kVec == 0;
  const GlobalPoolPlan plan = global_pool_plan(n, spatial, c, vector ? kVec : 1, workspace);
  const std::string shape = "[" + std::to_string(n) + "," + std::to_string(spatial) + "," + std::to_string(c) + "] " +
                            (sizeof(T) == 2 ? "f16 " : "f32 ") + std::to_string(plan.lanes) + "x" + std::to_string(plan.rows) +
                            " s" + std::to_string(plan.splits) + (offset ? " misaligned" : "");
  run_case(mode == PoolMode::kMax ? "global maxpool nhwc" : "global avgpool nhwc", shape, dy, ref,
           mode == PoolMode::kMax ? 0.0 : sizeof(T) == 2 ? kHalfTolerance : 1e-5, [&](cudaStream_t st) {
             if (offset) CHECK_CUDA(cudaMemsetAsync(dy.ptr, 0, offset * sizeof(T), st));
             return launch_global_pool_nhwc(args, workspace ? dw.ptr : nullptr, workspace, st);
           });
}

void check_global_pools() {
  using M = PoolMode;
  // EfficientNet-B2's SE pool at batch 8 (the split path; then no workspace: the unsplit fallback), max too
  check_global_pool<__half>(M::kAverage, 8, 128 * 128, 32);
  check_global_pool<__half>(M::kAverage, 8, 128 * 128, 32, 0);
  check_global_pool<__half>(M::kMax, 8, 128 * 128, 32);
  // a workspace one split short of the plan's: fewer splits, still correct
  check_global_pool<__half>(M::kAverage, 8, 128 * 128, 32, 63 * 8 * 32 * 4);
  // classifier pools: ResNet-50 at batch 1, EfficientNet-B0 at batch 256, ResNet-50 at batch 8
  check_global_pool<__half>(M::kAverage, 1, 7 * 7, 2048);
  check_global_pool<__half>(M::kAverage, 256, 7 * 7, 1280);
  check_global_pool<__half>(M::kMax, 256, 7 * 7, 1280);
  check_global_pool<__half>(M::kAverage, 8, 49, 2048);
  check_global_pool<__half>(M::kAverage, 2, 4 * 7 * 7, 512);  // r3d_18's head: mean over D·H·W = 4·7·7 of NDHWC
  // odd channel counts (one channel per lane), split with a ragged last split
  check_global_pool<__half>(M::kAverage, 2, 97 * 61, 17);
  check_global_pool<__half>(M::kMax, 2, 97 * 61, 17);
  check_global_pool<__half>(M::kAverage, 3, 1000, 24);
  check_global_pool<__half>(M::kAverage, 4, 56 * 56, 64, size_t{8} << 20, 1);  // misaligned: scalar path
  check_global_pool<__half>(M::kMax, 4, 56 * 56, 64, size_t{8} << 20, 1);
  // fp32 storage (4 channels per 16-byte load)
  check_global_pool<float>(M::kAverage, 8, 128 * 128, 32);
  check_global_pool<float>(M::kMax, 8, 128 * 128, 32);
  check_global_pool<float>(M::kAverage, 3, 56 * 56, 17);
  check_global_pool<float>(M::kMax, 16, 7 * 7, 1000, 0);
  check_global_pool<float>(M::kAverage, 1, 7 * 7, 2048);
}

void check_reduce(ReduceOp op, const char* name, int64_t outer, int64_t reduced, int64_t inner) {
  std::vector<double> x;
  auto hx = random_tensor<__half>(outer * reduced * inner, &x);
  DeviceBuffer<__half> dx(outer * reduced * inner), dy(outer * inner);
  upload(dx, hx);
  std::vector<double> ref(outer * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double acc = op == ReduceOp::kMax ? -INFINITY : op == ReduceOp::kMin ? INFINITY : 0;
      for (int64_t r = 0; r < reduced; ++r) {
        double v = x[(o * reduced + r) * inner + i];
        acc = op == ReduceOp::kMax ? std::max(acc, v) : op == ReduceOp::kMin ? std::min(acc, v) : op == ReduceOp::kSumSquare ? acc + v * v : acc + v;
      }
      ref[o * inner + i] = op == ReduceOp::kMean ? acc / reduced : acc;
    }
  ReduceArgs<__half> args{dx.ptr, dy.ptr, outer, reduced, inner, op};
  const bool exact = op == ReduceOp::kMax || op == ReduceOp::kMin;
  run_case(name, "[" + std::to_string(outer) + "," + std::to_string(reduced) + "," + std::to_string(inner) + "]", dy, ref,
           exact ? kExact : kHalfTolerance, [&](cudaStream_t s) { return launch_reduce(args, s); });
}

void check_concat() {
  const int64_t outer = 6, inner = 49, sizes[3] = {64, 3, 128};
  std::vector<std::vector<double>> x(3);
  std::vector<std::vector<__half>> hx(3);
  DeviceBuffer<__half> d0(outer * sizes[0] * inner), d1(outer * sizes[1] * inner), d2(outer * sizes[2] * inner);
  DeviceBuffer<__half>* d[3] = {&d0, &d1, &d2};
  for (int k = 0; k < 3; ++k) {
    hx[k] = random_tensor<__half>(outer * sizes[k] * inner, &x[k]);
    upload(*d[k], hx[k]);
  }
  const int64_t total = sizes[0] + sizes[1] + sizes[2];
  DeviceBuffer<__half> dy(outer * total * inner);
  std::vector<double> ref;
  for (int64_t o = 0; o < outer; ++o)
    for (int k = 0; k < 3; ++k)
      for (int64_t a = 0; a < sizes[k]; ++a)
        for (int64_t i = 0; i < inner; ++i) ref.push_back(x[k][(o * sizes[k] + a) * inner + i]);
  ConcatArgs<__half> args{};
  for (int k = 0; k < 3; ++k) {
    args.inputs[k] = d[k]->ptr;
    args.axis_sizes[k] = sizes[k];
  }
  args.num_inputs = 3;
  args.output = dy.ptr;
  args.outer = outer;
  args.inner = inner;
  run_case("concat (3 inputs, axis 1)", "[6,{64,3,128},49]", dy, ref, kExact,
           [&](cudaStream_t s) { return launch_concat(args, s); });
}

// 20 inputs: ceil(20 / kMaxConcatInputs) launches, each writing its inputs' slab of the output (what codegen emits
// for a Concat of more than kMaxConcatInputs inputs), along a middle axis and along the last (NHWC channels).
void check_concat_chunks() {
  constexpr int n = 20;
  for (const bool last_axis : {false, true}) {
    const int64_t outer = last_axis ? 2 * 7 * 7 : 3, inner = last_axis ? 1 : 37;
    std::vector<int64_t> sizes(n);
    int64_t total = 0;
    for (int k = 0; k < n; ++k) total += sizes[k] = 1 + (k * 7) % 33;
    std::vector<std::vector<double>> x(n);
    std::vector<std::unique_ptr<DeviceBuffer<__half>>> d;
    for (int k = 0; k < n; ++k) {
      d.push_back(std::make_unique<DeviceBuffer<__half>>(outer * sizes[k] * inner));
      upload(*d[k], random_tensor<__half>(outer * sizes[k] * inner, &x[k]));
    }
    DeviceBuffer<__half> dy(outer * total * inner);
    std::vector<double> ref;
    for (int64_t o = 0; o < outer; ++o)
      for (int k = 0; k < n; ++k)
        for (int64_t a = 0; a < sizes[k]; ++a)
          for (int64_t i = 0; i < inner; ++i) ref.push_back(x[k][(o * sizes[k] + a) * inner + i]);
    run_case(last_axis ? "concat (20 inputs, last axis, 3 launches)" : "concat (20 inputs, axis 1, 3 launches)",
             last_axis ? "[98,{20 sizes}]" : "[3,{20 sizes},37]", dy, ref, kExact, [&](cudaStream_t s) {
               int64_t offset = 0;
               for (int first = 0; first < n; first += kMaxConcatInputs) {
                 ConcatArgs<__half> args{};
                 args.num_inputs = std::min(kMaxConcatInputs, n - first);
                 for (int k = 0; k < args.num_inputs; ++k) {
                   args.inputs[k] = d[first + k]->ptr;
                   args.axis_sizes[k] = sizes[first + k];
                 }
                 args.output = dy.ptr;
                 args.outer = outer;
                 args.inner = inner;
                 args.output_axis = total;
                 args.output_axis_offset = offset;
                 const cudaError_t e = launch_concat(args, s);
                 if (e != cudaSuccess) return e;
                 for (int k = 0; k < args.num_inputs; ++k) offset += args.axis_sizes[k];
               }
               return cudaSuccess;
             });
  }
}

void check_strided_copy() {
  {  // transpose [2,3,40,50] -> perm [0,2,3,1]
    const int64_t shape[4] = {2, 3, 40, 50}, count = 2 * 3 * 40 * 50;
    std::vector<double> x;
    auto hx = random_tensor<__half>(count, &x);
    DeviceBuffer<__half> dx(count), dy(count);
    upload(dx, hx);
    const int perm[4] = {0, 2, 3, 1};
    const int64_t strides[4] = {3 * 40 * 50, 40 * 50, 50, 1};
    StridedCopyArgs<__half> args{};
    args.input = dx.ptr;
    args.output = dy.ptr;
    args.rank = 4;
    for (int d = 0; d < 4; ++d) {
      args.output_shape[d] = shape[perm[d]];
      args.input_strides[d] = strides[perm[d]];
    }
    std::vector<double> ref;
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 40; ++b)
        for (int64_t c = 0; c < 50; ++c)
          for (int64_t e = 0; e < 3; ++e) ref.push_back(x[a * strides[0] + e * strides[1] + b * strides[2] + c]);
    run_case("transpose (strided copy)", "[2,3,40,50] perm 0,2,3,1", dy, ref, kExact,
             [&](cudaStream_t s) { return launch_strided_copy(args, s); });
  }
  {  // slice x[1:, 10:2:-3, ::2] of [4, 30, 21]
    const int64_t d0 = 4, d1 = 30, d2 = 21, count = d0 * d1 * d2;
    std::vector<double> x;
    auto hx = random_tensor<__half>(count, &x);
    DeviceBuffer<__half> dx(count);
    upload(dx, hx);
    std::vector<double> ref;
    int64_t n1 = 0, n2 = 0;
    for (int64_t i = 10; i > 2; i -= 3) ++n1;
    for (int64_t k = 0; k < d2; k += 2) ++n2;
    for (int64_t a = 1; a < d0; ++a)
      for (int64_t i = 10; i > 2; i -= 3)
        for (int64_t k = 0; k < d2; k += 2) ref.push_back(x[(a * d1 + i) * d2 + k]);
    DeviceBuffer<__half> dy(ref.size());
    StridedCopyArgs<__half> args{};
    args.input = dx.ptr;
    args.output = dy.ptr;
    args.rank = 3;
    args.output_shape[0] = d0 - 1;
    args.output_shape[1] = n1;
    args.output_shape[2] = n2;
    args.input_strides[0] = d1 * d2;
    args.input_strides[1] = -3 * d2;
    args.input_strides[2] = 2;
    args.input_offset = 1 * d1 * d2 + 10 * d2;
    run_case("slice (strided copy)", "[4,30,21][1:,10:2:-3,::2]", dy, ref, kExact,
             [&](cudaStream_t s) { return launch_strided_copy(args, s); });
  }
}

// Strided copies through launch_strided_copy's plan (copy_plan.h): coalesced axes, 16-byte units when the
// innermost run, strides, offset and pointers allow it (else elements), rank 6 transposes, negative steps. `misalign`
// shifts the input pointer by that many elements (a scalar-path case). The reference is the per-element formula.
void check_strided_copy_case(const std::string& name, std::vector<int64_t> shape, std::vector<int64_t> strides,
                             int64_t offset, int64_t input_count, int misalign = 0) {
  std::vector<double> x;
  auto hx = random_tensor<__half>(input_count + misalign, &x);
  DeviceBuffer<__half> dx(input_count + misalign);
  upload(dx, hx);
  const int rank = static_cast<int>(shape.size());
  int64_t total = 1;
  for (int64_t v : shape) total *= v;
  std::vector<double> ref(total);
  for (int64_t i = 0; i < total; ++i) {
    int64_t rest = i, source = offset;
    for (int d = rank - 1; d >= 0; --d) {
      source += (rest % shape[d]) * strides[d];
      rest /= shape[d];
    }
    ref[i] = x[misalign + source];
  }
  DeviceBuffer<__half> dy(total);
  StridedCopyArgs<__half> args{};
  args.input = dx.ptr + misalign;
  args.output = dy.ptr;
  args.rank = rank;
  for (int d = 0; d < rank; ++d) {
    args.output_shape[d] = shape[d];
    args.input_strides[d] = strides[d];
  }
  args.input_offset = offset;
  std::string text = "[";
  for (int d = 0; d < rank; ++d) text += (d ? "," : "") + std::to_string(shape[d]);
  run_case(name, text + "]", dy, ref, kExact, [&](cudaStream_t s) { return launch_strided_copy(args, s); });
}

// A transpose of a row-major `dims` tensor by `perm` (output axis d is input axis perm[d]).
void check_transpose_case(const std::string& name, std::vector<int64_t> dims, std::vector<int> perm, int misalign = 0) {
  const int rank = static_cast<int>(dims.size());
  std::vector<int64_t> row_strides(rank, 1), shape(rank), strides(rank);
  for (int d = rank - 2; d >= 0; --d) row_strides[d] = row_strides[d + 1] * dims[d + 1];
  for (int d = 0; d < rank; ++d) {
    shape[d] = dims[perm[d]];
    strides[d] = row_strides[perm[d]];
  }
  check_strided_copy_case(name, shape, strides, 0, row_strides[0] * dims[0], misalign);
}

// A uint8 input of just over 2^31 bytes, of which the copy reads two rows 2^31 apart; only the rows read hold data.
// Odd offset: elements, source indices past 2^31, so 64-bit indices. Aligned: 16-byte units, whose indices (/16) fit
// in 32 bits again. (A 64-bit vector case needs 2^31 units, 32 GiB: left to the plan test.)
void check_strided_copy_wide() {
  const int64_t row = 4096, stride = int64_t(1) << 31, count = stride + 3 * row;
  DeviceBuffer<uint8_t> dx(count);
  CHECK_CUDA(cudaMemset(dx.ptr, 0, count));
  for (const int64_t offset : {row, row + 1}) {
    std::vector<uint8_t> h0(row), h1(row);
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& v : h0) v = static_cast<uint8_t>(byte(rng));
    for (auto& v : h1) v = static_cast<uint8_t>(byte(rng));
    CHECK_CUDA(cudaMemcpy(dx.ptr + offset, h0.data(), row, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(dx.ptr + offset + stride, h1.data(), row, cudaMemcpyHostToDevice));
    std::vector<double> ref;
    for (uint8_t v : h0) ref.push_back(v);
    for (uint8_t v : h1) ref.push_back(v);
    DeviceBuffer<uint8_t> dy(2 * row);
    StridedCopyArgs<uint8_t> args{};
    args.input = dx.ptr;
    args.output = dy.ptr;
    args.rank = 2;
    args.output_shape[0] = 2;
    args.output_shape[1] = row;
    args.input_strides[0] = stride;
    args.input_strides[1] = 1;
    args.input_offset = offset;
    run_case(offset % 16 ? "strided copy 64-bit elements" : "strided copy 2^31 B, 32-bit units", "[2,4096] stride 2^31 uint8", dy,
             ref, kExact, [&](cudaStream_t s) { return launch_strided_copy(args, s); }, 0x5A);
  }
}

void check_strided_copies() {
  const int64_t n = 8, h = 56, w = 56, c = 96, image = h * w * c;
  // Swin's cyclic shift as Slice + Concat: slices over H and over W of NHWC [8,56,56,96] (vector, rank 2-3)
  check_strided_copy_case("slice H 3: (swin shift)", {n, h - 3, w, c}, {image, w * c, c, 1}, 3 * w * c, n * image);
  check_strided_copy_case("slice W :3 (swin shift)", {n, h, 3, c}, {image, w * c, c, 1}, 0, n * image);
  check_strided_copy_case("slice W :3 misaligned", {n, h, 3, c}, {image, w * c, c, 1}, 0, n * image, 1);
  // negative steps: H reversed keeps 16-byte channel runs; C reversed is the element path
  check_strided_copy_case("slice H ::-1 (vector)", {n, h, w, c}, {image, -w * c, c, 1}, (h - 1) * w * c, n * image);
  check_strided_copy_case("slice C ::-1 (scalar)", {2, 7, 5, 13}, {7 * 5 * 13, 5 * 13, 13, -1}, 12, 2 * 7 * 5 * 13);
  check_strided_copy_case("slice C 1::2", {2, 9, 11, 8}, {9 * 11 * 16, 11 * 16, 16, 2}, 1, 2 * 9 * 11 * 16);
  // Swin window partition / reverse and patch merging (rank 6), at batch 8 of stage 1
  check_transpose_case("transpose swin windows", {n, 8, 7, 8, 7, c}, {0, 1, 3, 2, 4, 5});
  check_transpose_case("transpose swin windows misal", {n, 8, 7, 8, 7, c}, {0, 1, 3, 2, 4, 5}, 1);
  check_transpose_case("transpose swin merge", {n, 28, 2, 28, 2, c}, {0, 1, 3, 4, 2, 5});
  check_transpose_case("transpose rank 6 odd", {2, 3, 5, 1, 4, 7}, {5, 3, 1, 0, 4, 2});
  check_transpose_case("transpose nchw->nhwc odd", {3, 5, 9, 11}, {0, 2, 3, 1});
  check_strided_copy_wide();
}

// Roll (torch.roll) through launch_roll's plan: unshifted axes merged, 16-byte units when the innermost axis and its
// shift are whole vectors (else elements); `misalign` shifts the input pointer by that many elements. The reference
// is the definition, out[i] = x[(i - shift) mod n] on every axis, with shifts of either sign.
void check_roll_case(const std::string& name, std::vector<int64_t> shape, std::vector<int64_t> shifts, int misalign = 0) {
  const int rank = static_cast<int>(shape.size());
  int64_t total = 1;
  for (int64_t v : shape) total *= v;
  std::vector<double> x;
  auto hx = random_tensor<__half>(total + misalign, &x);
  DeviceBuffer<__half> dx(total + misalign);
  upload(dx, hx);
  std::vector<double> ref(total);
  for (int64_t i = 0; i < total; ++i) {
    int64_t rest = i, source = 0, stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t c = rest % shape[d];
      rest /= shape[d];
      source += (((c - shifts[d]) % shape[d] + shape[d]) % shape[d]) * stride;
      stride *= shape[d];
    }
    ref[i] = x[misalign + source];
  }
  DeviceBuffer<__half> dy(total);
  RollArgs<__half> args{};
  args.input = dx.ptr + misalign;
  args.output = dy.ptr;
  args.rank = rank;
  std::string text = "[";
  for (int d = 0; d < rank; ++d) {
    args.shape[d] = shape[d];
    args.shifts[d] = shifts[d];
    text += (d ? "," : "") + std::to_string(shape[d]);
  }
  text += "] by [";
  for (int d = 0; d < rank; ++d) text += (d ? "," : "") + std::to_string(shifts[d]);
  run_case(name, text + "]", dy, ref, kExact, [&](cudaStream_t s) { return launch_roll(args, s); });
}

void check_rolls() {
  // Swin-S shifted windows at batch 8: stage 1 before the partition (-3, -3) and after the reverse (+3, +3)
  check_roll_case("roll swin H,W -3", {8, 56, 56, 96}, {0, -3, -3, 0});
  check_roll_case("roll swin H,W +3", {8, 56, 56, 96}, {0, 3, 3, 0});
  check_roll_case("roll swin stage 3", {8, 14, 14, 384}, {0, 11, 11, 0});
  check_roll_case("roll swin misaligned", {8, 56, 56, 96}, {0, 3, 3, 0}, 1);
  // the innermost axis shifted: by whole vectors (16-byte units), by 3 (elements); one axis, a shift past the size
  check_roll_case("roll C by 16", {4, 9, 64}, {0, 0, 16});
  check_roll_case("roll C by 3", {4, 9, 13}, {0, 0, 3});
  check_roll_case("roll NCHW H", {2, 3, 17, 19}, {0, 0, 5, 0});
  check_roll_case("roll 1-D by -29", {1000}, {-29});
  check_roll_case("roll all axes", {3, 5, 7, 9, 11, 8}, {1, -2, 3, 4, -5, 6});
}

// Col2Im (torch's F.fold) against a scatter of every window value into the image on the host; dims lifted to 3.
void check_col2im_case(const std::string& name, int64_t batch, int64_t channels, std::array<int, 3> image, std::array<int, 3> block,
                       std::array<int, 3> strides, std::array<int, 3> dilations, std::array<int, 3> pads_begin,
                       std::array<int, 3> pads_end) {
  std::array<int, 3> positions{};
  for (int d = 0; d < 3; ++d)
    positions[d] = (image[d] + pads_begin[d] + pads_end[d] - dilations[d] * (block[d] - 1) - 1) / strides[d] + 1;
  const int64_t kernel = static_cast<int64_t>(block[0]) * block[1] * block[2];
  const int64_t windows = static_cast<int64_t>(positions[0]) * positions[1] * positions[2];
  const int64_t plane = static_cast<int64_t>(image[0]) * image[1] * image[2];
  std::vector<double> x;
  auto hx = random_tensor<__half>(batch * channels * kernel * windows, &x);
  DeviceBuffer<__half> dx(hx.size());
  upload(dx, hx);
  std::vector<double> ref(batch * channels * plane, 0.0);
  for (int64_t nc = 0; nc < batch * channels; ++nc)
    for (int64_t row = 0; row < kernel; ++row) {
      const int t = static_cast<int>(row / (block[1] * block[2])), r = static_cast<int>(row / block[2] % block[1]),
                s = static_cast<int>(row % block[2]);
      for (int64_t w = 0; w < windows; ++w) {
        const int pd = static_cast<int>(w / (positions[1] * positions[2])), ph = static_cast<int>(w / positions[2] % positions[1]),
                  pw = static_cast<int>(w % positions[2]);
        const int od = pd * strides[0] - pads_begin[0] + t * dilations[0];
        const int oh = ph * strides[1] - pads_begin[1] + r * dilations[1];
        const int ow = pw * strides[2] - pads_begin[2] + s * dilations[2];
        if (od < 0 || od >= image[0] || oh < 0 || oh >= image[1] || ow < 0 || ow >= image[2]) continue;
        ref[nc * plane + (static_cast<int64_t>(od) * image[1] + oh) * image[2] + ow] += x[(nc * kernel + row) * windows + w];
      }
    }
  DeviceBuffer<__half> dy(ref.size());
  Col2ImArgs<__half> args{dx.ptr, dy.ptr, batch, channels, {}, {}, {}, {}, {}, {}};
  for (int d = 0; d < 3; ++d) {
    args.image[d] = image[d];
    args.block[d] = block[d];
    args.positions[d] = positions[d];
    args.strides[d] = strides[d];
    args.dilations[d] = dilations[d];
    args.pads[d] = pads_begin[d];
  }
  const std::string shape = "[" + std::to_string(batch) + "," + std::to_string(channels) + "," + std::to_string(image[0]) + "," +
                            std::to_string(image[1]) + "," + std::to_string(image[2]) + "] block " + std::to_string(block[1]) + "x" +
                            std::to_string(block[2]);
  run_case(name, shape, dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_col2im(args, st); });
}

void check_col2ims() {
  // VOLO-D1's outlook attention folds 3×3 windows at stride 2 (pad 1) into 28×28 images of 192 channels, batch 8
  check_col2im_case("col2im volo", 8, 192, {1, 28, 28}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1});
  check_col2im_case("col2im dilated uneven", 2, 3, {1, 6, 9}, {1, 2, 3}, {1, 1, 2}, {1, 2, 1}, {0, 1, 0}, {0, 2, 1});
  check_col2im_case("col2im 3-D", 2, 4, {3, 8, 10}, {2, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {1, 0, 1});
}

// LSTM (layout 0, default activations, biases, initial states) against a host run of the ONNX equations in double.
void check_lstm_case(const std::string& name, int64_t seq, int64_t batch, int input, int hidden, int dirs, bool reverse) {
  const int H = hidden;
  std::vector<double> x, w, r, b, h0, c0;
  auto hx = random_tensor<__half>(seq * batch * input, &x);
  auto hw = random_tensor<__half>(static_cast<int64_t>(dirs) * 4 * H * input, &w);
  auto hr = random_tensor<__half>(static_cast<int64_t>(dirs) * 4 * H * H, &r);
  auto hb = random_tensor<__half>(static_cast<int64_t>(dirs) * 8 * H, &b);
  auto hh = random_tensor<__half>(dirs * batch * H, &h0);
  auto hc = random_tensor<__half>(dirs * batch * H, &c0);
  DeviceBuffer<__half> dx(hx.size()), dw(hw.size()), dr(hr.size()), db(hb.size()), dh(hh.size()), dc(hc.size());
  upload(dx, hx);
  upload(dw, hw);
  upload(dr, hr);
  upload(db, hb);
  upload(dh, hh);
  upload(dc, hc);
  std::vector<double> y(seq * dirs * batch * H), yh(dirs * batch * H), yc(dirs * batch * H);
  const auto sigmoid = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  for (int d = 0; d < dirs; ++d)
    for (int64_t n = 0; n < batch; ++n) {
      std::vector<double> h(h0.begin() + (d * batch + n) * H, h0.begin() + (d * batch + n + 1) * H);
      std::vector<double> c(c0.begin() + (d * batch + n) * H, c0.begin() + (d * batch + n + 1) * H);
      std::vector<double> gates(4 * H);
      for (int64_t s = 0; s < seq; ++s) {
        const int64_t t = reverse || d == 1 ? seq - 1 - s : s;
        for (int g = 0; g < 4 * H; ++g) {
          double acc = b[d * 8 * H + g] + b[d * 8 * H + 4 * H + g];
          for (int k = 0; k < input; ++k) acc += x[(t * batch + n) * input + k] * w[(static_cast<int64_t>(d) * 4 * H + g) * input + k];
          for (int k = 0; k < H; ++k) acc += h[k] * r[(static_cast<int64_t>(d) * 4 * H + g) * H + k];
          gates[g] = acc;
        }
        for (int j = 0; j < H; ++j) {
          const double ig = sigmoid(gates[j]), og = sigmoid(gates[H + j]), fg = sigmoid(gates[2 * H + j]);
          c[j] = fg * c[j] + ig * std::tanh(gates[3 * H + j]);
          h[j] = og * std::tanh(c[j]);
          y[((t * dirs + d) * batch + n) * H + j] = h[j];
        }
      }
      for (int j = 0; j < H; ++j) {
        yh[(d * batch + n) * H + j] = h[j];
        yc[(d * batch + n) * H + j] = c[j];
      }
    }
  DeviceBuffer<__half> dy(y.size()), dyh(yh.size()), dyc(yc.size());
  DeviceBuffer<float> state(3 * dirs * batch * H);
  LstmArgs<__half> args{dx.ptr, dw.ptr, dr.ptr, db.ptr, nullptr, dh.ptr, dc.ptr, dy.ptr, dyh.ptr, dyc.ptr, state.ptr,
                        seq, batch, input, hidden, dirs, reverse ? 1 : 0, 0, 0, 0.f};
  const std::string shape = "seq " + std::to_string(seq) + " batch " + std::to_string(batch) + " I" + std::to_string(input) + " H" +
                            std::to_string(hidden) + (dirs == 2 ? " bidir" : reverse ? " reverse" : "");
  const auto launch = [&](cudaStream_t st) { return launch_lstm(args, st); };
  run_case(name + " Y", shape, dy, y, kHalfTolerance, launch);
  run_case(name + " Y_h", shape, dyh, yh, kHalfTolerance, launch);
  run_case(name + " Y_c", shape, dyc, yc, kHalfTolerance, launch);
}

// GRU (linear_before_reset = 1, layout 0, biases, initial state) against a host run in double.
void check_gru_case(const std::string& name, int64_t seq, int64_t batch, int input, int hidden, int dirs) {
  const int H = hidden;
  std::vector<double> x, w, r, b, h0;
  auto hx = random_tensor<__half>(seq * batch * input, &x);
  auto hw = random_tensor<__half>(static_cast<int64_t>(dirs) * 3 * H * input, &w);
  auto hr = random_tensor<__half>(static_cast<int64_t>(dirs) * 3 * H * H, &r);
  auto hb = random_tensor<__half>(static_cast<int64_t>(dirs) * 6 * H, &b);
  auto hh = random_tensor<__half>(dirs * batch * H, &h0);
  DeviceBuffer<__half> dx(hx.size()), dw(hw.size()), dr(hr.size()), db(hb.size()), dh(hh.size());
  upload(dx, hx);
  upload(dw, hw);
  upload(dr, hr);
  upload(db, hb);
  upload(dh, hh);
  std::vector<double> y(seq * dirs * batch * H), yh(dirs * batch * H);
  const auto sigmoid = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  for (int d = 0; d < dirs; ++d)
    for (int64_t n = 0; n < batch; ++n) {
      std::vector<double> h(h0.begin() + (d * batch + n) * H, h0.begin() + (d * batch + n + 1) * H), next(H);
      for (int64_t s = 0; s < seq; ++s) {
        const int64_t t = d == 1 ? seq - 1 - s : s;
        for (int j = 0; j < H; ++j) {
          double xw[3], hr[3];
          for (int g = 0; g < 3; ++g) {
            const int64_t row = static_cast<int64_t>(d) * 3 * H + g * H + j;
            xw[g] = b[d * 6 * H + g * H + j];
            for (int k = 0; k < input; ++k) xw[g] += x[(t * batch + n) * input + k] * w[row * input + k];
            hr[g] = b[d * 6 * H + 3 * H + g * H + j];
            for (int k = 0; k < H; ++k) hr[g] += h[k] * r[row * H + k];
          }
          const double z = sigmoid(xw[0] + hr[0]), reset = sigmoid(xw[1] + hr[1]);
          next[j] = (1 - z) * std::tanh(xw[2] + reset * hr[2]) + z * h[j];
          y[((t * dirs + d) * batch + n) * H + j] = next[j];
        }
        h = next;
      }
      for (int j = 0; j < H; ++j) yh[(d * batch + n) * H + j] = h[j];
    }
  DeviceBuffer<__half> dy(y.size()), dyh(yh.size());
  DeviceBuffer<float> state(2 * dirs * batch * H);
  GruArgs<__half> args{dx.ptr, dw.ptr, dr.ptr, db.ptr, dh.ptr, dy.ptr, dyh.ptr, state.ptr, seq, batch, input, hidden, dirs, 0, 0, 0.f};
  const std::string shape = "seq " + std::to_string(seq) + " batch " + std::to_string(batch) + " I" + std::to_string(input) + " H" +
                            std::to_string(hidden) + (dirs == 2 ? " bidir" : "");
  const auto launch = [&](cudaStream_t st) { return launch_gru(args, st); };
  run_case(name + " Y", shape, dy, y, kHalfTolerance, launch);
  run_case(name + " Y_h", shape, dyh, yh, kHalfTolerance, launch);
}

void check_lstms() {
  check_gru_case("gru bidirectional", 24, 64, 96, 64, 2);
  check_gru_case("gru odd sizes", 5, 3, 7, 11, 1);
  // Sequencer2D-S's BiLSTM at batch 8: rows of a 32×32 map (256 sequences of 32), 192 channels in, hidden 48
  check_lstm_case("lstm sequencer", 32, 256, 192, 48, 2, false);
  check_lstm_case("lstm odd sizes", 7, 3, 5, 13, 1, false);
  check_lstm_case("lstm reverse", 9, 2, 8, 16, 1, true);
}

// Concat through launch_concat's plan: 16-byte units when every input's row, the output's row and the launch's
// start on it are whole vectors; `misalign` shifts inputs[0] by one element (the element path).
void check_concat_case(const std::string& name, int64_t outer, std::vector<int64_t> sizes, int64_t inner, bool misalign = false) {
  const int count = static_cast<int>(sizes.size());
  std::vector<std::vector<double>> x(count);
  std::vector<std::unique_ptr<DeviceBuffer<__half>>> d;
  for (int k = 0; k < count; ++k) {
    const int64_t extra = misalign && k == 0 ? 1 : 0;
    d.push_back(std::make_unique<DeviceBuffer<__half>>(outer * sizes[k] * inner + extra));
    upload(*d[k], random_tensor<__half>(outer * sizes[k] * inner + extra, &x[k]));
    if (extra) x[k].erase(x[k].begin());
  }
  int64_t total = 0;
  for (int64_t v : sizes) total += v;
  DeviceBuffer<__half> dy(outer * total * inner);
  std::vector<double> ref;
  for (int64_t o = 0; o < outer; ++o)
    for (int k = 0; k < count; ++k)
      for (int64_t a = 0; a < sizes[k] * inner; ++a) ref.push_back(x[k][o * sizes[k] * inner + a]);
  run_case(name, "[" + std::to_string(outer) + ",{" + std::to_string(count) + " sizes}," + std::to_string(inner) + "]", dy,
           ref, kExact, [&](cudaStream_t s) {
             int64_t offset = 0;
             for (int first = 0; first < count; first += kMaxConcatInputs) {
               ConcatArgs<__half> args{};
               args.num_inputs = std::min(kMaxConcatInputs, count - first);
               for (int k = 0; k < args.num_inputs; ++k) {
                 args.inputs[k] = d[first + k]->ptr + (misalign && first + k == 0 ? 1 : 0);
                 args.axis_sizes[k] = sizes[first + k];
               }
               args.output = dy.ptr;
               args.outer = outer;
               args.inner = inner;
               args.output_axis = count > kMaxConcatInputs ? total : 0;
               args.output_axis_offset = count > kMaxConcatInputs ? offset : 0;
               const cudaError_t e = launch_concat(args, s);
               if (e != cudaSuccess) return e;
               for (int k = 0; k < args.num_inputs; ++k) offset += args.axis_sizes[k];
             }
             return cudaSuccess;
           });
}

void check_concats() {
  check_concat_case("concat H (swin shift)", 8, {53, 3}, 56 * 96);
  check_concat_case("concat W (swin shift)", 8 * 56, {53, 3}, 96);
  check_concat_case("concat C nhwc (vector)", 8 * 28 * 28, {96, 96, 192}, 1);
  check_concat_case("concat C nhwc misaligned", 8 * 28 * 28, {96, 96, 192}, 1, true);
  check_concat_case("concat C odd (scalar)", 5 * 7, {3, 5, 1}, 1);
  std::vector<int64_t> sizes(20);
  for (int k = 0; k < 20; ++k) sizes[k] = 8 * (1 + k % 5);
  check_concat_case("concat 20 inputs (vector)", 2 * 14 * 14, sizes, 1);
}

void check_gather() {
  const int64_t outer = 10, axis = 50, inner = 7;
  const std::vector<int64_t> indices = {0, 49, -1, 17, -50, 3, 3};
  std::vector<double> x;
  auto hx = random_tensor<__half>(outer * axis * inner, &x);
  DeviceBuffer<__half> dx(outer * axis * inner), dy(outer * indices.size() * inner);
  DeviceBuffer<int64_t> di(indices.size());
  upload(dx, hx);
  CHECK_CUDA(cudaMemcpy(di.ptr, indices.data(), indices.size() * sizeof(int64_t), cudaMemcpyHostToDevice));
  std::vector<double> ref;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j : indices)
      for (int64_t i = 0; i < inner; ++i) ref.push_back(x[(o * axis + (j < 0 ? j + axis : j)) * inner + i]);
  GatherArgs<__half, int64_t> args{dx.ptr, di.ptr, dy.ptr, outer, axis, inner, static_cast<int64_t>(indices.size())};
  run_case("gather (int64, negative)", "[10,50,7] idx[7]", dy, ref, kExact, [&](cudaStream_t s) { return launch_gather(args, s); });
}

// CumSum: int64 position ids (exclusive, reverse) along the last axis, exactly; fp16 along a middle axis.
void check_cumsum() {
  {
    const int64_t outer = 37, length = 300;
    std::vector<int64_t> hx(outer * length);
    for (size_t i = 0; i < hx.size(); ++i) hx[i] = (i * 7919) % 5 == 0 ? 0 : 1;
    DeviceBuffer<int64_t> dx(hx.size()), dy(hx.size());
    upload(dx, hx);
    std::vector<double> ref(hx.size());
    for (int64_t o = 0; o < outer; ++o) {
      int64_t acc = 0;
      for (int64_t k = length - 1; k >= 0; --k) {
        ref[o * length + k] = static_cast<double>(acc);
        acc += hx[o * length + k];
      }
    }
    CumSumArgs<int64_t> args{dx.ptr, dy.ptr, outer, length, 1, true, true};
    run_case("cumsum (int64, excl, rev)", "[37,300] axis 1", dy, ref, kExact, [&](cudaStream_t s) { return launch_cumsum(args, s); });
  }
  {
    const int64_t outer = 6, length = 129, inner = 40;
    std::vector<double> x;
    auto hx = random_tensor<__half>(outer * length * inner, &x);
    DeviceBuffer<__half> dx(hx.size()), dy(hx.size());
    upload(dx, hx);
    std::vector<double> ref(hx.size());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t q = 0; q < inner; ++q) {
        double acc = 0;
        for (int64_t k = 0; k < length; ++k) ref[(o * length + k) * inner + q] = acc += x[(o * length + k) * inner + q];
      }
    CumSumArgs<__half> args{dx.ptr, dy.ptr, outer, length, inner, false, false};
    run_case("cumsum (f16)", "[6,129,40] axis 1", dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_cumsum(args, s); });
  }
}

double source_coordinate(CoordinateTransform t, int out, double scale, int in_size, int out_size) {
  switch (t) {
    case CoordinateTransform::kAsymmetric: return out / scale;
    case CoordinateTransform::kAlignCorners: return out_size > 1 ? out * double(in_size - 1) / double(out_size - 1) : 0;
    case CoordinateTransform::kPytorchHalfPixel: return out_size > 1 ? (out + 0.5) / scale - 0.5 : 0;
    case CoordinateTransform::kTfHalfPixelForNn: return (out + 0.5) / scale;
    default: return (out + 0.5) / scale - 0.5;
  }
}

// ONNX Resize's cubic weights (Keys, parameter a) of taps floor(x)-1 .. floor(x)+2, with exclude_outside.
void cubic_reference_weights(double t, double a, int first, int size, bool exclude_outside, double w[4]) {
  const double d[4] = {t + 1, t, 1 - t, 2 - t};
  double sum = 0;
  for (int j = 0; j < 4; ++j) {
    const double x = d[j];
    w[j] = x <= 1 ? ((a + 2) * x - (a + 3)) * x * x + 1 : ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    if (exclude_outside && (first + j < 0 || first + j >= size)) w[j] = 0;
    sum += w[j];
  }
  if (exclude_outside && sum != 0)
    for (int j = 0; j < 4; ++j) w[j] /= sum;
}

const char* layout_name(ImageLayout layout) { return layout == ImageLayout::kNchw ? "nchw" : "nhwc"; }

// Resize [n, h, w, c] (NHWC) or [n, c, h, w] (NCHW) to oh × ow; `scale` 0 means sizes were given (scale = out / in).
void check_resize(ResizeMode mode, CoordinateTransform transform, NearestRounding rounding, ImageLayout layout, const char* name,
                  int64_t n, int h, int w, int c, int oh, int ow, double scale_h = 0, double scale_w = 0, bool exclude_outside = false) {
  std::vector<double> x;
  auto hx = random_tensor<__half>(n * h * w * c, &x);
  DeviceBuffer<__half> dx(n * h * w * c), dy(n * oh * ow * c);
  upload(dx, hx);
  const double sh = scale_h ? scale_h : double(oh) / h, sw = scale_w ? scale_w : double(ow) / w;
  const bool nhwc = layout == ImageLayout::kNhwc;
  const double cubic_a = -0.75;
  std::vector<double> ref(n * oh * ow * c);
  auto clampi = [](long v, int size) { return static_cast<int>(v < 0 ? 0 : v >= size ? size - 1 : v); };
  for (int64_t b = 0; b < n; ++b)
    for (int y = 0; y < oh; ++y)
      for (int xo = 0; xo < ow; ++xo)
        for (int ch = 0; ch < c; ++ch) {
          double sy = source_coordinate(transform, y, sh, h, oh), sx = source_coordinate(transform, xo, sw, w, ow);
          auto at = [&](int yy, int xx) { return nhwc ? x[((b * h + yy) * w + xx) * c + ch] : x[((b * c + ch) * h + yy) * w + xx]; };
          double value;
          if (mode == ResizeMode::kNearest) {
            auto pick = [&](double v, int size) {
              double r = rounding == NearestRounding::kFloor ? std::floor(v) : rounding == NearestRounding::kCeil ? std::ceil(v)
                         : rounding == NearestRounding::kRoundPreferCeil ? std::floor(v + 0.5) : std::ceil(v - 0.5);
              return clampi(static_cast<long>(r), size);
            };
            value = at(pick(sy, h), pick(sx, w));
          } else if (mode == ResizeMode::kBilinear) {
            double yc = std::min(std::max(sy, 0.0), double(h - 1)), xc = std::min(std::max(sx, 0.0), double(w - 1));
            int y0 = int(std::floor(yc)), x0 = int(std::floor(xc)), y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
            double fy = yc - y0, fx = xc - x0;
            value = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
          } else {
            const int y0 = int(std::floor(sy)) - 1, x0 = int(std::floor(sx)) - 1;
            double wy[4], wx[4];
            cubic_reference_weights(sy - std::floor(sy), cubic_a, y0, h, exclude_outside, wy);
            cubic_reference_weights(sx - std::floor(sx), cubic_a, x0, w, exclude_outside, wx);
            value = 0;
            for (int j = 0; j < 4; ++j)
              for (int q = 0; q < 4; ++q) value += wy[j] * wx[q] * at(clampi(y0 + j, h), clampi(x0 + q, w));
          }
          ref[nhwc ? ((b * oh + y) * ow + xo) * c + ch : ((b * c + ch) * oh + y) * ow + xo] = value;
        }
  ResizeArgs<__half> args{dx.ptr, dy.ptr, n, h, w, oh, ow, c, float(sh), float(sw), mode, transform, rounding};
  args.layout = layout;
  args.cubic_a = float(cubic_a);
  args.exclude_outside = exclude_outside;
  run_case(std::string(name) + " " + layout_name(layout),
           "[" + std::to_string(n) + "," + std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c) + "]->" +
               std::to_string(oh) + "x" + std::to_string(ow),
           dy, ref, mode == ResizeMode::kNearest ? kExact : kHalfTolerance, [&](cudaStream_t s) { return launch_resize(args, s); });
}

void check_resizes() {
  using M = ResizeMode;
  using T = CoordinateTransform;
  using R = NearestRounding;
  for (ImageLayout layout : {ImageLayout::kNhwc, ImageLayout::kNchw}) {
    // nearest: every rounding, upsample (odd factor) and downsample
    check_resize(M::kNearest, T::kAsymmetric, R::kFloor, layout, "resize nearest asym floor", 2, 13, 20, 16, 26, 40);
    check_resize(M::kNearest, T::kHalfPixel, R::kRoundPreferFloor, layout, "resize nearest hp rpf", 1, 7, 9, 8, 21, 27);
    check_resize(M::kNearest, T::kHalfPixel, R::kRoundPreferCeil, layout, "resize nearest hp rpc", 1, 9, 7, 5, 4, 3);
    check_resize(M::kNearest, T::kAlignCorners, R::kCeil, layout, "resize nearest align ceil", 2, 5, 6, 3, 11, 13);
    check_resize(M::kNearest, T::kTfHalfPixelForNn, R::kFloor, layout, "resize nearest tf-hp-nn", 1, 8, 8, 4, 3, 5);
    // bilinear: every coordinate transformation, up and down, odd sizes, a given (non-size-ratio) scale
    check_resize(M::kBilinear, T::kHalfPixel, R::kFloor, layout, "resize bilinear hp", 2, 15, 15, 32, 30, 30);
    check_resize(M::kBilinear, T::kHalfPixel, R::kFloor, layout, "resize bilinear hp down", 1, 17, 23, 6, 8, 7);
    check_resize(M::kBilinear, T::kAlignCorners, R::kFloor, layout, "resize bilinear align", 1, 8, 11, 3, 17, 5);
    check_resize(M::kBilinear, T::kAsymmetric, R::kFloor, layout, "resize bilinear asym", 1, 7, 5, 3, 10, 7, 1.5, 1.5);
    check_resize(M::kBilinear, T::kPytorchHalfPixel, R::kFloor, layout, "resize bilinear pt-hp", 2, 9, 1, 5, 4, 1);
    // bicubic (ONNX cubic, a = -0.75): up (the ViT position-embedding resize), down, exclude_outside
    check_resize(M::kBicubic, T::kHalfPixel, R::kFloor, layout, "resize bicubic hp", 1, 14, 14, 24, 32, 32);
    check_resize(M::kBicubic, T::kAlignCorners, R::kFloor, layout, "resize bicubic align down", 1, 19, 13, 5, 7, 6);
    check_resize(M::kBicubic, T::kHalfPixel, R::kFloor, layout, "resize bicubic excl-out", 2, 6, 9, 3, 13, 17, 0, 0, true);
  }
  // the vitmatte decoder step: NCHW, 64 channels, 256 -> 512
  check_resize(M::kBilinear, T::kHalfPixel, R::kFloor, ImageLayout::kNchw, "resize bilinear hp", 1, 256, 256, 64, 512, 512);
}

// Depthwise conv (depthwise_conv.cuh): epilogue residual + relu6(acc + bias) when `with_epilogue`, else the bare
// accumulator (no operands). multiplier > 1: output channel k reads input channel k / multiplier. misaligned_input
// offsets the input by one element, so the launcher must take the per-channel path.
void check_depthwise(int64_t n, int h, int w, int c, int multiplier, int kernel, int stride, int pad, int dilation,
                     bool with_epilogue, bool misaligned_input = false) {
  const int k = c * multiplier;
  const int oh = (h + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  const int ow = (w + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  const int64_t outputs = n * oh * ow * k;
  std::vector<double> x, weight, bias, residual;
  auto hx = random_tensor<__half>(n * h * w * c, &x);
  const float bound = 1.f / std::sqrt(float(kernel * kernel));
  auto hw = random_tensor<__half>(int64_t(kernel) * kernel * k, &weight, -bound, bound);  // [kernel, kernel, k]
  auto hb = random_tensor<__half>(k, &bias, -0.5f, 0.5f);
  auto hr = random_tensor<__half>(outputs, &residual);
  const int offset = misaligned_input ? 1 : 0;
  DeviceBuffer<__half> dx(n * h * w * c + offset), dw(int64_t(kernel) * kernel * k), db(k), dr(outputs), dy(outputs);
  CHECK_CUDA(cudaMemcpy(dx.ptr + offset, hx.data(), hx.size() * sizeof(__half), cudaMemcpyHostToDevice));
  upload(dw, hw);
  upload(db, hb);
  upload(dr, hr);
  std::vector<double> ref(outputs);
  for (int64_t b = 0; b < n; ++b)
    for (int y = 0; y < oh; ++y)
      for (int xo = 0; xo < ow; ++xo)
        for (int ch = 0; ch < k; ++ch) {
          double acc = 0;
          for (int r = 0; r < kernel; ++r)
            for (int s = 0; s < kernel; ++s) {
              const int iy = y * stride - pad + r * dilation, ix = xo * stride - pad + s * dilation;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              acc += x[((b * h + iy) * w + ix) * c + ch / multiplier] * weight[(r * kernel + s) * k + ch];
            }
          const int64_t i = ((b * oh + y) * ow + xo) * k + ch;
          ref[i] = with_epilogue ? std::min(std::max(acc + bias[ch], 0.0), 6.0) + residual[i] : acc;
        }
  const std::string shape = "[" + std::to_string(n) + "," + std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c) +
                            "] k" + std::to_string(kernel) + " s" + std::to_string(stride) + " d" + std::to_string(dilation) +
                            (multiplier > 1 ? " m" + std::to_string(multiplier) : "") + (misaligned_input ? " +1" : "");
  const char* name = with_epilogue ? "depthwise conv relu6+resid" : "depthwise conv";
  if (with_epilogue) {
    DepthwiseConv2dArgs<__half, 2> args{dx.ptr + offset, dw.ptr, dy.ptr, {db.ptr, dr.ptr},
                                        {DepthwiseOperand::kChannel, DepthwiseOperand::kFull},
                                        n, h, w, c, oh, ow, k, kernel, kernel, stride, stride, pad, pad, dilation, dilation};
    const auto epilogue = ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Clip{0.f, 6.f}, ew::AddInput<2>{});
    run_case(name, shape, dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_depthwise_conv2d_nhwc(args, epilogue, st); });
  } else {
    DepthwiseConv2dArgs<__half, 0> args{dx.ptr + offset, dw.ptr, dy.ptr, {nullptr}, {DepthwiseOperand::kChannel},
                                        n, h, w, c, oh, ow, k, kernel, kernel, stride, stride, pad, pad, dilation, dilation};
    const auto epilogue = ew::make_chain(ew::Input<0>{});
    run_case(name, shape, dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_depthwise_conv2d_nhwc(args, epilogue, st); });
  }
}

// 3-D (video networks: NDHWC) forms of the window kernels: their depth fields set. Pads are symmetric per axis here
// (begin = end); the output size follows ONNX's floor rule.
struct Window3dCase {
  int64_t n;
  int d, h, w, c, k, group;
  int kernel[3], stride[3], pad[3], dilation[3];
  int out(int a) const {
    const int in[3] = {d, h, w};
    return (in[a] + 2 * pad[a] - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1;
  }
  int taps() const { return kernel[0] * kernel[1] * kernel[2]; }
  std::string text() const {
    return "[" + std::to_string(n) + "," + std::to_string(d) + "," + std::to_string(h) + "," + std::to_string(w) + "," +
           std::to_string(c) + "] K" + std::to_string(k) + (group > 1 ? " g" + std::to_string(group) : "") + " k" +
           std::to_string(kernel[0]) + "x" + std::to_string(kernel[1]) + "x" + std::to_string(kernel[2]) + " s" +
           std::to_string(stride[0]) + "x" + std::to_string(stride[1]) + "x" + std::to_string(stride[2]) + " d" +
           std::to_string(dilation[0]) + std::to_string(dilation[1]) + std::to_string(dilation[2]);
  }
  // Visits the valid taps of output position (b, z, y, x): visit(input pixel offset / c, tap index (t, r, s)).
  template <class Visit>
  void taps_of(int64_t b, int z, int y, int x, Visit visit) const {
    for (int t = 0; t < kernel[0]; ++t) {
      const int iz = z * stride[0] - pad[0] + t * dilation[0];
      if (iz < 0 || iz >= d) continue;
      for (int r = 0; r < kernel[1]; ++r) {
        const int iy = y * stride[1] - pad[1] + r * dilation[1];
        if (iy < 0 || iy >= h) continue;
        for (int s = 0; s < kernel[2]; ++s) {
          const int ix = x * stride[2] - pad[2] + s * dilation[2];
          if (ix >= 0 && ix < w) visit(((b * d + iz) * h + iy) * w + ix, (t * kernel[1] + r) * kernel[2] + s);
        }
      }
    }
  }
};

// conv3d on the depthwise (group == c, weight [taps, k]) or grouped (weight [k, taps, c / group]) kernel:
// relu(acc + bias) + residual, or the bare accumulator.
void check_conv3d_direct(const Window3dCase& t, bool with_epilogue) {
  const bool depthwise = t.group == t.c;
  const int cg = t.c / t.group, kg = t.k / t.group;
  const int od = t.out(0), oh = t.out(1), ow = t.out(2);
  const int64_t outputs = t.n * od * oh * ow * t.k, weights = int64_t(t.k) * t.taps() * cg;
  std::vector<double> x, weight, bias, residual;
  auto hx = random_tensor<__half>(t.n * t.d * t.h * t.w * t.c, &x);
  const float bound = 1.f / std::sqrt(float(t.taps() * cg));
  auto hw = random_tensor<__half>(weights, &weight, -bound, bound);
  auto hb = random_tensor<__half>(t.k, &bias, -0.5f, 0.5f);
  auto hr = random_tensor<__half>(outputs, &residual);
  DeviceBuffer<__half> dx(hx.size()), dw(weights), db(t.k), dr(outputs), dy(outputs);
  upload(dx, hx);
  upload(dw, hw);
  upload(db, hb);
  upload(dr, hr);
  std::vector<double> ref(outputs);
  for (int64_t b = 0; b < t.n; ++b)
    for (int z = 0; z < od; ++z)
      for (int y = 0; y < oh; ++y)
        for (int xo = 0; xo < ow; ++xo)
          for (int ch = 0; ch < t.k; ++ch) {
            const int g = ch / kg;
            double acc = 0;
            t.taps_of(b, z, y, xo, [&](int64_t pixel, int tap) {
              if (depthwise) acc += x[pixel * t.c + ch / kg] * weight[int64_t(tap) * t.k + ch];
              else
                for (int ci = 0; ci < cg; ++ci) acc += x[pixel * t.c + g * cg + ci] * weight[(int64_t(ch) * t.taps() + tap) * cg + ci];
            });
            const int64_t i = (((b * od + z) * oh + y) * ow + xo) * t.k + ch;
            ref[i] = with_epilogue ? std::max(acc + bias[ch], 0.0) + residual[i] : acc;
          }
  const auto relu_residual = ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Relu{}, ew::AddInput<2>{});
  const auto bare = ew::make_chain(ew::Input<0>{});
  const std::string name = std::string(depthwise ? "depthwise conv3d" : "grouped conv3d") + (with_epilogue ? " relu+resid" : "");
  if (depthwise) {
    DepthwiseConv2dArgs<__half, 2> args{dx.ptr, dw.ptr, dy.ptr, {db.ptr, dr.ptr}, {DepthwiseOperand::kChannel, DepthwiseOperand::kFull},
                                        t.n, t.h, t.w, t.c, oh, ow, t.k, t.kernel[1], t.kernel[2], t.stride[1], t.stride[2], t.pad[1],
                                        t.pad[2], t.dilation[1], t.dilation[2], t.d, od, t.kernel[0], t.stride[0], t.pad[0], t.dilation[0]};
    DepthwiseConv2dArgs<__half, 0> plain{dx.ptr, dw.ptr, dy.ptr, {nullptr}, {DepthwiseOperand::kChannel},
                                         t.n, t.h, t.w, t.c, oh, ow, t.k, t.kernel[1], t.kernel[2], t.stride[1], t.stride[2], t.pad[1],
                                         t.pad[2], t.dilation[1], t.dilation[2], t.d, od, t.kernel[0], t.stride[0], t.pad[0], t.dilation[0]};
    run_case(name, t.text(), dy, ref, kHalfTolerance, [&](cudaStream_t st) {
      return with_epilogue ? launch_depthwise_conv2d_nhwc(args, relu_residual, st) : launch_depthwise_conv2d_nhwc(plain, bare, st);
    });
  } else {
    GroupedConv2dArgs<__half, 2> args{dx.ptr, dw.ptr, dy.ptr, {db.ptr, dr.ptr}, {GroupedConvOperand::kChannel, GroupedConvOperand::kFull},
                                      t.n, t.h, t.w, t.c, oh, ow, t.k, t.group, t.kernel[1], t.kernel[2], t.stride[1], t.stride[2], t.pad[1],
                                      t.pad[2], t.dilation[1], t.dilation[2], t.d, od, t.kernel[0], t.stride[0], t.pad[0], t.dilation[0]};
    GroupedConv2dArgs<__half, 0> plain{dx.ptr, dw.ptr, dy.ptr, {nullptr}, {GroupedConvOperand::kChannel},
                                       t.n, t.h, t.w, t.c, oh, ow, t.k, t.group, t.kernel[1], t.kernel[2], t.stride[1], t.stride[2], t.pad[1],
                                       t.pad[2], t.dilation[1], t.dilation[2], t.d, od, t.kernel[0], t.stride[0], t.pad[0], t.dilation[0]};
    run_case(name, t.text(), dy, ref, kHalfTolerance, [&](cudaStream_t st) {
      return with_epilogue ? launch_grouped_conv2d_nhwc(args, relu_residual, st) : launch_grouped_conv2d_nhwc(plain, bare, st);
    });
  }
}

// 3-D im2col (group 1): columns [n·od·oh·ow, k_padded] ordered (t, r, s, c), zero in the padding and past the taps;
// a copy, so exact. k_padded: taps·c rounded up to 8 (r3d_18's 3x7x7x3 = 441 → 448).
void check_im2col3d(const Window3dCase& t) {
  const int od = t.out(0), oh = t.out(1), ow = t.out(2);
  const int taps = t.taps() * t.c, k_padded = (taps + 7) / 8 * 8;
  const int64_t rows = t.n * od * oh * ow;
  std::vector<double> x;
  auto hx = random_tensor<__half>(t.n * t.d * t.h * t.w * t.c, &x);
  DeviceBuffer<__half> dx(hx.size()), dy(rows * k_padded);
  upload(dx, hx);
  std::vector<double> ref(rows * k_padded, 0.0);
  for (int64_t b = 0; b < t.n; ++b)
    for (int z = 0; z < od; ++z)
      for (int y = 0; y < oh; ++y)
        for (int xo = 0; xo < ow; ++xo) {
          const int64_t row = ((b * od + z) * oh + y) * ow + xo;
          t.taps_of(b, z, y, xo, [&](int64_t pixel, int tap) {
            for (int ch = 0; ch < t.c; ++ch) ref[row * k_padded + int64_t(tap) * t.c + ch] = x[pixel * t.c + ch];
          });
        }
  Im2colArgs<__half> args{dx.ptr, dy.ptr, t.n, t.h, t.w, t.c, oh, ow, t.kernel[1], t.kernel[2], t.stride[1], t.stride[2],
                          t.pad[1], t.pad[2], t.dilation[1], t.dilation[2], k_padded, t.d, od, t.kernel[0], t.stride[0], t.pad[0],
                          t.dilation[0]};
  run_case(std::string("im2col 3-D") + (t.c % 8 == 0 ? " (16-byte)" : ""), t.text(), dy, ref, kExact,
           [&](cudaStream_t st) { return launch_im2col_nhwc(args, st); });
}

// 3-D max / average pool (count_include_pad: the window clipped to the padded input, per axis). `extra_end`: pads
// added at the end of each axis (back, bottom, right) beyond the case's symmetric ones.
void check_pool3d(PoolMode mode, const Window3dCase& t, bool include_pad, std::array<int, 3> extra_end = {0, 0, 0}) {
  int end_pad[3], out[3];
  const int in[3] = {t.d, t.h, t.w};
  for (int a = 0; a < 3; ++a) {
    end_pad[a] = t.pad[a] + extra_end[a];
    out[a] = (in[a] + t.pad[a] + end_pad[a] - t.dilation[a] * (t.kernel[a] - 1) - 1) / t.stride[a] + 1;
  }
  const int od = out[0], oh = out[1], ow = out[2];
  const int64_t outputs = t.n * od * oh * ow * t.c;
  std::vector<double> x;
  auto hx = random_tensor<__half>(t.n * t.d * t.h * t.w * t.c, &x);
  DeviceBuffer<__half> dx(hx.size()), dy(outputs);
  upload(dx, hx);
  std::vector<double> ref(outputs);
  for (int64_t b = 0; b < t.n; ++b)
    for (int z = 0; z < od; ++z)
      for (int y = 0; y < oh; ++y)
        for (int xo = 0; xo < ow; ++xo)
          for (int ch = 0; ch < t.c; ++ch) {
            double acc = mode == PoolMode::kMax ? -INFINITY : 0;
            int taps = 0;
            t.taps_of(b, z, y, xo, [&](int64_t pixel, int) {
              const double v = x[pixel * t.c + ch];
              acc = mode == PoolMode::kMax ? std::max(acc, v) : acc + v;
              ++taps;
            });
            if (mode == PoolMode::kAverage) {
              int divisor = taps;
              if (include_pad) {
                divisor = 1;
                const int o[3] = {z, y, xo};
                for (int a = 0; a < 3; ++a) {
                  const int start = o[a] * t.stride[a] - t.pad[a];
                  const int end = std::min(start + (t.kernel[a] - 1) * t.dilation[a] + 1, in[a] + end_pad[a]);
                  divisor *= (end - start + t.dilation[a] - 1) / t.dilation[a];
                }
              }
              acc /= divisor;
            }
            ref[(((b * od + z) * oh + y) * ow + xo) * t.c + ch] = acc;
          }
  Pool2dArgs<__half> args{dx.ptr, dy.ptr, t.n, t.h, t.w, t.c, oh, ow, t.kernel[1], t.kernel[2], t.stride[1], t.stride[2], t.pad[1],
                          t.pad[2], t.dilation[1], t.dilation[2], mode, include_pad, t.d, od, t.kernel[0], t.stride[0], t.pad[0],
                          t.dilation[0], end_pad[0], end_pad[1], end_pad[2]};
  const std::string name = mode == PoolMode::kMax ? "maxpool3d ndhwc" : include_pad ? "avgpool3d ndhwc (incl. pad)" : "avgpool3d ndhwc";
  const bool asymmetric = extra_end[0] || extra_end[1] || extra_end[2];
  run_case(name, t.text() + (asymmetric ? " +end pads" : ""), dy, ref, mode == PoolMode::kMax ? kExact : kHalfTolerance,
           [&](cudaStream_t st) { return launch_pool2d_nhwc(args, st); });
}

// Transposed convolution (conv_transpose.cuh). Its window: the output size follows ONNX ConvTranspose,
// (in − 1)·stride + (kernel − 1)·dilation + 1 − pad_begin − pad_end + output_padding, per axis.
struct ConvTransposeCase {
  int64_t n;
  int h, w, c, k, group;
  int kernel_h, kernel_w, stride_h, stride_w;
  int pad_top, pad_left, pad_bottom, pad_right;
  int dilation_h, dilation_w, output_padding_h, output_padding_w;
  int out_h() const { return (h - 1) * stride_h + (kernel_h - 1) * dilation_h + 1 - pad_top - pad_bottom + output_padding_h; }
  int out_w() const { return (w - 1) * stride_w + (kernel_w - 1) * dilation_w + 1 - pad_left - pad_right + output_padding_w; }
  ConvTransposeWindow window() const {
    return {n, h, w, out_h(), out_w(), kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w};
  }
  std::string text() const {
    return "[" + std::to_string(n) + "," + std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c) + "] K" +
           std::to_string(k) + (group > 1 ? " g" + std::to_string(group) : "") + " k" + std::to_string(kernel_h) + "x" +
           std::to_string(kernel_w) + " s" + std::to_string(stride_h) + "x" + std::to_string(stride_w) + " p" +
           std::to_string(pad_top) + std::to_string(pad_left) + std::to_string(pad_bottom) + std::to_string(pad_right) + " d" +
           std::to_string(dilation_h) + "x" + std::to_string(dilation_w) + " op" + std::to_string(output_padding_h) +
           std::to_string(output_padding_w);
  }
};

// The reference scatters every input pixel's taps to the output pixel each reaches (the definition of ConvTranspose),
// the kernels gather: `value(n, ih, iw, r, s, m)` is the contribution of tap (r, s) of input pixel (n, ih, iw) to
// output channel m. Then relu(acc + bias) + residual when `with_epilogue`.
template <class Value>
std::vector<double> conv_transpose_reference(const ConvTransposeCase& t, const std::vector<double>& bias,
                                             const std::vector<double>& residual, bool with_epilogue, Value value) {
  const int oh = t.out_h(), ow = t.out_w();
  std::vector<double> ref(t.n * oh * ow * t.k, 0.0);
  for (int64_t b = 0; b < t.n; ++b)
    for (int ih = 0; ih < t.h; ++ih)
      for (int iw = 0; iw < t.w; ++iw)
        for (int r = 0; r < t.kernel_h; ++r)
          for (int s = 0; s < t.kernel_w; ++s) {
            const int y = ih * t.stride_h - t.pad_top + r * t.dilation_h, x = iw * t.stride_w - t.pad_left + s * t.dilation_w;
            if (y < 0 || y >= oh || x < 0 || x >= ow) continue;
            for (int m = 0; m < t.k; ++m) ref[((b * oh + y) * ow + x) * t.k + m] += value(b, ih, iw, r, s, m);
          }
  if (with_epilogue)
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = std::max(ref[i] + bias[i % t.k], 0.0) + residual[i];
  return ref;
}

// col2im (group 1): the columns [n, h, w, kernel_h, kernel_w, k] (the GEMM's output) are random here; the kernel
// gathers them. misaligned_columns offsets them by one element, so the launcher must take the per-element path.
void check_conv_transpose_col2im(const ConvTransposeCase& t, bool with_epilogue, bool misaligned_columns = false) {
  const int64_t outputs = t.n * t.out_h() * t.out_w() * t.k;
  const int64_t column_count = t.n * t.h * t.w * t.kernel_h * t.kernel_w * t.k;
  std::vector<double> columns, bias, residual;
  auto hc = random_tensor<__half>(column_count, &columns);
  auto hb = random_tensor<__half>(t.k, &bias, -0.5f, 0.5f);
  auto hr = random_tensor<__half>(outputs, &residual);
  const int offset = misaligned_columns ? 1 : 0;
  DeviceBuffer<__half> dc(column_count + offset), db(t.k), dr(outputs), dy(outputs);
  CHECK_CUDA(cudaMemcpy(dc.ptr + offset, hc.data(), hc.size() * sizeof(__half), cudaMemcpyHostToDevice));
  upload(db, hb);
  upload(dr, hr);
  const auto ref = conv_transpose_reference(t, bias, residual, with_epilogue, [&](int64_t b, int ih, int iw, int r, int s, int m) {
    return columns[((((b * t.h + ih) * t.w + iw) * t.kernel_h + r) * t.kernel_w + s) * t.k + m];
  });
  const std::string name = std::string("conv_transpose col2im") + (conv_transpose_one_tap(t.window()) ? " 1tap" : "") +
                           (with_epilogue ? " relu+res" : "");
  const std::string shape = t.text() + (misaligned_columns ? " +1" : "");
  if (with_epilogue) {
    ConvTransposeCol2imArgs<__half, 2> args{dc.ptr + offset, dy.ptr, {db.ptr, dr.ptr},
                                            {ConvTransposeOperand::kChannel, ConvTransposeOperand::kFull}, t.k, t.window()};
    const auto epilogue = ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Relu{}, ew::AddInput<2>{});
    run_case(name, shape, dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_conv_transpose2d_col2im_nhwc(args, epilogue, st); });
  } else {
    ConvTransposeCol2imArgs<__half, 0> args{dc.ptr + offset, dy.ptr, {nullptr}, {ConvTransposeOperand::kChannel}, t.k, t.window()};
    const auto epilogue = ew::make_chain(ew::Input<0>{});
    run_case(name, shape, dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_conv_transpose2d_col2im_nhwc(args, epilogue, st); });
  }
}

// Direct (grouped): input [n, h, w, c], weight [kernel_h, kernel_w, k / group, c].
void check_conv_transpose_direct(const ConvTransposeCase& t, bool with_epilogue) {
  const int cg = t.c / t.group, kg = t.k / t.group;
  const int64_t outputs = t.n * t.out_h() * t.out_w() * t.k;
  const int64_t weights = int64_t(t.kernel_h) * t.kernel_w * kg * t.c;
  std::vector<double> x, weight, bias, residual;
  auto hx = random_tensor<__half>(t.n * t.h * t.w * t.c, &x);
  const float bound = 1.f / std::sqrt(float(cg));
  auto hw = random_tensor<__half>(weights, &weight, -bound, bound);
  auto hb = random_tensor<__half>(t.k, &bias, -0.5f, 0.5f);
  auto hr = random_tensor<__half>(outputs, &residual);
  DeviceBuffer<__half> dx(t.n * t.h * t.w * t.c), dw(weights), db(t.k), dr(outputs), dy(outputs);
  upload(dx, hx);
  upload(dw, hw);
  upload(db, hb);
  upload(dr, hr);
  const auto ref = conv_transpose_reference(t, bias, residual, with_epilogue, [&](int64_t b, int ih, int iw, int r, int s, int m) {
    const int g = m / kg;
    double sum = 0;
    for (int ci = 0; ci < cg; ++ci)
      sum += x[((b * t.h + ih) * t.w + iw) * t.c + g * cg + ci] * weight[((int64_t(r) * t.kernel_w + s) * kg + m % kg) * t.c + g * cg + ci];
    return sum;
  });
  const std::string name = std::string("conv_transpose direct") + (with_epilogue ? " relu+res" : "");
  if (with_epilogue) {
    ConvTransposeDirectArgs<__half, 2> args{dx.ptr, dw.ptr, dy.ptr, {db.ptr, dr.ptr},
                                            {ConvTransposeOperand::kChannel, ConvTransposeOperand::kFull}, t.c, t.k, t.group, t.window()};
    const auto epilogue = ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Relu{}, ew::AddInput<2>{});
    run_case(name, t.text(), dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_conv_transpose2d_direct_nhwc(args, epilogue, st); });
  } else {
    ConvTransposeDirectArgs<__half, 0> args{dx.ptr, dw.ptr, dy.ptr, {nullptr}, {ConvTransposeOperand::kChannel}, t.c, t.k, t.group, t.window()};
    const auto epilogue = ew::make_chain(ew::Input<0>{});
    run_case(name, t.text(), dy, ref, kHalfTolerance, [&](cudaStream_t st) { return launch_conv_transpose2d_direct_nhwc(args, epilogue, st); });
  }
}

// Pad (pad.cuh), an exact copy: [n, h, w, c] padded on h and w (the 16-byte path when c % 8 == 0), any mode.
void check_pad(PadMode mode, const char* name, int64_t n, int h, int w, int c, int top, int left, int bottom, int right) {
  const int oh = h + top + bottom, ow = w + left + right;
  std::vector<double> x;
  auto hx = random_tensor<__half>(n * h * w * c, &x);
  DeviceBuffer<__half> dx(n * h * w * c), dy(n * oh * ow * c);
  upload(dx, hx);
  auto source = [&](int i, int size) -> int {
    if (i >= 0 && i < size) return i;
    if (mode == PadMode::kEdge) return i < 0 ? 0 : size - 1;
    if (mode == PadMode::kReflect) {
      const int period = size > 1 ? 2 * (size - 1) : 1;
      i %= period;
      if (i < 0) i += period;
      return i >= size ? period - i : i;
    }
    if (mode == PadMode::kWrap) return ((i % size) + size) % size;
    return -1;
  };
  const double fill = 0.25;
  std::vector<double> ref(n * oh * ow * c);
  for (int64_t b = 0; b < n; ++b)
    for (int y = 0; y < oh; ++y)
      for (int xo = 0; xo < ow; ++xo) {
        const int sy = source(y - top, h), sx = source(xo - left, w);
        for (int ch = 0; ch < c; ++ch)
          ref[((b * oh + y) * ow + xo) * c + ch] = sy < 0 || sx < 0 ? fill : x[((b * h + sy) * w + sx) * c + ch];
      }
  PadArgs<__half> args{dx.ptr, dy.ptr, 4, {n, h, w, c}, {n, oh, ow, c}, {0, top, left, 0}, mode, fill};
  run_case(name, "[" + std::to_string(n) + "," + std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c) + "]", dy, ref,
           kExact, [&](cudaStream_t s) { return launch_pad(args, s); });
}

// Reductions with every ReduceOp over [outer, reduced, inner] (rows and column kernels), and the strided kernel over
// axes 0 and 2 of [a, b, r, d].
double reduce_reference(ReduceOp op, const std::vector<double>& values) {
  double acc = op == ReduceOp::kMax ? -INFINITY : op == ReduceOp::kMin ? INFINITY : op == ReduceOp::kProd ? 1 : 0;
  for (double v : values) {
    switch (op) {
      case ReduceOp::kMax: acc = std::max(acc, v); break;
      case ReduceOp::kMin: acc = std::min(acc, v); break;
      case ReduceOp::kProd: acc *= v; break;
      case ReduceOp::kSumSquare:
      case ReduceOp::kL2: acc += v * v; break;
      case ReduceOp::kL1: acc += std::fabs(v); break;
      case ReduceOp::kLogSumExp: acc += std::exp(v); break;
      default: acc += v;
    }
  }
  if (op == ReduceOp::kMean) return acc / values.size();
  if (op == ReduceOp::kL2) return std::sqrt(acc);
  if (op == ReduceOp::kLogSumExp) return std::log(acc);
  return acc;
}

void check_reduce_ops() {
  const ReduceOp ops[] = {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax, ReduceOp::kMin, ReduceOp::kSumSquare,
                          ReduceOp::kProd, ReduceOp::kL1, ReduceOp::kL2, ReduceOp::kLogSumExp};
  const char* names[] = {"sum", "mean", "max", "min", "sum-square", "prod", "l1", "l2", "logsumexp"};
  for (int o = 0; o < 9; ++o) {
    const ReduceOp op = ops[o];
    const bool exact = op == ReduceOp::kMax || op == ReduceOp::kMin;
    // the Swin head: [batch, 7·7, 768] over the 49 (column kernel); products over few values stay in range
    for (const auto& [outer, reduced, inner] : {std::tuple<int64_t, int64_t, int64_t>{8, 49, 768}, {33, 7, 1}, {3, 6, 100}}) {
      const float low = op == ReduceOp::kProd ? 0.5f : -1.f, high = op == ReduceOp::kProd ? 1.5f : 1.f;
      std::vector<double> x;
      auto hx = random_tensor<__half>(outer * reduced * inner, &x, low, high);
      DeviceBuffer<__half> dx(outer * reduced * inner), dy(outer * inner);
      upload(dx, hx);
      std::vector<double> ref(outer * inner);
      for (int64_t a = 0; a < outer; ++a)
        for (int64_t i = 0; i < inner; ++i) {
          std::vector<double> v(reduced);
          for (int64_t r = 0; r < reduced; ++r) v[r] = x[(a * reduced + r) * inner + i];
          ref[a * inner + i] = reduce_reference(op, v);
        }
      ReduceArgs<__half> args{dx.ptr, dy.ptr, outer, reduced, inner, op};
      run_case(std::string("reduce ") + names[o],
               "[" + std::to_string(outer) + "," + std::to_string(reduced) + "," + std::to_string(inner) + "]", dy, ref,
               exact ? kExact : kHalfTolerance, [&](cudaStream_t s) { return launch_reduce(args, s); });
    }
    {  // [a, b, r, d] over axes 0 and 2: kept (b, d), reduced (a, r)
      const int64_t A = 3, B = 5, R = 4, D = 6;
      const float low = op == ReduceOp::kProd ? 0.5f : -1.f, high = op == ReduceOp::kProd ? 1.5f : 1.f;
      std::vector<double> x;
      auto hx = random_tensor<__half>(A * B * R * D, &x, low, high);
      DeviceBuffer<__half> dx(A * B * R * D), dy(B * D);
      upload(dx, hx);
      std::vector<double> ref(B * D);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t d = 0; d < D; ++d) {
          std::vector<double> v;
          for (int64_t a = 0; a < A; ++a)
            for (int64_t r = 0; r < R; ++r) v.push_back(x[((a * B + b) * R + r) * D + d]);
          ref[b * D + d] = reduce_reference(op, v);
        }
      ReduceStridedArgs<__half> args{dx.ptr, dy.ptr, 2, 2, {B, D}, {R * D, 1}, {A, R}, {B * R * D, D}, op};
      run_case(std::string("reduce strided ") + names[o], "[3,5,4,6] axes 0,2", dy, ref, exact ? kExact : kHalfTolerance,
               [&](cudaStream_t s) { return launch_reduce_strided(args, s); });
    }
  }
}

// Integer reductions (reduce.cuh: int64 accumulator, exact): Sum/Max/Min/Prod/SumSquare/L1 on int64 over rows,
// columns and a strided set of axes; int32 sums; bool (uint8) max/min. The reference accumulates in int64 with
// two's-complement wrap (long products wrap, as the kernel's do) and casts to T. Outputs are poisoned with 0x7F
// bytes, far from any result (0xFF would read as -1, a valid one).
int64_t reduce_reference_integer(ReduceOp op, const std::vector<int64_t>& values) {
  uint64_t acc = op == ReduceOp::kMax ? static_cast<uint64_t>(INT64_MIN) : op == ReduceOp::kMin ? INT64_MAX : op == ReduceOp::kProd ? 1 : 0;
  for (const int64_t v : values) {
    const int64_t a = static_cast<int64_t>(acc);
    switch (op) {
      case ReduceOp::kMax: acc = static_cast<uint64_t>(std::max(a, v)); break;
      case ReduceOp::kMin: acc = static_cast<uint64_t>(std::min(a, v)); break;
      case ReduceOp::kProd: acc *= static_cast<uint64_t>(v); break;
      case ReduceOp::kSumSquare: acc += static_cast<uint64_t>(v) * static_cast<uint64_t>(v); break;
      case ReduceOp::kL1: acc += static_cast<uint64_t>(v < 0 ? -v : v); break;
      default: acc += static_cast<uint64_t>(v); break;
    }
  }
  return static_cast<int64_t>(acc);
}

template <class T>
void check_reduce_integer(ReduceOp op, const std::string& name, int64_t low, int64_t high) {
  std::uniform_int_distribution<int64_t> dist(low, high);
  const auto draw = [&]() {
    int64_t v = dist(rng);
    while (op == ReduceOp::kProd && v == 0) v = dist(rng);  // a zero would end every product
    return static_cast<T>(v);
  };
  const auto reference = [&](const std::vector<int64_t>& v) { return static_cast<double>(static_cast<T>(reduce_reference_integer(op, v))); };
  for (const auto& [outer, reduced, inner] : {std::tuple<int64_t, int64_t, int64_t>{8, 49, 768}, {33, 7, 1}, {5, 1000, 1}, {3, 6, 100}}) {
    std::vector<T> hx(outer * reduced * inner);
    for (auto& v : hx) v = draw();
    DeviceBuffer<T> dx(hx.size()), dy(outer * inner);
    upload(dx, hx);
    std::vector<double> ref(outer * inner);
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t i = 0; i < inner; ++i) {
        std::vector<int64_t> v(reduced);
        for (int64_t r = 0; r < reduced; ++r) v[r] = hx[(a * reduced + r) * inner + i];
        ref[a * inner + i] = reference(v);
      }
    ReduceArgs<T> args{dx.ptr, dy.ptr, outer, reduced, inner, op};
    run_case("reduce " + name, "[" + std::to_string(outer) + "," + std::to_string(reduced) + "," + std::to_string(inner) + "]", dy, ref,
             kExact, [&](cudaStream_t s) { return launch_reduce(args, s); }, 0x7F);
  }
  {  // [a, b, r, d] over axes 0 and 2
    const int64_t A = 3, B = 5, R = 4, D = 6;
    std::vector<T> hx(A * B * R * D);
    for (auto& v : hx) v = draw();
    DeviceBuffer<T> dx(hx.size()), dy(B * D);
    upload(dx, hx);
    std::vector<double> ref(B * D);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < D; ++d) {
        std::vector<int64_t> v;
        for (int64_t a = 0; a < A; ++a)
          for (int64_t r = 0; r < R; ++r) v.push_back(hx[((a * B + b) * R + r) * D + d]);
        ref[b * D + d] = reference(v);
      }
    ReduceStridedArgs<T> args{dx.ptr, dy.ptr, 2, 2, {B, D}, {R * D, 1}, {A, R}, {B * R * D, D}, op};
    run_case("reduce strided " + name, "[3,5,4,6] axes 0,2", dy, ref, kExact,
             [&](cudaStream_t s) { return launch_reduce_strided(args, s); }, 0x7F);
  }
}

void check_reduce_integers() {
  check_reduce_integer<int64_t>(ReduceOp::kSum, "sum i64", -1000000000000, 1000000000000);  // past 2^32 and fp32's 24 bits
  check_reduce_integer<int64_t>(ReduceOp::kMax, "max i64", -1000000000000, 1000000000000);
  check_reduce_integer<int64_t>(ReduceOp::kMin, "min i64", -1000000000000, 1000000000000);
  check_reduce_integer<int64_t>(ReduceOp::kProd, "prod i64", -3, 3);
  check_reduce_integer<int64_t>(ReduceOp::kSumSquare, "sum-square i64", -100000, 100000);
  check_reduce_integer<int64_t>(ReduceOp::kL1, "l1 i64", -100000, 100000);
  check_reduce_integer<int32_t>(ReduceOp::kSum, "sum i32", -1000, 1000);
  check_reduce_integer<int32_t>(ReduceOp::kMin, "min i32", -1000, 1000);
  check_reduce_integer<uint8_t>(ReduceOp::kMax, "max bool", 0, 1);
  check_reduce_integer<uint8_t>(ReduceOp::kMin, "min bool", 0, 1);
}

// kStrided broadcast (elementwise.cuh): Swin's shifted-window mask [1, W, 1, S·S] added over [n, W, H, S·S], and a
// [1, C, 1, 8] operand over [n, C, 4, 8] (the 16-byte path: innermost axis read in full, a multiple of 8).
void check_strided_broadcast(int64_t n, int64_t windows, int64_t heads, int64_t inner) {
  const int64_t count = n * windows * heads * inner;
  std::vector<double> x, mask;
  auto hx = random_tensor<__half>(count, &x);
  auto hm = random_tensor<__half>(windows * inner, &mask);
  DeviceBuffer<__half> dx(count), dm(windows * inner), dy(count);
  upload(dx, hx);
  upload(dm, hm);
  std::vector<double> ref(count);
  for (int64_t i = 0; i < count; ++i) ref[i] = x[i] + mask[((i / (heads * inner)) % windows) * inner + i % inner];
  ew::ElementwiseArgs<__half, 2> args{{dx.ptr, dm.ptr}, {ew::Broadcast::kFull, ew::Broadcast::kStrided}, {1, 1}, dy.ptr, count};
  args.strided[1] = {4, {n, windows, heads, inner}, {0, inner, 0, 1}};
  const auto chain = ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{});
  run_case("elementwise strided bcast",
           "[" + std::to_string(n) + "," + std::to_string(windows) + "," + std::to_string(heads) + "," + std::to_string(inner) + "]",
           dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_fused_elementwise(args, chain, s); });
}

// DAG bodies (ew::Dag, elementwise.cuh): box decoding clipped to a per-row bound on the fp16 kernel (16-byte path
// and, with an odd row length, the scalar path), RetinaNet's int64 floor division on the mixed kernel (values
// ≡ 1 mod 3, so the poison -1 never passes), and a float Where over a per-row bool mask.
void check_elementwise_dag(int64_t rows, int64_t cols) {
  const int64_t count = rows * cols;
  const std::string shape = "[" + std::to_string(rows) + "," + std::to_string(cols) + "]";
  {
    std::vector<double> dx, dw, w, ctr, lo, hi;
    auto hdx = random_tensor<__half>(count, &dx);
    auto hdw = random_tensor<__half>(count, &dw, -2.f, 6.f);  // past log(1000/16) in places: the clamp matters
    auto hw = random_tensor<__half>(count, &w, 1.f, 20.f);
    auto hctr = random_tensor<__half>(count, &ctr, -50.f, 50.f);
    auto hlo = random_tensor<__half>(1, &lo, -5.f, 0.f);
    auto hhi = random_tensor<__half>(rows, &hi, 20.f, 60.f);
    DeviceBuffer<__half> ddx(count), ddw(count), dwid(count), dctr(count), dlo(1), dhi(rows), dy(count);
    upload(ddx, hdx);
    upload(ddw, hdw);
    upload(dwid, hw);
    upload(dctr, hctr);
    upload(dlo, hlo);
    upload(dhi, hhi);
    const float clamp = 4.135166645050049f;
    std::vector<double> ref(count);
    for (int64_t i = 0; i < count; ++i) {
      const double x1 = ctr[i] + dx[i] * w[i] - 0.5 * std::exp(std::min<double>(dw[i], clamp)) * w[i];
      ref[i] = std::min(std::max(x1, lo[0]), hi[i / cols]);
    }
    ew::ElementwiseArgs<__half, 6> args{{ddx.ptr, ddw.ptr, dwid.ptr, dctr.ptr, dlo.ptr, dhi.ptr},
                                        {ew::Broadcast::kFull, ew::Broadcast::kFull, ew::Broadcast::kFull, ew::Broadcast::kFull,
                                         ew::Broadcast::kScalar, ew::Broadcast::kOuter},
                                        {0, 0, 0, 0, 0, cols},
                                        dy.ptr,
                                        count};
    const auto fn = ew::make_dag<6>(
        ew::make_chain(ew::Input<0>{}, ew::MulInput<2>{}, ew::AddInput<3>{}),                                      // 6: centre
        ew::make_chain(ew::Input<1>{}, ew::Clip{-INFINITY, clamp}, ew::Exp{}, ew::MulInput<2>{}, ew::MulConst{0.5f}),  // 7
        ew::Binary<ew::op::Sub, ew::In<6>, ew::Running>{},                                                         // 8: x1
        ew::Binary<ew::op::Min, ew::Binary<ew::op::Max, ew::Running, ew::In<4>>, ew::In<5>>{});                   // Clip
    run_case("elementwise DAG box decode", shape + (ew::can_vectorize(args) ? " f16 vec" : " f16 scalar"), dy, ref, kHalfTolerance,
             [&](cudaStream_t s) { return launch_fused_elementwise(args, fn, s); });
  }
  {
    std::uniform_int_distribution<int64_t> values(-1000, 1000), divisors(1, 7);
    std::vector<int64_t> ha(count), hb(cols);
    for (auto& v : ha) v = values(rng);
    for (auto& v : hb) v = divisors(rng) * (values(rng) < 0 ? -1 : 1);
    DeviceBuffer<int64_t> da(count), db(cols), dy(count);
    upload(da, ha);
    upload(db, hb);
    std::vector<double> ref(count);
    for (int64_t i = 0; i < count; ++i)
      ref[i] = 3.0 * std::floor(static_cast<double>(ha[i]) / static_cast<double>(hb[i % cols])) + 1.0;
    ew::MixedArgs<int64_t, 2> args{{da.ptr, db.ptr}, {ew::Broadcast::kFull, ew::Broadcast::kInner}, {0, cols}, {0, 0}, dy.ptr, count, 0, {}, {}};
    using Zero = ew::Const<int64_t>;
    const auto fn = ew::make_dag<2>(ew::Binary<ew::op::Div, ew::In<0>, ew::In<1>>{},                   // 2: q (toward zero)
                                    ew::Binary<ew::op::Less, ew::In<0>, Zero>{{}, {0}},                // 3
                                    ew::Binary<ew::op::Less, ew::In<1>, Zero>{{}, {0}},                // 4
                                    ew::Binary<ew::op::Xor, ew::In<3>, ew::Running>{},                // 5: signs differ
                                    ew::Binary<ew::op::Mod, ew::In<0>, ew::In<1>>{},                   // 6
                                    ew::Binary<ew::op::Equal, ew::Running, Zero>{{}, {0}},             // 7
                                    ew::Not{},                                                         // 8: inexact
                                    ew::Binary<ew::op::And, ew::In<5>, ew::Running>{},                // 9
                                    ew::Binary<ew::op::Sub, ew::In<2>, Zero>{{}, {1}},                 // 10: q - 1
                                    ew::Select<ew::In<9>, ew::Running, ew::In<2>>{},                   // 11: floor
                                    ew::Binary<ew::op::Add, ew::Binary<ew::op::Mul, ew::Running, Zero>, Zero>{{{}, {3}}, {1}});
    run_case("elementwise DAG int64 floordiv", shape + " mixed", dy, ref, kExact,
             [&](cudaStream_t s) { return launch_mixed_elementwise<int64_t, int64_t, int64_t>(args, fn, s); });
  }
  {
    std::vector<double> x, t;
    auto hx = random_tensor<__half>(count, &x);
    auto ht = random_tensor<__half>(cols, &t);
    std::vector<uint8_t> hm(rows);
    for (int64_t r = 0; r < rows; ++r) hm[r] = static_cast<uint8_t>(r % 3 != 1);
    DeviceBuffer<__half> dx(count), dt(cols), dy(count);
    DeviceBuffer<uint8_t> dm(rows);
    upload(dx, hx);
    upload(dt, ht);
    upload(dm, hm);
    std::vector<double> ref(count);
    for (int64_t i = 0; i < count; ++i) {
      const double tc = t[i % cols];
      ref[i] = hm[i / cols] ? (x[i] < tc ? 2 * x[i] : tc - x[i]) : -x[i];
    }
    ew::MixedArgs<__half, 3> args{{dx.ptr, dm.ptr, dt.ptr}, {ew::Broadcast::kFull, ew::Broadcast::kOuter, ew::Broadcast::kInner},
                                  {0, cols, cols}, {0, 0, 0}, dy.ptr, count, 0, {}, {}};
    const auto fn = ew::make_dag<3>(ew::Binary<ew::op::Less, ew::In<0>, ew::In<2>>{},       // 3
                                    ew::make_chain(ew::Input<0>{}, ew::MulConst{2.f}),      // 4
                                    ew::make_chain(ew::Input<2>{}, ew::SubInput<0>{}),      // 5
                                    ew::Select<ew::In<3>, ew::In<4>, ew::Running>{},        // 6
                                    ew::make_chain(ew::Input<0>{}, ew::Neg{}),              // 7
                                    ew::Select<ew::In<1>, ew::In<6>, ew::Running>{});       // 8
    run_case("elementwise DAG bool-masked Where", shape + " mixed", dy, ref, kHalfTolerance,
             [&](cudaStream_t s) { return launch_mixed_elementwise<float, __half, uint8_t, __half>(args, fn, s); });
  }
}

// A Concat never materialized (kConcat): relu(cat(pieces)[.., c] * scale[c] + shift[c]) over NHWC, each element read
// from the piece holding its channel. DenseNet's pieces (64 + 32·k channels) take the 16-byte path; odd channel
// counts the scalar path; `mixed`: the mixed kernel with every other piece stored in fp32.
void check_concat_elementwise(int64_t n, int64_t hw, const std::vector<int64_t>& extents, bool mixed = false) {
  const int pieces = static_cast<int>(extents.size());
  int64_t channels = 0;
  std::vector<int64_t> starts;
  for (int64_t e : extents) {
    starts.push_back(channels);
    channels += e;
  }
  const int64_t rows = n * hw, count = rows * channels;
  std::vector<double> scale, shift;
  auto hs = random_tensor<__half>(channels, &scale, 0.5f, 1.5f);
  auto hb = random_tensor<__half>(channels, &shift);
  DeviceBuffer<__half> ds(channels), db(channels), dy(count);
  upload(ds, hs);
  upload(db, hb);
  std::vector<std::unique_ptr<DeviceBuffer<__half>>> halves;
  std::vector<std::unique_ptr<DeviceBuffer<float>>> floats;
  std::vector<const void*> pointers;
  std::vector<std::vector<double>> values(pieces);
  for (int p = 0; p < pieces; ++p) {
    if (mixed && p % 2 == 1) {
      auto h = random_tensor<float>(rows * extents[p], &values[p], -2.f, 2.f);
      floats.push_back(std::make_unique<DeviceBuffer<float>>(h.size()));
      upload(*floats.back(), h);
      pointers.push_back(floats.back()->ptr);
    } else {
      auto h = random_tensor<__half>(rows * extents[p], &values[p], -2.f, 2.f);
      halves.push_back(std::make_unique<DeviceBuffer<__half>>(h.size()));
      upload(*halves.back(), h);
      pointers.push_back(halves.back()->ptr);
    }
  }
  std::vector<double> ref(count);
  for (int64_t r = 0; r < rows; ++r)
    for (int p = 0; p < pieces; ++p)
      for (int64_t e = 0; e < extents[p]; ++e) {
        const int64_t c = starts[p] + e;
        ref[r * channels + c] = std::max(0.0, values[p][r * extents[p] + e] * scale[c] + shift[c]);
      }
  std::string shape = "[" + std::to_string(n) + "," + std::to_string(hw) + ",cat(";
  for (int p = 0; p < pieces && p < 4; ++p) shape += (p ? "," : "") + std::to_string(extents[p]);
  shape += pieces > 4 ? ",..)]" : ")]";
  const auto fn = ew::make_chain(ew::Input<0>{}, ew::MulInput<1>{}, ew::AddInput<2>{}, ew::Relu{});
  constexpr int kPieces = 24;
  if (pieces > kPieces) std::abort();
  if (!mixed) {
    ew::ElementwiseArgs<__half, 3, kPieces> args{{nullptr, ds.ptr, db.ptr},
                                                 {ew::Broadcast::kConcat, ew::Broadcast::kInner, ew::Broadcast::kInner},
                                                 {1, channels, channels},
                                                 dy.ptr,
                                                 count,
                                                 {channels, 0, 0}};
    args.concat.first[0] = 0;
    args.concat.count[0] = pieces;
    for (int p = 0; p < pieces; ++p) {
      args.concat.pointers[p] = static_cast<const __half*>(pointers[p]);
      args.concat.start[p] = starts[p];
      args.concat.extent[p] = extents[p];
    }
    run_case("elementwise concat bn+relu", shape + (ew::can_vectorize(args) ? " f16 vec" : " f16 scalar"), dy, ref, kHalfTolerance,
             [&](cudaStream_t s) { return launch_fused_elementwise(args, fn, s); });
  } else {
    ew::MixedArgs<__half, 3, kPieces> args{{nullptr, ds.ptr, db.ptr},
                                           {ew::Broadcast::kConcat, ew::Broadcast::kInner, ew::Broadcast::kInner},
                                           {1, channels, channels},
                                           {channels, 0, 0},
                                           dy.ptr,
                                           count,
                                           0, {}, {}};
    args.concat.first[0] = 0;
    args.concat.count[0] = pieces;
    for (int p = 0; p < pieces; ++p) {
      args.concat.pointers[p] = pointers[p];
      args.concat.start[p] = starts[p];
      args.concat.extent[p] = extents[p];
      args.concat.storage[p] = p % 2 == 1 ? ew::Storage::kFloat : ew::Storage::kHalf;
    }
    run_case("elementwise concat bn+relu", shape + " mixed f16/f32", dy, ref, kHalfTolerance,
             [&](cudaStream_t s) { return launch_mixed_elementwise<float, __half, __half, __half>(args, fn, s); });
  }
}

// Patchify (im2col.cuh): columns[(n, y, x), (ky, kx, c)] = input[n, y·r + ky, x·s + kx, c], an exact copy. The
// ViT-L/16-384 patch embedding at batch 8 takes the 16-byte path; S·C = 15 (not a multiple of 8) and a misaligned
// input take the general im2col fallback.
void check_patchify(int64_t n, int h, int w, int c, int r, int s, bool misaligned_input = false) {
  const int p = h / r, q = w / s, taps = r * s * c;
  std::vector<double> x;
  auto hx = random_tensor<__half>(n * h * w * c, &x);
  const int offset = misaligned_input ? 1 : 0;
  DeviceBuffer<__half> dx(n * h * w * c + offset), dy(n * p * q * taps);
  CHECK_CUDA(cudaMemcpy(dx.ptr + offset, hx.data(), hx.size() * sizeof(__half), cudaMemcpyHostToDevice));
  std::vector<double> ref(dy.count);
  for (int64_t b = 0; b < n; ++b)
    for (int y = 0; y < p; ++y)
      for (int xo = 0; xo < q; ++xo)
        for (int ky = 0; ky < r; ++ky)
          for (int kx = 0; kx < s; ++kx)
            for (int ch = 0; ch < c; ++ch)
              ref[((b * p + y) * q + xo) * taps + (ky * s + kx) * c + ch] = x[((b * h + y * r + ky) * w + xo * s + kx) * c + ch];
  PatchifyArgs<__half> args{dx.ptr + offset, dy.ptr, n, h, w, c, p, q, r, s};
  const std::string shape = "[" + std::to_string(n) + "," + std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c) +
                            "] " + std::to_string(r) + "x" + std::to_string(s) + (misaligned_input ? " +1" : "") +
                            (can_patchify(args) ? "" : " (im2col)");
  run_case("patchify", shape, dy, ref, kExact, [&](cudaStream_t st) { return launch_patchify_nhwc(args, st); });
}

// im2col (im2col.cuh) of a strided, padded, dilated window: columns[(n, y, x), (ky, kx, c)] = input at
// (y·stride - pad + ky·dilation, x·stride - pad + kx·dilation), zero outside and in columns beyond R·S·C (K padded to a
// multiple of 8). A few-channel stem (C=3, 7×7/2, K=147 → 152) takes the gathered 8-column path; C=16 the 16-byte one;
// K not a multiple of 8 the scalar one.
void check_im2col(int64_t n, int h, int w, int c, int r, int s, int stride, int pad, int dilation, int k_padded) {
  const int p = (h + 2 * pad - dilation * (r - 1) - 1) / stride + 1, q = (w + 2 * pad - dilation * (s - 1) - 1) / stride + 1;
  std::vector<double> x;
  auto hx = random_tensor<__half>(n * h * w * c, &x);
  DeviceBuffer<__half> dx(n * h * w * c), dy(n * p * q * k_padded);
  CHECK_CUDA(cudaMemcpy(dx.ptr, hx.data(), hx.size() * sizeof(__half), cudaMemcpyHostToDevice));
  std::vector<double> ref(dy.count, 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int y = 0; y < p; ++y)
      for (int xo = 0; xo < q; ++xo)
        for (int ky = 0; ky < r; ++ky)
          for (int kx = 0; kx < s; ++kx)
            for (int ch = 0; ch < c; ++ch) {
              const int iy = y * stride - pad + ky * dilation, ix = xo * stride - pad + kx * dilation;
              if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                ref[((b * p + y) * q + xo) * k_padded + (ky * s + kx) * c + ch] = x[((b * h + iy) * w + ix) * c + ch];
            }
  Im2colArgs<__half> args{dx.ptr, dy.ptr, n, h, w, c, p, q, r, s, stride, stride, pad, pad, dilation, dilation, k_padded};
  const std::string shape = "[" + std::to_string(n) + "," + std::to_string(h) + "," + std::to_string(w) + "," + std::to_string(c) +
                            "] " + std::to_string(r) + "x" + std::to_string(s) + "/" + std::to_string(stride) + " pad " +
                            std::to_string(pad) + " dil " + std::to_string(dilation) + " K " + std::to_string(k_padded);
  run_case("im2col", shape, dy, ref, kExact, [&](cudaStream_t st) { return launch_im2col_nhwc(args, st); });
}

// gelu_fast (gelu.cuh, the CUTLASS epilogues' GELU) on the device path (ex2.approx, rcp.approx) over [-12, 12]:
// the whole-tensor error, and the largest absolute error (documented bound 1.4e-5; fails above 2e-5).
__global__ void gelu_fast_kernel(const float* x, float* y, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = ait::gelu_fast(x[i]);
}

void check_gelu_fast() {
  const int64_t count = 1 << 22;
  std::vector<float> hx(count);
  std::vector<double> ref(count);
  for (int64_t i = 0; i < count; ++i) {
    hx[i] = -12.f + 24.f * static_cast<float>(i) / static_cast<float>(count - 1);
    ref[i] = gelu_reference(hx[i]);
  }
  DeviceBuffer<float> dx(count), dy(count);
  upload(dx, hx);
  run_case("gelu_fast (epilogue GELU)", "[-12, 12], 4M points", dy, ref, 2e-6, [&](cudaStream_t st) {
    gelu_fast_kernel<<<1024, 256, 0, st>>>(dx.ptr, dy.ptr, count);
    return cudaGetLastError();
  });
  std::vector<float> hy(count);
  CHECK_CUDA(cudaMemcpy(hy.data(), dy.ptr, count * sizeof(float), cudaMemcpyDeviceToHost));
  double worst = 0;
  for (int64_t i = 0; i < count; ++i) worst = std::max(worst, std::abs(hy[i] - ref[i]));
  const bool pass = worst <= 2e-5;
  std::printf("%-28s %-34s %12.3e  %-4s (largest absolute error)\n", "gelu_fast (epilogue GELU)", "[-12, 12], 4M points", worst,
              pass ? "pass" : "FAIL");
  if (!pass) ++failures;
}

// TopK (topk.cuh) against a CPU reference: a stable sort of each row by value (NaN above everything, -0 == +0),
// largest or smallest first, ties by lower index. Values are compared bit for bit (the kernel copies the input's
// bits) and indices exactly; both outputs are poisoned first. Inputs: kRandom (uniform values), kTies (7 distinct
// values), kSpecial (scores in [0, 1] with 1% NaN, -0, +0, -inf, +inf each), kEqual (one value), kBits (random bit
// patterns: every NaN payload, infinities, denormals). The shapes cover every path of launch_topk: whole rows in
// shared memory (n ≤ 4096; 2048 for int64), one block per row (rows fill the GPU or a short row), several blocks per
// row (a few rows of a large n, the RPN's anchors per FPN level), and k beyond one sort tile (merges).
enum class TopKData { kRandom, kTies, kSpecial, kEqual, kBits };

template <class T>
struct TopKHost;
template <>
struct TopKHost<__half> {
  using Bits = uint16_t;
  static const char* name() { return "f16"; }
  static Bits bits(float v) {
    __half h = __float2half_rn(v);
    Bits b;
    std::memcpy(&b, &h, 2);
    return b;
  }
  static double value(Bits b) {
    __half h;
    std::memcpy(&h, &b, 2);
    return __half2float(h);
  }
};
template <>
struct TopKHost<__nv_bfloat16> {
  using Bits = uint16_t;
  static const char* name() { return "bf16"; }
  static Bits bits(float v) {
    __nv_bfloat16 h = __float2bfloat16_rn(v);
    Bits b;
    std::memcpy(&b, &h, 2);
    return b;
  }
  static double value(Bits b) {
    const uint32_t f = static_cast<uint32_t>(b) << 16;
    float v;
    std::memcpy(&v, &f, 4);
    return v;
  }
};
template <>
struct TopKHost<float> {
  using Bits = uint32_t;
  static const char* name() { return "f32"; }
  static Bits bits(float v) {
    Bits b;
    std::memcpy(&b, &v, 4);
    return b;
  }
  static double value(Bits b) {
    float v;
    std::memcpy(&v, &b, 4);
    return v;
  }
};
template <>
struct TopKHost<int32_t> {
  using Bits = uint32_t;
  static const char* name() { return "i32"; }
  static Bits bits(float v) { return static_cast<Bits>(static_cast<int32_t>(std::floor(v))); }
  static double value(Bits b) { return static_cast<int32_t>(b); }
};
template <>
struct TopKHost<int64_t> {
  using Bits = uint64_t;
  static const char* name() { return "i64"; }
  static Bits bits(float v) { return static_cast<Bits>(static_cast<int64_t>(std::floor(v))); }
  static double value(Bits b) { return static_cast<double>(static_cast<int64_t>(b)); }  // exact for |v| < 2^53
};

template <class T>
typename TopKHost<T>::Bits topk_input(TopKData data, int64_t i) {
  using H = TopKHost<T>;
  constexpr bool kFloat = !std::is_integral<T>::value;
  switch (data) {
    case TopKData::kTies: return H::bits(static_cast<float>(std::uniform_int_distribution<int>(-3, 3)(rng)));
    case TopKData::kEqual: return H::bits(kFloat ? 0.5f : 5.f);
    case TopKData::kBits:
      // integers: random bits too, but within ±2^52 for int64 so that the reference's doubles stay exact
      if (std::is_same<T, int64_t>::value) return static_cast<typename H::Bits>(static_cast<int64_t>(rng() >> 11) - (int64_t(1) << 52));
      return static_cast<typename H::Bits>(rng());
    case TopKData::kSpecial: {
      const int pick = std::uniform_int_distribution<int>(0, 99)(rng);
      if (kFloat && pick == 0) return H::bits(NAN) | static_cast<typename H::Bits>(i & 1);  // two NaN payloads
      if (kFloat && pick == 1) return H::bits(-0.f);
      if (kFloat && pick == 2) return H::bits(0.f);
      if (kFloat && pick == 3) return H::bits(-INFINITY);
      if (kFloat && pick == 4) return H::bits(INFINITY);
      const float u = std::uniform_real_distribution<float>(0.f, 1.f)(rng);
      return H::bits(kFloat ? u : std::floor(u * 1000));
    }
    default: return H::bits(std::uniform_real_distribution<float>(kFloat ? -1.f : -1e6f, kFloat ? 1.f : 1e6f)(rng));
  }
}

template <class T>
void check_topk(const char* what, int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest, TopKData data) {
  using H = TopKHost<T>;
  using Bits = typename H::Bits;
  const int64_t rows = outer * inner;
  std::vector<Bits> x(outer * n * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t q = 0; q < inner; ++q) x[(o * n + i) * inner + q] = topk_input<T>(data, i);
  DeviceBuffer<Bits> dx(x.size()), dv(outer * k * inner);
  DeviceBuffer<int64_t> di(outer * k * inner);
  upload(dx, x);
  const size_t workspace_bytes = topk_workspace_bytes<T>(rows, n, k);
  DeviceBuffer<uint8_t> workspace(workspace_bytes);
  TopKArgs<T> args{reinterpret_cast<const T*>(dx.ptr), reinterpret_cast<T*>(dv.ptr), di.ptr, outer, n, inner, k, largest};
  auto launch = [&](cudaStream_t s) { return launch_topk(args, workspace_bytes ? workspace.ptr : nullptr, workspace_bytes, s); };
  const std::string shape = std::string("[") + std::to_string(outer) + "," + std::to_string(n) + "," + std::to_string(inner) + "] k=" +
                            std::to_string(k) + (largest ? " max " : " min ") + H::name();
  const std::string kernel = std::string("topk ") + what;

  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));
  CHECK_CUDA(cudaMemset(dv.ptr, 0xFF, dv.count * sizeof(Bits)));
  CHECK_CUDA(cudaMemset(di.ptr, 0xFF, di.count * sizeof(int64_t)));
  const cudaError_t launched = launch(stream);
  if (launched != cudaSuccess) {
    std::printf("%-28s %-34s %12s  FAIL (launch: %s)\n", kernel.c_str(), shape.c_str(), "-", cudaGetErrorString(launched));
    ++failures;
    CHECK_CUDA(cudaStreamDestroy(stream));
    return;
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<Bits> values(dv.count);
  std::vector<int64_t> indices(di.count);
  CHECK_CUDA(cudaMemcpy(values.data(), dv.ptr, values.size() * sizeof(Bits), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(indices.data(), di.ptr, indices.size() * sizeof(int64_t), cudaMemcpyDeviceToHost));

  int64_t wrong = 0;
  std::vector<int64_t> order(n);
  std::vector<double> v(n);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t q = 0; q < inner; ++q) {
      for (int64_t i = 0; i < n; ++i) {
        v[i] = H::value(x[(o * n + i) * inner + q]);
        order[i] = i;
      }
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const bool na = std::isnan(v[a]), nb = std::isnan(v[b]);
        if (na || nb) return largest ? na && !nb : !na && nb;  // NaN is the largest value
        return largest ? v[a] > v[b] : v[a] < v[b];            // -0 == +0: a tie, kept in index order
      });
      for (int64_t j = 0; j < k; ++j) {
        const int64_t at = (o * k + j) * inner + q;
        if (indices[at] != order[j] || values[at] != x[(o * n + order[j]) * inner + q]) {
          if (wrong < 3)
            std::printf("    row (%lld, %lld) position %lld: index %lld value %g, expected index %lld value %g\n", static_cast<long long>(o),
                        static_cast<long long>(q), static_cast<long long>(j), static_cast<long long>(indices[at]), H::value(values[at]),
                        static_cast<long long>(order[j]), v[order[j]]);
          ++wrong;
        }
      }
    }
  const bool pass = wrong == 0;

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
  std::printf("%-28s %-34s %12lld  %-4s %10.2f  (wrong outputs)\n", kernel.c_str(), shape.c_str(), static_cast<long long>(wrong),
              pass ? "pass" : "FAIL", ms * 1000.0 / repetitions);
  if (!pass) ++failures;
}

void check_topks() {
  using D = TopKData;
  // whole rows in shared memory: every tile (64, 256, 1024, 4096), n = 1, k = 1, k = n, an inner axis
  check_topk<float>("row sort", 3, 1, 1, 1, true, D::kRandom);
  check_topk<float>("row sort", 4, 7, 3, 7, true, D::kSpecial);
  check_topk<__half>("row sort", 8 * 12 * 197, 197, 1, 5, true, D::kRandom);  // batch·heads rows of a small n
  check_topk<__half>("row sort", 64, 65, 2, 65, false, D::kTies);
  check_topk<float>("row sort", 16, 1000, 1, 1, true, D::kBits);
  check_topk<int64_t>("row sort", 5, 2048, 1, 2048, false, D::kBits);
  check_topk<int32_t>("row sort", 3, 4096, 1, 100, true, D::kTies);
  check_topk<__nv_bfloat16>("row sort", 2, 3000, 2, 3000, true, D::kSpecial);
  check_topk<__half>("row sort", 1, 4000, 1, 1000, true, D::kSpecial);  // detection post-processing
  // radix select, one block per row: rows that fill the GPU, or rows too short to split
  check_topk<__half>("select rows", 512, 20000, 1, 1000, true, D::kSpecial);
  check_topk<float>("select rows", 300, 9000, 1, 1, false, D::kBits);
  check_topk<float>("select rows", 1, 20000, 1, 4096, true, D::kTies);
  check_topk<int64_t>("select rows", 400, 5000, 1, 2048, true, D::kRandom);
  check_topk<__half>("select rows", 1, 4097, 1, 4097, true, D::kEqual);  // k = n, one tie value: merges
  check_topk<int32_t>("select rows", 256, 8000, 3, 300, false, D::kRandom);
  // several blocks per row (on GPUs of 100+ SMs): the RPN's top-k of anchors (1×(152×200×3)), a larger batch
  check_topk<__half>("select split", 1, 91200, 1, 1000, true, D::kSpecial);
  check_topk<__half>("select rows", 2, 22800, 1, 2000, true, D::kRandom);  // too short to split
  check_topk<__half>("select split", 8, 51072, 1, 1000, true, D::kTies);
  check_topk<float>("select split", 1, 250000, 1, 1, true, D::kBits);
  check_topk<float>("select split", 1, 250000, 1, 2000, true, D::kSpecial);
  check_topk<float>("select split", 1, 250000, 1, 250000, false, D::kSpecial);  // k = n: chunks and merges
  check_topk<__half>("select split", 1, 100000, 1, 5000, true, D::kEqual);       // every key the k-th: ties only
  check_topk<int64_t>("select split", 2, 70000, 1, 700, false, D::kBits);
  check_topk<__nv_bfloat16>("select split", 1, 40000, 3, 40000, true, D::kTies);
}

}  // namespace

// NonZero (nonzero.cuh): count + scan, the count read back to the host (as the generated launch function does), then
// the coordinates in element order; exact against the CPU's row-major walk. The time includes the read-back.
void check_nonzero(std::vector<int64_t> shape, double zero_fraction) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<double> values;
  auto hx = random_tensor<__half>(n, &values);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (int64_t i = 0; i < n; ++i)
    if (coin(rng) < zero_fraction) hx[i] = __float2half_rn(i % 2 ? 0.f : -0.f), values[i] = 0;  // -0 is zero too
  std::vector<int64_t> hits;
  for (int64_t i = 0; i < n; ++i)
    if (values[i] != 0) hits.push_back(i);
  const int64_t count = static_cast<int64_t>(hits.size()), rank = static_cast<int64_t>(shape.size());
  std::vector<double> reference(rank * count);
  for (int64_t j = 0; j < count; ++j) {
    int64_t rest = hits[j];
    for (int64_t d = rank - 1; d >= 0; --d) reference[d * count + j] = static_cast<double>(rest % shape[d]), rest /= shape[d];
  }
  DeviceBuffer<__half> dx(n);
  DeviceBuffer<int64_t> workspace(nonzero_workspace_elements(n)), dy(rank * count);
  upload(dx, hx);
  NonZeroArgs<__half> a{dx.ptr, n, static_cast<int>(rank), {}, workspace.ptr, dy.ptr};
  for (int64_t d = 0; d < rank; ++d) a.shape[d] = shape[d];
  std::string label;
  for (int64_t d : shape) label += (label.empty() ? "" : "x") + std::to_string(d);
  int64_t device_count = -1;
  run_case("nonzero f16", label + " (" + std::to_string(count) + " nz)", dy, reference, kExact, [&](cudaStream_t stream) {
    cudaError_t e = launch_nonzero_count(a, stream);
    if (e == cudaSuccess) e = cudaMemcpyAsync(&device_count, nonzero_total(a), sizeof(int64_t), cudaMemcpyDeviceToHost, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    if (e == cudaSuccess && device_count != count) {
      std::printf("nonzero: counted %lld, expected %lld\n", static_cast<long long>(device_count), static_cast<long long>(count));
      ++failures;
      return cudaErrorUnknown;
    }
    return e == cudaSuccess ? launch_nonzero_write(a, device_count, stream) : e;
  });
}

// NonMaxSuppression (nms.cuh): selection (sort, mask, sweep, scan), the count read back to the host (as the
// generated launch function does), then the rows; exact against a CPU greedy NMS with the kernel's fp32 IoU. Boxes
// cluster (so boxes suppress each other) and scores are multiples of 1/64 (so ties occur: lower box index first).
// The workspace starts poisoned: nothing may rely on it being zero. The time includes the read-back.
struct NmsCase {
  std::string label;
  int64_t batches, classes, boxes;
  bool center;
  float iou;
  bool has_score;
  float score;
  int64_t max_per_class;
  bool device_scalars = false;  // thresholds and the limit read by the kernels from device tensors
  int64_t block_rows = 0;       // > 0: NmsArgs::block_rows, mask blocks of that many rows (forced small)
  float offset_step = 0.f;      // box i shifted by (i % 10) · offset_step (a class offset of batched NMS)
};

float nms_iou(const float* a, const float* b) {  // the kernel's nms_suppresses, in the same operation order
  const float h = std::max(0.f, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const float w = std::max(0.f, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const float inter = h * w;
  const float area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const float area_b = (b[2] - b[0]) * (b[3] - b[1]);
  const float uni = (area_a + area_b) - inter;
  return uni > 0.f ? inter / uni : 0.f;
}

template <class T = __half>
void check_nms(const NmsCase& k) {
  const int64_t nb = k.batches * k.boxes * 4, ns = k.batches * k.classes * k.boxes;
  std::uniform_real_distribution<float> center(0.f, 200.f), size(4.f, 40.f), unit(0.f, 1.f);
  std::vector<T> hb(nb), hs(ns);
  std::vector<float> corners(nb);
  for (int64_t i = 0; i < k.batches * k.boxes; ++i) {
    const float cx = center(rng), cy = center(rng), w = size(rng), h = size(rng);
    float v[4];
    if (k.center) v[0] = cx, v[1] = cy, v[2] = w, v[3] = h;
    else if (i % 3 == 0) v[0] = cy + h / 2, v[1] = cx + w / 2, v[2] = cy - h / 2, v[3] = cx - w / 2;  // flipped corners
    else v[0] = cy - h / 2, v[1] = cx - w / 2, v[2] = cy + h / 2, v[3] = cx + w / 2;
    // torchvision's batched NMS: each class's boxes shifted by class · (max + 1), here up to ~30000 (fp32 storage)
    const float shift = static_cast<float>(i % 10) * k.offset_step;
    if (!k.center) v[0] += shift, v[1] += shift, v[2] += shift, v[3] += shift;
    float q[4];
    for (int j = 0; j < 4; ++j) hb[i * 4 + j] = from_host_float<T>(v[j]), q[j] = to_host_float(hb[i * 4 + j]);
    float* c = &corners[i * 4];
    if (k.center) c[0] = q[1] - q[3] / 2, c[1] = q[0] - q[2] / 2, c[2] = q[1] + q[3] / 2, c[3] = q[0] + q[2] / 2;
    else c[0] = std::min(q[0], q[2]), c[1] = std::min(q[1], q[3]), c[2] = std::max(q[0], q[2]), c[3] = std::max(q[1], q[3]);
  }
  for (int64_t i = 0; i < ns; ++i) hs[i] = from_host_float<T>(std::floor(unit(rng) * 64.f) / 64.f);
  const float score_threshold = to_host_float(from_host_float<T>(k.score)), iou_threshold = to_host_float(from_host_float<T>(k.iou));
  std::vector<double> reference;
  for (int64_t b = 0; b < k.batches; ++b)
    for (int64_t c = 0; c < k.classes; ++c) {
      const T* sc = &hs[(b * k.classes + c) * k.boxes];
      std::vector<int64_t> order;
      for (int64_t i = 0; i < k.boxes; ++i)
        if (!k.has_score || to_host_float(sc[i]) > score_threshold) order.push_back(i);
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return to_host_float(sc[x]) > to_host_float(sc[y]); });
      std::vector<int64_t> kept;
      for (int64_t i : order) {
        if (static_cast<int64_t>(kept.size()) >= k.max_per_class) break;
        bool keep = true;
        for (int64_t j : kept)
          if (nms_iou(&corners[(b * k.boxes + i) * 4], &corners[(b * k.boxes + j) * 4]) > iou_threshold) keep = false;
        if (keep) kept.push_back(i);
      }
      for (int64_t i : kept) reference.insert(reference.end(), {double(b), double(c), double(i)});
    }
  const int64_t count = static_cast<int64_t>(reference.size() / 3), segments = k.batches * k.classes;
  const int64_t capacity = nms_mask_capacity(segments, k.boxes);
  DeviceBuffer<T> db(nb), ds(ns), dscalars(2);
  DeviceBuffer<int64_t> dmax(1), dy(count * 3);
  DeviceBuffer<char> workspace(nms_workspace_bytes(segments, k.boxes, capacity));
  upload(db, hb);
  upload(ds, hs);
  upload(dscalars, std::vector<T>{from_host_float<T>(k.iou), from_host_float<T>(k.score)});
  upload(dmax, std::vector<int64_t>{k.max_per_class});
  CHECK_CUDA(cudaMemset(workspace.ptr, 0xFF, workspace.count));
  NmsArgs<T> a{db.ptr, ds.ptr, k.batches, k.classes, k.boxes, k.center, iou_threshold, score_threshold, k.has_score,
                    k.max_per_class, nullptr, nullptr, nullptr, workspace.ptr, capacity, dy.ptr, k.block_rows};
  if (k.device_scalars) {
    a.iou_threshold = a.score_threshold = -1.f, a.max_per_class = -1, a.has_score_threshold = false;
    a.iou_threshold_device = dscalars.ptr, a.max_per_class_device = dmax.ptr;
    if (k.has_score) a.score_threshold_device = dscalars.ptr + 1;
  }
  int64_t device_count = -1;
  run_case(std::is_same<T, float>::value ? "nms f32" : "nms f16", k.label + " (" + std::to_string(count) + " kept)", dy, reference, kExact, [&](cudaStream_t stream) {
    cudaError_t e = launch_nms_select(a, stream);
    if (e == cudaSuccess) e = cudaMemcpyAsync(&device_count, nms_total(a), sizeof(int64_t), cudaMemcpyDeviceToHost, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    if (e == cudaSuccess && device_count != count) {
      std::printf("nms: selected %lld, expected %lld\n", static_cast<long long>(device_count), static_cast<long long>(count));
      ++failures;
      return cudaErrorUnknown;
    }
    return e == cudaSuccess ? launch_nms_write(a, device_count, stream) : e;
  });
}

// RoiAlign (roi_align.cuh) against a double reference of onnxruntime's formula: rois inside, across the border,
// far outside, inverted (no samples with half_pixel and adaptive sampling) and tiny; one with a batch index out of
// range (the kernel writes zeros). NCHW (a thread per element), NHWC with 16-byte channel vectors (C % 8 == 0) and
// NHWC per channel (C % 8 != 0). R: the rois' storage (fp32 where storage precision keeps coordinates in fp32).
template <class R = __half>
void check_roi_align(const char* name, bool channels_last, RoiAlignMode mode, int64_t n, int64_t c, int64_t h, int64_t w,
                     int64_t num_rois, int out_h, int out_w, int sampling_ratio, float spatial_scale, bool half_pixel) {
  std::vector<double> x;
  auto hx = random_tensor<__half>(n * c * h * w, &x);
  // rois in input-image coordinates (the map is the image times spatial_scale)
  const double image_h = h / spatial_scale, image_w = w / spatial_scale;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<R> hrois(num_rois * 4);
  std::vector<double> rois(num_rois * 4);
  std::vector<int64_t> batch(num_rois);
  for (int64_t r = 0; r < num_rois; ++r) {
    double x1 = unit(rng) * image_w * 0.9, y1 = unit(rng) * image_h * 0.9;
    double x2 = x1 + unit(rng) * image_w * 0.5, y2 = y1 + unit(rng) * image_h * 0.5;
    if (r % 17 == 3) x2 += image_w;                         // across the right border
    if (r % 19 == 5) x1 = -3 * image_w, x2 = -2 * image_w;  // far outside: every sample contributes 0
    if (r % 23 == 7) std::swap(y1, y2);                     // inverted
    if (r % 29 == 11) x2 = x1 + 0.1, y2 = y1 + 0.1;         // tiny
    const double box[4] = {x1, y1, x2, y2};
    for (int k = 0; k < 4; ++k) {
      hrois[r * 4 + k] = from_host_float<R>(static_cast<float>(box[k]));
      rois[r * 4 + k] = to_host_float(hrois[r * 4 + k]);
    }
    batch[r] = r == num_rois - 1 && num_rois > 2 ? n : static_cast<int64_t>(unit(rng) * n) % n;  // the last: out of range
  }
  // the input as the kernel reads it
  std::vector<__half> hinput(hx.size());
  auto at = [&](int64_t b, int64_t ch, int64_t y, int64_t xx) { return x[((b * c + ch) * h + y) * w + xx]; };
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx)
          hinput[channels_last ? ((b * h + y) * w + xx) * c + ch : ((b * c + ch) * h + y) * w + xx] = hx[((b * c + ch) * h + y) * w + xx];
  const int bins = out_h * out_w;
  std::vector<double> ref(num_rois * c * bins, 0.0);
  const double offset = half_pixel ? 0.5 : 0.0;
  for (int64_t r = 0; r < num_rois; ++r) {
    if (batch[r] < 0 || batch[r] >= n) continue;
    const double x1 = rois[r * 4] * spatial_scale - offset, y1 = rois[r * 4 + 1] * spatial_scale - offset;
    double roi_w = rois[r * 4 + 2] * spatial_scale - offset - x1, roi_h = rois[r * 4 + 3] * spatial_scale - offset - y1;
    if (!half_pixel) roi_w = std::max(roi_w, 1.0), roi_h = std::max(roi_h, 1.0);
    const double bin_h = roi_h / out_h, bin_w = roi_w / out_w;
    const int grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int>(std::ceil(roi_h / out_h));
    const int grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int>(std::ceil(roi_w / out_w));
    const double count = std::max(grid_h * grid_w, 1);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int ph = 0; ph < out_h; ++ph)
        for (int pw = 0; pw < out_w; ++pw) {
          double acc = 0;
          bool first = true;
          for (int iy = 0; iy < grid_h; ++iy)
            for (int ix = 0; ix < grid_w; ++ix) {
              double y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h, xx = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w;
              double e[4] = {0, 0, 0, 0};
              if (!(y < -1 || y > h || xx < -1 || xx > w)) {
                y = std::max(y, 0.0), xx = std::max(xx, 0.0);
                const int64_t y0 = std::min<int64_t>(static_cast<int64_t>(y), h - 1), x0 = std::min<int64_t>(static_cast<int64_t>(xx), w - 1);
                const int64_t yh = std::min<int64_t>(y0 + 1, h - 1), xh = std::min<int64_t>(x0 + 1, w - 1);
                const double ly = y0 >= h - 1 ? 0 : y - y0, lx = x0 >= w - 1 ? 0 : xx - x0;
                e[0] = (1 - ly) * (1 - lx) * at(batch[r], ch, y0, x0);
                e[1] = (1 - ly) * lx * at(batch[r], ch, y0, xh);
                e[2] = ly * (1 - lx) * at(batch[r], ch, yh, x0);
                e[3] = ly * lx * at(batch[r], ch, yh, xh);
              }
              if (mode == RoiAlignMode::kMax) {
                const double m = std::max(std::max(e[0], e[1]), std::max(e[2], e[3]));
                acc = first ? m : std::max(acc, m);
                first = false;
              } else {
                acc += e[0] + e[1] + e[2] + e[3];
              }
            }
          ref[(r * c + ch) * bins + ph * out_w + pw] = mode == RoiAlignMode::kMax ? acc : acc / count;
        }
  }
  DeviceBuffer<__half> dx(hinput.size()), dy(ref.size());
  DeviceBuffer<R> drois(hrois.size());
  DeviceBuffer<int64_t> dbatch(batch.size());
  upload(dx, hinput);
  upload(drois, hrois);
  upload(dbatch, batch);
  RoiAlignArgs<__half, R> args{dx.ptr, drois.ptr, dbatch.ptr, dy.ptr, n, c, h, w, num_rois, out_h, out_w, sampling_ratio,
                            spatial_scale, half_pixel, mode, channels_last};
  const std::string shape = "x[" + std::to_string(n) + "," + std::to_string(c) + "," + std::to_string(h) + "," +
                            std::to_string(w) + "] " + std::to_string(num_rois) + " rois " + std::to_string(out_h) + "x" +
                            std::to_string(out_w);
  run_case(name, shape, dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_roi_align(args, s); });
}

void check_roi_aligns() {
  using M = RoiAlignMode;
  // Mask R-CNN's box and mask poolers on the FPN's stride-4 level (NHWC, 256 channels)
  check_roi_align("roi_align avg nhwc vec", true, M::kAvg, 1, 256, 112, 152, 1000, 7, 7, 2, 0.25f, false);
  check_roi_align("roi_align avg nhwc vec", true, M::kAvg, 1, 256, 112, 152, 100, 14, 14, 2, 0.25f, false);
  check_roi_align("roi_align max nhwc vec", true, M::kMax, 2, 64, 30, 40, 300, 7, 7, 0, 0.125f, true);
  check_roi_align("roi_align avg nhwc scalar", true, M::kAvg, 2, 12, 25, 19, 97, 3, 5, 0, 0.5f, true);
  check_roi_align("roi_align max nhwc scalar", true, M::kMax, 1, 13, 16, 16, 64, 4, 4, 3, 1.f, false);
  check_roi_align("roi_align avg nchw", false, M::kAvg, 2, 32, 28, 38, 200, 7, 7, 0, 0.0625f, true);
  check_roi_align("roi_align max nchw", false, M::kMax, 2, 5, 20, 22, 50, 6, 3, 2, 0.5f, false);
  // fp32 rois (RetinaNet/Mask R-CNN boxes kept in fp32): a stride-32 level of a 1216-pixel-wide image, where fp16
  // coordinates would be whole pixels; both layouts
  check_roi_align<float>("roi_align avg nhwc vec f32 rois", true, M::kAvg, 1, 256, 28, 38, 500, 7, 7, 0, 0.03125f, false);
  check_roi_align<float>("roi_align max nchw f32 rois", false, M::kMax, 2, 16, 28, 38, 120, 7, 7, 2, 0.03125f, true);
}

// PasteMasks (paste_masks.cuh) against a double reference of ONNX Resize linear half_pixel (sizes = the box) pasted on
// a zero canvas: boxes inside, across each edge and all four, 1-pixel, of the mask's size, larger than the mask and
// than the image, entirely outside and inverted (nothing pasted). T: masks/output storage; B: the boxes' type.
template <class T, class B>
void check_paste_masks(const char* name, int64_t detections, int mask_h, int mask_w, int height, int width) {
  std::vector<double> masks;
  auto hmasks = random_tensor<T>(detections * mask_h * mask_w, &masks, -0.5f, 1.5f);
  std::uniform_int_distribution<int> pick(0, 1 << 20);
  auto in = [&](int lo, int hi) { return lo + pick(rng) % (hi - lo + 1); };
  std::vector<B> boxes(detections * 4);
  for (int64_t d = 0; d < detections; ++d) {
    int x0 = in(0, width - 1), y0 = in(0, height - 1);
    int x1 = in(x0, width - 1), y1 = in(y0, height - 1);
    switch (d % 9) {
      case 1: x0 = in(-mask_w, -1); break;                                   // across the left edge
      case 2: y0 = in(-mask_h, -1), y1 = in(height, height + mask_h); break;  // top and bottom
      case 3: x1 = in(width, width + 2 * mask_w); break;                      // right
      case 4: x1 = x0, y1 = y0; break;                                        // one pixel
      case 5: x1 = x0 + mask_w - 1, y1 = y0 + mask_h - 1; break;              // the mask's size
      case 6: x0 = -3, y0 = -5, x1 = width + 7, y1 = height + 2; break;       // larger than the image
      case 7: x0 = in(-40, -20), x1 = x0 + 10; break;                         // left of the image
      case 8: std::swap(x0, x1), x0 += 1; break;                              // inverted
      default: break;
    }
    const int b[4] = {x0, y0, x1, y1};
    for (int k = 0; k < 4; ++k) boxes[d * 4 + k] = static_cast<B>(b[k]);
  }
  // the reference: ONNX Resize linear, half_pixel, to the box's size (scale = out / in), clamped source coordinates
  auto taps = [](int64_t o, int64_t out, int in_size, int* lo, int* hi, double* frac) {
    double c = (o + 0.5) * static_cast<double>(in_size) / static_cast<double>(out) - 0.5;
    c = std::min(std::max(c, 0.0), static_cast<double>(in_size - 1));
    *lo = static_cast<int>(std::floor(c));
    *hi = std::min(*lo + 1, in_size - 1);
    *frac = c - *lo;
  };
  std::vector<double> ref(detections * height * width, 0.0);
  for (int64_t d = 0; d < detections; ++d) {
    const int64_t x0 = boxes[d * 4], y0 = boxes[d * 4 + 1], x1 = boxes[d * 4 + 2], y1 = boxes[d * 4 + 3];
    const double* m = masks.data() + d * mask_h * mask_w;
    for (int64_t y = std::max<int64_t>(y0, 0); y <= std::min<int64_t>(y1, height - 1); ++y)
      for (int64_t x = std::max<int64_t>(x0, 0); x <= std::min<int64_t>(x1, width - 1); ++x) {
        int ylo, yhi, xlo, xhi;
        double fy, fx;
        taps(y - y0, y1 - y0 + 1, mask_h, &ylo, &yhi, &fy);
        taps(x - x0, x1 - x0 + 1, mask_w, &xlo, &xhi, &fx);
        ref[(d * height + y) * width + x] = (1 - fy) * ((1 - fx) * m[ylo * mask_w + xlo] + fx * m[ylo * mask_w + xhi]) +
                                            fy * ((1 - fx) * m[yhi * mask_w + xlo] + fx * m[yhi * mask_w + xhi]);
      }
  }
  DeviceBuffer<T> dmasks(hmasks.size()), dout(std::max<size_t>(ref.size(), 1));
  DeviceBuffer<B> dboxes(boxes.size());
  upload(dmasks, hmasks);
  upload(dboxes, boxes);
  PasteMasksArgs<T, B> args{dmasks.ptr, dboxes.ptr, dout.ptr, detections, mask_h, mask_w, height, width};
  const std::string shape = std::to_string(detections) + " masks " + std::to_string(mask_h) + "x" + std::to_string(mask_w) +
                            " on " + std::to_string(height) + "x" + std::to_string(width);
  if (detections == 0) {  // nothing launched, nothing written: the poisoned (1-element) buffer stays as it was
    const cudaError_t r = launch_paste_masks(args, nullptr);
    std::printf("%-28s %-34s %12s  %-4s\n", name, shape.c_str(), "-", r == cudaSuccess ? "pass" : "FAIL");
    if (r != cudaSuccess) ++failures;
    return;
  }
  run_case(name, shape, dout, ref, std::is_same<T, float>::value ? 1e-6 : kHalfTolerance,
           [&](cudaStream_t s) { return launch_paste_masks(args, s); });
}

void check_paste_masks_cases() {
  // Mask R-CNN: 28x28 masks padded to 30x30, up to 100 detections on the image
  check_paste_masks<__half, int64_t>("paste_masks f16", 100, 30, 30, 448, 608);
  check_paste_masks<float, int64_t>("paste_masks f32", 37, 30, 30, 200, 150);
  check_paste_masks<__half, int32_t>("paste_masks f16 int32 boxes", 18, 7, 11, 20, 24);
  check_paste_masks<__half, int64_t>("paste_masks f16 empty", 0, 30, 30, 448, 608);
}

// ScatterElements (scatter.cuh), an exact check: data copied, then updates scattered with the reference's
// sequential semantics (the column kernel's order; the element kernel only where order does not matter: unique
// indices, max/min, integer add/mul).
template <class T, class Index>
void check_scatter(const char* name, std::vector<int64_t> data_shape, std::vector<int64_t> update_shape, int axis,
                   ScatterReduction reduction, bool unique_indices, bool expect_columns) {
  const int rank = static_cast<int>(data_shape.size());
  int64_t data_total = 1, total = 1;
  for (int d = 0; d < rank; ++d) data_total *= data_shape[d], total *= update_shape[d];
  const int64_t axis_size = data_shape[axis];
  // a column is all elements sharing their non-axis coordinates: the launcher's choice, asserted
  const int64_t columns = total / update_shape[axis];
  const bool columns_kernel = columns >= kScatterColumnThreads || update_shape[axis] <= kScatterShortAxis;
  if (columns_kernel != expect_columns) {
    std::printf("%-28s %-34s %12s  FAIL (the launcher would take the %s kernel)\n", name, "-", "-", columns_kernel ? "column" : "element");
    ++failures;
    return;
  }
  std::uniform_int_distribution<int> small(-4, 4);
  auto value = [&]() -> T {
    if constexpr (std::is_same_v<T, __half>) return __float2half_rn(small(rng) * 0.25f);  // exact in fp16, sums too
    else return static_cast<T>(small(rng));
  };
  auto as_double = [](T v) -> double {
    if constexpr (std::is_same_v<T, __half>) return __half2float(v);
    else return static_cast<double>(v);
  };
  std::vector<T> hdata(data_total), hupdates(total);
  std::vector<Index> hindices(total);
  for (auto& v : hdata) v = value();
  for (auto& v : hupdates) v = value();
  // indices: a permutation of the axis per column when unique (the axis of updates at most data's), else random
  // with duplicates; negative ones count from the end; a few out of range are skipped
  std::vector<int64_t> update_strides(rank, 1), data_strides(rank, 1);
  for (int d = rank - 2; d >= 0; --d) {
    update_strides[d] = update_strides[d + 1] * update_shape[d + 1];
    data_strides[d] = data_strides[d + 1] * data_shape[d + 1];
  }
  std::vector<int64_t> permutation(axis_size);  // one for every column, as Mask R-CNN's slots
  for (int64_t j = 0; j < axis_size; ++j) permutation[j] = j;
  std::shuffle(permutation.begin(), permutation.end(), rng);
  for (int64_t i = 0; i < total; ++i) {
    const int64_t k = (i / update_strides[axis]) % update_shape[axis];
    if (unique_indices) {
      hindices[i] = static_cast<Index>(permutation[k] - (k % 2 ? axis_size : 0));
    } else {
      std::uniform_int_distribution<int64_t> any(-axis_size, axis_size - 1);
      hindices[i] = static_cast<Index>(i % 101 == 7 ? axis_size + 3 : any(rng));
    }
  }
  std::vector<double> ref(data_total);
  for (int64_t i = 0; i < data_total; ++i) ref[i] = as_double(hdata[i]);
  std::vector<T> out = hdata;
  for (int64_t i = 0; i < total; ++i) {
    int64_t index = hindices[i];
    if (index < 0) index += axis_size;
    if (index < 0 || index >= axis_size) continue;
    int64_t offset = 0;
    for (int d = 0; d < rank; ++d) offset += (d == axis ? index : (i / update_strides[d]) % update_shape[d]) * data_strides[d];
    const double old = ref[offset], v = as_double(hupdates[i]);
    switch (reduction) {
      case ScatterReduction::kAdd: ref[offset] = old + v; break;
      case ScatterReduction::kMul: ref[offset] = old * v; break;
      case ScatterReduction::kMax: ref[offset] = std::max(old, v); break;
      case ScatterReduction::kMin: ref[offset] = std::min(old, v); break;
      default: ref[offset] = v;
    }
  }
  DeviceBuffer<T> ddata(data_total), dupdates(total), dy(data_total);
  DeviceBuffer<Index> dindices(total);
  upload(ddata, hdata);
  upload(dupdates, hupdates);
  upload(dindices, hindices);
  ScatterElementsArgs<T, Index> args{ddata.ptr, dindices.ptr, dupdates.ptr, dy.ptr, rank, axis, {}, {}, reduction};
  std::string shape = "[";
  for (int d = 0; d < rank; ++d) {
    args.data_shape[d] = data_shape[d];
    args.update_shape[d] = update_shape[d];
    shape += std::to_string(update_shape[d]) + (d + 1 < rank ? "," : "]");
  }
  shape += " axis " + std::to_string(axis) + (expect_columns ? " columns" : " elements");
  // fp16 products round at each step (sums of these quarter values stay exact)
  const double tolerance = std::is_same_v<T, __half> && reduction == ScatterReduction::kMul ? kHalfTolerance : kExact;
  run_case(name, shape, dy, ref, tolerance, [&](cudaStream_t s) { return launch_scatter_elements(args, s); });
}

void check_scatters() {
  using R = ScatterReduction;
  // Mask R-CNN's pooler: 400 rois put into their slots of [600, 256, 7, 7] (12544 columns: one thread per element)
  check_scatter<__half, int64_t>("scatter none (mask r-cnn)", {600, 256, 7, 7}, {400, 256, 7, 7}, 0, R::kNone, true, false);
  // duplicates along a short last axis: the column kernel, last write wins as in the reference
  check_scatter<__half, int64_t>("scatter none dup", {64, 300, 9}, {64, 300, 6}, 2, R::kNone, false, true);
  check_scatter<__half, int32_t>("scatter add dup", {40, 50, 16}, {40, 50, 12}, 2, R::kAdd, false, true);
  check_scatter<__half, int64_t>("scatter mul dup", {7, 33, 5}, {7, 20, 5}, 1, R::kMul, false, true);
  check_scatter<int64_t, int64_t>("scatter add int64 cas", {300, 200}, {100, 200}, 0, R::kAdd, false, false);
  // many columns: the column kernel on a long axis
  check_scatter<__half, int64_t>("scatter max (columns)", {50, 40000}, {64, 40000}, 0, R::kMax, false, true);
  // few long columns with duplicates: compare-and-swap on fp16 (max/min exact), int64 and int32
  check_scatter<__half, int64_t>("scatter max cas f16", {300, 8, 16}, {500, 8, 16}, 0, R::kMax, false, false);
  check_scatter<__half, int64_t>("scatter min cas f16", {300, 3, 5}, {700, 3, 5}, 0, R::kMin, false, false);
  check_scatter<int64_t, int32_t>("scatter add cas int32 idx", {100, 64}, {400, 64}, 0, R::kAdd, false, false);
  check_scatter<int32_t, int64_t>("scatter mul cas int32", {50, 9}, {120, 9}, 0, R::kMul, false, false);
  check_scatter<uint8_t, int64_t>("scatter none bool", {90, 40}, {60, 40}, 0, R::kNone, true, false);
}

// ScatterND (scatter.cuh), an exact check against the sequential reference, duplicate tuples included: every path
// keeps the tuple order for equal targets (reduction none: the last tuple wins, also on the elected element path).
// data [dims..., slice], `tuples` index tuples of dims.size() entries (negative ones, a few out of range, duplicates).
template <class T>
void check_scatter_nd(const char* name, std::vector<int64_t> dims, int64_t slice, int64_t tuples, ScatterReduction reduction,
                      bool expect_columns) {
  const int k = static_cast<int>(dims.size());
  int64_t positions = 1;
  for (int64_t d : dims) positions *= d;
  const int64_t data_total = positions * slice, total = tuples * slice;
  if (scatter_nd_uses_columns(tuples, slice) != expect_columns) {
    std::printf("%-28s %-34s %12s  FAIL (the launcher would take the other path)\n", name, "-", "-");
    ++failures;
    return;
  }
  std::uniform_int_distribution<int> small(-4, 4);
  auto value = [&]() -> T {
    if constexpr (std::is_same_v<T, __half>) return __float2half_rn(small(rng) * 0.25f);  // exact in fp16, sums too
    else return static_cast<T>(small(rng));
  };
  auto as_double = [](T v) -> double {
    if constexpr (std::is_same_v<T, __half>) return __half2float(v);
    else return static_cast<double>(v);
  };
  std::vector<T> hdata(data_total), hupdates(total);
  std::vector<int64_t> hindices(tuples * k);
  for (auto& v : hdata) v = value();
  for (auto& v : hupdates) v = value();
  for (int64_t t = 0; t < tuples; ++t)
    for (int m = 0; m < k; ++m) {
      std::uniform_int_distribution<int64_t> any(-dims[m], dims[m] - 1);
      hindices[t * k + m] = t % 97 == 5 && m == 0 ? dims[m] + 2 : any(rng);
    }
  std::vector<double> ref(data_total);
  for (int64_t i = 0; i < data_total; ++i) ref[i] = as_double(hdata[i]);
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t position = 0;
    bool inside = true;
    for (int m = 0; m < k; ++m) {
      int64_t index = hindices[t * k + m];
      if (index < 0) index += dims[m];
      inside = inside && index >= 0 && index < dims[m];
      position = position * dims[m] + index;
    }
    if (!inside) continue;
    for (int64_t s = 0; s < slice; ++s) {
      double& r = ref[position * slice + s];
      const double v = as_double(hupdates[t * slice + s]);
      switch (reduction) {
        case ScatterReduction::kAdd: r = r + v; break;
        case ScatterReduction::kMul: r = r * v; break;
        case ScatterReduction::kMax: r = std::max(r, v); break;
        case ScatterReduction::kMin: r = std::min(r, v); break;
        default: r = v;
      }
    }
  }
  DeviceBuffer<T> ddata(data_total), dupdates(total), dy(data_total);
  DeviceBuffer<int64_t> dindices(tuples * k);
  const size_t workspace_bytes = scatter_nd_workspace_bytes(tuples, slice, positions, reduction);
  DeviceBuffer<int32_t> dworkspace(std::max<int64_t>(1, static_cast<int64_t>(workspace_bytes / sizeof(int32_t))));
  upload(ddata, hdata);
  upload(dupdates, hupdates);
  upload(dindices, hindices);
  ScatterNDArgs<T, int64_t> args{ddata.ptr, dindices.ptr, dupdates.ptr, dy.ptr, tuples, slice, k, {}, reduction};
  std::string shape = "[";
  for (int m = 0; m < k; ++m) {
    args.dims[m] = dims[m];
    shape += std::to_string(dims[m]) + ",";
  }
  shape += std::to_string(slice) + "] x" + std::to_string(tuples) + (expect_columns ? " columns" : " elements");
  const double tolerance = std::is_same_v<T, __half> && reduction == ScatterReduction::kMul ? kHalfTolerance : kExact;
  run_case(name, shape, dy, ref, tolerance,
           [&](cudaStream_t s) { return launch_scatter_nd(args, dworkspace.ptr, workspace_bytes, s); });
}

void check_scatter_nds() {
  using R = ScatterReduction;
  // few tuples: the column kernel; a key/value cache update ([layers, heads] tuples of 4096-element slices)
  check_scatter_nd<__half>("scatter_nd none (columns)", {24, 16}, 4096, 20, R::kNone, true);
  check_scatter_nd<__half>("scatter_nd add (columns)", {300}, 40000, 500, R::kAdd, true);
  // many tuples of short slices: the element path; none elects the last duplicate, the reductions use CAS
  check_scatter_nd<__half>("scatter_nd none elected", {64, 50}, 8, 20000, R::kNone, false);
  check_scatter_nd<__half>("scatter_nd none scalar", {40, 30, 20}, 1, 50000, R::kNone, false);
  check_scatter_nd<__half>("scatter_nd add cas f16", {100}, 64, 3000, R::kAdd, false);
  check_scatter_nd<__half>("scatter_nd max cas f16", {30, 20}, 3, 9000, R::kMax, false);
  check_scatter_nd<int64_t>("scatter_nd mul cas int64", {200}, 5, 700, R::kMul, false);
  check_scatter_nd<int32_t>("scatter_nd min cas int32", {50, 4}, 16, 2000, R::kMin, false);
  check_scatter_nd<uint8_t>("scatter_nd none bool", {128}, 33, 4000, R::kNone, false);
}

// Fill (fill.cuh): the 16-byte path and the tail.
template <class T>
void check_fill(const char* name, int64_t count, T value) {
  DeviceBuffer<T> dy(count);
  std::vector<double> ref(count, static_cast<double>(to_host_float(value)));
  FillArgs<T> args{dy.ptr, count, value};
  run_case(name, "[" + std::to_string(count) + "]", dy, ref, kExact, [&](cudaStream_t s) { return launch_fill(args, s); });
}

void check_fills() {
  check_fill<__half>("fill f16", 1000 * 256 * 49 + 3, __float2half_rn(-1.5f));
  check_fill<int64_t>("fill int64", 77, int64_t{-7});
  check_fill<int32_t>("fill int32", 4099, int32_t{12});
  check_fill<uint8_t>("fill bool", 1001, uint8_t{1});
}

int main() {
  int device = 0;
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  std::printf("AIT kernel check on %s (sm_%d%d)\n\n", prop.name, prop.major, prop.minor);
  std::printf("%-28s %-34s %12s  %-4s %10s\n", "kernel", "shape", "rel L2 err", "ok", "time us");
  check_elementwise();
  check_nonzero({7}, 0.5);
  check_nonzero({2, 2049}, 0.3);
  check_nonzero({3, 1000, 3}, 0.9);
  check_nonzero({1, 3485664}, 0.99);  // RetinaNet's first score filter
  check_nonzero({4096}, 0.0);
  check_nms({"1x1x50 iou.5 s.2 max10", 1, 1, 50, false, 0.5f, true, 0.2f, 10});
  check_nms({"2x3x1000 center iou.3", 2, 3, 1000, true, 0.3f, false, 0.f, 1000});
  check_nms({"1x1x2049 iou.5", 1, 1, 2049, false, 0.5f, true, 0.5f, 3000});  // one key past a sort chunk
  check_nms({"1x1x5000 RetinaNet", 1, 1, 5000, false, 0.5f, true, 0.05f, 300});
  check_nms({"1x1x4000 RPN device scalars", 1, 1, 4000, false, 0.7f, true, 0.1f, 1000, true});
  check_nms({"4x80x300 iou0", 4, 80, 300, false, 0.f, true, 0.5f, 20});
  check_nms({"1x2x20000 iou.6", 1, 2, 20000, false, 0.6f, true, 0.3f, 100000});
  // more than 32768 boxes: the mask in blocks of rows (26816 for 40000 boxes, 11904 for 90000), the removed words
  // right of a block in global memory; forced small blocks (many boundaries), the limit reached in a later block,
  // few candidates (later blocks return at once), R-CNN's one NMS over 1000 proposals x 90 classes
  check_nms({"1x1x40000 blocked iou.5", 1, 1, 40000, false, 0.5f, true, 0.f, 100000});
  check_nms({"1x1x40000 blocks of 128", 1, 1, 40000, false, 0.5f, true, 0.f, 100000, false, 128});
  check_nms({"2x1x40000 iou0 blocks of 200", 2, 1, 40000, false, 0.f, false, 0.f, 100000, false, 200});
  check_nms({"1x1x40000 blocks of 64 max 150", 1, 1, 40000, false, 0.6f, true, 0.f, 150, false, 64});
  check_nms({"1x2x40000 center few candidates blocks of 128", 1, 2, 40000, true, 0.5f, true, 0.9f, 100000, true, 128});
  check_nms({"1x1x90000 R-CNN heads", 1, 1, 90000, false, 0.5f, true, 0.05f, 100});
  check_nms({"1x1x90000 iou.7 no limit", 1, 1, 90000, false, 0.7f, true, 0.f, 1000000});
  // fp32 boxes and scores (storage precision): RetinaNet's batched NMS, classes 0..9 offset by 3001 (up to ~27000)
  check_nms<float>({"1x1x5000 f32 class offsets", 1, 1, 5000, false, 0.5f, true, 0.05f, 300, false, 0, 3001.f});
  check_nms<float>({"1x1x4000 f32 device scalars", 1, 1, 4000, false, 0.7f, true, 0.1f, 1000, true, 0, 3001.f});
  check_gelu_fast();
  check_layernorm(8 * 197, 768);
  check_layernorm(577, 1024);
  check_layernorm(8 * 577, 1024);  // ViT-L/16-384 at batch 8 (warp-per-row kernel)
  check_layernorm(5, 384);         // one vector per lane, half the lanes idle
  check_layernorm(7, 1032);        // 129 vectors: one lane holds a 5th
  check_layernorm(3, 2048);        // the most the warp-per-row kernel takes
  check_layernorm(3, 2056);        // one vector more: the block-per-row kernel
  check_layernorm(33, 100);
  check_softmax(8 * 12 * 197, 197, 0.125f);
  check_softmax(64, 1000, 1.f);
  check_axis_norm(8, 19, 49, AxisNormOp::kSoftmax);      // softmax over channels of an NCHW 7x7 map
  check_axis_norm(64, 1000, 1, AxisNormOp::kLogSoftmax);  // rows
  check_axis_norm(4, 3000, 5, AxisNormOp::kLogSoftmax);   // long column
  check_axis_norm(16, 512, 1, AxisNormOp::kL2);
  check_axis_norm(3, 64, 100, AxisNormOp::kL2);
  check_axis_norm(5, 7, 33, AxisNormOp::kL1);
  check_axis_norm(1000, 37, 1, AxisNormOp::kL1);
  check_group_norm(2, 320, 64 * 64, 32, false, false);  // a diffusion UNet's GroupNorm(32), NCHW
  check_group_norm(2, 320, 64 * 64, 32, true, false);   // the same, channels-last
  check_group_norm(3, 64, 56 * 56, 64, true, false);    // InstanceNorm, channels-last
  check_group_norm(3, 64, 100, 64, false, false);       // InstanceNorm 1-D, NCHW
  check_group_norm(2, 12, 33, 3, false, true);          // GroupNormalization-18 per-group affine
  check_group_norm(2, 12, 33, 4, true, true);
  check_group_norm_split_cases();
  check_arg_reduce(64, 1000, 1, true, false);  // warp per row
  check_arg_reduce(64, 1000, 1, true, true);
  check_arg_reduce(1000, 50257, 1, true, false);  // greedy decoding over a GPT-2 vocabulary
  check_arg_reduce(100, 100, 1, false, true);     // short rows: a thread per row
  check_arg_reduce(3, 50, 77, false, false);
  check_arg_reduce(3, 50, 77, false, true);
  // attention: attention_check.cu
  check_pool2d(PoolMode::kMax, 4, 112, 112, 64, 3, 2, 1, false);
  check_pool2d(PoolMode::kAverage, 2, 17, 17, 24, 3, 1, 1, false);
  check_pool2d(PoolMode::kAverage, 2, 17, 17, 24, 3, 2, 1, true);
  check_global_pools();
  check_reduce(ReduceOp::kMean, "reduce mean (last axis)", 1000, 768, 1);
  check_reduce(ReduceOp::kMax, "reduce max (middle axis)", 4, 100, 33);
  check_reduce(ReduceOp::kSumSquare, "reduce sum-square", 7, 3000, 1);
  check_concat();
  check_concat_chunks();
  check_strided_copy();
  check_strided_copies();
  check_rolls();
  check_col2ims();
  check_lstms();
  check_concats();
  check_gather();
  check_cumsum();
  check_resizes();
  // depthwise: MobileNetV2 3x3 s1/s2 (16-byte path), odd channel counts (per-channel path), dilation, multipliers,
  // ConvNeXt's 7x7 without an epilogue, a misaligned input (the launcher falls back to the per-channel path)
  check_depthwise(2, 56, 56, 144, 1, 3, 1, 1, 1, true);
  check_depthwise(2, 28, 28, 96, 1, 3, 2, 1, 1, true);
  check_depthwise(3, 19, 17, 13, 1, 5, 1, 4, 2, true);
  check_depthwise(2, 15, 15, 7, 1, 3, 2, 1, 1, true);
  check_depthwise(2, 20, 20, 20, 2, 3, 2, 1, 1, true);
  check_depthwise(1, 9, 11, 5, 3, 3, 1, 1, 1, true);
  check_depthwise(1, 56, 56, 96, 1, 7, 1, 3, 1, false);
  check_depthwise(2, 14, 14, 64, 1, 3, 1, 1, 1, true, /*misaligned_input=*/true);
  // 2-D grouped conv: grouped_conv_check.cu (both of its paths)
  // transposed conv. col2im: Mask R-CNN's mask head (2x2 stride 2, 256 channels, 100 detections: one tap per
  // pixel, 16-byte path), 3x3/2 with output padding and 4x4/2 (overlapping taps), odd K with dilation and asymmetric
  // pads (per-element path), kernel < stride (pixels no tap reaches get the bias), misaligned columns.
  // direct: groups of 8 channels (16-byte path), 3 per group, depthwise 4x4/2 (FCN's bilinear upsampling form).
  // Fields: n, h, w, c, k, group, kernel h/w, stride h/w, pads t/l/b/r, dilation h/w, output padding h/w.
  // 3-D (NDHWC, video networks). Fields: n, d, h, w, c, k, group, kernel, stride, pad, dilation (each [d, h, w]).
  // X3D's depthwise 3x3x3 (16-byte path) and one of 12 channels (per-channel path, stride 1x2x2); grouped g=4 with 8
  // channels per group and 3 per group (dilated); r3d_18's stem im2col (3 channels, K 441 → 448), a 16-byte im2col
  // with dilation; r3d's 1x3x3/1x2x2 max pool, X3D-style average pools with and without count_include_pad.
  check_conv3d_direct({2, 8, 14, 14, 96, 96, 96, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}, true);
  check_conv3d_direct({2, 5, 9, 9, 12, 12, 12, {3, 3, 3}, {1, 2, 2}, {1, 1, 1}, {1, 1, 1}}, false);
  check_conv3d_direct({2, 4, 10, 10, 32, 64, 4, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}, true);
  check_conv3d_direct({1, 7, 8, 9, 12, 24, 4, {3, 3, 2}, {2, 1, 1}, {2, 1, 1}, {2, 1, 2}}, false);
  check_im2col3d({2, 8, 32, 32, 3, 64, 1, {3, 7, 7}, {1, 2, 2}, {1, 3, 3}, {1, 1, 1}});
  check_im2col3d({1, 6, 10, 12, 16, 32, 1, {3, 3, 3}, {2, 1, 1}, {2, 1, 1}, {2, 1, 1}});
  check_pool3d(PoolMode::kMax, {2, 8, 28, 28, 64, 64, 1, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}}, false);
  check_pool3d(PoolMode::kAverage, {2, 6, 9, 9, 24, 24, 1, {2, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}}, true);
  check_pool3d(PoolMode::kAverage, {1, 5, 7, 6, 5, 5, 1, {3, 2, 2}, {1, 2, 1}, {1, 0, 1}, {1, 1, 1}}, false);
  check_pool3d(PoolMode::kAverage, {2, 6, 10, 10, 16, 16, 1, {2, 3, 3}, {2, 2, 2}, {0, 1, 1}, {1, 1, 1}}, true, {1, 1, 1});
  check_conv_transpose_col2im({100, 14, 14, 256, 256, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0}, true);
  check_conv_transpose_col2im({4, 9, 7, 64, 64, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}, true);
  check_conv_transpose_col2im({2, 8, 8, 24, 24, 1, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0}, false);
  check_conv_transpose_col2im({2, 5, 6, 5, 5, 1, 3, 2, 3, 2, 2, 0, 1, 2, 1, 2, 0, 1}, true);
  check_conv_transpose_col2im({3, 4, 5, 16, 16, 1, 2, 2, 3, 3, 0, 0, 0, 0, 1, 1, 2, 1}, true);
  check_conv_transpose_col2im({2, 7, 7, 32, 32, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}, true, /*misaligned_columns=*/true);
  check_conv_transpose_direct({4, 9, 9, 32, 48, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}, true);
  check_conv_transpose_direct({2, 6, 5, 12, 20, 4, 3, 2, 3, 2, 1, 0, 2, 1, 1, 2, 0, 1}, true);
  check_conv_transpose_direct({2, 16, 16, 21, 21, 21, 4, 4, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0}, false);
  check_pad(PadMode::kConstant, "pad constant (16-byte)", 8, 56, 56, 96, 0, 0, 7, 7);
  check_pad(PadMode::kReflect, "pad reflect", 2, 19, 23, 3, 3, 2, 1, 4);
  check_pad(PadMode::kEdge, "pad edge", 2, 8, 8, 16, 2, 2, 2, 2);
  check_pad(PadMode::kWrap, "pad wrap", 1, 5, 6, 5, 2, 3, 4, 1);
  check_pad(PadMode::kConstant, "pad crop (negative)", 2, 10, 10, 8, -2, 1, 0, -3);
  check_reduce_ops();
  check_reduce_integers();
  check_strided_broadcast(8, 64, 3, 49 * 49);
  check_strided_broadcast(4, 16, 4, 8);
  check_elementwise_dag(1000, 1000);  // 16-byte path
  check_elementwise_dag(333, 999);    // scalar path
  {
    std::vector<int64_t> dense{64};  // DenseNet-121's third block at its 12th layer: 64 + 11 · 32 channels
    for (int k = 0; k < 11; ++k) dense.push_back(32);
    check_concat_elementwise(32, 28 * 28, dense);                // 16-byte path
    check_concat_elementwise(7, 33, {3, 5, 7, 1, 16});           // scalar path (odd channel counts)
    check_concat_elementwise(7, 33, {3, 5, 7, 1, 16}, true);     // mixed kernel, fp16 and fp32 pieces
  }
  check_patchify(8, 384, 384, 3, 16, 16);  // ViT-L/16-384 patch embedding at batch 8
  check_patchify(2, 224, 224, 8, 14, 14);
  check_patchify(2, 20, 15, 3, 4, 5);      // S·C = 15: the im2col fallback
  check_patchify(1, 64, 64, 3, 16, 16, /*misaligned_input=*/true);
  check_im2col(2, 224, 224, 3, 7, 7, 2, 3, 1, 152);  // the ResNet stem: gathered 8-column path
  check_im2col(1, 17, 13, 5, 3, 3, 1, 2, 2, 48);     // dilated, K = 45 padded to 48
  check_im2col(1, 12, 12, 16, 3, 3, 2, 1, 1, 144);   // C = 16: 16-byte vectors
  check_im2col(1, 9, 9, 3, 3, 3, 1, 1, 1, 27);       // K not a multiple of 8: scalar
  check_roi_aligns();
  check_paste_masks_cases();
  check_scatters();
  check_scatter_nds();
  check_fills();
  check_topks();
  std::printf("\n%s: %d failing case(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
