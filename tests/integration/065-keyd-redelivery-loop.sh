#!/bin/sh
# A node insider makes the controller give it its ring again and again: it announces an epoch
# it has not, confirms each delivery at once, and announces again. Every delivery costs the
# controller a ring of private-key wraps and every peer a path key stored with an fsync. A
# device gets its ring at most once per delivery period (10 s) whatever it says, and a rekey in
# the middle of the attack still reaches the honest devices.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
device 3 pi2 node
device 4 evil node
for n in hub pi1 pi2; do run_all "$n"; done
wait_until 20 same_epoch hub pi1 pi2 || fail "no ring"
e1=$(epoch hub)

say "evil (host 4) announces a lost ring and confirms every delivery, for 15 s; a rekey after 5 s"
on 4 $PY "$IT_DIR/rogue.py" ackloop "$T/evil/evil.crt" "$T/evil/evil.key" "$NET.255" 15 \
	>"$T/evil.log" 2>&1 &
EVIL=$!
PIDS="$PIDS $EVIL"
sleep 5
r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey) || fail "rekey refused: $r"
moved() { same_epoch hub pi1 pi2 && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 10 moved || fail "after the rekey: hub=$(epoch hub) pi1=$(epoch pi1) pi2=$(epoch pi2)"
wait "$EVIL" || fail "the attacker failed: $(cat "$T/evil.log")"
say "$(cat "$T/evil.log")"

# 15 s of asking: one delivery in each of the two pools, plus one 10 s after each began.
given=$(grep -c "gave evil a ring" "$T/hub/keyd.log" || true)
confirmed=$(grep -c "evil confirmed its ring" "$T/hub/keyd.log" || true)
[ "$confirmed" -ge 1 ] || fail "evil never confirmed a ring, so the test proves nothing"
[ "$given" -le 4 ] || fail "hub gave evil $given rings in 15 s"
for n in pi1 pi2; do
	stored=$(grep -c "path key for evil" "$T/$n/keyd.log" || true)
	[ "$stored" -le 4 ] || fail "$n stored $stored path keys for evil in 15 s"
done
say "hub gave evil $given rings ($confirmed confirmed) and kept keying the home"
echo ok
