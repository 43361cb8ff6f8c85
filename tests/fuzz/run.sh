#!/bin/sh
# make fuzz: run each libFuzzer target for FUZZ_SECONDS on a copy of its seed corpus.
# Fails when any target finds a crash, leak or sanitizer report.
set -u
secs=${FUZZ_SECONDS:-30}
status=0
for f in "$@"; do
	name=$(basename "$f")
	seeds=tests/fuzz/corpus/${name#fuzz_}
	work=build-fuzz/corpus/${name#fuzz_}
	mkdir -p "$work" build-fuzz/artifacts
	[ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null
	echo "== $name for ${secs}s"
	if "$f" -max_total_time="$secs" -max_len=20000 -print_final_stats=1 \
		-artifact_prefix=build-fuzz/artifacts/"$name"- "$work" >build-fuzz/"$name".log 2>&1; then
		grep -E '^stat::number_of_executed_units' build-fuzz/"$name".log || true
		echo "ok: $name found nothing"
	else
		status=1
		echo "FAIL: $name (see build-fuzz/$name.log)"
		grep -E 'ERROR|SUMMARY|Test unit written' build-fuzz/"$name".log | head -n 10
	fi
done
exit $status
