#!/bin/sh
# A device revoked after it got its ring (and still using the CRL from before, so that it goes on
# as if nothing happened) can open no session with the others, and gets nothing of the next
# epoch: the new controller checks every device's certificate again before it wraps a key to it.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-a controller
device 2 hub-b controller
device 3 pi5 node
cp "$T/ca/crl.pem" "$T/pi5/stale-crl.pem"
sed -i "s|$T/ca/crl.pem|$T/pi5/stale-crl.pem|" "$T/pi5/iotsec.conf"
for n in hub-a hub-b pi5; do run_all "$n"; done
wait_until 20 same_epoch hub-a hub-b pi5 || fail "rings not delivered"
first=$(epoch hub-a)
leader=$(field pi5 electd controller)
case "$leader" in hub-a) other=hub-b ;; hub-b) other=hub-a ;; *) fail "no controller: '$leader'" ;; esac
say "epoch $first everywhere; $leader is controller"

say "pi5 is revoked; with its ring it tries a session with $other"
iotsec-pki revoke --dir "$T/ca" --device pi5 >/dev/null 2>&1 || fail "revoke"
sleep 1 # the CRL's change reaches the others' stores at their next message
send_msg pi5 "$other" "after revocation" | grep -q '"ok":true' || fail "pi5 could not even try"
refused() { grep -q "refused .*: certificate revoked" "$T/$other/keyd.log"; }
wait_until 5 refused || fail "$other did not refuse pi5"
sleep 1
if received "$other" "after revocation"; then fail "$other received from revoked pi5"; fi

say "the controller dies: $other builds the next pool"
for p in $(ip netns pids "$NS_PREFIX-h$(host_of "$leader")"); do kill "$p"; done
next() { [ "$(epoch "$other")" -gt "$first" ] 2>/dev/null; }
wait_until 20 next || fail "$other built no new pool (epoch $(epoch "$other"))"
sleep 2 # pi5 goes on announcing itself meanwhile

[ "$(epoch pi5)" = "$first" ] || fail "pi5 moved to epoch $(epoch pi5)"
grep -q "gave pi5 a ring" "$T/$other/keyd.log" && fail "$other gave pi5 a ring"
grep -q "forgot pi5: certificate revoked" "$T/$other/keyd.log" || fail "$other did not say why"
say "pi5 stays at epoch $first; $other: $(grep -m1 "forgot pi5" "$T/$other/keyd.log")"
echo ok
