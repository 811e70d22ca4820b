/**
 * A partitioned model run on this machine, as the generated runner runs it on the GPU host: segments in order,
 * compiled segments by the interpreter on the segment's optimized graph (the reference of what its build
 * computes), fallback segments by onnxruntime-node on fallback/<k>.onnx. Tensors cross by name.
 */
import { runGraphNamed } from '../interpreter/interpreter';
import type { DType } from '../ir/dtype';
import { makeTensor, type TensorValue } from '../ir/tensor';
import { ModelProtoType } from '../onnx/schema';
import type { OrtModule } from '../verify/onnxruntime';
import type { PartitionResult } from './partition';

const ORT_TYPES: Partial<Record<DType, string>> = { float32: 'float32', int64: 'int64', int32: 'int32', bool: 'bool', float64: 'float64' };

export interface SegmentTiming {
  segment: number;
  kind: 'compiled' | 'fallback';
  ms: number;
}

/** Runs every segment; returns the model's outputs by name and each segment's time. */
export async function runPartitionReference(
  result: PartitionResult,
  inputs: Map<string, TensorValue>,
  ort: OrtModule,
): Promise<{ outputs: Map<string, TensorValue>; timings: SegmentTiming[] }> {
  const values = new Map(inputs);
  const timings: SegmentTiming[] = [];
  for (const seg of result.segments) {
    const started = performance.now();
    const need = (name: string) => {
      const v = values.get(name);
      if (!v) throw new Error(`segment ${seg.plan.index} reads '${name}', which no earlier segment produced`);
      return v;
    };
    if (seg.plan.kind === 'compiled') {
      const graph = seg.graph!;
      const produced = runGraphNamed(
        graph,
        graph.inputs.map((name) => need(name)),
      );
      for (const [name, v] of produced) values.set(name, v);
    } else {
      const session = await ort.InferenceSession.create(ModelProtoType.encode(seg.model).finish());
      const feeds: Record<string, unknown> = {};
      for (const name of session.inputNames) {
        const v = need(name);
        const type = ORT_TYPES[v.dtype];
        if (!type)
          throw new Error(`segment ${seg.plan.index}: input '${name}' is ${v.dtype}, which this check does not pass to onnxruntime`);
        const data =
          v.dtype === 'int64'
            ? BigInt64Array.from(v.data as ArrayLike<number>, (x) => BigInt(x))
            : v.dtype === 'bool'
              ? Uint8Array.from(v.data as ArrayLike<number>)
              : v.dtype === 'int32'
                ? Int32Array.from(v.data as ArrayLike<number>)
                : v.dtype === 'float64'
                  ? Float64Array.from(v.data as ArrayLike<number>)
                  : Float32Array.from(v.data as ArrayLike<number>);
        feeds[name] = new (ort.Tensor as unknown as new (t: string, d: unknown, s: number[]) => unknown)(type, data, v.shape);
      }
      const out = await session.run(feeds);
      await session.release?.();
      for (const [name, t] of Object.entries(out)) values.set(name, fromOrt(t.type, t.data, t.dims));
    }
    timings.push({ segment: seg.plan.index, kind: seg.plan.kind, ms: performance.now() - started });
  }
  return { outputs: values, timings };
}

function fromOrt(type: string, data: ArrayLike<number | bigint>, dims: readonly number[]): TensorValue {
  const dtype: DType =
    type === 'int64' ? 'int64' : type === 'int32' ? 'int32' : type === 'bool' ? 'bool' : type === 'float64' ? 'float64' : 'float32';
  return makeTensor(
    dtype,
    [...dims],
    Array.from(data as ArrayLike<number | bigint>, (x) => Number(x)),
  );
}
