/**
 * Diagnostics: errors and warnings as values with a place (ONNX node, file, host).
 * The CLI prints them; the extension turns them into Problems entries. Nothing is thrown as a bare string.
 */
export type Severity = 'error' | 'warning' | 'info';

/** Where a diagnostic belongs. Every field is optional; give all that are known. */
export interface DiagnosticLocation {
  /** ONNX node name (or the op type and index when the node has no name). */
  onnxNode?: string;
  /** Node id in the IR / graph.json. */
  nodeId?: string;
  /** A file on disk (model, generated source, build log). */
  file?: string;
  line?: number;
  /** A remote host. */
  host?: string;
  /** A tensor name. */
  tensor?: string;
}

export interface Diagnostic {
  /** Stable machine-readable code, e.g. `onnx.truncated`, `graph.cycle`, `op.unsupported`. */
  code: string;
  severity: Severity;
  message: string;
  location?: DiagnosticLocation;
}

/** An error that carries one or more diagnostics. Thrown by the compiler, caught by the CLI and the extension. */
export class CompileError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic | Diagnostic[]) {
    const list = Array.isArray(diagnostics) ? diagnostics : [diagnostics];
    super(list.map(formatDiagnostic).join('\n'));
    this.name = 'CompileError';
    this.diagnostics = list;
  }
}

export function error(code: string, message: string, location?: DiagnosticLocation): Diagnostic {
  return { code, severity: 'error', message, location };
}

export function warning(code: string, message: string, location?: DiagnosticLocation): Diagnostic {
  return { code, severity: 'warning', message, location };
}

/** Throws a CompileError with one error diagnostic. */
export function fail(code: string, message: string, location?: DiagnosticLocation): never {
  throw new CompileError(error(code, message, location));
}

export function formatLocation(location: DiagnosticLocation | undefined): string {
  if (!location) return '';
  const parts: string[] = [];
  if (location.file) parts.push(location.line !== undefined ? `${location.file}:${location.line}` : location.file);
  if (location.host) parts.push(`host ${location.host}`);
  if (location.onnxNode) parts.push(`node '${location.onnxNode}'`);
  else if (location.nodeId) parts.push(`node ${location.nodeId}`);
  if (location.tensor) parts.push(`tensor '${location.tensor}'`);
  return parts.join(', ');
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = formatLocation(d.location);
  return `${d.severity} [${d.code}]${where ? ` ${where}` : ''}: ${d.message}`;
}

/** Collects diagnostics during a compilation step. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  add(d: Diagnostic): void {
    this.items.push(d);
  }
  get errors(): Diagnostic[] {
    return this.items.filter((d) => d.severity === 'error');
  }
  get warnings(): Diagnostic[] {
    return this.items.filter((d) => d.severity === 'warning');
  }
}
