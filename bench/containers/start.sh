#!/bin/sh
# bench/containers/start.sh — container start latency of the runc runtime
# against `runc run -d` on prepared bundles (start.py). Needs root, runc,
# umoci, skopeo and busybox-static. Usage: bench/containers/start.sh path/to/v6.
# Env: BENCH_PODS (default "1 10 100"), BENCH_ROUNDS (1), BENCH_TIMEOUT_S (120).
set -e
V6="${1:?usage: bench/containers/start.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-python3}" "$HERE/start.py" "$V6"
