#!/usr/bin/env bash
# GPU host half of the model check: builds the compiled models, exports the same models WITH weights, binds them by
# ONNX initializer name through ait_model.py, checks logits against PyTorch fp32 and onnxruntime CPU at batch 1
# and 8 (relative L2 <= 2e-2), and times ait (CUDA graphs) against PyTorch eager (channels-last fp16).
#
# Prepare on the developer machine (needs node + the shared models):
#   bash scripts/gpu/prepare-check.sh                 # -> build/gpu-check/{resnet50_sm90,resnet50_sm80,vit_base_patch16_224_sm90,cutlass.tgz}
#   mkdir -p shared && cp -r /work/shared/tools shared/ # export_models.py travels with the tree
# Run on the GPU host in one command (repo root; carry build/gpu-check and shared):
#   bash scripts/gpu/check-models.sh build/gpu-check
# Results: a table on stdout, $OUT/check-models.json and build logs under $OUT/logs (OUT defaults to /tmp/ait-check).
set -uo pipefail
CHECK="$(cd "${1:-build/gpu-check}" && pwd)"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-/tmp/ait-check}"
mkdir -p "$OUT/logs"
JOBS="${JOBS:-4}"  # per build; all builds run at once (5 builds x 4 on 16 cores)
START=$(date +%s)
log() { echo "[$(($(date +%s) - START))s] $*"; }

CUTLASS=/tmp/ait-cutlass
mkdir -p "$CUTLASS" && tar -C "$CUTLASS" -xzf "$CHECK/cutlass.tgz"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

# exports (CPU) run while the libraries build; one process per model so each starts from torch.manual_seed(0)
EXPORTS=/tmp/ait-exports
mkdir -p "$EXPORTS"
MODEL_NAMES=$(ls "$CHECK" | grep -v cutlass.tgz | sed -E 's/_sm[0-9]+$//' | sort -u)
for m in $MODEL_NAMES; do
  ( KEEP_WEIGHTS=1 python3 "$ROOT/shared/tools/export_models.py" "$EXPORTS" "$m" > "$OUT/logs/export_$m.log" 2>&1; log "exported $m (rc $?)" ) &
done
BUILD_PIDS=()
for d in "$CHECK"/*/; do
  name=$(basename "$d")
  ( make -C "$d" -j"$JOBS" CUTLASS_DIR="$CUTLASS" > "$OUT/logs/build_$name.log" 2>&1; rc=$?; log "built $name (rc $rc)"; exit $rc ) &
  BUILD_PIDS+=($!)
done
wait
log "builds and exports done"
for d in "$CHECK"/*/; do
  name=$(basename "$d")
  if [ ! -f "$d/ait_bench" ]; then echo "build of $name failed; last lines:"; tail -20 "$OUT/logs/build_$name.log"; fi
done
python3 "$ROOT/scripts/gpu/check_models.py" --check-dir "$CHECK" --exports "$EXPORTS" --out "$OUT" 2>&1 | tee "$OUT/logs/check.log"
rc=${PIPESTATUS[0]}
log "done (rc $rc)"
exit $rc
