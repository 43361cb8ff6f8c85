#!/bin/sh
# The controller dies during the rekey that follows an eviction (SPEC 5.5): the next controller
# completes it. hub1 (controller) declares pi5 missing and starts a pool without it; the
# quarantine list reaches hub2 (controller-capable); hub1 dies inside the pool's collect window
# (6 s here), before any ring of the new pool is out. hub2 becomes controller and its keyd makes
# a pool without pi5: hub2, pi3 and pi4 reach a common new epoch, pi5 stays quarantined.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/pingd-common.sh"
need_netns
make_home
device 1 hub1 controller
device 2 hub2 controller
device 3 pi3 node
device 4 pi4 node
device 5 pi5 node
NAMES="hub1 hub2 pi3 pi4 pi5"
for n in $NAMES; do
	sed -i 's/collect_ms = 1500;/collect_ms = 6000;/' "$T/$n/iotsec.conf"
	pingd_conf "$n" "helpers = 3; confirmations = 2;"
done
# hub1 first, so that it is the controller the others find.
run_home hub1
wait_until 10 follows hub1 hub1 || fail "hub1 did not become controller"
for n in hub2 pi3 pi4 pi5; do run_home "$n"; done
wait_until 40 same_epoch $NAMES || fail "rings not delivered"
for n in $NAMES; do follows "$n" hub1 || fail "$n follows $(field "$n" electd controller), not hub1"; done
e1=$(epoch hub1)
all_alive() { for n in hub2 pi3 pi4 pi5; do [ "$(state hub1 "$n")" = alive ] || return 1; done; }
wait_until 15 all_alive || fail "hub1's pingd does not see every device alive: $(pingd_call hub1 peers)"
say "hub1 is controller; epoch $e1 everywhere"

say "pi5 loses its network for good"
link_down pi5
wait_until 30 quarantined hub1 pi5 missing || fail "hub1 did not declare pi5 missing: $(pingd_call hub1 quarantine)"
t_declared=$(date +%s)
wait_until 3 quarantined hub2 pi5 missing || fail "hub2 did not take hub1's quarantine list: $(pingd_call hub2 quarantine)"
say "hub1 declared pi5 missing and started a pool without it; hub2 holds the list"

say "hub1 dies in the middle of that rekey"
link_down hub1
for p in $(pids_of hub1); do kill "$p" 2>/dev/null || true; done
# What makes this test a test: the pool hub1 started gave nobody a ring.
for n in hub2 pi3 pi4; do
	[ "$(epoch "$n")" = "$e1" ] || fail "$n holds epoch $(epoch "$n"): the rekey ended before hub1 died ($(($(date +%s) - t_declared)) s after the eviction)"
done

wait_until 15 follows hub2 hub2 || fail "hub2 did not take over: it follows $(field hub2 electd controller)"
say "hub2 is the controller"
done_without_pi5() { same_epoch hub2 pi3 pi4 && [ "$(epoch hub2)" -gt "$e1" ]; }
wait_until 30 done_without_pi5 || fail "no common new epoch: hub2=$(epoch hub2) pi3=$(epoch pi3) pi4=$(epoch pi4)"
e2=$(epoch hub2)
quarantined hub2 pi5 missing || fail "pi5 is not quarantined on hub2: $(pingd_call hub2 quarantine)"
keyd_excludes hub2 pi5 || fail "hub2's keyd does not exclude pi5"
say "hub2, pi3 and pi4 at epoch $e2, pi5 quarantined on hub2"

say "hub2's pingd finds hub1 gone too: the home goes on without it"
wait_until 30 quarantined hub2 hub1 missing || fail "hub2 did not declare hub1 missing: $(pingd_call hub2 quarantine)"
settled() { keyd_excludes hub2 hub1 && same_epoch hub2 pi3 pi4 && [ "$(epoch hub2)" -ge "$e2" ]; }
wait_until 30 settled || fail "no common epoch without hub1: hub2=$(epoch hub2) pi3=$(epoch pi3) pi4=$(epoch pi4)"

say "pi5 comes back: the new controller gives it nothing"
link_up pi5
sleep 4 # several of pi5's announcements
[ "$(epoch pi5)" = "$e1" ] || fail "pi5, quarantined, holds epoch $(epoch pi5)"
quarantined hub2 pi5 missing || fail "pi5 left hub2's quarantine on coming back"
send_msg pi3 pi4 "the new controller did it" | grep -q '"ok":true' || fail "pi3 cannot send to pi4"
wait_until 5 received pi4 "the new controller did it" || fail "pi4 did not receive pi3's message"
echo ok
