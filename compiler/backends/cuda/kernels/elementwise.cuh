// Fused elementwise kernels: out[i] = chain(in0[i'], in1[i'], ...), fp32 math over fp16/bf16/fp32 storage.
//
// The generator instantiates a chain of functors, each taking the running value and the loaded inputs:
//   using Fn = ait::kernels::ew::Chain<ew::Input<0>, ew::AddInput<1>, ew::Relu>;   // relu(in0 + in1)
//   ew::ElementwiseArgs<__half, 2> args = {...};
//   launch_fused_elementwise<__half, 2>(args, ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Relu{}), stream);
// Each input is read in full, as a vector repeating along the innermost axes (a per-channel bias of NHWC data:
// index % inner), as a vector repeating along the outer axes (index / inner), as a block repeating along the
// middle axes (a per-image, per-channel scale of NHWC data: (index / span) * inner + index % inner), as a scalar, or,
// for any other broadcast, through strides over the output's axes (kStrided: zero stride on a broadcast axis; the code
// generator merges neighbouring axes first, so [1,H,1,S,S] over [N,H,W,S,S] is 4 axes, never more than 6).
// When every pointer is 16-byte aligned and sizes allow, threads move 16 bytes per input and output.
#pragma once

#include "common.cuh"

namespace ait {
namespace kernels {
namespace ew {

enum class Broadcast : int32_t {
  kFull = 0,   // same number of elements as the output
  kInner = 1,  // element index % inner   (a vector along the last axes, e.g. a bias over channels)
  kOuter = 2,  // element index / inner   (a vector along the first axes, e.g. a per-row scale)
  kScalar = 3, // element 0
  kMiddle = 4, // (index / span) * inner + index % inner   (ones in the middle axes, e.g. [N,1,1,C] over NHWC)
  kStrided = 5, // sum over the output axes of (coordinate * stride)   (any other broadcast)
};

constexpr int kMaxBroadcastRank = 6;

// kStrided: the output viewed as `shape` (rank axes, product = count), the input's stride per axis (0: broadcast).
struct StridedIndex {
  int32_t rank;
  int64_t shape[kMaxBroadcastRank];
  int64_t strides[kMaxBroadcastRank];
};

template <class T, int kInputs>
struct ElementwiseArgs {
  const T* inputs[kInputs > 0 ? kInputs : 1];
  Broadcast broadcast[kInputs > 0 ? kInputs : 1];
  int64_t inner[kInputs > 0 ? kInputs : 1];  // for kInner / kOuter
  T* output;
  int64_t count;  // output elements
  int64_t span[kInputs > 0 ? kInputs : 1];  // for kMiddle: output elements per leading index (zero otherwise)
  StridedIndex strided[kInputs > 0 ? kInputs : 1];  // for kStrided (zero otherwise)
};

// ---- functors: float operator()(float running, const float* inputs) ----
template <int kIndex>
struct Input {
  __device__ __forceinline__ float operator()(float, const float* in) const { return in[kIndex]; }
};
template <int kIndex>
struct AddInput {
  __device__ __forceinline__ float operator()(float x, const float* in) const { return x + in[kIndex]; }
};
template <int kIndex>
struct SubInput {
  __device__ __forceinline__ float operator()(float x, const float* in) const { return x - in[kIndex]; }
};
template <int kIndex>
struct InputSub {  // in[k] - x
  __device__ __forceinline__ float operator()(float x, const float* in) const { return in[kIndex] - x; }
};
template <int kIndex>
struct MulInput {
  __device__ __forceinline__ float operator()(float x, const float* in) const { return x * in[kIndex]; }
};
template <int kIndex>
struct DivInput {
  __device__ __forceinline__ float operator()(float x, const float* in) const { return x / in[kIndex]; }
};
template <int kIndex>
struct MaxInput {
  __device__ __forceinline__ float operator()(float x, const float* in) const { return fmaxf(x, in[kIndex]); }
};
template <int kIndex>
struct MinInput {
  __device__ __forceinline__ float operator()(float x, const float* in) const { return fminf(x, in[kIndex]); }
};
struct AddConst {
  float value;
  __device__ __forceinline__ float operator()(float x, const float*) const { return x + value; }
};
struct MulConst {
  float value;
  __device__ __forceinline__ float operator()(float x, const float*) const { return x * value; }
};
struct PowConst {
  float exponent;
  __device__ __forceinline__ float operator()(float x, const float*) const { return exponent == 2.f ? x * x : powf(x, exponent); }
};
struct Clamp {
  float low, high;
  __device__ __forceinline__ float operator()(float x, const float*) const { return fminf(fmaxf(x, low), high); }
};
// The name the code generator emits (codegen/elementwise.ts: Clip, Max/Min with a constant, relu6 epilogues).
using Clip = Clamp;
struct Relu {
  __device__ __forceinline__ float operator()(float x, const float*) const { return fmaxf(x, 0.f); }
};
struct LeakyRelu {
  float alpha;
  __device__ __forceinline__ float operator()(float x, const float*) const { return x >= 0.f ? x : alpha * x; }
};
struct Sigmoid {
  __device__ __forceinline__ float operator()(float x, const float*) const { return 1.f / (1.f + __expf(-x)); }
};
struct Silu {
  __device__ __forceinline__ float operator()(float x, const float*) const { return x / (1.f + __expf(-x)); }
};
struct Tanh {
  __device__ __forceinline__ float operator()(float x, const float*) const { return tanhf(x); }
};
struct Gelu {  // exact: x * Phi(x)
  __device__ __forceinline__ float operator()(float x, const float*) const { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
};
struct GeluTanh {
  __device__ __forceinline__ float operator()(float x, const float*) const {
    return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  }
};
struct HardSigmoid {
  float alpha, beta;  // ONNX defaults 0.2, 0.5
  __device__ __forceinline__ float operator()(float x, const float*) const { return fminf(fmaxf(alpha * x + beta, 0.f), 1.f); }
};
struct HardSwish {
  __device__ __forceinline__ float operator()(float x, const float*) const { return x * fminf(fmaxf(x / 6.f + 0.5f, 0.f), 1.f); }
};
struct Exp {
  __device__ __forceinline__ float operator()(float x, const float*) const { return __expf(x); }
};
struct Sqrt {
  __device__ __forceinline__ float operator()(float x, const float*) const { return sqrtf(x); }
};
struct Rsqrt {
  __device__ __forceinline__ float operator()(float x, const float*) const { return rsqrtf(x); }
};
struct Reciprocal {
  __device__ __forceinline__ float operator()(float x, const float*) const { return 1.f / x; }
};
struct Neg {
  __device__ __forceinline__ float operator()(float x, const float*) const { return -x; }
};
struct Abs {
  __device__ __forceinline__ float operator()(float x, const float*) const { return fabsf(x); }
};
struct Erf {
  __device__ __forceinline__ float operator()(float x, const float*) const { return erff(x); }
};

// A chain applies its functors left to right, starting from 0 (so the first is usually Input<k>).
template <class... Ops>
struct Chain;
template <>
struct Chain<> {
  __device__ __forceinline__ float operator()(float x, const float*) const { return x; }
};
template <class Op, class... Rest>
struct Chain<Op, Rest...> {
  Op op;
  Chain<Rest...> rest;
  __device__ __forceinline__ float operator()(float x, const float* in) const { return rest(op(x, in), in); }
};

inline Chain<> make_chain() { return {}; }
template <class Op, class... Rest>
Chain<Op, Rest...> make_chain(Op op, Rest... rest) {
  return Chain<Op, Rest...>{op, make_chain(rest...)};
}

template <class T, int kInputs>
__device__ __forceinline__ int64_t source_index(const ElementwiseArgs<T, kInputs>& a, int k, int64_t i) {
  switch (a.broadcast[k]) {
    case Broadcast::kFull: return i;
    case Broadcast::kInner: return i % a.inner[k];
    case Broadcast::kOuter: return i / a.inner[k];
    case Broadcast::kMiddle: return (i / a.span[k]) * a.inner[k] + i % a.inner[k];
    case Broadcast::kStrided: {
      const StridedIndex& s = a.strided[k];
      int64_t source = 0;
      for (int d = s.rank - 1; d >= 0; --d) {
        source += (i % s.shape[d]) * s.strides[d];
        i /= s.shape[d];
      }
      return source;
    }
    default: return 0;
  }
}

template <class T, int kInputs, class Fn>
__global__ void fused_elementwise_scalar_kernel(ElementwiseArgs<T, kInputs> a, Fn fn) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float in[kInputs > 0 ? kInputs : 1];
#pragma unroll
    for (int k = 0; k < kInputs; ++k) in[k] = to_float(a.inputs[k][source_index(a, k, i)]);
    a.output[i] = from_float<T>(fn(0.f, in));
  }
}

// A vector of V outputs reads V consecutive elements of input k (else one value for all V).
template <class T, int kInputs>
__device__ __forceinline__ bool reads_vector(const ElementwiseArgs<T, kInputs>& a, int k) {
  const Broadcast b = a.broadcast[k];
  return b == Broadcast::kFull || b == Broadcast::kInner || b == Broadcast::kMiddle ||
         (b == Broadcast::kStrided && a.strided[k].strides[a.strided[k].rank - 1] == 1);
}

// Each thread handles one 16-byte vector of the output. Valid when count, every kInner's inner, and every pointer
// of a full/inner/middle input allow it (checked by the launcher); kOuter inputs need inner % vector == 0 (one value
// per vector); kStrided inputs an innermost axis that is a multiple of the vector.
template <class T, int kInputs, class Fn>
__global__ void fused_elementwise_vector_kernel(ElementwiseArgs<T, kInputs> a, Fn fn) {
  constexpr int V = Vec16<T>::kElements;
  const int64_t vectors = a.count / V;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < vectors;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t base = v * V;
    Vec16<T> loaded[kInputs > 0 ? kInputs : 1];
    float scalar_value[kInputs > 0 ? kInputs : 1];
#pragma unroll
    for (int k = 0; k < kInputs; ++k) {
      if (reads_vector(a, k))
        loaded[k] = load_vec16(a.inputs[k] + source_index(a, k, base));
      else
        scalar_value[k] = to_float(a.inputs[k][source_index(a, k, base)]);
    }
    Vec16<T> out;
#pragma unroll
    for (int e = 0; e < V; ++e) {
      float in[kInputs > 0 ? kInputs : 1];
#pragma unroll
      for (int k = 0; k < kInputs; ++k)
        in[k] = reads_vector(a, k) ? to_float(loaded[k].elements[e]) : scalar_value[k];
      out.elements[e] = from_float<T>(fn(0.f, in));
    }
    store_vec16(a.output + base, out);
  }
}

template <class T, int kInputs>
bool can_vectorize(const ElementwiseArgs<T, kInputs>& a) {
  constexpr int V = Vec16<T>::kElements;
  if (a.count % V != 0 || !is_aligned16(a.output)) return false;
  for (int k = 0; k < kInputs; ++k) {
    switch (a.broadcast[k]) {
      case Broadcast::kFull:
        if (!is_aligned16(a.inputs[k])) return false;
        break;
      case Broadcast::kInner:
      case Broadcast::kMiddle:
        if (a.inner[k] % V != 0 || !is_aligned16(a.inputs[k])) return false;
        break;
      case Broadcast::kOuter:
        if (a.inner[k] % V != 0) return false;
        break;
      case Broadcast::kStrided: {
        const StridedIndex& s = a.strided[k];
        if (s.rank < 1 || s.rank > kMaxBroadcastRank || s.shape[s.rank - 1] % V != 0) return false;
        if (s.strides[s.rank - 1] == 1 && !is_aligned16(a.inputs[k])) return false;
        break;
      }
      case Broadcast::kScalar:
        break;
    }
  }
  return true;
}

}  // namespace ew

template <class T, int kInputs, class Fn>
cudaError_t launch_fused_elementwise(const ew::ElementwiseArgs<T, kInputs>& args, Fn fn, cudaStream_t stream) {
  if (args.count <= 0) return cudaSuccess;
  for (int k = 0; k < kInputs; ++k)
    if (args.broadcast[k] == ew::Broadcast::kStrided && (args.strided[k].rank < 1 || args.strided[k].rank > ew::kMaxBroadcastRank))
      return cudaErrorInvalidValue;
  constexpr int kThreads = 256;
  if (ew::can_vectorize(args)) {
    ew::fused_elementwise_vector_kernel<T, kInputs, Fn>
        <<<grid_for(args.count / Vec16<T>::kElements, kThreads), kThreads, 0, stream>>>(args, fn);
  } else {
    ew::fused_elementwise_scalar_kernel<T, kInputs, Fn><<<grid_for(args.count, kThreads), kThreads, 0, stream>>>(args, fn);
  }
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
