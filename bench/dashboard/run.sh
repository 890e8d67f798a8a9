#!/bin/sh
# bench/dashboard/run.sh — the dashboard benchmark (`make bench-dashboard`):
# page weight, first paint and time to interactive with 1,000 pods in
# headless Chromium, server memory with 10 dashboards open. Runs
# dashboard_bench.py. Usage: bench/dashboard/run.sh path/to/v6.
set -e
V6="${1:?usage: bench/dashboard/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-python3}" "$HERE/dashboard_bench.py" "$V6"
