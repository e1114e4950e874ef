#!/usr/bin/env bash
# Builds and runs every test: C unit tests (ctest), busted specs and the integration tests
# against a real build/luckysync, first in the normal build, then in the sanitizer build
# (AddressSanitizer + UndefinedBehaviorSanitizer). Exits non-zero on any failure.
# Usage: tools/test.sh [--quick]   (--quick: normal build only)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash tools/setup.sh

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
export LSAN_OPTIONS="suppressions=$ROOT/tools/lsan.supp"

suite() {
  local dir=$1; shift
  echo "== build $dir ($*)"
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)" -- --no-print-directory
  echo "== ctest ($dir)"
  (cd "$dir" && ctest --output-on-failure --timeout 120)
  if compgen -G "spec/lua/*_spec.lua" >/dev/null; then
    echo "== busted ($dir)"
    local preload=""
    if [ "$dir" = build-asan ]; then
      # The harness module is sanitized but lua5.4 is not: load the runtimes first. The
      # interpreter's own allocations at exit are not ours, so leak checks stay off here.
      preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
    fi
    LD_PRELOAD="$preload" ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
      LUCKYSYNC_BUILD="$ROOT/$dir" LUCKYSYNC_BIN="$ROOT/$dir/luckysync" \
      lua5.4 /usr/bin/busted --lpath="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua" spec/lua
  fi
  echo "== integration ($dir)"
  local sanitized=""
  [ "$dir" = build-asan ] && sanitized=1
  LUCKYSYNC_SANITIZED="$sanitized" LUCKYSYNC_BIN="$ROOT/$dir/luckysync" \
    node --test --test-timeout=120000 spec/integration/
  echo "== browser ($dir)"
  LUCKYSYNC_BIN="$ROOT/$dir/luckysync" node --test --test-timeout=120000 spec/browser/
}

suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== benchmark smoke (build): every scenario briefly, both servers; fails only on lost or wrong messages"
tools/bench/compare --smoke --build-dir build --no-build
if [ "${1:-}" != "--quick" ]; then
  suite build-asan -DCMAKE_BUILD_TYPE=Debug -DLUCKYSYNC_SANITIZE=ON
fi
echo "== all tests passed"
