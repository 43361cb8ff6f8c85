#!/bin/sh
# electd takes part in the election only while certd says the certificate is valid: not before
# certd's first word, and not once certd has gone away (then the device is out of the home,
# exactly as with a certificate found invalid).
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller

say "electd without certd stays out"
run hub electd
sleep 2 # several discovery rounds of 2 x 200 ms, had it started
[ "$(field hub electd state)" = out ] || fail "hub is '$(field hub electd state)' before certd spoke"
grep -q -- "-> controller" "$T/hub/electd.log" && fail "hub declared itself without certd"

say "certd says valid: electd joins and leads"
run hub certd
CERTD=$LAST_PID
lead() { [ "$(field hub electd state)" = controller ]; }
wait_until 5 lead || fail "hub is '$(field hub electd state)' after certd spoke"

say "certd goes away: electd leaves the home"
kill "$CERTD"
out() { [ "$(field hub electd state)" = out ]; }
wait_until 5 out || fail "hub is still '$(field hub electd state)' without certd"
grep -q "leaving the election: iotsec-certd stopped answering" "$T/hub/electd.log" ||
	fail "electd did not say why it left"
echo ok
