/**
 * The output-directory policy (compiler/output-dir.ts): compile never deletes what it did not create, a failed or
 * cancelled compile leaves the previous output intact, and a killed compile's staging directory is cleaned up at
 * the next compile into the same place.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../compiler/compile';
import { CompileError } from '../../compiler/diagnostics';
import { BUILD_MARKER, STAGING_MARKER, removeStagingDirs } from '../../compiler/output-dir';
import { buildModel } from '../helpers/onnx-builder';

const CLI = path.resolve('dist/cli.js');
const RESNET = path.resolve('examples/resnet50/resnet50.onnx');

function writeModel(file: string, op = 'Relu'): string {
  fs.writeFileSync(
    file,
    buildModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 8] }],
      nodes: [{ op, inputs: ['x'], outputs: ['y'] }],
      outputs: ['y'],
    }),
  );
  return file;
}

function refusalCode(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CompileError, `a CompileError, got ${(e as Error).stack}`);
    return { code: e.diagnostics[0].code, message: e.diagnostics[0].message };
  }
  assert.fail('expected a refusal');
}

/** Every path under `dir` with its contents, to show nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out[path.relative(dir, full)] = e.isSymbolicLink() ? `-> ${fs.readlinkSync(full)}` : fs.readFileSync(full, 'base64');
    }
  };
  walk(dir);
  return out;
}

describe('output directory policy', () => {
  let tmp: string;
  let model: string;
  const cwd = process.cwd();
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-outdir-'));
    model = writeModel(path.join(tmp, 'relu.onnx'));
  });
  afterEach(() => process.chdir(cwd));

  it('refuses the file system root and the home directory before doing anything', () => {
    for (const out of ['/', os.homedir(), path.join(os.homedir(), '.')]) {
      const r = refusalCode(() => compileModel(model, { out, force: true }));
      assert.equal(r.code, 'output.forbidden', out);
    }
  });

  it('refuses the current directory and its parents, and keeps their files', () => {
    const work = path.join(tmp, 'work');
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(work, 'notes.txt'), 'mine');
    process.chdir(work);
    for (const out of ['.', '..', work])
      assert.equal(refusalCode(() => compileModel(model, { out, force: true })).code, 'output.forbidden', out);
    assert.equal(fs.readFileSync(path.join(work, 'notes.txt'), 'utf8'), 'mine');
  });

  it('refuses a non-empty directory it did not write, a file, and a symbolic link, changing nothing', () => {
    const mine = path.join(tmp, 'mine');
    fs.mkdirSync(path.join(mine, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(mine, 'sub', 'data.txt'), 'keep');
    const before = snapshot(tmp);
    const r = refusalCode(() => compileModel(model, { out: mine + '/', force: true }));
    assert.equal(r.code, 'output.not-ours');
    assert.match(r.message, /holds no earlier build \(no \.ait-build\.json\)/);
    fs.writeFileSync(path.join(tmp, 'some-file.txt'), 'text');
    const before2 = snapshot(tmp);
    assert.equal(
      refusalCode(() => compileModel(model, { out: path.join(tmp, 'some-file.txt'), force: true })).code,
      'output.not-a-directory',
    );
    fs.symlinkSync(mine, path.join(tmp, 'link'));
    assert.equal(refusalCode(() => compileModel(model, { out: path.join(tmp, 'link'), force: true })).code, 'output.symlink');
    assert.deepEqual(snapshot(tmp), { ...before2, link: `-> ${mine}` });
    assert.deepEqual(
      Object.fromEntries(Object.entries(snapshot(tmp)).filter(([k]) => k.startsWith('mine'))),
      Object.fromEntries(Object.entries(before).filter(([k]) => k.startsWith('mine'))),
    );
  });

  it('refuses a directory that holds the model being compiled', () => {
    const dir = path.join(tmp, 'models');
    fs.mkdirSync(dir);
    const inner = writeModel(path.join(dir, 'inner.onnx'));
    fs.writeFileSync(path.join(dir, BUILD_MARKER), JSON.stringify({ format: 'ait-build' }));
    assert.equal(refusalCode(() => compileModel(inner, { out: dir, force: true })).code, 'output.forbidden');
    assert.ok(fs.existsSync(inner));
  });

  it('refuses places it cannot create, with one error naming them (no endless mkdir)', () => {
    const r = refusalCode(() => compileModel(model, { out: '/proc/ait-out' }));
    assert.equal(r.code, 'output.unwritable');
    assert.match(r.message, /\/proc\/ait-out/);
    fs.writeFileSync(path.join(tmp, 'plain'), '');
    assert.equal(refusalCode(() => compileModel(model, { out: path.join(tmp, 'plain', 'sub') })).code, 'output.unwritable');
  });

  it('uses an empty directory; replaces an earlier build only with force, or at the default build path', () => {
    const out = path.join(tmp, 'out');
    fs.mkdirSync(out);
    compileModel(model, { out });
    const marker = JSON.parse(fs.readFileSync(path.join(out, BUILD_MARKER), 'utf8'));
    assert.equal(marker.format, 'ait-build');
    assert.equal(marker.model, 'relu');
    fs.writeFileSync(path.join(out, 'bench.json'), '{}'); // written later by a remote build: part of the build
    assert.equal(refusalCode(() => compileModel(model, { out })).code, 'output.exists');
    assert.ok(fs.existsSync(path.join(out, 'bench.json')));
    compileModel(model, { out, force: true });
    assert.equal(fs.existsSync(path.join(out, 'bench.json')), false);
    assert.deepEqual(fs.readdirSync(tmp).sort(), ['out', 'relu.onnx']);

    process.chdir(tmp);
    compileModel(model);
    compileModel(model); // build/<model>: the tool's own path
    assert.ok(fs.existsSync(path.join(tmp, 'build', 'relu', 'graph.json')));
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'build')), ['relu']);
  });

  it('a failed compile leaves the earlier build intact and puts its graph beside it; a good one clears that', () => {
    const out = path.join(tmp, 'out');
    compileModel(model, { out });
    const before = snapshot(out);
    const bad = writeModel(path.join(tmp, 'bad.onnx'), 'NoSuchOp');
    const r = compileModel(bad, { out, force: true });
    assert.equal(r.ok, false);
    assert.deepEqual(snapshot(out), before, 'the earlier build is unchanged');
    assert.equal(r.outDir, `${out}.failed`);
    assert.ok(r.diagnostics.some((d) => d.code === 'output.kept-previous'));
    assert.ok(JSON.parse(fs.readFileSync(path.join(out + '.failed', 'graph.json'), 'utf8')).nodes.length > 0);
    compileModel(model, { out, force: true });
    assert.equal(fs.existsSync(`${out}.failed`), false);
  });

  it('the CLI: --out onto a directory of user files exits non-zero with one line, and deletes nothing', function () {
    if (!fs.existsSync(CLI)) this.skip();
    const mine = path.join(tmp, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'a.txt'), 'a');
    const r = spawnSync(process.execPath, [CLI, 'compile', model, '--out', mine, '--force'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^error \[output\.not-ours\]/);
    assert.deepEqual(fs.readdirSync(mine), ['a.txt']);
  });

  it('a killed compile leaves its staging directory, and the next compile into the same place removes it', async function () {
    if (!fs.existsSync(CLI)) this.skip();
    this.timeout(120_000);
    const out = path.join(tmp, 'resnet');
    const child = spawn(process.execPath, [CLI, 'compile', RESNET, '--out', out], { stdio: 'ignore' });
    const staged = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const s = fs.readdirSync(tmp).find((n) => n.startsWith('resnet.tmp-'));
        if (s) {
          clearInterval(timer);
          resolve(s);
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        reject(new Error('the compile ended before it was killed'));
      });
    });
    await new Promise<void>((resolve) => {
      child.removeAllListeners('exit');
      child.on('exit', () => resolve());
      child.kill('SIGKILL');
    });
    assert.ok(fs.existsSync(path.join(tmp, staged, STAGING_MARKER)), 'the killed compile left its staging directory');
    // A look-alike that is not ours (no staging marker) and one of a live process stay.
    fs.mkdirSync(path.join(tmp, 'resnet.tmp-1-2'));
    fs.mkdirSync(path.join(tmp, `resnet.tmp-${process.pid}-3`));
    fs.writeFileSync(path.join(tmp, `resnet.tmp-${process.pid}-3`, STAGING_MARKER), '');
    compileModel(model, { out });
    assert.deepEqual(fs.readdirSync(tmp).sort(), ['relu.onnx', 'resnet', 'resnet.tmp-1-2', `resnet.tmp-${process.pid}-3`].sort());
    assert.deepEqual(removeStagingDirs(out, process.pid), [path.join(tmp, `resnet.tmp-${process.pid}-3`)]);
  });
});
