/**
 * The optimization pipeline: every pass, in order. Read this file first to see what the compiler does to a model.
 * The pass manager (pass.ts) times each pass, validates the graph after it (always in tests) and dumps it on
 * request (`ait compile --dump-after PASS`).
 */
import { Graph } from '../ir/graph';
import { foldBatchNormPass } from './batchnorm';
import { canonicalizePass } from './canonicalize';
import { costPass } from './cost';
import { foldConstantsPass } from './fold-constants';
import { fuseAttentionPass } from './fuse-attention';
import { fuseConvPass, fuseGemmPass } from './fuse-epilogue';
import { fuseElementwisePass } from './fuse-elementwise';
import { fuseLayerNormPass } from './fuse-layernorm';
import { inlineIfPass } from './inline-if';
import { layoutPass } from './layout';
import { memoryPlanPass } from './memory-plan';
import { mergeProjectionsPass } from './merge-projections';
import { padChannelsPass } from './pad-channels';
import { pasteMasksPass } from './paste-masks';
import { Pass } from './pass';
import { rollPass } from './roll';
import { storagePrecisionPass } from './storage-precision';
import { inferShapes } from './shape-inference';

/** Re-runs shape inference and folding (after passes that create foldable weight-preparation nodes). */
export const reinferPass: Pass = {
  name: 'reinfer',
  description: 'shape inference and constant folding again (folds weight preparation when weights are present)',
  run(graph, ctx) {
    const r = inferShapes(graph);
    ctx.diagnostics.push(...r.diagnostics);
  },
};

export const OPTIMIZATION_PASSES: Pass[] = [
  foldConstantsPass, // drop what shape inference folded, and dead nodes
  pasteMasksPass, // torchvision's mask-paste Loop → PasteMasks (checked on the interpreter first)
  canonicalizePass, // no-ops out; one form for both exporters' idioms
  rollPass, // Concat of Slices covering an axis cyclically (torch.roll) → one Roll
  foldBatchNormPass, // BN into conv weights (or a per-channel scale/shift)
  layoutPass, // NHWC convolutions; transposes sunk and cancelled
  reinferPass,
  foldConstantsPass,
  fuseGemmPass, // gemm + bias/activation/residual
  fuseConvPass, // conv2d + bias/activation/residual
  padChannelsPass, // conv input channels padded to 8 by the input layout transpose (C=3 stems)
  fuseLayerNormPass, // layernorm
  fuseAttentionPass, // multi-head attention
  mergeProjectionsPass, // its q, k, v GEMMs over one input → one GEMM (packed / kv_packed)
  fuseElementwisePass, // remaining elementwise chains
  inlineIfPass, // If with a run-time condition: guarded branch nodes + if_select
  foldConstantsPass, // clean up what fusion left dead
  storagePrecisionPass, // fp32 storage for box coordinates (NMS boxes, RoiAlign rois) and what computes them
  costPass, // FLOPs and bytes per node
  memoryPlanPass, // activation arena
];

export function passNames(): string[] {
  return [...new Set(OPTIMIZATION_PASSES.map((p) => p.name))];
}

export type { Graph };
