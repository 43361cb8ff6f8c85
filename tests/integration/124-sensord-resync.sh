#!/bin/sh
# Neighbour resync (SPEC 8): a kit whose sensord starts with its clock back at 1970 (faketime)
# publishes nothing and asks its neighbours; a synced one gives it the time, the schedule, the
# epoch and the group key (wrapped to it), and the kit takes up the home's epoch. With no
# neighbour to answer it keeps its own clock after sensord.resync_tries requests, and says so.
. "$(dirname "$0")/common.sh"
IT_DIR=$(dirname "$0")
. "$IT_DIR/mqtt-common.sh"
need_netns
command -v faketime >/dev/null || fail "no faketime (scripts/deps.sh test installs it)"
make_home smith
broker_host 1
device 2 pi2 controller
device 3 pi3 node
device 4 kit node
NAMES="pi2 pi3 kit"
broker_start
for n in $NAMES; do
	printf 'room,21.5,C\nroom,21.6,C\n' >"$T/$n/room.csv"
	cat >>"$T/$n/iotsec.conf" <<CONF
sensord = { broker = "$BROKER_IP"; interval_ms = 300; sensors = "replay:$T/$n/room.csv";
  replay_loop = true; resync_ms = 300; resync_tries = 3; };
CONF
done
for n in $NAMES; do
	run_all "$n"
	run "$n" sensord
	eval "SENSORD_$n=\$LAST_PID"
done
wait_until 30 same_epoch $NAMES || fail "rings not delivered"

sfield() {
	ctl "$T/$1/run/sensord/sensord.sock" '{"v":1,"verb":"status"}' 2>/dev/null |
		json_get "[\"$2\"]" 2>/dev/null || true
}
keyed() { [ "$(sfield "$1" sync)" = synced ] && [ "$(sfield "$1" group_start)" -gt 0 ]; }
for n in $NAMES; do wait_until 20 keyed "$n" || fail "$n's sensord has no group stream"; done
epoch=$(sfield pi2 epoch)
pool=$(sfield pi2 pool)

# at_1970 NAME: NAME's sensord again, its wall clock at 1970 (monotonic time untouched).
at_1970() {
	eval "stop \$SENSORD_$1"
	ip netns exec "$NS_PREFIX-h$(host_of "$1")" env FAKETIME_DONT_FAKE_MONOTONIC=1 \
		faketime '1970-01-01 00:00:00' "$IOTSEC_BIN/iotsec-sensord" -c "$T/$1/iotsec.conf" -v \
		>>"$T/$1/sensord.log" 2>&1 &
	PIDS="$PIDS $!"
	DAEMONS="$DAEMONS $!"
	STARTED="$STARTED $!:$1/sensord"
	eval "SENSORD_$1=\$!"
}

say "the kit's sensord starts at 1970: it asks its neighbours"
at_1970 kit
wait_until 10 grep -q "resync needed: the clock is not set" "$T/kit/sensord.log" ||
	fail "the kit does not see that its clock is unset"
wait_until 20 grep -q "resync: synced with" "$T/kit/sensord.log" || fail "the kit did not resync"
say "$(grep -m1 'resync: synced with' "$T/kit/sensord.log" | sed 's/.*resync: //')"
[ "$(sfield kit sync)" = synced ] || fail "kit's status: sync $(sfield kit sync)"
[ "$(sfield kit epoch)" = "$epoch" ] || [ "$(sfield kit epoch)" = "$(sfield pi2 epoch)" ] ||
	fail "kit's epoch $(sfield kit epoch), the home's $(sfield pi2 epoch)"
[ "$(sfield kit pool)" = "$pool" ] || fail "kit's pool $(sfield kit pool), the home's $pool"
grep -q "resync: gave kit the time" "$T/pi2/sensord.log" "$T/pi3/sensord.log" ||
	fail "no neighbour says it answered"

say "no neighbour answers: the kit keeps its own clock"
eval "stop \$SENSORD_pi2"
eval "stop \$SENSORD_pi3"
before=$(grep -c "keeping our own clock" "$T/kit/sensord.log" || true)
at_1970 kit
wait_until 20 test "$(grep -c "keeping our own clock" "$T/kit/sensord.log")" -gt "$before" ||
	fail "the kit did not fall back to its own clock"
[ "$(sfield kit sync)" = own-clock ] || fail "kit's status: sync $(sfield kit sync)"
