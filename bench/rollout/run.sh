#!/bin/sh
# bench/rollout/run.sh — the rollout benchmark: wall time and failed requests
# of a rolling update, a canary Rollout and a blue-green Rollout on one
# `v6 server`, side by side. Runs rollout_bench.py.
# Usage: bench/rollout/run.sh path/to/v6 [--rounds N]. Env: see bench/README.md.
set -e
V6="${1:?usage: bench/rollout/run.sh path/to/v6 [--rounds N]}"
shift
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-python3}" "$HERE/rollout_bench.py" "$V6" "$@"
