#!/bin/sh
# An insider with a controller certificate and the smallest name takes the home (its first
# change is allowed) and gives every device a ring of epoch 2^32-1, the top of the counter,
# where no pool could follow. No device takes it: a ring may be at most a bounded step ahead of
# the epochs a device has held. When the insider goes, the home keys itself again.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
iotsec-pki enrol --dir "$T/ca" --device a-rogue --role controller --out "$T/a-rogue" >/dev/null 2>&1
add_host 3
run_all hub
run_all pi1
wait_until 20 same_epoch hub pi1 || fail "no ring"
e1=$(epoch hub)

say "a-rogue (host 3) plays controller for 6 s and hands out epoch 4294967295"
on 3 $PY "$IT_DIR/rogue.py" poison "$T/a-rogue/a-rogue.crt" "$T/a-rogue/a-rogue.key" "$NET.255" \
	6 4294967295 >"$T/rogue.log" 2>&1
grep -q "^.* to pi1 -> " "$T/rogue.log" || fail "the rogue never reached pi1: $(cat "$T/rogue.log")"
for n in hub pi1; do
	grep -q "refused a message from $NET.3 (a-rogue): of another key pool epoch" "$T/$n/keyd.log" ||
		fail "$n did not refuse the ring of epoch 4294967295"
done
say "hub and pi1 refused the ring of epoch 4294967295"

back() { same_epoch hub pi1 && [ "$(epoch hub)" -gt "$e1" ] && [ "$(epoch hub)" -lt 1000 ]; }
wait_until 20 back || fail "the home did not key itself again: hub=$(epoch hub) pi1=$(epoch pi1)"
say "the home went on at epoch $(epoch hub)"
send_msg pi1 hub "after the rogue" | grep -q '"ok":true' || fail "pi1 cannot send to hub"
wait_until 5 received hub "after the rogue" || fail "hub did not receive"
echo ok
