#!/usr/bin/env bash
# rill beside plain eager PyTorch (Debian's python3-torch, installed here if missing) on the same
# model, the same batch and the same machine, in alternating rounds so that both see the same
# load: training tokens/s on 2 threads and one-stream generation tokens/s on 1 thread. Prints
# each round and the medians. Needs the build (scripts/build.sh).
# Usage: bench/versus_pytorch.sh [CONFIG...] [--rounds N]   (default configs/default.json, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
configs=() rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    *) configs+=("$1"); shift ;;
  esac
done
[ ${#configs[@]} -gt 0 ] || configs=(configs/default.json)
[ -x build/bench_lm ] || { echo "versus_pytorch: build/bench_lm is missing; run scripts/build.sh" >&2; exit 1; }
# Debian's python3-torch installs into the system interpreter, not into a pyenv or venv one.
PY=/usr/bin/python3
"$PY" -c 'import torch' 2>/dev/null || scripts/setup.sh python3-torch
# The OpenMP wait policy is left to the caller (both sides run under the same one).
export OMP_NUM_THREADS=2
# PyTorch's GEMMs go through Debian's OpenBLAS, whose CPU detection fails in these VMs (measured:
# 45 GFLOP/s at 2048x256x1024 on 2 threads, 112 with the right core type): name the core type,
# so that PyTorch is measured at its best here, as a user who tuned it would run it.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; else export OPENBLAS_CORETYPE=Haswell; fi
fi

echo "versus_pytorch: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE, OMP_NUM_THREADS=$OMP_NUM_THREADS, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}; $(grep -m1 "model name" /proc/cpuinfo)"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for config in "${configs[@]}"; do
  for round in $(seq "$rounds"); do
    out=$(build/bench_lm --config "$config" --filter default --quick --steps 6 --tokens 400)
    # Training table: | name | parameters | tokens/s | ...; generation: | name | f32 | MB | 1 stream (x%) | ...
    rill_train=$(awk -F'|' '/^\| default/ && $3 ~ / M / {gsub(/ /, "", $4); print $4; exit}' <<<"$out")
    rill_gen=$(awk -F'|' '/^\| default/ && $3 ~ /f32/ {split($5, a, " "); print a[1]; exit}' <<<"$out")
    torch=$("$PY" bench/pytorch_lm.py "$config" --threads 2 --steps 6 --tokens 400)
    echo "$config round $round: rill train $rill_train tok/s, generate $rill_gen tok/s; pytorch $torch"
    echo "$config $rill_train $rill_gen $torch" >>"$results"
  done
done
"$PY" - "$results" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    config, train, gen, torch = line.split(" ", 3)
    t = json.loads(torch)
    rows.setdefault(config, []).append((float(train), float(gen), t["train_tokens_per_s"],
                                        t["generate_1_stream_tokens_per_s"], t["torch"]))
print("\n| config | rill train tok/s | PyTorch train tok/s | ratio | rill generate tok/s (1 stream) "
      "| PyTorch generate tok/s | ratio |\n|---|---|---|---|---|---|---|")
for config, r in rows.items():
    med = [statistics.median(x[i] for x in r) for i in range(4)]
    ratios = [statistics.median(x[0] / x[2] for x in r), statistics.median(x[1] / x[3] for x in r)]
    print(f"| {config} | {med[0]:.0f} | {med[2]:.0f} | {ratios[0]:.2f}x | {med[1]:.0f} | "
          f"{med[3]:.0f} | {ratios[1]:.2f}x |")
print(f"\nMedians of {len(r)} alternating rounds; PyTorch {r[0][4]}, eager, 2 threads for training, "
      "1 for generation; ratios are medians of the per-round ratios.")
EOF
