/**
 * The one message protocol between the graph webview and its host: the VS Code extension (postMessage through
 * acquireVsCodeApi) or the standalone page written by `ait graph` (an in-page host, webview/standalone-host.ts).
 * Both sides import this module; every message has a `type` and is a plain JSON value.
 */
import type { GraphJson, NamedProfile } from './contract';

export type Theme = 'light' | 'dark' | 'high-contrast';

/** Host → webview. */
export type HostMessage =
  | { type: 'load'; graph: GraphJson; profiles: NamedProfile[]; /** File path of graph.json, for titles. */ graphPath?: string }
  | { type: 'addProfile'; profile: NamedProfile }
  | { type: 'selectNode'; nodeId: string }
  | { type: 'setTheme'; theme: Theme };

/** Webview → host. */
export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'nodeSelected'; nodeId: string | null }
  /** Ask the host to open the generated source of a node (the kernel's `source`, else the host finds it). */
  | { type: 'openSource'; nodeId: string; file?: string; line?: number }
  /** Ask the host to save an exported image; `data` is UTF-8 text (svg) or base64 (png). */
  | { type: 'saveFile'; fileName: string; mime: 'image/svg+xml' | 'image/png'; data: string; encoding: 'utf8' | 'base64' }
  | { type: 'error'; message: string; nodeId?: string };

export interface HostConnection {
  post(message: WebviewMessage): void;
  onMessage(listener: (message: HostMessage) => void): void;
}

const HOST_TYPES = new Set<HostMessage['type']>(['load', 'addProfile', 'selectNode', 'setTheme']);

/** Narrow an untyped postMessage payload to a HostMessage (messages of other senders are ignored). */
export function isHostMessage(value: unknown): value is HostMessage {
  return typeof value === 'object' && value !== null && HOST_TYPES.has((value as { type: HostMessage['type'] }).type);
}
