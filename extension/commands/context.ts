/** What command handlers get: the ports to VS Code and the services. extension.ts builds the real one. */
import type { CompileRunner } from '../compile/service';
import type { JobStatus, Log, ProblemSink, ProgressRunner, SecretStore, SettingsStore, StateStore, Ui, WorkspaceTrust } from '../ports';
import type { RunStore } from '../runs';
import type { ProfileFlow } from './profile';
import type { RemoteConnector } from './remote';
import type { VerifyRunner } from './verify';

export interface CommandContext {
  ui: Ui;
  /** Whether the workspace is trusted; commands that compile or run on hosts check it through requireTrust(). */
  trust: WorkspaceTrust;
  progress: ProgressRunner;
  log: Log;
  settings: SettingsStore;
  /** Per-workspace memory (compile choices per model). */
  workspaceState: StateStore;
  secrets: SecretStore;
  problems: ProblemSink;
  status: JobStatus;
  runs: RunStore;
  compiler: CompileRunner;
  remotes: RemoteConnector;
  /** Per-node verify, here or on a host (AIT: Verify Against Reference). */
  verifier: VerifyRunner;
  /** `ait compile MODEL --profile HOST` (runProfiledCompile; AIT: Profile Kernels on Remote). */
  profiler: ProfileFlow;
  /** The workspace folder holding `file`, if any. */
  workspaceFolderOf(file: string): string | undefined;
  /** .onnx files of the workspace. */
  findModels(): Promise<string[]>;
  /** The .onnx file of the active editor or selection, if any. */
  activeModel(): string | undefined;
  /** Opens (or reveals) the graph of a compile output directory. */
  showGraph(outDir: string): Promise<void>;
  /** Host info from the last check, for the hosts view. */
  onHostChecked(name: string, info: import('../../remote-agent/protocol').HelloResult): void;
}
