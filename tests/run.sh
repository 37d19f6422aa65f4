#!/bin/bash
# tests/run.sh BUILD_DIR [BUILD_DIR...] - runs every test against each build and prints
# one PASS/FAIL/SKIP line per test, then the totals line "N passed, N failed, N skipped".
#
# Tests:
#   BUILD/tests/unit/test_*        cmocka unit tests (exit 0 = pass)
#   tests/integration/*.sh         integration tests, given BLKSTACK_BUILD=BUILD
#                                  (exit 0 = pass, 77 = skipped, anything else = fail)
#   BUILD/fuzz/fuzz_* (when built) fuzz targets, each for a bounded time
# Logs go to tests/out/<build>/<test>.log; a failure prints the log's tail.
set -u
cd "$(dirname "$0")/.."
top=$PWD

pass=0 fail=0 skipped=0
failed_names=()
only=${BLKSTACK_TESTS:-}   # optional filter: a substring of the test names to run

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}

run_one() { # variant name timeout cmd...
	local variant=$1 name=$2 limit=$3
	shift 3
	[ -n "$only" ] && [[ $name != *"$only"* ]] && return 0
	local log=$top/tests/out/$variant/$name.log
	mkdir -p "$(dirname "$log")"
	local start=$SECONDS rc
	timeout -k 10 "$limit" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	local took=$((SECONDS - start))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		printf 'PASS: %s/%s (%ss)\n' "$variant" "$name" "$took"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		printf 'SKIP: %s/%s: %s\n' "$variant" "$name" "$(grep -m1 '^SKIP' "$log" | cut -c7-)"
	else
		fail=$((fail + 1))
		failed_names+=("$variant/$name")
		[ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >>"$log"
		printf 'FAIL: %s/%s (exit %s, %ss); last lines of %s:\n' "$variant" "$name" "$rc" \
			"$took" "${log#$top/}"
		tail -n 25 "$log" | sed 's/^/    /'
	fi
}

for build in "$@"; do
	variant=$(basename "$build")
	b=$(cd "$build" && pwd)
	for t in "$b"/tests/unit/test_*; do
		[ -x "$t" ] && [ -f "$t" ] || continue
		run_one "$variant" "unit/$(basename "$t")" 300 "$t"
	done
	for t in tests/integration/*.sh; do
		[ -f "$t" ] || continue
		n=$(basename "$t" .sh)
		limit=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1)
		BLKSTACK_BUILD=$b run_one "$variant" "integration/$n" "${limit:-240}" bash "$t"
	done
	for f in "$b"/fuzz/fuzz_*; do
		[ -x "$f" ] && [ -f "$f" ] || continue
		n=$(basename "$f")
		corpus=$top/fuzz/corpus/${n#fuzz_}
		run_one "$variant" "fuzz/$n" 120 "$top/fuzz/run.sh" "$f" "$corpus"
	done
done

if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$pass passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ]
