#!/bin/sh
# bench/observability/logship_run.sh — the Loki shipper's throughput and RSS
# (logship_bench.py). Usage: bench/observability/logship_run.sh path/to/v6.
# Env: BENCH_PODS, BENCH_LINES, BENCH_LINE_BYTES (see logship_bench.py).
set -e
V6="${1:?usage: bench/observability/logship_run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-/usr/bin/python3}" "$HERE/logship_bench.py" "$V6"
