#!/bin/sh
# bench/containers/run.sh — the containers benchmark, part (b): pull + unpack
# of a multi-layer image from a local docker-registry by `v6 image pull`,
# against `skopeo copy` + `umoci unpack` of the same image in the same run.
# Usage: bench/containers/run.sh path/to/v6. Env: see bench/containers/README.md.
set -e
V6="${1:?usage: bench/containers/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }
for tool in docker-registry skopeo umoci; do
	command -v "$tool" >/dev/null || { echo "bench: missing $tool (scripts/packages.txt)" >&2; exit 2; }
done
exec "${PYTHON:-python3}" "$HERE/pull_bench.py" "$V6"
