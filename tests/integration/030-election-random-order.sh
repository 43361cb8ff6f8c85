#!/bin/sh
# Three hosts started in random order elect exactly one controller and all agree (20 rounds).
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-a controller
device 2 hub-b controller
device 3 pi1 node
NAMES="hub-a hub-b pi1"
with_certd $NAMES

# agreed: exactly one device is controller, and every device names it.
agreed() {
	leader=""
	for n in $NAMES; do
		[ "$(field "$n" electd state)" = controller ] && leader="$leader$n "
	done
	[ "$(echo $leader | wc -w)" -eq 1 ] || return 1
	for n in $NAMES; do
		[ "$(field "$n" electd controller)" = "${leader% }" ] || return 1
	done
}

round=1
while [ $round -le 20 ]; do
	order=$(printf '%s\n' $NAMES | shuf | tr '\n' ' ')
	for n in $order; do
		run "$n" electd
		sleep "0.$(shuf -i 0-3 -n 1)"
	done
	wait_until 10 agreed || fail "round $round ($order): no agreement: $(for n in $NAMES; do echo "$n=$(field $n electd state)/$(field $n electd controller)"; done)"
	leader=$(field pi1 electd controller)
	say "round $round: started $order-> controller $leader"
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	PIDS=""
	round=$((round + 1))
done
echo ok
