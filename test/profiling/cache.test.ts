import { strict as assert } from 'node:assert';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import initSqlJs from 'sql.js';
import { CompileError } from '../../compiler/diagnostics';
import {
  type DeviceKey,
  type Measurement,
  PROFILE_CACHE_SCHEMA_VERSION,
  defaultProfileCachePath,
  findSqlWasm,
  openProfileCache,
} from '../../compiler/profiling/cache';

const H200: DeviceKey = { gpu: 'NVIDIA H200', sms: 132, driver: '570.86.15', cuda: '12.8', cutlass: '4.7.0' };
const H100: DeviceKey = { gpu: 'NVIDIA H100 80GB HBM3', sms: 132, driver: '570.86.15', cuda: '12.8', cutlass: '4.7.0' };
const SIG = 'gemm sm90 m=1..256*197 n=768 k=768 f16 tnt bias+gelu';
const DAY = 86_400_000;

const ok = (candidate: string, batch: number, medianUs: number, signature = SIG): Measurement => ({
  signature,
  candidate,
  batch,
  status: 'ok',
  medianUs,
  config: { tile: [128, 128, 64], cluster: [2, 1, 1], schedule: 'cooperative' },
});

function tempFile(name = 'profiles.sqlite'): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ait-cache-')), name);
}

function cacheError(code: string, file: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof CompileError, String(e));
    const d = e.diagnostics[0];
    assert.equal(d.code, code, d.message);
    assert.equal(d.location?.file, file);
    assert.ok(d.message.includes(file), d.message);
    return true;
  };
}

describe('profile cache', () => {
  it('keeps measurements across a reopen, each field as stored; a store replaces the same candidate and batch', async () => {
    const file = tempFile();
    const a = await openProfileCache(file);
    a.store(H200, [
      ok('cutlass3x_sm90_tensorop_h64x128x64_2x1x1', 1, 4.25),
      ok('cutlass3x_sm90_tensorop_h64x128x64_2x1x1', 64, 30.5),
      { signature: SIG, candidate: 'cutlass3x_sm90_bad', batch: 1, status: 'build-failed', message: 'ptxas: too many resources' },
    ]);
    assert.equal(fs.existsSync(file), false, 'nothing is written before close');
    await a.close();
    assert.ok(fs.existsSync(file));

    const b = await openProfileCache(file);
    assert.deepEqual(b.lookup(H200, SIG), [
      { signature: SIG, candidate: 'cutlass3x_sm90_bad', batch: 1, status: 'build-failed', message: 'ptxas: too many resources' },
      ok('cutlass3x_sm90_tensorop_h64x128x64_2x1x1', 1, 4.25),
      ok('cutlass3x_sm90_tensorop_h64x128x64_2x1x1', 64, 30.5),
    ]);
    assert.deepEqual(b.lookup(H200, 'conv sm90 other'), []);
    b.store(H200, [{ ...ok('cutlass3x_sm90_tensorop_h64x128x64_2x1x1', 1, 3.75), config: { stages: 4 } }]);
    await b.close();

    const c = await openProfileCache(file);
    const rows = c.lookup(H200, SIG);
    assert.equal(rows.length, 3);
    assert.deepEqual(rows[1], { ...ok('cutlass3x_sm90_tensorop_h64x128x64_2x1x1', 1, 3.75), config: { stages: 4 } });
    assert.deepEqual(c.devices(), [H200]);
    assert.deepEqual(
      c.list().map(({ updated: _, ...s }) => s),
      [{ device: H200, signatures: 1, measurements: 3 }],
    );
    await c.close();
  });

  it('finds nothing for a device that differs in any key field (GPU, SMs, driver, CUDA, CUTLASS)', async () => {
    const file = tempFile();
    const a = await openProfileCache(file);
    a.store(H200, [ok('k1', 8, 10)]);
    await a.close();
    const b = await openProfileCache(file);
    const variants: DeviceKey[] = [
      { ...H200, gpu: 'NVIDIA H200 NVL' },
      { ...H200, sms: 114 },
      { ...H200, driver: '575.51.03' },
      { ...H200, cuda: '13.0' },
      { ...H200, cutlass: '4.8.0' },
    ];
    for (const v of variants) assert.deepEqual(b.lookup(v, SIG), [], JSON.stringify(v));
    assert.equal(b.lookup(H200, SIG).length, 1);
    // a measurement on a new driver is a new row, the old one stays for the old driver
    b.store(variants[2], [ok('k1', 8, 9)]);
    assert.equal(b.lookup(variants[2], SIG)[0].medianUs, 9);
    assert.equal(b.lookup(H200, SIG)[0].medianUs, 10);
    assert.equal(b.devices().length, 2);
    await b.close();
  });

  it('prunes by device fields, by age, both at once, or all; the removals persist', async () => {
    const file = tempFile();
    let now = Date.UTC(2026, 0, 1);
    const a = await openProfileCache(file, { now: () => now });
    a.store(H200, [ok('old', 1, 1), ok('old', 8, 2)]);
    a.store(H100, [ok('old', 1, 1)]);
    now += 10 * DAY;
    a.store(H200, [ok('new', 1, 1)]);
    a.store(H100, [ok('new', 1, 1), ok('new', 8, 1, 'conv sig')]);
    assert.equal(a.list().find((s) => s.device.gpu === H100.gpu)?.updated, new Date(now).toISOString());
    assert.throws(() => a.prune({}), /needs a device, an age, or all/);
    assert.equal(a.prune({ olderThanDays: 30 }), 0);
    assert.equal(a.prune({ device: { gpu: H100.gpu }, olderThanDays: 5 }), 1);
    assert.deepEqual(
      a.lookup(H100, SIG).map((m) => m.candidate),
      ['new'],
    );
    assert.equal(a.prune({ device: { driver: 'no such driver' } }), 0);
    assert.equal(a.prune({ olderThanDays: 5 }), 2);
    await a.close();

    const b = await openProfileCache(file, { now: () => now });
    assert.deepEqual(
      b.list().map((s) => [s.device.gpu, s.signatures, s.measurements]),
      [
        [H100.gpu, 2, 2],
        [H200.gpu, 1, 1],
      ],
    );
    assert.equal(b.prune({ device: { gpu: H200.gpu, sms: 132 } }), 1);
    assert.equal(b.prune({ all: true }), 2);
    await b.close();
    const c = await openProfileCache(file);
    assert.deepEqual(c.list(), []);
    await c.close();
  });

  it('merges on close: two sessions open at once keep both writers; a removal spares a row stored after it was seen', async () => {
    const file = tempFile();
    const seed = await openProfileCache(file);
    seed.store(H200, [ok('shared', 1, 50)]);
    await seed.close();

    const a = await openProfileCache(file);
    const b = await openProfileCache(file);
    a.store(H200, [ok('from-a', 1, 1), ok('shared', 1, 40)]);
    b.store(H100, [ok('from-b', 1, 2)]);
    // b saw the old 'shared' row and removes every H200 row it saw; a's newer 'shared' must survive
    assert.equal(b.prune({ device: { gpu: H200.gpu } }), 1);
    await a.close();
    await b.close();

    const c = await openProfileCache(file);
    assert.deepEqual(
      c.lookup(H200, SIG).map((m) => [m.candidate, m.medianUs]),
      [
        ['from-a', 1],
        ['shared', 40],
      ],
    );
    assert.deepEqual(
      c.lookup(H100, SIG).map((m) => m.candidate),
      ['from-b'],
    );
    await c.close();
  });

  it('two processes closing at the same moment both keep their rows', async function () {
    this.timeout(60_000);
    const file = tempFile();
    const seed = await openProfileCache(file);
    seed.store(H200, [ok('seed', 1, 1)]);
    await seed.close();

    const cacheModule = path.resolve(__dirname, '../../compiler/profiling/cache.ts');
    const writer = (name: string, count: number): ChildProcessWithoutNullStreams =>
      spawn(
        process.execPath,
        [
          '--require',
          'tsx/cjs',
          '-e',
          `
          const { openProfileCache } = require(${JSON.stringify(cacheModule)});
          (async () => {
            const cache = await openProfileCache(${JSON.stringify(file)});
            const rows = [];
            for (let i = 0; i < ${count}; i++) rows.push({ signature: ${JSON.stringify(SIG)}, candidate: ${JSON.stringify(name)} + i, batch: 1, status: 'ok', medianUs: i });
            cache.store(${JSON.stringify(H200)}, rows);
            process.stdout.write('ready\\n');
            process.stdin.once('data', async () => {
              await cache.close();
              process.stdout.write('closed\\n');
              process.exit(0);
            });
          })();
          `,
        ],
        { cwd: path.resolve(__dirname, '../..') },
      );
    const children = [writer('p1-', 300), writer('p2-', 300)];
    const output = children.map(() => ({ out: '', err: '' }));
    const waitFor = (i: number, word: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => output[i].out.includes(word) && resolve();
        children[i].stdout.on('data', (d: Buffer) => {
          output[i].out += d.toString();
          check();
        });
        children[i].stderr.on('data', (d: Buffer) => (output[i].err += d.toString()));
        children[i].on('exit', (code) =>
          output[i].out.includes(word) ? resolve() : reject(new Error(`writer ${i} exited ${code}: ${output[i].err}`)),
        );
        check();
      });
    await Promise.all(children.map((_, i) => waitFor(i, 'ready')));
    // both sessions read the file before either writes; now both close together
    for (const c of children) c.stdin.write('go\n');
    await Promise.all(children.map((_, i) => waitFor(i, 'closed')));

    const cache = await openProfileCache(file);
    const names = cache.lookup(H200, SIG).map((m) => m.candidate);
    await cache.close();
    assert.equal(names.length, 601);
    assert.ok(names.includes('seed'));
    assert.equal(names.filter((n) => n.startsWith('p1-')).length, 300);
    assert.equal(names.filter((n) => n.startsWith('p2-')).length, 300);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['profiles.sqlite'], 'no lock or temporary file is left');
  });

  it('close waits while a live process holds the lock, and writes once it is released', async () => {
    const file = tempFile();
    const lock = `${file}.lock`;
    const a = await openProfileCache(file);
    a.store(H200, [ok('k', 1, 1)]);
    fs.writeFileSync(lock, JSON.stringify({ format: 'ait-profile-cache-lock', pid: process.pid, host: os.hostname() }));
    let done = false;
    const closing = a.close().then(() => (done = true));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(done, false);
    assert.equal(fs.existsSync(file), false, 'nothing written while another holds the lock');
    fs.rmSync(lock);
    await closing;
    const b = await openProfileCache(file);
    assert.equal(b.lookup(H200, SIG).length, 1);
    await b.close();
  });

  it('refuses a file that is not a cache, a damaged one and a newer schema by name, and leaves each as it was', async () => {
    const dir = path.dirname(tempFile());
    const SQL = await initSqlJs({ locateFile: () => findSqlWasm()! });
    const check = async (name: string, bytes: Uint8Array | string, code: string, message: RegExp) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, bytes);
      const before = fs.readFileSync(file);
      await assert.rejects(openProfileCache(file), (e) => cacheError(code, file)(e) && message.test((e as Error).message));
      assert.deepEqual(fs.readFileSync(file), before);
    };
    await check('notes.sqlite', 'just some text the user keeps here\n', 'cache.not-a-cache', /not an SQLite database/);

    const other = new SQL.Database();
    other.run('CREATE TABLE contacts (name TEXT)');
    await check('other.sqlite', other.export(), 'cache.not-a-cache', /not an AIT profile cache/);

    // a real cache, then damaged: its second page overwritten
    const good = tempFile();
    const w = await openProfileCache(good);
    w.store(
      H200,
      Array.from({ length: 200 }, (_, i) => ok(`k${i}`, 1, i)),
    );
    await w.close();
    const damaged = Buffer.from(fs.readFileSync(good));
    damaged.fill(0xa5, 4096, 8192);
    await check('damaged.sqlite', damaged, 'cache.corrupt', /damaged profile cache/);
    await check('truncated.sqlite', fs.readFileSync(good).subarray(0, 60), 'cache.not-a-cache', /not an SQLite/);

    const newer = new SQL.Database(fs.readFileSync(good));
    newer.run('UPDATE schema_version SET version = ?', [PROFILE_CACHE_SCHEMA_VERSION + 1]);
    await check('newer.sqlite', newer.export(), 'cache.newer', new RegExp(`schema version ${PROFILE_CACHE_SCHEMA_VERSION + 1}`));

    const sub = path.join(dir, 'a-directory');
    fs.mkdirSync(sub);
    await assert.rejects(openProfileCache(sub), cacheError('cache.not-a-file', sub));
  });

  it('takes an empty file as an empty cache, writes nothing when nothing changed, and removes a stale lock of its own', async () => {
    const file = tempFile();
    fs.writeFileSync(file, '');
    const a = await openProfileCache(file);
    assert.deepEqual(a.list(), []);
    await a.close();
    assert.equal(fs.statSync(file).size, 0, 'an unchanged session does not write');

    const missing = tempFile('sub/dir/cache.sqlite');
    const b = await openProfileCache(missing);
    await b.close();
    assert.equal(fs.existsSync(path.dirname(missing)), false, 'opening creates nothing');

    // a lock left by a process that is gone
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.writeFileSync(`${file}.lock`, JSON.stringify({ format: 'ait-profile-cache-lock', pid: Number(gone.stdout), host: os.hostname() }));
    const stale = `${file}.tmp-${gone.stdout}-123`;
    fs.writeFileSync(stale, 'half-written');
    const mine = `${file}.tmp-notes`;
    fs.writeFileSync(mine, 'a file of the user');
    const c = await openProfileCache(file);
    c.store(H200, [ok('k', 1, 1)]);
    await c.close();
    assert.equal(fs.existsSync(`${file}.lock`), false);
    assert.equal(fs.existsSync(stale), false, "a dead process's temporary file is removed");
    assert.equal(fs.readFileSync(mine, 'utf8'), 'a file of the user');
    const d = await openProfileCache(file);
    assert.equal(d.lookup(H200, SIG).length, 1);
    await d.close();
    assert.throws(() => d.lookup(H200, SIG), /closed/);
  });

  it('defaults to $AIT_PROFILE_CACHE, else $XDG_CACHE_HOME/ait-studio, else ~/.cache/ait-studio', () => {
    assert.equal(defaultProfileCachePath({ AIT_PROFILE_CACHE: '/data/p.sqlite', XDG_CACHE_HOME: '/x' }), '/data/p.sqlite');
    assert.equal(defaultProfileCachePath({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/ait-studio/profiles.sqlite');
    assert.equal(defaultProfileCachePath({}), path.join(os.homedir(), '.cache', 'ait-studio', 'profiles.sqlite'));
  });
});
