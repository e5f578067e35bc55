#!/usr/bin/env bash
# Configures and builds rill (Release, portable x86-64-v3) into ./build.
# Usage: scripts/build.sh [TARGET...] [-- CMAKE_ARGS...]   (no target: everything)
#   e.g. scripts/build.sh rill_cli      scripts/build.sh -- -DRILL_CUDA=ON
set -euo pipefail
cd "$(dirname "$0")/.."
targets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do targets+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
if [ ${#targets[@]} -eq 0 ]; then
  cmake --build build -j "$(nproc)"
else
  cmake --build build -j "$(nproc)" --target "${targets[@]}"
fi
