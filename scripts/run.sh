#!/usr/bin/env bash
# rill's main job on a fresh machine: install what is missing, build the rill command, prepare
# the default corpus (the King James Bible, Debian package bible-kjv), train the default
# recurrent language model (linear attention) on it, report the test-split bits per byte, and
# stream a sample with the recurrent (step) form. Fits in 15 minutes on the 2-core machine.
# Usage: scripts/run.sh [CONFIG]   (default configs/default.json)
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-configs/default.json}"
out=$(sed -n 's/.*"out_dir": *"\([^"]*\)".*/\1/p' "$config")
out="${out:-runs/default}"

scripts/setup.sh
scripts/build.sh rill_cli
build/rill data bible-kjv
build/rill info --config "$config"
# Training sleeps rather than spins at OpenMP barriers: on a busy machine spinning threads slow
# it severalfold. (Generation keeps spinning: its many tiny regions want the lowest latency.)
OMP_WAIT_POLICY=passive build/rill train --config "$config"
build/rill eval --checkpoint "$out/checkpoint.safetensors" --split test
echo
echo "--- a sample, streamed token by token with the step form ---"
build/rill generate --checkpoint "$out/checkpoint.safetensors" \
  --prompt $'\nPsalms 23\n\n  1 The LORD' --tokens 600 --temperature 0.8 --top-p 0.95 --seed 7
echo
echo "plot: $out/curves.svg  metrics: $out/metrics.jsonl  checkpoint: $out/checkpoint.safetensors"
