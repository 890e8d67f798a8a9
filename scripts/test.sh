#!/bin/sh
# The body of `make test`: every phase in order (deps, build, unit, rules
# (the default alert rules under promtool test rules), schemas (shipped
# manifests against the upstream schemas), e2e, schemas-e2e (what the e2e
# tests applied, against the same schemas),
# then the same three under ASan+UBSan, then a bounded fuzz run), each timed.
# A failing phase does not hide the later ones' results, but the run fails.
# Ends with a table: phase, seconds, result and the per-runner counts.
# Usage: scripts/test.sh MAKE   (called by the Makefile's test target)
MAKE=${1:-make}
cd "$(dirname "$0")/.." || exit 1
sum=$(mktemp); log=$(mktemp)
rec=$(mktemp -d)	# the manifests e2e tests apply (V6_SCHEMA_RECORD, tests/e2e/conftest.py)
trap 'rm -f "$sum" "$log"; rm -rf "$rec"' EXIT
status=0
SAN="SANITIZE=address,undefined"
# LeakSanitizer runs at each V6 process's exit (the e2e fixtures stop them
# with SIGTERM); reports go to the processes' stderr, which the fixtures scan.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# phase NAME COMMAND...: runs COMMAND, records its time, result and the
# runner's count line (the last "unit:", pytest summary or "fuzz:" line).
phase() {
	name=$1; shift
	echo "==== $name: $*"
	t0=$(date +%s)
	"$@" 2>&1 | tee "$log"
	rc=$(cat "$log.rc" 2>/dev/null || echo 0)
	t1=$(date +%s)
	counts=$(grep -E '^unit: [0-9]+ passed|^rules: [0-9]+ passed|^schemas: [0-9]+ (passed|recorded)|^fuzz: [0-9]+ targets|^=* ?[0-9]+ (passed|failed|skipped|error)' "$log" |
		tail -1 | sed 's/=//g; s/^ *//')
	result=ok; [ "$rc" = 0 ] || { result=FAILED; status=1; }
	printf '%-16s %6ss  %-7s %s\n' "$name" $((t1 - t0)) "$result" "$counts" >>"$sum"
	rm -f "$log.rc"
}
# run COMMAND...: COMMAND's exit status survives the pipe through tee.
run() {
	"$@"; echo $? >"$log.rc"
}

start=$(date +%s)
phase deps run $MAKE --no-print-directory deps
phase build run $MAKE --no-print-directory all
phase unit run $MAKE --no-print-directory unit
phase rules run $MAKE --no-print-directory rules-test
phase schemas run $MAKE --no-print-directory schemas-check
phase e2e run env V6_SCHEMA_RECORD="$rec" $MAKE --no-print-directory e2e
phase schemas-e2e run python3 tests/schemas/check.py --recorded "$rec"
phase san-build run $MAKE --no-print-directory $SAN all
phase san-unit run $MAKE --no-print-directory $SAN unit
phase san-e2e run env V6_TIMEOUT_SCALE=3 $MAKE --no-print-directory $SAN e2e
phase fuzz run $MAKE --no-print-directory -k -C tests/fuzz check   # -k: every target runs
echo
echo "==== make test: phase, seconds, result, counts (passed / failed / skipped)"
cat "$sum"
echo "total            $(( $(date +%s) - start ))s  $([ $status = 0 ] && echo ok || echo FAILED)"
exit $status
