// GPU check of the attention kernels (kernels/attention.cuh: the tensor-core and CUDA-core kernels, masks, other key
// lengths, value head dims of their own) against CPU references in double precision; the harness and table of
// kernel_check.cu. A binary of its own: it builds in a few minutes, so a change to attention.cuh is checked and timed
// on the GPU host without the whole kernel_check.
//
// Build and run (from the repository root):
//   nvcc -std=c++17 -O2 -arch=sm_90a -Icompiler/backends/cuda/kernels compiler/backends/cuda/tests/attention_check.cu -o attention_check && ./attention_check
//   (-arch=sm_80 for A100/A10/L4)
// Exits 1 if any case fails.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "attention.cuh"

using namespace ait::kernels;

#include "kernel_check_harness.h"

namespace {

// misaligned_input shifts qkv by one element, so launch_attention takes the CUDA-core fallback kernel (the
// tensor-core kernel needs 16-byte aligned rows, or 8-byte aligned ones for head dims that are a multiple of 4 but
// not of 8). Head dims other than a padded one (attention_padded_head_dim) run with zero-filled dims past head_dim.
void check_attention(int64_t batch, int64_t sequence, int heads, int head_dim, bool misaligned_input = false) {
  const int64_t hd = static_cast<int64_t>(heads) * head_dim;
  const int64_t in_count = batch * sequence * 3 * hd, out_count = batch * sequence * hd;
  std::vector<double> qkv;
  auto hqkv = random_tensor<__half>(in_count, &qkv, -2.f, 2.f);
  const int64_t input_offset = misaligned_input ? 1 : 0;
  DeviceBuffer<__half> dqkv(in_count + input_offset), dy(out_count);
  CHECK_CUDA(cudaMemcpy(dqkv.ptr + input_offset, hqkv.data(), in_count * sizeof(__half), cudaMemcpyHostToDevice));
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  std::vector<double> ref(out_count), scores(sequence);
  auto at = [&](int64_t b, int64_t s, int which, int h, int d) {
    return qkv[(((b * sequence + s) * 3 + which) * heads + h) * head_dim + d];
  };
  for (int64_t b = 0; b < batch; ++b)
    for (int h = 0; h < heads; ++h)
      for (int64_t i = 0; i < sequence; ++i) {
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j < sequence; ++j) {
          double dot = 0;
          for (int d = 0; d < head_dim; ++d) dot += at(b, i, 0, h, d) * at(b, j, 1, h, d);
          scores[j] = dot * scale;
          m = std::max(m, scores[j]);
        }
        for (int64_t j = 0; j < sequence; ++j) sum += (scores[j] = std::exp(scores[j] - m));
        for (int d = 0; d < head_dim; ++d) {
          double o = 0;
          for (int64_t j = 0; j < sequence; ++j) o += scores[j] * at(b, j, 2, h, d);
          ref[(b * sequence + i) * hd + h * head_dim + d] = o / sum;
        }
      }
  const AttentionArgs<__half> args =
      packed_attention_args<__half>(dqkv.ptr + input_offset, dy.ptr, batch, sequence, heads, head_dim, static_cast<float>(scale));
  run_case(misaligned_input ? "attention (CUDA-core path)" : "attention (packed qkv)",
           "B" + std::to_string(batch) + " S" + std::to_string(sequence) + " H" + std::to_string(heads) + " D" +
               std::to_string(head_dim),
           dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_attention(args, s); });
}

// Masked attention (launch_attention<__half, true>): Swin's relative position bias [1,H,S,S] and shift mask
// [nW,1,S,S] over batch = images·nW (read at b % nW), BERT's key mask [B,1,1,S] with -inf (the last batch masks
// every key: zero_masked_rows gives 0), the causal flag (with tiles past a CTA's last query skipped); q, k, v packed
// or separate [B,S,H·D] tensors; misaligned takes the CUDA-core kernel.
struct MaskedAttentionCase {
  const char* name;
  int64_t batch, sequence;
  int heads, head_dim;
  bool separate = false, relative_bias = false, causal = false, misaligned = false;
  int64_t windows = 0;  // > 0: a [windows,1,S,S] shift mask (batch % windows == 0)
  bool key_mask = false;
};

void check_attention_masked(const MaskedAttentionCase& c) {
  const int64_t S = c.sequence, H = c.heads, D = c.head_dim, HD = H * D, B = c.batch;
  const int64_t token_stride = c.separate ? HD : 3 * HD;
  const int64_t qkv_count = B * S * 3 * HD, out_count = B * S * HD;
  std::vector<double> qkv;
  auto hqkv = random_tensor<__half>(qkv_count, &qkv, -2.f, 2.f);
  const int64_t offset = c.misaligned ? 1 : 0;
  DeviceBuffer<__half> dqkv(qkv_count + offset), dy(out_count);
  CHECK_CUDA(cudaMemcpy(dqkv.ptr + offset, hqkv.data(), qkv_count * sizeof(__half), cudaMemcpyHostToDevice));
  // element (b, s, h, d) of q (0), k (1), v (2): packed [B,S,3,H,D], or separate [3][B,S,H,D] in one buffer
  auto index = [&](int which, int64_t b, int64_t s, int64_t h, int64_t d) {
    return c.separate ? which * B * S * HD + (b * S + s) * HD + h * D + d : (b * S + s) * token_stride + which * HD + h * D + d;
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  AttentionArgs<__half> args{};
  args.q = dqkv.ptr + offset + index(0, 0, 0, 0, 0);
  args.k = dqkv.ptr + offset + index(1, 0, 0, 0, 0);
  args.v = dqkv.ptr + offset + index(2, 0, 0, 0, 0);
  args.token_stride = token_stride;
  args.output = dy.ptr;
  args.batch = B;
  args.sequence = S;
  args.heads = static_cast<int32_t>(H);
  args.head_dim = static_cast<int32_t>(D);
  args.scale = static_cast<float>(scale);
  args.causal = c.causal;
  args.zero_masked_rows = c.key_mask;

  struct HostBias {
    std::vector<double> values;
    AttentionBias<__half> shape;  // data set once uploaded
  };
  std::vector<HostBias> biases;
  std::vector<std::unique_ptr<DeviceBuffer<__half>>> buffers;
  auto add_bias = [&](int64_t bb, int64_t bh, int64_t bq, int64_t bk, const std::function<float(int64_t)>& value) {
    const int64_t n = bb * bh * bq * bk;
    std::vector<__half> h(n);
    HostBias hb;
    hb.values.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      h[i] = __float2half_rn(value(i));
      hb.values[i] = __half2float(h[i]);
    }
    buffers.push_back(std::make_unique<DeviceBuffer<__half>>(n));
    upload(*buffers.back(), h);
    hb.shape = {buffers.back()->ptr, bb, bh * bq * bk, bh == 1 ? 0 : bq * bk, bq == 1 ? 0 : bk, bk == 1 ? 0 : 1};
    args.bias[args.bias_count++] = hb.shape;
    biases.push_back(std::move(hb));
  };
  std::uniform_real_distribution<float> bias_dist(-2.f, 2.f);
  if (c.relative_bias) add_bias(1, H, S, S, [&](int64_t) { return bias_dist(rng); });
  if (c.windows > 0)  // window w > 0 masks a scattered third of its (query, key) pairs, as a shifted window does
    add_bias(c.windows, 1, S, S, [&](int64_t i) { return i / (S * S) > 0 && (i % 3 == 1) ? -100.f : 0.f; });
  if (c.key_mask)  // batch b masks keys j % (b + 2) == 1; the last batch masks every key
    add_bias(B, 1, 1, S, [&](int64_t i) {
      const int64_t b = i / S, j = i % S;
      return b == B - 1 || j % (b + 2) == 1 ? -INFINITY : 0.f;
    });

  std::vector<double> ref(out_count), scores(S);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        double m = -INFINITY;
        for (int64_t j = 0; j < S; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += qkv[index(0, b, i, h, d)] * qkv[index(1, b, j, h, d)];
          double score = dot * scale;
          for (const HostBias& hb : biases) {
            const AttentionBias<__half>& p = hb.shape;
            score += hb.values[(b % p.batch_modulo) * p.batch_stride + h * p.head_stride + i * p.query_stride + j * p.key_stride];
          }
          if (c.causal && j > i) score = -INFINITY;
          scores[j] = score;
          m = std::max(m, score);
        }
        double sum = 0;
        for (int64_t j = 0; j < S; ++j) sum += (scores[j] = m == -INFINITY ? 0 : std::exp(scores[j] - m));
        for (int64_t d = 0; d < D; ++d) {
          double o = 0;
          for (int64_t j = 0; j < S; ++j) o += scores[j] * qkv[index(2, b, j, h, d)];
          ref[(b * S + i) * HD + h * D + d] = sum > 0 ? o / sum : 0;  // a fully masked row: 0 (zero_masked_rows)
        }
      }
  run_case(std::string("attention masked") + (c.misaligned ? " (CUDA-core)" : ""),
           std::string(c.name) + " B" + std::to_string(B) + " S" + std::to_string(S) + " H" + std::to_string(H) + " D" +
               std::to_string(D),
           dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_attention<__half, true>(args, s); });
}

// Attention over keys of another length than the queries (AttentionArgs::key_sequence): PVT/SegFormer's
// spatial-reduction attention (keys from a strided convolution of the tokens) and cross-attention. q [B,Sq,H·D];
// k and v packed [B,Sk,2,H,D] (kv_token_stride 2·H·D) or two [B,Sk,H·D] tensors; optionally a [1,H,Sq,Sk] score
// bias and a [B,1,1,Sk] key mask (the last batch masks every key: zero_masked_rows gives 0); misaligned shifts the
// buffer by one element so the CUDA-core kernel runs. A causal flag over Sq != Sk must be refused.
struct KeyLengthAttentionCase {
  const char* name;
  int64_t batch, sequence, key_sequence;
  int heads, head_dim;
  bool kv_packed = false, relative_bias = false, key_mask = false, misaligned = false;
};

void check_attention_key_length(const KeyLengthAttentionCase& c) {
  const int64_t B = c.batch, S = c.sequence, SK = c.key_sequence, H = c.heads, D = c.head_dim, HD = H * D;
  const int64_t q_count = B * S * HD, kv_count = B * SK * 2 * HD, out_count = B * S * HD;
  std::vector<double> values;
  auto host = random_tensor<__half>(q_count + kv_count, &values, -2.f, 2.f);
  const int64_t offset = c.misaligned ? 1 : 0;
  DeviceBuffer<__half> dbuf(q_count + kv_count + offset), dy(out_count);
  CHECK_CUDA(cudaMemcpy(dbuf.ptr + offset, host.data(), (q_count + kv_count) * sizeof(__half), cudaMemcpyHostToDevice));
  // q first; then kv packed [B,SK,2,H,D], or k [B,SK,H·D] followed by v [B,SK,H·D]
  const int64_t kv_stride = c.kv_packed ? 2 * HD : HD;
  auto q_at = [&](int64_t b, int64_t s, int64_t h, int64_t d) { return (b * S + s) * HD + h * D + d; };
  auto kv_at = [&](int which, int64_t b, int64_t j, int64_t h, int64_t d) {
    return q_count + (c.kv_packed ? (b * SK + j) * kv_stride + which * HD : which * B * SK * HD + (b * SK + j) * HD) + h * D + d;
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  AttentionArgs<__half> args{};
  args.q = dbuf.ptr + offset;
  args.k = dbuf.ptr + offset + kv_at(0, 0, 0, 0, 0);
  args.v = dbuf.ptr + offset + kv_at(1, 0, 0, 0, 0);
  args.token_stride = HD;
  args.kv_token_stride = kv_stride;
  args.output = dy.ptr;
  args.batch = B;
  args.sequence = S;
  args.key_sequence = SK;
  args.heads = static_cast<int32_t>(H);
  args.head_dim = static_cast<int32_t>(D);
  args.scale = static_cast<float>(scale);
  args.zero_masked_rows = c.key_mask;
  const bool masked = c.relative_bias || c.key_mask;

  // biases: [1,H,S,SK] then [B,1,1,SK], fp16-rounded values kept for the reference
  std::vector<double> relative(H * S * SK), key_mask(B * SK);
  std::vector<std::unique_ptr<DeviceBuffer<__half>>> buffers;
  auto upload_bias = [&](std::vector<double>& v, const std::function<float(int64_t)>& value) {
    std::vector<__half> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = __half2float(h[i] = __float2half_rn(value(static_cast<int64_t>(i))));
    buffers.push_back(std::make_unique<DeviceBuffer<__half>>(v.size()));
    upload(*buffers.back(), h);
    return buffers.back()->ptr;
  };
  std::uniform_real_distribution<float> bias_dist(-2.f, 2.f);
  if (c.relative_bias)
    args.bias[args.bias_count++] = {upload_bias(relative, [&](int64_t) { return bias_dist(rng); }), 1, H * S * SK, S * SK, SK, 1};
  if (c.key_mask)  // batch b masks keys j % (b + 2) == 1; the last batch masks every key
    args.bias[args.bias_count++] = {upload_bias(key_mask,
                                                [&](int64_t i) {
                                                  const int64_t b = i / SK, j = i % SK;
                                                  return b == B - 1 || j % (b + 2) == 1 ? -INFINITY : 0.f;
                                                }),
                                    B, SK, 0, 0, 1};

  std::vector<double> ref(out_count), scores(SK);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        double m = -INFINITY;
        for (int64_t j = 0; j < SK; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += values[q_at(b, i, h, d)] * values[kv_at(0, b, j, h, d)];
          double score = dot * scale;
          if (c.relative_bias) score += relative[(h * S + i) * SK + j];
          if (c.key_mask) score += key_mask[b * SK + j];
          scores[j] = score;
          m = std::max(m, score);
        }
        double sum = 0;
        for (int64_t j = 0; j < SK; ++j) sum += (scores[j] = m == -INFINITY ? 0 : std::exp(scores[j] - m));
        for (int64_t d = 0; d < D; ++d) {
          double o = 0;
          for (int64_t j = 0; j < SK; ++j) o += scores[j] * values[kv_at(1, b, j, h, d)];
          ref[q_at(b, i, h, d)] = sum > 0 ? o / sum : 0;  // a fully masked row: 0 (zero_masked_rows)
        }
      }
  const std::string kernel = std::string("attention Sq!=Sk") + (masked ? " masked" : "") + (c.misaligned ? " (CUDA-core)" : "");
  const std::string shape = std::string(c.name) + " B" + std::to_string(B) + " S" + std::to_string(S) + " SK" +
                            std::to_string(SK) + " H" + std::to_string(H) + " D" + std::to_string(D);
  if (masked)
    run_case(kernel, shape, dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_attention<__half, true>(args, s); });
  else
    run_case(kernel, shape, dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_attention(args, s); });

  // causal is defined for equal lengths only: refused before any launch
  AttentionArgs<__half> causal = args;
  causal.causal = true;
  const cudaError_t refused = launch_attention<__half, true>(causal, nullptr);
  if (refused != cudaErrorInvalidValue) {
    std::printf("%-28s %-34s %12s  FAIL (causal over Sq != Sk not refused: %s)\n", "attention Sq!=Sk causal",
                shape.c_str(), "-", cudaGetErrorString(refused));
    ++failures;
  }
}

// Attention whose values have a head dim of their own (AttentionArgs::value_head_dim) with q, k, v where a per-head
// split of one projection leaves them (LeViT, EfficientFormer): qkv [B,S,H,D+D+DV] (q at h·W, k at h·W + D, v at
// h·W + 2D, W = 2D + DV), or, with key_sequence set, LeViT's subsampling attention: q [B,S,H·D] and kv
// [B,SK,H,D+DV]. A [1,H,S,SK] learned position bias (masked), optionally causal. Output [B,S,H·DV]. Always the
// CUDA-core kernel: once at the padded max(D, DV) (launch_attention), once at the case's own pair of padded dims
// (launch_attention_dims: q·k at the padded D, p·v at the padded DV, as the generated code runs it).
using AttentionLaunch = cudaError_t (*)(const AttentionArgs<__half>&, cudaStream_t);
struct ValueDimAttentionCase {
  const char* name;
  int64_t batch, sequence, key_sequence;  // key_sequence < 0: packed per-head qkv
  int heads, head_dim, value_head_dim;
  // launch_attention_dims<__half, padded D, padded DV, masked>, masked when bias or causal
  AttentionLaunch at_dims;
  bool bias = true;
  bool causal = false;
};

void check_attention_value_dim(const ValueDimAttentionCase& c) {
  const bool kv = c.key_sequence >= 0;
  const int64_t B = c.batch, S = c.sequence, SK = kv ? c.key_sequence : c.sequence, H = c.heads, D = c.head_dim,
                DV = c.value_head_dim;
  // q rows: packed [B,S,H,W] (W = 2D + DV) or separate [B,S,H·D]; k, v: packed in q's rows or kv [B,SK,H,D+DV]
  const int64_t W = kv ? D + DV : 2 * D + DV;
  const int64_t q_count = kv ? B * S * H * D : 0, kv_count = B * SK * H * W, out_count = B * S * H * DV;
  std::vector<double> values;
  auto host = random_tensor<__half>(q_count + kv_count, &values, -2.f, 2.f);
  DeviceBuffer<__half> dbuf(q_count + kv_count), dy(out_count);
  CHECK_CUDA(cudaMemcpy(dbuf.ptr, host.data(), (q_count + kv_count) * sizeof(__half), cudaMemcpyHostToDevice));
  auto q_at = [&](int64_t b, int64_t s, int64_t h, int64_t d) {
    return kv ? (b * S + s) * H * D + h * D + d : (b * S + s) * H * W + h * W + d;
  };
  // which 1: k, 2: v
  auto kv_at = [&](int which, int64_t b, int64_t j, int64_t h, int64_t d) {
    return q_count + (b * SK + j) * H * W + h * W + (kv ? (which - 1) * D : which * D) + d;
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  AttentionArgs<__half> args{};
  args.q = dbuf.ptr;
  args.k = dbuf.ptr + kv_at(1, 0, 0, 0, 0);
  args.v = dbuf.ptr + kv_at(2, 0, 0, 0, 0);
  args.token_stride = kv ? H * D : H * W;
  args.q_head_stride = kv ? D : W;
  args.kv_token_stride = H * W;
  args.k_head_stride = W;
  args.v_head_stride = W;
  args.value_head_dim = static_cast<int32_t>(DV);
  args.output = dy.ptr;
  args.batch = B;
  args.sequence = S;
  if (kv) args.key_sequence = SK;
  args.heads = static_cast<int32_t>(H);
  args.head_dim = static_cast<int32_t>(D);
  args.scale = static_cast<float>(scale);

  std::vector<double> bias(H * S * SK);
  std::vector<__half> hb(bias.size());
  std::uniform_real_distribution<float> bias_dist(-2.f, 2.f);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = __half2float(hb[i] = __float2half_rn(bias_dist(rng)));
  DeviceBuffer<__half> dbias(bias.size());
  upload(dbias, hb);
  if (c.bias) args.bias[args.bias_count++] = {dbias.ptr, 1, H * S * SK, S * SK, SK, 1};
  args.causal = c.causal;

  std::vector<double> ref(out_count), scores(SK);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        double m = -INFINITY;
        for (int64_t j = 0; j < SK; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += values[q_at(b, i, h, d)] * values[kv_at(1, b, j, h, d)];
          scores[j] = c.causal && j > i ? -INFINITY : dot * scale + (c.bias ? bias[(h * S + i) * SK + j] : 0.0);
          m = std::max(m, scores[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < SK; ++j) sum += (scores[j] = std::exp(scores[j] - m));
        for (int64_t d = 0; d < DV; ++d) {
          double o = 0;
          for (int64_t j = 0; j < SK; ++j) o += scores[j] * values[kv_at(2, b, j, h, d)];
          ref[((b * S + i) * H + h) * DV + d] = o / sum;
        }
      }
  const bool masked = c.bias || c.causal;
  const std::string kernel = std::string("attention Dv!=D") + (masked ? " masked" : "");
  const std::string shape = std::string(c.name) + " B" + std::to_string(B) + " S" + std::to_string(S) + " SK" +
                            std::to_string(SK) + " H" + std::to_string(H) + " D" + std::to_string(D) + " DV" +
                            std::to_string(DV);
  if (masked)
    run_case(kernel, shape, dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_attention<__half, true>(args, s); });
  else
    run_case(kernel, shape, dy, ref, kHalfTolerance, [&](cudaStream_t s) { return launch_attention(args, s); });
  run_case(kernel + " dims", shape, dy, ref, kHalfTolerance, [&](cudaStream_t s) { return c.at_dims(args, s); });
}

}  // namespace

int main() {
  int device = 0;
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  std::printf("AIT attention check on %s (sm_%d%d)\n\n", prop.name, prop.major, prop.minor);
  std::printf("%-28s %-34s %12s  %-4s %10s\n", "kernel", "shape", "rel L2 err", "ok", "time us");
  check_attention(2, 197, 12, 64);
  check_attention(1, 577, 16, 64);
  check_attention(3, 50, 4, 32);
  check_attention(2, 1, 2, 64);
  check_attention(1, 130, 2, 128);
  check_attention(8, 577, 16, 64);  // ViT-L/16-384 at batch 8
  check_attention(1, 16, 2, 64);    // one partial query tile and one partial key tile
  check_attention(1, 64, 2, 64);    // exactly one tile, no tail
  check_attention(2, 65, 3, 64);    // one key past a full tile: a 1-key tail tile
  check_attention(1, 200, 2, 32);
  // grids of 1024+ 128-query CTAs take the two-row-block kernel (kWideGridCtas), tails included
  check_attention(64, 197, 12, 64);
  check_attention(128, 50, 8, 32);
  check_attention(256, 65, 4, 64);
  check_attention(2, 197, 12, 64, /*misaligned_input=*/true);
  // head dims between the padded ones: 36 (MobileViT-S; a multiple of 4: 8-byte loads, padded to 48), 48, 40 and 80
  // (16-byte loads; 40 zero-fills one 16-byte chunk of 48), 33 (CUDA-core kernel: neither), 160 and 176 (padded 192)
  // on tensor cores, 200 (padded 256: CUDA-core kernel, 32-key tiles)
  check_attention(8, 256, 4, 36);
  check_attention(2, 197, 3, 48);
  check_attention(1, 70, 2, 40);
  check_attention(2, 100, 2, 80);
  check_attention(1, 50, 2, 33);
  check_attention(1, 100, 2, 160);
  check_attention(1, 90, 2, 176);
  check_attention(1, 65, 2, 200);
  check_attention(256, 65, 4, 36);  // two row blocks per warp with 8-byte loads
  check_attention(2, 77, 2, 36, /*misaligned_input=*/true);
  check_attention(2, 77, 3, 80, /*misaligned_input=*/true);
  {
    MaskedAttentionCase swin{"swin bias+shift", 2 * 64, 49, 3, 32};
    swin.relative_bias = true;
    swin.windows = 64;
    check_attention_masked(swin);
    MaskedAttentionCase bert{"bert key mask", 4, 128, 12, 64};
    bert.separate = true;
    bert.key_mask = true;
    check_attention_masked(bert);
    // the masked kernel against the plain one at the sizes of models (their times are the point): DistilBERT at
    // batch 8 and 64 (S 128, 12 heads of 64), Swin-S's first stage at batch 8 (512 windows of 49, 3 heads of 32)
    for (const int64_t batch : {8, 64}) {
      MaskedAttentionCase model{"bert key mask (model size)", batch, 128, 12, 64};
      model.separate = true;
      model.key_mask = true;
      check_attention_masked(model);
      check_attention(batch, 128, 12, 64);
    }
    MaskedAttentionCase swin_model{"swin bias+shift (model size)", 8 * 64, 49, 3, 32};
    swin_model.relative_bias = true;
    swin_model.windows = 64;
    check_attention_masked(swin_model);
    check_attention(8 * 64, 49, 3, 32);
    MaskedAttentionCase gpt2{"gpt2 causal", 2, 200, 12, 64};
    gpt2.separate = true;
    gpt2.causal = true;
    check_attention_masked(gpt2);
    MaskedAttentionCase wide{"causal d128", 1, 130, 2, 128};
    wide.causal = true;
    check_attention_masked(wide);
    MaskedAttentionCase many{"causal wide grid", 64, 197, 12, 64};  // two row blocks per warp
    many.causal = true;
    many.relative_bias = true;
    check_attention_masked(many);
    MaskedAttentionCase fallback{"causal+key mask", 3, 77, 2, 64};
    fallback.separate = true;
    fallback.causal = true;
    fallback.key_mask = true;
    fallback.misaligned = true;
    check_attention_masked(fallback);
    // head dims 36, 48 and 80 (padded to 48, 48, 80)
    MaskedAttentionCase key36{"key mask d36", 4, 100, 4, 36};
    key36.separate = true;
    key36.key_mask = true;
    check_attention_masked(key36);
    MaskedAttentionCase causal48{"causal+bias d48", 2, 130, 3, 48};
    causal48.causal = true;
    causal48.relative_bias = true;
    check_attention_masked(causal48);
    MaskedAttentionCase swin36{"bias+shift d36 wide grid", 2 * 64, 49, 8, 36};  // 1024 CTAs: two row blocks
    swin36.relative_bias = true;
    swin36.windows = 64;
    check_attention_masked(swin36);
    MaskedAttentionCase causal80{"causal d80", 2, 150, 2, 80};
    causal80.causal = true;
    check_attention_masked(causal80);
    MaskedAttentionCase fallback36{"causal+key mask d36", 3, 77, 2, 36};
    fallback36.causal = true;
    fallback36.key_mask = true;
    fallback36.misaligned = true;
    check_attention_masked(fallback36);
  }
  {
    // PVT v2 b0 stage 1 (56x56 tokens, keys from an 8x8-strided conv: 7x7; one head of 32; packed kv), SegFormer-B0
    // stage 1 at 512x512 (128x128 tokens, keys 16x16; separate k, v), and key tiles with tails on both sides
    check_attention_key_length({"pvt stage1 kv", 4, 3136, 49, 1, 32, /*kv_packed=*/true});
    check_attention_key_length({"pvt stage2 kv", 8, 784, 49, 2, 32, /*kv_packed=*/true});
    check_attention_key_length({"segformer stage1", 2, 16384, 256, 1, 32});
    check_attention_key_length({"cross d64", 2, 77, 130, 4, 64});
    check_attention_key_length({"cross d64 kv", 3, 200, 65, 8, 64, /*kv_packed=*/true});
    check_attention_key_length({"short keys wide grid", 64, 197, 10, 12, 64, /*kv_packed=*/true});  // two row blocks
    check_attention_key_length({"d36 kv", 2, 150, 37, 3, 36, /*kv_packed=*/true});                  // 8-byte loads
    KeyLengthAttentionCase masked{"bias+key mask d32", 4, 196, 49, 2, 32, /*kv_packed=*/true};
    masked.relative_bias = masked.key_mask = true;
    check_attention_key_length(masked);
    KeyLengthAttentionCase masked64{"key mask d64", 3, 70, 150, 4, 64};
    masked64.key_mask = true;
    check_attention_key_length(masked64);
    KeyLengthAttentionCase fallback{"bias d64", 2, 100, 33, 2, 64, /*kv_packed=*/true};
    fallback.relative_bias = fallback.misaligned = true;
    check_attention_key_length(fallback);
    KeyLengthAttentionCase fallback32{"d32", 2, 90, 200, 2, 32};
    fallback32.misaligned = true;
    check_attention_key_length(fallback32);
  }
  // value head dim of its own, q, k, v from a per-head split (LeViT: D 16, DV 32 / 64; EfficientFormer: D 32, DV 128),
  // each also at its own pair of padded dims (launch_attention_dims)
  check_attention_value_dim({"levit qkv", 2, 196, -1, 4, 16, 32, &launch_attention_dims<__half, 16, 32, true>});
  check_attention_value_dim({"levit qkv dv64", 2, 196, -1, 4, 16, 64, &launch_attention_dims<__half, 16, 64, true>});
  check_attention_value_dim(
      {"levit subsample kv", 2, 49, 196, 8, 16, 64, &launch_attention_dims<__half, 16, 64, true>});
  check_attention_value_dim(
      {"efficientformer qkv", 2, 49, -1, 8, 32, 128, &launch_attention_dims<__half, 32, 128, true>});
  check_attention_value_dim(  // two key tiles with a tail, many CTAs
      {"efficientformer 448px", 16, 196, -1, 8, 32, 128, &launch_attention_dims<__half, 32, 128, true>});
  check_attention_value_dim(  // element loads
      {"odd dims", 3, 70, -1, 3, 12, 20, &launch_attention_dims<__half, 16, 32>, /*bias=*/false});
  check_attention_value_dim({"dv < d", 2, 33, 65, 2, 64, 16, &launch_attention_dims<__half, 64, 16, true>});
  check_attention_value_dim({"dv < d 64/32", 2, 77, -1, 3, 64, 32, &launch_attention_dims<__half, 64, 32>, false});
  check_attention_value_dim(
      {"causal d16 dv64", 2, 130, -1, 2, 16, 64, &launch_attention_dims<__half, 16, 64, true>, false, true});
  {
    // a pair other than the dims' own padded ones is refused (the generated code names the pair it instantiated)
    AttentionArgs<__half> wrong{};
    wrong.head_dim = 32;
    wrong.value_head_dim = 64;
    const cudaError_t refused = launch_attention_dims<__half, 16, 64, true>(wrong, nullptr);
    if (refused != cudaErrorInvalidValue) {
      std::printf("%-28s %-34s %12s  FAIL (D 32 at dims (16, 64) not refused: %s)\n", "attention Dv!=D dims",
                  "D32 DV64", "-", cudaGetErrorString(refused));
      ++failures;
    }
  }
  std::printf("\n%s: %d failing case(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
