#!/bin/sh
# bench/soak/run.sh — the soak: N minutes (default 60) of load through the
# proxy with a rollout a minute; prints RSS, fds, store size, Events and
# failed requests. Usage: bench/soak/run.sh path/to/v6 [--minutes N].
set -e
V6="${1:?usage: bench/soak/run.sh path/to/v6 [--minutes N]}"
shift
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-python3}" "$HERE/soak_bench.py" "$V6" "$@"
