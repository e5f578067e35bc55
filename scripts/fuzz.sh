#!/usr/bin/env bash
# Builds the safetensors parser fuzzer with clang (libFuzzer + ASan + UBSan) and runs it for
# SECONDS (default 20) from a small seed corpus. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
out=build-fuzz
mkdir -p "$out/corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I. fuzz/fuzz_safetensors.cpp rill/io/safetensors_format.cpp -lfmt -o "$out/fuzz_safetensors"
# Seeds: a valid file and a few near misses (written here, so nothing binary is committed).
seed() {  # 8-byte little-endian length, the JSON header, 16 bytes of data
  local json="$2" n=${#2} i
  {
    for i in 0 1 2 3 4 5 6 7; do printf "\\$(printf '%03o' $(((n >> (8 * i)) & 255)))"; done
    printf '%s' "$json"
    head -c 16 /dev/zero
  } > "$out/corpus/$1"
}
seed valid '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
seed half '{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}'
seed overlap '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}'
"$out/fuzz_safetensors" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  "$out/corpus" 2>&1 | tail -n 5
