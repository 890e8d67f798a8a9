#!/bin/sh
# bench/alerting/run.sh — the alerting benchmark (`make bench-alerting`): time
# from the first bad request to the notification at a receiver for the default
# error-rate rule, and notifications per incident with V6's noise control
# against Alertmanager alone. Runs alerting_bench.py with Debian's Prometheus
# and Alertmanager. Usage: bench/alerting/run.sh path/to/v6.
set -e
V6="${1:?usage: bench/alerting/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
V6_BIN="$(cd "$(dirname "$V6")" && pwd)/$(basename "$V6")" \
	exec "${PYTHON:-/usr/bin/python3}" "$HERE/alerting_bench.py"
