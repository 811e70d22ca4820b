// The table a generated profiler is built from (profile/src/profile_table.cu, written by
// compiler/backends/cuda/profiling/profiler-sources.ts) and read by ait_profiler.cu: every GEMM, batched GEMM and
// convolution signature of a model, its problem at each profiled batch, its epilogue, and its candidate instances.
#pragma once
#include <cuda_runtime.h>
#include <stddef.h>

#include "ait_gemm.h"
#include "ait_conv.h"

enum AitProfileKind { kAitProfileGemm = 0, kAitProfileBatchedGemm = 1, kAitProfileConv = 2 };

// Epilogue steps in the order the instance applies them (what the reference computes).
enum AitProfileStep {
  kAitStepBias = 1,      // + bias[n]
  kAitStepScale = 2,     // * scale[n]
  kAitStepResidual = 3,  // + residual[m, n]
  kAitStepRelu = 10,
  kAitStepGelu = 11,
  kAitStepGeluTanh = 12,
  kAitStepSilu = 13,
  kAitStepSigmoid = 14,
  kAitStepTanh = 15,
  kAitStepHardSwish = 16,
};

struct AitProfileProblem {
  int batch;  // the model batch this problem is the op's problem at
  // GEMM: m, n, k (l = batch count of a batched GEMM, else 1). Conv: the GEMM view is m = n·p·q, n = k, k = c·r·s.
  int m, n, k, l;
  // conv only
  int cn, h, w, c, ck, r, s, p, q, pads[4], strides[2], dilations[2], groups;
  size_t workspace_bytes;
};

typedef const char* (*AitGemmFn)(const AitGemmArgs&, void*, size_t, cudaStream_t);
#ifdef AIT_PROFILE_HAS_BATCHED
typedef const char* (*AitBatchedGemmFn)(const AitBatchedGemmArgs&, void*, size_t, cudaStream_t);
#else
typedef const void* AitBatchedGemmFn;
#endif
typedef const char* (*AitConvFn)(const AitConvArgs&, void*, size_t, cudaStream_t);

struct AitProfileCandidate {
  const char* name;    // CUTLASS procedural name (graph.json kernel.name)
  const char* config;  // JSON object text: tile, cluster, schedule, stages, ...
  AitGemmFn gemm;
  AitBatchedGemmFn batched_gemm;
  AitConvFn conv;
};

struct AitProfileOp {
  const char* signature;
  int kind;
  int layout_b_row;  // batched GEMM: B is [l, k, n] row-major (else [l, n, k])
  int steps[8];
  int num_steps;
  const AitProfileProblem* problems;  // smallest batch first
  int num_problems;
  const AitProfileCandidate* candidates;
  int num_candidates;
};

extern const AitProfileOp ait_profile_ops[];
extern const int ait_profile_num_ops;
extern const char* const ait_profile_cutlass_version;
