/**
 * CUTLASS convolution instances for fused conv2d ops (compiler/ops/fused.ts): implicit-GEMM fprop on NHWC activations
 * and KRSC (= ONNX OHWI after the layout pass) filters, fp16 storage, fp32 accumulation, the epilogue steps fused.
 * As a GEMM: M = N·P·Q (output pixels), N = K (output channels), K = C·R·S.
 *
 *  - sm90 (CUTLASS 3.x): cutlass::conv::collective::CollectiveBuilder<Sm90, …, kFprop, …> with im2col TMA loads and
 *    the warp-specialized KernelImplicitTmaWarpSpecializedSm90 schedule (CUTLASS 4.7 has no persistent cooperative or
 *    ping-pong conv schedule: dispatch_policy.hpp static_asserts on them), ConvUniversal + ConvUniversalAdapter, and
 *    the fused epilogue as an epilogue visitor tree built from gemm.ts's nodes (bias and scale as row broadcasts over
 *    output channels, the residual as the C source, activations as Sm90Compute).
 *  - sm80 (CUTLASS 2.x, also runs on Hopper): DefaultConv2dFprop (optimized iterator, multistage) +
 *    ImplicitGemmConvolution with LinearCombinationGeneric<act> and the bias read as C with zero strides; with a
 *    residual, DefaultConv2dFpropWithBroadcast + LinearCombinationResidualBlock (bias as the broadcast vector).
 *
 * Channel counts: the 3.x kernel loads through TMA, which needs 16-byte rows (C and K multiples of 8). Rather than
 * making the code generator pad tensors, a problem the TMA kernel cannot take gets a 2.x instance (chooseConv says
 * why): C < 8 (the 3-channel stem, ViT's patch embedding, 4-channel inputs) uses the few-channels iterator, which
 * walks R·S·C as one GEMM-K axis with 1/2/4-element accesses (2 stages, as CUTLASS generates it), so no zero channels
 * are multiplied and nothing is padded; other non-multiples of 8 use the optimized iterator at alignment 4/2.
 *
 * Grouped convolution (1 < group < C) runs CUTLASS 2.x's group fprop on both targets (DefaultConv2dGroupFprop; the
 * sm90 conv collective of CUTLASS 4.7 has no group mode): as a GEMM per group, M = N·P·Q, N = K/group, K = C/group·R·S,
 * the weight [K, R, S, C/group]. chooseGroupConv says which CUTLASS group mode: kSingleGroup (a CTA's N tile lies in
 * one group: K/group a multiple of the tile N; optimized iterator) or kMultipleGroup (a CTA's N tile holds whole
 * groups: the tile N a multiple of K/group; analytic iterator, the only one CUTLASS has for it). The group kernel has
 * no broadcast epilogue (no LinearCombinationResidualBlock), so it fuses act(acc + bias) or act(acc + residual) with
 * the bias or the residual as the C operand; groupConvEpilogue splits off the rest for an elementwise kernel.
 * Depthwise convolution (group == C) is not a CUTLASS instance here: kernels/depthwise_conv.cuh runs it.
 *
 * Names follow CUTLASS's procedural names (python/cutlass_library/conv2d_operation.py for 2.x; 3.x as the GEMM names
 * with `fprop` for the GEMM kind), with the epilogue appended so that two instances differing only in their epilogue
 * get different C++ names.
 */
import { fail } from '../../../diagnostics';
import type { BatchDecisions } from '../codegen/batch-ranges';
import {
  Activation,
  CUTLASS_ACTIVATION,
  EmittedInstance,
  EvtNode,
  activationIncludes,
  cutlassRunTail,
  evtArguments,
  evtType,
} from './gemm';

/** A fused conv2d's sizes: input [n,h,w,c] NHWC, filter [k,r,s,c] KRSC, output [n,p,q,k] NHWC. */
export interface ConvProblem {
  n: number;
  h: number;
  w: number;
  c: number;
  k: number;
  r: number;
  s: number;
  p: number;
  q: number;
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  /** [height, width] */
  strides: [number, number];
  /** [height, width] */
  dilations: [number, number];
  group: number;
}

/** Activations that have a CUTLASS functor without parameters. */
export type ConvActivation = Exclude<Activation, 'identity'>;

/** One epilogue step, as in fused.ts's `epilogue` attribute (parameterised activations are not supported). */
export type ConvEpilogueStep = 'bias' | 'scale' | 'residual_add' | ConvActivation;

export type ConvTarget = 'sm90' | 'sm80';

export interface Sm90ConvConfig {
  arch: 'sm90';
  tile: [number, number, number];
  cluster: [number, number, number];
  /** Elements per access of x, w, residual, y: always 8 (16 bytes, TMA). */
  alignment: 8;
}

export type Sm80ConvIterator = 'optimized' | 'few_channels' | 'analytic';

/** CUTLASS's GroupMode for grouped convolution (names as in cutlass_library's GroupModeNames). */
export type Sm80GroupMode = 'single_group' | 'multiple_group';

export interface Sm80ConvConfig {
  arch: 'sm80';
  tile: [number, number, number];
  warps: [number, number, number];
  stages: number;
  iterator: Sm80ConvIterator;
  /** Elements per access of x and w (divides C). */
  inputAlignment: number;
  /** Elements per access of the epilogue: residual, y (divides K). */
  outputAlignment: number;
  /** Grouped convolution (DefaultConv2dGroupFprop); absent for group = 1. */
  groupMode?: Sm80GroupMode;
}

export type ConvConfig = Sm90ConvConfig | Sm80ConvConfig;

export interface ConvChoice {
  config: ConvConfig;
  reason: string;
}

const ACTIVATIONS = new Set<string>(Object.keys(CUTLASS_ACTIVATION));

/**
 * Checks fused.ts epilogue steps (e.g. ['bias', 'residual_add', 'relu']) against what the emitters support.
 * Parameterised steps (leaky_relu:A, clip:MIN:MAX, hardsigmoid) have no CUTLASS functor here yet.
 */
export function convEpilogueSteps(steps: readonly string[]): ConvEpilogueStep[] {
  return steps.map((step) => {
    if (step === 'bias' || step === 'scale' || step === 'residual_add' || ACTIVATIONS.has(step)) return step as ConvEpilogueStep;
    return fail('cuda.cutlass-unsupported', `conv epilogue step '${step}' has no CUTLASS epilogue yet; run it as an elementwise op`);
  });
}

// ---- naming ----

function epilogueSuffix(steps: readonly ConvEpilogueStep[]): string {
  return steps.length === 0 ? 'identity' : steps.map((s) => (s === 'residual_add' ? 'residual' : s)).join('_');
}

export function sm90ConvName(config: Sm90ConvConfig, steps: readonly ConvEpilogueStep[]): string {
  const c = steps.includes('residual_add') ? 'f16' : 'void';
  return (
    `cutlass3x_sm90_tensorop_fprop_f16_f16_f32_${c}_f16_${config.tile.join('x')}_${config.cluster.join('x')}_0_nhwc` +
    `_align${config.alignment}_warpspecialized_epi_tma_${epilogueSuffix(steps)}`
  );
}

export function sm80ConvName(config: Sm80ConvConfig, steps: readonly ConvEpilogueStep[]): string {
  const [m, n, k] = config.tile;
  const group = config.groupMode ? `${config.groupMode}_` : '';
  return (
    `cutlass_tensorop_f16_s16816fprop_${config.iterator}_f16_${m}x${n}_${k}x${config.stages}_nhwc` +
    `_${group}align${config.inputAlignment}_${epilogueSuffix(steps)}`
  );
}

// ---- heuristic (no profiling) ----

const H100_SMS = 132;
const A100_SMS = 108;

function largestAlignment(extent: number, candidates: readonly number[]): number {
  return candidates.find((a) => extent % a === 0) ?? 1;
}

/** GEMM view of a convolution: M = N·P·Q, N = K, K = C·R·S. */
export function convGemmShape(problem: ConvProblem): { m: number; n: number; k: number } {
  return { m: problem.n * problem.p * problem.q, n: problem.k, k: problem.c * problem.r * problem.s };
}

/** Depthwise: one input channel per group (ONNX group == C), any channel multiplier K / C. */
export function isDepthwise(problem: Pick<ConvProblem, 'c' | 'k' | 'group'>): boolean {
  return problem.group > 1 && problem.group === problem.c && problem.k % problem.c === 0;
}

function checkSupported(problem: ConvProblem): void {
  if (problem.c % problem.group !== 0 || problem.k % problem.group !== 0)
    fail('cuda.cutlass-unsupported', `group=${problem.group} divides neither C=${problem.c} nor K=${problem.k}`);
  if (isDepthwise(problem))
    fail(
      'cuda.cutlass-unsupported',
      `depthwise convolution (group=C=${problem.c}) has no CUTLASS instance here: it runs AIT's depthwise kernel`,
    );
}

/**
 * Picks one instance per problem without profiling, for the batch size the caller gives in `problem.n`.
 *
 * sm90 (tile M×N×K; measurements in /work/shared/gpu-host/README.md, H200, fp16 NHWC):
 *  - 128×256 is never chosen: it was the worst tile on every ResNet-50 layer measured (10–50× slower);
 *  - when 128×128 tiles give at least one wave on 132 SMs (N·P·Q and K large: batch ≥ 8 on most layers), 128×128×64,
 *    or 128×64×64 when K ≤ 64 (the best tile for 64→64 3×3 at batch 256: a 128-wide N tile would be half empty);
 *  - otherwise 64×128×64 (the best tile at batch 1 on both layers measured): more, smaller CTAs;
 *  - cluster 1×1×1: the measurements above used no multicast; the profiler can try 2×1×1 later.
 * If C or K is not a multiple of 8 the TMA kernel cannot run; the sm80 choice below is used instead (2.x kernels run
 * on Hopper), with the reason saying so.
 *
 * sm80: C < 8 → few-channels iterator, 128×64×32 tile (64×32 warps), 2 stages, alignment 4/2/1 by C. Otherwise the
 * optimized iterator with 128×128×32 (64×64 warps, 3 stages) when those tiles fill 108 SMs (128×64 when K ≤ 64),
 * else 64×64×32 (32×32 warps, 4 stages).
 */
export function chooseConv(problem: ConvProblem, target: ConvTarget): ConvChoice {
  checkSupported(problem);
  if (problem.group > 1) {
    const grouped = chooseGroupConv(problem);
    if (target === 'sm80') return grouped;
    return {
      config: grouped.config,
      reason: `grouped: the sm90 conv collective has no group mode, so a CUTLASS 2.x kernel; ${grouped.reason}`,
    };
  }
  if (target === 'sm90') {
    const why = sm90Refusal(problem);
    if (!why) return chooseSm90Conv(problem);
    const fallback = chooseSm80Conv(problem);
    return { config: fallback.config, reason: `${why}, so a CUTLASS 2.x kernel; ${fallback.reason}` };
  }
  return chooseSm80Conv(problem);
}

/**
 * What chooseConv compares (sm90, sm80 and grouped), for a problem whose batch N grows with the build's batch (the
 * rest fixed): batchRanges evaluates chooseConv only where one of these can change the answer. Change together with
 * the heuristics (test/backends/cuda/batch-ranges.test.ts checks them against every batch).
 */
export function convDecisions(problemAt: (batch: number) => ConvProblem): BatchDecisions {
  const k = problemAt(1).k;
  const m = (b: number) => convGemmShape(problemAt(b)).m;
  const tiles = (tm: number, tn: number) => (b: number) => Math.ceil(m(b) / tm) * Math.ceil(k / tn);
  return {
    thresholds: [
      { value: m, threshold: 65536 },
      { value: tiles(128, 128), threshold: H100_SMS },
      { value: tiles(128, 128), threshold: A100_SMS },
      { value: tiles(128, 64), threshold: A100_SMS },
    ],
  };
}

/**
 * Problems the sm90 (TMA, warp-specialized) conv kernel does not take, with the reason:
 * - channels not multiples of 8 (TMA's 16-byte alignment);
 * - strides above 8: TMA's im2col mode traverses with element strides of at most 8 (ViT's 16×16/16 patch embedding
 *   faulted on an H200 with an illegal instruction);
 * - large problems (N·P·Q ≥ 65,536): measured on an H200 (2026-11-21, BENCHMARKS.md), ResNet-50 ran 11.2 ms at
 *   batch 256 with CUTLASS 2.x multistage instances against 17.6 ms with the sm90 instances (CUTLASS 4.7 has only
 *   the non-persistent sm90 conv schedule), while at batch 1–8 the sm90 instances were faster. Profiling per problem
 *   will replace this rule.
 */
function sm90Refusal(problem: ConvProblem): string | undefined {
  if (problem.c % 8 !== 0 || problem.k % 8 !== 0) return `C=${problem.c}, K=${problem.k}: TMA needs multiples of 8 channels`;
  if (Math.max(...problem.strides) > 8) return `stride ${problem.strides.join('x')}: TMA im2col supports strides up to 8`;
  const m = convGemmShape(problem).m;
  if (m >= 65536) return `large problem (N·P·Q=${m}): CUTLASS 2.x multistage measured faster than the sm90 conv schedule`;
  return undefined;
}

function chooseSm90Conv(problem: ConvProblem): ConvChoice {
  const gemm = convGemmShape(problem);
  const tiles = (tm: number, tn: number) => Math.ceil(gemm.m / tm) * Math.ceil(gemm.n / tn);
  const cluster: [number, number, number] = [1, 1, 1];
  if (tiles(128, 128) >= H100_SMS) {
    if (gemm.n <= 64)
      return {
        config: { arch: 'sm90', tile: [128, 64, 64], cluster, alignment: 8 },
        reason: `large problem, K=${gemm.n} ≤ 64: ${tiles(128, 64)} tiles of 128x64`,
      };
    return {
      config: { arch: 'sm90', tile: [128, 128, 64], cluster, alignment: 8 },
      reason: `large problem: ${tiles(128, 128)} tiles of 128x128 fill ${H100_SMS} SMs`,
    };
  }
  return {
    config: { arch: 'sm90', tile: [64, 128, 64], cluster, alignment: 8 },
    reason: `small problem (N·P·Q=${gemm.m}, K=${gemm.n}): 64x128 tiles keep more SMs busy`,
  };
}

function chooseSm80Conv(problem: ConvProblem): ConvChoice {
  const gemm = convGemmShape(problem);
  const outputAlignment = largestAlignment(problem.k, [8, 4, 2, 1]);
  if (problem.c < 8) {
    const inputAlignment = largestAlignment(problem.c, [4, 2, 1]);
    return {
      config: {
        arch: 'sm80',
        tile: [128, 64, 32],
        warps: [64, 32, 32],
        stages: 2,
        iterator: 'few_channels',
        inputAlignment,
        outputAlignment,
      },
      reason: `C=${problem.c} < 8: few-channels iterator (GEMM-K = R·S·C = ${gemm.k}, no zero padding), alignment ${inputAlignment}`,
    };
  }
  // cp.async moves 4, 8 or 16 bytes: 2, 4 or 8 halves.
  const inputAlignment = largestAlignment(problem.c, [8, 4, 2]);
  if (problem.c % 2 !== 0)
    fail(
      'cuda.cutlass-unsupported',
      `conv with an odd channel count C=${problem.c} ≥ 8 has no CUTLASS 2.x instance (cp.async needs ≥ 4 bytes)`,
    );
  const tiles = (tm: number, tn: number) => Math.ceil(gemm.m / tm) * Math.ceil(gemm.n / tn);
  const alignmentNote =
    inputAlignment < 8 || outputAlignment < 8 ? `; alignment ${inputAlignment}/${outputAlignment} (C=${problem.c}, K=${problem.k})` : '';
  if (tiles(128, 128) >= A100_SMS) {
    if (gemm.n <= 64)
      return {
        config: {
          arch: 'sm80',
          tile: [128, 64, 32],
          warps: [64, 32, 32],
          stages: 3,
          iterator: 'optimized',
          inputAlignment,
          outputAlignment,
        },
        reason: `large problem, K=${gemm.n} ≤ 64: 128x64 tiles${alignmentNote}`,
      };
    return {
      config: {
        arch: 'sm80',
        tile: [128, 128, 32],
        warps: [64, 64, 32],
        stages: 3,
        iterator: 'optimized',
        inputAlignment,
        outputAlignment,
      },
      reason: `large problem: ${tiles(128, 128)} tiles of 128x128 fill ${A100_SMS} SMs${alignmentNote}`,
    };
  }
  return {
    config: { arch: 'sm80', tile: [64, 64, 32], warps: [32, 32, 32], stages: 4, iterator: 'optimized', inputAlignment, outputAlignment },
    reason: `small problem (N·P·Q=${gemm.m}, K=${gemm.n}): 64x64 tiles keep more SMs busy${alignmentNote}`,
  };
}

/** Tile shapes of the group kernels: [tile M, N, K], [warp M, N, K], stages. */
const GROUP_TILES: Record<string, { tile: [number, number, number]; warps: [number, number, number]; stages: number }> = {
  '128x128': { tile: [128, 128, 32], warps: [64, 64, 32], stages: 3 },
  '128x64': { tile: [128, 64, 32], warps: [64, 32, 32], stages: 3 },
  '128x32': { tile: [128, 32, 32], warps: [64, 32, 32], stages: 3 },
  '64x64': { tile: [64, 64, 32], warps: [32, 32, 32], stages: 4 },
  '64x32': { tile: [64, 32, 32], warps: [32, 32, 32], stages: 4 },
};

/**
 * Grouped convolution (1 < group < C) as a CUTLASS 2.x group fprop, without profiling.
 *
 * Per group the GEMM is M = N·P·Q, N = K/group, K = C/group·R·S. CUTLASS's device-level can_implement
 * (conv/device/implicit_gemm_convolution.h) allows:
 *  - kSingleGroup when K/group is a multiple of the tile N (each CTA inside one group), with the optimized iterator;
 *  - kMultipleGroup when the tile N is a multiple of K/group (each CTA covers tile N / (K/group) whole groups, one
 *    after the other along GEMM-K), with the analytic iterator only.
 * Tile N: single group takes the largest of 128/64/32 dividing K/group (128 only when 128-wide tiles fill the SMs);
 * multiple group takes the smallest of 32/64/128 that K/group divides, because the tensor-core work of a CTA grows
 * with its groups (each group's C/group channels pad GEMM-K to the tile K of 32). Tile M: 128 when 128-row tiles give
 * at least one wave on 108 SMs, else 64 (as chooseSm80Conv). Alignment: the largest of 8/4/2 elements dividing C/group
 * (cp.async moves 4, 8 or 16 bytes; CUTLASS's iterators check (C/group) % alignment); odd C/group is refused, and so
 * is a K/group that is neither a multiple nor a divisor of a tile N (e.g. 48), naming both rules.
 */
export function chooseGroupConv(problem: ConvProblem): ConvChoice {
  checkSupported(problem);
  const channelsPerGroup = problem.c / problem.group;
  const outputsPerGroup = problem.k / problem.group;
  const inputAlignment = largestAlignment(channelsPerGroup, [8, 4, 2]);
  if (channelsPerGroup % 2 !== 0)
    fail(
      'cuda.cutlass-unsupported',
      `grouped conv with ${channelsPerGroup} input channels per group (C=${problem.c}, group=${problem.group}): ` +
        'CUTLASS reads C/group with cp.async accesses of at least 2 halves, so an odd C/group has no instance',
    );
  const outputAlignment = largestAlignment(problem.k, [8, 4, 2, 1]);
  const m = convGemmShape(problem).m;
  const tileM = Math.ceil(m / 128) * Math.ceil(problem.k / 64) >= A100_SMS ? 128 : 64;
  const pick = (tileN: number, groupMode: Sm80GroupMode): Sm80ConvConfig => {
    const shape = GROUP_TILES[`${tileM}x${tileN}`] ?? GROUP_TILES[`128x${tileN}`];
    return {
      arch: 'sm80',
      tile: shape.tile,
      warps: shape.warps,
      stages: shape.stages,
      iterator: groupMode === 'single_group' ? 'optimized' : 'analytic',
      inputAlignment,
      outputAlignment,
      groupMode,
    };
  };
  const sizes = `C/group=${channelsPerGroup}, K/group=${outputsPerGroup}, N·P·Q=${m}`;
  const alignment = inputAlignment < 8 || outputAlignment < 8 ? `, alignment ${inputAlignment}/${outputAlignment}` : '';
  const singleN = [64, 32].find((n) => outputsPerGroup % n === 0);
  if (singleN !== undefined) {
    const wide = outputsPerGroup % 128 === 0 && tileM === 128 && Math.ceil(m / 128) * Math.ceil(problem.k / 128) >= A100_SMS;
    const tileN = wide ? 128 : singleN;
    const config = pick(tileN, 'single_group');
    return {
      config,
      reason: `${sizes}: kSingleGroup (K/group a multiple of the ${tileN}-wide N tile), ${config.tile[0]}x${tileN} tiles, optimized iterator${alignment}`,
    };
  }
  const multipleN = [32, 64, 128].find((n) => n % outputsPerGroup === 0);
  if (multipleN !== undefined) {
    const config = pick(multipleN, 'multiple_group');
    return {
      config,
      reason:
        `${sizes}: kMultipleGroup (${multipleN / outputsPerGroup} groups per ${multipleN}-wide N tile), ` +
        `${config.tile[0]}x${multipleN} tiles, analytic iterator${alignment}`,
    };
  }
  return fail(
    'cuda.cutlass-unsupported',
    `grouped conv with K/group=${outputsPerGroup}: CUTLASS's group kernels need K/group to be a multiple of the N tile ` +
      '(32 or 64: kSingleGroup) or to divide it (32, 64 or 128: kMultipleGroup)',
  );
}

/**
 * The longest prefix of a grouped conv's epilogue steps the group kernel runs (act(acc + bias) or act(acc + residual),
 * one CUTLASS activation), and the rest, which the caller runs as an elementwise kernel.
 */
export function groupConvEpilogue(steps: readonly string[]): { fused: ConvEpilogueStep[]; rest: string[] } {
  const fused: ConvEpilogueStep[] = [];
  let i = 0;
  if (steps[0] === 'bias' || steps[0] === 'residual_add') fused.push(steps[i++] as ConvEpilogueStep);
  if (i < steps.length && ACTIVATIONS.has(steps[i])) fused.push(steps[i++] as ConvEpilogueStep);
  return { fused, rest: steps.slice(i) };
}

// ---- operands ----

const OPERANDS_STRUCT = `// Operands of one fused conv2d call (device pointers; bias, scale and residual may be null when unused).
struct AitConvOperands {
  int n, h, w, c;        // input x [n, h, w, c] (NHWC)
  int k, r, s;           // filter weight [k, r, s, c] (KRSC)
  int p, q;              // output y [n, p, q, k] (NHWC)
  int pads[4];           // top, left, bottom, right
  int strides[2];        // height, width
  int dilations[2];      // height, width
  int groups;            // 1, or the ONNX group count (grouped convolution: weight [k, r, s, c / groups])
  const cutlass::half_t* x;         // [n, h, w, c]
  const cutlass::half_t* weight;    // [k, r, s, c / groups]
  const cutlass::half_t* bias;      // [k]
  const cutlass::half_t* scale;     // [k]
  const cutlass::half_t* residual;  // [n, p, q, k]
  cutlass::half_t* y;
};`;

/** The operands struct shared by all conv instances (emit once per source file, before the instances). */
export function convOperandsStruct(): string {
  return `#ifndef AIT_CONV_OPERANDS_DEFINED\n#define AIT_CONV_OPERANDS_DEFINED\n${OPERANDS_STRUCT}\n#endif`;
}

// ---- emitters ----

/** The tree of the steps applied in order to the accumulator (act(...((acc + bias) * scale + C)...)). */
export function convEpilogueTree(steps: readonly ConvEpilogueStep[]): EvtNode {
  let node: EvtNode = { kind: 'acc' };
  for (const step of steps) {
    if (step === 'bias') node = { kind: 'compute', fn: 'cutlass::plus', children: [node, { kind: 'bias' }] };
    else if (step === 'scale') node = { kind: 'compute', fn: 'cutlass::multiplies', children: [node, { kind: 'scale' }] };
    else if (step === 'residual_add') node = { kind: 'compute', fn: 'cutlass::plus', children: [node, { kind: 'source' }] };
    else node = { kind: 'compute', fn: CUTLASS_ACTIVATION[step], children: [node] };
  }
  // The root converts to ElementD, so it must be a compute node.
  if (node.kind !== 'compute') node = { kind: 'compute', fn: 'cutlass::epilogue::thread::Identity', children: [node] };
  return node;
}

function describe(steps: readonly ConvEpilogueStep[]): string {
  let expr = 'conv(x, w)';
  for (const step of steps) {
    if (step === 'bias') expr = `${expr} + bias`;
    else if (step === 'scale') expr = `(${expr}) * scale`;
    else if (step === 'residual_add') expr = `${expr} + residual`;
    else expr = `${step}(${expr})`;
  }
  return expr;
}

function checkResidualOnce(steps: readonly ConvEpilogueStep[]): void {
  if (steps.filter((s) => s === 'residual_add').length > 1)
    fail('cuda.cutlass-unsupported', 'conv epilogue with more than one residual_add: CUTLASS reads one source tensor');
}

export function emitSm90Conv(config: Sm90ConvConfig, steps: readonly ConvEpilogueStep[], reason: string): EmittedInstance {
  checkResidualOnce(steps);
  const name = sm90ConvName(config, steps);
  const tree = convEpilogueTree(steps);
  const residual = steps.includes('residual_add');
  const [tm, tn, tk] = config.tile;
  const [cm, cn, ck] = config.cluster;
  const code = `// ${name}
// y = ${describe(steps)}; ${reason}
struct ${name} {
  using ElementA = cutlass::half_t;  // x, NHWC
  using ElementB = cutlass::half_t;  // weight, KRSC
  using ElementC = ${residual ? 'cutlass::half_t' : 'void'};  // residual, NHWC
  using ElementD = cutlass::half_t;  // y, NHWC
  using ElementBias = cutlass::half_t;  // bias and scale vectors [k]
  using ElementAccumulator = float;
  using ElementCompute = float;
  static constexpr int kAlignment = ${config.alignment};
  using TileShape = cute::Shape<cute::_${tm}, cute::_${tn}, cute::Shape<cute::_${tk}>>;
  using ClusterShape = cute::Shape<cute::_${cm}, cute::_${cn}, cute::_${ck}>;
  using Fusion =
${evtType(tree, '      ', true)};
  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, ElementAccumulator, ElementCompute,
      ElementC, cutlass::layout::TensorNHWC, kAlignment, ElementD, cutlass::layout::TensorNHWC, kAlignment,
      cutlass::epilogue::TmaWarpSpecialized, Fusion>::CollectiveOp;
  using CollectiveMainloop = typename cutlass::conv::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, cutlass::conv::Operator::kFprop,
      ElementA, cutlass::layout::TensorNHWC, kAlignment, ElementB, cutlass::layout::TensorNHWC, kAlignment,
      ElementAccumulator, TileShape, ClusterShape,
      cutlass::conv::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename CollectiveEpilogue::SharedStorage))>,
      cutlass::conv::KernelImplicitTmaWarpSpecializedSm90>::CollectiveOp;
  using ProblemShape = cutlass::conv::ConvProblemShape<cutlass::conv::Operator::kFprop, 2>;
  using Kernel = cutlass::conv::kernel::ConvUniversal<ProblemShape, CollectiveMainloop, CollectiveEpilogue>;
  using Conv = cutlass::conv::device::ConvUniversalAdapter<Kernel>;

  static const char* run(const AitConvOperands& operands, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
    const AitConvOperands& o = operands;
    using Extent = typename ProblemShape::TensorExtent;
    using Spatial = typename ProblemShape::SpatialExtent;
    ProblemShape problem(cutlass::conv::Mode::kCrossCorrelation, Extent{o.n, o.h, o.w, o.c}, Extent{o.k, o.r, o.s, o.c},
                         Spatial{o.pads[0], o.pads[1]}, Spatial{o.pads[2], o.pads[3]}, Spatial{o.strides[0], o.strides[1]},
                         Spatial{o.dilations[0], o.dilations[1]}, 1);
    if (problem.shape_C[1] != o.p || problem.shape_C[2] != o.q) return "${name}: output size differs from p, q";
    // Epilogue strides of the ((q, p, n), k) output modes, from the packed NHWC strides CUTLASS computed.
    typename Kernel::StrideC stride_c{};
    typename Kernel::StrideD stride_d{};
    cute::for_each(cute::make_seq<cute::rank<0>(typename Kernel::StrideC{})>{}, [&](auto i) {
      cute::get<0, i>(stride_c) = problem.stride_C[ProblemShape::RankT - 2 - i];
      cute::get<0, i>(stride_d) = problem.stride_C[ProblemShape::RankT - 2 - i];
    });
    typename Conv::Arguments arguments{
        problem,
        {o.x, o.weight},
        {${evtArguments(tree)},
         ${residual ? 'o.residual' : 'nullptr'}, stride_c, o.y, stride_d}};
    Conv conv;
${cutlassRunTail('conv', 'Conv', name)}
  }
};`;
  return {
    name,
    reason,
    code,
    includes: [
      'cutlass/cutlass.h',
      'cute/tensor.hpp',
      'cutlass/conv/convnd_problem_shape.hpp',
      'cutlass/conv/device/conv_universal_adapter.hpp',
      'cutlass/conv/kernel/conv_universal.hpp',
      'cutlass/conv/collective/collective_builder.hpp',
      'cutlass/epilogue/collective/collective_builder.hpp',
      'cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp',
      ...activationIncludes(code),
    ],
  };
}

/** The sm80 epilogue shapes: act(acc + bias) or after(plus(before(acc + bias), residual)). */
type Sm80Epilogue =
  | { kind: 'generic'; bias: boolean; activation: ConvActivation | 'identity' }
  | { kind: 'residual'; bias: boolean; before: ConvActivation | 'identity'; after: ConvActivation | 'identity' };

/** Matches the steps against [bias?] [act?] and [bias?] [act?] residual_add [act?]; anything else is refused. */
function sm80Epilogue(steps: readonly ConvEpilogueStep[]): Sm80Epilogue {
  const refuse = (): never =>
    fail(
      'cuda.cutlass-unsupported',
      `sm80 conv epilogue [${steps.join(', ')}] is not one of act(acc + bias) or act2(act1(acc + bias) + residual); ` +
        'per-channel scale and other orders need the sm90 target or a separate elementwise op',
    );
  let i = 0;
  const bias = steps[0] === 'bias';
  if (bias) i++;
  const activationAt = (j: number): ConvActivation | undefined => {
    const s = steps[j];
    return s !== undefined && s !== 'bias' && s !== 'scale' && s !== 'residual_add' ? s : undefined;
  };
  const before = activationAt(i);
  if (before) i++;
  if (steps[i] !== 'residual_add') {
    if (i !== steps.length) refuse();
    return { kind: 'generic', bias, activation: before ?? 'identity' };
  }
  i++;
  const after = activationAt(i);
  if (after) i++;
  if (i !== steps.length) refuse();
  return { kind: 'residual', bias, before: before ?? 'identity', after: after ?? 'identity' };
}

const SM80_ACTIVATION: Record<ConvActivation | 'identity', string> = {
  identity: 'cutlass::epilogue::thread::Identity',
  ...CUTLASS_ACTIVATION,
};

/** The group kernel's epilogue: act(acc + C) with C the bias (zero strides) or the residual, or act(acc). */
function sm80GroupEpilogue(steps: readonly ConvEpilogueStep[]): {
  source: 'bias' | 'residual' | 'none';
  activation: ConvActivation | 'identity';
} {
  const { fused, rest } = groupConvEpilogue(steps);
  if (rest.length > 0)
    fail(
      'cuda.cutlass-unsupported',
      `grouped conv epilogue [${steps.join(', ')}]: the CUTLASS group kernel fuses act(acc + bias) or act(acc + residual); ` +
        `[${rest.join(', ')}] must run as an elementwise op`,
    );
  const source = fused[0] === 'bias' ? 'bias' : fused[0] === 'residual_add' ? 'residual' : 'none';
  const last = fused[fused.length - 1];
  const activation = last !== undefined && last !== 'bias' && last !== 'scale' && last !== 'residual_add' ? last : 'identity';
  return { source, activation };
}

function emitSm80GroupConv(config: Sm80ConvConfig, steps: readonly ConvEpilogueStep[], reason: string): EmittedInstance {
  const epilogue = sm80GroupEpilogue(steps);
  const name = sm80ConvName(config, steps);
  const [tm, tn, tk] = config.tile;
  const [wm, wn, wk] = config.warps;
  const scaleType = epilogue.source === 'none' ? 'OnlyAlphaScaling' : 'NoBetaScaling';
  const source =
    epilogue.source === 'bias'
      ? '{const_cast<cutlass::half_t*>(o.bias), Layout(Layout::Stride(0))}'
      : epilogue.source === 'residual'
        ? '{const_cast<cutlass::half_t*>(o.residual), Layout::packed({o.n, o.p, o.q, o.k})}'
        : '{nullptr, Layout(Layout::Stride(0))}';
  const sourceNote =
    epilogue.source === 'bias'
      ? 'the bias is read as C with all strides 0: every output pixel sees the same [k] vector'
      : epilogue.source === 'residual'
        ? 'C is the residual [n, p, q, k]'
        : 'no C operand';
  const groupMode = config.groupMode === 'single_group' ? 'kSingleGroup' : 'kMultipleGroup';
  const iterator = config.iterator === 'optimized' ? 'kOptimized' : 'kAnalytic';
  const code = `// ${name}
// y = ${describe(steps)}; ${reason}
struct ${name} {
  static constexpr int kInputAlignment = ${config.inputAlignment};
  static constexpr int kOutputAlignment = ${config.outputAlignment};
  using Layout = cutlass::layout::TensorNHWC;
  using EpilogueOp = cutlass::epilogue::thread::LinearCombinationGeneric<${SM80_ACTIVATION[epilogue.activation]}, cutlass::half_t, kOutputAlignment, float, float, cutlass::epilogue::thread::ScaleType::${scaleType}>;
  using Kernel = typename cutlass::conv::kernel::DefaultConv2dGroupFprop<
      cutlass::half_t, Layout, cutlass::half_t, Layout, cutlass::half_t, Layout, float,
      cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80,
      cutlass::gemm::GemmShape<${tm}, ${tn}, ${tk}>, cutlass::gemm::GemmShape<${wm}, ${wn}, ${wk}>,
      cutlass::gemm::GemmShape<16, 8, 16>, EpilogueOp,
      cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<4>, ${config.stages}, cutlass::arch::OpMultiplyAdd,
      cutlass::conv::GroupMode::${groupMode}, cutlass::conv::IteratorAlgorithm::${iterator},
      cutlass::conv::StrideSupport::kStrided, kInputAlignment, kInputAlignment>::Kernel;
  using Conv = cutlass::conv::device::ImplicitGemmConvolution<Kernel>;

  static const char* run(const AitConvOperands& operands, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
    const AitConvOperands& o = operands;
    cutlass::conv::Conv2dProblemSize problem(o.n, o.h, o.w, o.c, o.k, o.r, o.s, o.p, o.q, o.pads[0], o.pads[1],
                                             o.strides[0], o.strides[1], o.dilations[0], o.dilations[1],
                                             cutlass::conv::Mode::kCrossCorrelation, 1, o.groups);
    // ${sourceNote}.
    typename Conv::Arguments arguments(
        problem, {const_cast<cutlass::half_t*>(o.x), Layout::packed({o.n, o.h, o.w, o.c})},
        {const_cast<cutlass::half_t*>(o.weight), Layout::packed({o.k, o.r, o.s, o.c / o.groups})},
        ${source}, {o.y, Layout::packed({o.n, o.p, o.q, o.k})},
        {1.f, ${epilogue.source === 'none' ? '0.f' : '1.f'}});
    Conv conv;
${cutlassRunTail('conv', 'Conv', name)}
  }
};`;
  return {
    name,
    reason,
    code,
    includes: [
      'cutlass/cutlass.h',
      'cutlass/conv/conv2d_problem_size.h',
      'cutlass/conv/device/implicit_gemm_convolution.h',
      'cutlass/conv/kernel/default_conv2d_group_fprop.h',
      'cutlass/epilogue/thread/linear_combination_generic.h',
      ...activationIncludes(code),
      'cutlass/functional.h',
    ],
  };
}

export function emitSm80Conv(config: Sm80ConvConfig, steps: readonly ConvEpilogueStep[], reason: string): EmittedInstance {
  if (config.groupMode) return emitSm80GroupConv(config, steps, reason);
  const epilogue = sm80Epilogue(steps);
  const name = sm80ConvName(config, steps);
  const [tm, tn, tk] = config.tile;
  const [wm, wn, wk] = config.warps;
  const iterator = config.iterator === 'few_channels' ? 'kFewChannels' : 'kOptimized';
  let epilogueOp: string;
  let kernel: string;
  if (epilogue.kind === 'generic') {
    const scaleType = epilogue.bias ? 'NoBetaScaling' : 'OnlyAlphaScaling';
    epilogueOp = `cutlass::epilogue::thread::LinearCombinationGeneric<${SM80_ACTIVATION[epilogue.activation]}, cutlass::half_t, kOutputAlignment, float, float, cutlass::epilogue::thread::ScaleType::${scaleType}>`;
    kernel = 'DefaultConv2dFprop';
  } else {
    epilogueOp = `cutlass::epilogue::thread::LinearCombinationResidualBlock<cutlass::half_t, float, float, cutlass::half_t, kOutputAlignment, ${SM80_ACTIVATION[epilogue.before]}, cutlass::plus, ${SM80_ACTIVATION[epilogue.after]}>`;
    kernel = 'DefaultConv2dFpropWithBroadcast';
  }
  // 2.x takes the top/left pads; the bottom/right ones are implied by p and q (out-of-range rows read as zeros).
  const argumentsText =
    epilogue.kind === 'generic'
      ? `    // The bias is read as C with all strides 0: every output pixel sees the same [k] vector.
    typename Conv::Arguments arguments(
        problem, {const_cast<cutlass::half_t*>(o.x), Layout::packed({o.n, o.h, o.w, o.c})},
        {const_cast<cutlass::half_t*>(o.weight), Layout::packed({o.k, o.r, o.s, o.c})},
        {const_cast<cutlass::half_t*>(o.bias), Layout(Layout::Stride(0))}, {o.y, Layout::packed({o.n, o.p, o.q, o.k})},
        {1.f, ${epilogue.bias ? '1.f' : '0.f'}});`
      : `    // C is the residual; the bias is the broadcast vector (null reads as zeros); ldr must be 0, ldt is k.
    typename Conv::Arguments arguments(
        problem, {const_cast<cutlass::half_t*>(o.x), Layout::packed({o.n, o.h, o.w, o.c})},
        {const_cast<cutlass::half_t*>(o.weight), Layout::packed({o.k, o.r, o.s, o.c})},
        {const_cast<cutlass::half_t*>(o.residual), Layout::packed({o.n, o.p, o.q, o.k})},
        {o.y, Layout::packed({o.n, o.p, o.q, o.k})}, {1.f, 1.f}, cutlass::conv::SplitKMode::kSerial,
        ${epilogue.bias ? 'const_cast<cutlass::half_t*>(o.bias)' : 'nullptr'}, nullptr, 0, o.k);`;
  const code = `// ${name}
// y = ${describe(steps)}; ${reason}
struct ${name} {
  static constexpr int kInputAlignment = ${config.inputAlignment};
  static constexpr int kOutputAlignment = ${config.outputAlignment};
  using Layout = cutlass::layout::TensorNHWC;
  using EpilogueOp = ${epilogueOp};
  using Kernel = typename cutlass::conv::kernel::${kernel}<
      cutlass::half_t, Layout, cutlass::half_t, Layout, cutlass::half_t, Layout, float,
      cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80,
      cutlass::gemm::GemmShape<${tm}, ${tn}, ${tk}>, cutlass::gemm::GemmShape<${wm}, ${wn}, ${wk}>,
      cutlass::gemm::GemmShape<16, 8, 16>, EpilogueOp,
      cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<4>, ${config.stages}, cutlass::arch::OpMultiplyAdd,
      cutlass::conv::IteratorAlgorithm::${iterator}, cutlass::conv::StrideSupport::kStrided,
      kInputAlignment, kInputAlignment>::Kernel;
  using Conv = cutlass::conv::device::ImplicitGemmConvolution<Kernel>;

  static const char* run(const AitConvOperands& operands, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
    const AitConvOperands& o = operands;
    cutlass::conv::Conv2dProblemSize problem(o.n, o.h, o.w, o.c, o.k, o.r, o.s, o.p, o.q, o.pads[0], o.pads[1],
                                             o.strides[0], o.strides[1], o.dilations[0], o.dilations[1],
                                             cutlass::conv::Mode::kCrossCorrelation, 1, 1);
${argumentsText}
    Conv conv;
${cutlassRunTail('conv', 'Conv', name)}
  }
};`;
  return {
    name,
    reason,
    code,
    includes: [
      'cutlass/cutlass.h',
      'cutlass/conv/conv2d_problem_size.h',
      'cutlass/conv/device/implicit_gemm_convolution.h',
      `cutlass/conv/kernel/${epilogue.kind === 'generic' ? 'default_conv2d_fprop.h' : 'default_conv2d_fprop_with_broadcast.h'}`,
      epilogue.kind === 'generic'
        ? 'cutlass/epilogue/thread/linear_combination_generic.h'
        : 'cutlass/epilogue/thread/linear_combination_residual_block.h',
      ...activationIncludes(code),
      'cutlass/functional.h',
    ],
  };
}

/** Emits the instance a choice describes. */
export function emitConv(choice: ConvChoice, steps: readonly ConvEpilogueStep[]): EmittedInstance {
  return choice.config.arch === 'sm90'
    ? emitSm90Conv(choice.config, steps, choice.reason)
    : emitSm80Conv(choice.config, steps, choice.reason);
}

/** One source file holding conv instances (the includes of all, the operands struct, then each instance). */
export function convSourceFile(instances: readonly EmittedInstance[]): string {
  const includes = [...new Set(instances.flatMap((i) => i.includes))];
  return [
    '// Generated by AIT: CUTLASS convolution instances.',
    ...includes.map((i) => `#include "${i}"`),
    '',
    convOperandsStruct(),
    '',
    ...instances.map((i) => i.code + '\n'),
  ].join('\n');
}
