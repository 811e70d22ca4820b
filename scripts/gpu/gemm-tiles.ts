/**
 * GEMM tile measurement: emits the sm90 CUTLASS instances the GEMM heuristic can choose from (exactly as the code
 * generator emits them), plus a driver that checks each against a naive fp32 GEMM and times each on the transformer
 * GEMM shapes of ViT-B/16 and ViT-L/16-384 at batch 1, 8, 64 and 256 (bias epilogue). What it measures is what
 * chooseSm90Gemm's rules are based on (BENCHMARKS.md, "GEMM tiles").
 * With --epilogues it measures the fused epilogues of ViT-L/16-384 at batch 8 instead: fc1 with bias only, exact
 * GELU (our cutlass_gelu.h) and CUTLASS's tanh-form GELU; fc2 with its residual add on the tiles that suit K = 4·N.
 *
 *   npx tsx scripts/gpu/gemm-tiles.ts build/gemm-tiles [--epilogues]   # here: writes the sources and a Makefile
 *   make -C build/gemm-tiles -j CUTLASS_DIR=... && build/gemm-tiles/gemm_tiles > gemm-tiles.json   # GPU host
 *   python3 scripts/gpu/gemm_tiles_torch.py                 # GPU host: cuBLAS (torch.addmm) on the same shapes
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  emitSm90Gemm,
  gemmOperandsStruct,
  gemmSourceFile,
  type GemmEpilogue,
  type Sm90GemmConfig,
} from '../../compiler/backends/cuda/cutlass/gemm';

const out = process.argv[2] ?? 'build/gemm-tiles';
const epilogueMode = process.argv.includes('--epilogues');
const biasOnly: GemmEpilogue = { bias: true, residual: false, activation: 'identity' };

const sm90 = (
  tile: [number, number, number],
  cluster: [number, number, number],
  schedule: 'cooperative' | 'pingpong',
  scheduler: 'persistent' | 'streamk' = 'persistent',
): Sm90GemmConfig => ({ arch: 'sm90', tile, cluster, schedule, scheduler, alignment: 8 });

interface Candidate {
  config: Sm90GemmConfig;
  epilogue: GemmEpilogue;
  /** Only on shapes whose label contains this (all shapes when absent). */
  only?: string;
}

const tileCandidates: Candidate[] = [
  sm90([128, 256, 64], [2, 1, 1], 'cooperative'),
  sm90([128, 256, 64], [2, 1, 1], 'cooperative', 'streamk'),
  sm90([256, 128, 64], [2, 1, 1], 'cooperative'),
  sm90([256, 128, 64], [2, 1, 1], 'cooperative', 'streamk'),
  sm90([128, 128, 64], [2, 1, 1], 'cooperative'),
  sm90([128, 128, 64], [2, 1, 1], 'cooperative', 'streamk'),
  sm90([128, 128, 64], [1, 2, 1], 'pingpong'),
  sm90([64, 256, 64], [2, 1, 1], 'pingpong'),
  sm90([64, 128, 64], [2, 1, 1], 'pingpong'),
].map((config) => ({ config, epilogue: biasOnly }));

const gelu = (activation: 'gelu' | 'gelu_tanh'): GemmEpilogue => ({ bias: true, residual: false, activation });
const residual: GemmEpilogue = { bias: true, residual: true, activation: 'identity' };
const pingpong = sm90([128, 128, 64], [1, 2, 1], 'pingpong');
const epilogueCandidates: Candidate[] = [
  { config: pingpong, epilogue: biasOnly, only: 'fc1' },
  { config: pingpong, epilogue: gelu('gelu'), only: 'fc1' },
  { config: pingpong, epilogue: gelu('gelu_tanh'), only: 'fc1' },
  { config: sm90([128, 256, 64], [2, 1, 1], 'cooperative'), epilogue: gelu('gelu'), only: 'fc1' },
  { config: sm90([64, 256, 64], [2, 1, 1], 'pingpong'), epilogue: gelu('gelu'), only: 'fc1' },
  { config: pingpong, epilogue: residual, only: 'fc2' },
  { config: sm90([128, 256, 64], [2, 1, 1], 'cooperative', 'streamk'), epilogue: residual, only: 'fc2' },
  { config: sm90([256, 128, 64], [2, 1, 1], 'cooperative', 'streamk'), epilogue: residual, only: 'fc2' },
  { config: sm90([128, 128, 64], [1, 2, 1], 'cooperative', 'streamk'), epilogue: residual, only: 'fc2' },
  { config: sm90([128, 256, 64], [1, 1, 1], 'cooperative', 'streamk'), epilogue: residual, only: 'fc2' },
];
const candidates = epilogueMode ? epilogueCandidates : tileCandidates;

/** The four GEMMs of a transformer block (qkv, proj, fc1, fc2) for tokens = batch · sequence. */
function blockShapes(
  model: string,
  sequence: number,
  hidden: number,
  batches = [1, 8, 64, 256],
): { label: string; m: number; n: number; k: number }[] {
  const shapes = [];
  for (const batch of batches) {
    const m = batch * sequence;
    shapes.push(
      { label: `${model} b${batch} qkv`, m, n: 3 * hidden, k: hidden },
      { label: `${model} b${batch} proj`, m, n: hidden, k: hidden },
      { label: `${model} b${batch} fc1`, m, n: 4 * hidden, k: hidden },
      { label: `${model} b${batch} fc2`, m, n: hidden, k: 4 * hidden },
    );
  }
  return shapes;
}
const shapes = epilogueMode
  ? blockShapes('vit_l', 577, 1024, [8]).filter((s) => /fc[12]$/.test(s.label))
  : [...blockShapes('vit_b', 197, 768), ...blockShapes('vit_l', 577, 1024)];

fs.mkdirSync(out, { recursive: true });
// our epilogue functor headers, which instances using our GELU include (the build ships them in src/kernels)
const kernelsDir = path.resolve(__dirname, '../../compiler/backends/cuda/kernels');
for (const header of ['gelu.cuh', 'cutlass_gelu.h']) fs.copyFileSync(path.join(kernelsDir, header), path.join(out, header));
const entries: string[] = [];
const names: string[] = [];
candidates.forEach(({ config, epilogue, only }, i) => {
  const instance = emitSm90Gemm(config, epilogue, 'gemm-tiles candidate');
  names.push(instance.name);
  const source = [
    gemmSourceFile([instance]),
    `const char* candidate_${i}(const AitGemmOperands& operands, void* workspace, size_t workspace_bytes, cudaStream_t stream) {`,
    `  return ${instance.name}::run(operands, workspace, workspace_bytes, stream);`,
    '}',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(out, `candidate_${i}.cu`), source);
  const activation = { identity: 0, gelu: 1, gelu_tanh: 2 }[epilogue.activation as 'identity' | 'gelu' | 'gelu_tanh'];
  entries.push(`  {"${instance.name}", candidate_${i}, ${activation}, ${epilogue.residual}, ${only ? `"${only}"` : 'nullptr'}},`);
});

const driver = `// Generated by scripts/gpu/gemm-tiles.ts: checks and times each candidate on each shape; JSON on stdout.
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "cutlass/numeric_types.h"

${gemmOperandsStruct()}

using RunFn = const char* (*)(const AitGemmOperands&, void*, size_t, cudaStream_t);
${candidates.map((_, i) => `const char* candidate_${i}(const AitGemmOperands&, void*, size_t, cudaStream_t);`).join('\n')}
// activation: 0 none, 1 exact GELU, 2 tanh-form GELU; residual: D = act(A·B + bias + C)
struct Candidate { const char* name; RunFn run; int activation; bool residual; const char* only; };
static const Candidate kCandidates[] = {
${entries.join('\n')}
};
struct Shape { const char* label; int m, n, k; };
static const Shape kShapes[] = {
${shapes.map((s) => `  {"${s.label}", ${s.m}, ${s.n}, ${s.k}},`).join('\n')}
};

#define CHECK_CUDA(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s:%d %s\\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)

// d[m][n] = sum_k a[m][k] * b[n][k] + bias[n], in fp32 (one thread per output).
__global__ void reference_gemm(const __half* a, const __half* b, const __half* bias, float* d, int m, int n, int k) {
  const int row = blockIdx.y * blockDim.y + threadIdx.y, col = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= m || col >= n) return;
  float acc = 0.f;
  for (int i = 0; i < k; ++i) acc += __half2float(a[(size_t)row * k + i]) * __half2float(b[(size_t)col * k + i]);
  d[(size_t)row * n + col] = acc + __half2float(bias[col]);
}

__global__ void fill_random(__half* p, size_t count, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x) {
    unsigned x = (unsigned)i * 2654435761u ^ seed;
    x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
    p[i] = __float2half(((x & 0xffff) / 65535.f - 0.5f));
  }
}

double expected(const Candidate& c, double acc_plus_bias, double residual) {
  double x = acc_plus_bias + (c.residual ? residual : 0.0);
  if (c.activation == 1) return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  if (c.activation == 2) return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  return x;
}

int main() {
  size_t max_a = 0, max_b = 0, max_d = 0;
  for (const Shape& s : kShapes) {
    max_a = std::max(max_a, (size_t)s.m * s.k);
    max_b = std::max(max_b, (size_t)s.n * s.k);
    max_d = std::max(max_d, (size_t)s.m * s.n);
  }
  __half *a, *b, *bias, *c_in, *d;
  float* ref;
  void* workspace;
  const size_t workspace_bytes = size_t(256) << 20;
  CHECK_CUDA(cudaMalloc(&a, max_a * 2));
  CHECK_CUDA(cudaMalloc(&b, max_b * 2));
  CHECK_CUDA(cudaMalloc(&bias, 16384 * 2));
  CHECK_CUDA(cudaMalloc(&d, max_d * 2));
  CHECK_CUDA(cudaMalloc(&c_in, max_d * 2));
  CHECK_CUDA(cudaMalloc(&ref, (size_t)8192 * 4096 * 4));
  CHECK_CUDA(cudaMalloc(&workspace, workspace_bytes));
  fill_random<<<1024, 256>>>(a, max_a, 1);
  fill_random<<<1024, 256>>>(b, max_b, 2);
  fill_random<<<64, 256>>>(bias, 16384, 3);
  fill_random<<<1024, 256>>>(c_in, max_d, 4);
  std::vector<__half> residual_host(max_d);
  CHECK_CUDA(cudaMemcpy(residual_host.data(), c_in, max_d * 2, cudaMemcpyDeviceToHost));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  printf("{\\"device\\": \\"%s\\", \\"sm_count\\": %d, \\"results\\": [\\n", prop.name, prop.multiProcessorCount);
  bool first = true;
  int failures = 0;
  for (const Shape& s : kShapes) {
    // correctness against the fp32 reference on shapes small enough for the naive kernel
    const bool check = (size_t)s.m * s.n <= (size_t)8192 * 4096;
    if (check) {
      dim3 block(16, 16), grid((s.n + 15) / 16, (s.m + 15) / 16);
      reference_gemm<<<grid, block, 0, stream>>>(a, b, bias, ref, s.m, s.n, s.k);
      CHECK_CUDA(cudaGetLastError());
    }
    for (const Candidate& c : kCandidates) {
      if (c.only && !strstr(s.label, c.only)) continue;
      AitGemmOperands op{s.m, s.n, s.k, reinterpret_cast<const cutlass::half_t*>(a), reinterpret_cast<const cutlass::half_t*>(b),
                         reinterpret_cast<const cutlass::half_t*>(bias), c.residual ? reinterpret_cast<const cutlass::half_t*>(c_in) : nullptr,
                         reinterpret_cast<cutlass::half_t*>(d)};
      CHECK_CUDA(cudaMemsetAsync(d, 0xff, (size_t)s.m * s.n * 2, stream));  // NaN poison
      const char* error = c.run(op, workspace, workspace_bytes, stream);
      double rel_l2 = -1;
      if (!error && check) {
        std::vector<__half> got((size_t)s.m * s.n);
        std::vector<float> want((size_t)s.m * s.n);
        CHECK_CUDA(cudaMemcpyAsync(got.data(), d, got.size() * 2, cudaMemcpyDeviceToHost, stream));
        CHECK_CUDA(cudaMemcpyAsync(want.data(), ref, want.size() * 4, cudaMemcpyDeviceToHost, stream));
        CHECK_CUDA(cudaStreamSynchronize(stream));
        double num = 0, den = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          const double w = expected(c, want[i], __half2float(residual_host[i]));
          const double diff = (double)__half2float(got[i]) - w;
          num += diff * diff;
          den += w * w;
        }
        rel_l2 = std::sqrt(num / den);
        if (!(rel_l2 < 2e-3)) ++failures;
      }
      double best_ms = -1;
      if (!error) {
        const int iterations = (double)s.m * s.n * s.k > 1e11 ? 10 : 50;
        for (int w = 0; w < 3; ++w) c.run(op, workspace, workspace_bytes, stream);
        for (int rep = 0; rep < 3; ++rep) {
          CHECK_CUDA(cudaEventRecord(start, stream));
          for (int i = 0; i < iterations; ++i) c.run(op, workspace, workspace_bytes, stream);
          CHECK_CUDA(cudaEventRecord(stop, stream));
          CHECK_CUDA(cudaEventSynchronize(stop));
          float ms = 0;
          CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
          ms /= iterations;
          if (best_ms < 0 || ms < best_ms) best_ms = ms;
        }
      }
      CHECK_CUDA(cudaGetLastError());
      const double tflops = best_ms > 0 ? 2.0 * s.m * s.n * s.k / (best_ms * 1e9) : 0;
      printf("%s  {\\"shape\\": \\"%s\\", \\"m\\": %d, \\"n\\": %d, \\"k\\": %d, \\"instance\\": \\"%s\\", \\"error\\": %s%s%s, "
             "\\"rel_l2\\": %.3e, \\"ms\\": %.5f, \\"tflops\\": %.1f}",
             first ? "" : ",\\n", s.label, s.m, s.n, s.k, c.name, error ? "\\"" : "", error ? error : "null", error ? "\\"" : "",
             rel_l2, best_ms, tflops);
      first = false;
      fprintf(stderr, "%-16s %-128s %9.4f ms %6.1f TFLOP/s rel_l2 %.2e%s%s\\n", s.label, c.name, best_ms, tflops, rel_l2,
              error ? " ERROR " : "", error ? error : "");
    }
  }
  printf("\\n], \\"failures\\": %d}\\n", failures);
  return failures ? 1 : 0;
}
`;
fs.writeFileSync(path.join(out, 'gemm_tiles.cu'), driver);

const objects = candidates.map((_, i) => `candidate_${i}.o`);
const makefile = `# Generated by scripts/gpu/gemm-tiles.ts
CUTLASS_DIR ?= $(error set CUTLASS_DIR to a CUTLASS checkout (its include/ and tools/util/include))
NVCC ?= nvcc
FLAGS = -std=c++17 -O3 -DNDEBUG --expt-relaxed-constexpr -gencode=arch=compute_90a,code=sm_90a -I$(CUTLASS_DIR)/include -I$(CUTLASS_DIR)/tools/util/include
gemm_tiles: gemm_tiles.o ${objects.join(' ')}
\t$(NVCC) $(FLAGS) $^ -o $@
%.o: %.cu
\t$(NVCC) $(FLAGS) -c $< -o $@
`;
fs.writeFileSync(path.join(out, 'Makefile'), makefile);
console.log(`wrote ${candidates.length} candidates and ${shapes.length} shapes to ${out}`);
