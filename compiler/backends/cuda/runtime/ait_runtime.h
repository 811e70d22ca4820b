/*
 * AIT runtime: the C ABI of a compiled model library (lib<name>.so).
 *
 * Lifecycle:
 *   AITModel* m; AITModelCreate("weights.safetensors", &m);   // or NULL, then AITModelBindWeight / Randomize
 *   AITModelSetInput(m, 0, d_in); AITModelSetOutput(m, 0, d_out);
 *   AITModelSetInputShape(m, 0, shape, rank);                  // models with input dims besides the batch (seq)
 *   AITModelRun(m, batch, stream);                             // enqueues on the caller's stream
 *   AITModelDestroy(m);
 *
 * Every function returns an AITStatus; on failure the message (naming the op, weight or file involved) is
 * retrievable with AITModelGetLastError(m), or AITGetLastError() for failures without a model (create).
 * No C++ exception crosses this interface. Streams are `cudaStream_t` passed as `void*` so that callers need not
 * include CUDA headers (NULL = the legacy default stream).
 */
#ifndef AIT_RUNTIME_H_
#define AIT_RUNTIME_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define AIT_API __declspec(dllexport)
#else
#define AIT_API __attribute__((visibility("default")))
#endif

#define AIT_ABI_VERSION 1

typedef enum AITStatus {
  AIT_OK = 0,
  AIT_INVALID_ARGUMENT = 1, /* bad index, name, batch, size or null pointer */
  AIT_CUDA_ERROR = 2,       /* a CUDA call or kernel launch failed */
  AIT_KERNEL_ERROR = 3,     /* an op's launch function reported a failure (e.g. a CUTLASS status) */
  AIT_WEIGHTS_ERROR = 4,    /* weights file unreadable, malformed, or not matching the model */
  AIT_NOT_READY = 5,        /* weights unbound, or inputs/outputs not set */
  AIT_INTERNAL_ERROR = 6
} AITStatus;

/* Same values as ait::DType (ait_model.h). */
typedef enum AITDType {
  AIT_FLOAT16 = 1,
  AIT_FLOAT32 = 2,
  AIT_BFLOAT16 = 3,
  AIT_INT32 = 4,
  AIT_INT64 = 5,
  AIT_INT8 = 6,
  AIT_UINT8 = 7,
  AIT_BOOL = 8
} AITDType;

typedef struct AITModel AITModel;

/* ABI version of this library; a loader compares it with AIT_ABI_VERSION. */
AIT_API int AITGetAbiVersion(void);
/* Message of the last failure on this thread that had no model to attach to (e.g. AITModelCreate). */
AIT_API const char* AITGetLastError(void);

/* Allocates the weights and the activation arena on the current device. `weights_path` may be NULL: the model
 * then refuses to run until every weight is bound or AITModelRandomizeWeights is called. */
AIT_API AITStatus AITModelCreate(const char* weights_path, AITModel** out_model);
/* Frees everything the model allocated (waits for its pending work first). NULL is allowed. */
AIT_API AITStatus AITModelDestroy(AITModel* model);
AIT_API const char* AITModelGetLastError(const AITModel* model);

AIT_API const char* AITModelGetName(const AITModel* model);
AIT_API int64_t AITModelGetMaxBatch(const AITModel* model);

/* Inputs and outputs: names, dtypes and maximum shapes (the batch axis at max batch). */
AIT_API int AITModelGetNumInputs(const AITModel* model);
AIT_API int AITModelGetNumOutputs(const AITModel* model);
AIT_API const char* AITModelGetInputName(const AITModel* model, int index);
AIT_API const char* AITModelGetOutputName(const AITModel* model, int index);
AIT_API AITDType AITModelGetInputDType(const AITModel* model, int index);
AIT_API AITDType AITModelGetOutputDType(const AITModel* model, int index);
/* Writes up to `capacity` dims into `shape`, the rank into `*rank`, the batch axis (or -1) into `*batch_axis`. */
AIT_API AITStatus AITModelGetInputMaxShape(const AITModel* model, int index, int64_t* shape, int capacity, int* rank,
                                           int* batch_axis);
AIT_API AITStatus AITModelGetOutputMaxShape(const AITModel* model, int index, int64_t* shape, int capacity, int* rank,
                                            int* batch_axis);
/* The shape output `index` has after the last run (its batch, and sizes the data decided: NonZero's count, ...);
   AIT_NOT_READY before the first run. */
AIT_API AITStatus AITModelGetOutputShape(const AITModel* model, int index, int64_t* shape, int capacity, int* rank);
/* 1 when some sizes depend on the data (read back from the device mid-run; such a model never runs as a CUDA graph). */
AIT_API int AITModelHasRuntimeDims(const AITModel* model);

/* Input dims: axes of inputs sized by a symbol other than the batch (HF's `seq`), each run's value taken from the
 * input shapes. AITModelSetInputShape gives input `index`'s shape for the next runs: `rank` must be the input's rank,
 * each input dim within its [min, max], every other axis its max shape's value (the batch axis: 1..max batch; the
 * run's batch is still AITModelRun's argument); rank < 0 forgets it. An input whose shape is not set runs at its
 * max shape. Inputs sharing a symbol must agree (checked by AITModelRun). Outputs sized by it: AITModelGetOutputShape
 * after the run. Model ABI 5 libraries; the functions below are new in them (loaders resolve them as optional). */
AIT_API AITStatus AITModelSetInputShape(AITModel* model, int index, const int64_t* shape, int rank);
AIT_API int AITModelGetNumInputDims(const AITModel* model);
/* Input dim `k`: its symbol's name, the input and axis it sizes, and its bounds. Outputs may be NULL. */
AIT_API AITStatus AITModelGetInputDim(const AITModel* model, int k, const char** name, int* input, int* axis, int64_t* min,
                                      int64_t* max);

/* Weights. */
AIT_API int AITModelGetNumWeights(const AITModel* model);
AIT_API const char* AITModelGetWeightName(const AITModel* model, int index);
AIT_API AITDType AITModelGetWeightDType(const AITModel* model, int index);
AIT_API int64_t AITModelGetWeightBytes(const AITModel* model, int index);
/* Copies `bytes` (must equal the weight's size, in the weight's dtype) from host or device memory. */
AIT_API AITStatus AITModelBindWeight(AITModel* model, const char* name, const void* data, size_t bytes, int data_on_device);
/* Reads a safetensors file; every tensor named like a weight is bound (F32 data is converted to F16 weights).
 * Tensors of the file the model does not know are ignored; `*num_bound` (optional) receives the count bound. */
AIT_API AITStatus AITModelLoadWeights(AITModel* model, const char* safetensors_path, int* num_bound);
/* Fills every unbound weight (or all when `all` != 0) with uniform values in [-scale, scale] (benchmarking only). */
AIT_API AITStatus AITModelRandomizeWeights(AITModel* model, uint64_t seed, float scale, int all);
/* Number of weights still unbound. */
AIT_API int AITModelGetNumUnboundWeights(const AITModel* model);

/* Device pointers for the next runs; they must hold the shapes at the run's batch. */
AIT_API AITStatus AITModelSetInput(AITModel* model, int index, void* device_ptr);
AIT_API AITStatus AITModelSetOutput(AITModel* model, int index, void* device_ptr);

/* CUDA graph mode: when on, each (batch, input dims, bound pointers) is captured once and replayed; a new batch, a
 * new seq or new pointers capture again (a small cache keeps recent ones). Off by default. */
AIT_API AITStatus AITModelSetGraphMode(AITModel* model, int enabled);
/* Per-op profiling: when on, runs go op by op (no graph) with events around each op, and synchronize. */
AIT_API AITStatus AITModelSetProfiling(AITModel* model, int enabled);
/* Profile JSON of the runs since profiling was enabled or reset: writes it into `buffer` (NUL-terminated when it
 * fits) and its length (without NUL) into `*length`. Call with capacity 0 to ask for the length. */
AIT_API AITStatus AITModelGetProfileJson(AITModel* model, char* buffer, size_t capacity, size_t* length);
AIT_API AITStatus AITModelResetProfile(AITModel* model);

/* Enqueues one inference at `batch` (1..max batch) on `stream`. Returns when enqueued (profiling: when done). */
AIT_API AITStatus AITModelRun(AITModel* model, int64_t batch, void* stream);

/* Debug run, for per-node verify: runs every op in order, synchronizing after each, copies the op's output (as the
 * generated code describes it) to host memory and hands it to `callback` with the op's graph.json id, its dtype and
 * its shape at `batch`; the data is valid during the call only. Slow by design; AITModelRun does not go through it
 * (no cost in normal runs). Weights, inputs and outputs must be set as for AITModelRun. */
typedef void (*AITNodeOutputCallback)(void* user, const char* node_id, AITDType dtype, int rank, const int64_t* shape,
                                      const void* host_data, size_t bytes);
AIT_API AITStatus AITModelRunDebug(AITModel* model, int64_t batch, void* stream, AITNodeOutputCallback callback, void* user);

/* Device memory helpers for callers without a CUDA binding (ait_model.py with NumPy arrays, ait_bench).
 * `direction`: 0 host to device, 1 device to host, 2 device to device. Copies are synchronous. */
AIT_API AITStatus AITDeviceMalloc(void** out_ptr, size_t bytes);
AIT_API AITStatus AITDeviceFree(void* ptr);
AIT_API AITStatus AITMemcpy(void* dst, const void* src, size_t bytes, int direction);
AIT_API AITStatus AITStreamSynchronize(void* stream);

#ifdef __cplusplus
}
#endif

#endif /* AIT_RUNTIME_H_ */
