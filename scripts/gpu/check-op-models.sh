#!/usr/bin/env bash
# GPU host half of the op-model check (small one-op-family models with weights; see scripts/gpu/prepare-op-models.ts):
# builds every compiled directory under one make jobserver through nvcc-cache.sh, then compares each with onnxruntime.
#   here:     npm run build && npx tsx scripts/gpu/prepare-op-models.ts build/gpu-ops   (+ build/gpu-check/cutlass.tgz)
#   GPU host: CUTLASS_DIR=/path/to/cutlass bash scripts/gpu/check-op-models.sh build/gpu-ops
# Results: a table on stdout, $OUT/check-op-models.json and build logs under $OUT/logs (OUT defaults to /tmp/ait-ops).
set -uo pipefail
DIR="$(cd "${1:-build/gpu-ops}" && pwd)"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-/tmp/ait-ops}"
: "${CUTLASS_DIR:?set CUTLASS_DIR to the CUTLASS headers (include/ and tools/util/include)}"
mkdir -p "$OUT/logs"
export AIT_NVCC_CACHE="${AIT_NVCC_CACHE:-/tmp/ait-nvcc-cache}"
BUILDS=$(cd "$DIR" && ls -d */ | tr -d /)
{
  echo ".PHONY: all" $BUILDS
  echo "all:" $BUILDS
  for name in $BUILDS; do
    printf '%s:\n\t+@$(MAKE) -C %s CUTLASS_DIR=%s NVCC=%s > %s 2>&1 || echo "build of %s failed (see %s)"\n' \
      "$name" "$DIR/$name" "$CUTLASS_DIR" "$ROOT/scripts/gpu/nvcc-cache.sh" "$OUT/logs/build_$name.log" "$name" "$OUT/logs/build_$name.log"
  done
} > "$OUT/builds.mk"
make -f "$OUT/builds.mk" -j"${JOBS:-$(nproc)}"
python3 "$ROOT/scripts/gpu/check_op_models.py" --dir "$DIR" --out "$OUT"
