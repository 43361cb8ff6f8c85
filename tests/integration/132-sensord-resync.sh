#!/bin/sh
# A kit that lost its place in the stream schedule asks its neighbours, not the controller
# (whose daemons are all stopped here): one that was off across several epochs (two-second
# epochs; its doctor chain is behind), and one whose clock says 1970. Each takes the time and the
# group key from a synchronized neighbour, never from a neighbour that is itself lost (at 1970
# too, on its own clock), and its readings open at the neighbours afterwards.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
STREAM_INTERVAL=2
sensord_home
kit 1 hub controller
kit 2 kitA node "sensors = \"room=replay:$T/room.csv pulse=replay:$T/pulse.csv\"; replay_loop = true;"
kit 3 kitB node
kit 4 kitC node "resync_tries = 2;"
write_csv "$T/room.csv" "room,20.5,C" "room,20.75,C"
write_csv "$T/pulse.csv" "pulse,66,/min" "pulse,67,/min"
doctor 5 drwho
for n in hub kitA kitB kitC; do run_kit "$n"; done
home_ready hub kitA kitB kitC
grant drwho kitA
wait_until 15 granted kitA drwho ||
	fail "kitA did not install drwho's grant: $(sstatus kitA)"
wait_until 10 opened kitB kitA room || fail "kitB does not open kitA's readings"
say "kitA has drwho's doctor stream; kitB opens kitA's readings"

# mark NAME: the length of NAME's sensord log now; since NAME MARK: what was logged after it.
mark() { wc -l <"$T/$1/sensord.log"; }
since() { tail -n "+$(($2 + 1))" "$T/$1/sensord.log"; }
# newer_from NAME SEQ: NAME opened a reading of kitA with a seq above SEQ ("": any; a restarted
# reader may hold none yet), timed within 10 s of our clock (not 1970).
newer_from() {
	readings "$1" | $PY -c 'import json, sys, time
now = time.time() * 1000
ok = [r for r in map(json.loads, sys.stdin)
      if r["device"] == "kitA" and r["seq"] > int(sys.argv[1] or 0) and abs(r["time"] - now) < 10000]
sys.exit(not ok)' "$2"
}
# resynced NAME MARK: NAME's sensord synced with a neighbour since MARK, and says synced (not
# only the status: it may say synced before it found out that it is not).
resynced() { since "$1" "$2" | grep -q "resync: synced with " && sync_is "$1" synced; }
# last_seq NAME: the highest seq of kitA's readings NAME holds, 0 when none (after a restart).
last_seq() {
	_s=$(seqs_of "$1" kitA | sort -n | tail -n 1)
	echo "${_s:-0}"
}

say "the controller's daemons stop; kitA is off for 4 epochs"
stop_device hub
stop_sensord kitA
sleep 8
ma=$(mark kitA)
sb=$(last_seq kitB)
run_sensord kitA
wait_until 20 resynced kitA "$ma" ||
	fail "kitA did not resynchronize: $(sstatus kitA)"
since kitA "$ma" | grep -q "resync needed: the saved doctor chain is more than one epoch from our clock" ||
	fail "kitA's log does not say why it resyncs: $(since kitA "$ma" | grep resync)"
since kitA "$ma" | grep -Eq "resync: synced with kit[BC]: stream epoch [0-9]+" ||
	fail "kitA's log does not name the neighbour: $(since kitA "$ma" | grep resync)"
peer=$(since kitA "$ma" | sed -n 's/.*resync: synced with \(kit[BC]\):.*/\1/p' | head -n 1)
grep -q "resync: gave kitA the time" "$T/$peer/sensord.log" || fail "$peer's log does not say it answered kitA"
wait_until 15 newer_from kitB "$sb" || fail "kitB opens no new reading of kitA: $(readings kitB | tail -n 2)"
wait_until 10 newer_from kitC "$sb" || fail "kitC opens no new reading of kitA"
say "kitA resynchronized with $peer; kitB and kitC open its readings"

say "kitC restarts with its clock at 1970 and nobody to ask: it stays on its own clock"
stop_sensord kitA
stop_sensord kitB
stop_sensord kitC
mc=$(mark kitC)
run_sensord_at kitC '@1970-01-01 00:00:00'
wait_until 20 sync_is kitC own-clock ||
	fail "kitC did not fall back to its own clock: $(sstatus kitC)"
since kitC "$mc" | grep -q "resync needed: the clock is not set" || fail "kitC's log: $(since kitC "$mc" | grep -i resync)"
since kitC "$mc" | grep -q "resync: no neighbour answered 2 requests: keeping our own clock" ||
	fail "kitC's log does not say it gave up: $(since kitC "$mc" | grep -i resync)"

say "kitB comes back; kitA restarts at 1970 too, and asks"
run_sensord kitB
wait_until 20 sensord_ready kitB || fail "kitB not ready: $(sstatus kitB)"
ma=$(mark kitA)
mb=$(mark kitB)
mc=$(mark kitC)
sb=$(last_seq kitB)
run_sensord_at kitA '@1970-01-01 00:00:00'
wait_until 20 resynced kitA "$ma" ||
	fail "kitA at 1970 did not resynchronize: $(sstatus kitA)"
since kitA "$ma" | grep -q "resync needed: the clock is not set" || fail "kitA's log: $(since kitA "$ma" | grep -i resync)"
since kitA "$ma" | grep -q "resync: synced with kitB:" || fail "kitA did not sync with kitB: $(since kitA "$ma" | grep -i resync)"
since kitB "$mb" | grep -q "resync: gave kitA the time" || fail "kitB's log does not say it answered kitA"
# kitC was asked, and said it is lost: it was not chosen.
since kitC "$mc" | grep -q "resync: kitA asks; we are not synced" ||
	fail "kitC did not answer kitA (the choice proved nothing): $(since kitC "$mc" | grep -i resync)"
since kitC "$mc" | grep -q "gave kitA" && fail "kitC, on its own clock at 1970, gave kitA its state"
since kitA "$ma" | grep -q "synced with kitC" && fail "kitA took kitC's state"
# Its clock still says 1970: the broker's certificate must be judged on the home's time.
connected() { [ "$(sfield "$1" broker)" = connected ]; }
wait_until 20 connected kitA ||
	fail "kitA at 1970, resynchronized, does not reach the broker: $(since kitA "$ma" | grep -i "mqtt\|broker" | tail -n 3)"
wait_until 15 newer_from kitB "$sb" || fail "kitB opens no new reading of kitA (timed now): $(readings kitB | tail -n 2)"
[ "$(sfield kitA sync)" = synced ] || fail "kitA: $(sstatus kitA)"
say "kitA at 1970 synced with kitB, not kitC; kitB opens its readings, timed now"
echo ok
