// GPU check of the AIT runtime through its C ABI, driving example_model.cu.
//
// Build and run (from the repository root; -arch=sm_80 for Ampere/Ada):
//   R=compiler/backends/cuda; nvcc -std=c++17 -O2 -arch=sm_90 -I$R/runtime -I$R/kernels $R/runtime/ait_runtime.cu $R/runtime/safetensors.cc $R/tests/example_model.cu $R/tests/runtime_check.cu -o runtime_check && ./runtime_check
// Checks: refusing to run without weights; binding by name; loading a safetensors file (F32 data converted to the
// model's F16); results against a CPU reference at batch 1 and 3; graph mode (capture, replay, re-capture on a new
// batch and on new pointers); profiling JSON with the op ids; error messages naming the op or weight.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ait_runtime.h"

#define CHECK_CUDA(expr)                                                                                    \
  do {                                                                                                      \
    cudaError_t status_ = (expr);                                                                           \
    if (status_ != cudaSuccess) {                                                                           \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(status_)); \
      std::exit(2);                                                                                         \
    }                                                                                                       \
  } while (0)

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
  std::printf("%-4s %s\n", ok ? "pass" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

constexpr int64_t kTokens = 197, kChannels = 768;

// Writes a safetensors file with F32 tensors (the runtime converts them to the model's F16 weights).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, std::vector<float>>>& tensors) {
  std::string header = "{";
  size_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    size_t bytes = tensors[i].second.size() * 4;
    header += (i ? "," : "") + std::string("\"") + tensors[i].first + "\":{\"dtype\":\"F32\",\"shape\":[" +
              std::to_string(tensors[i].second.size()) + "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::ofstream f(path, std::ios::binary);
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(header.data(), header.size());
  for (auto& t : tensors) f.write(reinterpret_cast<const char*>(t.second.data()), t.second.size() * 4);
}

double relative_l2(const std::vector<__half>& got, const std::vector<double>& want) {
  double e = 0, r = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    double g = __half2float(got[i]);
    if (!std::isfinite(g)) return INFINITY;
    e += (g - want[i]) * (g - want[i]);
    r += want[i] * want[i];
  }
  return std::sqrt(e / r);
}

std::vector<double> reference(const std::vector<double>& x, int64_t batch, const std::vector<float>& gamma,
                              const std::vector<float>& beta, const std::vector<float>& bias) {
  std::vector<double> y(batch * kTokens * kChannels), t(kChannels);
  for (int64_t r = 0; r < batch * kTokens; ++r) {
    const double* row = &x[r * kChannels];
    double mean = 0, var = 0;
    for (int64_t c = 0; c < kChannels; ++c) mean += row[c];
    mean /= kChannels;
    for (int64_t c = 0; c < kChannels; ++c) var += (row[c] - mean) * (row[c] - mean);
    var /= kChannels;
    double m = -INFINITY, sum = 0;
    for (int64_t c = 0; c < kChannels; ++c) {
      // the kernel rounds the layernorm output to fp16 before the next op; so does the reference
      double ln = __half2float(__float2half_rn(float((row[c] - mean) / std::sqrt(var + 1e-6) * double(__half2float(__float2half_rn(gamma[c]))) +
                                                     double(__half2float(__float2half_rn(beta[c]))))));
      double v = ln + __half2float(__float2half_rn(bias[c]));
      t[c] = __half2float(__float2half_rn(float(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))))));
      m = std::max(m, t[c]);
    }
    for (int64_t c = 0; c < kChannels; ++c) sum += std::exp(t[c] - m);
    for (int64_t c = 0; c < kChannels; ++c) y[r * kChannels + c] = std::exp(t[c] - m) / sum;
  }
  return y;
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> gamma(kChannels), beta(kChannels), bias(kChannels);
  for (auto* v : {&gamma, &beta, &bias})
    for (float& e : *v) e = dist(rng);
  const int64_t max_elements = 8 * kTokens * kChannels;
  std::vector<__half> x(max_elements);
  std::vector<double> xd(max_elements);
  for (int64_t i = 0; i < max_elements; ++i) {
    x[i] = __float2half_rn(dist(rng) * 3.f);
    xd[i] = __half2float(x[i]);
  }

  AITModel* model = nullptr;
  expect(AITModelCreate("/nonexistent/weights.safetensors", &model) == AIT_WEIGHTS_ERROR && model == nullptr &&
             std::strstr(AITGetLastError(), "/nonexistent/weights.safetensors"),
         std::string("create with a missing weights file fails naming the file: ") + AITGetLastError());
  expect(AITModelCreate(nullptr, &model) == AIT_OK, "create without weights");
  expect(AITModelGetNumInputs(model) == 1 && std::strcmp(AITModelGetInputName(model, 0), "x") == 0 &&
             AITModelGetInputDType(model, 0) == AIT_FLOAT16,
         "input name and dtype");
  int64_t shape[8];
  int rank = 0, batch_axis = -2;
  expect(AITModelGetOutputMaxShape(model, 0, shape, 8, &rank, &batch_axis) == AIT_OK && rank == 3 && shape[0] == 8 &&
             shape[2] == kChannels && batch_axis == 0,
         "output max shape");

  __half *d_x, *d_y, *d_y2;
  CHECK_CUDA(cudaMalloc(&d_x, max_elements * sizeof(__half)));
  CHECK_CUDA(cudaMalloc(&d_y, max_elements * sizeof(__half)));
  CHECK_CUDA(cudaMalloc(&d_y2, max_elements * sizeof(__half)));
  CHECK_CUDA(cudaMemcpy(d_x, x.data(), max_elements * sizeof(__half), cudaMemcpyHostToDevice));
  AITModelSetInput(model, 0, d_x);
  AITModelSetOutput(model, 0, d_y);
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));

  AITStatus s = AITModelRun(model, 1, stream);
  expect(s == AIT_NOT_READY && std::strstr(AITModelGetLastError(model), "ln.gamma"),
         std::string("run refuses without weights: ") + AITModelGetLastError(model));
  expect(AITModelBindWeight(model, "nope", gamma.data(), 4, 0) == AIT_INVALID_ARGUMENT &&
             std::strstr(AITModelGetLastError(model), "nope"),
         "binding an unknown weight names it");
  std::vector<__half> gamma_half(kChannels);
  for (int64_t c = 0; c < kChannels; ++c) gamma_half[c] = __float2half_rn(gamma[c]);
  expect(AITModelBindWeight(model, "ln.gamma", gamma_half.data(), kChannels * 2, 0) == AIT_OK, "bind ln.gamma by name");
  expect(AITModelGetNumUnboundWeights(model) == 2, "two weights still unbound");

  const std::string path = "/tmp/ait_runtime_check.safetensors";
  write_safetensors(path, {{"ln.beta", beta}, {"bias", bias}, {"unrelated", {1.f, 2.f}}});
  int bound = 0;
  expect(AITModelLoadWeights(model, path.c_str(), &bound) == AIT_OK && bound == 2, "load F32 safetensors into F16 weights");
  expect(AITModelGetNumUnboundWeights(model) == 0, "all weights bound");

  auto run_and_compare = [&](int64_t batch, __half* out, const char* label) {
    CHECK_CUDA(cudaMemset(out, 0xFF, max_elements * sizeof(__half)));
    AITStatus st = AITModelRun(model, batch, stream);
    CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<__half> got(batch * kTokens * kChannels);
    CHECK_CUDA(cudaMemcpy(got.data(), out, got.size() * sizeof(__half), cudaMemcpyDeviceToHost));
    std::vector<double> want = reference(xd, batch, gamma, beta, bias);
    double err = relative_l2(got, want);
    char line[256];
    std::snprintf(line, sizeof line, "%s batch %lld: status %d, rel L2 %.3e", label, static_cast<long long>(batch), st, err);
    expect(st == AIT_OK && err < 5e-3, line);
  };
  run_and_compare(1, d_y, "eager");
  run_and_compare(3, d_y, "eager");
  expect(AITModelRun(model, 9, stream) == AIT_INVALID_ARGUMENT, "batch above max is refused");

  AITModelSetGraphMode(model, 1);
  run_and_compare(2, d_y, "graph (capture)");
  run_and_compare(2, d_y, "graph (replay)");
  run_and_compare(5, d_y, "graph (new batch)");
  AITModelSetOutput(model, 0, d_y2);
  run_and_compare(5, d_y2, "graph (new output pointer)");
  AITModelSetGraphMode(model, 0);

  AITModelSetProfiling(model, 1);
  for (int i = 0; i < 3; ++i) AITModelRun(model, 8, stream);
  size_t length = 0;
  AITModelGetProfileJson(model, nullptr, 0, &length);
  std::string json(length + 1, '\0');
  expect(AITModelGetProfileJson(model, &json[0], json.size(), &length) == AIT_OK, "profile JSON");
  json.resize(length);
  expect(json.find("\"runs\":3") != std::string::npos && json.find("\"id\":\"n0\"") != std::string::npos &&
             json.find("\"id\":\"n2\"") != std::string::npos,
         "profile has 3 runs and op ids n0..n2");
  std::printf("%s\n", json.c_str());
  expect(AITModelDestroy(model) == AIT_OK, "destroy");
  CHECK_CUDA(cudaFree(d_x));
  CHECK_CUDA(cudaFree(d_y));
  CHECK_CUDA(cudaFree(d_y2));
  CHECK_CUDA(cudaStreamDestroy(stream));
  std::printf("\n%s: %d failing check(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
