/**
 * Composable Kernel attention, layernorm and softmax instances of the ROCm backend (compiler/backends/rocm/ck/
 * norm-instances.ts): golden text of one instance of each; CPU replays (no AMD GPU here) of what an instance computes
 * with the arguments model.cu hands it — the attention's per-batch launches over G = heads with CK's batch and row
 * strides, the row ops over [rows, n] — against the interpreter and onnxruntime; the forms CK does not take keep our
 * kernels, saying why; and, opt-in (AIT_TEST_CK=1, CK headers in AIT_CK_DIR or .deps/composable_kernel), hipcc
 * compiling one instance of each kind with the generated Makefile.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  CK_ATTENTION_TILES,
  CK_ROW_TILES,
  chooseAttentionTile,
  chooseRowTile,
  ckAttentionRefusal,
} from '../../../compiler/backends/rocm/ck/norm-instances';
import { compileModel } from '../../../compiler/compile';
import { runGraph } from '../../../compiler/interpreter/interpreter';
import { TensorValue, makeTensor, numeric, seededRandom } from '../../../compiler/ir/tensor';
import { importOnnxBytes } from '../../../compiler/onnx/import';
import { inferShapes } from '../../../compiler/passes/shape-inference';
import { hipEnv, requireHipcc } from '../../helpers/hipcc';
import { ModelSpec, TensorSpec, buildModel, tensor } from '../../helpers/onnx-builder';

const GOLDEN = path.join(__dirname, 'golden');
const ROOT = path.resolve(__dirname, '..', '..', '..');

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.AIT_UPDATE_GOLDEN === '1') fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs from its golden file (AIT_UPDATE_GOLDEN=1 to accept)`);
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ait-ck-attn-'));
const values = (n: number, seed: number, scale = 1) => {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => (random() - 0.5) * scale);
};
const ints = (name: string, v: number[]): TensorSpec & { name: string } => ({ name, dtype: 'int64', dims: [v.length], values: v });

/**
 * qkv [B, S, 3·H·D] (a model input, so the replay can read it) → heads → softmax(q·kᵀ·scale [+ bias])·v → [B, S, H·D].
 * The optimizer fuses it into one packed attention node.
 */
function attentionModel(B: number | string, S: number, H: number, D: number, bias = false): ModelSpec {
  return {
    inputs: [{ name: 'qkv', dtype: 'float32', dims: [B, S, 3 * H * D] }],
    initializers: [
      ints('split_shape', [0, S, 3, H, D]),
      ints('merge_shape', [0, S, H * D]),
      { name: 'i0', dtype: 'int64', dims: [], values: [0] },
      { name: 'i1', dtype: 'int64', dims: [], values: [1] },
      { name: 'i2', dtype: 'int64', dims: [], values: [2] },
      { name: 'scale', dtype: 'float32', dims: [], values: [1 / Math.sqrt(D)] },
      ...(bias ? [{ ...tensor('float32', [1, H, S, S], values(H * S * S, 3)), name: 'rel_bias' }] : []),
    ],
    nodes: [
      { op: 'Reshape', inputs: ['qkv', 'split_shape'], outputs: ['r'] },
      { op: 'Transpose', inputs: ['r'], outputs: ['p'], attrs: { perm: [2, 0, 3, 1, 4] } },
      { op: 'Gather', inputs: ['p', 'i0'], outputs: ['q'], attrs: { axis: 0 } },
      { op: 'Gather', inputs: ['p', 'i1'], outputs: ['k'], attrs: { axis: 0 } },
      { op: 'Gather', inputs: ['p', 'i2'], outputs: ['v'], attrs: { axis: 0 } },
      { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
      { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['qk'] },
      ...(bias
        ? [
            { op: 'Mul', inputs: ['qk', 'scale'], outputs: ['scaled'] },
            { op: 'Add', inputs: ['scaled', 'rel_bias'], outputs: ['scores'] },
          ]
        : [{ op: 'Mul', inputs: ['qk', 'scale'], outputs: ['scores'] }]),
      { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['probs', 'v'], outputs: ['o'] },
      { op: 'Transpose', inputs: ['o'], outputs: ['ot'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Reshape', inputs: ['ot', 'merge_shape'], outputs: ['y'] },
    ],
    outputs: ['y'],
  };
}

/** LayerNormalization (gamma, beta) over 96 channels, then Softmax over the last axis; both are model outputs. */
function rowModel(beta = true): ModelSpec {
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: [3, 5, 96] }],
    initializers: [
      { ...tensor('float32', [96], values(96, 4, 2)), name: 'gamma' },
      ...(beta ? [{ ...tensor('float32', [96], values(96, 5)), name: 'beta' }] : []),
    ],
    nodes: [
      {
        op: 'LayerNormalization',
        inputs: beta ? ['x', 'gamma', 'beta'] : ['x', 'gamma'],
        outputs: ['n'],
        attrs: { axis: -1, epsilon: 1e-3 },
      },
      { op: 'Softmax', inputs: ['n'], outputs: ['s'], attrs: { axis: -1 } },
    ],
    outputs: ['n', 's'],
  };
}

interface GraphJson {
  nodes: { op: string; status?: { supported: boolean; reason?: string }; kernel?: { library: string; name: string; reason: string } }[];
}

function compile(spec: ModelSpec, name: string): { out: string; graph: GraphJson; model: string } {
  const dir = tmp();
  const file = path.join(dir, `${name}.onnx`);
  fs.writeFileSync(file, buildModel(spec));
  const out = path.join(dir, 'out');
  const result = compileModel(file, { target: 'rocm:gfx90a', out });
  assert.deepEqual(
    result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  assert.ok(result.ok);
  return {
    out,
    graph: JSON.parse(fs.readFileSync(result.graphJsonPath, 'utf8')) as GraphJson,
    model: fs.readFileSync(path.join(out, 'src/model.cu'), 'utf8'),
  };
}

/** The interpreter's outputs on the ONNX model, each checked against onnxruntime. */
async function reference(spec: ModelSpec, inputs: Record<string, TensorValue>): Promise<number[][]> {
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
  return spec.outputs.map((output, o) => {
    const name = typeof output === 'string' ? output : output.name;
    const expected = Array.from(numeric(ours[o]));
    const data = theirs[name].data as Float32Array;
    expected.forEach((v, i) => assert.ok(Math.abs(v - data[i]) < 1e-4, `${name}: interpreter ${v} vs onnxruntime ${data[i]} at ${i}`));
    return expected;
  });
}

const close = (actual: number[], expected: number[], what: string) => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) <= 1e-4 * (1 + Math.abs(expected[i])), `${what}: element ${i} is ${v}, expected ${expected[i]}`),
  );
};

/** The C++ numbers of a generated initializer list (`Type name{a, b, ...}` possibly over two lines). */
function initializer(model: string, type: string): string[] {
  const m = new RegExp(`const ${type} \\w+\\{([^}]*)\\}`).exec(model);
  assert.ok(m, `model.cu initializes an ${type}`);
  return m[1].split(',').map((s) => s.trim());
}

describe('rocm backend: Composable Kernel attention, layernorm and softmax', function () {
  this.timeout(300_000);

  it('a packed attention (head dim 32, no mask): one CK batched GEMM-softmax-GEMM instance, golden text', () => {
    const { out, graph, model } = compile(attentionModel(2, 24, 2, 32), 'attention');
    const attention = graph.nodes.filter((n) => n.op === 'attention');
    assert.equal(attention.length, 1);
    assert.equal(attention[0].kernel?.library, 'ck');
    assert.match(attention[0].kernel!.name, /^ait_ck_attention_[0-9a-f]{12}$/);
    assert.match(attention[0].kernel!.reason, /one launch per batch: 128 queries × 128 keys a block, 64 of the head dim's 32 columns/);
    const text = fs.readFileSync(path.join(out, 'src/ck_0.cu'), 'utf8');
    golden('ck_attention.cu', text);
    assert.match(
      fs.readFileSync(path.join(out, 'src/ait_ck.h'), 'utf8'),
      new RegExp(`${attention[0].kernel!.name}\\(const AitCkAttentionArgs& args`),
    );
    assert.match(model, new RegExp(`AIT_RETURN_IF_FAILED\\(${attention[0].kernel!.name}\\(attention, c\\.stream\\)\\);`));
  });

  it("the attention instance's launches, replayed with the arguments model.cu passes, match the interpreter and onnxruntime", async () => {
    const [B, S, H, D] = [2, 24, 2, 32];
    const spec = attentionModel(B, S, H, D);
    const qkv = makeTensor('float32', [B, S, 3 * H * D], values(B * S * 3 * H * D, 9, 2));
    const [expected] = await reference(spec, { qkv });
    const { model } = compile(spec, 'attention');
    // {batch, sequence, heads, head_dim, token_stride, scale, q, k, v, o}
    const args = initializer(model, 'AitCkAttentionArgs');
    assert.deepEqual(args.slice(0, 5), [`static_cast<int>(${B})`, `static_cast<int>(${S})`, String(H), String(D), String(3 * H * D)]);
    const scale = Number.parseFloat(args[5]);
    const offsetOf = (pointer: string) => Number(/\+ (\d+)$/.exec(pointer)?.[1] ?? 0);
    const [qOff, kOff, vOff] = args.slice(6, 9).map(offsetOf);
    assert.deepEqual([qOff, kOff, vOff], [0, H * D, 2 * H * D]);
    const x = Array.from(numeric(qkv));
    const o = new Array<number>(B * S * H * D).fill(Number.NaN);
    // as the instance: per batch b, MakeArgument(q + first, k + first, v + first, o + b·s·h·d, M = s, N = s, K = d,
    // O = d, G = h, StrideA = StrideB = StrideB1 = rows, StrideC = h·d, every batch stride d)
    const [s, d, h, rows] = [S, D, H, 3 * H * D];
    for (let b = 0; b < B; b++) {
      const first = b * s * rows;
      const [a, b0, b1, c] = [qOff + first, kOff + first, vOff + first, b * s * h * d];
      for (let g = 0; g < h; g++)
        for (let m = 0; m < s; m++) {
          // Gemm0: A row-major [M, K] (stride rows), B0 column-major [K, N]: element (k, n) at n·rows + k; Acc0 = Scale
          const scores = Array.from({ length: s }, (_, n) => {
            let acc = 0;
            for (let k = 0; k < d; k++) acc += x[a + g * d + m * rows + k] * x[b0 + g * d + n * rows + k];
            return acc * scale;
          });
          const max = Math.max(...scores);
          const p = scores.map((v) => Math.exp(v - max));
          const sum = p.reduce((u, v) => u + v, 0);
          // Gemm1: B1 row-major [N, O] (stride rows), C row-major [M, O] (stride h·d)
          for (let col = 0; col < d; col++) {
            let acc = 0;
            for (let n = 0; n < s; n++) acc += p[n] * x[b1 + g * d + n * rows + col];
            o[c + g * d + m * h * d + col] = acc / sum;
          }
        }
    }
    close(o, expected, 'CK attention replay');
  });

  it('attention forms the pinned CK does not take keep our kernel, with the reason', () => {
    assert.equal(ckAttentionRefusal({ headDim: 64, biases: 0, causal: false }), undefined);
    assert.match(ckAttentionRefusal({ headDim: 48, biases: 0, causal: false })!, /head dim 48 is no multiple of 32/);
    assert.match(ckAttentionRefusal({ headDim: 64, biases: 0, causal: true })!, /no masking/);
    const biased = compile(attentionModel(2, 16, 2, 32, true), 'biased').graph.nodes.find((n) => n.op === 'attention')!;
    assert.equal(biased.kernel?.library, 'ait');
    assert.match(biased.kernel!.reason, /not CK: score biases/);
    const odd = compile(attentionModel(2, 16, 2, 36), 'odd').graph.nodes.find((n) => n.op === 'attention')!;
    assert.equal(odd.kernel?.library, 'ait');
    assert.match(odd.kernel!.reason, /not CK: head dim 36 is no multiple of 32/);
    // the tile follows the head dim: 64 output columns a block up to 64, else 128
    assert.equal(chooseAttentionTile(64).tile, CK_ATTENTION_TILES[0]);
    assert.equal(chooseAttentionTile(96).tile.o, 128);
    assert.match(chooseAttentionTile(256).reason, /2 blocks along it/);
  });

  it('layernorm and softmax over the last axis: CK instances (golden), replayed over [rows, n], match the interpreter and onnxruntime', async () => {
    const spec = rowModel();
    const x = makeTensor('float32', [3, 5, 96], values(3 * 5 * 96, 6, 4));
    const [normed, soft] = await reference(spec, { x });
    const { out, graph, model } = compile(spec, 'rows');
    assert.deepEqual(
      graph.nodes.filter((n) => n.kernel?.library === 'ck').map((n) => n.op),
      ['layernorm', 'Softmax'],
    );
    const texts = ['src/ck_0.cu', 'src/ck_1.cu'].map((f) => fs.readFileSync(path.join(out, f), 'utf8'));
    golden(
      'ck_layernorm.cu',
      texts.find((t) => t.includes('DeviceLayernormImpl'))!,
    );
    golden(
      'ck_softmax.cu',
      texts.find((t) => t.includes('DeviceSoftmaxImpl'))!,
    );
    // {rows, n, epsilon, x, gamma, beta, y}: 15 rows of 96 (vector 8; the 8x32x8 tile sweeps 256 a row)
    const calls = [...model.matchAll(/const AitCkRowArgs row\{([^}]*)\}/g)].map((m) => m[1].split(',').map((s) => s.trim()));
    assert.equal(calls.length, 2);
    for (const call of calls) assert.deepEqual(call.slice(0, 2), ['static_cast<int>(15)', '96']);
    assert.equal(Math.fround(Number.parseFloat(calls[0][2])), Math.fround(1e-3));
    assert.equal(chooseRowTile(96).tile, CK_ROW_TILES[0]);
    const [rows, n] = [15, 96];
    const input = Array.from(numeric(x));
    const gamma = values(96, 4, 2);
    const beta = values(96, 5);
    // lengths {rows, n}, strides {n, 1}, gamma/beta strides {1}: float statistics over each row
    const ln: number[] = [];
    const sm: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = input.slice(r * n, (r + 1) * n);
      const mean = row.reduce((a, v) => a + v, 0) / n;
      const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
      const y = row.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-3)) * gamma[i] + beta[i]);
      ln.push(...y);
      const max = Math.max(...y);
      const e = y.map((v) => Math.exp(v - max));
      const sum = e.reduce((a, v) => a + v, 0);
      sm.push(...e.map((v) => v / sum));
    }
    close(ln, normed, 'CK layernorm replay');
    close(sm, soft, 'CK softmax replay');
  });

  it('row tiles: one sweep where a tile covers the row; a layernorm without beta keeps our kernel, saying why', () => {
    assert.deepEqual(
      [64, 256, 300, 768, 1024, 2048, 4096, 8192, 20000].map((n) => CK_ROW_TILES.indexOf(chooseRowTile(n).tile)),
      [0, 0, 1, 2, 2, 3, 4, 7, 7],
    );
    assert.match(chooseRowTile(20000).reason, /3 sweeps of a 20000-element row/);
    const { graph } = compile(rowModel(false), 'nobeta');
    const ln = graph.nodes.find((n) => n.op === 'layernorm' || n.op === 'LayerNormalization')!;
    assert.equal(ln.kernel?.library, 'ait');
    assert.match(ln.kernel!.reason, /not CK: layernorm without gamma or beta/);
    assert.equal(graph.nodes.find((n) => n.op === 'Softmax')?.kernel?.library, 'ck');
  });
});

describe('rocm backend: model.cu calling CK attention and row instances compiles with hipcc (no CK needed)', function () {
  before(function () {
    requireHipcc(this);
  });

  it('a dynamic-batch attention + layernorm + softmax model: model.cu builds for gfx90a against ait_ck.h alone', function () {
    this.timeout(900_000);
    const spec = attentionModel('B', 24, 2, 32);
    const { out, model } = compile(
      {
        ...spec,
        initializers: [
          ...spec.initializers!,
          { ...tensor('float32', [64], values(64, 4)), name: 'gamma' },
          { ...tensor('float32', [64], values(64, 5)), name: 'beta' },
        ],
        nodes: [
          ...spec.nodes,
          { op: 'LayerNormalization', inputs: ['y', 'gamma', 'beta'], outputs: ['n'], attrs: { axis: -1 } },
          { op: 'Softmax', inputs: ['n'], outputs: ['s'], attrs: { axis: -1 } },
        ],
        outputs: ['s'],
      },
      'dynamic',
    );
    assert.match(model, /AitCkAttentionArgs attention\{static_cast<int>\(batch\)/);
    assert.match(model, /AitCkRowArgs row\{static_cast<int>\(24 \* batch\), 64,/);
    // model.cu includes only ait_ck.h (CK-free): the Makefile's flags without CK's include paths
    const hipcc = spawnSync(
      'hipcc',
      [
        '-x',
        'hip',
        '-std=c++17',
        '-O1',
        '--offload-arch=gfx90a',
        '-Werror',
        '-Wno-unused-result',
        '-Isrc/hip',
        '-Isrc',
        '-Isrc/runtime',
        '-Isrc/kernels',
        '-c',
        'src/model.cu',
        '-o',
        'model.o',
      ],
      { cwd: out, encoding: 'utf8', env: hipEnv() },
    );
    assert.equal(
      hipcc.status,
      0,
      hipcc.stderr
        .split('\n')
        .filter((l) => /error/.test(l))
        .slice(0, 20)
        .join('\n'),
    );
  });
});

/** AIT_CK_DIR, else the repository's ignored .deps/composable_kernel (compiler/backends/rocm/README.md says which). */
const CK_DIR = process.env.AIT_CK_DIR ?? path.join(ROOT, '.deps', 'composable_kernel');

describe('rocm backend: hipcc compiles CK attention, layernorm and softmax instances (opt-in: AIT_TEST_CK=1)', function () {
  before(function () {
    if (process.env.AIT_TEST_CK !== '1') this.skip();
    requireHipcc(this);
    assert.ok(fs.existsSync(path.join(CK_DIR, 'include', 'ck', 'ck.hpp')), `no CK headers under ${CK_DIR}`);
  });

  for (const [what, spec] of [
    ['attention', attentionModel(2, 24, 2, 32)],
    ['layernorm + softmax', rowModel()],
  ] as const)
    it(`the ${what} instances build with the generated Makefile`, function () {
      this.timeout(1_800_000);
      const { out } = compile(spec, 'ckops');
      const sources = /^CK_SOURCES := (.*)$/m.exec(fs.readFileSync(path.join(out, 'Makefile'), 'utf8'))![1].split(' ');
      const objects = sources.map((s) => s.replace(/^src\/(.*)\.cu$/, 'build/$1.o'));
      const make = spawnSync('make', ['-C', out, '-j2', `CK_DIR=${CK_DIR}`, ...objects], { encoding: 'utf8', env: hipEnv() });
      assert.equal(
        make.status,
        0,
        `${make.stdout}\n${make.stderr}`
          .split('\n')
          .filter((l) => /error/.test(l))
          .slice(0, 20)
          .join('\n'),
      );
      for (const o of objects) assert.ok(fs.existsSync(path.join(out, o)), o);
    });
});
