#!/usr/bin/env bash
# GPU host: measured kernel choice (ait compile --profile local, the agent and the profile cache on the host) against the
# heuristic build and PyTorch (eager, torch.compile) in one run. Node and the CLI travel in RUN (prepared on the
# developer machine: RUN/node.xz, RUN/dist/{cli.js,agent.js,sql-wasm.wasm}, RUN/models/NAME.onnx, RUN/cutlass.tgz).
#   PHASE=profile bash scripts/gpu/profile-check.sh RUN NAME[:HW]...   # profile + final and heuristic builds
#   PHASE=bench   bash scripts/gpu/profile-check.sh RUN NAME[:HW]...   # ait_bench both builds, then PyTorch
# Results under $OUT (default /tmp/ait-pc): NAME_{profiled,heuristic}.bench.json, torch.json, logs/.
set -uo pipefail
RUN="$(cd "$1" && pwd)"; shift
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-/tmp/ait-pc}"; W=/tmp/ait-pc-work
BATCHES="${BATCHES:-1,8,64,256}"
mkdir -p "$OUT/logs" "$W" /tmp/ait-node/bin
[ -x /tmp/ait-node/bin/node ] || { xz -dc "$RUN/node.xz" > /tmp/ait-node/bin/node && chmod +x /tmp/ait-node/bin/node; }
# NVCC is inherited by the agent's make of the profiler: its objects and the final builds' share one cache
export PATH=/tmp/ait-node/bin:$PATH CUTLASS_DIR=/tmp/ait-cutlass AIT_PROFILE_CACHE="$OUT/profiles.sqlite" AIT_NVCC_CACHE=/tmp/ait-nvcc-cache NVCC="$ROOT/scripts/gpu/nvcc-cache.sh"
[ -f "$CUTLASS_DIR/include/cutlass/cutlass.h" ] || { mkdir -p "$CUTLASS_DIR" && tar -C "$CUTLASS_DIR" -xzf "$RUN/cutlass.tgz"; }
START=$(date +%s)
if [ "${PHASE:-profile}" = profile ]; then
  for spec in "$@"; do
    m="${spec%%:*}"
    t0=$(date +%s)
    node "$RUN/dist/cli.js" compile "$RUN/models/$m.onnx" -o "$W/${m}_profiled" --force --profile local --work-dir /tmp/ait-agent > "$OUT/logs/profile_$m.log" 2>&1
    echo "$m: profiled compile rc $? in $(($(date +%s) - t0)) s: $(grep -E 'profiled on|nothing to profile|kernel choice' "$OUT/logs/profile_$m.log" | tr '\n' ' ')"
    node "$RUN/dist/cli.js" compile "$RUN/models/$m.onnx" -o "$W/${m}_heuristic" --force > "$OUT/logs/heuristic_$m.log" 2>&1 || tail -5 "$OUT/logs/heuristic_$m.log"
  done
  t0=$(date +%s)
  for d in "$W"/*_profiled "$W"/*_heuristic; do
    make -C "$d" -j"$(nproc)" NVCC="$ROOT/scripts/gpu/nvcc-cache.sh" > "$OUT/logs/build_$(basename "$d").log" 2>&1 || { echo "build of $d failed:"; tail -15 "$OUT/logs/build_$(basename "$d").log"; }
  done
  echo "final builds: $(($(date +%s) - t0)) s; phase total $(($(date +%s) - START)) s"
  exit 0
fi
for d in "$W"/*_profiled "$W"/*_heuristic; do
  "$d/ait_bench" --batch-sizes "$BATCHES" --iterations 50 --warmup 5 --graph on 2>/dev/null | grep '^{' | tail -1 > "$OUT/$(basename "$d").bench.json"
done
python3 "$ROOT/scripts/gpu/torch_baseline.py" "$OUT/torch.json" "$(IFS=,; echo "$*")" "$BATCHES" "${TORCH_MODES:-reduce-overhead}" > "$OUT/logs/torch.log" 2>&1 || tail -5 "$OUT/logs/torch.log"
python3 - "$OUT" "$@" <<'PY'
import json, sys
out, specs = sys.argv[1], sys.argv[2:]
torch = json.load(open(f"{out}/torch.json"))
print(f"GPU {torch['gpu']}, torch {torch['torch']}")
print(f"{'model':24} {'batch':>5} {'profiled':>9} {'heuristic':>9} {'eager':>8} {'compile':>8}  profiled vs compile")
for spec in specs:
    m = spec.split(":")[0]
    res = {k: {r["batchSize"]: r["p50Ms"] for r in json.load(open(f"{out}/{m}_{k}.bench.json"))["results"]} for k in ("profiled", "heuristic")}
    for b, t in sorted(res["profiled"].items()):
        tm = torch["models"].get(m, {}).get(str(b), {})
        comp = next((v for k, v in tm.items() if k.startswith("compile:") and not k.endswith(":s")), None)
        print(f"{m:24} {b:>5} {t:>9.3f} {res['heuristic'].get(b, float('nan')):>9.3f} {tm.get('eagerMs', float('nan')):>8.3f} {comp or float('nan'):>8.3f}  {comp / t if comp else float('nan'):.2f}x")
PY
