/**
 * Host connections. In VS Code the extension is the host (acquireVsCodeApi + window messages). In the page
 * written by `ait graph` the host is in the page: it loads the graph and profiles embedded in the HTML, saves
 * exports as downloads, and has no editor to open sources in (it says so).
 */
import type { GraphJson, NamedProfile } from './contract';
import { isHostMessage, type HostConnection, type HostMessage, type WebviewMessage } from './protocol';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare const acquireVsCodeApi: (() => VsCodeApi) | undefined;

/** What the webview keeps in VS Code's webview state; the extension's panel serializer reopens the graph from it. */
export interface VsCodeWebviewState {
  graphPath?: string;
  selectedNodeId?: string | null;
}

export function vscodeHost(): HostConnection | null {
  if (typeof acquireVsCodeApi !== 'function') return null;
  const api = acquireVsCodeApi();
  const remember = (patch: VsCodeWebviewState) => api.setState({ ...((api.getState() as VsCodeWebviewState | undefined) ?? {}), ...patch });
  return {
    post: (m) => {
      if (m.type === 'nodeSelected') remember({ selectedNodeId: m.nodeId });
      api.postMessage(m);
    },
    onMessage: (listener) =>
      window.addEventListener('message', (e: MessageEvent) => {
        if (!isHostMessage(e.data)) return;
        if (e.data.type === 'load' && e.data.graphPath) remember({ graphPath: e.data.graphPath });
        listener(e.data);
      }),
  };
}

/** What `ait graph` embeds in the page (`<script type="application/json" id="ait-data">`). */
export interface EmbeddedData {
  graph: GraphJson;
  profiles: NamedProfile[];
  graphPath?: string;
}

export const EMBEDDED_DATA_ID = 'ait-data';

export function standaloneHost(notify: (text: string) => void): HostConnection {
  const listeners: ((m: HostMessage) => void)[] = [];
  const deliver = (m: HostMessage) => listeners.forEach((l) => l(m));
  return {
    post(m: WebviewMessage) {
      switch (m.type) {
        case 'ready': {
          const el = document.getElementById(EMBEDDED_DATA_ID);
          if (!el?.textContent) {
            notify('no graph embedded in this page');
            return;
          }
          let data: EmbeddedData;
          try {
            data = JSON.parse(el.textContent) as EmbeddedData;
          } catch (e) {
            notify(`Cannot show the graph: the data embedded in this page is not JSON (${(e as Error).message})`);
            return;
          }
          if (typeof data !== 'object' || data === null || !Array.isArray(data.profiles)) {
            notify('Cannot show the graph: the data embedded in this page has no graph and profiles');
            return;
          }
          performance.mark('ait-data-parsed');
          deliver({ type: 'load', graph: data.graph, profiles: data.profiles, graphPath: data.graphPath });
          const node = /^#node=(.+)$/.exec(location.hash)?.[1];
          if (node) deliver({ type: 'selectNode', nodeId: decodeURIComponent(node) });
          break;
        }
        case 'saveFile': {
          const bytes = m.encoding === 'base64' ? Uint8Array.from(atob(m.data), (c) => c.charCodeAt(0)) : m.data;
          const url = URL.createObjectURL(new Blob([bytes], { type: m.mime }));
          const a = document.createElement('a');
          a.href = url;
          a.download = m.fileName;
          document.body.appendChild(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10_000);
          break;
        }
        case 'openSource':
          notify(
            `generated source of ${m.nodeId}: ${m.file ? `${m.file}${m.line ? `:${m.line}` : ''}` : 'not generated yet'} (open this page's graph in VS Code to jump to it)`,
          );
          break;
        case 'nodeSelected':
          history.replaceState(null, '', m.nodeId ? `#node=${encodeURIComponent(m.nodeId)}` : location.pathname + location.search);
          break;
        case 'error':
          notify(m.message);
          break;
      }
    },
    onMessage: (listener) => listeners.push(listener),
  };
}
