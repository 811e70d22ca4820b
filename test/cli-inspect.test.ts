import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SHARED_MODELS, sharedModel } from './helpers/models';
import { ModelSpec, buildModel } from './helpers/onnx-builder';

const CLI = path.resolve(__dirname, '..', 'dist', 'cli.js');

function ait(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

describe('ait inspect (CLI)', () => {
  it('summarizes the bundled example with symbolic batch and absent weights', () => {
    const r = ait(['inspect', 'examples/resnet50/resnet50.onnx', '--json']);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const s = JSON.parse(r.stdout);
    assert.deepEqual(s.inputs, [{ name: 'input', dtype: 'float32', shape: '[batch, 3, 224, 224]' }]);
    assert.equal(s.opHistogram.Conv, 53);
    assert.equal(s.parameters.weights, 'partial');
    assert.ok(s.diagnostics.some((d: { code: string }) => d.code === 'onnx.weights-absent'));
    assert.deepEqual(s.unknownOps, []);
  });

  it('fails with a named cause on a file that is not ONNX', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-'));
    const f = path.join(dir, 'notes.onnx');
    fs.writeFileSync(f, 'this is a text file, not a protobuf model\n');
    const r = ait(['inspect', f]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not an ONNX model/);
    assert.match(r.stderr, /notes\.onnx/);
  });

  it('fails with a named cause on a truncated model', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-'));
    const f = path.join(dir, 'cut.onnx');
    const bytes = fs.readFileSync('examples/resnet50/resnet50.onnx');
    fs.writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const r = ait(['inspect', f]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /truncated/);
    assert.match(r.stderr, /cut\.onnx/);
  });

  const writeModel = (name: string, spec: ModelSpec): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-'));
    const f = path.join(dir, name);
    fs.writeFileSync(f, buildModel(spec));
    return f;
  };

  it('fails on a graph with a cycle, naming the nodes of the cycle', () => {
    const f = writeModel('cycle.onnx', {
      inputs: [{ name: 'x', dtype: 'float32', dims: [2] }],
      nodes: [
        { op: 'Add', name: 'entry', inputs: ['x', 'x'], outputs: ['a'] },
        { op: 'Mul', name: 'left', inputs: ['a', 'c'], outputs: ['b'] },
        { op: 'Relu', name: 'right', inputs: ['b'], outputs: ['c'] },
      ],
      outputs: ['c'],
    });
    const r = ait(['inspect', f]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /graph\.cycle/);
    assert.match(r.stderr, /'left'/);
    assert.match(r.stderr, /'right'/);
    assert.doesNotMatch(r.stderr, /'entry'/);
    assert.doesNotMatch(r.stderr, /\n\s+at /); // a diagnostic, not a stack trace
  });

  it('fails on an unknown op, naming the op and the node', () => {
    const f = writeModel('custom.onnx', {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 8] }],
      nodes: [
        { op: 'Relu', name: '/block/relu', inputs: ['x'], outputs: ['r'] },
        { op: 'FancyActivation', name: '/block/fancy', inputs: ['r'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    const r = ait(['inspect', f]);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /FancyActivation/);
    assert.match(r.stdout, /op\.unknown.*node '\/block\/fancy'.*FancyActivation/);
    const json = JSON.parse(ait(['inspect', f, '--json']).stdout);
    assert.deepEqual(json.unknownOps, [{ op: 'FancyActivation', nodes: ['/block/fancy'] }]);
  });

  it('fails on a node that reads a tensor nothing defines, naming the node and the tensor', () => {
    const f = writeModel('dangling.onnx', {
      inputs: [{ name: 'x', dtype: 'float32', dims: [2] }],
      nodes: [{ op: 'Add', name: '/head/add', inputs: ['x', 'ghost'], outputs: ['y'] }],
      outputs: ['y'],
    });
    const r = ait(['inspect', f]);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /graph\.dangling-input.*'\/head\/add'.*'ghost'/);
  });

  it('fails on a tensor written by two nodes, naming the second writer', () => {
    const f = writeModel('twice.onnx', {
      inputs: [{ name: 'x', dtype: 'float32', dims: [2] }],
      nodes: [
        { op: 'Relu', name: 'first', inputs: ['x'], outputs: ['y'] },
        { op: 'Sigmoid', name: 'second', inputs: ['x'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    const r = ait(['inspect', f]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /graph\.duplicate-name.*tensor 'y' is produced by two nodes \(the second is 'second'\)/);
  });

  it('Mask R-CNN: no op the CUDA backend cannot run (the mask-paste Loop is PasteMasks)', function () {
    const file = sharedModel('maskrcnn_resnet50_fpn', this);
    const s = JSON.parse(ait(['inspect', file, '--json']).stdout);
    // NonZero (run-time dims), RoiAlign, ScatterElements, TopK, Conv, the Ifs (inlined as guarded branch nodes), the
    // NMS of the RoI heads (up to 1000 proposals x 90 classes: the suppression mask in blocks of rows) and the
    // mask-paste Loop (passes/paste-masks.ts: one PasteMasks node) all compile: nothing is listed
    assert.deepEqual(s.unsupportedOps, []);
  });

  /** Output shapes each real model must infer (data-dependent dims are checked by pattern and bounds). */
  const expectedOutputs: Partial<Record<(typeof SHARED_MODELS)[number], string[]>> = {
    resnet50: ['[batch, 1000]'],
    resnet50_legacy: ['[batch, 1000]'],
    vit_base_patch16_224: ['[batch, 1000]'],
    vit_base_patch16_224_legacy: ['[batch, 1000]'],
    vit_large_patch16_384: ['[batch, 1000]'],
    vitmatte: ['[1, 1, 512, 512]'],
  };

  for (const name of SHARED_MODELS) {
    it(`shapes every tensor of ${name}`, function () {
      const file = sharedModel(name, this);
      const r = ait(['inspect', file, '--json']);
      const s = JSON.parse(r.stdout);
      assert.deepEqual(s.unknownOps, [], JSON.stringify(s.unknownOps));
      assert.deepEqual(s.unshapedTensors.slice(0, 10), []);
      const errors = s.diagnostics.filter((d: { severity: string }) => d.severity === 'error');
      assert.deepEqual(errors.slice(0, 5), []);
      assert.equal(r.status, 0);
      const shapes = s.outputs.map((o: { shape: string }) => o.shape);
      if (expectedOutputs[name]) assert.deepEqual(shapes, expectedOutputs[name]);
      else {
        // Mask R-CNN: boxes [D, 4], labels [D], scores [D], masks [D, 1, 448, 608] for D detections, a
        // data-dependent count of at most 100 (box_detections_per_img).
        const m = /^\[(.+), 4\]$/.exec(shapes[0]);
        assert.ok(m, shapes[0]);
        const detections = m[1];
        assert.deepEqual(shapes, [`[${detections}, 4]`, `[${detections}]`, `[${detections}]`, `[${detections}, 1, 448, 608]`]);
        const symbol = s.symbols.find((x: { name: string }) => x.name === detections);
        assert.ok(symbol, `symbol ${detections} is listed`);
        assert.deepEqual([symbol.min, symbol.max], [0, 100]);
        assert.ok(s.subgraphNodeCount > 0);
      }
    });
  }
});
