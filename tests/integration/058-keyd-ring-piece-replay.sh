#!/bin/sh
# A ring piece captured on its way from the controller to pi2, replayed to pi3 while pi3 takes
# in its own ring, means nothing there: every unicast message names its recipient under the
# signature, and a ring is taken in per link, so pi3 refuses the piece and its own ring, on its
# own link, arrives whole.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
add_host 9

say "a sniffer at pi2 waits for a CLIENT_RING_KEYS from hub"
on 2 $PY "$IT_DIR/rogue.py" sniff eth0 "$NET.1" 7451 CLIENT_RING_KEYS "$T/piece" 30 \
	>"$T/sniff.log" 2>&1 &
PIDS="$PIDS $!"
sleep 0.5
for n in hub pi2; do run_all "$n"; done
wait_until 15 test -s "$T/piece" || fail "no ring piece captured: $(cat "$T/sniff.log")"
$PY -c 'import sys; sys.path.insert(0, sys.argv[1]); from envelope import open_signed
m = open_signed(open(sys.argv[2], "rb").read()[4:]); assert m["to"] == "pi2", m["to"]' \
	"$IT_DIR" "$T/piece" || fail "the captured piece is not for pi2"

say "host 9 replays it to pi3 every 50 ms while pi3 starts and takes its own ring"
on 9 $PY "$IT_DIR/rogue.py" replay "$T/piece" "$NET.3" 7451 15 >"$T/replay.log" 2>&1 &
PIDS="$PIDS $!"
sleep 0.5
run_all pi3
wait_until 12 same_epoch hub pi2 pi3 ||
	fail "pi3 has no ring: hub=$(epoch hub) pi2=$(epoch pi2) pi3=$(epoch pi3)"
grep -q "refused a message from $NET.9: addressed to another device" "$T/pi3/keyd.log" ||
	fail "pi3 did not refuse the replayed piece"
# Signed by hub, sent by host 9: not counted against hub.
blamed=$(ctl "$T/pi3/run/keyd/keyd.sock" '{"v":1,"verb":"status"}' |
	json_get '["refused_by"].get("hub", 0)')
[ "$blamed" -eq 0 ] || fail "pi3 counts $blamed refusals against hub for host 9's replays"
grep -q "refused a ring piece" "$T/pi3/keyd.log" && fail "pi3's own ring was disturbed"
say "pi3 refused the piece meant for pi2 and holds its ring of epoch $(epoch pi3)"
echo ok
