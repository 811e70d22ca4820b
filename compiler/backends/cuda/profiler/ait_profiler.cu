// ait_profiler: times every candidate instance of every GEMM / batched GEMM / convolution signature in the table
// (ait_profiler.h) on the real problem sizes of each profiled batch, and checks each candidate's output against a
// plain reference kernel. Prints one JSON line last:
//   {"format":"ait-profiler","version":1,"device":{gpu,sms,driver,cuda,cutlass},"measurements":[{signature,
//    candidate,batch,status,medianUs?,message?,config}]}
// status: ok | launch-failed (the instance refused the problem or its launch failed) | mismatch (relative L2 error
// against the reference above the tolerance at the smallest batch). A failing candidate is reported, never fatal,
// unless it leaves the CUDA context unusable (an illegal address): then the ops after it are reported as failed.
//
// Timing: per candidate and batch, `--warmup` launches, then `--iterations` launches each timed alone with CUDA events
// after writing a buffer twice the L2 size (so no operand is L2-resident from the previous launch), median reported.
// Work split: `--worker K --workers N` profiles the ops whose index is K mod N (one process per GPU, each pinned by
// CUDA_VISIBLE_DEVICES), so several GPUs profile one model at once.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ait_profiler.h"

namespace {

constexpr double kTolerance = 1e-2;  // relative L2 against the fp32 reference (fp16 output rounding is ~5e-4)

std::string json_string(const char* s) {
  std::string out = "\"";
  for (const char* p = s; *p; ++p) {
    const unsigned char ch = static_cast<unsigned char>(*p);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += *p;
    } else if (ch < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += *p;
    }
  }
  return out + "\"";
}

__device__ float apply_activation(int step, float v) {
  switch (step) {
    case kAitStepRelu: return v > 0.f ? v : 0.f;
    case kAitStepGelu: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case kAitStepGeluTanh: return 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case kAitStepSilu: return v / (1.f + __expf(-v));
    case kAitStepSigmoid: return 1.f / (1.f + __expf(-v));
    case kAitStepTanh: return tanhf(v);
    case kAitStepHardSwish: return v * fminf(fmaxf(v + 3.f, 0.f), 6.f) / 6.f;
    default: return v;
  }
}

struct Steps {
  int step[8];
  int count;
};

__device__ float apply_steps(const Steps& st, float v, int n, const __half* bias, const __half* scale, const __half* residual,
                             size_t index) {
  for (int i = 0; i < st.count; ++i) {
    const int s = st.step[i];
    if (s == kAitStepBias) v += __half2float(bias[n]);
    else if (s == kAitStepScale) v *= __half2float(scale[n]);
    else if (s == kAitStepResidual) v += __half2float(residual[index]);
    else v = apply_activation(s, v);
  }
  return v;
}

// D[l, m, n] = steps(sum_k A[l, m, k] * B): B [l, n, k] (column-major) or [l, k, n] (row-major); l = 1 for a GEMM
// whose B is shared (b_batch_stride 0).
__global__ void reference_gemm(int l, int m, int n, int k, const __half* a, const __half* b, size_t b_batch_stride, bool b_row,
                               Steps st, const __half* bias, const __half* scale, const __half* residual, float* d) {
  const size_t total = size_t(l) * m * n;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int col = int(i % n);
    const int row = int((i / n) % m);
    const int batch = int(i / (size_t(m) * n));
    const __half* arow = a + (size_t(batch) * m + row) * k;
    const __half* bb = b + batch * b_batch_stride;
    float acc = 0.f;
    for (int kk = 0; kk < k; ++kk)
      acc += __half2float(arow[kk]) * __half2float(b_row ? bb[size_t(kk) * n + col] : bb[size_t(col) * k + kk]);
    d[i] = apply_steps(st, acc, col, bias, scale, residual, i);
  }
}

// NHWC x, KRSC weight (C/groups input channels per filter), NPQK y.
__global__ void reference_conv(AitProfileProblem p, const __half* x, const __half* w, Steps st, const __half* bias,
                               const __half* scale, const __half* residual, float* y) {
  const size_t total = size_t(p.cn) * p.p * p.q * p.ck;
  const int cpg = p.c / p.groups, kpg = p.ck / p.groups;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int kk = int(i % p.ck);
    const int q = int((i / p.ck) % p.q);
    const int pp = int((i / (size_t(p.ck) * p.q)) % p.p);
    const int n = int(i / (size_t(p.ck) * p.q * p.p));
    const int g = kk / kpg;
    float acc = 0.f;
    for (int r = 0; r < p.r; ++r) {
      const int h = pp * p.strides[0] - p.pads[0] + r * p.dilations[0];
      if (h < 0 || h >= p.h) continue;
      for (int s = 0; s < p.s; ++s) {
        const int wx = q * p.strides[1] - p.pads[1] + s * p.dilations[1];
        if (wx < 0 || wx >= p.w) continue;
        const __half* xp = x + ((size_t(n) * p.h + h) * p.w + wx) * p.c + g * cpg;
        const __half* wp = w + ((size_t(kk) * p.r + r) * p.s + s) * cpg;
        for (int c = 0; c < cpg; ++c) acc += __half2float(xp[c]) * __half2float(wp[c]);
      }
    }
    y[i] = apply_steps(st, acc, kk, bias, scale, residual, i);
  }
}

__global__ void fill_random(__half* p, size_t count, unsigned seed, float range) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    unsigned x = unsigned(i) * 2654435761u ^ seed * 40503u;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    p[i] = __float2half((float(x & 0xffff) / 65535.f * 2.f - 1.f) * range);
  }
}

struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  void reserve(size_t need) {
    if (need <= bytes) return;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
    if (cudaMalloc(&ptr, need) == cudaSuccess) bytes = need;
  }
  template <class T>
  T* as() const { return static_cast<T*>(ptr); }
};

int grid_for(size_t n) { return int(std::min<size_t>((n + 255) / 256, 65535)); }

struct Sizes {
  size_t a, b, vec, out;
};

Sizes sizes_of(const AitProfileOp& op, const AitProfileProblem& p) {
  if (op.kind == kAitProfileConv)
    return {size_t(p.cn) * p.h * p.w * p.c, size_t(p.ck) * p.r * p.s * (p.c / p.groups), size_t(p.ck), size_t(p.cn) * p.p * p.q * p.ck};
  const size_t l = op.kind == kAitProfileBatchedGemm ? size_t(p.l) : 1;
  return {l * p.m * p.k, l * p.n * p.k, size_t(p.n), l * p.m * p.n};
}

struct Operands {
  Buffer a, b, bias, scale, residual, d, reference, workspace, flush;
};

const char* launch(const AitProfileOp& op, const AitProfileCandidate& cand, const AitProfileProblem& p, Operands& o,
                   cudaStream_t stream) {
  const void* bias = o.bias.ptr;
  const void* scale = o.scale.ptr;
  const void* residual = o.residual.ptr;
  bool has_bias = false, has_scale = false, has_residual = false;
  for (int i = 0; i < op.num_steps; ++i) {
    has_bias |= op.steps[i] == kAitStepBias;
    has_scale |= op.steps[i] == kAitStepScale;
    has_residual |= op.steps[i] == kAitStepResidual;
  }
  if (!has_bias) bias = nullptr;
  if (!has_scale) scale = nullptr;
  if (!has_residual) residual = nullptr;
  switch (op.kind) {
    case kAitProfileGemm: {
      const AitGemmArgs args{p.m, p.n, p.k, o.a.ptr, o.b.ptr, bias, residual, o.d.ptr};
      return cand.gemm(args, o.workspace.ptr, o.workspace.bytes, stream);
    }
#ifdef AIT_PROFILE_HAS_BATCHED
    case kAitProfileBatchedGemm: {
      const AitBatchedGemmArgs args{p.l, p.m, p.n, p.k, o.a.ptr, o.b.ptr, bias, residual, o.d.ptr};
      return cand.batched_gemm(args, o.workspace.ptr, o.workspace.bytes, stream);
    }
#endif
    case kAitProfileConv: {
      const AitConvArgs args{p.cn, p.h, p.w, p.c, p.ck, p.r, p.s, p.p, p.q,
                             {p.pads[0], p.pads[1], p.pads[2], p.pads[3]}, {p.strides[0], p.strides[1]},
                             {p.dilations[0], p.dilations[1]}, p.groups, o.a.ptr, o.b.ptr, bias, scale, residual, o.d.ptr};
      return cand.conv(args, o.workspace.ptr, o.workspace.bytes, stream);
    }
    default:
      return "unknown op kind";
  }
}

void run_reference(const AitProfileOp& op, const AitProfileProblem& p, Operands& o, cudaStream_t stream) {
  Steps st{};
  st.count = op.num_steps;
  for (int i = 0; i < op.num_steps; ++i) st.step[i] = op.steps[i];
  const Sizes z = sizes_of(op, p);
  const auto* bias = o.bias.as<__half>();
  const auto* scale = o.scale.as<__half>();
  const auto* residual = o.residual.as<__half>();
  if (op.kind == kAitProfileConv)
    reference_conv<<<grid_for(z.out), 256, 0, stream>>>(p, o.a.as<__half>(), o.b.as<__half>(), st, bias, scale, residual,
                                                         o.reference.as<float>());
  else {
    const bool batched = op.kind == kAitProfileBatchedGemm;
    reference_gemm<<<grid_for(z.out), 256, 0, stream>>>(batched ? p.l : 1, p.m, p.n, p.k, o.a.as<__half>(), o.b.as<__half>(),
                                                         batched ? size_t(p.n) * p.k : 0, batched && op.layout_b_row, st, bias,
                                                         scale, residual, o.reference.as<float>());
  }
}

// Relative L2 error of the candidate's fp16 output against the fp32 reference (host side; smallest batch only).
double relative_l2(size_t count, Operands& o) {
  std::vector<__half> got(count);
  std::vector<float> want(count);
  cudaMemcpy(got.data(), o.d.ptr, count * sizeof(__half), cudaMemcpyDeviceToHost);
  cudaMemcpy(want.data(), o.reference.ptr, count * sizeof(float), cudaMemcpyDeviceToHost);
  double num = 0, den = 0;
  for (size_t i = 0; i < count; ++i) {
    const double g = __half2float(got[i]), w = want[i];
    if (!std::isfinite(g)) return INFINITY;
    num += (g - w) * (g - w);
    den += w * w;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Result {
  std::string json;
};

void emit(std::vector<std::string>& out, const AitProfileOp& op, const AitProfileCandidate& cand, int batch, const char* status,
          double median_us, const std::string& message) {
  std::string s = "{\"signature\":" + json_string(op.signature) + ",\"candidate\":" + json_string(cand.name) +
                  ",\"batch\":" + std::to_string(batch) + ",\"status\":\"" + status + "\"";
  if (median_us >= 0) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", median_us);
    s += ",\"medianUs\":" + std::string(buf);
  }
  if (!message.empty()) s += ",\"message\":" + json_string(message.c_str());
  s += ",\"config\":" + std::string(cand.config) + "}";
  out.push_back(s);
}

}  // namespace

int main(int argc, char** argv) {
  int worker = 0, workers = 1, iterations = 10, warmup = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = atoi(argv[i + 1]);
    if (flag == "--worker") worker = value;
    else if (flag == "--workers") workers = value;
    else if (flag == "--iterations") iterations = value;
    else if (flag == "--warmup") warmup = value;
    else {
      fprintf(stderr, "usage: ait_profiler [--worker K --workers N] [--iterations I] [--warmup W]\n");
      return 2;
    }
  }
  if (workers < 1 || worker < 0 || worker >= workers || iterations < 1 || warmup < 0) {
    fprintf(stderr, "ait_profiler: bad --worker/--workers/--iterations/--warmup\n");
    return 2;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    fprintf(stderr, "ait_profiler: no CUDA device\n");
    return 1;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  Operands o;
  o.flush.reserve(size_t(std::max(prop.l2CacheSize, 1 << 20)) * 2);
  std::vector<std::string> measurements;
  bool context_lost = false;
  for (int index = worker; index < ait_profile_num_ops; index += workers) {
    const AitProfileOp& op = ait_profile_ops[index];
    fprintf(stderr, "[%d/%d] %s: %d candidates at %d batches\n", index + 1, ait_profile_num_ops, op.signature, op.num_candidates,
            op.num_problems);
    // buffers for the largest problem of the op
    Sizes most{0, 0, 0, 0};
    size_t workspace = 1 << 20;
    for (int i = 0; i < op.num_problems; ++i) {
      const Sizes z = sizes_of(op, op.problems[i]);
      most = {std::max(most.a, z.a), std::max(most.b, z.b), std::max(most.vec, z.vec), std::max(most.out, z.out)};
      workspace = std::max(workspace, op.problems[i].workspace_bytes);
    }
    o.a.reserve(most.a * 2);
    o.b.reserve(most.b * 2);
    o.bias.reserve(most.vec * 2);
    o.scale.reserve(most.vec * 2);
    o.residual.reserve(most.out * 2);
    o.d.reserve(most.out * 2);
    o.reference.reserve(sizes_of(op, op.problems[0]).out * 4);
    o.workspace.reserve(workspace);
    if (!o.a.ptr || !o.b.ptr || !o.bias.ptr || !o.scale.ptr || !o.residual.ptr || !o.d.ptr || !o.reference.ptr || !o.workspace.ptr) {
      for (int c = 0; c < op.num_candidates; ++c)
        for (int i = 0; i < op.num_problems; ++i)
          emit(measurements, op, op.candidates[c], op.problems[i].batch, "launch-failed", -1, "out of GPU memory for the operands");
      continue;
    }
    // inputs scaled so that sums over K stay well inside fp16 (|value| ~ 1)
    const float range = 1.f / std::sqrt(float(std::max(1, op.kind == kAitProfileConv ? op.problems[0].k : op.problems[0].k)));
    fill_random<<<grid_for(most.a), 256, 0, stream>>>(o.a.as<__half>(), most.a, 1u + index, 1.f);
    fill_random<<<grid_for(most.b), 256, 0, stream>>>(o.b.as<__half>(), most.b, 2u + index, range * 1.7f);
    fill_random<<<grid_for(most.vec), 256, 0, stream>>>(o.bias.as<__half>(), most.vec, 3u + index, 0.5f);
    fill_random<<<grid_for(most.vec), 256, 0, stream>>>(o.scale.as<__half>(), most.vec, 4u + index, 1.f);
    fill_random<<<grid_for(most.out), 256, 0, stream>>>(o.residual.as<__half>(), most.out, 5u + index, 0.5f);
    run_reference(op, op.problems[0], o, stream);
    cudaStreamSynchronize(stream);
    for (int c = 0; c < op.num_candidates; ++c) {
      const AitProfileCandidate& cand = op.candidates[c];
      const bool built = op.kind == kAitProfileConv ? cand.conv != nullptr
                         : op.kind == kAitProfileBatchedGemm ? cand.batched_gemm != nullptr
                                                             : cand.gemm != nullptr;
      for (int i = 0; i < op.num_problems; ++i) {
        const AitProfileProblem& p = op.problems[i];
        if (!built) {
          emit(measurements, op, cand, p.batch, "build-failed", -1, "its translation unit did not compile on this host (see the build log)");
          continue;
        }
        if (context_lost) {
          emit(measurements, op, cand, p.batch, "launch-failed", -1, "not run: an earlier launch left the CUDA context unusable");
          continue;
        }
        const char* failure = launch(op, cand, p, o, stream);
        cudaError_t err = failure ? cudaSuccess : cudaStreamSynchronize(stream);
        if (!failure && err == cudaSuccess) err = cudaGetLastError();
        if (failure || err != cudaSuccess) {
          if (err != cudaSuccess) {
            context_lost = cudaDeviceSynchronize() != cudaSuccess;
            failure = cudaGetErrorString(err);
          }
          emit(measurements, op, cand, p.batch, "launch-failed", -1, failure);
          continue;
        }
        if (i == 0) {
          const double error = relative_l2(sizes_of(op, p).out, o);
          if (!(error <= kTolerance)) {
            char buf[128];
            snprintf(buf, sizeof buf, "relative L2 error %.3g against the reference (tolerance %.0e)", error, kTolerance);
            for (int j = 0; j < op.num_problems; ++j) emit(measurements, op, cand, op.problems[j].batch, "mismatch", -1, buf);
            break;
          }
        }
        for (int w = 0; w < warmup; ++w) launch(op, cand, p, o, stream);
        std::vector<float> times;
        for (int it = 0; it < iterations; ++it) {
          cudaMemsetAsync(o.flush.ptr, it & 0xff, o.flush.bytes, stream);
          cudaEventRecord(start, stream);
          launch(op, cand, p, o, stream);
          cudaEventRecord(stop, stream);
          cudaEventSynchronize(stop);
          float ms = 0;
          cudaEventElapsedTime(&ms, start, stop);
          times.push_back(ms);
        }
        err = cudaGetLastError();
        if (err != cudaSuccess) {
          emit(measurements, op, cand, p.batch, "launch-failed", -1, cudaGetErrorString(err));
          continue;
        }
        std::sort(times.begin(), times.end());
        emit(measurements, op, cand, p.batch, "ok", times[times.size() / 2] * 1000.0, "");
      }
    }
  }
  char cuda[32], drv[32];
  snprintf(cuda, sizeof cuda, "%d.%d", runtime / 1000, (runtime % 1000) / 10);
  snprintf(drv, sizeof drv, "%d.%d", driver / 1000, (driver % 1000) / 10);
  std::string out = "{\"format\":\"ait-profiler\",\"version\":1,\"worker\":" + std::to_string(worker) +
                    ",\"workers\":" + std::to_string(workers) + ",\"device\":{\"gpu\":" + json_string(prop.name) +
                    ",\"sms\":" + std::to_string(prop.multiProcessorCount) + ",\"driver\":" + json_string(drv) +
                    ",\"cuda\":" + json_string(cuda) + ",\"cutlass\":" + json_string(ait_profile_cutlass_version) +
                    "},\"measurements\":[";
  for (size_t i = 0; i < measurements.size(); ++i) out += (i ? "," : "") + measurements[i];
  out += "]}";
  printf("%s\n", out.c_str());
  return 0;
}
