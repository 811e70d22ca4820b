/**
 * A real VS Code for the end-to-end test: code-server (installed by scripts/setup-vscode-e2e.sh under .vscode-test/)
 * with a fresh user-data and extensions directory, driven in Debian's chromium through playwright-core.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
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

export async function startCodeServer(dirs: { userData: string; extensions: string }, workspace: string): Promise<CodeServer> {
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
      '--disable-workspace-trust',
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
 * "<model> — graph"), once its layout is done.
 */
export async function graphFrame(page: Page, timeoutMs: number, model: string): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      const state = await frame
        .evaluate(() => ({
          title: document.title,
          layout: document.querySelector<HTMLElement>('.ait-graph-app')?.dataset.layoutState ?? null,
        }))
        .catch(() => null);
      if (state?.layout === 'done' && state.title === `${model} — graph`) return frame;
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`no graph webview of ${model} with a finished layout within ${timeoutMs} ms`);
}
