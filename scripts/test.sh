#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite with ctest, and last
# runs the main job end to end (scripts/run.sh) with a short training budget, so that no change
# can break the README's first command unnoticed.
# Usage: scripts/test.sh [--main-job-seconds N]   (default 30; 0 skips the main job)
set -euo pipefail
cd "$(dirname "$0")/.."
main_job_seconds=30
while [ $# -gt 0 ]; do
  case "$1" in
    --main-job-seconds) main_job_seconds="$2"; shift 2 ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
scripts/setup.sh
scripts/format.sh --check
scripts/build.sh
(
  cd build
  # ctest runs two test binaries at once on two cores: spinning OpenMP workers would fight.
  export OMP_WAIT_POLICY=passive
  ctest --output-on-failure -j "$(nproc)" --timeout 900
)
if [ "$main_job_seconds" != 0 ]; then
  echo "=== the main job, with a ${main_job_seconds} s training budget ==="
  scripts/run.sh --time-limit "$main_job_seconds" --out build/main-job-check
fi
