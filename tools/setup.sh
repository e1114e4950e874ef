#!/usr/bin/env bash
# Installs what LuckySync needs to build and test on Debian 12. Idempotent and quick when
# everything is already present. Usage: tools/setup.sh [--no-npm]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config
      libwebsockets-dev liblua5.4-dev lua5.4 lua-cjson-dev lua-cjson libhiredis-dev
      libsodium-dev libjansson-dev libuv1-dev lua-busted redis-server curl chromium)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null 2>&1 || $SUDO apt-get update
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs/npm" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# npm packages: the demo page's socket.io-client and the integration tests' clients.
if [ "${1:-}" != "--no-npm" ]; then
  for dir in clients/demo spec/integration spec/browser tools/bench/peers/socketio; do
    [ -f "$dir/package-lock.json" ] || continue
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || \
       [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
fi
