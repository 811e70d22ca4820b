/**
 * Tile as a strided copy (tensor_ops.cuh launch_strided_copy): output axis d of size r·n is viewed as two axes [r, n]
 * (row-major, so the view is the output buffer as it is), the repeat axis read with stride 0 and the data axis with
 * the input's stride. Axes repeated once or of size 1 stay one axis; the view has at most 6 axes.
 */
import { Node } from '../../../ir/graph';
import { Dim, dimEquals, isConcrete } from '../../../ir/symbolic';
import { numeric } from '../../../ir/tensor';
import { CodegenContext, Unsupported } from './context';

export const MAX_COPY_RANK = 6;

/** One axis of the copy's output view: its size, and the input axis it steps along (undefined: stride 0). */
export interface TileAxis {
  size: Dim;
  inputAxis?: number;
}

/**
 * The output view of Tile(x, repeats): `repeats` are the constant repeat counts, or undefined when they are not
 * constant (then an axis must be unchanged or broadcast from 1).
 */
export function tileView(inShape: readonly Dim[], outShape: readonly Dim[], repeats: readonly number[] | undefined): TileAxis[] {
  const view: TileAxis[] = [];
  inShape.forEach((n, d) => {
    const r = repeats ? repeats[d] : dimEquals(n, outShape[d]) ? 1 : undefined;
    if (n === 1)
      view.push({ size: outShape[d] }); // every copy reads the one element
    else if (r === 1) view.push({ size: n, inputAxis: d });
    else if (r === undefined)
      throw new Unsupported(`Tile with repeats computed at run time (axis ${d}: ${String(n)} → ${String(outShape[d])})`);
    else if (r === 0) view.push({ size: 0 });
    else view.push({ size: r }, { size: n, inputAxis: d });
  });
  const kept = view.filter((a) => !(isConcrete(a.size) && a.size === 1));
  if (kept.length > MAX_COPY_RANK)
    throw new Unsupported(`Tile needs a ${kept.length}-axis copy (each repeated axis adds one); the copy kernel takes ${MAX_COPY_RANK}`);
  return kept.length > 0 ? kept : [{ size: 1 }];
}

export function tilePlan(ctx: CodegenContext, node: Node): TileAxis[] {
  const value = ctx.graph.lookupTensor(node.inputs[1])?.value;
  return tileView(ctx.shapeOf(node.inputs[0]), ctx.shapeOf(node.outputs[0]), value ? Array.from(numeric(value)) : undefined);
}

/** The copy's output shape and input strides (C++ expressions). */
export function tileCopy(ctx: CodegenContext, node: Node): { shape: Dim[]; strides: string[] } {
  const view = tilePlan(ctx, node);
  const inShape = ctx.shapeOf(node.inputs[0]);
  return {
    shape: view.map((a) => a.size),
    strides: view.map((a) => (a.inputAxis === undefined ? '0' : ctx.product(inShape.slice(a.inputAxis + 1), node))),
  };
}
