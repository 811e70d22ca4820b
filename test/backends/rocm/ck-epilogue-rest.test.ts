/**
 * A conv whose fused epilogue has more operands than a CK instance takes (EfficientFormerV2's fc2: bias, layer scale,
 * residual, then BatchNorm's scale and shift: 5 operands, CK takes 4) compiles for ROCm: the instance runs the steps
 * up to the 4th operand and one elementwise kernel over the output runs the rest (as the CUDA build runs what its
 * instance cannot fuse), instead of the node being refused. The interpreter on the fused graph matches onnxruntime.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { ckEpilogue } from '../../../compiler/backends/rocm/ck/library';
import { supportOf } from '../../../compiler/backends/support';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { runGraphNamed } from '../../../compiler/interpreter/interpreter';
import { makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';

const K = 16;
const C = 32;

function values(n: number, seed: number, positive = false): number[] {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => (positive ? 0.5 + r() : 2 * r() - 1));
}

/** x [B,C,7,7] → Conv 1×1 + bias → × layer scale [K,1,1] → + r (another conv of x) → BatchNormalization. */
function model(): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', C, 7, 7] }],
    initializers: [
      {
        ...tensor(
          'float32',
          [K, C, 1, 1],
          values(K * C, 1).map((v) => v / 4),
        ),
        name: 'w',
      },
      { ...tensor('float32', [K], values(K, 2)), name: 'b' },
      {
        ...tensor(
          'float32',
          [K, C, 1, 1],
          values(K * C, 10).map((v) => v / 4),
        ),
        name: 'w2',
      },
      { ...tensor('float32', [K, 1, 1], values(K, 3)), name: 'ls' },
      { ...tensor('float32', [K], values(K, 4, true)), name: 'gamma' },
      { ...tensor('float32', [K], values(K, 5)), name: 'beta' },
      { ...tensor('float32', [K], values(K, 6)), name: 'mean' },
      { ...tensor('float32', [K], values(K, 7, true)), name: 'var' },
    ],
    nodes: [
      { op: 'Conv', name: 'fc2', inputs: ['x', 'w', 'b'], outputs: ['h'], attrs: { kernel_shape: [1, 1] } },
      { op: 'Mul', name: 'layer_scale', inputs: ['h', 'ls'], outputs: ['hs'] },
      { op: 'Conv', name: 'shortcut', inputs: ['x', 'w2'], outputs: ['r'], attrs: { kernel_shape: [1, 1] } },
      { op: 'Add', name: 'residual', inputs: ['hs', 'r'], outputs: ['s'] },
      { op: 'BatchNormalization', name: 'bn', inputs: ['s', 'gamma', 'beta', 'mean', 'var'], outputs: ['y'], attrs: { epsilon: 1e-5 } },
    ],
    outputs: ['y'],
  };
}

function write(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ck-rest-'));
  const file = path.join(dir, 'fc2.onnx');
  fs.writeFileSync(file, buildModel(model()));
  return file;
}

describe('rocm backend: an epilogue past the operands a CK instance takes', function () {
  this.timeout(300_000);
  const file = write();

  it('the fused conv has 5 operands: CK takes the first 4 steps with operands, the rest runs after it', () => {
    const { graph } = optimizeModel(file, {});
    const conv = graph.nodes.find((n) => n.op === 'conv2d' && n.inputs.length > 3);
    assert.ok(conv, graph.nodes.map((n) => n.op).join(', '));
    const epilogue = ckEpilogue(CodegenContext.forChecks(graph), conv, K);
    assert.equal(epilogue.operands.length, 4);
    assert.ok(epilogue.rest.length >= 1, JSON.stringify(epilogue));
    assert.equal(epilogue.restOperands.length, conv.inputs.length - 2 - 4);
    assert.equal(supportOf(graph, conv, 'rocm:gfx942').supported, true);
  });

  it('compiles for rocm:gfx942: the CK conv launch, then one elementwise kernel over its output; graph.json says so', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ck-rest-out-'));
    const r = compileModel(file, { out, target: 'rocm:gfx942', maxBatch: 8 });
    assert.deepEqual(
      r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const graphJson = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as {
      nodes: { op: string; id: string; kernel?: { library: string; reason: string; config: { unfusedEpilogue?: string[] } } }[];
    };
    const conv = graphJson.nodes.find((n) => n.op === 'conv2d' && n.kernel?.config.unfusedEpilogue)!;
    assert.ok(conv, 'a conv with an unfused epilogue rest');
    assert.equal(conv.kernel?.library, 'ck');
    assert.ok((conv.kernel?.config.unfusedEpilogue ?? []).length >= 1);
    assert.match(conv.kernel!.reason, /run as an elementwise kernel after the instance \(a CK epilogue takes 4 operands/);
    const modelCu = fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8');
    const launch = modelCu.indexOf('(conv, c.stream));');
    const rest = modelCu.indexOf('launch_fused_elementwise', launch);
    assert.ok(launch > 0 && rest > launch, 'the elementwise rest after the CK launch');
  });

  it('the interpreter on the fused graph matches onnxruntime', async () => {
    const x = makeTensor('float32', [2, C, 7, 7], values(2 * C * 49, 8));
    const { graph } = optimizeModel(file, {});
    const ours = numeric(runGraphNamed(graph, [x]).get('y')!);
    const session = await ort.InferenceSession.create(file);
    const theirs = (await session.run({ x: new ort.Tensor('float32', Float32Array.from(numeric(x)), x.shape) })).y.data as Float32Array;
    assert.equal(ours.length, theirs.length);
    for (let i = 0; i < ours.length; i++)
      assert.ok(Math.abs(ours[i] - theirs[i]) <= 1e-4 * (1 + Math.abs(theirs[i])), `y[${i}]: ${ours[i]} vs ${theirs[i]}`);
  });
});
