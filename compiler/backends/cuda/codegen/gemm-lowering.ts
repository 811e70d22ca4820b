/**
 * GEMM and convolution lowering through the CUTLASS GEMM emitters (cutlass/gemm.ts).
 *
 *  - gemm: A = input 0 viewed as [M, K] (M = product of the leading dims), B = the weight as [N, K] row-major
 *    (column-major B, what the instances take): a weight stored [K, N] (trans_b = 0) gets a transposed copy, made
 *    now when its value is known, else on the device at bind time (a prepare op).
 *  - MatMul between activations (batched-gemm.ts): a batched GEMM over the shared batch dims, B row-major as it is
 *    or column-major from the input of a Transpose of its last two axes; AitBatchedGemmArgs, batched instances.
 *  - conv2d (NHWC, OHWI weights), the fallback of conv-lowering.ts where the CUTLASS conv emitters refuse a node: a
 *    1×1 stride-1 unpadded conv is a GEMM on the activation itself; any other is im2col into the workspace, then a
 *    GEMM with the weight viewed as [K_out, R·S·C] (K padded to a multiple of 8 when needed: the 3-channel stem).
 *    A patchify conv (stride = kernel, no padding: a ViT patch embedding) whose S·C is a multiple of 8 takes the
 *    patchify copy instead (16-byte vectors, K = R·S·C unpadded; kernels/im2col.cuh).
 *  - Epilogue: the longest prefix of the node's steps an instance runs (bias, residual add on an sm90 instance, one
 *    activation) is fused; the rest runs as one elementwise kernel after the GEMM (from a workspace temporary when
 *    the rest reads operands, since the output may share the residual's buffer).
 *  - Alignment: on sm90, K or N not a multiple of 8 takes a 2.x instance (TMA needs 16-byte strides); K or N odd takes
 *    the 2.x sm75-style align1 configuration on both targets (cutlass/gemm.ts chooseSm80Gemm says why).
 *  - Instances: the heuristic of gemm.ts is evaluated at every batch 1..max; consecutive batches choosing the same
 *    instance form a range, and the launch function dispatches on the batch. Instances are deduplicated by their
 *    emitted text into src/gemm_<k>.cu (one translation unit each, so `make -j` builds them in parallel).
 */
import { createHash } from 'node:crypto';
import { Node, attrInt, attrInts } from '../../../ir/graph';
import { Dim, dimToString, isConcrete } from '../../../ir/symbolic';
import { TensorValue, makeTensor, numeric } from '../../../ir/tensor';
import { epilogueOf, isPatchifyConv } from '../../../ops/fused';
import {
  Activation,
  BatchedGemmLayout,
  EmittedInstance,
  GemmEpilogue,
  GemmProblem,
  chooseSm80Gemm,
  chooseSm90Gemm,
  emitSm80Gemm,
  emitSm90Gemm,
  streamKWorkspaceBytes,
  gemmAlignment,
  gemmDecisions,
  operandsStructOf,
} from '../cutlass/gemm';
import { analyzeBatchedMatMul, expansionCopy } from './batched-gemm';
import { MAX_COPY_RANK } from './tile-lowering';
import { CodegenContext, Unsupported } from './context';
import { BatchRange, batchRanges, dispatchByBatch } from './batch-ranges';
import { CppWriter, instanceDeclarations } from './cpp';
import { ElementwiseInput, activationFunctor, broadcastOf, elementwiseStatements } from './elementwise';
import type { KernelChoice } from './lower';
import { gemmCandidates } from '../profiling/candidates';
import { CandidateReport, batchTerm } from '../profiling/selection';

/** A GEMM instance's epilogue as the profiler's reference applies it: act(acc + bias + C). */
function gemmSteps(epilogue: GemmEpilogue): string[] {
  return [
    ...(epilogue.bias ? ['bias'] : []),
    ...(epilogue.residual ? ['residual_add'] : []),
    ...(epilogue.activation !== 'identity' ? [epilogue.activation] : []),
  ];
}

export type CudaArch = 'sm90' | 'sm80';

/** Bytes reserved at the start of the workspace for CUTLASS (tile-scheduler state; no split-K yet). */
export const CUTLASS_WORKSPACE_BYTES = 1 << 20;
const ALIGN = 256;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

const CUTLASS_ACTIVATIONS = new Set<Activation>(['relu', 'gelu', 'gelu_tanh', 'silu', 'sigmoid', 'tanh', 'hardswish']);

export interface GemmInstanceSource {
  /** Function name declared in src/ait_gemm.h. */
  symbol: string;
  file: string;
  instance: EmittedInstance;
  epilogue: GemmEpilogue;
}

/** A weight transform done at bind time on the device (graph-only models). */
export interface PrepareOp {
  id: string;
  name: string;
  kernel: string;
  body: string[];
  headers: string[];
}

/** The problem of one lowered GEMM: M as a product of dims, and for a batched GEMM its batch dims and B layout. */
interface GemmShape {
  m: Dim[];
  /** N and K; their largest values when they are run-time dims (runtimeNK). */
  n: number;
  k: number;
  /**
   * N and K as run-time dims (a batched MatMul over a sequence: Q·Kᵀ's N, P·V's K). Instances are chosen for both
   * alignments, 8 (run when both are multiples of 8 at run time) and 1 (any sizes), and the launch picks by the sizes.
   */
  runtimeNK?: { n: Dim; k: Dim };
  batched?: BatchedGemmLayout & { batch: Dim[] };
}

export interface LoweredGemm {
  kernel: KernelChoice;
  body: string[];
  headers: string[];
  workspaceBytes: number;
}

function transpose2d(value: TensorValue): TensorValue {
  const [rows, cols] = value.shape;
  const src = numeric(value);
  const out = makeTensor(value.dtype, [cols, rows]);
  const dst = out.data as Float32Array | Float64Array;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
  return out;
}

function padRows(value: TensorValue, rows: number, columns: number, padded: number): TensorValue {
  const src = numeric(value);
  const out = makeTensor(value.dtype, [rows, padded]);
  const dst = out.data as Float32Array | Float64Array;
  for (let r = 0; r < rows; r++) for (let k = 0; k < columns; k++) dst[r * padded + k] = src[r * columns + k];
  return out;
}

/** A conv lowered as GEMM, with kernel.config.path saying how: `gemm` (1×1), `patchify+gemm` or `im2col+gemm`. */
function withPath(lowered: LoweredGemm, path: 'gemm' | 'patchify+gemm' | 'im2col+gemm'): LoweredGemm {
  return { ...lowered, kernel: { ...lowered.kernel, config: { ...lowered.kernel.config, path } } };
}

export class GemmLowering {
  readonly instances: GemmInstanceSource[] = [];
  readonly prepareOps: PrepareOp[] = [];
  private readonly byText = new Map<string, GemmInstanceSource>();

  constructor(
    readonly ctx: CodegenContext,
    readonly arch: CudaArch,
  ) {}

  gemm(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const [a, b] = node.inputs;
    const aShape = ctx.shapeOf(a);
    const bShape = ctx.shapeOf(b);
    // B an activation (or a weight that is not 2-D): the batched path, batch 1 for a 2-D product
    if (bShape.length !== 2 || !ctx.isWeight(b)) return this.batchedMatMul(node);
    const transB = node.op === 'MatMul' ? 0 : attrInt(node, 'trans_b', 0);
    const [n, k] = (transB ? bShape : [bShape[1], bShape[0]]) as number[];
    const bNk = transB ? b : this.transposedWeight(node, b);
    const m = aShape.slice(0, -1);
    return this.emitGemm(node, { m, n, k }, ctx.pointer(a), bNk, () => [], 0, `GEMM M=${m.join('·')} N=${n} K=${k}`);
  }

  conv2d(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    if (attrInt(node, 'group', 1) !== 1) throw new Unsupported('grouped convolution has no im2col + GEMM lowering');
    const [batch, h, wIn, c] = ctx.shapeOf(x);
    const [kOut, r, s, cw] = ctx.shapeOf(w) as number[];
    const [, p, q] = ctx.shapeOf(node.outputs[0]);
    if (!isConcrete(c)) throw new Unsupported('convolution with symbolic channel dims');
    // spatial sizes may be the run's (a lifted 1-D conv's length): each a C++ expression of it
    const [hx, wx, px, qx] = [h, wIn, p, q].map((d) => ctx.dim(d, node));
    if (cw !== c) throw new Unsupported(`weight has ${cw} input channels, the activation ${String(c)}`);
    const strides = attrInts(node, 'strides', [1, 1]);
    const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
    const dilations = attrInts(node, 'dilations', [1, 1]);
    const m: Dim[] = [batch, p, q];
    const direct = r === 1 && s === 1 && strides.every((v) => v === 1) && pads.every((v) => v === 0);
    if (direct)
      return withPath(
        this.emitGemm(node, { m, n: kOut, k: c as number }, ctx.pointer(x), w, () => [], 0, `1x1 conv as GEMM`),
        'gemm',
      );
    // columns in the workspace, [N·P·Q, K] ordered (r, s, c) like the OHWI weight: a patchify copy with K = R·S·C,
    // else im2col with K padded to a multiple of 8 (weight rows padded to match)
    const taps = r * s * (c as number);
    const patchify = isPatchifyConv(node, [r, s]) && (s * (c as number)) % 8 === 0;
    const k = patchify ? taps : Math.ceil(taps / 8) * 8;
    const weight = k === taps ? w : this.paddedWeight(node, w, kOut, taps, k);
    const copy = patchify
      ? [
          `ait::kernels::PatchifyArgs<__half> patchify{${ctx.pointer(x)}, columns, ${ctx.dim(batch, node)}, ${hx}, ${wx}, ${c}, ${px}, ${qx}, ${r}, ${s}};`,
          'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_patchify_nhwc(patchify, c.stream));',
        ]
      : [
          `ait::kernels::Im2colArgs<__half> im2col{${ctx.pointer(x)}, columns, ${ctx.dim(batch, node)}, ${hx}, ${wx}, ${c}, ${px}, ${qx}, ${r}, ${s},`,
          `                                        ${strides[0]}, ${strides[1]}, ${pads[0]}, ${pads[1]}, ${dilations[0]}, ${dilations[1]}, ${k}};`,
          'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_im2col_nhwc(im2col, c.stream));',
        ];
    const lowered = this.emitGemm(
      node,
      { m, n: kOut, k },
      'columns',
      weight,
      (afterCutlass) => [`__half* columns = reinterpret_cast<__half*>(static_cast<uint8_t*>(c.workspace) + ${afterCutlass});`, ...copy],
      alignUp(ctx.maxOf(batch) * ctx.maxOf(p) * ctx.maxOf(q) * k * 2),
      patchify
        ? `${r}x${s}/${r}x${s} patchify conv as patchify copy + GEMM, K=${taps}`
        : `${r}x${s} conv (stride ${strides.join('x')}) as im2col + GEMM, K=${taps}${k !== taps ? ` padded to ${k}` : ''}`,
      ['im2col.cuh'],
    );
    return withPath(lowered, patchify ? 'patchify+gemm' : 'im2col+gemm');
  }

  /**
   * conv3d (NDHWC, ODHWI weight [K, T, R, S, C], group 1) as a GEMM: M = N·O·P·Q output positions, N = K, K = T·R·S·C.
   * A 1×1×1 stride-1 unpadded conv is a GEMM on the activation itself; any other is the 3-D im2col into the
   * workspace (columns ordered (t, r, s, c) like the weight, K padded to a multiple of 8 with weight rows padded to
   * match, e.g. r3d_18's 3×7×7×3 = 441 stem), then the GEMM with the whole epilogue as for conv2d.
   */
  conv3d(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    if (attrInt(node, 'group', 1) !== 1) throw new Unsupported('grouped 3-D convolution has no im2col + GEMM lowering');
    const [batch, d, h, wIn, c] = ctx.shapeOf(x);
    const [kOut, t, r, s, cw] = ctx.shapeOf(w) as number[];
    const [, o, p, q] = ctx.shapeOf(node.outputs[0]);
    if (!isConcrete(c)) throw new Unsupported('convolution with symbolic channel dims');
    if (cw !== c) throw new Unsupported(`weight has ${cw} input channels, the activation ${String(c)}`);
    const [dx, hx, wx, ox, px, qx] = [d, h, wIn, o, p, q].map((dim) => ctx.dim(dim, node));
    const strides = attrInts(node, 'strides', [1, 1, 1]);
    const pads = attrInts(node, 'pads', [0, 0, 0, 0, 0, 0]);
    const dilations = attrInts(node, 'dilations', [1, 1, 1]);
    const m: Dim[] = [batch, o, p, q];
    if (t * r * s === 1 && strides.every((v) => v === 1) && pads.every((v) => v === 0))
      return withPath(
        this.emitGemm(node, { m, n: kOut, k: c as number }, ctx.pointer(x), w, () => [], 0, '1x1x1 conv as GEMM'),
        'gemm',
      );
    const taps = t * r * s * (c as number);
    const k = Math.ceil(taps / 8) * 8;
    const weight = k === taps ? w : this.paddedWeight(node, w, kOut, taps, k);
    // Im2colArgs: the 2-D fields (H/W) positionally, then the depth fields
    const copy = [
      `ait::kernels::Im2colArgs<__half> im2col{${ctx.pointer(x)}, columns, ${ctx.dim(batch, node)}, ${hx}, ${wx}, ${c}, ${px}, ${qx}, ${r}, ${s},`,
      `                                        ${strides[1]}, ${strides[2]}, ${pads[1]}, ${pads[2]}, ${dilations[1]}, ${dilations[2]}, ${k},`,
      `                                        ${dx}, ${ox}, ${t}, ${strides[0]}, ${pads[0]}, ${dilations[0]}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_im2col_nhwc(im2col, c.stream));',
    ];
    const lowered = this.emitGemm(
      node,
      { m, n: kOut, k },
      'columns',
      weight,
      (afterCutlass) => [`__half* columns = reinterpret_cast<__half*>(static_cast<uint8_t*>(c.workspace) + ${afterCutlass});`, ...copy],
      alignUp(ctx.maxOf(batch) * ctx.maxOf(o) * ctx.maxOf(p) * ctx.maxOf(q) * k * 2),
      `${t}x${r}x${s} conv (stride ${strides.join('x')}) as 3-D im2col + GEMM, K=${taps}${k !== taps ? ` padded to ${k}` : ''}`,
      ['im2col.cuh'],
    );
    return withPath(lowered, 'im2col+gemm');
  }

  /**
   * A GEMM that writes a workspace buffer of `bytes` (at max batch) instead of the node's output, with no epilogue:
   * `after` (given the buffer's pointer) reads it and applies the node's epilogue itself. ConvTranspose's columns
   * (conv-transpose-lowering.ts). Instances, batch ranges and the measured choice are the ordinary GEMM's.
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
    return this.emitGemm(node, shape, aPointer, bWeight, () => [], 0, what, headers, { bytes, after });
  }

  /**
   * MatMul between activations, or a Gemm whose B is an activation: one batched GEMM (batched-gemm.ts says which
   * broadcasts and layouts). An operand broadcast over the other's batch dims is first expanded into the workspace,
   * after CUTLASS's region (A, then B), by a strided copy.
   */
  private batchedMatMul(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const mm = analyzeBatchedMatMul(node, (t) => ctx.shapeOf(t), ctx.absorbedTransposes);
    const runtimeNK = isConcrete(mm.n) && isConcrete(mm.k) ? undefined : { n: mm.n, k: mm.k };
    const what =
      `batched GEMM L=${mm.batch.length ? mm.batch.join('·') : 1} M=${mm.m.join('·')} N=${dimToString(mm.n)} K=${dimToString(mm.k)} ` +
      `(${mm.description}${runtimeNK ? '; N or K a run-time size: an alignment-8 instance when both are multiples of 8, else an alignment-1 one' : ''})`;
    const copies: { tensor: string; name: string; shape: Dim[]; strides: (Dim[] | undefined)[]; offset: number }[] = [];
    let extra = 0;
    for (const [which, tensor] of [
      ['a', mm.a],
      ['b', mm.b],
    ] as const) {
      const expansion = mm.expand[which];
      if (!expansion) continue;
      const { shape, strides } = expansionCopy(mm.batch, expansion);
      if (shape.length > MAX_COPY_RANK)
        throw new Unsupported(
          `MatMul expanding ${which.toUpperCase()} over ${mm.batch.length} batch dims: the copy kernel takes rank ${MAX_COPY_RANK}`,
        );
      copies.push({ tensor, name: `expanded_${which}`, shape, strides, offset: extra });
      extra += alignUp(shape.reduce<number>((p, d) => p * ctx.maxOf(d), 1) * 2);
    }
    const expanded = (which: 'a' | 'b') => copies.some((c) => c.name === `expanded_${which}`);
    const before = (afterCutlass: number) =>
      copies.flatMap(({ tensor, name, shape, strides, offset }) => [
        `__half* ${name} = reinterpret_cast<__half*>(static_cast<uint8_t*>(c.workspace) + ${afterCutlass + offset});`,
        '{',
        `  ait::kernels::StridedCopyArgs<__half> args{${ctx.pointer(tensor)}, ${name}, ${shape.length},`,
        `                                           {${shape.map((d) => ctx.dim(d, node)).join(', ')}},`,
        `                                           {${strides.map((dims) => (dims ? ctx.product(dims, node) : '0')).join(', ')}}, 0};`,
        '  AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_strided_copy(args, c.stream));',
        '}',
      ]);
    return this.emitGemm(
      node,
      {
        m: mm.m,
        n: ctx.maxOf(mm.n),
        k: ctx.maxOf(mm.k),
        ...(runtimeNK ? { runtimeNK } : {}),
        batched: { layoutB: mm.layoutB, batch: mm.batch },
      },
      expanded('a') ? 'expanded_a' : ctx.pointer(mm.a),
      expanded('b') ? { pointer: 'expanded_b' } : mm.b,
      before,
      extra,
      what,
      copies.length ? ['tensor_ops.cuh'] : [],
    );
  }

  private emitGemm(
    node: Node,
    shape: GemmShape,
    aPointer: string,
    /** B's tensor, or a C++ pointer expression (an operand expanded into the workspace). */
    bWeight: string | { pointer: string },
    /** Statements before the GEMM, given where the workspace after CUTLASS's region starts (im2col columns). */
    before: (afterCutlass: number) => string[],
    extraWorkspace: number,
    what: string,
    headers: string[] = [],
    /** D into a workspace buffer, no epilogue, then `after` (gemmIntoWorkspace). */
    into?: { bytes: number; after: (d: string) => string[] },
  ): LoweredGemm {
    const ctx = this.ctx;
    const out = node.outputs[0];
    if (ctx.typeOf(out) !== 'half') throw new Unsupported('GEMM output is not a float tensor');
    const steps = into ? [] : epilogueOf(node);
    const operandInputs = node.inputs.slice(2);
    // fused prefix
    const epilogue: GemmEpilogue = { bias: false, residual: false, activation: 'identity' };
    let i = 0;
    let operand = 0;
    let biasTensor: string | undefined;
    let residualTensor: string | undefined;
    if (steps[i] === 'bias') {
      biasTensor = operandInputs[operand++];
      const biasShape = ctx.shapeOf(biasTensor);
      if (biasShape.length === 1 && biasShape[0] === shape.n) {
        epilogue.bias = true;
        i++;
      } else operand--;
    }
    // (N or K decided at run time: the alignment-1 instance is a 2.x one, with no residual epilogue)
    if (steps[i] === 'residual_add' && !shape.runtimeNK && this.runsSm90Instance(shape)) {
      residualTensor = operandInputs[operand];
      const resShape = ctx.shapeOf(residualTensor);
      const outShape = ctx.shapeOf(out);
      if (resShape.length === outShape.length && broadcastOf(ctx, node, resShape, outShape).broadcast === 'kFull') {
        epilogue.residual = true;
        operand++;
        i++;
      }
    }
    if (i < steps.length && CUTLASS_ACTIVATIONS.has(steps[i] as Activation)) epilogue.activation = steps[i++] as Activation;
    const rest = steps.slice(i);
    const restOperands = operandInputs.slice(operand);

    const mExpr = ctx.product(shape.m, node);
    const batchDims = shape.batched?.batch ?? [];
    const lExpr = ctx.product(batchDims, node);
    // Instances are chosen per range of the batch; any other run-time dim in M (a model input's seq: M = batch·seq)
    // is taken at its max by ctx.at. Every instance is correct for any M (M is a launch argument, workspaces are
    // sized at the max): only the choice assumes the longest seq.
    const productAt = (dims: readonly Dim[], batch: number) => dims.reduce<number>((acc, d) => acc * ctx.at(d, batch), 1);
    const choose = (nk: { n: number; k: number; alignment?: number }) =>
      this.chooseInstances(
        node,
        nk,
        (batch) => productAt(shape.m, batch),
        (batch) => productAt(batchDims, batch),
        epilogue,
        shape.batched,
      );
    const roundUp8 = (v: number) => Math.ceil(v / 8) * 8;
    const chosen = choose(shape.runtimeNK ? { n: roundUp8(shape.n), k: roundUp8(shape.k), alignment: 8 } : shape);
    const unaligned = shape.runtimeNK ? choose({ n: shape.n, k: shape.k, alignment: 1 }) : undefined;
    const { ranges, reasons, candidates } = chosen;
    const cutlassBytes = Math.max(chosen.cutlassBytes, unaligned?.cutlassBytes ?? 0);
    const sizeExpr = (d: Dim | undefined, max: number) =>
      d === undefined || isConcrete(d) ? String(max) : `static_cast<int>(${ctx.dim(d, node)})`;
    const nExpr = sizeExpr(shape.runtimeNK?.n, shape.n);
    const kExpr = sizeExpr(shape.runtimeNK?.k, shape.k);
    const restReadsOperands = restOperands.length > 0;
    const maxRows = [...batchDims, ...shape.m].reduce<number>((acc, d) => acc * ctx.maxOf(d), 1);
    const tempBytes = restReadsOperands ? alignUp(maxRows * shape.n * 2) : 0;
    const tempOffset = cutlassBytes + extraWorkspace;
    const body: string[] = before(cutlassBytes);
    const dPointer =
      restReadsOperands || into ? `reinterpret_cast<__half*>(static_cast<uint8_t*>(c.workspace) + ${tempOffset})` : ctx.pointer(out, true);
    // in argument order: the weights table lists weights in the order pointers are first taken
    const bPointer = typeof bWeight === 'string' ? ctx.pointer(bWeight) : bWeight.pointer;
    const biasPointer = biasTensor && epilogue.bias ? ctx.pointer(biasTensor) : 'nullptr';
    const residualPointer = residualTensor && epilogue.residual ? ctx.pointer(residualTensor) : 'nullptr';
    if (shape.batched)
      body.push(
        `const AitBatchedGemmArgs gemm{static_cast<int>(${lExpr}), static_cast<int>(${mExpr}), ${nExpr}, ${kExpr}, ${aPointer},`,
        `                              ${bPointer}, ${biasPointer}, ${residualPointer}, ${dPointer}};`,
      );
    else
      body.push(
        `const AitGemmArgs gemm{static_cast<int>(${mExpr}), ${shape.n}, ${shape.k}, ${aPointer}, ${bPointer},`,
        `                       ${biasPointer}, ${residualPointer}, ${dPointer}};`,
      );
    const call = (symbol: string) => `AIT_RETURN_IF_FAILED(${symbol}(gemm, c.workspace, ${cutlassBytes}, c.stream));`;
    if (unaligned)
      body.push(
        'if (gemm.n % 8 == 0 && gemm.k % 8 == 0) {  // rows of 16 bytes: the alignment-8 instances (TMA on sm90)',
        ...dispatchByBatch(ranges, (source) => call(source.symbol)).map((l) => `  ${l}`),
        '} else {',
        ...dispatchByBatch(unaligned.ranges, (source) => call(source.symbol)).map((l) => `  ${l}`),
        '}',
      );
    else body.push(...dispatchByBatch(ranges, (source) => call(source.symbol)));
    if (into) body.push(...into.after(dPointer));
    if (rest.length > 0) {
      // the unfused remainder of the epilogue as one elementwise kernel
      const chain: string[] = ['ew::Input<0>{}'];
      const inputs: ElementwiseInput[] = [{ tensor: out, broadcast: 'kFull', inner: '1' }];
      const pointers: string[] = [restReadsOperands ? dPointer : ctx.pointer(out)];
      let next = 0;
      const outShape = ctx.shapeOf(out);
      for (const step of rest) {
        const name = step.split(':')[0];
        if (name === 'bias' || name === 'scale' || name === 'residual_add') {
          const tensor = restOperands[next++];
          inputs.push({ tensor, ...broadcastOf(ctx, node, ctx.shapeOf(tensor), outShape) });
          pointers.push(ctx.pointer(tensor));
          chain.push(`ew::${name === 'scale' ? 'MulInput' : 'AddInput'}<${inputs.length - 1}>{}`);
        } else chain.push(activationFunctor(step));
      }
      body.push(
        '{',
        ...elementwiseStatements(
          inputs,
          pointers,
          ctx.pointer(out, true),
          `${shape.batched ? `${lExpr} * ` : ''}${mExpr} * ${nExpr}`,
          chain,
        ).map((l) => `  ${l}`),
        '}',
      );
      headers = [...headers, 'elementwise.cuh'];
    }
    const first = ranges[ranges.length - 1].source.instance;
    const kernel: KernelChoice = {
      library: 'cutlass',
      name: first.name,
      config: {
        arch: this.arch,
        ...(shape.batched ? { batch: lExpr, layoutB: shape.batched.layoutB } : {}),
        epilogue: { ...epilogue },
        unfusedEpilogue: rest,
        instances: [
          ...ranges.map((r) => ({
            batches: [r.firstBatch, r.lastBatch],
            name: r.source.instance.name,
            file: r.source.file,
            ...(unaligned ? { when: 'N and K multiples of 8' } : {}),
          })),
          ...(unaligned?.ranges ?? []).map((r) => ({
            batches: [r.firstBatch, r.lastBatch],
            name: r.source.instance.name,
            file: r.source.file,
            when: 'otherwise',
          })),
        ],
      },
      reason: `${what}; ${ranges.map((r) => `batch ${r.firstBatch}..${r.lastBatch}: ${reasons.get(r.firstBatch) ?? r.source.instance.reason}`).join('; ')}${
        unaligned
          ? `; N or K not multiples of 8: ${unaligned.ranges.map((r) => `batch ${r.firstBatch}..${r.lastBatch}: ${unaligned.reasons.get(r.firstBatch) ?? r.source.instance.reason}`).join('; ')}`
          : ''
      }${rest.length ? `; epilogue steps ${rest.join(', ')} run as an elementwise kernel` : ''}`,
      ...(candidates ? { candidates } : {}),
    };
    return { kernel, body, headers, workspaceBytes: cutlassBytes + extraWorkspace + tempBytes + (into ? alignUp(into.bytes) : 0) };
  }

  /**
   * Instances by batch range: measured (profiling/selection.ts) when the compile has measurements of this GEMM's
   * signature, else the heuristic where its decisions can change (batch-ranges.ts), equal choices merged.
   */
  private chooseInstances(
    node: Node,
    /** alignment: the most the run-time N and K guarantee (GemmProblem.alignment) */
    nk: { n: number; k: number; alignment?: number },
    mAt: (batch: number) => number,
    batchCountAt: (batch: number) => number,
    epilogue: GemmEpilogue,
    batched: BatchedGemmLayout | undefined,
  ): {
    ranges: BatchRange<GemmInstanceSource>[];
    cutlassBytes: number;
    reasons: Map<number, string>;
    candidates?: CandidateReport[];
  } {
    let cutlassBytes = CUTLASS_WORKSPACE_BYTES;
    // why, by batch: a deduplicated instance keeps the reason (with the problem sizes) of the batch that first chose it
    const reasons = new Map<number, string>();
    const problemAt = (batch: number): GemmProblem => ({
      m: mAt(batch),
      n: nk.n,
      k: nk.k,
      ...(batched ? { batch: batchCountAt(batch) } : {}),
      ...(nk.alignment !== undefined ? { alignment: nk.alignment } : {}),
    });
    const layout = batched ? { layoutB: batched.layoutB } : undefined;
    const sm90 = this.runsSm90Instance(nk);
    const maxProblem = problemAt(this.ctx.batchSymbol ? this.ctx.maxBatch : 1);
    const reserveStreamK = (config: { tile: [number, number, number] }) => {
      cutlassBytes = Math.max(cutlassBytes, alignUp(streamKWorkspaceBytes(maxProblem.m, maxProblem.n, maxProblem.batch ?? 1, config.tile)));
    };
    const heuristicAt = (batch: number): { source: GemmInstanceSource; reason: string } => {
      const problem = problemAt(batch);
      const instance = sm90
        ? (() => {
            const c = chooseSm90Gemm(problem);
            if (c.config.scheduler === 'streamk') reserveStreamK(c.config);
            return emitSm90Gemm(c.config, epilogue, c.reason, layout);
          })()
        : (() => {
            const c = chooseSm80Gemm(problem);
            const reason =
              this.arch === 'sm90' ? `${c.reason}; a 2.x instance: K=${problem.k}, N=${problem.n} not multiples of 8 (TMA)` : c.reason;
            return emitSm80Gemm(c.config, epilogue, reason, layout);
          })();
      return { source: this.register(instance, epilogue), reason: instance.reason };
    };
    const profiling = this.ctx.profiling;
    if (profiling?.active) {
      const batches = this.ctx.batchSymbol ? profiling.batches : [1];
      const problems = batches.map(problemAt);
      const candidates = gemmCandidates(this.arch, sm90, problems, epilogue, layout);
      const signature = [
        batched ? 'batched_gemm' : 'gemm',
        this.arch,
        sm90 ? 'cutlass3x' : 'cutlass2x',
        ...(batched ? [batchTerm('l', (b) => problemAt(b).batch ?? 1, batches), `b=${batched.layoutB}`] : []),
        batchTerm('m', (b) => problemAt(b).m, batches),
        `n=${nk.n}`,
        `k=${nk.k}`,
        ...(nk.alignment !== undefined ? [`align=${nk.alignment}`] : []),
        `epilogue=${gemmSteps(epilogue).join('+') || 'none'}`,
      ].join(' ');
      const streamK = candidates.filter((c) => (c.config as { scheduler?: string }).scheduler === 'streamk');
      const largest = problems[problems.length - 1];
      profiling.record(
        {
          signature,
          kind: batched ? 'batched_gemm' : 'gemm',
          batches,
          problems,
          workspaceBytes: Math.max(
            CUTLASS_WORKSPACE_BYTES,
            ...streamK.map((c) => alignUp(streamKWorkspaceBytes(largest.m, largest.n, largest.batch ?? 1, c.config.tile as never))),
          ),
          steps: gemmSteps(epilogue),
          layoutB: batched?.layoutB,
          candidates,
        },
        node.id,
      );
      const measured = profiling.choose(
        signature,
        candidates,
        (instance) => {
          const config = candidates.find((c) => c.instance === instance)?.config as { scheduler?: string; tile: [number, number, number] };
          if (config?.scheduler === 'streamk') reserveStreamK(config);
          return this.register(instance, epilogue);
        },
        heuristicAt,
      );
      if (measured) return { ranges: measured.ranges, cutlassBytes, reasons: measured.reasons, candidates: measured.candidates };
    }
    const ranges = batchRanges(this.ctx.batchSymbol ? this.ctx.maxBatch : 1, gemmDecisions(problemAt), (batch) => {
      const { source, reason } = heuristicAt(batch);
      reasons.set(batch, reason);
      return source;
    });
    return { ranges, cutlassBytes, reasons };
  }

  /**
   * Whether the GEMM runs a CUTLASS 3.x sm90 instance. TMA needs 16-byte row strides (the sm90 collective builders
   * static_assert it), so on sm90 a GEMM whose K or N is not a multiple of 8 fp16 runs a 2.x instance (as on sm80),
   * and its residual add runs in the unfused rest of the epilogue (the 2.x emitter has no residual epilogue).
   */
  private runsSm90Instance(nk: { n: number; k: number; alignment?: number }): boolean {
    return this.arch === 'sm90' && gemmAlignment({ m: 1, ...nk }) === 8;
  }

  private register(instance: EmittedInstance, epilogue: GemmEpilogue): GemmInstanceSource {
    // the reason mentions problem sizes: deduplicate on the code without its comment lines
    const key = instanceCode(instance);
    const known = this.byText.get(key);
    if (known) return known;
    const index = this.instances.length;
    const source: GemmInstanceSource = { symbol: instanceSymbol('gemm', instance), file: `src/gemm_${index}.cu`, instance, epilogue };
    this.instances.push(source);
    this.byText.set(key, source);
    return source;
  }

  /** [K, N] weight → [N, K] (derived weight). */
  private transposedWeight(node: Node, b: string): string {
    const ctx = this.ctx;
    const name = `${b}.nk`;
    if (ctx.hasWeight(name)) return name;
    const [k, n] = ctx.shapeOf(b) as number[];
    const value = ctx.graph.lookupTensor(b)?.value;
    if (value) {
      ctx.weight(name, 'bound', transpose2d(value), [n, k], 'half');
      return name;
    }
    const dst = ctx.weight(name, 'prepared', undefined, [n, k], 'half');
    this.prepareOps.push({
      id: node.id,
      name: `transpose ${b} [${k},${n}] -> [${n},${k}] for ${node.name}`,
      kernel: 'ait_transpose_f16',
      headers: ['tensor_ops.cuh'],
      body: [
        `ait::kernels::StridedCopyArgs<__half> args{${ctx.pointer(b)}, static_cast<__half*>(c.weights[${dst}]), 2, {${n}, ${k}}, {1, ${n}}, 0};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_strided_copy(args, c.stream));',
      ],
    });
    return name;
  }

  /** [K_out, R·S·C] weight → [K_out, K_padded] with zero columns (derived weight). */
  private paddedWeight(node: Node, w: string, rows: number, columns: number, padded: number): string {
    const ctx = this.ctx;
    const name = `${w}.kpad${padded}`;
    if (ctx.hasWeight(name)) return name;
    const value = ctx.graph.lookupTensor(w)?.value;
    if (value) {
      ctx.weight(name, 'bound', padRows(value, rows, columns, padded), [rows, padded], 'half');
      return name;
    }
    const dst = ctx.weight(name, 'prepared', undefined, [rows, padded], 'half');
    this.prepareOps.push({
      id: node.id,
      name: `pad ${w} rows ${columns} -> ${padded} for ${node.name}`,
      kernel: 'ait_pad_rows_f16',
      headers: ['im2col.cuh'],
      body: [
        `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_pad_rows(${ctx.pointer(w)}, static_cast<__half*>(c.weights[${dst}]), ${rows}, ${columns}, ${padded}, c.stream));`,
      ],
    });
    return name;
  }
}

/** An instance's C++ without its comment lines (which carry the reason and problem sizes of the op that chose it). */
export function instanceCode(instance: EmittedInstance): string {
  return instance.code
    .split('\n')
    .filter((l) => !l.startsWith('//'))
    .join('\n');
}

/**
 * The entry point of an instance: named after a hash of its code, so the same instance gets the same symbol (and
 * the same translation unit text) in every build and in the profiler of any model.
 */
export function instanceSymbol(kind: 'gemm' | 'conv', instance: EmittedInstance): string {
  return `ait_${kind}_${createHash('sha256').update(instanceCode(instance)).digest('hex').slice(0, 12)}`;
}

/** src/ait_gemm.h: CUTLASS-free declarations of the instance entry points (model.cu includes only this). */
export function gemmHeader(instances: readonly GemmInstanceSource[]): string {
  const w = new CppWriter();
  w.comment('Generated by AIT: entry points of the CUTLASS GEMM instances (src/gemm_<k>.cu), without CUTLASS headers.');
  // cuda_fp16.h: model.cu casts the operands to __half*, and a model of GEMMs alone includes nothing else that declares it
  w.line('#pragma once').line().include('cuda_runtime.h', true).include('cuda_fp16.h', true).include('stddef.h', true).line();
  w.comment('D[m, n] = epilogue(A[m, k] · B[n, k]ᵀ): fp16 row-major A, D, residual; B an [n, k] row-major weight.');
  w.block(
    'struct AitGemmArgs',
    () => {
      w.line('int m, n, k;');
      w.line('const void* a;');
      w.line('const void* b;');
      w.line('const void* bias;      // [n] or nullptr');
      w.line('const void* residual;  // [m, n] or nullptr');
      w.line('void* d;');
    },
    ';',
  );
  w.line();
  if (instances.some((i) => i.instance.batched)) {
    w.comment('batch × (D[m, n] = epilogue(A[m, k] · B)): every operand packed batch-major; B [batch, n, k] or [batch, k, n]');
    w.comment("row-major as the instance's layout says (column-major or row-major B).");
    w.block(
      'struct AitBatchedGemmArgs',
      () => {
        w.line('int batch, m, n, k;');
        w.line('const void* a;');
        w.line('const void* b;');
        w.line('const void* bias;      // [n] or nullptr');
        w.line('const void* residual;  // [batch, m, n] or nullptr');
        w.line('void* d;');
      },
      ';',
    );
    w.line();
  }
  instanceDeclarations(w, instances, (i) => (i.instance.batched ? 'AitBatchedGemmArgs' : 'AitGemmArgs'));
  return w.toString();
}

/** src/gemm_<k>.cu: one CUTLASS instance in its own namespace, behind a plain entry point. */
export function gemmInstanceSource(source: GemmInstanceSource): string {
  const w = new CppWriter();
  // No reason or problem sizes here (they are in model.cu and graph.json): the text depends only on the instance,
  // so a candidate built for profiling and the same instance in a model build are one object in a compile cache.
  w.comment(`Generated by AIT: CUTLASS instance ${source.instance.name}`);
  for (const include of source.instance.includes) w.include(include);
  w.include('ait_gemm.h').line();
  const ns = `${source.symbol}_detail`;
  w.block(`namespace ${ns}`, () => {
    w.lines_(operandsStructOf(source.instance));
    w.line();
    w.lines_(instanceCode(source.instance));
  });
  w.line();
  const batched = source.instance.batched;
  const argsType = batched ? 'AitBatchedGemmArgs' : 'AitGemmArgs';
  w.block(`const char* ${source.symbol}(const ${argsType}& args, void* workspace, size_t workspace_bytes, cudaStream_t stream)`, () => {
    w.line(`using H = cutlass::half_t;`);
    if (batched)
      w.line(
        `const ${ns}::AitBatchedGemmOperands operands{args.batch, args.m, args.n, args.k, static_cast<const H*>(args.a), static_cast<const H*>(args.b),`,
      );
    else
      w.line(`const ${ns}::AitGemmOperands operands{args.m, args.n, args.k, static_cast<const H*>(args.a), static_cast<const H*>(args.b),`);
    w.line(
      `                                      static_cast<const H*>(args.bias), static_cast<const H*>(args.residual), static_cast<H*>(args.d)};`,
    );
    w.line(`return ${ns}::${source.instance.name}::run(operands, workspace, workspace_bytes, stream);`);
  });
  return w.toString();
}
