// The GELU activation of CUTLASS GEMM and convolution epilogues (cutlass/gemm.ts and conv.ts name it in sm90 EVT
// Sm90Compute nodes and sm80 LinearCombinationGeneric epilogues): gelu.cuh's gelu_fast in place of CUTLASS's
// erff-based cutlass::epilogue::thread::GELU, with the same interface (scalar and Array specializations). Included
// only by CUTLASS instance sources.
#pragma once

#include "cutlass/array.h"
#include "cutlass/cutlass.h"
#include "gelu.cuh"

namespace ait {
namespace cutlass_epilogue {

template <class T>
struct Gelu {
  static const bool kIsHeavy = true;
  CUTLASS_HOST_DEVICE T operator()(T const& x) const { return T(gelu_fast(float(x))); }
};

template <class T, int N>
struct Gelu<cutlass::Array<T, N>> {
  static const bool kIsHeavy = true;
  CUTLASS_HOST_DEVICE cutlass::Array<T, N> operator()(cutlass::Array<T, N> const& x) const {
    cutlass::Array<T, N> y;
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < N; ++i) y[i] = T(gelu_fast(float(x[i])));
    return y;
  }
};

}  // namespace cutlass_epilogue
}  // namespace ait
