#!/usr/bin/env bash
# GPU-host check of the native binding (run from the repository root, after `npm run build` on the developer machine):
#   native/gpu-check.sh NODE_DIR BUILD_DIR [BATCH_SIZES]
# NODE_DIR: an unpacked official Node build (NODE_DIR/bin/node and NODE_DIR/include/node; ../shared/gpu-host/README.md
# says where one comes from). BUILD_DIR: a built model directory (lib<name>.so, optionally weights.safetensors).
# 1. builds the binding with that Node's headers by a direct compiler call (no npm/node-gyp there) into $WORK;
# 2. benchmarks BUILD_DIR through it (CUDA events, eager and CUDA graph, per-op profiles): a table, and bench.json;
# 3. runs the same through the agent's bench entry (agent.js --native-bench), as the agent's bench jobs do.
# Logs and results go to ${OUT:-/tmp/ait-native-check}.
set -euo pipefail
NODE_DIR=${1:?usage: native/gpu-check.sh NODE_DIR BUILD_DIR [BATCH_SIZES]}
BUILD_DIR=$(cd "${2:?usage: native/gpu-check.sh NODE_DIR BUILD_DIR [BATCH_SIZES]}" && pwd)
BATCH_SIZES=${3:-1,8,64}
OUT=${OUT:-/tmp/ait-native-check}
WORK=${WORK:-/tmp/ait-native-work}
NODE="$NODE_DIR/bin/node"
mkdir -p "$OUT" "$WORK/native"
[ -x "$NODE" ] || { echo "no node at $NODE" >&2; exit 2; }
[ -f dist/ait-native.js ] && [ -f dist/agent.js ] || { echo "dist/ait-native.js or dist/agent.js missing: run npm run build first" >&2; exit 2; }
echo "node $("$NODE" --version) (ABI $("$NODE" -p process.versions.modules)), headers $NODE_DIR/include/node"

SECONDS=0
BINDING=$(AIT_NODE_INCLUDE_DIR="$NODE_DIR/include/node" "$NODE" dist/ait-native.js build "$WORK/native" --direct 2> "$OUT/build.txt") \
  || { cat "$OUT/build.txt"; exit 1; }
echo "binding: $BINDING ($(cat "$OUT/build.txt"); ${SECONDS} s)"

"$NODE" dist/ait-native.js bench "$BINDING" "$BUILD_DIR" --batch-sizes "$BATCH_SIZES" --iterations "${ITERATIONS:-100}" \
  --warmup "${WARMUP:-10}" --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"

# The agent's path: it finds the binding it would have built in WORK/native (same ABI and source hash) and runs bench.
OPTIONS=$(printf '{"buildDir":"%s","batchSizes":[%s],"iterations":20,"warmupIterations":5,"profileIterations":5}' "$BUILD_DIR" "$BATCH_SIZES")
"$NODE" dist/agent.js --work-dir "$WORK" --native-bench "$OPTIONS" > "$OUT/agent-bench.json" 2> "$OUT/agent-bench.err" \
  && echo "agent --native-bench: $(wc -c < "$OUT/agent-bench.json") bytes of JSON in $OUT/agent-bench.json" \
  || { echo "agent --native-bench failed:"; cat "$OUT/agent-bench.err"; exit 1; }
