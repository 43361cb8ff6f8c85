#!/bin/sh
# keyd's quarantine (what pingd will set on every device): bad lists are refused and change
# nothing; a quarantined device gets no ring of the next pool, and its keys of the old epoch open
# no new traffic; the list survives a restart of the controller's keyd, and a new controller
# leaves the device out too; taken off the list, the device gets the ring of the current epoch.
# On a node, iotsecctl rekey names the controller.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-a controller
device 2 hub-b controller
device 3 pi3 node
NAMES="hub-a hub-b pi3"
for n in $NAMES; do run_all "$n"; done
wait_until 20 same_epoch $NAMES || fail "rings not delivered"
e1=$(epoch hub-a)
leader=$(field pi3 electd controller)
case "$leader" in hub-a) other=hub-b ;; hub-b) other=hub-a ;; *) fail "no controller: '$leader'" ;; esac
say "epoch $e1 everywhere; $leader is controller"
K=$T/$leader/run/keyd/keyd.sock
# quarantine NAME JSON: set NAME's quarantine to the list JSON, as pingd does; prints the reply.
quarantine() { ctl "$T/$1/run/keyd/keyd.sock" "{\"v\":1,\"verb\":\"quarantine\",\"names\":$2}"; }
# listed NAME LIST: NAME's keyd status shows the quarantine LIST (compact JSON).
listed() { [ "$(field "$1" keyd quarantine | tr -d " '" | tr -d '"')" = "$2" ]; }
send_msg pi3 "$other" "before" | grep -q '"ok":true' || fail "pi3 could not send before"
wait_until 10 received "$other" "before" || fail "$other did not receive from pi3 before"

say "bad lists: refused, each with its reason, and nothing changes"
many=$($PY -c 'import json; print(json.dumps(["pi%d" % i for i in range(65)]))')
for bad in '"pi3"|names must be a list' '{"pi3":1}|names must be a list' 'null|names must be a list' \
	"$many|65 names, at most 64" '["pi3",7]|names\[1\] is not a string' \
	'[["pi3"]]|names\[0\] is not a string' '[""]|names\[0\] is not a device name' \
	'["-ring"]|names\[0\] is not a device name' '["pi/3"]|names\[0\] is not a device name' \
	'["pi 3"]|names\[0\] is not a device name' \
	"[\"$(printf 'a%.0s' $(seq 70))\"]|names\\[0\\] is not a device name" \
	'["pi3","hub-b","pi3"]|names\[2\] repeats names\[0\]'; do
	list=${bad%|*} why=${bad##*|}
	out=$(quarantine "$leader" "$list")
	echo "$out" | grep -q "\"ok\":false" || fail "quarantine $list accepted: $out"
	echo "$out" | grep -q "\"error\":\"[^\"]*$why" || fail "quarantine $list refused for: $out"
done
out=$(ctl "$K" '{"v":1,"verb":"quarantine"}')
echo "$out" | grep -q '"error":"Invalid argument: names must be a list' || fail "no names: $out"
listed "$leader" "[]" || fail "a refused list changed the quarantine: $(field "$leader" keyd quarantine)"
if grep -q "quarantine:" "$T/$leader/keyd.log"; then fail "a refused list was logged as taken"; fi

say "pi3 quarantined on every device (as pingd pushes it), then a rekey"
for n in $NAMES; do
	quarantine "$n" '["pi3"]' | grep -q '"ok":true' || fail "$n refused the quarantine"
	quarantine "$n" '["pi3"]' | grep -q '"ok":true' || fail "$n refused the same list again"
	listed "$n" "[pi3]" || fail "$n's status shows $(field "$n" keyd quarantine)"
	[ "$(grep -c "quarantine: pi3 (was: none)" "$T/$n/keyd.log")" = 1 ] ||
		fail "$n did not log the change once: $(grep "quarantine:" "$T/$n/keyd.log")"
done
out=$(iotsecctl -c "$T/$leader/iotsec.conf" rekey) || fail "rekey refused: $out"
echo "$out" | grep -q "^new key pool: epoch" || fail "iotsecctl rekey says: $out"
moved() { same_epoch "$leader" "$other" && [ "$(epoch "$leader")" -gt "$e1" ]; }
wait_until 20 moved || fail "after the rekey: $leader=$(epoch "$leader") $other=$(epoch "$other")"
e2=$(epoch "$leader")
sleep 3 # several of pi3's announcements: it must still get nothing
[ "$(epoch pi3)" = "$e1" ] || fail "pi3, quarantined, holds epoch $(epoch pi3)"
grep -q "1 quarantined" "$T/$leader/keyd.log" || fail "the pool did not leave the quarantine out"
say "$leader and $other at epoch $e2, pi3 left at $e1"

say "pi3's keys of epoch $e1 open no new traffic"
send_msg pi3 "$other" "after quarantine" >/dev/null || true
send_msg pi3 "$leader" "after quarantine" >/dev/null || true
out=$(send_msg "$other" pi3 "to the quarantined")
echo "$out" | grep -q '"ok":false' || fail "$other could still start a session with pi3: $out"
sleep 1
if received "$other" "after quarantine"; then fail "$other received from quarantined pi3"; fi
if received "$leader" "after quarantine"; then fail "$leader received from quarantined pi3"; fi
send_msg "$leader" "$other" "between the others" | grep -q '"ok":true' || fail "$leader cannot send"
wait_until 10 received "$other" "between the others" || fail "$other did not receive from $leader"

say "iotsecctl rekey on a node names the controller"
st=0
iotsecctl -c "$T/pi3/iotsec.conf" rekey >"$T/out" 2>"$T/err" || st=$?
[ $st -eq 1 ] || fail "rekey on a node exits $st: $(cat "$T/out" "$T/err")"
grep -q "not the controller (the controller is $leader)" "$T/err" ||
	fail "rekey on a node says: $(cat "$T/err")"

say "$leader's keyd restarts: it still leaves pi3 out"
stop "$(pgrep -f "iotsec-keyd -c $T/$leader/iotsec.conf")"
grep -q '"quarantine":\["pi3"\]' "$T/$leader/state/keyd/keyd.state" ||
	fail "keyd.state lacks the quarantine: $(cat "$T/$leader/state/keyd/keyd.state")"
run "$leader" keyd
above() { same_epoch "$leader" "$other" && [ "$(epoch "$leader")" -gt "$e2" ]; }
wait_until 20 above || fail "after the restart: $leader=$(epoch "$leader") $other=$(epoch "$other")"
e3=$(epoch "$leader")
listed "$leader" "[pi3]" || fail "after its restart $leader shows $(field "$leader" keyd quarantine)"
sleep 3
[ "$(epoch pi3)" = "$e1" ] || fail "pi3 got epoch $(epoch pi3) from the restarted $leader"

say "$leader dies: $other, the next controller, leaves pi3 out too"
for p in $(ip netns pids "$NS_PREFIX-h$(host_of "$leader")"); do kill "$p"; done
next() { [ "$(field "$other" keyd role)" = controller ] && [ "$(epoch "$other")" -gt "$e3" ]; }
wait_until 20 next || fail "$other built no new pool (epoch $(epoch "$other"))"
e4=$(epoch "$other")
sleep 3
[ "$(epoch pi3)" = "$e1" ] || fail "pi3 got epoch $(epoch pi3) from $other"
if grep -q "gave pi3 a ring" "$T/$other/keyd.log"; then fail "$other gave pi3 a ring"; fi
say "$other at epoch $e4, pi3 still at $e1"

say "pi3 taken off the list: it gets the ring of epoch $e4"
for n in "$other" pi3; do
	quarantine "$n" '[]' | grep -q '"ok":true' || fail "$n refused the empty list"
	listed "$n" "[]" || fail "$n's status shows $(field "$n" keyd quarantine)"
	grep -q "quarantine: none (was: pi3)" "$T/$n/keyd.log" || fail "$n did not log the release"
done
wait_until 20 same_epoch "$other" pi3 || fail "pi3 was not given a ring: pi3=$(epoch pi3)"
[ "$(epoch pi3)" = "$e4" ] || fail "pi3 holds epoch $(epoch pi3), not $e4"
send_msg pi3 "$other" "released" | grep -q '"ok":true' || fail "pi3 could not send once released"
wait_until 10 received "$other" "released" || fail "$other did not receive from released pi3"
echo ok
