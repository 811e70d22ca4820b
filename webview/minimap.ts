/** The minimap: every box of the layout at a glance, the visible region as a rectangle; click to go there. */
import type { ZoomTransform } from 'd3';
import type { LaidOutGraph } from './layout';

const WIDTH = 200;
const HEIGHT = 140;

export class Minimap {
  private readonly canvas: HTMLCanvasElement;
  private layout: LaidOutGraph | null = null;
  private fill: ReadonlyMap<string, string> | null = null;
  private view: { t: ZoomTransform; w: number; h: number } | null = null;
  /** The boxes drawn once per layout/paint; each view change only redraws the rectangle over it. */
  private background: HTMLCanvasElement | null = null;

  constructor(
    host: HTMLElement,
    private readonly onNavigate: (x: number, y: number) => void,
  ) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'minimap';
    this.canvas.width = WIDTH;
    this.canvas.height = HEIGHT;
    host.appendChild(this.canvas);
    const navigate = (e: MouseEvent) => {
      if (!this.layout) return;
      const r = this.canvas.getBoundingClientRect();
      const { s, ox, oy } = this.scale();
      this.onNavigate((e.clientX - r.left - ox) / s, (e.clientY - r.top - oy) / s);
    };
    this.canvas.addEventListener('mousedown', (e) => {
      e.stopPropagation();
      navigate(e);
      const move = (m: MouseEvent) => navigate(m);
      window.addEventListener('mousemove', move);
      window.addEventListener('mouseup', () => window.removeEventListener('mousemove', move), { once: true });
    });
  }

  private scale(): { s: number; ox: number; oy: number } {
    const l = this.layout!;
    const s = Math.min(WIDTH / Math.max(1, l.width), HEIGHT / Math.max(1, l.height));
    return { s, ox: (WIDTH - l.width * s) / 2, oy: (HEIGHT - l.height * s) / 2 };
  }

  setLayout(layout: LaidOutGraph, fill: ReadonlyMap<string, string> | null): void {
    this.layout = layout;
    this.fill = fill;
    this.redraw();
  }

  paint(fill: ReadonlyMap<string, string> | null): void {
    this.fill = fill;
    this.redraw();
  }

  setView(t: ZoomTransform, w: number, h: number): void {
    this.view = { t, w, h };
    this.drawView();
  }

  redraw(): void {
    if (!this.layout) return;
    const bg = document.createElement('canvas');
    bg.width = WIDTH;
    bg.height = HEIGHT;
    const ctx = bg.getContext('2d')!;
    const css = getComputedStyle(this.canvas);
    const node = css.getPropertyValue('--ait-minimap-node').trim() || '#888';
    const container = css.getPropertyValue('--ait-container-bg').trim() || 'rgba(128,128,128,0.1)';
    const { s, ox, oy } = this.scale();
    for (const b of this.layout.boxes) {
      ctx.fillStyle = b.kind === 'container' ? container : (this.fill?.get(b.id) ?? node);
      ctx.fillRect(ox + b.x * s, oy + b.y * s, Math.max(1, b.width * s), Math.max(1, b.height * s));
    }
    this.background = bg;
    this.drawView();
  }

  private drawView(): void {
    const ctx = this.canvas.getContext('2d')!;
    ctx.clearRect(0, 0, WIDTH, HEIGHT);
    if (this.background) ctx.drawImage(this.background, 0, 0);
    if (!this.layout || !this.view) return;
    const { s, ox, oy } = this.scale();
    const { t, w, h } = this.view;
    const [x0, y0] = t.invert([0, 0]);
    const [x1, y1] = t.invert([w, h]);
    ctx.strokeStyle = getComputedStyle(this.canvas).getPropertyValue('--ait-accent').trim() || '#0e70c0';
    ctx.lineWidth = 1.5;
    ctx.strokeRect(ox + x0 * s, oy + y0 * s, (x1 - x0) * s, (y1 - y0) * s);
  }
}
