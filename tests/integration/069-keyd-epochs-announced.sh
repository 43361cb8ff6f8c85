#!/bin/sh
# Insiders announce rings they do not hold, to move the home's epoch. A node announces one the
# full jump ahead of the controller's: a pool above it is one the home's devices would refuse, so
# the controller does not go by it. A controller-role device announces one a little ahead, over
# and over: the controller starts a pool above it at most once per delivery period (10 s), and
# each such pool still leaves out the devices a rekey left out. Told to the controller alone, an
# announcement counts for nothing.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
device 3 pi2 node
device 4 evil node
device 5 zz-evil controller
for n in hub pi1 pi2; do run_all "$n"; done
wait_until 20 same_epoch hub pi1 pi2 || fail "no ring"
e1=$(epoch hub)
# at E: hub and pi1 both hold epoch E.
at() { [ "$(epoch hub)" = "$1" ] && same_epoch hub pi1; }

say "a rekey that leaves pi2 out"
r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey --exclude pi2) || fail "rekey refused: $r"
e2=$((e1 + 1))
wait_until 15 at "$e2" || fail "after the rekey: hub=$(epoch hub) pi1=$(epoch pi1), not $e2"

say "evil (a node) announces the hub's epoch + 65536 while hub makes a pool"
on 4 $PY "$IT_DIR/rogue.py" ahead "$T/evil/evil.crt" "$T/evil/evil.key" "$NET.255" 14 65536 hub \
	>"$T/evil.log" 2>&1 &
EVIL=$!
PIDS="$PIDS $EVIL"
sleep 2
r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey --exclude pi2) || fail "rekey refused: $r"
wait_until 15 at $((e2 + 1)) ||
	fail "after evil's word: hub=$(epoch hub) pi1=$(epoch pi1), not $((e2 + 1))"
say "pi1 took epoch $(epoch pi1) from hub; evil's word moved nothing"

say "zz-evil (controller role) announces the hub's epoch + 100, for 14 s"
s0=$(date +%s)
on 5 $PY "$IT_DIR/rogue.py" ahead "$T/zz-evil/zz-evil.crt" "$T/zz-evil/zz-evil.key" "$NET.255" 14 \
	100 hub >"$T/zz-evil.log" 2>&1 || fail "zz-evil failed: $(cat "$T/zz-evil.log")"
secs=$(($(date +%s) - s0))
wait "$EVIL" || true
caught=$(grep -c "zz-evil holds epoch" "$T/hub/keyd.log" || true)
say "hub started $caught pools above zz-evil's in $secs s"
[ "$caught" -ge 1 ] || fail "hub never followed a controller-role device's higher epoch"
[ "$caught" -le $((secs / 10 + 1)) ] || fail "hub started $caught pools in $secs s"
wait_until 15 same_epoch hub pi1 || fail "at the end: hub=$(epoch hub) pi1=$(epoch pi1)"
[ "$(epoch pi2)" -eq "$e1" ] || fail "pi2, left out, was given epoch $(epoch pi2)"
[ "$(grep -c "gave pi2 a ring" "$T/hub/keyd.log")" -eq 1 ] ||
	fail "hub gave pi2 a ring after leaving it out"
say "pi2 kept epoch $e1 through every pool; hub and pi1 at $(epoch hub)"

say "zz-evil tells hub alone of a later epoch"
on 5 $PY "$IT_DIR/rogue.py" broadcast "$T/zz-evil/zz-evil.crt" "$T/zz-evil/zz-evil.key" "$NET.1" \
	7451 I_AM_ON_THE_NETWORK "{\"epoch\":$(($(epoch hub) + 5)),\"indices\":[0]}" 1 \
	>"$T/zz-evil2.log" 2>&1
grep -q "refused a message from $NET.5 (zz-evil): sent to this device alone" "$T/hub/keyd.log" ||
	fail "hub took an announcement told to it alone"
echo ok
