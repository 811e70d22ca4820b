// The table a generated ROCm profiler is built from (profile/src/profile_table.cu, written by
// compiler/backends/rocm/ck/profiling.ts) and read by ait_ck_profiler.cu: every CK signature of a model (GEMM, batched
// GEMM, convolution, layernorm, softmax, attention), its problem at each profiled batch as the instance's argument
// struct (src/ait_ck.h) with null pointers, its reference, and its candidate instances. Also the reference kernels the
// table instantiates per signature (with the signature's epilogue, the instances' own `Epilogue` steps).
#pragma once
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
#include <math.h>
#include <stddef.h>

#include "ait_ck.h"

enum AitCkProfileKind {
  kAitCkGemm = 0,
  kAitCkBatchedGemm = 1,
  kAitCkConv = 2,
  kAitCkLayernorm = 3,
  kAitCkSoftmax = 4,
  kAitCkAttention = 5,
};

// The arguments of one call: the kind's struct is used, the others are empty.
struct AitCkProfileArgs {
  AitCkGemmArgs gemm;
  AitCkConvArgs conv;
  AitCkRowArgs row;
  AitCkAttentionArgs attention;
};

struct AitCkProfileProblem {
  int batch;  // the model batch this problem is the op's problem at
  AitCkProfileArgs args;
  size_t qkv_offsets[3];  // attention: q, k and v in the one input buffer (elements)
};

typedef const char* (*AitCkGemmFn)(const AitCkGemmArgs&, hipStream_t);
typedef const char* (*AitCkConvFn)(const AitCkConvArgs&, hipStream_t);
typedef const char* (*AitCkRowFn)(const AitCkRowArgs&, hipStream_t);
typedef const char* (*AitCkAttentionFn)(const AitCkAttentionArgs&, hipStream_t);

struct AitCkProfileCandidate {
  const char* name;    // the instance's symbol (graph.json kernel.name)
  const char* config;  // JSON object text: the tile and vector widths
  // the entry point of the op's kind; null when its translation unit did not build (weak declaration)
  AitCkGemmFn gemm;
  AitCkConvFn conv;
  AitCkRowFn row;
  AitCkAttentionFn attention;
};

struct AitCkProfileOp {
  const char* signature;
  int kind;
  int num_operands;  // GEMM, conv: epilogue operands D_0.. (d_per_channel says which are [n] vectors)
  const AitCkProfileProblem* problems;  // smallest batch first
  int num_problems;
  // fp32 reference of the op on `args` (pointers filled in) into `out`
  void (*reference)(const AitCkProfileArgs& args, float* out, hipStream_t stream);
  const AitCkProfileCandidate* candidates;
  int num_candidates;
};

extern const AitCkProfileOp ait_ck_profile_ops[];
extern const int ait_ck_profile_num_ops;

// ---- reference kernels (one thread per output element; only timed candidates are fast) ----

// in[0] the accumulator, in[1 + j] operand D_j: per channel (a [n] vector) or of the output's shape
#define AIT_CK_MAX_D 4

inline int ait_ck_grid(size_t n) { return static_cast<int>((n + 255) / 256 < 65535 ? (n + 255) / 256 : 65535); }

template <class Epilogue>
__device__ float ait_ck_epilogue(float acc, const void* const* d, const bool* per_channel, int channel, size_t index) {
  float in[1 + AIT_CK_MAX_D] = {acc};
  for (int j = 0; j < AIT_CK_MAX_D; ++j)
    if (d[j]) in[1 + j] = __half2float(static_cast<const __half*>(d[j])[per_channel[j] ? channel : index]);
  return Epilogue{}(in);
}

// E[l, m, n] = epilogue(A[l, m, k] · B): B [n, k] (column-major) or [k, n] (row-major), per GEMM when batched.
template <class Epilogue, bool BRow, bool Batched>
__global__ void ait_ck_reference_gemm(AitCkGemmArgs a, float* out) {
  const size_t total = size_t(a.batch) * a.m * a.n;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int col = int(i % a.n), row = int((i / a.n) % a.m), l = int(i / (size_t(a.m) * a.n));
    const __half* x = static_cast<const __half*>(a.a) + (size_t(l) * a.m + row) * a.k;
    const __half* w = static_cast<const __half*>(a.b) + (Batched ? size_t(l) * a.n * a.k : 0);
    float acc = 0.f;
    for (int k = 0; k < a.k; ++k) acc += __half2float(x[k]) * __half2float(BRow ? w[size_t(k) * a.n + col] : w[size_t(col) * a.k + k]);
    out[i] = ait_ck_epilogue<Epilogue>(acc, a.d, a.d_per_channel, col, i);
  }
}

// NHWC x, OHWI weight [k, r, s, c / group], NHWC y.
template <class Epilogue>
__global__ void ait_ck_reference_conv(AitCkConvArgs a, float* out) {
  const size_t total = size_t(a.n) * a.p * a.q * a.k;
  const int cg = a.c / a.group, kg = a.k / a.group;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int ko = int(i % a.k), q = int((i / a.k) % a.q), p = int((i / (size_t(a.k) * a.q)) % a.p);
    const int n = int(i / (size_t(a.k) * a.q * a.p)), g = ko / kg;
    float acc = 0.f;
    for (int r = 0; r < a.r; ++r) {
      const int h = p * a.stride_h - a.pad_top + r * a.dilation_h;
      if (h < 0 || h >= a.h) continue;
      for (int s = 0; s < a.s; ++s) {
        const int w = q * a.stride_w - a.pad_left + s * a.dilation_w;
        if (w < 0 || w >= a.w) continue;
        const __half* xp = static_cast<const __half*>(a.x) + ((size_t(n) * a.h + h) * a.w + w) * a.c + g * cg;
        const __half* wp = static_cast<const __half*>(a.weight) + ((size_t(ko) * a.r + r) * a.s + s) * cg;
        for (int c = 0; c < cg; ++c) acc += __half2float(xp[c]) * __half2float(wp[c]);
      }
    }
    out[i] = ait_ck_epilogue<Epilogue>(acc, a.d, a.d_per_channel, ko, i);
  }
}

// One thread per row of x [rows, n]: layernorm (gamma, beta) or softmax.
template <bool Layernorm>
__global__ void ait_ck_reference_row(AitCkRowArgs a, float* out) {
  for (int row = blockIdx.x * blockDim.x + threadIdx.x; row < a.rows; row += gridDim.x * blockDim.x) {
    const __half* x = static_cast<const __half*>(a.x) + size_t(row) * a.n;
    float* y = out + size_t(row) * a.n;
    if (Layernorm) {
      float mean = 0.f, var = 0.f;
      for (int i = 0; i < a.n; ++i) mean += __half2float(x[i]);
      mean /= a.n;
      for (int i = 0; i < a.n; ++i) var += (__half2float(x[i]) - mean) * (__half2float(x[i]) - mean);
      const float inv = rsqrtf(var / a.n + a.epsilon);
      const __half* gamma = static_cast<const __half*>(a.gamma);
      const __half* beta = static_cast<const __half*>(a.beta);
      for (int i = 0; i < a.n; ++i) y[i] = (__half2float(x[i]) - mean) * inv * __half2float(gamma[i]) + __half2float(beta[i]);
    } else {
      float max = -INFINITY, sum = 0.f;
      for (int i = 0; i < a.n; ++i) max = fmaxf(max, __half2float(x[i]));
      for (int i = 0; i < a.n; ++i) sum += __expf(__half2float(x[i]) - max);
      for (int i = 0; i < a.n; ++i) y[i] = __expf(__half2float(x[i]) - max) / sum;
    }
  }
}

// o[b, i, h, e] = Σ_j softmax_j(q_i · k_j · scale) v[j, e]; one thread per output element (static: a definition per TU).
static __global__ void ait_ck_reference_attention(AitCkAttentionArgs a, float* out) {
  const int hd = a.heads * a.head_dim;
  const size_t total = size_t(a.batch) * a.sequence * hd;
  const __half* q = static_cast<const __half*>(a.q);
  const __half* k = static_cast<const __half*>(a.k);
  const __half* v = static_cast<const __half*>(a.v);
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int e = int(i % a.head_dim), h = int((i / a.head_dim) % a.heads), s = int((i / hd) % a.sequence);
    const int b = int(i / (size_t(hd) * a.sequence));
    const size_t base = size_t(b) * a.sequence * a.token_stride + size_t(h) * a.head_dim;
    const __half* qi = q + base + size_t(s) * a.token_stride;
    auto score = [&](int j) {
      const __half* kj = k + base + size_t(j) * a.token_stride;
      float dot = 0.f;
      for (int t = 0; t < a.head_dim; ++t) dot += __half2float(qi[t]) * __half2float(kj[t]);
      return dot * a.scale;
    };
    float max = -INFINITY;
    for (int j = 0; j < a.sequence; ++j) max = fmaxf(max, score(j));
    float sum = 0.f, acc = 0.f;
    for (int j = 0; j < a.sequence; ++j) {
      const float p = __expf(score(j) - max);
      sum += p;
      acc += p * __half2float(v[base + size_t(j) * a.token_stride + e]);
    }
    out[i] = acc / sum;
  }
}
