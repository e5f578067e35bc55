#!/usr/bin/env bash
# Builds the fuzzers with clang (libFuzzer + ASan + UBSan): the safetensors parser and the
# request parser of `rill serve`, and runs each for SECONDS (default 20) from a small seed
# corpus. Usage: scripts/fuzz.sh [SECONDS]
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

# The request parser: the first byte picks the endpoint (0 completions, 1 new session,
# 2 continue, 3 a session id), the rest is the body.
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I. fuzz/fuzz_requests.cpp rill/serve/requests.cpp -lfmt -o "$out/fuzz_requests"
mkdir -p "$out/requests"
printf '\000{"prompt": "hi", "max_tokens": 3, "temperature": 0.5, "stop": ["x"], "n": 1}' > "$out/requests/completion"
printf '\001{"prompt": "hi", "seed": 4}' > "$out/requests/session"
printf '\002{"prompt": "a", "max_tokens": 0, "top_p": 0.9, "top_k": 3, "stream": false}' > "$out/requests/continue"
printf '\003s-1_A' > "$out/requests/id"
"$out/fuzz_requests" -max_total_time="$seconds" -max_len=512 -print_final_stats=1 \
  "$out/requests" 2>&1 | tail -n 5
