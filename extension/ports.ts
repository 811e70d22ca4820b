/**
 * The small interfaces through which command handlers reach VS Code. extension/vscode-ports.ts implements them
 * over the real API; the unit tests (test/extension/) implement them with scripted answers, so every handler runs
 * under mocha without VS Code.
 */

export interface PickItem {
  label: string;
  description?: string;
  detail?: string;
  /** Shown as the pre-selected (first) choice. */
  picked?: boolean;
}

export interface InputOptions {
  title: string;
  prompt?: string;
  value?: string;
  placeholder?: string;
  /** Masks the input (passphrases). */
  password?: boolean;
  /** Returns why the value is not acceptable, or undefined when it is. */
  validate?: (value: string) => string | undefined;
}

export interface Ui {
  /** undefined: the user dismissed the pick. */
  pick<T extends PickItem>(items: readonly T[], options: { title: string; placeholder?: string }): Promise<T | undefined>;
  input(options: InputOptions): Promise<string | undefined>;
  /** A modal question with one action; true when the user chose it. */
  confirm(message: string, detail: string, action: string): Promise<boolean>;
  pickFolder(title: string, defaultPath?: string): Promise<string | undefined>;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface CancellationSignal {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

export interface ProgressReporter {
  /** A stage name and what it did, shown in the notification. */
  report(message: string): void;
}

export interface ProgressRunner {
  /** Runs `task` under a cancellable progress notification titled `title`. */
  run<T>(title: string, task: (progress: ProgressReporter, cancel: CancellationSignal) => Promise<T>): Promise<T>;
}

/** The "AIT Studio" LogOutputChannel. */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Raw text (compiler stage lines, build output), as is. */
  trace(message: string): void;
  show(): void;
}

/** A key/value store that outlives the session (VS Code Memento). */
export interface StateStore {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Promise<void>;
}

/** Settings under `ait.` (VS Code WorkspaceConfiguration). */
export interface SettingsStore {
  get(key: string): unknown;
  /** Writes a user (global) setting. */
  update(key: string, value: unknown): Promise<void>;
}

/** Secrets (SSH key passphrases) live only here: VS Code SecretStorage. */
export interface SecretStore {
  get(key: string): Promise<string | undefined>;
  store(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** One Problems-panel entry. `line` is 0-based; entries without a line sit at the start of the file. */
export interface ProblemEntry {
  file: string;
  line: number;
  severity: 'error' | 'warning' | 'info';
  message: string;
  code: string;
}

export interface ProblemSink {
  /** Replaces every entry of `source` (`compile:<model file>`, `build:<output dir>`) with `entries`. */
  replace(source: string, entries: ProblemEntry[]): void;
}

/** The status-bar item: the active target, and the job that runs. */
export interface JobStatus {
  setTarget(target: string): void;
  /** Shows a running job; dispose() when it ends. */
  begin(label: string): { dispose(): void };
}

/**
 * Workspace Trust (vscode.workspace.isTrusted). In an untrusted workspace (Restricted Mode) nothing that compiles a
 * model or runs anything on a host starts; graph viewing stays. Read at each use: trust can be granted while running.
 */
export interface WorkspaceTrust {
  readonly isTrusted: boolean;
}
