#!/usr/bin/env bash
# Developer machine half of the GPU model check (the GPU host has no Node.js): compiles the shared graph-only models
# with `ait compile` (weights absent: bound by ONNX initializer name on the GPU host) into build/gpu-check/, and packs
# the CUTLASS headers there (the GPU host has none and no network).
#   bash scripts/gpu/prepare-check.sh   # ResNet-50 (sm90 + sm80), ViT-B/16 and ViT-L/16-384 (sm90), and the TorchScript
#                                       # exporter's ResNet-50 and ViT-B/16 graphs (LEGACY=0 or VIT_L=0 to leave them out)
#   CHECK_MODELS="efficientnet_b2 inception_v3:sm80" bash scripts/gpu/prepare-check.sh
#                                       # any models of ../shared/models or its zoo/ instead (NAME or NAME:ARCH, default sm90);
#                                       # the GPU host exports them by these names with shared/tools/export_models.py
#   MODELS=build/families CHECK_OUT=build/gpu-check-families COMPILE_OPTIONS="--max-batch 8" CHECK_MODELS="dla34 ..." \
#     bash scripts/gpu/prepare-check.sh     # the breadth families (scripts/gpu/families.py exports them there)
# The legacy graphs are built for --max-batch 8: they are only checked at batch 1 and 8 (the timing at 64 and 256 is
# of the dynamo graphs), and fewer batch ranges mean fewer CUTLASS instances to compile on the GPU host.
# Then on the GPU host, from the repo root (carry build/gpu-check and shared/, with shared/tools from /work/shared/tools):
#   bash scripts/gpu/check-models.sh build/gpu-check
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${CHECK_OUT:-$ROOT/build/gpu-check}"
MODELS="${MODELS:-/work/shared/models}"
CUTLASS="${CUTLASS_DIR:-$ROOT/.deps/cutlass}"
rm -rf "$OUT" && mkdir -p "$OUT"
(cd "$ROOT" && npm run build >/dev/null)  # always: a stale dist/ would compile with an older code generator
compile() {  # model target dir [extra options]
  node "$ROOT/dist/cli.js" compile "$MODELS/$1.onnx" --target "$2" --out "$OUT/$3" "${@:4}" | tail -1
  rm -rf "$OUT/$3/dumps"
}
if [ -n "${CHECK_MODELS:-}" ]; then
  for spec in $CHECK_MODELS; do
    name="${spec%%:*}"; arch="sm90"; [ "$spec" != "$name" ] && arch="${spec#*:}"
    rel="$name"; [ -f "$MODELS/$name.onnx" ] || rel="zoo/$name"
    # shellcheck disable=SC2086
    compile "$rel" "cuda:$arch" "${name}_$arch" ${COMPILE_OPTIONS:-}
  done
else
  compile resnet50 cuda:sm90 resnet50_sm90
  compile resnet50 cuda:sm80 resnet50_sm80
  compile vit_base_patch16_224 cuda:sm90 vit_base_patch16_224_sm90
  if [ "${LEGACY:-1}" = 1 ]; then  # the TorchScript exporter's graphs of the same models
    compile resnet50_legacy cuda:sm90 resnet50_legacy_sm90 --max-batch 8
    compile vit_base_patch16_224_legacy cuda:sm90 vit_base_patch16_224_legacy_sm90 --max-batch 8
  fi
  if [ "${VIT_L:-1}" = 1 ]; then compile vit_large_patch16_384 cuda:sm90 vit_large_patch16_384_sm90; fi
fi
if [ -f "$CUTLASS/include/cutlass/cutlass.h" ]; then
  tar -C "$CUTLASS" -czhf "$OUT/cutlass.tgz" include tools/util/include
else
  echo "no CUTLASS headers at $CUTLASS (set CUTLASS_DIR): the GPU host needs build/gpu-check/cutlass.tgz" >&2
  exit 1
fi
du -sh "$OUT"
