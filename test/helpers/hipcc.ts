/**
 * hipcc in tests (the ROCm backend's compile checks): whether it is on PATH, and the environment it runs in. hipcc
 * picks the NVIDIA platform when it finds nvcc, so every call sets HIP_PLATFORM=amd (the generated Makefile does
 * the same). Debian's hipcc 5.2.3 (.ci/run installs it) compiles for gfx90a; gfx942 needs ROCm 5.7+.
 */
import { spawnSync } from 'node:child_process';
import { requireTool } from './tools';

export const HAVE_HIPCC = spawnSync('sh', ['-c', 'command -v hipcc'], { encoding: 'utf8' }).status === 0;

const HIPCC_HINT = 'not on PATH; on Debian: apt-get install --no-install-recommends hipcc (CI installs it in .ci/run)';

/** The environment of a hipcc or make call: AMD platform. */
export function hipEnv(): NodeJS.ProcessEnv {
  return { ...process.env, HIP_PLATFORM: 'amd' };
}

/** In a hook or test: skips without hipcc (saying so); under CI=true, fails naming it. */
export function requireHipcc(ctx: Mocha.Context): void {
  requireTool(ctx, 'hipcc', HAVE_HIPCC, HIPCC_HINT);
}
