// Host check of the tensor-core attention kernel's mask pass (attention.cuh attention_tc_apply_masks): for every lane
// (t, g), row blocks of 1 and 2, full and tail key tiles, it must give what the per-score AttentionMask::log2_term
// gives (the reference formula the CUDA-core kernel uses): key masks, full masks, relative bias + shift mask, causal
// with other key lengths, a bias broadcast over keys and a key stride of 2. No GPU: nvcc compiles it as host code
// (test/backends/cuda/attention-masks.test.ts builds and runs it). Exits 1 on a mismatch.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "attention.cuh"
using namespace ait::kernels;

struct Case {
  const char* name;
  int64_t sequence, key_sequence;
  bool causal;
  int biases;            // 0..2
  int64_t qs[2], ks[2];  // query / key strides of each bias (elements)
};

template <int kBlocks, bool kTail>
int check(const Case& c, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  AttentionArgs<__half> a{};
  a.sequence = c.sequence;
  a.key_sequence = c.key_sequence;
  a.causal = c.causal;
  a.bias_count = c.biases;
  std::vector<__half> data[2];
  for (int i = 0; i < c.biases; ++i) {
    const int64_t rows = c.qs[i] ? c.sequence : 1, cols = c.ks[i] ? c.key_sequence : 1;
    data[i].resize(rows * cols * 2 + 8);  // batch stride = rows·cols; batch 1 read
    for (auto& v : data[i]) v = __float2half(u(rng) < -2.5f ? -INFINITY : u(rng));
    a.bias[i] = {data[i].data(), 2, rows * cols, 0, c.qs[i], c.ks[i]};
  }
  const AttentionMask<__half> mask(a, 1, 0);
  const float scale_log2 = 0.125f * 1.4426950408889634f;
  int bad = 0;
  constexpr int kKeyTiles = 8;
  const int64_t tiles = (c.key_sequence + 63) / 64;
  for (int64_t warp_first = 0; warp_first < c.sequence + 16; warp_first += 16 * kBlocks)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t key_start = tile * 64;
      const int keys = static_cast<int>(std::min<int64_t>(64, c.key_sequence - key_start));
      if (kTail != (keys < 64)) continue;
      for (int t = 0; t < 4; ++t)
        for (int g = 0; g < 8; ++g) {
          float s[kBlocks][kKeyTiles][4], raw[kBlocks][kKeyTiles][4];
          for (int rb = 0; rb < kBlocks; ++rb)
            for (int n = 0; n < kKeyTiles; ++n)
              for (int k = 0; k < 4; ++k) s[rb][n][k] = raw[rb][n][k] = u(rng);
          attention_tc_detail::attention_tc_apply_masks<kBlocks, kKeyTiles, kTail>(s, mask, scale_log2, warp_first, key_start,
                                                                                   c.sequence, keys, t, g);
          for (int rb = 0; rb < kBlocks; ++rb)
            for (int n = 0; n < kKeyTiles; ++n)
              for (int k = 0; k < 4; ++k) {
                const int64_t query = warp_first + rb * 16 + g + 8 * (k >> 1);
                const int column = 8 * n + 2 * t + (k & 1);
                if (kTail && column >= keys) continue;  // the softmax sets these to -inf
                float want = raw[rb][n][k] * scale_log2;
                if (query < c.sequence) want += mask.log2_term(query, key_start + column);
                const float got = s[rb][n][k];
                const bool same = (std::isinf(want) && got == want) ||
                                  (std::isfinite(want) && std::fabs(got - want) <= 1e-5f * (1.f + std::fabs(want)));
                if (!same && bad++ < 5)
                  std::printf("%s: query %lld key %lld: got %g want %g\n", c.name, (long long)query,
                              (long long)(key_start + column), got, want);
              }
        }
    }
  return bad;
}

int main() {
  std::mt19937 rng(7);
  const Case cases[] = {
      {"no bias, causal", 130, 130, true, 0, {0, 0}, {0, 0}},
      {"key mask [B,1,1,S]", 128, 128, false, 1, {0, 0}, {1, 0}},
      {"full mask [B,1,S,S] with a tail", 77, 77, false, 1, {77, 0}, {1, 0}},
      {"relative bias + shift mask", 49, 49, false, 2, {49, 49}, {1, 1}},
      {"causal + key mask, keys != queries", 150, 200, true, 1, {0, 0}, {1, 0}},
      {"bias broadcast over keys (key stride 0) + causal", 70, 70, true, 2, {1, 70}, {0, 1}},
      {"key stride 2", 65, 65, false, 1, {130, 0}, {2, 0}},
  };
  int bad = 0;
  for (const Case& c : cases) {
    const int before = bad;
    bad += check<1, false>(c, rng) + check<1, true>(c, rng) + check<2, false>(c, rng) + check<2, true>(c, rng);
    std::printf("%-50s %s\n", c.name, bad == before ? "ok" : "MISMATCH");
  }
  return bad ? 1 : 0;
}
