#!/bin/sh
# bench/proxy/run.sh — the proxy benchmark: builds the idle-connection holder
# next to the v6 binary, installs wrk, HAProxy and nginx-light if missing and
# we are root, raises the open-file limit, then runs proxy_bench.py.
# Usage: bench/proxy/run.sh path/to/v6. Env: see bench/README.md.
set -e
V6="${1:?usage: bench/proxy/run.sh path/to/v6}"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -x "$V6" ] || { echo "bench: $V6 is not an executable (run make first)" >&2; exit 2; }

OUT="$(cd "$(dirname "$V6")" && pwd)/bench"
IDLE="$OUT/proxy-idle"
mkdir -p "$OUT"
if [ ! -x "$IDLE" ] || [ "$HERE/idle.c" -nt "$IDLE" ]; then
	${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Wshadow \
	    -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror \
	    -o "$IDLE" "$HERE/idle.c"
fi

missing=""
[ -x "${WRK:-/usr/bin/wrk}" ] || missing="$missing wrk"
[ -x "${HAPROXY:-/usr/sbin/haproxy}" ] || missing="$missing haproxy"
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

# 10,000 client connections plus the proxies' own: as many files as allowed
# (65536, or the hard limit when it is lower); every child inherits it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec "${PYTHON:-python3}" "$HERE/proxy_bench.py" "$V6" "$IDLE"
