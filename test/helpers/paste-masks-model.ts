/**
 * torchvision's mask-paste Loop (`_onnx_paste_masks_in_image_loop` / `_onnx_paste_mask_in_image`) as the exporter
 * writes it, for a small image: for each detection i, mask i ([1, Mh, Mw] of masks [D, 1, Mh, Mw]) and integer box i
 * (x0, y0, x1, y1) are Gathered, the mask Resized (linear, half_pixel) to max(box size, 1), the part inside the image
 * Sliced out, padded with zero rows (ConstantOfShape + Concat, cropped to the height) then zero columns (cropped to
 * the width), and Concatenated onto the carried [i, H, W] tensor, which starts as a constant [0, H, W].
 * Variants that are not a mask paste: `nearest` (Resize mode nearest), `addOne` (the body adds 1 to the resized mask),
 * `oneRowFirst` (the carried tensor starts as one zero canvas, not empty), `fewerTrips` (D - 1 iterations).
 */
import { AttrSpec, GraphSpec, ModelSpec, NodeSpec, tensor } from './onnx-builder';

export interface PasteLoopOptions {
  height: number;
  width: number;
  maskH: number;
  maskW: number;
  variant?: 'nearest' | 'addOne' | 'oneRowFirst' | 'fewerTrips';
}

export function pasteMasksLoopModel(o: PasteLoopOptions): ModelSpec {
  const i64 = (name: string, dims: number[], values: number[]) => ({ ...tensor('int64', dims, values), name });
  const nodes: NodeSpec[] = [];
  const n = (op: string, inputs: string[], output: string, attrs?: Record<string, AttrSpec>) => {
    nodes.push({ op, inputs, outputs: [output], attrs });
    return output;
  };
  let unsqueezes = 0;
  const u = (x: string) => n('Unsqueeze', [x, 'axes0'], `${x}_u${unsqueezes++}`);
  const gather = (x: string, index: string, out: string) => n('Gather', [x, index], out, { axis: 0 });
  // per detection: the mask and the box
  const mask = gather(gather('masks', 'i', 'mask3'), 'k0', 'mask2');
  const box = gather('boxes', 'i', 'box');
  const [bx0, by0, bx1, by1] = ['k0', 'k1', 'k2', 'k3'].map((k, j) => gather(box, k, `b${j}`));
  const w = n('ReduceMax', [n('Concat', [n('Add', [n('Sub', [bx1, bx0], 'dw'), 'one1'], 'w0'), 'one1'], 'wc', { axis: 0 })], 'w', {
    keepdims: 0,
  });
  const h = n('ReduceMax', [n('Concat', [n('Add', [n('Sub', [by1, by0], 'dh'), 'one1'], 'h0'), 'one1'], 'hc', { axis: 0 })], 'h', {
    keepdims: 0,
  });
  const sizes = n('Concat', ['ones2', u(h), u(w)], 'sizes', { axis: 0 });
  const mask4 = n('Unsqueeze', [mask, 'axes01'], 'mask4');
  const resizeAttrs: Record<string, AttrSpec> = {
    mode: o.variant === 'nearest' ? 'nearest' : 'linear',
    coordinate_transformation_mode: 'half_pixel',
  };
  let resized = gather(gather(n('Resize', [mask4, '', '', sizes], 'resized4', resizeAttrs), 'k0', 'resized3'), 'k0', 'resized');
  if (o.variant === 'addOne') resized = n('Add', [resized, 'onef'], 'resized1');
  // the part inside the image
  const clampTo = (op: 'ReduceMax' | 'ReduceMin', x: string, bound: string, out: string) =>
    n(op, [n('Concat', [x, bound], `${out}_c`, { axis: 0 })], out, { keepdims: 0 });
  const x0 = clampTo('ReduceMax', u(bx0), 'zero1', 'x_0');
  const x1 = clampTo('ReduceMin', n('Add', [u(bx1), 'one1'], 'bx1p'), 'W1', 'x_1');
  const y0 = clampTo('ReduceMax', u(by0), 'zero1', 'y_0');
  const y1 = clampTo('ReduceMin', n('Add', [u(by1), 'one1'], 'by1p'), 'H1', 'y_1');
  const starts = n('Concat', [u(n('Sub', [y0, by0], 'sy')), u(n('Sub', [x0, bx0], 'sx'))], 'starts', { axis: 0 });
  const ends = n('Concat', [u(n('Sub', [y1, by0], 'ey')), u(n('Sub', [x1, bx0], 'ex'))], 'ends', { axis: 0 });
  const inside = n('Slice', [resized, starts, ends, 'axes01'], 'inside');
  const zeros = (rows: string, cols: string, out: string) =>
    n('ConstantOfShape', [n('Concat', [u(rows), u(cols)], `${out}_shape`, { axis: 0 })], out, { value: tensor('float32', [1], [0]) });
  const cols = gather(n('Shape', [inside], 'inside_shape'), 'k1', 'cols');
  const padRows = n('Concat', [zeros(y0, cols, 'zeros_y0'), inside, zeros(n('Sub', ['Hs', y1], 'below'), cols, 'zeros_y1')], 'pad_rows', {
    axis: 0,
  });
  const cropRows = n('Slice', [padRows, 'zero1', 'H1', 'zero1'], 'crop_rows');
  const rows = gather(n('Shape', [cropRows], 'crop_shape'), 'k0', 'rows');
  const padCols = n('Concat', [zeros(rows, x0, 'zeros_x0'), cropRows, zeros(rows, n('Sub', ['Ws', x1], 'right'), 'zeros_x1')], 'pad_cols', {
    axis: 1,
  });
  const pasted = n('Slice', [padCols, 'zero1', 'W1', 'one1'], 'pasted');
  n('Concat', ['acc_in', n('Unsqueeze', [pasted, 'axes0'], 'pasted1')], 'acc_out', { axis: 0 });
  n('Identity', ['true'], 'cond_out');
  const body: GraphSpec = {
    name: 'paste_body',
    inputs: [
      { name: 'i', dtype: 'int64', dims: [] },
      { name: 'cond', dtype: 'bool', dims: [] },
      { name: 'acc_in', dtype: 'float32', dims: [null, o.height, o.width] },
    ],
    outputs: ['cond_out', 'acc_out'],
    nodes,
  };
  return {
    inputs: [
      { name: 'masks', dtype: 'float32', dims: ['D', 1, o.maskH, o.maskW] },
      { name: 'boxes', dtype: 'int64', dims: ['D', 4] },
    ],
    initializers: [
      ...[0, 1, 2, 3].map((k) => i64(`k${k}`, [], [k])),
      i64('zero1', [1], [0]),
      i64('one1', [1], [1]),
      i64('axes0', [1], [0]),
      i64('axes01', [2], [0, 1]),
      i64('ones2', [2], [1, 1]),
      i64('H1', [1], [o.height]),
      i64('W1', [1], [o.width]),
      i64('Hs', [], [o.height]),
      i64('Ws', [], [o.width]),
      ...(o.variant === 'addOne' ? [{ ...tensor('float32', [], [1]), name: 'onef' }] : []),
      { ...tensor('bool', [], [1]), name: 'true' },
      o.variant === 'oneRowFirst'
        ? { ...tensor('float32', [1, o.height, o.width], new Array<number>(o.height * o.width).fill(0)), name: 'empty' }
        : { ...tensor('float32', [0, o.height, o.width], []), name: 'empty' },
    ],
    nodes: [
      { op: 'Shape', inputs: ['masks'], outputs: ['masks_shape'] },
      { op: 'Gather', inputs: ['masks_shape', 'k0'], outputs: ['detections'], attrs: { axis: 0 } },
      o.variant === 'fewerTrips'
        ? { op: 'Sub', inputs: ['detections', 'k1'], outputs: ['count'] }
        : { op: 'Identity', inputs: ['detections'], outputs: ['count'] },
      { op: 'Loop', name: 'paste_loop', inputs: ['count', 'true', 'empty'], outputs: ['pasted_all'], attrs: { body } },
    ],
    outputs: ['pasted_all'],
  };
}
