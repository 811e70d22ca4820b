#!/usr/bin/env bash
# nvcc with an object cache shared by the builds of one GPU check: `make NVCC=scripts/gpu/nvcc-cache.sh`. A compile
# (`-c SRC -o OBJ`) is keyed on its flags and the source text, so a file that several builds generate identically
# (a CUTLASS instance both exporters' graphs use, the runtime) is compiled once; a build that needs a key another is
# compiling waits on the key's lock and then copies the object. Anything else (linking) goes straight to nvcc.
# Cache directory: $AIT_NVCC_CACHE (default /tmp/ait-nvcc-cache). Headers are not hashed: the generated headers a
# source includes only declare what the source text already names, and the rest (runtime, kernels, CUTLASS) is
# the same for every build of one check.
set -euo pipefail
NVCC_BIN="${AIT_REAL_NVCC:-nvcc}"
src="" obj="" compile=0 key_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -c) compile=1; src="${args[i + 1]}"; key_args+=(-c); i=$((i + 1)) ;;
    -o) obj="${args[i + 1]}"; i=$((i + 1)) ;;
    *) key_args+=("${args[i]}") ;;
  esac
done
if [ "$compile" = 0 ] || [ -z "$obj" ] || [ ! -f "$src" ] || ! command -v flock >/dev/null; then exec "$NVCC_BIN" "$@"; fi
CACHE="${AIT_NVCC_CACHE:-/tmp/ait-nvcc-cache}"
mkdir -p "$CACHE"
key=$( (printf '%s\n' "${key_args[@]}"; cat "$src") | sha256sum | cut -c1-24)
exec 9>"$CACHE/$key.lock"
flock 9
if [ ! -f "$CACHE/$key.o" ]; then
  "$NVCC_BIN" "$@"
  cp "$obj" "$CACHE/$key.o.tmp" && mv "$CACHE/$key.o.tmp" "$CACHE/$key.o"
else
  cp "$CACHE/$key.o" "$obj"
  echo "nvcc-cache: $src from cache ($key)"
fi
