/**
 * Composable Kernel instances: the tile configurations, the heuristic that picks one per problem, and the text of
 * one translation unit per instance (src/ck_<k>.cu, declared CK-free in src/ait_ck.h).
 *
 * The CK release is the develop commit that moved CK's CI image to ROCm 5.2.3 (b22ebd448, 2022-09-13; CK has no
 * rocm-5.2.x tag): the CK of Debian's hipcc 5.2.3, which compiles these instances (../README.md says which were
 * compiled). Its device operations used here:
 *
 *  - DeviceGemmMultipleD_Xdl_CShuffle: E[m, n] = cde(A[m, k] · B, D0, D1, ...), A row-major, B column-major (an
 *    [n, k] weight) or row-major (a [k, n] weight), each D row-major [m, n] with its own row stride (0: a [n] vector);
 *  - DeviceBatchedGemmMultiD_Xdl: the same per batch, B column-major ([batch, n, k]) or row-major ([batch, k, n]);
 *  - DeviceGroupedConvFwdMultipleD_Xdl_CShuffle: NHWC activations (NHWGC with the group inside the channels), OHWI
 *    weights (KYXGC), NHWC output, Ds of the output's shape with strides (0 for a [k] channel vector).
 *
 * The CDE operation is ours (`Epilogue` in each instance): the node's epilogue steps in order, in float, with the
 * functors of the elementwise kernels (kernels/elementwise.cuh ew::), so its math is the one the CUDA build runs.
 * Every instance pads M, N and K (MNKPadding): any size runs; the vector widths of A/B (along K) and of the
 * epilogue (along N) are the largest of 8, 4, 2, 1 that divide the problem's K and N (C and K per group for a conv),
 * which CK's IsSupportedArgument checks again at run time.
 */
import { createHash } from 'node:crypto';
import type { GemmLayoutB } from '../../cuda/cutlass/gemm';
import { CkAttentionSpec, CkRowSpec, attentionBody, rowBody } from './norm-instances';

export type CkKind = CkGemmKind | CkRowKind | 'attention';

/** The GEMM-shaped device operations (CkInstanceSpec). */
export type CkGemmKind = 'gemm' | 'batched_gemm' | 'conv';

/** Row operations over the last axis (norm-instances.ts). */
export type CkRowKind = 'layernorm' | 'softmax';

/** One XDL tile configuration (MPerXDL = NPerXDL = 32, KPerBlock 32, AK1 = BK1 = 8 for column-major B). */
export interface CkTile {
  block: number;
  m: number;
  n: number;
  /** XDL repeats per wave along M and N. */
  mXdl: number;
  nXdl: number;
  /** CDE cluster (MBlock, MPerBlock, NBlock, NPerBlock) threads of the epilogue's shuffle. */
  cde: [number, number, number, number];
  /** Relative throughput of a full tile (larger tiles reuse more of what they load). */
  efficiency: number;
}

/** CK's fp16 instance-library tile shapes (library/src/tensor_operation_instance/gpu/gemm, mk_nk), largest first. */
export const CK_TILES: readonly CkTile[] = [
  { block: 256, m: 256, n: 128, mXdl: 4, nXdl: 2, cde: [1, 32, 1, 8], efficiency: 1 },
  { block: 256, m: 128, n: 256, mXdl: 2, nXdl: 4, cde: [1, 32, 1, 8], efficiency: 1 },
  { block: 256, m: 128, n: 128, mXdl: 2, nXdl: 2, cde: [1, 32, 1, 8], efficiency: 0.9 },
  { block: 128, m: 128, n: 128, mXdl: 4, nXdl: 2, cde: [1, 16, 1, 8], efficiency: 0.85 },
  { block: 128, m: 128, n: 64, mXdl: 2, nXdl: 2, cde: [1, 32, 1, 4], efficiency: 0.75 },
  { block: 128, m: 64, n: 128, mXdl: 2, nXdl: 2, cde: [1, 16, 1, 8], efficiency: 0.75 },
  { block: 64, m: 64, n: 64, mXdl: 2, nXdl: 2, cde: [1, 16, 1, 4], efficiency: 0.5 },
];

/** Compute units of the targets (MI210 has 104 of gfx90a's; MI300X 304). */
export const COMPUTE_UNITS: Record<string, number> = { gfx90a: 104, gfx942: 304 };

/** Largest vector (elements) of 8, 4, 2, 1 that divides `extent`. */
export function vectorWidth(extent: number): number {
  return [8, 4, 2, 1].find((v) => extent % v === 0)!;
}

/** A GEMM problem as the heuristic sees it (a conv's implicit GEMM: M = N·P·Q, N = K per group, K = R·S·C per group). */
export interface CkProblem {
  m: number;
  n: number;
  k: number;
  /** Independent GEMMs (batched GEMM count, conv groups). */
  batch?: number;
}

/** The estimated time of a tile: waves of blocks over the CUs × the work of one block / the tile's efficiency. */
function tileCost(tile: CkTile, p: CkProblem, cus: number): number {
  const blocks = Math.ceil(p.m / tile.m) * Math.ceil(p.n / tile.n) * (p.batch ?? 1);
  return (Math.ceil(blocks / cus) * tile.m * tile.n) / tile.efficiency;
}

/**
 * The tile of a problem: the least estimated time (tileCost), where a smaller tile must be 10% faster than the larger
 * one it replaces (the estimate is rough: without the margin the choice flips between neighbouring tiles with every
 * wave, and each flip is one more instance to compile). The choice depends on M only through ceil(M / 64) (every
 * tile's M is a multiple of 64), which batch ranges use (library.ts ckDecisions).
 */
export function chooseCkTile(p: CkProblem, cus: number): { tile: CkTile; reason: string } {
  let best = CK_TILES[0];
  for (const tile of CK_TILES) if (tileCost(tile, p, cus) < 0.9 * tileCost(best, p, cus)) best = tile;
  const blocks = Math.ceil(p.m / best.m) * Math.ceil(p.n / best.n) * (p.batch ?? 1);
  return {
    tile: best,
    reason: `tile ${best.m}x${best.n}x32 (${best.block} threads): ${blocks} blocks on ${cus} CUs, least estimated time`,
  };
}

/**
 * The candidates of a problem (CUDA's profiling/candidates.ts): every tile with the spec's vector widths and
 * epilogue, what the ROCm profiler times (profiling.ts; library.ts records the same list per signature).
 */
export function ckCandidates(spec: Omit<CkInstanceSpec, 'tile'>): CkInstance<CkInstanceSpec>[] {
  return CK_TILES.map((tile) => ckInstance(fitVectors({ ...spec, tile })));
}

/** What a CK instance is, before it is text: the device operation, the tile, the vector widths, the epilogue. */
export interface CkInstanceSpec {
  kind: CkGemmKind;
  tile: CkTile;
  /** Vector widths: A and B along K (per group C for a conv), the epilogue (E and Ds) along N. */
  vectors: { a: number; b: number; cde: number };
  /** The epilogue as ew functor expressions over `in` (in[0] the accumulator, in[1 + i] operand D_i). */
  epilogue: string[];
  /** Number of D operands. */
  operands: number;
  /** GEMMs: B column-major ([n, k] row-major, per batch) or row-major ([k, n]). */
  layoutB?: GemmLayoutB;
  /** Conv: CK's forward specialization (1×1 forms skip the im2col index arithmetic). */
  convSpecialization?: 'Default' | 'Filter1x1Pad0' | 'Filter1x1Stride1Pad0';
}

/** Any instance's spec. */
export type CkAnySpec = CkInstanceSpec | CkRowSpec | CkAttentionSpec;

export interface CkInstance<S extends CkAnySpec = CkAnySpec> {
  spec: S;
  /** Entry point: ait_ck_<kind>_<hash of the code>. */
  symbol: string;
  /** The translation unit (without the file name: the same text in every build). */
  code: string;
}

const seq = (values: readonly number[]) => `S<${values.join(', ')}>`;

/** The B block transfer of a tile: along K for column-major B, along N (BK1 = 2) for row-major B. */
function bTransfer(spec: CkInstanceSpec): { bk1: number; params: string[] } {
  const t = spec.tile;
  if (spec.layoutB !== 'row')
    return {
      bk1: 8,
      params: [`${seq([4, t.block / 4, 1])}, S<1, 0, 2>, S<1, 0, 2>, 2, ${spec.vectors.b}, 8, 1`],
    };
  // row-major B [k, n]: threads along N read `vectors.b` contiguous columns; 32 threads (16 for 64 threads) along N
  const clusterN = Math.min(32, t.block / 4);
  const clusterK = t.block / clusterN;
  return {
    bk1: 2,
    params: [`${seq([clusterK, clusterN, 1])}, S<0, 2, 1>, S<0, 2, 1>, 1, ${spec.vectors.b}, 2, 1`],
  };
}

/** The template arguments from NumGemmKPrefetchStage on (shared by the three device operations). */
function tileArguments(spec: CkInstanceSpec): string[] {
  const t = spec.tile;
  const b = bTransfer(spec);
  return [
    `1, ${t.block}, ${t.m}, ${t.n}, 32, 8, ${b.bk1}, 32, 32, ${t.mXdl}, ${t.nXdl},`,
    `${seq([4, t.block / 4, 1])}, S<1, 0, 2>, S<1, 0, 2>, 2, ${spec.vectors.a}, 8, 1,`,
    `${b.params[0]},`,
    `1, 1, ${seq(t.cde)}, ${spec.vectors.cde}`,
  ];
}

/**
 * A row-major B is read `vectors.b` columns per access of each thread's N slice (tile N / 32 threads, 16 for a
 * 64-thread tile): the width is halved until it divides the slice (the 64-wide tile's slice is 4).
 */
export function fitVectors(spec: CkInstanceSpec): CkInstanceSpec {
  if (spec.layoutB !== 'row') return spec;
  const slice = spec.tile.n / Math.min(32, spec.tile.block / 4);
  let b = spec.vectors.b;
  while (slice % b !== 0) b /= 2;
  return { ...spec, vectors: { ...spec.vectors, b } };
}

const DEVICE_OP: Record<CkGemmKind, { header: string; type: string }> = {
  gemm: { header: 'device_gemm_multiple_d_xdl_cshuffle.hpp', type: 'DeviceGemmMultipleD_Xdl_CShuffle' },
  batched_gemm: { header: 'device_batched_gemm_multi_d_xdl.hpp', type: 'DeviceBatchedGemmMultiD_Xdl' },
  conv: { header: 'device_grouped_conv_fwd_multiple_d_xdl_cshuffle.hpp', type: 'DeviceGroupedConvFwdMultipleD_Xdl_CShuffle' },
};

/** The instance's C++ (everything but its symbol, which is the hash of this text). */
function instanceBody(spec: CkInstanceSpec, symbol: string): string[] {
  const op = DEVICE_OP[spec.kind];
  const d = spec.operands;
  const dTypes = `ck::Tuple<${Array(d).fill('F16').join(', ')}>`;
  const lines: string[] = [
    `// Generated by AIT: Composable Kernel ${op.type}, tile ${spec.tile.m}x${spec.tile.n}x32 (${spec.tile.block} threads),`,
    `// vectors A ${spec.vectors.a} B ${spec.vectors.b} CDE ${spec.vectors.cde}${spec.layoutB ? `, B ${spec.layoutB}-major` : ''}; epilogue: ${spec.epilogue.join(', ') || 'none'}`,
    '#include "ck/ck.hpp"',
    '#include "ck/tensor_operation/gpu/device/tensor_layout.hpp"',
    '#include "ck/tensor_operation/gpu/device/gemm_specialization.hpp"',
    ...(spec.kind === 'conv' ? ['#include "ck/tensor_operation/gpu/device/convolution_forward_specialization.hpp"'] : []),
    `#include "ck/tensor_operation/gpu/device/${op.header}"`,
    '#include "ck/tensor_operation/gpu/element/element_wise_operation.hpp"',
    '#include "elementwise.cuh"',
    '#include "ait_ck.h"',
    '',
    `namespace ${symbol}_detail {`,
    '',
    'template <ck::index_t... Is>',
    'using S = ck::Sequence<Is...>;',
    'using F16 = ck::half_t;',
    'using PassThrough = ck::tensor_operation::element_wise::PassThrough;',
    '',
    "// E = the node's epilogue over the float accumulator C and the operands D_i, with the elementwise kernels' functors",
    'struct Epilogue {',
    '  template <typename E, typename C, typename... Ds>',
    '  __device__ void operator()(E& e, const C& c, const Ds&... ds) const {',
    '    namespace ew = ait::kernels::ew;',
    '    const float in[] = {ck::type_convert<float>(c), ck::type_convert<float>(ds)...};',
    '    float v = in[0];',
    ...spec.epilogue.map((f) => `    v = ${f}(v, in);`),
    '    e = ck::type_convert<E>(v);',
    '  }',
    '};',
    '',
  ];
  if (spec.kind === 'conv') {
    lines.push(
      'namespace ctc = ck::tensor_layout::convolution;',
      `using DeviceOp = ck::tensor_operation::device::${op.type}<`,
      `    2, ctc::NHWGC, ctc::KYXGC, ck::Tuple<${Array(d).fill('ctc::NHWGK').join(', ')}>, ctc::NHWGK, F16, F16, float, float, ${dTypes}, F16,`,
      `    PassThrough, PassThrough, Epilogue, ck::tensor_operation::device::ConvolutionForwardSpecialization::${spec.convSpecialization},`,
      '    ck::tensor_operation::device::GemmSpecialization::MNKPadding,',
      ...tileArguments(spec).map((l, i, all) => `    ${l}${i === all.length - 1 ? '>;' : ''}`),
    );
  } else {
    const b = spec.layoutB === 'row' ? 'Row' : 'Col'; // CK's B is [k, n]: our [n, k] weight is column-major
    lines.push(
      'using Row = ck::tensor_layout::gemm::RowMajor;',
      'using Col = ck::tensor_layout::gemm::ColumnMajor;',
      `using DeviceOp = ck::tensor_operation::device::${op.type}<`,
      `    Row, ${b}, ck::Tuple<${Array(d).fill('Row').join(', ')}>, Row, F16, F16, float, float, ${dTypes}, F16,`,
      '    PassThrough, PassThrough, Epilogue, ck::tensor_operation::device::GemmSpecialization::MNKPadding,',
      ...tileArguments(spec).map((l, i, all) => `    ${l}${i === all.length - 1 ? '>;' : ''}`),
    );
  }
  lines.push('', `}  // namespace ${symbol}_detail`, '');
  const pointers = `std::array<const void*, ${d}>{${Array.from({ length: d }, (_, i) => `args.d[${i}]`).join(', ')}}`;
  if (spec.kind === 'conv') {
    lines.push(
      `const char* ${symbol}(const AitCkConvArgs& args, hipStream_t stream) {`,
      `  using namespace ${symbol}_detail;`,
      '  using Dims = std::array<ck::index_t, 5>;',
      '  const ck::index_t g = args.group, cg = args.c / g, kg = args.k / g;',
      '  // lengths (G, N, C, H, W) and strides of NHWC tensors whose channels are G groups of C per group',
      '  const Dims x_lengths{g, args.n, cg, args.h, args.w}, x_strides{cg, args.h * args.w * args.c, 1, args.w * args.c, args.c};',
      '  const Dims w_lengths{g, kg, cg, args.r, args.s}, w_strides{kg * args.r * args.s * cg, args.r * args.s * cg, 1, args.s * cg, cg};',
      '  const Dims y_lengths{g, args.n, kg, args.p, args.q}, y_strides{kg, args.p * args.q * args.k, 1, args.q * args.k, args.k};',
      '  const Dims vector_strides{kg, 0, 1, 0, 0};  // a [k] channel vector read at every output pixel',
      `  std::array<Dims, ${d}> d_lengths{}, d_strides{};`,
      `  for (int i = 0; i < ${d}; ++i) {`,
      '    d_lengths[i] = y_lengths;',
      '    d_strides[i] = args.d_per_channel[i] ? vector_strides : y_strides;',
      '  }',
      '  DeviceOp op;',
      `  auto argument = op.MakeArgument(args.x, args.weight, ${pointers}, args.y, x_lengths, x_strides, w_lengths, w_strides,`,
      '                                  d_lengths, d_strides, y_lengths, y_strides, {args.stride_h, args.stride_w},',
      '                                  {args.dilation_h, args.dilation_w}, {args.pad_top, args.pad_left}, {args.pad_bottom, args.pad_right},',
      '                                  PassThrough{}, PassThrough{}, Epilogue{});',
    );
  } else {
    const batched = spec.kind === 'batched_gemm';
    lines.push(
      `const char* ${symbol}(const AitCkGemmArgs& args, hipStream_t stream) {`,
      `  using namespace ${symbol}_detail;`,
      `  std::array<ck::index_t, ${d}> d_strides{};`,
      ...(batched ? [`  std::array<ck::index_t, ${d}> d_batch_strides{};`] : []),
      `  for (int i = 0; i < ${d}; ++i) {`,
      '    d_strides[i] = args.d_per_channel[i] ? 0 : args.n;  // a [n] vector is a row of stride 0',
      ...(batched ? ['    d_batch_strides[i] = args.d_per_channel[i] ? 0 : args.m * args.n;'] : []),
      '  }',
      '  DeviceOp op;',
    );
    const bStride = spec.layoutB === 'row' ? 'args.n' : 'args.k';
    if (batched)
      lines.push(
        `  auto argument = op.MakeArgument(args.a, args.b, ${pointers}, args.e, args.m, args.n, args.k, args.batch, args.k, ${bStride},`,
        '                                  d_strides, args.n, args.m * args.k, args.n * args.k, d_batch_strides, args.m * args.n,',
        '                                  PassThrough{}, PassThrough{}, Epilogue{});',
      );
    else
      lines.push(
        `  auto argument = op.MakeArgument(args.a, args.b, ${pointers}, args.e, args.m, args.n, args.k, args.k, ${bStride}, d_strides, args.n,`,
        '                                  PassThrough{}, PassThrough{}, Epilogue{});',
      );
  }
  lines.push(
    // CK checks the sizes against the vector widths and tile, and the device (the pinned release: gfx908, gfx90a)
    `  if (!op.IsSupportedArgument(argument)) return "${symbol}: CK IsSupportedArgument refused the problem or the device";`,
    '  op.MakeInvoker().Run(argument, StreamConfig{stream, false});',
    `  return hipGetLastError() == hipSuccess ? nullptr : "${symbol}: kernel launch failed";`,
    '}',
    '',
  );
  return lines;
}

/** The instance of a spec: its text, named after a hash of the text (the same instance is the same symbol everywhere). */
export function ckInstance<S extends CkAnySpec>(spec: S): CkInstance<S> {
  const placeholder = '@SYMBOL@';
  const lines =
    spec.kind === 'attention'
      ? attentionBody(spec, placeholder)
      : spec.kind === 'layernorm' || spec.kind === 'softmax'
        ? rowBody(spec as CkRowSpec, placeholder)
        : instanceBody(spec as CkInstanceSpec, placeholder);
  const text = lines.join('\n');
  const symbol = `ait_ck_${spec.kind}_${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
  return { spec, symbol, code: text.split(placeholder).join(symbol) };
}

/** The args struct of each kind's entry point (src/ait_ck.h). */
const ARGS_OF: Record<CkKind, string> = {
  gemm: 'AitCkGemmArgs',
  batched_gemm: 'AitCkGemmArgs',
  conv: 'AitCkConvArgs',
  layernorm: 'AitCkRowArgs',
  softmax: 'AitCkRowArgs',
  attention: 'AitCkAttentionArgs',
};

/** Maximum epilogue operands (D tensors) of an instance. */
export const CK_MAX_OPERANDS = 4;

/** src/ait_ck.h: the CK-free declarations of the instance entry points (model.cu includes only this). */
export function ckHeader(instances: readonly CkInstance[]): string {
  const lines = [
    '// Generated by AIT: entry points of the Composable Kernel instances (src/ck_<k>.cu), without CK headers.',
    '#pragma once',
    '',
    '#include <hip/hip_runtime.h>',
    '',
    `// E[m, n] = epilogue(A[m, k] · B): fp16, A and E row-major, B [n, k] row-major (or [k, n] for a row-major batched`,
    '// instance); batch > 1 for a batched instance, every operand packed batch-major. d: the epilogue operands in step',
    "// order, each a [n] vector (d_per_channel) or of E's shape.",
    'struct AitCkGemmArgs {',
    '  int batch, m, n, k;',
    '  const void* a;',
    '  const void* b;',
    `  const void* d[${CK_MAX_OPERANDS}];`,
    `  bool d_per_channel[${CK_MAX_OPERANDS}];`,
    '  void* e;',
    '};',
    '',
    '// y = epilogue(conv2d(x, weight)): NHWC x [n, h, w, c], OHWI weight [k, r, s, c / group], NHWC y [n, p, q, k]; d as for a GEMM',
    '// with [k] channel vectors.',
    'struct AitCkConvArgs {',
    '  int n, h, w, c, k, r, s, p, q, group;',
    '  int stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left, pad_bottom, pad_right;',
    '  const void* x;',
    '  const void* weight;',
    `  const void* d[${CK_MAX_OPERANDS}];`,
    `  bool d_per_channel[${CK_MAX_OPERANDS}];`,
    '  void* y;',
    '};',
    '',
    '// y = layernorm(x) (gamma, beta) or softmax(x) over the last axis of x [rows, n] (row-major fp16); epsilon for layernorm.',
    'struct AitCkRowArgs {',
    '  int rows, n;',
    '  float epsilon;',
    '  const void* x;',
    '  const void* gamma;',
    '  const void* beta;',
    '  void* y;',
    '};',
    '',
    '// o = softmax(q·kᵀ·scale)·v per head: q, k, v rows [batch, sequence] of token_stride elements, head h at h·head_dim;',
    '// o [batch, sequence, heads·head_dim].',
    'struct AitCkAttentionArgs {',
    '  int batch, sequence, heads, head_dim, token_stride;',
    '  float scale;',
    '  const void* q;',
    '  const void* k;',
    '  const void* v;',
    '  void* o;',
    '};',
    '',
    ...instances.map((i) => `const char* ${i.symbol}(const ${ARGS_OF[i.spec.kind]}& args, hipStream_t stream);`),
    '',
  ];
  return lines.join('\n');
}
