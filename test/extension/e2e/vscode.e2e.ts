/**
 * End-to-end: the packaged extension (.vsix) installed into a real VS Code (code-server) in Debian chromium.
 * Trusted workspace: compiles ResNet-50 from the command palette, waits for the graph webview, clicks a node and
 * reads its kernel (or, until kernels are chosen, its op and epilogue) in the details panel; compiles Mask R-CNN (no
 * unsupported node) and a model with a Loop the GPU does not run, and finds its unsupported node in the Problems panel; runs AIT: Verify Against Reference on a small model on this
 * machine (onnxruntime-node against the interpreter, in the extension's worker thread) and reads the per-node result
 * in the report file, the notification, Problems, the log and the graph's details panel. Untrusted workspace (Restricted Mode, Workspace Trust on):
 * opening an .onnx model still shows its graph in the AIT Graph editor, while AIT: Compile Model refuses with the
 * Restricted Mode warning and writes nothing into the workspace. Screenshots and VS Code's logs go to
 * .test-artifacts/vscode-e2e/ (the untrusted window's to its untrusted/).
 *
 * Needs scripts/setup-vscode-e2e.sh first; run with `npm run test:e2e`. Timings are printed.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { untrustedMessage } from '../../../extension/commands/trust';
import type { PerNodeReport } from '../../../compiler/verify/per-node';
import { buildModel } from '../../helpers/onnx-builder';
import { pasteMasksLoopModel } from '../../helpers/paste-masks-model';
import { overflowChain } from '../../helpers/verify-models';
import {
  answerQuickPick,
  graphFrame,
  missingSetup,
  notification,
  openVSCode,
  packageExtension,
  REPO_ROOT,
  runCommand,
  timings,
  UNTRUSTED_SETTINGS,
  type VSCodeWindow,
} from './code-server';

const MODELS_DIR = path.resolve(REPO_ROOT, '..', 'shared', 'models');
const EXAMPLE_MODEL = path.join(REPO_ROOT, 'examples', 'resnet50', 'resnet50.onnx');
const ARTIFACTS = path.join(REPO_ROOT, '.test-artifacts', 'vscode-e2e');

interface GraphNode {
  id: string;
  op: string;
  name: string;
  epilogue?: string[];
  kernel?: { name: string };
}

const clock = timings();
const lap = clock.lap;

/** The packaged extension; the first call packages it (timed). */
function vsix(): string {
  const since = Date.now();
  const file = packageExtension();
  if (clock.times.package === undefined) lap('package', since);
  return file;
}

before(function () {
  const missing = missingSetup();
  if (missing) throw new Error(missing);
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});

after(function () {
  clock.report(path.join(ARTIFACTS, 'timings.json'));
});

/**
 * Clicks a node drawn well inside the graph area of `frame` (groups may be collapsed; a convolution when one is
 * drawn) and checks the details panel against `graphJson`: id, op, epilogue, and the kernel when one is chosen.
 */
async function checkNodeDetails(frame: Frame, graphJson: string): Promise<GraphNode> {
  const nodes = new Map((JSON.parse(fs.readFileSync(graphJson, 'utf8')).nodes as GraphNode[]).map((n) => [n.id, n]));
  const drawnIds = await frame.evaluate(() => {
    const host = document.querySelector('.graph-host')!.getBoundingClientRect();
    return [...document.querySelectorAll<SVGGElement>('[data-node-id]')]
      .filter((e) => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && r.top > host.top + 20 && r.bottom < host.bottom - 20 && r.left > host.left + 20 && r.right < host.right - 340;
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
  return node;
}

/** The files under `dir`, relative, sorted. */
function listing(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map((f) => f.split(path.sep).join('/')).sort();
}

/** The first file named `name` under `dir` whose parent directory's name matches `parent`. */
function findFile(dir: string, name: string, parent: RegExp): string | undefined {
  return listing(dir)
    .map((f) => path.join(dir, f))
    .find((f) => path.basename(f) === name && parent.test(path.basename(path.dirname(f))));
}

describe('VS Code end-to-end (code-server + chromium)', function () {
  this.timeout(600_000);
  let win: VSCodeWindow | undefined;
  let workspace: string;
  let page: Page;

  before(async function () {
    for (const m of ['resnet50', 'maskrcnn_resnet50_fpn'])
      if (!fs.existsSync(path.join(MODELS_DIR, `${m}.onnx`))) {
        console.log(`    (skipped: ${MODELS_DIR}/${m}.onnx not found)`);
        this.skip();
      }
    win = await openVSCode({
      vsix: vsix(),
      settings: { 'security.workspace.trust.enabled': false, 'ait.defaultTarget': 'cuda:sm90' },
      populate: (ws) => {
        for (const [dir, model] of [
          ['classify', 'resnet50'],
          ['detect', 'maskrcnn_resnet50_fpn'],
        ]) {
          fs.mkdirSync(path.join(ws, dir), { recursive: true });
          fs.copyFileSync(path.join(MODELS_DIR, `${model}.onnx`), path.join(ws, dir, `${model}.onnx`));
        }
        // a model whose Loop the GPU does not run (a mask paste that resizes with nearest: not PasteMasks)
        fs.mkdirSync(path.join(ws, 'loop'), { recursive: true });
        fs.writeFileSync(
          path.join(ws, 'loop', 'paste_nearest.onnx'),
          buildModel(pasteMasksLoopModel({ height: 20, width: 24, maskH: 7, maskW: 9, variant: 'nearest' })),
        );
        // A small model whose third conv leaves the fp16 range, and onnxruntime-node (the local verify's reference)
        // installed in the workspace, where the extension looks for it beside the model.
        fs.mkdirSync(path.join(ws, 'verify'), { recursive: true });
        fs.writeFileSync(path.join(ws, 'verify', 'chain.onnx'), buildModel(overflowChain()));
        fs.mkdirSync(path.join(ws, 'node_modules'), { recursive: true });
        fs.symlinkSync(path.join(REPO_ROOT, 'node_modules', 'onnxruntime-node'), path.join(ws, 'node_modules', 'onnxruntime-node'), 'dir');
      },
      ready: { explorerRow: 'classify', statusBar: 'cuda:sm90' },
      artifacts: ARTIFACTS,
      lap,
    });
    ({ workspace, page } = win);
  });

  after(async function () {
    await win?.close();
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
    await checkNodeDetails(frame, graphJson);
    await page.screenshot({ path: path.join(ARTIFACTS, 'resnet50-details.png') });

    // The run is recorded and the status bar shows the target.
    assert.ok(await page.locator('.statusbar-item', { hasText: 'cuda:sm90' }).isVisible(), 'the status bar shows the target');
  });

  it('compiles Mask R-CNN whole, and shows the unsupported nodes of a model with a Loop in the Problems panel, by node name', async () => {
    const graph = path.join(workspace, 'build', 'maskrcnn_resnet50_fpn', 'graph.json');
    const since = Date.now();
    await runCommand(page, 'AIT: Compile Model');
    await answerQuickPick(page, 'Model to compile', 'maskrcnn_resnet50_fpn.onnx');
    await answerQuickPick(page, 'target');
    await answerQuickPick(page, 'batch range');
    await graphFrame(page, 180_000, 'maskrcnn_resnet50_fpn');
    lap('compile-and-show-maskrcnn', since);
    const unsupportedOf = (file: string) =>
      (JSON.parse(fs.readFileSync(file, 'utf8')).nodes as (GraphNode & { status?: { supported: boolean } })[]).filter(
        (n) => n.status && !n.status.supported,
      );
    // its mask-paste Loop is PasteMasks (passes/paste-masks.ts): every node runs on the GPU
    assert.deepEqual(unsupportedOf(graph), []);

    // a mask-paste Loop that resizes with nearest stays a Loop: the GPU does not run it
    const loopGraph = path.join(workspace, 'build', 'paste_nearest', 'graph.json');
    await runCommand(page, 'AIT: Compile Model');
    await answerQuickPick(page, 'Model to compile', 'paste_nearest.onnx');
    await answerQuickPick(page, 'target');
    await answerQuickPick(page, 'batch range');
    await graphFrame(page, 180_000, 'paste_nearest');
    const unsupported = unsupportedOf(loopGraph);
    assert.ok(unsupported.length > 0, 'the Loop cannot run on the GPU');

    await runCommand(page, 'View: Focus Problems');
    const rows = page.locator('.markers-panel .monaco-list-row');
    await rows.first().waitFor({ state: 'visible', timeout: 30_000 });
    await page.waitForTimeout(500);
    const text = (await page.locator('.markers-panel').innerText()).replace(/\s+/g, ' ');
    await page.screenshot({ path: path.join(ARTIFACTS, 'loop-problems.png') });
    assert.match(text, /paste_nearest\.onnx/, 'the entries belong to the model file');
    assert.match(text, /op\.unsupported/);
    const first = unsupported[0];
    assert.ok(text.includes(first.name), `Problems names the unsupported node ${first.name}: ${text.slice(0, 500)}`);
  });

  it('verifies a small model against the reference on this machine and shows the per-node result', async () => {
    const since = Date.now();
    await runCommand(page, 'AIT: Verify Against Reference');
    await answerQuickPick(page, 'Model to verify', 'chain.onnx');
    // The first problem, named by node, in a notification.
    const toast = await notification(page, /chain\.onnx \(this machine\): first fp16 overflow at/, 60_000);
    const frame = await graphFrame(page, 60_000, 'chain');
    lap('verify-chain', since);

    // The report file beside the model: every node's error, the first overflow at the third conv.
    const reportFile = path.join(workspace, 'verify', 'ait-verify', 'chain', 'verify-per-node.json');
    assert.ok(fs.existsSync(reportFile), `the verify wrote ${reportFile}`);
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as PerNodeReport;
    assert.equal(report.reference.kind, 'onnxruntime-node');
    const overflow = report.firstOverflow!;
    assert.equal(overflow?.name, '/block3/conv/Conv');
    assert.ok(toast.includes(`${overflow.id} '/block3/conv/Conv'`), toast);
    const compared = report.nodes.filter((n) => n.relativeL2 !== undefined);
    assert.ok(compared.length >= 3, `every conv is compared: ${JSON.stringify(report.nodes)}`);

    // The graph opens with the error profile: the overflowing node's details show its errors.
    await frame.click(`[data-node-id="${overflow.id}"]`);
    await frame.locator('.details header').waitFor({ state: 'visible', timeout: 10_000 });
    const details = (await frame.locator('.details').innerText()).replace(/\s+/g, ' ');
    await page.screenshot({ path: path.join(ARTIFACTS, 'verify-graph.png') });
    assert.match(details, /relative L2 error/, details.slice(0, 800));
    assert.match(details, /values beyond the fp16 range/, details.slice(0, 800));

    // Problems: the overflow, by node name, on the model file.
    await runCommand(page, 'View: Focus Problems');
    // Mask R-CNN's problems are listed too: filter on the node's name.
    const filter = page.locator('.panel .viewpane-filter input').first();
    await filter.waitFor({ state: 'visible', timeout: 10_000 });
    await filter.fill('block3');
    await page.locator('.markers-panel .monaco-list-row', { hasText: 'block3' }).first().waitFor({ state: 'visible', timeout: 30_000 });
    const problems = (await page.locator('.markers-panel').innerText()).replace(/\s+/g, ' ');
    await page.screenshot({ path: path.join(ARTIFACTS, 'verify-problems.png') });
    assert.match(problems, /chain\.onnx/);
    assert.match(problems, /verify\.fp16-overflow/);
    assert.ok(problems.includes(`first fp16 overflow at node ${overflow.id} (conv2d '/block3/conv/Conv'`), problems.slice(0, 800));

    // The log: the per-node report's summary (the nodes compared, the first overflow).
    await runCommand(page, 'AIT: Show Log');
    const log = page.locator('.output-view .view-lines');
    await log.filter({ hasText: 'first fp16 overflow' }).first().waitFor({ state: 'visible', timeout: 30_000 });
    const logText = (await log.innerText()).replace(/\s+/g, ' ');
    await page.screenshot({ path: path.join(ARTIFACTS, 'verify-log.png') });
    assert.ok(logText.includes(`first fp16 overflow: ${overflow.id} conv2d '/block3/conv/Conv'`), logText.slice(-800));
  });
});

describe('VS Code end-to-end, untrusted workspace (Restricted Mode)', function () {
  this.timeout(600_000);
  const artifacts = path.join(ARTIFACTS, 'untrusted');
  let win: VSCodeWindow | undefined;
  let workspace: string;
  let page: Page;
  let files: string[];

  before(async function () {
    win = await openVSCode({
      vsix: vsix(),
      workspaceTrust: true,
      settings: { ...UNTRUSTED_SETTINGS, 'ait.defaultTarget': 'cuda:sm90' },
      populate: (ws) => fs.copyFileSync(EXAMPLE_MODEL, path.join(ws, 'resnet50.onnx')),
      ready: { explorerRow: 'resnet50.onnx', statusBar: 'cuda:sm90' },
      artifacts,
      lap: (name, since) => lap(`untrusted:${name}`, since),
    });
    ({ workspace, page } = win);
    // The folder is open in Restricted Mode, and no modal asks to trust it (without startupPrompt: 'never' one would
    // block every click).
    await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await page.locator('.monaco-dialog-modal-block').count(), 0, 'no dialog asks to trust the folder');
    files = listing(workspace);
  });

  after(async function () {
    await win?.close();
  });

  it('shows the graph of an .onnx model in the AIT Graph editor', async () => {
    const since = Date.now();
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'resnet50.onnx' }).click();
    // The custom editor reads the model into the extension's storage: "resnet50-<hash of the path> — graph".
    const frame = await graphFrame(page, 120_000, /^resnet50-[0-9a-f]{10} — graph$/);
    lap('untrusted:show-resnet50', since);
    await page.locator('.tab.active', { hasText: 'resnet50.onnx' }).waitFor({ state: 'visible', timeout: 10_000 });
    const graphJson = findFile(win!.userData, 'graph.json', /^resnet50-[0-9a-f]{10}$/);
    assert.ok(graphJson, `the AIT Graph editor wrote a graph.json under ${win!.userData}`);
    await checkNodeDetails(frame, graphJson);
  });

  it('refuses AIT: Compile Model with the Restricted Mode warning and writes nothing into the workspace', async () => {
    await runCommand(page, 'AIT: Compile Model');
    const text = await notification(page, 'is disabled because this workspace is not trusted (Restricted Mode)');
    assert.ok(text.includes(untrustedMessage('ait.compileModel')), `the warning explains why: ${text}`);
    // Nothing asks for a model or a target, and no build directory appears.
    await page.waitForTimeout(2_000);
    assert.equal(await page.locator('.quick-input-widget').isVisible(), false, 'no quick pick after the refusal');
    assert.ok(!fs.existsSync(path.join(workspace, 'build')), 'no build directory in the workspace');
    assert.deepEqual(listing(workspace), files, 'the workspace holds the same files as before');
  });
});
