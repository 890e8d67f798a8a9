#!/bin/sh
# The default rule pack's tests: promtool check rules on the pack (given as
# a plain rule file, made by `make rules`), every alert named in some
# tests/rules/*.test.yaml, then promtool test rules on each test file.
# Ends with "rules: N passed, M failed" for scripts/test.sh's table.
set -u
pack=$1
cd "$(dirname "$0")/.." || exit 1
pass=0 fail=0
promtool check rules "$pack" || fail=$((fail + 1))
for a in $(sed -n 's/^ *- alert: *//p' "$pack" | sort -u); do
	if ! grep -q "alertname: *$a\$" tests/rules/*.test.yaml; then
		echo "rules: alert $a has no test in tests/rules/"
		fail=$((fail + 1))
	fi
done
for t in tests/rules/*.test.yaml; do
	if promtool test rules "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "rules: $pass passed, $fail failed"
[ "$fail" = 0 ]
