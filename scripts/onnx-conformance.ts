/**
 * The ONNX project's backend test models (model.onnx + test_data_set_0/{input,output}_N.pb, as in the onnx
 * repository's onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}) through the importer, the
 * interpreter (against the expected outputs), the optimizer (optimized graph against the expected outputs) and the
 * CUDA support check (compile for cuda:sm90). Prints one line per test and a summary; writes JSON.
 *
 *   npx tsx scripts/onnx-conformance.ts DATA_DIR [--only SUBSTRING] [--json FILE]
 *
 * DATA_DIR is a folder of suites (each a folder of test folders). The data is not in this repository: take it from
 * a checkout of github.com/onnx/onnx (git archive HEAD onnx/backend/test/data | tar -x).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import '../compiler/ops';
import { compileModel, optimizeImported } from '../compiler/compile';
import { runGraph } from '../compiler/interpreter/interpreter';
import type { TensorValue } from '../compiler/ir/tensor';
import { importOnnxFile } from '../compiler/onnx/import';
import { TensorProtoType, type TensorProto } from '../compiler/onnx/schema';
import { tensorFromProto } from '../compiler/onnx/tensor-data';
import { inferShapes } from '../compiler/passes/shape-inference';

interface Row {
  test: string;
  /** 'ok', or what went wrong at each stage ('-' when a stage did not run). */
  interpreter: string;
  optimized: string;
  cuda: string;
}

function readTensor(file: string): TensorValue {
  const decoded = TensorProtoType.toObject(TensorProtoType.decode(fs.readFileSync(file)), {
    longs: Number,
    bytes: Uint8Array,
    defaults: true,
  }) as unknown as TensorProto;
  const value = tensorFromProto(decoded);
  if (!value) throw new Error(`${file}: no tensor data`);
  return value;
}

/** null when every element is within 1e-4 + 1e-3·|expected| (the ONNX backend tests' tolerances), else why not. */
function mismatch(actual: TensorValue | undefined, expected: TensorValue): string | null {
  if (!actual) return 'output missing';
  if (actual.shape.join() !== expected.shape.join()) return `shape [${actual.shape}] instead of [${expected.shape}]`;
  const a = actual.data as ArrayLike<number>;
  const e = expected.data as ArrayLike<number>;
  for (let i = 0; i < e.length; i++) {
    const x = Number(a[i]);
    const y = Number(e[i]);
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (!(Math.abs(x - y) <= 1e-4 + 1e-3 * Math.abs(y))) return `element ${i} is ${x}, expected ${y}`;
  }
  return null;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e)
    .split('\n')[0]
    .slice(0, 200);
}

function runTest(dir: string, name: string): Row {
  const row: Row = { test: name, interpreter: '-', optimized: '-', cuda: '-' };
  const model = path.join(dir, 'model.onnx');
  const set = path.join(dir, 'test_data_set_0');
  const tensors = (prefix: string) =>
    fs
      .readdirSync(set)
      .filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
      .sort((x, y) => Number(/\d+/.exec(x)![0]) - Number(/\d+/.exec(y)![0]))
      .map((f) => readTensor(path.join(set, f)));
  const inputs = tensors('input_');
  const expected = tensors('output_');
  const compare = (outputs: TensorValue[]) => expected.map((e, i) => mismatch(outputs[i], e)).find((m) => m) ?? 'ok';
  try {
    const imported = importOnnxFile(model);
    const errors = [...imported.diagnostics, ...inferShapes(imported.graph).diagnostics].filter((d) => d.severity === 'error');
    if (errors.length) {
      row.interpreter = `import: ${errors[0].message.slice(0, 200)}`;
      return row;
    }
    row.interpreter = compare(runGraph(imported.graph, inputs.slice(0, imported.graph.inputs.length)));
  } catch (e) {
    row.interpreter = firstLine(e);
    return row;
  }
  try {
    const optimized = optimizeImported(importOnnxFile(model), model, { validate: true });
    const errors = optimized.context.diagnostics.filter((d) => d.severity === 'error');
    row.optimized = errors.length
      ? `optimize: ${errors[0].message.slice(0, 200)}`
      : compare(runGraph(optimized.graph, inputs.slice(0, optimized.graph.inputs.length)));
  } catch (e) {
    row.optimized = firstLine(e);
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-conformance-'));
  try {
    const result = compileModel(model, { out: path.join(out, 'build'), target: 'cuda:sm90', maxBatch: 4 });
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    row.cuda = errors.length ? `${errors.length} error(s): ${errors[0].message.slice(0, 200)}` : 'ok';
  } catch (e) {
    row.cuda = `threw: ${firstLine(e)}`;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  return row;
}

function main(): void {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const only = flag('--only');
  const json = flag('--json');
  const root = args[0];
  if (!root || !fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    console.error('usage: npx tsx scripts/onnx-conformance.ts DATA_DIR [--only SUBSTRING] [--json FILE]');
    process.exit(2);
  }
  const rows: Row[] = [];
  for (const suite of fs.readdirSync(root).sort()) {
    const suiteDir = path.join(root, suite);
    if (!fs.statSync(suiteDir).isDirectory()) continue;
    for (const test of fs.readdirSync(suiteDir).sort()) {
      const dir = path.join(suiteDir, test);
      if (only && !`${suite}/${test}`.includes(only)) continue;
      if (!fs.existsSync(path.join(dir, 'model.onnx')) || !fs.existsSync(path.join(dir, 'test_data_set_0'))) continue;
      const row = runTest(dir, `${suite}/${test}`);
      rows.push(row);
      console.log(`${row.test}: interpreter ${row.interpreter} | optimized ${row.optimized} | cuda ${row.cuda}`);
    }
  }
  const count = (key: keyof Row) => rows.filter((r) => r[key] === 'ok').length;
  console.log(
    `\n${rows.length} tests: interpreter ${count('interpreter')} ok, optimized ${count('optimized')} ok, cuda:sm90 ${count('cuda')} compile with no error`,
  );
  if (json) fs.writeFileSync(json, JSON.stringify({ format: 'ait-onnx-conformance', version: 1, rows }, null, 2));
}

main();
