/** Access to the real models in ../shared/models (present on developer machines and CI, not in a user's clone). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SHARED_MODELS_DIR = path.resolve(__dirname, '..', '..', '..', 'shared', 'models');

export const SHARED_MODELS = [
  'resnet50',
  'resnet50_legacy',
  'vit_base_patch16_224',
  'vit_base_patch16_224_legacy',
  'vit_large_patch16_384',
  'maskrcnn_resnet50_fpn',
  'vitmatte',
] as const;

/** Path of a shared model; skips the calling test (with the reason) when ../shared/models is absent. */
export function sharedModel(name: string, ctx: Mocha.Context): string {
  const file = path.join(SHARED_MODELS_DIR, `${name}.onnx`);
  if (!fs.existsSync(file)) {
    console.log(`    (skipped: ${file} not found; ../shared/models is only on developer machines and CI)`);
    ctx.skip();
  }
  return file;
}
