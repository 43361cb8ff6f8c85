#!/bin/sh
# A node insider with four addresses of its own opens link after link to pi1, each carrying a
# session start that names pi1's own ring, so each one speaks and waits: silent links can be
# evicted, but these are authentic. One device speaks on eight incoming links at most, so the
# rest of pi1's slots stay free: a rekey reaches it, and so do its peers' messages.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
device 3 pi2 node
device 4 evil node
for i in 50 51 52 53; do ip -n "$NS_PREFIX-h4" addr add "$NET.$i/24" dev eth0; done
for n in hub pi1 pi2; do run_all "$n"; done
wait_until 20 same_epoch hub pi1 pi2 || fail "no ring"
e1=$(epoch hub)

say "evil (host 4) holds every link it can to pi1, from four addresses"
on 4 $PY "$IT_DIR/rogue.py" holdlinks "$T/evil/evil.crt" "$T/evil/evil.key" "$NET.2" \
	"$NET.50,$NET.51,$NET.52,$NET.53" 25 >"$T/evil.log" 2>&1 &
PIDS="$PIDS $!"
sleep 4
send_msg pi2 pi1 "through the crowd" | grep -q '"ok":true' || fail "pi2 cannot send to pi1"
wait_until 8 received pi1 "through the crowd" || fail "pi1 did not receive from pi2"
r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey) || fail "rekey refused: $r"
moved() { same_epoch hub pi1 pi2 && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 15 moved || fail "after the rekey: hub=$(epoch hub) pi1=$(epoch pi1) pi2=$(epoch pi2)"
say "pi1 took epoch $(epoch pi1) and its messages while evil held its links"
grep -q "evil holds 8 links already" "$T/pi1/keyd.log" ||
	fail "evil never spoke on more links than its share, so the test proves nothing"
echo ok
