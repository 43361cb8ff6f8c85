#!/bin/sh
# Junk datagrams from 4000 source addresses write a handful of log lines, not thousands: each
# (address, reason) is logged once, within a global budget, and every refusal is still counted.
# The first line after the flood says how many refusals went unlogged.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
add_host 9
# A home of a /16: the spoofed senders have a route back, as real ones would.
for net in 10.213.0.0/16 10.214.0.0/16; do ip -n "$NS_PREFIX-h2" route add "$net" dev eth0; done

with_certd hub pi1
run hub electd
run pi1 electd
wait_until 5 follows pi1 hub || fail "pi1 follows '$(field pi1 electd controller)', not hub"
before=$(grep -c "refused a message" "$T/pi1/electd.log" || true)

say "host 9 sends 4000 junk datagrams to pi1, each from another address of 10.213.0.0/16"
on 9 $PY "$IT_DIR/rogue.py" spoof "$NET.2" 7450 4000 10.213 >"$T/spoof.log" 2>&1 ||
	fail "the spoofer failed: $(cat "$T/spoof.log")"
counted() { [ "$(field pi1 electd refused)" -ge 3500 ]; }
wait_until 5 counted || fail "pi1 counted only $(field pi1 electd refused) refusals"
lines=$(($(grep -c "refused a message" "$T/pi1/electd.log") - before))
say "pi1 counted $(field pi1 electd refused) refusals in $lines log lines"
[ "$lines" -le 20 ] || fail "$lines log lines for one flood"
[ "$lines" -ge 1 ] || fail "no refusal logged at all"

say "the next refusal, past the budget, says how many went unlogged"
sleep 2
on 9 $PY "$IT_DIR/rogue.py" spoof "$NET.2" 7450 1 10.214 >/dev/null 2>&1
logged() { grep -qE "refused a message from 10.214.1.1: .*\([0-9]+ more refusals not logged\)" "$T/pi1/electd.log"; }
wait_until 5 logged || fail "no line counts the unlogged refusals: $(tail -n 3 "$T/pi1/electd.log")"
follows pi1 hub || fail "pi1 lost its controller"
echo ok
