/**
 * ONNX TopK (opsets 1, 10, 11) to kernels/topk.cuh: the input viewed as [outer, n, inner] around the axis, k the
 * outputs' inferred dim on that axis (a constant, or a dim known only at run time: it is passed to the kernel as an
 * expression, never baked in), largest/smallest. Output is always sorted (sorted=0 leaves the order to the
 * implementation). Values keep the input's storage type (fp16 for float tensors, int32, int64), indices are int64; an
 * output the model does not read (absent from the graph) is not written. The workspace is sized for the largest
 * rows, n and k the dims can take (topkWorkspaceBytes, the C++ topk_workspace_bytes).
 */
import { Node, attrInt } from '../../../ir/graph';
import { Dim, dimProduct } from '../../../ir/symbolic';
import { CPP_TYPE, CodegenContext, TYPE_SUFFIX, Unsupported } from './context';
import type { KernelChoice } from './lower';

type TopKType = 'half' | 'float' | 'int32' | 'int64';

const KEY_BYTES: Record<TopKType, number> = { half: 2, float: 4, int32: 4, int64: 8 };

/** topk.cuh constants: topk_sort_max, kTopKMaxCtas, kTopKMaxSplits, kTopKBins. */
export const topkSortMax = (type: TopKType) => (KEY_BYTES[type] === 8 ? 2048 : 4096);
const MAX_CTAS = 512;
const MAX_SPLITS = 64;
const BINS = 256;

const align = (bytes: number) => Math.ceil(bytes / 256) * 256;

/**
 * topk.cuh topk_workspace_bytes: the winners of every row (twice when k exceeds a sort tile) and the split path's
 * histograms; 0 when rows are sorted whole (n ≤ topkSortMax). Grows with rows, n and k, so the bytes at their largest
 * values serve every run. Keep in step with the C++ (test/backends/cuda/topk.test.ts compiles it and compares).
 */
export function topkWorkspaceBytes(type: TopKType, rows: number, n: number, k: number): number {
  const sortMax = topkSortMax(type);
  if (n <= sortMax || rows <= 0 || k <= 0) return 0;
  const keyBytes = KEY_BYTES[type];
  const splitRows = Math.min(rows, MAX_CTAS);
  const slices = rows < (2 * MAX_CTAS) / MAX_SPLITS ? rows * MAX_SPLITS : 2 * MAX_CTAS;
  const winners = rows * k;
  let at = align(splitRows * 4 + splitRows * keyBytes * BINS * 4);
  at = align(at + slices * BINS * 4);
  for (let b = 0; b < (k > sortMax ? 2 : 1); b++) at = align(align(at + winners * keyBytes) + winners * 4);
  return at;
}

/** What the kernel needs of a TopK node (Unsupported for what it does not take), its sizes as C++ expressions. */
export function topkPlan(ctx: CodegenContext, node: Node) {
  const input = node.inputs[0];
  const shape = ctx.shapeOf(input);
  const type = ctx.typeOf(input);
  if (type === 'uint8')
    throw new Unsupported(`TopK of ${ctx.graph.tensor(input).dtype} data (the kernel takes float, int32 and int64 tensors)`);
  const rank = shape.length;
  const given = attrInt(node, 'axis', -1);
  const axis = given < 0 ? given + rank : given;
  if (axis < 0 || axis >= rank) throw new Unsupported(`TopK axis ${given} of a rank-${rank} input`);
  // an output the model does not read has no tensor in the graph
  const [values, indices] = [0, 1].map((i) => (node.outputs[i] && ctx.graph.lookupTensor(node.outputs[i]) ? node.outputs[i] : undefined));
  if (values && ctx.typeOf(values) !== type) throw new Unsupported(`TopK values of type ${ctx.typeOf(values)} from ${type} data`);
  if (indices && ctx.typeOf(indices) !== 'int64') throw new Unsupported(`TopK indices of type ${ctx.typeOf(indices)} (int64 expected)`);
  const outer = shape.slice(0, axis);
  const inner = shape.slice(axis + 1);
  const n = shape[axis];
  const read = values ?? indices;
  const k: Dim | undefined = read ? ctx.shapeOf(read)[axis] : undefined;
  return {
    type,
    axis,
    values,
    indices,
    largest: attrInt(node, 'largest', 1) !== 0,
    dims: { rows: dimProduct([...outer, ...inner]), n, k },
    // every size the kernel gets, through the context (a dim known only at run time renders as its run-time value)
    cpp: {
      outer: ctx.product(outer, node),
      n: ctx.dim(n, node),
      inner: ctx.product(inner, node),
      k: k === undefined ? '0' : ctx.dim(k, node),
    },
  };
}

export function lowerTopK(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[], number] {
  const plan = topkPlan(ctx, node);
  const { type, values, indices, cpp, dims } = plan;
  const rows = ctx.maxOf(dims.rows);
  const n = ctx.maxOf(dims.n);
  const k = dims.k === undefined ? 0 : ctx.maxOf(dims.k);
  const sortMax = topkSortMax(type);
  const name = `ait_topk_${TYPE_SUFFIX[type]}`;
  const reason =
    n <= sortMax
      ? `rows of at most ${sortMax} elements sorted whole in shared memory (bitonic), one block per row`
      : 'radix select of the k-th key (8-bit digits; one block per row, or several per row when few rows of a large axis), then a bitonic sort of the k winners' +
        (k > sortMax ? ' in chunks merged in global memory' : ' in shared memory');
  const choice: KernelChoice = { library: 'ait', name, reason, config: { axis: plan.axis, largest: plan.largest } };
  if (!values && !indices) return [choice, ['// neither output of this TopK is read: nothing to compute'], ['topk.cuh'], 0];
  const t = CPP_TYPE[type];
  return [
    choice,
    [
      `ait::kernels::TopKArgs<${t}> args{${ctx.pointer(node.inputs[0])}, ${values ? ctx.pointer(values, true) : 'nullptr'}, ${indices ? ctx.pointer(indices, true) : 'nullptr'},`,
      `    ${cpp.outer}, ${cpp.n}, ${cpp.inner}, ${cpp.k}, ${plan.largest}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_topk(args, c.workspace, c.workspace_bytes, c.stream));',
    ],
    ['topk.cuh'],
    topkWorkspaceBytes(type, rows, n, k),
  ];
}
