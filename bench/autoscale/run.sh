#!/bin/sh
# bench/autoscale/run.sh — the autoscaling benchmark: reaction of the HPA to a
# load step through the proxy (15 s and 1 s sync, against the 75 s worst case
# of Kubernetes' defaults) and cold start from zero. Usage:
# bench/autoscale/run.sh path/to/v6. Env: see bench/autoscale/autoscale_bench.py.
set -e
V6="${1:?usage: bench/autoscale/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-python3}" "$HERE/autoscale_bench.py" "$V6"
