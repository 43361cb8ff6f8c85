#!/bin/sh
# Neighbour resync (SPEC 8): a kit whose sensord was off across several epochs finds its saved
# doctor chain far behind its clock; it publishes nothing and asks its neighbours; a synced one
# gives it the time, the schedule, the epoch and the group key (wrapped to it); the kit moves its
# doctor chain on and publishes again. With no neighbour to answer it keeps its own clock after
# sensord.resync_tries requests, and says so. Epochs last two seconds here.
# (A kit at 1970 is the other case: 132.)
. "$(dirname "$0")/common.sh"
IT_DIR=$(dirname "$0")
. "$IT_DIR/mqtt-common.sh"
need_netns
make_home smith
broker_host 1
device 2 pi2 controller
device 3 pi3 node
device 4 kit node
NAMES="pi2 pi3 kit"
broker_start
add_host 5
iotsec-doctor init --dir "$T/doc1" --name doc1 --home smith >"$T/doc1.init" 2>&1 ||
	fail "doctor init: $(cat "$T/doc1.init")"
iotsec-pki enrol --dir "$T/ca" --device doc1 --role doctor --csr "$T/doc1/doctor.csr" \
	--out "$T/doc1/out" >"$T/doc1.enrol" 2>&1 || fail "enrol doc1: $(cat "$T/doc1.enrol")"
cp "$T/doc1/out/doc1.crt" "$T/doc1/doctor.crt"
cp "$T/doc1/out/ca.crt" "$T/doc1/ca.crt"
cp "$T/doc1/doctor.crt" "$T/doc1/doc1.crt"
cp "$T/doc1/doctor.key" "$T/doc1/doc1.key"
eval "HOST_doc1=5" # as device() names a host: host_of reads it

for n in $NAMES; do
	printf 'room,21.5,C\nroom,21.6,C\n' >"$T/$n/room.csv"
	printf 'pulse,70,/min\npulse,71,/min\n' >"$T/$n/pulse.csv"
	cat >>"$T/$n/iotsec.conf" <<CONF
stream = { interval_s = 2; };
sensord = { broker = "$BROKER_IP"; interval_ms = 300;
  sensors = "replay:$T/$n/room.csv pulse=replay:$T/$n/pulse.csv";
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
# is NAME KEY VALUE / above NAME KEY N: a status field now (for wait_until, which runs them
# again).
is() { [ "$(sfield "$1" "$2")" = "$3" ]; }
above() { [ "$(sfield "$1" "$2")" -gt "$3" ]; }
keyed() { [ "$(sfield "$1" sync)" = synced ] && [ "$(sfield "$1" group_start)" -gt 0 ]; }
for n in $NAMES; do wait_until 20 keyed "$n" || fail "$n's sensord has no group stream"; done

say "doc1 grants the kit a doctor stream"
iotsec-doctor -c "$T/kit/iotsec.conf" grant --dir "$T/doc1" --kit kit --kit-cert "$T/kit/kit.crt" \
	--out "$T/grant" >"$T/grant.log" 2>&1 || fail "grant: $(cat "$T/grant.log")"
mqtt_pub doc1 -q 1 -r -t iotsec/smith/doc1/grant/kit -f "$T/grant" || fail "doc1 cannot publish"
wait_until 10 is kit doctor doc1 || fail "the kit did not install the grant"

# near A B: epochs A and B differ by at most one (a boundary may pass between two questions).
near() { [ "$1" -ge $(($2 - 1)) ] && [ "$1" -le $(($2 + 1)) ]; }

say "the kit is off for four epochs: its doctor chain is behind; it asks its neighbours"
eval "stop \$SENSORD_kit"
sleep 8
run kit sensord
eval "SENSORD_kit=\$LAST_PID"
wait_until 10 grep -q "resync needed: the saved doctor chain" "$T/kit/sensord.log" ||
	fail "the kit does not see its chain is behind"
wait_until 20 grep -q "resync: synced with" "$T/kit/sensord.log" || fail "the kit did not resync"
say "$(grep -m1 'resync: synced with' "$T/kit/sensord.log" | sed 's/.*resync: //')"
wait_until 5 is kit sync synced || fail "kit's status: sync $(sfield kit sync)"
near "$(sfield kit epoch)" "$(sfield pi2 epoch)" ||
	fail "kit's epoch $(sfield kit epoch), the home's $(sfield pi2 epoch)"
[ "$(sfield kit pool)" = "$(sfield pi2 pool)" ] || fail "kit's pool $(sfield kit pool), the home's $(sfield pi2 pool)"
grep -q "resync: gave kit the time" "$T/pi2/sensord.log" "$T/pi3/sensord.log" ||
	fail "no neighbour says it answered"
published=$(sfield kit published)
wait_until 10 above kit published "$published" || fail "the kit does not publish again"
# The doctor chain the kit saved is the home's epoch now, not the one it stopped at.
saved() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["doctor"]["epoch"])' \
	"$T/kit/state/sensord/sensord.state"; }
near "$(saved)" "$(sfield pi2 epoch)" || fail "the kit's doctor chain is at $(saved), the home at $(sfield pi2 epoch)"

say "no neighbour answers: the kit keeps its own clock"
eval "stop \$SENSORD_pi2"
eval "stop \$SENSORD_pi3"
eval "stop \$SENSORD_kit"
sleep 8
run kit sensord
wait_until 20 grep -q "keeping our own clock" "$T/kit/sensord.log" ||
	fail "the kit did not fall back to its own clock"
[ "$(sfield kit sync)" = own-clock ] || fail "kit's status: sync $(sfield kit sync)"
published=$(sfield kit published)
wait_until 10 above kit published "$published" || fail "the kit does not publish on its own clock"
