#!/usr/bin/env bash
# GPU host: export every model of scripts/gpu/families.py graph-only (weights stripped: small files to take back),
# several exports at once. Results: OUT/families/NAME.onnx, OUT/families/export.jsonl (one line per model).
#   OUT=/tmp/x JOBS=6 bash scripts/gpu/export-families.sh [NAME,...]
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-/tmp/ait-families-out}"; JOBS="${JOBS:-6}"
mkdir -p "$OUT/families"
NAMES="${1:-$(python3 "$ROOT/scripts/gpu/families.py" list | paste -sd,)}"
IFS=, read -ra ALL <<< "$NAMES"
# round-robin the names over JOBS processes; each process exports its share one by one
for ((j = 0; j < JOBS; j++)); do
  share=()
  for ((i = j; i < ${#ALL[@]}; i += JOBS)); do share+=("${ALL[$i]}"); done
  [ ${#share[@]} -eq 0 ] && continue
  (IFS=,; OMP_NUM_THREADS=2 python3 "$ROOT/scripts/gpu/families.py" export "$OUT/families" "${share[*]}" \
    > "$OUT/families/export_$j.jsonl" 2> "$OUT/families/export_$j.log") &
done
wait
cat "$OUT"/families/export_*.jsonl > "$OUT/families/export.jsonl"
python3 - "$OUT/families/export.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue  # exporters print progress lines to stdout too
    r = json.loads(line)
    print(f"{r['name']:28} {r.get('exporter', 'FAILED'):12} {r.get('nodes', '')!s:>6} {r.get('failed', '')[:90]}")
PY
