/**
 * Graph webview panels: one per compile output directory, restored after a reload by a WebviewPanelSerializer
 * from the state the webview keeps (webview/host.ts: graphPath, selected node), live profile updates through a
 * file watcher on the directory. The custom editor for .onnx files (onnx-editor.ts) attaches the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { WebviewMessage } from '../webview/protocol';
import { graphWebviewHtml } from './graph-html';
import { GraphSession, type GraphPanelState } from './graph-session';
import type { Log } from './ports';

export const GRAPH_VIEW_TYPE = 'ait.graph';

export class GraphPanels implements vscode.Disposable {
  private readonly open = new Map<string, { panel: vscode.WebviewPanel; session: GraphSession }>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: Log,
  ) {}

  webviewOptions(): vscode.WebviewOptions {
    return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')] };
  }

  /** Opens the graph of `outDir` (a compile output directory), or reveals and reloads its panel. */
  show(outDir: string): void {
    const graphPath = path.join(outDir, 'graph.json');
    const existing = this.open.get(graphPath);
    if (existing) {
      existing.panel.reveal();
      existing.session.load();
      return;
    }
    const panel = vscode.window.createWebviewPanel(GRAPH_VIEW_TYPE, titleOf(graphPath), vscode.ViewColumn.Active, this.webviewOptions());
    this.attach(panel, graphPath);
  }

  /** Serves `graphPath` in `panel` (a new panel, a restored one, or a custom editor's). */
  attach(panel: vscode.WebviewPanel, graphPath: string, restored: GraphPanelState = {}): GraphSession {
    const webview = panel.webview;
    webview.options = this.webviewOptions();
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'extension', 'media', 'ait.svg');
    const session = new GraphSession(
      graphPath,
      {
        post: (m) => void webview.postMessage(m),
        openFile: async (file, line) => {
          const editor = await vscode.window.showTextDocument(vscode.Uri.file(file), { viewColumn: vscode.ViewColumn.Beside });
          if (line) {
            const pos = new vscode.Position(line - 1, 0);
            editor.selection = new vscode.Selection(pos, pos);
            editor.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
          }
        },
        saveFile: async (defaultPath, bytes) => {
          const uri = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(defaultPath) });
          if (!uri) return undefined;
          await vscode.workspace.fs.writeFile(uri, bytes);
          return uri.fsPath;
        },
        info: (m) => void vscode.window.showInformationMessage(m),
        error: (m) => void vscode.window.showErrorMessage(m),
      },
      this.log,
      restored,
    );
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    webview.html = graphWebviewHtml(
      {
        cspSource: webview.cspSource,
        scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
        styleUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.css')).toString(),
      },
      titleOf(graphPath),
    );
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(session.outDir), '*profile*.json'));
    const onProfile = (uri: vscode.Uri) => session.profileChanged(uri.fsPath);
    const subscriptions = [
      webview.onDidReceiveMessage((m: WebviewMessage) => void session.handle(m)),
      watcher,
      watcher.onDidCreate(onProfile),
      watcher.onDidChange(onProfile),
    ];
    this.open.set(session.graphPath, { panel, session });
    panel.onDidDispose(() => {
      subscriptions.forEach((s) => s.dispose());
      if (this.open.get(session.graphPath)?.panel === panel) this.open.delete(session.graphPath);
    });
    return session;
  }

  serializer(): vscode.WebviewPanelSerializer<GraphPanelState> {
    return {
      deserializeWebviewPanel: async (panel, state) => {
        if (state?.graphPath && fs.existsSync(state.graphPath)) {
          this.attach(panel, state.graphPath, state);
        } else {
          panel.webview.html = `<!DOCTYPE html><html><body><p>The graph of this panel (${(state?.graphPath ?? 'unknown').replace(/[<&]/g, '')}) is no longer there. Compile the model again.</p></body></html>`;
        }
      },
    };
  }

  dispose(): void {
    for (const { panel } of this.open.values()) panel.dispose();
  }
}

function titleOf(graphPath: string): string {
  return `${path.basename(path.dirname(graphPath))} — graph`;
}
