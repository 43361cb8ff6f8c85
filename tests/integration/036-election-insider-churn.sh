#!/bin/sh
# An insider with a controller certificate and the smallest name cannot make the home change
# hands again and again (each change rebuilds the key pool): it plays controller in bursts,
# answering every challenge, and the real controller and the nodes change to it at most once
# per hold_ms. Nor can it split the home by telling one node alone that it leads: an
# I_AM_CONTROLLER that is not broadcast is refused.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub-b controller
device 2 pi1 node
# A hold longer than the whole test: one change at most.
sed -i 's/hold_ms = [0-9]*;/hold_ms = 30000;/' "$T/hub-b/iotsec.conf" "$T/pi1/iotsec.conf"
grep -q 'hold_ms = 30000;' "$T/pi1/iotsec.conf" || fail "cannot set hold_ms"
iotsec-pki enrol --dir "$T/ca" --device hub-a --role controller --out "$T/hub-a" >/dev/null 2>&1
add_host 3

with_certd hub-b pi1
run hub-b electd
sleep 1
run pi1 electd
wait_until 5 follows pi1 hub-b || fail "pi1 follows '$(field pi1 electd controller)', not hub-b"

say "hub-a (host 3) plays controller for 2 s, then is silent for 2.5 s, five times"
on 3 $PY "$IT_DIR/rogue.py" insider "$T/hub-a/hub-a.crt" "$T/hub-a/hub-a.key" "$NET.255" 22 2 2.5 \
	>"$T/insider.log" 2>&1
steps=$(grep -c -- "-> node (controller 'hub-a')" "$T/hub-b/electd.log" || true)
moves=$(grep -c -- "-> node (controller 'hub-a')" "$T/pi1/electd.log" || true)
say "hub-b stepped down for hub-a $steps times, pi1 moved to it $moves times"
[ "$steps" -le 1 ] || fail "hub-b stepped down $steps times within one hold_ms"
[ "$moves" -le 1 ] || fail "pi1 moved to hub-a $moves times within one hold_ms"
[ "$steps" -ge 1 ] || fail "hub-a never took over, so the test proves nothing: $(cat "$T/insider.log")"
[ "$(field hub-b electd changes)" -le 1 ] || fail "hub-b counts $(field hub-b electd changes) changes"

say "hub-a tells pi1 alone that it leads: refused, pi1 stays"
wait_until 5 follows pi1 hub-b || fail "pi1 follows '$(field pi1 electd controller)' after the bursts"
on 3 $PY "$IT_DIR/rogue.py" broadcast "$T/hub-a/hub-a.crt" "$T/hub-a/hub-a.key" "$NET.2" 7450 \
	I_AM_CONTROLLER '{}' 2
follows pi1 hub-b || fail "pi1 follows '$(field pi1 electd controller)' after a unicast announcement"
grep -q "refused a message from $NET.3 (hub-a): sent to this device alone, not broadcast" \
	"$T/pi1/electd.log" || fail "pi1 did not refuse the unicast announcement"
echo ok
