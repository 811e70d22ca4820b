// The interface between generated model code and the AIT runtime.
//
// A generated `model.cu` defines, with C linkage, one function `ait_model_description()` returning a static
// ModelDescription: the model's inputs, outputs and weights (names, dtypes, max shapes), the size of its activation
// arena (laid out by the compiler's memory plan at the maximum batch), and the table of ops in call order. Each op
// has the graph.json node id, a display name, the kernel instance it runs, and a launch function. The runtime
// owns all memory and streams; an op's launch function only enqueues work on `context.stream` and returns nullptr
// on success or a static message (cudaGetErrorString / cutlassGetStatusString) on failure. The runtime prefixes the
// op's id and name, checks cudaGetLastError() after every launch, and never lets an exception cross the C ABI.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>  // std::min / std::max in size expressions of generated code
#include <stddef.h>
#include <stdint.h>

namespace ait {

// Bumped when ModelDescription or LaunchContext change shape; the runtime refuses a mismatched model.
// 2: weight origins and the prepare-op table; 3: ops' debug outputs; 4: run-time dims and output shapes;
// 5: input dims (symbolic input sizes besides the batch, e.g. seq: InputDimDescription)
constexpr uint32_t kModelAbiVersion = 5;
constexpr int kMaxRank = 8;

// Element types. The values are the C ABI's AITDType values (ait_runtime.h).
enum class DType : int32_t { kFloat16 = 1, kFloat32 = 2, kBFloat16 = 3, kInt32 = 4, kInt64 = 5, kInt8 = 6, kUInt8 = 7, kBool = 8 };

inline size_t dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 8;
    default:
      return 1;
  }
}

// A model input or output. Shapes are the maximum shapes; `batch_axis` (or -1) is the axis that takes the run's batch.
// An input's other symbolic axes (seq) are in ModelDescription::input_dims; every other axis is exactly its max.
struct IoDescription {
  const char* name;
  DType dtype;
  int32_t rank;
  int64_t max_shape[kMaxRank];
  int32_t batch_axis;
};

// Where a weight's data comes from.
enum class WeightOrigin : int32_t {
  kBound = 0,     // bound by name (an ONNX initializer, or a prepared weight written into weights.safetensors)
  kPrepared = 1,  // computed on the device by the prepare ops from bound weights (graph-only models)
};

// A weight (an ONNX initializer after folding). The runtime allocates it in device memory and binds data by name.
struct WeightDescription {
  const char* name;
  DType dtype;
  int32_t rank;
  int64_t shape[kMaxRank];
  WeightOrigin origin;  // kBound when left out of an initializer
};

// What a launch function receives: everything it may read or write, for one run.
struct LaunchContext {
  uint8_t* arena;               // activation arena: offsets come from the memory plan (constants in generated code)
  void* const* weights;         // device pointers, indexed like ModelDescription::weights
  void* const* inputs;          // caller's device pointers, indexed like ModelDescription::inputs
  void* const* outputs;         // caller's device pointers, indexed like ModelDescription::outputs
  int64_t batch;                // the run's batch (1 .. max_batch)
  cudaStream_t stream;
  void* workspace;              // scratch for CUTLASS kernels (split-K, etc.), `workspace_bytes` long
  size_t workspace_bytes;
  // Run-time dims (host memory, ModelDescription::num_dims long). The slots of input dims (input_dims: seq) are set by
  // the runtime from the input shapes before the first op; the others are sizes only the data decides (NonZero's
  // count, ...): the op that decides one reads it back from the device and stores it here. Later ops' sizes are
  // expressions of them.
  int64_t* dims;
};

// Returns nullptr on success, otherwise a static message describing the failure.
using LaunchFunction = const char* (*)(const LaunchContext& context);

// Where an op's output lives in a run (debug runs only: AITModelRunDebug copies it to the host after the op).
struct DebugTensor {
  const void* data;  // device pointer
  DType dtype;
  int32_t rank;
  int64_t shape[kMaxRank];  // at the run's batch
};
// Fills `out` with the op's (first) output; false when the op has none to show. Never called by a normal run.
using DebugOutputFunction = bool (*)(const LaunchContext& context, DebugTensor* out);

// Writes output `index`'s shape after a run (the batch and run-time dims of `context`) into `shape`.
using OutputShapeFunction = void (*)(const LaunchContext& context, int32_t index, int64_t* shape);

// An axis of a model input sized by a symbol other than the batch (HF's `seq`): its value for a run comes from the
// shape the caller gives (AITModelSetInputShape; unset: `max`) and is stored in LaunchContext::dims[slot] before the
// ops run. Inputs sharing a symbol have one entry each with the same slot: their sizes must agree. The arena, the
// workspace and the outputs' max shapes are sized at `max`.
struct InputDimDescription {
  int32_t slot;   // index into LaunchContext::dims (and dim_names)
  int32_t input;  // index into ModelDescription::inputs
  int32_t axis;
  int64_t min;
  int64_t max;
};

struct OpDescription {
  const char* id;      // graph.json node id
  const char* name;    // display name (fused op and its ONNX nodes)
  const char* kernel;  // kernel instance name (e.g. CUTLASS's procedural name)
  LaunchFunction launch;
  DebugOutputFunction debug_output;  // may be nullptr (prepare ops, hand-written models)
};

struct ModelDescription {
  uint32_t abi_version;  // kModelAbiVersion
  const char* name;
  int64_t max_batch;
  const IoDescription* inputs;
  int32_t num_inputs;
  const IoDescription* outputs;
  int32_t num_outputs;
  const WeightDescription* weights;
  int32_t num_weights;
  const OpDescription* ops;
  int32_t num_ops;
  size_t arena_bytes;      // at max_batch
  size_t workspace_bytes;  // largest workspace any op needs
  // Weight preparation (graph-only models: the layout transforms the compiler folds when weights are present).
  // Run once on the device after every kBound weight is bound and before the next run; they write the kPrepared
  // weights. Their LaunchContext has weights, stream and workspace; no arena, inputs or outputs; batch 0.
  const OpDescription* prepare_ops;
  int32_t num_prepare_ops;
  // Run-time dims (LaunchContext::dims). A model with any besides its input dims reads sizes back from the device
  // while it runs: each such read synchronizes the stream, so the runtime runs its ops directly, never through a
  // captured CUDA graph. Input dims alone do not: a captured graph is keyed on their values.
  int32_t num_dims;
  const char* const* dim_names;  // the compiler's symbol names (graph.json `symbols`), for messages
  OutputShapeFunction output_shape;
  const InputDimDescription* input_dims;  // model ABI 5
  int32_t num_input_dims;
};

// Floor division of non-negative dims; a zero divisor gives 0 (a size expression must never trap on the host).
inline int64_t floor_div(int64_t a, int64_t b) { return b > 0 ? a / b : 0; }

// ONNX Slice's clamping of one axis of extent `size`: the first index and the number of elements taken.
struct SliceAxis {
  int64_t begin, count;
};
inline SliceAxis slice_axis(int64_t size, int64_t start, int64_t end, int64_t step) {
  if (start < 0) start += size;
  if (end < 0) end += size;
  if (step > 0) {
    start = std::min(std::max<int64_t>(start, 0), size);
    end = std::min(std::max<int64_t>(end, 0), size);
  } else {
    start = std::min(std::max<int64_t>(start, 0), size - 1);
    end = std::min(std::max<int64_t>(end, -1), size - 1);
  }
  const int64_t span = end - start;
  const int64_t count = step > 0 ? (span + step - 1) / step : (span + step + 1) / step;
  return {start, std::max<int64_t>(count, 0)};
}

// Reads `bytes` of device memory into host memory `dst` in stream order (synchronizes the stream): how an op that
// decides a run-time dim learns its value. Returns nullptr or the CUDA error string.
inline const char* read_device(const LaunchContext& c, void* dst, const void* src, size_t bytes) {
  cudaError_t status = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c.stream);
  if (status == cudaSuccess) status = cudaStreamSynchronize(c.stream);
  return status == cudaSuccess ? nullptr : cudaGetErrorString(status);
}

}  // namespace ait

// Defined by the generated model code.
extern "C" const ait::ModelDescription* ait_model_description();

// Helpers for generated launch functions: return the failure message from the enclosing launch function.
#define AIT_RETURN_IF_CUDA_ERROR(expr)                   \
  do {                                                   \
    cudaError_t ait_status_ = (expr);                    \
    if (ait_status_ != cudaSuccess) return cudaGetErrorString(ait_status_); \
  } while (0)

// CUTLASS's Status; usable only where cutlass/cutlass.h is included.
#define AIT_RETURN_IF_CUTLASS_ERROR(expr)                          \
  do {                                                             \
    cutlass::Status ait_status_ = (expr);                          \
    if (ait_status_ != cutlass::Status::kSuccess) return cutlassGetStatusString(ait_status_); \
  } while (0)
