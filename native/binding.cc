// Node binding of a compiled model library (lib<name>.so, C ABI of ait_runtime.h), for the GPU-host agent.
//
// The library is loaded with dlopen at run time: the addon has no link-time dependency on it, nor on libcudart.
// CUDA runtime functions are resolved with dlsym, first from the model library itself (so that a library with a
// statically linked cudart and this binding share one runtime instance, streams and events included), then from
// libcudart.so.13 / .12 / libcudart.so. A machine without CUDA builds and loads the addon; opening a model there fails
// with a message saying which libraries were tried.
//
// Test libraries that implement the C ABI on the CPU (host memory as "device", no CUDA) export the marker symbol
// `AITHostMemoryDevice`; for them the binding allocates host memory and times with a host clock, and every timing
// result says so (`timer: "host-clock"`). Everything else is timed with CUDA events (`timer: "cuda-events"`).
//
// JS interface (typed in native/index.ts):
//   bindingApiVersion, aitAbiVersion
//   openModel(libraryPath, {weightsPath?}) -> Promise<Model>
//   Model: info(), bindWeight(name, bytes), loadWeights(path), randomizeWeights(seed, scale, all),
//          run(batch, inputs?, {returnOutputs?, inputShapes?}) -> Promise<Buffer[]>  (inputShapes: seq below its max),
//          runDebug(batch, inputs?) -> Promise<{outputs: Buffer[], nodes: [{id, dtype, shape, data: Buffer}]}>
//            (AITModelRunDebug: op by op, every op's output copied to the host; a library built before debug runs
//            lacks the function: info().debugRuns is false and runDebug rejects with 'no-debug-support'),
//          info().inputDims: [{name, input, axis, min, max}] (model ABI 5: input dims besides the batch, e.g. seq),
//          time({batchSize, iterations, warmupIterations, graph}) -> Promise<{timer, latenciesMs: Float64Array}>,
//          profile({batchSize, iterations, warmupIterations}) -> Promise<parsed profile JSON>, close()
// Errors are JS Errors with `code` (the AITStatus name or a binding code such as 'library-missing', 'abi-mismatch',
// 'cuda-unavailable', 'busy') and `library` (the model library's path).
#include <dlfcn.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <napi.h>

#include "ait_runtime.h"

namespace {

// Bumped when the JS interface of this addon changes; native/index.ts refuses a mismatched build.
constexpr int kBindingApiVersion = 3;  // 2: runDebug, info().debugRuns; 3: run({inputShapes})

// ---- errors -------------------------------------------------------------------------------------------------------

struct Failure {
  std::string code;
  std::string message;
};

const char* StatusName(AITStatus status) {
  switch (status) {
    case AIT_OK: return "AIT_OK";
    case AIT_INVALID_ARGUMENT: return "AIT_INVALID_ARGUMENT";
    case AIT_CUDA_ERROR: return "AIT_CUDA_ERROR";
    case AIT_KERNEL_ERROR: return "AIT_KERNEL_ERROR";
    case AIT_WEIGHTS_ERROR: return "AIT_WEIGHTS_ERROR";
    case AIT_NOT_READY: return "AIT_NOT_READY";
    case AIT_INTERNAL_ERROR: return "AIT_INTERNAL_ERROR";
  }
  return "AIT_UNKNOWN_STATUS";
}

Napi::Error MakeError(Napi::Env env, const Failure& failure, const std::string& library) {
  Napi::Error error = Napi::Error::New(env, failure.message);
  error.Set("code", Napi::String::New(env, failure.code));
  if (!library.empty()) error.Set("library", Napi::String::New(env, library));
  return error;
}

size_t DTypeBytes(AITDType dtype) {
  switch (dtype) {
    case AIT_FLOAT16:
    case AIT_BFLOAT16: return 2;
    case AIT_FLOAT32:
    case AIT_INT32: return 4;
    case AIT_INT64: return 8;
    default: return 1;
  }
}

const char* DTypeName(AITDType dtype) {
  switch (dtype) {
    case AIT_FLOAT16: return "float16";
    case AIT_FLOAT32: return "float32";
    case AIT_BFLOAT16: return "bfloat16";
    case AIT_INT32: return "int32";
    case AIT_INT64: return "int64";
    case AIT_INT8: return "int8";
    case AIT_UINT8: return "uint8";
    case AIT_BOOL: return "bool";
  }
  return "unknown";
}

// ---- the model library's C ABI, resolved with dlsym ---------------------------------------------------------------

struct RuntimeApi {
  decltype(&AITGetAbiVersion) GetAbiVersion;
  decltype(&AITGetLastError) GetLastError;
  decltype(&AITModelCreate) Create;
  decltype(&AITModelDestroy) Destroy;
  decltype(&AITModelGetLastError) ModelLastError;
  decltype(&AITModelGetName) GetName;
  decltype(&AITModelGetMaxBatch) GetMaxBatch;
  decltype(&AITModelGetNumInputs) GetNumInputs;
  decltype(&AITModelGetNumOutputs) GetNumOutputs;
  decltype(&AITModelGetInputName) GetInputName;
  decltype(&AITModelGetOutputName) GetOutputName;
  decltype(&AITModelGetInputDType) GetInputDType;
  decltype(&AITModelGetOutputDType) GetOutputDType;
  decltype(&AITModelGetInputMaxShape) GetInputMaxShape;
  decltype(&AITModelGetOutputMaxShape) GetOutputMaxShape;
  decltype(&AITModelGetOutputShape) GetOutputShape = nullptr;  // optional (model ABI 4)
  decltype(&AITModelHasRuntimeDims) HasRuntimeDims = nullptr;  // optional (model ABI 4)
  decltype(&AITModelSetInputShape) SetInputShape = nullptr;    // optional (model ABI 5: input dims such as seq)
  decltype(&AITModelGetNumInputDims) GetNumInputDims = nullptr;  // optional (model ABI 5)
  decltype(&AITModelGetInputDim) GetInputDim = nullptr;          // optional (model ABI 5)
  decltype(&AITModelGetNumWeights) GetNumWeights;
  decltype(&AITModelGetWeightName) GetWeightName;
  decltype(&AITModelGetWeightDType) GetWeightDType;
  decltype(&AITModelGetWeightBytes) GetWeightBytes;
  decltype(&AITModelBindWeight) BindWeight;
  decltype(&AITModelLoadWeights) LoadWeights;
  decltype(&AITModelRandomizeWeights) RandomizeWeights;
  decltype(&AITModelGetNumUnboundWeights) GetNumUnboundWeights;
  decltype(&AITModelSetInput) SetInput;
  decltype(&AITModelSetOutput) SetOutput;
  decltype(&AITModelSetGraphMode) SetGraphMode;
  decltype(&AITModelSetProfiling) SetProfiling;
  decltype(&AITModelGetProfileJson) GetProfileJson;
  decltype(&AITModelResetProfile) ResetProfile;
  decltype(&AITModelRun) Run;
  decltype(&AITModelRunDebug) RunDebug;  // optional: null in libraries built before debug runs
};

template <typename Fn>
bool Resolve(void* library, const char* name, Fn* out, std::vector<std::string>* missing) {
  *out = reinterpret_cast<Fn>(dlsym(library, name));
  if (!*out) missing->push_back(name);
  return *out != nullptr;
}

// Resolves every function after the ABI version has been checked (a library of another ABI may lack some).
bool ResolveRuntimeApi(void* lib, RuntimeApi* api, std::string* missing_names) {
  std::vector<std::string> missing;
  Resolve(lib, "AITGetLastError", &api->GetLastError, &missing);
  Resolve(lib, "AITModelCreate", &api->Create, &missing);
  Resolve(lib, "AITModelDestroy", &api->Destroy, &missing);
  Resolve(lib, "AITModelGetLastError", &api->ModelLastError, &missing);
  Resolve(lib, "AITModelGetName", &api->GetName, &missing);
  Resolve(lib, "AITModelGetMaxBatch", &api->GetMaxBatch, &missing);
  Resolve(lib, "AITModelGetNumInputs", &api->GetNumInputs, &missing);
  Resolve(lib, "AITModelGetNumOutputs", &api->GetNumOutputs, &missing);
  Resolve(lib, "AITModelGetInputName", &api->GetInputName, &missing);
  Resolve(lib, "AITModelGetOutputName", &api->GetOutputName, &missing);
  Resolve(lib, "AITModelGetInputDType", &api->GetInputDType, &missing);
  Resolve(lib, "AITModelGetOutputDType", &api->GetOutputDType, &missing);
  Resolve(lib, "AITModelGetInputMaxShape", &api->GetInputMaxShape, &missing);
  Resolve(lib, "AITModelGetOutputMaxShape", &api->GetOutputMaxShape, &missing);
  Resolve(lib, "AITModelGetNumWeights", &api->GetNumWeights, &missing);
  Resolve(lib, "AITModelGetWeightName", &api->GetWeightName, &missing);
  Resolve(lib, "AITModelGetWeightDType", &api->GetWeightDType, &missing);
  Resolve(lib, "AITModelGetWeightBytes", &api->GetWeightBytes, &missing);
  Resolve(lib, "AITModelBindWeight", &api->BindWeight, &missing);
  Resolve(lib, "AITModelLoadWeights", &api->LoadWeights, &missing);
  Resolve(lib, "AITModelRandomizeWeights", &api->RandomizeWeights, &missing);
  Resolve(lib, "AITModelGetNumUnboundWeights", &api->GetNumUnboundWeights, &missing);
  Resolve(lib, "AITModelSetInput", &api->SetInput, &missing);
  Resolve(lib, "AITModelSetOutput", &api->SetOutput, &missing);
  Resolve(lib, "AITModelSetGraphMode", &api->SetGraphMode, &missing);
  Resolve(lib, "AITModelSetProfiling", &api->SetProfiling, &missing);
  Resolve(lib, "AITModelGetProfileJson", &api->GetProfileJson, &missing);
  Resolve(lib, "AITModelResetProfile", &api->ResetProfile, &missing);
  Resolve(lib, "AITModelRun", &api->Run, &missing);
  api->RunDebug = reinterpret_cast<decltype(&AITModelRunDebug)>(dlsym(lib, "AITModelRunDebug"));
  // model ABI 4 (run-time dims): outputs whose sizes the data decides; absent from older libraries
  api->GetOutputShape = reinterpret_cast<decltype(&AITModelGetOutputShape)>(dlsym(lib, "AITModelGetOutputShape"));
  api->HasRuntimeDims = reinterpret_cast<decltype(&AITModelHasRuntimeDims)>(dlsym(lib, "AITModelHasRuntimeDims"));
  // model ABI 5 (input dims besides the batch, e.g. seq): absent from older libraries
  api->SetInputShape = reinterpret_cast<decltype(&AITModelSetInputShape)>(dlsym(lib, "AITModelSetInputShape"));
  api->GetNumInputDims = reinterpret_cast<decltype(&AITModelGetNumInputDims)>(dlsym(lib, "AITModelGetNumInputDims"));
  api->GetInputDim = reinterpret_cast<decltype(&AITModelGetInputDim)>(dlsym(lib, "AITModelGetInputDim"));
  for (const std::string& name : missing) *missing_names += (missing_names->empty() ? "" : ", ") + name;
  return missing.empty();
}

// ---- device memory, streams and timing: CUDA runtime (dlsym) or host memory (test libraries) -----------------------

// CUDA runtime signatures with handles as void* and cudaError_t as int, so that no CUDA header is needed.
struct DeviceApi {
  bool host_memory = false;  // true for libraries exporting AITHostMemoryDevice
  std::string source;        // where the functions came from, for messages and info()
  int (*Malloc)(void**, size_t) = nullptr;
  int (*Free)(void*) = nullptr;
  int (*Memcpy)(void*, const void*, size_t, int) = nullptr;  // kind 4 = cudaMemcpyDefault
  int (*Memset)(void*, int, size_t) = nullptr;
  int (*StreamCreate)(void**) = nullptr;
  int (*StreamSynchronize)(void*) = nullptr;
  int (*StreamDestroy)(void*) = nullptr;
  int (*EventCreate)(void**) = nullptr;
  int (*EventRecord)(void*, void*) = nullptr;
  int (*EventSynchronize)(void*) = nullptr;
  int (*EventElapsedTime)(float*, void*, void*) = nullptr;
  int (*EventDestroy)(void*) = nullptr;
  const char* (*GetErrorString)(int) = nullptr;
  int (*GetDeviceCount)(int*) = nullptr;
  int (*RuntimeGetVersion)(int*) = nullptr;

  const char* TimerName() const { return host_memory ? "host-clock" : "cuda-events"; }
  std::string ErrorText(int status) const {
    return std::string(GetErrorString ? GetErrorString(status) : "unknown error") + " (error " + std::to_string(status) + ")";
  }
};

constexpr int kMemcpyDefault = 4;

// Host-memory stand-ins with the CUDA signatures. "Events" hold a steady-clock time; the fake library runs
// synchronously, so recording after a run marks its end.
using HostClock = std::chrono::steady_clock;
int HostMalloc(void** p, size_t n) { *p = std::calloc(n ? n : 1, 1); return *p ? 0 : 2; }
int HostFree(void* p) { std::free(p); return 0; }
int HostMemcpy(void* d, const void* s, size_t n, int) { if (n) std::memcpy(d, s, n); return 0; }
int HostMemset(void* d, int v, size_t n) { std::memset(d, v, n); return 0; }
int HostStreamCreate(void** s) { *s = nullptr; return 0; }
int HostStreamNoop(void*) { return 0; }
int HostEventCreate(void** e) { *e = new HostClock::time_point(); return 0; }
int HostEventRecord(void* e, void*) { *static_cast<HostClock::time_point*>(e) = HostClock::now(); return 0; }
int HostEventSynchronize(void*) { return 0; }
int HostEventElapsed(float* ms, void* a, void* b) {
  *ms = std::chrono::duration<float, std::milli>(*static_cast<HostClock::time_point*>(b) - *static_cast<HostClock::time_point*>(a)).count();
  return 0;
}
int HostEventDestroy(void* e) { delete static_cast<HostClock::time_point*>(e); return 0; }
const char* HostErrorString(int) { return "host memory error"; }
int HostDeviceCount(int* n) { *n = 1; return 0; }
int HostRuntimeVersion(int* v) { *v = 0; return 0; }

DeviceApi HostDeviceApi() {
  DeviceApi d;
  d.host_memory = true;
  d.source = "host memory (library exports AITHostMemoryDevice)";
  d.Malloc = HostMalloc; d.Free = HostFree; d.Memcpy = HostMemcpy; d.Memset = HostMemset;
  d.StreamCreate = HostStreamCreate; d.StreamSynchronize = HostStreamNoop; d.StreamDestroy = HostStreamNoop;
  d.EventCreate = HostEventCreate; d.EventRecord = HostEventRecord; d.EventSynchronize = HostEventSynchronize;
  d.EventElapsedTime = HostEventElapsed; d.EventDestroy = HostEventDestroy; d.GetErrorString = HostErrorString;
  d.GetDeviceCount = HostDeviceCount; d.RuntimeGetVersion = HostRuntimeVersion;
  return d;
}

template <typename Fn>
bool ResolveFrom(void* handle, const char* name, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(handle, name));
  return *out != nullptr;
}

bool ResolveCuda(void* handle, DeviceApi* d) {
  return ResolveFrom(handle, "cudaMalloc", &d->Malloc) && ResolveFrom(handle, "cudaFree", &d->Free) &&
         ResolveFrom(handle, "cudaMemcpy", &d->Memcpy) && ResolveFrom(handle, "cudaMemset", &d->Memset) &&
         ResolveFrom(handle, "cudaStreamCreate", &d->StreamCreate) &&
         ResolveFrom(handle, "cudaStreamSynchronize", &d->StreamSynchronize) &&
         ResolveFrom(handle, "cudaStreamDestroy", &d->StreamDestroy) && ResolveFrom(handle, "cudaEventCreate", &d->EventCreate) &&
         ResolveFrom(handle, "cudaEventRecord", &d->EventRecord) &&
         ResolveFrom(handle, "cudaEventSynchronize", &d->EventSynchronize) &&
         ResolveFrom(handle, "cudaEventElapsedTime", &d->EventElapsedTime) &&
         ResolveFrom(handle, "cudaEventDestroy", &d->EventDestroy) &&
         ResolveFrom(handle, "cudaGetErrorString", &d->GetErrorString) &&
         ResolveFrom(handle, "cudaGetDeviceCount", &d->GetDeviceCount) &&
         ResolveFrom(handle, "cudaRuntimeGetVersion", &d->RuntimeGetVersion);
}

bool LoadDeviceApi(void* model_library, const std::string& library_path, DeviceApi* out, Failure* failure) {
  if (dlsym(model_library, "AITHostMemoryDevice")) {
    *out = HostDeviceApi();
    return true;
  }
  DeviceApi d;
  if (ResolveCuda(model_library, &d)) {
    d.source = "CUDA runtime of " + library_path;
    *out = d;
    return true;
  }
  std::string tried = "the model library";
  for (const char* name : {"libcudart.so.13", "libcudart.so.12", "libcudart.so"}) {
    void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    const char* why = handle ? "lacks CUDA runtime functions" : dlerror();
    if (handle && ResolveCuda(handle, &d)) {
      d.source = name;
      *out = d;
      return true;
    }
    tried += std::string("; ") + name + ": " + (why ? why : "not found");
  }
  *failure = {"cuda-unavailable", "no CUDA runtime for " + library_path + " (tried " + tried +
                                      "); install the CUDA runtime or put libcudart on LD_LIBRARY_PATH"};
  return false;
}

// ---- a loaded model -----------------------------------------------------------------------------------------------

struct TensorSlot {
  std::string name;
  AITDType dtype = AIT_FLOAT32;
  std::vector<int64_t> max_shape;
  int batch_axis = -1;
  size_t max_bytes = 0;
  void* device = nullptr;  // allocated by the binding at the max shape

  size_t BytesAt(int64_t batch) const {
    size_t elements = 1;
    for (size_t i = 0; i < max_shape.size(); ++i) elements *= static_cast<size_t>(static_cast<int>(i) == batch_axis ? batch : max_shape[i]);
    return elements * DTypeBytes(dtype);
  }
};

struct ModelState {
  std::string library_path;
  void* library = nullptr;
  RuntimeApi ait{};
  DeviceApi device;
  AITModel* model = nullptr;
  void* stream = nullptr;
  std::string name;
  int64_t max_batch = 0;
  std::vector<TensorSlot> inputs, outputs;
  std::atomic<bool> busy{false};
  bool closed = false;

  Failure StatusFailure(AITStatus status, const std::string& what) const {
    const char* detail = model ? ait.ModelLastError(model) : ait.GetLastError();
    return {StatusName(status), what + ": " + (detail && *detail ? detail : StatusName(status))};
  }
  bool Check(AITStatus status, const std::string& what, Failure* failure) const {
    if (status == AIT_OK) return true;
    *failure = StatusFailure(status, what);
    return false;
  }
  bool CheckDevice(int status, const std::string& what, Failure* failure) const {
    if (status == 0) return true;
    *failure = {"device-error", what + " failed: " + device.ErrorText(status)};
    return false;
  }

  // Frees what the binding allocated and destroys the model. The library stays loaded: unloading a library that
  // carries a CUDA runtime while the process lives invites its exit handlers to run on unmapped code.
  void Release() {
    if (model) ait.Destroy(model);
    model = nullptr;
    for (auto* slots : {&inputs, &outputs})
      for (TensorSlot& s : *slots) {
        if (s.device) device.Free(s.device);
        s.device = nullptr;
      }
    if (stream) device.StreamDestroy(stream);
    stream = nullptr;
    closed = true;
  }
  ~ModelState() { if (!closed) Release(); }
};

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool DescribeSlots(ModelState* s, bool outputs, Failure* failure) {
  int count = outputs ? s->ait.GetNumOutputs(s->model) : s->ait.GetNumInputs(s->model);
  std::vector<TensorSlot>& slots = outputs ? s->outputs : s->inputs;
  for (int i = 0; i < count; ++i) {
    TensorSlot slot;
    const char* name = outputs ? s->ait.GetOutputName(s->model, i) : s->ait.GetInputName(s->model, i);
    slot.name = name ? name : "";
    slot.dtype = outputs ? s->ait.GetOutputDType(s->model, i) : s->ait.GetInputDType(s->model, i);
    int64_t shape[16];
    int rank = 0;
    AITStatus st = outputs ? s->ait.GetOutputMaxShape(s->model, i, shape, 16, &rank, &slot.batch_axis)
                           : s->ait.GetInputMaxShape(s->model, i, shape, 16, &rank, &slot.batch_axis);
    if (!s->Check(st, std::string("shape of ") + (outputs ? "output " : "input ") + slot.name, failure)) return false;
    slot.max_shape.assign(shape, shape + rank);
    slot.max_bytes = slot.BytesAt(slot.batch_axis >= 0 ? s->max_batch : 1);
    if (!s->CheckDevice(s->device.Malloc(&slot.device, slot.max_bytes), "allocating " + std::to_string(slot.max_bytes) + " bytes for '" + slot.name + "'", failure)) return false;
    // Zeros are a valid value for every dtype (indices included), so timing runs read defined data.
    if (!s->CheckDevice(s->device.Memset(slot.device, 0, slot.max_bytes), "clearing '" + slot.name + "'", failure)) return false;
    st = outputs ? s->ait.SetOutput(s->model, i, slot.device) : s->ait.SetInput(s->model, i, slot.device);
    slots.push_back(slot);
    if (!s->Check(st, "binding the buffer of '" + slot.name + "'", failure)) return false;
  }
  return true;
}

// Loads the library, checks its ABI, creates the model and gives it device buffers. Runs on a worker thread.
std::unique_ptr<ModelState> OpenModel(const std::string& library_path, const std::string& weights_path, Failure* failure) {
  if (!FileExists(library_path)) {
    *failure = {"library-missing", "model library " + library_path + " does not exist (build the model first)"};
    return nullptr;
  }
  auto s = std::make_unique<ModelState>();
  s->library_path = library_path;
  s->library = dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!s->library) {
    const char* why = dlerror();
    *failure = {"library-load", "cannot load model library " + library_path + ": " + (why ? why : "dlopen failed")};
    return nullptr;
  }
  auto abi = reinterpret_cast<decltype(&AITGetAbiVersion)>(dlsym(s->library, "AITGetAbiVersion"));
  if (!abi) {
    *failure = {"abi-mismatch", library_path + " is not an AIT model library: it exports no AITGetAbiVersion"};
    return nullptr;
  }
  int version = abi();
  if (version != AIT_ABI_VERSION) {
    *failure = {"abi-mismatch", library_path + " speaks AIT runtime ABI version " + std::to_string(version) +
                                    ", this binding speaks version " + std::to_string(AIT_ABI_VERSION) +
                                    ": rebuild the model with this compiler, or the binding from the same checkout"};
    return nullptr;
  }
  s->ait.GetAbiVersion = abi;
  std::string missing;
  if (!ResolveRuntimeApi(s->library, &s->ait, &missing)) {
    *failure = {"abi-mismatch", library_path + " claims ABI version " + std::to_string(version) + " but lacks " + missing};
    return nullptr;
  }
  if (!LoadDeviceApi(s->library, library_path, &s->device, failure)) return nullptr;
  int devices = 0;
  int st = s->device.GetDeviceCount(&devices);
  if (st != 0 || devices == 0) {
    *failure = {"no-device", "no usable GPU for " + library_path + ": " + (st ? s->device.ErrorText(st) : "0 devices")};
    return nullptr;
  }
  AITStatus created = s->ait.Create(weights_path.empty() ? nullptr : weights_path.c_str(), &s->model);
  if (!s->Check(created, "creating the model of " + library_path, failure)) return nullptr;
  const char* name = s->ait.GetName(s->model);
  s->name = name ? name : "";
  s->max_batch = s->ait.GetMaxBatch(s->model);
  if (!s->CheckDevice(s->device.StreamCreate(&s->stream), "creating a stream", failure)) return nullptr;
  if (!DescribeSlots(s.get(), false, failure) || !DescribeSlots(s.get(), true, failure)) return nullptr;
  return s;
}

// ---- JS classes ---------------------------------------------------------------------------------------------------

struct AddonData {
  Napi::FunctionReference model_constructor;
};

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceMethod<&Model::Info>("info"), InstanceMethod<&Model::BindWeight>("bindWeight"),
                        InstanceMethod<&Model::LoadWeights>("loadWeights"),
                        InstanceMethod<&Model::RandomizeWeights>("randomizeWeights"), InstanceMethod<&Model::Run>("run"),
                        InstanceMethod<&Model::RunDebug>("runDebug"),
                        InstanceMethod<&Model::Time>("time"), InstanceMethod<&Model::Profile>("profile"),
                        InstanceMethod<&Model::Close>("close")});
  }

  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    // Only openModel creates models: it passes the opened state as an External.
    if (info.Length() != 1 || !info[0].IsExternal()) {
      Napi::TypeError::New(info.Env(), "use openModel(libraryPath, options) to open a model").ThrowAsJavaScriptException();
      return;
    }
    state_.reset(info[0].As<Napi::External<ModelState>>().Data());
  }

  ModelState* state() { return state_.get(); }

 private:
  // The state is usable from JS only when open and no async operation runs on it.
  bool Usable(Napi::Env env) {
    if (!state_ || state_->closed) {
      MakeError(env, {"closed", "the model is closed"}, state_ ? state_->library_path : "").ThrowAsJavaScriptException();
      return false;
    }
    if (state_->busy) {
      MakeError(env, {"busy", "the model is busy with another run, timing or profile; await it first"}, state_->library_path)
          .ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value BindWeight(const Napi::CallbackInfo& info);
  Napi::Value LoadWeights(const Napi::CallbackInfo& info);
  Napi::Value RandomizeWeights(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value RunDebug(const Napi::CallbackInfo& info);
  Napi::Value Time(const Napi::CallbackInfo& info);
  Napi::Value Profile(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::unique_ptr<ModelState> state_;
};

// An async operation on a model: marks it busy for its duration; rejects with the failure's code and message.
class ModelWorker : public Napi::AsyncWorker {
 public:
  ModelWorker(Napi::Env env, Napi::Object model_object, ModelState* state)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), state_(state) {
    model_ref_ = Napi::Persistent(model_object);  // keeps the model alive while the worker runs
    state_->busy = true;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      if (!Work()) SetError(failure_.message);
    } catch (const std::exception& e) {  // bad_alloc and the like, from the binding's own containers
      failure_ = {"internal", std::string("binding failure: ") + e.what()};
      SetError(failure_.message);
    }
  }
  virtual bool Work() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;
  void OnOK() override {
    state_->busy = false;
    Napi::Value result = Result(Env());
    if (reject_result_) deferred_.Reject(result);
    else deferred_.Resolve(result);
  }
  void OnError(const Napi::Error&) override {
    state_->busy = false;
    deferred_.Reject(MakeError(Env(), failure_, state_->library_path).Value());
  }

  Napi::Promise::Deferred deferred_;
  ModelState* state_;
  Napi::ObjectReference model_ref_;
  Failure failure_;
  bool reject_result_ = false;  // set by Result() when what it returns is an error to reject with
};

Napi::Value ShapeArray(Napi::Env env, const std::vector<int64_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) a.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
  return a;
}

Napi::Array ShapesArray(Napi::Env env, const std::vector<std::vector<int64_t>>& shapes) {
  Napi::Array a = Napi::Array::New(env, shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) a.Set(i, ShapeArray(env, shapes[i]));
  return a;
}

Napi::Value Model::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  ModelState* s = state_.get();
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", s->name);
  o.Set("library", s->library_path);
  o.Set("maxBatch", Napi::Number::New(env, static_cast<double>(s->max_batch)));
  o.Set("timer", s->device.TimerName());
  o.Set("deviceApi", s->device.source);
  int runtime_version = 0;
  s->device.RuntimeGetVersion(&runtime_version);
  o.Set("cudaRuntimeVersion", runtime_version);
  for (bool outputs : {false, true}) {
    const std::vector<TensorSlot>& slots = outputs ? s->outputs : s->inputs;
    Napi::Array a = Napi::Array::New(env, slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("name", slots[i].name);
      t.Set("dtype", DTypeName(slots[i].dtype));
      t.Set("maxShape", ShapeArray(env, slots[i].max_shape));
      t.Set("batchAxis", slots[i].batch_axis);
      t.Set("maxBytes", Napi::Number::New(env, static_cast<double>(slots[i].max_bytes)));
      a.Set(i, t);
    }
    o.Set(outputs ? "outputs" : "inputs", a);
  }
  int num_weights = s->ait.GetNumWeights(s->model);
  Napi::Array weights = Napi::Array::New(env, num_weights);
  for (int i = 0; i < num_weights; ++i) {
    Napi::Object w = Napi::Object::New(env);
    const char* name = s->ait.GetWeightName(s->model, i);
    w.Set("name", name ? name : "");
    w.Set("dtype", DTypeName(s->ait.GetWeightDType(s->model, i)));
    w.Set("bytes", Napi::Number::New(env, static_cast<double>(s->ait.GetWeightBytes(s->model, i))));
    weights.Set(i, w);
  }
  o.Set("weights", weights);
  o.Set("unboundWeights", s->ait.GetNumUnboundWeights(s->model));
  o.Set("debugRuns", Napi::Boolean::New(env, s->ait.RunDebug != nullptr));
  // input dims besides the batch (seq): what run({inputShapes}) may vary
  const int num_input_dims = s->ait.GetNumInputDims && s->ait.GetInputDim ? s->ait.GetNumInputDims(s->model) : 0;
  Napi::Array input_dims = Napi::Array::New(env, num_input_dims > 0 ? num_input_dims : 0);
  for (int k = 0; k < num_input_dims; ++k) {
    const char* dim_name = nullptr;
    int input = -1, axis = -1;
    int64_t lo = 0, hi = 0;
    if (s->ait.GetInputDim(s->model, k, &dim_name, &input, &axis, &lo, &hi) != AIT_OK) continue;
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", dim_name ? dim_name : "");
    d.Set("input", input);
    d.Set("axis", axis);
    d.Set("min", Napi::Number::New(env, static_cast<double>(lo)));
    d.Set("max", Napi::Number::New(env, static_cast<double>(hi)));
    input_dims.Set(k, d);
  }
  o.Set("inputDims", input_dims);
  return o;
}

// Bytes of a Buffer, TypedArray, DataView or ArrayBuffer; false when `value` is none of them.
bool BytesOf(Napi::Value value, const uint8_t** data, size_t* size) {
  if (value.IsTypedArray()) {
    Napi::TypedArray t = value.As<Napi::TypedArray>();
    *data = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    *size = t.ByteLength();
    return true;
  }
  if (value.IsDataView()) {
    Napi::DataView v = value.As<Napi::DataView>();
    *data = static_cast<const uint8_t*>(v.ArrayBuffer().Data()) + v.ByteOffset();
    *size = v.ByteLength();
    return true;
  }
  if (value.IsArrayBuffer()) {
    Napi::ArrayBuffer b = value.As<Napi::ArrayBuffer>();
    *data = static_cast<const uint8_t*>(b.Data());
    *size = b.ByteLength();
    return true;
  }
  return false;
}

Napi::Value Model::BindWeight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  const uint8_t* data = nullptr;
  size_t size = 0;
  if (info.Length() < 2 || !info[0].IsString() || !BytesOf(info[1], &data, &size)) {
    Napi::TypeError::New(env, "bindWeight(name: string, data: Buffer | TypedArray | ArrayBuffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>();
  Failure failure;
  if (!state_->Check(state_->ait.BindWeight(state_->model, name.c_str(), data, size, 0), "binding weight '" + name + "'", &failure)) {
    MakeError(env, failure, state_->library_path).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value Model::LoadWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "loadWeights(safetensorsPath: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>();
  int bound = 0;
  Failure failure;
  if (!state_->Check(state_->ait.LoadWeights(state_->model, path.c_str(), &bound), "loading weights from " + path, &failure)) {
    MakeError(env, failure, state_->library_path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, bound);
}

Napi::Value Model::RandomizeWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  double seed = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  double scale = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0.05;
  bool all = info.Length() > 2 && info[2].ToBoolean();
  Failure failure;
  if (!state_->Check(state_->ait.RandomizeWeights(state_->model, static_cast<uint64_t>(seed), static_cast<float>(scale), all ? 1 : 0),
                     "randomizing weights", &failure)) {
    MakeError(env, failure, state_->library_path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, state_->ait.GetNumUnboundWeights(state_->model));
}

bool CheckBatch(const ModelState* s, double batch, Failure* failure) {
  if (batch >= 1 && batch <= static_cast<double>(s->max_batch) && batch == static_cast<double>(static_cast<int64_t>(batch))) return true;
  *failure = {"AIT_INVALID_ARGUMENT", "batch " + std::to_string(batch) + " is outside 1.." + std::to_string(s->max_batch) + " of " + s->name};
  return false;
}

// Each output's shape after a run and its byte count: the shape at the batch, or, for a model whose sizes the data
// decides (run-time dims), the shape the library reports; the outputs' data are their first bytes.
bool OutputShapes(ModelState* s, int64_t batch, std::vector<std::vector<int64_t>>* shapes, std::vector<size_t>* bytes, Failure* failure) {
  const bool input_dims = s->ait.GetNumInputDims && s->ait.GetNumInputDims(s->model) > 0;  // seq sizes outputs too
  const bool dynamic = s->ait.GetOutputShape && ((s->ait.HasRuntimeDims && s->ait.HasRuntimeDims(s->model)) || input_dims);
  for (size_t i = 0; i < s->outputs.size(); ++i) {
    const TensorSlot& out = s->outputs[i];
    std::vector<int64_t> shape = out.max_shape;
    if (out.batch_axis >= 0) shape[out.batch_axis] = batch;
    if (dynamic) {
      int64_t dims[16];
      int rank = 0;
      if (!s->Check(s->ait.GetOutputShape(s->model, static_cast<int>(i), dims, 16, &rank), "output shape of '" + out.name + "'", failure)) return false;
      shape.assign(dims, dims + rank);
    }
    size_t elements = 1;
    for (int64_t d : shape) elements *= static_cast<size_t>(d);
    bytes->push_back(std::min(elements * DTypeBytes(out.dtype), out.BytesAt(out.batch_axis >= 0 ? s->max_batch : 1)));
    shapes->push_back(std::move(shape));
  }
  return true;
}

// Input shapes of a run (model ABI 5 libraries): the given ones, or none (every input at its max shape).
bool SetInputShapes(ModelState* s, const std::vector<std::vector<int64_t>>& shapes, Failure* failure) {
  if (!s->ait.SetInputShape) return true;  // a library without input dims
  for (size_t i = 0; i < s->inputs.size(); ++i) {
    const bool given = i < shapes.size();
    if (!s->Check(s->ait.SetInputShape(s->model, static_cast<int>(i), given ? shapes[i].data() : nullptr, given ? static_cast<int>(shapes[i].size()) : -1),
                  "shape of input '" + s->inputs[i].name + "'", failure))
      return false;
  }
  return true;
}

// run(batch, inputs?, {returnOutputs, inputShapes}): copies host inputs into the binding's device buffers, runs, copies
// outputs back. `inputShapes` (one per input): the shapes of a model with input dims (seq) below their max.
class RunWorker : public ModelWorker {
 public:
  RunWorker(Napi::Env env, Napi::Object object, ModelState* s, int64_t batch, std::vector<std::vector<uint8_t>> inputs, bool return_outputs,
            std::vector<std::vector<int64_t>> input_shapes = {})
      : ModelWorker(env, object, s), batch_(batch), inputs_(std::move(inputs)), return_outputs_(return_outputs),
        input_shapes_(std::move(input_shapes)) {}

 protected:
  bool Work() override {
    ModelState* s = state_;
    if (!SetInputShapes(s, input_shapes_, &failure_)) return false;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (!s->CheckDevice(s->device.Memcpy(s->inputs[i].device, inputs_[i].data(), inputs_[i].size(), kMemcpyDefault),
                          "copying input '" + s->inputs[i].name + "' to the device", &failure_))
        return false;
    }
    if (!s->Check(s->ait.SetGraphMode(s->model, 0), "graph mode off", &failure_)) return false;
    if (!s->Check(s->ait.Run(s->model, batch_, s->stream), "running " + s->name + " at batch " + std::to_string(batch_), &failure_)) return false;
    if (!s->CheckDevice(s->device.StreamSynchronize(s->stream), "waiting for the run of " + s->name, &failure_)) return false;
    if (!return_outputs_) return true;
    std::vector<size_t> bytes;
    if (!OutputShapes(s, batch_, &shapes_, &bytes, &failure_)) return false;
    for (size_t i = 0; i < s->outputs.size(); ++i) {
      const TensorSlot& out = s->outputs[i];
      outputs_.emplace_back(bytes[i]);
      if (!s->CheckDevice(s->device.Memcpy(outputs_.back().data(), out.device, outputs_.back().size(), kMemcpyDefault),
                          "copying output '" + out.name + "' to the host", &failure_))
        return false;
    }
    return true;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, outputs_.size());
    for (size_t i = 0; i < outputs_.size(); ++i) a.Set(i, Napi::Buffer<uint8_t>::Copy(env, outputs_[i].data(), outputs_[i].size()));
    if (!shapes_.empty()) a.Set("shapes", ShapesArray(env, shapes_));  // each output's shape (run-time dims included)
    return a;
  }

 private:
  int64_t batch_;
  std::vector<std::vector<uint8_t>> inputs_;
  bool return_outputs_;
  std::vector<std::vector<int64_t>> input_shapes_;
  std::vector<std::vector<uint8_t>> outputs_;
  std::vector<std::vector<int64_t>> shapes_;
};

Napi::Value Rejected(Napi::Env env, const Failure& failure, const std::string& library) {
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  d.Reject(MakeError(env, failure, library).Value());
  return d.Promise();
}

// The host inputs of run/runDebug (info[1], optional), copied; false with `failure` set when they do not fit.
bool HostInputs(const Napi::CallbackInfo& info, ModelState* s, double batch, std::vector<std::vector<uint8_t>>* inputs, Failure* failure,
                const std::vector<std::vector<int64_t>>& shapes = {}) {
  if (info.Length() <= 1 || !info[1].IsArray()) return true;
  Napi::Array given = info[1].As<Napi::Array>();
  if (given.Length() != s->inputs.size()) {
    *failure = {"AIT_INVALID_ARGUMENT", s->name + " has " + std::to_string(s->inputs.size()) + " input(s), " + std::to_string(given.Length()) + " given"};
    return false;
  }
  for (uint32_t i = 0; i < given.Length(); ++i) {
    const uint8_t* data = nullptr;
    size_t size = 0;
    size_t want = s->inputs[i].BytesAt(static_cast<int64_t>(batch));
    if (i < shapes.size()) {  // a given shape (input dims below their max): its bytes
      want = DTypeBytes(s->inputs[i].dtype);
      for (int64_t d : shapes[i]) want *= static_cast<size_t>(d > 0 ? d : 0);
    }
    if (!BytesOf(given.Get(i), &data, &size)) {
      *failure = {"AIT_INVALID_ARGUMENT", "input '" + s->inputs[i].name + "' is not a Buffer or TypedArray"};
      return false;
    }
    if (size != want) {
      *failure = {"AIT_INVALID_ARGUMENT", "input '" + s->inputs[i].name + "' has " + std::to_string(size) + " bytes; batch " +
                                              std::to_string(static_cast<int64_t>(batch)) + " needs " + std::to_string(want)};
      return false;
    }
    inputs->emplace_back(data, data + size);  // copied: the JS buffer may change while the worker runs
  }
  return true;
}

Napi::Value Model::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  ModelState* s = state_.get();
  Failure failure;
  double batch = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!CheckBatch(s, batch, &failure)) return Rejected(env, failure, s->library_path);
  bool return_outputs = true;
  std::vector<std::vector<int64_t>> input_shapes;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Value r = info[2].As<Napi::Object>().Get("returnOutputs");
    if (!r.IsUndefined()) return_outputs = r.ToBoolean();
    Napi::Value given = info[2].As<Napi::Object>().Get("inputShapes");
    if (!given.IsUndefined()) {
      if (!given.IsArray() || given.As<Napi::Array>().Length() != s->inputs.size() || !s->ait.SetInputShape)
        return Rejected(env, {"AIT_INVALID_ARGUMENT", "inputShapes: one shape (number[]) per input, for a library with input dims (model ABI 5)"}, s->library_path);
      Napi::Array shapes = given.As<Napi::Array>();
      for (uint32_t i = 0; i < shapes.Length(); ++i) {
        Napi::Value shape = shapes.Get(i);
        if (!shape.IsArray()) return Rejected(env, {"AIT_INVALID_ARGUMENT", "inputShapes[" + std::to_string(i) + "] is not an array"}, s->library_path);
        std::vector<int64_t> dims;
        Napi::Array a = shape.As<Napi::Array>();
        for (uint32_t d = 0; d < a.Length(); ++d) dims.push_back(a.Get(d).IsNumber() ? static_cast<int64_t>(a.Get(d).As<Napi::Number>().DoubleValue()) : -1);
        input_shapes.push_back(std::move(dims));
      }
    }
  }
  std::vector<std::vector<uint8_t>> inputs;
  if (!HostInputs(info, s, batch, &inputs, &failure, input_shapes)) return Rejected(env, failure, s->library_path);
  auto* worker = new RunWorker(env, info.This().As<Napi::Object>(), s, static_cast<int64_t>(batch), std::move(inputs), return_outputs,
                               std::move(input_shapes));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// runDebug(batch, inputs?): AITModelRunDebug; every op's output as the runtime hands it to the callback, then the
// model's outputs.
class RunDebugWorker : public ModelWorker {
 public:
  RunDebugWorker(Napi::Env env, Napi::Object object, ModelState* s, int64_t batch, std::vector<std::vector<uint8_t>> inputs)
      : ModelWorker(env, object, s), batch_(batch), inputs_(std::move(inputs)) {}

 protected:
  struct NodeOutput {
    std::string id;
    AITDType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  static void Collect(void* user, const char* node_id, AITDType dtype, int rank, const int64_t* shape, const void* host_data, size_t bytes) {
    auto* self = static_cast<RunDebugWorker*>(user);
    NodeOutput n{node_id ? node_id : "", dtype, std::vector<int64_t>(shape, shape + (rank > 0 ? rank : 0)), {}};
    const auto* p = static_cast<const uint8_t*>(host_data);
    n.data.assign(p, p + bytes);
    self->nodes_.push_back(std::move(n));
  }
  bool Work() override {
    ModelState* s = state_;
    if (!SetInputShapes(s, {}, &failure_)) return false;  // every input at its max shape (input dims)
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (!s->CheckDevice(s->device.Memcpy(s->inputs[i].device, inputs_[i].data(), inputs_[i].size(), kMemcpyDefault),
                          "copying input '" + s->inputs[i].name + "' to the device", &failure_))
        return false;
    }
    if (!s->Check(s->ait.SetGraphMode(s->model, 0), "graph mode off", &failure_)) return false;
    if (!s->Check(s->ait.RunDebug(s->model, batch_, s->stream, &RunDebugWorker::Collect, this),
                  "debug run of " + s->name + " at batch " + std::to_string(batch_), &failure_))
      return false;
    if (!s->CheckDevice(s->device.StreamSynchronize(s->stream), "waiting for the debug run of " + s->name, &failure_)) return false;
    std::vector<size_t> bytes;
    if (!OutputShapes(s, batch_, &shapes_, &bytes, &failure_)) return false;
    for (size_t i = 0; i < s->outputs.size(); ++i) {
      const TensorSlot& out = s->outputs[i];
      outputs_.emplace_back(bytes[i]);
      if (!s->CheckDevice(s->device.Memcpy(outputs_.back().data(), out.device, outputs_.back().size(), kMemcpyDefault),
                          "copying output '" + out.name + "' to the host", &failure_))
        return false;
    }
    return true;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array outputs = Napi::Array::New(env, outputs_.size());
    for (size_t i = 0; i < outputs_.size(); ++i) outputs.Set(i, Napi::Buffer<uint8_t>::Copy(env, outputs_[i].data(), outputs_[i].size()));
    Napi::Array nodes = Napi::Array::New(env, nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) {
      Napi::Object n = Napi::Object::New(env);
      n.Set("id", nodes_[i].id);
      n.Set("dtype", DTypeName(nodes_[i].dtype));
      n.Set("shape", ShapeArray(env, nodes_[i].shape));
      n.Set("data", Napi::Buffer<uint8_t>::Copy(env, nodes_[i].data.data(), nodes_[i].data.size()));
      nodes.Set(i, n);
    }
    o.Set("outputs", outputs);
    o.Set("shapes", ShapesArray(env, shapes_));
    o.Set("nodes", nodes);
    return o;
  }

 private:
  int64_t batch_;
  std::vector<std::vector<uint8_t>> inputs_;
  std::vector<std::vector<uint8_t>> outputs_;
  std::vector<NodeOutput> nodes_;
  std::vector<std::vector<int64_t>> shapes_;
};

Napi::Value Model::RunDebug(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  ModelState* s = state_.get();
  if (!s->ait.RunDebug) {
    return Rejected(env,
                    {"no-debug-support", s->library_path + " has no debug runs (it exports no AITModelRunDebug: built by an older " +
                                             "compiler, before model ABI 3): compile the model again to verify it per node"},
                    s->library_path);
  }
  Failure failure;
  double batch = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!CheckBatch(s, batch, &failure)) return Rejected(env, failure, s->library_path);
  std::vector<std::vector<uint8_t>> inputs;
  if (!HostInputs(info, s, batch, &inputs, &failure)) return Rejected(env, failure, s->library_path);
  auto* worker = new RunDebugWorker(env, info.This().As<Napi::Object>(), s, static_cast<int64_t>(batch), std::move(inputs));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

int64_t IntOption(Napi::Object o, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? static_cast<int64_t>(v.As<Napi::Number>().DoubleValue()) : fallback;
}

// time({batchSize, iterations, warmupIterations, graph}): latency of each iteration, from an event recorded before
// the run to one recorded after it on the model's stream, waited for before the next iteration.
class TimeWorker : public ModelWorker {
 public:
  TimeWorker(Napi::Env env, Napi::Object object, ModelState* s, int64_t batch, int64_t iterations, int64_t warmup, bool graph)
      : ModelWorker(env, object, s), batch_(batch), iterations_(iterations), warmup_(warmup), graph_(graph) {}

 protected:
  bool Work() override {
    ModelState* s = state_;
    if (!SetInputShapes(s, {}, &failure_)) return false;  // every input at its max shape (input dims)
    void *start = nullptr, *stop = nullptr;
    bool ok = s->CheckDevice(s->device.EventCreate(&start), "creating an event", &failure_) &&
              s->CheckDevice(s->device.EventCreate(&stop), "creating an event", &failure_) && Measure(start, stop);
    if (start) s->device.EventDestroy(start);
    if (stop) s->device.EventDestroy(stop);
    s->ait.SetGraphMode(s->model, 0);
    return ok;
  }
  bool Measure(void* start, void* stop) {
    ModelState* s = state_;
    const std::string what = "running " + s->name + " at batch " + std::to_string(batch_) + (graph_ ? " (CUDA graph)" : "");
    if (!s->Check(s->ait.SetProfiling(s->model, 0), "profiling off", &failure_)) return false;
    if (!s->Check(s->ait.SetGraphMode(s->model, graph_ ? 1 : 0), "setting graph mode", &failure_)) return false;
    for (int64_t i = 0; i < warmup_; ++i) {
      if (!s->Check(s->ait.Run(s->model, batch_, s->stream), what, &failure_)) return false;
    }
    if (!s->CheckDevice(s->device.StreamSynchronize(s->stream), "waiting for warm-up runs", &failure_)) return false;
    latencies_ms_.reserve(iterations_);
    for (int64_t i = 0; i < iterations_; ++i) {
      float ms = 0;
      if (!s->CheckDevice(s->device.EventRecord(start, s->stream), "recording an event", &failure_)) return false;
      if (!s->Check(s->ait.Run(s->model, batch_, s->stream), what, &failure_)) return false;
      if (!s->CheckDevice(s->device.EventRecord(stop, s->stream), "recording an event", &failure_)) return false;
      if (!s->CheckDevice(s->device.EventSynchronize(stop), "waiting for a timed run", &failure_)) return false;
      if (!s->CheckDevice(s->device.EventElapsedTime(&ms, start, stop), "reading an event time", &failure_)) return false;
      latencies_ms_.push_back(ms);
    }
    return true;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("timer", state_->device.TimerName());
    o.Set("batchSize", Napi::Number::New(env, static_cast<double>(batch_)));
    o.Set("graph", graph_);
    Napi::Float64Array a = Napi::Float64Array::New(env, latencies_ms_.size());
    for (size_t i = 0; i < latencies_ms_.size(); ++i) a[i] = latencies_ms_[i];
    o.Set("latenciesMs", a);
    return o;
  }

 private:
  int64_t batch_, iterations_, warmup_;
  bool graph_;
  std::vector<double> latencies_ms_;
};

Napi::Value Model::Time(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "time({batchSize, iterations, warmupIterations, graph})").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  ModelState* s = state_.get();
  Failure failure;
  double batch = o.Get("batchSize").IsNumber() ? o.Get("batchSize").As<Napi::Number>().DoubleValue() : 0;
  if (!CheckBatch(s, batch, &failure)) return Rejected(env, failure, s->library_path);
  int64_t iterations = IntOption(o, "iterations", 100), warmup = IntOption(o, "warmupIterations", 10);
  if (iterations < 1 || warmup < 0) return Rejected(env, {"AIT_INVALID_ARGUMENT", "iterations must be >= 1 and warmupIterations >= 0"}, s->library_path);
  auto* worker = new TimeWorker(env, info.This().As<Napi::Object>(), s, static_cast<int64_t>(batch), iterations, warmup, o.Get("graph").ToBoolean());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// profile({batchSize, iterations, warmupIterations}): the runtime's per-op profile (events around each op), parsed.
class ProfileWorker : public ModelWorker {
 public:
  ProfileWorker(Napi::Env env, Napi::Object object, ModelState* s, int64_t batch, int64_t iterations, int64_t warmup)
      : ModelWorker(env, object, s), batch_(batch), iterations_(iterations), warmup_(warmup) {}

 protected:
  bool Work() override {
    ModelState* s = state_;
    if (!SetInputShapes(s, {}, &failure_)) return false;  // every input at its max shape (input dims)
    bool ok = Collect();
    s->ait.SetProfiling(s->model, 0);
    return ok;
  }
  bool Collect() {
    ModelState* s = state_;
    const std::string what = "profiling " + s->name + " at batch " + std::to_string(batch_);
    if (!s->Check(s->ait.SetGraphMode(s->model, 0), "graph mode off", &failure_)) return false;
    for (int64_t i = 0; i < warmup_; ++i) {
      if (!s->Check(s->ait.Run(s->model, batch_, s->stream), what, &failure_)) return false;
    }
    if (!s->CheckDevice(s->device.StreamSynchronize(s->stream), "waiting for warm-up runs", &failure_)) return false;
    if (!s->Check(s->ait.SetProfiling(s->model, 1), "profiling on", &failure_)) return false;
    if (!s->Check(s->ait.ResetProfile(s->model), "resetting the profile", &failure_)) return false;
    for (int64_t i = 0; i < iterations_; ++i) {
      if (!s->Check(s->ait.Run(s->model, batch_, s->stream), what, &failure_)) return false;
    }
    size_t length = 0;
    if (!s->Check(s->ait.GetProfileJson(s->model, nullptr, 0, &length), "profile JSON length", &failure_)) return false;
    json_.assign(length + 1, '\0');
    if (!s->Check(s->ait.GetProfileJson(s->model, &json_[0], json_.size(), &length), "profile JSON", &failure_)) return false;
    json_.resize(length);
    return true;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object json = env.Global().Get("JSON").As<Napi::Object>();
    Napi::Value parsed = json.Get("parse").As<Napi::Function>().Call(json, {Napi::String::New(env, json_)});
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      reject_result_ = true;
      return MakeError(env, {"profile-json", "the profile JSON of " + state_->library_path + " does not parse: " + e.Message()}, state_->library_path).Value();
    }
    if (parsed.IsObject()) parsed.As<Napi::Object>().Set("timer", state_->device.TimerName());
    return parsed;
  }

 private:
  int64_t batch_, iterations_, warmup_;
  std::string json_;
};

Napi::Value Model::Profile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  ModelState* s = state_.get();
  Failure failure;
  double batch = o.Get("batchSize").IsNumber() ? o.Get("batchSize").As<Napi::Number>().DoubleValue() : 1;
  if (!CheckBatch(s, batch, &failure)) return Rejected(env, failure, s->library_path);
  int64_t iterations = IntOption(o, "iterations", 10), warmup = IntOption(o, "warmupIterations", 2);
  if (iterations < 1 || warmup < 0) return Rejected(env, {"AIT_INVALID_ARGUMENT", "iterations must be >= 1 and warmupIterations >= 0"}, s->library_path);
  auto* worker = new ProfileWorker(env, info.This().As<Napi::Object>(), s, static_cast<int64_t>(batch), iterations, warmup);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Model::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ && state_->closed) return env.Undefined();  // closing twice is harmless
  if (!Usable(env)) return env.Undefined();
  state_->Release();
  return env.Undefined();
}

// openModel(libraryPath, {weightsPath?}) -> Promise<Model>
class OpenWorker : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Env env, std::string library, std::string weights)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), library_(std::move(library)), weights_(std::move(weights)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      state_ = OpenModel(library_, weights_, &failure_);
    } catch (const std::exception& e) {
      failure_ = {"internal", std::string("binding failure: ") + e.what()};
    }
    if (!state_) SetError(failure_.message);
  }
  void OnOK() override {
    Napi::Env env = Env();
    AddonData* data = env.GetInstanceData<AddonData>();
    ModelState* raw = state_.release();
    Napi::Object model = data->model_constructor.New({Napi::External<ModelState>::New(env, raw)});
    deferred_.Resolve(model);
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(MakeError(Env(), failure_, library_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string library_, weights_;
  std::unique_ptr<ModelState> state_;
  Failure failure_;
};

Napi::Value OpenModelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "openModel(libraryPath: string, options?: {weightsPath?: string})").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string weights;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value w = info[1].As<Napi::Object>().Get("weightsPath");
    if (w.IsString()) weights = w.As<Napi::String>();
  }
  auto* worker = new OpenWorker(env, info[0].As<Napi::String>(), weights);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->model_constructor = Napi::Persistent(Model::Define(env));
  env.SetInstanceData(data);
  exports.Set("bindingApiVersion", kBindingApiVersion);
  exports.Set("aitAbiVersion", AIT_ABI_VERSION);
  exports.Set("openModel", Napi::Function::New(env, OpenModelJs, "openModel"));
  return exports;
}

}  // namespace

NODE_API_MODULE(ait_native, Init)
