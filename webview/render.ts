/**
 * Drawing the laid-out graph: SVG (one element per node, `data-node-id`, crisp text, CSS theming) up to
 * CANVAS_THRESHOLD boxes, canvas beyond (thousands of boxes redraw in a few ms on every pan/zoom frame).
 * Both take the same inputs: the layout, what each box says, and the paint (heat colours, selection, matches).
 */
import { line, curveBasis, type ZoomTransform } from 'd3';
import type { LaidOutBox, LaidOutEdge, LaidOutGraph } from './layout';
import { textColorOn } from './metrics';

export const CANVAS_THRESHOLD = 3000;
/** Below these zoom scales, labels and then edge decorations drop out (level of detail). */
export const LOD_LABELS_MIN_SCALE = 0.3;
export const LOD_DETAIL_MIN_SCALE = 0.6;

export interface BoxText {
  title: string;
  subtitle: string;
  badge: string | null;
  unsupported: boolean;
  /** Tooltip (full name, reason). */
  tooltip: string;
}

export interface Paint {
  fill: ReadonlyMap<string, string> | null;
  /** Value text drawn in the box when a heatmap is on (`1.23 ms`). */
  valueText: ReadonlyMap<string, string> | null;
  selected: string | null;
  matches: ReadonlySet<string>;
  current: string | null;
}

export interface GraphRenderer {
  readonly kind: 'svg' | 'canvas';
  draw(layout: LaidOutGraph, textOf: (box: LaidOutBox) => BoxText): void;
  paint(paint: Paint): void;
  setTransform(t: ZoomTransform): void;
  /** The box id under a pointer event, or null. */
  itemAt(event: MouseEvent): string | null;
  /** The edge under a pointer event (for the tensor tooltip), or null. */
  edgeAt(event: MouseEvent): LaidOutEdge | null;
  destroy(): void;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

function truncate(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

const edgePath = line<[number, number]>().curve(curveBasis);

export class SvgRenderer implements GraphRenderer {
  readonly kind = 'svg';
  readonly svg: SVGSVGElement;
  private readonly viewport: SVGGElement;
  private boxEls = new Map<string, SVGGElement>();
  private valueEls = new Map<string, SVGTextElement>();
  private edgesById = new Map<string, LaidOutEdge>();
  private lastPaint: Paint | null = null;

  constructor(host: HTMLElement) {
    this.svg = document.createElementNS(SVG_NS, 'svg');
    this.svg.classList.add('graph-svg');
    this.svg.setAttribute('role', 'img');
    this.svg.innerHTML =
      '<defs><marker id="ait-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
      '<path d="M0,0L10,5L0,10z" class="arrow-head"/></marker></defs><g class="viewport"></g>';
    this.viewport = this.svg.querySelector('g.viewport')!;
    host.appendChild(this.svg);
  }

  draw(layout: LaidOutGraph, textOf: (box: LaidOutBox) => BoxText): void {
    this.boxEls.clear();
    this.valueEls.clear();
    this.edgesById = new Map(layout.edges.map((e) => [e.id, e]));
    const containers: string[] = [];
    const boxes: string[] = [];
    for (const b of layout.boxes) {
      const t = textOf(b);
      const attrs = b.kind === 'node' ? `data-node-id="${esc(b.id)}"` : `data-group-id="${esc(b.id)}"`;
      const cls = `box ${b.kind}${t.unsupported ? ' unsupported' : ''}`;
      if (b.kind === 'container') {
        containers.push(
          `<g class="${cls}" ${attrs} transform="translate(${b.x},${b.y})"><title>${esc(t.tooltip)}</title>` +
            `<rect class="frame" width="${b.width}" height="${b.height}" rx="6"/>` +
            `<text class="group-title" x="24" y="16">${esc(truncate(t.title, Math.max(4, Math.floor(b.width / 7) - 8)))}</text>` +
            `<text class="toggle" x="8" y="16">−</text><text class="value" x="${b.width - 8}" y="16" text-anchor="end"></text></g>`,
        );
        continue;
      }
      const badge = t.badge
        ? `<g class="badge"><rect x="${b.width - 8 - t.badge.length * 6 - 8}" y="5" width="${t.badge.length * 6 + 8}" height="14" rx="7"/>` +
          `<text x="${b.width - 12}" y="15.5" text-anchor="end">${esc(t.badge)}</text></g>`
        : '';
      const titleMax = Math.floor((b.width - 16 - (t.badge ? t.badge.length * 6 + 14 : 0)) / 7.2);
      boxes.push(
        `<g class="${cls}" ${attrs} transform="translate(${b.x},${b.y})"><title>${esc(t.tooltip)}</title>` +
          `<rect class="frame" width="${b.width}" height="${b.height}" rx="${b.kind === 'group' ? 8 : 4}"/>` +
          (b.kind === 'group' ? `<rect class="stack" x="4" y="${b.height}" width="${b.width - 8}" height="3"/>` : '') +
          `<text class="title" x="8" y="17">${esc(truncate(t.title, Math.max(4, titleMax)))}</text>` +
          `<text class="subtitle" x="8" y="35">${esc(truncate(t.subtitle, 26))}</text>` +
          `<text class="value" x="${b.width - 8}" y="35" text-anchor="end"></text>${badge}</g>`,
      );
    }
    const edges = layout.edges.map((e) => {
      const d = edgePath(e.points) ?? '';
      return `<path class="edge-hit" data-edge-id="${esc(e.id)}" d="${d}"/><path class="edge" d="${d}" marker-end="url(#ait-arrow)"/>`;
    });
    this.viewport.innerHTML = `<g class="containers">${containers.join('')}</g><g class="edges">${edges.join('')}</g><g class="boxes">${boxes.join('')}</g>`;
    for (const el of this.viewport.querySelectorAll<SVGGElement>('g.box')) {
      const id = el.dataset.nodeId ?? el.dataset.groupId!;
      this.boxEls.set(id, el);
      const v = el.querySelector<SVGTextElement>('text.value');
      if (v) this.valueEls.set(id, v);
    }
    if (this.lastPaint) this.paint(this.lastPaint);
  }

  paint(paint: Paint): void {
    this.lastPaint = paint;
    for (const [id, el] of this.boxEls) {
      const frame = el.querySelector<SVGRectElement>('rect.frame')!;
      const fill = el.classList.contains('container') ? undefined : paint.fill?.get(id);
      if (fill) {
        frame.style.fill = fill;
        el.style.setProperty('--ait-box-text', textColorOn(fill));
        el.classList.add('heat');
      } else {
        frame.style.fill = '';
        el.style.removeProperty('--ait-box-text');
        el.classList.remove('heat');
      }
      el.classList.toggle('selected', paint.selected === id);
      el.classList.toggle('match', paint.matches.has(id));
      el.classList.toggle('current', paint.current === id);
      const v = this.valueEls.get(id);
      if (v) v.textContent = paint.valueText?.get(id) ?? '';
    }
  }

  setTransform(t: ZoomTransform): void {
    this.viewport.setAttribute('transform', t.toString());
    this.svg.classList.toggle('lod-no-labels', t.k < LOD_LABELS_MIN_SCALE);
    this.svg.classList.toggle('lod-no-detail', t.k < LOD_DETAIL_MIN_SCALE);
  }

  itemAt(event: MouseEvent): string | null {
    const el = (event.target as Element | null)?.closest?.('g.box') as SVGGElement | null;
    if (!el) return null;
    return el.dataset.nodeId ?? el.dataset.groupId ?? null;
  }

  edgeAt(event: MouseEvent): LaidOutEdge | null {
    const el = (event.target as Element | null)?.closest?.('path.edge-hit') as SVGPathElement | null;
    return el ? (this.edgesById.get(el.dataset.edgeId!) ?? null) : null;
  }

  destroy(): void {
    this.svg.remove();
  }
}

/** Canvas drawing for graphs with more boxes than SVG handles smoothly. Colours come from the page's CSS. */
export class CanvasRenderer implements GraphRenderer {
  readonly kind = 'canvas';
  readonly canvas: HTMLCanvasElement;
  private layout: LaidOutGraph | null = null;
  private texts = new Map<string, BoxText>();
  private paintState: Paint = { fill: null, valueText: null, selected: null, matches: new Set(), current: null };
  private transform: ZoomTransform | null = null;
  private frame = 0;

  constructor(private readonly host: HTMLElement) {
    this.canvas = document.createElement('canvas');
    this.canvas.classList.add('graph-canvas');
    host.appendChild(this.canvas);
  }

  draw(layout: LaidOutGraph, textOf: (box: LaidOutBox) => BoxText): void {
    this.layout = layout;
    this.texts = new Map(layout.boxes.map((b) => [b.id, textOf(b)]));
    this.schedule();
  }

  paint(paint: Paint): void {
    this.paintState = paint;
    this.schedule();
  }

  setTransform(t: ZoomTransform): void {
    this.transform = t;
    this.schedule();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Draws one frame now (also used by the benchmark to time a frame). */
  render(): void {
    const layout = this.layout;
    const t = this.transform;
    if (!layout || !t) return;
    const dpr = window.devicePixelRatio || 1;
    const w = this.host.clientWidth;
    const h = this.host.clientHeight;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
    }
    const css = getComputedStyle(this.host);
    const color = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
    const nodeFill = color('--ait-node-bg', '#2d2d30');
    const nodeBorder = color('--ait-node-border', '#6b6b6b');
    const textColor = color('--ait-text', '#ddd');
    const edgeColor = color('--ait-edge', '#888');
    const containerFill = color('--ait-container-bg', 'rgba(128,128,128,0.06)');
    const accent = color('--ait-accent', '#0e70c0');
    const matchColor = color('--ait-match', '#e5c07b');
    const errorColor = color('--ait-error', '#f14c4c');
    const ctx = this.canvas.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.translate(t.x, t.y);
    ctx.scale(t.k, t.k);
    // Visible region in layout coordinates: skip what is off screen.
    const x0 = -t.x / t.k;
    const y0 = -t.y / t.k;
    const x1 = x0 + w / t.k;
    const y1 = y0 + h / t.k;
    const onScreen = (b: { x: number; y: number; width: number; height: number }) =>
      b.x < x1 && b.x + b.width > x0 && b.y < y1 && b.y + b.height > y0;

    ctx.lineWidth = 1 / Math.max(t.k, 0.25);
    for (const b of layout.boxes) {
      if (b.kind !== 'container' || !onScreen(b)) continue;
      ctx.fillStyle = containerFill;
      ctx.strokeStyle = nodeBorder;
      ctx.fillRect(b.x, b.y, b.width, b.height);
      ctx.strokeRect(b.x, b.y, b.width, b.height);
    }
    ctx.strokeStyle = edgeColor;
    ctx.beginPath();
    for (const e of layout.edges) {
      const p = e.points;
      if (p.length < 2) continue;
      ctx.moveTo(p[0][0], p[0][1]);
      for (let i = 1; i < p.length; i++) ctx.lineTo(p[i][0], p[i][1]);
    }
    ctx.stroke();
    const showLabels = t.k >= LOD_LABELS_MIN_SCALE;
    ctx.font = '12px sans-serif';
    ctx.textBaseline = 'middle';
    for (const b of layout.boxes) {
      if (b.kind === 'container' || !onScreen(b)) continue;
      const fill = this.paintState.fill?.get(b.id);
      const text = this.texts.get(b.id);
      ctx.fillStyle = fill ?? nodeFill;
      ctx.fillRect(b.x, b.y, b.width, b.height);
      const selected = this.paintState.selected === b.id;
      const match = this.paintState.matches.has(b.id);
      ctx.strokeStyle = selected ? accent : match ? matchColor : text?.unsupported ? errorColor : nodeBorder;
      ctx.lineWidth = (selected || match ? 3 : 1) / Math.max(t.k, 0.25);
      ctx.strokeRect(b.x, b.y, b.width, b.height);
      if (showLabels && text) {
        ctx.fillStyle = fill ? textColorOn(fill) : textColor;
        ctx.fillText(truncate(text.title, 22), b.x + 8, b.y + 15);
        if (t.k >= LOD_DETAIL_MIN_SCALE) ctx.fillText(truncate(text.subtitle, 26), b.x + 8, b.y + 33);
      }
    }
  }

  itemAt(event: MouseEvent): string | null {
    const t = this.transform;
    if (!this.layout || !t) return null;
    const r = this.canvas.getBoundingClientRect();
    const [x, y] = t.invert([event.clientX - r.left, event.clientY - r.top]);
    let hit: string | null = null;
    for (const b of this.layout.boxes) {
      // Containers are hit only on their header; later (inner) boxes win.
      const h = b.kind === 'container' ? 24 : b.height;
      if (x >= b.x && x <= b.x + b.width && y >= b.y && y <= b.y + h) hit = b.id;
    }
    return hit;
  }

  edgeAt(): LaidOutEdge | null {
    return null;
  }

  destroy(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.canvas.remove();
  }
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
