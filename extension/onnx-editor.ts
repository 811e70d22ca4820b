/**
 * The custom editor for .onnx files: opening a model shows its graph. The model is compiled (in the worker thread,
 * default target, batch 1) into the extension's storage, then served like any graph panel.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { modelNameOf } from '../compiler/compile';
import type { CompileRunner } from './compile/service';
import type { GraphPanels } from './graph-panel';
import { problemsOf } from './problems';
import type { Log, ProblemSink } from './ports';

export const ONNX_EDITOR_VIEW_TYPE = 'ait.onnxGraph';

export class OnnxGraphEditor implements vscode.CustomReadonlyEditorProvider {
  constructor(
    private readonly storageDir: string,
    private readonly panels: GraphPanels,
    private readonly compiler: CompileRunner,
    private readonly defaultTarget: () => string,
    private readonly problems: ProblemSink,
    private readonly log: Log,
  ) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => {} };
  }

  async resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel, token: vscode.CancellationToken): Promise<void> {
    const file = document.uri.fsPath;
    const key = createHash('sha256').update(file).digest('hex').slice(0, 10);
    const outDir = path.join(this.storageDir, 'graphs', `${modelNameOf(file)}-${key}`);
    panel.webview.html = `<!DOCTYPE html><html><body><p>Reading ${path.basename(file).replace(/[<&]/g, '')}…</p></body></html>`;
    const target = this.defaultTarget();
    const outcome = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: `AIT: reading ${path.basename(file)}` },
      () => this.compiler.compile({ file, out: outDir, force: true, target }, { onLog: (l) => this.log.trace(l) }, token),
    );
    if (outcome.kind === 'cancelled') return;
    const diagnostics = outcome.kind === 'done' ? outcome.result.diagnostics : outcome.diagnostics;
    this.problems.replace(`compile:${file}`, problemsOf(diagnostics, file));
    if (outcome.kind === 'failed') {
      const first = diagnostics.find((d) => d.severity === 'error');
      panel.webview.html = `<!DOCTYPE html><html><body><p>${path.basename(file).replace(/[<&]/g, '')} could not be read: ${(first?.message ?? 'see Problems').replace(/[<&]/g, '')}</p></body></html>`;
      return;
    }
    this.panels.attach(panel, outcome.result.graphJsonPath);
  }
}
