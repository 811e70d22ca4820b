/**
 * ait compile --module PATH (partition/module.ts): module paths from both exporters' scopes; the module builds of
 * ResNet-50 (dynamo) and Mask R-CNN (TorchScript) compile for cuda:sm90 whole, and the extracted module run by
 * onnxruntime-node on the full model's border tensors gives the full model's tensors at the module's outputs
 * (random weights and inputs); the CLI writes module.json and ait_inject.py, and names the top-level modules when
 * a path matches nothing.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import '../../compiler/ops/index';
import { buildProgram } from '../../compiler/cli/main';
import { CompileError } from '../../compiler/diagnostics';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { makeTensor, seededRandom, type TensorValue } from '../../compiler/ir/tensor';
import { importOnnxFile } from '../../compiler/onnx/import';
import { materializeWeights } from '../../compiler/onnx/materialize';
import { compileModules, moduleOnnxBytes, modulePathOf, topLevelModules, type ModuleBuild } from '../../compiler/partition/module';
import { exposeTensors } from '../../compiler/verify/per-node';
import { compileModel } from '../../compiler/compile';
import { sharedModel } from '../helpers/models';
import { gencodeOf, haveNvcc, nvccCompileGenerated } from '../helpers/nvcc';
import { buildModel, type ModelSpec } from '../helpers/onnx-builder';

const TARGET = 'cuda:sm90';

describe('ait compile --module: module paths', () => {
  it('reads dynamo name scopes (qualified names, the FX node last) and TorchScript names (relative, repeated calls)', () => {
    assert.deepEqual(modulePathOf(['layer1', 'layer1.0', 'layer1.0.bn1', '_native_batch_norm_legit_no_training_1'], true), [
      'layer1',
      '0',
      'bn1',
    ]);
    assert.deepEqual(modulePathOf(['act1', 'relu'], true), ['act1']);
    assert.deepEqual(modulePathOf(['backbone', 'body', 'layer1', 'layer1.0', 'conv1'], false), [
      'backbone',
      'body',
      'layer1',
      '0',
      'conv1',
    ]);
    assert.deepEqual(modulePathOf(['backbone', 'fpn', 'inner_blocks.3', 'inner_blocks.3.0'], false), [
      'backbone',
      'fpn',
      'inner_blocks',
      '3',
      '0',
    ]);
    assert.deepEqual(modulePathOf(['rpn', 'head', 'conv', 'conv.0', 'conv.0.0_1'], false), ['rpn', 'head', 'conv', '0', '0_1']);
    // HuggingFace: a ModuleList that is never called gives no scope of its own
    assert.deepEqual(modulePathOf(['model', 'layers.0', 'self_attn'], false), ['model', 'layers', '0', 'self_attn']);
  });
});

/** TorchScript-style names: /blk/… → an unscoped Neg between two of blk's nodes → /blk/…, then /head/… and /blk_1/…. */
function scopedModel(secondCallAfterHead: boolean): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [2, 8] }],
    nodes: [
      { op: 'Relu', name: '/blk/act/Relu', inputs: ['x'], outputs: ['a'] },
      { op: 'Neg', name: 'Neg_7', inputs: ['a'], outputs: ['n'] }, // left unscoped by the exporter
      { op: 'Add', name: '/blk/Add', inputs: ['a', 'n'], outputs: ['b'] },
      { op: 'Sigmoid', name: '/head/Sigmoid', inputs: ['b'], outputs: ['h'] },
      secondCallAfterHead
        ? { op: 'Relu', name: '/blk_1/act/Relu', inputs: ['h'], outputs: ['y'] }
        : { op: 'Relu', name: '/tail/Relu', inputs: ['h'], outputs: ['y'] },
    ],
    outputs: ['y'],
  };
}

/** The model with its absent weights filled with seeded random data, written next to a temp dir (for onnxruntime and the compile). */
function materialized(file: string, dir: string): { file: string; bytes: Uint8Array } {
  const { bytes } = materializeWeights(importOnnxFile(file, {}), { seed: 1 });
  const out = path.join(dir, path.basename(file));
  fs.writeFileSync(out, bytes);
  return { file: out, bytes };
}

function randomInput(shape: number[], seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r());
}

/**
 * Runs the full model (module inputs and outputs exposed) and each module's extracted model on the full model's
 * values of its inputs; asserts the module's outputs equal the full model's tensors.
 */
async function checkAgainstFullModel(
  bytes: Uint8Array,
  file: string,
  feeds: Record<string, ort.Tensor>,
  builds: ModuleBuild[],
  interpret: string[] = [],
) {
  const wanted = builds.flatMap((b) => [...b.json.inputs, ...b.json.outputs].map((t) => t.name));
  const { bytes: exposed } = exposeTensors(bytes, wanted, file);
  const full = await ort.InferenceSession.create(exposed, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  const reference = await full.run(feeds);
  for (const b of builds) {
    const session = await ort.InferenceSession.create(moduleOnnxBytes(b), { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
    assert.deepEqual(
      session.inputNames,
      b.json.inputs.map((t) => t.name),
    );
    assert.deepEqual(
      session.outputNames,
      b.json.outputs.map((t) => t.name),
    );
    const moduleFeeds: Record<string, ort.Tensor> = {};
    for (const t of b.json.inputs) moduleFeeds[t.name] = reference[t.name];
    const got: Record<string, ort.Tensor | TensorValue> = await session.run(moduleFeeds);
    if (interpret.includes(b.json.module)) {
      // what the build computes: its optimized graph (fused, NHWC inside) run by the interpreter
      const values = runGraph(
        b.graph,
        b.json.inputs.map((t) => makeTensor('float32', [...moduleFeeds[t.name].dims], moduleFeeds[t.name].data as Float32Array)),
      );
      b.json.outputs.forEach((t, i) => (got[t.name] = values[i]));
    }
    for (const t of b.json.outputs) {
      const want = reference[t.name];
      const y = got[t.name];
      assert.deepEqual('dims' in y ? y.dims : y.shape, want.dims, `${b.json.module}: ${t.name} dims`);
      assert.ok(want.size > 0, `${b.json.module}: ${t.name} is empty`);
      const a = Array.from(y.data as ArrayLike<number | bigint>, Number);
      const e = Array.from(want.data as ArrayLike<number | bigint>, Number);
      let maxErr = 0;
      let maxRef = 0;
      for (let i = 0; i < e.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(a[i] - e[i]));
        maxRef = Math.max(maxRef, Math.abs(e[i]));
      }
      assert.ok(Number.isFinite(maxRef), `${t.name}: reference not finite`);
      // onnxruntime on the same subgraph: equal up to summation order; the interpreter on the fused graph: close
      const tolerance = interpret.includes(b.json.module) ? 1e-3 : 1e-4;
      assert.ok(maxErr <= tolerance * Math.max(1, maxRef), `${b.json.module}: ${t.name} differs by ${maxErr} (max |ref| ${maxRef})`);
    }
  }
}

describe('ait compile --module: the module as one call', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-module-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes unscoped nodes between its nodes into the module, and gives its border tensors', async () => {
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, buildModel(scopedModel(false)));
    const [blk] = compileModules(file, 'm', TARGET, ['blk'], {});
    assert.deepEqual(blk.json.nodes, ['/blk/act/Relu', 'Neg_7', '/blk/Add']);
    assert.deepEqual([blk.json.inputs.map((t) => t.name), blk.json.outputs.map((t) => t.name)], [['x'], ['b']]);
    const session = await ort.InferenceSession.create(moduleOnnxBytes(blk));
    const x = Float32Array.from({ length: 16 }, (_, i) => i - 8);
    const { b } = await session.run({ x: new ort.Tensor('float32', x, [2, 8]) });
    assert.deepEqual(
      [...(b.data as Float32Array)],
      [...x].map(() => 0),
    ); // relu(x) + -relu(x)
  });

  it('refuses a module called twice with another module in between (TorchScript blk and blk_1)', () => {
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, buildModel(scopedModel(true)));
    assert.throws(
      () => compileModules(file, 'm', TARGET, ['blk'], {}),
      (e: unknown) =>
        e instanceof CompileError && /module 'blk' is not one call: Sigmoid node '\/head\/Sigmoid' of module 'head'/.test(e.message),
    );
    // the head alone is one call
    assert.equal(compileModules(file, 'm', TARGET, ['head'], {})[0].json.nodes.length, 1);
  });
});

describe('ait compile --module: real models', function () {
  this.timeout(600_000);
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-module-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('ResNet-50 (dynamo): layer1 and layer4.2 compile whole and match the full model', async function () {
    const { file, bytes } = materialized(sharedModel('resnet50', this), dir);
    const builds = compileModules(file, 'resnet50', TARGET, ['layer1', 'layer4.2'], {});
    assert.deepEqual(
      builds.map((b) => [b.json.module, b.json.inputs.map((t) => t.shape), b.json.outputs.map((t) => t.shape)]),
      [
        ['layer1', [['batch', 64, 56, 56]], [['batch', 256, 56, 56]]],
        ['layer4.2', [['batch', 2048, 7, 7]], [['batch', 2048, 7, 7]]],
      ],
    );
    assert.deepEqual(builds[0].json.inputs[0].dynamicAxes, [0]);
    assert.equal(builds[0].json.returns, 'tensor');
    // every node of layer1 (3 bottlenecks: 3 convs + 3 relus + add each, one downsample conv) and nothing else
    assert.equal(builds[0].json.nodes.length, 22);
    for (const b of builds) {
      assert.ok(b.files.has('src/model.cu'), 'CUDA sources generated');
      const graph = JSON.parse(b.files.get('graph.json') as string) as { nodes: { status?: { supported: boolean } }[] };
      assert.ok(graph.nodes.every((n) => n.status?.supported !== false));
    }
    await checkAgainstFullModel(
      bytes,
      file,
      { input: new ort.Tensor('float32', randomInput([2, 3, 224, 224], 3), [2, 3, 224, 224]) },
      builds,
      ['layer4.2'],
    );
  });

  it('Mask R-CNN (TorchScript): backbone, rpn.head and the RoI heads compile whole and match the full model', async function () {
    const { file, bytes } = materialized(sharedModel('maskrcnn_resnet50_fpn', this), dir);
    // rpn and roi_heads hold NMS, TopK and RoIAlign (and unscoped nodes of the exporter's passes between their nodes)
    const modules = ['backbone', 'rpn.head', 'roi_heads.box_head', 'roi_heads.mask_head', 'rpn', 'roi_heads'];
    const builds = compileModules(file, 'maskrcnn', TARGET, modules, {});
    const [backbone, head, boxHead, , rpn, roiHeads] = builds;
    assert.deepEqual(
      rpn.json.inputs.map((t) => t.name),
      backbone.json.outputs.map((t) => t.name),
    );
    assert.equal(rpn.json.outputs.length, 1); // the proposals
    assert.deepEqual(
      roiHeads.json.outputs.map((t) => t.shape?.length),
      [2, 1, 1, 4],
    ); // boxes, labels, scores, masks
    // the FPN's five levels (in the order the FPN computes them: top-down, then the pool level) feed the RPN head
    assert.equal(backbone.json.outputs.length, 5);
    assert.deepEqual(
      head.json.inputs.map((t) => t.name),
      backbone.json.outputs.map((t) => t.name),
    );
    assert.deepEqual(
      backbone.json.outputs.map((t) => t.shape),
      [
        [1, 256, 14, 19],
        [1, 256, 28, 38],
        [1, 256, 56, 76],
        [1, 256, 112, 152],
        [1, 256, 7, 10],
      ],
    );
    // the head's five calls (cls_logits_1 … of the TorchScript names) are one module: 2 outputs per level
    assert.equal(head.json.outputs.length, 10);
    assert.equal(backbone.json.returns, 'tuple');
    // the box head takes the pooled RoIs, as many as the RPN keeps (a run-time dim)
    assert.deepEqual(boxHead.json.inputs[0].dynamicAxes, [0]);
    assert.deepEqual(boxHead.json.outputs[0].shape!.slice(1), [1024]);
    await checkAgainstFullModel(bytes, file, { image: new ort.Tensor('float32', randomInput([3, 448, 608], 5), [3, 448, 608]) }, builds);
  });

  it('a module path that matches no node is an error naming the top-level modules', function () {
    const file = sharedModel('maskrcnn_resnet50_fpn', this);
    assert.deepEqual(topLevelModules(importOnnxFile(file, {}).graph).slice(0, 4), ['transform', 'backbone', 'rpn', 'roi_heads']);
    assert.throws(
      () => compileModules(file, 'maskrcnn', TARGET, ['backbone.trunk'], {}),
      (e: unknown) =>
        e instanceof CompileError &&
        /no ONNX node lies under module 'backbone\.trunk'.*transform, backbone, rpn, roi_heads/.test(e.message),
    );
    assert.throws(
      () => compileModules(file, 'maskrcnn', TARGET, ['backbone/body'], {}),
      (e: unknown) => e instanceof CompileError && /is not a module path/.test(e.message),
    );
  });
});

describe('ait compile --module: generated sources', function () {
  this.timeout(900_000);
  it("Mask R-CNN's rpn (TopK, NMS) and roi_heads (RoIAlign) module builds: model.cu compiles with nvcc for sm_90a", function () {
    const model = sharedModel('maskrcnn_resnet50_fpn', this);
    if (!haveNvcc()) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-module-nvcc-'));
    try {
      const out = path.join(dir, 'out');
      const result = compileModel(model, { out, target: TARGET, modules: ['rpn', 'roi_heads'] });
      assert.ok(result.ok);
      for (const m of ['rpn', 'roi_heads']) nvccCompileGenerated(path.join(out, m), ['src/model.cu'], gencodeOf(TARGET));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ait compile --module: CLI', function () {
  this.timeout(300_000);
  it('writes one build per module with module.json and ait_inject.py, and modules.json', async function () {
    const model = sharedModel('resnet50', this);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-module-cli-'));
    try {
      const lines: string[] = [];
      const program = buildProgram(
        (s) => lines.push(s),
        (s) => lines.push(s),
      );
      await program.parseAsync([
        'node',
        'ait',
        'compile',
        model,
        '--target',
        TARGET,
        '--module',
        'layer1,layer2',
        '--module',
        'fc',
        '-o',
        path.join(dir, 'out'),
      ]);
      assert.equal(process.exitCode ?? 0, 0, lines.join('\n'));
      const out = path.join(dir, 'out');
      const listing = JSON.parse(fs.readFileSync(path.join(out, 'modules.json'), 'utf8')) as { modules: { module: string; dir: string }[] };
      assert.deepEqual(
        listing.modules.map((m) => m.module),
        ['layer1', 'layer2', 'fc'],
      );
      for (const m of listing.modules) {
        for (const f of ['module.json', 'ait_inject.py', 'ait_model.py', 'Makefile', 'graph.json'])
          assert.ok(fs.existsSync(path.join(out, m.dir, f)), `${m.dir}/${f}`);
      }
      const fc = JSON.parse(fs.readFileSync(path.join(out, 'fc', 'module.json'), 'utf8')) as {
        outputs: { name: string }[];
        weights: string[];
      };
      assert.deepEqual(
        fc.outputs.map((t) => t.name),
        ['logits'],
      );
      assert.deepEqual(fc.weights, ['fc.bias', 'fc.weight']);
      assert.ok(fs.existsSync(path.join(out, 'ait_inject.py')));
      assert.match(lines.join('\n'), /compiled 3 modules for cuda:sm90/);
      await assert.rejects(
        buildProgram(
          () => {},
          () => {},
        ).parseAsync(['node', 'ait', 'compile', model, '--module', 'layer9', '-o', path.join(dir, 'bad')]),
        /no ONNX node lies under module 'layer9'; the model's top-level modules: .*layer1, layer2, layer3, layer4/,
      );
    } finally {
      process.exitCode = 0;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
