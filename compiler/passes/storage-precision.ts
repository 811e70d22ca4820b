/**
 * Storage precision per tensor. Float tensors live in fp16 on the GPU, which holds activations well but not box
 * coordinates: torchvision's batched NMS offsets each box by `class · (max_coordinate + 1)`, tens of thousands,
 * where fp16's spacing is 16–32, and decoded boxes (anchors + deltas · size) of a 1000-pixel image are off by up to
 * half a pixel. This pass marks the float tensors that carry such values `storage: 'float32'` (TensorInfo); the
 * backends store them as fp32, and the memory plan, the cost model and the reference interpreter's fp16 emulation
 * read the same mark.
 *
 * The rule, in three steps (each a table below, so a new op joins by one line):
 * 1. Demand. The inputs in FP32_INPUTS (NMS boxes, RoiAlign rois), Casts of shape arithmetic to float, and what the
 *    user names (`--fp32 NAME,…`: a tensor, or a node's outputs) need fp32. The demand flows backwards through
 *    ops that copy, select or combine their float inputs elementwise (MOVEMENT_OPS, ARITHMETIC_OPS) to model inputs and
 *    weights (anchors: written fp32 in weights.safetensors); it stops at every other producer (convolution, GEMM,
 *    attention, normalization, …), whose outputs stay fp16.
 * 2. Decision, in graph order. A movement op's output is fp32 when one of its float data inputs is: a copy of fp16
 *    values stays fp16, since it loses nothing (the regression head's Concat/Slice/Gather chain). An arithmetic op's
 *    output is fp32 when demanded, or when all its non-constant float inputs are fp32 (what is computed from boxes:
 *    the detections written to the model's outputs). Views share their input's storage.
 * 3. Conversions. Elementwise kernels read each input in its own storage type. Any other kernel reads one type:
 *    where an input's storage differs from what the kernel reads (FP32_INPUTS; a movement op's output type; fp16 for
 *    everything else), a Cast node (float → float, storage converted) is inserted before it.
 * A demanded copy of fp16 values (a movement op's output) stays fp16: it holds them exactly, and its reader converts.
 */
import { warning } from '../diagnostics';
import { DType } from '../ir/dtype';
import { Graph, Node } from '../ir/graph';
import { ELEMENTWISE_OPS, VIEW_OPS } from '../ops/op-classes';
import { isShapeComputation } from './cost';
import { Pass } from './pass';
import { isStatic } from './rewrite';

export type Storage = 'float16' | 'float32';

/** Inputs (by index) whose kernels read fp32 whatever the graph around them: coordinates. */
export const FP32_INPUTS: Readonly<Record<string, readonly number[]>> = {
  NonMaxSuppression: [0, 1, 3, 4], // boxes; scores and the thresholds are read as the boxes' type (nms.cuh NmsArgs<T>)
  RoiAlign: [1], // rois (roi_align.cuh RoiAlignArgs<T, R>: the feature map stays fp16)
};

/** Of FP32_INPUTS, those whose values must be exact: the fp32 demand flows back through their producers. */
const DEMANDING_INPUTS: Readonly<Record<string, readonly number[]>> = {
  NonMaxSuppression: [0],
  RoiAlign: [1],
};

/**
 * Ops whose float outputs are copies of float input values (data inputs by index; undefined: every input), and
 * whose CUDA kernels take any storage type. ReduceMax/ReduceMin select one of their inputs' values.
 */
export const MOVEMENT_OPS: ReadonlyMap<string, readonly number[] | undefined> = new Map<string, readonly number[] | undefined>([
  ...[...VIEW_OPS].map((op): [string, number[]] => [op, [0]]),
  ['Transpose', [0]],
  ['Concat', undefined],
  ['Slice', [0]],
  ['Roll', [0]],
  ['Gather', [0]],
  ['GatherElements', [0]],
  ['GatherND', [0]],
  ['Expand', [0]],
  ['Tile', [0]],
  ['TopK', [0]],
  ['ReduceMax', [0]],
  ['ReduceMin', [0]],
  ['if_select', undefined],
]);

/**
 * Ops whose float outputs are elementwise arithmetic of their float inputs (Cast included); their kernel (the
 * mixed-type elementwise kernel) reads every input in its own storage type.
 */
export const ARITHMETIC_OPS: ReadonlySet<string> = new Set([...ELEMENTWISE_OPS, 'elementwise']);

/** Float types whose storage this pass decides (float16/bfloat16 tensors keep their own width). */
const isWide = (dtype: DType | undefined) => dtype === 'float32' || dtype === 'float64';

export interface StorageOptions {
  /** Tensors, or nodes (ONNX or graph names: their outputs), to store in fp32 (`ait compile --fp32`). */
  fp32?: readonly string[];
}

export interface StorageResult {
  /** Tensors stored in fp32 (views included). */
  fp32: string[];
  /** Conversion nodes inserted (Cast float → float between storages). */
  conversions: Node[];
  /** Names given in `fp32` that are no tensor or node of the graph. */
  unknown: string[];
}

const movementInputs = (node: Node): number[] => {
  const data = MOVEMENT_OPS.get(node.op);
  return data ? [...data] : node.inputs.map((_, i) => i).filter((i) => !(node.op === 'if_select' && i === 0));
};

/** Decides the storage of every float tensor of `graph` (TensorInfo.storage) and inserts the conversions. */
export function assignStoragePrecision(graph: Graph, options: StorageOptions = {}): StorageResult {
  const producers = graph.producers();
  const wide = (t: string) => !!t && isWide(graph.lookupTensor(t)?.dtype);
  const kernelNode = (n: Node) => !isShapeComputation(graph, n);

  // 1. demand, backwards from the seeds
  const demanded = new Set<string>();
  const work: string[] = [];
  const demand = (t: string) => {
    if (wide(t) && !demanded.has(t)) {
      demanded.add(t);
      work.push(t);
    }
  };
  const unknown: string[] = [];
  for (const name of options.fp32 ?? []) {
    if (graph.lookupTensor(name)) demand(name);
    else {
      const nodes = graph.nodes.filter((n) => n.name === name || n.sourceNodes.includes(name));
      if (!nodes.length) unknown.push(name);
      for (const n of nodes) n.outputs.forEach(demand);
    }
  }
  for (const node of graph.nodes) {
    for (const i of DEMANDING_INPUTS[node.op] ?? []) if (node.inputs[i]) demand(node.inputs[i]);
    // a model input read as fp32 is taken in fp32 (no conversion kernel)
    for (const i of FP32_INPUTS[node.op] ?? []) if (graph.inputs.includes(node.inputs[i])) demand(node.inputs[i]);
    // a float computed from shape arithmetic (an image size, a count) is an integer fp16 may not hold
    if (node.op === 'Cast' && graph.lookupTensor(node.inputs[0])?.shapeValue) demand(node.outputs[0]);
  }
  while (work.length) {
    const t = work.pop()!;
    const producer = producers.get(t);
    if (!producer || !kernelNode(producer)) continue;
    if (MOVEMENT_OPS.has(producer.op)) for (const i of movementInputs(producer)) demand(producer.inputs[i]);
    else if (ARITHMETIC_OPS.has(producer.op)) producer.inputs.forEach(demand);
  }

  // 2. decision, in graph order (nodes are topologically sorted)
  const fp32 = new Set<string>();
  const isStaticTensor = (t: string) => isStatic(graph.lookupTensor(t));
  for (const t of demanded) if (!producers.has(t) && (graph.inputs.includes(t) || isStaticTensor(t))) fp32.add(t);
  for (const node of graph.nodes) {
    const outputs = node.outputs.filter(wide);
    if (!outputs.length) continue;
    if (!kernelNode(node)) {
      // shape arithmetic: computed on the host, written to its buffer in its storage type where a kernel reads it
      for (const o of outputs) if (demanded.has(o)) fp32.add(o);
      continue;
    }
    let decided: boolean;
    if (VIEW_OPS.has(node.op) || MOVEMENT_OPS.has(node.op)) decided = movementInputs(node).some((i) => fp32.has(node.inputs[i]));
    else if (ARITHMETIC_OPS.has(node.op)) {
      const read = node.inputs.filter((t) => wide(t) && !isStaticTensor(t));
      decided = outputs.some((o) => demanded.has(o)) || (read.length > 0 && read.every((t) => fp32.has(t)));
    } else decided = false;
    if (decided) for (const o of outputs) fp32.add(o);
  }

  // 3. conversions where a kernel reads another storage type than the input's
  const storageOf = (t: string): Storage => (fp32.has(t) ? 'float32' : 'float16');
  const conversions: Node[] = [];
  const converted = new Map<string, string>();
  const nodes: Node[] = [];
  for (const node of graph.nodes) {
    if (kernelNode(node) && !VIEW_OPS.has(node.op) && !ARITHMETIC_OPS.has(node.op)) {
      const fixed = FP32_INPUTS[node.op];
      const followed = MOVEMENT_OPS.has(node.op) ? node.outputs.find(wide) : undefined;
      node.inputs.forEach((t, i) => {
        if (!wide(t)) return;
        let want: Storage | undefined;
        if (fixed) want = fixed.includes(i) ? 'float32' : 'float16';
        else if (MOVEMENT_OPS.has(node.op)) want = movementInputs(node).includes(i) && followed ? storageOf(followed) : undefined;
        else want = 'float16';
        if (!want || storageOf(t) === want) return;
        // the conversion runs when its reader does; an if_select (unguarded) reads a branch's value: when that runs
        const guard = node.guard ?? producers.get(t)?.guard;
        const key = `${t}\u0000${want}\u0000${guard ? `${guard.condition}:${guard.taken}` : ''}`;
        let name = converted.get(key);
        if (!name) {
          const info = graph.tensor(t);
          name = graph.newTensorName(`${t}/${want === 'float32' ? 'fp32' : 'fp16'}`);
          if (want === 'float32') fp32.add(name);
          converted.set(key, name);
          if (info.value) {
            // a constant: a copy of it in the other storage (its value stays known at compile time)
            graph.addTensor({ name, dtype: info.dtype, shape: info.shape, kind: 'constant', value: info.value });
            node.inputs[i] = name;
            return;
          }
          graph.addTensor({ name, dtype: info.dtype, shape: info.shape, kind: 'activation' });
          const conversion: Node = {
            id: graph.newNodeId(),
            op: 'Cast',
            domain: '',
            name: `${node.name}/to_${want === 'float32' ? 'fp32' : 'fp16'}`,
            inputs: [t],
            outputs: [name],
            attrs: { to: { type: 'int', value: info.dtype === 'float64' ? 11 : 1 } },
            sourceNodes: [],
            scope: node.scope,
            ...(guard ? { guard: { ...guard } } : {}),
          };
          conversions.push(conversion);
          nodes.push(conversion);
        }
        node.inputs[i] = name;
      });
    }
    nodes.push(node);
  }
  graph.nodes = nodes;

  // views share their input's storage (a view of a view included: graph order)
  for (const node of graph.nodes) if (VIEW_OPS.has(node.op) && fp32.has(node.inputs[0]) && wide(node.outputs[0])) fp32.add(node.outputs[0]);
  for (const info of graph.tensors.values()) {
    if (fp32.has(info.name)) info.storage = 'float32';
    else delete info.storage;
  }
  return { fp32: [...fp32].sort(), conversions, unknown };
}

export const storagePrecisionPass: Pass = {
  name: 'storage-precision',
  description: 'fp32 storage for box coordinates and what computes them (NMS boxes, RoiAlign rois); fp16 elsewhere',
  run(graph, ctx) {
    const result = assignStoragePrecision(graph, { fp32: ctx.fp32 });
    for (const name of result.unknown)
      ctx.diagnostics.push(warning('storage.unknown-name', `--fp32 ${name}: no tensor or node of the optimized graph has this name`));
    if (result.fp32.length) ctx.reports['storage-precision'] = { fp32Tensors: result.fp32.length, conversions: result.conversions.length };
  },
};
