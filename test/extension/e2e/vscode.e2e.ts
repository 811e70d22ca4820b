/**
 * End-to-end: the packaged extension (.vsix) installed into a real VS Code (code-server) in Debian chromium.
 * Compiles ResNet-50 from the command palette, waits for the graph webview, clicks a node and reads its kernel
 * (or, until kernels are chosen, its op and epilogue) in the details panel; compiles Mask R-CNN and finds the
 * unsupported nodes in the Problems panel. Screenshots and VS Code's logs go to .test-artifacts/vscode-e2e/.
 *
 * Needs scripts/setup-vscode-e2e.sh first; run with `npm run test:e2e`. Timings are printed.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  answerQuickPick,
  graphFrame,
  installExtension,
  launchBrowser,
  missingSetup,
  REPO_ROOT,
  runCommand,
  startCodeServer,
  type CodeServer,
} from './code-server';

const MODELS_DIR = path.resolve(REPO_ROOT, '..', 'shared', 'models');
const ARTIFACTS = path.join(REPO_ROOT, '.test-artifacts', 'vscode-e2e');
const VSIX = path.join(REPO_ROOT, 'dist', 'ait-studio.vsix');

interface GraphNode {
  id: string;
  op: string;
  name: string;
  epilogue?: string[];
  kernel?: { name: string };
}

describe('VS Code end-to-end (code-server + chromium)', function () {
  this.timeout(600_000);
  let tmp: string;
  let workspace: string;
  let server: CodeServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const times: Record<string, number> = {};
  const t0 = Date.now();
  const lap = (name: string, since: number) => (times[name] = Math.round((Date.now() - since) / 100) / 10);

  before(async function () {
    const missing = missingSetup();
    if (missing) throw new Error(missing);
    for (const m of ['resnet50', 'maskrcnn_resnet50_fpn'])
      if (!fs.existsSync(path.join(MODELS_DIR, `${m}.onnx`))) {
        console.log(`    (skipped: ${MODELS_DIR}/${m}.onnx not found)`);
        this.skip();
      }
    fs.rmSync(ARTIFACTS, { recursive: true, force: true });
    fs.mkdirSync(ARTIFACTS, { recursive: true });

    let since = Date.now();
    const packaged = spawnSync('npm', ['run', 'package'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(packaged.status, 0, `npm run package failed:\n${packaged.stdout}${packaged.stderr}`);
    lap('package', since);

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-e2e-'));
    const dirs = { userData: path.join(tmp, 'user-data'), extensions: path.join(tmp, 'extensions') };
    fs.mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
    fs.writeFileSync(
      path.join(dirs.userData, 'User', 'settings.json'),
      JSON.stringify({
        'security.workspace.trust.enabled': false,
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'extensions.ignoreRecommendations': true,
        'telemetry.telemetryLevel': 'off',
        'ait.defaultTarget': 'cuda:sm90',
      }),
    );
    workspace = path.join(tmp, 'workspace');
    for (const [dir, model] of [
      ['classify', 'resnet50'],
      ['detect', 'maskrcnn_resnet50_fpn'],
    ]) {
      fs.mkdirSync(path.join(workspace, dir), { recursive: true });
      fs.copyFileSync(path.join(MODELS_DIR, `${model}.onnx`), path.join(workspace, dir, `${model}.onnx`));
    }

    since = Date.now();
    const installed = installExtension(VSIX, dirs);
    assert.match(installed, /ait-studio.*(successfully installed|was successfully)/i);
    lap('install-extension', since);

    since = Date.now();
    server = await startCodeServer(dirs, workspace);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.goto(server.url);
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 120_000 });
    // The explorer lists the workspace once the window is up.
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'classify' }).waitFor({ timeout: 120_000 });
    // The extension is active once its status-bar item shows the target.
    await page.locator('.statusbar-item', { hasText: 'cuda:sm90' }).waitFor({ timeout: 120_000 });
    lap('start-vscode', since);
  });

  after(async function () {
    if (page) await page.screenshot({ path: path.join(ARTIFACTS, 'last.png') }).catch(() => {});
    await browser?.close();
    await server?.stop();
    if (tmp) {
      const logs = path.join(tmp, 'user-data', 'logs');
      if (fs.existsSync(logs)) fs.cpSync(logs, path.join(ARTIFACTS, 'logs'), { recursive: true });
      if (server) fs.writeFileSync(path.join(ARTIFACTS, 'code-server.log'), server.output());
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    times.total = Math.round((Date.now() - t0) / 100) / 10;
    console.log(`    e2e timings (s): ${JSON.stringify(times)}`);
    fs.writeFileSync(path.join(ARTIFACTS, 'timings.json'), JSON.stringify(times, null, 2));
  });

  it('compiles ResNet-50 from the command palette and shows a node of its graph in the details panel', async () => {
    const since = Date.now();
    await runCommand(page, 'AIT: Compile Model');
    await answerQuickPick(page, 'Model to compile', 'resnet50.onnx');
    await answerQuickPick(page, 'target');
    await answerQuickPick(page, 'batch range');
    const frame = await graphFrame(page, 120_000, 'resnet50');
    lap('compile-and-show-resnet50', since);
    await page.screenshot({ path: path.join(ARTIFACTS, 'resnet50-graph.png') });

    const graphJson = path.join(workspace, 'build', 'resnet50', 'graph.json');
    assert.ok(fs.existsSync(graphJson), `the compile wrote ${graphJson}`);
    const nodes = new Map((JSON.parse(fs.readFileSync(graphJson, 'utf8')).nodes as GraphNode[]).map((n) => [n.id, n]));

    // A node drawn well inside the graph area (groups may be collapsed), a convolution when one is drawn.
    const drawnIds = await frame.evaluate(() => {
      const host = document.querySelector('.graph-host')!.getBoundingClientRect();
      return [...document.querySelectorAll<SVGGElement>('[data-node-id]')]
        .filter((e) => {
          const r = e.getBoundingClientRect();
          return (
            r.width > 0 && r.top > host.top + 20 && r.bottom < host.bottom - 20 && r.left > host.left + 20 && r.right < host.right - 340
          );
        })
        .map((e) => e.dataset.nodeId!);
    });
    const nodeId = drawnIds.find((id) => nodes.get(id)?.op === 'conv2d') ?? drawnIds[0];
    assert.ok(nodeId, 'a graph node is drawn on screen');
    const node = nodes.get(nodeId);
    assert.ok(node, `node ${nodeId} is in graph.json`);
    await frame.click(`[data-node-id="${nodeId}"]`);
    await frame.locator('.details header').waitFor({ state: 'visible', timeout: 10_000 });
    const header = (await frame.textContent('.details header'))!;
    assert.match(header, new RegExp(node.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.equal(await frame.textContent('.details header .op'), node.op);
    if (node.epilogue?.length) assert.equal(await frame.textContent('.details header .epilogue'), `+${node.epilogue.join('+')}`);
    if (node.kernel) assert.equal(await frame.textContent('.details [data-field="kernel-name"]'), node.kernel.name);
    else
      console.log(
        `    (graph.json has no kernel for ${node.id} yet: read op ${node.op}${node.epilogue?.length ? ` +${node.epilogue.join('+')}` : ''})`,
      );
    await page.screenshot({ path: path.join(ARTIFACTS, 'resnet50-details.png') });

    // The run is recorded and the status bar shows the target.
    assert.ok(await page.locator('.statusbar-item', { hasText: 'cuda:sm90' }).isVisible(), 'the status bar shows the target');
  });

  it('shows the unsupported nodes of Mask R-CNN in the Problems panel, by node name', async () => {
    const graph = path.join(workspace, 'build', 'maskrcnn_resnet50_fpn', 'graph.json');
    const since = Date.now();
    await runCommand(page, 'AIT: Compile Model');
    await answerQuickPick(page, 'Model to compile', 'maskrcnn_resnet50_fpn.onnx');
    await answerQuickPick(page, 'target');
    await answerQuickPick(page, 'batch range');
    await graphFrame(page, 180_000, 'maskrcnn_resnet50_fpn');
    lap('compile-and-show-maskrcnn', since);
    const unsupported = (JSON.parse(fs.readFileSync(graph, 'utf8')).nodes as (GraphNode & { status?: { supported: boolean } })[]).filter(
      (n) => n.status && !n.status.supported,
    );
    assert.ok(unsupported.length > 0, 'Mask R-CNN has nodes that cannot run on the GPU');

    await runCommand(page, 'View: Focus Problems');
    const rows = page.locator('.markers-panel .monaco-list-row');
    await rows.first().waitFor({ state: 'visible', timeout: 30_000 });
    await page.waitForTimeout(500);
    const text = (await page.locator('.markers-panel').innerText()).replace(/\s+/g, ' ');
    await page.screenshot({ path: path.join(ARTIFACTS, 'maskrcnn-problems.png') });
    assert.match(text, /maskrcnn_resnet50_fpn\.onnx/, 'the entries belong to the model file');
    assert.match(text, /op\.unsupported/);
    const first = unsupported[0];
    assert.ok(text.includes(first.name), `Problems names the unsupported node ${first.name}: ${text.slice(0, 500)}`);
  });
});
