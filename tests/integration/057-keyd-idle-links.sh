#!/bin/sh
# A host without a certificate keeps 64 idle TCP connections open to keyd on a node and on the
# controller, reopening each as soon as it is closed. The rings get through all the same: links
# we open have slots of their own, a host may hold only a few incoming ones, and a link must
# carry an authentic message within seconds. A ring counts as delivered only once the node
# confirms it.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node

say "the rogue (host 9) holds every connection it can to hub and pi2"
add_host 9
on 9 $PY "$IT_DIR/rogue.py" idle 40 "$NET.1" "$NET.2" >"$T/rogue.log" 2>&1 &
PIDS="$PIDS $!"
sleep 2

for n in hub pi2 pi3; do run_all "$n"; done
wait_until 12 same_epoch hub pi2 pi3 ||
	fail "rings not delivered: hub=$(epoch hub) pi2=$(epoch pi2) pi3=$(epoch pi3)"
say "every device holds the ring of epoch $(epoch hub)"
grep -q "pi2 confirmed its ring of epoch $(epoch hub)" "$T/hub/keyd.log" ||
	fail "hub never had pi2's confirmation"

send_msg pi3 pi2 "through the flood" | grep -q '"ok":true' || fail "pi3 cannot send to pi2"
wait_until 10 received pi2 "through the flood" || fail "pi2 did not receive from pi3"

for n in hub pi2; do
	grep -qE "refused a message from $NET.9: (Device or resource busy|Connection timed out)" \
		"$T/$n/keyd.log" || fail "$n never turned the rogue's connections away"
done
say "the rogue's connections were turned away, and the home was keyed"
echo ok
