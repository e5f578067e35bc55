#!/usr/bin/env bash
# Configures and builds rill (Release, portable x86-64-v3) into ./build. Extra arguments go to
# CMake, e.g. scripts/build.sh -DRILL_CUDA=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
