// Fused elementwise kernels: out[i] = chain(in0[i'], in1[i'], ...), fp32 math over fp16/bf16/fp32 storage.
//
// The generator instantiates a chain of functors, each taking the running value and the loaded inputs:
//   using Fn = ait::kernels::ew::Chain<ew::Input<0>, ew::AddInput<1>, ew::Relu>;   // relu(in0 + in1)
//   ew::ElementwiseArgs<__half, 2> args = {...};
//   launch_fused_elementwise<__half, 2>(args, ew::make_chain(ew::Input<0>{}, ew::AddInput<1>{}, ew::Relu{}), stream);
// A body that is not a chain (a step reads an input or an earlier value other than the previous result) is a Dag,
// a straight-line program over value slots (make_dag below); both run on the same kernels.
// Each input is read in full, as a vector repeating along the innermost axes (a per-channel bias of NHWC data:
// index % inner), as a vector repeating along the outer axes (index / inner), as a block repeating along the
// middle axes (a per-image, per-channel scale of NHWC data: (index / span) * inner + index % inner), as a scalar, or,
// for any other broadcast, through strides over the output's axes (kStrided: zero stride on a broadcast axis; the code
// generator merges neighbouring axes first, so [1,H,1,S,S] over [N,H,W,S,S] is 4 axes, never more than 6).
// An input may also be a Concat that is never materialized (kConcat): the pieces of the concatenation along one
// axis, each element loaded from the piece that holds it (ConcatPieces below).
// When every pointer is 16-byte aligned and sizes allow, threads move 16 bytes per input and output.
#pragma once

#include <utility>

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
  kStrided = 5, // sum over the output axes of (coordinate * stride)   (any other broadcast; the mixed kernel keeps its own per-axis strides, MixedArgs)
  kConcat = 6,  // pieces of a concatenation read in full (ConcatPieces; inner and span describe the axis)
};

constexpr int kMaxBroadcastRank = 6;

// kStrided: the output viewed as `shape` (rank axes, product = count), the input's stride per axis (0: broadcast).
struct StridedIndex {
  int32_t rank;
  int64_t shape[kMaxBroadcastRank];
  int64_t strides[kMaxBroadcastRank];
};

// kConcat: input k is the concatenation, along one axis, of pieces first[k] .. first[k] + count[k] - 1 of this
// table. With inner[k] the elements per coordinate of that axis (the product of the later extents) and span[k] the
// axis's whole extent times inner[k], element i lies at outer index i / span[k] and axis coordinate
// (i % span[k]) / inner[k]; the piece p holding that coordinate (start[p] <= c < start[p] + extent[p]) has it at
// (i / span[k]) * extent[p] * inner[k] + i % span[k] - start[p] * inner[k]. P is const T* in the fp16 kernel and
// const void* in the mixed one (each piece with its own storage type there).
constexpr int kMaxConcatPieces = 64;  // MAX_CONCAT_PIECES of ops/fused.ts
// Kernel parameters are at most 4 KB on every target (HIP's kernel-argument buffer; CUDA before 12.1): the code
// generator keeps a group's inputs within it (ELEMENTWISE_PARAM_BYTES and elementwiseParamBytes of ops/fused.ts).
constexpr size_t kMaxParamBytes = 4096;

enum class Storage : int32_t { kHalf = 0, kBFloat16 = 1, kFloat = 2 };

template <class P, int kSlots, int kPieces>
struct ConcatPieces {
  static_assert(kPieces <= kMaxConcatPieces, "more concat pieces than the code generator gives");
  int32_t first[kSlots > 0 ? kSlots : 1];  // per input slot: its first piece (kConcat inputs only)
  int32_t count[kSlots > 0 ? kSlots : 1];  // per input slot: its number of pieces
  P pointers[kPieces > 0 ? kPieces : 1];
  int64_t start[kPieces > 0 ? kPieces : 1];   // the piece's first coordinate along the axis, within its input
  int64_t extent[kPieces > 0 ? kPieces : 1];  // the piece's extent along the axis
  Storage storage[kPieces > 0 ? kPieces : 1];  // the mixed kernel's piece types (the fp16 kernel's are all T)
};

template <class T, int kInputs, int kPieces = 0>
struct ElementwiseArgs {
  const T* inputs[kInputs > 0 ? kInputs : 1];
  Broadcast broadcast[kInputs > 0 ? kInputs : 1];
  int64_t inner[kInputs > 0 ? kInputs : 1];  // for kInner / kOuter / kConcat
  T* output;
  int64_t count;  // output elements
  int64_t span[kInputs > 0 ? kInputs : 1];  // for kMiddle: output elements per leading index; kConcat: see above
  StridedIndex strided[kInputs > 0 ? kInputs : 1];  // for kStrided (zero otherwise)
  ConcatPieces<const T*, kInputs, kPieces> concat;  // for kConcat (zero otherwise)
};

// The piece of a kConcat input holding axis coordinate c: a binary search over the slot's starts (ascending).
template <class P, int kSlots, int kPieces>
__host__ __device__ __forceinline__ int concat_piece(const ConcatPieces<P, kSlots, kPieces>& t, int k, int64_t c) {
  int lo = t.first[k], hi = t.first[k] + t.count[k] - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (t.start[mid] <= c) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// Element i of kConcat input k: the piece holding it and the element's index in that piece.
template <class P, int kSlots, int kPieces>
__host__ __device__ __forceinline__ int64_t concat_source(const ConcatPieces<P, kSlots, kPieces>& t, int k, int64_t inner, int64_t span,
                                                          int64_t i, int* piece) {
  const int64_t outer = i / span;
  const int64_t within = i - outer * span;
  const int p = concat_piece(t, k, within / inner);
  *piece = p;
  return outer * t.extent[p] * inner + within - t.start[p] * inner;
}

// ---- functors: float operator()(float running, const float* inputs) ----
// Functors over the running value V (float for float chains, int64_t for integer ones; see the mixed kernel below).
template <int kIndex>
struct Input {
  template <class V>
  __device__ __forceinline__ V operator()(V, const V* in) const { return in[kIndex]; }
};
template <int kIndex>
struct AddInput {
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V* in) const { return x + in[kIndex]; }
};
template <int kIndex>
struct SubInput {
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V* in) const { return x - in[kIndex]; }
};
template <int kIndex>
struct InputSub {  // in[k] - x
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V* in) const { return in[kIndex] - x; }
};
template <int kIndex>
struct MulInput {
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V* in) const { return x * in[kIndex]; }
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
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V*) const { return -x; }
};
struct Abs {
  __device__ __forceinline__ float operator()(float x, const float*) const { return fabsf(x); }
  __device__ __forceinline__ int64_t operator()(int64_t x, const int64_t*) const { return x < 0 ? -x : x; }
};
struct Erf {
  __device__ __forceinline__ float operator()(float x, const float*) const { return erff(x); }
};

// ---- general forms: an op over operands, each the running value, an input or a constant (any position) ----
struct Running {
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V*) const { return x; }
};
template <int kIndex>
using In = Input<kIndex>;
template <class C>
struct Const {  // Const<float> in float chains, Const<int64_t> in integer ones
  C value;
  template <class V>
  __device__ __forceinline__ V operator()(V, const V*) const { return static_cast<V>(value); }
};

namespace op {
__device__ __forceinline__ bool is_nan(float v) { return isnan(v); }
__device__ __forceinline__ bool is_nan(int64_t) { return false; }
struct Add { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return a + b; } };
struct Sub { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return a - b; } };
struct Mul { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return a * b; } };
struct Div {  // integers: truncation toward zero, 0 for a zero divisor (the CPU reference's)
  __device__ __forceinline__ static float apply(float a, float b) { return a / b; }
  __device__ __forceinline__ static int64_t apply(int64_t a, int64_t b) { return b == 0 ? 0 : a / b; }
};
struct Mod {  // ONNX Mod fmod=0 (integers): the remainder has the divisor's sign
  __device__ __forceinline__ static int64_t apply(int64_t a, int64_t b) {
    if (b == 0) return 0;
    const int64_t r = a % b;
    return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
  }
};
struct FMod {  // ONNX Mod fmod=1: the remainder has the dividend's sign
  __device__ __forceinline__ static float apply(float a, float b) { return fmodf(a, b); }
  __device__ __forceinline__ static int64_t apply(int64_t a, int64_t b) { return b == 0 ? 0 : a % b; }
};
struct Max {
  __device__ __forceinline__ static float apply(float a, float b) { return fmaxf(a, b); }
  __device__ __forceinline__ static int64_t apply(int64_t a, int64_t b) { return a > b ? a : b; }
};
struct Min {
  __device__ __forceinline__ static float apply(float a, float b) { return fminf(a, b); }
  __device__ __forceinline__ static int64_t apply(int64_t a, int64_t b) { return a < b ? a : b; }
};
struct Equal { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return V(a == b); } };
struct Less { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return V(a < b); } };
struct LessOrEqual { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return V(a <= b); } };
struct Greater { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return V(a > b); } };
struct GreaterOrEqual { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return V(a >= b); } };
struct And { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return V(a != V(0) && b != V(0)); } };
struct Or { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return V(a != V(0) || b != V(0)); } };
struct Xor { template <class V> __device__ __forceinline__ static V apply(V a, V b) { return V((a != V(0)) != (b != V(0))); } };
struct PRelu { template <class V> __device__ __forceinline__ static V apply(V x, V slope) { return x < V(0) ? slope * x : x; } };
struct Pow {  // a tensor exponent (a constant one is PowConst)
  __device__ __forceinline__ static float apply(float a, float b) { return powf(a, b); }
};
}  // namespace op

template <class Op, class A, class B>
struct Binary {  // Op(a, b)
  A a;
  B b;
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V* in) const { return Op::apply(a(x, in), b(x, in)); }
};
template <class C, class A, class B>
struct Select {  // Where: c != 0 ? a : b
  C c;
  A a;
  B b;
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V* in) const { return c(x, in) != V(0) ? a(x, in) : b(x, in); }
};
struct Not {
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V*) const { return V(x == V(0)); }
};
struct ToBool {  // a bool result (Cast to bool, a bool output): 0 or 1
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V*) const { return V(x != V(0)); }
};
struct Trunc {  // Cast of a float to an integer type: toward zero
  __device__ __forceinline__ float operator()(float x, const float*) const { return truncf(x); }
  __device__ __forceinline__ int64_t operator()(int64_t x, const int64_t*) const { return x; }
};
struct ToInt32 {  // Cast to int32 in an integer chain: wraps like the CPU reference's typed storage
  __device__ __forceinline__ int64_t operator()(int64_t x, const int64_t*) const { return static_cast<int32_t>(x); }
};
struct IsNaN {
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V*) const { return V(op::is_nan(x)); }
};
struct IsInf {
  bool positive, negative;
  __device__ __forceinline__ float operator()(float x, const float*) const {
    return float((positive && x == INFINITY) || (negative && x == -INFINITY));
  }
  __device__ __forceinline__ int64_t operator()(int64_t, const int64_t*) const { return 0; }
};
struct Floor {
  __device__ __forceinline__ float operator()(float x, const float*) const { return floorf(x); }
};
struct Ceil {
  __device__ __forceinline__ float operator()(float x, const float*) const { return ceilf(x); }
};
struct Round {  // ONNX Round: half to even (rintf in the default rounding mode)
  __device__ __forceinline__ float operator()(float x, const float*) const { return rintf(x); }
};
struct Log {  // logf, not __logf: level assignments such as floor(4 + log2(sqrt(area) / 224)) sit near integers
  __device__ __forceinline__ float operator()(float x, const float*) const { return logf(x); }
};
struct Sin {
  __device__ __forceinline__ float operator()(float x, const float*) const { return sinf(x); }
};
struct Cos {
  __device__ __forceinline__ float operator()(float x, const float*) const { return cosf(x); }
};
struct Tan {
  __device__ __forceinline__ float operator()(float x, const float*) const { return tanf(x); }
};
struct Asin {
  __device__ __forceinline__ float operator()(float x, const float*) const { return asinf(x); }
};
struct Acos {
  __device__ __forceinline__ float operator()(float x, const float*) const { return acosf(x); }
};
struct Atan {
  __device__ __forceinline__ float operator()(float x, const float*) const { return atanf(x); }
};
struct Sinh {
  __device__ __forceinline__ float operator()(float x, const float*) const { return sinhf(x); }
};
struct Cosh {
  __device__ __forceinline__ float operator()(float x, const float*) const { return coshf(x); }
};
struct Asinh {
  __device__ __forceinline__ float operator()(float x, const float*) const { return asinhf(x); }
};
struct Acosh {
  __device__ __forceinline__ float operator()(float x, const float*) const { return acoshf(x); }
};
struct Atanh {
  __device__ __forceinline__ float operator()(float x, const float*) const { return atanhf(x); }
};
struct Softsign {
  __device__ __forceinline__ float operator()(float x, const float*) const { return x / (1.f + fabsf(x)); }
};
struct Celu {
  float alpha;  // ONNX default 1; max(0, x) + min(0, alpha·(e^(x/alpha) - 1))
  __device__ __forceinline__ float operator()(float x, const float*) const {
    return fmaxf(x, 0.f) + fminf(0.f, alpha * expm1f(x / alpha));
  }
};
struct ThresholdedRelu {
  float alpha;  // ONNX default 1
  __device__ __forceinline__ float operator()(float x, const float*) const { return x > alpha ? x : 0.f; }
};
struct Softplus {  // log(1 + e^x) without overflow for large x
  __device__ __forceinline__ float operator()(float x, const float*) const {
    return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x));
  }
};
struct Mish {  // x * tanh(softplus(x)); softplus as in Softplus, so large |x| neither overflows nor loses x
  __device__ __forceinline__ float operator()(float x, const float*) const {
    return x * tanhf(x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x)));
  }
};
struct Shrink {
  float lambd, bias;  // ONNX defaults 0.5, 0
  __device__ __forceinline__ float operator()(float x, const float*) const {
    return x < -lambd ? x + bias : x > lambd ? x - bias : 0.f;
  }
};
struct Elu {
  float alpha;  // ONNX default 1
  __device__ __forceinline__ float operator()(float x, const float*) const { return x >= 0.f ? x : alpha * expm1f(x); }
};
struct Selu {
  float alpha, gamma;  // ONNX defaults 1.67326…, 1.05070…
  __device__ __forceinline__ float operator()(float x, const float*) const {
    return x > 0.f ? gamma * x : gamma * alpha * expm1f(x);
  }
};
struct Sign {
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V*) const { return x > V(0) ? V(1) : x < V(0) ? V(-1) : x; }
};

// A chain applies its functors left to right, starting from 0 (so the first is usually Input<k>).
template <class... Ops>
struct Chain;
template <>
struct Chain<> {
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V*) const { return x; }
};
template <class Op, class... Rest>
struct Chain<Op, Rest...> {
  Op op;
  Chain<Rest...> rest;
  template <class V>
  __device__ __forceinline__ V operator()(V x, const V* in) const { return rest(op(x, in), in); }
};

inline Chain<> make_chain() { return {}; }
template <class Op, class... Rest>
Chain<Op, Rest...> make_chain(Op op, Rest... rest) {
  return Chain<Op, Rest...>{op, make_chain(rest...)};
}

// ---- DAG bodies: a straight-line program over value slots ----
// A body whose steps read more than the previous result (box decoding reading one input in several places, masks
// combining two comparisons, Clip with tensor bounds) is a Dag. Slots 0 .. kInputs-1 hold the loaded inputs; step j
// writes slot kInputs + j. Each step is a functor of (the previous step's value, the slots), so every functor above
// is a step: ew::In<s> reads slot s, whether an input or an earlier step's value, and ew::Running is the previous
// step's value. The slots are indexed by constants only, so after inlining they live in registers; the last step's
// value is the result.
//   x·sigmoid(x) + x·y:  make_dag<2>(Chain<In<0>, Sigmoid>, Binary<op::Mul, Running, In<0>>,   // slots 2, 3
//                                    Binary<op::Mul, In<0>, In<1>>, Binary<op::Add, In<3>, Running>)
template <int kSlot, class... Steps>
struct DagSteps;
template <int kSlot>
struct DagSteps<kSlot> {
  template <class V>
  __device__ __forceinline__ V run(V x, V*) const { return x; }
};
template <int kSlot, class Step, class... Rest>
struct DagSteps<kSlot, Step, Rest...> {
  Step step;
  DagSteps<kSlot + 1, Rest...> rest;
  template <class V>
  __device__ __forceinline__ V run(V x, V* slots) const {
    slots[kSlot] = step(x, slots);
    return rest.run(slots[kSlot], slots);
  }
};

template <int kInputs, class... Steps>
struct Dag {
  static_assert(sizeof...(Steps) > 0, "a DAG body has at least one step");
  DagSteps<kInputs, Steps...> steps;
  template <class V>
  __device__ __forceinline__ V operator()(V, const V* in) const {
    V slots[kInputs + sizeof...(Steps)];
#pragma unroll
    for (int k = 0; k < kInputs; ++k) slots[k] = in[k];
    return steps.run(V(0), slots);
  }
};

template <int kSlot>
inline DagSteps<kSlot> make_dag_steps() { return {}; }
template <int kSlot, class Step, class... Rest>
DagSteps<kSlot, Step, Rest...> make_dag_steps(Step step, Rest... rest) {
  return DagSteps<kSlot, Step, Rest...>{step, make_dag_steps<kSlot + 1>(rest...)};
}
// make_dag<kInputs>(step0, step1, …): the functor the launchers take, like make_chain's.
template <int kInputs, class... Steps>
Dag<kInputs, Steps...> make_dag(Steps... steps) {
  return Dag<kInputs, Steps...>{make_dag_steps<kInputs>(steps...)};
}

template <class T, int kInputs, int kPieces>
__device__ __forceinline__ int64_t source_index(const ElementwiseArgs<T, kInputs, kPieces>& a, int k, int64_t i) {
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

// Where element i of input k is: in the input (source_index), or for kConcat in the piece that holds it.
template <class T, int kInputs, int kPieces>
__device__ __forceinline__ const T* source_pointer(const ElementwiseArgs<T, kInputs, kPieces>& a, int k, int64_t i) {
  if (kPieces > 0 && a.broadcast[k] == Broadcast::kConcat) {
    int p;
    const int64_t at = concat_source(a.concat, k, a.inner[k], a.span[k], i, &p);
    return a.concat.pointers[p] + at;
  }
  return a.inputs[k] + source_index(a, k, i);
}

template <class T, int kInputs, int kPieces, class Fn>
__global__ void fused_elementwise_scalar_kernel(ElementwiseArgs<T, kInputs, kPieces> a, Fn fn) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float in[kInputs > 0 ? kInputs : 1];
#pragma unroll
    for (int k = 0; k < kInputs; ++k) in[k] = to_float(*source_pointer(a, k, i));
    a.output[i] = from_float<T>(fn(0.f, in));
  }
}

// A vector of V outputs reads V consecutive elements of input k (else one value for all V).
template <class T, int kInputs, int kPieces>
__device__ __forceinline__ bool reads_vector(const ElementwiseArgs<T, kInputs, kPieces>& a, int k) {
  const Broadcast b = a.broadcast[k];
  return b == Broadcast::kFull || b == Broadcast::kInner || b == Broadcast::kMiddle || b == Broadcast::kConcat ||
         (b == Broadcast::kStrided && a.strided[k].strides[a.strided[k].rank - 1] == 1);
}

// Each thread handles one 16-byte vector of the output. Valid when count, every kInner's inner, and every pointer
// of a full/inner/middle input allow it (checked by the launcher); kOuter inputs need inner % vector == 0 (one value
// per vector); kStrided inputs an innermost axis that is a multiple of the vector; kConcat inputs pieces whose every
// start and extent times inner is a multiple of the vector (so a vector never straddles two pieces or two rows).
template <class T, int kInputs, int kPieces, class Fn>
__global__ void fused_elementwise_vector_kernel(ElementwiseArgs<T, kInputs, kPieces> a, Fn fn) {
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
        loaded[k] = load_vec16(source_pointer(a, k, base));
      else
        scalar_value[k] = to_float(*source_pointer(a, k, base));
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

template <class T, int kInputs, int kPieces>
bool can_vectorize(const ElementwiseArgs<T, kInputs, kPieces>& a) {
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
      case Broadcast::kConcat:
        for (int p = a.concat.first[k]; p < a.concat.first[k] + a.concat.count[k]; ++p)
          if ((a.concat.start[p] * a.inner[k]) % V != 0 || (a.concat.extent[p] * a.inner[k]) % V != 0 ||
              !is_aligned16(a.concat.pointers[p]))
            return false;
        break;
      case Broadcast::kScalar:
        break;
    }
  }
  return true;
}

// ---- mixed types: inputs of their own storage types (bool as uint8, int32, int64, fp16, …), the math in V (float
// for chains on float data, int64_t for integer/bool chains), any output type. One element per thread. ----
constexpr int kMaxRank = 6;

template <class TOut, int kInputs, int kPieces = 0>
struct MixedArgs {
  const void* inputs[kInputs > 0 ? kInputs : 1];
  Broadcast broadcast[kInputs > 0 ? kInputs : 1];
  int64_t inner[kInputs > 0 ? kInputs : 1];
  int64_t span[kInputs > 0 ? kInputs : 1];
  TOut* output;
  int64_t count;
  int rank;                 // kStrided: the output's rank and shape, and each input's strides over it (0: broadcast)
  int64_t shape[kMaxRank];
  int64_t strides[kInputs > 0 ? kInputs : 1][kMaxRank];
  ConcatPieces<const void*, kInputs, kPieces> concat;  // for kConcat (zero otherwise)
};

template <class V>
__device__ __forceinline__ V value_of(__half v) { return static_cast<V>(__half2float(v)); }
template <class V>
__device__ __forceinline__ V value_of(__nv_bfloat16 v) { return static_cast<V>(__bfloat162float(v)); }
template <class V, class T>
__device__ __forceinline__ V value_of(T v) { return static_cast<V>(v); }

template <class T>
struct StoreAs {
  template <class V>
  __device__ __forceinline__ static T of(V v) { return static_cast<T>(v); }
};
template <>
struct StoreAs<__half> {
  template <class V>
  __device__ __forceinline__ static __half of(V v) { return __float2half_rn(static_cast<float>(v)); }
};
template <>
struct StoreAs<__nv_bfloat16> {
  template <class V>
  __device__ __forceinline__ static __nv_bfloat16 of(V v) { return __float2bfloat16_rn(static_cast<float>(v)); }
};

template <class TOut, int kInputs, int kPieces>
__device__ __forceinline__ int64_t mixed_source_index(const MixedArgs<TOut, kInputs, kPieces>& a, int k, int64_t i) {
  switch (a.broadcast[k]) {
    case Broadcast::kFull: return i;
    case Broadcast::kInner: return i % a.inner[k];
    case Broadcast::kOuter: return i / a.inner[k];
    case Broadcast::kMiddle: return (i / a.span[k]) * a.inner[k] + i % a.inner[k];
    case Broadcast::kStrided: {
      int64_t rest = i, offset = 0;
      for (int d = a.rank - 1; d >= 0; --d) {
        const int64_t q = rest / a.shape[d];
        offset += (rest - q * a.shape[d]) * a.strides[k][d];
        rest = q;
      }
      return offset;
    }
    default: return 0;
  }
}

// Element i of kConcat input k in the mixed kernel: from its piece, in that piece's storage type (float data only).
template <class V, class TOut, int kInputs, int kPieces>
__device__ __forceinline__ V load_concat(const MixedArgs<TOut, kInputs, kPieces>& a, int k, int64_t i) {
  int p;
  const int64_t at = concat_source(a.concat, k, a.inner[k], a.span[k], i, &p);
  switch (a.concat.storage[p]) {
    case Storage::kHalf: return value_of<V>(static_cast<const __half*>(a.concat.pointers[p])[at]);
    case Storage::kBFloat16: return value_of<V>(static_cast<const __nv_bfloat16*>(a.concat.pointers[p])[at]);
    default: return value_of<V>(static_cast<const float*>(a.concat.pointers[p])[at]);
  }
}

template <class V, class TIn, class TOut, int kInputs, int kPieces>
__device__ __forceinline__ V load_mixed_one(const MixedArgs<TOut, kInputs, kPieces>& a, int k, int64_t i) {
  if (kPieces > 0 && a.broadcast[k] == Broadcast::kConcat) return load_concat<V>(a, k, i);
  return value_of<V>(static_cast<const TIn*>(a.inputs[k])[mixed_source_index(a, k, i)]);
}

template <class V, class... TIn, class TOut, int kInputs, int kPieces, size_t... K>
__device__ __forceinline__ void load_mixed(V* in, const MixedArgs<TOut, kInputs, kPieces>& a, int64_t i, std::index_sequence<K...>) {
  ((in[K] = load_mixed_one<V, TIn>(a, static_cast<int>(K), i)), ...);
}

template <class V, class Fn, class TOut, int kInputs, int kPieces, class... TIn>
__global__ void mixed_elementwise_kernel(MixedArgs<TOut, kInputs, kPieces> a, Fn fn) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < a.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    V in[kInputs > 0 ? kInputs : 1];
    load_mixed<V, TIn...>(in, a, i, std::index_sequence_for<TIn...>{});
    a.output[i] = StoreAs<TOut>::of(fn(V(0), in));
  }
}

}  // namespace ew

// launch_mixed_elementwise<float, __half, uint8_t>(args, chain, stream): V, then the inputs' storage types in order.
template <class V, class... TIn, class TOut, int kInputs, int kPieces, class Fn>
cudaError_t launch_mixed_elementwise(const ew::MixedArgs<TOut, kInputs, kPieces>& args, Fn fn, cudaStream_t stream) {
  static_assert(sizeof...(TIn) == kInputs, "one storage type per input");
  static_assert(sizeof(args) + sizeof(Fn) <= ew::kMaxParamBytes, "kernel parameters past 4 KB");
  if (args.count <= 0) return cudaSuccess;
  constexpr int kThreads = 256;
  ew::mixed_elementwise_kernel<V, Fn, TOut, kInputs, kPieces, TIn...><<<grid_for(args.count, kThreads), kThreads, 0, stream>>>(args, fn);
  return launch_status();
}

// Fn before kPieces: launch_fused_elementwise<T, kInputs, Fn> names an instance, kPieces deduced from the args.
template <class T, int kInputs, class Fn, int kPieces>
cudaError_t launch_fused_elementwise(const ew::ElementwiseArgs<T, kInputs, kPieces>& args, Fn fn, cudaStream_t stream) {
  static_assert(sizeof(args) + sizeof(Fn) <= ew::kMaxParamBytes, "kernel parameters past 4 KB");
  if (args.count <= 0) return cudaSuccess;
  for (int k = 0; k < kInputs; ++k)
    if (args.broadcast[k] == ew::Broadcast::kStrided && (args.strided[k].rank < 1 || args.strided[k].rank > ew::kMaxBroadcastRank))
      return cudaErrorInvalidValue;
  constexpr int kThreads = 256;
  if (ew::can_vectorize(args)) {
    ew::fused_elementwise_vector_kernel<T, kInputs, kPieces, Fn>
        <<<grid_for(args.count / Vec16<T>::kElements, kThreads), kThreads, 0, stream>>>(args, fn);
  } else {
    ew::fused_elementwise_scalar_kernel<T, kInputs, kPieces, Fn><<<grid_for(args.count, kThreads), kThreads, 0, stream>>>(args, fn);
  }
  return launch_status();
}

}  // namespace kernels
}  // namespace ait
