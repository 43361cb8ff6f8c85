#!/bin/sh
# A device whose certificate has the node role never becomes controller, however long no
# controller answers; it follows one as soon as one appears.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 pi1 node
device 2 pi2 node
device 3 hub controller
with_certd pi1 pi2 hub

run pi1 electd
run pi2 electd
sleep 4 # many discovery rounds of 2 x 200 ms
for n in pi1 pi2; do
	s=$(field $n electd state)
	[ "$s" = discovering ] || fail "$n is '$s' with no controller around"
done
if grep -q -- "-> controller" "$T/pi1/electd.log" "$T/pi2/electd.log"; then
	fail "a node announced itself"
fi

run hub electd
wait_until 5 follows pi1 hub ||
	fail "pi1 does not follow hub"
[ "$(field pi2 electd controller)" = hub ] || fail "pi2 does not follow hub"
[ "$(field pi1 electd state)" = node ] || fail "pi1 is not a node"
echo ok
