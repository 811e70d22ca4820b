/**
 * AIT Studio's VS Code extension: registers commands, views, the graph webview and the .onnx custom editor. Only
 * wiring lives here; each command is a module under commands/, the work is the compiler's and the remote runner's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { openSession } from '../remote-agent/client';
import { buildAndBenchmarkCommand, addRemoteHostCommand, checkRemoteHostCommand } from './commands/remote';
import { cliVerifyRunner, verifyModelCommand } from './commands/verify';
import { profileKernelsCommand } from './commands/profile';
import { runProfiledCompile } from '../compiler/cli/profile-command';
import { compileModelCommand } from './commands/compile-model';
import type { CommandContext } from './commands/context';
import { selectTargetCommand } from './commands/select-target';
import { WorkerCompileRunner } from './compile/service';
import { GRAPH_VIEW_TYPE, GraphPanels } from './graph-panel';
import { ONNX_EDITOR_VIEW_TYPE, OnnxGraphEditor } from './onnx-editor';
import { RunStore } from './runs';
import { readSettings } from './settings';
import { HostsTree, RunsTree } from './trees';
import {
  aitSettings,
  mementoStore,
  outputLog,
  ProblemsPanel,
  secretStore,
  StatusBar,
  vscodeProgress,
  vscodeTrust,
  vscodeUi,
} from './vscode-ports';

export function activate(context: vscode.ExtensionContext): CommandContext {
  const channel = vscode.window.createOutputChannel('AIT Studio', { log: true });
  const log = outputLog(channel);
  const { settings, problems: settingProblems } = readSettings(aitSettings);
  for (const p of settingProblems) log.warn(`setting ${p.setting}: ${p.message}`);

  const problems = new ProblemsPanel();
  const status = new StatusBar(settings.defaultTarget);
  const runs = new RunStore(mementoStore(context.globalState));
  const compiler = new WorkerCompileRunner(path.join(context.extensionPath, 'dist', 'compile-worker.js'));
  const panels = new GraphPanels(context.extensionUri, log);
  const hostsTree = new HostsTree(aitSettings);
  context.subscriptions.push(channel, problems, status, panels);

  const ctx: CommandContext = {
    ui: vscodeUi,
    trust: vscodeTrust,
    progress: vscodeProgress,
    log,
    settings: aitSettings,
    workspaceState: mementoStore(context.workspaceState),
    secrets: secretStore(context.secrets),
    problems,
    status,
    runs,
    compiler,
    remotes: { open: (host, options) => openSession(host, options) },
    // the local check runs in the compile worker thread too (onnxruntime-node and the interpreter over the model)
    verifier: cliVerifyRunner(() => readSettings(aitSettings).settings.sshConfig || undefined, compiler),
    // the flow's compiles run in the compile worker thread, so the editor stays responsive while they run
    profiler: (model, opts, outDir, out, err, control) =>
      runProfiledCompile(model, opts, outDir, out, err, { ...control, compile: (m, o, write) => compiler.runCli(m, o, write) }),
    workspaceFolderOf: (file) => vscode.workspace.getWorkspaceFolder(vscode.Uri.file(file))?.uri.fsPath,
    findModels: async () => (await vscode.workspace.findFiles('**/*.onnx', '**/node_modules/**', 50)).map((u) => u.fsPath).sort(),
    activeModel: () => {
      const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      const uri = tab instanceof vscode.TabInputCustom || tab instanceof vscode.TabInputText ? tab.uri : undefined;
      return uri && uri.fsPath.toLowerCase().endsWith('.onnx') ? uri.fsPath : undefined;
    },
    showGraph: async (outDir) => panels.show(outDir),
    onHostChecked: (name, hello) => hostsTree.setHostInfo(name, hello),
  };

  const command = (id: string, handler: (...args: never[]) => unknown) =>
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: never[]) => {
        try {
          return await handler(...args);
        } catch (e) {
          // A bug, not a diagnostic: the handlers turn every CompileError into Problems entries or messages.
          log.error(`${id} failed: ${(e as Error)?.stack ?? String(e)}`);
          void vscode.window.showErrorMessage(`${id} failed: ${(e as Error)?.message ?? String(e)} (see the AIT Studio log)`);
        }
      }),
    );
  const fsPathOf = (arg: unknown) => (arg instanceof vscode.Uri ? arg.fsPath : typeof arg === 'string' ? arg : undefined);

  command('ait.compileModel', (uri?: vscode.Uri) => compileModelCommand(ctx, fsPathOf(uri)));
  command('ait.openGraph', async (uri?: vscode.Uri) => {
    const target = fsPathOf(uri);
    if (target?.toLowerCase().endsWith('.onnx'))
      return vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(target), ONNX_EDITOR_VIEW_TYPE);
    const dir = target
      ? fs.statSync(target).isDirectory()
        ? target
        : path.dirname(target)
      : (ctx.activeModel() ?? (await ctx.ui.pickFolder('Compile output directory (holding graph.json)', runs.list()[0]?.outDir)));
    if (!dir) return undefined;
    if (dir.toLowerCase().endsWith('.onnx'))
      return vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(dir), ONNX_EDITOR_VIEW_TYPE);
    if (!fs.existsSync(path.join(dir, 'graph.json'))) return ctx.ui.error(`${dir} holds no graph.json: compile a model into it first.`);
    panels.show(dir);
  });
  command('ait.buildAndBenchmark', (arg?: vscode.Uri | string) => {
    const run = typeof arg === 'object' && arg !== null && 'outDir' in arg ? (arg as { outDir: string }) : undefined;
    return buildAndBenchmarkCommand(ctx, run?.outDir ?? fsPathOf(arg));
  });
  command('ait.verifyModel', (uri?: vscode.Uri) => verifyModelCommand(ctx, fsPathOf(uri)));
  command('ait.profileKernels', (uri?: vscode.Uri) => profileKernelsCommand(ctx, fsPathOf(uri)));
  command('ait.selectTarget', () => selectTargetCommand(ctx));
  command('ait.addRemoteHost', () => addRemoteHostCommand(ctx));
  command('ait.checkRemoteHost', (node?: { remote?: { name: string } }) => checkRemoteHostCommand(ctx, node?.remote?.name));
  command('ait.openRun', (id: string | { id: string }) => {
    const run = runs.list().find((r) => r.id === (typeof id === 'string' ? id : id?.id));
    if (!run) return ctx.ui.error('That run is no longer recorded.');
    if (!fs.existsSync(path.join(run.outDir, 'graph.json')))
      return ctx.ui.error(`The output of this run (${run.outDir}) is no longer there.`);
    panels.show(run.outDir);
  });
  command('ait.removeRun', (run: { id: string }) => runs.remove(run.id));
  command('ait.showLog', () => channel.show());

  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(GRAPH_VIEW_TYPE, panels.serializer()),
    vscode.window.registerCustomEditorProvider(
      ONNX_EDITOR_VIEW_TYPE,
      new OnnxGraphEditor(
        context.globalStorageUri.fsPath,
        panels,
        compiler,
        () => readSettings(aitSettings).settings.defaultTarget,
        problems,
        log,
      ),
      { supportsMultipleEditorsPerDocument: true },
    ),
    vscode.window.createTreeView('ait.hosts', { treeDataProvider: hostsTree }),
    vscode.window.createTreeView('ait.runs', { treeDataProvider: new RunsTree(runs) }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('ait')) settingsChanged();
    }),
    // Granting trust enables the compile and remote commands (requireTrust reads the trust at each call, the menus'
    // `isWorkspaceTrusted` follows by itself) and lets the workspace's own values of the restricted settings apply.
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      log.info('workspace trusted: compile and remote commands enabled; workspace settings for ait.* now apply');
      settingsChanged();
    }),
  );
  function settingsChanged(): void {
    const { settings: now, problems: wrong } = readSettings(aitSettings);
    for (const p of wrong) log.warn(`setting ${p.setting}: ${p.message}`);
    status.setTarget(now.defaultTarget);
    hostsTree.refresh();
  }
  log.info(`AIT Studio ${context.extension.packageJSON.version as string} active; target ${settings.defaultTarget}`);
  if (!vscode.workspace.isTrusted)
    log.info('Restricted Mode (untrusted workspace): graphs can be viewed; compile and remote commands are disabled until trusted');
  return ctx;
}

export function deactivate(): void {}
