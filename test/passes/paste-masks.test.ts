/**
 * PasteMasks (ops/detection.ts) and the rewrite of torchvision's mask-paste Loop into it (passes/paste-masks.ts):
 * - the op's reference equals onnxruntime running the Loop model (test/helpers/paste-masks-model.ts, a 20x24 image)
 *   and our interpreter running the Loop, on boxes inside, across every edge, 1-pixel, larger than the mask and the
 *   image, outside; no detections gives [0, H, W];
 * - the rewrite fires on that model (one PasteMasks, no Loop, the Loop's output shape kept) and on the real Mask
 *   R-CNN; it does not fire on loops that differ (Resize nearest, a body that adds 1): they stay Loops.
 */
import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { optimizeImported, optimizeModel } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { Graph } from '../../compiler/ir/graph';
import { shapeToString } from '../../compiler/ir/symbolic';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { inferShapes } from '../../compiler/passes/shape-inference';
import { matchPasteMasksLoop, pasteCheckBoxes } from '../../compiler/passes/paste-masks';
import { sharedModel } from '../helpers/models';
import { buildModel } from '../helpers/onnx-builder';
import { PasteLoopOptions, pasteMasksLoopModel } from '../helpers/paste-masks-model';

const SMALL: PasteLoopOptions = { height: 20, width: 24, maskH: 7, maskW: 9 };

/** The Loop model imported and inferred (not optimized): the Loop as the interpreter runs it. */
function loopGraph(o: PasteLoopOptions): Graph {
  const model = importOnnxBytes(buildModel(pasteMasksLoopModel(o)));
  inferShapes(model.graph);
  return model.graph;
}

function optimized(o: PasteLoopOptions): Graph {
  const result = optimizeImported(importOnnxBytes(buildModel(pasteMasksLoopModel(o))), 'paste.onnx', { validate: true });
  assert.deepEqual(
    result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  return result.graph;
}

/** Random masks and a set of boxes exercising every form (the pass's own check boxes, other seeds). */
function inputsFor(o: PasteLoopOptions, seed: number, count: number): [TensorValue, TensorValue] {
  const rand = seededRandom(seed);
  const boxes = pasteCheckBoxes(seed + 100, count, o.height, o.width, o.maskH, o.maskW);
  return [
    makeTensor(
      'float32',
      [count, 1, o.maskH, o.maskW],
      Array.from({ length: count * o.maskH * o.maskW }, () => rand() * 2 - 0.5),
    ),
    makeTensor('int64', [count, 4], boxes.flat()),
  ];
}

async function onnxruntime(o: PasteLoopOptions, [masks, boxes]: TensorValue[]): Promise<TensorValue> {
  const session = await ort.InferenceSession.create(buildModel(pasteMasksLoopModel(o)));
  const out = await session.run({
    masks: new ort.Tensor('float32', Float32Array.from(numeric(masks)), masks.shape),
    boxes: new ort.Tensor('int64', BigInt64Array.from(Array.from(numeric(boxes), BigInt)), boxes.shape),
  });
  const t = out.pasted_all;
  return makeTensor('float32', t.dims as number[], t.data as Float32Array);
}

function assertClose(actual: TensorValue, expected: TensorValue, what: string, tolerance: number): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const [a, e] = [numeric(actual), numeric(expected)];
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - e[i]) <= tolerance * (1 + Math.abs(e[i])), `${what}: element ${i} is ${a[i]}, expected ${e[i]}`);
}

describe('PasteMasks and the mask-paste Loop rewrite', function () {
  this.timeout(120_000);

  it('the rewrite fires: one PasteMasks (height/width from the carried tensor), no Loop, the output shape kept', () => {
    const before = loopGraph(SMALL);
    const graph = optimized(SMALL);
    assert.equal(graph.nodes.filter((n) => n.op === 'Loop').length, 0);
    const pastes = graph.nodes.filter((n) => n.op === 'PasteMasks');
    assert.equal(pastes.length, 1);
    const [paste] = pastes;
    assert.equal(paste.domain, 'ait');
    assert.deepEqual(paste.inputs, ['masks', 'boxes']);
    assert.deepEqual([paste.attrs.height?.value, paste.attrs.width?.value], [20, 24]);
    assert.deepEqual(paste.sourceNodes, ['paste_loop']);
    assert.equal(shapeToString(before.tensor('pasted_all').shape), '[D, 20, 24]');
    assert.equal(shapeToString(graph.tensor('pasted_all').shape), '[D, 20, 24]');
  });

  for (const [seed, count] of [
    [1, 14],
    [2, 5],
    [3, 1],
  ])
    it(`${count} detection(s): the rewritten graph equals onnxruntime and the interpreted Loop (seed ${seed})`, async () => {
      const inputs = inputsFor(SMALL, seed, count);
      const [loop] = runGraph(loopGraph(SMALL), inputs);
      const [paste] = runGraph(optimized(SMALL), inputs);
      // the same arithmetic as the Resize reference: exactly equal
      assert.deepEqual(paste.shape, [count, 20, 24]);
      assert.deepEqual(Array.from(numeric(paste)), Array.from(numeric(loop)));
      // something is pasted (the comparison is not of empty canvases)
      assert.ok(Array.from(numeric(paste)).filter((v) => v !== 0).length > 20);
      assertClose(paste, await onnxruntime(SMALL, inputs), 'PasteMasks vs onnxruntime', 2e-6);
    });

  it('no detections: [0, H, W], as the Loop gives', async () => {
    const inputs = inputsFor(SMALL, 4, 0);
    const [paste] = runGraph(optimized(SMALL), inputs);
    assert.deepEqual(paste.shape, [0, 20, 24]);
    assert.deepEqual((await onnxruntime(SMALL, inputs)).shape, [0, 20, 24]);
  });

  it('a mask larger than the image, other sizes: still exact against onnxruntime', async () => {
    const o: PasteLoopOptions = { height: 11, width: 6, maskH: 16, maskW: 13 };
    const inputs = inputsFor(o, 9, 14);
    const graph = optimized(o);
    assert.equal(graph.nodes.filter((n) => n.op === 'PasteMasks').length, 1);
    const [paste] = runGraph(graph, inputs);
    assertClose(paste, await onnxruntime(o, inputs), 'PasteMasks vs onnxruntime', 2e-6);
  });

  for (const variant of ['nearest', 'addOne', 'oneRowFirst', 'fewerTrips'] as const)
    it(`a loop that differs (${variant}) stays a Loop, and computes what it did`, () => {
      const o = { ...SMALL, variant };
      // nearest and addOne have the structure: the numeric check is what refuses them; the others fail the structure
      const original = loopGraph(o);
      const matched = matchPasteMasksLoop(
        original,
        original.nodes.find((n) => n.op === 'Loop')!,
      );
      assert.equal(matched !== undefined, variant === 'nearest' || variant === 'addOne');
      const graph = optimized(o);
      assert.equal(graph.nodes.filter((n) => n.op === 'PasteMasks').length, 0);
      assert.equal(graph.nodes.filter((n) => n.op === 'Loop').length, 1);
      const inputs = inputsFor(o, 5, 6);
      assert.deepEqual(Array.from(numeric(runGraph(graph, inputs)[0])), Array.from(numeric(runGraph(loopGraph(o), inputs)[0])));
    });

  it('bad PasteMasks inputs or attributes are errors naming the node', () => {
    const errorsOf = (boxType: 'int64' | 'float32', maskShape: number[], height: number) => {
      const g = new Graph('g');
      g.addTensor({ name: 'masks', kind: 'input', dtype: 'float32', shape: maskShape });
      g.addTensor({ name: 'boxes', kind: 'input', dtype: boxType, shape: [3, 4] });
      g.inputs = ['masks', 'boxes'];
      g.nodes = [
        {
          id: 'n0',
          op: 'PasteMasks',
          domain: 'ait',
          name: 'paste',
          inputs: ['masks', 'boxes'],
          outputs: ['out'],
          attrs: { height: { type: 'int', value: height }, width: { type: 'int', value: 8 } },
          sourceNodes: ['paste'],
          scope: [],
        },
      ];
      g.outputs = ['out'];
      const r = inferShapes(g);
      return { g, errors: r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message) };
    };
    const ok = errorsOf('int64', [3, 1, 5, 5], 6);
    assert.deepEqual(ok.errors, []);
    assert.equal(shapeToString(ok.g.tensor('out').shape), '[3, 6, 8]');
    assert.match(errorsOf('float32', [3, 1, 5, 5], 6).errors.join(), /PasteMasks node 'paste': boxes must be int64 or int32, not float32/);
    assert.match(errorsOf('int64', [3, 2, 5, 5], 6).errors.join(), /PasteMasks node 'paste': masks must have one channel, not 2/);
    assert.match(errorsOf('int64', [3, 5, 5], 6).errors.join(), /PasteMasks node 'paste': masks must be 4-D/);
    assert.match(errorsOf('int64', [3, 1, 5, 5], 0).errors.join(), /PasteMasks node 'paste': attribute 'height' is 0/);
  });

  it('Mask R-CNN: its mask-paste Loop becomes PasteMasks on the 448x608 canvas, with the detection count as its dim', function () {
    const file = sharedModel('maskrcnn_resnet50_fpn', this);
    const { graph } = optimizeModel(file);
    assert.equal(graph.nodes.filter((n) => n.op === 'Loop').length, 0);
    const [paste] = graph.nodes.filter((n) => n.op === 'PasteMasks');
    assert.ok(paste);
    assert.equal(paste.name, 'Loop_3160');
    assert.deepEqual([paste.attrs.height?.value, paste.attrs.width?.value], [448, 608]);
    const [d, h, w] = graph.tensor(paste.outputs[0]).shape!;
    assert.deepEqual([h, w], [448, 608]);
    assert.equal(String(d), String(graph.tensor(paste.inputs[0]).shape![0]));
    assert.deepEqual(graph.symbols.bounds(d), { min: 0, max: 100 });
  });
});
