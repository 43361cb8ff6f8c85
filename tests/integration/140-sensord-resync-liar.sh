#!/bin/sh
# A kit at 1970 asks its neighbours for the time (resync.h); one of them is an enrolled device gone
# bad that lies. It says it is synced far ahead (the highest epoch used to win the choice), or it
# says the epoch the others say and then sends a state whose time is years ahead: under a schedule
# of its own making that agrees with it, or under ours with an epoch its answer never announced.
# Taken, any of these moves the kit's clock and chains years on (the doctor chain for good, its
# older keys wiped). The kit must sync with an honest neighbour every time, refusing the liar's
# state when it was asked for one. (hub and kitB are the honest neighbours.)
. "$(dirname "$0")/common.sh"
. "$IT_DIR/sensord-common.sh"
need_netns
sensord_home
kit 1 hub controller
kit 2 kitA node "resync_ms = 2000;" # every answer heard before it chooses
kit 3 kitB node "sensors = \"room=replay:$T/room.csv\"; replay_loop = true;"
device 4 liar node
write_csv "$T/room.csv" "room,20.5,C" "room,20.75,C"
for n in hub kitA kitB; do run_kit "$n"; done
home_ready hub kitA kitB
PORT=7453
AHEAD=100000 # epochs of an hour: eleven years

mark() { wc -l <"$T/$1/sensord.log"; }
since() { tail -n "+$(($2 + 1))" "$T/$1/sensord.log"; }
good_epoch=$(sfield kitB epoch)

# against MODE: kitA restarts at 1970 with the liar in MODE answering it; it must sync with an
# honest neighbour, at the home's epoch. In the modes whose answer is in range the liar must have
# been asked for its state (else nothing was proven).
against() {
	stop_sensord kitA
	: >"$T/liar-$1.log"
	# Not through `on`: a function in the background is a subshell, and killing it would leave
	# this liar answering the next round. ip netns exec execs the liar itself.
	ip netns exec "$NS_PREFIX-h4" $PY "$IT_DIR/resync_liar.py" "$T/liar/liar.crt" "$T/liar/liar.key" "$T/kitA/kitA.crt" \
		"$PORT" "$1" "$AHEAD" "$STREAM_START" "$STREAM_INTERVAL" 25 >"$T/liar-$1.log" 2>&1 &
	_liar=$!
	PIDS="$PIDS $_liar"
	sleep 0.5
	ma=$(mark kitA)
	run_sensord_at kitA '@1970-01-01 00:00:00'
	wait_until 20 sync_is kitA synced || fail "$1: kitA did not resynchronize: $(sstatus kitA)"
	grep -q "answered kitA" "$T/liar-$1.log" || fail "$1: the liar never answered: $(cat "$T/liar-$1.log")"
	since kitA "$ma" | grep -q "synced with liar" &&
		fail "$1: kitA took the liar's state: $(since kitA "$ma" | grep resync)"
	since kitA "$ma" | grep -Eq "resync: synced with (hub|kitB):" ||
		fail "$1: kitA did not sync with an honest neighbour: $(since kitA "$ma" | grep resync)"
	e=$(sfield kitA epoch)
	[ "$e" -ge "$good_epoch" ] && [ "$e" -le $((good_epoch + 1)) ] ||
		fail "$1: kitA is at epoch $e, the home at $good_epoch"
	[ "$1" = far ] || wait_until 5 grep -q "chosen: sent a state" "$T/liar-$1.log" ||
		fail "$1: the liar was not asked for its state (nothing was proven): $(cat "$T/liar-$1.log")"
	kill "$_liar" 2>/dev/null || true
	wait "$_liar" 2>/dev/null || true
}

say "the liar announces epoch $AHEAD on: it is never chosen"
against far
grep -q "chosen: sent a state" "$T/liar-far.log" &&
	fail "the liar announcing a far epoch was asked for its state: $(cat "$T/liar-far.log")"
say "kitA synced with an honest neighbour at epoch $(sfield kitA epoch)"

say "the liar announces the next epoch, then sends a time $AHEAD epochs on under its own schedule"
against schedule
grep -q "refused a message from .* (liar)" "$T/kitA/sensord.log" ||
	fail "kitA does not say it refused the liar's state"
say "its state refused; kitA synced with an honest neighbour"

say "the liar announces the next epoch, then sends a state $AHEAD epochs on under our schedule"
against rpa
say "its state refused; kitA synced with an honest neighbour"
echo ok
