#!/bin/sh
# Epochs only go up, and a new pool cancels every other one. A controller whose keyd restarts
# goes on above its last epoch (it is kept in state_dir), the devices take the new ring, and
# dictd then gives no key of the old one. A rekey leaving a device out (what pingd will ask for)
# moves everyone else on, and the one left out gets nothing.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
NAMES="hub pi2 pi3"
for n in $NAMES; do run_all "$n"; done
wait_until 20 same_epoch $NAMES || fail "rings not delivered"
e1=$(epoch hub)
say "epoch $e1 everywhere"

# ring_of NAME: the indices of NAME's ring, as keyd keeps them, comma-separated.
ring_of() { json_get '["indices"]' <"$T/$1/state/keyd/keyd.state" | tr -d '[] '; }
# keys NAME INDICES: how many of those keys NAME's dictd gives.
keys() {
	ctl "$T/$1/run/dictd/dictd.sock" "{\"v\":1,\"verb\":\"lookup\",\"name\":\"-ring\",\"indices\":[$2]}" |
		json_get '["keys"].__len__()'
}
old2=$(ring_of pi2)
[ "$(keys pi2 "$old2")" -gt 0 ] || fail "pi2's dictd does not give its own ring"

say "hub's keyd restarts: it goes on above epoch $e1"
stop "$(pgrep -f "iotsec-keyd -c $T/hub/iotsec.conf")"
run hub keyd
above() { same_epoch $NAMES && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 20 above || fail "after the restart: hub=$(epoch hub) pi2=$(epoch pi2) pi3=$(epoch pi3), was $e1"
e2=$(epoch hub)
new=$(ring_of pi2)
# Keys of the old ring that are not in the new one must be gone.
only_old=$($PY -c 'import sys; a = set(sys.argv[1].split(",")); b = set(sys.argv[2].split(","))
print(",".join(sorted(a - b)))' "$old2" "$new")
[ -n "$only_old" ] || fail "the new ring holds every old index: cannot tell"
[ "$(keys pi2 "$only_old")" = 0 ] || fail "pi2's dictd still gives keys of epoch $e1"
say "epoch $e2 everywhere; pi2's dictd gives none of the $(echo "$only_old" | tr ',' '\n' | wc -l) keys only the old ring had"

say "a rekey leaving pi3 out"
r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey --exclude pi3) || fail "rekey refused: $r"
echo "$r" | grep -q "^new key pool: epoch" || fail "iotsecctl rekey says: $r"
moved() { same_epoch hub pi2 && [ "$(epoch hub)" -gt "$e2" ]; }
wait_until 20 moved || fail "after the rekey: hub=$(epoch hub) pi2=$(epoch pi2)"
e3=$(epoch hub)
sleep 3 # several of pi3's announcements: it must still get nothing
[ "$(epoch pi3)" = "$e2" ] || fail "pi3, left out, holds epoch $(epoch pi3)"
r=$(send_msg pi2 pi3 "not for the left out")
echo "$r" | grep -q '"ok":false' || fail "pi2 could still start a session with pi3: $r"
say "hub and pi2 at epoch $e3, pi3 left at $e2"

say "a node cannot make a pool"
if r=$(iotsecctl -c "$T/pi2/iotsec.conf" rekey 2>&1); then fail "pi2 accepted a rekey: $r"; fi
echo "$r" | grep -q "not the controller" || fail "iotsecctl rekey on a node says: $r"
echo ok
