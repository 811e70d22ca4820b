/**
 * Build directories and an ONNX model for verify tests. The model, built with the real ModelProto schema:
 *   h = Gemm(x, W, B, transB=1), y = Relu(h); x: float32 [batch, 4]; outputs h and y.
 * The build directory compiles test/native/fixtures/fake_model.cc in its Gemm+Relu mode (the same computation on
 * the CPU, weights read from weights.safetensors) with `make`, as a generated build directory would be built.
 * W and B are multiples of 1/8 within ±1, exact in float16, so the F16 weights file holds the ONNX values exactly.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pythonModule } from '../../../compiler/backends/cuda/codegen/build-files';
import { encodeSafetensors } from '../../../compiler/backends/cuda/weights';
import { makeTensor } from '../../../compiler/ir/tensor';
import { buildModel } from '../../helpers/onnx-builder';

const REPO = path.resolve(__dirname, '..', '..', '..');
const RUNTIME = path.join(REPO, 'compiler', 'backends', 'cuda', 'runtime');
const FAKE_SOURCE = path.join(REPO, 'test', 'native', 'fixtures', 'fake_model.cc');

export const GEMM_W = Array.from({ length: 12 }, (_, i) => ((i * 5) % 13) / 8 - 0.75);
export const GEMM_B = [0.25, -0.5, 0.125];

/** The ONNX model the fake computes, written to a fresh directory; returns its path. */
export function gemmReluModel(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-model-'));
  const file = path.join(dir, 'gemm_relu.onnx');
  const bytes = buildModel({
    inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 4] }],
    initializers: [
      { name: 'W', dtype: 'float32', dims: [3, 4], values: GEMM_W },
      { name: 'B', dtype: 'float32', dims: [3], values: GEMM_B },
    ],
    nodes: [
      { op: 'Gemm', inputs: ['x', 'W', 'B'], outputs: ['h'], name: 'gemm', attrs: { transB: 1 } },
      { op: 'Relu', inputs: ['h'], outputs: ['y'], name: 'relu' },
    ],
    outputs: ['h', 'y'],
  });
  fs.writeFileSync(file, bytes);
  return file;
}

/**
 * The model a -DAIT_FAKE_INT_IDS build computes: input_ids int64 [batch, 4] -> Cast(to float) -> the same Gemm and
 * Relu (a text model's integer input); written to a fresh directory, returns its path.
 */
export function idsGemmReluModel(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-ids-model-'));
  const file = path.join(dir, 'gemm_relu.onnx');
  const bytes = buildModel({
    inputs: [{ name: 'input_ids', dtype: 'int64', dims: ['batch', 4] }],
    initializers: [
      { name: 'W', dtype: 'float32', dims: [3, 4], values: GEMM_W },
      { name: 'B', dtype: 'float32', dims: [3], values: GEMM_B },
    ],
    nodes: [
      { op: 'Cast', inputs: ['input_ids'], outputs: ['x'], name: 'cast', attrs: { to: 1 } },
      { op: 'Gemm', inputs: ['x', 'W', 'B'], outputs: ['h'], name: 'gemm', attrs: { transB: 1 } },
      { op: 'Relu', inputs: ['h'], outputs: ['y'], name: 'relu' },
    ],
    outputs: ['h', 'y'],
  });
  fs.writeFileSync(file, bytes);
  return file;
}

/**
 * The same model with its weights as external data, as the dynamo exporter writes it: W in gemm_relu.onnx.data,
 * B in weights/b.bin (a subdirectory), next to the model. The directory also holds a file the model does not name.
 */
export function gemmReluModelWithExternalData(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-external-'));
  const file = path.join(dir, 'gemm_relu.onnx');
  const bytes = buildModel({
    inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 4] }],
    initializers: [
      { name: 'W', dtype: 'float32', dims: [3, 4], external: 'gemm_relu.onnx.data', externalEntries: { offset: '0', length: '48' } },
      { name: 'B', dtype: 'float32', dims: [3], external: './weights/b.bin', externalEntries: { offset: '4', length: '12' } },
    ],
    nodes: [
      { op: 'Gemm', inputs: ['x', 'W', 'B'], outputs: ['h'], name: 'gemm', attrs: { transB: 1 } },
      { op: 'Relu', inputs: ['h'], outputs: ['y'], name: 'relu' },
    ],
    outputs: ['h', 'y'],
  });
  fs.writeFileSync(file, bytes);
  fs.writeFileSync(path.join(dir, 'gemm_relu.onnx.data'), Buffer.from(new Float32Array(GEMM_W).buffer));
  fs.mkdirSync(path.join(dir, 'weights'));
  fs.writeFileSync(path.join(dir, 'weights', 'b.bin'), Buffer.concat([Buffer.alloc(4), Buffer.from(new Float32Array(GEMM_B).buffer)]));
  fs.writeFileSync(path.join(dir, 'unrelated.bin'), 'not named by the model');
  return file;
}

export interface FakeBuildOptions {
  /** Extra -D flags: -DAIT_FAKE_WRONG, -DAIT_FAKE_HALF_IO, -DAIT_FAKE_INT_IDS, -DAIT_FAKE_SLOW_MS=N, -DAIT_FAKE_NO_DEBUG. */
  defines?: string[];
  /** Write weights.safetensors (default true). */
  weights?: boolean;
  /** Write graph.json, the compile's graph whose node ids the debug run reports (default true). */
  graph?: boolean;
}

/**
 * The graph.json of the fake: n0 = the Gemm (ONNX node 'gemm', tensor h), n1 = the Relu ('relu', tensor y), the ids
 * the fake's debug run reports, in the format `ait compile` writes (docs/graph-format.md).
 */
export const FAKE_GRAPH_JSON = {
  format: 'ait-graph',
  version: 1,
  model: { name: 'fake_gemm_relu' },
  target: 'cuda:sm90',
  name: 'main_graph',
  inputs: ['x'],
  outputs: ['h', 'y'],
  tensors: {},
  nodes: [
    {
      id: 'n0',
      op: 'gemm',
      name: 'gemm',
      inputs: ['x', 'W', 'B'],
      outputs: ['h'],
      attrs: {},
      sourceNodes: ['gemm'],
      scope: ['fc'],
      role: 'kernel',
    },
    {
      id: 'n1',
      op: 'elementwise',
      name: 'relu',
      inputs: ['h'],
      outputs: ['y'],
      attrs: {},
      sourceNodes: ['relu'],
      scope: ['act'],
      role: 'kernel',
    },
  ],
};

/** A build directory (sources + Makefile + weights.safetensors) that `make` turns into libfake_gemm_relu.so. */
export function fakeGemmBuild(options: FakeBuildOptions = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-verify-build-'));
  fs.copyFileSync(FAKE_SOURCE, path.join(dir, 'fake_model.cc'));
  for (const f of ['ait_runtime.h', 'safetensors.h', 'safetensors.cc']) fs.copyFileSync(path.join(RUNTIME, f), path.join(dir, f));
  const defines = ['-DAIT_FAKE_GEMM_RELU', ...(options.defines ?? [])].join(' ');
  fs.writeFileSync(
    path.join(dir, 'Makefile'),
    `libfake_gemm_relu.so: fake_model.cc safetensors.cc\n\tg++ -std=c++17 -O1 -shared -fPIC -I. ${defines} $^ -o $@\n`,
  );
  if (options.graph ?? true) fs.writeFileSync(path.join(dir, 'graph.json'), JSON.stringify(FAKE_GRAPH_JSON));
  fs.writeFileSync(path.join(dir, 'ait_model.py'), pythonModule('fake_gemm_relu'));
  if (options.weights ?? true) {
    fs.writeFileSync(
      path.join(dir, 'weights.safetensors'),
      encodeSafetensors(
        [
          { name: 'W', value: makeTensor('float32', [3, 4], GEMM_W) },
          { name: 'B', value: makeTensor('float32', [3], GEMM_B) },
        ],
        { metadata: { model: 'fake_gemm_relu' } },
      ),
    );
  }
  return dir;
}
