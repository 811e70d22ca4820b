#!/usr/bin/env bash
# GPU host: one lease in few calls (the machine is released ~30 s after a call; every failed start costs minutes of the
# device budget). Prepared on the developer machine, carried on the FIRST call only (carrying a folder again on a warm
# machine replaces it and loses what was built there):
#   build/gpu-run/   kernel_check, input_dims_check, grouped_conv_check and attention_check (nvcc builds of compiler/backends/cuda/tests/*.cu, commands in
#                    their headers), node.xz + node-include.tgz (../shared/gpu-host/README.md: bin/node and
#                    include/node/{node_api,node_api_types,js_native_api,js_native_api_types,node_version}.h),
#                    dist/{cli.js,agent.js,compile-worker.js,ait-native.js,sql-wasm.wasm}
#   build/gpu-check/ the zoo models compiled here (scripts/gpu/prepare-check.sh) and cutlass.tgz
#   shared/          shared/tools from ../shared/tools (export_models.py)
# Steps (STEP=...):
#   1  kernel_check + input_dims_check while every build runs: the zoo's, FAMS compiled there from their exports
#      (check-models.sh HOST_COMPILE), Mask R-CNN and RetinaNet (as verify-check.sh builds them), and the FAM4 families
#      exported graph-only at low priority ($OUT/fam4.tgz: compile them here to find what the compiler lacks)
#   2  the check of the zoo and FAMS (verify against onnxruntime and PyTorch, time against eager and torch.compile)
#   3  the detection verify (verify-check.sh) of Mask R-CNN and RetinaNet
#   B  a second lease: the builds of step 1 (no kernel checks, no FAM4 exports) and the check of step 2 in one call
#   C  the kernel checks while FAMS build (nothing else in build/gpu-check), then FAMS' check
#   A  a short lease: the kernel checks and the zoo's builds, then its check, in one call
#   D  step 1 without the FAM4 exports: the kernel checks, the detectors (unless DET=0), the zoo's and FAMS' builds;
#      then STEP=2 and STEP=3 on the same warm machine
# Results: $OUT/r$STEP.tgz (logs, check-models.json, profiles) and a summary on stdout.
set -uo pipefail
ROOT=$(pwd); RUN=$ROOT/build/gpu-run; R=/tmp/lease; mkdir -p $R /tmp/ait-node/bin
[ -x /tmp/ait-node/bin/node ] || { xz -dc $RUN/node.xz > /tmp/ait-node/bin/node && chmod +x /tmp/ait-node/bin/node; }
[ -f /tmp/ait-node/include/node/node_api.h ] || tar -C /tmp/ait-node -xzf $RUN/node-include.tgz
FAMS="${FAMS:-dla34 resnext50_32x4d levit_128s efficientvit_b0 hrnet_w18_small}"
fams_sm90() { for f in $FAMS; do printf '%s_sm90,' "$f"; done; }
# the zoo: the folders prepared here (not the families step 1 compiles there)
ZOO="${ZOO:-$(ls build/gpu-check | grep -v cutlass.tgz | grep -vxF -f <(fams_sm90 | tr , '\n') | paste -sd' ')}"
export NODE_RUN=$RUN
[ -f /tmp/ait-cutlass/include/cutlass/cutlass.h ] || { mkdir -p /tmp/ait-cutlass && tar -C /tmp/ait-cutlass -xzf build/gpu-check/cutlass.tgz; }
kernel_checks() {  # in the background; their correctness is the point, not their times (the CPUs are building)
  (cd $R && : > $R/kc.sum
   # the checks split from kernel_check (tests/grouped_conv_check.cu, tests/attention_check.cu), with their times; first,
   # as the kernels most recently changed
   for check in grouped_conv_check attention_check; do
     [ -x $RUN/$check ] || continue
     timeout 150 $RUN/$check > $R/$check.txt 2>&1; echo "$check rc $?" >> $R/kc.sum; cat $R/$check.txt >> $R/kc.sum
   done
   timeout "${KC_TIMEOUT:-200}" $RUN/kernel_check > $R/kernel_check.txt 2>&1; echo "kernel_check rc $?" >> $R/kc.sum
   grep -ciE "fail" $R/kernel_check.txt >> $R/kc.sum; grep -iE "fail|error" $R/kernel_check.txt | head -30 >> $R/kc.sum
   tail -n 3 $R/kernel_check.txt >> $R/kc.sum
   timeout 60 $RUN/input_dims_check > $R/input_dims.txt 2>&1; echo "input_dims_check rc $?" >> $R/kc.sum; tail -n 3 $R/input_dims.txt >> $R/kc.sum) &
  KC=$!
}
det_compile() {  # in the background: Mask R-CNN and RetinaNet exported with weights and compiled as verify-check.sh does
  mkdir -p /tmp/ait-vc-exports /tmp/ait-vc-work
  (for m in maskrcnn_resnet50_fpn retinanet_resnet50_fpn; do
     [ -f /tmp/ait-vc-exports/$m/model.onnx ] || OMP_NUM_THREADS=2 KEEP_WEIGHTS=1 python3 shared/tools/export_models.py /tmp/ait-vc-exports $m > $R/det_export_$m.log 2>&1
     [ -f /tmp/ait-vc-work/$m/Makefile ] || /tmp/ait-node/bin/node $RUN/dist/cli.js compile /tmp/ait-vc-exports/$m/model.onnx -o /tmp/ait-vc-work/$m --force --max-batch 1 > $R/det_compile_$m.log 2>&1
     echo "det $m compiled rc $?"
   done) &
  DET=$!
}
det_build() {  # after det_compile (verify-check.sh then finds them built)
  wait $DET
  for m in maskrcnn_resnet50_fpn retinanet_resnet50_fpn; do
    [ -f /tmp/ait-vc-work/$m/Makefile ] && timeout "${DET_BUILD_TIMEOUT:-60}" make -C /tmp/ait-vc-work/$m -j16 CUTLASS_DIR=/tmp/ait-cutlass NVCC=$ROOT/scripts/gpu/nvcc-cache.sh > $R/det_build_$m.log 2>&1
    echo "det $m build rc $?"
  done
}
zoo_check() {  # $1: builds to check (comma-separated, in this order)
  OUT=$R/zoo PHASE=check CHECK_BUILDS="$1" AIT_TORCH_COMPILE=${TC:-reduce-overhead} AIT_COMPILE_BATCHES=${CB:-1} \
    timeout "${CHECK_TIMEOUT:-560}" bash scripts/gpu/check-models.sh build/gpu-check 2>&1 | grep -v '^ROW' | tail -n "${TAILN:-70}"
}
case "${STEP:-1}" in
1)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  kernel_checks
  det_compile
  FAM4=$(python3 scripts/gpu/families.py list | sed -n '/^nfnet_l0$/,/^siglip_vision$/p' | paste -sd,)
  (OUT=$R/fam4 JOBS=5 nice -n 19 bash scripts/gpu/export-families.sh "$FAM4" > $R/fam4.log 2>&1) &
  OUT=$R/check PHASE=build HOST_COMPILE="$FAMS" timeout "${BUILD_TIMEOUT:-420}" bash scripts/gpu/check-models.sh build/gpu-check 2>&1 | tail -n 40
  wait $KC; cat $R/kc.sum
  det_build
  ;;
2) zoo_check "$(echo $ZOO | tr ' ' ,),$(fams_sm90)" ;;
3) OUT=$R/vc VERIFY_TIMEOUT=120 timeout "${VC_TIMEOUT:-300}" bash scripts/gpu/verify-check.sh $RUN maskrcnn_resnet50_fpn retinanet_resnet50_fpn 2>&1 | tail -n 12 ;;
B)  # a second lease: the builds (zoo, FAMS compiled there, the detectors unless DET=0) and the zoo's and FAMS' check
  [ "${DET:-1}" = 1 ] && det_compile
  OUT=$R/check PHASE=build HOST_COMPILE="$FAMS" timeout "${BUILD_TIMEOUT:-270}" bash scripts/gpu/check-models.sh build/gpu-check 2>&1 | tail -n 20
  [ "${DET:-1}" = 1 ] && det_build
  zoo_check "$(echo $ZOO | tr ' ' ,),$(fams_sm90)"
  ;;
C)  # a short lease for new kernels: the kernel checks while FAMS are exported, compiled and built there, then their check
  kernel_checks
  OUT=$R/check PHASE=build HOST_COMPILE="$FAMS" timeout "${BUILD_TIMEOUT:-170}" bash scripts/gpu/check-models.sh build/gpu-check 2>&1 | tail -n 12
  wait $KC; cat $R/kc.sum
  zoo_check "$(fams_sm90)"
  ;;
D)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  kernel_checks
  [ "${DET:-1}" = 1 ] && det_compile
  OUT=$R/check PHASE=build HOST_COMPILE="$FAMS" timeout "${BUILD_TIMEOUT:-360}" bash scripts/gpu/check-models.sh build/gpu-check 2>&1 | tail -n 30
  wait $KC; cat $R/kc.sum
  [ "${DET:-1}" = 1 ] && det_build
  ;;
A)
  kernel_checks
  OUT=$R/check PHASE=build timeout "${BUILD_TIMEOUT:-220}" bash scripts/gpu/check-models.sh build/gpu-check 2>&1 | tail -n 20
  wait $KC; cat $R/kc.sum
  zoo_check "$(echo $ZOO | tr ' ' ,)"
  ;;
esac
[ -d $R/fam4/families ] && tar czf "$OUT/fam4.tgz" -C $R/fam4 families
tar czf "$OUT/r$STEP.tgz" -C $R --exclude='*.onnx' --exclude='*.data' . 2>/dev/null; ls -la "$OUT"
