#!/bin/sh
# bench/observability/scrape_run.sh — scrape duration and page size of the
# server's /metrics with 1,000 pods, against kube-state-metrics' sizing.
# Usage: bench/observability/scrape_run.sh path/to/v6. Env: BENCH_SCRAPE_PODS,
# BENCH_SCRAPE_ROUNDS, BENCH_KEEP (see bench/observability/README.md).
set -e
V6="${1:?usage: bench/observability/scrape_run.sh path/to/v6}"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-python3}" "$(cd "$(dirname "$0")" && pwd)/scrape_bench.py" "$V6"
