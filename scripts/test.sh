#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
# ctest runs two test binaries at once on two cores: spinning OpenMP workers would fight.
export OMP_WAIT_POLICY=passive
ctest --output-on-failure -j "$(nproc)" --timeout 900
