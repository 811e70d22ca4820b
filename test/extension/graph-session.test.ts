import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { contentSecurityPolicy, graphWebviewHtml } from '../../extension/graph-html';
import { GraphSession, type GraphSessionHost } from '../../extension/graph-session';
import type { HostMessage } from '../../webview/protocol';
import { sharedModel } from '../helpers/models';
import { buildDist, fakeContext, REPO_ROOT } from './fakes';

describe('extension graph webview host', () => {
  it('serves the bundle under a strict CSP: nothing by default, the script by nonce, workers from blob:', () => {
    const html = graphWebviewHtml(
      { cspSource: 'https://x.vscode-cdn.net', scriptUri: 'https://x/dist/webview.js', styleUri: 'https://x/dist/webview.css' },
      'm — graph',
      'N0nce',
    );
    const csp = /content="([^"]+)"/.exec(html)![1];
    assert.equal(csp, contentSecurityPolicy('https://x.vscode-cdn.net', 'N0nce'));
    assert.match(csp, /^default-src 'none'; script-src 'nonce-N0nce';/);
    assert.match(csp, /worker-src blob:/);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe/);
    assert.deepEqual(html.match(/<script[^>]*>/g), ['<script nonce="N0nce" src="https://x/dist/webview.js">']);
  });

  describe('session', () => {
    let tmp: string | undefined;
    let graphDir: string;
    before(function () {
      const model = sharedModel('resnet50', this);
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ext-graph-'));
      graphDir = path.join(tmp, 'resnet50');
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'compiler', 'cli', 'main.ts'), 'compile', model, '--out', graphDir],
        { encoding: 'utf8' },
      );
      assert.ok(fs.existsSync(path.join(graphDir, 'graph.json')), r.stderr);
    });
    after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true })); // tmp stays unset when the model is absent (skipped)

    function host() {
      const posted: HostMessage[] = [];
      const notes: string[] = [];
      const opened: string[] = [];
      const h: GraphSessionHost = {
        post: (m) => void posted.push(m),
        openFile: async (f, line) => void opened.push(`${f}:${line}`),
        saveFile: async (p, bytes) => (fs.writeFileSync(p, bytes), p),
        info: (m) => void notes.push(m),
        error: (m) => void notes.push(`error ${m}`),
      };
      return { h, posted, notes, opened };
    }

    it('answers ready with the graph, and re-selects the node of a restored panel', async () => {
      const { h, posted } = host();
      const session = new GraphSession(graphDir, h, fakeContext({}).log, {
        graphPath: path.join(graphDir, 'graph.json'),
        selectedNodeId: 'n3',
      });
      await session.handle({ type: 'ready' });
      assert.deepEqual(
        posted.map((m) => m.type),
        ['load', 'selectNode'],
      );
      assert.equal(posted[0].type === 'load' && posted[0].graph.model.name, 'resnet50');
      await session.handle({ type: 'nodeSelected', nodeId: 'n7' });
      await session.handle({ type: 'ready' }); // the webview was re-created (hidden and shown again)
      assert.deepEqual(posted[3], { type: 'selectNode', nodeId: 'n7' });
    });

    it('sends profiles of the directory with the graph and when one is written', async () => {
      const { h, posted } = host();
      const session = new GraphSession(graphDir, h, fakeContext({}).log);
      const profile = path.join(graphDir, 'profile-h200.json');
      fs.writeFileSync(
        profile,
        JSON.stringify({ format: 'ait-profile', version: 1, graph: { model: 'resnet50' }, ops: { n0: { meanMs: 0.05 } } }),
      );
      try {
        session.profileChanged(profile);
        assert.equal(posted[0].type, 'addProfile');
        await session.handle({ type: 'ready' });
        assert.equal(posted[1].type === 'load' && posted[1].profiles.length, 1);
      } finally {
        fs.rmSync(profile);
      }
    });

    it('open source: opens the generated file at its line, or says that none is generated yet', async () => {
      const { h, notes, opened } = host();
      const session = new GraphSession(graphDir, h, fakeContext({}).log);
      await session.handle({ type: 'openSource', nodeId: 'n0' });
      assert.match(notes[0], /n0 has no generated source yet/);
      fs.writeFileSync(path.join(graphDir, 'n0.cu'), '// n0\n');
      await session.handle({ type: 'openSource', nodeId: 'n0', file: 'n0.cu', line: 1 });
      assert.deepEqual(opened, [`${path.join(graphDir, 'n0.cu')}:1`]);
    });

    it('open source and save: a file named by graph.json or the page stays inside the output directory', async () => {
      const { h, notes, opened } = host();
      const session = new GraphSession(graphDir, h, fakeContext({}).log);
      fs.symlinkSync('/etc/hostname', path.join(graphDir, 'escape.cu'));
      try {
        for (const file of ['/etc/passwd', '../../../etc/passwd', 'src/../../x.cu', 'escape.cu'])
          await session.handle({ type: 'openSource', nodeId: 'n0', file, line: 1 });
      } finally {
        fs.rmSync(path.join(graphDir, 'escape.cu'));
      }
      assert.deepEqual(opened, []);
      assert.equal(notes.length, 4);
      for (const n of notes) assert.match(n, /^error Not opening the source of n0: /);
      const saved: string[] = [];
      const saving = new GraphSession(graphDir, { ...h, saveFile: async (p) => (saved.push(p), undefined) }, fakeContext({}).log);
      await saving.handle({ type: 'saveFile', fileName: '../../../tmp/evil.svg', mime: 'image/svg+xml', data: '<svg/>', encoding: 'utf8' });
      assert.deepEqual(saved, [path.join(graphDir, 'evil.svg')]);
    });
  });

  it('dist/extension.js loads no native module (ssh2 falls back to pure JS)', function () {
    buildDist();
    // Loads the bundle with a stand-in for the vscode module and records every .node file node is asked to load.
    const probe = `
      const Module = require('module');
      const loaded = [];
      const stub = () => new Proxy(function () {}, { get: (_t, k) => (k === Symbol.toPrimitive ? () => 0 : stub()), construct: () => stub(), apply: () => stub() });
      const origLoad = Module._load;
      const vscode = Object.fromEntries(['DiagnosticSeverity', 'StatusBarAlignment', 'ProgressLocation', 'ConfigurationTarget', 'ViewColumn', 'Uri', 'EventEmitter', 'TreeItem', 'TreeItemCollapsibleState', 'ThemeIcon', 'window', 'workspace', 'commands', 'languages'].map((k) => [k, stub()]));
      Module._load = function (request, ...rest) { return request === 'vscode' ? vscode : origLoad.call(this, request, ...rest); };
      const origNode = Module._extensions['.node'];
      Module._extensions['.node'] = (m, file) => { loaded.push(file); return origNode(m, file); };
      require(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'extension.js'))});
    `;
    const r = spawnSync(process.execPath, ['-e', `${probe}; process.stdout.write(JSON.stringify(loaded))`], {
      encoding: 'utf8',
      cwd: REPO_ROOT,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
    const bundle = fs.readFileSync(path.join(REPO_ROOT, 'dist', 'extension.js'), 'utf8');
    assert.ok(bundle.includes('native module cpu-features is not loaded in the extension host'));
  });
});
