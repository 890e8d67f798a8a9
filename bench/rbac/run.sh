#!/bin/sh
# bench/rbac/run.sh — what authorization costs an API request (issue 15):
# the same GET as system:masters and as a token user through RBAC with
# 1000 RoleBindings in the store. Prints figures, never fails on them.
set -e
HERE=$(dirname "$0")
exec python3 "$HERE/rbac_bench.py" "${1:-build/v6}"
