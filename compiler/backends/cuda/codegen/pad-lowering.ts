/**
 * ONNX Pad to kernels/pad.cuh: constant (fill value from input 2 or, before opset 11, the `value` attribute), reflect,
 * edge and wrap modes, any rank up to the kernel's 6 after neighbouring unpadded axes are merged, negative pads
 * (cropping). Pads, axes and the fill value must be compile-time constants; padded axes must have concrete extents.
 */
import { Node, attrFloat, attrInts, attrString } from '../../../ir/graph';
import { Dim, isConcrete } from '../../../ir/symbolic';
import { numel, numeric } from '../../../ir/tensor';
import { CPP_TYPE, CodegenContext, TYPE_SUFFIX, Unsupported } from './context';
import type { KernelChoice } from './lower';

/** pad.cuh kMaxPadRank. */
export const MAX_PAD_RANK = 6;

const MODES: Record<string, string> = { constant: 'kConstant', reflect: 'kReflect', edge: 'kEdge', wrap: 'kWrap' };

/** A run of input axes merged into one axis of the kernel: its extent, and its pads (zero for merged unpadded axes). */
interface PadAxis {
  dims: Dim[];
  begin: number;
  end: number;
}

function constantInts(ctx: CodegenContext, name: string | undefined, what: string): number[] | undefined {
  if (!name) return undefined;
  const info = ctx.graph.lookupTensor(name);
  if (!info?.value) {
    if (info?.shape?.length === 1 && info.shape[0] === 0) return undefined; // an empty "absent" input
    throw new Unsupported(`Pad ${what} ${ctx.whyNotConstant(name)}`);
  }
  return Array.from(numeric(info.value));
}

/** What the kernel needs of a Pad node; Unsupported (with the reason) for a form it does not take. */
export function padPlan(ctx: CodegenContext, node: Node) {
  const shape = ctx.shapeOf(node.inputs[0]);
  const rank = shape.length;
  const mode = attrString(node, 'mode', 'constant');
  if (!(mode in MODES)) throw new Unsupported(`Pad mode '${mode}' (the kernel takes constant, reflect, edge, wrap)`);
  const given = node.inputs[1] ? constantInts(ctx, node.inputs[1], 'pads') : attrInts(node, 'pads');
  if (!given) throw new Unsupported('Pad without pads');
  const axes = (constantInts(ctx, node.inputs[3], 'axes') ?? [...Array(rank).keys()]).map((a) => (a < 0 ? a + rank : a));
  if (given.length !== 2 * axes.length) throw new Unsupported(`Pad has ${given.length} pads for ${axes.length} axes`);
  let value = 0;
  if (node.inputs[2]) {
    const v = ctx.graph.lookupTensor(node.inputs[2])?.value;
    if (!v) throw new Unsupported(`Pad constant_value ${ctx.whyNotConstant(node.inputs[2])}`);
    if (numel(v.shape) > 0) value = numeric(v)[0];
  } else if (node.attrs.value) value = attrFloat(node, 'value', 0);
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  axes.forEach((a, k) => {
    begin[a] += given[k];
    end[a] += given[k + axes.length];
  });
  // merge neighbouring unpadded axes (their elements stay contiguous); a padded axis is one axis of its own
  const merged: PadAxis[] = [];
  shape.forEach((d, i) => {
    const padded = begin[i] !== 0 || end[i] !== 0;
    if (padded && !isConcrete(d)) throw new Unsupported(`Pad along symbolic axis ${i}`);
    if (padded && mode !== 'constant' && d === 0) throw new Unsupported(`Pad mode '${mode}' of an empty axis ${i}`);
    const last = merged[merged.length - 1];
    if (!padded && last && last.begin === 0 && last.end === 0) last.dims.push(d);
    else merged.push({ dims: [d], begin: begin[i], end: end[i] });
  });
  if (merged.length === 0) merged.push({ dims: [1], begin: 0, end: 0 }); // a scalar
  if (merged.length > MAX_PAD_RANK)
    throw new Unsupported(`Pad alternates padded and unpadded axes ${merged.length} times (the kernel takes ${MAX_PAD_RANK})`);
  return { mode, value, merged };
}

export function lowerPad(ctx: CodegenContext, node: Node): [KernelChoice, string[], string[]] {
  const { mode, value, merged } = padPlan(ctx, node);
  const out = node.outputs[0];
  const type = ctx.typeOf(out);
  const dims = (ds: Dim[]) => ctx.product(ds, node);
  const inShape = merged.map((a) => dims(a.dims));
  const outShape = merged.map((a) => (a.begin || a.end ? String((a.dims[0] as number) + a.begin + a.end) : dims(a.dims)));
  const last = merged[merged.length - 1];
  return [
    {
      library: 'ait',
      name: `ait_pad_${mode}_${TYPE_SUFFIX[type]}`,
      reason: `${mode} padding over ${merged.length} merged axes${last && !last.begin && !last.end ? '; 16-byte vectors along the unpadded innermost axis when aligned' : ''}`,
      config: { mode },
    },
    [
      `ait::kernels::PadArgs<${CPP_TYPE[type]}> args{${ctx.pointer(node.inputs[0])}, ${ctx.pointer(out, true)}, ${merged.length},`,
      `    {${inShape.join(', ')}},`,
      `    {${outShape.join(', ')}},`,
      `    {${merged.map((a) => a.begin).join(', ')}},`,
      `    ait::kernels::PadMode::${MODES[mode]}, ${Number.isFinite(value) ? String(value) : value > 0 ? 'INFINITY' : value < 0 ? '-INFINITY' : 'NAN'}};`,
      'AIT_RETURN_IF_CUDA_ERROR(ait::kernels::launch_pad(args, c.stream));',
    ],
    ['pad.cuh'],
  ];
}
