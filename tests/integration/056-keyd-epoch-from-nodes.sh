#!/bin/sh
# An enrolled node that announces an epoch at the top of the counter does not steer the pool:
# the controller numbers epochs from what devices that may lead say, so keying goes on.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node

say "pi7, a genuine node (host 7), announces epoch 4294967295"
iotsec-pki enrol --dir "$T/ca" --device pi7 --role node --out "$T/pi7" >/dev/null 2>&1
add_host 7
on 7 python3 "$IT_DIR/announce.py" "$T/pi7/pi7.crt" "$T/pi7/pi7.key" pi7 testhome "$NET.255" \
	'{"epoch":4294967295,"indices":[0]}' 30 >"$T/pi7.log" 2>&1 &
PIDS="$PIDS $!"
sleep 1

for n in hub pi2; do run_all "$n"; done
wait_until 20 same_epoch hub pi2 || fail "no ring: hub $(epoch hub), pi2 $(epoch pi2)"
[ "$(epoch hub)" = 1 ] || fail "the pool's epoch is $(epoch hub), want 1"
ctl "$T/hub/run/keyd.sock" '{"v":1,"verb":"peers"}' | grep -q '"name":"pi7"' ||
	fail "hub never heard pi7, so the test proves nothing: $(cat "$T/pi7.log")"
say "hub heard pi7 and still keyed the home at epoch 1"
echo ok
