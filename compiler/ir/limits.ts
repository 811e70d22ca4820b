/**
 * Sizes the compiler accepts. A model is untrusted input: a dim of 2^40 or an initializer of 60000×60000 with no
 * data must be refused with a diagnostic naming the tensor, before anything is allocated for it, and before C++
 * with 2.9e25-byte arenas is generated. The import, shape inference and the memory plan check against these.
 */
import { Dim, isConcrete } from './symbolic';

/** Largest dim (int32 max: the generated code indexes with 32-bit dims, as ONNX Runtime's CUDA kernels do). */
export const MAX_DIM = 2 ** 31 - 1;
/** Most elements in one tensor. */
export const MAX_ELEMENTS = 2 ** 31;
/** Largest activation arena (1 TiB): far beyond any GPU, far below what overflows size_t arithmetic. */
export const MAX_ARENA_BYTES = 2 ** 40;

/** `n` as text: exact below 10^15, else in exponent notation. */
export function sizeText(n: number): string {
  return n < 1e15 ? String(n) : n.toExponential(3);
}

/**
 * Why a shape cannot be a tensor's (a dim that is negative, not an integer or above MAX_DIM; more than
 * MAX_ELEMENTS elements in its concrete dims), or undefined when it can. Symbolic dims are bounded elsewhere.
 */
export function shapeProblem(shape: readonly Dim[]): string | undefined {
  let elements = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!isConcrete(d)) continue;
    if (!Number.isInteger(d) || d < 0) return `dim ${i} is ${d}: dims must be non-negative integers`;
    if (d > MAX_DIM) return `dim ${i} is ${sizeText(d)}, above the largest supported dim ${MAX_DIM} (2^31-1)`;
    elements *= d;
  }
  if (elements > MAX_ELEMENTS)
    return `its shape [${shape.map((d) => (isConcrete(d) ? sizeText(d) : String(d))).join(', ')}] has ${sizeText(elements)} elements, more than the supported 2^31`;
  return undefined;
}
