/**
 * Composable Kernel instances of the ROCm backend (compiler/backends/rocm/ck): golden text of a GEMM + bias + ReLU
 * and a conv + bias + ReLU instance; CPU replays of what an instance computes (no AMD GPU here) — the GEMM with CK's
 * B layout and the epilogue functors (test/helpers/ew-replay.ts) reading each operand with the row stride the
 * instance gives it, the grouped conv with the lengths and strides the instance hands CK's NHWGC/KYXGC/NHWGK
 * descriptors — against the interpreter (and onnxruntime for the ONNX model); refusals; and, opt-in
 * (AIT_TEST_CK=1 with CK headers in AIT_CK_DIR or .deps/composable_kernel), hipcc compiling the instances and a
 * whole small conv + GEMM model library for gfx90a with its generated Makefile.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CodegenContext } from '../../../compiler/backends/cuda/codegen/context';
import { ckEpilogue, ckTileFor } from '../../../compiler/backends/rocm/ck/library';
import { CK_TILES, COMPUTE_UNITS, chooseCkTile, ckCandidates, ckInstance, vectorWidth } from '../../../compiler/backends/rocm/ck/instances';
import { supportOf } from '../../../compiler/backends/support';
import { compileModel, optimizeModel } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { Graph, Node, attrInt } from '../../../compiler/ir/graph';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { parseFunctor } from '../../helpers/ew-replay';
import { hipEnv, requireHipcc } from '../../helpers/hipcc';
import { ModelSpec, buildModel, tensor } from '../../helpers/onnx-builder';

const GOLDEN = path.join(__dirname, 'golden');
const ROOT = path.resolve(__dirname, '..', '..', '..');

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.AIT_UPDATE_GOLDEN === '1') fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs from its golden file (AIT_UPDATE_GOLDEN=1 to accept)`);
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ck-'));
const values = (n: number, seed: number) => {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => random() - 0.5);
};

/** Conv + bias + ReLU → global pool → Gemm + bias + ReLU: one CK conv and one CK GEMM instance. */
const SMALL_CK_MODEL: ModelSpec = {
  inputs: [{ name: 'x', dtype: 'float32', dims: [2, 16, 8, 8] }],
  initializers: [
    { ...tensor('float32', [32, 16, 3, 3], values(32 * 16 * 9, 1)), name: 'w' },
    { ...tensor('float32', [32], values(32, 2)), name: 'cb' },
    { ...tensor('float32', [10, 32], values(320, 3)), name: 'fw' },
    { ...tensor('float32', [10], values(10, 4)), name: 'fb' },
  ],
  nodes: [
    { op: 'Conv', inputs: ['x', 'w', 'cb'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
    { op: 'Relu', inputs: ['c'], outputs: ['r'] },
    { op: 'GlobalAveragePool', inputs: ['r'], outputs: ['g'] },
    { op: 'Flatten', inputs: ['g'], outputs: ['f'] },
    { op: 'Gemm', inputs: ['f', 'fw', 'fb'], outputs: ['gm'], attrs: { transB: 1 } },
    { op: 'Relu', inputs: ['gm'], outputs: ['y'] },
  ],
  outputs: ['y'],
};

/** Gemm (B [N, K], transB) or MatMul (B [K, N]) + bias + residual + ReLU. */
function gemmModel(transB: boolean): ModelSpec {
  const [m, n, k] = [5, 12, 20];
  return {
    inputs: [
      { name: 'x', dtype: 'float32', dims: [m, k] },
      { name: 'res', dtype: 'float32', dims: [m, n] },
    ],
    initializers: [
      { ...tensor('float32', transB ? [n, k] : [k, n], values(n * k, 5)), name: 'w' },
      { ...tensor('float32', [n], values(n, 6)), name: 'b' },
    ],
    nodes: [
      transB
        ? { op: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['g'], attrs: { transB: 1 } }
        : { op: 'MatMul', inputs: ['x', 'w'], outputs: ['mm'] },
      ...(transB ? [] : [{ op: 'Add', inputs: ['mm', 'b'], outputs: ['g'] }]),
      { op: 'Add', inputs: ['g', 'res'], outputs: ['s'] },
      { op: 'Relu', inputs: ['s'], outputs: ['y'] },
    ],
    outputs: ['y'],
  };
}

/**
 * A 1×1 conv, then a grouped 3×3 conv (group 2) + bias + the 1×1 conv's output (a residual in NHWC, as in ResNet) +
 * ReLU. The 1×1 conv's output is a model output too, so the replay can read the residual.
 */
const CONV_MODEL: ModelSpec = {
  inputs: [{ name: 'x', dtype: 'float32', dims: [2, 8, 7, 7] }],
  initializers: [
    { ...tensor('float32', [8, 8, 1, 1], values(64, 7)), name: 'wa' },
    { ...tensor('float32', [8], values(8, 8)), name: 'ba' },
    { ...tensor('float32', [8, 4, 3, 3], values(288, 9)), name: 'wb' },
    { ...tensor('float32', [8], values(8, 10)), name: 'bb' },
  ],
  nodes: [
    { op: 'Conv', inputs: ['x', 'wa', 'ba'], outputs: ['c1'], attrs: { kernel_shape: [1, 1] } },
    { op: 'Conv', inputs: ['c1', 'wb', 'bb'], outputs: ['c2'], attrs: { pads: [1, 1, 1, 1], group: 2, kernel_shape: [3, 3] } },
    { op: 'Add', inputs: ['c2', 'c1'], outputs: ['s'] },
    { op: 'Relu', inputs: ['s'], outputs: ['y'] },
  ],
  outputs: ['y', 'c1'],
};

function write(spec: ModelSpec, name: string): string {
  const file = path.join(tmp(), `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

function randomInput(shape: number[], seed: number): TensorValue {
  return makeTensor(
    'float32',
    shape,
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
  );
}

/** The interpreter's outputs on the ONNX model, each checked against onnxruntime. */
async function reference(spec: ModelSpec, inputs: Record<string, TensorValue>): Promise<TensorValue[]> {
  const model = importOnnxBytes(buildModel(spec));
  inferShapes(model.graph);
  const ours = runGraph(
    model.graph,
    spec.inputs!.map((i) => inputs[i.name]),
  );
  const session = await ort.InferenceSession.create(buildModel(spec));
  const feeds = Object.fromEntries(
    Object.entries(inputs).map(([name, t]) => [name, new ort.Tensor('float32', Float32Array.from(numeric(t)), t.shape)]),
  );
  const theirs = await session.run(feeds);
  spec.outputs.forEach((output, o) => {
    const name = typeof output === 'string' ? output : output.name;
    const expected = numeric(ours[o]);
    const data = theirs[name].data as Float32Array;
    expected.forEach((v, i) => assert.ok(Math.abs(v - data[i]) < 1e-4, `${name}: interpreter ${v} vs onnxruntime ${data[i]} at ${i}`));
  });
  return ours;
}

const close = (actual: number[], expected: number[], what: string) => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i])), `${what}: element ${i} is ${v}, expected ${expected[i]}`),
  );
};

/** The fused graph and its node of `op`. */
function fused(spec: ModelSpec, op: string): { graph: Graph; node: Node; ctx: CodegenContext } {
  const { graph } = optimizeModel(write(spec, 'fused'), {});
  const node = graph.nodes.find((n) => n.op === op);
  assert.ok(node, `a fused ${op} node (${graph.nodes.map((n) => n.op).join(', ')})`);
  return { graph, node, ctx: CodegenContext.forChecks(graph) };
}

/** The value the fused graph holds for a weight (after its layout/dtype passes). */
function weightValue(graph: Graph, name: string): number[] {
  const value = graph.lookupTensor(name)?.value;
  assert.ok(value, `weight ${name} has a value`);
  return Array.from(numeric(value));
}

describe('rocm backend: Composable Kernel instances', function () {
  this.timeout(300_000);

  it('a small conv + GEMM model compiles for rocm:gfx90a: golden conv and GEMM+bias+ReLU instances, Makefile lists them', () => {
    const out = path.join(tmp(), 'out');
    const result = compileModel(write(SMALL_CK_MODEL, 'small_ck'), { target: 'rocm:gfx90a', out });
    assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
    assert.match(result.codegen ?? '', /2 CK instances/);
    const sources = fs.readdirSync(path.join(out, 'src')).filter((f) => /^ck_\d+\.cu$/.test(f));
    assert.deepEqual(sources.sort(), ['ck_0.cu', 'ck_1.cu']);
    const texts = sources.map((f) => fs.readFileSync(path.join(out, 'src', f), 'utf8'));
    const conv = texts.find((t) => t.includes('DeviceGroupedConvFwdMultipleD_Xdl_CShuffle'))!;
    const gemm = texts.find((t) => t.includes('DeviceGemmMultipleD_Xdl_CShuffle'))!;
    golden('ck_conv_bias_relu.cu', conv);
    golden('ck_gemm_bias_relu.cu', gemm);
    // named after the hash of their text; declared in ait_ck.h; called from model.cu; built by the Makefile with CK_DIR
    const header = fs.readFileSync(path.join(out, 'src/ait_ck.h'), 'utf8');
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    for (const text of [conv, gemm]) {
      const symbol = /^const char\* (ait_ck_(?:conv|gemm)_[0-9a-f]{12})\(/m.exec(text)![1];
      assert.match(header, new RegExp(`${symbol}\\(`));
      assert.match(model, new RegExp(`AIT_RETURN_IF_FAILED\\(${symbol}\\((conv|gemm), c\\.stream\\)\\)`));
    }
    assert.match(fs.readFileSync(path.join(out, 'Makefile'), 'utf8'), /^CK_SOURCES := src\/ck_0\.cu src\/ck_1\.cu$/m);
    const graph = JSON.parse(fs.readFileSync(result.graphJsonPath, 'utf8')) as { nodes: { op: string; kernel?: { library: string } }[] };
    assert.deepEqual(
      graph.nodes.filter((n) => n.kernel?.library === 'ck').map((n) => n.op),
      ['conv2d', 'gemm'],
    );
    // the same model for CUDA: CUTLASS instances, no CK
    const cuda = compileModel(write(SMALL_CK_MODEL, 'small_ck'), { target: 'cuda:sm80', out: path.join(tmp(), 'cuda') });
    assert.ok(cuda.ok);
    assert.match(cuda.codegen ?? '', /CUTLASS|instances/);
  });

  for (const transB of [true, false])
    it(`${transB ? 'Gemm with B [N, K] (column-major B)' : 'MatMul with B [K, N] (row-major B)'} + bias + residual + ReLU: the instance's math, replayed, matches the interpreter and onnxruntime`, async () => {
      const spec = gemmModel(transB);
      const inputs = { x: randomInput([5, 20], 11), res: randomInput([5, 12], 12) };
      const expected = Array.from(numeric((await reference(spec, inputs))[0]));
      const { graph, node, ctx } = fused(spec, 'gemm');
      const [m, n, k] = [5, 12, 20];
      const epilogue = ckEpilogue(ctx, node, n);
      assert.deepEqual(epilogue.functors, ['ew::AddInput<1>{}', 'ew::AddInput<2>{}', 'ew::Relu{}']);
      assert.deepEqual(
        epilogue.operands.map((o) => o.perChannel),
        [true, false],
      );
      // B as the instance reads it: column-major [n, k] (trans_b) or row-major [k, n]
      const layoutB = attrInt(node, 'trans_b', 0) ? 'column' : 'row';
      assert.equal(layoutB, transB ? 'column' : 'row');
      const w = weightValue(graph, node.inputs[1]);
      const a = Array.from(numeric(inputs.x));
      // each D read at row stride 0 (a [n] vector, d_per_channel) or n
      const operands = epilogue.operands.map((o) => ({
        data: o.perChannel ? weightValue(graph, o.tensor) : Array.from(numeric(inputs.res)),
        stride: o.perChannel ? 0 : n,
      }));
      const chain = epilogue.functors.map(parseFunctor);
      const got: number[] = [];
      for (let row = 0; row < m; row++)
        for (let col = 0; col < n; col++) {
          let acc = 0;
          for (let i = 0; i < k; i++) acc += a[row * k + i] * (layoutB === 'column' ? w[col * k + i] : w[i * n + col]);
          const slots = [acc, ...operands.map((d) => d.data[row * d.stride + col])];
          got.push(chain.reduce((v, f) => f(v, slots), slots[0]));
        }
      close(got, expected, 'CK GEMM replay');
    });

  it('grouped conv + bias + residual + ReLU: the lengths/strides the instance hands CK, replayed, match the interpreter and onnxruntime', async () => {
    const inputs = { x: randomInput([2, 8, 7, 7], 21) };
    const [y, c1] = await reference(CONV_MODEL, inputs);
    const expected = Array.from(numeric(y));
    const { graph } = optimizeModel(write(CONV_MODEL, 'conv'), {});
    const node = graph.nodes.find((n) => n.op === 'conv2d' && attrInt(n, 'group', 1) === 2);
    assert.ok(node, 'the grouped conv node');
    const ctx = CodegenContext.forChecks(graph);
    const epilogue = ckEpilogue(ctx, node, 8);
    assert.deepEqual(epilogue.functors, ['ew::AddInput<1>{}', 'ew::AddInput<2>{}', 'ew::Relu{}']);
    assert.deepEqual(
      epilogue.operands.map((o) => o.perChannel),
      [true, false],
    );
    // the run-time arguments, as CkLibrary.conv2d writes them (NHWC sizes, OHWI weight)
    const [n, h, w, c, k, r, s, p, q, group] = [2, 7, 7, 8, 8, 3, 3, 7, 7, 2];
    const [strideH, strideW, padTop, padLeft] = [1, 1, 1, 1];
    // the instance's lengths and strides, as in its text (asserted below), evaluated here
    const cg = c / group;
    const kg = k / group;
    const xStrides = [cg, h * w * c, 1, w * c, c];
    const wStrides = [kg * r * s * cg, r * s * cg, 1, s * cg, cg];
    const yStrides = [kg, p * q * k, 1, q * k, k];
    const vectorStrides = [kg, 0, 1, 0, 0];
    const text = ckInstance({
      kind: 'conv',
      tile: CK_TILES[0],
      vectors: { a: 4, b: 4, cde: 4 },
      epilogue: epilogue.functors,
      operands: 2,
      convSpecialization: 'Default',
    }).code;
    for (const line of [
      'x_strides{cg, args.h * args.w * args.c, 1, args.w * args.c, args.c}',
      'w_strides{kg * args.r * args.s * cg, args.r * args.s * cg, 1, args.s * cg, cg}',
      'y_strides{kg, args.p * args.q * args.k, 1, args.q * args.k, args.k}',
      'vector_strides{kg, 0, 1, 0, 0}',
      'd_strides[i] = args.d_per_channel[i] ? vector_strides : y_strides;',
    ])
      assert.ok(text.includes(line), `instance text has ${line}`);
    // NHWC activations (the layout pass's form), the OHWI weight the fused node reads
    const nhwc = (t: TensorValue) => {
      const [tn, tc, th, tw] = t.shape as number[];
      const src = numeric(t);
      const dst: number[] = [];
      for (let i = 0; i < tn; i++)
        for (let yy = 0; yy < th; yy++)
          for (let xx = 0; xx < tw; xx++) for (let ch = 0; ch < tc; ch++) dst.push(src[((i * tc + ch) * th + yy) * tw + xx]);
      return dst;
    };
    const xv = nhwc(c1);
    const wv = weightValue(graph, node.inputs[1]);
    assert.equal(wv.length, k * r * s * cg);
    const operands = epilogue.operands.map((o) => ({
      data: o.perChannel ? weightValue(graph, o.tensor) : xv,
      strides: o.perChannel ? vectorStrides : yStrides,
    }));
    const chain = epilogue.functors.map(parseFunctor);
    // CK's implicit GEMM (transform_conv_fwd_to_gemm.hpp, NHWGC/KYXGC/NHWGK): A (n, hi, wi, c) at g·s0 + n·s1 + hi·s3 +
    // wi·s4 + c; B (k, y·x, c) at g·s0 + k·s1 + yx·s4 + c; E and each D at g·s0 + (n·P·Q + ho·Q + wo)·s4 + k
    const out = new Array<number>(n * p * q * k).fill(0);
    for (let g = 0; g < group; g++)
      for (let img = 0; img < n; img++)
        for (let ho = 0; ho < p; ho++)
          for (let wo = 0; wo < q; wo++)
            for (let kk = 0; kk < kg; kk++) {
              let acc = 0;
              for (let fy = 0; fy < r; fy++)
                for (let fx = 0; fx < s; fx++) {
                  const hi = ho * strideH - padTop + fy;
                  const wi = wo * strideW - padLeft + fx;
                  if (hi < 0 || hi >= h || wi < 0 || wi >= w) continue;
                  for (let ch = 0; ch < cg; ch++)
                    acc +=
                      xv[g * xStrides[0] + img * xStrides[1] + hi * xStrides[3] + wi * xStrides[4] + ch] *
                      wv[g * wStrides[0] + kk * wStrides[1] + (fy * s + fx) * wStrides[4] + ch];
                }
              const row = img * p * q + ho * q + wo;
              const slots = [acc, ...operands.map((d) => d.data[g * d.strides[0] + row * d.strides[4] + kk])];
              out[g * yStrides[0] + row * yStrides[4] + kk] = chain.reduce((v, f) => f(v, slots), slots[0]);
            }
    // back to NCHW
    const got: number[] = [];
    for (let img = 0; img < n; img++)
      for (let ch = 0; ch < k; ch++) for (let i = 0; i < p * q; i++) got.push(out[(img * p * q + i) * k + ch]);
    close(got, expected, 'CK grouped conv replay');
  });

  it('vector widths follow K, N and C divisibility; the heuristic picks a smaller tile for a small problem', () => {
    assert.deepEqual([64, 20, 6, 3].map(vectorWidth), [8, 4, 2, 1]);
    assert.equal(
      chooseCkTile({ m: 8192, n: 4096, k: 1024 }, 104).tile.m * chooseCkTile({ m: 8192, n: 4096, k: 1024 }, 104).tile.n,
      256 * 128,
    );
    const small = chooseCkTile({ m: 64, n: 64, k: 64 }, 104).tile;
    assert.deepEqual([small.m, small.n], [64, 64]);
    // an odd K gives scalar A/B reads in the instance text
    const { functors } = { functors: [] as string[] };
    const odd = ckInstance({
      kind: 'gemm',
      tile: CK_TILES[2],
      vectors: { a: vectorWidth(27), b: vectorWidth(27), cde: vectorWidth(10) },
      epilogue: functors,
      operands: 0,
      layoutB: 'column',
    });
    assert.match(odd.code, /S<4, 64, 1>, S<1, 0, 2>, S<1, 0, 2>, 2, 1, 8, 1,/);
    assert.match(odd.code, /S<1, 32, 1, 8>, 2>;/);
    assert.match(odd.symbol, /^ait_ck_gemm_[0-9a-f]{12}$/);
    // candidates (a future profiler's): every tile; a row-major B's vector narrowed to each tile's per-thread N slice
    const candidates = ckCandidates({ kind: 'gemm', vectors: { a: 8, b: 8, cde: 8 }, epilogue: [], operands: 0, layoutB: 'row' });
    assert.equal(candidates.length, CK_TILES.length);
    assert.deepEqual(
      candidates.map((c) => c.spec.vectors.b),
      CK_TILES.map((t) => Math.min(8, t.n / Math.min(32, t.block / 4))),
    );
    assert.equal(new Set(candidates.map((c) => c.symbol)).size, CK_TILES.length);
  });

  it('batched GEMM (L = batch·heads): the dispatched instance at every batch is the tile the heuristic picks there', () => {
    const heads = 12;
    const spec: ModelSpec = {
      inputs: [
        { name: 'q', dtype: 'float32', dims: ['B', heads, 197, 64] },
        { name: 'k', dtype: 'float32', dims: ['B', heads, 197, 64] },
      ],
      nodes: [
        { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
        { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['y'] },
      ],
      outputs: ['y'],
    };
    const out = path.join(tmp(), 'out');
    const maxBatch = 64;
    const result = compileModel(write(spec, 'bmm'), { target: 'rocm:gfx90a', out, maxBatch });
    assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    // the dispatch: `if (batch <= 3) { ait_ck_batched_gemm_…` … `} else { …`
    const calls = [
      ...model.matchAll(
        /(?:if \(batch <= (\d+)\) \{|\} else if \(batch <= (\d+)\) \{|\} else \{)?\s*AIT_RETURN_IF_FAILED\((ait_ck_batched_gemm_\w+)\(gemm/g,
      ),
    ].map((m) => ({
      last: Number(m[1] ?? m[2] ?? maxBatch),
      symbol: m[3],
    }));
    assert.ok(calls.length > 1, 'more than one batch range');
    const tileOf = new Map<string, string>();
    for (const f of fs.readdirSync(path.join(out, 'src')).filter((f) => /^ck_\d+\.cu$/.test(f))) {
      const text = fs.readFileSync(path.join(out, 'src', f), 'utf8');
      tileOf.set(/^const char\* (ait_ck_\w+)\(/m.exec(text)![1], /tile (\d+x\d+)x32/.exec(text)![1]);
    }
    let range = 0;
    for (let batch = 1; batch <= maxBatch; batch++) {
      while (batch > calls[range].last) range++;
      const { tile } = ckTileFor({ m: 197, n: 197, k: 64, batch: batch * heads }, COMPUTE_UNITS.gfx90a);
      assert.equal(tileOf.get(calls[range].symbol), `${tile.m}x${tile.n}`, `batch ${batch}`);
    }
  });

  it('a group-1 ConvTranspose: a CK GEMM into the workspace (no epilogue), then our col2im with the epilogue', () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: [1, 16, 6, 6] }],
      initializers: [
        { ...tensor('float32', [16, 8, 3, 3], values(16 * 8 * 9, 13)), name: 'w' },
        { ...tensor('float32', [8], values(8, 14)), name: 'b' },
      ],
      nodes: [
        { op: 'ConvTranspose', inputs: ['x', 'w', 'b'], outputs: ['t'], attrs: { strides: [2, 2], pads: [1, 1, 1, 1] } },
        { op: 'Relu', inputs: ['t'], outputs: ['y'] },
      ],
      outputs: ['y'],
    };
    const out = path.join(tmp(), 'out');
    const result = compileModel(write(spec, 'convt'), { target: 'rocm:gfx90a', out });
    assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
    const graph = JSON.parse(fs.readFileSync(result.graphJsonPath, 'utf8')) as {
      nodes: { op: string; kernel?: { library: string; config: { path?: string; epilogue?: string[] } } }[];
    };
    const node = graph.nodes.find((n) => n.op === 'conv_transpose2d')!;
    assert.equal(node.kernel?.library, 'ck');
    assert.equal(node.kernel?.config.path, 'gemm+col2im');
    const model = fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8');
    const launch = model.slice(model.indexOf('AitCkGemmArgs gemm'));
    assert.match(launch, /^AitCkGemmArgs gemm\{[^;]*static_cast<__half\*>\(c\.workspace\)\};/);
    assert.ok(launch.indexOf('launch_conv_transpose2d_col2im_nhwc') > launch.indexOf('(gemm, c.stream)'), 'col2im after the GEMM');
    const instance = fs.readFileSync(path.join(out, 'src/ck_0.cu'), 'utf8');
    assert.match(instance, /B column-major; epilogue: none/);
  });

  it("a conv past CK's 2 GiB at the max batch runs over chunks of whole images", () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 64, 224, 224] }],
      initializers: [{ ...tensor('float32', [64, 64, 3, 3], values(64 * 64 * 9, 15)), name: 'w' }],
      nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } }],
      outputs: ['y'],
    };
    const out = path.join(tmp(), 'out');
    const big = compileModel(write(spec, 'big'), { target: 'rocm:gfx90a', out, maxBatch: 1024 });
    assert.ok(big.ok, big.diagnostics.map((d) => d.message).join('\n'));
    // 1024 × 224 × 224 × 64 = 3.3e9 fp16 elements: chunks of floor(2^30 / (224·224·64)) = 334 images
    assert.match(fs.readFileSync(path.join(out, 'src', 'model.cu'), 'utf8'), /for \(int64_t first = 0; first < images; first \+= 334\) \{/);
  });

  it('an epilogue operand CK cannot read as rows of the output runs after the instance, as on CUDA', () => {
    // the fusion passes fuse [n] vectors and same-shape residuals only, so the fused node is given a residual that
    // broadcasts over rows ([2, 1, 8] to [2, 6, 8]): CUDA runs it in its unfused rest, and so does ROCm (CK has no
    // such operand)
    const spec: ModelSpec = {
      inputs: [
        { name: 'x', dtype: 'float32', dims: [2, 6, 16] },
        { name: 'r', dtype: 'float32', dims: [2, 1, 8] },
      ],
      initializers: [{ ...tensor('float32', [16, 8], values(128, 9)), name: 'w' }],
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['mm'] },
        { op: 'Add', inputs: ['mm', 'r'], outputs: ['y'] },
      ],
      outputs: ['y'],
    };
    const { graph, node } = fused(spec, 'gemm');
    assert.equal(supportOf(graph, node, 'rocm:gfx90a').supported, true);
    node.attrs.epilogue = { type: 'strings', value: ['residual_add'] };
    node.inputs.push('r');
    const support = supportOf(graph, node, 'rocm:gfx90a');
    assert.equal(support.supported, true, support.reason);
    const epilogue = ckEpilogue(CodegenContext.forChecks(graph), node, 8);
    assert.deepEqual([epilogue.operands.length, epilogue.rest, epilogue.restOperands], [0, ['residual_add'], ['r']]);
    assert.equal(supportOf(graph, node, 'cuda:sm90').supported, true);
  });
});

/** AIT_CK_DIR, else the repository's ignored .deps/composable_kernel (compiler/backends/rocm/README.md says which). */
const CK_DIR = process.env.AIT_CK_DIR ?? path.join(ROOT, '.deps', 'composable_kernel');

describe('rocm backend: hipcc compiles CK instances for gfx90a (opt-in: AIT_TEST_CK=1)', function () {
  before(function () {
    if (process.env.AIT_TEST_CK !== '1') this.skip();
    requireHipcc(this);
    assert.ok(fs.existsSync(path.join(CK_DIR, 'include', 'ck', 'ck.hpp')), `no CK headers under ${CK_DIR}`);
  });

  it('the small conv + GEMM model builds with its Makefile into the library and ait_bench', function () {
    this.timeout(1_800_000);
    const out = path.join(tmp(), 'out');
    const result = compileModel(write(SMALL_CK_MODEL, 'small_ck'), { target: 'rocm:gfx90a', out });
    assert.ok(result.ok, result.diagnostics.map((d) => d.message).join('\n'));
    const make = spawnSync('make', ['-C', out, '-j2', `CK_DIR=${CK_DIR}`], { encoding: 'utf8', env: hipEnv() });
    assert.equal(
      make.status,
      0,
      `${make.stdout}\n${make.stderr}`
        .split('\n')
        .filter((l) => /error/.test(l))
        .slice(0, 20)
        .join('\n'),
    );
    assert.ok(fs.existsSync(path.join(out, 'ait_bench')));
    const symbols = spawnSync('nm', ['-D', '--defined-only', path.join(out, 'libsmall_ck.so')], { encoding: 'utf8' }).stdout;
    assert.match(symbols, /AITModelRun/);
  });
});
