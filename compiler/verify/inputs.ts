/**
 * The values verify feeds a model's integer inputs, shared by `ait verify` (local.ts) and the agent's verify
 * (remote-agent/agent/verify.ts) so both check a text model on the same kind of input. Float inputs are seeded
 * standard normals (onnx/materialize.ts normalSampler) on both sides.
 */

/** Integer element types verify makes inputs of. */
export const INTEGER_INPUT_TYPES = ['int32', 'int64', 'int8', 'uint8', 'bool'] as const;
export type IntegerInputType = (typeof INTEGER_INPUT_TYPES)[number];

export function isIntegerInputType(dtype: string): dtype is IntegerInputType {
  return (INTEGER_INPUT_TYPES as readonly string[]).includes(dtype);
}

/**
 * `count` values for the integer input `name`: a mask (an input whose name says mask, or any bool) keeps everything
 * (ones), other integers are token ids in [0, 100), below any vocabulary's size, drawn from `normal`.
 */
export function integerInputValues(name: string, dtype: IntegerInputType, count: number, normal: () => number): number[] {
  const mask = dtype === 'bool' || /mask/i.test(name);
  const values = new Array<number>(count);
  for (let i = 0; i < count; i++) values[i] = mask ? 1 : Math.min(99, Math.floor(Math.abs(normal()) * 33));
  return values;
}
