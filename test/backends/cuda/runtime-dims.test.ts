/**
 * Run-time dims: sizes only the data decides (NonZero's count) become slots of LaunchContext::dims, computed by the
 * op that decides them (a device-to-host read) and read by later ops' size expressions; shape arithmetic over them
 * (min(1000, count), the product of a shape) stays on the host. Checked here: the symbols' definitions and the shape
 * arithmetic of Min/ReduceMin/ReduceProd, a model with NonZero feeding later ops compiling for sm90 and sm80 with
 * the expected generated code (slot assignment, the read, output_shape, no CUDA graph needed), nvcc compiling it,
 * and a TypeScript replay of the NonZero kernels' tiling against the op's reference.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeSafetensorsHeader } from '../../../compiler/backends/cuda/weights';
import { compileModel } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { isConcrete } from '../../../compiler/ir/symbolic';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { isShapeComputation } from '../../../compiler/passes/cost';
import { ModelSpec, buildModel, inferModel } from '../../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated, gencodeOf } from '../../helpers/nvcc';
import { SHARED_MODELS_DIR } from '../../helpers/models';

/** x → Greater(x, 0.5) → NonZero → (coordinates + 1, and the count clamped to 5 as a Slice bound of the coords). */
function nonZeroModel(): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [2, 3, 40] }],
    initializers: [
      { name: 'half', dtype: 'float32', dims: [], values: [0.5] },
      { name: 'one', dtype: 'int64', dims: [], values: [1] },
      { name: 'five', dtype: 'int64', dims: [1], values: [5] },
      { name: 'zero', dtype: 'int64', dims: [1], values: [0] },
      { name: 'axis1', dtype: 'int64', dims: [1], values: [1] },
    ],
    nodes: [
      { op: 'Greater', name: 'gt', inputs: ['x', 'half'], outputs: ['mask'] },
      { op: 'NonZero', name: 'nz', inputs: ['mask'], outputs: ['coords'] },
      { op: 'Add', name: 'plus_one', inputs: ['coords', 'one'], outputs: ['shifted'] },
      { op: 'Shape', name: 'shape', inputs: ['coords'], outputs: ['cshape'] },
      { op: 'Gather', name: 'count', inputs: ['cshape', 'axis1'], outputs: ['n'] },
      { op: 'Concat', name: 'both', inputs: ['n', 'five'], outputs: ['n5'], attrs: { axis: 0 } },
      { op: 'ReduceMin', name: 'k', inputs: ['n5'], outputs: ['kk'], attrs: { keepdims: 1 } },
      { op: 'Slice', name: 'first_k', inputs: ['shifted', 'zero', 'kk', 'axis1'], outputs: ['firstk'] },
    ],
    outputs: [
      { name: 'shifted', dtype: 'int64', dims: [3, null] },
      { name: 'firstk', dtype: 'int64', dims: [3, null] },
    ],
    opset: 13,
  };
}

describe('run-time dims (NonZero and sizes computed from it)', () => {
  it('shape arithmetic over a count stays symbolic: ReduceMin of [count, 5] is min(count, 5) with its definition', () => {
    const { graph } = inferModel(nonZeroModel());
    const coords = graph.tensor('coords').shape!;
    const count = coords[1];
    assert.ok(!isConcrete(count));
    const info = graph.symbols.get(count.symbols[0])!;
    assert.deepEqual(info.definition, { kind: 'runtime', node: 'nz' });
    assert.equal(info.max, 240);
    const k = graph.tensor('kk');
    assert.ok(k.shapeValue, 'ReduceMin of shape values is shape arithmetic');
    const kDim = k.shapeValue![0];
    assert.ok(!isConcrete(kDim));
    const min = graph.symbols.get(kDim.symbols[0])!;
    assert.equal(min.definition?.kind, 'min');
    assert.equal(min.max, 5);
    const reduceNode = graph.nodes.find((n) => n.name === 'k')!;
    assert.ok(isShapeComputation(graph, reduceNode), 'no kernel for the ReduceMin');
    assert.deepEqual(graph.tensor('firstk').shape!.map(String), ['3', kDim.toString()]);
  });

  it('ReduceProd and Max over shape values fold to products and max expressions', () => {
    const { graph } = inferModel({
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 7] }],
      initializers: [{ name: 'three', dtype: 'int64', dims: [1], values: [3] }],
      nodes: [
        { op: 'Shape', name: 's', inputs: ['x'], outputs: ['sh'] },
        { op: 'ReduceProd', name: 'p', inputs: ['sh'], outputs: ['numel'], attrs: { keepdims: 1 } },
        { op: 'Max', name: 'm', inputs: ['numel', 'three'], outputs: ['mx'] },
      ],
      outputs: [{ name: 'mx', dtype: 'int64', dims: [1] }],
      opset: 13,
    });
    assert.equal(String(graph.tensor('numel').shapeValue![0]), '7*B');
    const mx = graph.tensor('mx').shapeValue![0];
    // 7*B ≥ 7 > 3 for every batch ≥ 1: the bounds decide it
    assert.equal(String(mx), '7*B');
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: NonZero and its readers compile; the count is slot 0, read back once, and sizes the outputs`, function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-rtdims-'));
      const file = path.join(dir, 'nz.onnx');
      fs.writeFileSync(file, buildModel(nonZeroModel()));
      const out = path.join(dir, 'out');
      const result = compileModel(file, { out, target, maxBatch: 1 });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const model = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
      assert.match(model, /launch_nonzero_count/);
      assert.equal((model.match(/ait::read_device\(c, &c\.dims\[0\]/g) ?? []).length, 1, 'one read of the count');
      assert.match(model, /launch_nonzero_write\(args, c\.dims\[0\], c\.stream\)/);
      // the Slice's extent is min(count, 5), evaluated on the host from the slot
      assert.match(model, /std::min<int64_t>\((c\.dims\[0\], 5|5, c\.dims\[0\])\)/);
      assert.match(model, /const char\* const kDimNames\[\] = \{"nonzero_\d+"\};/);
      assert.match(model, /void output_shape\(const ait::LaunchContext& c, int32_t index, int64_t\* shape\)/);
      assert.match(model, /case 0:\s+shape\[1\] = c\.dims\[0\];/);
      assert.match(model, /1, kDimNames, output_shape\};/);
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
        nodes: { op: string; kernel?: { name: string } }[];
      };
      assert.ok(graph.nodes.some((n) => n.kernel?.name === 'ait_nonzero_uint8'));
      if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu', 'src/runtime/ait_runtime.cu'], gencodeOf(target));
    });

  it('shape arithmetic a kernel reads (numel == 0 of a NonZero result) is written to the device by value', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-rtdims-'));
    const file = path.join(dir, 'numel.onnx');
    fs.writeFileSync(
      file,
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: [4, 40] }],
        initializers: [{ name: 'zero', dtype: 'int64', dims: [], values: [0] }],
        nodes: [
          { op: 'NonZero', name: 'nz', inputs: ['x'], outputs: ['coords'] },
          { op: 'Shape', name: 'shape', inputs: ['coords'], outputs: ['s'] },
          { op: 'ReduceProd', name: 'numel', inputs: ['s'], outputs: ['n'], attrs: { keepdims: 0 } },
          { op: 'Equal', name: 'empty', inputs: ['n', 'zero'], outputs: ['e'] },
        ],
        outputs: [{ name: 'e', dtype: 'bool', dims: [] }],
        opset: 13,
      }),
    );
    const out = path.join(dir, 'out');
    const result = compileModel(file, { out, target: 'cuda:sm90', maxBatch: 1 });
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const model = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
    assert.match(model, /ait::kernels::SmallValues<int64_t> values\{\{static_cast<int64_t>\(2 \* c\.dims\[0\]\)\}, 1\};/);
    assert.match(model, /launch_write_values\(/);
    if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
  });

  for (const target of ['cuda:sm90', 'cuda:sm80'])
    it(`${target}: RetinaNet (torchvision) compiles whole: NonZero, TopK of k = min(1000, count), the If around batched NMS, NMS on fp32 boxes; nvcc compiles model.cu`, function () {
      this.timeout(300000);
      const file = path.join(SHARED_MODELS_DIR, 'zoo', 'retinanet_resnet50_fpn.onnx');
      if (!fs.existsSync(file)) {
        console.log(`    (skipped: ${file} not found; ../shared/models is only on developer machines and CI)`);
        this.skip();
      }
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-retinanet-'));
      const result = compileModel(file, { out: path.join(out, 'b'), target });
      assert.deepEqual(
        result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
        [],
      );
      const model = fs.readFileSync(path.join(out, 'b', 'src', 'model.cu'), 'utf8');
      for (const launch of ['launch_nonzero_count', 'launch_topk', 'launch_nms', 'read_device(c, &condition', 'launch_write_values'])
        assert.ok(model.includes(launch), launch);
      // storage precision: the NMS boxes and the box decoding/offset chain in fp32, the backbone and heads in fp16
      const graph = JSON.parse(fs.readFileSync(path.join(out, 'b', 'graph.json'), 'utf8')) as {
        tensors: Record<string, { storage?: string }>;
        nodes: { op: string; inputs: string[]; outputs: string[]; kernel?: { name: string } }[];
      };
      const fp32 = (t: string) => graph.tensors[t]?.storage === 'float32';
      const nms = graph.nodes.find((n) => n.op === 'NonMaxSuppression')!;
      assert.ok(fp32(nms.inputs[0]) && fp32(nms.inputs[1]), 'NMS boxes and scores');
      assert.equal(nms.kernel?.name, 'ait_nms_f32');
      // decoding (anchors + deltas · size, clipped), the per-level boxes, the class offsets, the boxes output
      for (const t of ['/Add_22_output_0', '/Min_output_0', '/Concat_25_output_0', 'If_2649/else/offsets', 'If_2649/else/boxes_for_nms'])
        assert.ok(fp32(t), t);
      assert.ok(model.includes('{"2627", ait::DType::kFloat32'), 'the detections output (boxes) is described as fp32');
      assert.ok(
        model.includes('ait::kernels::GatherArgs<float, int64_t> args{static_cast<const float*>(c.weights['),
        'anchors: an fp32 weight',
      );
      // the anchors (constants) are written F32 in weights.safetensors; nothing else is
      const weights = decodeSafetensorsHeader(fs.readFileSync(path.join(out, 'b', 'weights.safetensors')));
      const f32 = [...weights.tensors].filter(([, t]) => t.dtype === 'F32');
      assert.ok(
        f32.some(([, t]) => t.shape.join() === '38304,4'),
        'the stride-8 level anchors',
      );
      for (const [name] of f32) assert.ok(fp32(name), `${name} is an fp32 tensor`);
      const convs = graph.nodes.filter((n) => n.op === 'conv2d');
      assert.ok(convs.length > 50);
      for (const n of convs) assert.ok(!fp32(n.outputs[0]), `${n.outputs[0]} is fp16`);
      // the regression deltas are copied in fp16 (Concat/Slice/Gather), converted where the decoding reads them
      assert.ok(!fp32('/head/regression_head/Concat_10_output_0') && !fp32('/Gather_14_output_0'));
      assert.ok(
        graph.nodes.filter((n) => n.op === 'Cast' && n.inputs.some((t) => !fp32(t)) && n.outputs.some(fp32)).length <= 2,
        'few conversions',
      );
      if (haveNvcc()) nvccCompileGenerated(path.join(out, 'b'), ['src/model.cu'], gencodeOf(target));
    });

  it('the NonZero kernels’ tiling (count per tile, exclusive offsets, in-order writes) matches the reference', () => {
    const TILE = 2048;
    const ITEMS = 8;
    const random = seededRandom(5);
    for (const shape of [[5000], [3, 1000, 3], [2, 2049], [7]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = Array.from({ length: n }, () => (random() < 0.3 ? 0 : random()));
      const x = makeTensor('float32', shape, data);
      const { graph } = inferModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: shape }],
        nodes: [{ op: 'NonZero', name: 'nz', inputs: ['x'], outputs: ['y'] }],
        outputs: [{ name: 'y', dtype: 'int64', dims: [shape.length, null] }],
        opset: 13,
      });
      const [expected] = runGraph(graph, [x]);
      // phase 1 + scan
      const tiles = Math.ceil(n / TILE);
      const offsets = new Array<number>(tiles + 1).fill(0);
      for (let t = 0; t < tiles; t++) for (let i = t * TILE; i < Math.min(n, (t + 1) * TILE); i++) offsets[t] += data[i] !== 0 ? 1 : 0;
      let carry = 0;
      for (let t = 0; t < tiles; t++) [offsets[t], carry] = [carry, carry + offsets[t]];
      offsets[tiles] = carry;
      const count = offsets[tiles];
      // phase 2: thread-ordered exclusive scan inside the tile, row-major coordinates, last axis first
      const outData = new Array<number>(shape.length * count).fill(-1);
      for (let t = 0; t < tiles; t++) {
        let position = offsets[t];
        for (let thread = 0; thread < TILE / ITEMS; thread++)
          for (let k = 0; k < ITEMS; k++) {
            const e = t * TILE + thread * ITEMS + k;
            if (e >= n || data[e] === 0) continue;
            let rest = e;
            for (let d = shape.length - 1; d >= 0; d--) {
              outData[d * count + position] = rest % shape[d];
              rest = Math.floor(rest / shape[d]);
            }
            position++;
          }
      }
      assert.deepEqual(expected.shape, [shape.length, count]);
      assert.deepEqual(outData, Array.from(numeric(expected)));
    }
  });
});
