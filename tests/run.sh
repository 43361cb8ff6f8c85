#!/bin/sh
# Run unit test binaries (cmocka) and integration scripts, then print one summary line.
# A cmocka binary counts each of its test cases; a script counts as one test (exit 77: skipped).
# Logs go to $TEST_LOG_DIR (default build/test-logs); a failure shows the end of its log. A script
# may print a progress line for whoever waits (a step that takes minutes) on fd 9, our output.
# TEST_RUNNER, if set, runs each unit test binary (qemu-aarch64 for a cross build's, say).
set -u

logdir=${TEST_LOG_DIR:-$(pwd)/build/test-logs}
mkdir -p "$logdir"
passed=0 failed=0 skipped=0

for t in "$@"; do
	name=$(basename "$t" .sh)
	log="$logdir/$name.log"
	start=$(date +%s)
	case "$t" in
	*.sh)
		"$t" 9>&1 >"$log" 2>&1
		rc=$?
		secs=$(($(date +%s) - start))
		if [ $rc -eq 0 ]; then
			passed=$((passed + 1)); echo "PASS  $name (${secs}s)"
		elif [ $rc -eq 77 ]; then
			skipped=$((skipped + 1)); echo "SKIP  $name: $(tail -n 1 "$log")"
		else
			failed=$((failed + 1)); echo "FAIL  $name (exit $rc, log $log)"
			tail -n 25 "$log" | sed 's/^/      /'
		fi
		;;
	*)
		# shellcheck disable=SC2086 # TEST_RUNNER may be a command with its options
		${TEST_RUNNER:-} "$t" >"$log" 2>&1
		rc=$?
		secs=$(($(date +%s) - start))
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
		p=${p:-0} f=${f:-0}
		# A crash or a missing summary is a failure even if some cases passed before it.
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		passed=$((passed + p)); failed=$((failed + f))
		if [ "$f" -eq 0 ]; then
			echo "PASS  $name ($p cases, ${secs}s)"
		else
			echo "FAIL  $name ($f of $((p + f)) cases, exit $rc, log $log)"
			grep -E '^\[  (FAILED|  ERROR ) \]|error:|Sanitizer|runtime error' "$log" | head -n 20 | sed 's/^/      /'
		fi
		;;
	esac
done

if [ $skipped -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ $failed -eq 0 ]
