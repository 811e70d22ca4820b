#!/usr/bin/env bash
# GPU host: models exported WITH weights there, compiled there by the CLI, built under one make jobserver, then
# verified whole and per node against onnxruntime (`ait remote verify local DIR --model M --per-node`) and timed with
# ait_bench. Detection outputs are judged as detections by the same verify. RUN is prepared as for profile-check.sh
# (RUN/node.xz, RUN/dist/{cli.js,agent.js,sql-wasm.wasm}, RUN/cutlass.tgz); shared/tools travels in the tree.
#   bash scripts/gpu/verify-check.sh RUN NAME[:COMPILE_OPTION,...] ...   e.g. resnet50 inception_v3 vitmatte
#   (names of shared/tools/export_models.py; options are passed to `ait compile`, commas for spaces; default --max-batch 1)
# Results under $OUT (default /tmp/ait-vc): NAME.verify.json (the verify report), NAME.verify-per-node.json, NAME.bench.json,
# NAME.profile.json (per-op times at batch 1), torch.json (PyTorch eager, TORCH=0 leaves it out), logs/; a table last.
# VERIFY_ARGS: more options of `ait remote verify` (e.g. --torch-model scripts/gpu/module_times.py:vitmatte).
set -uo pipefail
RUN="$(cd "$1" && pwd)"; shift
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-/tmp/ait-vc}"; W=/tmp/ait-vc-work; EXP=/tmp/ait-vc-exports
mkdir -p "$OUT/logs" "$W" "$EXP" /tmp/ait-node/bin
[ -x /tmp/ait-node/bin/node ] || { xz -dc "$RUN/node.xz" > /tmp/ait-node/bin/node && chmod +x /tmp/ait-node/bin/node; }
# the agent's make inherits NVCC: the verify builds hit the objects the jobserver builds compiled
export PATH=/tmp/ait-node/bin:$PATH CUTLASS_DIR=/tmp/ait-cutlass AIT_NVCC_CACHE=/tmp/ait-nvcc-cache NVCC="$ROOT/scripts/gpu/nvcc-cache.sh"
[ -f "$CUTLASS_DIR/include/cutlass/cutlass.h" ] || { mkdir -p "$CUTLASS_DIR" && tar -C "$CUTLASS_DIR" -xzf "$RUN/cutlass.tgz"; }
START=$(date +%s)
log() { echo "[$(($(date +%s) - START))s] $*"; }
names=()
for spec in "$@"; do
  m="${spec%%:*}"; names+=("$m")
  opts="--max-batch,1"; [ "$spec" != "$m" ] && opts="${spec#*:}"
  (
    if [ ! -f "$EXP/$m/model.onnx" ]; then
      KEEP_WEIGHTS=1 python3 "$ROOT/shared/tools/export_models.py" "$EXP" "$m" > "$OUT/logs/export_$m.log" 2>&1
    fi
    # shellcheck disable=SC2086
    node "$RUN/dist/cli.js" compile "$EXP/$m/model.onnx" -o "$W/$m" --force ${opts//,/ } > "$OUT/logs/compile_$m.log" 2>&1
    log "$m: exported and compiled (rc $?)"
  ) &
done
wait
# one jobserver for all builds
{
  echo ".PHONY: all ${names[*]}"
  echo "all: ${names[*]}"
  for m in "${names[@]}"; do
    printf '%s:\n\t+@$(MAKE) -C %s NVCC=%s > %s 2>&1; echo "built %s (rc $$?)"; exit 0\n' "$m" "$W/$m" "$NVCC" "$OUT/logs/build_$m.log" "$m"
  done
} > "$OUT/builds.mk"
make -f "$OUT/builds.mk" -j"$(nproc)"
log "builds done"
for m in "${names[@]}"; do
  [ -f "$W/$m/ait_bench" ] || { echo "build of $m failed:"; tail -15 "$OUT/logs/build_$m.log"; continue; }
  # shellcheck disable=SC2086
  timeout "${VERIFY_TIMEOUT:-240}" node "$RUN/dist/cli.js" remote verify local "$W/$m" --model "$EXP/$m/model.onnx" --batch 1 --per-node \
    --work-dir /tmp/ait-vc-agent --json ${VERIFY_ARGS:-} > "$OUT/$m.verify.json" 2> "$OUT/logs/verify_$m.log"
  log "$m: verify rc $?"
  cp "$W/$m"/verify-per-node.json "$OUT/$m.verify-per-node.json" 2>/dev/null
  cp "$W/$m"/graph.json "$OUT/$m.graph.json" 2>/dev/null
  "$W/$m/ait_bench" --batch-sizes 1 --iterations 100 --warmup 10 --graph on 2>/dev/null | grep '^{' | tail -1 > "$OUT/$m.bench.json"
  # per-op times at batch 1 (an ait-profile: `ait graph DIR --profile`, the module table's time column)
  python3 - "$W/$m" "$OUT/$m.profile.json" > "$OUT/logs/profile_$m.log" 2>&1 <<'PY' || tail -3 "$OUT/logs/profile_$m.log"
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from ait_model import AITModel
model = AITModel()
rng = np.random.default_rng(0)
xs = [rng.standard_normal([1 if a == i["batch_axis"] else d for a, d in enumerate(i["max_shape"])]).astype(np.float32) for i in model.inputs]
model.profile(xs, iterations=20, batch=1, path=sys.argv[2])
PY
done
if [ "${TORCH:-1}" = 1 ]; then  # PyTorch eager at batch 1 in the same run
  python3 "$ROOT/scripts/gpu/torch_eager.py" "$OUT/torch.json" "$(IFS=,; echo "${names[*]}")" > "$OUT/logs/torch.log" 2>&1 || tail -5 "$OUT/logs/torch.log"
fi
python3 - "$OUT" "${names[@]}" <<'PY'
import json, sys
out, names = sys.argv[1], sys.argv[2:]
print(f"{'model':26} {'verify':7} {'worst output relL2':>18} {'nodes':>6} {'compared':>8} {'bad':>4} {'worst node relL2':>16} {'first jump':32} {'first fp16 overflow':32} {'ait b1 ms':>9} {'eager fp16':>10} {'eager fp32':>10}")
try: torch = json.load(open(f"{out}/torch.json"))["models"]
except Exception: torch = {}
for m in names:
    try: r = json.load(open(f"{out}/{m}.verify.json"))
    except Exception as e: print(f"{m:26} no report ({e})"); continue
    rep = r.get("report", r)
    worst = max((x.get("relativeL2") or 0 for x in rep.get("results", [])), default=float("nan"))
    pn = rep.get("perNode") or {}
    rows = pn.get("nodes", []); cmp = [x for x in rows if not x.get("skipped")]
    name = lambda f: ((f.get("sourceNodes") or [f.get("name")])[0] + f" ({f.get('op')})") if f else "-"
    try: ms = json.load(open(f"{out}/{m}.bench.json"))["results"][0]["p50Ms"]
    except Exception: ms = float("nan")
    print(f"{m:26} {str(rep.get('ok')):7} {worst:>18.3g} {len(rows):>6} {len(cmp):>8} {sum(1 for x in cmp if x.get('bad')):>4} {max((x.get('relativeL2') or 0 for x in cmp), default=float('nan')):>16.3g} {name(pn.get('firstJump'))[:32]:32} {name(pn.get('firstOverflow'))[:32]:32} {ms:>9.3f} {torch.get(m, {}).get('eagerFP16Ms', float('nan')):>10.3f} {torch.get(m, {}).get('eagerFP32Ms', float('nan')):>10.3f}")
PY
