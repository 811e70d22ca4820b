/**
 * PasteMasks on the CUDA backend (kernels/paste_masks.cuh, codegen/paste-masks-lowering.ts). No GPU here, so the
 * kernel's index and sampling arithmetic is replayed in TypeScript (float operations through Math.fround) on what the
 * lowering hands it and compared with the interpreter (the op's reference, itself checked against onnxruntime in
 * test/passes/paste-masks.test.ts); every output element must be written exactly once. The small mask-paste Loop
 * model and Mask R-CNN compile for sm90 and sm80 with no unsupported node; nvcc compiles the small model's model.cu
 * for sm_80 and sm_90a and Mask R-CNN's for sm_90a (skipped without nvcc, as test/partition/module.test.ts does).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { pasteMasksPlan } from '../../../compiler/backends/cuda/codegen/paste-masks-lowering';
import { compileModel, optimizeImported } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { pasteCheckBoxes } from '../../../compiler/passes/paste-masks';
import { sharedModel } from '../../helpers/models';
import { GPU_TARGETS, nvccCompileGenerated, requireNvcc } from '../../helpers/nvcc';
import { buildModel } from '../../helpers/onnx-builder';
import { PasteLoopOptions, pasteMasksLoopModel } from '../../helpers/paste-masks-model';

const f = Math.fround;

interface KernelArgs {
  masks: ArrayLike<number>;
  boxes: ArrayLike<number>;
  detections: number;
  maskH: number;
  maskW: number;
  height: number;
  width: number;
}

/** paste_linear_taps */
function taps(o: number, out: number, size: number) {
  const scale = f(f(out) / f(size));
  let c = f(f(f(o) + 0.5) / scale) - 0.5;
  c = f(Math.min(Math.max(f(c), 0), size - 1));
  const lo = Math.floor(c);
  return { lo, hi: Math.min(lo + 1, size - 1), frac: f(c - lo) };
}

/** paste_masks_kernel, every thread of the grid-stride loop; returns the output and how often each element was written. */
function replay(a: KernelArgs): { out: Float32Array; writes: Uint8Array } {
  const plane = a.height * a.width;
  const total = a.detections * plane;
  const out = new Float32Array(total).fill(NaN);
  const writes = new Uint8Array(total);
  for (let i = 0; i < total; i++) {
    const d = Math.floor(i / plane);
    const pixel = i % plane;
    const y = Math.floor(pixel / a.width);
    const x = pixel % a.width;
    const [x0, y0, x1, y1] = [0, 1, 2, 3].map((k) => a.boxes[d * 4 + k]);
    let value = 0;
    if (y >= y0 && y <= y1 && x >= x0 && x <= x1) {
      const ty = taps(y - y0, y1 - y0 + 1, a.maskH);
      const tx = taps(x - x0, x1 - x0 + 1, a.maskW);
      const m = (r: number, col: number) => a.masks[d * a.maskH * a.maskW + r * a.maskW + col];
      const top = f(f(f(1 - tx.frac) * m(ty.lo, tx.lo)) + f(tx.frac * m(ty.lo, tx.hi)));
      const bottom = f(f(f(1 - tx.frac) * m(ty.hi, tx.lo)) + f(tx.frac * m(ty.hi, tx.hi)));
      value = f(f(f(1 - ty.frac) * top) + f(ty.frac * bottom));
    }
    out[i] = value;
    writes[i]++;
  }
  return { out, writes };
}

function compileLoopModel(o: PasteLoopOptions, target: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-paste-'));
  const file = path.join(dir, 'paste.onnx');
  fs.writeFileSync(file, buildModel(pasteMasksLoopModel(o)));
  const out = path.join(dir, 'out');
  return { out, result: compileModel(file, { out, target }) };
}

type GraphJson = { nodes: { op: string; name: string; status?: { supported: boolean }; kernel?: { name: string } }[] };

describe('cuda backend: PasteMasks', function () {
  this.timeout(600_000);
  const small: PasteLoopOptions = { height: 20, width: 24, maskH: 7, maskW: 9 };

  for (const [seed, count, o] of [
    [1, 14, small],
    [2, 9, { height: 11, width: 6, maskH: 16, maskW: 13 }],
    [3, 30, { height: 33, width: 17, maskH: 30, maskW: 30 }],
  ] as const)
    it(`the kernel replayed on what the lowering passes equals the interpreter (${count} masks ${o.maskH}x${o.maskW} on ${o.height}x${o.width})`, () => {
      const graph = optimizeImported(importOnnxBytes(buildModel(pasteMasksLoopModel(o))), 'paste.onnx').graph;
      const node = graph.nodes.find((n) => n.op === 'PasteMasks')!;
      const plan = pasteMasksPlan(CodegenContext.forChecks(graph), node);
      assert.deepEqual([plan.height, plan.width, plan.dims.maskH, plan.dims.maskW], [o.height, o.width, String(o.maskH), String(o.maskW)]);
      assert.equal(plan.boxType, 'int64');
      const rand = seededRandom(seed);
      const masks = Array.from({ length: count * o.maskH * o.maskW }, () => rand() * 2 - 0.5);
      const boxes = pasteCheckBoxes(seed + 50, count, o.height, o.width, o.maskH, o.maskW).flat();
      const [expected] = runGraph(graph, [
        makeTensor('float32', [count, 1, o.maskH, o.maskW], masks),
        makeTensor('int64', [count, 4], boxes),
      ]);
      const { out, writes } = replay({
        masks: Float32Array.from(masks),
        boxes,
        detections: count,
        maskH: o.maskH,
        maskW: o.maskW,
        height: o.height,
        width: o.width,
      });
      assert.ok(
        writes.every((w) => w === 1),
        'every element written once',
      );
      const e = numeric(expected);
      assert.equal(out.length, e.length);
      // fp32 rounding apart (the reference resizes rows, rounds, then columns; the kernel weighs four corners at once)
      for (let i = 0; i < out.length; i++)
        assert.ok(Math.abs(out[i] - e[i]) <= 1e-5 * (1 + Math.abs(e[i])), `element ${i}: ${out[i]} vs ${e[i]}`);
      // and nothing but rounding: every element the reference pastes (non-zero) is non-zero here, and vice versa
      for (let i = 0; i < out.length; i++) assert.equal(out[i] === 0, e[i] === 0, `element ${i}: ${out[i]} vs ${e[i]}`);
    });

  it('no detections: the replay writes nothing (the launcher returns before launching)', () => {
    const { out } = replay({ masks: [], boxes: [], detections: 0, maskH: 7, maskW: 9, height: 20, width: 24 });
    assert.equal(out.length, 0);
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: the mask-paste Loop model compiles with no unsupported node; the count is the run's`, () => {
      const { out, result } = compileLoopModel(small, target);
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as GraphJson;
      assert.deepEqual(
        graph.nodes.filter((n) => n.status?.supported === false).map((n) => n.op),
        [],
      );
      assert.deepEqual(
        graph.nodes.filter((n) => n.op === 'PasteMasks').map((n) => n.kernel?.name),
        ['ait_paste_masks_f16_boxes_int64'],
      );
      const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
      assert.match(model, /PasteMasksArgs<__half, int64_t> args\{\};/);
      assert.match(model, /args\.height = 20;\n\s+args\.width = 24;/);
      // the count is a run-time value, not a constant; an empty run launches nothing
      assert.doesNotMatch(model, /args\.detections = \d+;/);
      assert.match(model, /launch_paste_masks\(args, c\.stream\)/);
    });

  it('Mask R-CNN compiles for sm90 and sm80 with no unsupported node (the mask paste on the GPU)', function () {
    const file = sharedModel('maskrcnn_resnet50_fpn', this);
    for (const target of ['cuda:sm90', 'cuda:sm80']) {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-maskrcnn-'));
      const result = compileModel(file, { out, target, force: true });
      assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as GraphJson;
      assert.deepEqual(
        graph.nodes.filter((n) => n.status?.supported === false).map((n) => n.name),
        [],
      );
      const [paste] = graph.nodes.filter((n) => n.op === 'PasteMasks');
      assert.equal(paste.kernel?.name, 'ait_paste_masks_f16_boxes_int64');
    }
  });

  describe('nvcc compiles the generated model.cu for sm_80 and sm_90a', function () {
    before(function () {
      requireNvcc(this);
    });
    for (const [target, arch] of GPU_TARGETS)
      it(`the mask-paste Loop model, ${target}`, () => {
        const { out, result } = compileLoopModel(small, target);
        assert.ok(result.ok);
        nvccCompileGenerated(out, ['src/model.cu'], arch);
      });
    it("Mask R-CNN's model.cu for sm_90a (about 20 s on 2 cores)", function () {
      const file = sharedModel('maskrcnn_resnet50_fpn', this);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-maskrcnn-'));
      assert.ok(compileModel(file, { out, target: 'cuda:sm90', force: true }).ok);
      nvccCompileGenerated(out, ['src/model.cu'], GPU_TARGETS[0][1]);
    });
  });
});
