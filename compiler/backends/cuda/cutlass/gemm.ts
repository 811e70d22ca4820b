/**
 * CUTLASS GEMM instances for fused GEMM ops: D[M,N] = act(A[M,K] · B[K,N] + bias[N] + C[M,N]), fp16 storage, fp32
 * accumulation. A is row-major (activations, tokens × features), B column-major (an ONNX/PyTorch weight [N,K]
 * row-major), C (the residual) and D row-major, so the layout string is `tnt`.
 *
 *  - sm90 (CUTLASS 3.x): TMA loads, warp-specialized cooperative or ping-pong kernels on wgmma; the fused epilogue is
 *    an epilogue visitor tree (EVT) built from Sm90AccFetch, Sm90RowBroadcast (bias), Sm90SrcFetch (residual) and
 *    Sm90Compute nodes.
 *  - sm80 (CUTLASS 2.x): multistage GemmUniversal with LinearCombinationGeneric<act> and the bias read as C with a
 *    zero row stride. Residual add on sm80 is not emitted yet (see emitSm80Gemm).
 *
 * Batched GEMMs (MatMul between two activations: attention scores and context) take the batch as CUTLASS's L mode
 * (3.x: the fourth problem mode, packed batch strides; 2.x: GemmUniversalMode::kBatched) and B either column-major
 * (`tnt`: [N,K] row-major, what a Transpose of the last two axes feeding B already is) or row-major (`ttt`: [K,N]
 * row-major, an untransposed activation), so neither layout is copied. They take AitBatchedGemmOperands.
 *
 * Names follow CUTLASS's procedural instance names (python/cutlass_library/gemm_operation.py), so a kernel in a
 * profile can be looked up in CUTLASS's own profiler, with the epilogue appended (e.g. `_bias_residual_relu`) so that
 * two instances differing only in their epilogue get different C++ names.
 */
import { fail } from '../../../diagnostics';
import type { BatchDecisions } from '../codegen/batch-ranges';

export type Activation = 'identity' | 'relu' | 'gelu' | 'gelu_tanh' | 'silu' | 'sigmoid' | 'tanh' | 'hardswish';

export interface GemmEpilogue {
  bias: boolean;
  activation: Activation;
  /** Adds C (a residual, row-major [M,N]) after the bias and before the activation: act(acc + bias + C). */
  residual: boolean;
}

export interface GemmProblem {
  m: number;
  n: number;
  k: number;
  /** Batch count (the L mode of a batched GEMM); 1 when absent. */
  batch?: number;
  /**
   * The largest alignment (elements) the run-time sizes guarantee, when N or K is a run-time dim and n, k are only
   * their largest values (gemm-lowering.ts then chooses for 8 and for 1, and dispatches on the sizes); 8 when absent.
   */
  alignment?: number;
}

/** How B is stored: 'column' = [N,K] row-major (weights, a transposed activation), 'row' = [K,N] row-major. */
export type GemmLayoutB = 'column' | 'row';

/** A batched GEMM's operand layout (the batch is packed: A [L,M,K], B [L,N,K] or [L,K,N], D [L,M,N]). */
export interface BatchedGemmLayout {
  layoutB: GemmLayoutB;
}

export type Sm90Schedule = 'cooperative' | 'pingpong';

/**
 * How output tiles are handed to the persistent CTAs: `persistent` gives each CTA whole tiles (data-parallel);
 * `streamk` (cooperative kernels only) also splits the K loop of the last wave's tiles across CTAs, so a tile count
 * just above a multiple of the SM count does not leave most SMs idle in the last wave. Stream-K needs a workspace for
 * the partial accumulators (sized by CUTLASS at run time; see STREAMK_WORKSPACE_BYTES in the GEMM lowering).
 */
export type Sm90TileScheduler = 'persistent' | 'streamk';

export interface Sm90GemmConfig {
  arch: 'sm90';
  tile: [number, number, number];
  cluster: [number, number, number];
  schedule: Sm90Schedule;
  /** Default `persistent`. */
  scheduler?: Sm90TileScheduler;
  alignment: number; // elements, for A, B, C, D
}

export interface Sm80GemmConfig {
  arch: 'sm80';
  tile: [number, number, number];
  warps: [number, number, number];
  stages: number;
  alignment: number;
}

export interface EmittedInstance {
  /** CUTLASS procedural name, recorded in graph.json as kernel.name. */
  name: string;
  /** Why this configuration (for the comment at the top of the generated function and graph.json). */
  reason: string;
  /** C++ text: a struct named after the instance with `using Gemm = ...` and a `run` function. */
  code: string;
  includes: string[];
  /** Takes AitBatchedGemmOperands (batch count, packed batch strides) rather than AitGemmOperands. */
  batched?: boolean;
}

// ---- epilogue visitor trees (sm90) ----

/** A node of an sm90 EVT; emits its type and its argument initializer. */
export type EvtNode =
  | { kind: 'acc' }
  | { kind: 'bias' } // row broadcast: one value per column n
  | { kind: 'scale' } // row broadcast of a per-column multiplier (convolutions with an unfolded scale)
  | { kind: 'source' } // C
  | { kind: 'compute'; fn: string; children: EvtNode[] };

export const CUTLASS_ACTIVATION: Record<Exclude<Activation, 'identity'>, string> = {
  relu: 'cutlass::epilogue::thread::ReLu',
  gelu: 'ait::cutlass_epilogue::Gelu', // kernels/cutlass_gelu.h: erff costs the epilogue 10× more (the header says)
  gelu_tanh: 'cutlass::epilogue::thread::GELU_taylor',
  silu: 'cutlass::epilogue::thread::SiLu',
  sigmoid: 'cutlass::epilogue::thread::Sigmoid',
  tanh: 'cutlass::epilogue::thread::Tanh',
  hardswish: 'cutlass::epilogue::thread::HardSwish',
};

/**
 * The activation headers an instance's code needs: CUTLASS's, and ours (kernels/cutlass_gelu.h, on the build's
 * include path as src/kernels) where the code names our GELU.
 */
export function activationIncludes(code: string): string[] {
  return ['cutlass/epilogue/thread/activation.h', ...(code.includes('ait::cutlass_epilogue::') ? ['cutlass_gelu.h'] : [])];
}

/** The tree of act(acc + bias + C) with absent parts left out. */
export function epilogueTree(epilogue: GemmEpilogue): EvtNode {
  let node: EvtNode = { kind: 'acc' };
  if (epilogue.bias) node = { kind: 'compute', fn: 'cutlass::plus', children: [node, { kind: 'bias' }] };
  if (epilogue.residual) node = { kind: 'compute', fn: 'cutlass::plus', children: [node, { kind: 'source' }] };
  if (epilogue.activation !== 'identity') node = { kind: 'compute', fn: CUTLASS_ACTIVATION[epilogue.activation], children: [node] };
  if (node.kind !== 'compute') node = { kind: 'compute', fn: 'cutlass::epilogue::thread::Identity', children: [node] };
  return node;
}

/** The C++ type of a tree (the struct around it defines ElementD/C/Bias/Compute, TileShape, kAlignment). */
export function evtType(node: EvtNode, indent: string, isRoot: boolean): string {
  switch (node.kind) {
    case 'acc':
      return `${indent}cutlass::epilogue::fusion::Sm90AccFetch`;
    case 'source':
      return `${indent}cutlass::epilogue::fusion::Sm90SrcFetch<ElementC>`;
    case 'bias':
    case 'scale':
      return `${indent}cutlass::epilogue::fusion::Sm90RowBroadcast<0, TileShape, ElementBias, ElementCompute, cute::Stride<cute::_0, cute::_1, int64_t>, kAlignment>`;
    case 'compute': {
      const output = isRoot ? 'ElementD' : 'ElementCompute';
      const compute = `cutlass::epilogue::fusion::Sm90Compute<${node.fn}, ${output}, ElementCompute, cutlass::FloatRoundStyle::round_to_nearest>`;
      const children = node.children.map((c) => evtType(c, indent + '  ', false)).join(',\n');
      return `${indent}cutlass::epilogue::fusion::Sm90EVT<${compute},\n${children}>`;
    }
  }
}

/** Argument initializer of a tree: an EVT node's arguments are its children's, then its own. */
export function evtArguments(node: EvtNode): string {
  switch (node.kind) {
    case 'acc':
    case 'source':
      return '{}';
    case 'bias':
      return '{operands.bias}';
    case 'scale':
      return '{operands.scale}';
    case 'compute':
      return `{${[...node.children.map(evtArguments), '{}'].join(', ')}}`;
  }
}

// ---- naming ----

const ALIGNMENTS = [8, 4, 2, 1];

/** Largest alignment (elements, up to 16 bytes of fp16) dividing K and N: A rows are K long, C/D rows N long. */
export function gemmAlignment(problem: GemmProblem): number {
  return ALIGNMENTS.find((a) => a <= (problem.alignment ?? 8) && problem.k % a === 0 && problem.n % a === 0) ?? 1;
}

/** CUTLASS's layout letters: t = row-major, n = column-major (A is always row-major, C/D row-major). */
const LAYOUT_B_LETTER: Record<GemmLayoutB, string> = { column: 'n', row: 't' };

export function sm90GemmName(config: Sm90GemmConfig, epilogue: GemmEpilogue, batched?: BatchedGemmLayout): string {
  const c = epilogue.residual ? 'f16' : 'void';
  const schedule = config.schedule === 'cooperative' ? '_warpspecialized_cooperative' : '_warpspecialized_pingpong';
  const layout = `t${LAYOUT_B_LETTER[batched?.layoutB ?? 'column']}t`;
  return (
    `cutlass3x_sm90_tensorop_gemm_f16_f16_f32_${c}_f16_${config.tile.join('x')}_${config.cluster.join('x')}_0_${layout}` +
    `_align${config.alignment}${schedule}_epi_tma${config.scheduler === 'streamk' ? '_stream_k' : ''}_${epilogueSuffix(epilogue)}${batched ? '_batched' : ''}`
  );
}

export function sm80GemmName(config: Sm80GemmConfig, batched?: BatchedGemmLayout): string {
  const [m, n, k] = config.tile;
  const layout = `t${LAYOUT_B_LETTER[batched?.layoutB ?? 'column']}`;
  const mma = config.alignment === 1 ? 's1688' : 's16816';
  return `cutlass_tensorop_f16_${mma}gemm_f16_${m}x${n}_${k}x${config.stages}_${layout}_align${config.alignment}`;
}

// ---- heuristic (no profiling) ----

/**
 * Picks one sm90 instance per problem, without profiling. The rules come from measuring 9 candidate instances
 * (128×256 and 256×128 cooperative, with and without stream-K; 128×128 cooperative and ping-pong; 64×256 and 64×128
 * ping-pong) on the transformer GEMMs of ViT-B/16 and ViT-L/16-384 at batch 1 to 256 on an H200
 * (scripts/gpu/gemm-tiles.ts; table in BENCHMARKS.md, "GEMM tiles"):
 *  - M ≥ 1024 rows: 128×128×64 ping-pong, cluster 1×2×1. Fastest or within 5 % of the fastest on 26 of the 28 such
 *    shapes, and 10–25 % ahead of the 128×256 cooperative tile on most (its 2-wave tail on N = 1024 costs the most);
 *  - fewer rows (batch-1 token counts, the classifier at small batches): 64×128×64 ping-pong, which keeps more SMs
 *    busy (cluster 2×1×1 when M spans two tiles);
 *  - batched GEMMs (MatMul between activations) count rows over the batch: 128×128 when M ≥ 128 and M·batch ≥ 1024.
 *  - a long K (≥ 4096) on 1 to 3 waves of 128×128 tiles whose last wave is less than half full (ViT-L/16-384's fc2
 *    at batch 8: 296 tiles on 132 SMs): 128×128×64 cooperative with the stream-K scheduler, cluster 1×2×1, which
 *    splits the K loop of the tail so that every SM gets the same work: 64.5 µs against 69.2 for ping-pong
 *    (BENCHMARKS.md, "GEMM epilogues"). It needs a reduction workspace (streamKWorkspaceBytes). Waves are counted on
 *    SM90_SMS SMs (H100 SXM and H200); on other parts the rule is only a guess until kernels are profiled.
 */
export const SM90_SMS = 132;

/**
 * An upper bound of the workspace CUTLASS's sm90 stream-K scheduler asks for on an M×N problem with `tile`: its
 * reduction workspace holds at most one fp32 tile per output tile (tile_scheduler_params.h: stream-K tiles, or all
 * tiles when it picks split-K), plus one barrier word per tile and math warp group. Independent of the SM count.
 */
export function streamKWorkspaceBytes(m: number, n: number, batch: number, tile: readonly [number, number, number]): number {
  const tiles = Math.ceil(m / tile[0]) * Math.ceil(n / tile[1]) * batch;
  return tiles * (tile[0] * tile[1] * 4 + 2 * 4) + 4096;
}
export function chooseSm90Gemm(problem: GemmProblem): { config: Sm90GemmConfig; reason: string } {
  const alignment = gemmAlignment(problem);
  const batch = problem.batch ?? 1;
  const tiles = (tm: number, tn: number) => Math.ceil(problem.m / tm) * Math.ceil(problem.n / tn) * batch;
  let tile: [number, number, number];
  let cluster: [number, number, number];
  let reason: string;
  const tiles128 = tiles(128, 128);
  if (problem.k >= 4096 && tiles128 > SM90_SMS && tiles128 < 3 * SM90_SMS && tiles128 % SM90_SMS < SM90_SMS / 2) {
    const waves = (tiles128 / SM90_SMS).toFixed(2);
    return {
      config: { arch: 'sm90', tile: [128, 128, 64], cluster: [1, 2, 1], schedule: 'cooperative', scheduler: 'streamk', alignment },
      reason: `K=${problem.k} on ${tiles128} tiles of 128x128 (${waves} waves on ${SM90_SMS} SMs): stream-K evens out the last wave`,
    };
  }
  if (problem.m >= 1024 || (problem.m >= 128 && problem.m * batch >= 1024)) {
    tile = [128, 128, 64];
    cluster = [1, 2, 1];
    reason = `M=${problem.m}${batch > 1 ? ` (batch ${batch})` : ''} ≥ 1024 rows: ${tiles(128, 128)} tiles of 128x128, ping-pong (measured best on transformer GEMMs)`;
  } else {
    tile = [64, 128, 64];
    cluster = problem.m >= 128 ? [2, 1, 1] : [1, 1, 1];
    reason = `M=${problem.m}${batch > 1 ? ` (batch ${batch})` : ''} < 1024 rows: ${tiles(64, 128)} tiles of 64x128, ping-pong keeps more SMs busy`;
  }
  if (alignment < 8) reason += `; alignment ${alignment} (K=${problem.k}, N=${problem.n})`;
  return { config: { arch: 'sm90', tile, cluster, schedule: 'pingpong', alignment }, reason };
}

/**
 * What chooseSm90Gemm and chooseSm80Gemm compare, for a problem that grows with the batch (M and the batch count
 * non-decreasing, N and K fixed): batchRanges evaluates the heuristics only where one of these can change the answer.
 * Change together with the heuristics (test/backends/cuda/batch-ranges.test.ts checks them against every batch).
 */
export function gemmDecisions(problemAt: (batch: number) => GemmProblem): BatchDecisions {
  const { n, k } = problemAt(1);
  const m = (b: number) => problemAt(b).m;
  const count = (b: number) => problemAt(b).batch ?? 1;
  const tiles128 = (b: number) => Math.ceil(m(b) / 128) * Math.ceil(n / 128) * count(b);
  return {
    thresholds: [
      { value: m, threshold: 128 },
      { value: m, threshold: 1024 },
      { value: (b) => m(b) * count(b), threshold: 1024 },
      { value: (b) => m(b) * n * count(b), threshold: 128 * 128 * 108 },
    ],
    // stream-K: 1 to 3 waves of 128x128 tiles with a less than half full last wave (every tile count matters)
    steps: k >= 4096 ? [{ value: tiles128, below: 3 * SM90_SMS }] : [],
  };
}

/**
 * sm80: 128×128×32 with 64×64 warps and 3 stages for large problems, 64×64×32 with 4 stages for small ones.
 * K or N odd (alignment 1): the multistage mainloop's cp.async copies 4, 8 or 16 bytes, i.e. at least 2 fp16, so it
 * cannot load such rows. Those take CUTLASS's sm75 tensor-op configuration instead (what its generator emits for
 * align1 f16: 2-stage pipelined mainloop with ordinary global loads, mma.sync 16×8×8, which sm80 and sm90 run too),
 * 64×64×32 tiles. Slower than the multistage kernels, but no padding kernel or padded copy of the activation.
 */
export function chooseSm80Gemm(problem: GemmProblem): { config: Sm80GemmConfig; reason: string } {
  const alignment = gemmAlignment(problem);
  if (alignment === 1)
    return {
      config: { arch: 'sm80', tile: [64, 64, 32], warps: [32, 32, 32], stages: 2, alignment },
      reason: `K=${problem.k}, N=${problem.n}: alignment 1 (cp.async needs 2 fp16), a 2-stage sm75-style tensor-op kernel`,
    };
  if (problem.m * problem.n * (problem.batch ?? 1) >= 128 * 128 * 108) {
    return {
      config: { arch: 'sm80', tile: [128, 128, 32], warps: [64, 64, 32], stages: 3, alignment },
      reason: 'large problem: 128x128 tiles fill 108 SMs',
    };
  }
  return {
    config: { arch: 'sm80', tile: [64, 64, 32], warps: [32, 32, 32], stages: 4, alignment },
    reason: 'small problem: 64x64 tiles keep more SMs busy',
  };
}

// ---- emitters ----

const OPERANDS_STRUCT = `// Operands of one fused GEMM call (device pointers; bias and residual may be null when unused).
struct AitGemmOperands {
  int m, n, k;
  const cutlass::half_t* a;         // [m, k] row-major
  const cutlass::half_t* b;         // [n, k] row-major (= [k, n] column-major)
  const cutlass::half_t* bias;      // [n]
  const cutlass::half_t* residual;  // [m, n] row-major
  cutlass::half_t* d;               // [m, n] row-major
};`;

const BATCHED_OPERANDS_STRUCT = `// Operands of one batched GEMM call: batch × (D[m, n] = epilogue(A[m, k] · B)), every operand packed batch-major.
struct AitBatchedGemmOperands {
  int batch, m, n, k;
  const cutlass::half_t* a;         // [batch, m, k] row-major
  const cutlass::half_t* b;         // [batch, n, k] (column-major B) or [batch, k, n] (row-major B) row-major
  const cutlass::half_t* bias;      // [n], the same for every batch
  const cutlass::half_t* residual;  // [batch, m, n] row-major
  cutlass::half_t* d;               // [batch, m, n] row-major
};`;

/**
 * The end of every CUTLASS instance's run() (GEMM and conv): the workspace check, then can_implement, initialize and
 * run of the device operator `object` (of type `type`), each failure returned as CUTLASS's status string.
 */
export function cutlassRunTail(object: string, type: string, instanceName: string): string {
  return `    if (${type}::get_workspace_size(arguments) > workspace_bytes) return "${instanceName}: workspace too small";
    cutlass::Status status = ${object}.can_implement(arguments);
    if (status != cutlass::Status::kSuccess) return cutlassGetStatusString(status);
    status = ${object}.initialize(arguments, workspace, stream);
    if (status != cutlass::Status::kSuccess) return cutlassGetStatusString(status);
    status = ${object}.run(stream);
    return status == cutlass::Status::kSuccess ? nullptr : cutlassGetStatusString(status);`;
}

/** The operands struct shared by all GEMM instances (emit once per source file, before the instances). */
export function gemmOperandsStruct(): string {
  return `#ifndef AIT_GEMM_OPERANDS_DEFINED\n#define AIT_GEMM_OPERANDS_DEFINED\n${OPERANDS_STRUCT}\n#endif`;
}

/** The operands struct of batched instances (emit before them). */
export function batchedGemmOperandsStruct(): string {
  return `#ifndef AIT_BATCHED_GEMM_OPERANDS_DEFINED\n#define AIT_BATCHED_GEMM_OPERANDS_DEFINED\n${BATCHED_OPERANDS_STRUCT}\n#endif`;
}

/** The operands struct an instance's `run` takes. */
export function operandsStructOf(instance: EmittedInstance): string {
  return instance.batched ? batchedGemmOperandsStruct() : gemmOperandsStruct();
}

/**
 * sm90 GEMM instance; with `batched`, a batched GEMM over the L mode with B in the given layout (the operands'
 * batch strides are the packed ones, set by make_cute_packed_stride from the batch count).
 */
export function emitSm90Gemm(config: Sm90GemmConfig, epilogue: GemmEpilogue, reason: string, batched?: BatchedGemmLayout): EmittedInstance {
  const name = sm90GemmName(config, epilogue, batched);
  const operandsType = batched ? 'AitBatchedGemmOperands' : 'AitGemmOperands';
  const layoutB = batched?.layoutB === 'row' ? 'cutlass::layout::RowMajor' : 'cutlass::layout::ColumnMajor';
  const l = batched ? 'l' : '1';
  const tree = epilogueTree(epilogue);
  const [tm, tn, tk] = config.tile;
  const [cm, cn, ck] = config.cluster;
  const mainloopSchedule =
    config.schedule === 'cooperative'
      ? 'cutlass::gemm::KernelTmaWarpSpecializedCooperative'
      : 'cutlass::gemm::KernelTmaWarpSpecializedPingpong';
  const epilogueSchedule =
    config.schedule === 'cooperative' ? 'cutlass::epilogue::TmaWarpSpecializedCooperative' : 'cutlass::epilogue::TmaWarpSpecialized';
  const streamK = config.scheduler === 'streamk';
  if (streamK && config.schedule !== 'cooperative')
    fail('cuda.cutlass-unsupported', `${name}: CUTLASS's sm90 stream-K scheduler runs only with the cooperative schedule`);
  const code = `// ${name}
// D = ${describe(epilogue)}; ${reason}
struct ${name} {
  using ElementA = cutlass::half_t;
  using ElementB = cutlass::half_t;
  using ElementC = ${epilogue.residual ? 'cutlass::half_t' : 'void'};
  using ElementD = cutlass::half_t;
  using ElementBias = cutlass::half_t;
  using ElementAccumulator = float;
  using ElementCompute = float;
  static constexpr int kAlignment = ${config.alignment};
  using TileShape = cute::Shape<cute::_${tm}, cute::_${tn}, cute::_${tk}>;
  using ClusterShape = cute::Shape<cute::_${cm}, cute::_${cn}, cute::_${ck}>;
  using Fusion =
${evtType(tree, '      ', true)};
  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, ElementAccumulator, ElementCompute,
      ElementC, cutlass::layout::RowMajor, kAlignment, ElementD, cutlass::layout::RowMajor, kAlignment,
      ${epilogueSchedule}, Fusion>::CollectiveOp;
  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementA, cutlass::layout::RowMajor, kAlignment,
      ElementB, ${layoutB}, kAlignment, ElementAccumulator, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename CollectiveEpilogue::SharedStorage))>,
      ${mainloopSchedule}>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<cute::Shape<int, int, int, int>, CollectiveMainloop, CollectiveEpilogue${streamK ? ',\n      cutlass::gemm::StreamKScheduler' : ''}>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static const char* run(const ${operandsType}& operands, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
    using StrideA = typename Kernel::StrideA;
    using StrideB = typename Kernel::StrideB;
    using StrideC = typename Kernel::StrideC;
    using StrideD = typename Kernel::StrideD;
    const int m = operands.m, n = operands.n, k = operands.k${batched ? ', l = operands.batch' : ''};
    typename Gemm::Arguments arguments{
        cutlass::gemm::GemmUniversalMode::kGemm,
        {m, n, k, ${l}},
        {operands.a, cutlass::make_cute_packed_stride(StrideA{}, {m, k, ${l}}), operands.b,
         cutlass::make_cute_packed_stride(StrideB{}, {n, k, ${l}})},
        {${evtArguments(tree)},
         ${epilogue.residual ? 'operands.residual' : 'nullptr'}, cutlass::make_cute_packed_stride(StrideC{}, {m, n, ${l}}),
         operands.d, cutlass::make_cute_packed_stride(StrideD{}, {m, n, ${l}})}};
    Gemm gemm;
${cutlassRunTail('gemm', 'Gemm', name)}
  }
};`;
  return {
    name,
    reason,
    code,
    includes: [
      'cutlass/cutlass.h',
      'cute/tensor.hpp',
      'cutlass/gemm/device/gemm_universal_adapter.h',
      'cutlass/gemm/kernel/gemm_universal.hpp',
      'cutlass/gemm/collective/collective_builder.hpp',
      'cutlass/epilogue/collective/collective_builder.hpp',
      'cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp',
      ...activationIncludes(code),
      'cutlass/util/packed_stride.hpp',
    ],
    ...(batched ? { batched: true } : {}),
  };
}

const SM80_ACTIVATION: Record<Activation, string> = {
  identity: 'cutlass::epilogue::thread::Identity',
  ...CUTLASS_ACTIVATION,
};

/**
 * sm80 GEMM: D = act(acc + bias) with the bias passed as C with a zero row stride (ldc = 0) and beta = 1.
 * Epilogues with a residual need GemmUniversalWithBroadcast + LinearCombinationResidualBlock: not emitted yet, so
 * this fails with a diagnostic rather than emitting a wrong epilogue.
 */
export function emitSm80Gemm(config: Sm80GemmConfig, epilogue: GemmEpilogue, reason: string, batched?: BatchedGemmLayout): EmittedInstance {
  if (epilogue.residual)
    fail('cuda.cutlass-unsupported', 'sm80 GEMM with a fused residual add is not implemented yet; run the add as an elementwise op');
  const name = sm80GemmName(config, batched);
  const rowB = batched?.layoutB === 'row';
  const [tm, tn, tk] = config.tile;
  const [wm, wn, wk] = config.warps;
  // alignment 1: the sm75 pipelined mainloop (chooseSm80Gemm says why); else the sm80 multistage one
  const [archTag, instruction] = config.alignment === 1 ? ['Sm75', '16, 8, 8'] : ['Sm80', '16, 8, 16'];
  const epilogueOp = `cutlass::epilogue::thread::LinearCombinationGeneric<${SM80_ACTIVATION[epilogue.activation]}, cutlass::half_t, ${config.alignment}, float, float, ${epilogue.bias ? 'cutlass::epilogue::thread::ScaleType::NoBetaScaling' : 'cutlass::epilogue::thread::ScaleType::OnlyAlphaScaling'}>`;
  const fullName = `${name}_${epilogueSuffix(epilogue)}${batched ? '_batched' : ''}`;
  const args = batched
    ? `    const int m = operands.m, n = operands.n, k = operands.k;
    typename Gemm::Arguments arguments(
        cutlass::gemm::GemmUniversalMode::kBatched, {m, n, k}, operands.batch, {1.f, 1.f},
        operands.a, operands.b, ${epilogue.bias ? 'operands.bias' : 'nullptr'}, operands.d,
        int64_t(m) * k, int64_t(n) * k, 0, int64_t(m) * n,  // batch strides of A, B, C (the bias: 0), D
        k, ${rowB ? 'n' : 'k'}, 0, n);  // lda, ldb, ldc (0: the bias row repeats), ldd`
    : `    const int m = operands.m, n = operands.n, k = operands.k;
    typename Gemm::Arguments arguments(
        cutlass::gemm::GemmUniversalMode::kGemm, {m, n, k}, 1, {1.f, 1.f},
        operands.a, operands.b, ${epilogue.bias ? 'operands.bias' : 'nullptr'}, operands.d,
        int64_t(m) * k, int64_t(n) * k, ${epilogue.bias ? 'n' : '0'}, int64_t(m) * n,
        k, k, 0, n);  // lda, ldb, ldc (0: the bias row repeats), ldd`;
  const code = `// ${fullName}
// D = ${describe(epilogue)}; ${reason}
struct ${fullName} {
  using Gemm = cutlass::gemm::device::GemmUniversal<
      cutlass::half_t, cutlass::layout::RowMajor, cutlass::half_t, cutlass::layout::${rowB ? 'RowMajor' : 'ColumnMajor'},
      cutlass::half_t, cutlass::layout::RowMajor, float, cutlass::arch::OpClassTensorOp, cutlass::arch::${archTag},
      cutlass::gemm::GemmShape<${tm}, ${tn}, ${tk}>, cutlass::gemm::GemmShape<${wm}, ${wn}, ${wk}>,
      cutlass::gemm::GemmShape<${instruction}>,
      ${epilogueOp},
      cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<8>, ${config.stages}, ${config.alignment}, ${config.alignment}>;

  static const char* run(const ${batched ? 'AitBatchedGemmOperands' : 'AitGemmOperands'}& operands, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
${args}
    Gemm gemm;
${cutlassRunTail('gemm', 'Gemm', fullName)}
  }
};`;
  return {
    name: fullName,
    reason,
    code,
    includes: [
      'cutlass/cutlass.h',
      'cutlass/gemm/device/gemm_universal.h',
      'cutlass/epilogue/thread/linear_combination_generic.h',
      ...activationIncludes(code),
    ],
    ...(batched ? { batched: true } : {}),
  };
}

/** Appended to instance names so that two instances differing only in their epilogue get different C++ names. */
function epilogueSuffix(epilogue: GemmEpilogue): string {
  return [epilogue.bias ? 'bias' : 'nobias', ...(epilogue.residual ? ['residual'] : []), epilogue.activation].join('_');
}

function describe(epilogue: GemmEpilogue): string {
  let expr = 'A·B';
  if (epilogue.bias) expr += ' + bias';
  if (epilogue.residual) expr += ' + residual';
  return epilogue.activation === 'identity' ? expr : `${epilogue.activation}(${expr})`;
}

/** One source file holding instances (the includes of all, the operands struct, then each instance). */
export function gemmSourceFile(instances: readonly EmittedInstance[]): string {
  const includes = [...new Set(instances.flatMap((i) => i.includes))];
  return [
    '// Generated by AIT: CUTLASS GEMM instances.',
    ...includes.map((i) => `#include "${i}"`),
    '',
    gemmOperandsStruct(),
    ...(instances.some((i) => i.batched) ? ['', batchedGemmOperandsStruct()] : []),
    '',
    ...instances.map((i) => i.code + '\n'),
  ].join('\n');
}
