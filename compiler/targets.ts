/**
 * The targets the compiler can build for, read from the backend registry (backends/backend.ts): the one list that
 * the CLI (`--target`), the compile driver, the support check and the extension's target picker read.
 */
import { CompileError, error } from './diagnostics';
import { registeredBackends } from './backends/index';
import type { TargetInfo } from './backends/backend';

export type { TargetInfo } from './backends/backend';

export const TARGETS: readonly TargetInfo[] = registeredBackends().flatMap((b) => b.targets);

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
  const backend = registeredBackends().find((b) => id.split(':')[0].toLowerCase() === b.id);
  if (backend) return `unknown ${backend.name} target '${id}': use one of ${backend.targets.map((t) => t.id).join(', ')}`;
  return `unknown target '${id}': use one of ${TARGET_LIST}`;
}

/** Throws a `compile.bad-target` CompileError unless `id` is a known target. */
export function checkTarget(id: string): void {
  const problem = targetProblem(id);
  if (problem) throw new CompileError(error('compile.bad-target', problem));
}
