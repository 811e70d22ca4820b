/** The targets the compiler knows (compiler/targets.ts: the one list `ait compile --target` checks). `ait.defaultTarget` must be one of these. */
export { DEFAULT_TARGET, TARGETS, isKnownTarget, type TargetInfo } from '../compiler/targets';
