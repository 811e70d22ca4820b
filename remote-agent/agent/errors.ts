/** Errors the agent answers with: a code and a message; the JSON-RPC error carries them as a Diagnostic. */
import type { Diagnostic, DiagnosticLocation } from '../../compiler/diagnostics';

export class AgentError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly location?: DiagnosticLocation,
  ) {
    super(message);
    this.name = 'AgentError';
  }

  toDiagnostic(): Diagnostic {
    return { code: this.code, severity: 'error', message: this.message, location: this.location };
  }
}
