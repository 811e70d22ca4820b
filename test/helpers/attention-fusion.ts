/**
 * Shared checks of the attention fusion tests: fuse a model and compare the interpreter on the fused graph with
 * onnxruntime on the original; find the one attention op; compile a model for a target and read its graph.json.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import '../../compiler/ops';
import { compileModel, optimizeImported } from '../../compiler/compile';
import { runGraph } from '../../compiler/interpreter/interpreter';
import { Graph, Node } from '../../compiler/ir/graph';
import { makeTensor } from '../../compiler/ir/tensor';
import { importOnnxBytes } from '../../compiler/onnx/import';
import { relativeL2 } from './metrics';
import { ModelSpec, buildModel } from './onnx-builder';

/**
 * Optimizes `spec` (graph validated after every pass) and checks the interpreter's output `y` on the optimized graph
 * against onnxruntime's on the original model, for float inputs of `shapes` (values from `values`, else `random`).
 */
export async function fuseAndCompare(
  spec: ModelSpec,
  shapes: Record<string, number[]>,
  random: (n: number) => number[],
  values: Record<string, number[]> = {},
): Promise<Graph> {
  const bytes = buildModel(spec);
  const result = optimizeImported(importOnnxBytes(bytes), 'test.onnx', { validate: true });
  assert.deepEqual(
    result.context.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
    [],
  );
  const names = Object.keys(shapes);
  const data = names.map((n) => values[n] ?? random(shapes[n].reduce((a, b) => a * b, 1)));
  const session = await ort.InferenceSession.create(bytes);
  const feeds = Object.fromEntries(names.map((n, i) => [n, new ort.Tensor('float32', Float32Array.from(data[i]), shapes[n])]));
  const theirs = (await session.run(feeds)).y;
  const [ours] = runGraph(
    result.graph,
    names.map((n, i) => makeTensor('float32', shapes[n], data[i])),
  );
  assert.deepEqual(ours.shape, theirs.dims);
  const err = relativeL2(ours.data as Float32Array, theirs.data as Float32Array);
  assert.ok(err <= 1e-4, `relative L2 error ${err} against onnxruntime`);
  return result.graph;
}

/** The one attention op of `g`, none of `unfused` left beside it. */
export function attentionOf(g: Graph, unfused: string[] = ['Softmax', 'MatMul']): Node {
  assert.equal(g.nodes.filter((n) => unfused.includes(n.op)).length, 0, `${unfused.join('/')} left unfused`);
  const nodes = g.nodes.filter((n) => n.op === 'attention');
  assert.equal(nodes.length, 1);
  return nodes[0];
}

export interface GraphJson {
  nodes: {
    op: string;
    name: string;
    status?: { supported: boolean; reason?: string };
    kernel?: { library?: string; name: string; reason: string };
  }[];
}

/** Compiles `spec` for `target` (no error, no unsupported node), then hands the output dir and graph.json to `run`. */
export function compileTo(spec: ModelSpec, target: string, run: (out: string, graph: GraphJson) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-attn-'));
  try {
    const file = path.join(dir, 'block.onnx');
    fs.writeFileSync(file, buildModel(spec));
    const out = path.join(dir, 'out');
    const r = compileModel(file, { out, target });
    assert.deepEqual(
      r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message),
      [],
    );
    const graph = JSON.parse(fs.readFileSync(path.join(out, 'graph.json'), 'utf8')) as GraphJson;
    assert.deepEqual(
      graph.nodes.filter((n) => n.status && !n.status.supported).map((n) => `${n.op} ${n.name}: ${n.status!.reason}`),
      [],
    );
    run(out, graph);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
