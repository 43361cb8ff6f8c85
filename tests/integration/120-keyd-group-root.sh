#!/bin/sh
# The home's group stream root comes with every pool (SPEC 8): the controller draws one, wraps it
# to each device beside its ring, and every device, the controller too, keeps it in its own dictd
# as "-group" at index e0, the stream epoch the pool was made in. After the pool, every keyd says
# the same e0 (group_start) and every dictd gives the same 32-byte root at that index. A rekey
# brings a new root and a new e0, and the old root is gone from every dictd; a device left out
# of a pool holds none of its root. The root never appears in a log or in keyd.state.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
NAMES="hub pi2 pi3"

# A schedule of one-second epochs that began 1000 s ago: e0 is then the second of the build,
# and a pool made seconds after another has another e0.
START=$(($(date +%s) - 1000))
for n in $NAMES; do
	printf 'stream = { start = %s; interval_s = 1; };\n' "$START" >>"$T/$n/iotsec.conf"
done
# stream_epoch NOW: the schedule's epoch at unix time NOW.
stream_epoch() { echo $(($1 - START + 1)); }

# group_start NAME: what NAME's keyd says ("" when it does not answer).
group_start() { field "$1" keyd group_start; }
# root NAME E0: the key NAME's dictd gives for "-group" at index E0, "" when none.
root() {
	ctl "$T/$1/run/dictd/dictd.sock" \
		"{\"v\":1,\"verb\":\"lookup\",\"name\":\"-group\",\"indices\":[$2]}" |
		json_get '["keys"][0]["key"] if d.get("keys") else ""'
}
# root_len NAME E0: the length in bytes of that key, 0 when none.
root_len() {
	ctl "$T/$1/run/dictd/dictd.sock" \
		"{\"v\":1,\"verb\":\"lookup\",\"name\":\"-group\",\"indices\":[$2]}" |
		json_get '["keys"].__len__() and len(__import__("base64").b64decode(d["keys"][0]["key"], validate=True))'
}
# same_root E0 NAME...: every one of them has a 32-byte root at E0, the same one; it prints it.
same_root() {
	_e0=$1
	shift
	_r=$(root "$1" "$_e0")
	[ -n "$_r" ] || return 1
	for _n in "$@"; do
		[ "$(root_len "$_n" "$_e0")" = 32 ] || return 1
		[ "$(root "$_n" "$_e0")" = "$_r" ] || return 1
	done
	echo "$_r"
}
# same_start NAME...: every keyd says the first one's group_start, and it is not 0.
same_start() {
	_g=$(group_start "$1")
	[ -n "$_g" ] && [ "$_g" -gt 0 ] || return 1
	for _n in "$@"; do [ "$(group_start "$_n")" = "$_g" ] || return 1; done
}
# no_leak ROOT: the root is in no log and no keyd.state (dictd holds it, sealed).
no_leak() {
	for _f in "$T"/*/*.log "$T"/*/state/keyd/keyd.state; do
		if grep -qF "$1" "$_f"; then fail "the group root is in ${_f#"$T"/}"; fi
	done
}

t0=$(date +%s)
for n in $NAMES; do run_all "$n"; done
wait_until 20 same_epoch $NAMES || fail "rings not delivered"
wait_until 5 same_start $NAMES ||
	fail "group_start differs: hub=$(group_start hub) pi2=$(group_start pi2) pi3=$(group_start pi3)"
t1=$(date +%s)
e1=$(epoch hub)
g1=$(group_start hub)
# The pool was made between t0 and t1: its e0 is the stream epoch of a second in between.
[ "$g1" -ge "$(stream_epoch "$t0")" ] && [ "$g1" -le "$(stream_epoch "$t1")" ] ||
	fail "group_start $g1 is not the stream epoch of the pool's making ($(stream_epoch "$t0")..$(stream_epoch "$t1"))"
for n in $NAMES; do
	[ "$(json_get '["group_start"]' <"$T/$n/state/keyd/keyd.state")" = "$g1" ] ||
		fail "$n's keyd.state does not keep group_start $g1"
done
r1=$(same_root "$g1" $NAMES) ||
	fail "the dictds do not give one 32-byte root at $g1: hub=$(root hub "$g1") pi2=$(root pi2 "$g1") pi3=$(root pi3 "$g1")"
[ "$(root hub $((g1 + 1)))" = "" ] || fail "hub's dictd gives a root at $((g1 + 1)) too"
say "epoch $e1: every device holds the same group root, from stream epoch $g1"

say "a rekey on the controller"
sleep 2 # a pool of a later second: another e0
r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey) || fail "rekey refused: $r"
moved() { same_epoch $NAMES && [ "$(epoch hub)" -gt "$e1" ] && same_start $NAMES; }
wait_until 20 moved || fail "after the rekey: hub=$(epoch hub) pi2=$(epoch pi2) pi3=$(epoch pi3), was $e1"
e2=$(epoch hub)
g2=$(group_start hub)
[ "$g2" -gt "$g1" ] || fail "group_start did not move on: $g1, then $g2"
r2=$(same_root "$g2" $NAMES) || fail "after the rekey the dictds do not give one root at $g2"
[ "$r2" != "$r1" ] || fail "the rekey kept the group root"
for n in $NAMES; do
	[ "$(root "$n" "$g1")" = "" ] || fail "$n's dictd still gives the root of epoch $e1"
done
say "epoch $e2: a new root from stream epoch $g2 everywhere; the one from $g1 is gone"

say "a rekey leaving pi3 out"
sleep 2
r=$(iotsecctl -c "$T/hub/iotsec.conf" rekey --exclude pi3) || fail "rekey refused: $r"
moved3() { same_epoch hub pi2 && [ "$(epoch hub)" -gt "$e2" ] && same_start hub pi2; }
wait_until 20 moved3 || fail "after the rekey: hub=$(epoch hub) pi2=$(epoch pi2)"
g3=$(group_start hub)
[ "$g3" -gt "$g2" ] || fail "group_start did not move on: $g2, then $g3"
r3=$(same_root "$g3" hub pi2) || fail "hub and pi2 do not give one root at $g3"
sleep 2 # several of pi3's announcements: it must still get nothing
[ "$(group_start pi3)" = "$g2" ] || fail "pi3, left out, says group_start $(group_start pi3)"
[ "$(root pi3 "$g3")" = "" ] || fail "pi3, left out, holds the new group root"
[ "$(root pi3 "$g2")" = "$r2" ] || fail "pi3 lost the root of the pool it holds"
say "hub and pi2 hold the root from $g3; pi3, left out, only the one from $g2"

for x in "$r1" "$r2" "$r3"; do no_leak "$x"; done
echo ok
