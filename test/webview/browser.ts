/** Headless Debian Chromium for the webview tests (no browser download: `apt-get install chromium`). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { requireTool } from '../helpers/tools';

export const CHROMIUM = process.env.AIT_CHROMIUM ?? '/usr/bin/chromium';
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const ARTIFACTS_DIR = path.join(REPO_ROOT, '.test-artifacts', 'webview');

export async function launchChromium(ctx: Mocha.Context): Promise<Browser> {
  requireTool(ctx, 'chromium', fs.existsSync(CHROMIUM), `${CHROMIUM} not found; apt-get install chromium, or set AIT_CHROMIUM`);
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

/** Builds dist/ (cli.js and the webview bundle) so that the tests run the real CLI on the current sources. */
export function buildDist(): void {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}\n${r.stderr}`);
}

/** Runs `ait ARGS` (dist/cli.js); returns exit code and output. */
export function ait(args: string[]): { status: number; output: string } {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'cli.js'), ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/** `ait compile MODEL --out DIR`; the graph is written even when ops are not supported yet (exit 1). */
export function compileToDir(model: string, outDir: string): string {
  const r = ait(['compile', model, '--out', outDir]);
  const graphJson = path.join(outDir, 'graph.json');
  if (!fs.existsSync(graphJson)) throw new Error(`ait compile wrote no graph.json (exit ${r.status}):\n${r.output.slice(-2000)}`);
  return graphJson;
}
