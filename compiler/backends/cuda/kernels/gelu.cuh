// GELU(x) = x·Φ(x) for fused GEMM/conv epilogues. erff costs a CUTLASS epilogue about 25 instructions per element,
// which on the ViT-L/16-384 fc1 GEMM (batch 8) is 20 µs of its 77 (BENCHMARKS.md, "GEMM epilogues"); this form
// costs 8 µs. Φ(x) ≈ σ(p(x)) with p an odd degree-7 polynomial fitted (minimax on the GELU error) over [-5, 5], x
// clamped there (Φ(±5) is 1 - 2.9e-7 from 1 or 0), and σ(p) = 1 / (1 + 2^(-p·log2 e)) from two MUFU instructions
// (ex2.approx: relative error 2^-22; rcp.approx: 1 ulp). Largest error against the exact GELU over [-12, 12]:
// 1.4e-5 absolute, at most 1.4e-3 relative where |GELU(x)| > 0.01: below fp16's rounding (4.9e-4 relative) except
// on the small negative outputs near x = -3. The unfused elementwise GELU (elementwise.cuh) keeps erff.
#pragma once

#include <cuda_runtime.h>

namespace ait {

__host__ __device__ __forceinline__ float gelu_fast(float x) {
  // -log2(e) · (1.595528611, 0.07331932510, -4.750531241e-4, -1.955785374e-5): the exponent of 2 in 1 + 2^q = 1/σ(p)
  constexpr float k1 = -2.30186128616333f, k3 = -0.10577742755413055f, k5 = 6.853567901998758e-4f,
                  k7 = 2.8216018108651042e-5f;
  const float xc = fminf(fmaxf(x, -5.f), 5.f);
  const float x2 = xc * xc;
  const float q = xc * fmaf(fmaf(fmaf(k7, x2, k5), x2, k3), x2, k1);
#ifdef __CUDA_ARCH__
  float e, phi;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(q));
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(phi) : "f"(1.f + e));
#else
  const float phi = 1.f / (1.f + exp2f(q));
#endif
  return x * phi;
}

}  // namespace ait
