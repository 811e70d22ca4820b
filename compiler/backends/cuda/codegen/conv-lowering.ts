/**
 * conv2d lowering through the CUTLASS implicit-GEMM convolution emitters (cutlass/conv.ts): NHWC activations, OHWI
 * (= KRSC) weights, the whole fused epilogue (bias, scale, residual add, activations) run by the instance.
 *
 *  - Instances: chooseConv's heuristic depends on N·P·Q, so it is evaluated at every batch 1..max; consecutive batches
 *    choosing the same instance form a range and the launch function dispatches on the batch (as the GEMM lowering).
 *    Instances are deduplicated by their code into src/conv_<k>.cu, declared CUTLASS-free in src/ait_conv.h.
 *  - Grouped convolution (1 < group < C): CUTLASS 2.x group fprop instances on both targets (cutlass/conv.ts
 *    chooseGroupConv), the weight [K, R, S, C/group] as the layout pass prepares it. The group kernel fuses
 *    act(acc + bias) or act(acc + residual); the rest of the epilogue runs as one elementwise kernel after it (from a
 *    workspace temporary when the rest reads operands, since the output may share the residual's buffer).
 *  - Depthwise convolution (group == C, any channel multiplier K/C): AIT's direct kernel (kernels/depthwise_conv.cuh)
 *    with the whole epilogue fused as an ew functor chain; the OHWI weight [K, R, S, 1] is prepared once as [R, S, K]
 *    (channels innermost, 16-byte loads): at compile time when its value is known, else by a bind-time prepare op.
 *  - Patchify convolution (ops/fused.ts isPatchifyConv: stride = kernel, no padding; a ViT patch embedding): always
 *    GemmLowering.conv2d, a patchify copy + one GEMM with K = R·S·C (kernel.config.path `patchify+gemm`; im2col when
 *    S·C is not a multiple of 8); CUTLASS's
 *    implicit GEMM would read the 3-channel input with 2-byte accesses or a zero-padded K.
 *  - Fallback: where the emitters refuse an ungrouped node with a diagnostic (an epilogue step without a CUTLASS
 *    functor, an epilogue order the sm80 kernels cannot run such as per-channel scale) or an operand does not
 *    have the shape the instance reads, the node goes through GemmLowering.conv2d (im2col + GEMM, or a GEMM for a 1×1
 *    stride-1 conv) and graph.json's kernel.config says `path` and `convRefused` (why). A grouped conv the group
 *    kernels refuse (odd C/group, K/group neither a multiple nor a divisor of a tile N: RegNet's 24) runs on AIT's
 *    grouped kernel (kernels/grouped_conv.cuh: an implicit GEMM per group on the tensor cores, the whole epilogue
 *    fused; config `path: grouped-direct`, `blockChannels`, `cutlassRefused`: why).
 */
import { CompileError } from '../../../diagnostics';
import { Node, attrInt, attrInts } from '../../../ir/graph';
import { Dim, isConcrete } from '../../../ir/symbolic';
import { TensorValue, makeTensor, numeric } from '../../../ir/tensor';
import { EPILOGUE_OPERAND_STEPS, epilogueOf, isPatchifyConv } from '../../../ops/fused';
import {
  ConvEpilogueStep,
  ConvProblem,
  chooseConv,
  convDecisions,
  convEpilogueSteps,
  convOperandsStruct,
  emitConv,
  groupConvEpilogue,
  isDepthwise,
} from '../cutlass/conv';
import { EmittedInstance } from '../cutlass/gemm';
import { CodegenContext, Unsupported } from './context';
import { batchRanges, dispatchByBatch } from './batch-ranges';
import { convCandidates } from '../profiling/candidates';
import { MeasuredChoice, batchTerm } from '../profiling/selection';
import { CppWriter, instanceDeclarations } from './cpp';
import { CUTLASS_WORKSPACE_BYTES, CudaArch, GemmLowering, LoweredGemm, instanceCode, instanceSymbol } from './gemm-lowering';
import { ElementwiseInput, activationFunctor, broadcastOf, elementwiseStatements } from './elementwise';
import type { KernelChoice } from './lower';

export interface ConvInstanceSource {
  /** Function name declared in src/ait_conv.h. */
  symbol: string;
  file: string;
  instance: EmittedInstance;
  steps: ConvEpilogueStep[];
}

/** Why the conv emitters cannot take a node (the message of their diagnostic, or an operand-shape reason). */
class Refused extends Error {}

const ALIGN = 256;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** OHWI [K, R, S, 1] (= [K, R·S]) → [R·S, K]: the depthwise kernel's channels-innermost weight. */
function channelsLastValue(value: TensorValue, k: number, taps: number): TensorValue {
  const src = numeric(value);
  const out = makeTensor(value.dtype, [taps, k]);
  const dst = out.data as Float32Array | Float64Array;
  for (let channel = 0; channel < k; channel++) for (let tap = 0; tap < taps; tap++) dst[tap * k + channel] = src[channel * taps + tap];
  return out;
}

/**
 * A conv's sizes: channels and window concrete; the batch and the spatial sizes Dims (a 1-D conv lifted to
 * [N, 1, L, C] whose length L is the run's dim), taken at a batch by problemAt and emitted as C++ by ctx.dim.
 */
type ConvShape = Omit<ConvProblem, 'n' | 'h' | 'w' | 'p' | 'q'> & { batch: Dim; h: Dim; w: Dim; p: Dim; q: Dim };

export class ConvLowering {
  readonly instances: ConvInstanceSource[] = [];
  private readonly byText = new Map<string, ConvInstanceSource>();

  constructor(
    readonly ctx: CodegenContext,
    readonly arch: CudaArch,
    readonly gemm: GemmLowering,
  ) {}

  conv2d(node: Node): LoweredGemm {
    const shape = this.shapeOf(node);
    if (isDepthwise(shape)) return this.depthwise(node, shape);
    if (isPatchifyConv(node, [shape.r, shape.s])) return this.gemm.conv2d(node);
    try {
      return this.implicitGemm(node);
    } catch (e) {
      const refusal =
        e instanceof CompileError ? e.diagnostics.map((d) => d.message).join('; ') : e instanceof Refused ? e.message : undefined;
      if (refusal === undefined) throw e;
      if (shape.group !== 1) return this.grouped(node, shape, refusal);
      const fallback = this.gemm.conv2d(node);
      const kernel: KernelChoice = {
        ...fallback.kernel,
        config: { ...fallback.kernel.config, convRefused: refusal },
        reason: `CUTLASS conv refused (${refusal}), so ${fallback.kernel.reason}`,
      };
      return { ...fallback, kernel };
    }
  }

  /**
   * conv3d (NDHWC, video networks): group 1 as 3-D im2col + a CUTLASS GEMM (GemmLowering.conv3d; a 1×1×1 conv a
   * GEMM on x itself); depthwise (group == C) on the depthwise kernel and other groups on the grouped kernel, each
   * with its depth axis and the whole epilogue fused.
   */
  conv3d(node: Node): LoweredGemm {
    const shape = conv3dShapeOf(this.ctx, node);
    if (shape.group === 1) return this.gemm.conv3d(node);
    return isDepthwise(shape) ? this.depthwise3d(node, shape) : this.grouped3d(node, shape);
  }

  /** Grouped conv3d (1 < group < C) on the grouped kernel with the depth fields set, the ODHWI weight as it is. */
  private grouped3d(node: Node, shape: Conv3dShape): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const { batch, d, h, w: wIn, c, k, t, r, s, o, p, q, pads, strides, dilations, group } = shape;
    const { steps, chain, pointers, kinds } = this.directEpilogue(node, k, 'grouped conv');
    const count = pointers.length;
    const cg = c / group;
    const body = [
      'namespace ew = ait::kernels::ew;',
      `ait::kernels::GroupedConv2dArgs<__half, ${count}> args{${ctx.pointer(x)}, ${ctx.pointer(w)}, ${ctx.pointer(node.outputs[0], true)},`,
      `    {${count ? pointers.join(', ') : 'nullptr'}},`,
      `    {${count ? kinds.map((kind) => `ait::kernels::GroupedConvOperand::${kind}`).join(', ') : 'ait::kernels::GroupedConvOperand::kChannel'}},`,
      `    ${ctx.dim(batch, node)}, ${ctx.dim(h, node)}, ${ctx.dim(wIn, node)}, ${c}, ${ctx.dim(p, node)}, ${ctx.dim(q, node)}, ${k}, ${group},`,
      `    ${r}, ${s}, ${strides[1]}, ${strides[2]}, ${pads[1]}, ${pads[2]}, ${dilations[1]}, ${dilations[2]},`,
      `    ${ctx.dim(d, node)}, ${ctx.dim(o, node)}, ${t}, ${strides[0]}, ${pads[0]}, ${dilations[0]}};`,
      `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_grouped_conv2d_nhwc(args, ew::make_chain(${chain.join(', ')}), c.stream));`,
    ];
    const kernel: KernelChoice = {
      library: 'ait',
      name: `ait_grouped_conv3d_ndhwc_f16${cg % 8 === 0 ? '_vec' : ''}`,
      config: { path: 'grouped-direct', group, blockChannels: groupedBlockChannels(k / group), epilogue: steps },
      reason:
        `${t}x${r}x${s} grouped 3-D conv (group=${group}, C/group=${cg}, K/group=${k / group}, stride ${strides.join('x')}) on AIT's ` +
        `grouped NDHWC kernel: ${groupedKernelText(cg, k / group, t * r * s)}, epilogue [${steps.join(', ')}] fused`,
    };
    return { kernel, body, headers: ['grouped_conv.cuh'], workspaceBytes: 0 };
  }

  /** Depthwise conv3d on the depthwise kernel with the depth fields set (see depthwise for the 2-D form). */
  private depthwise3d(node: Node, shape: Conv3dShape): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const out = node.outputs[0];
    const { batch, d, h, w: wIn, c, k, t, r, s, o, p, q, pads, strides, dilations } = shape;
    // ODHWI [K, T, R, S, 1] = [K, T·R·S] → [T·R·S, K], as the 2-D form's [R·S, K]
    const weight = this.channelsLastWeight(node, w, k, t * r * s);
    const { steps, chain, pointers, kinds } = this.directEpilogue(node, k, 'depthwise');
    const count = pointers.length;
    const multiplier = k / c;
    const body = [
      'namespace ew = ait::kernels::ew;',
      `ait::kernels::DepthwiseConv2dArgs<__half, ${count}> args{${ctx.pointer(x)}, ${ctx.pointer(weight)}, ${ctx.pointer(out, true)},`,
      `    {${count ? pointers.join(', ') : 'nullptr'}},`,
      `    {${count ? kinds.map((kind) => `ait::kernels::DepthwiseOperand::${kind}`).join(', ') : 'ait::kernels::DepthwiseOperand::kChannel'}},`,
      `    ${ctx.dim(batch, node)}, ${ctx.dim(h, node)}, ${ctx.dim(wIn, node)}, ${c}, ${ctx.dim(p, node)}, ${ctx.dim(q, node)}, ${k},`,
      `    ${r}, ${s}, ${strides[1]}, ${strides[2]}, ${pads[1]}, ${pads[2]}, ${dilations[1]}, ${dilations[2]},`,
      `    ${ctx.dim(d, node)}, ${ctx.dim(o, node)}, ${t}, ${strides[0]}, ${pads[0]}, ${dilations[0]}};`,
      `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_depthwise_conv2d_nhwc(args, ew::make_chain(${chain.join(', ')}), c.stream));`,
    ];
    const vector = k % 8 === 0 ? '8 channels (16 bytes) per thread' : `one channel per thread (K=${k} is not a multiple of 8)`;
    const kernel: KernelChoice = {
      library: 'ait',
      name: `ait_depthwise_conv3d_ndhwc_f16${multiplier > 1 ? '_multiplier' : ''}`,
      config: { path: 'depthwise', epilogue: steps, multiplier },
      reason:
        `${t}x${r}x${s} depthwise 3-D conv (group=C=${c}${multiplier > 1 ? `, multiplier ${multiplier}` : ''}, stride ${strides.join('x')}, ` +
        `dilation ${dilations.join('x')}) as a direct NDHWC kernel, ${vector}, epilogue [${steps.join(', ')}] fused`,
    };
    return { kernel, body, headers: ['depthwise_conv.cuh'], workspaceBytes: 0 };
  }

  private shapeOf(node: Node): ConvShape {
    return convShapeOf(this.ctx, node);
  }

  private implicitGemm(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const out = node.outputs[0];
    const shape = this.shapeOf(node);
    const { batch, h, w: wIn, c, k, r, s, p, q, pads, strides, dilations, group } = shape;
    // the problem at a batch: N and any spatial size that is the run's dim taken there
    const problemAt = (b: number): ConvProblem => ({
      n: ctx.at(batch, b),
      h: ctx.at(h, b),
      w: ctx.at(wIn, b),
      c,
      k,
      r,
      s,
      p: ctx.at(p, b),
      q: ctx.at(q, b),
      pads,
      strides,
      dilations,
      group,
    });
    // A grouped conv fuses the prefix its kernel runs; the rest runs as an elementwise kernel after it.
    const split = group > 1 ? groupConvEpilogue(epilogueOf(node)) : { fused: epilogueOf(node), rest: [] as string[] };
    const steps = convEpilogueSteps(split.fused);
    const fusedOperandCount = steps.filter((step) => EPILOGUE_OPERAND_STEPS.has(step)).length;
    // operands in step order; the instance reads bias and scale as [k] vectors and the residual as the full output
    const operands = node.inputs.slice(2, 2 + fusedOperandCount);
    const restOperands = node.inputs.slice(2 + fusedOperandCount);
    const pointers: Record<'bias' | 'scale' | 'residual_add', string> = { bias: 'nullptr', scale: 'nullptr', residual_add: 'nullptr' };
    let next = 0;
    for (const step of steps) {
      if (step !== 'bias' && step !== 'scale' && step !== 'residual_add') continue;
      const tensor = operands[next++];
      if (!tensor) throw new Refused(`epilogue step ${step} has no operand`);
      const shape = ctx.shapeOf(tensor);
      if (step === 'residual_add') {
        const outShape = ctx.shapeOf(out);
        if (shape.length !== outShape.length || broadcastOf(ctx, node, shape, outShape).broadcast !== 'kFull')
          throw new Refused(`residual of shape [${shape.join(',')}] is not the output's shape`);
      } else if (!shape.every(isConcrete) || shape.reduce<number>((a, d) => a * (d as number), 1) !== k || shape[shape.length - 1] !== k)
        throw new Refused(`${step} of shape [${shape.join(',')}] is not a [${k}] channel vector`);
      pointers[step] = ctx.pointer(tensor);
    }

    // why, by batch: a deduplicated instance keeps the reason (with the problem sizes) of the batch that first chose it
    const reasons = new Map<number, string>();
    const heuristicAt = (b: number) => {
      const instance = emitConv(chooseConv(problemAt(b), this.arch), steps);
      return { source: this.register(instance, steps), reason: instance.reason };
    };
    const measured = this.measuredChoice(node, problemAt, steps, heuristicAt);
    const decisions = convDecisions(problemAt);
    const ranges =
      measured?.ranges ??
      batchRanges(ctx.batchSymbol ? ctx.maxBatch : 1, decisions, (b) => {
        const { source, reason } = heuristicAt(b);
        reasons.set(b, reason);
        return source;
      });
    for (const [b, reason] of measured?.reasons ?? []) reasons.set(b, reason);

    // With an unfused rest that reads operands, the instance writes a workspace temporary (the output may share the
    // residual's buffer); the elementwise kernel then reads it and the operands and writes the output. The output is
    // never over the conv's own input: the memory plan reuses only a residual that is not also the input.
    const viaTemporary = restOperands.length > 0;
    // a spatial size of the run as an int expression (concrete ones as they are)
    const int = (d: Dim) => (isConcrete(d) ? String(d) : `static_cast<int>(${ctx.dim(d, node)})`);
    const outShape = ctx.shapeOf(out);
    const tempBytes = viaTemporary ? alignUp(outShape.reduce<number>((acc, d) => acc * ctx.maxOf(d), 1) * 2) : 0;
    const convOutput = viaTemporary
      ? `reinterpret_cast<__half*>(static_cast<uint8_t*>(c.workspace) + ${CUTLASS_WORKSPACE_BYTES})`
      : ctx.pointer(out, true);
    const call = (symbol: string) => `AIT_RETURN_IF_FAILED(${symbol}(conv, c.workspace, ${CUTLASS_WORKSPACE_BYTES}, c.stream));`;
    const args = (n: string, offset: (pointer: string, image: string) => string) => [
      `const AitConvArgs conv{static_cast<int>(${n}), ${int(h)}, ${int(wIn)}, ${c}, ${k}, ${r}, ${s}, ${int(p)}, ${int(q)},`,
      `                       {${pads.join(', ')}}, {${strides.join(', ')}}, {${dilations.join(', ')}}, ${group},`,
      `                       ${offset(ctx.pointer(x), 'in_image')}, ${ctx.pointer(w)},`,
      `                       ${pointers.bias}, ${pointers.scale}, ${offset(pointers.residual_add, 'out_image')},`,
      `                       ${offset(convOutput, 'out_image')}};`,
    ];
    const chunk = convBatchChunk(ctx, shape);
    const body: string[] = [];
    if (chunk === undefined) {
      body.push(...args(ctx.dim(batch, node), (pointer) => pointer));
      body.push(...dispatchByBatch(ranges, (source) => call(source.symbol)));
    } else {
      // an activation passes 2^31 bytes at the larger batches: CUTLASS's conv indexes activations with 32-bit byte
      // offsets (its can_implement answers "Invalid Problem"), so the conv runs over chunks of at most `chunk` images, each
      // launch on its images' slices of the input, residual and output (NHWC: an image is contiguous); within a chunk
      // the instance is the one chosen for the chunk's size
      const image = (d: Dim[]) => d.map((x) => (isConcrete(x) ? String(x) : `static_cast<int64_t>(${ctx.dim(x, node)})`)).join(' * ');
      body.push(
        `const int64_t images = ${ctx.dim(batch, node)}, in_image = ${image([h, wIn])} * ${c}, out_image = ${image([p, q])} * ${k};`,
        `for (int64_t first = 0; first < images; first += ${chunk}) {`,
        `  const int64_t batch = std::min<int64_t>(${chunk}, images - first);  // this chunk's images (the dispatch reads it)`,
        ...args('batch', (pointer, stride) => (pointer === 'nullptr' ? pointer : `${pointer} + first * ${stride}`)).map((l) => `  ${l}`),
        ...dispatchByBatch(ranges, (source) => call(source.symbol)).map((l) => `  ${l}`),
        '}',
      );
    }
    const headers: string[] = [];
    if (split.rest.length > 0) {
      body.push(
        '{',
        ...this.epilogueRest(node, split.rest, restOperands, viaTemporary ? convOutput : ctx.pointer(out)).map((l) => `  ${l}`),
        '}',
      );
      headers.push('elementwise.cuh');
    }
    const largest = ranges[ranges.length - 1].source.instance;
    const kernel: KernelChoice = {
      library: 'cutlass',
      name: largest.name,
      config: {
        arch: this.arch,
        path: group > 1 ? 'cutlass-group-conv' : 'cutlass-conv',
        ...(group > 1 ? { group } : {}),
        epilogue: steps,
        ...(split.rest.length > 0 ? { unfusedEpilogue: split.rest } : {}),
        instances: ranges.map((range) => ({
          batches: [range.firstBatch, range.lastBatch],
          name: range.source.instance.name,
          file: range.source.file,
        })),
      },
      reason:
        `${r}x${s} ${group > 1 ? `grouped (group=${group}) ` : ''}conv (stride ${strides.join('x')}, C=${String(c)}, K=${k}) as a CUTLASS ` +
        `implicit-GEMM conv, epilogue [${steps.join(', ')}] fused; ` +
        `${ranges.map((range) => `batch ${range.firstBatch}..${range.lastBatch}: ${reasons.get(range.firstBatch) ?? range.source.instance.reason}`).join('; ')}` +
        (split.rest.length > 0 ? `; epilogue steps ${split.rest.join(', ')} run as an elementwise kernel` : ''),
      ...(measured ? { candidates: measured.candidates } : {}),
    };
    return { kernel, body, headers, workspaceBytes: CUTLASS_WORKSPACE_BYTES + tempBytes };
  }

  /** The unfused rest of an epilogue as one elementwise kernel: out = rest(conv value, operands…). */
  private epilogueRest(node: Node, rest: readonly string[], operands: readonly string[], convValue: string): string[] {
    return epilogueRestStatements(this.ctx, node, rest, operands, convValue);
  }

  /**
   * Depthwise conv on AIT's direct kernel: memory-bound (R·S multiply-adds per output), so its reason and config
   * give the bytes it moves at max batch next to its FLOPs.
   */
  private depthwise(node: Node, shape: ConvShape): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const out = node.outputs[0];
    const { batch, h, w: wIn, c, k, r, s, p, q, pads, strides, dilations } = shape;
    // The output may be over the residual (read at the element written), never over x (the memory plan's rule).
    const weight = this.channelsLastWeight(node, w, k, r * s);
    const { steps, chain, pointers, kinds, operandBytes } = this.directEpilogue(node, k, 'depthwise');
    const count = pointers.length;
    const maxBatch = ctx.maxOf(batch);
    const outputElements = maxBatch * ctx.maxOf(p) * ctx.maxOf(q) * k;
    const bytes = (maxBatch * ctx.maxOf(h) * ctx.maxOf(wIn) * c + r * s * k + outputElements) * 2 + operandBytes.reduce((a, b) => a + b, 0);
    const flops = 2 * outputElements * r * s;
    const multiplier = k / c;
    const outputPointer = ctx.pointer(out, true);
    const body = [
      'namespace ew = ait::kernels::ew;',
      `ait::kernels::DepthwiseConv2dArgs<__half, ${count}> args{${ctx.pointer(x)}, ${ctx.pointer(weight)}, ${outputPointer},`,
      `    {${count ? pointers.join(', ') : 'nullptr'}},`,
      `    {${count ? kinds.map((kind) => `ait::kernels::DepthwiseOperand::${kind}`).join(', ') : 'ait::kernels::DepthwiseOperand::kChannel'}},`,
      `    ${ctx.dim(batch, node)}, ${ctx.dim(h, node)}, ${ctx.dim(wIn, node)}, ${c}, ${ctx.dim(p, node)}, ${ctx.dim(q, node)}, ${k},`,
      `    ${r}, ${s}, ${strides[0]}, ${strides[1]}, ${pads[0]}, ${pads[1]}, ${dilations[0]}, ${dilations[1]}};`,
      `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_depthwise_conv2d_nhwc(args, ew::make_chain(${chain.join(', ')}), c.stream));`,
    ];
    const vector = k % 8 === 0 ? '8 channels (16 bytes) per thread' : `one channel per thread (K=${k} is not a multiple of 8)`;
    const kernel: KernelChoice = {
      library: 'ait',
      name: `ait_depthwise_conv2d_nhwc_f16${multiplier > 1 ? '_multiplier' : ''}`,
      config: { path: 'depthwise', epilogue: steps, multiplier, bytesAtMaxBatch: bytes, flopsAtMaxBatch: flops },
      reason:
        `${r}x${s} depthwise conv (group=C=${c}${multiplier > 1 ? `, multiplier ${multiplier}` : ''}, stride ${strides.join('x')}, ` +
        `dilation ${dilations.join('x')}) as a direct NHWC kernel, ${vector}, epilogue [${steps.join(', ')}] fused; memory-bound: ` +
        `${bytes} bytes and ${flops} FLOPs at batch ${maxBatch} (${(flops / bytes).toFixed(1)} FLOP/byte)`,
    };
    return { kernel, body, headers: ['depthwise_conv.cuh'], workspaceBytes: 0 };
  }

  /**
   * The whole conv2d epilogue of a direct kernel (depthwise, grouped) as an ew functor chain over in[0] = the
   * accumulator and in[1 + j] = operand j, each a per-channel [k] vector (kChannel) or the output's shape (kFull).
   */
  private directEpilogue(node: Node, k: number, what: string) {
    const ctx = this.ctx;
    const outShape = ctx.shapeOf(node.outputs[0]);
    const steps = epilogueOf(node);
    const operands = node.inputs.slice(2);
    const chain: string[] = ['ew::Input<0>{}'];
    const pointers: string[] = [];
    const kinds: string[] = [];
    const operandBytes: number[] = [];
    for (const step of steps) {
      const name = step.split(':')[0];
      if (!EPILOGUE_OPERAND_STEPS.has(name)) {
        chain.push(activationFunctor(step));
        continue;
      }
      const tensor = operands[pointers.length];
      if (!tensor) throw new Unsupported(`epilogue step ${step} has no operand`);
      const operandShape = ctx.shapeOf(tensor);
      const broadcast = broadcastOf(ctx, node, operandShape, outShape);
      const elements = operandShape.every(isConcrete) ? operandShape.reduce<number>((a, d) => a * (d as number), 1) : undefined;
      if (broadcast.broadcast === 'kFull') {
        kinds.push('kFull');
        operandBytes.push(outShape.reduce<number>((a, d) => a * ctx.maxOf(d), 1) * 2);
      } else if (elements === k && operandShape[operandShape.length - 1] === k) {
        kinds.push('kChannel');
        operandBytes.push(k * 2);
      } else
        throw new Unsupported(
          `${what} epilogue operand ${step} of shape [${operandShape.join(',')}] is neither [${k}] nor the output's shape`,
        );
      pointers.push(ctx.pointer(tensor));
      chain.push(`ew::${name === 'scale' ? 'MulInput' : 'AddInput'}<${pointers.length}>{}`);
    }
    return { steps, chain, pointers, kinds, operandBytes };
  }

  /**
   * Grouped conv on AIT's own kernel (kernels/grouped_conv.cuh, its tensor-core path for fp16) where CUTLASS's group
   * kernels refuse the channel counts (`refusal` says why): the OHWI weight [K, R, S, C/group] as it is, the whole
   * epilogue fused.
   */
  private grouped(node: Node, shape: ConvShape, refusal: string): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const out = node.outputs[0];
    const { batch, h, w: wIn, c, k, r, s, p, q, pads, strides, dilations, group } = shape;
    const { steps, chain, pointers, kinds } = this.directEpilogue(node, k, 'grouped conv');
    const count = pointers.length;
    const cg = c / group;
    const kg = k / group;
    const body = [
      'namespace ew = ait::kernels::ew;',
      `ait::kernels::GroupedConv2dArgs<__half, ${count}> args{${ctx.pointer(x)}, ${ctx.pointer(w)}, ${ctx.pointer(out, true)},`,
      `    {${count ? pointers.join(', ') : 'nullptr'}},`,
      `    {${count ? kinds.map((kind) => `ait::kernels::GroupedConvOperand::${kind}`).join(', ') : 'ait::kernels::GroupedConvOperand::kChannel'}},`,
      `    ${ctx.dim(batch, node)}, ${ctx.dim(h, node)}, ${ctx.dim(wIn, node)}, ${c}, ${ctx.dim(p, node)}, ${ctx.dim(q, node)}, ${k}, ${group},`,
      `    ${r}, ${s}, ${strides[0]}, ${strides[1]}, ${pads[0]}, ${pads[1]}, ${dilations[0]}, ${dilations[1]}};`,
      `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_grouped_conv2d_nhwc(args, ew::make_chain(${chain.join(', ')}), c.stream));`,
    ];
    const kernel: KernelChoice = {
      library: 'ait',
      name: `ait_grouped_conv2d_nhwc_f16${cg % 8 === 0 ? '_vec' : ''}`,
      config: { path: 'grouped-direct', group, blockChannels: groupedBlockChannels(kg), epilogue: steps, cutlassRefused: refusal },
      reason:
        `${r}x${s} grouped conv (group=${group}, C/group=${cg}, K/group=${kg}, stride ${strides.join('x')}) on AIT's grouped kernel ` +
        `(CUTLASS refused: ${refusal}): ${groupedKernelText(cg, kg, r * s)}, epilogue [${steps.join(', ')}] fused`,
    };
    return { kernel, body, headers: ['grouped_conv.cuh'], workspaceBytes: 0 };
  }

  /** The depthwise weight [R·S, K] (channels innermost) derived from the OHWI [K, R, S, 1] weight. */
  private channelsLastWeight(node: Node, w: string, k: number, taps: number): string {
    const ctx = this.ctx;
    const name = `${w}.rsk`;
    if (ctx.hasWeight(name)) return name;
    const value = ctx.graph.lookupTensor(w)?.value;
    if (value) {
      ctx.weight(name, 'bound', channelsLastValue(value, k, taps), [taps, k], 'half');
      return name;
    }
    const dst = ctx.weight(name, 'prepared', undefined, [taps, k], 'half');
    this.gemm.prepareOps.push({
      id: node.id,
      name: `transpose ${w} [${k},${taps}] -> [${taps},${k}] (depthwise weight, channels innermost) for ${node.name}`,
      kernel: 'ait_transpose_f16',
      headers: ['tensor_ops.cuh'],
      body: [
        `ait::kernels::StridedCopyArgs<__half> args{${ctx.pointer(w)}, static_cast<__half*>(c.weights[${dst}]), 2, {${taps}, ${k}}, {1, ${taps}}, 0};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_strided_copy(args, c.stream));',
      ],
    });
    return name;
  }

  /**
   * The measured choice of a conv signature (profiling/selection.ts), after recording it for a profiler; undefined
   * when the compile has no measurements of it.
   */
  private measuredChoice(
    node: Node,
    problemAt: (batch: number) => ConvProblem,
    steps: ConvEpilogueStep[],
    heuristicAt: (batch: number) => { source: ConvInstanceSource; reason: string },
  ): MeasuredChoice<ConvInstanceSource> | undefined {
    const profiling = this.ctx.profiling;
    if (!profiling?.active) return undefined;
    const batches = this.ctx.batchSymbol ? profiling.batches : [1];
    const problems = batches.map(problemAt);
    const p = problems[0];
    const candidates = convCandidates(this.arch, problems, steps);
    const signature = [
      'conv',
      this.arch,
      batchTerm('n', (b) => problemAt(b).n, batches),
      `h=${p.h} w=${p.w} c=${p.c} k=${p.k} r=${p.r} s=${p.s}`,
      `pads=${p.pads.join(',')} strides=${p.strides.join(',')} dilations=${p.dilations.join(',')} group=${p.group}`,
      `epilogue=${steps.join('+') || 'none'}`,
    ].join(' ');
    profiling.record({ signature, kind: 'conv', batches, problems, workspaceBytes: CUTLASS_WORKSPACE_BYTES, steps, candidates }, node.id);
    return profiling.choose(signature, candidates, (instance) => this.register(instance, steps), heuristicAt);
  }

  private register(instance: EmittedInstance, steps: ConvEpilogueStep[]): ConvInstanceSource {
    // the comment lines mention problem sizes (the reason): deduplicate on the code without them
    const key = instanceCode(instance);
    const known = this.byText.get(key);
    if (known) return known;
    const index = this.instances.length;
    const source: ConvInstanceSource = { symbol: instanceSymbol('conv', instance), file: `src/conv_${index}.cu`, instance, steps };
    this.instances.push(source);
    this.byText.set(key, source);
    return source;
  }
}

/** src/ait_conv.h: CUTLASS-free declarations of the conv instance entry points (model.cu includes only this). */
export function convHeader(instances: readonly ConvInstanceSource[]): string {
  const w = new CppWriter();
  w.comment('Generated by AIT: entry points of the CUTLASS convolution instances (src/conv_<k>.cu), without CUTLASS headers.');
  w.line('#pragma once').line().include('cuda_runtime.h', true).include('stddef.h', true).line();
  w.comment('y[n, p, q, k] = epilogue(conv(x[n, h, w, c], weight[k, r, s, c])): fp16 NHWC activations, KRSC weight.');
  w.block(
    'struct AitConvArgs',
    () => {
      w.line('int n, h, w, c;');
      w.line('int k, r, s;');
      w.line('int p, q;');
      w.line('int pads[4];       // top, left, bottom, right');
      w.line('int strides[2];    // height, width');
      w.line('int dilations[2];  // height, width');
      w.line('int groups;        // 1, or the group count of a grouped conv (weight [k, r, s, c / groups])');
      w.line('const void* x;');
      w.line('const void* weight;');
      w.line('const void* bias;      // [k] or nullptr');
      w.line('const void* scale;     // [k] or nullptr');
      w.line('const void* residual;  // [n, p, q, k] or nullptr');
      w.line('void* y;');
    },
    ';',
  );
  w.line();
  instanceDeclarations(w, instances, 'AitConvArgs');
  return w.toString();
}

/** src/conv_<k>.cu: one CUTLASS conv instance in its own namespace, behind a plain entry point. */
export function convInstanceSource(source: ConvInstanceSource): string {
  const w = new CppWriter();
  // No reason or problem sizes here (gemmInstanceSource says why)
  w.comment(`Generated by AIT: CUTLASS instance ${source.instance.name}`);
  for (const include of source.instance.includes) w.include(include);
  w.include('ait_conv.h').line();
  const ns = `${source.symbol}_detail`;
  w.block(`namespace ${ns}`, () => {
    w.lines_(convOperandsStruct());
    w.line();
    w.lines_(instanceCode(source.instance));
  });
  w.line();
  w.block(`const char* ${source.symbol}(const AitConvArgs& args, void* workspace, size_t workspace_bytes, cudaStream_t stream)`, () => {
    w.line('using H = cutlass::half_t;');
    w.line(`const ${ns}::AitConvOperands operands{`);
    w.line('    args.n, args.h, args.w, args.c, args.k, args.r, args.s, args.p, args.q,');
    w.line('    {args.pads[0], args.pads[1], args.pads[2], args.pads[3]}, {args.strides[0], args.strides[1]},');
    w.line('    {args.dilations[0], args.dilations[1]}, args.groups, static_cast<const H*>(args.x), static_cast<const H*>(args.weight),');
    w.line('    static_cast<const H*>(args.bias), static_cast<const H*>(args.scale), static_cast<const H*>(args.residual),');
    w.line('    static_cast<H*>(args.y)};');
    w.line(`return ${ns}::${source.instance.name}::run(operands, workspace, workspace_bytes, stream);`);
  });
  return w.toString();
}

/**
 * The unfused rest of a conv or GEMM epilogue as one elementwise kernel: out = rest(value, operands…), `value` the
 * pointer the library instance wrote (the output itself, or a temporary); the ROCm backend runs the steps past what a
 * CK instance takes the same way.
 */
export function epilogueRestStatements(
  ctx: CodegenContext,
  node: Node,
  rest: readonly string[],
  operands: readonly string[],
  value: string,
): string[] {
  const out = node.outputs[0];
  const outShape = ctx.shapeOf(out);
  const chain: string[] = ['ew::Input<0>{}'];
  const inputs: ElementwiseInput[] = [{ tensor: out, broadcast: 'kFull', inner: '1' }];
  const pointers: string[] = [value];
  let next = 0;
  for (const step of rest) {
    const name = step.split(':')[0];
    if (EPILOGUE_OPERAND_STEPS.has(name)) {
      const tensor = operands[next++];
      inputs.push({ tensor, ...broadcastOf(ctx, node, ctx.shapeOf(tensor), outShape) });
      pointers.push(ctx.pointer(tensor));
      chain.push(`ew::${name === 'scale' ? 'MulInput' : 'AddInput'}<${inputs.length - 1}>{}`);
    } else chain.push(activationFunctor(step));
  }
  return elementwiseStatements(inputs, pointers, ctx.pointer(out, true), ctx.product(outShape, node), chain);
}

/**
 * The largest activation CUTLASS 2.x's conv takes, in bytes: its can_implement refuses ("Invalid Problem") an input,
 * filter or output of 2^31 bytes or more (it indexes them with 32-bit byte offsets), i.e. 2^30 fp16 elements.
 */
const CONV_MAX_BYTES = 2 ** 31 - 1;
/** Bytes of an element of the convs' activations (fp16). */
const CONV_ELEMENT_BYTES = 2;

/**
 * Images per launch when an activation of the conv (input, or output and residual) passes CONV_MAX_BYTES at the max
 * batch; undefined when the whole batch fits one launch (every conv of usual sizes).
 */
export function convBatchChunk(ctx: CodegenContext, shape: ConvShape): number | undefined {
  const perImage =
    CONV_ELEMENT_BYTES * Math.max(ctx.maxOf(shape.h) * ctx.maxOf(shape.w) * shape.c, ctx.maxOf(shape.p) * ctx.maxOf(shape.q) * shape.k);
  if (ctx.maxOf(shape.batch) * perImage <= CONV_MAX_BYTES) return undefined;
  if (perImage > CONV_MAX_BYTES)
    throw new Unsupported(`one image's activation takes ${perImage} bytes, past the 2^31 - 1 that CUTLASS's conv addresses`);
  return Math.floor(CONV_MAX_BYTES / perImage);
}

/** A conv3d's sizes: input [batch, d, h, w, c] NDHWC, weight [k, t, r, s, c/group], output [batch, o, p, q, k]. */
export interface Conv3dShape {
  batch: Dim;
  d: Dim;
  h: Dim;
  w: Dim;
  c: number;
  k: number;
  t: number;
  r: number;
  s: number;
  o: Dim;
  p: Dim;
  q: Dim;
  /** [front, top, left, back, bottom, right] */
  pads: number[];
  /** [depth, height, width] */
  strides: number[];
  dilations: number[];
  group: number;
}

/** A conv3d node's sizes (Unsupported for a non-float output, symbolic channels or window, or a mismatched weight). */
export function conv3dShapeOf(ctx: CodegenContext, node: Node): Conv3dShape {
  const [x, w] = node.inputs;
  const out = node.outputs[0];
  if (ctx.typeOf(out) !== 'half') throw new Unsupported('convolution output is not a float tensor');
  const [batch, d, h, wIn, c] = ctx.shapeOf(x);
  const [k, t, r, s, cw] = ctx.shapeOf(w);
  const [, o, p, q] = ctx.shapeOf(out);
  for (const dim of [c, k, t, r, s, cw]) if (!isConcrete(dim)) throw new Unsupported('convolution with symbolic channel dims or window');
  for (const dim of [d, h, wIn, o, p, q]) ctx.dim(dim, node);
  const group = attrInt(node, 'group', 1);
  if ((cw as number) * group !== c) throw new Unsupported(`weight has ${cw} input channels per group, the activation ${String(c)}`);
  const shape: Conv3dShape = {
    batch,
    d,
    h,
    w: wIn,
    c: c as number,
    k: k as number,
    t: t as number,
    r: r as number,
    s: s as number,
    o,
    p,
    q,
    pads: attrInts(node, 'pads', [0, 0, 0, 0, 0, 0]),
    strides: attrInts(node, 'strides', [1, 1, 1]),
    dilations: attrInts(node, 'dilations', [1, 1, 1]),
    group,
  };
  return shape;
}

/**
 * A conv2d node's sizes and attributes (Unsupported for a non-float output, symbolic spatial or channel dims, or a
 * weight whose channels do not match): the checks the CUDA lowering's predicate runs up front.
 */
export function convShapeOf(ctx: CodegenContext, node: Node): ConvShape {
  const [x, w] = node.inputs;
  const out = node.outputs[0];
  if (ctx.typeOf(out) !== 'half') throw new Unsupported('convolution output is not a float tensor');
  const [batch, h, wIn, c] = ctx.shapeOf(x);
  const [k, r, s, cw] = ctx.shapeOf(w);
  const [, p, q] = ctx.shapeOf(out);
  for (const d of [c, k, r, s, cw]) if (!isConcrete(d)) throw new Unsupported('convolution with symbolic channel dims or window');
  // spatial sizes may be the run's: each a C++ expression of it (ctx.dim says when one is not)
  for (const d of [h, wIn, p, q]) ctx.dim(d, node);
  const group = attrInt(node, 'group', 1);
  if ((cw as number) * group !== c) throw new Unsupported(`weight has ${cw} input channels per group, the activation ${String(c)}`);
  return {
    batch,
    h,
    w: wIn,
    c: c as number,
    k: k as number,
    r: r as number,
    s: s as number,
    p,
    q,
    pads: attrInts(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number],
    strides: attrInts(node, 'strides', [1, 1]) as [number, number],
    dilations: attrInts(node, 'dilations', [1, 1]) as [number, number],
    group,
  };
}

/**
 * Output channels per block of the grouped kernel's tensor-core path: grouped_mma_channels in kernels/grouped_conv.cuh
 * (a block re-gathers the im2col rows, worth ~16 output channels of MMA work, so ceil(kg / n) · (n + 16) is minimal
 * over n = 32, 24, 16, 8, ties to the wider). Kept equal to the header's by test/backends/cuda/grouped-conv.test.ts.
 */
export function groupedBlockChannels(outputsPerGroup: number): number {
  let best = 32;
  let bestCost = Math.ceil(outputsPerGroup / 32) * (32 + 16);
  for (const n of [24, 16, 8]) {
    const cost = Math.ceil(outputsPerGroup / n) * (n + 16);
    if (cost < bestCost) [best, bestCost] = [n, cost];
  }
  return best;
}

/** What the grouped kernel does for these sizes, for kernel.reason. */
function groupedKernelText(cg: number, kg: number, taps: number): string {
  const padded = Math.ceil((taps * cg) / 32) * 32;
  return (
    `an implicit GEMM per group on the tensor cores (wmma m32n8k16, fp32 accumulation): 128 pixels x ${groupedBlockChannels(kg)} ` +
    `output channels per block, K = ${taps} taps x ${cg} channels (${padded} in steps of 32), ` +
    `${cg % 8 === 0 ? 'gathered as 16-byte vectors' : 'gathered element by element'}`
  );
}
