/**
 * A real VS Code for the end-to-end test: code-server (installed by scripts/setup-vscode-e2e.sh under .vscode-test/)
 * with a fresh user-data and extensions directory, driven in Debian's chromium through playwright-core.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CODE_SERVER_VERSION = '4.100.3';
const PREFIX = path.join(REPO_ROOT, '.vscode-test', `code-server-${CODE_SERVER_VERSION}`);
export const CODE_SERVER_ENTRY = path.join(PREFIX, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const CHROMIUM = process.env.AIT_CHROMIUM ?? '/usr/bin/chromium';

/** Why the e2e cannot run here, or undefined. */
export function missingSetup(): string | undefined {
  if (!fs.existsSync(path.join(PREFIX, '.complete'))) return `code-server is not installed in ${PREFIX}: run scripts/setup-vscode-e2e.sh`;
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is missing: run scripts/setup-vscode-e2e.sh (apt-get install chromium)`;
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export interface CodeServer {
  url: string;
  process: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

export function installExtension(vsix: string, dirs: { userData: string; extensions: string }): string {
  const r = spawnSync(
    process.execPath,
    [CODE_SERVER_ENTRY, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--install-extension', vsix],
    { encoding: 'utf8', timeout: 120_000 },
  );
  const output = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) throw new Error(`code-server --install-extension ${vsix} failed (exit ${r.status}):\n${output}`);
  return output;
}

export interface StartOptions {
  /**
   * false (the default): `--disable-workspace-trust`, every folder is trusted. true: Workspace Trust stays on, so a
   * folder opens in Restricted Mode until trusted (the user settings decide whether a dialog asks; see
   * UNTRUSTED_SETTINGS).
   */
  workspaceTrust?: boolean;
}

export async function startCodeServer(
  dirs: { userData: string; extensions: string },
  workspace: string,
  options: StartOptions = {},
): Promise<CodeServer> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      CODE_SERVER_ENTRY,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      ...(options.workspaceTrust ? [] : ['--disable-workspace-trust']),
      '--user-data-dir',
      dirs.userData,
      '--extensions-dir',
      dirs.extensions,
      workspace,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: false },
  );
  let output = '';
  child.stdout!.on('data', (b) => (output += b));
  child.stderr!.on('data', (b) => (output += b));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`code-server did not start in 60 s:\n${output}`)), 60_000);
    const check = () => {
      if (/HTTP server listening/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`code-server exited (code ${code}):\n${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`,
    process: child,
    output: () => output,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--headless',
    ],
  });
}

/**
 * Runs a command from the palette (F1), by its title. The palette lists the commands known when it opens: if the
 * title is not there yet (contributions still loading), close it and try again.
 */
export async function runCommand(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
  while (true) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 30_000 });
    await input.fill(`>${title}`);
    try {
      await row.waitFor({ state: 'visible', timeout: 3_000 });
      await row.click();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await page.keyboard.press('Escape');
      await page.waitForTimeout(1_000);
    }
  }
}

/** Waits for a quick pick whose title contains `title`; picks the row labelled `label`, or the first one. */
export async function answerQuickPick(page: Page, title: string, label?: string): Promise<void> {
  await page.locator('.quick-input-widget .quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 30_000 });
  if (label === undefined) {
    await page.keyboard.press('Enter');
    return;
  }
  const row = page
    .locator('.quick-input-widget .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
  await row.first().click();
}

/**
 * The frame of the graph webview of `model` (VS Code nests it: iframe.webview → iframe#active-frame; its title is
 * "<model> — graph", or matches `model` when it is a RegExp), once its layout is done.
 */
export async function graphFrame(page: Page, timeoutMs: number, model: string | RegExp): Promise<Frame> {
  const titled = (title: string) => (typeof model === 'string' ? title === `${model} — graph` : model.test(title));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      const state = await frame
        .evaluate(() => ({
          title: document.title,
          layout: document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState ?? null,
        }))
        .catch(() => null);
      if (state?.layout === 'done' && titled(state.title)) return frame;
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`no graph webview of ${model} with a finished layout within ${timeoutMs} ms`);
}

/** Seconds each step took, by name; `report` prints them and writes them to a JSON file. */
export function timings() {
  const t0 = Date.now();
  const times: Record<string, number> = {};
  const lap = (name: string, since: number) => (times[name] = Math.round((Date.now() - since) / 100) / 10);
  return {
    times,
    lap,
    report(file: string) {
      lap('total', t0);
      console.log(`    e2e timings (s): ${JSON.stringify(times)}`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify(times, null, 2));
    },
  };
}

/** User settings of every test window: no start page, tips, recommendations or telemetry. */
export const QUIET_SETTINGS: Record<string, unknown> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'extensions.ignoreRecommendations': true,
  'telemetry.telemetryLevel': 'off',
};

/**
 * User settings that, with `workspaceTrust: true`, open the folder untrusted (Restricted Mode) without a modal
 * asking to trust it: the trust stays on, the startup prompt never shows, files outside the folder open too.
 */
export const UNTRUSTED_SETTINGS: Record<string, unknown> = {
  'security.workspace.trust.enabled': true,
  'security.workspace.trust.startupPrompt': 'never',
  'security.workspace.trust.untrustedFiles': 'open',
};

let vsix: string | undefined;
/** Packages the extension (`npm run package`) once per test run; returns the .vsix. */
export function packageExtension(): string {
  if (vsix) return vsix;
  const r = spawnSync('npm', ['run', 'package'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run package failed:\n${r.stdout}${r.stderr}`);
  return (vsix = path.join(REPO_ROOT, 'dist', 'ait-studio.vsix'));
}

export interface VSCodeWindow {
  /** Holds user-data/, extensions/ and workspace/; removed by close(). */
  tmp: string;
  workspace: string;
  userData: string;
  page: Page;
  /** Saves a screenshot (last.png), VS Code's logs and code-server's output under `artifacts`, then stops all. */
  close(): Promise<void>;
}

export interface OpenOptions extends StartOptions {
  vsix: string;
  /** User settings (over QUIET_SETTINGS). */
  settings: Record<string, unknown>;
  /** Fills the workspace folder before VS Code opens it. */
  populate(workspace: string): void;
  /** The window is ready once the explorer lists `explorerRow` and the status bar shows `statusBar`. */
  ready: { explorerRow: string; statusBar: string };
  /** Where close() leaves the last screenshot and the logs. */
  artifacts: string;
  /** Records how long a step took (timings().lap). */
  lap?: (name: string, since: number) => void;
}

/**
 * A fresh code-server (own user data, extensions and workspace folder under a temporary directory) with the
 * extension installed, and a chromium page showing it, once ready. On failure, what was started is closed.
 */
export async function openVSCode(options: OpenOptions): Promise<VSCodeWindow> {
  const lap = options.lap ?? (() => undefined);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-e2e-'));
  const dirs = { userData: path.join(tmp, 'user-data'), extensions: path.join(tmp, 'extensions') };
  const workspace = path.join(tmp, 'workspace');
  let server: CodeServer | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  const close = async () => {
    fs.mkdirSync(options.artifacts, { recursive: true });
    if (page) await page.screenshot({ path: path.join(options.artifacts, 'last.png') }).catch(() => {});
    await browser?.close();
    await server?.stop();
    const logs = path.join(dirs.userData, 'logs');
    if (fs.existsSync(logs)) fs.cpSync(logs, path.join(options.artifacts, 'logs'), { recursive: true });
    if (server) fs.writeFileSync(path.join(options.artifacts, 'code-server.log'), server.output());
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    fs.mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
    fs.writeFileSync(path.join(dirs.userData, 'User', 'settings.json'), JSON.stringify({ ...QUIET_SETTINGS, ...options.settings }));
    fs.mkdirSync(workspace, { recursive: true });
    options.populate(workspace);

    let since = Date.now();
    const installed = installExtension(options.vsix, dirs);
    if (!/ait-studio.*(successfully installed|was successfully)/i.test(installed))
      throw new Error(`the extension did not install:\n${installed}`);
    lap('install-extension', since);

    since = Date.now();
    server = await startCodeServer(dirs, workspace, options);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.goto(server.url);
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 120_000 });
    // The explorer lists the workspace once the window is up.
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: options.ready.explorerRow }).waitFor({ timeout: 120_000 });
    // The extension is active once its status-bar item shows (the target).
    await page.locator('.statusbar-item', { hasText: options.ready.statusBar }).waitFor({ timeout: 120_000 });
    lap('start-vscode', since);
    return { tmp, workspace, userData: dirs.userData, page, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Waits for a notification toast whose text matches `text`; returns its text. */
export async function notification(page: Page, text: string | RegExp, timeoutMs = 30_000): Promise<string> {
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  await toast.waitFor({ state: 'visible', timeout: timeoutMs });
  return (await toast.innerText()).replace(/\s+/g, ' ');
}
