// ait_profiler (ROCm): times every candidate Composable Kernel instance of every signature in the table
// (ait_ck_profiler.h) on the real problem sizes of each profiled batch, and checks each candidate's output against
// the table's fp32 reference. Prints one JSON line last, in the CUDA profiler's format (profiler/ait_profiler.cu):
//   {"format":"ait-profiler","version":1,"device":{gpu,sms,driver,cuda,cutlass},"measurements":[{signature,
//    candidate,batch,status,medianUs?,message?,config}]}
// sms is the compute unit count, cuda the HIP runtime version, cutlass the CK release (AIT_CK_RELEASE, from the
// Makefile). status: ok | build-failed (its translation unit did not build: a weak null entry point) |
// launch-failed (CK's IsSupportedArgument refused the problem, or the launch failed) | mismatch (relative L2 error
// against the reference above the tolerance at the smallest batch). A failing candidate is reported, never fatal,
// unless it leaves the device unusable: then what follows is reported as failed.
//
// Timing: per candidate and batch, `--warmup` launches, then `--iterations` launches each timed alone with hip events
// after writing a buffer twice the L2 size, median reported. `--worker K --workers N` profiles the ops whose index is
// K mod N (one process per GPU, each pinned by HIP_VISIBLE_DEVICES).
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ait_ck_profiler.h"

#ifndef AIT_CK_RELEASE
#define AIT_CK_RELEASE "unknown"
#endif

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
    if (ptr) (void)hipFree(ptr);
    ptr = nullptr;
    bytes = 0;
    if (hipMalloc(&ptr, need) == hipSuccess) bytes = need;
  }
  __half* half() const { return static_cast<__half*>(ptr); }
};

// Elements of the op's input (a), second input (b: weight, gamma + beta), and output.
struct Sizes {
  size_t a, b, out;
};

Sizes sizes_of(const AitCkProfileOp& op, const AitCkProfileProblem& p) {
  const AitCkProfileArgs& x = p.args;
  switch (op.kind) {
    case kAitCkGemm:
    case kAitCkBatchedGemm: {
      const size_t l = size_t(x.gemm.batch);
      return {l * x.gemm.m * x.gemm.k, (op.kind == kAitCkBatchedGemm ? l : 1) * x.gemm.n * x.gemm.k, l * x.gemm.m * x.gemm.n};
    }
    case kAitCkConv:
      return {size_t(x.conv.n) * x.conv.h * x.conv.w * x.conv.c, size_t(x.conv.k) * x.conv.r * x.conv.s * (x.conv.c / x.conv.group),
              size_t(x.conv.n) * x.conv.p * x.conv.q * x.conv.k};
    case kAitCkLayernorm:
    case kAitCkSoftmax:
      return {size_t(x.row.rows) * x.row.n, 2 * size_t(x.row.n), size_t(x.row.rows) * x.row.n};
    case kAitCkAttention: {
      const size_t tokens = size_t(x.attention.batch) * x.attention.sequence, hd = size_t(x.attention.heads) * x.attention.head_dim;
      return {tokens * 3 * hd, 1, tokens * hd};
    }
    default:
      return {0, 0, 0};
  }
}

struct Operands {
  Buffer a, b, operands, out, reference, flush;
};

// The problem's arguments with the operands' pointers: D_j (GEMM, conv) at j output sizes into `operands` (a
// per-channel D reads its first n).
AitCkProfileArgs with_pointers(const AitCkProfileOp& op, const AitCkProfileProblem& p, const Operands& o) {
  AitCkProfileArgs x = p.args;
  const size_t out = sizes_of(op, p).out;
  switch (op.kind) {
    case kAitCkGemm:
    case kAitCkBatchedGemm:
      x.gemm.a = o.a.ptr;
      x.gemm.b = o.b.ptr;
      x.gemm.e = o.out.ptr;
      for (int j = 0; j < op.num_operands; ++j) x.gemm.d[j] = o.operands.half() + j * out;
      break;
    case kAitCkConv:
      x.conv.x = o.a.ptr;
      x.conv.weight = o.b.ptr;
      x.conv.y = o.out.ptr;
      for (int j = 0; j < op.num_operands; ++j) x.conv.d[j] = o.operands.half() + j * out;
      break;
    case kAitCkLayernorm:
    case kAitCkSoftmax:
      x.row.x = o.a.ptr;
      x.row.gamma = o.b.ptr;
      x.row.beta = o.b.half() + x.row.n;
      x.row.y = o.out.ptr;
      break;
    case kAitCkAttention:
      x.attention.q = o.a.half() + p.qkv_offsets[0];
      x.attention.k = o.a.half() + p.qkv_offsets[1];
      x.attention.v = o.a.half() + p.qkv_offsets[2];
      x.attention.o = o.out.ptr;
      break;
  }
  return x;
}

bool built(const AitCkProfileOp& op, const AitCkProfileCandidate& c) {
  switch (op.kind) {
    case kAitCkGemm:
    case kAitCkBatchedGemm: return c.gemm != nullptr;
    case kAitCkConv: return c.conv != nullptr;
    case kAitCkLayernorm:
    case kAitCkSoftmax: return c.row != nullptr;
    case kAitCkAttention: return c.attention != nullptr;
    default: return false;
  }
}

const char* launch(const AitCkProfileOp& op, const AitCkProfileCandidate& c, const AitCkProfileArgs& x, hipStream_t stream) {
  switch (op.kind) {
    case kAitCkGemm:
    case kAitCkBatchedGemm: return c.gemm(x.gemm, stream);
    case kAitCkConv: return c.conv(x.conv, stream);
    case kAitCkLayernorm:
    case kAitCkSoftmax: return c.row(x.row, stream);
    case kAitCkAttention: return c.attention(x.attention, stream);
    default: return "unknown op kind";
  }
}

// Relative L2 error of the candidate's fp16 output against the fp32 reference (host side; smallest batch only).
double relative_l2(size_t count, Operands& o) {
  std::vector<__half> got(count);
  std::vector<float> want(count);
  (void)hipMemcpy(got.data(), o.out.ptr, count * sizeof(__half), hipMemcpyDeviceToHost);
  (void)hipMemcpy(want.data(), o.reference.ptr, count * sizeof(float), hipMemcpyDeviceToHost);
  double num = 0, den = 0;
  for (size_t i = 0; i < count; ++i) {
    const double g = __half2float(got[i]), w = want[i];
    if (!std::isfinite(g)) return INFINITY;
    num += (g - w) * (g - w);
    den += w * w;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

void emit(std::vector<std::string>& out, const AitCkProfileOp& op, const AitCkProfileCandidate& c, int batch, const char* status,
          double median_us, const std::string& message) {
  std::string s = "{\"signature\":" + json_string(op.signature) + ",\"candidate\":" + json_string(c.name) +
                  ",\"batch\":" + std::to_string(batch) + ",\"status\":\"" + status + "\"";
  if (median_us >= 0) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", median_us);
    s += ",\"medianUs\":" + std::string(buf);
  }
  if (!message.empty()) s += ",\"message\":" + json_string(message.c_str());
  s += ",\"config\":" + std::string(c.config) + "}";
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
  if (argc % 2 == 0 || workers < 1 || worker < 0 || worker >= workers || iterations < 1 || warmup < 0) {
    fprintf(stderr, "ait_profiler: bad --worker/--workers/--iterations/--warmup\n");
    return 2;
  }
  hipDeviceProp_t prop{};
  if (hipGetDeviceProperties(&prop, 0) != hipSuccess) {
    fprintf(stderr, "ait_profiler: no HIP device\n");
    return 1;
  }
  int driver = 0, runtime = 0;
  (void)hipDriverGetVersion(&driver);
  (void)hipRuntimeGetVersion(&runtime);
  hipStream_t stream;
  hipEvent_t start, stop;
  if (hipStreamCreate(&stream) != hipSuccess || hipEventCreate(&start) != hipSuccess || hipEventCreate(&stop) != hipSuccess) {
    fprintf(stderr, "ait_profiler: cannot create a stream and events\n");
    return 1;
  }
  Operands o;
  o.flush.reserve(size_t(std::max(prop.l2CacheSize, 1 << 20)) * 2);
  std::vector<std::string> measurements;
  bool device_lost = false;
  for (int index = worker; index < ait_ck_profile_num_ops; index += workers) {
    const AitCkProfileOp& op = ait_ck_profile_ops[index];
    fprintf(stderr, "[%d/%d] %s: %d candidates at %d batches\n", index + 1, ait_ck_profile_num_ops, op.signature, op.num_candidates,
            op.num_problems);
    Sizes most{1, 1, 1};
    for (int i = 0; i < op.num_problems; ++i) {
      const Sizes z = sizes_of(op, op.problems[i]);
      most = {std::max(most.a, z.a), std::max(most.b, z.b), std::max(most.out, z.out)};
    }
    o.a.reserve(most.a * 2);
    o.b.reserve(most.b * 2);
    o.operands.reserve(most.out * 2 * AIT_CK_MAX_D);
    o.out.reserve(most.out * 2);
    o.reference.reserve(sizes_of(op, op.problems[0]).out * 4);
    if (!o.a.ptr || !o.b.ptr || !o.operands.ptr || !o.out.ptr || !o.reference.ptr) {
      for (int c = 0; c < op.num_candidates; ++c)
        for (int i = 0; i < op.num_problems; ++i)
          emit(measurements, op, op.candidates[c], op.problems[i].batch, "launch-failed", -1, "out of GPU memory for the operands");
      continue;
    }
    // inputs scaled so that sums over K stay well inside fp16 (|value| ~ 1)
    const int k = op.kind == kAitCkConv ? op.problems[0].args.conv.r * op.problems[0].args.conv.s * op.problems[0].args.conv.c
                  : op.kind == kAitCkAttention ? op.problems[0].args.attention.head_dim
                                               : std::max(1, op.problems[0].args.gemm.k);
    const float range = 1.f / std::sqrt(float(std::max(1, k)));
    fill_random<<<ait_ck_grid(most.a), 256, 0, stream>>>(o.a.half(), most.a, 1u + index, 1.f);
    fill_random<<<ait_ck_grid(most.b), 256, 0, stream>>>(o.b.half(), most.b, 2u + index, range * 1.7f);
    fill_random<<<ait_ck_grid(most.out * AIT_CK_MAX_D), 256, 0, stream>>>(o.operands.half(), most.out * AIT_CK_MAX_D, 3u + index, 0.5f);
    op.reference(with_pointers(op, op.problems[0], o), static_cast<float*>(o.reference.ptr), stream);
    (void)hipStreamSynchronize(stream);
    for (int c = 0; c < op.num_candidates; ++c) {
      const AitCkProfileCandidate& cand = op.candidates[c];
      for (int i = 0; i < op.num_problems; ++i) {
        const AitCkProfileProblem& p = op.problems[i];
        if (!built(op, cand)) {
          emit(measurements, op, cand, p.batch, "build-failed", -1, "its translation unit did not compile on this host (see the build log)");
          continue;
        }
        if (device_lost) {
          emit(measurements, op, cand, p.batch, "launch-failed", -1, "not run: an earlier launch left the device unusable");
          continue;
        }
        const AitCkProfileArgs args = with_pointers(op, p, o);
        const char* failure = launch(op, cand, args, stream);
        hipError_t err = failure ? hipSuccess : hipStreamSynchronize(stream);
        if (!failure && err == hipSuccess) err = hipGetLastError();
        if (failure || err != hipSuccess) {
          if (err != hipSuccess) {
            device_lost = hipDeviceSynchronize() != hipSuccess;
            failure = hipGetErrorString(err);
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
        for (int w = 0; w < warmup; ++w) launch(op, cand, args, stream);
        std::vector<float> times;
        for (int it = 0; it < iterations; ++it) {
          (void)hipMemsetAsync(o.flush.ptr, it & 0xff, o.flush.bytes, stream);
          (void)hipEventRecord(start, stream);
          launch(op, cand, args, stream);
          (void)hipEventRecord(stop, stream);
          (void)hipEventSynchronize(stop);
          float ms = 0;
          (void)hipEventElapsedTime(&ms, start, stop);
          times.push_back(ms);
        }
        err = hipGetLastError();
        if (err != hipSuccess) {
          emit(measurements, op, cand, p.batch, "launch-failed", -1, hipGetErrorString(err));
          continue;
        }
        std::sort(times.begin(), times.end());
        emit(measurements, op, cand, p.batch, "ok", times[times.size() / 2] * 1000.0, "");
      }
    }
  }
  char hip[32], drv[32];
  snprintf(hip, sizeof hip, "%d.%d", runtime / 10000000, (runtime / 100000) % 100);
  snprintf(drv, sizeof drv, "%d", driver);
  std::string out = "{\"format\":\"ait-profiler\",\"version\":1,\"worker\":" + std::to_string(worker) +
                    ",\"workers\":" + std::to_string(workers) + ",\"device\":{\"gpu\":" + json_string(prop.name) +
                    ",\"sms\":" + std::to_string(prop.multiProcessorCount) + ",\"driver\":" + json_string(drv) +
                    ",\"cuda\":" + json_string(hip) + ",\"cutlass\":" + json_string("ck " AIT_CK_RELEASE) + "},\"measurements\":[";
  for (size_t i = 0; i < measurements.size(); ++i) out += (i ? "," : "") + measurements[i];
  out += "]}";
  printf("%s\n", out.c_str());
  return 0;
}
