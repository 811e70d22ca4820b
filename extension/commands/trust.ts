/**
 * Workspace Trust. An untrusted workspace (Restricted Mode) may hold hostile models and settings, so the commands
 * that compile a model (writing generated code into the workspace) or reach a remote host (uploading a build
 * directory and running its Makefile, connecting over SSH) refuse there, saying why; graph viewing (the .onnx custom
 * editor, Open Graph, Open Run) works in both. Every such command starts with requireTrust(): the one place that
 * decides and explains. package.json hides their menu entries with `isWorkspaceTrusted` and declares the settings
 * that are never taken from an untrusted workspace (capabilities.untrustedWorkspaces.restrictedConfigurations).
 */
import type { Log, Ui, WorkspaceTrust } from '../ports';

/** The commands that need a trusted workspace, and what they would do there (for the message). */
export const TRUSTED_COMMANDS = {
  'ait.compileModel': { title: 'Compile Model', does: 'compiling writes generated code into the workspace' },
  'ait.buildAndBenchmark': {
    title: 'Build and Benchmark on Remote',
    does: 'building uploads a compile output directory and runs its Makefile and executables on a host',
  },
  'ait.verifyModel': {
    title: 'Verify Against Reference',
    does: 'verifying runs the model through onnxruntime here, or uploads and builds a compile output on a host, and writes its report into the workspace',
  },
  'ait.profileKernels': {
    title: 'Profile Kernels on Remote',
    does: 'profiling compiles the model into the workspace, uploads the kernel profiler to a host and builds and runs it there',
  },
  'ait.addRemoteHost': { title: 'Add Remote Host', does: 'remote hosts run builds and benchmarks over SSH' },
  'ait.checkRemoteHost': { title: 'Check Remote Host', does: 'checking a host connects over SSH and starts the AIT agent there' },
} as const;

export type TrustedCommandId = keyof typeof TRUSTED_COMMANDS;

/** The explanation shown when `command` is refused in an untrusted workspace. */
export function untrustedMessage(command: TrustedCommandId): string {
  const { title, does } = TRUSTED_COMMANDS[command];
  return (
    `AIT: ${title} is disabled because this workspace is not trusted (Restricted Mode): ${does}. ` +
    'Viewing graphs still works. To enable it, trust the workspace (Workspaces: Manage Workspace Trust).'
  );
}

/** True when the workspace is trusted; otherwise shows why `command` does not run, logs it, and returns false. */
export function requireTrust(ctx: { trust: WorkspaceTrust; ui: Ui; log: Log }, command: TrustedCommandId): boolean {
  if (ctx.trust.isTrusted) return true;
  const message = untrustedMessage(command);
  ctx.log.info(`${command} refused: the workspace is not trusted`);
  ctx.ui.warn(message);
  return false;
}
