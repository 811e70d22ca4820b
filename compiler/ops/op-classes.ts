/**
 * Classes of ONNX ops that several passes and backends reason about by name. One list each, here, so that a pass
 * that moves layouts, one that fuses, the memory planner and the code generator agree on what an op is.
 */

/** Unary elementwise ops (a transpose moves through them unchanged; they fuse into elementwise chains). */
export const UNARY_ELEMENTWISE_OPS: ReadonlySet<string> = new Set([
  'Relu',
  'Sigmoid',
  'Tanh',
  'Gelu',
  'Erf',
  'Exp',
  'Log',
  'Sqrt',
  'Neg',
  'Abs',
  'Reciprocal',
  'LeakyRelu',
  'Elu',
  'Selu',
  'HardSigmoid',
  'HardSwish',
  'Softplus',
  'Mish',
  'Shrink',
  'Floor',
  'Ceil',
  'Round',
  'Sin',
  'Cos',
  'Sign',
  'Tan',
  'Asin',
  'Acos',
  'Atan',
  'Sinh',
  'Cosh',
  'Asinh',
  'Acosh',
  'Atanh',
  'Softsign',
  'Celu',
  'ThresholdedRelu',
  'Clip',
  'Cast',
  'IsNaN',
  'IsInf',
]);

/** Binary arithmetic elementwise ops with broadcasting. */
export const BINARY_ELEMENTWISE_OPS: ReadonlySet<string> = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'PRelu', 'Mod']);

/** Comparisons and logic (elementwise, with boolean results or operands). */
export const LOGIC_ELEMENTWISE_OPS: ReadonlySet<string> = new Set([
  'Where',
  'Equal',
  'Less',
  'LessOrEqual',
  'Greater',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
]);

/** Every elementwise op the compiler fuses and the GPU backends run. */
export const ELEMENTWISE_OPS: ReadonlySet<string> = new Set([
  ...UNARY_ELEMENTWISE_OPS,
  ...BINARY_ELEMENTWISE_OPS,
  ...LOGIC_ELEMENTWISE_OPS,
]);

/** Ops whose output is their input with another shape: no data moves (views share their input's memory). */
export const VIEW_OPS: ReadonlySet<string> = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity']);

/**
 * Ops whose reference does constant work per output element (elementwise math, views, transposes): folding one
 * costs no more than writing its output. Shape inference folds these on weights of any size (weight preparation).
 */
export const PER_ELEMENT_OPS: ReadonlySet<string> = new Set([...ELEMENTWISE_OPS, ...VIEW_OPS, 'Transpose', 'transpose_pad']);
