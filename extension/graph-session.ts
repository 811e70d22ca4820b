/**
 * One graph on screen, host side: answers the webview's messages (webview/protocol.ts) for one compile output
 * directory. Knows nothing of WebviewPanel: extension/graph-panel.ts connects it to one; the tests to a fake.
 * Profiles (`*profile*.json` in the directory) are sent with the graph and again whenever one is written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveInside } from '../compiler/paths';
import { loadGraphJson, loadProfile } from '../compiler/cli/graph-command';
import { CompileError, formatDiagnostic, type Diagnostic } from '../compiler/diagnostics';
import type { NamedProfile } from '../webview/contract';
import type { HostMessage, WebviewMessage } from '../webview/protocol';
import type { Log } from './ports';

export interface GraphSessionHost {
  post(message: HostMessage): void;
  /** Opens a file in an editor at a 1-based line. */
  openFile(file: string, line?: number): Promise<void>;
  /** Asks where to save and writes `bytes`; resolves to the file written, or undefined when dismissed. */
  saveFile(defaultPath: string, bytes: Uint8Array): Promise<string | undefined>;
  info(message: string): void;
  error(message: string): void;
}

/** What the webview persists (setState) and the serializer gets back after a reload. */
export interface GraphPanelState {
  graphPath?: string;
  selectedNodeId?: string | null;
}

export function profileFilesOf(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => /profile.*\.json$/i.test(f))
      .sort()
      .map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

export class GraphSession {
  selectedNodeId: string | null;
  readonly graphPath: string;

  constructor(
    /** graph.json, or a directory holding it. */
    graphPathOrDir: string,
    private readonly host: GraphSessionHost,
    private readonly log: Log,
    restored: GraphPanelState = {},
  ) {
    this.graphPath = graphPathOrDir.endsWith('.json') ? graphPathOrDir : path.join(graphPathOrDir, 'graph.json');
    this.selectedNodeId = restored.selectedNodeId ?? null;
  }

  get outDir(): string {
    return path.dirname(this.graphPath);
  }

  private report(diagnostics: readonly Diagnostic[]): void {
    for (const d of diagnostics) (d.severity === 'error' ? this.log.error : this.log.warn).call(this.log, formatDiagnostic(d));
  }

  /** Sends the graph and every profile of its directory (the answer to `ready`, and after a recompile). */
  load(): void {
    const diagnostics: Diagnostic[] = [];
    try {
      const { graph, file } = loadGraphJson(this.graphPath);
      const profiles: NamedProfile[] = [];
      for (const p of profileFilesOf(this.outDir)) {
        try {
          profiles.push(loadProfile(p, graph, diagnostics));
        } catch (e) {
          if (!(e instanceof CompileError)) throw e;
          diagnostics.push(...e.diagnostics);
        }
      }
      this.host.post({ type: 'load', graph, profiles, graphPath: file });
      if (this.selectedNodeId) this.host.post({ type: 'selectNode', nodeId: this.selectedNodeId });
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
      diagnostics.push(...e.diagnostics);
      this.host.error(`Cannot show the graph: ${e.diagnostics[0]?.message}`);
    }
    this.report(diagnostics);
  }

  /** A profile file appeared or changed: send it (live update while profiling runs). */
  profileChanged(file: string): void {
    const diagnostics: Diagnostic[] = [];
    try {
      const { graph } = loadGraphJson(this.graphPath);
      this.host.post({ type: 'addProfile', profile: loadProfile(file, graph, diagnostics) });
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
      diagnostics.push(...e.diagnostics);
    }
    this.report(diagnostics);
  }

  async handle(message: WebviewMessage): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.load();
        break;
      case 'nodeSelected':
        this.selectedNodeId = message.nodeId;
        break;
      case 'openSource': {
        // The file comes from graph.json (untrusted): only a file inside the output directory is opened.
        const inside = message.file ? resolveInside(this.outDir, message.file) : undefined;
        if (inside && 'problem' in inside) {
          this.host.error(`Not opening the source of ${message.nodeId}: ${JSON.stringify(message.file)} ${inside.problem}.`);
          break;
        }
        const file = inside?.path;
        if (file && fs.existsSync(file)) await this.host.openFile(file, message.line);
        else
          this.host.info(
            file
              ? `The generated source of ${message.nodeId} (${file}) is not there; compile the model again.`
              : `${message.nodeId} has no generated source yet: code generation comes with the CUDA backend.`,
          );
        break;
      }
      case 'saveFile': {
        const bytes = message.encoding === 'base64' ? Buffer.from(message.data, 'base64') : Buffer.from(message.data, 'utf8');
        // Only a default name in the output directory: the save dialog lets the user put it anywhere.
        const name = path.basename(String(message.fileName)).replace(/[^\w.-]/g, '_');
        const written = await this.host.saveFile(path.join(this.outDir, name || 'graph'), bytes);
        if (written) this.log.info(`saved ${written}`);
        break;
      }
      case 'error':
        this.log.error(`graph view${message.nodeId ? ` (node ${message.nodeId})` : ''}: ${message.message}`);
        this.host.error(message.message);
        break;
    }
  }
}
