/** The ports (extension/ports.ts) over the real VS Code API. */
import * as vscode from 'vscode';
import type {
  JobStatus,
  Log,
  ProblemEntry,
  ProblemSink,
  ProgressRunner,
  SecretStore,
  SettingsStore,
  StateStore,
  Ui,
  WorkspaceTrust,
} from './ports';

export const vscodeUi: Ui = {
  async pick(items, options) {
    return (await vscode.window.showQuickPick(
      items.map((i) => ({ ...i })),
      { title: options.title, placeHolder: options.placeholder, ignoreFocusOut: true },
    )) as (typeof items)[number] | undefined;
  },
  async input(options) {
    return vscode.window.showInputBox({
      title: options.title,
      prompt: options.prompt,
      value: options.value,
      placeHolder: options.placeholder,
      password: options.password,
      ignoreFocusOut: true,
      validateInput: options.validate,
    });
  },
  async confirm(message, detail, action) {
    return (await vscode.window.showWarningMessage(message, { modal: true, detail }, action)) === action;
  },
  async pickFolder(title, defaultPath) {
    const picked = await vscode.window.showOpenDialog({
      title,
      canSelectFolders: true,
      canSelectFiles: false,
      defaultUri: defaultPath ? vscode.Uri.file(defaultPath) : undefined,
    });
    return picked?.[0]?.fsPath;
  },
  info: (m) => void vscode.window.showInformationMessage(m),
  warn: (m) => void vscode.window.showWarningMessage(m),
  error: (m) => void vscode.window.showErrorMessage(m),
};

export const vscodeTrust: WorkspaceTrust = {
  get isTrusted() {
    return vscode.workspace.isTrusted;
  },
};

export const vscodeProgress: ProgressRunner = {
  run(title, task) {
    return Promise.resolve(
      vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) =>
        task({ report: (message) => progress.report({ message }) }, token),
      ),
    );
  },
};

export function outputLog(channel: vscode.LogOutputChannel): Log {
  return {
    info: (m) => channel.info(m),
    warn: (m) => channel.warn(m),
    error: (m) => channel.error(m),
    trace: (m) => channel.appendLine(m),
    show: () => channel.show(true),
  };
}

export function mementoStore(memento: vscode.Memento): StateStore {
  return { get: (key) => memento.get(key), update: (key, value) => Promise.resolve(memento.update(key, value)) };
}

export const aitSettings: SettingsStore = {
  get: (key) => vscode.workspace.getConfiguration('ait').get(key),
  update: (key, value) => Promise.resolve(vscode.workspace.getConfiguration('ait').update(key, value, vscode.ConfigurationTarget.Global)),
};

export function secretStore(secrets: vscode.SecretStorage): SecretStore {
  return {
    get: (key) => Promise.resolve(secrets.get(key)),
    store: (key, value) => Promise.resolve(secrets.store(key, value)),
    delete: (key) => Promise.resolve(secrets.delete(key)),
  };
}

const SEVERITY: Record<ProblemEntry['severity'], vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

/** One DiagnosticCollection per source (`compile:<model file>`, `build:<dir>`): a compile replaces only its model's entries. */
export class ProblemsPanel implements ProblemSink, vscode.Disposable {
  private readonly collections = new Map<string, vscode.DiagnosticCollection>();

  replace(source: string, entries: ProblemEntry[]): void {
    let collection = this.collections.get(source);
    if (!collection) {
      collection = vscode.languages.createDiagnosticCollection(`ait-${source}`);
      this.collections.set(source, collection);
    }
    collection.clear();
    const byFile = new Map<string, vscode.Diagnostic[]>();
    for (const e of entries) {
      const d = new vscode.Diagnostic(new vscode.Range(e.line, 0, e.line, 1000), e.message, SEVERITY[e.severity]);
      d.source = `AIT ${source.split(':')[0]}`;
      d.code = e.code;
      byFile.set(e.file, [...(byFile.get(e.file) ?? []), d]);
    }
    for (const [file, list] of byFile) collection.set(vscode.Uri.file(file), list);
  }

  dispose(): void {
    for (const c of this.collections.values()) c.dispose();
  }
}

export class StatusBar implements JobStatus, vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('ait.status', vscode.StatusBarAlignment.Left, 10);
  private target = '';
  private readonly jobs: string[] = [];

  constructor(target: string) {
    this.item.name = 'AIT Studio';
    this.item.command = 'ait.selectTarget';
    this.setTarget(target);
    this.item.show();
  }

  setTarget(target: string): void {
    this.target = target;
    this.draw();
  }

  begin(label: string): { dispose(): void } {
    this.jobs.push(label);
    this.draw();
    return {
      dispose: () => {
        this.jobs.splice(this.jobs.indexOf(label), 1);
        this.draw();
      },
    };
  }

  private draw(): void {
    const job = this.jobs[this.jobs.length - 1];
    this.item.text = job ? `$(sync~spin) AIT: ${job}` : `$(circuit-board) ${this.target}`;
    this.item.tooltip = `AIT Studio: target ${this.target}${job ? `; ${this.jobs.join(', ')}` : ''} (click to change the target)`;
  }

  dispose(): void {
    this.item.dispose();
  }
}
