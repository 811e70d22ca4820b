/**
 * Per-node verify on this machine (`ait verify`): onnxruntime-node with every fused node's ONNX tensor exposed
 * against the interpreter on the optimized graph with fp16 storage.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { floatToHalfBits, halfBitsToFloat } from '../compiler/backends/cuda/weights';
import { loadGraphJson, loadProfile } from '../compiler/cli/graph-command';
import { main } from '../compiler/cli/main';
import { PER_NODE_REPORT_FILE, VERIFY_PROFILE_FILE } from '../compiler/cli/verify-command';
import type { Diagnostic } from '../compiler/diagnostics';
import { runGraph } from '../compiler/interpreter/interpreter';
import { FP16_MAX, roundToHalf } from '../compiler/ir/half';
import { makeTensor, seededRandom } from '../compiler/ir/tensor';
import { importOnnxBytes } from '../compiler/onnx/import';
import { inferShapes } from '../compiler/passes/shape-inference';
import { verifyPerNodeLocal, type PerNodeReport } from '../compiler/verify/local';
import { compareNode, compareValues, firstProblems, moduleTable, onnxTensorOfNodes, type NodeErrorRow } from '../compiler/verify/per-node';
import { sharedModel } from './helpers/models';
import { buildModel, tensor, type ModelSpec, type TensorSpec } from './helpers/onnx-builder';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, spec: ModelSpec): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, buildModel(spec));
  return file;
}

/** 1×1 conv weight: `scale` × identity over `c` channels. */
function scaledIdentity(c: number, scale: number, name: string): TensorSpec & { name: string } {
  const w = new Array<number>(c * c).fill(0);
  for (let i = 0; i < c; i++) w[i * c + i] = scale;
  // a little mixing so the conv is not a plain copy
  for (let i = 0; i < c; i++) w[i * c + ((i + 1) % c)] = 0.01 * scale;
  return { ...tensor('float32', [c, c, 1, 1], w), name };
}

/**
 * Four blocks of 1×1 conv (×40) + Relu: |x| ≤ ~4 becomes ~160, ~6.4e3, ~2.6e5 (beyond fp16) in block 3, then ~1e7.
 */
function overflowChain(blocks = 4): ModelSpec {
  const c = 8;
  const nodes: ModelSpec['nodes'] = [];
  let x = 'x';
  for (let b = 1; b <= blocks; b++) {
    nodes.push({ op: 'Conv', inputs: [x, `w${b}`], outputs: [`c${b}`], name: `/block${b}/conv/Conv` });
    nodes.push({ op: 'Relu', inputs: [`c${b}`], outputs: [`r${b}`], name: `/block${b}/act/Relu` });
    x = `r${b}`;
  }
  return {
    inputs: [{ name: 'x', dtype: 'float32', dims: ['B', c, 6, 6] }],
    initializers: Array.from({ length: blocks }, (_, i) => scaledIdentity(c, 40, `w${i + 1}`)),
    nodes,
    outputs: [x],
  };
}

describe('fp16 storage rounding', () => {
  it('matches the fp16 conversion of the weights writer, and overflows to Inf beyond 65504', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 20000; i++) {
      const v = (random() - 0.5) * 10 ** Math.floor(random() * 14 - 8);
      const expected = halfBitsToFloat(floatToHalfBits(v));
      assert.equal(roundToHalf(v), expected, `value ${v}`);
    }
    assert.equal(roundToHalf(FP16_MAX), FP16_MAX);
    assert.equal(roundToHalf(65519), FP16_MAX);
    assert.equal(roundToHalf(65520), Infinity);
    assert.equal(roundToHalf(-1e12), -Infinity);
    assert.ok(Number.isNaN(roundToHalf(NaN)));
  });

  it('the interpreter with fp16 storage gives Inf where float32 storage gives a large finite value', () => {
    const model = importOnnxBytes(buildModel(overflowChain(3)));
    inferShapes(model.graph);
    const x = makeTensor('float32', [1, 8, 6, 6], new Array(288).fill(2));
    const [wide] = runGraph(model.graph, [x]);
    const [half] = runGraph(model.graph, [x], { storage: 'float16' });
    assert.ok((wide.data as Float32Array).every((v) => Number.isFinite(v) && v > FP16_MAX));
    assert.ok((half.data as Float32Array).every((v) => v === Infinity));
  });
});

describe('per-node comparison', () => {
  it('aligns an NHWC output with its NCHW reference, and a reshaped one', () => {
    const ref = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i + 1); // [1, 2, 3, 4] NCHW
    const nhwc = new Float32Array(24);
    for (let c = 0; c < 2; c++) for (let s = 0; s < 12; s++) nhwc[s * 2 + c] = ref[c * 12 + s];
    const m = compareNode(nhwc, [1, 3, 4, 2], ref, [1, 2, 3, 4]);
    assert.ok(!('problem' in m));
    assert.equal(m.layout, 'channels-last');
    assert.equal(m.maxAbs, 0);
    const flat = compareNode(ref, [6, 4], ref, [1, 2, 3, 4]);
    assert.ok(!('problem' in flat) && flat.layout === 'reshaped' && flat.relativeL2 === 0);
    const other = compareNode(ref.slice(0, 12), [12], ref, [1, 2, 3, 4]);
    assert.ok('problem' in other);
  });

  it("maps a node to the ONNX tensor its output is named for (a Transpose moved after a Mul writes the Mul's tensor)", () => {
    const original = {
      nodes: [
        { name: 'k_t', outputs: ['kt'] },
        { name: 'scale', outputs: ['kts'] },
      ],
    };
    const node = (id: string, outputs: string[], sourceNodes: string[]) => ({
      id,
      op: 'x',
      name: id,
      inputs: [],
      outputs,
      sourceNodes,
      scope: [],
    });
    const mapped = onnxTensorOfNodes(
      {
        nodes: [
          node('mul', ['kts_pre'], ['scale']), // now computes the scaled K before its transpose
          node('moved', ['kts'], ['k_t']), // the transpose, moved after it: writes the scaled tensor
          node('fresh', ['t9'], []),
        ],
      },
      original,
    );
    assert.deepEqual(mapped.get('mul'), { tensor: 'kts', onnxNode: 'scale' });
    assert.deepEqual(mapped.get('moved'), { tensor: 'kts', onnxNode: 'scale' });
    assert.ok('skipped' in mapped.get('fresh')!);
  });

  it('aligns an output whose axes a pass reordered (K·scale before the transpose; a 1-D conv run as [N, 1, L, C])', () => {
    // reference [1, 2, 3, 4] = K^T per head; the candidate holds K [1, 2, 4, 3] (the Transpose was moved after the node)
    const ref = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i + 1));
    const k = new Float32Array(24);
    for (let h = 0; h < 2; h++) for (let d = 0; d < 3; d++) for (let s = 0; s < 4; s++) k[(h * 4 + s) * 3 + d] = ref[(h * 3 + d) * 4 + s];
    const m = compareNode(k, [1, 2, 4, 3], ref, [1, 2, 3, 4]);
    assert.ok(!('problem' in m) && m.layout === 'permuted' && m.maxAbs === 0, JSON.stringify(m));
    // square trailing axes: both orders fit the shapes; the exact one is the layout
    const sq = Float32Array.from({ length: 18 }, (_, i) => Math.cos(i));
    const sqT = new Float32Array(18);
    for (let b = 0; b < 2; b++) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) sqT[(b * 3 + j) * 3 + i] = sq[(b * 3 + i) * 3 + j];
    const t = compareNode(sqT, [1, 2, 3, 3], sq, [1, 2, 3, 3]);
    assert.ok(!('problem' in t) && t.layout === 'permuted' && t.maxAbs === 0);
    // a lifted 1-D conv: [N, 1, L, C] against [N, C, L]
    const conv = Float32Array.from({ length: 2 * 5 }, (_, i) => i * 0.5 - 2); // [1, 2, 5]
    const lifted = new Float32Array(10);
    for (let c = 0; c < 2; c++) for (let l = 0; l < 5; l++) lifted[l * 2 + c] = conv[c * 5 + l];
    const c1 = compareNode(lifted, [1, 1, 5, 2], conv, [1, 2, 5]);
    assert.ok(!('problem' in c1) && c1.layout === 'permuted' && c1.maxAbs === 0);
    // a wrong value matches in no order
    const wrong = compareNode(
      k.map((v, i) => (i === 5 ? v + 3 : v)),
      [2, 4, 3],
      ref,
      [2, 3, 4],
    );
    assert.ok(!('problem' in wrong) && wrong.maxAbs! > 1);
  });

  it('names the first node whose error jumps from inputs within tolerance, not the ones downstream of it', () => {
    const model = importOnnxBytes(buildModel(overflowChain()));
    const graph = model.graph;
    const row = (i: number, relativeL2: number | null, nonFinite = 0): NodeErrorRow => ({
      id: graph.nodes[i].id,
      op: graph.nodes[i].op,
      name: graph.nodes[i].name,
      sourceNodes: [graph.nodes[i].name],
      scope: graph.nodes[i].scope,
      onnxTensor: graph.nodes[i].outputs[0],
      shape: [1],
      maxAbs: 1,
      relativeL2,
      nonFinite,
      referenceNonFinite: 0,
      maxAbsReference: 1,
      fp16Overflow: false,
    });
    // rows for the convs only (the Relus are not compared: the walk goes through them)
    const rows = [row(0, 1e-4), row(2, 5e-2), row(4, 0.2), row(6, null, 3)];
    const { firstJump, firstOverflow } = firstProblems(graph, rows, 1e-2);
    assert.equal(firstJump?.name, '/block2/conv/Conv');
    assert.equal(firstOverflow, null);
    assert.deepEqual(
      rows.map((r) => r.bad),
      [false, true, true, true],
    );
    // values beyond 65504 are an fp16 overflow only where the GPU stores fp16 (storage-precision: coordinates in fp32)
    const big = [row(0, 1e-4), { ...row(2, 1e-4), maxAbsReference: 9e4, fp16Overflow: true }];
    assert.equal(firstProblems(graph, big, 1e-2).firstOverflow?.name, '/block2/conv/Conv');
    assert.equal(firstProblems({ nodes: graph.nodes, fp32: new Set([graph.nodes[2].outputs[0]]) }, big, 1e-2).firstOverflow, null);
    graph.tensor(graph.nodes[2].outputs[0]).storage = 'float32';
    assert.equal(firstProblems(graph, big, 1e-2).firstOverflow, null, "a Graph's own storage marks");
    delete graph.tensor(graph.nodes[2].outputs[0]).storage;
    const modules = moduleTable(rows);
    const block4 = modules.find((m) => m.module === 'block4');
    assert.ok(block4 && block4.maxRelativeL2 === null && block4.nonFinite === 3);
  });
});

describe('per-node judgement of values below the fp16 normal range', () => {
  // Seen on an H100: a ViT's class token (random init, |v| ~ 3e-6) and a VitMatte decoder conv whose outputs are
  // ~1e-6 held only as fp16 subnormals (2^-24 apart): relative L2 0.017 and 0.15 with absolute errors of ~1e-7.
  const tiny = Array.from({ length: 256 }, (_, i) => 1e-6 * Math.sin(i + 1));
  const off = tiny.map((v, i) => v + (i % 2 ? 1.5e-7 : -1.5e-7));

  it('reports the true relative L2 and judges an fp16 output by its absolute error there', () => {
    const m = compareValues(off, tiny);
    assert.ok(m.relativeL2! > 0.1, `relative L2 ${m.relativeL2}`);
    assert.ok(m.fp16ScaledL2! < 0.01, `fp16-scaled L2 ${m.fp16ScaledL2}`);
    // the same relative error at normal magnitudes is judged as it is
    const big = compareValues(
      off.map((v) => v * 1e3),
      tiny.map((v) => v * 1e3),
    );
    assert.ok(Math.abs(big.fp16ScaledL2! - big.relativeL2!) < 1e-12);
  });

  it('does not flag such an fp16 node, but flags it where the GPU stores the tensor in fp32', () => {
    const graph = importOnnxBytes(buildModel(overflowChain(1))).graph;
    const conv = graph.nodes[0];
    const m = compareValues(off, tiny);
    const rows = (): NodeErrorRow[] => [
      {
        id: conv.id,
        op: conv.op,
        name: conv.name,
        sourceNodes: [conv.name],
        scope: conv.scope,
        onnxTensor: conv.outputs[0],
        shape: [256],
        ...m,
      },
    ];
    const fp16 = rows();
    assert.equal(firstProblems(graph, fp16, 1e-2).firstJump, null);
    assert.equal(fp16[0].bad, false);
    const fp32 = rows();
    assert.equal(firstProblems({ nodes: graph.nodes, fp32: new Set([conv.outputs[0]]) }, fp32, 1e-2).firstJump?.name, conv.name);
    assert.equal(fp32[0].bad, true);
  });
});

describe('ait verify (local per-node)', function () {
  this.timeout(300_000);

  it('names the first node of an fp16-overflowing chain, with its ONNX nodes and scope', async () => {
    const file = write('overflow.onnx', overflowChain());
    const { report } = await verifyPerNodeLocal(file, { batch: 2 });
    const compared = report.nodes.filter((r) => r.relativeL2 !== undefined);
    assert.equal(compared.length, 4, JSON.stringify(report.nodes.map((r) => [r.id, r.op, r.skipped])));
    assert.ok(report.firstOverflow, 'an overflow is reported');
    assert.deepEqual(report.firstOverflow.sourceNodes, ['/block3/conv/Conv', '/block3/act/Relu']);
    assert.deepEqual(report.firstOverflow.scope.slice(0, 1), ['block3']);
    assert.equal(report.firstOverflow.onnxTensor, 'r3');
    // blocks 1 and 2 are within fp16 and within tolerance; the jump is where the overflow is
    for (const r of compared.slice(0, 2)) assert.ok(!r.bad && !r.fp16Overflow && r.relativeL2! < 1e-3, JSON.stringify(r));
    assert.equal(report.firstJump?.id, report.firstOverflow.id);
    assert.ok(compared[2].nonFinite! > 0 && compared[2].maxAbsReference! > FP16_MAX);
    const block3 = report.modules.find((m) => m.module === 'block3');
    assert.equal(block3?.fp16Overflows, 1);
    // with float32 storage, nothing is wrong: the overflow is fp16's
    const wide = await verifyPerNodeLocal(file, { batch: 2, storage: 'float32' });
    assert.equal(wide.report.firstJump, null);
    assert.equal(wide.report.firstOverflow?.id, report.firstOverflow.id, 'the reference values are still beyond fp16');
  });

  it('graph-only models get the same seeded weights on both sides; NCHW/NHWC-ambiguous shapes compare right', async () => {
    const file = write('graph-only.onnx', {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 8, 8, 8] }],
      initializers: [
        { name: 'w1', dtype: 'float32', dims: [8, 8, 3, 3], external: 'graph-only.onnx.data' },
        { name: 'b1', dtype: 'float32', dims: [8], external: 'graph-only.onnx.data', externalEntries: { offset: '2304' } },
      ],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c'], name: '/stem/Conv', attrs: { pads: [1, 1, 1, 1] } },
        { op: 'Relu', inputs: ['c'], outputs: ['r'], name: '/stem/Relu' },
        { op: 'Add', inputs: ['r', 'x'], outputs: ['y'], name: '/stem/Add' },
      ],
      outputs: ['y'],
    });
    const { report } = await verifyPerNodeLocal(file);
    assert.equal(report.randomizedWeights, 2);
    const compared = report.nodes.filter((r) => r.relativeL2 !== undefined);
    assert.ok(compared.length >= 1);
    for (const r of compared) assert.ok(r.relativeL2! < 2e-3, JSON.stringify(r));
    assert.equal(report.firstJump, null);
    assert.equal(report.firstOverflow, null);
  });

  it('reads external data present next to the model (under the containment rules) for onnxruntime too', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ext-'));
    const w = Float32Array.from({ length: 16 }, (_, i) => ((i % 5) - 2) * 0.3);
    fs.writeFileSync(path.join(dir, 'model.onnx.data'), Buffer.from(w.buffer));
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(
      file,
      buildModel({
        inputs: [{ name: 'x', dtype: 'float32', dims: ['B', 4] }],
        initializers: [{ name: 'w', dtype: 'float32', dims: [4, 4], external: 'model.onnx.data' }],
        nodes: [
          { op: 'MatMul', inputs: ['x', 'w'], outputs: ['m'], name: '/fc/MatMul' },
          { op: 'Tanh', inputs: ['m'], outputs: ['y'], name: '/act/Tanh' },
        ],
        outputs: ['y'],
      }),
    );
    const { report } = await verifyPerNodeLocal(file, { batch: 3 });
    assert.equal(report.randomizedWeights, 0);
    const compared = report.nodes.filter((r) => r.relativeL2 !== undefined);
    assert.ok(compared.length >= 1);
    for (const r of compared) assert.ok(r.relativeL2! < 2e-3, JSON.stringify(r));
  });

  it('`ait verify --json --out DIR` prints the report and writes a profile `ait graph --profile` takes', async () => {
    const file = write('cli.onnx', overflowChain());
    const out = path.join(tmp, 'cli-out');
    const lines: string[] = [];
    const errs: string[] = [];
    process.exitCode = 0;
    await main(
      ['node', 'ait', 'verify', file, '--per-node', '--batch', '1', '--json', '--out', out],
      (s) => lines.push(s),
      (s) => errs.push(s),
    );
    assert.equal(process.exitCode, 1, 'an overflow makes the exit code 1');
    process.exitCode = 0;
    assert.deepEqual(errs, []);
    const report = JSON.parse(lines.join('\n')) as PerNodeReport;
    assert.equal(report.format, 'ait-verify-per-node');
    assert.deepEqual(report.firstOverflow?.sourceNodes, ['/block3/conv/Conv', '/block3/act/Relu']);
    const { graph } = loadGraphJson(out);
    const diagnostics: Diagnostic[] = [];
    const { profile } = loadProfile(path.join(out, VERIFY_PROFILE_FILE), graph, diagnostics);
    assert.deepEqual(diagnostics, []);
    const overflowing = profile.ops[report.firstOverflow!.id];
    assert.equal(overflowing.error?.fp16Overflow, true);
    assert.equal(overflowing.error?.relativeL2, null);
    assert.ok(fs.existsSync(path.join(out, PER_NODE_REPORT_FILE)));

    // the text form names the node and prints the module table
    const text: string[] = [];
    await main(['node', 'ait', 'verify', file], (s) => text.push(s));
    process.exitCode = 0;
    const all = text.join('\n');
    assert.match(all, /first fp16 overflow: n\d+ conv2d '\/block3\/conv\/Conv' in block3\/conv/);
    assert.match(all, /ONNX nodes \/block3\/conv\/Conv, \/block3\/act\/Relu \(tensor 'r3'\)/);
    assert.match(all, /^module\s+nodes\s+max abs err/m);
  });

  it('Inception-v3 with std-0.1 random weights (activations ~1e12): names the first node that overflows fp16', async function () {
    const file = sharedModel('zoo/inception_v3', this);
    const started = Date.now();
    const { report } = await verifyPerNodeLocal(file, { weightStd: 0.1 });
    console.log(
      `    Inception-v3 per-node verify: ${((Date.now() - started) / 1000).toFixed(1)} s; first overflow ${report.firstOverflow?.name}`,
    );
    const compared = report.nodes.filter((r) => r.relativeL2 !== undefined);
    assert.ok(compared.length > 100);
    assert.ok(report.firstOverflow, 'an overflow is reported');
    const index = compared.findIndex((r) => r.id === report.firstOverflow!.id);
    // everything before it is in range and within tolerance; the final values are far beyond fp16
    for (const r of compared.slice(0, index)) assert.ok(!r.fp16Overflow && !r.bad, JSON.stringify(r));
    assert.ok(Math.max(...compared.map((r) => r.maxAbsReference ?? 0)) > 1e11);
    assert.equal(report.firstJump?.id, report.firstOverflow.id);
    assert.ok(report.firstOverflow.scope.length > 0 && report.firstOverflow.sourceNodes.some((s) => s.startsWith('node_Conv')));
  });
});

describe('per-node check of a text model (int64 ids and mask, symbolic seq)', () => {
  it('makes ids below 100 and an all-ones mask, runs onnxruntime on int64 feeds and compares the embeddings', async () => {
    const V = 120;
    const C = 8;
    const rand = seededRandom(3);
    const file = write('text.onnx', {
      inputs: [
        { name: 'input_ids', dtype: 'int64', dims: ['batch', 'seq'] },
        { name: 'attention_mask', dtype: 'int64', dims: ['batch', 'seq'] },
      ],
      outputs: ['y'],
      initializers: [
        { name: 'table', dtype: 'float32', dims: [V, C], values: Array.from({ length: V * C }, () => rand() * 2 - 1) },
        { name: 'axes', dtype: 'int64', dims: [1], values: [2] },
      ],
      nodes: [
        { op: 'Gather', inputs: ['table', 'input_ids'], outputs: ['emb'], attrs: { axis: 0 } },
        { op: 'Cast', inputs: ['attention_mask'], outputs: ['mask_f'], attrs: { to: 1 } },
        { op: 'Unsqueeze', inputs: ['mask_f', 'axes'], outputs: ['mask3'] },
        { op: 'Mul', inputs: ['emb', 'mask3'], outputs: ['y'] },
      ],
    });
    const { report } = await verifyPerNodeLocal(file, { batch: 2, dimBounds: { seq: [1, 6] } });
    assert.deepEqual(
      report.inputs.map((i) => i.shape),
      [
        [2, 6],
        [2, 6],
      ],
    );
    const compared = report.nodes.filter((r) => !r.skipped);
    assert.ok(compared.length > 0);
    // the mask keeps every embedding: the output's reference is non-zero, and ours matches it
    assert.ok(Math.max(...compared.map((r) => r.maxAbsReference ?? 0)) > 0.1);
    assert.ok(compared.every((r) => (r.relativeL2 ?? 1) < 1e-3));
  });
});
