#!/bin/sh
# Runs each cmocka test binary given as an argument, in its own process with
# a time limit, and prints one summary line: test cases passed, failed and
# skipped (parsed from cmocka's output), and programs that crashed or timed
# out. Under CI=true a skipped case fails the run unless tests/skip-allowlist.txt
# lists it as `test_program::test_case  reason`.
allow="$(dirname "$0")/../tests/skip-allowlist.txt"
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
pass=0; fail=0; skip=0; crashed=""; failed=""; badskip=""
for t in "$@"; do
	prog=$(basename "$t")
	timeout 120 "$t" >"$out" 2>&1
	rc=$?
	cat "$out"
	# cmocka prints "[  PASSED  ] N test(s)." per group, and for failed and
	# skipped cases one summary line with a count plus one line per case.
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	[ "$f" = 0 ] || failed="$failed $prog"
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		crashed="$crashed $prog(exit $rc)"
	fi
	for c in $(sed -n 's/^\[  SKIPPED \] \([A-Za-z_][A-Za-z0-9_]*\)$/\1/p' "$out" | sort -u); do
		grep -q "^$prog::$c[[:space:]]" "$allow" 2>/dev/null || badskip="$badskip $prog::$c"
	done
done
echo "unit: $pass passed, $fail failed, $skip skipped${failed:+ (failed in:$failed)}${crashed:+; crashed or timed out:$crashed}"
status=0
[ "$fail" = 0 ] && [ -z "$crashed" ] || status=1
if [ -n "$badskip" ]; then
	echo "unit: skipped without an entry in tests/skip-allowlist.txt:$badskip"
	[ "$CI" = true ] && status=1
fi
exit $status
