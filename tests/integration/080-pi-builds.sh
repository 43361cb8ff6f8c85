#!/bin/sh
# The Raspberry Pi builds: every program and unit test built with Debian's cross compilers for
# arm64 (64-bit Raspberry Pi OS) and armhf (32-bit), but the relay and the doctor's tool, which
# no Pi runs (nor their pages), each program ARM code of that kind that
# starts under qemu-user, and every unit test passing under qemu-user. Objects stay in
# build-TRIPLET/, so a second run rebuilds nothing; the two unit runs go side by side, one core
# each. The sanitizer run skips this: the Pi builds carry no sanitizers, and the plain run of the
# same commit has built and tested them.
. "$(dirname "$0")/common.sh"
if [ "${SANITIZE:-0}" = 1 ]; then
	echo "skipped under SANITIZE=1: the Pi builds have no sanitizers; the plain make check runs them"
	exit 77
fi
ROOT=$(cd "$IT_DIR/../.." && pwd)
TRIPLETS="aarch64-linux-gnu arm-linux-gnueabihf"

# Not root and the packages missing: deps.sh names the apt-get lines, and there is nothing to test.
if [ "$(id -u)" -ne 0 ] && ! "$ROOT/scripts/deps.sh" cross >"$T/deps.err" 2>&1; then
	cat "$T/deps.err"
	echo "skipped: the cross compilers and ARM -dev packages are missing (root installs them; see above)"
	exit 77
fi

# A make of our own: not the -j, jobserver or variables of the make check that runs us, nor its
# (native) programs.
pimake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u IOTSEC_BIN make -C "$ROOT" --no-print-directory -j2 "$@"
}

for t in $TRIPLETS; do
	say "build for $t"
	# What a build of an older tree left there, from before CROSS builds left the relay and the
	# doctor's tool out: gone, so that what is there below is this build's.
	rm -f "$ROOT/build-$t/bin/iotsec-relayd" "$ROOT/build-$t/bin/iotsec-doctor" \
		"$ROOT/build-$t/man/iotsec-relayd.8" "$ROOT/build-$t/man/iotsec-doctor.1"
	start=$(date +%s)
	pimake CROSS="$t" all >"$T/build-$t.log" 2>&1 || { tail -n 30 "$T/build-$t.log"; fail "make CROSS=$t"; }
	echo "built in $(($(date +%s) - start)) s"
	case $t in
	aarch64-*) want="ELF 64-bit LSB .*ARM aarch64" qemu=qemu-aarch64 ;;
	arm-*) want="ELF 32-bit LSB .*ARM, EABI5" qemu=qemu-arm ;;
	esac
	n=0
	for p in "$ROOT/build-$t/bin/"*; do
		n=$((n + 1))
		file -b "$p" | grep -q "$want" || fail "$p is not what a $t Pi runs: $(file -b "$p")"
		# armhf is the hard-float ABI: arguments in VFP registers, as Raspberry Pi OS has it.
		case $t in
		arm-*)
			readelf -A "$p" | grep -q "Tag_ABI_VFP_args: VFP registers" ||
				fail "$p is not hard-float: $(readelf -A "$p" | grep VFP)"
			;;
		esac
		# Every program loads its libraries and runs its first lines on the emulated CPU.
		out=$("$qemu" "$p" --version 2>&1) || fail "$qemu ${p##*/} --version: $out"
		echo "$out" | grep -q "(iotsec)" || fail "${p##*/} --version says: $out"
	done
	# Every daemon (a folder of daemons/ with a main.c) but the relay, iotsec-pki and iotsecctl:
	# the relay and the doctor's tool run in the cloud and on the doctor's machine, never on a
	# Pi, and a CROSS build leaves them out (their libraries, libmicrohttpd, libpq and libcurl,
	# need not exist for the Pi's architecture).
	programs=$(($(ls "$ROOT"/daemons/*/main.c | grep -vc '/relayd/main.c$') + 2))
	[ $n -eq $programs ] || fail "$n programs in build-$t/bin, not $programs: $(ls "$ROOT/build-$t/bin")"
	for p in iotsec-relayd iotsec-doctor; do
		[ ! -e "$ROOT/build-$t/bin/$p" ] || fail "a CROSS build made $p"
	done
	for f in man/iotsec-relayd.8 man/iotsec-doctor.1; do
		[ ! -e "$ROOT/build-$t/$f" ] || fail "a CROSS build made $f"
	done
	echo "$n programs: $want, and each says its --version under $qemu"
done

say "unit tests under qemu-user, both at once"
# One test home for both: whichever build gets there first makes it (its dozen RSA keys take
# a minute under qemu-arm), and the files are the same on either.
mkdir "$T/fixture"
start=$(date +%s)
set --
for t in $TRIPLETS; do
	IOTSEC_FIXTURE_CACHE=$T/fixture pimake CROSS="$t" unit >"$T/unit-$t.log" 2>&1 &
	set -- "$@" "$t:$!"
done
bad=""
for job in "$@"; do
	t=${job%:*}
	st=0
	wait "${job##*:}" || st=$?
	# tests/run.sh's own line: "N passed, N failed"; nothing may fail or be skipped.
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$T/unit-$t.log" | tail -n 1)
	echo "$t: ${summary:-no summary} (exit $st)"
	grep -E '^(PASS|FAIL|SKIP) ' "$T/unit-$t.log" | sed 's/^/  /' || true
	case $summary in
	*" passed, 0 failed") [ $st -eq 0 ] && [ "${summary%% *}" -gt 0 ] || bad="$bad $t" ;;
	*) bad="$bad $t" ;;
	esac
done
echo "unit tests: $(($(date +%s) - start)) s"
if [ -n "$bad" ]; then
	for t in $bad; do
		printf -- '--- make CROSS=%s unit (logs in build-%s/test-logs)\n' "$t" "$t"
		grep -v -E '^(aarch64|arm)-linux-gnu[a-z]*-(gcc|ar) ' "$T/unit-$t.log" | tail -n 40
	done
	fail "unit tests under qemu-user failed for:$bad"
fi
echo ok
