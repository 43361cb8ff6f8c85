#!/bin/sh
# A message is for the device it names. When another enrolled device takes that device's
# address, it refuses what comes for the other (every unicast message names its recipient under
# the signature), so nothing meant for one device reaches another.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
for n in hub pi2 pi3; do run_all "$n"; done
wait_until 20 same_epoch hub pi2 pi3 || fail "rings not delivered"

say "hub and pi2 exchange a message"
send_msg hub pi2 "before" | grep -q '"ok":true' || fail "hub cannot send to pi2"
wait_until 5 received pi2 "before" || fail "pi2 did not receive"

say "pi2 goes away and pi3 takes its address"
for p in $(ip netns pids "$NS_PREFIX-h2"); do kill "$p"; done
ip -n "$NS_PREFIX-h2" addr del "$NET.2/24" dev eth0
ip -n "$NS_PREFIX-h3" addr add "$NET.2/24" dev eth0
ip -n "$NS_PREFIX-h1" neigh flush all

say "hub sends to pi2: pi3 refuses a session addressed to pi2"
send_msg hub pi2 "for pi2 only" >/dev/null
refused() {
	grep -q "refused a message from $NET.1: addressed to another device" "$T/pi3/keyd.log"
}
wait_until 5 refused || fail "pi3 did not refuse the message addressed to pi2"
sleep 1
if received pi3 "for pi2 only"; then fail "pi3 received what was meant for pi2"; fi
grep -q "sent .* to pi3" "$T/hub/keyd.log" && fail "hub sent to pi3"
echo ok
