// esbuild plugin: remote-agent/agent/module-times-script.ts reads scripts/gpu/module_times.py from the checkout; the
// bundles carry the script inline instead, so the agent (one file on the GPU host) can write it into a job.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'gpu', 'module_times.py');

export const embeddedScriptsPlugin = {
  name: 'embedded-scripts',
  setup(build) {
    build.onLoad({ filter: /[\\/]remote-agent[\\/]agent[\\/]module-times-script\.ts$/ }, () => ({
      contents: `export function moduleTimesScript() { return ${JSON.stringify(fs.readFileSync(script, 'utf8'))}; }\n`,
      loader: 'js',
      watchFiles: [script],
    }));
  },
};
