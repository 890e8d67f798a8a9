#!/bin/sh
# bench/store/run.sh — the store benchmark (`make bench`): builds the C load
# generator next to the v6 binary, installs the peer (etcd) and the
# generator's calibration server (nginx-light) if missing and we are root, then
# runs store_bench.py. Usage: bench/store/run.sh path/to/v6. Env: see bench/README.md.
set -e
V6="${1:?usage: bench/store/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }

OUT="$(cd "$(dirname "$V6")" && pwd)/bench"
LOAD="$OUT/store-load"
mkdir -p "$OUT"
if [ ! -x "$LOAD" ] || [ "$HERE/load.c" -nt "$LOAD" ]; then
	${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Wshadow \
	    -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror \
	    -pthread -o "$LOAD" "$HERE/load.c"
fi

missing=""
[ -x "${ETCD:-/usr/bin/etcd}" ] || missing="$missing etcd-server"
[ -x "${NGINX:-/usr/sbin/nginx}" ] || missing="$missing nginx-light"
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "bench: installing$missing" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq $missing >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get install -y -qq $missing >/dev/null; } ||
			echo "bench: could not install$missing; running without" >&2
	else
		echo "bench: missing$missing (apt-get install -y$missing); running without" >&2
	fi
fi

exec "${PYTHON:-python3}" "$HERE/store_bench.py" "$V6" "$LOAD"
