#!/usr/bin/env bash
# Writes TypeScript declarations of every sync route's input (from the handlers' schemas).
# Usage: tools/gen-types.sh [handlers-dir] [out-file]   (defaults: handlers, stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/luckysync ] || { cmake -S . -B build >/dev/null && cmake --build build -j"$(nproc)" >/dev/null; }
if [ -n "${2:-}" ]; then
  build/luckysync types --handlers "${1:-handlers}" > "$2"
else
  build/luckysync types --handlers "${1:-handlers}"
fi
