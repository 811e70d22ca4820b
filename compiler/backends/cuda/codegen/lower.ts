/**
 * Lowering of one node of the fused graph to the body of its launch function, with the kernel chosen and why.
 * Each lowering is registered under its op's name (ops/registry.ts registerLowering, backend 'cuda') with a
 * predicate that refuses, with the reason, the nodes it cannot take; backends/support.ts derives "supported on a
 * CUDA target" from the same registrations, so a node codegen would refuse is already reported unsupported there.
 * Our kernels (kernels/*.cuh) run everything but GEMM and convolution, which go through CUTLASS GEMM instances
 * (gemm-lowering.ts) and CUTLASS convolution instances (conv-lowering.ts); ConvTranspose is a GEMM and our gather
 * kernel (conv-transpose-lowering.ts). Views, shape arithmetic and symbolic values launch nothing.
 */
import type { CandidateReport } from '../profiling/selection';
import { CompileError } from '../../../diagnostics';
import { Graph, Node, attrFloat, attrInt, attrInts, attrString } from '../../../ir/graph';
import { Dim, dimAdd, dimEquals, dimMul, isConcrete } from '../../../ir/symbolic';
import { numel, numeric } from '../../../ir/tensor';
import { attentionOperands, attentionQkvInputs, attentionValueHeadDim, concatSlotsOf, elementwiseSlotsOf } from '../../../ops/fused';
import { VIEW_OPS } from '../../../ops/op-classes';
import { findLowering, registerLowering } from '../../../ops/registry';
import { rollParams, rollShift } from '../../../ops/shape';
import { col2imGeometry } from '../../../ops/conv';
import { LstmParams, gruParams, lstmParams } from '../../../ops/recurrent';
import { backendById } from '../../backend';
import { analyzeBatchedMatMul } from './batched-gemm';
import { CPP_TYPE, CodegenContext, GpuType, TYPE_SUFFIX, Unsupported, isFloatGpuType } from './context';
import { cppFloat, cppInt } from './cpp';
import {
  COMPUTE_CPP,
  ELEMENTWISE_FUNCTOR_OPS,
  ElementwiseInput,
  MAX_STRIDED_RANK,
  broadcastKind,
  broadcastOf,
  chainOfNode,
  concatInputOf,
  slotShapesOf,
  computeTypeOfNode,
  elementwiseStatements,
  fixedBroadcast,
  isDag,
  mixedElementwiseStatements,
} from './elementwise';
import { ConvLowering, conv3dShapeOf, convShapeOf } from './conv-lowering';
import { convTransposeShapeOf, lowerConvTranspose } from './conv-transpose-lowering';
import { convTransposeNhwcRefusal } from '../../../passes/layout';
import { GemmLowering } from './gemm-lowering';
import type { PlatformLibrary } from './index';
import { lowerNms, nmsPlan } from './nms-lowering';
import { groupNormPlan, lowerGroupNorm } from './group-norm-lowering';
import { ARG_REDUCE_OPS, axisNormPlan, isRowView, lowerAxisNorm } from './axis-norm-lowering';
import { lowerPad, padPlan } from './pad-lowering';
import { REDUCE_OPS, lowerReduce, reducePlan } from './reduce-lowering';
import { lowerResize, resizePlan } from './resize-lowering';
import { lowerPasteMasks, pasteMasksPlan } from './paste-masks-lowering';
import { lowerRoiAlign, roiAlignPlan } from './roi-align-lowering';
import {
  constantOfShapePlan,
  lowerConstantOfShape,
  lowerScatterElements,
  lowerScatterND,
  scatterElementsPlan,
  scatterNDPlan,
} from './scatter-lowering';
import { lowerTopK, topkPlan } from './topk-lowering';
import { lowerGlobalPool } from './global-pool-lowering';
import { tileCopy, tilePlan } from './tile-lowering';
import { cumsumPlan, lowerCumSum } from './cumsum-lowering';
import { lowerLrn, lrnPlan } from './lrn-lowering';

export interface KernelChoice {
  library: 'ait' | 'cutlass' | 'ck';
  name: string;
  config: Record<string, unknown>;
  reason: string;
  /** The profiled candidates, with their times (graph.json kernel.candidates), when the choice was measured. */
  candidates?: CandidateReport[];
}

export interface LoweredOp {
  node: Node;
  kernel: KernelChoice;
  /** Statements of the launch function (the LaunchContext is `c`, `batch` its batch). */
  body: string[];
  /** Kernel headers (kernels/*.cuh) the statements need. */
  headers: string[];
  /** Workspace bytes this op needs at max batch. */
  workspaceBytes: number;
  /** C++ condition under which the op runs (a node of an inlined If branch); absent: always. */
  guard?: string;
}

/** Extra kernel templates emitted next to the model (conv lowering helpers). */
export const CODEGEN_HEADER = 'ait_codegen_kernels.cuh';

const typeName = (t: GpuType) => TYPE_SUFFIX[t];

function ours(name: string, reason: string, config: Record<string, unknown> = {}): KernelChoice {
  return { library: 'ait', name, config, reason };
}

/** Row-major strides of a shape, as C++ expressions. */
function stridesOf(ctx: CodegenContext, node: Node, shape: readonly Dim[]): string[] {
  return shape.map((_, i) => ctx.product(shape.slice(i + 1), node));
}

/** A strided copy: out[idx] = in[offset + Σ idx_d · strides_d]. */
function stridedCopy(
  ctx: CodegenContext,
  node: Node,
  input: string,
  output: string,
  outShape: readonly Dim[],
  strides: string[],
  offset: string,
): string[] {
  if (outShape.length > 6) throw new Unsupported(`rank ${outShape.length} copies exceed the kernel's rank 6`);
  const type = ctx.typeOf(output) === 'half' ? '__half' : ctx.pointer(output, true).match(/<(\w+)\*>/)![1];
  return [
    `ait::kernels::StridedCopyArgs<${type}> args{${ctx.pointer(input)}, ${ctx.pointer(output, true)}, ${outShape.length},`,
    `                                            {${outShape.map((d) => ctx.dim(d, node)).join(', ')}},`,
    `                                            {${strides.join(', ')}}, ${offset}};`,
    'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_strided_copy(args, c.stream));',
  ];
}

const NCHW_TO_NHWC = [0, 2, 3, 1];

/** NCHW → NHWC (channels zero-padded for transpose_pad): the shared-memory tiled kernel, 16-byte writes. */
function nchwToNhwc(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const out = node.outputs[0];
  const [n, c, h, w] = ctx.shapeOf(node.inputs[0]);
  const outC = ctx.shapeOf(out)[3];
  const type = ctx.typeOf(out) === 'half' ? '__half' : ctx.pointer(out, true).match(/<(\w+)\*>/)![1];
  const padded = node.op === 'transpose_pad';
  return [
    ours(
      `ait_nchw_to_nhwc${padded ? '_pad' : ''}_${typeName(ctx.typeOf(out))}`,
      `NCHW → NHWC${padded ? ` with channels zero-padded to ${ctx.dim(outC, node)}` : ''}: tiled through shared memory, 16-byte writes`,
    ),
    [
      `ait::kernels::NchwToNhwcArgs<${type}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(out, true)}, ${ctx.dim(n, node)}, ${ctx.product([h, w], node)},`,
      `                                          ${ctx.dim(c, node)}, ${ctx.dim(outC, node)}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_nchw_to_nhwc(args, c.stream));',
    ],
    ['tensor_ops.cuh'],
  ];
}

function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** The backend id CUDA lowerings are registered under (a target `cuda:<arch>` names it). */
export const CUDA_BACKEND = 'cuda';

/**
 * What a CUDA lowering works with: tensors and weights (ctx), the CUTLASS GEMM and convolution lowerings, and the
 * platform's own kernel library where it has one (ROCm: Composable Kernel, backends/rocm/ck).
 */
export interface CudaLowerEnv {
  ctx: CodegenContext;
  gemm: GemmLowering;
  conv: ConvLowering;
  library?: PlatformLibrary;
}

/** A lowering's result: the kernel chosen, the launch statements, the headers they need and the workspace bytes. */
type Lowered = [KernelChoice, string[], string[], number?];

export type CudaLowerFn = (env: CudaLowerEnv, node: Node) => Lowered;

/**
 * Registers a CUDA lowering. `check` throws Unsupported for a node the lowering cannot take, using only what the
 * graph knows (types, shapes, attributes, constant inputs; never the memory plan): it becomes the registered
 * predicate, so support.ts reports the same reason before code generation that code generation would.
 */
function cuda(ops: string | readonly string[], lower: CudaLowerFn, check?: (ctx: CodegenContext, node: Node) => void, domain = ''): void {
  registerLowering<CudaLowerFn>(CUDA_BACKEND, ops, { supports: check && predicateOf(check), lower }, domain);
}

/** A registered predicate from a check that throws Unsupported (shared with the ROCm backend's registrations). */
export function predicateOf(check: (ctx: CodegenContext, node: Node) => void): (graph: Graph, node: Node) => string | undefined {
  return (graph, node) => {
    try {
      check(CodegenContext.forChecks(graph), node);
      return undefined;
    } catch (e) {
      if (e instanceof Unsupported) return e.reason;
      // a dim of a symbol that is neither the batch nor an input dim (runtimeDimErrors reports the inputs' ones once, with the fix)
      if (e instanceof CompileError && e.diagnostics[0]?.code === 'cuda.symbolic-dim') return e.diagnostics[0].message;
      throw e;
    }
  };
}

/** Why an op has no lowering on a backend: data-dependent shapes and control flow first. */
const NO_LOWERING: Record<string, string> = {
  Loop: 'control flow (Loop) is not compiled for the GPU',
  If: 'control flow (If) is not compiled for the GPU',
};

export function noLoweringReason(op: string, backend: string): string {
  return NO_LOWERING[op] ?? `${op} has no ${backendById(backend)?.name ?? backend.toUpperCase()} kernel yet`;
}

/** A strided copy's rank limit (the kernel's StridedCopyArgs), checked up front. */
function checkCopyRank(ctx: CodegenContext, node: Node): void {
  const rank = ctx.shapeOf(node.outputs[0]).length;
  if (rank > 6) throw new Unsupported(`rank ${rank} copies exceed the kernel's rank 6`);
}

const FUSED = 'ait';

// GEMM and convolution: CUTLASS instances (gemm-lowering.ts, conv-lowering.ts)
const cutlass: CudaLowerFn = ({ gemm, conv }, node) => {
  const g = node.op === 'conv2d' ? conv.conv2d(node) : gemm.gemm(node);
  return [g.kernel, g.body, g.headers, g.workspaceBytes];
};
cuda('conv2d', cutlass, convShapeOf, FUSED);
// 3-D convolution: group 1 as 3-D im2col + a CUTLASS GEMM, grouped and depthwise on our kernels (conv-lowering.ts conv3d)
cuda(
  'conv3d',
  ({ conv }, node) => {
    const g = conv.conv3d(node);
    return [g.kernel, g.body, g.headers, g.workspaceBytes];
  },
  conv3dShapeOf,
  FUSED,
);
const checkGemm = (ctx: CodegenContext, node: Node) => {
  const [a, b] = node.inputs;
  ctx.shapeOf(a);
  const bShape = ctx.shapeOf(b);
  if (bShape.length !== 2 || !ctx.isWeight(b)) analyzeBatchedMatMul(node, (t) => ctx.shapeOf(t), new Map());
  if (ctx.typeOf(node.outputs[0]) !== 'half') throw new Unsupported('GEMM output is not a float tensor');
};
cuda('gemm', cutlass, checkGemm, FUSED);
cuda('MatMul', cutlass, checkGemm);

// ConvTranspose: its NHWC form (GEMM + col2im, or the direct grouped kernel); one the layout pass left as ONNX is refused
cuda(
  'conv_transpose2d',
  ({ ctx, gemm }, node) => {
    const g = lowerConvTranspose(ctx, gemm, node);
    return [g.kernel, g.body, g.headers, g.workspaceBytes];
  },
  convTransposeShapeOf,
  FUSED,
);
const refuseOnnxConvTranspose = (ctx: CodegenContext, node: Node): never => {
  throw new Unsupported(convTransposeNhwcRefusal(ctx.graph, node) ?? 'ConvTranspose not converted to its NHWC form');
};
cuda('ConvTranspose', ({ ctx }, node) => refuseOnnxConvTranspose(ctx, node), refuseOnnxConvTranspose);

// Transposes: NCHW → NHWC tiled, any other permutation a strided copy
const transpose: CudaLowerFn = ({ ctx }, node) => {
  const out = node.outputs[0];
  const perm = attrInts(node, 'perm');
  if (perm.join() === NCHW_TO_NHWC.join()) return nchwToNhwc(ctx, node);
  if (node.op === 'transpose_pad')
    throw new Unsupported(`transpose_pad with permutation [${perm.join(',')}] (only NCHW → NHWC has a kernel)`);
  const inShape = ctx.shapeOf(node.inputs[0]);
  const inStrides = stridesOf(ctx, node, inShape);
  return [
    ours(`ait_transpose_${typeName(ctx.typeOf(out))}`, `permutation [${perm.join(',')}] as a strided copy`),
    stridedCopy(
      ctx,
      node,
      node.inputs[0],
      out,
      ctx.shapeOf(out),
      perm.map((p) => inStrides[p]),
      '0',
    ),
    ['tensor_ops.cuh'],
  ];
};
cuda(
  'transpose_pad',
  transpose,
  (ctx, node) => {
    const perm = attrInts(node, 'perm');
    if (perm.join() !== NCHW_TO_NHWC.join())
      throw new Unsupported(`transpose_pad with permutation [${perm.join(',')}] (only NCHW → NHWC has a kernel)`);
  },
  FUSED,
);
cuda('Transpose', transpose, (ctx, node) => {
  if (attrInts(node, 'perm').join() !== NCHW_TO_NHWC.join()) checkCopyRank(ctx, node);
});

cuda(
  'Expand',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const outShape = ctx.shapeOf(out);
    const inShape = ctx.shapeOf(node.inputs[0]);
    const padded: Dim[] = [...Array(outShape.length - inShape.length).fill(1), ...inShape];
    const strides = stridesOf(ctx, node, padded).map((s, i) => (padded[i] === 1 ? '0' : s));
    return [
      ours(`ait_expand_${typeName(ctx.typeOf(out))}`, 'broadcast as a strided copy with zero strides'),
      stridedCopy(ctx, node, node.inputs[0], out, outShape, strides, '0'),
      ['tensor_ops.cuh'],
    ];
  },
  checkCopyRank,
);

cuda(
  'Tile',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const { shape, strides } = tileCopy(ctx, node);
    return [
      ours(`ait_tile_${typeName(ctx.typeOf(out))}`, 'repeat axes as a strided copy with zero strides (tile-lowering.ts)'),
      stridedCopy(ctx, node, node.inputs[0], out, shape, strides, '0'),
      ['tensor_ops.cuh'],
    ];
  },
  tilePlan,
);

// Einsum: canonicalize.ts rewrites the forms the GEMM paths run (einsumToMatMul); what is left is refused
const refuseEinsum = (_ctx: CodegenContext, node: Node): never => {
  throw new Unsupported(
    `Einsum '${String(node.attrs.equation?.value ?? '')}' is not a sum/permutation or a chain of products: a letter repeated within one operand (a diagonal), or axes merged by a Reshape holding more than one run-time dim`,
  );
};
cuda('Einsum', ({ ctx }, node) => refuseEinsum(ctx, node), refuseEinsum);

cuda('CumSum', ({ ctx }, node) => lowerCumSum(ctx, node), cumsumPlan);

cuda('LRN', ({ ctx }, node) => lowerLrn(ctx, node), lrnPlan);

cuda(['Resize', 'Upsample'], ({ ctx }, node) => lowerResize(ctx, node), resizePlan);

cuda('Pad', ({ ctx }, node) => lowerPad(ctx, node), padPlan);

/**
 * An LSTM or GRU (ops/recurrent.ts) as kernels/recurrent.cuh takes it: sizes and storage type, and why a form is
 * refused. `p`: the op's parameters; `data`: its float inputs besides X (by index).
 */
function recurrentPlan(ctx: CodegenContext, node: Node, p: LstmParams, data: number[]) {
  const op = node.op;
  const x = node.inputs[0];
  const type = ctx.typeOf(x);
  if (!isFloatGpuType(type)) throw new Unsupported(`${op} of non-float data`);
  for (const t of [...data.map((i) => node.inputs[i]), ...node.outputs])
    if (t && ctx.typeOf(t) !== type) throw new Unsupported(`${op} tensor '${t}' is stored as ${ctx.typeOf(t)}, X as ${type}`);
  if (node.inputs[4]) throw new Unsupported(`${op} with sequence_lens (per-entry lengths): the kernel runs every entry the whole sequence`);
  if (p.activations.some((a, i) => a !== p.defaults[i]))
    throw new Unsupported(
      `${op} activations [${p.activations.join(', ')}]: the kernel runs the default ${p.defaults.slice(0, p.defaults.length / p.dirs).join(', ')}`,
    );
  const [a0, a1, input] = ctx.shapeOf(x);
  const [seq, batch] = p.layout === 0 ? [a0, a1] : [a1, a0];
  const hidden = p.hidden || (ctx.shapeOf(node.inputs[2])[2] as number);
  if (!isConcrete(input) || !isConcrete(hidden)) throw new Unsupported(`${op} with a run-time input or hidden size`);
  return { seq, batch, input, hidden, type };
}

function lstmPlan(ctx: CodegenContext, node: Node) {
  const p = lstmParams(node, (m) => {
    throw new Unsupported(`LSTM: ${m}`);
  });
  return { p, ...recurrentPlan(ctx, node, p, [1, 2, 3, 5, 6, 7]) };
}

cuda(
  'LSTM',
  ({ ctx }, node) => {
    const { p, seq, batch, input, hidden, type } = lstmPlan(ctx, node);
    const opt = (i: number) => (node.inputs[i] ? ctx.pointer(node.inputs[i]) : 'nullptr');
    const outPtr = (i: number) => (node.outputs[i] ? ctx.pointer(node.outputs[i], true) : 'nullptr');
    const stateBytes = 3 * p.dirs * ctx.maxOf(batch) * hidden * 4;
    return [
      ours(
        `ait_lstm_${typeName(type)}`,
        `${p.direction} LSTM, hidden ${hidden}: one launch per step for ${p.dirs === 2 ? 'both directions' : 'the direction'}, a thread per hidden unit computing its four gates in fp32`,
      ),
      [
        `ait::kernels::LstmArgs<${CPP_TYPE[type]}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.inputs[1])}, ${ctx.pointer(node.inputs[2])},`,
        `    ${opt(3)}, ${opt(7)}, ${opt(5)}, ${opt(6)}, ${outPtr(0)}, ${outPtr(1)}, ${outPtr(2)}, static_cast<float*>(c.workspace),`,
        `    ${ctx.dim(seq, node)}, ${ctx.dim(batch, node)}, ${input}, ${hidden}, ${p.dirs}, ${p.direction === 'reverse' ? 1 : 0}, ${p.layout}, ${p.inputForget ? 1 : 0}, static_cast<float>(${p.clip ?? 0})};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_lstm(args, c.stream));',
      ],
      ['recurrent.cuh'],
      stateBytes,
    ];
  },
  (ctx, node) => {
    lstmPlan(ctx, node);
  },
);

function gruPlan(ctx: CodegenContext, node: Node) {
  const p = gruParams(node, (m) => {
    throw new Unsupported(`GRU: ${m}`);
  });
  if (!p.linearBeforeReset)
    throw new Unsupported(
      "GRU with linear_before_reset = 0: the kernel takes PyTorch's form (1), where a unit's candidate reads only its own row",
    );
  return { p, ...recurrentPlan(ctx, node, p, [1, 2, 3, 5]) };
}

cuda(
  'GRU',
  ({ ctx }, node) => {
    const { p, seq, batch, input, hidden, type } = gruPlan(ctx, node);
    const opt = (i: number) => (node.inputs[i] ? ctx.pointer(node.inputs[i]) : 'nullptr');
    const outPtr = (i: number) => (node.outputs[i] ? ctx.pointer(node.outputs[i], true) : 'nullptr');
    return [
      ours(
        `ait_gru_${typeName(type)}`,
        `${p.direction} GRU, hidden ${hidden}: one launch per step for ${p.dirs === 2 ? 'both directions' : 'the direction'}, a thread per hidden unit computing its three gates in fp32`,
      ),
      [
        `ait::kernels::GruArgs<${CPP_TYPE[type]}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.inputs[1])}, ${ctx.pointer(node.inputs[2])},`,
        `    ${opt(3)}, ${opt(5)}, ${outPtr(0)}, ${outPtr(1)}, static_cast<float*>(c.workspace),`,
        `    ${ctx.dim(seq, node)}, ${ctx.dim(batch, node)}, ${input}, ${hidden}, ${p.dirs}, ${p.direction === 'reverse' ? 1 : 0}, ${p.layout}, static_cast<float>(${p.clip ?? 0})};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_gru(args, c.stream));',
      ],
      ['recurrent.cuh'],
      2 * p.dirs * ctx.maxOf(batch) * hidden * 4,
    ];
  },
  (ctx, node) => {
    gruPlan(ctx, node);
  },
);

/** Col2Im's geometry (ops/conv.ts) lifted to 3 spatial dims, as kernels/col2im.cuh Col2ImArgs takes it. */
function col2imPlan(ctx: CodegenContext, node: Node) {
  const out = node.outputs[0];
  if (!isFloatGpuType(ctx.typeOf(out))) throw new Unsupported('Col2Im of non-float data');
  if (ctx.typeOf(node.inputs[0]) !== ctx.typeOf(out)) throw new Unsupported('Col2Im whose input and output storage types differ');
  const ints = (i: number, what: string) => {
    const v = ctx.graph.lookupTensor(node.inputs[i])?.value;
    if (!v) throw new Unsupported(`Col2Im with ${what} computed at run time`);
    return Array.from(numeric(v), Number);
  };
  const shape = ctx.shapeOf(node.inputs[0]);
  const g = col2imGeometry(node, shape, ints(1, 'image_shape'), ints(2, 'block_shape'), (m) => {
    throw new Unsupported(`Col2Im: ${m}`);
  });
  const lift = (v: number[], one: number) => [...new Array<number>(3 - v.length).fill(one), ...v];
  return { batch: shape[0], g, lift };
}

cuda(
  'Col2Im',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const { batch, g, lift } = col2imPlan(ctx, node);
    const list = (v: number[], one: number) => `{${lift(v, one).join(', ')}}`;
    return [
      ours(
        `ait_col2im_${typeName(ctx.typeOf(out))}`,
        `fold of ${g.positions.join('×')} windows of ${g.block.join('×')} into ${g.image.join('×')}: one thread per output element gathers the windows covering it (fp32 sum)`,
      ),
      [
        `ait::kernels::Col2ImArgs<${CPP_TYPE[ctx.typeOf(out)]}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(out, true)}, ${ctx.dim(batch, node)}, ${String(g.channels)},`,
        `    ${list(g.image, 1)}, ${list(g.block, 1)}, ${list(g.positions, 1)}, ${list(g.strides, 1)}, ${list(g.dilations, 1)},`,
        `    ${list(g.pads.slice(0, g.image.length), 0)}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_col2im(args, c.stream));',
      ],
      ['col2im.cuh'],
    ];
  },
  (ctx, node) => {
    col2imPlan(ctx, node);
  },
);

cuda('RoiAlign', ({ ctx }, node) => lowerRoiAlign(ctx, node), roiAlignPlan);
cuda('PasteMasks', ({ ctx }, node) => lowerPasteMasks(ctx, node), pasteMasksPlan, FUSED);
cuda('ScatterElements', ({ ctx }, node) => lowerScatterElements(ctx, node), scatterElementsPlan);
cuda('ScatterND', ({ ctx }, node) => lowerScatterND(ctx, node), scatterNDPlan);
cuda('ConstantOfShape', ({ ctx }, node) => lowerConstantOfShape(ctx, node), constantOfShapePlan);

cuda(Object.keys(REDUCE_OPS), ({ ctx }, node) => lowerReduce(ctx, node), reducePlan);

cuda('TopK', ({ ctx }, node) => lowerTopK(ctx, node), topkPlan);

cuda('NonMaxSuppression', ({ ctx }, node) => lowerNms(ctx, node), nmsPlan);

cuda(
  'Split',
  ({ ctx }, node) => [
    ours(`ait_split_${typeName(ctx.typeOf(node.inputs[0]))}`, 'split as one strided copy per output'),
    split(ctx, node),
    ['tensor_ops.cuh'],
  ],
  (ctx, node) => {
    splitSizes(ctx, node);
    const rank = ctx.shapeOf(node.inputs[0]).length;
    if (rank > 6) throw new Unsupported(`rank ${rank} copies exceed the kernel's rank 6`);
  },
);

cuda(
  'Slice',
  ({ ctx }, node) => [
    ours(`ait_slice_${typeName(ctx.typeOf(node.outputs[0]))}`, 'slice as a strided copy'),
    slice(ctx, node),
    ['tensor_ops.cuh'],
  ],
  (ctx, node) => {
    sliceParameters(ctx, node);
    checkCopyRank(ctx, node);
  },
);

/**
 * Roll (ours: torch.roll, passes/roll.ts): the tensor's axes with neighbouring unshifted ones merged (a symbolic batch
 * next to an unshifted axis is one product), as the shape and per-axis shifts of ait::kernels::RollArgs.
 */
function rollAxes(ctx: CodegenContext, node: Node): { shape: string[]; shifts: number[] } {
  const shape = ctx.shapeOf(node.inputs[0]);
  const { axes, shifts } = rollParams(node, shape.length);
  const groups: { dims: Dim[]; shift: number }[] = [];
  shape.forEach((d, a) => {
    const k = axes.indexOf(a);
    const shift = k < 0 ? 0 : rollShift(shifts[k], d as number);
    const last = groups[groups.length - 1];
    if (last && shift === 0 && last.shift === 0) last.dims.push(d);
    else groups.push({ dims: [d], shift });
  });
  if (groups.length > MAX_ROLL_RANK)
    throw new Unsupported(`Roll over ${groups.length} axes after merging exceeds the kernel's rank ${MAX_ROLL_RANK}`);
  return { shape: groups.map((g) => ctx.product(g.dims, node)), shifts: groups.map((g) => g.shift) };
}

/** kMaxCopyRank in tensor_ops.cuh: RollArgs' axes. */
const MAX_ROLL_RANK = 6;

cuda(
  'Roll',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const { shape, shifts } = rollAxes(ctx, node);
    const { axes, shifts: given } = rollParams(node, ctx.shapeOf(out).length);
    return [
      ours(
        `ait_roll_${typeName(ctx.typeOf(out))}`,
        `cyclic shift by [${given.join(', ')}] along axes [${axes.join(', ')}]: one pass, 16-byte units where the innermost axis allows`,
      ),
      [
        `ait::kernels::RollArgs<${CPP_TYPE[ctx.typeOf(out)]}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(out, true)}, ${shape.length},`,
        `    {${shape.join(', ')}}, {${shifts.join(', ')}}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_roll(args, c.stream));',
      ],
      ['tensor_ops.cuh'],
    ];
  },
  (ctx, node) => {
    ctx.typeOf(node.outputs[0]);
    rollAxes(ctx, node);
  },
  FUSED,
);

/** Whether a Gather picks one constant index (a strided copy) rather than reading a tensor of indices. */
function isConstantScalarGather(ctx: CodegenContext, node: Node): boolean {
  const indices = ctx.graph.lookupTensor(node.inputs[1])?.value;
  return !!indices && numel(indices.shape) === 1;
}

/** The C++ type of an index tensor (int32 or int64, as Gather and its kin take). */
function indexType(ctx: CodegenContext, node: Node, tensor: string): string {
  const type = ctx.typeOf(tensor);
  if (type !== 'int64' && type !== 'int32') throw new Unsupported(`${node.op} indices of type ${type}`);
  ctx.shapeOf(tensor);
  return CPP_TYPE[type];
}

cuda(
  'Gather',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    if (isConstantScalarGather(ctx, node))
      return [ours(`ait_gather_${typeName(ctx.typeOf(out))}`, 'constant index: a strided copy'), gather(ctx, node), ['tensor_ops.cuh']];
    // a tensor of indices (an embedding lookup, an index map): input [outer, axis, inner] → [outer, indices, inner]
    const inShape = ctx.shapeOf(node.inputs[0]);
    const axis = normalizeAxis(attrInt(node, 'axis', 0), inShape.length);
    const index = indexType(ctx, node, node.inputs[1]);
    return [
      ours(`ait_gather_${typeName(ctx.typeOf(out))}`, `indices from a tensor along axis ${axis}: one element per thread`),
      [
        `ait::kernels::GatherArgs<${CPP_TYPE[ctx.typeOf(out)]}, ${index}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.inputs[1])}, ${ctx.pointer(out, true)},`,
        `    ${ctx.product(inShape.slice(0, axis), node)}, ${ctx.dim(inShape[axis], node)}, ${ctx.product(inShape.slice(axis + 1), node)}, ${ctx.product(ctx.shapeOf(node.inputs[1]), node)}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_gather(args, c.stream));',
      ],
      ['tensor_ops.cuh'],
    ];
  },
  (ctx, node) => {
    ctx.typeOf(node.outputs[0]);
    if (isConstantScalarGather(ctx, node)) {
      gatherParameters(ctx, node);
      checkCopyRank(ctx, node);
    } else indexType(ctx, node, node.inputs[1]);
  },
);

cuda(
  'GatherElements',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const inShape = ctx.shapeOf(node.inputs[0]);
    const outShape = ctx.shapeOf(out);
    const axis = normalizeAxis(attrInt(node, 'axis', 0), inShape.length);
    const index = indexType(ctx, node, node.inputs[1]);
    return [
      ours(`ait_gather_elements_${typeName(ctx.typeOf(out))}`, `indices along axis ${axis}, one element per thread`),
      [
        `ait::kernels::GatherElementsArgs<${CPP_TYPE[ctx.typeOf(out)]}, ${index}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.inputs[1])}, ${ctx.pointer(out, true)},`,
        `    ${outShape.length}, ${axis}, ${ctx.dim(inShape[axis], node)}, {${outShape.map((d) => ctx.dim(d, node)).join(', ')}}, {${stridesOf(ctx, node, inShape).join(', ')}}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_gather_elements(args, c.stream));',
      ],
      ['tensor_ops.cuh'],
    ];
  },
  (ctx, node) => {
    ctx.typeOf(node.outputs[0]);
    indexType(ctx, node, node.inputs[1]);
    checkCopyRank(ctx, node);
  },
);

/** GatherND's index tuple length (the last dim of indices, known) and batch dims. */
function gatherNDParameters(ctx: CodegenContext, node: Node) {
  const inShape = ctx.shapeOf(node.inputs[0]);
  const indicesShape = ctx.shapeOf(node.inputs[1]);
  const k = indicesShape[indicesShape.length - 1];
  if (!isConcrete(k)) throw new Unsupported('GatherND with a symbolic index tuple length');
  if (k > 6) throw new Unsupported(`GatherND index tuples of ${k} entries exceed the kernel's 6`);
  const batchDims = attrInt(node, 'batch_dims', 0);
  return { inShape, indicesShape, k, batchDims };
}

cuda(
  'GatherND',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const { inShape, indicesShape, k, batchDims } = gatherNDParameters(ctx, node);
    const index = indexType(ctx, node, node.inputs[1]);
    const strides = stridesOf(ctx, node, inShape).slice(batchDims, batchDims + k);
    return [
      ours(`ait_gather_nd_${typeName(ctx.typeOf(out))}`, `index tuples of ${k}, ${batchDims} batch dims, one element per thread`),
      [
        `ait::kernels::GatherNDArgs<${CPP_TYPE[ctx.typeOf(out)]}, ${index}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(node.inputs[1])}, ${ctx.pointer(out, true)},`,
        `    ${ctx.product(inShape.slice(0, batchDims), node)}, ${ctx.product(indicesShape.slice(batchDims, -1), node)}, ${ctx.product(inShape.slice(batchDims + k), node)}, ${k},`,
        `    {${inShape
          .slice(batchDims, batchDims + k)
          .map((d) => ctx.dim(d, node))
          .join(', ')}}, {${strides.join(', ')}}, ${ctx.product(inShape.slice(batchDims), node)}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_gather_nd(args, c.stream));',
      ],
      ['tensor_ops.cuh'],
    ];
  },
  (ctx, node) => {
    ctx.typeOf(node.outputs[0]);
    indexType(ctx, node, node.inputs[1]);
    gatherNDParameters(ctx, node);
  },
);

/**
 * A scalar input known at compile time as a C++ expression: a constant, or shape arithmetic on the run's dims
 * (`Range(0, seq)`, a `Slice` end read off `Shape`), evaluated at launch. Undefined for data.
 */
function scalarExpression(ctx: CodegenContext, node: Node, tensor: string, integer: boolean): string | undefined {
  const info = ctx.graph.lookupTensor(tensor);
  if (info?.value && numel(info.value.shape) === 1) {
    const v = numeric(info.value)[0];
    return integer ? cppInt(v) : cppFloat(v);
  }
  const dims = info?.shapeValue;
  if (dims && dims.length === 1) return `static_cast<${integer ? 'int64_t' : 'float'}>(${ctx.dim(dims[0], node)})`;
  return undefined;
}

/** Range's start and delta as C++ expressions, and its length (the output's dim). */
function rangeParameters(ctx: CodegenContext, node: Node) {
  const out = node.outputs[0];
  const type = ctx.typeOf(out);
  const integer = !isFloatGpuType(type);
  const [start, , delta] = [0, 1, 2].map((i) => scalarExpression(ctx, node, node.inputs[i], integer));
  if (start === undefined || delta === undefined || scalarExpression(ctx, node, node.inputs[1], integer) === undefined)
    throw new Unsupported('Range with bounds computed from tensor data (not constants or shape arithmetic)');
  // the length: an expression of the batch and run-time dims (ctx.dim says when it is neither)
  const [count] = ctx.shapeOf(out);
  ctx.dim(count, node);
  return { type, integer, start, delta, count };
}

cuda(
  'Range',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const { type, integer, start, delta, count } = rangeParameters(ctx, node);
    return [
      ours(`ait_range_${typeName(type)}`, "bounds from the run's dims, evaluated at launch"),
      [
        `ait::kernels::RangeArgs<${CPP_TYPE[type]}, ${integer ? 'int64_t' : 'float'}> args{${ctx.pointer(out, true)}, ${ctx.dim(count, node)}, ${start}, ${delta}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_range(args, c.stream));',
      ],
      ['tensor_ops.cuh'],
    ];
  },
  (ctx, node) => {
    rangeParameters(ctx, node);
  },
);

// if_select (passes/inline-if.ts): the If's outputs are copies of the taken branch's values; sizes the branches
// decide differently become run-time dims set from the taken branch's.
cuda(
  'if_select',
  ({ ctx }, node) => {
    const { slot, read } = ctx.condition(node.inputs[0]);
    const n = node.outputs.length;
    const body = [...read];
    node.outputs.forEach((out, i) => {
      const [thenValue, elseValue] = [node.inputs[1 + i], node.inputs[1 + n + i]];
      const shape = ctx.shapeOf(out);
      const [thenShape, elseShape] = [ctx.shapeOf(thenValue), ctx.shapeOf(elseValue)];
      shape.forEach((d, axis) => {
        if (isConcrete(d) || d.terms.size !== 1 || String(d) !== d.symbols[0]) return;
        const info = ctx.graph.symbols.get(d.symbols[0]);
        if (info?.definition?.kind === 'runtime' && info.definition.node === node.name)
          body.push(`${ctx.defineRuntimeDim(d, node)} = ${slot} ? ${ctx.dim(thenShape[axis], node)} : ${ctx.dim(elseShape[axis], node)};`);
      });
      const bytes = `static_cast<size_t>(${ctx.product(shape, node)}) * sizeof(${CPP_TYPE[ctx.typeOf(out)]})`;
      body.push(
        `if (${bytes} > 0)`,
        `  AIT_RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(${ctx.pointer(out, true)}, ${slot} ? static_cast<const void*>(${ctx.pointer(thenValue)}) : static_cast<const void*>(${ctx.pointer(elseValue)}), ${bytes}, cudaMemcpyDeviceToDevice, c.stream));`,
      );
    });
    return [ours('ait_if_select', "the If's condition read back once; the taken branch's outputs copied"), body, []];
  },
  (ctx, node) => {
    ctx.typeOf(node.inputs[0]);
    for (const t of node.inputs.slice(1)) {
      ctx.typeOf(t);
      if (ctx.graph.lookupTensor(t)?.shapeValue && !ctx.graph.lookupTensor(t)?.value)
        throw new Unsupported(`branch value '${t}' is shape arithmetic (no device buffer to copy)`);
    }
  },
  FUSED,
);

/** nonzero.cuh kMaxNonZeroRank and kNonZeroTile. */
const MAX_NONZERO_RANK = 8;
const NONZERO_TILE = 2048;

function checkNonZero(ctx: CodegenContext, node: Node): void {
  const rank = ctx.shapeOf(node.inputs[0]).length;
  if (rank === 0 || rank > MAX_NONZERO_RANK)
    throw new Unsupported(`NonZero of a rank-${rank} input (the kernel takes 1..${MAX_NONZERO_RANK})`);
}

// NonZero: count (and read the count back: the output's column count is a run-time dim), then write coordinates
cuda(
  'NonZero',
  ({ ctx }, node) => {
    checkNonZero(ctx, node);
    const x = node.inputs[0];
    const shape = ctx.shapeOf(x);
    const type = CPP_TYPE[ctx.typeOf(x)];
    const count = ctx.defineRuntimeDim(ctx.shapeOf(node.outputs[0])[1], node);
    const maxElements = ctx.maxOf(shape.reduce<Dim>((a, d) => dimMul(a, d), 1));
    return [
      ours(
        `ait_nonzero_${typeName(ctx.typeOf(x))}`,
        'count, read the count back (a run-time dim), then write coordinates in element order',
      ),
      [
        `ait::kernels::NonZeroArgs<${type}> args{${ctx.pointer(x)}, ${ctx.product(shape, node)}, ${shape.length}, {${shape.map((d) => ctx.dim(d, node)).join(', ')}},`,
        `    static_cast<int64_t*>(c.workspace), ${ctx.pointer(node.outputs[0], true)}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_nonzero_count(args, c.stream));',
        `if (const char* failure = ait::read_device(c, &${count}, ait::kernels::nonzero_total(args), sizeof(int64_t))) return failure;`,
        `AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_nonzero_write(args, ${count}, c.stream));`,
      ],
      ['nonzero.cuh'],
      8 * (Math.ceil(maxElements / NONZERO_TILE) + 1),
    ];
  },
  checkNonZero,
);

/** Inputs per launch of ait::kernels::concat_kernel (kMaxConcatInputs in tensor_ops.cuh). */
export const CONCAT_INPUTS_PER_LAUNCH = 8;

/**
 * The launches of a Concat of inputs with these sizes along its axis: ceil(N / 8), each of up to 8 consecutive inputs
 * (first, count) written at `offset` on the output's axis (the sum of the sizes of the inputs before them). Launches
 * rather than a larger input table in the kernel parameter (sm80/sm90 launches take 4 KB of parameters, more only with
 * CUDA 12.1 and a recent driver): any N works and the kernel's per-element input search stays at most 8 steps.
 */
export function concatLaunches(axisSizes: readonly Dim[]): { first: number; count: number; offset: Dim }[] {
  const launches: { first: number; count: number; offset: Dim }[] = [];
  let offset: Dim = 0;
  for (let first = 0; first < axisSizes.length; first += CONCAT_INPUTS_PER_LAUNCH) {
    const count = Math.min(CONCAT_INPUTS_PER_LAUNCH, axisSizes.length - first);
    launches.push({ first, count, offset });
    for (const size of axisSizes.slice(first, first + count)) offset = dimAdd(offset, size);
  }
  return launches;
}

cuda(
  'Concat',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const shape = ctx.shapeOf(out);
    const axis = normalizeAxis(attrInt(node, 'axis'), shape.length);
    const inputs = node.inputs.filter((i) => i);
    const t = CPP_TYPE[ctx.typeOf(out)];
    const launch = (first: number, count: number): string[] => [
      `ait::kernels::ConcatArgs<${t}> args{};`,
      ...inputs
        .slice(first, first + count)
        .flatMap((input, k) => [
          `args.inputs[${k}] = ${ctx.pointer(input)};`,
          `args.axis_sizes[${k}] = ${ctx.dim(ctx.shapeOf(input)[axis], node)};`,
        ]),
      `args.num_inputs = ${count};`,
      `args.output = ${ctx.pointer(out, true)};`,
      `args.outer = ${ctx.product(shape.slice(0, axis), node)};`,
      `args.inner = ${ctx.product(shape.slice(axis + 1), node)};`,
    ];
    const call = 'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_concat(args, c.stream));';
    if (inputs.length <= CONCAT_INPUTS_PER_LAUNCH)
      return [
        ours(`ait_concat_${typeName(ctx.typeOf(out))}`, `${inputs.length} inputs along axis ${axis}`),
        [...launch(0, inputs.length), call],
        ['tensor_ops.cuh'],
      ];
    const launches = concatLaunches(inputs.map((input) => ctx.shapeOf(input)[axis]));
    return [
      ours(
        `ait_concat_${typeName(ctx.typeOf(out))}`,
        `${inputs.length} inputs along axis ${axis}: ${launches.length} launches of up to ${CONCAT_INPUTS_PER_LAUNCH}, each into its slab of the output`,
      ),
      launches.flatMap(({ first, count, offset }) => [
        `{  // inputs ${first}..${first + count - 1}`,
        ...[
          ...launch(first, count),
          `args.output_axis = ${ctx.dim(shape[axis], node)};`,
          `args.output_axis_offset = ${ctx.dim(offset, node)};`,
          call,
        ].map((line) => `  ${line}`),
        '}',
      ]),
      ['tensor_ops.cuh'],
    ];
  },
  (ctx, node) => {
    ctx.shapeOf(node.outputs[0]);
  },
);

const layerNorm: CudaLowerFn = ({ ctx }, node) => {
  const out = node.outputs[0];
  const shape = ctx.shapeOf(out);
  const gamma = node.inputs[1] ? ctx.pointer(node.inputs[1]) : 'nullptr';
  const beta = node.inputs[2] ? ctx.pointer(node.inputs[2]) : 'nullptr';
  return [
    ours('ait_layernorm_f16', 'one block per row, fp32 statistics'),
    [
      `ait::kernels::LayerNormArgs<__half> args{${ctx.pointer(node.inputs[0])}, ${gamma}, ${beta}, ${ctx.pointer(out, true)},`,
      `                                         ${ctx.product(shape.slice(0, -1), node)}, ${ctx.dim(shape[shape.length - 1], node)}, ${cppFloat(attrFloat(node, 'epsilon', 1e-5))}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_layernorm(args, c.stream));',
    ],
    ['normalization.cuh'],
  ];
};
cuda('layernorm', layerNorm, undefined, FUSED);
cuda('LayerNormalization', layerNorm, (ctx, node) => {
  const shape = ctx.shapeOf(node.outputs[0]);
  if (normalizeAxis(attrInt(node, 'axis', -1), shape.length) !== shape.length - 1)
    throw new Unsupported('LayerNormalization over more than the last axis');
});

// Softmax over the last axis: the vectorized row kernel; any other axis, LogSoftmax, LpNormalization, ArgMax/ArgMin:
// axis_norm.cuh (axis-norm-lowering.ts)
cuda(
  'Softmax',
  ({ ctx }, node) => {
    const view = axisNormPlan(ctx, node);
    if (!isRowView(view)) return lowerAxisNorm(ctx, node);
    const out = node.outputs[0];
    return [
      ours('ait_softmax_f16', 'one block per row'),
      [
        `ait::kernels::SoftmaxArgs<__half> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(out, true)}, ${ctx.product(view.outer, node)}, ${ctx.product(view.n, node)}, 1.f};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_softmax(args, c.stream));',
      ],
      ['normalization.cuh'],
    ];
  },
  axisNormPlan,
);
cuda(['LogSoftmax', 'LpNormalization', ...ARG_REDUCE_OPS], ({ ctx }, node) => lowerAxisNorm(ctx, node), axisNormPlan);
cuda(['InstanceNormalization', 'GroupNormalization'], ({ ctx }, node) => lowerGroupNorm(ctx, node), groupNormPlan);

/** Head dims the attention kernels are instantiated at (attention.cuh, attention_padded_head_dim): a head dim runs
 * at the smallest one >= it, its extra dims read as zeros. */
export const ATTENTION_HEAD_DIMS = [32, 48, 64, 80, 96, 128, 160, 192, 256];
/** The padded head dim `headDim` runs at; 0 when none (outside 1..256). */
export function attentionPaddedHeadDim(headDim: number): number {
  return headDim >= 1 ? (ATTENTION_HEAD_DIMS.find((d) => d >= headDim) ?? 0) : 0;
}
/** The padded dim of q·k's D or of v's Dv when they differ (attention.cuh, attention_padded_cuda_core_dim): the
 * CUDA-core kernel runs each at its own (launch_attention_dims), from 8 and 16, then ATTENTION_HEAD_DIMS. */
export function attentionPaddedCudaCoreDim(headDim: number): number {
  return headDim >= 1 && headDim <= 16 ? (headDim <= 8 ? 8 : 16) : attentionPaddedHeadDim(headDim);
}

cuda(
  'attention',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const heads = attrInt(node, 'num_heads');
    const headDim = attrInt(node, 'head_dim');
    const valueHeadDim = attentionValueHeadDim(node);
    // values of their own head dim: q·k and p·v each at its own padded dim (launch_attention_dims), not both at the
    // padded max (EfficientFormer's D 32, Dv 128 would do q·k over 128 dims)
    const ownValueDim = valueHeadDim !== headDim;
    const padded = ownValueDim
      ? [attentionPaddedCudaCoreDim(headDim), attentionPaddedCudaCoreDim(valueHeadDim)]
      : [attentionPaddedHeadDim(headDim)];
    const first = attentionQkvInputs(node);
    const shape = ctx.shapeOf(node.inputs[0]);
    // keys and values: packed qkv has the queries' length; else the k/v input's
    const keyShape = first === 1 ? shape : ctx.shapeOf(node.inputs[first - 1]);
    const operands = attentionOperands(node);
    const [q, k, v] = operands.map((o) => `${ctx.pointer(node.inputs[o.input])}${o.offset ? ` + ${o.offset}` : ''}`);
    const biases = node.inputs.slice(first);
    const causal = attrInt(node, 'causal', 0) !== 0;
    const masked = biases.length > 0 || causal;
    // a value head dim, v token stride or head strides of their own (per-head split projections): the kernel's
    // fields default to -1 (as before), so only these forms set them
    const defaultHeadStrides = [headDim, headDim, valueHeadDim];
    const ownHeadStrides = operands.some((o, i) => o.headStride !== defaultHeadStrides[i]);
    const ownValues = valueHeadDim !== headDim || ownHeadStrides || operands[2].tokenStride !== operands[1].tokenStride;
    const tensorCoreDim = attentionPaddedHeadDim(Math.max(headDim, valueHeadDim));
    const ownValuesOnTensorCores =
      tensorCoreDim <= 192 &&
      [headDim, valueHeadDim, ...operands.flatMap((o) => [o.tokenStride, o.headStride, o.offset])].every((x) => x % 4 === 0);
    const lines = [
      'ait::kernels::AttentionArgs<__half> args{};',
      `args.q = ${q};`,
      `args.k = ${k};`,
      `args.v = ${v};`,
      `args.token_stride = ${operands[0].tokenStride};`,
      // keys/values: their own token stride and length where they differ from the queries' (else -1: the same)
      ...(operands[1].tokenStride !== operands[0].tokenStride ? [`args.kv_token_stride = ${operands[1].tokenStride};`] : []),
      `args.output = ${ctx.pointer(out, true)};`,
      `args.batch = ${ctx.dim(shape[0], node)};`,
      `args.sequence = ${ctx.dim(shape[1], node)};`,
      ...(!dimEquals(keyShape[1], shape[1]) ? [`args.key_sequence = ${ctx.dim(keyShape[1], node)};`] : []),
      `args.heads = ${heads};`,
      `args.head_dim = ${headDim};`,
      `args.scale = ${cppFloat(attrFloat(node, 'scale', 1 / Math.sqrt(headDim)))};`,
      ...(valueHeadDim !== headDim ? [`args.value_head_dim = ${valueHeadDim};`] : []),
      ...(operands[2].tokenStride !== operands[1].tokenStride ? [`args.v_token_stride = ${operands[2].tokenStride};`] : []),
      ...(ownHeadStrides ? ['q', 'k', 'v'].map((x, i) => `args.${x}_head_stride = ${operands[i].headStride};`) : []),
    ];
    biases.forEach((bias, i) => {
      // [Bk, 1|H, 1|S, 1|Sk], row-major; a size-1 axis broadcasts (stride 0), batch b reads b % Bk
      const [bk, bh, bq, bkey] = ctx.shapeOf(bias);
      const rowStride = bkey === 1 ? 0 : 1;
      const queryStride = bq === 1 ? 0 : bkey === 1 ? 1 : bkey;
      const headStride = bh === 1 ? 0 : ctx.product([bq, bkey], node);
      const batchStride = ctx.product([bh, bq, bkey], node);
      lines.push(
        `args.bias[${i}] = {${ctx.pointer(bias)}, ${ctx.dim(bk, node)}, ${batchStride}, ${headStride}, ${ctx.dim(queryStride, node)}, ${rowStride}};`,
      );
    });
    if (biases.length) lines.push(`args.bias_count = ${biases.length};`);
    if (causal) lines.push('args.causal = true;');
    if (attrInt(node, 'zero_masked_rows', 0)) lines.push('args.zero_masked_rows = true;');
    // instantiated at the padded head dim(s) only (attention.cuh), so a build compiles just the head dims it uses; the
    // call is parenthesized: the template argument list's commas would split the macro's argument
    lines.push(
      `AIT_RETURN_IF_CUDA_ERROR((ait::kernels::launch_attention_${ownValueDim ? 'dims' : 'padded'}<__half, ${padded.join(', ')}${masked ? ', true' : ''}>(args, c.stream)));`,
    );
    const what = [
      first === 3 ? 'separate Q, K, V' : first === 2 ? 'Q and packed KV' : 'packed QKV',
      ...(!dimEquals(shape[1], keyShape[1]) ? [isConcrete(keyShape[1]) ? `${keyShape[1]} keys` : 'keys of another length'] : []),
      ...(biases.length ? [`${biases.length} score bias${biases.length > 1 ? 'es' : ''}`] : []),
      ...(causal ? ['causal'] : []),
      ...(ownHeadStrides ? ['split per head'] : []),
      ...(valueHeadDim !== headDim ? [`value head dim ${valueHeadDim}`] : []),
    ];
    const unpadded = ownValueDim ? [headDim, valueHeadDim] : [headDim];
    const paddedWhat = padded.every((p, i) => p === unpadded[i])
      ? ''
      : ownValueDim
        ? `, head dims padded to ${padded[0]} (q·k) and ${padded[1]} (v)`
        : `, head dim padded to ${padded[0]}`;
    return [
      ours(
        `ait_attention_f16_d${headDim}${valueHeadDim !== headDim ? `_dv${valueHeadDim}` : ''}${masked ? '_masked' : ''}`,
        // attention.cuh runs these forms on its tensor-core kernel at the padded max(D, Dv) where every dim, stride and
        // offset is a multiple of 4 halves (8-byte rows), else on its CUDA-core kernel at the dims of launch_attention_dims
        `${ownValues && !ownValuesOnTensorCores ? 'flash attention on CUDA cores' : 'flash-attention-2 on tensor cores'} reading ${what.join(', ')}${
          ownValues && ownValuesOnTensorCores ? `, at head dim ${tensorCoreDim} (the padded max of D and Dv)` : paddedWhat
        }`,
      ),
      lines,
      ['attention.cuh'],
    ];
  },
  (ctx, node) => {
    const headDim = attrInt(node, 'head_dim');
    const valueHeadDim = attentionValueHeadDim(node);
    for (const d of [headDim, valueHeadDim])
      if (!attentionPaddedHeadDim(d))
        throw new Unsupported(`attention head dim ${d} (the kernels take 1 to ${ATTENTION_HEAD_DIMS.at(-1)})`);
    const biases = node.inputs.slice(attentionQkvInputs(node));
    if (biases.length > 2) throw new Unsupported(`attention with ${biases.length} score biases (the kernel reads at most 2)`);
    for (const t of [...node.inputs, node.outputs[0]])
      if (ctx.typeOf(t) !== 'half') throw new Unsupported(`attention tensor '${t}' is not a float tensor (fp16 storage)`);
  },
  FUSED,
);

/**
 * Pool2dArgs' end pads (back, bottom, right), given only where count_include_pad reads them and they differ from the
 * begin pads (the kernel's default: symmetric); `pads` is [begins…, ends…] over `spatial` axes, `before` the fields
 * between count_include_pad and them (a 2-D pool: the depth fields' defaults and pad_back -1).
 */
function poolEndPads(includePad: boolean, pads: number[], spatial: number, before: string): string {
  const begins = pads.slice(0, spatial);
  const ends = pads.slice(spatial);
  if (!includePad || ends.every((e, i) => e === begins[i])) return '';
  return `, ${before}${ends.join(', ')}`;
}

cuda(
  'pool2d',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const x = ctx.shapeOf(node.inputs[0]);
    const y = ctx.shapeOf(out);
    const kernel = attrInts(node, 'kernel');
    const strides = attrInts(node, 'strides', [1, 1]);
    const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
    const dilations = attrInts(node, 'dilations', [1, 1]);
    const kind = attrString(node, 'kind');
    const dims = [x[1], x[2], x[3], y[1], y[2]].map((d) => ctx.dim(d, node));
    const includePad = kind === 'avg' && attrInt(node, 'count_include_pad', 0) !== 0;
    return [
      ours(`ait_pool2d_${kind}_f16`, 'channels innermost; 8 channels (16 bytes) per thread when C % 8 == 0, else one per thread'),
      [
        `ait::kernels::Pool2dArgs<__half> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(out, true)}, ${ctx.dim(x[0], node)},`,
        `                                      ${dims.join(', ')},`,
        `                                      ${kernel.join(', ')}, ${strides.join(', ')}, ${pads[0]}, ${pads[1]}, ${dilations.join(', ')},`,
        `                                      ait::kernels::PoolMode::${kind === 'max' ? 'kMax' : 'kAverage'}, ${includePad ? 'true' : 'false'}${poolEndPads(includePad, pads, 2, '1, 1, 1, 1, 0, 1, -1, ')}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_pool2d_nhwc(args, c.stream));',
      ],
      ['pooling.cuh'],
    ];
  },
  undefined,
  FUSED,
);

cuda(
  'pool3d',
  ({ ctx }, node) => {
    const out = node.outputs[0];
    const x = ctx.shapeOf(node.inputs[0]);
    const y = ctx.shapeOf(out);
    const kernel = attrInts(node, 'kernel');
    const strides = attrInts(node, 'strides', [1, 1, 1]);
    const pads = attrInts(node, 'pads', [0, 0, 0, 0, 0, 0]);
    const dilations = attrInts(node, 'dilations', [1, 1, 1]);
    const kind = attrString(node, 'kind');
    const includePad = kind === 'avg' && attrInt(node, 'count_include_pad', 0) !== 0;
    // Pool2dArgs: the H/W fields positionally, then the depth fields
    const dims = [x[2], x[3], x[4], y[2], y[3]].map((d) => ctx.dim(d, node));
    return [
      ours(`ait_pool3d_${kind}_f16`, 'NDHWC, channels innermost; 8 channels (16 bytes) per thread when C % 8 == 0, else one per thread'),
      [
        `ait::kernels::Pool2dArgs<__half> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(out, true)}, ${ctx.dim(x[0], node)},`,
        `                                      ${dims.join(', ')},`,
        `                                      ${kernel[1]}, ${kernel[2]}, ${strides[1]}, ${strides[2]}, ${pads[1]}, ${pads[2]}, ${dilations[1]}, ${dilations[2]},`,
        `                                      ait::kernels::PoolMode::${kind === 'max' ? 'kMax' : 'kAverage'}, ${includePad ? 'true' : 'false'},`,
        `                                      ${ctx.dim(x[1], node)}, ${ctx.dim(y[1], node)}, ${kernel[0]}, ${strides[0]}, ${pads[0]}, ${dilations[0]}${poolEndPads(includePad, pads, 3, '')}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_pool2d_nhwc(args, c.stream));',
      ],
      ['pooling.cuh'],
    ];
  },
  undefined,
  FUSED,
);

cuda('global_pool', ({ ctx }, node) => lowerGlobalPool(ctx, node), undefined, FUSED);

// a view that is a model output: its bytes must land in the caller's buffer (other views launch nothing)
cuda([...VIEW_OPS], ({ ctx }, node) => {
  const out = node.outputs[0];
  const bytes = `${ctx.product(ctx.shapeOf(out), node)} * sizeof(${ctx.pointer(out, true).match(/<(\w+)\*>/)![1]})`;
  return [
    ours('ait_copy', 'a view that is a model output: copied into the output buffer'),
    [
      `AIT_RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(${ctx.pointer(out, true)}, ${ctx.pointer(node.inputs[0])}, ${bytes}, cudaMemcpyDeviceToDevice, c.stream));`,
    ],
    [],
  ];
});

// elementwise: a fused chain, or a lone ONNX op that has a functor. fp16 in and out with a fixed broadcast: the
// vectorized kernel; any other types (bool, int32, int64 data, integer math) or broadcast: the mixed kernel. An
// input slot that is a Concat of pieces (ops/fused.ts ConcatSlot) is read from the pieces (kConcat) on both.
function isUniformHalf(ctx: CodegenContext, node: Node): boolean {
  const outShape = ctx.shapeOf(node.outputs[0]);
  return (
    computeTypeOfNode(node, ctx.graph) === 'float' &&
    [node.outputs[0], ...node.inputs].every((t) => ctx.typeOf(t) === 'half') &&
    slotShapesOf(ctx, node).every((shape) => halfKernelReads(shape, outShape))
  );
}

/** The reads of each input slot of an elementwise node (kConcat for a concat slot). */
function elementwiseInputs(ctx: CodegenContext, node: Node, outShape: readonly Dim[], mixed: boolean): ElementwiseInput[] {
  const shapes = slotShapesOf(ctx, node);
  return elementwiseSlotsOf(node).map((slot, k) =>
    slot.concat
      ? concatInputOf(ctx, node, slot, shapes[k], outShape)
      : { tensor: slot.tensor, ...broadcastOf(ctx, node, shapes[k], outShape, mixed) },
  );
}

/** Whether the fp16 kernel reads `shape` for `out`: a fixed broadcast, or strides over at most 6 axis runs. */
function halfKernelReads(shape: readonly Dim[], out: readonly Dim[]): boolean {
  try {
    broadcastKind(shape, out);
    return true;
  } catch (e) {
    if (e instanceof Unsupported) return false;
    throw e;
  }
}

const elementwise: CudaLowerFn = ({ ctx }, node) => {
  const out = node.outputs[0];
  const outShape = ctx.shapeOf(out);
  const uniform = isUniformHalf(ctx, node);
  const inputs = elementwiseInputs(ctx, node, outShape, !uniform);
  const chain = chainOfNode(node, ctx.graph);
  // a concat slot has no tensor of its own (its pointer is never read): nullptr
  const pointers = inputs.map((i) => (i.concat ? 'nullptr' : ctx.pointer(i.tensor)));
  const pieces = inputs.reduce((n, i) => n + (i.concat?.pointers.length ?? 0), 0);
  const concatNote = pieces ? `, ${pieces} concat pieces read in place of their Concat` : '';
  // the ONNX nodes fused, less the Concats read in place (counted as pieces below)
  const ops = node.op === 'elementwise' ? Math.max(1, node.sourceNodes.length - concatSlotsOf(node).length) : 1;
  const form = isDag(chain) ? ' as a DAG (every value kept in registers)' : '';
  if (!uniform) {
    const compute = computeTypeOfNode(node, ctx.graph);
    return [
      ours(
        `ait_mixed_elementwise_${typeName(ctx.typeOf(out))}_${inputs.length}in`,
        `${ops} elementwise op(s)${form} in ${COMPUTE_CPP[compute]} over ${[...new Set(node.inputs.map((t) => ctx.typeOf(t)))].join('/')} inputs${concatNote}, one element per thread`,
        { chain },
      ),
      mixedElementwiseStatements(
        inputs,
        pointers,
        // a concat slot's type parameter is its first piece's (kConcat loads read each piece's own, ew::Storage)
        elementwiseSlotsOf(node).map((slot) => CPP_TYPE[ctx.typeOf(slot.inputs[0])]),
        ctx.pointer(out, true),
        CPP_TYPE[ctx.typeOf(out)],
        ctx.product(outShape, node),
        outShape.map((d) => ctx.dim(d, node)),
        chain,
        compute,
      ),
      ['elementwise.cuh'],
    ];
  }
  const body = elementwiseStatements(inputs, pointers, ctx.pointer(out, true), ctx.product(outShape, node), chain);
  return [
    ours(`ait_fused_elementwise_f16_${inputs.length}in`, `${ops} elementwise op(s)${form}${concatNote}, 16-byte vectors when aligned`, {
      chain,
      ...(pieces ? { concat_pieces: pieces } : {}),
    }),
    body,
    ['elementwise.cuh'],
  ];
};
const checkElementwise = (ctx: CodegenContext, node: Node) => {
  const out = node.outputs[0];
  ctx.typeOf(out);
  const outShape = ctx.shapeOf(out);
  const uniform = isUniformHalf(ctx, node);
  for (const t of node.inputs) ctx.typeOf(t);
  const shapes = slotShapesOf(ctx, node);
  elementwiseSlotsOf(node).forEach((slot, k) => {
    const shape = shapes[k];
    if (slot.concat) {
      concatInputOf(ctx, node, slot, shape, outShape, false);
      return;
    }
    if (uniform || fixedBroadcast(shape, outShape)) return;
    if (outShape.length > MAX_STRIDED_RANK) {
      broadcastKind(shape, outShape); // its reason first (e.g. too many axis runs for any kernel)
      throw new Unsupported(
        `broadcast of [${shape.join(',')}] to [${outShape.join(',')}]: rank ${outShape.length} exceeds the mixed-type kernel's ${MAX_STRIDED_RANK}`,
      );
    }
  });
  chainOfNode(node, ctx.graph);
};
cuda('elementwise', elementwise, checkElementwise, FUSED);
cuda([...ELEMENTWISE_FUNCTOR_OPS], elementwise, checkElementwise);

/**
 * Slice's parameters as C++ (host) expressions: each of starts/ends is a constant, shape arithmetic (a dim
 * expression), or a tensor computed on the device (then read back to the host before the copy: a stream
 * synchronization). Axes and steps are constants (shape inference requires them).
 */
function sliceParameters(ctx: CodegenContext, node: Node) {
  const inShape = ctx.shapeOf(node.inputs[0]);
  const values = (i: number) => {
    const t = node.inputs[i] ? ctx.graph.lookupTensor(node.inputs[i]) : undefined;
    return t?.value ? Array.from(numeric(t.value)) : undefined;
  };
  const count = ctx.shapeOf(node.inputs[1])[0];
  if (!isConcrete(count)) throw new Unsupported('Slice with starts of unknown length');
  const bound = (i: number): { exprs: (read: string) => string[]; onDevice: boolean } => {
    const constant = values(i);
    if (constant) return { exprs: () => constant.map((v) => cppInt(v)), onDevice: false };
    const symbolic = ctx.graph.lookupTensor(node.inputs[i])?.shapeValue;
    if (symbolic) return { exprs: () => symbolic.map((d) => ctx.dim(d, node)), onDevice: false };
    ctx.typeOf(node.inputs[i]);
    return { exprs: (read) => Array.from({ length: count }, (_, k) => `${read}[${k}]`), onDevice: true };
  };
  const starts = bound(1);
  const ends = bound(2);
  const axes = (values(3) ?? Array.from({ length: count }, (_, i) => i)).map((a) => normalizeAxis(a, inShape.length));
  const steps = values(4) ?? axes.map(() => 1);
  return { inShape, starts, ends, axes, steps, constantStarts: values(1), constantEnds: values(2) };
}

function slice(ctx: CodegenContext, node: Node): string[] {
  const { inShape, starts, ends, axes, steps, constantStarts, constantEnds } = sliceParameters(ctx, node);
  const outShape = ctx.shapeOf(node.outputs[0]);
  const body: string[] = [];
  // bounds computed on the device: read back (as int64) before the sizes are known
  const read = (which: 'starts' | 'ends', input: string, onDevice: boolean) => {
    if (!onDevice) return '';
    const type = CPP_TYPE[ctx.typeOf(input)];
    body.push(
      `${type} ${which}_read[${axes.length}];`,
      `if (const char* failure = ait::read_device(c, ${which}_read, ${ctx.pointer(input)}, sizeof ${which}_read)) return failure;`,
    );
    return `${which}_read`;
  };
  const startExprs = starts.exprs(read('starts', node.inputs[1], starts.onDevice));
  const endExprs = ends.exprs(read('ends', node.inputs[2], ends.onDevice));
  const inStrides = inShape.map((_, i) => inShape.slice(i + 1));
  const strides: string[] = inShape.map((_, d) => ctx.product(inStrides[d], node));
  const offsetTerms: string[] = [];
  axes.forEach((axis, k) => {
    const size = inShape[axis];
    const step = steps[k];
    if (isConcrete(size) && constantStarts && constantEnds) {
      // everything known at compile time: a constant offset
      const s = constantStarts[k];
      let start = s < 0 ? s + size : s;
      start = step > 0 ? Math.min(Math.max(start, 0), size) : Math.min(Math.max(start, 0), size - 1);
      if (start) offsetTerms.push(`${start} * ${strides[axis]}`);
    } else {
      body.push(`const ait::SliceAxis axis${k} = ait::slice_axis(${ctx.dim(size, node)}, ${startExprs[k]}, ${endExprs[k]}, ${step});`);
      const length = outShape[axis];
      const info = !isConcrete(length) && length.terms.size === 1 ? ctx.graph.symbols.get(length.symbols[0]) : undefined;
      if (info?.definition?.kind === 'runtime' && info.definition.node === node.name && String(length) === info.name)
        body.push(`${ctx.defineRuntimeDim(length, node)} = axis${k}.count;`);
      offsetTerms.push(`axis${k}.begin * ${strides[axis]}`);
    }
    if (step !== 1) strides[axis] = `${step} * ${strides[axis]}`;
  });
  return [
    ...body,
    ...stridedCopy(ctx, node, node.inputs[0], node.outputs[0], outShape, strides, offsetTerms.length ? offsetTerms.join(' + ') : '0'),
  ];
}

/**
 * Split's sizes along its axis, as dims: the `split` input or attribute when given; else every output's own size
 * when all are named; else the even split of a known axis (ceil(dim / n) each, the last smaller, as opset 18).
 */
function splitSizes(ctx: CodegenContext, node: Node): { axis: number; sizes: Dim[] } {
  const inShape = ctx.shapeOf(node.inputs[0]);
  const axis = normalizeAxis(attrInt(node, 'axis', 0), inShape.length);
  const given = node.inputs[1] ? ctx.graph.lookupTensor(node.inputs[1])?.value : undefined;
  if (node.inputs[1] && !given) throw new Unsupported('Split with sizes computed at run time');
  const listed = given ? Array.from(numeric(given)) : node.attrs.split ? attrInts(node, 'split') : undefined;
  if (listed) return { axis, sizes: listed };
  if (node.outputs.every((o) => o)) return { axis, sizes: node.outputs.map((o) => ctx.shapeOf(o)[axis]) };
  const dim = inShape[axis];
  if (!isConcrete(dim)) throw new Unsupported('Split of a symbolic axis with unused outputs');
  const n = node.attrs.num_outputs ? attrInt(node, 'num_outputs') : node.outputs.length;
  const each = Math.ceil(dim / n);
  return { axis, sizes: Array.from({ length: n }, (_, i) => Math.max(0, Math.min(each, dim - each * i))) };
}

/** Split: one strided copy per used output, each at the sum of the sizes before it along the axis. */
function split(ctx: CodegenContext, node: Node): string[] {
  const inShape = ctx.shapeOf(node.inputs[0]);
  const { axis, sizes } = splitSizes(ctx, node);
  const strides = stridesOf(ctx, node, inShape);
  const body: string[] = [];
  let before: Dim = 0;
  node.outputs.forEach((out, k) => {
    if (out) {
      const offset = isConcrete(before) && before === 0 ? '0' : `${ctx.dim(before, node)} * ${strides[axis]}`;
      body.push('{', ...stridedCopy(ctx, node, node.inputs[0], out, ctx.shapeOf(out), strides, offset).map((l) => `  ${l}`), '}');
    }
    before = dimAdd(before, sizes[k]);
  });
  return body;
}

/** Gather's constant scalar index and axis (Unsupported for several or non-constant indices, a symbolic axis). */
function gatherParameters(ctx: CodegenContext, node: Node) {
  const indices = ctx.graph.lookupTensor(node.inputs[1])?.value;
  if (!indices || numel(indices.shape) !== 1) throw new Unsupported('Gather with non-constant or several indices');
  const inShape = ctx.shapeOf(node.inputs[0]);
  const axis = normalizeAxis(attrInt(node, 'axis', 0), inShape.length);
  const size = inShape[axis];
  if (!isConcrete(size)) throw new Unsupported('Gather along a symbolic axis');
  const outShape = ctx.shapeOf(node.outputs[0]);
  // output = input with `axis` removed (scalar index) or kept with size 1
  const keep = indices.shape.length === 1;
  if (inShape.length - (keep ? 0 : 1) !== outShape.length) throw new Unsupported('Gather output rank does not match');
  return { indices, inShape, axis, size, outShape, keep };
}

function gather(ctx: CodegenContext, node: Node): string[] {
  const { indices, inShape, axis, size, outShape, keep } = gatherParameters(ctx, node);
  let index = numeric(indices)[0];
  if (index < 0) index += size;
  const inStrides = stridesOf(ctx, node, inShape);
  const strides = inStrides.filter((_, d) => keep || d !== axis);
  return stridedCopy(ctx, node, node.inputs[0], node.outputs[0], outShape, strides, index ? `${index} * ${inStrides[axis]}` : '0');
}

/** Lowers the nodes of one fused graph through a backend's registered lowerings (CUDA's by default). */
export class Lowering {
  private readonly env: CudaLowerEnv;

  constructor(
    readonly ctx: CodegenContext,
    readonly gemm: GemmLowering,
    readonly conv: ConvLowering,
    /** The backend whose registered lowerings are used (the ROCm backend registers most of the CUDA ones). */
    readonly backend = CUDA_BACKEND,
    library?: PlatformLibrary,
  ) {
    this.env = { ctx, gemm, conv, ...(library ? { library } : {}) };
  }

  lower(node: Node): LoweredOp {
    const lowering = findLowering<CudaLowerFn>(this.backend, node);
    if (!lowering) throw new Unsupported(noLoweringReason(node.op, this.backend));
    const reason = lowering.supports?.(this.ctx.graph, node);
    if (reason !== undefined) throw new Unsupported(reason);
    const definedBefore = this.ctx.definedRuntimeDims;
    const [kernel, body, headers, workspaceBytes = 0] = lowering.lower(this.env, node);
    // Sizes the data decided may be 0 (no detections): an op whose outputs are then empty launches nothing (a
    // grid of 0 blocks is a launch error, and a CUTLASS GEMM with M = 0 is not defined). Not for an op that
    // computes a run-time dim itself: it must run to learn it.
    const outputs = node.outputs.filter((o) => o && this.ctx.graph.lookupTensor(o)?.shape);
    const shapes = outputs.map((o) => this.ctx.shapeOf(o));
    if (
      this.ctx.definedRuntimeDims === definedBefore &&
      outputs.length &&
      shapes.every((shape) => shape.some((d) => this.ctx.isRuntimeDim(d)))
    ) {
      const empty = shapes.map((shape) => `${this.ctx.product(shape, node)} == 0`).join(' && ');
      body.unshift(`if (${empty}) return nullptr;  // empty outputs (sizes decided by the data)`);
    }
    if (node.guard) {
      // a node of an inlined If branch (passes/inline-if.ts): runs only when its branch is taken
      const { slot, read } = this.ctx.condition(node.guard.condition);
      const guard = `${slot} ${node.guard.taken ? '!=' : '=='} 0`;
      return { node, kernel, body: [...read, `if (${guard}) {`, ...body.map((l) => `  ${l}`), '}'], headers, workspaceBytes, guard };
    }
    return { node, kernel, body, headers, workspaceBytes };
  }
}
