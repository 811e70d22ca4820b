/** The targets the compiler knows (as `ait compile --target` lists them; ROCm joins with its backend). `ait.defaultTarget` must be one of these. */
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

export function isKnownTarget(id: string): boolean {
  return TARGETS.some((t) => t.id === id);
}
