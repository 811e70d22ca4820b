/**
 * Scaling with graph size: `inspect` (import + shape inference + summary) and the graph part of `compile` (import,
 * shape inference, every optimization pass, graph.json serialization) on long chains of nodes built in memory.
 * Both should grow linearly with the node count. Prints a table and writes build/bench-scaling.json.
 *
 *   npm run bench:scaling [-- --sizes 10000,20000,50000,100000] [-- --chains relu-add,matmul]
 *
 * Chains: `relu-add` alternates Relu(y) and Add(y, x) (every node elementwise: the optimizer fuses the whole chain
 * into one kernel); `matmul` repeats MatMul(y, W) → Add(·, b) → Relu (one shared [64, 64] weight), so the epilogue
 * fusion, cost and memory-plan passes see one kernel per three ONNX nodes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import '../compiler/ops';
import { optimizeModel } from '../compiler/compile';
import { inspectModel } from '../compiler/inspect';
import { graphToJson } from '../compiler/ir/serialize';
import { ModelSpec, NodeSpec, buildModel } from '../test/helpers/onnx-builder';

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const sizes = (argument('--sizes') ?? '10000,20000,50000,100000').split(',').map(Number);
const chains = (argument('--chains') ?? 'relu-add,matmul,identity').split(',');

/** A chain of about `n` ONNX nodes. */
export function chainModel(kind: string, n: number): ModelSpec {
  const nodes: NodeSpec[] = [];
  let y = 'x';
  if (kind === 'relu-add') {
    for (let i = 0; i < n; i++) {
      const out = `t${i}`;
      nodes.push(
        i % 2 === 0
          ? { op: 'Relu', name: `relu_${i}`, inputs: [y], outputs: [out] }
          : { op: 'Add', name: `add_${i}`, inputs: [y, 'x'], outputs: [out] },
      );
      y = out;
    }
    return { inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 64] }], nodes, outputs: [y] };
  }
  if (kind === 'matmul') {
    for (let i = 0; nodes.length < n; i++) {
      nodes.push({ op: 'MatMul', name: `mm_${i}`, inputs: [y, 'W'], outputs: [`m${i}`] });
      nodes.push({ op: 'Add', name: `bias_${i}`, inputs: [`m${i}`, 'b'], outputs: [`a${i}`] });
      nodes.push({ op: 'Relu', name: `relu_${i}`, inputs: [`a${i}`], outputs: [`r${i}`] });
      y = `r${i}`;
    }
    const w = Array.from({ length: 64 * 64 }, (_, i) => ((i * 7919) % 13) / 13 - 0.5);
    return {
      inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 64] }],
      initializers: [
        { name: 'W', dtype: 'float32', dims: [64, 64], values: w },
        { name: 'b', dtype: 'float32', dims: [64], values: new Array(64).fill(0.1) },
      ],
      nodes,
      outputs: [y],
    };
  }
  if (kind === 'identity') {
    // no-ops (Identity / Dropout) that canonicalize removes, ending in one Relu
    for (let i = 0; i < n - 1; i++) {
      nodes.push({ op: i % 2 ? 'Identity' : 'Dropout', name: `noop_${i}`, inputs: [y], outputs: [`i${i}`] });
      y = `i${i}`;
    }
    nodes.push({ op: 'Relu', name: 'relu', inputs: [y], outputs: ['y'] });
    return { inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 64] }], nodes, outputs: ['y'] };
  }
  throw new Error(`unknown chain '${kind}' (relu-add, matmul, identity)`);
}

interface Row {
  chain: string;
  nodes: number;
  inspectMs: number;
  compileMs: number;
  /** compile's stages: import, shape inference, each pass, serialize */
  stages: Record<string, number>;
  nodesAfter: number;
  errors: number;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-bench-scaling-'));
const rows: Row[] = [];
try {
  for (const chain of chains)
    for (const n of sizes) {
      const file = path.join(dir, `${chain}-${n}.onnx`);
      fs.writeFileSync(file, buildModel(chainModel(chain, n)));

      let t0 = performance.now();
      const { summary } = inspectModel(file);
      const inspectMs = performance.now() - t0;

      t0 = performance.now();
      const r = optimizeModel(file);
      const t1 = performance.now();
      JSON.stringify(graphToJson(r.graph, { modelName: chain, info: r.model.info, removed: r.context.removed, sections: {} }));
      const serializeMs = performance.now() - t1;
      const compileMs = performance.now() - t0;

      const stages: Record<string, number> = {};
      for (const s of r.stages) stages[s.name] = (stages[s.name] ?? 0) + Math.round(s.ms);
      stages.serialize = Math.round(serializeMs);
      const errors =
        summary.diagnostics.filter((d) => d.severity === 'error').length +
        r.context.diagnostics.filter((d) => d.severity === 'error').length;
      const row = { chain, nodes: n, inspectMs, compileMs, stages, nodesAfter: r.graph.nodes.length, errors };
      rows.push(row);
      const slowest = Object.entries(stages)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      console.log(
        `${chain.padEnd(9)} ${String(n).padStart(7)} nodes  inspect ${inspectMs.toFixed(0).padStart(6)} ms  compile ${compileMs.toFixed(0).padStart(6)} ms` +
          `  (${slowest})${errors ? `  ${errors} errors` : ''}`,
      );
    }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

console.log(`\nscaling, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
console.log('| chain | ONNX nodes | nodes after | inspect ms | compile (graph) ms | µs/node inspect | µs/node compile |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.chain} | ${r.nodes} | ${r.nodesAfter} | ${r.inspectMs.toFixed(0)} | ${r.compileMs.toFixed(0)} | ${((1000 * r.inspectMs) / r.nodes).toFixed(1)} | ${((1000 * r.compileMs) / r.nodes).toFixed(1)} |`,
  );
fs.mkdirSync('build', { recursive: true });
fs.writeFileSync(
  'build/bench-scaling.json',
  JSON.stringify(
    { date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, rows },
    null,
    2,
  ),
);
console.log('wrote build/bench-scaling.json');
