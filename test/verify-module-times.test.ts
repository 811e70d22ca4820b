/**
 * Per-module times (compiler/verify/module-times.ts): ours summed from a profile over a real compiled graph's kernel
 * nodes, PyTorch's joined through the ONNX scopes of both exporters (real node names of the shared models).
 */
import { strict as assert } from 'node:assert';
import { optimizeModel } from '../compiler/compile';
import { graphToJson } from '../compiler/ir/serialize';
import { importOnnxFile } from '../compiler/onnx/import';
import { addModuleTimes, alignModulePaths, modulePathOfScope, ourModuleTimes, parseTorchTimes } from '../compiler/verify/module-times';
import type { GraphLike } from '../compiler/verify/per-node';
import { sharedModel } from './helpers/models';

/** graph.json of a compile (the nodes as the CLI writes them), read back as the agent reads it. */
function compiledGraph(file: string): GraphLike {
  const { graph, model } = optimizeModel(file);
  const json = JSON.parse(JSON.stringify(graphToJson(graph, { modelName: 'm', info: model.info }))) as { nodes: GraphLike['nodes'] };
  return { nodes: json.nodes };
}

/** The scope of the ONNX node of that name, as the importer reads it. */
function scopesOf(file: string): Map<string, string[]> {
  return new Map(importOnnxFile(file).graph.nodes.map((n) => [n.name, n.scope]));
}

/** timm resnet50's named_modules() (Bottleneck blocks 3, 4, 6, 3; downsample in each stage's first block). */
function timmResnet50Modules(): string[] {
  const out = ['', 'conv1', 'bn1', 'act1', 'maxpool'];
  [3, 4, 6, 3].forEach((blocks, s) => {
    const layer = `layer${s + 1}`;
    out.push(layer);
    for (let b = 0; b < blocks; b++) {
      const block = `${layer}.${b}`;
      out.push(block);
      for (const m of ['conv1', 'bn1', 'drop_block', 'act1', 'aa', 'conv2', 'bn2', 'act2', 'conv3', 'bn3', 'act3'])
        out.push(`${block}.${m}`);
      if (b === 0) out.push(`${block}.downsample`, `${block}.downsample.0`, `${block}.downsample.1`);
    }
  });
  out.push('global_pool', 'global_pool.pool', 'global_pool.flatten', 'fc');
  return out;
}

describe('per-module times', () => {
  describe('ONNX scopes to PyTorch module paths', () => {
    it('TorchScript exporter (vitmatte.onnx): node-name scopes, the export wrapper m. dropped for the inner model', function () {
      const scopes = scopesOf(sharedModel('vitmatte', this));
      const path = (node: string) => modulePathOfScope(scopes.get(node)!);
      assert.equal(path('/m/backbone/encoder/layer.7/attention/qkv/MatMul'), 'm.backbone.encoder.layer.7.attention.qkv');
      assert.equal(path('/m/backbone/encoder/layer.0/mlp/act/Constant_1'), 'm.backbone.encoder.layer.0.mlp.act');
      assert.equal(path('/m/decoder/fusion_blocks.3/conv/conv/Conv'), 'm.decoder.fusion_blocks.3.conv.conv');
      // VitMatteForImageMatting's own named_modules() (no wrapper): every scope path meets its module by dropping `m.`
      const inner = [
        'backbone',
        'backbone.encoder',
        'backbone.encoder.layer.7',
        'backbone.encoder.layer.7.attention',
        'backbone.encoder.layer.7.attention.qkv',
        'decoder',
        'decoder.fusion_blocks.3',
        'decoder.fusion_blocks.3.conv.conv',
      ];
      const paths = [...scopes.values()].map(modulePathOfScope);
      const { alignment, modules } = alignModulePaths(paths, inner);
      assert.deepEqual(alignment, { drop: 1, add: '' });
      assert.equal(modules.get('m.backbone.encoder.layer.7.attention.qkv'), 'backbone.encoder.layer.7.attention.qkv');
      assert.equal(modules.get('m.decoder.fusion_blocks.3.conv.conv'), 'decoder.fusion_blocks.3.conv.conv');
      assert.equal(modules.get('m.backbone.encoder.layer.6.attention'), undefined, 'not timed: no module');
      // the wrapper timed as exported (scripts/gpu/module_times.py's vitmatte): paths as they are
      const wrapped = alignModulePaths(paths, ['', 'm', ...inner.map((p) => `m.${p}`)]);
      assert.deepEqual(wrapped.alignment, { drop: 0, add: '' });
      assert.equal(wrapped.modules.get('m.backbone.encoder.layer.7'), 'm.backbone.encoder.layer.7');
    });

    it('TorchScript exporter, called Sequentials (resnet50_legacy.onnx): layer1.0, downsample.0', function () {
      const scopes = scopesOf(sharedModel('resnet50_legacy', this));
      assert.equal(modulePathOfScope(scopes.get('/layer1/layer1.0/conv1/Conv')!), 'layer1.0.conv1');
      assert.equal(modulePathOfScope(scopes.get('/layer1/layer1.0/downsample/downsample.0/Conv')!), 'layer1.0.downsample.0');
      const { modules } = alignModulePaths([...scopes.values()].map(modulePathOfScope), timmResnet50Modules());
      assert.equal(modules.get('layer1.0.downsample.0'), 'layer1.0.downsample.0');
      assert.equal(modules.get('conv1'), 'conv1');
    });

    it('dynamo exporter (resnet50.onnx): qualified name_scopes; the op-level last scope is no module', function () {
      const scopes = scopesOf(sharedModel('resnet50', this));
      const relu = scopes.get('node_relu_1')!;
      assert.deepEqual(relu, ['layer1', 'layer1.0', 'layer1.0.act1', 'relu_1']);
      assert.equal(modulePathOfScope(relu.slice(0, 3)), 'layer1.0.act1');
      const down = scopes.get('node_Conv_767')!;
      assert.equal(modulePathOfScope(down.slice(0, 4)), 'layer1.0.downsample.1');
      const prefixes = [...scopes.values()].flatMap((s) => s.map((_, i) => modulePathOfScope(s.slice(0, i + 1))));
      const { alignment, modules } = alignModulePaths(prefixes, timmResnet50Modules());
      assert.deepEqual(alignment, { drop: 0, add: '' });
      assert.equal(modules.get('layer1.0.act1'), 'layer1.0.act1');
      assert.equal(modules.get('layer4.2'), 'layer4.2');
      assert.equal(modules.get('layer1.0.act1.relu_1'), undefined);
      // timed through a wrapper (the factory returns W(m)): the prefix is added
      const wrapped = alignModulePaths(prefixes, [
        '',
        'm',
        ...timmResnet50Modules()
          .filter((p) => p)
          .map((p) => `m.${p}`),
      ]);
      assert.deepEqual(wrapped.alignment, { drop: 0, add: 'm' });
      assert.equal(wrapped.modules.get('layer2.3'), 'm.layer2.3');
    });
  });

  describe('our time per module from a profile of a compiled graph', () => {
    it('vitmatte: every kernel node counts once in each prefix of its scope; the 12 encoder layers alike', function () {
      const graph = compiledGraph(sharedModel('vitmatte', this));
      const kernels = graph.nodes.filter((n) => n.role === 'kernel');
      assert.ok(kernels.length > 100);
      // 1 ms per kernel: a module's time is its kernel count
      const ops = Object.fromEntries(kernels.map((n) => [n.id, { meanMs: 1 }]));
      const times = ourModuleTimes(graph, ops);
      const top = [...times].filter(([, t]) => t.depth <= 1);
      assert.equal(
        top.reduce((a, [, t]) => a + t.timeMs, 0),
        kernels.length,
        'top-level modules (and unscoped nodes) add up to every kernel',
      );
      const layers = Array.from({ length: 12 }, (_, i) => times.get(`m/backbone/encoder/layer.${i}`)!);
      assert.ok(
        layers.every((l) => l && l.timeMs === layers[0].timeMs && l.timeMs >= 5),
        JSON.stringify(layers),
      );
      const encoder = times.get('m/backbone/encoder')!;
      assert.ok(encoder.timeMs >= layers.reduce((a, l) => a + l.timeMs, 0));
      // a parent holds at least its children
      for (const [key, t] of times) {
        const children = [...times].filter(([k, c]) => c.depth === t.depth + 1 && k.startsWith(key + '/'));
        assert.ok(t.timeMs >= children.reduce((a, [, c]) => a + c.timeMs, 0) - 1e-9, key);
      }
      // a node the profile lacks counts nowhere
      const without = ourModuleTimes(graph, { ...ops, [kernels[kernels.length - 1].id]: undefined as never });
      const total = (m: typeof times) => [...m].filter(([, t]) => t.depth <= 1).reduce((a, [, t]) => a + t.timeMs, 0);
      assert.equal(total(without), kernels.length - 1);
    });

    it('joins ours and PyTorch into the module rows: speedup, time-only rows, absent (not 0) without a profile', function () {
      const graph = compiledGraph(sharedModel('vitmatte', this));
      const kernels = graph.nodes.filter((n) => n.role === 'kernel');
      const ops = Object.fromEntries(kernels.map((n) => [n.id, { meanMs: 0.01 }]));
      const layer3 = kernels.filter((n) => n.scope.slice(0, 4).join('/') === 'm/backbone/encoder/layer.3').length;
      const errorRows = [
        { module: 'm', depth: 1, nodes: 3, maxAbs: 0.1, maxRelativeL2: 0.01, nonFinite: 0, fp16Overflows: 0 },
        { module: 'm/backbone', depth: 2, nodes: 2, maxAbs: 0.1, maxRelativeL2: 0.01, nonFinite: 0, fp16Overflows: 0 },
      ];
      const none = addModuleTimes(errorRows, graph);
      assert.deepEqual(none.modules, errorRows);
      assert.ok(!('timeMs' in none.modules[0]) && !('referenceTimeMs' in none.modules[0]));
      const torch = parseTorchTimes(
        {
          format: 'ait-torch-module-times',
          version: 1,
          totalMs: 9,
          modules: { '': 10, backbone: 6, 'backbone.encoder.layer.3': 1.5, 'backbone.encoder.layer.3.attention': 0.5 },
        },
        'torch.json',
      );
      const { modules, summary } = addModuleTimes(errorRows, graph, { ops, batch: 1, runs: 10, gpu: { name: 'H100' } }, torch);
      const row = (key: string) => modules.find((m) => m.module === key)!;
      assert.equal(row('m').nodes, 3, 'error rows keep their errors');
      assert.ok(Math.abs(row('m/backbone/encoder/layer.3').timeMs! - 0.01 * layer3) < 1e-9);
      assert.equal(row('m/backbone/encoder/layer.3').nodes, 0, 'a time-only row');
      assert.equal(row('m/backbone/encoder/layer.3').torchModule, 'backbone.encoder.layer.3');
      assert.equal(row('m/backbone/encoder/layer.3').referenceTimeMs, 1.5);
      assert.ok(Math.abs(row('m/backbone/encoder/layer.3').speedup! - 1.5 / (0.01 * layer3)) < 1e-9);
      assert.equal(row('m/backbone').referenceTimeMs, 6);
      assert.equal(row('m/decoder').referenceTimeMs, undefined, 'not timed by PyTorch: absent');
      assert.equal(row('m/decoder').speedup, undefined);
      // depth-first: every row under its parent, a subtree contiguous (time-only rows are not left at the end)
      const order = modules.map((m) => m.module);
      for (const [i, m] of order.entries()) {
        const parent = m.split('/').slice(0, -1).join('/');
        if (parent) assert.ok(order.indexOf(parent) < i, `${m} before its parent`);
      }
      const inBackbone = order.map((m, i) => (m.startsWith('m/backbone') ? i : -1)).filter((i) => i >= 0);
      assert.equal(inBackbone[inBackbone.length - 1] - inBackbone[0] + 1, inBackbone.length, 'm/backbone rows contiguous');
      assert.ok(order.indexOf('m/backbone/encoder/layer.3') < order.indexOf('m/decoder'));
      assert.equal(summary.reference!.matched, 3);
      assert.equal(summary.reference!.totalMs, 9);
      assert.ok(Math.abs(summary.ours!.opsMs - 0.01 * kernels.length) < 1e-9);
    });

    it('reads plain {path: ms} times and refuses what is not times', () => {
      assert.deepEqual(parseTorchTimes({ a: 1 }, 'x.json').modules, { a: 1 });
      assert.throws(() => parseTorchTimes({ format: 'ait-profile', ops: {} }, 'x.json'), /x\.json is not PyTorch module times.*format/);
      assert.throws(() => parseTorchTimes({ modules: { a: -1 } }, 'x.json'), /module 'a' has time -1/);
      assert.throws(() => parseTorchTimes([1], 'x.json'), /not a JSON object/);
    });
  });
});
