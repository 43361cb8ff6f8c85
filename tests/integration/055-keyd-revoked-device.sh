#!/bin/sh
# A device revoked after it got its ring gets nothing of the next epoch: the new controller
# checks every device's certificate again before it wraps a key to it.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-a controller
device 2 hub-b controller
device 3 pi5 node
for n in hub-a hub-b pi5; do run_all "$n"; done
wait_until 20 same_epoch hub-a hub-b pi5 || fail "rings not delivered"
first=$(epoch hub-a)
leader=$(field pi5 electd controller)
case "$leader" in hub-a) other=hub-b ;; hub-b) other=hub-a ;; *) fail "no controller: '$leader'" ;; esac
say "epoch $first everywhere; $leader is controller"

say "pi5 is revoked, then the controller dies: $other builds the next pool"
iotsec-pki revoke --dir "$T/ca" --device pi5 >/dev/null 2>&1 || fail "revoke"
for p in $(ip netns pids "$NS_PREFIX-h$(host_of "$leader")"); do kill "$p"; done
next() { [ "$(epoch "$other")" -gt "$first" ] 2>/dev/null; }
wait_until 20 next || fail "$other built no new pool (epoch $(epoch "$other"))"
sleep 2 # pi5 goes on announcing itself meanwhile

[ "$(epoch pi5)" = "$first" ] || fail "pi5 moved to epoch $(epoch pi5)"
grep -q "gave pi5 a ring" "$T/$other/keyd.log" && fail "$other gave pi5 a ring"
grep -q "forgot pi5: certificate revoked" "$T/$other/keyd.log" || fail "$other did not say why"
say "pi5 stays at epoch $first; $other: $(grep -m1 "forgot pi5" "$T/$other/keyd.log")"
echo ok
