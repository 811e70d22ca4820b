/**
 * GEMM, batched GEMM and convolution on ROCm through Composable Kernel instances (instances.ts): the per-compile
 * library (PlatformLibrary of cuda/codegen/index.ts) the ROCm lowerings (../lowerings.ts) call.
 *
 *  - gemm (ait:gemm, MatMul with a 2-D weight B): A = input 0 as [M, K] (M the product of its leading dims), B the
 *    weight as stored: [N, K] (trans_b = 1) is CK's column-major B, [K, N] its row-major B (no transposed copy).
 *  - MatMul between activations: batched-gemm.ts's analysis (the CUDA one), DeviceBatchedGemmMultiD_Xdl.
 *  - conv2d (NHWC, OHWI weights, any group with C and K divisible by it): DeviceGroupedConvFwdMultipleD_Xdl_CShuffle
 *    (depthwise stays on our direct kernel, ../lowerings.ts).
 *  - Epilogue: the node's whole epilogue is fused as the instance's CDE operation (every step: bias, scale, residual
 *    add, the activations of the elementwise kernels); an operand must be a [N] channel vector or of the output's
 *    shape (CK reads each D as rows of the output), else the node is refused with that reason.
 *  - Instances by batch range like the CUDA GEMMs (batch-ranges.ts): the tile heuristic depends on the batch only
 *    through ceil(M / 64) × the GEMM count, up to a cap past which the tile depends on N alone (ckTileFor).
 *  - A patchify conv (ViT's patch embedding) is our patchify copy + a CK GEMM, as on CUDA; a group-1 ConvTranspose
 *    is a CK GEMM into the workspace + our col2im (gemmIntoWorkspace), as on CUDA.
 *  - No workspace but those columns: CK's Xdl device operations here take none (no split-K).
 *  - layernorm and softmax over the last axis (DeviceLayernormImpl, DeviceSoftmaxImpl) and attention without mask or
 *    bias at a head dim multiple of 32 (DeviceBatchedGemmSoftmaxGemm_Xdl_CShuffle): norm-instances.ts. A form these
 *    do not take returns the reason (rowOp, attention), and the lowering keeps our kernel (../lowerings.ts).
 */
import { Node, attrFloat, attrInt } from '../../../ir/graph';
import { Dim, dimEquals, dimToString, isConcrete } from '../../../ir/symbolic';
import { EPILOGUE_OPERAND_STEPS, attentionQkvInputs, epilogueOf, isPatchifyConv } from '../../../ops/fused';
import { axisNormPlan, isRowView } from '../../cuda/codegen/axis-norm-lowering';
import { cppFloat } from '../../cuda/codegen/cpp';
import { analyzeBatchedMatMul } from '../../cuda/codegen/batched-gemm';
import { BatchDecisions, BatchRange, batchRanges, dispatchByBatch } from '../../cuda/codegen/batch-ranges';
import { CodegenContext, Unsupported } from '../../cuda/codegen/context';
import { conv3dShapeOf, convShapeOf, epilogueRestStatements } from '../../cuda/codegen/conv-lowering';
import { activationFunctor, broadcastOf } from '../../cuda/codegen/elementwise';
import type { LoweredGemm } from '../../cuda/codegen/gemm-lowering';
import type { PlatformLibrary } from '../../cuda/codegen/index';
import type { KernelChoice } from '../../cuda/codegen/lower';
import type { GemmLayoutB } from '../../cuda/cutlass/gemm';
import type { RocmArch } from '../build-files';
import {
  CK_MAX_OPERANDS,
  CK_TILES,
  COMPUTE_UNITS,
  CkInstance,
  CkInstanceSpec,
  CkKind,
  CkProblem,
  CkTile,
  chooseCkTile,
  ckHeader,
  ckInstance,
  fitVectors,
  vectorWidth,
} from './instances';
import { CK_ATTENTION_TILES, CK_ROW_TILES, CkRowOp, chooseAttentionTile, chooseRowTile, ckAttentionRefusal } from './norm-instances';
import { dedupeCandidates } from './profiling';
import { CandidateReport, ProfiledKind, batchTerm } from '../../cuda/profiling/selection';

/** The node's epilogue as the instance's CDE functors, and its operands (per-channel vector or full). */
export interface CkEpilogue {
  functors: string[];
  operands: { tensor: string; perChannel: boolean }[];
  /**
   * The steps from the first operand the instance cannot take on (a 5th, or one CK cannot read as rows of the output),
   * and their operands: one elementwise kernel over the output after the instance (cuda/codegen/conv-lowering.ts
   * epilogueRestStatements).
   */
  rest: string[];
  restOperands: string[];
}

/**
 * The epilogue of a GEMM/conv node whose output rows have `n` channels: fused up to CK_MAX_OPERANDS operands that CK
 * reads as rows of the output ([n] vectors or the output's shape); the steps from the first operand past that (another
 * broadcast, or a 5th operand) on are `rest`. Throws Unsupported for a step without a functor, an operand that is not
 * fp16, or a broadcast the elementwise kernel cannot take either.
 */
export function ckEpilogue(ctx: CodegenContext, node: Node, n: number): CkEpilogue {
  const out = node.outputs[0];
  const outShape = ctx.shapeOf(out);
  const operandInputs = node.inputs.slice(2);
  const result: CkEpilogue = { functors: [], operands: [], rest: [], restOperands: [] };
  let next = 0; // the next operand input
  for (const step of epilogueOf(node)) {
    const name = step.split(':')[0];
    if (result.rest.length > 0 || (EPILOGUE_OPERAND_STEPS.has(name) && result.operands.length === CK_MAX_OPERANDS)) {
      // past what the instance takes: this step and every later one run after it
      result.rest.push(step);
      if (EPILOGUE_OPERAND_STEPS.has(name)) {
        const tensor = operandInputs[next++];
        if (!tensor) throw new Unsupported(`epilogue step ${name} has no operand`);
        broadcastOf(ctx, node, ctx.shapeOf(tensor), outShape); // the elementwise kernel's refusal, if it has one
        result.restOperands.push(tensor);
      }
      continue;
    }
    if (!EPILOGUE_OPERAND_STEPS.has(name)) {
      result.functors.push(activationFunctor(step));
      continue;
    }
    const tensor = operandInputs[next++];
    if (!tensor) throw new Unsupported(`epilogue step ${name} has no operand`);
    if (ctx.typeOf(tensor) !== 'half') throw new Unsupported(`epilogue ${name} operand '${tensor}' is ${ctx.typeOf(tensor)}, not fp16`);
    const shape = ctx.shapeOf(tensor);
    const perChannel =
      shape.length >= 1 &&
      shape.every(isConcrete) &&
      shape.reduce<number>((a, d) => a * (d as number), 1) === n &&
      shape[shape.length - 1] === n;
    const full = !perChannel && shape.length === outShape.length && broadcastOf(ctx, node, shape, outShape).broadcast === 'kFull';
    if (!perChannel && !full) {
      // a CK epilogue reads its operands as rows of the output: this broadcast, and every later step, run after it
      broadcastOf(ctx, node, shape, outShape); // the elementwise kernel's refusal, if it has one
      result.rest.push(step);
      result.restOperands.push(tensor);
      continue;
    }
    result.operands.push({ tensor, perChannel });
    const index = result.operands.length; // in[0] is the accumulator
    result.functors.push(name === 'scale' ? `ew::MulInput<${index}>{}` : `ew::AddInput<${index}>{}`);
  }
  return result;
}

/** Rows (all GEMMs of a batched one together) past which every tile has 8+ waves of blocks on the target. */
function rowCap(n: number, cus: number): number {
  return Math.ceil((8 * cus) / Math.ceil(n / 128)) * 256;
}

/** The rows the tile choice sees: M rounded up to 64 (every tile's M is a multiple of 64), times the GEMM count. */
const paddedRows = (p: CkProblem) => Math.ceil(p.m / 64) * 64 * (p.batch ?? 1);

/**
 * The tile heuristic (instances.ts chooseCkTile) below the row cap; past it the tile depends on N alone (the
 * 128x256 tile when N is a multiple of 256, else 256x128), so that batch ranges end there.
 */
export function ckTileFor(p: CkProblem, cus: number): { tile: CkTile; reason: string } {
  if (paddedRows(p) < rowCap(p.n, cus)) return chooseCkTile(p, cus);
  const tile = p.n % 256 === 0 ? CK_TILES[1] : CK_TILES[0];
  return {
    tile,
    reason: `tile ${tile.m}x${tile.n}x32 (${tile.block} threads): ${paddedRows(p)} rows fill 8+ waves of blocks on ${cus} CUs`,
  };
}

/**
 * What the tile choice compares as the batch grows (batch-ranges.ts): the choice depends on the batch only through
 * ceil(M / 64) and the GEMM count, so through paddedRows (non-decreasing in the batch), below the cap.
 */
function ckDecisions(problemAt: (batch: number) => CkProblem, cus: number): BatchDecisions {
  const cap = rowCap(problemAt(1).n, cus);
  const rows = (b: number) => paddedRows(problemAt(b));
  return { steps: [{ value: rows, below: cap }], thresholds: [{ value: rows, threshold: cap }] };
}

/**
 * The largest fp16 tensor a CK instance reads or writes: its gridwise GEMMs refuse a tensor past 2 GiB (CheckValidity's
 * TwoGB: the descriptors index bytes with 32-bit `index_t`), i.e. 2^30 fp16 elements.
 */
const MAX_CK_ELEMENTS = 2 ** 30;

function checkIndexRange(tensors: [string, number][], maxBatch: number, fix = 'compile with a smaller --max-batch'): void {
  for (const [what, elements] of tensors)
    if (elements > MAX_CK_ELEMENTS)
      throw new Unsupported(
        `${what} has ${elements} elements at max batch ${maxBatch}, past the 2^30 fp16 elements (2 GiB) that CK's 32-bit indices address (${fix})`,
      );
}

interface CkSource {
  instance: CkInstance;
  file: string;
}

export class CkLibrary implements PlatformLibrary {
  private readonly sources: CkSource[] = [];
  private readonly bySymbol = new Map<string, CkSource>();
  private readonly cus: number;

  constructor(
    readonly ctx: CodegenContext,
    readonly arch: RocmArch,
  ) {
    this.cus = COMPUTE_UNITS[arch];
  }

  get instanceCount(): number {
    return this.sources.length;
  }

  get instances(): readonly CkInstance[] {
    return this.sources.map((s) => s.instance);
  }

  instanceFiles(): string[] {
    return this.sources.map((s) => s.file);
  }

  files(): [string, string][] {
    return [['src/ait_ck.h', ckHeader(this.instances)], ...this.sources.map((s): [string, string] => [s.file, s.instance.code])];
  }

  /** ait:gemm, and MatMul (a 2-D weight B: one GEMM; two activations: a batched GEMM). */
  gemm(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const [a, b] = node.inputs;
    const aShape = ctx.shapeOf(a);
    const bShape = ctx.shapeOf(b);
    if (bShape.length !== 2 || !ctx.isWeight(b)) {
      if (node.op !== 'MatMul') throw new Unsupported('GEMM with a B operand that is not a 2-D weight');
      const mm = analyzeBatchedMatMul(node, (t) => ctx.shapeOf(t), ctx.absorbedTransposes);
      const runtimeNK = isConcrete(mm.n) && isConcrete(mm.k) ? undefined : { n: mm.n, k: mm.k };
      const what =
        `batched GEMM L=${mm.batch.length ? mm.batch.join('·') : 1} M=${mm.m.join('·')} N=${dimToString(mm.n)} K=${dimToString(mm.k)} ` +
        `(${mm.description}${runtimeNK ? '; N or K a run-time size: vectors of 8 when both are multiples of 8, else of 1' : ''})`;
      return this.emitGemm(
        node,
        { m: mm.m, n: ctx.maxOf(mm.n), k: ctx.maxOf(mm.k), batch: mm.batch, layoutB: mm.layoutB, ...(runtimeNK ? { runtimeNK } : {}) },
        ctx.pointer(mm.a),
        mm.b,
        what,
      );
    }
    const transB = node.op === 'MatMul' ? 0 : attrInt(node, 'trans_b', 0);
    const [n, k] = (transB ? bShape : [bShape[1], bShape[0]]) as number[];
    const m = aShape.slice(0, -1);
    return this.emitGemm(node, { m, n, k, layoutB: transB ? 'column' : 'row' }, ctx.pointer(a), b, `GEMM M=${m.join('·')} N=${n} K=${k}`);
  }

  private emitGemm(
    node: Node,
    /** n, k: their largest values when runtimeNK holds them as run-time sizes (two instance sets, picked by the sizes) */
    shape: { m: Dim[]; n: number; k: number; batch?: Dim[]; layoutB: GemmLayoutB; runtimeNK?: { n: Dim; k: Dim } },
    aPointer: string,
    b: string,
    what: string,
    /** Statements before the GEMM (the patchify copy), its headers and workspace. */
    before: { body: string[]; headers: string[]; workspaceBytes: number } = { body: [], headers: [], workspaceBytes: 0 },
    /** E into `pointer` (a workspace buffer) with no epilogue, then the statements `after` (gemmIntoWorkspace). */
    into?: { pointer: string; after: string[] },
  ): LoweredGemm {
    const ctx = this.ctx;
    const out = node.outputs[0];
    if (ctx.typeOf(out) !== 'half') throw new Unsupported('GEMM output is not a float tensor');
    const epilogue: CkEpilogue = into ? { functors: [], operands: [], rest: [], restOperands: [] } : ckEpilogue(ctx, node, shape.n);
    const maxOf = (dims: readonly Dim[]) => dims.reduce<number>((acc, d) => acc * ctx.maxOf(d), 1);
    const rows = maxOf(shape.batch ?? []) * maxOf(shape.m);
    checkIndexRange(
      [
        ['A', rows * shape.k],
        ['E', rows * shape.n],
        ['B', (shape.batch ? maxOf(shape.batch) : 1) * shape.n * shape.k],
      ],
      ctx.maxBatch,
    );
    const kind: CkKind = shape.batch ? 'batched_gemm' : 'gemm';
    const productAt = (dims: readonly Dim[], batch: number) => dims.reduce<number>((acc, d) => acc * ctx.at(d, batch), 1);
    const mAt = (batch: number) => productAt(shape.m, batch);
    const lAt = (batch: number) => productAt(shape.batch ?? [], batch);
    const perChannel = epilogue.operands.map((o) => o.perChannel);
    const roundUp8 = (v: number) => Math.ceil(v / 8) * 8;
    // N and K at run time: one set for sizes both multiples of 8 (vectors of 8), one for any (vectors of 1)
    // align: the vector width the run-time sizes guarantee (the tile choice sees the sizes at their largest)
    const choose = (n: number, k: number, align?: number) => {
      const width = (extent: number) => Math.min(vectorWidth(extent), align ?? 8);
      const vectors = {
        a: width(k),
        b: shape.layoutB === 'row' ? width(n) : width(k),
        cde: width(n),
      };
      return this.chooseRanges(
        (batch) => ({ m: mAt(batch), n, k, batch: lAt(batch) }),
        (tile) => ({
          kind,
          tile,
          vectors,
          epilogue: epilogue.functors,
          operands: epilogue.operands.length,
          layoutB: shape.layoutB,
        }),
        {
          node,
          kind,
          signature: (batches) => [
            ...(shape.batch ? [batchTerm('l', lAt, batches)] : []),
            batchTerm('m', mAt, batches),
            `n=${n}`,
            `k=${k}`,
            `b=${shape.layoutB}`,
            ...(align !== undefined ? [`align=${align}`] : []),
            ...epilogueTerms(epilogue),
          ],
          argsAt: (batch) => ({ batch: lAt(batch), m: mAt(batch), n, k, d_per_channel: perChannel }),
          steps: epilogue.functors,
          layoutB: shape.layoutB,
        },
      );
    };
    const runtime = shape.runtimeNK;
    const { ranges, reasons, candidates } = runtime ? choose(roundUp8(shape.n), roundUp8(shape.k), 8) : choose(shape.n, shape.k);
    const unaligned = runtime ? choose(shape.n, shape.k, 1) : undefined;
    const sizeExpr = (d: Dim | undefined, max: number) =>
      d === undefined || isConcrete(d) ? String(max) : `static_cast<int>(${ctx.dim(d, node)})`;
    const launch = (r: BatchRange<CkSource>[]) =>
      dispatchByBatch(r, (src) => `AIT_RETURN_IF_FAILED(${src.instance.symbol}(gemm, c.stream));`);
    const body = [
      ...before.body,
      `const AitCkGemmArgs gemm{static_cast<int>(${ctx.product(shape.batch ?? [], node)}), static_cast<int>(${ctx.product(shape.m, node)}), ${sizeExpr(runtime?.n, shape.n)}, ${sizeExpr(runtime?.k, shape.k)},`,
      `                         ${aPointer}, ${ctx.pointer(b)},`,
      ...operandFields(ctx, epilogue),
      `                         ${into ? into.pointer : ctx.pointer(out, true)}};`,
      ...(unaligned
        ? [
            'if (gemm.n % 8 == 0 && gemm.k % 8 == 0) {  // rows of 16 bytes: the instances with vectors of 8',
            ...launch(ranges).map((l) => `  ${l}`),
            '} else {',
            ...launch(unaligned.ranges).map((l) => `  ${l}`),
            '}',
          ]
        : launch(ranges)),
      ...(into?.after ?? []),
      ...restOf(ctx, node, epilogue),
    ];
    const kernel = this.kernelChoice(what, ranges, reasons, epilogue, shape.layoutB, candidates);
    if (unaligned) {
      const config = kernel.config as { instances: Record<string, unknown>[] };
      config.instances = [
        ...config.instances.map((i) => ({ ...i, when: 'N and K multiples of 8' })),
        ...unaligned.ranges.map((r) => ({
          batches: [r.firstBatch, r.lastBatch],
          name: r.source.instance.symbol,
          file: r.source.file,
          when: 'otherwise',
        })),
      ];
      kernel.reason += `; N or K not multiples of 8: ${unaligned.ranges.map((r) => `batch ${r.firstBatch}..${r.lastBatch}: ${unaligned.reasons.get(r.firstBatch) ?? ''}`).join('; ')}`;
    }
    return {
      kernel,
      body,
      headers: ['ait_ck.h', ...before.headers, ...(epilogue.rest.length ? ['elementwise.cuh'] : [])],
      workspaceBytes: before.workspaceBytes,
    };
  }

  /**
   * A GEMM into a workspace buffer of `bytes` (at max batch), no epilogue, then `after` (given the buffer's pointer)
   * reads it and applies the node's epilogue itself: ConvTranspose's columns (cuda/codegen/conv-transpose-lowering.ts),
   * the same contract as the CUTLASS GemmLowering.gemmIntoWorkspace. B is an [n, k] weight (column-major B).
   */
  gemmIntoWorkspace(
    node: Node,
    shape: { m: Dim[]; n: number; k: number },
    aPointer: string,
    bWeight: string,
    bytes: number,
    after: (d: string) => string[],
    what: string,
    headers: string[],
  ): LoweredGemm {
    const d = 'static_cast<__half*>(c.workspace)';
    return this.emitGemm(
      node,
      { ...shape, layoutB: 'column' },
      aPointer,
      bWeight,
      what,
      { body: [], headers, workspaceBytes: Math.ceil(bytes / 256) * 256 },
      { pointer: d, after: after(d) },
    );
  }

  /**
   * layernorm (fused or LayerNormalization over the last axis) or Softmax over the last axis as a CK instance, or the
   * reason CK does not take the node's form (the caller keeps our kernel).
   */
  rowOp(node: Node, kind: CkRowOp): LoweredGemm | string {
    const ctx = this.ctx;
    const out = node.outputs[0];
    const [x, gamma, beta] = node.inputs;
    const shape = ctx.shapeOf(out);
    if (ctx.typeOf(x) !== 'half' || ctx.typeOf(out) !== 'half') return 'not fp16 data';
    let rows: Dim[];
    let n: Dim;
    if (kind === 'softmax') {
      const view = axisNormPlan(ctx, node);
      if (!isRowView(view) || view.n.length !== 1) return 'softmax over an axis that is not the last';
      [rows, n] = [view.outer, view.n[0]];
    } else {
      if (!gamma || !beta) return 'layernorm without gamma or beta (the CK layernorm reads both)';
      if (ctx.typeOf(gamma) !== 'half' || ctx.typeOf(beta) !== 'half') return 'gamma or beta not fp16';
      [rows, n] = [shape.slice(0, -1), shape[shape.length - 1]];
    }
    if (!isConcrete(n)) return 'a row length decided at run time (the CK instance takes its vector width at compile time)';
    const maxRows = rows.reduce<number>((acc, d) => acc * ctx.maxOf(d), 1);
    if (maxRows * n > MAX_CK_ELEMENTS) return `${maxRows * n} elements at max batch, past CK's 32-bit indices`;
    const vector = vectorWidth(n);
    const { tile, reason } = chooseRowTile(n);
    const epsilon = kind === 'layernorm' ? attrFloat(node, 'epsilon', 1e-5) : 0;
    const rowsAt = (batch: number) => rows.reduce<number>((acc, d) => acc * ctx.at(d, batch), 1);
    const { ranges, reasons, candidates } = this.chooseOne(
      {
        node,
        kind,
        signature: (batches) => [batchTerm('rows', rowsAt, batches), `n=${n}`],
        argsAt: (batch) => ({ rows: rowsAt(batch), n, epsilon }),
      },
      CK_ROW_TILES.map((t) => ckInstance({ kind, tile: t, vector })),
      { instance: ckInstance({ kind, tile, vector }), reason },
    );
    const body = [
      `const AitCkRowArgs row{static_cast<int>(${ctx.product(rows, node)}), ${n}, ${kind === 'layernorm' ? cppFloat(epsilon) : '0.f'}, ${ctx.pointer(x)},`,
      `                      ${kind === 'layernorm' ? `${ctx.pointer(gamma)}, ${ctx.pointer(beta)}` : 'nullptr, nullptr'}, ${ctx.pointer(out, true)}};`,
      ...dispatchByBatch(ranges, (src) => `AIT_RETURN_IF_FAILED(${src.instance.symbol}(row, c.stream));`),
    ];
    return {
      kernel: this.oneChoice(kind, `${kind} over rows of ${n}`, ranges, reasons, candidates),
      body,
      headers: ['ait_ck.h'],
      workspaceBytes: 0,
    };
  }

  /** The fused attention node as a CK instance, or the reason CK does not take its form (our kernel runs it). */
  attention(node: Node): LoweredGemm | string {
    const ctx = this.ctx;
    const out = node.outputs[0];
    const heads = attrInt(node, 'num_heads');
    const headDim = attrInt(node, 'head_dim');
    const first = attentionQkvInputs(node);
    if (attrInt(node, 'value_head_dim', headDim) !== headDim) return 'a value head dim of its own (the CK instance takes one head dim)';
    if (attrInt(node, 'per_head', 0)) return 'q, k, v split per head (the CK instance reads [B,S,3,H,D] or separate tensors)';
    const refusal = ckAttentionRefusal({ headDim, biases: node.inputs.length - first, causal: attrInt(node, 'causal', 0) !== 0 });
    if (refusal) return refusal;
    for (const t of [...node.inputs, out]) if (ctx.typeOf(t) !== 'half') return `'${t}' is not fp16`;
    const [batch, sequence] = ctx.shapeOf(node.inputs[0]);
    // the instance reads K and V at Q's token rows and length (one S and row stride for all three)
    if (first === 2) return 'q and a packed kv (the CK instance takes packed QKV or separate Q, K, V)';
    const keys = ctx.shapeOf(node.inputs[first - 1])[1];
    if (!dimEquals(keys, sequence)) return 'keys of another length than the queries (the CK instance takes one sequence)';
    const hd = heads * headDim;
    const tokenStride = first === 3 ? hd : 3 * hd;
    if (ctx.maxOf(sequence) * tokenStride > MAX_CK_ELEMENTS) return "a batch's Q, K or V past CK's 32-bit indices";
    const [q, k, v] =
      first === 3
        ? node.inputs.slice(0, 3).map((t) => ctx.pointer(t))
        : [0, 1, 2].map((i) => `${ctx.pointer(node.inputs[0])}${i ? ` + ${i * hd}` : ''}`);
    const { tile, reason } = chooseAttentionTile(headDim);
    const scale = attrFloat(node, 'scale', 1 / Math.sqrt(headDim));
    const [bAt, sAt] = [batch, sequence].map((d) => (n: number) => ctx.at(d, n));
    const { ranges, reasons, candidates } = this.chooseOne(
      {
        node,
        kind: 'attention',
        signature: (batches) => [
          batchTerm('b', bAt, batches),
          batchTerm('s', sAt, batches),
          `h=${heads} d=${headDim} ${first === 3 ? 'separate' : 'packed'} scale=${scale}`,
        ],
        argsAt: (n) => ({ batch: bAt(n), sequence: sAt(n), heads, head_dim: headDim, token_stride: tokenStride, scale }),
      },
      CK_ATTENTION_TILES.map((t) => ckInstance({ kind: 'attention', tile: t })),
      { instance: ckInstance({ kind: 'attention', tile }), reason },
    );
    const body = [
      `const AitCkAttentionArgs attention{static_cast<int>(${ctx.dim(batch, node)}), static_cast<int>(${ctx.dim(sequence, node)}), ${heads}, ${headDim},`,
      `                                   ${tokenStride}, ${cppFloat(scale)}, ${q}, ${k}, ${v}, ${ctx.pointer(out, true)}};`,
      ...dispatchByBatch(ranges, (src) => `AIT_RETURN_IF_FAILED(${src.instance.symbol}(attention, c.stream));`),
    ];
    const what = `attention (${first === 3 ? 'separate Q, K, V' : 'packed QKV'}, ${heads} heads of ${headDim}) as CK batched GEMM-softmax-GEMM, one launch per batch`;
    return { kernel: this.oneChoice('attention', what, ranges, reasons, candidates), body, headers: ['ait_ck.h'], workspaceBytes: 0 };
  }

  /** conv2d: NHWC grouped conv forward (group 1 included). */
  conv2d(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const out = node.outputs[0];
    const shape = staticSpatial(convShapeOf(ctx, node));
    const { batch, h, w: wIn, c, k, r, s, p, q, pads, strides, dilations, group } = shape;
    if (k % group !== 0) throw new Unsupported(`convolution with ${k} output channels in ${group} groups`);
    const cg = c / group;
    const kg = k / group;
    if (isPatchifyConv(node, [r, s]) && (s * c) % 8 === 0) return this.patchify(node, shape);
    const epilogue = ckEpilogue(ctx, node, k);
    // an activation past CK's 2 GiB at the max batch: the conv runs over chunks of images (as the CUDA
    // build's convBatchChunk does); one image must still fit
    checkIndexRange(
      [
        ['one image of the input', h * wIn * c],
        ['one image of the output', p * q * k],
      ],
      1,
      'the conv runs over chunks of whole images; a smaller input size is the only fix',
    );
    const perImage = Math.max(h * wIn * c, p * q * k);
    const chunk = ctx.maxOf(batch) * perImage > MAX_CK_ELEMENTS ? Math.floor(MAX_CK_ELEMENTS / perImage) : undefined;
    const oneByOne = r === 1 && s === 1 && pads.every((v) => v === 0);
    const convSpecialization = oneByOne ? (strides.every((v) => v === 1) ? 'Filter1x1Stride1Pad0' : 'Filter1x1Pad0') : 'Default';
    const vectors = { a: vectorWidth(cg), b: vectorWidth(cg), cde: vectorWidth(kg) };
    const mAt = (n: number) => ctx.at(batch, n) * p * q;
    const nAt = (n: number) => ctx.at(batch, n);
    const { ranges, reasons, candidates } = this.chooseRanges(
      (n) => ({ m: mAt(n), n: kg, k: r * s * cg, batch: group }),
      (tile) => ({ kind: 'conv', tile, vectors, epilogue: epilogue.functors, operands: epilogue.operands.length, convSpecialization }),
      {
        node,
        kind: 'conv',
        signature: (batches) => [
          batchTerm('n', nAt, batches),
          `h=${h} w=${wIn} c=${c} k=${k} r=${r} s=${s} p=${p} q=${q} g=${group}`,
          `stride=${strides.join('x')} dilation=${dilations.join('x')} pads=${pads.join(',')}`,
          ...epilogueTerms(epilogue),
        ],
        argsAt: (n) => ({
          ...{ n: nAt(n), h, w: wIn, c, k, r, s, p, q, group },
          ...{ stride_h: strides[0], stride_w: strides[1], dilation_h: dilations[0], dilation_w: dilations[1] },
          ...{ pad_top: pads[0], pad_left: pads[1], pad_bottom: pads[2], pad_right: pads[3] },
          d_per_channel: epilogue.operands.map((o) => o.perChannel),
        }),
        steps: epilogue.functors,
      },
    );
    // offset(pointer, per-image elements): where this launch's images start (the whole batch: the pointer itself)
    const args = (n: string, offset: (pointer: string, image: string) => string) => [
      `const AitCkConvArgs conv{static_cast<int>(${n}), ${h}, ${wIn}, ${c}, ${k}, ${r}, ${s}, ${p}, ${q}, ${group},`,
      `                         ${strides[0]}, ${strides[1]}, ${dilations[0]}, ${dilations[1]}, ${pads[0]}, ${pads[1]}, ${pads[2]}, ${pads[3]},`,
      `                         ${offset(ctx.pointer(x), 'in_image')}, ${ctx.pointer(w)},`,
      ...operandFields(ctx, epilogue, (pointer) => offset(pointer, 'out_image')),
      `                         ${offset(ctx.pointer(out, true), 'out_image')}};`,
    ];
    const launch = dispatchByBatch(ranges, (src) => `AIT_RETURN_IF_FAILED(${src.instance.symbol}(conv, c.stream));`);
    const body =
      chunk === undefined
        ? [...args(ctx.dim(batch, node), (pointer) => pointer), ...launch]
        : [
            `const int64_t images = ${ctx.dim(batch, node)}, in_image = ${h * wIn * c}, out_image = ${p * q * k};`,
            `for (int64_t first = 0; first < images; first += ${chunk}) {`,
            `  const int64_t batch = std::min<int64_t>(${chunk}, images - first);  // this chunk's images (the dispatch reads it)`,
            ...args('batch', (pointer, image) => (pointer === 'nullptr' ? pointer : `${pointer} + first * ${image}`)).map((l) => `  ${l}`),
            ...launch.map((l) => `  ${l}`),
            '}',
          ];
    body.push(...restOf(ctx, node, epilogue));
    const what = `${r}x${s} conv (stride ${strides.join('x')}${group > 1 ? `, group ${group}` : ''}) as CK implicit GEMM M=N·${p}·${q} N=${kg} K=${r * s * cg}`;
    return {
      kernel: this.kernelChoice(what, ranges, reasons, epilogue, undefined, candidates),
      body,
      headers: ['ait_ck.h', ...(epilogue.rest.length ? ['elementwise.cuh'] : [])],
      workspaceBytes: 0,
    };
  }

  /**
   * conv3d of group 1 (NDHWC, ODHWI weight [K, T, R, S, C]) as the CUDA build runs it: our 3-D im2col into the
   * workspace (kernels/im2col.cuh; columns (t, r, s, c), K = T·R·S·C unpadded: CK takes any K at a narrower vector),
   * then one GEMM with the weight as [K_out, T·R·S·C] (column-major B) and the whole epilogue; a 1×1×1 stride-1
   * unpadded conv is the GEMM on x itself. Grouped and depthwise conv3d run our direct kernels (lowerings.ts).
   */
  conv3d(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const shape = conv3dShapeOf(ctx, node);
    const { batch, d, h, w: wIn, c, k, t, r, s, o, p, q, pads, strides, dilations, group } = shape;
    if (group !== 1) throw new Unsupported(`grouped 3-D convolution (group ${group}) is not a CK GEMM`);
    const m = [batch, o, p, q];
    const taps = t * r * s * c;
    if (t * r * s === 1 && strides.every((v) => v === 1) && pads.every((v) => v === 0))
      return this.emitGemm(
        node,
        { m, n: k, k: c, layoutB: 'column' },
        ctx.pointer(x),
        w,
        `1x1x1 conv as GEMM M=N·${[o, p, q].join('·')} N=${k} K=${c}`,
      );
    const bytes = Math.ceil((m.reduce<number>((acc, dim) => acc * ctx.maxOf(dim), 1) * taps * 2) / 256) * 256;
    const dims = [h, wIn, c, p, q].map((dim) => ctx.dim(dim, node));
    return this.emitGemm(
      node,
      { m, n: k, k: taps, layoutB: 'column' },
      'columns',
      w,
      `${t}x${r}x${s} conv (stride ${strides.join('x')}) as 3-D im2col + GEMM, K=${taps}`,
      {
        body: [
          '__half* columns = static_cast<__half*>(c.workspace);',
          `ait::kernels::Im2colArgs<__half> im2col{${ctx.pointer(x)}, columns, ${ctx.dim(batch, node)}, ${dims.join(', ')}, ${r}, ${s},`,
          `                                        ${strides[1]}, ${strides[2]}, ${pads[1]}, ${pads[2]}, ${dilations[1]}, ${dilations[2]}, ${taps},`,
          `                                        ${ctx.dim(d, node)}, ${ctx.dim(o, node)}, ${t}, ${strides[0]}, ${pads[0]}, ${dilations[0]}};`,
          'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_im2col_nhwc(im2col, c.stream));',
        ],
        headers: ['im2col.cuh'],
        workspaceBytes: bytes,
      },
    );
  }

  /**
   * A patchify conv (stride = kernel, no padding: ViT's patch embedding) as the CUDA build runs it: our patchify copy
   * of the patches into the workspace (kernels/im2col.cuh, 16-byte vectors), then one GEMM with K = R·S·C on the OHWI
   * weight as [K_out, R·S·C] (column-major B). The implicit-GEMM conv would read the 3-channel input one element at
   * a time (its A vector is limited by C).
   */
  private patchify(node: Node, shape: StaticConvShape): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const { batch, h, w: wIn, c, k, r, s, p, q } = shape;
    const taps = r * s * c;
    const bytes = Math.ceil((ctx.maxOf(batch) * p * q * taps * 2) / 256) * 256;
    const lowered = this.emitGemm(
      node,
      { m: [batch, p, q], n: k, k: taps, layoutB: 'column' },
      'columns',
      w,
      `${r}x${s}/${r}x${s} patchify conv as patchify copy + GEMM, K=${taps}`,
      {
        body: [
          '__half* columns = static_cast<__half*>(c.workspace);',
          `ait::kernels::PatchifyArgs<__half> patchify{${ctx.pointer(x)}, columns, ${ctx.dim(batch, node)}, ${h}, ${wIn}, ${c}, ${p}, ${q}, ${r}, ${s}};`,
          'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_patchify_nhwc(patchify, c.stream));',
        ],
        headers: ['im2col.cuh'],
        workspaceBytes: bytes,
      },
    );
    return { ...lowered, kernel: { ...lowered.kernel, config: { ...lowered.kernel.config, path: 'patchify+gemm' } } };
  }

  /**
   * Instances by batch range: measured (profiling.ts) when the compile has measurements of the op's signature, else
   * the tile heuristic where its decisions can change (batch-ranges.ts).
   */
  private chooseRanges(
    problemAt: (batch: number) => CkProblem,
    specOf: (tile: CkTile) => CkInstanceSpec,
    profile: CkProfile,
  ): { ranges: BatchRange<CkSource>[]; reasons: Map<number, string>; candidates?: CandidateReport[] } {
    const heuristicAt = (batch: number) => {
      const { tile, reason } = ckTileFor(problemAt(batch), this.cus);
      return { source: this.register(ckInstance(fitVectors(specOf(tile)))), reason };
    };
    const measured = this.measured(
      profile,
      CK_TILES.map((tile) => ckInstance(fitVectors(specOf(tile)))),
      heuristicAt,
    );
    if (measured) return measured;
    const reasons = new Map<number, string>();
    const max = this.ctx.batchSymbol ? this.ctx.maxBatch : 1;
    const decisions = ckDecisions(problemAt, this.cus);
    const ranges = batchRanges(max, decisions, (batch) => {
      const { source, reason } = heuristicAt(batch);
      reasons.set(batch, reason);
      return source;
    });
    return { ranges, reasons };
  }

  /**
   * An op with one heuristic choice at every batch (row ops, attention): measured ranges when there are
   * measurements, else that choice for every batch.
   */
  private chooseOne(
    profile: CkProfile,
    candidates: CkInstance[],
    heuristic: { instance: CkInstance; reason: string },
  ): { ranges: BatchRange<CkSource>[]; reasons: Map<number, string>; candidates?: CandidateReport[] } {
    const measured = this.measured(profile, candidates, () => ({ source: this.register(heuristic.instance), reason: heuristic.reason }));
    if (measured) return measured;
    const max = this.ctx.batchSymbol ? this.ctx.maxBatch : 1;
    return {
      ranges: [{ firstBatch: 1, lastBatch: max, source: this.register(heuristic.instance) }],
      reasons: new Map([[1, heuristic.reason]]),
    };
  }

  /**
   * The measured choice (cuda/profiling/selection.ts KernelProfiling) when the compile profiles or has measurements:
   * records the op's signature with its candidates (what --profile-sources writes a profiler for), and returns the
   * fastest candidate per batch range when there are measurements of the signature, else undefined.
   */
  private measured(
    profile: CkProfile,
    instances: CkInstance[],
    heuristicAt: (batch: number) => { source: CkSource; reason: string },
  ): { ranges: BatchRange<CkSource>[]; reasons: Map<number, string>; candidates: CandidateReport[] } | undefined {
    const profiling = this.ctx.profiling;
    if (!profiling?.active) return undefined;
    const batches = this.ctx.batchSymbol ? profiling.batches : [1];
    const candidates = dedupeCandidates(instances);
    const signature = [`ck ${profile.kind} ${this.arch}`, ...profile.signature(batches)].join(' ');
    profiling.record(
      {
        signature,
        kind: profile.kind,
        batches,
        problems: batches.map(profile.argsAt),
        workspaceBytes: 0,
        steps: profile.steps ?? [],
        layoutB: profile.layoutB,
        candidates,
      },
      profile.node.id,
    );
    return profiling.choose(signature, candidates, (instance) => this.register(instance), heuristicAt);
  }

  private register(instance: CkInstance): CkSource {
    const known = this.bySymbol.get(instance.symbol);
    if (known) return known;
    const source = { instance, file: `src/ck_${this.sources.length}.cu` };
    this.sources.push(source);
    this.bySymbol.set(instance.symbol, source);
    return source;
  }

  /** The kernel choice of a row op or attention (no epilogue). */
  private oneChoice(
    kind: CkKind,
    what: string,
    ranges: BatchRange<CkSource>[],
    reasons: Map<number, string>,
    candidates?: CandidateReport[],
  ): KernelChoice {
    const last = ranges[ranges.length - 1].source;
    const single = ranges.length === 1 && !candidates;
    return {
      library: 'ck',
      name: last.instance.symbol,
      config: {
        arch: this.arch,
        deviceOp: kind,
        ...(single ? { tile: last.instance.spec.tile, file: last.file } : {}),
        ...((last.instance.spec as { vector?: number }).vector ? { vector: (last.instance.spec as { vector: number }).vector } : {}),
        instances: ranges.map((r) => ({ batches: [r.firstBatch, r.lastBatch], name: r.source.instance.symbol, file: r.source.file })),
      },
      ...(candidates ? { candidates } : {}),
      reason: single
        ? `${what}: ${reasons.get(1) ?? ''}`
        : `${what}; ${ranges.map((r) => `batch ${r.firstBatch}..${r.lastBatch}: ${reasons.get(r.firstBatch) ?? ''}`).join('; ')}`,
    };
  }

  private kernelChoice(
    what: string,
    ranges: BatchRange<CkSource>[],
    reasons: Map<number, string>,
    epilogue: CkEpilogue,
    layoutB?: GemmLayoutB,
    candidates?: CandidateReport[],
  ): KernelChoice {
    const last = ranges[ranges.length - 1].source.instance;
    return {
      ...(candidates ? { candidates } : {}),
      library: 'ck',
      name: last.symbol,
      config: {
        arch: this.arch,
        deviceOp: last.spec.kind,
        ...(layoutB ? { layoutB } : {}),
        epilogue: epilogue.functors,
        ...(epilogue.rest.length ? { unfusedEpilogue: epilogue.rest } : {}),
        instances: ranges.map((r) => ({ batches: [r.firstBatch, r.lastBatch], name: r.source.instance.symbol, file: r.source.file })),
      },
      reason:
        `${what}; ${ranges.map((r) => `batch ${r.firstBatch}..${r.lastBatch}: ${reasons.get(r.firstBatch) ?? ''}`).join('; ')}` +
        (epilogue.rest.length
          ? `; epilogue steps ${epilogue.rest.join(', ')} run as an elementwise kernel after the instance (a CK epilogue takes ${CK_MAX_OPERANDS} operands, each an [N] vector or of the output's shape)`
          : ''),
    };
  }
}

/** What an op records for profiling (profiling.ts): its signature terms after `ck <kind> <arch>`, its args by batch. */
interface CkProfile {
  node: Node;
  kind: ProfiledKind;
  signature: (batches: readonly number[]) => string[];
  argsAt: (batch: number) => Record<string, unknown>;
  /** The epilogue's ew functors (the profiler's reference applies them). */
  steps?: string[];
  layoutB?: GemmLayoutB;
}

/** The epilogue in a signature: its functors and whether each operand is a channel vector or of the output's shape. */
function epilogueTerms(epilogue: CkEpilogue): string[] {
  return [
    `epilogue=${epilogue.functors.join('+') || 'none'}`,
    ...(epilogue.operands.length ? [`d=${epilogue.operands.map((o) => (o.perChannel ? 'vector' : 'full')).join(',')}`] : []),
  ];
}

/** The d / d_per_channel initializers of the args struct (unused slots null). */
/** The epilogue steps past what the instance took, as one elementwise kernel over the output (in place). */
function restOf(ctx: CodegenContext, node: Node, epilogue: CkEpilogue): string[] {
  if (epilogue.rest.length === 0) return [];
  const out = ctx.pointer(node.outputs[0]);
  return ['{', ...epilogueRestStatements(ctx, node, epilogue.rest, epilogue.restOperands, out).map((l) => `  ${l}`), '}'];
}

/** The epilogue operands' pointers and per-channel flags; `image` offsets a per-pixel operand (a chunk of images). */
function operandFields(ctx: CodegenContext, epilogue: CkEpilogue, image: (pointer: string) => string = (p) => p): string[] {
  const pointers = Array.from({ length: CK_MAX_OPERANDS }, (_, i) => {
    const operand = epilogue.operands[i];
    if (!operand) return 'nullptr';
    return operand.perChannel ? ctx.pointer(operand.tensor) : image(ctx.pointer(operand.tensor));
  });
  const flags = Array.from({ length: CK_MAX_OPERANDS }, (_, i) => String(epilogue.operands[i]?.perChannel ?? false));
  return [`                         {${pointers.join(', ')}},`, `                         {${flags.join(', ')}},`];
}

type StaticConvShape = Omit<ReturnType<typeof convShapeOf>, 'h' | 'w' | 'p' | 'q'> & { h: number; w: number; p: number; q: number };

/** A conv's spatial sizes as numbers: the CK instances take them at compile time (a run-time length is refused). */
export function staticSpatial(shape: ReturnType<typeof convShapeOf>): StaticConvShape {
  const { h, w, p, q } = shape;
  if (!isConcrete(h) || !isConcrete(w) || !isConcrete(p) || !isConcrete(q))
    throw new Unsupported('a convolution whose spatial size is decided at run time (the CK instances take it at compile time)');
  return { ...shape, h, w, p, q };
}
