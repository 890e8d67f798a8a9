#!/bin/sh
# Runs each cmocka test binary given as an argument, in its own process with
# a time limit, and prints one summary line for all of them.
pass=0; fail=0; failed=""
for t in "$@"; do
	if timeout 120 "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $(basename "$t")"; fi
done
echo "unit: $pass test programs passed, $fail failed$failed"
[ "$fail" = 0 ]
