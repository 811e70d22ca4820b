/**
 * With weights or without, the same fused graph: a model compiled graph-only and the same model with its weights
 * inline give the same kernels, views and shape arithmetic (op, ONNX nodes, epilogue, kernel, output types); the
 * weights only fold weight preparation (test/helpers/fused-graph-diff.ts), and with them all of it folds.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModel } from '../../compiler/compile';
import { isFloatType } from '../../compiler/ir/dtype';
import { GraphJson } from '../../compiler/ir/serialize';
import { makeTensor, numeric, seededRandom } from '../../compiler/ir/tensor';
import { ImportOptions, importOnnxFile } from '../../compiler/onnx/import';
import { encodeModelWithWeights } from '../../compiler/onnx/materialize';
import { fusedGraphDifferences } from '../helpers/fused-graph-diff';
import { sharedModel } from '../helpers/models';
import { haveNvcc, nvccCompileGenerated } from '../helpers/nvcc';
import { ModelSpec, buildModel, tensor } from '../helpers/onnx-builder';

const TARGET = 'cuda:sm90';

/**
 * The model with every absent float parameter filled and inline. Values only need to be arbitrary and nonzero (so
 * no Add of zeros or Mul by one is a no-op by accident): a seeded block in [0.5, 1.5) tiled over each tensor keeps
 * ViT-B/16's 86M parameters to a fraction of a second.
 */
function withWeights(file: string, options: ImportOptions): Uint8Array {
  const model = importOnnxFile(file, options);
  const random = seededRandom(1);
  const block = Float32Array.from({ length: 4093 }, () => 0.5 + random());
  for (const t of model.graph.tensors.values()) {
    if (t.kind !== 'param' || t.weights !== 'absent') continue;
    assert.ok(t.dtype && isFloatType(t.dtype), `absent parameter '${t.name}' (${t.dtype}) cannot be filled`);
    const value = makeTensor(t.dtype, t.shape as number[]);
    const data = numeric(value);
    for (let i = 0; i < data.length; i += block.length) data.set(block.subarray(0, Math.min(block.length, data.length - i)), i);
    t.value = value;
    t.weights = 'present';
  }
  return encodeModelWithWeights(model);
}

/**
 * Compiles `file` graph-only and with weights into a temporary directory; returns both graph.json. `inspect` sees
 * the two build directories before they are removed.
 */
function compileBothWays(
  file: string,
  options: ImportOptions = {},
  inspect?: (dirs: { graphOnly: string; weighted: string }) => void,
): { graphOnly: GraphJson; weighted: GraphJson } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-weights-'));
  try {
    const weightedFile = path.join(dir, path.basename(file));
    fs.writeFileSync(weightedFile, withWeights(file, options));
    const build = (source: string, out: string): GraphJson => {
      const r = compileModel(source, { ...options, target: TARGET, out: path.join(dir, out) });
      const errors = r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message);
      assert.deepEqual(errors, [], `${out}: compile errors`);
      return JSON.parse(fs.readFileSync(r.graphJsonPath, 'utf8')) as GraphJson;
    };
    const graphs = { graphOnly: build(file, 'graph-only'), weighted: build(weightedFile, 'weights') };
    inspect?.({ graphOnly: path.join(dir, 'graph-only'), weighted: path.join(dir, 'weights') });
    return graphs;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function assertSameFusedGraph(file: string, options: ImportOptions = {}, inspect?: Parameters<typeof compileBothWays>[2]): void {
  const { graphOnly, weighted } = compileBothWays(file, options, inspect);
  assert.notEqual(graphOnly.model.weights, 'present');
  assert.equal(weighted.model.weights, 'present');
  assert.deepEqual(fusedGraphDifferences(graphOnly, weighted), []);
  // The comparison saw kernels and weight preparation, and with the weights present all of it folded (a weight's
  // layout transpose or BatchNorm rescale too, whatever the weight's size).
  const prep = (g: GraphJson) => g.nodes.filter((n) => n.role === 'weight-preparation');
  assert.ok(graphOnly.nodes.some((n) => n.role === 'kernel'));
  assert.ok(prep(graphOnly).length > 0);
  assert.deepEqual(
    prep(weighted).map((n) => `${n.op} ${n.name}`),
    [],
    'weight preparation left unfolded with the weights present',
  );
}

/**
 * A small model with what folds differently with values: a conv and BatchNorm (weight layout, BN folding), a
 * position embedding reshaped, transposed and resized by cubic interpolation (a chain on weights: one preparation
 * graph-only, one fold with weights; cubic has to evaluate on the CPU), shape arithmetic before a Gemm.
 */
function syntheticModel(): ModelSpec {
  const absent = (name: string, dims: number[]) => ({ name, dtype: 'float32' as const, dims, external: 'synthetic.onnx.data' });
  const i64 = (name: string, values: number[]) => ({ ...tensor('int64', [values.length], values), name });
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 3, 16, 16] }],
    outputs: ['y'],
    initializers: [
      absent('conv.weight', [8, 3, 3, 3]),
      absent('conv.bias', [8]),
      absent('bn.scale', [8]),
      absent('bn.shift', [8]),
      absent('bn.mean', [8]),
      absent('bn.var', [8]),
      absent('pos_embed', [1, 16, 8]),
      absent('proj.weight', [8, 8, 1, 1]),
      absent('fc.weight', [10, 8]),
      absent('fc.bias', [10]),
      i64('grid', [1, 4, 4, 8]),
      i64('sizes', [1, 8, 16, 16]),
      i64('zero', [0]),
      i64('minus_one', [-1]),
    ],
    nodes: [
      { op: 'Conv', inputs: ['x', 'conv.weight', 'conv.bias'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1] }, name: 'conv' },
      { op: 'BatchNormalization', inputs: ['c', 'bn.scale', 'bn.shift', 'bn.mean', 'bn.var'], outputs: ['bn'], name: 'bn' },
      { op: 'Relu', inputs: ['bn'], outputs: ['r'], name: 'relu' },
      { op: 'Reshape', inputs: ['pos_embed', 'grid'], outputs: ['pe_grid'], name: 'pe_reshape' },
      { op: 'Transpose', inputs: ['pe_grid'], outputs: ['pe_nchw'], attrs: { perm: [0, 3, 1, 2] }, name: 'pe_transpose' },
      { op: 'Resize', inputs: ['pe_nchw', '', '', 'sizes'], outputs: ['pe'], attrs: { mode: 'cubic' }, name: 'pe_resize' },
      { op: 'Add', inputs: ['r', 'pe'], outputs: ['a'], name: 'add_pe' },
      { op: 'Conv', inputs: ['a', 'proj.weight'], outputs: ['p'], name: 'proj' },
      { op: 'GlobalAveragePool', inputs: ['p'], outputs: ['g'], name: 'pool' },
      { op: 'Shape', inputs: ['g'], outputs: ['g_shape'], name: 'shape' },
      { op: 'Gather', inputs: ['g_shape', 'zero'], outputs: ['batch'], attrs: { axis: 0 }, name: 'batch' },
      { op: 'Concat', inputs: ['batch', 'minus_one'], outputs: ['flat_shape'], attrs: { axis: 0 }, name: 'flat_shape' },
      { op: 'Reshape', inputs: ['g', 'flat_shape'], outputs: ['f'], name: 'flatten' },
      { op: 'Gemm', inputs: ['f', 'fc.weight', 'fc.bias'], outputs: ['y'], attrs: { transB: 1 }, name: 'fc' },
    ],
  };
}

describe('passes: the same fused graph with weights as without', function () {
  this.timeout(120_000);

  it('a small model (conv + BatchNorm, a cubic-resized position embedding, shape arithmetic, Gemm)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-synthetic-'));
    try {
      const file = path.join(dir, 'synthetic.onnx');
      fs.writeFileSync(file, buildModel(syntheticModel()));
      assertSameFusedGraph(file, {}, ({ graphOnly }) => {
        // graph-only, the BN fold and the embedding's chain are weight preparation that runs at bind time
        const model = fs.readFileSync(path.join(graphOnly, 'src', 'model.cu'), 'utf8');
        assert.match(model, /"Resize pe_resize", "ait_resize_\w+_bicubic_f16", prepare_\d+/);
        assert.match(model, /"Mul bn\/conv\.weight_bnfolded", "\w+", prepare_\d+/);
        if (haveNvcc()) nvccCompileGenerated(graphOnly, ['src/model.cu'], 'arch=compute_90a,code=sm_90a');
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const models: [string, ImportOptions?][] = [['vitmatte'], ['resnet50'], ['zoo/efficientnet_b2'], ['vit_base_patch16_224']];
  for (const [name, options] of models)
    it(`${name} (../shared/models)`, function () {
      assertSameFusedGraph(sharedModel(name, this), options);
    });
});
