/** Entry of the graph webview bundle (dist/webview.js): picks the host (VS Code or the standalone page) and starts. */
import './styles.css';
import { GraphApp, setBodyTheme } from './app';
import { standaloneHost, vscodeHost } from './host';

function start(): void {
  performance.mark('ait-app-start');
  const root = document.getElementById('ait-graph') ?? document.body.appendChild(document.createElement('div'));
  root.id = 'ait-graph';
  const inVsCode = vscodeHost();
  const notice = (text: string) => {
    const el = root.querySelector('.status');
    if (el) el.textContent = text;
  };
  const host = inVsCode ?? standaloneHost(notice);
  if (!inVsCode) {
    document.body.classList.add('ait-standalone');
    const theme = /[?&]theme=(light|dark|high-contrast)/.exec(location.search)?.[1];
    if (theme) setBodyTheme(theme as 'light' | 'dark' | 'high-contrast');
    else if (!/vscode-(light|dark|high-contrast)/.test(document.body.className))
      setBodyTheme(matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark');
  }
  const app = new GraphApp(root, host, { standalone: !inVsCode });
  (window as unknown as { aitGraph: GraphApp }).aitGraph = app;
  host.post({ type: 'ready' });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
