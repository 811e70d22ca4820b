/**
 * `ait compile --module PATH`: one module of the user's PyTorch model (the backbone, an RPN head) compiled as a build
 * of its own, to be injected back into the PyTorch model in place of that module (ait_inject.py).
 *
 * A module is the set of ONNX nodes whose scope lies under its module path. The scope comes from the importer
 * (onnx/import.ts scopeOf): the dynamo exporter's `pkg.torch.onnx.name_scopes` (qualified names from the root, e.g.
 * ['layer1', 'layer1.0', 'layer1.0.bn1', <the FX node's name>]) or the TorchScript exporter's node name
 * (`/backbone/body/layer1/layer1.0/conv1/Conv`: each level named relative to an enclosing one, a module called again
 * suffixed `_1`, `_2`: `/rpn/head/cls_logits_1/Conv`). modulePathOf turns either into the dotted path that
 * `model.get_submodule` takes.
 *
 * The module's nodes are cut out of the original ONNX model as a segment of partition/plan.ts (extract.ts): its
 * inputs and outputs are the border tensors under their ONNX names, shape arithmetic and weight aliases are
 * recomputed inside, and the segment is compiled like a compiled segment of `--partition` (partition.ts
 * compileSegment). What the target cannot run inside the module is an error: a module build runs whole.
 */
import { CompileError, Diagnostic, error } from '../diagnostics';
import { Graph, Node } from '../ir/graph';
import { graphToJson } from '../ir/serialize';
import { importOnnxFile } from '../onnx/import';
import { ModelProtoType, type ModelProto } from '../onnx/schema';
import { inferShapes } from '../passes/shape-inference';
import { closeSegments, PlannedSegment, readsOf } from './plan';
import type { CompileOptions } from '../compile';
import { compileSegment, computesValues, PartitionTensor, tensorJson, weightOnlyNodes } from './partition';

export const MODULE_FORMAT = 'ait-module';
const NAME_SCOPES = 'pkg.torch.onnx.name_scopes';

/** A border tensor of a module: its ONNX name, dtype, dims, and which axes are symbolic (sized at run time). */
export interface ModuleTensor extends PartitionTensor {
  dynamicAxes: number[];
}

/** module.json: what a module build computes and how it is called (ait_inject.py reads it). */
export interface ModuleJson {
  format: typeof MODULE_FORMAT;
  version: 1;
  /** The whole model's name, and the module's path in it (`model.get_submodule(module)`). */
  model: string;
  module: string;
  target: string;
  /** The library's model name (lib<name>.so). */
  name: string;
  /** forward's arguments, in order: the tensors the module reads from outside it. */
  inputs: ModuleTensor[];
  /**
   * What forward returns, in this order: the module's tensors that the rest of the model (or the model's outputs)
   * read. ONNX keeps no container: `returns` is 'tensor' for one output, else 'tuple' (ait_inject.py takes
   * `output_keys` for a dict such as torchvision's FPN OrderedDict).
   */
  outputs: ModuleTensor[];
  returns: 'tensor' | 'tuple';
  /** ONNX nodes of the module (names as in graph.json `sourceNodes`), and the weights (initializers) it reads. */
  nodes: string[];
  weights: string[];
}

export interface ModuleBuild {
  json: ModuleJson;
  /** The build directory's files (relative to it): sources, Makefile, ait_model.py, graph.json, module.json. */
  files: Map<string, string | Uint8Array>;
  diagnostics: Diagnostic[];
  /** The extracted ONNX model, its optimized graph (what the build computes) and the segment (tests run them). */
  model: ModelProto;
  graph: Graph;
  segment: PlannedSegment;
}

/** A module path as the user writes it: attribute names and indices joined by '.'. */
export const MODULE_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;

/**
 * The dotted module path of a node's scope. Each part is either a qualified name continuing the path so far from
 * one of its levels (dynamo: 'layer1.0.bn1' after 'layer1.0'; TorchScript: 'layer1.0' after 'layer1', 'conv.0.0'
 * after 'conv.0'), or a child's name. `fromNameScopes`: the scope is dynamo's, whose last part names the FX node.
 */
export function modulePathOf(scope: string[], fromNameScopes: boolean): string[] {
  const parts = fromNameScopes ? scope.slice(0, -1) : scope;
  const path: string[] = [];
  for (const part of parts) {
    let replaced = false;
    // the longest tail of the path that the part continues (the whole path for dynamo's qualified names)
    for (let k = 0; k < path.length && !replaced; k++) {
      const tail = path.slice(k).join('.');
      if (part.startsWith(tail + '.')) {
        path.splice(k, path.length - k, ...part.split('.'));
        replaced = true;
      }
    }
    if (!replaced) path.push(...part.split('.'));
  }
  return path;
}

/**
 * Whether a node's module path lies under `wanted` (both as components). A TorchScript export names a module's
 * second call `<name>_1`: that call belongs to the module too (`rpn.head.cls_logits` takes `cls_logits_3`).
 */
function under(path: string[], wanted: string[], torchScript: boolean): boolean {
  if (path.length < wanted.length) return false;
  return wanted.every((w, i) => path[i] === w || (torchScript && path[i].startsWith(w + '_') && /^\d+$/.test(path[i].slice(w.length + 1))));
}

function nodePath(n: Node): { path: string[]; torchScript: boolean } {
  const fromNameScopes = n.metadata?.[NAME_SCOPES] !== undefined;
  return { path: modulePathOf(n.scope, fromNameScopes), torchScript: !fromNameScopes };
}

/** The model's top-level modules (first components of the nodes' module paths), in the order they first appear. */
export function topLevelModules(graph: Graph): string[] {
  const seen = new Set<string>();
  for (const n of graph.nodes) {
    const first = nodePath(n).path[0];
    if (first !== undefined) seen.add(first);
  }
  return [...seen];
}

/** Compiles each module of `modules` (module paths) of the model in `file` as a build of its own. */
export function compileModules(file: string, modelName: string, target: string, modules: string[], options: CompileOptions): ModuleBuild[] {
  for (const m of modules)
    if (!MODULE_PATH.test(m) || m === 'modules.json' || m === 'ait_inject.py')
      throw new CompileError(
        error('module.bad-path', `'${m}' is not a module path (attribute names and indices joined by '.', e.g. backbone.body.layer1)`, {
          file,
        }),
      );
  const importOptions = { dimBounds: options.dimBounds, defaultDimBounds: options.defaultDimBounds };
  const onnx = importOnnxFile(file, importOptions);
  const protoIndex = new Map<Node, number>(onnx.graph.nodes.map((n, i) => [n, i]));
  const inference = inferShapes(onnx.graph);
  const inferErrors = inference.diagnostics.filter((d) => d.severity === 'error');
  if (inferErrors.length) throw new CompileError(inferErrors);
  const graph = onnx.graph;
  const weightOnly = weightOnlyNodes(graph);
  const isShape = (n: Node) => weightOnly.has(n) || computesValues(graph, n);
  const ctx = { file, modelName, target, options };

  return modules.map((module) => {
    const segment = moduleSegment(graph, module, isShape, file);
    const name = `${modelName}_${module.replace(/\./g, '_')}`;
    const result = compileSegment(ctx, onnx, graph, protoIndex, segment, name);
    if ('moveToFallback' in result) {
      const problems = [...result.moveToFallback].map(([node, reason]) =>
        error('module.unsupported', `ONNX node '${node}' of module '${module}' cannot run on ${target}: ${reason}`, {
          file,
          onnxNode: node,
        }),
      );
      throw new CompileError(problems);
    }
    const files = new Map(result.files);
    const graphJson = graphToJson(result.graph, { modelName: name, info: onnx.info, sections: { target, module } });
    files.set('graph.json', JSON.stringify(graphJson));
    const json: ModuleJson = {
      format: MODULE_FORMAT,
      version: 1,
      model: modelName,
      module,
      target,
      name,
      inputs: segment.inputs.map((t) => moduleTensor(graph, t)),
      outputs: segment.outputs.map((t) => moduleTensor(graph, t)),
      returns: segment.outputs.length === 1 ? 'tensor' : 'tuple',
      nodes: segment.owned.map((n) => n.name),
      weights: segment.initializers,
    };
    files.set('module.json', JSON.stringify(json, null, 2) + '\n');
    return {
      json,
      files,
      diagnostics: result.diagnostics.filter((d) => d.severity !== 'error'),
      model: result.model,
      graph: result.graph,
      segment,
    };
  });
}

/**
 * The segment of the nodes under `module`: they own it, every other node that is not shape arithmetic is owned by
 * the rest of the model. The module must be one call: none of its inputs may be computed from its outputs.
 */
export function moduleSegment(graph: Graph, module: string, isShape: (n: Node) => boolean, file: string): PlannedSegment {
  const wanted = module.split('.');
  const inModule = new Set(
    graph.nodes.filter((n) => {
      const { path, torchScript } = nodePath(n);
      return under(path, wanted, torchScript);
    }),
  );
  if (inModule.size === 0)
    throw new CompileError(
      error(
        'module.not-found',
        `no ONNX node lies under module '${module}'; the model's top-level modules: ${topLevelModules(graph).join(', ') || '(none: its nodes carry no scope)'}`,
        { file },
      ),
    );
  // Nodes between two of the module's nodes (downstream of one, upstream of another) are part of the call: the
  // TorchScript exporter's own passes leave some unscoped ('Slice_123'). One under another module means the module
  // is not one call. (Shape arithmetic is recomputed wherever it is read: it does not count.)
  const between = nodesBetween(graph, inModule);
  const foreign = between.find((n) => n.scope.length > 0 && !isShape(n));
  if (foreign)
    throw new CompileError(
      error(
        'module.not-one-call',
        `module '${module}' is not one call: ${foreign.op} node '${foreign.name}' of module '${nodePath(foreign).path.join('.')}' ` +
          "runs between its nodes, on the module's data (a module called twice with other modules in between); compile the " +
          'module that holds both calls, or each call',
        { file, onnxNode: foreign.name },
      ),
    );
  for (const n of between) inModule.add(n);
  const owned = graph.nodes.filter((n) => inModule.has(n) && !isShape(n));
  if (owned.length === 0)
    throw new CompileError(
      error('module.empty', `module '${module}' computes nothing at run time (its nodes are all constants or shape arithmetic)`, { file }),
    );
  const rest = graph.nodes.filter((n) => !inModule.has(n) && !isShape(n));
  const [segment] = closeSegments(graph, rest.length ? ['compiled', 'fallback'] : ['compiled'], rest.length ? [owned, rest] : [owned]);
  // One call: no input computed (through the rest of the model) from an output.
  const ownedSet = new Set(owned);
  const fromOutputs = new Set(segment.outputs);
  for (const n of graph.nodes) {
    if (ownedSet.has(n)) continue;
    if (readsOf(n).some((t) => fromOutputs.has(t))) for (const o of n.outputs) if (o) fromOutputs.add(o);
  }
  const cyclic = segment.inputs.find((t) => fromOutputs.has(t));
  if (cyclic)
    throw new CompileError(
      error(
        'module.not-one-call',
        `module '${module}' is not one call: its input '${cyclic}' is computed outside it from its own outputs`,
        { file, tensor: cyclic },
      ),
    );
  return segment;
}

/** Nodes outside `members` that read (through any nodes) a member's output and feed (through any nodes) a member. */
function nodesBetween(graph: Graph, members: Set<Node>): Node[] {
  const downstream = new Set<string>();
  const down = new Set<Node>();
  for (const n of graph.nodes) {
    if (!members.has(n) && !readsOf(n).some((t) => downstream.has(t))) continue;
    if (!members.has(n)) down.add(n);
    for (const o of n.outputs) if (o) downstream.add(o);
  }
  const upstream = new Set<string>();
  const between: Node[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i];
    if (!members.has(n) && !n.outputs.some((o) => o && upstream.has(o))) continue;
    if (down.has(n)) between.push(n);
    for (const t of readsOf(n)) upstream.add(t);
  }
  return between.reverse();
}

function moduleTensor(graph: Graph, name: string): ModuleTensor {
  const t = tensorJson(graph, name);
  return { ...t, dynamicAxes: (t.shape ?? []).flatMap((d, i) => (typeof d === 'number' ? [] : [i])) };
}

/** The extracted module as ONNX bytes (for tests and `onnxruntime`). */
export function moduleOnnxBytes(build: ModuleBuild): Uint8Array {
  return ModelProtoType.encode(build.model).finish();
}
