/** Client-side errors: CompileErrors whose diagnostics name the host (and file, where there is one). */
import { CompileError, type Diagnostic, type DiagnosticLocation } from '../../compiler/diagnostics';

export function remoteError(code: string, message: string, host: string, location: DiagnosticLocation = {}): CompileError {
  return new CompileError({ code, severity: 'error', message, location: { ...location, host } });
}

/** An error raised while talking to the agent, as a CompileError with the agent's diagnostic when it sent one. */
export function fromAgentError(e: unknown, host: string): CompileError {
  if (e instanceof CompileError) return e;
  const data = (e as { data?: Diagnostic }).data;
  if (data && typeof data.code === 'string' && typeof data.message === 'string') {
    return new CompileError({ ...data, location: { ...data.location, host } });
  }
  return remoteError('remote.agent-error', e instanceof Error ? e.message : String(e), host);
}
