#!/bin/sh
# bench/pods/run.sh — the pods benchmark: builds the floor launcher (launch.c)
# next to the v6 binary, installs the peer (supervisord) if missing and we are
# root, then runs pods_bench.py. Usage: bench/pods/run.sh path/to/v6.
# Env: see bench/README.md.
set -e
V6="${1:?usage: bench/pods/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }

OUT="$(cd "$(dirname "$V6")" && pwd)/bench"
LAUNCH="$OUT/pods-launch"
mkdir -p "$OUT"
if [ ! -x "$LAUNCH" ] || [ "$HERE/launch.c" -nt "$LAUNCH" ]; then
	${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Wshadow \
	    -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror \
	    -o "$LAUNCH" "$HERE/launch.c"
fi

if [ ! -x "${SUPERVISORD:-/usr/bin/supervisord}" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "bench: installing supervisor" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq supervisor >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get install -y -qq supervisor >/dev/null; } ||
			echo "bench: could not install supervisor; running without" >&2
	else
		echo "bench: missing supervisord (apt-get install -y supervisor); running without" >&2
	fi
fi

exec "${PYTHON:-python3}" "$HERE/pods_bench.py" "$V6" "$LAUNCH"
