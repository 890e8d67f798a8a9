#!/bin/sh
# bench/gitops/run.sh — the GitOps benchmark (`make bench-gitops`): commit ->
# pods running on the new revision through /api/webhook, memory per
# Application, sync of a 500-object repository. Runs gitops_bench.py.
# Usage: bench/gitops/run.sh path/to/v6. Env: see gitops_bench.py.
set -e
V6="${1:?usage: bench/gitops/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
exec "${PYTHON:-python3}" "$HERE/gitops_bench.py" "$V6"
