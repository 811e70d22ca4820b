/** `ait inspect MODEL [--json]` */
import { ModelSummary, inspectModel } from '../inspect';
import { formatDiagnostic } from '../diagnostics';
import { formatBytes, formatCount, table } from './format';
import { ImportOptions } from '../onnx/import';
import { checkDimBounds, modelInputDims } from '../options';

export function runInspect(file: string, options: { json?: boolean } & ImportOptions, out: (s: string) => void): number {
  if (options.dimBounds && Object.keys(options.dimBounds).length) checkDimBounds(modelInputDims(file), options.dimBounds);
  const { summary } = inspectModel(file, options);
  if (options.json) out(JSON.stringify(summary, null, 2));
  else out(formatSummary(summary));
  return summary.diagnostics.some((d) => d.severity === 'error') ? 1 : 0;
}

export function formatSummary(s: ModelSummary): string {
  const lines: string[] = [];
  lines.push(`model      ${s.file}`);
  lines.push(
    `producer   ${s.producer || '(unknown)'}, IR version ${s.irVersion}, opsets ${Object.entries(s.opsets)
      .map(([d, v]) => `${d || 'ai.onnx'} ${v}`)
      .join(', ')}`,
  );
  lines.push(
    `parameters ${s.parameters.count} tensors, ${formatCount(s.parameters.elements)} elements, ${formatBytes(s.parameters.bytes)}; weights ${s.parameters.weights}`,
  );
  lines.push(
    `nodes      ${s.nodeCount}${s.subgraphNodeCount ? ` (+${s.subgraphNodeCount} in If/Loop bodies)` : ''}; ${s.foldedNodeCount} fold to constants`,
  );
  if (s.symbols.length) {
    const shown = s.symbols.slice(0, 12).map((x) => `${x.name} in [${x.min}, ${Number.isFinite(x.max) ? x.max : '∞'}]`);
    lines.push(`symbols    ${shown.join('; ')}${s.symbols.length > 12 ? `; … ${s.symbols.length - 12} more` : ''}`);
  }
  lines.push('');
  lines.push(
    table(
      [...s.inputs.map((t) => ['input', t.name, t.dtype, t.shape]), ...s.outputs.map((t) => ['output', t.name, t.dtype, t.shape])],
      ['', 'name', 'dtype', 'shape'],
    ),
  );
  lines.push('');
  lines.push(
    table(
      Object.entries(s.opHistogram).map(([op, n]) => [op, String(n)]),
      ['op', 'count'],
    ),
  );
  if (s.unknownOps.length) {
    lines.push('');
    lines.push('unknown ops:');
    for (const u of s.unknownOps)
      lines.push(`  ${u.op}: ${u.nodes.slice(0, 5).join(', ')}${u.nodes.length > 5 ? `, … (${u.nodes.length})` : ''}`);
  }
  if (s.unsupportedOps.length) {
    lines.push('');
    lines.push('ops the CUDA backend cannot run yet (the rest of the graph still compiles; graph.json marks them):');
    for (const u of s.unsupportedOps) lines.push(`  ${u.op} ×${u.nodes.length}: ${u.reason} (e.g. ${u.nodes.slice(0, 3).join(', ')})`);
  }
  if (s.unshapedTensors.length)
    lines.push(`\n${s.unshapedTensors.length} tensors have no inferred shape, e.g. ${s.unshapedTensors.slice(0, 5).join(', ')}`);
  if (s.diagnostics.length) {
    lines.push('');
    const shown = s.diagnostics.slice(0, 30);
    for (const d of shown) lines.push(formatDiagnostic(d));
    if (s.diagnostics.length > shown.length) lines.push(`… ${s.diagnostics.length - shown.length} more diagnostics (use --json for all)`);
  }
  return lines.join('\n');
}
