/** The AIT Studio views: remote hosts (with their GPUs from the last check) and past runs. */
import * as vscode from 'vscode';
import type { HelloResult } from '../remote-agent/protocol';
import type { RunRecord, RunStore } from './runs';
import { readSettings, type RemoteHostSetting } from './settings';
import type { SettingsStore } from './ports';

type HostNode = { kind: 'host'; remote: RemoteHostSetting } | { kind: 'detail'; label: string; description?: string; icon: string };

export class HostsTree implements vscode.TreeDataProvider<HostNode> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly info = new Map<string, HelloResult>();

  constructor(private readonly settings: SettingsStore) {}

  refresh(): void {
    this.changed.fire();
  }

  setHostInfo(name: string, hello: HelloResult): void {
    this.info.set(name, hello);
    this.changed.fire();
  }

  getChildren(node?: HostNode): HostNode[] {
    if (!node) return readSettings(this.settings).settings.remotes.map((remote) => ({ kind: 'host', remote }));
    if (node.kind !== 'host') return [];
    const hello = this.info.get(node.remote.name);
    if (!hello) return [];
    const details: HostNode[] = hello.gpus.map((g) => ({
      kind: 'detail',
      label: `GPU ${g.index}: ${g.name}`,
      description: [
        g.memoryMiB !== null ? `${Math.round(g.memoryMiB / 1024)} GiB` : '',
        g.computeCapability ? `sm ${g.computeCapability}` : (g.gfxArch ?? ''),
      ]
        .filter(Boolean)
        .join(', '),
      icon: 'chip',
    }));
    if (hello.gpus.length === 0) details.push({ kind: 'detail', label: 'no GPU', description: hello.gpuProbe.note, icon: 'warning' });
    details.push({ kind: 'detail', label: 'nvcc', description: hello.nvcc?.version ?? 'not found', icon: 'tools' });
    return details;
  }

  getTreeItem(node: HostNode): vscode.TreeItem {
    if (node.kind === 'detail') {
      const item = new vscode.TreeItem(node.label);
      item.description = node.description;
      item.iconPath = new vscode.ThemeIcon(node.icon);
      return item;
    }
    const hello = this.info.get(node.remote.name);
    const item = new vscode.TreeItem(
      node.remote.name,
      hello ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None,
    );
    item.description = node.remote.host === node.remote.name ? (hello ? '' : 'not checked') : node.remote.host;
    item.iconPath = new vscode.ThemeIcon(node.remote.host === 'local' ? 'vm' : 'remote');
    item.contextValue = 'aitHost';
    item.tooltip = hello
      ? `${hello.host.user}@${hello.host.hostname}, agent ${hello.agentVersion}, node ${hello.node.version}`
      : 'Check the host to list its GPUs';
    return item;
  }
}

export function describeRun(run: RunRecord): { label: string; description: string } {
  const when = new Date(run.createdAt).toLocaleString();
  const latency =
    run.headlineItemsPerSecond !== undefined
      ? `${run.headlineItemsPerSecond.toFixed(0)} images/s @ batch ${run.headlineBatch}`
      : run.headlineLatencyMs !== undefined
        ? `${run.headlineLatencyMs.toFixed(3)} ms @ batch ${run.headlineBatch}`
        : '';
  const where = run.kind === 'bench' ? `bench on ${run.host}` : run.target;
  const state = run.ok ? '' : `${run.errorCount} error${run.errorCount === 1 ? '' : 's'}`;
  return { label: `${run.model} · ${where}`, description: [latency, state, when].filter(Boolean).join(' · ') };
}

export class RunsTree implements vscode.TreeDataProvider<RunRecord> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly runs: RunStore) {
    runs.onDidChange(() => this.changed.fire());
  }

  getChildren(node?: RunRecord): RunRecord[] {
    return node ? [] : this.runs.list();
  }

  getTreeItem(run: RunRecord): vscode.TreeItem {
    const { label, description } = describeRun(run);
    const item = new vscode.TreeItem(label);
    item.description = description;
    item.tooltip = `${run.outDir}`;
    item.iconPath = new vscode.ThemeIcon(run.kind === 'bench' ? 'dashboard' : run.ok ? 'pass' : 'warning');
    item.contextValue = 'aitRun';
    item.command = { command: 'ait.openRun', title: 'Open Graph', arguments: [run.id] };
    return item;
  }
}
