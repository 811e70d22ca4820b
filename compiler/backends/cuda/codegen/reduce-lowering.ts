/**
 * ONNX ReduceSum/Mean/Max/Min/Prod/SumSquare/L1/L2/LogSumExp over any axes (attribute, or the constant axes input
 * from opset 18 / ReduceSum 13; keepdims and noop_with_empty_axes as the spec says) to kernels/reduce.cuh.
 *
 * Axes of extent 1 are dropped and neighbouring axes of one kind (kept or reduced) merged: one run of reduced axes
 * is the [outer, reduced, inner] view (rows kernel when nothing follows it, else the column kernel); other sets
 * (reduced runs separated by kept ones) run the strided kernel, one thread per output.
 *
 * Float data (fp16 storage) reduces in float; int64, int32 and bool data in int64, exactly (reduce.cuh), for the
 * ops that have an exact integer form: Sum, Max, Min, Prod, SumSquare, L1 (bool: Max and Min, its Or and And).
 */
import { Node, attrInt, attrInts } from '../../../ir/graph';
import { Dim, dimEquals } from '../../../ir/symbolic';
import { numeric } from '../../../ir/tensor';
import { CPP_TYPE, CodegenContext, GpuType, TYPE_SUFFIX, Unsupported, isFloatGpuType } from './context';
import type { KernelChoice } from './lower';

/** reduce.cuh ReduceOp of each ONNX op. */
export const REDUCE_OPS: Record<string, string> = {
  ReduceSum: 'kSum',
  ReduceMean: 'kMean',
  ReduceMax: 'kMax',
  ReduceMin: 'kMin',
  ReduceProd: 'kProd',
  ReduceSumSquare: 'kSumSquare',
  ReduceL1: 'kL1',
  ReduceL2: 'kL2',
  ReduceLogSumExp: 'kLogSumExp',
};

/** Ops with an exact integer form (int64 accumulation); Mean, L2 and LogSumExp of integers are not integers. */
const INTEGER_REDUCE_OPS = new Set(['ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceSumSquare', 'ReduceL1']);
const BOOL_REDUCE_OPS = new Set(['ReduceMax', 'ReduceMin']);

/** The storage type a reduce node runs on (Unsupported for data the kernels do not reduce). */
function reduceType(ctx: CodegenContext, node: Node): GpuType {
  const type = ctx.typeOf(node.outputs[0]);
  if (ctx.typeOf(node.inputs[0]) !== type) throw new Unsupported(`${node.op} from ${ctx.typeOf(node.inputs[0])} to ${type} data`);
  if (isFloatGpuType(type)) return type;
  const dtype = ctx.graph.tensor(node.outputs[0]).dtype;
  const allowed = dtype === 'bool' ? BOOL_REDUCE_OPS : INTEGER_REDUCE_OPS;
  if (!allowed.has(node.op))
    throw new Unsupported(
      `${node.op} on ${dtype} data (${dtype === 'bool' ? 'bool data reduces by ReduceMax/ReduceMin' : 'integer reductions are Sum, Max, Min, Prod, SumSquare and L1: exact in int64'})`,
    );
  return type;
}

/** reduce.cuh kMaxReduceRank. */
const MAX_REDUCE_RANK = 6;

interface Run {
  reduced: boolean;
  dims: Dim[];
}

/** The merged runs of kept and reduced axes of a reduce node (Unsupported for what the kernels do not take). */
export function reducePlan(ctx: CodegenContext, node: Node): Run[] {
  const shape = ctx.shapeOf(node.inputs[0]);
  reduceType(ctx, node);
  const rank = shape.length;
  let axes: number[] | undefined;
  if (node.inputs[1]) {
    const v = ctx.graph.lookupTensor(node.inputs[1])?.value;
    if (!v) throw new Unsupported(`${node.op} axes '${node.inputs[1]}' are computed at run time`);
    axes = Array.from(numeric(v));
  } else if (node.attrs.axes) axes = attrInts(node, 'axes');
  if (!axes || axes.length === 0) axes = attrInt(node, 'noop_with_empty_axes', 0) ? [] : [...Array(rank).keys()];
  const reduced = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const runs: Run[] = [];
  shape.forEach((d, i) => {
    if (dimEquals(d, 1)) return;
    const r = reduced.has(i);
    const last = runs[runs.length - 1];
    if (last && last.reduced === r) last.dims.push(d);
    else runs.push({ reduced: r, dims: [d] });
  });
  const count = (r: boolean) => runs.filter((x) => x.reduced === r).length;
  if (count(true) > 1 && (count(true) > MAX_REDUCE_RANK || count(false) > MAX_REDUCE_RANK))
    throw new Unsupported(`${node.op} over ${count(true)} separate runs of axes (the kernel takes ${MAX_REDUCE_RANK})`);
  return runs;
}

export function lowerReduce(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const runs = reducePlan(ctx, node);
  const op = REDUCE_OPS[node.op];
  const type = reduceType(ctx, node);
  const cpp = CPP_TYPE[type];
  const input = ctx.pointer(node.inputs[0]);
  const output = ctx.pointer(node.outputs[0], true);
  const name = `ait_${node.op.replace(/^Reduce/, 'reduce_').toLowerCase()}_${TYPE_SUFFIX[type]}`;
  const product = (rs: Run[]) =>
    ctx.product(
      rs.flatMap((r) => r.dims),
      node,
    );
  const exact = isFloatGpuType(type) ? '' : `; ${type} data accumulated in int64 (exact)`;
  const at = runs.findIndex((r) => r.reduced);
  if (runs.filter((r) => r.reduced).length <= 1) {
    // [outer, reduced, inner]
    const outer = at < 0 ? product(runs) : product(runs.slice(0, at));
    const reduced = at < 0 ? '1' : product([runs[at]]);
    const inner = at < 0 ? '1' : product(runs.slice(at + 1));
    const rows = inner === '1';
    return [
      {
        library: 'ait',
        name,
        reason:
          (rows
            ? 'reduced axes innermost: one block per row'
            : 'reduced axes between kept ones: 32 inner elements per block, 8 rows splitting the reduced axis') + exact,
        config: { op },
      },
      [
        `ait::kernels::ReduceArgs<${cpp}> args{${input}, ${output}, ${outer}, ${reduced}, ${inner}, ait::kernels::ReduceOp::${op}};`,
        'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_reduce(args, c.stream));',
      ],
      ['reduce.cuh'],
    ];
  }
  // strided: input strides of each run are the product of the extents after it
  const strides = runs.map((_, k) => product(runs.slice(k + 1)));
  const kept = runs.map((r, k) => ({ r, k })).filter(({ r }) => !r.reduced);
  const red = runs.map((r, k) => ({ r, k })).filter(({ r }) => r.reduced);
  const list = (xs: string[]) => `{${xs.join(', ')}}`;
  return [
    { library: 'ait', name, reason: `${red.length} separate runs of reduced axes: one thread per output${exact}`, config: { op } },
    [
      `ait::kernels::ReduceStridedArgs<${cpp}> args{${input}, ${output}, ${kept.length}, ${red.length},`,
      `    ${list(kept.map(({ r }) => product([r])))}, ${list(kept.map(({ k }) => strides[k]))},`,
      `    ${list(red.map(({ r }) => product([r])))}, ${list(red.map(({ k }) => strides[k]))},`,
      `    ait::kernels::ReduceOp::${op}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_reduce_strided(args, c.stream));',
    ],
    ['reduce.cuh'],
  ];
}
