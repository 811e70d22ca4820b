// GPU check of input dims (model ABI 5: an input axis sized by a symbol besides the batch, HF's seq), through the
// runtime's C ABI, on a hand-written model in the generated form: y[b, j] = x[b, j] * (j + 1), x and y float32
// [batch <= 4, seq <= 8], seq in LaunchContext::dims[0] (set by the runtime from AITModelSetInputShape).
//
// Build and run (from the repository root; -arch=sm_80 for Ampere/Ada):
//   R=compiler/backends/cuda; nvcc -std=c++17 -O2 -arch=sm_90 -I$R/runtime -I$R/kernels $R/runtime/ait_runtime.cu $R/runtime/safetensors.cc $R/tests/input_dims_check.cu -o input_dims_check && ./input_dims_check
// Checks, with CUDA graphs off and on: runs at seq 3, 8, 5, 3 give the right values and AITModelGetOutputShape
// [2, seq] (in graph mode a new seq must capture again: a graph replayed at another seq computes the wrong rows);
// an unset shape runs at the max; AITModelSetInputShape refuses a wrong rank, a seq past its bounds and a batch
// past the max; AITModelHasRuntimeDims is 0 (input dims are not sizes the data decides).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ait_model.h"
#include "ait_runtime.h"

namespace {

constexpr int64_t kMaxBatch = 4, kMaxSeq = 8;

__global__ void scale_by_position(const float* x, float* y, int64_t seq, int64_t count) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count) y[i] = x[i] * static_cast<float>(i % seq + 1);
}

// graph.json op n0: y = x * (position + 1); seq from the run's dims.
const char* launch_n0(const ait::LaunchContext& c) {
  const int64_t seq = c.dims[0];
  const int64_t count = c.batch * seq;
  scale_by_position<<<static_cast<unsigned>((count + 127) / 128), 128, 0, c.stream>>>(static_cast<const float*>(c.inputs[0]),
                                                                                     static_cast<float*>(c.outputs[0]), seq, count);
  return nullptr;
}

void output_shape(const ait::LaunchContext& c, int32_t index, int64_t* shape) {
  if (index == 0) shape[1] = c.dims[0];
}

const ait::IoDescription kInputs[] = {{"x", ait::DType::kFloat32, 2, {kMaxBatch, kMaxSeq}, 0}};
const ait::IoDescription kOutputs[] = {{"y", ait::DType::kFloat32, 2, {kMaxBatch, kMaxSeq}, 0}};
const ait::OpDescription kOps[] = {{"n0", "Mul by position", "scale_by_position", launch_n0, nullptr}};
const char* const kDimNames[] = {"seq"};
const ait::InputDimDescription kInputDims[] = {{0, 0, 1, 1, kMaxSeq}};
const ait::ModelDescription kModel = {ait::kModelAbiVersion, "input_dims_model", kMaxBatch, kInputs, 1, kOutputs, 1, nullptr, 0,
                                      kOps, 1, 0, 0, nullptr, 0, 1, kDimNames, output_shape, kInputDims, 1};

int failures = 0;
void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

}  // namespace

extern "C" const ait::ModelDescription* ait_model_description() { return &kModel; }

int main() {
  AITModel* model = nullptr;
  if (AITModelCreate(nullptr, &model) != AIT_OK) {
    std::printf("FAIL create: %s\n", AITGetLastError());
    return 1;
  }
  float *x = nullptr, *y = nullptr;
  cudaMalloc(&x, kMaxBatch * kMaxSeq * sizeof(float));
  cudaMalloc(&y, kMaxBatch * kMaxSeq * sizeof(float));
  AITModelSetInput(model, 0, x);
  AITModelSetOutput(model, 0, y);
  check(AITModelHasRuntimeDims(model) == 0, "input dims are not data-decided dims");
  check(AITModelGetNumInputDims(model) == 1, "one input dim");
  const char* name = nullptr;
  int input = -1, axis = -1;
  int64_t lo = 0, hi = 0;
  check(AITModelGetInputDim(model, 0, &name, &input, &axis, &lo, &hi) == AIT_OK && std::string(name) == "seq" && input == 0 &&
            axis == 1 && lo == 1 && hi == kMaxSeq,
        "AITModelGetInputDim");
  const int64_t batch = 2;
  for (int graph : {0, 1}) {
    AITModelSetGraphMode(model, graph);
    for (int64_t seq : {3, 8, 5, 3, 0}) {
      const bool unset = seq == 0;  // forget the shape: the max
      const int64_t s = unset ? kMaxSeq : seq;
      const int64_t shape[2] = {batch, s};
      check(AITModelSetInputShape(model, 0, unset ? nullptr : shape, unset ? -1 : 2) == AIT_OK, "set shape");
      std::vector<float> host(batch * s), out(kMaxBatch * kMaxSeq, NAN);
      for (size_t i = 0; i < host.size(); ++i) host[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
      cudaMemcpy(x, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice);
      cudaMemcpy(y, out.data(), out.size() * sizeof(float), cudaMemcpyHostToDevice);  // poisoned
      const AITStatus run = AITModelRun(model, batch, nullptr);
      cudaDeviceSynchronize();
      cudaMemcpy(out.data(), y, out.size() * sizeof(float), cudaMemcpyDeviceToHost);
      int64_t got[2] = {0, 0};
      int rank = 0;
      AITModelGetOutputShape(model, 0, got, 2, &rank);
      bool values = run == AIT_OK;
      for (int64_t i = 0; i < batch * s; ++i) values = values && out[i] == host[i] * static_cast<float>(i % s + 1);
      const std::string label = std::string(graph ? "graph" : "direct") + " seq " + std::to_string(s) + (unset ? " (unset)" : "");
      check(values, label + ": values");
      check(rank == 2 && got[0] == batch && got[1] == s, label + ": output shape");
    }
  }
  const int64_t rank3[3] = {2, 3, 1}, long_seq[2] = {2, 9}, big_batch[2] = {5, 3};
  check(AITModelSetInputShape(model, 0, rank3, 3) == AIT_INVALID_ARGUMENT, "a wrong rank is refused");
  check(AITModelSetInputShape(model, 0, long_seq, 2) == AIT_INVALID_ARGUMENT &&
            std::strstr(AITModelGetLastError(model), "must be in 1..8, got 9") != nullptr,
        "a seq past its max is refused, naming the bounds");
  check(AITModelSetInputShape(model, 0, big_batch, 2) == AIT_INVALID_ARGUMENT, "a batch past the max is refused");
  AITModelDestroy(model);
  cudaFree(x);
  cudaFree(y);
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
