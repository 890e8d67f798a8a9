#!/bin/sh
# bench/convergence/run.sh — the convergence benchmark (`make bench`): how long
# a change written to the store takes to be served by `v6 proxy`. Runs
# convergence_bench.py. Usage: bench/convergence/run.sh path/to/v6.
# Env: see bench/README.md.
set -e
V6="${1:?usage: bench/convergence/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-python3}" "$HERE/convergence_bench.py" "$V6"
