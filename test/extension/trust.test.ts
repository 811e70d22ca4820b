/**
 * Workspace Trust: in an untrusted workspace the commands that compile or reach a remote host refuse with an
 * explanation and touch nothing; trusted, they run. package.json declares the limited support, the restricted
 * settings and the `isWorkspaceTrusted` menu conditions for exactly those commands.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../compiler/compile';
import { compileModelCommand } from '../../extension/commands/compile-model';
import { addRemoteHostCommand, buildAndBenchmarkCommand, checkRemoteHostCommand } from '../../extension/commands/remote';
import { TRUSTED_COMMANDS, untrustedMessage, type TrustedCommandId } from '../../extension/commands/trust';
import type { CompileRunner } from '../../extension/compile/service';
import { buildModel, input, nodeModel } from '../helpers/onnx-builder';
import { fakeContext, REPO_ROOT } from './fakes';

/** The real compiler, in-process (the worker's bundle is not needed to see what a compile writes). */
const inProcessCompiler = (): CompileRunner & { calls: number } => {
  const runner = {
    calls: 0,
    compile: async (r: { file: string; out: string; target: string; batch?: number }) => {
      runner.calls++;
      const result = compileModel(r.file, { out: r.out, target: r.target, batch: r.batch });
      return { kind: 'done' as const, result };
    },
  };
  return runner;
};

/** Every file under `dir`, relative, sorted. */
function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath ?? d.path, d.name)))
    .sort();
}

describe('Workspace Trust in the extension', () => {
  let tmp: string;
  let model: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ext-trust-'));
    model = path.join(tmp, 'relu.onnx');
    fs.writeFileSync(model, buildModel(nodeModel('Relu', [input('float32', [1, 4])])));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('untrusted: Compile Model refuses with the explanation, asks nothing and writes nothing', async () => {
    const compiler = inProcessCompiler();
    const ctx = fakeContext({ trusted: false, answers: ['', ''], compiler, workspaceFolder: tmp, models: [model] });
    assert.equal(await compileModelCommand(ctx), undefined);
    assert.equal(compiler.calls, 0);
    assert.deepEqual(ctx.ui.messages, [{ level: 'warn', text: untrustedMessage('ait.compileModel') }]);
    assert.match(ctx.ui.messages[0].text, /Compile Model is disabled because this workspace is not trusted.*Viewing graphs still works/);
    assert.deepEqual(ctx.ui.picks, [], 'no target or batch pick was shown');
    assert.deepEqual(listFiles(tmp), ['relu.onnx'], 'nothing was written into the workspace');
    assert.deepEqual([ctx.runs.list(), ctx.recorded.graphsShown, ctx.recorded.jobs], [[], [], []]);
    assert.equal(ctx.workspaceState.get('ait.compileChoices'), undefined);
  });

  it('trusted (or once trust is granted): Compile Model compiles into the workspace', async () => {
    const compiler = inProcessCompiler();
    const ctx = fakeContext({ trusted: false, answers: ['', ''], compiler, workspaceFolder: tmp, models: [model] });
    await compileModelCommand(ctx);
    ctx.trust.isTrusted = true; // onDidGrantWorkspaceTrust: the same context, now trusted
    const r = await compileModelCommand(ctx);
    assert.equal(r?.outcome.kind, 'done');
    assert.equal(compiler.calls, 1);
    assert.ok(fs.existsSync(path.join(tmp, 'build', 'relu', 'graph.json')));
    assert.deepEqual(ctx.recorded.graphsShown, [path.join(tmp, 'build', 'relu')]);
    assert.equal(ctx.runs.list().length, 1);
  });

  it('untrusted: Build and Benchmark, Add Remote Host and Check Remote Host refuse before any prompt or connection', async () => {
    fs.writeFileSync(path.join(tmp, 'Makefile'), 'all:\n');
    let opened = 0;
    const ctx = fakeContext({
      trusted: false,
      answers: ['1', 'h', 'h'],
      settings: { remotes: [{ name: 'h', host: 'me@h' }] },
      remotes: {
        open: async () => {
          opened++;
          throw new Error('must not connect');
        },
      },
    });
    assert.equal(await buildAndBenchmarkCommand(ctx, tmp, 'h'), undefined);
    assert.equal(await addRemoteHostCommand(ctx), undefined);
    assert.equal(await checkRemoteHostCommand(ctx, 'h'), undefined);
    assert.equal(opened, 0);
    assert.deepEqual([ctx.ui.picks, ctx.ui.inputs], [[], []]);
    assert.deepEqual(ctx.recorded.settings.remotes, [{ name: 'h', host: 'me@h' }], 'ait.remotes unchanged');
    assert.deepEqual(listFiles(tmp), ['Makefile', 'relu.onnx'], 'no bench.json');
    assert.deepEqual(
      ctx.ui.messages.map((m) => m.text),
      (['ait.buildAndBenchmark', 'ait.addRemoteHost', 'ait.checkRemoteHost'] as TrustedCommandId[]).map(untrustedMessage),
    );
  });

  describe('package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));

    it('supports untrusted workspaces in a limited way, with the path and host settings restricted', () => {
      const u = pkg.capabilities.untrustedWorkspaces;
      assert.equal(u.supported, 'limited');
      assert.match(u.description, /graphs/);
      assert.deepEqual([...u.restrictedConfigurations].sort(), [
        'ait.cutlassDir',
        'ait.outputDirectory',
        'ait.remotes',
        'ait.sshConfig',
        'ait.verifyTorchModel', // Python that the host runs
      ]);
      // Every setting is either restricted or known to be harmless from a workspace.
      const harmless = ['ait.defaultTarget', 'ait.benchBatchSizes', 'ait.benchInstances', 'ait.benchThreads', 'ait.benchDuration'];
      assert.deepEqual(
        Object.keys(pkg.contributes.configuration.properties).sort(),
        [...u.restrictedConfigurations, ...harmless].sort(),
        'a new setting must be classified: restricted (a path, a command, a host) or harmless',
      );
    });

    it('menus offer the trust-requiring commands only in a trusted workspace; graph commands everywhere', () => {
      const menus = pkg.contributes.menus as Record<string, { command: string; when?: string }[]>;
      const seen = new Set<string>();
      for (const [menu, entries] of Object.entries(menus)) {
        if (menu === 'commandPalette') continue; // the palette keeps them: running one there explains why it is disabled
        for (const e of entries) {
          const needsTrust = e.command in TRUSTED_COMMANDS;
          if (needsTrust) seen.add(e.command);
          assert.equal(/\bisWorkspaceTrusted\b/.test(e.when ?? ''), needsTrust, `${menu}: ${e.command} when '${e.when}'`);
        }
      }
      assert.deepEqual([...seen].sort(), Object.keys(TRUSTED_COMMANDS).sort());
      const palette = menus.commandPalette.map((e) => e.command);
      for (const id of Object.keys(TRUSTED_COMMANDS)) assert.ok(!palette.includes(id), `${id} stays in the command palette`);
      const titles = Object.fromEntries(
        (pkg.contributes.commands as { command: string; title: string }[]).map((c) => [c.command, c.title]),
      );
      for (const [id, { title }] of Object.entries(TRUSTED_COMMANDS)) assert.equal(titles[id], title, `${id}'s title`);
    });
  });
});
