#!/usr/bin/env bash
# Runs every juggler-bench scenario on tokio and smol, the raw WebSocket
# baselines on both (tokio-tungstenite on tokio, async-tungstenite on smol), and the same scenarios against the pinned
# Python reference peers (hat-juggler 0.5.14, and 0.7.6 for the v07-*
# scenarios), in one go, then prints one table with all of them and the
# ratios.
#
#   bench/compare.sh            # the full run (about 4 minutes on 2 cores)
#   bench/compare.sh --quick    # the smoke sizes (seconds), to try it out
#
# The JSON results and the logs stay in target/bench-results/<time>/.
# Numbers are only worth comparing from a quiet machine: nothing else
# building or running. Exits non-zero if any scenario failed its checks.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
case "${1:-}" in
    --quick) quick=(--quick) ;;
    "") ;;
    *) echo "usage: bench/compare.sh [--quick]" >&2; exit 2 ;;
esac

out="target/bench-results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
venv=target/python-venv
python="$venv/bin/python"
started=$SECONDS

step() { printf '\n=== %s ===\n' "$*" >&2; }

step "machine"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "rustc: $(rustc --version)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        "($(git status --porcelain 2>/dev/null | wc -l) paths changed or new)"
    echo "kernel: $(uname -r)"
    echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt" >&2

step "build (release)"
cargo build --release -p juggler-bench >&2
bench=target/release/juggler-bench

step "Python reference peer"
if ! "$python" -c 'from hat import juggler' 2>/dev/null; then
    echo "creating $venv (as the interop tests do)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        -c tests/python/constraints.txt \
        hat-juggler==0.5.14 hat-util==0.6.8 hat-aio==0.7.5 hat-json==0.5.16
fi
"$python" --version >&2
venv07=target/python-venv-0.7
python07="$venv07/bin/python"
if ! "$python07" -c 'from hat import juggler' 2>/dev/null; then
    echo "creating $venv07 (as the interop tests do)" >&2
    python3 -m venv "$venv07"
    "$venv07/bin/pip" install --quiet --disable-pip-version-check \
        -c tests/python/constraints-0.7.txt \
        hat-juggler==0.7.6 hat-aio==0.7.13 hat-json==0.6.8 hat-util==0.6.22
fi

status=0
sensitive="messages-100b messages-10kb rpc-sequential rpc-64"
step "juggler-rs, tokio and smol"
echo "$bench --runtime both --json ${quick[*]}" >&2
"$bench" --runtime both --json "${quick[@]}" | tee "$out/ours.jsonl" >&2 || status=1

step "raw WebSocket baselines, tokio and smol"
echo "$bench --baseline raw --json ${quick[*]}" >&2
"$bench" --baseline raw --json "${quick[@]}" | tee "$out/raw.jsonl" >&2 || status=1

step "Python reference peer (hat-juggler 0.5.14)"
echo "$python bench/python_peer_bench.py ${quick[*]}" >&2
"$python" bench/python_peer_bench.py "${quick[@]}" 2>"$out/python.stderr" \
    | tee "$out/python.jsonl" >&2 || status=1

step "Python reference peer of the 0.7 generation (hat-juggler 0.7.6, two processes)"
echo "$python07 bench/python_v07_bench.py ${quick[*]}" >&2
"$python07" bench/python_v07_bench.py "${quick[@]}" 2>"$out/python07.stderr" \
    | tee "$out/python07.jsonl" >&2 || status=1

step "sensitivity: one executor thread (messages and RPC)"
echo "$bench --threads 1 --runtime both --json --scenario $sensitive ${quick[*]}" >&2
"$bench" --threads 1 --runtime both --json --scenario $sensitive "${quick[@]}" \
    | tee "$out/ours-1thread.jsonl" >&2 || status=1
"$bench" --threads 1 --baseline raw --json "${quick[@]}" \
    | tee "$out/raw-1thread.jsonl" >&2 || status=1

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt" >&2
echo "total: $((SECONDS - started)) s" | tee -a "$out/machine.txt" >&2

step "comparison (one run; expect ±25% noise)"
if [ ${#quick[@]} -gt 0 ]; then
    echo "(--quick: smoke sizes; the numbers and verdicts mean nothing)"
fi
python3 bench/table.py "$out"/*.jsonl | tee "$out/table.md"
echo
echo "results: $out"
if [ "$status" -ne 0 ]; then
    echo "some scenarios FAILED (see above)" >&2
fi
exit "$status"
