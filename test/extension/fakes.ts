/** Scripted stand-ins for the VS Code ports (extension/ports.ts), recording what the handlers did. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { CommandContext } from '../../extension/commands/context';
import { cliVerifyRunner } from '../../extension/commands/verify';
import type { CompileRunner } from '../../extension/compile/service';
import type { CancellationSignal, PickItem, ProblemEntry, Ui } from '../../extension/ports';
import { RunStore } from '../../extension/runs';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Builds dist/ (the compile worker bundle among it) from the current sources. */
export function buildDist(): void {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}\n${r.stderr}`);
}

/** Answers, in order: for a pick, the label to choose (undefined: dismiss; '' the first item); for an input, the text. */
export type Answer = string | undefined;

export class ScriptedUi implements Ui {
  readonly picks: { title: string; labels: string[] }[] = [];
  readonly inputs: { title: string; password?: boolean; validate?: (v: string) => string | undefined }[] = [];
  readonly messages: { level: 'info' | 'warn' | 'error'; text: string }[] = [];
  confirmAnswer = false;

  constructor(private readonly answers: Answer[] = []) {}

  async pick<T extends PickItem>(items: readonly T[], options: { title: string }): Promise<T | undefined> {
    this.picks.push({ title: options.title, labels: items.map((i) => i.label) });
    const answer = this.next(options.title);
    if (answer === undefined) return undefined;
    const item = answer === '' ? items[0] : items.find((i) => i.label === answer);
    if (!item) throw new Error(`pick '${options.title}' has no item '${answer}' (items: ${items.map((i) => i.label).join(', ')})`);
    return item;
  }

  async input(options: { title: string; password?: boolean; validate?: (v: string) => string | undefined }): Promise<string | undefined> {
    this.inputs.push(options);
    return this.next(options.title);
  }

  async confirm(): Promise<boolean> {
    return this.confirmAnswer;
  }

  async pickFolder(title: string): Promise<string | undefined> {
    return this.next(title);
  }

  info = (text: string) => void this.messages.push({ level: 'info', text });
  warn = (text: string) => void this.messages.push({ level: 'warn', text });
  error = (text: string) => void this.messages.push({ level: 'error', text });

  private next(title: string): Answer {
    if (this.answers.length === 0) throw new Error(`no scripted answer left for '${title}'`);
    return this.answers.shift();
  }
}

export class FakeCancellation implements CancellationSignal {
  isCancellationRequested = false;
  private listeners: (() => void)[] = [];
  onCancellationRequested(listener: () => void) {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  }
  cancel(): void {
    this.isCancellationRequested = true;
    this.listeners.forEach((l) => l());
  }
}

export function memoryStore(initial: Record<string, unknown> = {}) {
  const data: Record<string, unknown> = { ...initial };
  return {
    data,
    get: <T>(key: string) => data[key] as T | undefined,
    update: async (key: string, value: unknown) => void (data[key] = value),
  };
}

export interface FakeContext extends CommandContext {
  ui: ScriptedUi;
  recorded: {
    problems: Map<string, ProblemEntry[]>;
    progressReports: string[];
    log: string[];
    graphsShown: string[];
    statusTarget: string[];
    jobs: string[];
    settings: Record<string, unknown>;
    secrets: Map<string, string>;
    hostsChecked: string[];
  };
  /** Cancels the progress of the next `progress.run`, after its first report. */
  cancelAfterFirstReport: boolean;
  /** Workspace Trust; a test may grant it mid-way (`ctx.trust.isTrusted = true`). */
  trust: { isTrusted: boolean };
}

export function fakeContext(options: {
  answers?: Answer[];
  compiler?: CompileRunner;
  settings?: Record<string, unknown>;
  workspaceFolder?: string;
  models?: string[];
  remotes?: CommandContext['remotes'];
  /** Per-node verify (default: the CLI's own, real). */
  verifier?: CommandContext['verifier'];
  /** The profile flow (default: one that fails the test when run). */
  profiler?: CommandContext['profiler'];
  /** The active editor's model. */
  activeModel?: string;
  /** Workspace Trust (default: trusted). */
  trusted?: boolean;
}): FakeContext {
  const settings = memoryStore(options.settings);
  const secrets = new Map<string, string>();
  const recorded: FakeContext['recorded'] = {
    problems: new Map(),
    progressReports: [],
    log: [],
    graphsShown: [],
    statusTarget: [],
    jobs: [],
    settings: settings.data,
    secrets,
    hostsChecked: [],
  };
  const ctx: FakeContext = {
    ui: new ScriptedUi(options.answers),
    trust: { isTrusted: options.trusted ?? true },
    cancelAfterFirstReport: false,
    progress: {
      run: (_title, task) => {
        const cancel = new FakeCancellation();
        let first = true;
        return task(
          {
            report: (m) => {
              recorded.progressReports.push(m);
              if (first && ctx.cancelAfterFirstReport) cancel.cancel();
              first = false;
            },
          },
          cancel,
        );
      },
    },
    log: {
      info: (m) => void recorded.log.push(`info ${m}`),
      warn: (m) => void recorded.log.push(`warn ${m}`),
      error: (m) => void recorded.log.push(`error ${m}`),
      trace: (m) => void recorded.log.push(m),
      show: () => {},
    },
    settings: { get: (k) => settings.data[k], update: async (k, v) => void (settings.data[k] = v) },
    workspaceState: memoryStore(),
    secrets: {
      get: async (k) => secrets.get(k),
      store: async (k, v) => void secrets.set(k, v),
      delete: async (k) => void secrets.delete(k),
    },
    problems: { replace: (source, entries) => void recorded.problems.set(source, entries) },
    status: {
      setTarget: (t) => void recorded.statusTarget.push(t),
      begin: (label) => {
        recorded.jobs.push(label);
        return { dispose: () => {} };
      },
    },
    runs: new RunStore(memoryStore()),
    compiler: options.compiler ?? {
      compile: async () => {
        throw new Error('no compiler in this test');
      },
    },
    remotes: options.remotes ?? {
      open: async () => {
        throw new Error('no remote in this test');
      },
    },
    verifier: options.verifier ?? cliVerifyRunner(),
    profiler:
      options.profiler ??
      (async () => {
        throw new Error('no profiler in this test');
      }),
    workspaceFolderOf: () => options.workspaceFolder,
    findModels: async () => options.models ?? [],
    activeModel: () => options.activeModel,
    showGraph: async (dir) => void recorded.graphsShown.push(dir),
    onHostChecked: (name) => void recorded.hostsChecked.push(name),
    recorded,
  };
  return ctx;
}
