/**
 * The details panel: everything known about the selected node (or group): op, epilogue, absorbed ONNX nodes,
 * tensors, cost, the chosen kernel with its configuration and the candidates it beat, and per-profile timings.
 * Built as an HTML string from the state; actions are `data-action` attributes handled by the app.
 */
import type { ViewNodeJson } from './contract';
import { formatValue, metricValue, nodeTotals, profileTotalMs } from './metrics';
import { formatShape, type GraphModel } from './model';
import { esc } from './render';
import type { ViewState } from './store';

function row(label: string, value: string, field?: string): string {
  return `<tr><th>${esc(label)}</th><td${field ? ` data-field="${field}"` : ''}>${value}</td></tr>`;
}

function formatCount(n: number, unit: string): string {
  const prefixes: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [scale, p] of prefixes) if (Math.abs(n) >= scale) return `${(n / scale).toPrecision(3)} ${p}${unit}`;
  return `${n} ${unit}`;
}

function tensorRows(model: GraphModel, names: string[], role: 'input' | 'output'): string {
  return names
    .map((t, k) => {
      if (!t) return '';
      const info = model.tensors[t];
      const other = role === 'input' ? model.producerOf.get(t) : undefined;
      const link = other ? ` <a href="#" data-action="select" data-node="${esc(other)}">← ${esc(other)}</a>` : '';
      const kind = info?.kind && info.kind !== 'activation' ? ` <span class="muted">${esc(info.kind)}</span>` : '';
      return `<tr><th>${role} ${k}</th><td><code>${esc(t)}</code> <span class="shape">${esc(formatShape(info))}</span>${kind}${link}</td></tr>`;
    })
    .join('');
}

export function nodeDetailsHtml(state: ViewState, node: ViewNodeJson): string {
  const model = state.model!;
  const parts: string[] = [];
  const unsupported = node.status && !node.status.supported;
  parts.push(
    `<header><h2><span class="op">${esc(node.op)}</span>${node.epilogue?.length ? `<span class="epilogue">+${esc(node.epilogue.join('+'))}</span>` : ''}</h2>` +
      `<div class="muted">${esc(node.name)} · ${esc(node.id)}</div>` +
      (unsupported
        ? `<div class="unsupported-reason" data-field="status">unsupported${node.status!.reason ? `: ${esc(node.status!.reason)}` : ''}</div>`
        : '') +
      `</header>`,
  );

  const k = node.kernel;
  if (k) {
    const cfg = k.config ?? {};
    const cfgRows = Object.entries(cfg)
      .filter(([, v]) => !(Array.isArray(v) && v.length === 0))
      .map(([key, v]) => row(key, configValue(v)))
      .join('');
    const candidates = [...(k.candidates ?? [])].sort((a, b) => (a.timeMs ?? Infinity) - (b.timeMs ?? Infinity));
    const timedAt = candidates.find((c) => c.batch !== undefined)?.batch;
    const candRows = candidates
      .map((c) => {
        // per-batch medians as the row's tooltip
        const byBatch = c.timesMs
          ? Object.entries(c.timesMs)
              .map(([b, t]) => `batch ${b}: ${t === null ? '—' : formatValue(t, 'ms')}`)
              .join('\n')
          : '';
        return (
          `<tr class="${(c.chosen ?? c.name === k.name) ? 'chosen' : ''}${c.error ? ' failed' : ''}"${byBatch ? ` title="${esc(byBatch)}"` : ''}>` +
          `<td><code>${esc(c.name)}</code>${c.config ? `<div class="muted">${esc(c.config)}</div>` : ''}</td>` +
          `<td class="num">${c.timeMs === null ? '—' : formatValue(c.timeMs, 'ms')}</td><td>${c.error ? esc(c.error) : ''}</td></tr>`
        );
      })
      .join('');
    parts.push(
      `<section><h3>Kernel</h3><table>${row('library', esc(k.library))}${row('instance', `<code class="kernel-name">${esc(k.name)}</code>`, 'kernel-name')}${cfgRows}` +
        (k.reason ? row('why', esc(k.reason)) : '') +
        `</table>` +
        (candRows
          ? `<h4>Candidates (${candidates.length})${timedAt !== undefined ? `, timed at batch ${timedAt}` : ''}</h4><table class="candidates"><tr><th>instance</th><th>time</th><th>failure</th></tr>${candRows}</table>`
          : '') +
        `</section>`,
    );
  }
  parts.push(
    `<section><vscode-button data-action="open-source" data-node="${esc(node.id)}">Open generated source</vscode-button>` +
      (k?.source ? ` <span class="muted">${esc(k.source.file)}${k.source.line ? `:${k.source.line}` : ''}</span>` : '') +
      `</section>`,
  );

  const profileRows = state.profiles
    .map((p) => {
      const t = nodeTotals(model, p.profile, node.id);
      if (!t) return `<tr><th>${esc(p.name)}</th><td class="muted">not measured</td></tr>`;
      const total = profileTotalMs(p.profile);
      const fields: string[] = [formatValue(t.timeMs, 'ms'), formatValue(metricValue('share', t, total)!, '%')];
      const tf = metricValue('tflops', t, total);
      if (tf !== null) fields.push(formatValue(tf, 'TFLOP/s'));
      const gb = metricValue('gbps', t, total);
      if (gb !== null) fields.push(formatValue(gb, 'GB/s'));
      const roof = metricValue('roofline', t, total);
      if (roof !== null) fields.push(`${formatValue(100 * roof, '%')} of roofline`);
      if (t.errorMaxAbs !== null) fields.push(`max abs error ${formatValue(t.errorMaxAbs, '')}`);
      if (t.errorRelL2 !== null) fields.push(`relative L2 error ${formatValue(t.errorRelL2, '')}`);
      if (t.fp16Overflows) fields.push('values beyond the fp16 range');
      return `<tr><th>${esc(p.name)}</th><td>${fields.map(esc).join(' · ')}</td></tr>`;
    })
    .join('');
  if (profileRows) parts.push(`<section><h3>Profile</h3><table>${profileRows}</table></section>`);

  if (node.cost) {
    const ai = node.cost.bytes > 0 ? node.cost.flops / node.cost.bytes : null;
    parts.push(
      `<section><h3>Cost (batch ${node.cost.batch})</h3><table>${row('FLOPs', esc(formatCount(node.cost.flops, 'FLOP')))}${row('bytes', esc(formatCount(node.cost.bytes, 'B')))}` +
        (ai !== null ? row('intensity', `${ai.toPrecision(3)} FLOP/B`) : '') +
        `</table></section>`,
    );
  }

  parts.push(
    `<section><h3>Tensors</h3><table>${tensorRows(model, node.inputs, 'input')}${tensorRows(model, node.outputs, 'output')}</table></section>`,
  );
  const consumers = model.consumersOf.get(node.id) ?? [];
  if (consumers.length)
    parts.push(
      `<section><h3>Consumers</h3><div>${[...new Set(consumers)].map((c) => `<a href="#" data-action="select" data-node="${esc(c)}">${esc(c)} ${esc(model.nodeById.get(c)?.json.op ?? '')}</a>`).join(', ')}</div></section>`,
    );

  parts.push(
    `<section><h3>Source ONNX nodes (${node.sourceNodes.length})</h3><ul class="source-nodes">${node.sourceNodes.map((s) => `<li><code>${esc(s)}</code></li>`).join('')}</ul>` +
      (node.scope.length ? `<div class="muted">scope: ${esc(node.scope.join(' / '))}</div>` : '') +
      `</section>`,
  );
  const attrs = Object.entries(node.attrs ?? {});
  if (attrs.length)
    parts.push(
      `<section><h3>Attributes</h3><table>${attrs.map(([key, v]) => row(key, `<code>${esc(JSON.stringify(v))}</code>`)).join('')}</table></section>`,
    );
  if (typeof node.stackTrace === 'string')
    parts.push(`<section><details><summary>Python stack</summary><pre>${esc(node.stackTrace)}</pre></details></section>`);
  return parts.join('');
}

export function groupDetailsHtml(state: ViewState, groupId: string, valueText: string | undefined): string {
  const g = state.model!.groups.get(groupId)!;
  const collapsed = state.collapsed.has(groupId);
  return (
    `<header><h2>${esc(g.name || 'graph')}</h2><div class="muted">${esc(g.path.join(' / '))}</div></header>` +
    `<section><table>${row('nodes', String(g.size))}${valueText ? row('heatmap (sum)', esc(valueText)) : ''}</table>` +
    `<vscode-button data-action="${collapsed ? 'expand' : 'collapse'}" data-group="${esc(groupId)}">${collapsed ? 'Expand' : 'Collapse'}</vscode-button></section>`
  );
}

/**
 * A kernel configuration value as HTML: tile-like number lists as 128×128×64; objects as key: value pairs; lists of
 * objects one per line (e.g. the per-batch-range instances of a GEMM: "batch 2..256: name", with the condition first
 * when the launch also picks by the sizes: "otherwise, batch 1..8: name").
 */
export function configValue(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'number' || typeof x === 'string')) return esc(v.join('×'));
    return v.map((x) => `<div>${configValue(x)}</div>`).join('');
  }
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.batches) && typeof o.name === 'string')
      return `${typeof o.when === 'string' ? `${esc(o.when)}, ` : ''}batch ${esc((o.batches as number[]).join('..'))}: <code>${esc(o.name)}</code>${typeof o.file === 'string' ? ` <span class="muted">${esc(o.file)}</span>` : ''}`;
    return Object.entries(o)
      .map(([k, x]) => `${esc(k)}: ${typeof x === 'object' && x !== null ? configValue(x) : esc(String(x))}`)
      .join(', ');
  }
  return esc(String(v));
}
