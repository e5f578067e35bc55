#!/usr/bin/env bash
# rill's main job on a fresh machine: install what is missing, build the rill command, prepare
# the default corpus (the King James Bible, Debian package bible-kjv), train the default
# recurrent language model on it, report the test-split bits per byte, and stream a sample with
# the recurrent (step) form. Fits in 15 minutes on the 2-core machine.
# Usage: scripts/run.sh [CONFIG] [--time-limit SECONDS] [--out DIR]
#   CONFIG        a training config (default configs/default.json)
#   --time-limit  training budget in seconds (default: the config's, 480 for the default)
#   --out         where the run goes (default: the config's out_dir)
# Paths may be relative to the folder you run it from.
set -euo pipefail
here="$(pwd)"
config="" time_limit="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --time-limit) time_limit="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) config="$1"; shift ;;
  esac
done
# Resolve the caller's relative paths before moving to the repository root.
abs() { case "$1" in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
cd "$(dirname "$0")/.."
config="$(abs "${config:-$(pwd)/configs/default.json}")"
[ -f "$config" ] || { echo "run.sh: no config at $config" >&2; exit 2; }
[ -n "$out" ] && out="$(abs "$out")"
if [ -z "$out" ]; then
  out=$(sed -n 's/.*"out_dir": *"\([^"]*\)".*/\1/p' "$config")
  out="${out:-runs/default}"
fi

scripts/setup.sh
scripts/build.sh rill_cli
build/rill data bible-kjv
build/rill info --config "$config"
train_args=(--config "$config" --out "$out")
[ -n "$time_limit" ] && train_args+=(--time-limit "$time_limit")
# Training sleeps rather than spins at OpenMP barriers: on a busy machine spinning threads slow
# it severalfold. (Generation keeps spinning: its many tiny regions want the lowest latency.)
OMP_WAIT_POLICY=passive build/rill train "${train_args[@]}"
OMP_WAIT_POLICY=passive build/rill eval --checkpoint "$out/checkpoint.safetensors" --split test
echo
echo "--- a sample, streamed token by token with the step form ---"
build/rill generate --checkpoint "$out/checkpoint.safetensors" \
  --prompt $'\nPsalms 23\n\n  1 The LORD' --tokens 600 --temperature 0.8 --top-p 0.95 --seed 7
echo
echo "plot: $out/curves.svg  metrics: $out/metrics.jsonl  checkpoint: $out/checkpoint.safetensors"
