#!/bin/sh
# A device whose network goes away is declared missing by the controller's pingd, after its own
# failed probes and the other devices' indirect probes, and quarantined: the home rekeys without
# it. When it comes back it stays out (no ring of the new epoch) until the administrator releases
# it; then it is given the ring of the current epoch.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
device 4 pi4 node
NAMES="hub pi2 pi3 pi4"
for n in $NAMES; do
	cat >>"$T/$n/iotsec.conf" <<'CONF'
pingd = { interval_ms = 1000; retry_ms = 300; tries = 3; timeout_ms = 500; hello_ms = 300; };
CONF
done
for n in $NAMES; do
	run_all "$n"
	run "$n" pingd
	eval "PINGD_$n=\$LAST_PID"
done
wait_until 30 same_epoch $NAMES || fail "rings not delivered"
e1=$(epoch hub)
pingd() { ctl "$T/$1/run/pingd/pingd.sock" "$2"; }
knows_all() { [ "$(field hub pingd role)" = controller ] && [ "$(field hub pingd peers)" = 3 ]; }
wait_until 10 knows_all || fail "hub's pingd: role $(field hub pingd role), $(field hub pingd peers) peers"
alive() { pingd hub '{"v":1,"verb":"peers"}' | $PY -c 'import json,sys
p = json.load(sys.stdin)["peers"]
sys.exit(not (len(p) == 3 and all(x["state"] == "alive" for x in p)))'; }
wait_until 10 alive || fail "hub's pingd does not see every device alive: $(pingd hub '{"v":1,"verb":"peers"}')"
# Every field the contract lists (proto.h), in status and peers.
st=$(pingd hub '{"v":1,"verb":"status"}')
for f in device role controller peers crl_number quarantine_version quarantined probes missing \
	sent received refused refused_by; do
	echo "$st" | grep -q "\"$f\":" || fail "status has no $f: $st"
done
pe=$(pingd hub '{"v":1,"verb":"peers"}')
for f in name address state last_seen direct reputation trust flags banned_until auth_failures; do
	echo "$pe" | grep -q "\"$f\":" || fail "peers has no $f: $pe"
done
say "epoch $e1 everywhere; hub probes pi2, pi3, pi4"

say "pi4's network goes down"
on 4 ip link set eth0 down
quarantined() { pingd "$1" '{"v":1,"verb":"quarantine"}' | grep -q '"name":"pi4","reason":"missing"'; }
wait_until 20 quarantined hub || fail "hub did not quarantine pi4"
grep -q "pi4 suspect: 3 probes unanswered; 2 devices asked" "$T/hub/pingd.log" ||
	fail "hub did not ask the others before declaring pi4 missing"
grep -q "pi4 is missing: 3 probes unanswered, 2 of 2 devices asked confirm" "$T/hub/pingd.log" ||
	fail "hub's declaration does not say why"
say "$(grep -m1 "pi4 is missing" "$T/hub/pingd.log" | sed 's/.*pi4/pi4/')"
wait_until 5 quarantined pi2 || fail "pi2 did not take the quarantine list"
wait_until 5 quarantined pi3 || fail "pi3 did not take the quarantine list"
# Every pingd hands the list to its keyd, so a device that becomes controller leaves pi4 out too.
keyd_holds() { field "$1" keyd quarantine | grep -q "pi4"; }
for n in hub pi2 pi3; do wait_until 5 keyd_holds "$n" || fail "$n's keyd does not hold the list"; done

rekeyed() { same_epoch hub pi2 pi3 && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 20 rekeyed || fail "no new pool without pi4: hub=$(epoch hub) pi2=$(epoch pi2) pi3=$(epoch pi3)"
e2=$(epoch hub)
say "hub, pi2 and pi3 at epoch $e2"
for a in hub pi2 pi3; do
	for b in hub pi2 pi3; do
		[ "$a" = "$b" ] && continue
		send_msg "$a" "$b" "$a to $b at $e2" | grep -q '"ok":true' || fail "$a cannot send to $b"
	done
done
for a in hub pi2 pi3; do
	for b in hub pi2 pi3; do
		[ "$a" = "$b" ] && continue
		wait_until 10 received "$b" "$a to $b at $e2" || fail "$b did not receive from $a"
	done
done
say "every pair of the three speaks at epoch $e2"

say "pi4's network comes back: it stays out"
on 4 ip link set eth0 up
heard() { pingd hub '{"v":1,"verb":"peers"}' | $PY -c 'import json,sys,time
p = [x for x in json.load(sys.stdin)["peers"] if x["name"] == "pi4"][0]
sys.exit(not (p["state"] == "quarantined" and p["last_seen"] >= int(sys.argv[1])))' "$(date +%s)"; }
wait_until 10 heard || fail "hub does not hear pi4 again, or no longer has it quarantined"
wait_until 5 quarantined pi4 || fail "pi4 did not take the list that names it"
send_msg pi4 pi2 "pi4 at the old epoch" >/dev/null || true
sleep 3 # several of pi4's announcements and HELLOs
[ "$(epoch pi4)" = "$e1" ] || fail "pi4, quarantined, moved to epoch $(epoch pi4)"
quarantined hub || fail "pi4 left the quarantine by coming back"
if received pi2 "pi4 at the old epoch"; then fail "pi2 received from quarantined pi4"; fi
say "pi4 back, still at epoch $e1; pi2 did not take its message"

say "a node cannot release"
r=$(pingd pi2 '{"v":1,"verb":"release","name":"pi4"}')
echo "$r" | grep -q '"ok":false' || fail "pi2 released pi4: $r"
echo "$r" | grep -q "not the controller (the controller is hub)" || fail "pi2's refusal: $r"
say "the administrator releases pi4 on the controller"
r=$(pingd hub '{"v":1,"verb":"release","name":"pi4"}')
echo "$r" | grep -q '"ok":true' || fail "release refused: $r"
wait_until 20 same_epoch hub pi2 pi3 pi4 || fail "pi4 has no ring of the current epoch: hub=$(epoch hub) pi4=$(epoch pi4)"
[ "$(epoch hub)" = "$e2" ] || fail "the release made a new pool ($(epoch hub)): keyd should give pi4 a ring of $e2"
wait_until 5 sh -c "! $(command -v python3) $IT_DIR/ctl.py $T/pi4/run/pingd/pingd.sock '{\"v\":1,\"verb\":\"quarantine\"}' | grep -q pi4" ||
	fail "pi4 still holds a list that names it"
say "pi4 at epoch $(epoch pi4), with the others"

say "hub's pingd restarts: it remembers the devices and the list's version"
saved=$(cat "$T/hub/state/pingd/pingd.state")
echo "$saved" | json_get '["version"]' | grep -qx 2 || fail "hub saved: $saved"
echo "$saved" | grep -q '"name":"pi4","address":"10.213.0.4"' || fail "hub saved: $saved"
stop "$PINGD_hub"
run hub pingd
back() { [ "$(field hub pingd quarantine_version)" = 2 ] && [ "$(field hub pingd peers)" = 3 ]; }
wait_until 5 back || fail "hub's pingd forgot: $(ctl "$T/hub/run/pingd/pingd.sock" '{"v":1,"verb":"status"}')"
stop "$LAST_PID"
say "a damaged state file: pingd refuses to start, and says why"
# refused STATE WHY: pingd exits 1 on STATE, its log naming the file and WHY.
refused() {
	printf '%s' "$1" >"$T/hub/state/pingd/pingd.state"
	: >"$T/hub/pingd.log"
	run hub pingd
	st=0
	wait "$LAST_PID" || st=$?
	[ "$st" = 1 ] || fail "pingd started on $1 (exit status $st)"
	grep -q "pingd.state: $2" "$T/hub/pingd.log" || fail "on $1: $(cat "$T/hub/pingd.log")"
}
D='"devices":[{"name":"pi2","address":"10.213.0.2"}]'
Q='"quarantine":[{"name":"pi4","reason":"missing","at":1}]'
refused "{\"version\":1,$D,$Q" "damaged"
refused "{\"version\":1,$D}" "not a pingd state"
refused "{\"version\":1,$D,$Q,\"x\":1}" "not a pingd state"
refused "{\"version\":\"1\",$D,$Q}" "not a pingd state"
refused "{\"version\":0,$D,$Q}" "bad quarantine list"
refused "{\"version\":1,$D,\"quarantine\":[{\"name\":\"pi4\"}]}" "bad quarantine list"
refused "{\"version\":1,$D,\"quarantine\":[{\"name\":\"pi4\",\"reason\":\"bored\",\"at\":1}]}" "bad quarantine list"
refused "{\"version\":1,\"devices\":[{\"name\":\"pi2\",\"address\":\"10.213.0.300\"}],$Q}" "bad device"
refused "{\"version\":1,\"devices\":[{\"name\":\"-pi2\",\"address\":\"\"}],$Q}" "bad device"
refused "{\"version\":1,\"devices\":[{\"name\":\"pi2\",\"address\":\"\"},{\"name\":\"pi2\",\"address\":\"\"}],$Q}" "bad device"
refused "{\"version\":1,\"devices\":[{\"name\":\"pi2\"}],$Q}" "bad device"
say "and starts on a good one"
printf '%s' "{\"version\":1,$D,$Q}" >"$T/hub/state/pingd/pingd.state"
run hub pingd
good() { [ "$(field hub pingd quarantine_version)" = 1 ] && [ "$(field hub pingd quarantined)" = 1 ]; }
wait_until 5 good || fail "pingd did not take a good state file: $(cat "$T/hub/pingd.log")"
echo ok
