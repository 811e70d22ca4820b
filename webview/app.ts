/**
 * The graph view: toolbar, graph canvas (layout → renderer), minimap, legend, details panel. State lives in the
 * store; this module turns user input into store updates and store changes into drawing.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import { select, zoom, zoomIdentity, type D3ZoomEvent, type ZoomBehavior, type ZoomTransform } from 'd3';
import { groupDetailsHtml, nodeDetailsHtml } from './details';
import { exportPng, exportSvg } from './export';
import { LayoutEngine, type LaidOutBox, type LaidOutGraph } from './layout';
import { provisionalLayout } from './provisional-layout';
import { buildSegmentPaint, type SegmentPaint } from './segments';
import { buildCompare, buildHeatmap, defaultMetric, formatValue, METRICS, type Heatmap, type MetricId } from './metrics';
import { Minimap } from './minimap';
import {
  buildGraphModel,
  initialCollapsed,
  kernelBadge,
  representativeOf,
  revealNode,
  ROOT_GROUP,
  searchNodes,
  visibleGraph,
  formatShape,
} from './model';
import type { HostConnection, HostMessage, Theme } from './protocol';
import { CANVAS_THRESHOLD, CanvasRenderer, esc, SvgRenderer, type BoxText, type GraphRenderer, type Paint } from './render';
import { initialState, Store, type ViewState } from './store';
import { graphJsonProblem } from './validate';

/** Graphs with more nodes than this open with groups collapsed until at most this many boxes show. */
export const INITIAL_MAX_VISIBLE = 160;

/** A later layout (a group toggled) is drawn provisionally only if ELK has not answered within this time. */
export const PROVISIONAL_AFTER_MS = 150;

/** Runs `fn` once the next frame has been produced (style, layout and paint of the main thread done). */
function afterNextFrame(fn: () => void): void {
  requestAnimationFrame(() => setTimeout(fn, 0));
}

export interface AppOptions {
  /** The standalone page: shows a theme switch (VS Code sets the theme itself). */
  standalone: boolean;
}

export class GraphApp {
  readonly store = new Store(initialState());
  private readonly engine = new LayoutEngine();
  private renderer: GraphRenderer | null = null;
  private layout: LaidOutGraph | null = null;
  private layoutSeq = 0;
  private transform: ZoomTransform = zoomIdentity;
  private readonly zoomBehavior: ZoomBehavior<HTMLElement, unknown>;
  private readonly minimap: Minimap;
  private heatmap: Heatmap | null = null;
  /** Segment colours of a partitioned build, shown when no heatmap is on. */
  private segments: SegmentPaint | null = null;
  /** After the next layout: fit the view (first layout) or keep this box where it was on screen. */
  private anchor: { id: string; screen: [number, number] } | 'fit' | null = 'fit';
  private firstRenderMarked = false;
  private firstElkRenderMarked = false;
  /** Every layout drawn, in order (for tests and the benchmark): engine, leaf boxes, time to lay out, when drawn (performance.now()). */
  readonly layoutLog: { engine: LaidOutGraph['engine']; boxes: number; layoutMs: number; atMs: number }[] = [];

  private readonly el: {
    graphHost: HTMLElement;
    details: HTMLElement;
    legend: HTMLElement;
    tooltip: HTMLElement;
    status: HTMLElement;
    search: HTMLInputElement;
    count: HTMLElement;
    metric: HTMLSelectElement;
    profile: HTMLSelectElement;
    compare: HTMLSelectElement;
  };

  constructor(
    private readonly root: HTMLElement,
    private readonly host: HostConnection,
    options: AppOptions,
  ) {
    root.classList.add('ait-graph-app');
    root.innerHTML = `
      <div class="toolbar" role="toolbar">
        <vscode-textfield id="ait-search" placeholder="Search name, op, kernel  (/)" aria-label="Search nodes"></vscode-textfield>
        <vscode-badge id="ait-count" variant="counter">0</vscode-badge>
        <vscode-button id="ait-prev" secondary title="Previous match (Shift+Enter)">↑</vscode-button>
        <vscode-button id="ait-next" secondary title="Next match (Enter)">↓</vscode-button>
        <span class="sep"></span>
        <label>Heatmap <vscode-single-select id="ait-profile" aria-label="Profile"></vscode-single-select></label>
        <vscode-single-select id="ait-metric" aria-label="Metric">${Object.entries(METRICS)
          .map(([id, m]) => `<vscode-option value="${id}">${esc(m.label)}</vscode-option>`)
          .join('')}</vscode-single-select>
        <label>Compare to <vscode-single-select id="ait-compare" aria-label="Compare with"></vscode-single-select></label>
        <span class="sep"></span>
        <vscode-button id="ait-fit" secondary title="Fit to view (F)">Fit</vscode-button>
        <vscode-button id="ait-expand" secondary>Expand all</vscode-button>
        <vscode-button id="ait-collapse" secondary>Collapse all</vscode-button>
        <vscode-button id="ait-export-svg" secondary>SVG</vscode-button>
        <vscode-button id="ait-export-png" secondary>PNG</vscode-button>
        ${options.standalone ? '<vscode-button id="ait-theme" secondary title="Switch theme">Theme</vscode-button>' : ''}
      </div>
      <div class="main">
        <div class="graph-host" tabindex="0" aria-label="Graph">
          <div class="legend" hidden></div>
          <div class="tooltip" hidden></div>
          <div class="status"></div>
        </div>
        <aside class="details" hidden tabindex="-1" aria-label="Node details"></aside>
      </div>`;
    const q = <T extends HTMLElement>(sel: string) => root.querySelector<T>(sel)!;
    this.el = {
      graphHost: q('.graph-host'),
      details: q('.details'),
      legend: q('.legend'),
      tooltip: q('.tooltip'),
      status: q('.status'),
      search: q('#ait-search'),
      count: q('#ait-count'),
      metric: q('#ait-metric'),
      profile: q('#ait-profile'),
      compare: q('#ait-compare'),
    };
    this.minimap = new Minimap(this.el.graphHost, (x, y) => this.centerOn(x, y, this.transform.k));

    this.zoomBehavior = zoom<HTMLElement, unknown>()
      .scaleExtent([0.01, 4])
      .clickDistance(4)
      // Wheel and drag pan/zoom; clicks fall through to selection; toolbars inside the host are not the canvas.
      .filter((event: Event) => !(event.target as Element).closest?.('.legend, .minimap') && !(event as MouseEvent).button)
      .on('zoom', (event: D3ZoomEvent<HTMLElement, unknown>) => this.onZoom(event.transform, event.sourceEvent != null));
    select(this.el.graphHost).call(this.zoomBehavior).on('dblclick.zoom', null);

    this.wireInput();
    this.store.subscribe((state, changed) => this.onState(state, changed));
    host.onMessage((m) => this.onHostMessage(m));
    new MutationObserver(() => this.onThemeChanged()).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }

  private onHostMessage(m: HostMessage): void {
    switch (m.type) {
      case 'load': {
        // a malformed graph says why on the page (and to the host) instead of leaving it blank
        const problem = graphJsonProblem(m.graph);
        let model: ReturnType<typeof buildGraphModel>;
        try {
          if (problem) throw new Error(problem);
          model = buildGraphModel(m.graph);
        } catch (e) {
          this.showLoadError(`${m.graphPath ?? 'graph.json'}: ${(e as Error).message}`);
          return;
        }
        this.el.status.classList.remove('load-error');
        this.el.status.removeAttribute('role');
        performance.mark('ait-model-built');
        this.anchor = 'fit';
        this.store.update({
          model,
          graphPath: m.graphPath ?? null,
          profiles: m.profiles,
          profileIndex: m.profiles.length ? m.profiles.length - 1 : null,
          metric: defaultMetric(m.profiles, m.profiles.length ? m.profiles.length - 1 : null, this.store.get().metric),
          compareIndex: null,
          collapsed: initialCollapsed(model, INITIAL_MAX_VISIBLE),
          selected: null,
          query: '',
          results: [],
          resultIndex: -1,
        });
        break;
      }
      case 'addProfile': {
        const profiles = [...this.store.get().profiles, m.profile];
        this.store.update({
          profiles,
          profileIndex: profiles.length - 1,
          metric: defaultMetric(profiles, profiles.length - 1, this.store.get().metric),
        });
        break;
      }
      case 'selectNode':
        this.selectNode(m.nodeId, true);
        break;
      case 'setTheme':
        setBodyTheme(m.theme);
        break;
    }
  }

  /** Instead of a graph: the reason it cannot be shown, on the page and to the host. */
  private showLoadError(message: string): void {
    this.el.status.textContent = `Cannot show the graph: ${message}`;
    this.el.status.classList.add('load-error');
    this.el.status.setAttribute('role', 'alert');
    this.host.post({ type: 'error', message: `Cannot show the graph: ${message}` });
  }

  // ---- input ----

  private wireInput(): void {
    const on = (sel: string, type: string, fn: (e: Event) => void) => this.root.querySelector(sel)?.addEventListener(type, fn);
    on('#ait-search', 'input', () => this.setQuery(this.el.search.value));
    on('#ait-search', 'keydown', (e) => {
      const k = e as KeyboardEvent;
      if (k.key === 'Enter') this.stepResult(k.shiftKey ? -1 : 1);
      if (k.key === 'Escape') this.el.graphHost.focus();
    });
    on('#ait-prev', 'click', () => this.stepResult(-1));
    on('#ait-next', 'click', () => this.stepResult(1));
    on('#ait-metric', 'change', () => this.store.update({ metric: this.el.metric.value as MetricId }));
    on('#ait-profile', 'change', () => {
      const profileIndex = this.el.profile.value === '' ? null : Number(this.el.profile.value);
      const { profiles, metric } = this.store.get();
      this.store.update({ profileIndex, metric: defaultMetric(profiles, profileIndex, metric) });
    });
    on('#ait-compare', 'change', () =>
      this.store.update({ compareIndex: this.el.compare.value === '' ? null : Number(this.el.compare.value) }),
    );
    on('#ait-fit', 'click', () => this.fit());
    on('#ait-expand', 'click', () => this.setCollapsed(new Set(), null));
    on('#ait-collapse', 'click', () => {
      const model = this.store.get().model;
      if (model) this.setCollapsed(new Set([...model.groups.keys()].filter((g) => g !== ROOT_GROUP)), null);
    });
    on('#ait-export-svg', 'click', () => void this.export('svg'));
    on('#ait-export-png', 'click', () => void this.export('png'));
    on('#ait-theme', 'click', () => {
      const order: Theme[] = ['dark', 'light', 'high-contrast'];
      setBodyTheme(order[(order.indexOf(currentTheme()) + 1) % order.length]);
    });

    const gh = this.el.graphHost;
    gh.addEventListener('click', (e) => this.onGraphClick(e));
    gh.addEventListener('mousemove', (e) => this.onHover(e));
    gh.addEventListener('mouseleave', () => (this.el.tooltip.hidden = true));
    this.el.details.addEventListener('click', (e) => this.onDetailsClick(e));
    document.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.onResize()).observe(gh);
  }

  private onGraphClick(e: MouseEvent): void {
    const state = this.store.get();
    const id = this.renderer?.itemAt(e) ?? null;
    if (!id || !state.model) {
      this.select(null);
      return;
    }
    if (state.model.groups.has(id)) {
      const box = this.layout?.boxes.find((b) => b.id === id);
      const toggleHit = box?.kind === 'container' || (e.target as Element).closest?.('.toggle');
      if (box?.kind === 'group') this.setCollapsed(new Set([...state.collapsed].filter((g) => g !== id)), id);
      else if (toggleHit) this.setCollapsed(new Set([...state.collapsed, id]), id);
      this.select(id);
      return;
    }
    this.select(id);
  }

  private onHover(e: MouseEvent): void {
    const edge = this.renderer?.edgeAt(e);
    const tip = this.el.tooltip;
    const model = this.store.get().model;
    if (!edge || !model) {
      tip.hidden = true;
      return;
    }
    tip.innerHTML = edge.tensors.map((t) => `<div><code>${esc(t)}</code> ${esc(formatShape(model.tensors[t]))}</div>`).join('');
    const r = this.el.graphHost.getBoundingClientRect();
    tip.style.left = `${e.clientX - r.left + 12}px`;
    tip.style.top = `${e.clientY - r.top + 12}px`;
    tip.hidden = false;
  }

  private onDetailsClick(e: Event): void {
    const target = (e.target as Element).closest<HTMLElement>('[data-action]');
    if (!target) return;
    e.preventDefault();
    const state = this.store.get();
    switch (target.dataset.action) {
      case 'select':
        this.selectNode(target.dataset.node!, true);
        break;
      case 'open-source': {
        const node = state.model?.nodeById.get(target.dataset.node!);
        const src = node?.json.kernel?.source;
        this.host.post({ type: 'openSource', nodeId: target.dataset.node!, file: src?.file, line: src?.line });
        break;
      }
      case 'expand':
        this.setCollapsed(new Set([...state.collapsed].filter((g) => g !== target.dataset.group)), target.dataset.group!);
        break;
      case 'collapse':
        this.setCollapsed(new Set([...state.collapsed, target.dataset.group!]), target.dataset.group!);
        break;
    }
  }

  private onKey(e: KeyboardEvent): void {
    const inField = (e.target as Element).closest?.('vscode-textfield, input, textarea, vscode-single-select');
    if (inField) return;
    const state = this.store.get();
    const model = state.model;
    if (e.key === '/') {
      e.preventDefault();
      this.el.search.focus();
    } else if (e.key === 'Escape') this.select(null);
    else if (e.key === 'f' || e.key === 'F') this.fit();
    else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && model && state.selected && model.nodeById.has(state.selected)) {
      // Walk the dataflow: down to the first consumer, up to the first produced input.
      e.preventDefault();
      const node = model.nodeById.get(state.selected)!;
      const next =
        e.key === 'ArrowDown'
          ? model.consumersOf.get(node.id)?.[0]
          : node.json.inputs.map((t) => model.producerOf.get(t)).find((p): p is string => p !== undefined);
      if (next) this.selectNode(next, true);
    } else if (e.key === 'Enter' && state.selected) this.el.details.focus();
  }

  // ---- actions ----

  private select(id: string | null): void {
    this.store.update({ selected: id });
    this.host.post({ type: 'nodeSelected', nodeId: id });
  }

  /** Select a node, expanding its collapsed groups, and (optionally) bring it into view. */
  selectNode(nodeId: string, center: boolean): void {
    const state = this.store.get();
    if (!state.model?.nodeById.has(nodeId)) return;
    const collapsed = revealNode(state.model, nodeId, state.collapsed);
    this.select(nodeId);
    if (collapsed.size !== state.collapsed.size) {
      this.pendingCenter = center ? nodeId : null;
      this.anchor = null;
      this.store.update({ collapsed });
    } else if (center) this.centerOnBox(nodeId);
  }

  private pendingCenter: string | null = null;

  private setCollapsed(collapsed: Set<string>, anchorId: string | null): void {
    const box = anchorId ? this.layout?.boxes.find((b) => b.id === anchorId) : undefined;
    this.anchor = box
      ? { id: anchorId!, screen: this.transform.apply([box.x, box.y]) as [number, number] }
      : this.anchor === 'fit'
        ? 'fit'
        : null;
    this.store.update({ collapsed });
  }

  private setQuery(query: string): void {
    const model = this.store.get().model;
    const results = model ? searchNodes(model, query) : [];
    this.store.update({ query, results, resultIndex: results.length ? 0 : -1 });
    if (results.length) this.selectNode(results[0], true);
  }

  private stepResult(delta: number): void {
    const { results, resultIndex } = this.store.get();
    if (!results.length) return;
    const i = (resultIndex + delta + results.length) % results.length;
    this.store.update({ resultIndex: i });
    this.selectNode(results[i], true);
  }

  fit(): void {
    if (!this.layout) return;
    const w = this.el.graphHost.clientWidth;
    const h = this.el.graphHost.clientHeight;
    const k = Math.min(2, 0.95 * Math.min(w / Math.max(1, this.layout.width), h / Math.max(1, this.layout.height)));
    const t = zoomIdentity.translate((w - this.layout.width * k) / 2, (h - this.layout.height * k) / 2).scale(k);
    select(this.el.graphHost).call(this.zoomBehavior.transform, t);
  }

  /** First view of a graph: all of it when that stays readable, else its top at a readable scale. */
  private fitInitial(): void {
    if (!this.layout) return;
    const w = this.el.graphHost.clientWidth;
    const h = this.el.graphHost.clientHeight;
    const fitAll = Math.min(w / Math.max(1, this.layout.width), h / Math.max(1, this.layout.height));
    if (fitAll >= 0.5) return this.fit();
    const k = Math.max(Math.min(0.9, (0.95 * w) / Math.max(1, this.layout.width)), 0.5);
    const x = this.layout.width * k < w ? (w - this.layout.width * k) / 2 : 10;
    select(this.el.graphHost).call(this.zoomBehavior.transform, zoomIdentity.translate(x, 10).scale(k));
  }

  private centerOn(x: number, y: number, k: number): void {
    const w = this.el.graphHost.clientWidth;
    const h = this.el.graphHost.clientHeight;
    select(this.el.graphHost).call(this.zoomBehavior.transform, zoomIdentity.translate(w / 2 - x * k, h / 2 - y * k).scale(k));
  }

  private centerOnBox(id: string): void {
    const box = this.layout?.boxes.find((b) => b.id === id);
    if (box) this.centerOn(box.x + box.width / 2, box.y + box.height / 2, Math.max(this.transform.k, 0.8));
  }

  private async export(kind: 'svg' | 'png'): Promise<void> {
    if (!this.layout || !this.renderer) return;
    const name = (this.store.get().model?.json.model.name ?? 'graph').replace(/[^A-Za-z0-9_.-]/g, '_');
    const view = { width: this.el.graphHost.clientWidth, height: this.el.graphHost.clientHeight, transform: this.transform };
    const textOf = (b: LaidOutBox) => this.boxText(b);
    try {
      if (kind === 'svg') {
        const svg = exportSvg(this.layout, textOf, this.currentPaint(), view, this.el.graphHost);
        this.host.post({ type: 'saveFile', fileName: `${name}.svg`, mime: 'image/svg+xml', data: svg, encoding: 'utf8' });
      } else {
        const png = await exportPng(this.layout, textOf, this.currentPaint(), view, this.el.graphHost);
        this.host.post({ type: 'saveFile', fileName: `${name}.png`, mime: 'image/png', data: png, encoding: 'base64' });
      }
    } catch (err) {
      this.host.post({ type: 'error', message: `export as ${kind} failed: ${String(err)}` });
    }
  }

  // ---- state → view ----

  private onState(state: ViewState, changed: ReadonlySet<keyof ViewState>): void {
    if (changed.has('model') || changed.has('profiles')) this.fillPickers(state);
    if (changed.has('model') || changed.has('collapsed')) void this.relayout(state);
    if (['model', 'profiles', 'profileIndex', 'metric', 'compareIndex'].some((k) => changed.has(k as keyof ViewState)))
      this.heatmap = this.buildHeatmap(state);
    if (changed.has('model')) this.segments = state.model ? buildSegmentPaint(state.model) : null;
    if (
      ['model', 'profiles', 'profileIndex', 'metric', 'compareIndex', 'selected', 'results', 'resultIndex', 'collapsed'].some((k) =>
        changed.has(k as keyof ViewState),
      )
    ) {
      this.repaint();
      this.renderLegend();
      this.renderDetails(state);
    }
    if (changed.has('results') || changed.has('resultIndex')) {
      this.el.count.textContent = state.results.length ? `${state.resultIndex + 1}/${state.results.length}` : '0';
    }
  }

  private fillPickers(state: ViewState): void {
    const opts = (none: string) =>
      `<vscode-option value="">${esc(none)}</vscode-option>` +
      state.profiles.map((p, i) => `<vscode-option value="${i}">${esc(p.name)}</vscode-option>`).join('');
    this.el.profile.innerHTML = opts('none');
    this.el.compare.innerHTML = opts('—');
    queueMicrotask(() => {
      this.el.profile.value = state.profileIndex === null ? '' : String(state.profileIndex);
      this.el.compare.value = state.compareIndex === null ? '' : String(state.compareIndex);
      this.el.metric.value = state.metric;
    });
  }

  private buildHeatmap(state: ViewState): Heatmap | null {
    if (!state.model || state.profileIndex === null) return null;
    const after = state.profiles[state.profileIndex]?.profile;
    if (!after) return null;
    if (state.compareIndex !== null && state.compareIndex !== state.profileIndex) {
      return buildCompare(state.model, state.profiles[state.compareIndex].profile, after);
    }
    return buildHeatmap(state.model, after, state.metric);
  }

  private currentPaint(): Paint {
    const state = this.store.get();
    const model = state.model;
    const rep = (id: string) => (model && model.nodeById.has(id) ? representativeOf(model, id, state.collapsed) : id);
    const valueText = this.heatmap
      ? new Map([...this.heatmap.valueOf].map(([id, v]) => [id, formatValue(v, this.heatmap!.legend.unit)]))
      : null;
    return {
      fill: this.heatmap?.colorOf ?? this.segments?.colorOf ?? null,
      valueText,
      selected: state.selected ? rep(state.selected) : null,
      matches: new Set(state.results.map(rep)),
      current: state.resultIndex >= 0 ? rep(state.results[state.resultIndex]) : null,
    };
  }

  private repaint(): void {
    if (!this.renderer) return;
    this.renderer.paint(this.currentPaint());
    this.minimap.paint(this.heatmap?.colorOf ?? this.segments?.colorOf ?? null);
  }

  private renderLegend(): void {
    const h = this.heatmap;
    const lg = this.el.legend;
    if (!h && this.segments) {
      lg.hidden = false;
      lg.innerHTML =
        '<div class="legend-title">Segments (ait compile --partition)</div>' +
        this.segments.legend
          .map(
            (e) =>
              `<div class="legend-segment" data-segment="${e.index}"><span class="legend-swatch" style="background:${e.color}"></span>` +
              `${e.index} · ${e.kind === 'fallback' ? 'onnxruntime' : 'compiled'} · ${e.nodes} node${e.nodes === 1 ? '' : 's'}</div>`,
          )
          .join('');
      return;
    }
    if (!h) {
      lg.hidden = true;
      return;
    }
    const model = this.store.get().model!;
    const l = h.legend;
    const maxName = l.maxItem ? (model.nodeById.get(l.maxItem)?.json.name ?? l.maxItem) : '';
    lg.hidden = false;
    lg.innerHTML =
      `<div class="legend-title">${esc(l.title)}</div>` +
      `<div class="legend-bar" style="background: linear-gradient(to right, ${l.gradient.join(', ')})"></div>` +
      `<div class="legend-scale"><span data-field="legend-min">${esc(formatValue(l.min, l.unit))}</span>` +
      (l.diverging ? `<span>1×</span>` : '') +
      `<span data-field="legend-max">${esc(formatValue(l.max, l.unit))}</span></div>` +
      (l.note ? `<div class="legend-note" data-field="legend-note">${esc(l.note)}</div>` : '') +
      (l.maxItem
        ? `<div class="legend-hottest">${l.diverging ? 'most slowed' : 'hottest'}: <a href="#" data-node="${esc(l.maxItem)}">${esc(maxName)}</a></div>`
        : '<div class="muted">no node of this graph has this metric</div>');
    lg.querySelector('a[data-node]')?.addEventListener('click', (e) => {
      e.preventDefault();
      this.selectNode((e.currentTarget as HTMLElement).dataset.node!, true);
    });
  }

  private renderDetails(state: ViewState): void {
    const d = this.el.details;
    const model = state.model;
    if (!model || !state.selected) {
      d.hidden = true;
      return;
    }
    d.hidden = false;
    const node = model.nodeById.get(state.selected);
    if (node) d.innerHTML = nodeDetailsHtml(state, node.json);
    else if (model.groups.has(state.selected)) {
      const v = this.heatmap?.valueOf.get(state.selected);
      d.innerHTML = groupDetailsHtml(state, state.selected, v === undefined ? undefined : formatValue(v, this.heatmap!.legend.unit));
    } else d.hidden = true;
  }

  private boxText(box: LaidOutBox): BoxText {
    const model = this.store.get().model!;
    const node = model.nodeById.get(box.id);
    if (node) {
      const n = node.json;
      const shortName = n.name.split('/').filter(Boolean).pop() ?? n.name;
      const unsupported = n.status?.supported === false;
      return {
        title: n.op,
        subtitle: n.epilogue?.length ? `+${n.epilogue.join('+')}` : shortName,
        badge: unsupported ? 'unsupported' : kernelBadge(n),
        unsupported,
        tooltip: [n.name, n.kernel?.name, unsupported ? `unsupported: ${n.status?.reason ?? ''}` : ''].filter(Boolean).join('\n'),
      };
    }
    const g = model.groups.get(box.id);
    return {
      title: g?.name || box.id,
      subtitle: `${g?.size ?? 0} nodes`,
      badge: null,
      unsupported: false,
      tooltip: g ? `${g.path.join(' / ')} (${g.size} nodes)` : box.id,
    };
  }

  private async relayout(state: ViewState): Promise<void> {
    const model = state.model;
    if (!model) return;
    const seq = ++this.layoutSeq;
    const visible = visibleGraph(model, state.collapsed);
    this.root.dataset.layoutState = 'running';
    this.el.status.textContent = `laying out ${visible.items.length} boxes…`;
    const elkLayout = this.engine.layout(visible);
    // The first layout of a graph is drawn at once from the main thread's quick layering (ELK's first answer also
    // pays the worker's start-up); later ones only when ELK is slow to answer, so that a quick toggle draws once.
    let provisionalNow = !this.layout || this.anchor === 'fit';
    if (!provisionalNow) {
      const answered = await Promise.race([
        elkLayout.then(
          () => true,
          () => true,
        ),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), PROVISIONAL_AFTER_MS)),
      ]);
      if (seq !== this.layoutSeq) return;
      provisionalNow = !answered;
    }
    if (provisionalNow) {
      this.show(provisionalLayout(visible), visible.items.length, model.nodes.length);
      this.root.dataset.layoutState = 'provisional';
    }
    let layout: LaidOutGraph;
    try {
      layout = await elkLayout;
    } catch (err) {
      if (seq !== this.layoutSeq) return;
      this.root.dataset.layoutState = 'error';
      this.el.status.textContent = `layout failed: ${String(err)}`;
      this.host.post({ type: 'error', message: `layout failed: ${String(err)}` });
      return;
    }
    if (seq !== this.layoutSeq) return;
    this.show(layout, visible.items.length, model.nodes.length);
    this.root.dataset.layoutState = 'done';
  }

  /** Draws a layout (provisional or ELK's) and places the view: fit, keep the anchor box in place, or as it was. */
  private show(layout: LaidOutGraph, boxCount: number, nodeCount: number): void {
    const t0 = performance.now();
    const kind = boxCount > CANVAS_THRESHOLD ? 'canvas' : 'svg';
    if (this.renderer?.kind !== kind) {
      this.renderer?.destroy();
      this.renderer = kind === 'canvas' ? new CanvasRenderer(this.el.graphHost) : new SvgRenderer(this.el.graphHost);
      this.el.graphHost.prepend((this.renderer as SvgRenderer).svg ?? (this.renderer as CanvasRenderer).canvas);
    }
    this.layout = layout;
    this.renderer.draw(layout, (b) => this.boxText(b));
    this.renderer.paint(this.currentPaint());
    this.minimap.setLayout(layout, this.heatmap?.colorOf ?? this.segments?.colorOf ?? null);
    // A provisional layout keeps the anchor for ELK's layout, unless the user moves the view meanwhile (onZoom).
    const anchor = this.anchor;
    const final = layout.engine === 'elk';
    if (final) this.anchor = null;
    if (anchor === 'fit') this.fitInitial();
    else if (anchor) {
      const box = layout.boxes.find((b) => b.id === anchor.id);
      if (box) {
        const k = this.transform.k;
        select(this.el.graphHost).call(
          this.zoomBehavior.transform,
          zoomIdentity.translate(anchor.screen[0] - box.x * k, anchor.screen[1] - box.y * k).scale(k),
        );
      } else this.renderer.setTransform(this.transform);
    } else this.renderer.setTransform(this.transform);
    if (this.pendingCenter) {
      this.centerOnBox(this.pendingCenter);
      if (final) this.pendingCenter = null;
    }
    const drawMs = performance.now() - t0;
    this.root.dataset.renderer = kind;
    this.root.dataset.layoutEngine = layout.engine;
    this.root.dataset.layoutMs = layout.layoutMs.toFixed(1);
    this.root.dataset.drawMs = drawMs.toFixed(1);
    this.layoutLog.push({
      engine: layout.engine,
      boxes: layout.boxes.filter((b) => b.kind !== 'container').length,
      layoutMs: layout.layoutMs,
      atMs: performance.now(),
    });
    this.el.status.textContent =
      `${nodeCount} nodes · ${boxCount} boxes · ` +
      (final ? `layout ${layout.layoutMs.toFixed(0)} ms` : `provisional layout ${layout.layoutMs.toFixed(0)} ms, ELK running`) +
      ` · draw ${drawMs.toFixed(0)} ms · ${kind}`;
    if (!this.firstRenderMarked) {
      this.firstRenderMarked = true;
      afterNextFrame(() => performance.mark('ait-first-render'));
    }
    if (final && !this.firstElkRenderMarked) {
      this.firstElkRenderMarked = true;
      afterNextFrame(() => performance.mark('ait-first-elk-render'));
    }
  }

  private onZoom(t: ZoomTransform, byUser = false): void {
    this.transform = t;
    // The user moved the view while a provisional layout shows: ELK's layout keeps the view as it is.
    if (byUser && this.layout?.engine === 'provisional') this.anchor = null;
    this.renderer?.setTransform(t);
    this.minimap.setView(t, this.el.graphHost.clientWidth, this.el.graphHost.clientHeight);
  }

  private onResize(): void {
    if (this.renderer) this.renderer.setTransform(this.transform);
    this.minimap.setView(this.transform, this.el.graphHost.clientWidth, this.el.graphHost.clientHeight);
  }

  private onThemeChanged(): void {
    this.store.update({ theme: currentTheme() });
    this.renderer?.setTransform(this.transform);
    this.minimap.redraw();
  }

  /** For the benchmark: time one pan frame (transform + synchronous draw). */
  benchPanFrameMs(dx: number): number {
    const t0 = performance.now();
    const t = this.transform.translate(dx / this.transform.k, 0);
    this.onZoom(t);
    if (this.renderer instanceof CanvasRenderer) this.renderer.render();
    return performance.now() - t0;
  }
}

export function currentTheme(): Theme {
  const c = document.body.classList;
  return c.contains('vscode-high-contrast') ? 'high-contrast' : c.contains('vscode-light') ? 'light' : 'dark';
}

export function setBodyTheme(theme: Theme): void {
  const c = document.body.classList;
  c.remove('vscode-light', 'vscode-dark', 'vscode-high-contrast');
  c.add(theme === 'high-contrast' ? 'vscode-high-contrast' : `vscode-${theme}`);
  document.body.dataset.vscodeThemeKind = theme === 'high-contrast' ? 'vscode-high-contrast' : `vscode-${theme}`;
}
