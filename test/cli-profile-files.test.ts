import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { profileFromRuntime, writeProfiles } from '../compiler/cli/profile-files';

const CLI = path.resolve(__dirname, '..', 'dist', 'cli.js');

describe('profile.json from the runtime profile', () => {
  const runtime = {
    model: 'resnet50',
    runs: 10,
    batchSize: 8,
    totalMeanMs: 0.9,
    ops: [
      { id: 'n1', name: 'conv2d', kernel: 'cutlass3x_sm90_x', calls: 10, meanMs: 0.02, minMs: 0.019 },
      { id: 'n2', name: 'gemm (split epilogue)', kernel: 'cutlass3x_sm90_y', calls: 20, meanMs: 0.01, minMs: 0.009 },
    ],
  };

  it('keys ops by graph.json id, at the measured batch, with launches per run', () => {
    const p = profileFromRuntime(runtime, { name: 'NVIDIA H200', arch: 'sm90' }, new Date('2026-11-21T00:00:00Z'));
    assert.equal(p.format, 'ait-profile');
    assert.equal(p.batch, 8);
    assert.deepEqual(p.ops.n1, { meanMs: 0.02, minMs: 0.019, launches: 1 });
    // two launches per run: the op's time per run is twice the mean launch
    assert.equal(p.ops.n2.launches, 2);
    assert.ok(Math.abs(p.ops.n2.meanMs - 0.02) < 1e-12);
  });

  it('writes files the graph page accepts as profiles', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-prof-'));
    const c = spawnSync(process.execPath, [CLI, 'compile', 'examples/resnet50/resnet50.onnx', '--out', dir], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    const graph = JSON.parse(fs.readFileSync(path.join(dir, 'graph.json'), 'utf8'));
    const kernels = graph.nodes.filter((n: { role: string }) => n.role === 'kernel');
    const files = writeProfiles(
      dir,
      {
        profiles: [
          {
            ...runtime,
            ops: kernels.map((n: { id: string }, i: number) => ({ id: n.id, name: n.id, kernel: 'k', calls: 10, meanMs: 0.01 * (i + 1) })),
          },
        ],
      },
      { index: 0, name: 'NVIDIA H200', arch: 'sm90' },
    );
    assert.deepEqual(
      files.map((f) => path.basename(f)),
      ['profile-b8.json'],
    );
    const html = path.join(dir, 'page.html');
    const g = spawnSync(process.execPath, [CLI, 'graph', dir, '--profile', files[0], '--html', html], { encoding: 'utf8' });
    assert.equal(g.status, 0, g.stdout + g.stderr);
    assert.doesNotMatch(g.stdout + g.stderr, /warning/);
    assert.match(g.stdout, /1 profile/);
  });
});
