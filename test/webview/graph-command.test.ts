/** `ait graph`: profile checks and the self-contained page (no network references, safe embedding). */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Diagnostic } from '../../compiler/diagnostics';
import { CompileError } from '../../compiler/diagnostics';
import { graphPageHtml, loadProfile } from '../../compiler/cli/graph-command';
import type { GraphJson } from '../../webview/contract';

const graph: GraphJson = {
  format: 'ait-graph',
  version: 1,
  model: { name: 'tiny', producer: { name: 't', version: '0' }, irVersion: 10, opsets: { '': 18 }, weights: 'none' },
  symbols: [],
  removed: [],
  name: 'g',
  inputs: ['x'],
  outputs: ['y'],
  tensors: {},
  nodes: [
    {
      id: 'n0',
      op: 'Relu',
      name: '</script><script>alert(1)</script>',
      inputs: ['x'],
      outputs: ['y'],
      attrs: {},
      sourceNodes: [],
      scope: [],
    },
  ],
};

function writeTmp(name: string, content: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-graph-cmd-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('ait graph', () => {
  it('warns about profile ops that are not graph nodes, with the file and node id', () => {
    const file = writeTmp('p.json', {
      format: 'ait-profile',
      version: 1,
      graph: { model: 'other' },
      gpu: { name: 'x' },
      date: '',
      runs: 1,
      batch: 1,
      ops: { n0: { meanMs: 1 }, n99: { meanMs: 2 } },
    });
    const diagnostics: Diagnostic[] = [];
    const p = loadProfile(file, graph, diagnostics);
    assert.equal(p.name, 'p.json');
    assert.deepEqual(
      diagnostics.map((d) => [d.code, d.location?.nodeId]),
      [
        ['profile.other-model', undefined],
        ['profile.unknown-node', 'n99'],
      ],
    );
    assert.equal(diagnostics[1].location?.file, file);
  });

  it('rejects files that are not profiles, and negative times', () => {
    const notProfile = writeTmp('g.json', graph);
    assert.throws(
      () => loadProfile(notProfile, graph, []),
      (e: unknown) => e instanceof CompileError && e.diagnostics[0].code === 'profile.bad-format',
    );
    const negative = writeTmp('n.json', {
      format: 'ait-profile',
      version: 1,
      graph: { model: 'tiny' },
      gpu: { name: 'x' },
      date: '',
      runs: 1,
      batch: 1,
      ops: { n0: { meanMs: -1 } },
    });
    assert.throws(
      () => loadProfile(negative, graph, []),
      (e: unknown) => e instanceof CompileError && e.diagnostics[0].location?.nodeId === 'n0',
    );
  });

  it('embeds data so that no node name can close the script block, and references nothing outside', () => {
    const html = graphPageHtml({ graph, profiles: [] }, { js: 'var s = "</script>";\n//# sourceMappingURL=webview.js.map', css: 'body{}' });
    assert.equal(html.match(/<\/script>/g)!.length, 2, 'only the two script blocks close');
    assert.ok(!html.includes('sourceMappingURL'));
    assert.ok(!/(src|href)="https?:/.test(html));
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
    const json = /<script type="application\/json" id="ait-data">(.*?)<\/script>/s.exec(html)![1];
    assert.equal(JSON.parse(json).graph.nodes[0].name, graph.nodes[0].name);
  });
});
