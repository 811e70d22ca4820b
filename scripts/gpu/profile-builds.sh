#!/usr/bin/env bash
# GPU host: builds and runs the kernel profilers of compile directories written with `ait compile --profile-sources`
# (DIR/profile/), all builds under one make jobserver through nvcc-cache.sh, then each ait_profiler in turn.
#   bash scripts/gpu/profile-builds.sh CUTLASS_TGZ DIR...      # results: $OUT/<dir name>.measurements.json
# Prints per model: instances built, build seconds, profiling seconds, signatures and measurements.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-/tmp/ait-profile}"
CUTLASS=/tmp/ait-cutlass
mkdir -p "$OUT/logs" "$CUTLASS" && tar -C "$CUTLASS" -xzf "$1" && shift
export AIT_NVCC_CACHE="${AIT_NVCC_CACHE:-/tmp/ait-nvcc-cache}"
START=$(date +%s)
{
  echo ".PHONY: all $*"
  echo "all: $*"
  for d in "$@"; do
    printf '%s:\n\t+@$(MAKE) -C %s/profile CUTLASS_DIR=%s NVCC=%s > %s 2>&1; echo "built %s (rc $$?) at $$(($$(date +%%s) - %s)) s"\n' \
      "$d" "$d" "$CUTLASS" "$ROOT/scripts/gpu/nvcc-cache.sh" "$OUT/logs/build_$(basename "$d").log" "$d" "$START"
  done
} > "$OUT/profile-builds.mk"
make -f "$OUT/profile-builds.mk" -j"$(nproc)"
BUILT=$(date +%s)
for d in "$@"; do
  name=$(basename "$d")
  if [ ! -x "$d/profile/ait_profiler" ]; then echo "$name: no profiler; last build lines:"; tail -15 "$OUT/logs/build_$name.log"; continue; fi
  t0=$(date +%s)
  "$d/profile/ait_profiler" > "$OUT/$name.measurements.json" 2> "$OUT/logs/profile_$name.log"
  echo "$name: profiled in $(($(date +%s) - t0)) s (rc $?): $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); ms=r['measurements']; print(len({m['signature'] for m in ms}), 'signatures,', len(ms), 'measurements,', sum(m['status']=='ok' for m in ms), 'ok;', r['device'])" "$OUT/$name.measurements.json")"
done
echo "builds: $((BUILT - START)) s; total $(($(date +%s) - START)) s"
