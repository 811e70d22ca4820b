// The AIT runtime: implements the C ABI of ait_runtime.h over the ModelDescription of ait_model.h.
// Shipped as a source into every build and linked into lib<name>.so with the generated model code.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "ait_model.h"
#include "ait_runtime.h"
#include "safetensors.h"

namespace {

thread_local std::string g_last_error;

constexpr size_t kWeightAlignment = 256;
constexpr size_t kMaxCachedGraphs = 8;

size_t align_up(size_t value, size_t alignment) { return (value + alignment - 1) / alignment * alignment; }

const char* dtype_name(ait::DType dtype) {
  switch (dtype) {
    case ait::DType::kFloat16: return "F16";
    case ait::DType::kFloat32: return "F32";
    case ait::DType::kBFloat16: return "BF16";
    case ait::DType::kInt32: return "I32";
    case ait::DType::kInt64: return "I64";
    case ait::DType::kInt8: return "I8";
    case ait::DType::kUInt8: return "U8";
    case ait::DType::kBool: return "BOOL";
  }
  return "?";
}

std::string json_escape(const char* text) {
  std::string out;
  for (const char* p = text ? text : ""; *p; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') { out.push_back('\\'); out.push_back(static_cast<char>(c)); }
    else if (c < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
    else out.push_back(static_cast<char>(c));
  }
  return out;
}

// splitmix64: a small deterministic generator for AITModelRandomizeWeights.
uint64_t next_random(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct CachedGraph {
  int64_t batch = 0;
  std::vector<int64_t> input_dims;  // the input dims' values it was captured with (seq): part of the key
  uint64_t pointer_generation = 0;
  uint64_t last_use = 0;
  cudaGraphExec_t exec = nullptr;
};

struct OpProfile {
  int64_t calls = 0;
  double total_ms = 0;
  double min_ms = 0;
  double max_ms = 0;
};

}  // namespace

struct AITModel {
  const ait::ModelDescription* desc = nullptr;
  std::string last_error;
  int device = 0;

  void* weight_block = nullptr;
  std::vector<void*> weight_ptrs;
  std::vector<size_t> weight_bytes;
  std::vector<char> weight_bound;
  bool weights_prepared = false;  // the prepare ops ran since the last change of a bound weight
  uint8_t* arena = nullptr;
  void* workspace = nullptr;

  std::vector<void*> inputs;
  std::vector<void*> outputs;
  uint64_t pointer_generation = 1;
  std::vector<int64_t> dims;  // run-time dims of the last run (ModelDescription::num_dims)
  int64_t last_batch = 0;     // batch of the last run (0: none yet)
  // Input shapes given by AITModelSetInputShape (empty: not given, the input dims take their max).
  std::vector<std::vector<int64_t>> input_shapes;
  std::vector<int64_t> input_dim_values;  // per input_dims entry, for the run about to start (the graph cache key)
  int32_t data_dims = 0;                  // run-time dims the data decides (num_dims minus the input dims' slots)

  bool graph_mode = false;
  cudaStream_t capture_stream = nullptr;
  std::vector<CachedGraph> graphs;
  uint64_t use_counter = 0;

  bool profiling = false;
  std::vector<cudaEvent_t> op_events;  // num_ops + 1
  std::vector<OpProfile> op_profiles;
  int64_t profiled_runs = 0;
  int64_t last_profiled_batch = 0;
  double total_profiled_ms = 0;

  AITStatus fail(AITStatus status, const std::string& message) {
    last_error = message;
    return status;
  }
  AITStatus check_cuda(cudaError_t status, const char* what) {
    if (status == cudaSuccess) return AIT_OK;
    return fail(AIT_CUDA_ERROR, std::string(what) + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
};

namespace {

#define AIT_TRY(model, status_expr)          \
  do {                                       \
    AITStatus ait_s_ = (status_expr);        \
    if (ait_s_ != AIT_OK) return ait_s_;     \
  } while (0)

// Wraps a C ABI body: no exception crosses the interface.
template <class Body>
AITStatus guarded(AITModel* model, Body body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    if (model) model->last_error = "host memory allocation failed";
    else g_last_error = "host memory allocation failed";
    return AIT_INTERNAL_ERROR;
  } catch (const std::exception& e) {
    if (model) model->last_error = std::string("internal error: ") + e.what();
    else g_last_error = std::string("internal error: ") + e.what();
    return AIT_INTERNAL_ERROR;
  } catch (...) {
    if (model) model->last_error = "internal error";
    else g_last_error = "internal error";
    return AIT_INTERNAL_ERROR;
  }
}

std::string op_label(const ait::OpDescription& op) {
  return std::string("op ") + op.id + " '" + op.name + "' (kernel " + op.kernel + ")";
}

// Enqueues every op on `stream`, optionally recording profiling events.
AITStatus launch_ops(AITModel* m, int64_t batch, cudaStream_t stream, bool with_events) {
  ait::LaunchContext context;
  context.arena = m->arena;
  context.weights = m->weight_ptrs.data();
  context.inputs = m->inputs.data();
  context.outputs = m->outputs.data();
  context.batch = batch;
  context.stream = stream;
  context.workspace = m->workspace;
  context.workspace_bytes = m->desc->workspace_bytes;
  context.dims = m->dims.data();
  m->last_batch = batch;
  if (with_events) AIT_TRY(m, m->check_cuda(cudaEventRecord(m->op_events[0], stream), "cudaEventRecord"));
  for (int32_t i = 0; i < m->desc->num_ops; ++i) {
    const ait::OpDescription& op = m->desc->ops[i];
    const char* failure = op.launch(context);
    if (failure) return m->fail(AIT_KERNEL_ERROR, op_label(op) + " failed: " + failure);
    cudaError_t launch_status = cudaGetLastError();
    if (launch_status != cudaSuccess)
      return m->fail(AIT_CUDA_ERROR, op_label(op) + " failed to launch: " + cudaGetErrorName(launch_status) + " (" +
                                         cudaGetErrorString(launch_status) + ")");
    if (with_events) AIT_TRY(m, m->check_cuda(cudaEventRecord(m->op_events[i + 1], stream), "cudaEventRecord"));
  }
  return AIT_OK;
}

void destroy_graphs(AITModel* m) {
  for (CachedGraph& g : m->graphs)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  m->graphs.clear();
}

AITStatus capture_graph(AITModel* m, int64_t batch, cudaGraphExec_t* out) {
  AIT_TRY(m, m->check_cuda(cudaStreamBeginCapture(m->capture_stream, cudaStreamCaptureModeThreadLocal),
                           "cudaStreamBeginCapture"));
  AITStatus launched = launch_ops(m, batch, m->capture_stream, false);
  cudaGraph_t graph = nullptr;
  cudaError_t end_status = cudaStreamEndCapture(m->capture_stream, &graph);
  if (launched != AIT_OK) {
    if (graph) cudaGraphDestroy(graph);
    m->last_error = "while capturing a CUDA graph at batch " + std::to_string(batch) + ": " + m->last_error;
    return launched;
  }
  AIT_TRY(m, m->check_cuda(end_status, "cudaStreamEndCapture"));
  cudaError_t instantiate_status = cudaGraphInstantiate(out, graph, 0);
  cudaGraphDestroy(graph);
  return m->check_cuda(instantiate_status, "cudaGraphInstantiate");
}

AITStatus run_graph(AITModel* m, int64_t batch, cudaStream_t stream) {
  // launch functions read the input dims (c.dims) while they are captured: a new seq captures again
  CachedGraph* found = nullptr;
  for (CachedGraph& g : m->graphs)
    if (g.batch == batch && g.pointer_generation == m->pointer_generation && g.input_dims == m->input_dim_values) found = &g;
  if (!found) {
    // Drop graphs captured with stale pointers, then the least recently used one if the cache is full.
    m->graphs.erase(std::remove_if(m->graphs.begin(), m->graphs.end(),
                                   [m](const CachedGraph& g) {
                                     if (g.pointer_generation == m->pointer_generation) return false;
                                     cudaGraphExecDestroy(g.exec);
                                     return true;
                                   }),
                    m->graphs.end());
    if (m->graphs.size() >= kMaxCachedGraphs) {
      auto oldest = std::min_element(m->graphs.begin(), m->graphs.end(),
                                     [](const CachedGraph& a, const CachedGraph& b) { return a.last_use < b.last_use; });
      cudaGraphExecDestroy(oldest->exec);
      m->graphs.erase(oldest);
    }
    CachedGraph entry;
    entry.batch = batch;
    entry.pointer_generation = m->pointer_generation;
    entry.input_dims = m->input_dim_values;
    AIT_TRY(m, capture_graph(m, batch, &entry.exec));
    m->graphs.push_back(entry);
    found = &m->graphs.back();
  }
  found->last_use = ++m->use_counter;
  return m->check_cuda(cudaGraphLaunch(found->exec, stream), "cudaGraphLaunch");
}

AITStatus run_profiled(AITModel* m, int64_t batch, cudaStream_t stream) {
  const int32_t n = m->desc->num_ops;
  if (m->op_events.empty()) {
    m->op_events.resize(n + 1, nullptr);
    for (cudaEvent_t& e : m->op_events) AIT_TRY(m, m->check_cuda(cudaEventCreate(&e), "cudaEventCreate"));
  }
  AIT_TRY(m, launch_ops(m, batch, stream, true));
  AIT_TRY(m, m->check_cuda(cudaEventSynchronize(m->op_events[n]), "cudaEventSynchronize (profiled run)"));
  if (m->op_profiles.size() != static_cast<size_t>(n)) m->op_profiles.assign(n, OpProfile());
  for (int32_t i = 0; i < n; ++i) {
    float ms = 0;
    AIT_TRY(m, m->check_cuda(cudaEventElapsedTime(&ms, m->op_events[i], m->op_events[i + 1]), "cudaEventElapsedTime"));
    OpProfile& p = m->op_profiles[i];
    p.min_ms = p.calls == 0 ? ms : std::min(p.min_ms, static_cast<double>(ms));
    p.max_ms = p.calls == 0 ? ms : std::max(p.max_ms, static_cast<double>(ms));
    p.total_ms += ms;
    ++p.calls;
  }
  float total = 0;
  AIT_TRY(m, m->check_cuda(cudaEventElapsedTime(&total, m->op_events[0], m->op_events[n]), "cudaEventElapsedTime"));
  m->total_profiled_ms += total;
  ++m->profiled_runs;
  m->last_profiled_batch = batch;
  return AIT_OK;
}

bool is_prepared_weight(const ait::WeightDescription& w) { return w.origin == ait::WeightOrigin::kPrepared; }

AITStatus bind_weight_bytes(AITModel* m, int index, const void* data, size_t bytes, bool on_device) {
  const ait::WeightDescription& w = m->desc->weights[index];
  if (is_prepared_weight(w))
    return m->fail(AIT_INVALID_ARGUMENT, std::string("weight '") + w.name +
                                             "' is computed on the device from other weights (prepare ops); bind those instead");
  if (bytes != m->weight_bytes[index])
    return m->fail(AIT_INVALID_ARGUMENT, std::string("weight '") + w.name + "' needs " +
                                             std::to_string(m->weight_bytes[index]) + " bytes, got " + std::to_string(bytes));
  if (bytes > 0)
    AIT_TRY(m, m->check_cuda(cudaMemcpy(m->weight_ptrs[index], data, bytes, on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice),
                             (std::string("copying weight '") + w.name + "'").c_str()));
  m->weight_bound[index] = 1;
  m->weights_prepared = false;
  return AIT_OK;
}

// Runs the prepare ops (weight layout transforms of graph-only models) on `stream`; marks prepared weights bound.
AITStatus prepare_weights(AITModel* m, cudaStream_t stream) {
  ait::LaunchContext context{};
  context.weights = m->weight_ptrs.data();
  context.stream = stream;
  context.workspace = m->workspace;
  context.workspace_bytes = m->desc->workspace_bytes;
  for (int32_t i = 0; i < m->desc->num_prepare_ops; ++i) {
    const ait::OpDescription& op = m->desc->prepare_ops[i];
    const char* failure = op.launch(context);
    if (failure) return m->fail(AIT_KERNEL_ERROR, "weight preparation " + op_label(op) + " failed: " + failure);
    cudaError_t launch_status = cudaGetLastError();
    if (launch_status != cudaSuccess)
      return m->fail(AIT_CUDA_ERROR, "weight preparation " + op_label(op) + " failed to launch: " + cudaGetErrorName(launch_status));
  }
  for (int32_t i = 0; i < m->desc->num_weights; ++i)
    if (is_prepared_weight(m->desc->weights[i])) m->weight_bound[i] = 1;
  m->weights_prepared = true;
  return AIT_OK;
}

int find_weight(const AITModel* m, const char* name) {
  for (int32_t i = 0; i < m->desc->num_weights; ++i)
    if (std::strcmp(m->desc->weights[i].name, name) == 0) return i;
  return -1;
}

AITStatus load_weights(AITModel* m, const char* path, int* num_bound) {
  ait::SafetensorsFile file;
  std::string err = ait::read_safetensors(path, &file);
  if (!err.empty()) return m->fail(AIT_WEIGHTS_ERROR, err);
  int bound = 0;
  std::vector<uint8_t> converted;
  for (const auto& kv : file.tensors) {
    int index = find_weight(m, kv.first.c_str());
    if (index < 0) continue;
    const ait::WeightDescription& w = m->desc->weights[index];
    const ait::SafetensorsEntry& e = kv.second;
    bool same_shape = e.shape.size() == static_cast<size_t>(w.rank);
    for (int32_t d = 0; same_shape && d < w.rank; ++d) same_shape = e.shape[d] == w.shape[d];
    if (!same_shape) {
      std::ostringstream s;
      s << "safetensors file '" << path << "': tensor \"" << kv.first << "\" has shape [";
      for (size_t d = 0; d < e.shape.size(); ++d) s << (d ? "," : "") << e.shape[d];
      s << "], the model's weight has [";
      for (int32_t d = 0; d < w.rank; ++d) s << (d ? "," : "") << w.shape[d];
      s << "]";
      return m->fail(AIT_WEIGHTS_ERROR, s.str());
    }
    const uint8_t* src = file.data.data() + e.begin;
    size_t bytes = e.end - e.begin;
    // The GPU holds ONNX bool tensors as one byte 0/1, declared kUInt8: BOOL and U8 entries are the same bytes.
    const bool one_byte_bool = (e.dtype == "BOOL" && w.dtype == ait::DType::kUInt8) || (e.dtype == "U8" && w.dtype == ait::DType::kBool);
    if (e.dtype != dtype_name(w.dtype) && !one_byte_bool) {
      // The only conversions: F32 <-> F16 (a compiler may write fp32 weights for an fp16 model, or the reverse).
      size_t count = bytes / ait::safetensors_dtype_bytes(e.dtype);
      if (e.dtype == "F32" && w.dtype == ait::DType::kFloat16) {
        converted.resize(count * 2);
        for (size_t i = 0; i < count; ++i) {
          float v;
          std::memcpy(&v, src + 4 * i, 4);
          uint16_t h = ait::float_to_half_bits(v);
          std::memcpy(converted.data() + 2 * i, &h, 2);
        }
      } else if (e.dtype == "F16" && w.dtype == ait::DType::kFloat32) {
        converted.resize(count * 4);
        for (size_t i = 0; i < count; ++i) {
          uint16_t h;
          std::memcpy(&h, src + 2 * i, 2);
          float v = ait::half_bits_to_float(h);
          std::memcpy(converted.data() + 4 * i, &v, 4);
        }
      } else {
        return m->fail(AIT_WEIGHTS_ERROR, std::string("safetensors file '") + path + "': tensor \"" + kv.first +
                                              "\" is " + e.dtype + ", the model's weight is " + dtype_name(w.dtype));
      }
      src = converted.data();
      bytes = converted.size();
    }
    AIT_TRY(m, bind_weight_bytes(m, index, src, bytes, false));
    ++bound;
  }
  if (num_bound) *num_bound = bound;
  return AIT_OK;
}

void release(AITModel* m) {
  if (!m) return;
  cudaDeviceSynchronize();  // pending runs may still read the buffers
  destroy_graphs(m);
  for (cudaEvent_t e : m->op_events)
    if (e) cudaEventDestroy(e);
  if (m->capture_stream) cudaStreamDestroy(m->capture_stream);
  if (m->weight_block) cudaFree(m->weight_block);
  if (m->arena) cudaFree(m->arena);
  if (m->workspace) cudaFree(m->workspace);
  delete m;
}

AITStatus create(const char* weights_path, AITModel** out_model) {
  *out_model = nullptr;
  const ait::ModelDescription* desc = ait_model_description();
  if (!desc || desc->abi_version != ait::kModelAbiVersion) {
    g_last_error = "model code was generated for model ABI " + std::to_string(desc ? desc->abi_version : 0) +
                   ", this runtime implements " + std::to_string(ait::kModelAbiVersion);
    return AIT_INTERNAL_ERROR;
  }
  AITModel* m = new AITModel();
  m->desc = desc;
  auto fail_create = [&](AITStatus s) {
    g_last_error = "creating model '" + std::string(desc->name) + "': " + m->last_error;
    release(m);
    return s;
  };
  AITStatus s = m->check_cuda(cudaGetDevice(&m->device), "cudaGetDevice");
  if (s != AIT_OK) return fail_create(s);

  size_t total_weight_bytes = 0;
  std::vector<size_t> offsets(desc->num_weights);
  m->weight_bytes.resize(desc->num_weights);
  for (int32_t i = 0; i < desc->num_weights; ++i) {
    const ait::WeightDescription& w = desc->weights[i];
    size_t count = 1;
    for (int32_t d = 0; d < w.rank; ++d) count *= static_cast<size_t>(w.shape[d]);
    m->weight_bytes[i] = count * ait::dtype_bytes(w.dtype);
    offsets[i] = total_weight_bytes;
    total_weight_bytes = align_up(total_weight_bytes + m->weight_bytes[i], kWeightAlignment);
  }
  if (total_weight_bytes > 0) {
    s = m->check_cuda(cudaMalloc(&m->weight_block, total_weight_bytes),
                      ("allocating " + std::to_string(total_weight_bytes) + " bytes of weights").c_str());
    if (s != AIT_OK) return fail_create(s);
  }
  m->weight_ptrs.resize(desc->num_weights);
  for (int32_t i = 0; i < desc->num_weights; ++i) m->weight_ptrs[i] = static_cast<uint8_t*>(m->weight_block) + offsets[i];
  m->weight_bound.assign(desc->num_weights, 0);

  if (desc->arena_bytes > 0) {
    s = m->check_cuda(cudaMalloc(reinterpret_cast<void**>(&m->arena), desc->arena_bytes),
                      ("allocating the " + std::to_string(desc->arena_bytes) + "-byte activation arena").c_str());
    if (s != AIT_OK) return fail_create(s);
  }
  if (desc->workspace_bytes > 0) {
    s = m->check_cuda(cudaMalloc(&m->workspace, desc->workspace_bytes), "allocating the kernel workspace");
    if (s != AIT_OK) return fail_create(s);
  }
  s = m->check_cuda(cudaStreamCreateWithFlags(&m->capture_stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (s != AIT_OK) return fail_create(s);
  m->inputs.assign(desc->num_inputs, nullptr);
  m->outputs.assign(desc->num_outputs, nullptr);
  m->dims.assign(desc->num_dims > 0 ? desc->num_dims : 1, 0);
  m->input_shapes.assign(desc->num_inputs, std::vector<int64_t>());
  m->input_dim_values.assign(desc->num_input_dims, 0);
  {
    std::vector<char> input_slot(m->dims.size(), 0);
    for (int32_t k = 0; k < desc->num_input_dims; ++k) {
      const ait::InputDimDescription& e = desc->input_dims[k];
      if (e.slot < 0 || e.slot >= desc->num_dims || e.input < 0 || e.input >= desc->num_inputs || e.axis < 0 ||
          e.axis >= desc->inputs[e.input].rank) {
        m->last_error = "malformed input dim table (entry " + std::to_string(k) + ")";
        return fail_create(AIT_INTERNAL_ERROR);
      }
      input_slot[e.slot] = 1;
    }
    for (int32_t k = 0; k < desc->num_dims; ++k) m->data_dims += input_slot[k] ? 0 : 1;
  }
  if (weights_path) {
    s = load_weights(m, weights_path, nullptr);
    if (s != AIT_OK) return fail_create(s);
  }
  *out_model = m;
  return AIT_OK;
}

AITStatus max_shape(AITModel* m, const ait::IoDescription* list, int count, int index, int64_t* shape, int capacity,
                    int* rank, int* batch_axis) {
  if (index < 0 || index >= count) return m->fail(AIT_INVALID_ARGUMENT, "index " + std::to_string(index) + " out of range");
  const ait::IoDescription& io = list[index];
  if (rank) *rank = io.rank;
  if (batch_axis) *batch_axis = io.batch_axis;
  if (shape)
    for (int d = 0; d < io.rank && d < capacity; ++d) shape[d] = io.max_shape[d];
  if (shape && capacity < io.rank)
    return m->fail(AIT_INVALID_ARGUMENT, std::string("'") + io.name + "' has rank " + std::to_string(io.rank) +
                                             ", capacity is " + std::to_string(capacity));
  return AIT_OK;
}

// The shape of output `index` after the last run: the generated output_shape function evaluates it from the run's
// batch and run-time dims (a model without one: the max shape with the batch axis at the last batch).
AITStatus output_shape(AITModel* m, int index, int64_t* shape, int capacity, int* rank) {
  const ait::ModelDescription* d = m->desc;
  if (index < 0 || index >= d->num_outputs) return m->fail(AIT_INVALID_ARGUMENT, "index " + std::to_string(index) + " out of range");
  if (m->last_batch == 0) return m->fail(AIT_NOT_READY, "no run yet: an output's shape is known after a run");
  const ait::IoDescription& io = d->outputs[index];
  if (rank) *rank = io.rank;
  if (!shape) return AIT_OK;
  if (capacity < io.rank)
    return m->fail(AIT_INVALID_ARGUMENT, std::string("'") + io.name + "' has rank " + std::to_string(io.rank) + ", capacity is " + std::to_string(capacity));
  int64_t full[ait::kMaxRank];
  for (int32_t a = 0; a < io.rank; ++a) full[a] = io.max_shape[a];
  if (io.batch_axis >= 0) full[io.batch_axis] = m->last_batch;
  if (d->output_shape) {
    ait::LaunchContext context{};
    context.batch = m->last_batch;
    context.dims = m->dims.data();
    d->output_shape(context, index, full);
  }
  for (int32_t a = 0; a < io.rank; ++a) shape[a] = full[a];
  return AIT_OK;
}

std::string dim_name(const AITModel* m, int32_t slot) {
  const ait::ModelDescription* d = m->desc;
  return d->dim_names && slot >= 0 && slot < d->num_dims ? d->dim_names[slot] : "dim " + std::to_string(slot);
}

// AITModelSetInputShape: the rank, each input dim within its bounds, every other axis its max (the batch axis
// 1..max batch: the run's batch is AITModelRun's argument). Stores the shape; rank < 0 forgets it (max shape).
AITStatus set_input_shape(AITModel* m, int index, const int64_t* shape, int rank) {
  const ait::ModelDescription* d = m->desc;
  if (index < 0 || index >= d->num_inputs) return m->fail(AIT_INVALID_ARGUMENT, "input index " + std::to_string(index) + " out of range");
  const ait::IoDescription& io = d->inputs[index];
  if (rank < 0) {
    m->input_shapes[index].clear();
    return AIT_OK;
  }
  if (rank != io.rank)
    return m->fail(AIT_INVALID_ARGUMENT, std::string("input '") + io.name + "' has rank " + std::to_string(io.rank) + ", got a shape of rank " + std::to_string(rank));
  if (rank > 0 && !shape) return m->fail(AIT_INVALID_ARGUMENT, "AITModelSetInputShape: shape is NULL");
  for (int32_t a = 0; a < rank; ++a) {
    const ait::InputDimDescription* dim = nullptr;
    for (int32_t k = 0; k < d->num_input_dims; ++k)
      if (d->input_dims[k].input == index && d->input_dims[k].axis == a) dim = &d->input_dims[k];
    int64_t lo = io.max_shape[a], hi = io.max_shape[a];
    std::string what = "is fixed";
    if (a == io.batch_axis) lo = 1, hi = d->max_batch, what = "is the batch";
    else if (dim) lo = dim->min, hi = dim->max, what = "is '" + dim_name(m, dim->slot) + "'";
    if (shape[a] < lo || shape[a] > hi)
      return m->fail(AIT_INVALID_ARGUMENT, std::string("input '") + io.name + "': axis " + std::to_string(a) + " (" + what + ") must be " +
                                               (lo == hi ? std::to_string(lo) : "in " + std::to_string(lo) + ".." + std::to_string(hi)) +
                                               ", got " + std::to_string(shape[a]));
  }
  m->input_shapes[index].assign(shape, shape + rank);
  return AIT_OK;
}

// Before a run: each input dim's value from its input's shape (or its max), into its dims slot; inputs that share a
// symbol must agree.
AITStatus resolve_input_dims(AITModel* m) {
  const ait::ModelDescription* d = m->desc;
  for (int32_t k = 0; k < d->num_input_dims; ++k) {
    const ait::InputDimDescription& e = d->input_dims[k];
    const std::vector<int64_t>& given = m->input_shapes[e.input];
    const int64_t value = given.empty() ? e.max : given[e.axis];
    for (int32_t j = 0; j < k; ++j) {
      const ait::InputDimDescription& other = d->input_dims[j];
      if (other.slot != e.slot || m->input_dim_values[j] == value) continue;
      return m->fail(AIT_INVALID_ARGUMENT, "inputs '" + std::string(d->inputs[other.input].name) + "' (axis " + std::to_string(other.axis) + ") and '" +
                                               d->inputs[e.input].name + "' (axis " + std::to_string(e.axis) + ") share '" + dim_name(m, e.slot) +
                                               "' but their shapes give " + std::to_string(m->input_dim_values[j]) + " and " +
                                               std::to_string(value) + (given.empty() || m->input_shapes[other.input].empty() ? " (an input whose shape is not set takes the max)" : ""));
    }
    m->input_dim_values[k] = value;
    m->dims[e.slot] = value;
  }
  return AIT_OK;
}

AITStatus run(AITModel* m, int64_t batch, cudaStream_t stream) {
  const ait::ModelDescription* d = m->desc;
  if (batch < 1 || batch > d->max_batch)
    return m->fail(AIT_INVALID_ARGUMENT, "batch " + std::to_string(batch) + " is outside 1.." + std::to_string(d->max_batch));
  int unbound = 0;
  std::string names;
  for (int32_t i = 0; i < d->num_weights; ++i)
    if (!is_prepared_weight(d->weights[i]) && !m->weight_bound[i] && ++unbound <= 3) names += std::string(unbound > 1 ? ", '" : "'") + d->weights[i].name + "'";
  if (unbound > 0)
    return m->fail(AIT_NOT_READY, std::to_string(unbound) + " weight(s) are not bound (" + names + (unbound > 3 ? ", ..." : "") +
                                      "): load a weights file, bind them by name, or randomize them explicitly");
  for (int32_t i = 0; i < d->num_inputs; ++i)
    if (!m->inputs[i]) return m->fail(AIT_NOT_READY, std::string("input '") + d->inputs[i].name + "' is not set");
  for (int32_t i = 0; i < d->num_outputs; ++i)
    if (!m->outputs[i]) return m->fail(AIT_NOT_READY, std::string("output '") + d->outputs[i].name + "' is not set");
  AIT_TRY(m, resolve_input_dims(m));
  if (!m->weights_prepared) AIT_TRY(m, prepare_weights(m, stream));
  if (m->profiling) return run_profiled(m, batch, stream);
  // A model with run-time dims the data decides reads them back from the device mid-run (a stream synchronization,
  // and host code a captured graph would not re-run): it always runs its ops directly. Input dims (seq) are known
  // before the run: graphs are keyed on them.
  if (m->graph_mode && m->data_dims == 0) return run_graph(m, batch, stream);
  return launch_ops(m, batch, stream, false);
}

// The debug run: op by op, each op's output copied to the host after it (AITModelRunDebug).
AITStatus run_debug(AITModel* m, int64_t batch, cudaStream_t stream, AITNodeOutputCallback callback, void* user) {
  ait::LaunchContext context;
  context.arena = m->arena;
  context.weights = m->weight_ptrs.data();
  context.inputs = m->inputs.data();
  context.outputs = m->outputs.data();
  context.batch = batch;
  context.stream = stream;
  context.workspace = m->workspace;
  context.workspace_bytes = m->desc->workspace_bytes;
  context.dims = m->dims.data();
  m->last_batch = batch;
  std::vector<uint8_t> host;
  for (int32_t i = 0; i < m->desc->num_ops; ++i) {
    const ait::OpDescription& op = m->desc->ops[i];
    const char* failure = op.launch(context);
    if (failure) return m->fail(AIT_KERNEL_ERROR, op_label(op) + " failed: " + failure);
    cudaError_t launch_status = cudaGetLastError();
    if (launch_status != cudaSuccess)
      return m->fail(AIT_CUDA_ERROR, op_label(op) + " failed to launch: " + cudaGetErrorName(launch_status) + " (" +
                                         cudaGetErrorString(launch_status) + ")");
    ait::DebugTensor t{};
    if (!op.debug_output || !op.debug_output(context, &t) || !t.data) continue;
    if (t.rank < 0 || t.rank > ait::kMaxRank) return m->fail(AIT_INTERNAL_ERROR, op_label(op) + ": debug output has a bad rank");
    size_t count = 1;
    for (int32_t d = 0; d < t.rank; ++d) count *= static_cast<size_t>(t.shape[d]);
    const size_t bytes = count * ait::dtype_bytes(t.dtype);
    host.resize(bytes);
    AIT_TRY(m, m->check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (debug run)"));
    AIT_TRY(m, m->check_cuda(cudaMemcpy(host.data(), t.data, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy (debug output)"));
    callback(user, op.id, static_cast<AITDType>(t.dtype), t.rank, t.shape, host.data(), bytes);
  }
  return m->check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (debug run)");
}

std::string profile_json(const AITModel* m) {
  std::ostringstream s;
  s.precision(6);
  s << std::fixed;
  s << "{\"model\":\"" << json_escape(m->desc->name) << "\",\"runs\":" << m->profiled_runs
    << ",\"lastBatch\":" << m->last_profiled_batch << ",\"totalMeanMs\":"
    << (m->profiled_runs ? m->total_profiled_ms / m->profiled_runs : 0.0) << ",\"ops\":[";
  for (int32_t i = 0; i < m->desc->num_ops; ++i) {
    const ait::OpDescription& op = m->desc->ops[i];
    OpProfile p = i < static_cast<int32_t>(m->op_profiles.size()) ? m->op_profiles[i] : OpProfile();
    s << (i ? "," : "") << "{\"id\":\"" << json_escape(op.id) << "\",\"name\":\"" << json_escape(op.name)
      << "\",\"kernel\":\"" << json_escape(op.kernel) << "\",\"calls\":" << p.calls << ",\"meanMs\":"
      << (p.calls ? p.total_ms / p.calls : 0.0) << ",\"minMs\":" << p.min_ms << ",\"maxMs\":" << p.max_ms
      << ",\"totalMs\":" << p.total_ms << "}";
  }
  s << "]}";
  return s.str();
}

AITModel* mutable_model(const AITModel* m) { return const_cast<AITModel*>(m); }

}  // namespace

extern "C" {

int AITGetAbiVersion(void) { return AIT_ABI_VERSION; }
const char* AITGetLastError(void) { return g_last_error.c_str(); }

AITStatus AITModelCreate(const char* weights_path, AITModel** out_model) {
  if (!out_model) {
    g_last_error = "AITModelCreate: out_model is NULL";
    return AIT_INVALID_ARGUMENT;
  }
  return guarded(nullptr, [&] { return create(weights_path, out_model); });
}

AITStatus AITModelDestroy(AITModel* model) {
  return guarded(nullptr, [&] {
    release(model);
    return AIT_OK;
  });
}

const char* AITModelGetLastError(const AITModel* model) { return model ? model->last_error.c_str() : "model is NULL"; }
const char* AITModelGetName(const AITModel* model) { return model ? model->desc->name : nullptr; }
int64_t AITModelGetMaxBatch(const AITModel* model) { return model ? model->desc->max_batch : 0; }
int AITModelGetNumInputs(const AITModel* model) { return model ? model->desc->num_inputs : 0; }
int AITModelGetNumOutputs(const AITModel* model) { return model ? model->desc->num_outputs : 0; }

const char* AITModelGetInputName(const AITModel* model, int index) {
  return model && index >= 0 && index < model->desc->num_inputs ? model->desc->inputs[index].name : nullptr;
}
const char* AITModelGetOutputName(const AITModel* model, int index) {
  return model && index >= 0 && index < model->desc->num_outputs ? model->desc->outputs[index].name : nullptr;
}
AITDType AITModelGetInputDType(const AITModel* model, int index) {
  return model && index >= 0 && index < model->desc->num_inputs ? static_cast<AITDType>(model->desc->inputs[index].dtype)
                                                                 : static_cast<AITDType>(0);
}
AITDType AITModelGetOutputDType(const AITModel* model, int index) {
  return model && index >= 0 && index < model->desc->num_outputs ? static_cast<AITDType>(model->desc->outputs[index].dtype)
                                                                  : static_cast<AITDType>(0);
}

AITStatus AITModelGetInputMaxShape(const AITModel* model, int index, int64_t* shape, int capacity, int* rank, int* batch_axis) {
  if (!model) return AIT_INVALID_ARGUMENT;
  AITModel* m = mutable_model(model);
  return guarded(m, [&] { return max_shape(m, m->desc->inputs, m->desc->num_inputs, index, shape, capacity, rank, batch_axis); });
}
AITStatus AITModelGetOutputMaxShape(const AITModel* model, int index, int64_t* shape, int capacity, int* rank, int* batch_axis) {
  if (!model) return AIT_INVALID_ARGUMENT;
  AITModel* m = mutable_model(model);
  return guarded(m, [&] { return max_shape(m, m->desc->outputs, m->desc->num_outputs, index, shape, capacity, rank, batch_axis); });
}

AITStatus AITModelGetOutputShape(const AITModel* model, int index, int64_t* shape, int capacity, int* rank) {
  if (!model) return AIT_INVALID_ARGUMENT;
  AITModel* m = mutable_model(model);
  return guarded(m, [&] { return output_shape(m, index, shape, capacity, rank); });
}
int AITModelHasRuntimeDims(const AITModel* model) { return model && model->data_dims > 0 ? 1 : 0; }

AITStatus AITModelSetInputShape(AITModel* model, int index, const int64_t* shape, int rank) {
  if (!model) return AIT_INVALID_ARGUMENT;
  return guarded(model, [&] { return set_input_shape(model, index, shape, rank); });
}

int AITModelGetNumInputDims(const AITModel* model) { return model ? model->desc->num_input_dims : 0; }

AITStatus AITModelGetInputDim(const AITModel* model, int k, const char** name, int* input, int* axis, int64_t* min, int64_t* max) {
  if (!model) return AIT_INVALID_ARGUMENT;
  AITModel* m = mutable_model(model);
  if (k < 0 || k >= m->desc->num_input_dims) return m->fail(AIT_INVALID_ARGUMENT, "input dim " + std::to_string(k) + " out of range");
  const ait::InputDimDescription& e = m->desc->input_dims[k];
  if (name) *name = m->desc->dim_names && e.slot < m->desc->num_dims ? m->desc->dim_names[e.slot] : "";
  if (input) *input = e.input;
  if (axis) *axis = e.axis;
  if (min) *min = e.min;
  if (max) *max = e.max;
  return AIT_OK;
}

int AITModelGetNumWeights(const AITModel* model) { return model ? model->desc->num_weights : 0; }
const char* AITModelGetWeightName(const AITModel* model, int index) {
  return model && index >= 0 && index < model->desc->num_weights ? model->desc->weights[index].name : nullptr;
}
AITDType AITModelGetWeightDType(const AITModel* model, int index) {
  return model && index >= 0 && index < model->desc->num_weights ? static_cast<AITDType>(model->desc->weights[index].dtype)
                                                                  : static_cast<AITDType>(0);
}
int64_t AITModelGetWeightBytes(const AITModel* model, int index) {
  return model && index >= 0 && index < model->desc->num_weights ? static_cast<int64_t>(model->weight_bytes[index]) : -1;
}

AITStatus AITModelBindWeight(AITModel* model, const char* name, const void* data, size_t bytes, int data_on_device) {
  if (!model) return AIT_INVALID_ARGUMENT;
  return guarded(model, [&] {
    if (!name || (!data && bytes > 0)) return model->fail(AIT_INVALID_ARGUMENT, "AITModelBindWeight: name or data is NULL");
    int index = find_weight(model, name);
    if (index < 0) return model->fail(AIT_INVALID_ARGUMENT, std::string("the model has no weight named '") + name + "'");
    return bind_weight_bytes(model, index, data, bytes, data_on_device != 0);
  });
}

AITStatus AITModelLoadWeights(AITModel* model, const char* path, int* num_bound) {
  if (!model) return AIT_INVALID_ARGUMENT;
  return guarded(model, [&] {
    if (!path) return model->fail(AIT_INVALID_ARGUMENT, "AITModelLoadWeights: path is NULL");
    return load_weights(model, path, num_bound);
  });
}

AITStatus AITModelRandomizeWeights(AITModel* model, uint64_t seed, float scale, int all) {
  if (!model) return AIT_INVALID_ARGUMENT;
  return guarded(model, [&] {
    uint64_t state = seed;
    std::vector<uint8_t> host;
    for (int32_t i = 0; i < model->desc->num_weights; ++i) {
      const ait::WeightDescription& w = model->desc->weights[i];
      if ((model->weight_bound[i] && !all) || is_prepared_weight(w)) continue;
      host.assign(model->weight_bytes[i], 0);  // integer weights (indices, shapes) stay zero: always valid
      size_t count = model->weight_bytes[i] / ait::dtype_bytes(w.dtype);
      for (size_t k = 0; k < count; ++k) {
        float v = (static_cast<float>(next_random(&state) >> 40) / static_cast<float>(1ull << 24) * 2.0f - 1.0f) * scale;
        if (w.dtype == ait::DType::kFloat16) {
          uint16_t h = ait::float_to_half_bits(v);
          std::memcpy(host.data() + 2 * k, &h, 2);
        } else if (w.dtype == ait::DType::kFloat32) {
          std::memcpy(host.data() + 4 * k, &v, 4);
        } else if (w.dtype == ait::DType::kBFloat16) {
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          uint16_t b = static_cast<uint16_t>(bits >> 16);
          std::memcpy(host.data() + 2 * k, &b, 2);
        }
      }
      AIT_TRY(model, bind_weight_bytes(model, i, host.data(), host.size(), false));
    }
    return AIT_OK;
  });
}

int AITModelGetNumUnboundWeights(const AITModel* model) {
  if (!model) return -1;
  int unbound = 0;
  for (int32_t i = 0; i < model->desc->num_weights; ++i)
    if (!model->weight_bound[i] && !is_prepared_weight(model->desc->weights[i])) ++unbound;
  return unbound;
}

AITStatus AITModelSetInput(AITModel* model, int index, void* device_ptr) {
  if (!model) return AIT_INVALID_ARGUMENT;
  if (index < 0 || index >= model->desc->num_inputs)
    return model->fail(AIT_INVALID_ARGUMENT, "input index " + std::to_string(index) + " out of range");
  if (model->inputs[index] != device_ptr) ++model->pointer_generation;
  model->inputs[index] = device_ptr;
  return AIT_OK;
}

AITStatus AITModelSetOutput(AITModel* model, int index, void* device_ptr) {
  if (!model) return AIT_INVALID_ARGUMENT;
  if (index < 0 || index >= model->desc->num_outputs)
    return model->fail(AIT_INVALID_ARGUMENT, "output index " + std::to_string(index) + " out of range");
  if (model->outputs[index] != device_ptr) ++model->pointer_generation;
  model->outputs[index] = device_ptr;
  return AIT_OK;
}

AITStatus AITModelSetGraphMode(AITModel* model, int enabled) {
  if (!model) return AIT_INVALID_ARGUMENT;
  return guarded(model, [&] {
    model->graph_mode = enabled != 0;
    if (!model->graph_mode) {
      // Pending replays may still use the executables.
      AIT_TRY(model, model->check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (leaving graph mode)"));
      destroy_graphs(model);
    }
    return AIT_OK;
  });
}

AITStatus AITModelSetProfiling(AITModel* model, int enabled) {
  if (!model) return AIT_INVALID_ARGUMENT;
  model->profiling = enabled != 0;
  return AIT_OK;
}

AITStatus AITModelResetProfile(AITModel* model) {
  if (!model) return AIT_INVALID_ARGUMENT;
  model->op_profiles.clear();
  model->profiled_runs = 0;
  model->total_profiled_ms = 0;
  model->last_profiled_batch = 0;
  return AIT_OK;
}

AITStatus AITModelGetProfileJson(AITModel* model, char* buffer, size_t capacity, size_t* length) {
  if (!model) return AIT_INVALID_ARGUMENT;
  return guarded(model, [&] {
    std::string json = profile_json(model);
    if (length) *length = json.size();
    if (buffer && capacity > 0) {
      size_t n = std::min(capacity - 1, json.size());
      std::memcpy(buffer, json.data(), n);
      buffer[n] = '\0';
      if (n < json.size()) return model->fail(AIT_INVALID_ARGUMENT, "profile JSON needs " + std::to_string(json.size() + 1) + " bytes");
    }
    return AIT_OK;
  });
}

AITStatus AITModelRun(AITModel* model, int64_t batch, void* stream) {
  if (!model) return AIT_INVALID_ARGUMENT;
  return guarded(model, [&] { return run(model, batch, static_cast<cudaStream_t>(stream)); });
}


AITStatus AITModelRunDebug(AITModel* model, int64_t batch, void* stream, AITNodeOutputCallback callback, void* user) {
  if (!model) return AIT_INVALID_ARGUMENT;
  if (!callback) return model->fail(AIT_INVALID_ARGUMENT, "AITModelRunDebug: callback is NULL");
  return guarded(model, [&] {
    // the checks of a normal run (batch, weights, inputs, outputs, prepared weights), then op by op
    const ait::ModelDescription* d = model->desc;
    if (batch < 1 || batch > d->max_batch)
      return model->fail(AIT_INVALID_ARGUMENT, "batch " + std::to_string(batch) + " is outside 1.." + std::to_string(d->max_batch));
    for (int32_t i = 0; i < d->num_weights; ++i)
      if (!is_prepared_weight(d->weights[i]) && !model->weight_bound[i])
        return model->fail(AIT_NOT_READY, std::string("weight '") + d->weights[i].name + "' is not bound");
    for (int32_t i = 0; i < d->num_inputs; ++i)
      if (!model->inputs[i]) return model->fail(AIT_NOT_READY, std::string("input '") + d->inputs[i].name + "' is not set");
    for (int32_t i = 0; i < d->num_outputs; ++i)
      if (!model->outputs[i]) return model->fail(AIT_NOT_READY, std::string("output '") + d->outputs[i].name + "' is not set");
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    AIT_TRY(model, resolve_input_dims(model));
    if (!model->weights_prepared) AIT_TRY(model, prepare_weights(model, s));
    return run_debug(model, batch, s, callback, user);
  });
}

static AITStatus device_status(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return AIT_OK;
  g_last_error = std::string(what) + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
  return AIT_CUDA_ERROR;
}

AITStatus AITDeviceMalloc(void** out_ptr, size_t bytes) {
  if (!out_ptr) return AIT_INVALID_ARGUMENT;
  return device_status(cudaMalloc(out_ptr, bytes), "cudaMalloc");
}

AITStatus AITDeviceFree(void* ptr) { return device_status(cudaFree(ptr), "cudaFree"); }

AITStatus AITMemcpy(void* dst, const void* src, size_t bytes, int direction) {
  const cudaMemcpyKind kinds[] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice};
  if (direction < 0 || direction > 2) {
    g_last_error = "AITMemcpy: direction must be 0, 1 or 2";
    return AIT_INVALID_ARGUMENT;
  }
  return device_status(cudaMemcpy(dst, src, bytes, kinds[direction]), "cudaMemcpy");
}

AITStatus AITStreamSynchronize(void* stream) {
  return device_status(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

}  // extern "C"
