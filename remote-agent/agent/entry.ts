/**
 * Command line of the agent, shared by dist/agent.js (remote-agent/main.ts) and `ait agent` (the CLI):
 *   --version                 print the agent version
 *   --stdio                   serve JSON-RPC on stdin/stdout (the default)
 *   --work-dir DIR            per-user work directory (default $AIT_AGENT_HOME or ~/.ait-studio/agent; relative to ~)
 *   --supervise JOB_DIR       internal: run one job (see jobs.ts)
 *   --native-bench JSON       internal: run bench through the native binding and print its JSON
 *   --verify-job JSON         internal: run verify (compiled model against a reference) and print its report
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { AGENT_VERSION } from '../protocol';
import { superviseJob } from './jobs';
import { runNativeBench, runNativeVerify } from './native-binding';
import { startAgent } from './server';

export const DEFAULT_WORK_DIR = path.join('.ait-studio', 'agent');

export function resolveWorkDir(dir: string | undefined): string {
  return path.resolve(os.homedir(), dir ?? process.env.AIT_AGENT_HOME ?? DEFAULT_WORK_DIR);
}

/** `args`: the arguments after the program (and after `agent` for the CLI); `selfArgv` reruns this same program. */
export function runAgentCommandLine(args: string[], selfArgv: string[]): void {
  const valueOf = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args.includes('--version')) {
    process.stdout.write(`ait-agent ${AGENT_VERSION} (node ${process.version})\n`);
    return;
  }
  const supervise = valueOf('--supervise');
  if (supervise) {
    superviseJob(supervise);
    return;
  }
  const workDir = resolveWorkDir(valueOf('--work-dir'));
  const nativeBench = valueOf('--native-bench');
  if (nativeBench) {
    runNativeBench(workDir, nativeBench).then(
      (code) => (process.exitCode = code),
      (e: Error) => {
        process.stderr.write(`ait-agent: native bench failed: ${e.stack ?? e.message}\n`);
        process.exitCode = 1;
      },
    );
    return;
  }
  const verifyJob = valueOf('--verify-job');
  if (verifyJob) {
    runNativeVerify(workDir, verifyJob).then(
      (code) => (process.exitCode = code),
      (e: Error) => {
        process.stderr.write(`ait-agent: verify failed: ${e.stack ?? e.message}\n`);
        process.exitCode = 2;
      },
    );
    return;
  }
  const connection = startAgent({ workDir, selfArgv, input: process.stdin, output: process.stdout });
  // The client went away (connection closed, SSH dropped): the agent ends; jobs, being detached, go on.
  connection.onClose(() => process.exit(0));
  process.stdin.on('end', () => process.exit(0));
}
