/**
 * Checks of the options that bound a build: symbolic input dim bounds (`--dim NAME=MIN..MAX`) and the largest batch
 * (`--max-batch`). The CLI parses with these and checks the bounds against the model before it compiles; the code
 * generator checks the max batch again for API callers.
 */
import * as fs from 'node:fs';
import { CompileError, error } from './diagnostics';
import { decodeModel } from './onnx/import';
import { MAX_BATCH } from './backends/cuda/codegen/batch-ranges';

/** Largest bound of a symbolic dim: what the generated code's int32 dims hold. */
export const MAX_DIM = 2 ** 31 - 1;

/** Largest batch one build serves (compiler/backends/cuda/codegen/batch-ranges.ts says why). */
export { MAX_BATCH };

export type DimBounds = Record<string, [number, number]>;

function boundOf(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_DIM)
    throw new Error(`${what}: bounds are integers from 1 to ${MAX_DIM}, got '${text}'`);
  return Number(text);
}

/** `NAME=MIN..MAX` or `NAME=N` → [NAME, [MIN, MAX]]; throws an Error with a one-line message. */
export function parseDimBound(value: string): [string, [number, number]] {
  const m = /^([^=]+)=([^.]*)(?:\.\.(.*))?$/.exec(value);
  if (!m) throw new Error(`expected NAME=MIN..MAX (e.g. batch=1..256), got '${value}'`);
  const name = m[1];
  const min = boundOf(m[2], `--dim ${value}`);
  const max = m[3] !== undefined ? boundOf(m[3], `--dim ${value}`) : min;
  if (max < min) throw new Error(`bounds of '${name}': max ${max} is below min ${min}`);
  return [name, [min, max]];
}

/** `--max-batch N`: an integer 1..MAX_BATCH; throws an Error with a one-line message. */
export function parseMaxBatch(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new Error(`--max-batch takes a positive integer, got '${value}'`);
  const n = Number(value);
  if (n > MAX_BATCH) throw new Error(`--max-batch ${value}: a build serves at most batch ${MAX_BATCH}`);
  return n;
}

/** The named symbolic dims (dim_param) of a model's inputs, in order of first use (the first is the batch). */
export function modelInputDims(file: string): string[] {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new CompileError(error('onnx.read-failed', `cannot read the model: ${(e as Error).message}`, { file }));
  }
  const graph = decodeModel(bytes, file).graph;
  if (!graph) return [];
  const initializers = new Set(graph.initializer.map((t) => t.name));
  const names: string[] = [];
  for (const input of graph.input) {
    if (initializers.has(input.name)) continue;
    for (const d of input.type?.tensor_type?.shape?.dim ?? [])
      if (d.value === 'dim_param' && d.dim_param && !names.includes(d.dim_param)) names.push(d.dim_param);
  }
  return names;
}

/**
 * Bounds given for dims the model does not have are an error (`cli.unknown-dim`) naming the dim and listing the
 * model's symbolic input dims. For a build (`build` given), so is a batch dim (the first) bounded above MAX_BATCH
 * when no max batch is given.
 */
export function checkDimBounds(modelDims: readonly string[], bounds: DimBounds | undefined, build?: { maxBatch?: number }): void {
  for (const name of Object.keys(bounds ?? {})) {
    if (modelDims.includes(name)) continue;
    const known = modelDims.length ? `its symbolic input dims are ${modelDims.join(', ')}` : 'it has no symbolic input dims';
    throw new CompileError(error('cli.unknown-dim', `--dim ${name}: the model has no symbolic input dim '${name}'; ${known}`));
  }
  const batch = modelDims[0];
  const max = batch !== undefined ? bounds?.[batch]?.[1] : undefined;
  if (build && build.maxBatch === undefined && max !== undefined && max > MAX_BATCH)
    throw new CompileError(
      error(
        'cli.bad-option',
        `--dim ${batch}=..${max}: a build serves at most batch ${MAX_BATCH}; lower the bound or give --max-batch N (N ≤ ${MAX_BATCH})`,
      ),
    );
}
