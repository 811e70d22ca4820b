/**
 * The graph webview's HTML in VS Code: the bundle (dist/webview.js, dist/webview.css) from the extension's dist/
 * through webview URIs, under a strict CSP — nothing by default, the one script by nonce, the layout worker from a
 * blob URL (webview/layout.ts), styles and images from the extension only.
 */
import { randomBytes } from 'node:crypto';

export interface WebviewAssets {
  /** webview.cspSource */
  cspSource: string;
  scriptUri: string;
  styleUri: string;
}

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[+/=]/g, '');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    // Inline style attributes (node positions) and the custom elements' constructed styles.
    `style-src ${cspSource} 'unsafe-inline'`,
    `img-src ${cspSource} data: blob:`,
    `font-src ${cspSource} data:`,
    'worker-src blob:',
  ].join('; ');
}

export function graphWebviewHtml(assets: WebviewAssets, title: string, nonce = makeNonce()): string {
  const esc = (s: string) => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(assets.cspSource, nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="stylesheet" href="${esc(assets.styleUri)}">
</head>
<body>
<div id="ait-graph"></div>
<script nonce="${nonce}" src="${esc(assets.scriptUri)}"></script>
</body>
</html>
`;
}
