#!/bin/sh
# The controller is killed: the others elect a new one within the configured timeout.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-a controller
device 2 hub-b controller
device 3 pi1 node
with_certd hub-a hub-b pi1
# timeout_ms 1500, then tries 2 x try_ms 200 of discovery: 1.9 s; allow start-up and scheduling.
LIMIT_S=4

run hub-a electd
A=$LAST_PID
sleep 1
run hub-b electd
run pi1 electd
wait_until 5 follows pi1 hub-a ||
	fail "pi1 does not follow hub-a: $(field pi1 electd controller)"
[ "$(field hub-b electd controller)" = hub-a ] || fail "hub-b does not follow hub-a"

say "kill the controller hub-a"
kill "$A"
start=$(date +%s%N)
new_controller() { [ "$(field pi1 electd controller)" = hub-b ] && [ "$(field hub-b electd state)" = controller ]; }
wait_until $LIMIT_S new_controller || fail "no new controller within ${LIMIT_S}s: pi1 says '$(field pi1 electd controller)'"
ms=$((($(date +%s%N) - start) / 1000000))
say "hub-b took over after ${ms} ms"
grep -q "controller-changed\|controller hub-b" "$T/pi1/electd.log" || fail "pi1 did not log the change"

say "hub-a comes back and yields or wins by the rule, but there is one controller"
run hub-a electd
sleep 2
leaders=0
for n in hub-a hub-b; do [ "$(field $n electd state)" = controller ] && leaders=$((leaders + 1)); done
[ $leaders -eq 1 ] || fail "$leaders controllers after hub-a returned"
[ "$(field pi1 electd controller)" = "$(field hub-a electd controller)" ] || fail "pi1 and hub-a disagree"
echo ok
