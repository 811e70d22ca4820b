#!/usr/bin/env bash
# GPU host half of the model check: builds the compiled models, exports the same models WITH weights, binds them by
# ONNX initializer name through ait_model.py, checks logits against PyTorch fp32 and onnxruntime CPU at batch 1
# and 8 (relative L2 <= 2e-2), and times ait (CUDA graphs) against PyTorch eager (channels-last fp16) at batch 1, 8,
# 64 and 256 (those up to each build's max batch).
# All builds run under one make jobserver (JOBS slots in all, default: every core), largest first, through
# nvcc-cache.sh: a source generated identically by several builds (runtime, shared CUTLASS instances) compiles once.
#
# Prepare on the developer machine (needs node + the shared models):
#   bash scripts/gpu/prepare-check.sh   # -> build/gpu-check/{resnet50_sm90,resnet50_sm80,vit_base_patch16_224_sm90,
#                                       #    vit_large_patch16_384_sm90,*_legacy_sm90,cutlass.tgz}
#   mkdir -p shared && cp -r /work/shared/tools shared/ # export_models.py travels with the tree
# Run on the GPU host in one command (repo root; carry build/gpu-check and shared):
#   bash scripts/gpu/check-models.sh build/gpu-check
# Results: a table on stdout, $OUT/check-models.json and build logs under $OUT/logs (OUT defaults to /tmp/ait-check).
# CHECK_BUILDS=NAME_ARCH,... checks only those build folders.
# PHASE=build stops after the builds and exports, PHASE=check runs only the check (builds and exports already there):
# two commands on one warm machine when the whole does not fit one command's time limit.
# HOST_COMPILE="NAME[:ARCH] ..." (with NODE_RUN=DIR holding node.xz and dist/cli.js): models compiled there, as a new
# user would, from their graph-only export (`ait compile NAME.onnx --target cuda:ARCH $HOST_COMPILE_OPTIONS`, default
# --max-batch 8) into the check folder, each export -> compile -> build chain one job of the jobserver; nothing of them
# needs to be compiled on the developer machine first.
set -uo pipefail
CHECK="$(cd "${1:-build/gpu-check}" && pwd)"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-/tmp/ait-check}"
mkdir -p "$OUT/logs"
JOBS="${JOBS:-$(nproc)}"  # compile jobs of all builds together
START=$(date +%s)
log() { echo "[$(($(date +%s) - START))s] $*"; }

PHASE="${PHASE:-all}"
EXPORTS=/tmp/ait-exports
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
if [ "$PHASE" != check ]; then
CUTLASS=/tmp/ait-cutlass
mkdir -p "$CUTLASS" && tar -C "$CUTLASS" -xzf "$CHECK/cutlass.tgz"

# exports (CPU) run while the libraries build; one process per model so each starts from torch.manual_seed(0)
mkdir -p "$EXPORTS"
MODEL_NAMES=$(ls "$CHECK" | grep -v cutlass.tgz | sed -E 's/_sm[0-9]+$//' | sort -u)
HOSTED=()  # NAME_ARCH of the models compiled here
for spec in ${HOST_COMPILE:-}; do
  m="${spec%%:*}"; arch=sm90; [ "$spec" != "$m" ] && arch="${spec#*:}"
  HOSTED+=("${m}_$arch"); MODEL_NAMES=$(grep -vx "$m" <<< "$MODEL_NAMES")
done
if [ ${#HOSTED[@]} -gt 0 ]; then
  mkdir -p /tmp/ait-node/bin
  [ -x /tmp/ait-node/bin/node ] || { xz -dc "$NODE_RUN/node.xz" > /tmp/ait-node/bin/node && chmod +x /tmp/ait-node/bin/node; }
fi
# the names families.py knows, listed once: `families.py list | grep -q` under pipefail failed whenever grep's early
# exit broke the pipe, and those families were then sent to export_models.py (KeyError)
FAMILY_NAMES=$(python3 "$ROOT/scripts/gpu/families.py" list)
for m in $MODEL_NAMES; do
  # the breadth families (scripts/gpu/families.py) export from their own table, into EXPORTS/NAME/model.onnx the same way
  if grep -qx "$m" <<< "$FAMILY_NAMES"; then exporter=("$ROOT/scripts/gpu/families.py" export); else exporter=("$ROOT/shared/tools/export_models.py"); fi
  [ -f "$EXPORTS/$m/model.onnx" ] && continue  # exported by an earlier PHASE=build on this machine
  ( KEEP_WEIGHTS=1 python3 "${exporter[@]}" "$EXPORTS" "$m" > "$OUT/logs/export_$m.log" 2>&1; log "exported $m (rc $?)" ) &
done
# export -> compile -> build of one model compiled here (a job of the jobserver below)
cat > "$OUT/host-compile.sh" <<EOS
#!/usr/bin/env bash
set -o pipefail
m="\${1%_sm*}"; arch="\${1##*_}"
if grep -qx "\$m" <<< "$FAMILY_NAMES"; then exporter=("$ROOT/scripts/gpu/families.py" export); else exporter=("$ROOT/shared/tools/export_models.py"); fi
# an earlier PHASE=build on this machine may have exported and compiled it already: make goes on from there
[ -f "$EXPORTS/\$m/model.onnx" ] || OMP_NUM_THREADS=2 KEEP_WEIGHTS=1 python3 "\${exporter[@]}" "$EXPORTS" "\$m" > "$OUT/logs/export_\$m.log" 2>&1
onnx="$EXPORTS/\$m.onnx"; [ -f "\$onnx" ] || onnx="$EXPORTS/\$m/model.onnx"
[ -f "$CHECK/\$1/Makefile" ] || /tmp/ait-node/bin/node "$NODE_RUN/dist/cli.js" compile "\$onnx" --target "cuda:\$arch" --out "$CHECK/\$1" --force ${HOST_COMPILE_OPTIONS:---max-batch 8} > "$OUT/logs/compile_\$1.log" 2>&1 || exit 1
rm -rf "$CHECK/\$1/dumps"
exec make -C "$CHECK/\$1" CUTLASS_DIR=$CUTLASS NVCC="$ROOT/scripts/gpu/nvcc-cache.sh"
EOS
chmod +x "$OUT/host-compile.sh"
# one jobserver for all builds; the builds with the most CUTLASS sources start first
export AIT_NVCC_CACHE=/tmp/ait-nvcc-cache
BUILDS=$(for d in "$CHECK"/*/; do [[ " ${HOSTED[*]} " == *" $(basename "$d") "* ]] && continue; echo "$(ls "$d"src | grep -cE '^(gemm|conv)_[0-9]+\.cu$') $(basename "$d")"; done | sort -rn | cut -d' ' -f2)
{
  echo ".PHONY: all" "${HOSTED[@]}" $BUILDS
  echo "all:" "${HOSTED[@]}" $BUILDS
  for name in "${HOSTED[@]}"; do
    printf '%s:\n\t+@%s %s > %s 2>&1; rc=$$?; echo "[$$(($$(date +%%s) - %s))s] exported, compiled and built %s (rc $$rc)"; exit 0\n' \
      "$name" "$OUT/host-compile.sh" "$name" "$OUT/logs/build_$name.log" "$START" "$name"
  done
  for name in $BUILDS; do
    printf '%s:\n\t+@$(MAKE) -C %s CUTLASS_DIR=%s NVCC=%s > %s 2>&1; rc=$$?; echo "[$$(($$(date +%%s) - %s))s] built %s (rc $$rc)"; exit 0\n' \
      "$name" "$CHECK/$name" "$CUTLASS" "$ROOT/scripts/gpu/nvcc-cache.sh" "$OUT/logs/build_$name.log" "$START" "$name"
  done
} > "$OUT/builds.mk"
make -f "$OUT/builds.mk" -j"$JOBS" &
wait
log "builds and exports done"
for d in "$CHECK"/*/; do
  name=$(basename "$d")
  if [ ! -f "$d/ait_bench" ]; then echo "build of $name failed; last lines:"; tail -20 "$OUT/logs/build_$name.log"; fi
done
fi
[ "$PHASE" = build ] && exit 0
python3 "$ROOT/scripts/gpu/check_models.py" --check-dir "$CHECK" --exports "$EXPORTS" --out "$OUT" ${CHECK_BUILDS:+--builds "$CHECK_BUILDS"} 2>&1 | tee "$OUT/logs/check.log"
rc=${PIPESTATUS[0]}
log "done (rc $rc)"
exit $rc
