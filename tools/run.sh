#!/usr/bin/env bash
# Builds LuckySync and starts it on the example handlers at http://127.0.0.1:8080, serving
# the demo page from clients/demo. No other service is needed. Extra flags are passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" -- --no-print-directory
if [ -z "${LUCKYSYNC_JWT_SECRET:-}" ]; then
  # A development secret so `build/luckysync token --sub alice` works out of the box.
  export LUCKYSYNC_JWT_SECRET="luckysync-dev-secret-change-me-0123456789"
  echo "run: using a development HS256 secret (set LUCKYSYNC_JWT_SECRET to choose your own)" >&2
fi
exec build/luckysync --dev --handlers handlers --static clients/demo --host 127.0.0.1 --port 8080 "$@"
