/**
 * ONNX ScatterElements (opsets 11-18) to kernels/scatter.cuh, and ConstantOfShape to kernels/fill.cuh.
 *
 * ScatterElements: any axis, reduction none/add/mul/max/min, int32 or int64 indices (negative ones count from the
 * end), rank up to 6, fp16, int64, int32 or bool data (bool only without a reduction). The output is data with the
 * updates scattered in; the memory plan may give it data's own buffer (the copy is then skipped at run time).
 * ScatterND: index tuples of at most 6 entries (int64), every reduction, any data rank, the same data types; sizes from
 * the run. With reduction none and many tuples, the workspace holds an int32 per slice position of data (the election
 * that keeps the last of duplicate tuples, scatter.cuh).
 * ConstantOfShape: its `value` in any GPU type over a shape that may be the run's dims (its element count is
 * computed at launch).
 */
import { Node, attrInt, attrString, attrTensor } from '../../../ir/graph';
import { dimProduct, isConcrete } from '../../../ir/symbolic';
import { numel, numeric } from '../../../ir/tensor';
import { CPP_TYPE, CodegenContext, GpuType, TYPE_SUFFIX, Unsupported } from './context';
import { cppFloat, cppInt } from './cpp';
import type { KernelChoice } from './lower';

/** scatter.cuh kMaxScatterRank. */
export const MAX_SCATTER_RANK = 6;

const REDUCTIONS: Record<string, string> = { none: 'kNone', add: 'kAdd', mul: 'kMul', max: 'kMax', min: 'kMin' };

const typeName = (t: GpuType) => TYPE_SUFFIX[t];

/** What the kernel needs of a ScatterElements node; Unsupported (with the reason) for a form it does not take. */
export function scatterElementsPlan(ctx: CodegenContext, node: Node) {
  const [data, indices, updates] = node.inputs;
  const out = node.outputs[0];
  const type = ctx.typeOf(out);
  if (ctx.typeOf(data) !== type || ctx.typeOf(updates) !== type)
    throw new Unsupported('ScatterElements whose data, updates and output differ in GPU type');
  const indexType = ctx.typeOf(indices);
  if (indexType !== 'int64' && indexType !== 'int32') throw new Unsupported(`ScatterElements indices of type ${indexType}`);
  const dataShape = ctx.shapeOf(data);
  const updateShape = ctx.shapeOf(indices);
  const rank = dataShape.length;
  if (rank === 0 || rank > MAX_SCATTER_RANK)
    throw new Unsupported(`ScatterElements of rank ${rank} (the kernel takes 1 to ${MAX_SCATTER_RANK})`);
  const given = attrInt(node, 'axis', 0);
  const axis = given < 0 ? given + rank : given;
  const reduction = attrString(node, 'reduction', 'none');
  if (!(reduction in REDUCTIONS)) throw new Unsupported(`ScatterElements reduction '${reduction}'`);
  if (reduction !== 'none' && ctx.graph.lookupTensor(out)?.dtype === 'bool')
    throw new Unsupported(`ScatterElements reduction '${reduction}' of bool data`);
  // run-time values of every dim (data's first dim is often a data-dependent count)
  const dataDims = dataShape.map((d) => ctx.dim(d, node));
  const updateDims = updateShape.map((d) => ctx.dim(d, node));
  return { type, indexType, axis, reduction, dataDims, updateDims };
}

export function lowerScatterElements(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const { type, indexType, axis, reduction, dataDims, updateDims } = scatterElementsPlan(ctx, node);
  const [data, indices, updates] = node.inputs;
  const out = node.outputs[0];
  return [
    {
      library: 'ait',
      name: `ait_scatter_elements_${typeName(type)}`,
      reason: `along axis ${axis}, reduction ${reduction}: a thread per column in index order when the columns fill the GPU or the axis is short, else a thread per update${reduction === 'none' ? '' : ' with compare-and-swap'}`,
      config: { axis, reduction },
    },
    [
      `ait::kernels::ScatterElementsArgs<${CPP_TYPE[type]}, ${CPP_TYPE[indexType]}> args{${ctx.pointer(data)}, ${ctx.pointer(indices)}, ${ctx.pointer(updates)},`,
      `    ${ctx.pointer(out, true)}, ${dataDims.length}, ${axis},`,
      `    {${dataDims.join(', ')}},`,
      `    {${updateDims.join(', ')}},`,
      `    ait::kernels::ScatterReduction::${REDUCTIONS[reduction]}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_scatter_elements(args, c.stream));',
    ],
    ['scatter.cuh'],
  ];
}

/** scatter.cuh kScatterColumnThreads and kScatterShortAxis: when ScatterND takes the column kernel. */
const SCATTER_COLUMN_THREADS = 32768;
const SCATTER_SHORT_AXIS = 32;

/**
 * scatter.cuh scatter_nd_workspace_bytes at the largest sizes: an int32 per slice position of data for reduction none
 * on the element path; 0 when the column kernel is certain (both sizes known) or for a reduction.
 */
export function scatterNDWorkspaceBytes(reduction: string, tuples: number, slice: number, positions: number, known: boolean): number {
  if (reduction !== 'none' || tuples * slice === 0) return 0;
  if (known && (slice >= SCATTER_COLUMN_THREADS || tuples <= SCATTER_SHORT_AXIS)) return 0;
  return positions * 4;
}

/** What the kernel needs of a ScatterND node; Unsupported (with the reason) for a form it does not take. */
export function scatterNDPlan(ctx: CodegenContext, node: Node) {
  const [data, indices, updates] = node.inputs;
  const out = node.outputs[0];
  const type = ctx.typeOf(out);
  if (ctx.typeOf(data) !== type || ctx.typeOf(updates) !== type)
    throw new Unsupported('ScatterND whose data, updates and output differ in GPU type');
  if (ctx.typeOf(indices) !== 'int64') throw new Unsupported(`ScatterND indices of type ${ctx.typeOf(indices)}`);
  const dataShape = ctx.shapeOf(data);
  const indexShape = ctx.shapeOf(indices);
  const k = indexShape[indexShape.length - 1];
  if (!isConcrete(k)) throw new Unsupported('ScatterND with a symbolic index tuple length');
  if (k > MAX_SCATTER_RANK) throw new Unsupported(`ScatterND index tuples of ${k} entries (the kernel takes at most ${MAX_SCATTER_RANK})`);
  const reduction = attrString(node, 'reduction', 'none');
  if (!(reduction in REDUCTIONS)) throw new Unsupported(`ScatterND reduction '${reduction}'`);
  if (reduction !== 'none' && ctx.graph.lookupTensor(out)?.dtype === 'bool')
    throw new Unsupported(`ScatterND reduction '${reduction}' of bool data`);
  const tupleDims = indexShape.slice(0, -1);
  const sliceDims = dataShape.slice(k);
  const positionDims = dataShape.slice(0, k);
  return {
    type,
    k,
    reduction,
    tuples: ctx.product(tupleDims, node),
    slice: ctx.product(sliceDims, node),
    dims: positionDims.map((d) => ctx.dim(d, node)),
    max: {
      tuples: ctx.maxOf(dimProduct(tupleDims)),
      slice: ctx.maxOf(dimProduct(sliceDims)),
      positions: ctx.maxOf(dimProduct(positionDims)),
      known: [...tupleDims, ...sliceDims].every(isConcrete),
    },
  };
}

export function lowerScatterND(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[], number] {
  const { type, k, reduction, tuples, slice, dims, max } = scatterNDPlan(ctx, node);
  const [data, indices, updates] = node.inputs;
  const out = node.outputs[0];
  const workspace = scatterNDWorkspaceBytes(reduction, max.tuples, max.slice, max.positions, max.known);
  const elementPath =
    reduction === 'none'
      ? 'the last of duplicate tuples elected per slice (atomicMax into the workspace), then a thread per update element'
      : 'a thread per update element with compare-and-swap';
  return [
    {
      library: 'ait',
      name: `ait_scatter_nd_${typeName(type)}`,
      reason: `index tuples of ${k}, reduction ${reduction}: a thread per slice element walking the tuples in order when the slice fills the GPU or the tuples are few, else ${elementPath}`,
      config: { k, reduction },
    },
    [
      `ait::kernels::ScatterNDArgs<${CPP_TYPE[type]}, int64_t> args{${ctx.pointer(data)}, ${ctx.pointer(indices)}, ${ctx.pointer(updates)},`,
      `    ${ctx.pointer(out, true)}, ${tuples}, ${slice}, ${k},`,
      `    {${dims.join(', ')}},`,
      `    ait::kernels::ScatterReduction::${REDUCTIONS[reduction]}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_scatter_nd(args, c.workspace, c.workspace_bytes, c.stream));',
    ],
    ['scatter.cuh'],
    workspace,
  ];
}

/** ConstantOfShape's fill value as a C++ expression of the output's GPU type. */
function fillValue(ctx: CodegenContext, node: Node): { type: GpuType; value: string } {
  const out = node.outputs[0];
  const type = ctx.typeOf(out);
  const given = attrTensor(node, 'value');
  if (given && numel(given.shape) !== 1) throw new Unsupported('ConstantOfShape value that is not one element');
  const v = given ? numeric(given)[0] : 0;
  if (type === 'half') return { type, value: `__float2half_rn(${cppFloat(v)})` };
  if (type === 'float') return { type, value: cppFloat(v) };
  if (type === 'int64') return { type, value: cppInt(v) };
  if (type === 'int32') return { type, value: `int32_t{${Math.trunc(v) | 0}}` };
  const bool = ctx.graph.lookupTensor(node.outputs[0])?.dtype === 'bool';
  return { type, value: `uint8_t{${bool ? (v ? 1 : 0) : Math.trunc(v) & 0xff}}` };
}

export function constantOfShapePlan(ctx: CodegenContext, node: Node) {
  const { type, value } = fillValue(ctx, node);
  const count = ctx.product(ctx.shapeOf(node.outputs[0]), node);
  return { type, value, count };
}

export function lowerConstantOfShape(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const { type, value, count } = constantOfShapePlan(ctx, node);
  return [
    { library: 'ait', name: `ait_fill_${typeName(type)}`, reason: 'the value in every element, 16-byte stores', config: {} },
    [
      `ait::kernels::FillArgs<${CPP_TYPE[type]}> args{${ctx.pointer(node.outputs[0], true)}, ${count}, ${value}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_fill(args, c.stream));',
    ],
    ['fill.cuh'],
  ];
}
