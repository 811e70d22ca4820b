/**
 * `ait compile` output for every shared model: graph.json accounts for every ONNX node exactly once, every node
 * compiles (Mask R-CNN's mask-paste Loop as PasteMasks), passes can be dumped, and a cancelled compile leaves no
 * output directory.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel, optimizeModel } from '../../compiler/compile';
import { isKernel } from '../../compiler/passes/cost';
import { CompileError } from '../../compiler/diagnostics';
import { decodeModel } from '../../compiler/onnx/import';
import { GraphProto } from '../../compiler/onnx/schema';
import { SHARED_MODELS, sharedModel } from '../helpers/models';

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ait-compile-'));

/** ONNX node names of the main graph, named as the importer names them (op_index when unnamed). */
function onnxNodeNames(file: string): string[] {
  const graph = decodeModel(fs.readFileSync(file)).graph as GraphProto;
  return graph.node.map((n, i) => n.name || `${n.op_type}_${i}`);
}

describe('ait compile output', () => {
  for (const name of SHARED_MODELS) {
    it(`${name}: every ONNX node is absorbed by exactly one node or listed as removed`, function () {
      const file = sharedModel(name, this);
      const out = path.join(tmp(), name);
      const r = spawnSync(process.execPath, [CLI, 'compile', file, '--out', out], { encoding: 'utf8' });
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'));
      const seen = new Map<string, number>();
      for (const n of graph.nodes) for (const s of n.sourceNodes) seen.set(s, (seen.get(s) ?? 0) + 1);
      for (const rm of graph.removed) seen.set(rm.onnxNode, (seen.get(rm.onnxNode) ?? 0) + 1);
      const names = onnxNodeNames(file);
      const missing = names.filter((n) => !seen.has(n));
      const twice = [...seen].filter(([, c]) => c > 1).map(([n]) => n);
      assert.deepEqual(missing.slice(0, 10), [], `${missing.length} ONNX nodes unaccounted for`);
      assert.deepEqual(twice.slice(0, 10), [], `${twice.length} ONNX nodes accounted for twice`);
      const unsupported = graph.nodes.filter((n: { status?: { supported: boolean } }) => n.status && !n.status.supported);
      // every node compiles; Mask R-CNN's too: NonZero (run-time dims), RoiAlign, the Ifs (inlined as guarded branch
      // nodes) and the mask-paste Loop (rewritten into PasteMasks, passes/paste-masks.ts)
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.deepEqual(unsupported, []);
      assert.ok(fs.existsSync(path.join(out, 'src', 'model.cu')) && fs.existsSync(path.join(out, 'Makefile')));
      // cost annotations on every node, a memory plan for the model
      assert.ok(graph.nodes.every((n: { cost?: { flops: number } }) => n.cost && n.cost.flops >= 0));
      assert.ok(graph.memory.arenaBytes > 0 && graph.memory.arenaBytes <= graph.memory.activationBytes);
    });
  }

  it('vit_large_patch16_384: 7 kernels per encoder block (24 blocks) plus the patch embedding and head', function () {
    const file = sharedModel('vit_large_patch16_384', this);
    const { graph } = optimizeModel(file, { validate: true });
    const kernels = graph.nodes.filter((n) => isKernel(graph, n));
    const count = (op: string) => kernels.filter((n) => n.op === op).length;
    assert.equal(count('attention'), 24);
    assert.equal(count('layernorm'), 49);
    assert.equal(count('gemm'), 24 * 4 + 1);
    assert.ok(kernels.length <= 24 * 7 + 8, `${kernels.length} kernels`);
  });

  it('dumps the graph after a named pass, and rejects an unknown pass name', () => {
    const out = path.join(tmp(), 'resnet');
    const r = spawnSync(process.execPath, [CLI, 'compile', 'examples/resnet50/resnet50.onnx', '--out', out, '--dump-after', 'layout'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const dumps = fs.readdirSync(path.join(out, 'dumps'));
    assert.equal(dumps.length, 1);
    const dump = JSON.parse(fs.readFileSync(path.join(out, 'dumps', dumps[0]), 'utf8'));
    assert.equal(dump.pass, 'layout');
    assert.ok(dump.nodes.some((n: { op: string }) => n.op === 'conv2d'));
    const bad = spawnSync(
      process.execPath,
      [CLI, 'compile', 'examples/resnet50/resnet50.onnx', '--out', out, '--force', '--dump-after', 'no-such-pass'],
      { encoding: 'utf8' },
    );
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /no-such-pass: no such pass; the passes are .*canonicalize/);
  });

  it('leaves no output directory behind when cancelled, and keeps a previous output intact', () => {
    const out = path.join(tmp(), 'cancelled');
    const controller = new AbortController();
    let stagesSeen = 0;
    assert.throws(
      () =>
        compileModel('examples/resnet50/resnet50.onnx', {
          out,
          signal: controller.signal,
          log: () => {
            if (++stagesSeen === 4) controller.abort();
          },
        }),
      (e: unknown) => e instanceof CompileError && e.diagnostics[0].code === 'compile.cancelled',
    );
    assert.equal(fs.existsSync(out), false);
    assert.deepEqual(
      fs.readdirSync(path.dirname(out)).filter((f) => f.startsWith('cancelled')),
      [],
    );
    // a finished compile, then a cancelled one: the finished output stays as it was
    compileModel('examples/resnet50/resnet50.onnx', { out });
    const before = fs.readFileSync(path.join(out, 'graph.json'), 'utf8');
    const again = new AbortController();
    again.abort();
    assert.throws(() => compileModel('examples/resnet50/resnet50.onnx', { out, signal: again.signal }));
    assert.equal(fs.readFileSync(path.join(out, 'graph.json'), 'utf8'), before);
  });
});
