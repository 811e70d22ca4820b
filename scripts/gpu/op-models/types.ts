/**
 * Small ONNX models, with their weights, that exercise one op family each on the GPU host: compiled here by
 * scripts/gpu/prepare-op-models.ts, then built there and compared with onnxruntime (CPU) by scripts/gpu/check_models.py.
 * Each family file in this folder exports `opModels: OpModel[]`.
 */
export interface OpModel {
  /** File-system-safe name, unique across families, e.g. "conv_grouped_g4". */
  name: string;
  /** What the model checks, one line (printed in the check's table). */
  description: string;
  /** The ONNX model with every initializer's data present (test/helpers/onnx-builder.ts builds these). */
  onnx: Uint8Array;
  /** `ait compile --max-batch`; the first input dimension is the batch when symbolic. */
  maxBatch: number;
  /** Batch sizes the GPU check runs and compares at. */
  batches: number[];
}
