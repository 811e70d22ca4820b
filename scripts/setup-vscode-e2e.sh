#!/usr/bin/env bash
# Installs what the extension's end-to-end test needs: code-server (VS Code in the browser, with a real Node
# extension host) from npm, its native modules built against the system Node, and Debian's chromium for
# playwright-core. Idempotent: the install is cached under .vscode-test/ (gitignored) and skipped when complete.
#
# No VS Code desktop build can be downloaded on the CI machines (@vscode/test-electron fails), hence code-server.
# 4.100.x is the last code-server line whose engines accept Node 20.
set -euo pipefail
cd "$(dirname "$0")/.."

CODE_SERVER_VERSION=4.100.3
PREFIX="$PWD/.vscode-test/code-server-$CODE_SERVER_VERSION"
MARKER="$PREFIX/.complete"

export DEBIAN_FRONTEND=noninteractive
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
[ -f /usr/include/gssapi/gssapi.h ] || [ -f /usr/include/krb5.h ] || need_apt+=(libkrb5-dev)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++ make)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup-vscode-e2e: apt-get install ${need_apt[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ -f "$MARKER" ]; then
  echo "setup-vscode-e2e: code-server $CODE_SERVER_VERSION already installed in $PREFIX"
  exit 0
fi

start=$(date +%s)
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
echo '{"private": true}' >"$PREFIX/package.json"
# --ignore-scripts: code-server's postinstall would download VS Code's own prebuilt pieces; we build them below.
npm install --prefix "$PREFIX" --ignore-scripts --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION"

VSCODE="$PREFIX/node_modules/code-server/lib/vscode"
NODE_GYP="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_GYP" ] || NODE_GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
NODE_DIR="$(dirname "$(dirname "$(command -v node)")")"

(
  cd "$VSCODE"
  npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
  # @vscode/ripgrep would download its binary; the system's ripgrep stands in.
  mkdir -p node_modules/@vscode/ripgrep/bin
  ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
  for m in node-pty @parcel/watcher @vscode/spdlog kerberos native-watchdog @vscode/deviceid; do
    if [ -d "node_modules/$m" ]; then
      echo "setup-vscode-e2e: building $m"
      (cd "node_modules/$m" && node "$NODE_GYP" rebuild --nodedir="$NODE_DIR" --loglevel=error >/dev/null)
    fi
  done
  ln -sfn node_modules node_modules.asar
  cd extensions
  npm install --omit=dev --no-audit --no-fund --loglevel=error
)
(cd "$PREFIX" && npm rebuild argon2 --loglevel=error)

touch "$MARKER"
echo "setup-vscode-e2e: installed code-server $CODE_SERVER_VERSION in $PREFIX ($(($(date +%s) - start)) s, $(du -sh "$PREFIX" | cut -f1))"
