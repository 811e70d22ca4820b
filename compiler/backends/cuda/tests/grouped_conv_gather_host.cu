// Host check of the grouped conv tensor-core path's gathers (grouped_conv.cuh grouped_mma_row,
// grouped_mma_input_offset, grouped_mma_load_step): the kernel's blocks replayed on the host with the header's own
// functions for the row table and the A/B tiles (128 threads' shares each step), the MMA as plain fp32 sums over the
// tiles, the kernel's store rule; the result must equal a direct convolution. 2-D and 3-D problems, the 16-byte and
// the element paths, strides, dilations, padding, 8/16/24/32-wide blocks and part-empty blocks. No GPU: nvcc compiles
// it as host code (test/backends/cuda/grouped-conv-gather.test.ts builds and runs it). Exits 1 on a mismatch.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "grouped_conv.cuh"

using namespace ait::kernels;

struct Problem {
  const char* name;
  int n, d, h, w, c, k, group;
  int kernel[3], stride[3], pad[3], dilation[3];
  int out(int a) const {
    const int in[3] = {d, h, w};
    return (in[a] + 2 * pad[a] - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1;
  }
};

template <int kN, bool kVec>
double replay(const GroupedConv2dArgs<__half, 0>& a, std::vector<float>& y) {
  constexpr int BM = kGroupedMmaPixels, BK = kGroupedMmaK, LD = BK + kGroupedMmaPad;
  const int cg = a.c / a.group, kg = a.k / a.group;
  const int F = a.kernel_d * a.kernel_h * a.kernel_w * cg;
  const int64_t pixels = a.n * a.out_d * a.out_h * a.out_w;
  const int chunks = (kg + kN - 1) / kN;
  alignas(32) static __half as[BM * LD], bs[kN * LD];
  static GroupedMmaRows rows;
  for (int by = 0; by < a.group * chunks; ++by)
    for (int64_t bx = 0; bx * BM < pixels; ++bx) {
      const int g = by / chunks, kbase = (by % chunks) * kN;
      for (int m = 0; m < BM; ++m) grouped_mma_row(a, bx * BM, m, rows);
      std::vector<float> acc(BM * kN, 0.f);
      for (int f0 = 0; f0 < F; f0 += BK) {
        for (int thread = 0; thread < kGroupedMmaThreads; ++thread)
          grouped_mma_load_step<__half, 0, kN, kVec>(a, rows, g, kbase, f0, as, bs, thread, kGroupedMmaThreads);
        for (int m = 0; m < BM; ++m)
          for (int n = 0; n < kN; ++n)
            for (int f = 0; f < BK; ++f) acc[m * kN + n] += __half2float(as[m * LD + f]) * __half2float(bs[n * LD + f]);
      }
      for (int m = 0; m < BM; ++m)
        for (int n = 0; n < kN; ++n) {
          const int64_t p = bx * BM + m;
          if (p >= pixels || kbase + n >= kg) continue;
          const int64_t out = p * a.k + g * kg + kbase + n;
          if (!std::isnan(y[out])) return -1;  // written twice
          y[out] = acc[m * kN + n];
        }
    }
  return 0;
}

int check(const Problem& p) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int cg = p.c / p.group, kg = p.k / p.group, taps = p.kernel[0] * p.kernel[1] * p.kernel[2];
  const int od = p.out(0), oh = p.out(1), ow = p.out(2);
  const int64_t inputs = int64_t(p.n) * p.d * p.h * p.w * p.c, weights = int64_t(p.k) * taps * cg;
  const int64_t outputs = int64_t(p.n) * od * oh * ow * p.k;
  // 16-byte aligned storage (the vector path reads uint4s)
  __half* x = static_cast<__half*>(std::aligned_alloc(16, (inputs * 2 + 15) / 16 * 16));
  __half* wt = static_cast<__half*>(std::aligned_alloc(16, (weights * 2 + 15) / 16 * 16));
  for (int64_t i = 0; i < inputs; ++i) x[i] = __float2half(u(rng));
  for (int64_t i = 0; i < weights; ++i) wt[i] = __float2half(u(rng));
  GroupedConv2dArgs<__half, 0> a{x, wt, nullptr, {nullptr}, {GroupedConvOperand::kChannel},
                                 p.n, p.h, p.w, p.c, oh, ow, p.k, p.group, p.kernel[1], p.kernel[2], p.stride[1], p.stride[2],
                                 p.pad[1], p.pad[2], p.dilation[1], p.dilation[2], p.d, od, p.kernel[0], p.stride[0], p.pad[0],
                                 p.dilation[0]};
  std::vector<float> y(outputs, NAN);
  const bool vec = cg % 8 == 0;
  double status = 0;
  switch (grouped_mma_channels(kg)) {
    case 8: status = vec ? replay<8, true>(a, y) : replay<8, false>(a, y); break;
    case 16: status = vec ? replay<16, true>(a, y) : replay<16, false>(a, y); break;
    case 24: status = vec ? replay<24, true>(a, y) : replay<24, false>(a, y); break;
    default: status = vec ? replay<32, true>(a, y) : replay<32, false>(a, y); break;
  }
  int bad = status < 0 ? 1 : 0;
  for (int64_t b = 0; b < p.n && !bad; ++b)
    for (int z = 0; z < od; ++z)
      for (int yy = 0; yy < oh; ++yy)
        for (int xx = 0; xx < ow; ++xx)
          for (int ch = 0; ch < p.k; ++ch) {
            const int g = ch / kg;
            double acc = 0;
            for (int t = 0; t < p.kernel[0]; ++t)
              for (int r = 0; r < p.kernel[1]; ++r)
                for (int s = 0; s < p.kernel[2]; ++s) {
                  const int iz = z * p.stride[0] - p.pad[0] + t * p.dilation[0];
                  const int iy = yy * p.stride[1] - p.pad[1] + r * p.dilation[1];
                  const int ix = xx * p.stride[2] - p.pad[2] + s * p.dilation[2];
                  if (iz < 0 || iz >= p.d || iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                  const int tap = (t * p.kernel[1] + r) * p.kernel[2] + s;
                  for (int ci = 0; ci < cg; ++ci)
                    acc += double(__half2float(x[(((b * p.d + iz) * p.h + iy) * p.w + ix) * p.c + g * cg + ci])) *
                           __half2float(wt[(int64_t(ch) * taps + tap) * cg + ci]);
                }
            const int64_t i = (((b * od + z) * oh + yy) * ow + xx) * p.k + ch;
            if (!(std::fabs(y[i] - acc) <= 1e-3 * (1 + std::fabs(acc)))) {
              if (bad++ < 3) std::printf("%s: output %lld: %g, want %g\n", p.name, (long long)i, y[i], acc);
            }
          }
  std::free(x);
  std::free(wt);
  std::printf("%-60s %s\n", p.name, bad ? "MISMATCH" : "ok");
  return bad;
}

int main() {
  const Problem problems[] = {
      {"RegNet 24/group 3x3 s2, 16-byte gathers", 2, 1, 9, 11, 48, 48, 2, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}},
      {"40 outputs/group (two 24-wide blocks) 5x5 d2, 8/group", 1, 1, 10, 15, 16, 80, 2, {1, 5, 5}, {1, 1, 1}, {0, 4, 4}, {1, 2, 2}},
      {"3/group (element gathers), 6 outputs/group", 2, 1, 8, 8, 12, 24, 4, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}},
      {"3-D 3x3x3 g4, 3/group", 2, 3, 4, 5, 12, 8, 4, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
      {"3-D 8/group, stride 2x1x2 dilation 2", 1, 7, 8, 9, 32, 64, 4, {3, 3, 2}, {2, 1, 2}, {2, 1, 1}, {2, 1, 2}},
      {"C/group 96 (K steps past one tap), 32-wide", 1, 1, 6, 7, 192, 64, 2, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}},
      {"1x1 grouped, 300 pixels (three blocks, one part-empty)", 3, 1, 10, 10, 64, 128, 4, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}},
  };
  int bad = 0;
  for (const Problem& p : problems) bad += check(p);
  return bad ? 1 : 0;
}
