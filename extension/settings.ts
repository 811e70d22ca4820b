/**
 * The extension's settings (`ait.*`), validated. package.json holds their JSON schema for the Settings editor;
 * these functions check what is actually stored (settings.json may be edited by hand) and say what is wrong.
 */
import { DEFAULT_TARGET, isKnownTarget, TARGETS } from './targets';
import type { SettingsStore } from './ports';

/** One entry of `ait.remotes`. */
export interface RemoteHostSetting {
  /** Shown in the hosts view and pickers. */
  name: string;
  /** `local` (the agent as a child process) or an SSH target: an ssh config alias or user@host[:port]. */
  host: string;
  /** Agent work directory on the host, relative to its home (default .ait-studio/agent). */
  workDir?: string;
  /** Node on the host (command or path). */
  node?: string;
  /** A local Node binary (plain or .xz) uploaded when the host has no node ≥ 18. */
  uploadNode?: string;
}

export interface AitSettings {
  remotes: RemoteHostSetting[];
  defaultTarget: string;
  /** CUTLASS checkout used by builds (passed to make as CUTLASS_DIR); empty: the host's CUTLASS_DIR. */
  cutlassDir: string;
  /** Compile output goes to <workspace folder>/<outputDirectory>/<model name>. */
  outputDirectory: string;
  /** Benchmark batch sizes. */
  benchBatchSizes: number[];
  /** Throughput benchmark: model instances per GPU (0: latency benchmark), host threads (1..instances), seconds. */
  benchInstances: number;
  benchThreads: number;
  benchDuration: number;
  /** SSH config file (default ~/.ssh/config). */
  sshConfig: string;
  /**
   * FILE.py:FUNCTION (FILE relative to the workspace folder) whose nn.Module PyTorch eager times per module when
   * Verify Against Reference runs on a remote host (`--torch-model`); empty: no PyTorch times.
   */
  verifyTorchModel: string;
}

export interface SettingsProblem {
  /** The setting key, e.g. `ait.remotes[1].host`. */
  setting: string;
  message: string;
}

/** FILE.py:FUNCTION, FUNCTION a Python identifier (`--torch-model`). */
const TORCH_MODEL = /^.+\.py:[A-Za-z_][A-Za-z0-9_]*$/;

const SSH_TARGET = /^(?:[A-Za-z0-9._-]+@)?(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** Why `host` is not a usable remote host, or undefined when it is. */
export function checkHostTarget(host: string): string | undefined {
  const h = host.trim();
  if (!h) return 'give a host: local, an ssh config alias, or user@host[:port]';
  if (h === 'local') return undefined;
  if (!SSH_TARGET.test(h)) return `'${h}' is not an ssh target (expected an ssh config alias or user@host[:port])`;
  const port = /:(\d+)$/.exec(h)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `port ${port} is outside 1..65535`;
  return undefined;
}

export function validateRemotes(value: unknown): { remotes: RemoteHostSetting[]; problems: SettingsProblem[] } {
  const remotes: RemoteHostSetting[] = [];
  const problems: SettingsProblem[] = [];
  if (value === undefined || value === null) return { remotes, problems };
  if (!Array.isArray(value)) return { remotes, problems: [{ setting: 'ait.remotes', message: 'must be a list of hosts' }] };
  const names = new Set<string>();
  value.forEach((entry: unknown, i) => {
    const key = `ait.remotes[${i}]`;
    if (typeof entry !== 'object' || entry === null) {
      problems.push({ setting: key, message: 'must be an object with name and host' });
      return;
    }
    const e = entry as Record<string, unknown>;
    if (typeof e.host !== 'string') {
      problems.push({ setting: `${key}.host`, message: 'is missing (local, an ssh config alias, or user@host[:port])' });
      return;
    }
    const hostProblem = checkHostTarget(e.host);
    if (hostProblem) {
      problems.push({ setting: `${key}.host`, message: hostProblem });
      return;
    }
    const name = typeof e.name === 'string' && e.name.trim() ? e.name.trim() : e.host.trim();
    if (names.has(name)) {
      problems.push({ setting: `${key}.name`, message: `'${name}' is used by an earlier entry; names must be unique` });
      return;
    }
    for (const optional of ['workDir', 'node', 'uploadNode'] as const) {
      if (e[optional] !== undefined && typeof e[optional] !== 'string')
        problems.push({ setting: `${key}.${optional}`, message: 'must be a string' });
    }
    if (typeof e.workDir === 'string' && (e.workDir.split('/').includes('..') || e.workDir.includes('\0')))
      problems.push({ setting: `${key}.workDir`, message: `'${e.workDir}' must not contain '..'` });
    names.add(name);
    remotes.push({
      name,
      host: e.host.trim(),
      workDir: typeof e.workDir === 'string' ? e.workDir : undefined,
      node: typeof e.node === 'string' ? e.node : undefined,
      uploadNode: typeof e.uploadNode === 'string' ? e.uploadNode : undefined,
    });
  });
  return { remotes, problems };
}

export function parseBatchSizeList(value: unknown): number[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  return value.every((n) => Number.isInteger(n) && n > 0) ? (value as number[]) : undefined;
}

/** Reads and validates every setting; an invalid value falls back to its default and is reported. */
export function readSettings(store: SettingsStore): { settings: AitSettings; problems: SettingsProblem[] } {
  const { remotes, problems } = validateRemotes(store.get('remotes'));
  let defaultTarget = store.get('defaultTarget');
  if (defaultTarget === undefined || defaultTarget === '') defaultTarget = DEFAULT_TARGET;
  if (typeof defaultTarget !== 'string' || !isKnownTarget(defaultTarget)) {
    problems.push({
      setting: 'ait.defaultTarget',
      message: `${JSON.stringify(defaultTarget)} is not a known target (${TARGETS.map((t) => t.id).join(', ')}); using ${DEFAULT_TARGET}`,
    });
    defaultTarget = DEFAULT_TARGET;
  }
  const text = (key: string, fallback: string): string => {
    const v = store.get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'string') return v;
    problems.push({ setting: `ait.${key}`, message: 'must be a string' });
    return fallback;
  };
  const outputDirectory = text('outputDirectory', 'build');
  if (outputDirectory.split(/[\\/]/).includes('..'))
    problems.push({ setting: 'ait.outputDirectory', message: `'${outputDirectory}' must stay inside the workspace folder` });
  const rawSizes = store.get('benchBatchSizes');
  const benchBatchSizes = parseBatchSizeList(rawSizes) ?? [1, 8, 64];
  if (rawSizes !== undefined && !parseBatchSizeList(rawSizes))
    problems.push({ setting: 'ait.benchBatchSizes', message: 'must be a non-empty list of positive integers; using 1, 8, 64' });
  const integer = (key: string, fallback: number, min: number): number => {
    const v = store.get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= 1024) return v;
    problems.push({ setting: `ait.${key}`, message: `must be an integer in ${min}..1024; using ${fallback}` });
    return fallback;
  };
  const benchInstances = integer('benchInstances', 0, 0);
  let benchThreads = integer('benchThreads', 1, 1);
  if (benchInstances > 0 && benchThreads > benchInstances) {
    problems.push({
      setting: 'ait.benchThreads',
      message: `must not exceed ait.benchInstances (${benchInstances}); using ${benchInstances}`,
    });
    benchThreads = benchInstances;
  }
  const rawDuration = store.get('benchDuration');
  let benchDuration = 10;
  if (typeof rawDuration === 'number' && rawDuration > 0 && rawDuration <= 3600) benchDuration = rawDuration;
  else if (rawDuration !== undefined && rawDuration !== null)
    problems.push({ setting: 'ait.benchDuration', message: 'must be a number of seconds in (0, 3600]; using 10' });
  let verifyTorchModel = text('verifyTorchModel', '').trim();
  if (verifyTorchModel && !TORCH_MODEL.test(verifyTorchModel)) {
    problems.push({ setting: 'ait.verifyTorchModel', message: `'${verifyTorchModel}' is not FILE.py:FUNCTION; no PyTorch times` });
    verifyTorchModel = '';
  }
  return {
    settings: {
      remotes,
      defaultTarget: defaultTarget as string,
      cutlassDir: text('cutlassDir', ''),
      outputDirectory: outputDirectory.split(/[\\/]/).includes('..') ? 'build' : outputDirectory,
      benchBatchSizes,
      benchInstances,
      benchThreads,
      benchDuration,
      sshConfig: text('sshConfig', ''),
      verifyTorchModel,
    },
    problems,
  };
}
