/**
 * Export of the current view (what is on screen: same pan, zoom and colours) as SVG text or a PNG. The SVG is
 * self-contained: the page's graph styles and the theme's resolved colours are copied into it.
 */
import type { ZoomTransform } from 'd3';
import type { LaidOutBox, LaidOutGraph } from './layout';
import { SvgRenderer, type BoxText, type Paint } from './render';

export interface ExportView {
  width: number;
  height: number;
  transform: ZoomTransform;
}

/** The custom properties the graph styles use (styles.css), resolved in the current theme. */
function resolvedVariables(themeSource: Element): string {
  const css = getComputedStyle(themeSource);
  const names = new Set<string>();
  for (const sheet of Array.from(document.styleSheets)) {
    for (const rule of Array.from(sheet.cssRules)) for (const m of rule.cssText.matchAll(/--ait-[a-z0-9-]+/g)) names.add(m[0]);
  }
  return [...names].map((n) => `${n}: ${css.getPropertyValue(n).trim() || 'initial'};`).join(' ');
}

function graphRules(): string {
  const rules: string[] = [];
  for (const sheet of Array.from(document.styleSheets)) {
    for (const rule of Array.from(sheet.cssRules)) if (rule.cssText.includes('.graph-svg')) rules.push(rule.cssText);
  }
  return rules.join('\n');
}

export function exportSvg(
  layout: LaidOutGraph,
  textOf: (b: LaidOutBox) => BoxText,
  paint: Paint,
  view: ExportView,
  themeSource: Element,
): string {
  const holder = document.createElement('div');
  const r = new SvgRenderer(holder);
  r.draw(layout, textOf);
  r.paint(paint);
  r.setTransform(view.transform);
  const svg = r.svg;
  svg.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  svg.setAttribute('width', String(view.width));
  svg.setAttribute('height', String(view.height));
  svg.setAttribute('viewBox', `0 0 ${view.width} ${view.height}`);
  const style = document.createElementNS('http://www.w3.org/2000/svg', 'style');
  style.textContent = `.graph-svg { ${resolvedVariables(themeSource)} }\n${graphRules()}`;
  svg.insertBefore(style, svg.firstChild);
  const background = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
  background.setAttribute('width', '100%');
  background.setAttribute('height', '100%');
  background.setAttribute('class', 'export-background');
  svg.insertBefore(background, style.nextSibling);
  return new XMLSerializer().serializeToString(svg);
}

/** PNG of the same SVG at the device pixel ratio, as base64 (no data: prefix). */
export async function exportPng(
  layout: LaidOutGraph,
  textOf: (b: LaidOutBox) => BoxText,
  paint: Paint,
  view: ExportView,
  themeSource: Element,
): Promise<string> {
  const svg = exportSvg(layout, textOf, paint, view, themeSource);
  const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const scale = window.devicePixelRatio || 1;
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(view.width * scale);
    canvas.height = Math.round(view.height * scale);
    const ctx = canvas.getContext('2d')!;
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0);
    return canvas.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
  } finally {
    URL.revokeObjectURL(url);
  }
}
