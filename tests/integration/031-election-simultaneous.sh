#!/bin/sh
# Three controller-capable hosts started within the same 50 ms converge on one controller, and
# stay converged.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-c controller
device 2 hub-a controller
device 3 hub-b controller
NAMES="hub-c hub-a hub-b"
with_certd $NAMES

states() { for n in $NAMES; do printf '%s=%s/%s ' "$n" "$(field $n electd state)" "$(field $n electd controller)"; done; }
agreed() {
	c=$(field hub-a electd controller)
	[ -n "$c" ] || return 1
	leaders=0
	for n in $NAMES; do
		[ "$(field $n electd controller)" = "$c" ] || return 1
		[ "$(field $n electd state)" = controller ] && leaders=$((leaders + 1))
	done
	[ $leaders -eq 1 ]
}

for round in 1 2 3 4 5; do
	for n in $NAMES; do run "$n" electd; done # three forks: well inside 50 ms
	wait_until 10 agreed || fail "round $round: $(states)"
	first=$(field hub-a electd controller)
	sleep 2 # several heartbeats later, still one controller
	agreed || fail "round $round: diverged: $(states)"
	[ "$(field hub-a electd controller)" = "$first" ] || fail "round $round: controller changed: $(states)"
	say "round $round: $(states)"
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	PIDS=""
done
echo ok
