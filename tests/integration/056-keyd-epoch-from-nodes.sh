#!/bin/sh
# Enrolled devices that announce an epoch at the top of the counter do not steer the pool, not
# even one with a controller certificate (it could otherwise stop all keying: no epoch follows
# 2^32-1): the controller believes an announced epoch only a bounded step above its own.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node

for rogue in pi7:node:7 hub9:controller:8; do
	name=${rogue%%:*} role=${rogue#*:} host=${rogue##*:}
	role=${role%:*}
	say "$name, a genuine $role (host $host), announces epoch 4294967295"
	iotsec-pki enrol --dir "$T/ca" --device "$name" --role "$role" --out "$T/$name" >/dev/null 2>&1
	add_host "$host"
	on "$host" $PY "$IT_DIR/rogue.py" broadcast "$T/$name/$name.crt" "$T/$name/$name.key" \
		"$NET.255" 7451 I_AM_ON_THE_NETWORK '{"epoch":4294967295,"indices":[0]}' 30 \
		>"$T/$name.log" 2>&1 &
	PIDS="$PIDS $!"
done
sleep 1

for n in hub pi2; do run_all "$n"; done
wait_until 20 same_epoch hub pi2 || fail "no ring: hub $(epoch hub), pi2 $(epoch pi2)"
[ "$(epoch hub)" = 1 ] || fail "the pool's epoch is $(epoch hub), want 1"
for name in pi7 hub9; do
	ctl "$T/hub/run/keyd/keyd.sock" '{"v":1,"verb":"peers"}' | grep -q "\"name\":\"$name\"" ||
		fail "hub never heard $name, so the test proves nothing: $(cat "$T/$name.log")"
done
say "hub heard pi7 and hub9 and still keyed the home at epoch 1"
echo ok
