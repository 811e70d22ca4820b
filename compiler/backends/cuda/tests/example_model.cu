// A hand-written model in the form the code generator emits (see runtime/ait_model.h): the reference for the
// generator and the model that runtime_check.cu drives. y = softmax(gelu(layernorm(x) + bias)) over the last axis,
// x: [batch, 197, 768] fp16, max batch 8. Activations live in the arena at offsets from a (here trivial) memory plan.
#include "ait_model.h"
#include "all.cuh"

namespace {

constexpr int64_t kMaxBatch = 8, kTokens = 197, kChannels = 768;
constexpr size_t kTensorBytes = kMaxBatch * kTokens * kChannels * sizeof(__half);
// Memory plan: t0 (layernorm output) at 0, t1 (gelu output) after it, 256-byte aligned.
constexpr size_t kOffsetT0 = 0;
constexpr size_t kOffsetT1 = (kTensorBytes + 255) / 256 * 256;
enum Weight { kGamma = 0, kBeta = 1, kBias = 2 };

// graph.json op n0: LayerNormalization 'ln' -> t0. Kernel: ait::kernels::layernorm_kernel<half, vector>.
const char* launch_n0(const ait::LaunchContext& c) {
  ait::kernels::LayerNormArgs<__half> args{static_cast<const __half*>(c.inputs[0]), static_cast<const __half*>(c.weights[kGamma]),
                                           static_cast<const __half*>(c.weights[kBeta]),
                                           reinterpret_cast<__half*>(c.arena + kOffsetT0), c.batch * kTokens, kChannels, 1e-6f};
  AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_layernorm(args, c.stream));
  return nullptr;
}

// graph.json op n1: fused Add + Gelu -> t1. Kernel: fused_elementwise<half, 2, Input0 AddInput1 Gelu>.
const char* launch_n1(const ait::LaunchContext& c) {
  namespace ew = ait::kernels::ew;
  ew::ElementwiseArgs<__half, 2> args{{reinterpret_cast<const __half*>(c.arena + kOffsetT0), static_cast<const __half*>(c.weights[kBias])},
                                      {ew::Broadcast::kFull, ew::Broadcast::kInner},
                                      {0, kChannels},
                                      reinterpret_cast<__half*>(c.arena + kOffsetT1),
                                      c.batch * kTokens * kChannels};
  AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_fused_elementwise(args, ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Gelu{}), c.stream));
  return nullptr;
}

// graph.json op n2: Softmax(axis=-1) -> output y. Kernel: softmax_kernel<half, vector>.
const char* launch_n2(const ait::LaunchContext& c) {
  ait::kernels::SoftmaxArgs<__half> args{reinterpret_cast<const __half*>(c.arena + kOffsetT1), static_cast<__half*>(c.outputs[0]),
                                         c.batch * kTokens, kChannels, 1.f};
  AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_softmax(args, c.stream));
  return nullptr;
}

const ait::IoDescription kInputs[] = {{"x", ait::DType::kFloat16, 3, {kMaxBatch, kTokens, kChannels}, 0}};
const ait::IoDescription kOutputs[] = {{"y", ait::DType::kFloat16, 3, {kMaxBatch, kTokens, kChannels}, 0}};
const ait::WeightDescription kWeights[] = {
    {"ln.gamma", ait::DType::kFloat16, 1, {kChannels}},
    {"ln.beta", ait::DType::kFloat16, 1, {kChannels}},
    {"bias", ait::DType::kFloat16, 1, {kChannels}},
};
const ait::OpDescription kOps[] = {
    {"n0", "LayerNormalization ln", "ait_layernorm_f16", launch_n0},
    {"n1", "Add+Gelu mlp.act", "ait_fused_elementwise_f16_add_gelu", launch_n1},
    {"n2", "Softmax head", "ait_softmax_f16", launch_n2},
};
const ait::ModelDescription kModel = {ait::kModelAbiVersion, "example_model", kMaxBatch, kInputs, 1, kOutputs, 1, kWeights, 3,
                                      kOps, 3, kOffsetT1 + kTensorBytes, 0};

}  // namespace

extern "C" const ait::ModelDescription* ait_model_description() { return &kModel; }
