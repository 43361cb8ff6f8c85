#!/bin/sh
# Insiders with valid node certificates who lie to the controller's pingd (SPEC 5.5, 7): one
# says a healthy device is unreachable (bad-mouthing), one says a missing device is alive
# (good-mouthing), one floods the controller with reports nobody asked for (ballot stuffing).
# None of them decides an eviction, each is flagged in `peers`, and no honest device is.
#
# hub probes; pi2 and pi3 are honest helpers; pi4 is the device lied about; bad, good and stuff
# are rogue.py speaking pingd's protocol. helpers = 4: every other device is asked in each round.
. "$(dirname "$0")/common.sh"
. "$IT_DIR/pingd-common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi2 node
device 3 pi3 node
device 4 pi4 node
device 5 bad node
device 6 good node
device 7 stuff node
HONEST="hub pi2 pi3 pi4"
# timeout_ms = 1000: an indirect round lasts 2 s, time for pi4's refutation in (a).
for n in $HONEST; do pingd_conf "$n" "timeout_ms = 1000; helpers = 4; confirmations = 2;"; done
for n in $HONEST; do run_home "$n"; done
# rogue NAME MODE [ARGS]: NAME's host runs rogue.py pingd in MODE for 120 s (the test's bound).
rogue() {
	_n=$1
	shift
	on "$(host_of "$_n")" $PY "$IT_DIR/rogue.py" pingd "$T/$_n/$_n.crt" "$T/$_n/$_n.key" \
		"$NET.255" 120 "$@" >"$T/$_n/rogue.log" 2>&1 &
	PIDS="$PIDS $!"
}
rogue bad badmouth
rogue good goodmouth
wait_until 30 same_epoch hub pi2 pi3 pi4 || fail "rings not delivered"
known() { for n in pi2 pi3 pi4 bad good; do [ "$(state hub "$n")" = alive ] || return 1; done; }
wait_until 15 known || fail "hub's pingd does not see every device alive: $(pingd_call hub peers)"
say "hub's pingd probes pi2, pi3, pi4 and the rogues bad and good; all answer"

say "(a) hub stops hearing pi4's pingd until it suspects it; pi4, healthy, refutes; bad says unreachable"
# In hub's namespace: nothing to or from pi4's pingd port, so hub's probes fail and it hears
# nothing from pi4 (any message from pi4 would count as an answer); as soon as hub suspects pi4
# and asks the others, the way opens again and pi4's next message refutes the suspicion: the
# round ends "alive", and whoever said otherwise said so against the facts.
cut() {
	on 1 nft add table inet cut
	on 1 nft add chain inet cut in '{ type filter hook input priority 0; }'
	on 1 nft add chain inet cut out '{ type filter hook output priority 0; }'
	on 1 nft add rule inet cut in ip saddr "$NET.4" th dport 7452 drop
	on 1 nft add rule inet cut out ip daddr "$NET.4" th dport 7452 drop
}
suspected_since() { [ "$(grep -c "pi4 suspect" "$T/hub/pingd.log")" -gt "$1" ]; }
for try in 1 2 3; do
	before=$(grep -c "pi4 suspect" "$T/hub/pingd.log" || true)
	cut
	wait_until 15 suspected_since "$before" || fail "hub never suspected pi4"
	on 1 nft delete table inet cut
	wait_until 5 flagged hub bad bad-mouthing && break
	say "round $try: bad not flagged yet ($(grep "pi4 kept" "$T/hub/pingd.log" | tail -n 1 | sed 's/^iotsec-pingd: //'))"
done
flagged hub bad bad-mouthing || fail "bad was not flagged bad-mouthing: $(peer hub bad flags)"
grep -q "asked about pi4 .*alive: False" "$T/bad/rogue.log" || fail "bad was never asked about pi4"
grep -q "pi4 kept: it answered" "$T/hub/pingd.log" || fail "pi4's refutation was not what kept it"
say "bad is flagged bad-mouthing: $(peer hub bad flags), banned until $(peer hub bad banned_until)"
# Once more, bad banned: the others' word alone.
before=$(grep -c "pi4 suspect" "$T/hub/pingd.log" || true)
cut
wait_until 15 suspected_since "$before" || fail "hub never suspected pi4 again"
on 1 nft delete table inet cut
sleep 3
quarantined hub pi4 && fail "pi4, healthy, was evicted: $(pingd_call hub quarantine)"
[ "$(field hub pingd missing)" = 0 ] || fail "hub's pingd counts $(field hub pingd missing) missing"
unflagged hub pi2 pi3 || fail "honest helpers flagged: pi2 $(peer hub pi2 flags), pi3 $(peer hub pi3 flags)"
[ "$(peer hub bad banned_until)" -gt "$(date +%s)" ] || fail "bad is not banned: $(peer hub bad banned_until)"
pi4_back() { [ "$(state hub pi4)" = alive ]; }
wait_until 10 pi4_back || fail "hub's pingd sees pi4 as $(state hub pi4) once it reaches it again"
say "pi4 was never evicted; pi2 and pi3 are not flagged"

say "(b) pi4 loses its network for good; good says it is alive"
e1=$(epoch hub)
link_down pi4
wait_until 30 quarantined hub pi4 missing || fail "pi4 was not evicted despite good's word: $(pingd_call hub quarantine)"
grep -q "asked about pi4 .*alive: True" "$T/good/rogue.log" || fail "good was never asked about pi4"
wait_until 5 flagged hub good good-mouthing || fail "good was not flagged good-mouthing: $(peer hub good flags)"
unflagged hub pi2 pi3 || fail "honest helpers flagged: pi2 $(peer hub pi2 flags), pi3 $(peer hub pi3 flags)"
rekeyed() { same_epoch hub pi2 pi3 && [ "$(epoch hub)" -gt "$e1" ]; }
wait_until 20 rekeyed || fail "no new epoch without pi4: hub=$(epoch hub) pi2=$(epoch pi2) pi3=$(epoch pi3)"
say "pi4 is evicted, good is flagged $(peer hub good flags); hub, pi2 and pi3 at epoch $(epoch hub)"

say "(c) stuff floods hub with 40 reports nobody asked for, each saying a device is unreachable"
rogue stuff stuff hub "$NET.1" 40
wait_until 30 flagged hub stuff ballot-stuffing || fail "stuff was not flagged ballot-stuffing: $(peer hub stuff flags)"
grep -q "report to hub failed" "$T/stuff/rogue.log" && fail "stuff could not deliver its reports: $(tail -n 3 "$T/stuff/rogue.log")"
say "stuff is flagged $(peer hub stuff flags)"
sleep 3
[ "$(quarantine_names hub)" = pi4 ] || fail "hub's quarantine after the flood: $(quarantine_names hub), not pi4 alone"
unflagged hub pi2 pi3 || fail "honest devices flagged: pi2 $(peer hub pi2 flags), pi3 $(peer hub pi3 flags)"
for n in pi2 pi3; do
	[ "$(state hub "$n")" = alive ] || fail "hub's pingd sees $n as $(state hub "$n") after the flood"
done
echo ok
