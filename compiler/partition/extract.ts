/**
 * A segment of a partition (plan.ts) as a standalone ONNX model, cut out of the original ModelProto: the segment's
 * ONNX nodes as exported (attributes, subgraphs and metadata untouched; unnamed nodes get the importer's name), the
 * initializers they read, the folded constants they read embedded, and graph inputs/outputs typed from shape
 * inference (symbolic dims as dim_params).
 *
 * Initializers with external data:
 *   - `keep` (compiled segments, imported in memory with the original model's directory as base): left as they
 *     are, so the importer reads them under the same containment rules as for the whole model;
 *   - `inline` (fallback models written to the build directory): their values, which the importer read under those
 *     rules, are written inline; a weight with no data (graph-only export) becomes a graph input instead, listed in
 *     `absentWeights`, for the runner to feed from the weights the user binds.
 */
import { Graph, Node } from '../ir/graph';
import { dtypeToOnnx } from '../ir/dtype';
import { Dim, dimToString } from '../ir/symbolic';
import { tensorToProto } from '../onnx/tensor-data';
import { DATA_LOCATION_EXTERNAL, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../onnx/schema';
import type { PlannedSegment } from './plan';

export interface ExtractedSegment {
  model: ModelProto;
  /** Graph inputs of the extracted model that are absent weights of the original (inline mode only). */
  absentWeights: string[];
}

/** `protoIndex`: each node of `graph` → its index in `proto.graph.node` (nodes of the top-level graph). */
export function extractSegment(
  proto: ModelProto,
  graph: Graph,
  protoIndex: Map<Node, number>,
  segment: PlannedSegment,
  initializerMode: 'keep' | 'inline',
): ExtractedSegment {
  const gp = proto.graph!;
  const node: NodeProto[] = segment.nodes.map((n) => {
    const np = gp.node[protoIndex.get(n)!];
    return { ...np, name: n.name };
  });
  const byName = new Map(gp.initializer.map((t) => [t.name, t]));
  const initializer: TensorProto[] = [];
  const absentWeights: string[] = [];
  for (const name of segment.initializers) {
    const t = byName.get(name);
    if (!t) continue;
    if (initializerMode === 'keep' || t.data_location !== DATA_LOCATION_EXTERNAL) {
      initializer.push(t);
      continue;
    }
    const value = graph.tensors.get(name)?.value;
    if (value) initializer.push(tensorToProto(name, value) as unknown as TensorProto);
    else absentWeights.push(name);
  }
  for (const name of segment.constants) initializer.push(tensorToProto(name, graph.tensors.get(name)!.value!) as unknown as TensorProto);
  const input = [...segment.inputs, ...absentWeights].map((t) => valueInfo(graph, t));
  const output = segment.outputs.map((t) => valueInfo(graph, t));
  const model: ModelProto = {
    ...proto,
    graph: {
      ...gp,
      name: `${gp.name || 'main'}_segment${segment.index}`,
      node,
      initializer,
      sparse_initializer: [],
      input,
      output,
      value_info: [],
    },
  };
  return { model, absentWeights };
}

function valueInfo(graph: Graph, name: string): ValueInfoProto {
  const t = graph.lookupTensor(name);
  if (!t?.dtype) return { name, metadata_props: [] };
  const tensorType: NonNullable<ValueInfoProto['type']>['tensor_type'] = { elem_type: dtypeToOnnx(t.dtype) };
  if (t.shape) tensorType.shape = { dim: t.shape.map(dimProto) };
  return { name, type: { tensor_type: tensorType }, metadata_props: [] };
}

/** A dim as ONNX writes it: a number, else the symbol's name (an expression gets its canonical text). */
function dimProto(d: Dim): { dim_value?: number; dim_param?: string } {
  return typeof d === 'number' ? { dim_value: d } : { dim_param: dimToString(d) };
}
