#!/bin/sh
# An outsider floods the home with copies of a real message whose certificate is forged (one
# byte of the CA's signature changed). Checking such a certificate costs a full chain and CRL
# check, so each verdict is remembered and unknown certificates are checked only so many times a
# second: the flood costs little more than reading it, the heartbeats get through, and no device
# elects again.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
device 3 hub2 controller
add_host 9
with_certd hub pi1 hub2
run hub electd
sleep 1
run pi1 electd
run hub2 electd
wait_until 5 follows pi1 hub || fail "pi1 does not follow hub"
wait_until 5 follows hub2 hub || fail "hub2 does not follow hub"
before=$(grep -c -- "-> discovering" "$T/pi1/electd.log" "$T/hub2/electd.log" | awk -F: '{s += $2} END {print s}')

# 5000 a second: a full check of each would take the three receivers more than this machine
# has; refusing a verdict already made takes them a small share of it, even under the sanitizers.
say "host 9 floods $NET.255:7450 with a forged certificate for 8 s, 5000 a second"
on 9 $PY "$IT_DIR/rogue.py" forged "$T/hub/hub.crt" "$T/hub/hub.key" "$NET.255" 8 5000 \
	>"$T/flood.log" 2>&1
sent=$(awk '/sent/ {print $3}' "$T/flood.log")
[ "${sent:-0}" -gt 30000 ] || fail "the flood was too thin to prove anything: $(cat "$T/flood.log")"
refused=$(field pi1 electd refused)
after=$(grep -c -- "-> discovering" "$T/pi1/electd.log" "$T/hub2/electd.log" | awk -F: '{s += $2} END {print s}')
say "$sent forged datagrams; pi1 refused $refused; elections since: $((after - before))"
[ "$after" -eq "$before" ] || fail "the flood made devices elect again"
follows pi1 hub || fail "pi1 follows '$(field pi1 electd controller)'"
follows hub2 hub || fail "hub2 follows '$(field hub2 electd controller)'"
[ "$refused" -gt $((sent / 2)) ] || fail "pi1 refused only $refused of $sent: it fell behind"

# Each forgery new now, so no verdict is ever remembered, while pi1 and hub2 start again and know
# no certificate: hub's must still be checked at once, or hub2 takes the lead for itself.
say "host 9 floods with a new forged certificate each time, 2000 a second; pi1 and hub2 restart"
on 9 $PY "$IT_DIR/rogue.py" forged "$T/hub/hub.crt" "$T/hub/hub.key" "$NET.255" 10 2000 new \
	>"$T/flood2.log" 2>&1 &
FLOOD=$!
PIDS="$PIDS $FLOOD"
sleep 1
for n in pi1 hub2; do
	stop "$(pgrep -f "iotsec-electd -c $T/$n/iotsec.conf")"
	run "$n" electd
done
wait_until 5 follows pi1 hub || fail "pi1 follows '$(field pi1 electd controller)' in the flood"
wait_until 5 follows hub2 hub || fail "hub2 follows '$(field hub2 electd controller)' in the flood"
wait "$FLOOD" || fail "the flood failed: $(cat "$T/flood2.log")"
follows pi1 hub && follows hub2 hub || fail "the flood split the home"
[ "$(field hub electd state)" = controller ] || fail "hub no longer leads"
say "$(cat "$T/flood2.log"); pi1 and hub2 follow hub"
echo ok
