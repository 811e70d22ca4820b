/**
 * Every backend, registered (backend.ts describes the interface). Import this module (or compiler/targets.ts, which
 * does) before asking the registry for targets.
 */
import './cuda/backend';
import './rocm/backend';

export { backendById, backendOfTarget, registeredBackends } from './backend';
export type { Backend, CodegenOptions, CodegenResult, HostRequirements, TargetInfo } from './backend';
