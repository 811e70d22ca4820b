/**
 * conv2d lowering through the CUTLASS implicit-GEMM convolution emitters (cutlass/conv.ts): NHWC activations, OHWI
 * (= KRSC) weights, the whole fused epilogue (bias, scale, residual add, activations) run by the instance.
 *
 *  - Instances: chooseConv's heuristic depends on N·P·Q, so it is evaluated at every batch 1..max; consecutive batches
 *    choosing the same instance form a range and the launch function dispatches on the batch (as the GEMM lowering).
 *    Instances are deduplicated by their code into src/conv_<k>.cu, declared CUTLASS-free in src/ait_conv.h.
 *  - Fallback: where the emitters refuse the node with a diagnostic (grouped convolution, an epilogue step without a
 *    CUTLASS functor, an epilogue order the sm80 kernels cannot run such as per-channel scale) or an operand does not
 *    have the shape the instance reads, the node goes through GemmLowering.conv2d (im2col + GEMM, or a GEMM for a 1×1
 *    stride-1 conv) and graph.json's kernel.config says `path` and `convRefused` (why).
 */
import { CompileError } from '../../../diagnostics';
import { Node, attrInt, attrInts } from '../../../ir/graph';
import { isConcrete } from '../../../ir/symbolic';
import { epilogueOf } from '../../../ops/fused';
import { ConvEpilogueStep, ConvProblem, chooseConv, convEpilogueSteps, convOperandsStruct, emitConv } from '../cutlass/conv';
import { EmittedInstance } from '../cutlass/gemm';
import { CodegenContext, Unsupported } from './context';
import { batchRanges, dispatchByBatch } from './batch-ranges';
import { CppWriter, instanceDeclarations } from './cpp';
import { CUTLASS_WORKSPACE_BYTES, CudaArch, GemmLowering, LoweredGemm } from './gemm-lowering';
import { broadcastOf } from './elementwise';
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

export class ConvLowering {
  readonly instances: ConvInstanceSource[] = [];
  private readonly byText = new Map<string, ConvInstanceSource>();

  constructor(
    readonly ctx: CodegenContext,
    readonly arch: CudaArch,
    readonly gemm: GemmLowering,
  ) {}

  conv2d(node: Node): LoweredGemm {
    try {
      return this.implicitGemm(node);
    } catch (e) {
      const refusal =
        e instanceof CompileError ? e.diagnostics.map((d) => d.message).join('; ') : e instanceof Refused ? e.message : undefined;
      if (refusal === undefined) throw e;
      if (attrInt(node, 'group', 1) !== 1) throw new Unsupported(`${refusal}; im2col + GEMM does not take grouped convolution either`);
      const fallback = this.gemm.conv2d(node);
      const path = fallback.kernel.reason.includes('im2col') ? 'im2col+gemm' : 'gemm';
      const kernel: KernelChoice = {
        ...fallback.kernel,
        config: { ...fallback.kernel.config, path, convRefused: refusal },
        reason: `CUTLASS conv refused (${refusal}), so ${fallback.kernel.reason}`,
      };
      return { ...fallback, kernel };
    }
  }

  private implicitGemm(node: Node): LoweredGemm {
    const ctx = this.ctx;
    const [x, w] = node.inputs;
    const out = node.outputs[0];
    if (ctx.typeOf(out) !== 'half') throw new Unsupported('convolution output is not a float tensor');
    const [batch, h, wIn, c] = ctx.shapeOf(x);
    const [k, r, s, cw] = ctx.shapeOf(w) as number[];
    const [, p, q] = ctx.shapeOf(out);
    for (const d of [h, wIn, c, p, q]) if (!isConcrete(d)) throw new Unsupported('convolution with symbolic spatial or channel dims');
    const group = attrInt(node, 'group', 1);
    if (cw * group !== c) throw new Unsupported(`weight has ${cw} input channels per group, the activation ${String(c)}`);
    const pads = attrInts(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
    const strides = attrInts(node, 'strides', [1, 1]) as [number, number];
    const dilations = attrInts(node, 'dilations', [1, 1]) as [number, number];
    const problemAt = (n: number): ConvProblem => ({
      n,
      h: h as number,
      w: wIn as number,
      c: c as number,
      k,
      r,
      s,
      p: p as number,
      q: q as number,
      pads,
      strides,
      dilations,
      group,
    });
    const steps = convEpilogueSteps(epilogueOf(node));
    // operands in step order; the instance reads bias and scale as [k] vectors and the residual as the full output
    const operands = node.inputs.slice(2);
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

    const ranges = batchRanges(ctx.batchSymbol ? ctx.maxBatch : 1, (b) =>
      this.register(emitConv(chooseConv(problemAt(ctx.at(batch, b)), this.arch), steps), steps),
    );

    const body = [
      `const AitConvArgs conv{static_cast<int>(${ctx.dim(batch, node)}), ${h}, ${wIn}, ${c}, ${k}, ${r}, ${s}, ${p}, ${q},`,
      `                       {${pads.join(', ')}}, {${strides.join(', ')}}, {${dilations.join(', ')}},`,
      `                       ${ctx.pointer(x)}, ${ctx.pointer(w)},`,
      `                       ${pointers.bias}, ${pointers.scale}, ${pointers.residual_add},`,
      `                       ${ctx.pointer(out, true)}};`,
    ];
    const call = (symbol: string) => `AIT_RETURN_IF_FAILED(${symbol}(conv, c.workspace, ${CUTLASS_WORKSPACE_BYTES}, c.stream));`;
    body.push(...dispatchByBatch(ranges, (source) => call(source.symbol)));
    const largest = ranges[ranges.length - 1].source.instance;
    const kernel: KernelChoice = {
      library: 'cutlass',
      name: largest.name,
      config: {
        arch: this.arch,
        path: 'cutlass-conv',
        epilogue: steps,
        instances: ranges.map((range) => ({
          batches: [range.firstBatch, range.lastBatch],
          name: range.source.instance.name,
          file: range.source.file,
        })),
      },
      reason:
        `${r}x${s} conv (stride ${strides.join('x')}, C=${String(c)}, K=${k}) as a CUTLASS implicit-GEMM conv, epilogue ` +
        `[${steps.join(', ')}] fused; ${ranges.map((range) => `batch ${range.firstBatch}..${range.lastBatch}: ${range.source.instance.reason}`).join('; ')}`,
    };
    return { kernel, body, headers: [], workspaceBytes: CUTLASS_WORKSPACE_BYTES };
  }

  private register(instance: EmittedInstance, steps: ConvEpilogueStep[]): ConvInstanceSource {
    // the comment lines mention problem sizes (the reason): deduplicate on the code without them
    const key = instance.code
      .split('\n')
      .filter((l) => !l.startsWith('//'))
      .join('\n');
    const known = this.byText.get(key);
    if (known) return known;
    const index = this.instances.length;
    const source: ConvInstanceSource = { symbol: `ait_conv_${index}`, file: `src/conv_${index}.cu`, instance, steps };
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
  w.comment(`Generated by AIT: CUTLASS instance ${source.instance.name}`);
  w.comment(`Why: ${source.instance.reason}`);
  for (const include of source.instance.includes) w.include(include);
  w.include('ait_conv.h').line();
  const ns = `${source.symbol}_detail`;
  w.block(`namespace ${ns}`, () => {
    w.lines_(convOperandsStruct());
    w.line();
    w.lines_(source.instance.code);
  });
  w.line();
  w.block(`const char* ${source.symbol}(const AitConvArgs& args, void* workspace, size_t workspace_bytes, cudaStream_t stream)`, () => {
    w.line('using H = cutlass::half_t;');
    w.line(`const ${ns}::AitConvOperands operands{`);
    w.line('    args.n, args.h, args.w, args.c, args.k, args.r, args.s, args.p, args.q,');
    w.line('    {args.pads[0], args.pads[1], args.pads[2], args.pads[3]}, {args.strides[0], args.strides[1]},');
    w.line('    {args.dilations[0], args.dilations[1]}, static_cast<const H*>(args.x), static_cast<const H*>(args.weight),');
    w.line('    static_cast<const H*>(args.bias), static_cast<const H*>(args.scale), static_cast<const H*>(args.residual),');
    w.line('    static_cast<H*>(args.y)};');
    w.line(`return ${ns}::${source.instance.name}::run(operands, workspace, workspace_bytes, stream);`);
  });
  return w.toString();
}
