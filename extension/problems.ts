/**
 * Compiler and build diagnostics → Problems entries. A diagnostic whose file is on this machine (generated source,
 * a file of the build directory) goes to that file and line; one that names an ONNX node goes to the model file,
 * with the node named in the message (an .onnx file has no lines: the node name is the place). Anything else (a
 * file on a remote host, no place at all) goes to `fallbackFile`, with its place in the message.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatLocation, type Diagnostic } from '../compiler/diagnostics';
import type { ProblemEntry } from './ports';

export function problemsOf(diagnostics: readonly Diagnostic[], fallbackFile: string): ProblemEntry[] {
  return diagnostics.map((d) => {
    const loc = d.location;
    const local = loc?.file && path.isAbsolute(loc.file) && fs.existsSync(loc.file) ? loc.file : undefined;
    const file = local ?? fallbackFile;
    const line = local && loc?.line !== undefined ? Math.max(0, loc.line - 1) : 0;
    // The entry's file is its place already; the message names everything else (node, tensor, host, remote file).
    const where = formatLocation(
      loc && local ? { ...loc, file: undefined, line: undefined } : loc && loc.file === file ? { ...loc, file: undefined } : loc,
    );
    return { file, line, severity: d.severity, code: d.code, message: where ? `${where}: ${d.message}` : d.message };
  });
}

/** Build diagnostics name files relative to the build directory on the host: point them at the local copy. */
export function localizeBuildDiagnostics(diagnostics: readonly Diagnostic[], localDir: string, host: string): Diagnostic[] {
  return diagnostics.map((d) => {
    const file = d.location?.file;
    const local = file && !path.isAbsolute(file) ? path.join(localDir, file) : undefined;
    return { ...d, location: { ...d.location, ...(local && fs.existsSync(local) ? { file: local } : {}), host } };
  });
}
