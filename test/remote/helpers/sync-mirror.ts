/**
 * The sync-mirror scenario, run through any transport (the host's files are on this machine in tests): a build
 * directory of one model is synced and built, edited, then reused for another model.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RemoteSession } from '../../../remote-agent/client';

/** Every path under `dir` ('/'-separated, directories with a trailing '/'), without following symlinks. */
export function treeOf(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs
    .readdirSync(path.join(dir, rel), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(`${p}/`, ...treeOf(dir, p));
    else out.push(p);
  }
  return out;
}

function model(dir: string, name: string, source: string, outside: string): void {
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true });
  fs.writeFileSync(path.join(dir, `${source}.c`), `int ${name}_value(void) { return 42; }\n`);
  fs.writeFileSync(
    path.join(dir, 'Makefile'),
    `all: lib${name}.so\nbuild/${source}.o: ${source}.c\n\tmkdir -p build && cc -fPIC -c $< -o $@\n` +
      `lib${name}.so: build/${source}.o\n\tcc -shared $^ -o $@\n\tln -sfn ${outside} tmp-link\n`,
  );
}

export async function syncMirrorScenario(session: RemoteSession): Promise<void> {
  const local = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-mirror-'));
  // What a symlink made by the build leads to, outside the build directory: must stay as it is.
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-mirror-outside-'));
  fs.writeFileSync(path.join(outside, 'keep.txt'), 'outside');
  model(local, 'first', 'a', outside);
  fs.writeFileSync(path.join(local, 'A.txt'), 'only in the first model\n');
  fs.mkdirSync(path.join(local, 'data'));
  fs.writeFileSync(path.join(local, 'data', 'x.bin'), 'x');
  const first = await session.sync(local);
  assert.deepEqual(first.removed, []);
  const built = await session.build(local, first, () => undefined);
  assert.equal(built.result.ok, true, JSON.stringify(built.result.diagnostics));
  const host = first.buildDir;
  assert.deepEqual(treeOf(host), ['A.txt', 'Makefile', 'a.c', 'build/', 'build/a.o', 'data/', 'data/x.bin', 'libfirst.so', 'tmp-link']);

  // The same model, a source edited and a file gone: that file goes, the build outputs stay for make.
  fs.appendFileSync(path.join(local, 'a.c'), '/* edited */\n');
  fs.rmSync(path.join(local, 'data'), { recursive: true });
  const edited = await session.sync(local);
  assert.deepEqual(edited.uploaded, ['a.c']);
  assert.deepEqual(edited.removed, ['data/x.bin']);
  assert.deepEqual(treeOf(host), ['A.txt', 'Makefile', 'a.c', 'build/', 'build/a.o', 'libfirst.so', 'tmp-link']);

  // Another model in the same directory: no file of the first one and none of its build outputs stay.
  model(local, 'second', 'b', outside);
  const second = await session.sync(local);
  assert.equal(second.buildDir, host);
  assert.deepEqual(second.removed, ['A.txt', 'a.c', 'build/a.o', 'libfirst.so', 'tmp-link']);
  assert.deepEqual(treeOf(host), ['Makefile', 'b.c']);
  assert.deepEqual(treeOf(outside), ['keep.txt'], 'the symlink was removed, not what it led to');
  const rebuilt = await session.build(local, second, () => undefined);
  assert.equal(rebuilt.result.ok, true, JSON.stringify(rebuilt.result.diagnostics));
  assert.deepEqual(
    treeOf(host).filter((p) => p.endsWith('.so')),
    ['libsecond.so'],
  );
}
