/**
 * The text of scripts/gpu/module_times.py, which the agent writes into a verify job (torch-times.ts). Run from the
 * checkout (tests, tsx) it is read from disk; the bundles (dist/agent.js, dist/cli.js) carry it inline instead:
 * scripts/embedded-scripts-plugin.mjs replaces this module at build time, so an agent copied alone to a GPU host has it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function moduleTimesScript(): string {
  return fs.readFileSync(path.resolve(__dirname, '..', '..', 'scripts', 'gpu', 'module_times.py'), 'utf8');
}
