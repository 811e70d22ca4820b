import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type DeviceKey, openProfileCache } from '../compiler/profiling/cache';

const DIST = path.resolve(__dirname, '..', 'dist');
const CLI = path.join(DIST, 'cli.js');
const DAY = 86_400_000;

const H200: DeviceKey = { gpu: 'NVIDIA H200', sms: 132, driver: '570.86.15', cuda: '12.8', cutlass: '4.7.0' };
const H100: DeviceKey = { gpu: 'NVIDIA H100 80GB HBM3', sms: 114, driver: '575.51.03', cuda: '13.0', cutlass: '4.7.0' };

function ait(args: string[], options: { cli?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(process.execPath, [options.cli ?? CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...options.env } });
}

/** A cache with two devices: H200 (2 signatures, 3 rows, 40 days old) and H100 (1 signature, 1 row, today). */
async function sampleCache(): Promise<{ file: string; now: number }> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ait-cli-cache-')), 'profiles.sqlite');
  const now = Date.now();
  const old = await openProfileCache(file, { now: () => now - 40 * DAY });
  old.store(H200, [
    { signature: 'gemm a', candidate: 'k1', batch: 1, status: 'ok', medianUs: 3 },
    { signature: 'gemm a', candidate: 'k1', batch: 8, status: 'ok', medianUs: 9 },
    { signature: 'conv b', candidate: 'k2', batch: 1, status: 'mismatch', message: 'rel L2 0.3' },
  ]);
  await old.close();
  const fresh = await openProfileCache(file, { now: () => now });
  fresh.store(H100, [{ signature: 'gemm a', candidate: 'k1', batch: 1, status: 'ok', medianUs: 4 }]);
  await fresh.close();
  return { file, now };
}

describe('ait cache (CLI)', () => {
  it('lists one line per device with its key, signature and measurement counts and last update', async () => {
    const { file, now } = await sampleCache();
    const r = ait(['cache', 'list', '--cache', file]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `profile cache ${file}`);
    assert.match(lines[2], /^GPU\s+SMs\s+driver\s+CUDA\s+CUTLASS\s+signatures\s+measurements\s+last update$/);
    const cells = lines.slice(4).map((l) => l.split(/\s{2,}/));
    assert.deepEqual(cells, [
      ['NVIDIA H100 80GB HBM3', '114', '575.51.03', '13.0', '4.7.0', '1', '1', new Date(now).toISOString().replace(/\.\d+Z$/, 'Z')],
      ['NVIDIA H200', '132', '570.86.15', '12.8', '4.7.0', '2', '3', new Date(now - 40 * DAY).toISOString().replace(/\.\d+Z$/, 'Z')],
    ]);

    const j = ait(['cache', 'list', '--json'], { env: { AIT_PROFILE_CACHE: file } });
    assert.equal(j.status, 0, j.stderr);
    const json = JSON.parse(j.stdout) as { file: string; devices: { device: DeviceKey; signatures: number; measurements: number }[] };
    assert.equal(json.file, file);
    assert.deepEqual(
      json.devices.map((d) => [d.device, d.signatures, d.measurements]),
      [
        [H100, 1, 1],
        [H200, 2, 3],
      ],
    );
  });

  it('prunes by GPU name part and by age, and refuses to prune without a filter', async () => {
    const { file } = await sampleCache();
    const none = ait(['cache', 'prune', '--cache', file]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /^error \[cli\.bad-option\].*--device GPU, --older-than DAYS or --all/);

    const young = ait(['cache', 'prune', '--older-than', '30', '--device', 'h100', '--cache', file]);
    assert.equal(young.status, 0, young.stderr);
    assert.match(young.stdout, /removed 0 measurements .* 4 left/);
    const old = ait(['cache', 'prune', '--older-than', '30', '--cache', file]);
    assert.match(old.stdout, /removed 3 measurements .* 1 left/);
    const list = JSON.parse(ait(['cache', 'list', '--json', '--cache', file]).stdout) as { devices: { device: DeviceKey }[] };
    assert.deepEqual(
      list.devices.map((d) => d.device),
      [H100],
    );
    const missing = ait(['cache', 'prune', '--device', 'MI300', '--cache', file]);
    assert.match(missing.stdout, /no device .* holding 'MI300'/);
    const all = ait(['cache', 'prune', '--all', '--cache', file]);
    assert.match(all.stdout, /removed 1 measurement from .* 0 left/);
    assert.match(ait(['cache', 'list', '--cache', file]).stdout, /no measurements$/m);
  });

  it('names a file that is not a cache and leaves it alone', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ait-cli-cache-')), 'notes.txt');
    fs.writeFileSync(file, 'not a database\n');
    for (const args of [['list'], ['prune', '--all']]) {
      const r = ait(['cache', ...args, '--cache', file]);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.match(r.stderr, /^error \[cache\.not-a-cache\] .*notes\.txt: .*not an AIT profile cache/);
    }
    assert.equal(fs.readFileSync(file, 'utf8'), 'not a database\n');
  });

  it('runs from the bundle alone: dist/cli.js with dist/sql-wasm.wasm beside it, no node_modules', async () => {
    const { file } = await sampleCache();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-packed-'));
    fs.copyFileSync(CLI, path.join(dir, 'cli.js'));
    fs.copyFileSync(path.join(DIST, 'sql-wasm.wasm'), path.join(dir, 'sql-wasm.wasm'));
    const r = ait(['cache', 'list', '--cache', file], { cli: path.join(dir, 'cli.js') });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /NVIDIA H200\s+132/);
    fs.rmSync(path.join(dir, 'sql-wasm.wasm'));
    const without = ait(['cache', 'list', '--cache', file], { cli: path.join(dir, 'cli.js') });
    assert.equal(without.status, 1);
    assert.match(without.stderr, /^error \[cache\.no-sqlite\] .*sql-wasm\.wasm/);
  });
});
