/**
 * The targets the compiler can build for: the one list that the CLI (`--target`), the compile driver, the support
 * check and the extension's target picker read. A ROCm target joins here with its backend; until then one is refused
 * with an error that says so.
 */
import { CompileError, error } from './diagnostics';

export interface TargetInfo {
  id: string;
  label: string;
  detail: string;
}

export const TARGETS: readonly TargetInfo[] = [
  { id: 'cuda:sm90', label: 'cuda:sm90', detail: 'NVIDIA Hopper (H100, H200)' },
  { id: 'cuda:sm80', label: 'cuda:sm80', detail: 'NVIDIA Ampere (A100, A10, A30)' },
];

export const DEFAULT_TARGET = 'cuda:sm90';

/** The target ids, comma-separated, for help texts and messages. */
export const TARGET_LIST = TARGETS.map((t) => t.id).join(', ');

export function isKnownTarget(id: string): boolean {
  return TARGETS.some((t) => t.id === id);
}

/** Why `id` is not a target the compiler builds for, or undefined when it is one. */
export function targetProblem(id: string): string | undefined {
  if (isKnownTarget(id)) return undefined;
  if (id === '') return `no target given: use one of ${TARGET_LIST}`;
  if (/^rocm(:|$)/i.test(id)) return `target '${id}': there is no ROCm backend yet; use one of ${TARGET_LIST}`;
  return `unknown target '${id}': use one of ${TARGET_LIST}`;
}

/** Throws a `compile.bad-target` CompileError unless `id` is a known target. */
export function checkTarget(id: string): void {
  const problem = targetProblem(id);
  if (problem) throw new CompileError(error('compile.bad-target', problem));
}
