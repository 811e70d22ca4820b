/**
 * `ait graph` and the graph page with hostile or malformed input (issue #12): --theme is one of its values and
 * everything put into the page is escaped; a graph.json without a field the view needs is one error naming the file
 * and the field (CLI and extension, through loadGraphJson), and the page, given one anyway, says so instead of staying
 * blank; --html that cannot be written is one error naming it.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { CompileError } from '../../compiler/diagnostics';
import { graphPageHtml, loadGraphJson } from '../../compiler/cli/graph-command';
import type { GraphJson } from '../../webview/contract';
import { graphJsonProblem } from '../../webview/validate';
import { ait, buildDist, launchChromium, REPO_ROOT } from './browser';

const HOSTILE = '"><img src=x onerror="window.__injected=1">';

function graph(): GraphJson {
  return {
    format: 'ait-graph',
    version: 1,
    model: { name: `tiny</title>${HOSTILE}`, producer: { name: 't', version: '0' }, irVersion: 10, opsets: { '': 18 }, weights: 'none' },
    symbols: [],
    removed: [],
    name: 'g',
    inputs: ['x'],
    outputs: ['y'],
    tensors: { x: { dtype: 'float16', shape: [1, 4], kind: 'input', maxBytes: 8 } },
    nodes: [{ id: 'n0', op: 'Relu', name: HOSTILE, inputs: ['x'], outputs: ['y'], attrs: {}, sourceNodes: [], scope: [] }],
  };
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ait-graph-robust-'));
}

function writeGraph(content: unknown): string {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'graph.json'), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

/** The one line of a failed `ait graph`, asserting no stack and no page written. */
function failure(args: string[]): string {
  const r = ait(args);
  assert.notEqual(r.status, 0, r.output);
  assert.doesNotMatch(r.output, /^\s+at /m, 'no stack trace');
  const lines = r.output.split('\n').filter((l) => l.trim());
  assert.equal(lines.length, 1, r.output);
  return lines[0];
}

describe('graph.json validation (one validator for the CLI, the extension and the webview)', () => {
  const without = (mutate: (g: Record<string, unknown>) => void) => {
    const g = graph() as unknown as Record<string, unknown>;
    mutate(g);
    return g;
  };
  const nodeWithout = (field: string) => without((g) => delete (g.nodes as Record<string, unknown>[])[0][field]);

  it('names the first missing or mistyped field', () => {
    assert.equal(graphJsonProblem(graph()), undefined);
    assert.equal(graphJsonProblem(without((g) => delete g.model)), "field 'model' is missing");
    assert.equal(
      graphJsonProblem(without((g) => ((g.model as Record<string, unknown>).name = 3))),
      "model: field 'name' is a number, not a string",
    );
    assert.equal(graphJsonProblem(nodeWithout('outputs')), "nodes[0] 'n0': field 'outputs' is missing");
    assert.equal(graphJsonProblem(nodeWithout('id')), "nodes[0]: field 'id' is missing");
    assert.equal(graphJsonProblem(without((g) => ((g.nodes as unknown[])[0] = null))), 'nodes[0] is null, not an object');
    assert.equal(
      graphJsonProblem(without((g) => (g.nodes as unknown[]).push({ ...(g.nodes as object[])[0] }))),
      "nodes[1] 'n0': node id 'n0' is used twice",
    );
    assert.equal(graphJsonProblem(without((g) => (g.nodes = {}))), "field 'nodes' is an object, not an array");
    assert.equal(graphJsonProblem([]), 'the file holds an array, not a graph.json object');
    assert.equal(graphJsonProblem({ format: 'x' }), 'not an ait-graph file (format: "x")');
  });

  it('loadGraphJson (ait graph, the extension panel) throws one diagnostic naming the file and the field', () => {
    const dir = writeGraph(without((g) => delete g.model));
    assert.throws(
      () => loadGraphJson(dir),
      (e: unknown) =>
        e instanceof CompileError &&
        e.diagnostics.length === 1 &&
        e.diagnostics[0].code === 'graph.bad-field' &&
        e.diagnostics[0].message === "field 'model' is missing" &&
        e.diagnostics[0].location?.file === path.join(dir, 'graph.json'),
    );
  });
});

describe('ait graph with hostile options and files', function () {
  this.timeout(120_000);
  let goodDir: string;
  before(() => {
    buildDist();
    goodDir = writeGraph(graph());
  });

  it('refuses a --theme that is not light, dark or high-contrast (it was put into <body class>), writing nothing', () => {
    const html = path.join(tmpDir(), 'page.html');
    assert.equal(
      failure(['graph', goodDir, '--html', html, '--theme', HOSTILE]),
      `error [cli.bad-option]: option '--theme <theme>' argument '${HOSTILE}' is invalid. Allowed choices are light, dark, high-contrast. (see ait --help)`,
    );
    assert.ok(!fs.existsSync(html));
    assert.throws(
      () => graphPageHtml({ graph: graph(), profiles: [] }, { js: '', css: '' }, HOSTILE),
      (e: unknown) => e instanceof CompileError && e.diagnostics[0].code === 'cli.bad-option',
    );
  });

  it('escapes the model name in the title and keeps every page string out of the markup', () => {
    const html = graphPageHtml({ graph: graph(), profiles: [] }, { js: '', css: '' }, 'dark');
    assert.match(html, /<body class="vscode-dark">/);
    const head = html.slice(0, html.indexOf('<script type="application/json"'));
    assert.ok(!head.includes('<img'), 'no element from the model name');
    assert.ok(
      head.includes('<title>tiny&lt;/title&gt;&quot;&gt;&lt;img src=x onerror=&quot;window.__injected=1&quot;&gt; — AIT graph</title>'),
    );
  });

  it('graph.json without model, or with a node missing outputs: one line naming the file and the field', () => {
    const noModel = writeGraph(
      (() => {
        const g = graph() as unknown as Record<string, unknown>;
        delete g.model;
        return g;
      })(),
    );
    assert.equal(
      failure(['graph', noModel, '--html', path.join(tmpDir(), 'a.html')]),
      `error [graph.bad-field] ${path.join(noModel, 'graph.json')}: field 'model' is missing`,
    );
    const g = graph();
    delete (g.nodes[0] as Partial<GraphJson['nodes'][0]>).outputs;
    const noOutputs = writeGraph(g);
    assert.equal(
      failure(['graph', noOutputs, '--html', path.join(tmpDir(), 'b.html')]),
      `error [graph.bad-field] ${path.join(noOutputs, 'graph.json')}: nodes[0] 'n0': field 'outputs' is missing`,
    );
    const notJson = writeGraph('{"format": "ait-graph", ');
    assert.match(
      failure(['graph', notJson, '--html', path.join(tmpDir(), 'c.html')]),
      /^error \[graph\.bad-json\] .*graph\.json: graph\.json is not valid JSON/,
    );
  });

  it('--html that is a directory, or under a file: one line naming it', () => {
    const dir = tmpDir();
    assert.equal(failure(['graph', goodDir, '--html', dir]), `error [graph.write-failed] ${dir}: cannot write the page: it is a directory`);
    const file = path.join(dir, 'plain.txt');
    fs.writeFileSync(file, 'x');
    const under = path.join(file, 'page.html');
    assert.match(
      failure(['graph', goodDir, '--html', under]),
      new RegExp(`^error \\[graph\\.write-failed\\] ${under.replace(/[.]/g, '\\.')}: cannot write the page: E(NOTDIR|EXIST)`),
    );
    assert.equal(fs.readFileSync(file, 'utf8'), 'x');
  });
});

describe('graph page in Chromium: hostile strings stay text, a malformed graph says so', function () {
  this.timeout(120_000);
  let browser: Browser;
  const bundle = () => ({
    js: fs.readFileSync(path.join(REPO_ROOT, 'dist', 'webview.js'), 'utf8'),
    css: fs.readFileSync(path.join(REPO_ROOT, 'dist', 'webview.css'), 'utf8'),
  });

  before(async function () {
    buildDist();
    browser = await launchChromium(this);
  });
  after(async () => browser?.close());

  async function open(html: string) {
    const file = path.join(tmpDir(), 'page.html');
    fs.writeFileSync(file, html);
    const page = await browser.newPage();
    const errors: string[] = [];
    const dialogs: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => void (dialogs.push(d.message()), d.dismiss()));
    await page.goto(`file://${file}`);
    return { page, errors, dialogs };
  }

  it('a model and node named with markup draw as text: no injected element runs', async () => {
    const { page, errors, dialogs } = await open(graphPageHtml({ graph: graph(), profiles: [] }, bundle(), 'light'));
    await page.waitForSelector('[data-node-id="n0"]', { timeout: 60_000 });
    assert.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __injected?: number }).__injected), undefined);
    assert.equal(await page.evaluate(() => document.body.className.includes('vscode-light')), true);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('a graph without model shows the reason instead of a blank page', async () => {
    const bad = graph() as unknown as Record<string, unknown>;
    delete bad.model;
    const { page, errors } = await open(graphPageHtml({ graph: bad as unknown as GraphJson, profiles: [] }, bundle()));
    await page.waitForSelector('.status.load-error', { timeout: 30_000 });
    assert.equal(await page.textContent('.status.load-error'), "Cannot show the graph: graph.json: field 'model' is missing");
    assert.deepEqual(errors, []);
    await page.close();
  });
});
