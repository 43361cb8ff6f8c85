#!/bin/sh
# A device that is offline while the home rekeys (not the missing one) gets its ring of the new
# epoch when it comes back, and is not put out itself (SPEC 5.5). pi4 goes missing for good; pi5
# loses its network the moment the controller declares pi4 missing, so it misses the new pool's
# rings, and comes back once every other device holds one.
#
# Deterministic by its timings: pi5 is away for at most AWAY seconds, and the controller cannot
# declare a device missing sooner than timeout + (tries - 1) x (retry + timeout) + 2 x timeout
# (its own probes, then the indirect round) after it stops answering: 7.1 s with tries = 8. The
# pool's collect window (3 s) holds the rings back long enough for pi5 to be gone when they go.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/pingd-common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
device 4 pi4 node
device 5 pi5 node
NAMES="hub pi2 pi3 pi4 pi5"
AWAY=6
for n in $NAMES; do
	sed -i 's/collect_ms = 1500;/collect_ms = 3000;/' "$T/$n/iotsec.conf"
	pingd_conf "$n" "tries = 8; helpers = 3; confirmations = 2;"
done
for n in $NAMES; do run_home "$n"; done
wait_until 30 same_epoch $NAMES || fail "rings not delivered"
e1=$(epoch hub)
all_alive() { for n in pi2 pi3 pi4 pi5; do [ "$(state hub "$n")" = alive ] || return 1; done; }
wait_until 15 all_alive || fail "hub's pingd does not see every device alive: $(pingd_call hub peers)"
say "epoch $e1 everywhere; hub's pingd sees pi2..pi5 alive"

say "pi4 loses its network for good"
link_down pi4
wait_until 30 quarantined hub pi4 missing || fail "pi4 was not declared missing: $(pingd_call hub quarantine)"
link_down pi5
t_down=$(date +%s)
say "hub declared pi4 missing; pi5 loses its network during the rekey"

rekeyed() { same_epoch hub pi2 pi3 && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until "$AWAY" rekeyed || fail "hub, pi2 and pi3 did not reach a new epoch within $AWAY s: hub=$(epoch hub) pi2=$(epoch pi2) pi3=$(epoch pi3)"
e2=$(epoch hub)
# What makes this test a test: pi5 missed the rings of the new pool.
[ "$(epoch pi5)" = "$e1" ] || fail "pi5 holds epoch $(epoch pi5) before coming back: it did not miss the rekey"
link_up pi5
say "hub, pi2 and pi3 at epoch $e2 after $(($(date +%s) - t_down)) s; pi5 (at $e1) comes back"

back() { same_epoch hub pi2 pi3 pi5 && [ "$(epoch pi5)" = "$e2" ]; }
wait_until 20 back || fail "pi5 did not get its ring of epoch $e2: pi5 at $(epoch pi5), hub at $(epoch hub)"
quarantined hub pi5 && fail "pi5, offline for less than its tries, was put out: $(pingd_call hub quarantine)"
[ "$(quarantine_names hub)" = pi4 ] || fail "hub's quarantine: $(quarantine_names hub), not pi4 alone"
pi5_alive() { [ "$(state hub pi5)" = alive ]; }
wait_until 10 pi5_alive || fail "hub's pingd sees pi5 as $(state hub pi5)"
say "pi5 holds a ring of epoch $e2 and is not quarantined"

say "pi5 and pi2 talk under a key of the new epoch; pi4 is left out"
send_msg pi5 pi2 "back from the cellar" | grep -q '"ok":true' || fail "pi5 cannot send to pi2"
wait_until 5 received pi2 "back from the cellar" || fail "pi2 did not receive pi5's message"
[ "$(epoch pi4)" = "$e1" ] || fail "pi4, missing, holds epoch $(epoch pi4)"
keyd_excludes hub pi4 || fail "hub's keyd does not hold pi4 on its quarantine"
echo ok
