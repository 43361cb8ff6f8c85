#!/bin/sh
# An enrolled node floods electd with valid messages stamped delta_t in the future, each a new
# one. With one replay table shared by every sender that filled it, and every other sender was
# refused: the home lost its controller. Replay state is per sender now, so the flood costs only
# the flooder: the nodes keep their controller throughout.
. "$(dirname "$0")/common.sh"
need_netns
DELTA_T=30 # the window the flood fills: long, as a household may set it
make_home
device 1 hub controller
device 2 pi1 node
iotsec-pki enrol --dir "$T/ca" --device pi9 --role node --out "$T/pi9" >/dev/null 2>&1
add_host 9

with_certd hub pi1
run hub electd
sleep 1
run pi1 electd
wait_until 5 follows pi1 hub || fail "pi1 follows '$(field pi1 electd controller)', not hub"

say "pi9 (host 9) sends 6000 signed IS_THERE_CONTROLLER stamped $((DELTA_T - 1)) s ahead"
on 9 $PY "$IT_DIR/rogue.py" flood "$T/pi9/pi9.crt" "$T/pi9/pi9.key" "$NET.255" 7450 \
	IS_THERE_CONTROLLER '{"challenge":"AAAAAAAAAAAAAAAAAAAAAA=="}' 6000 $((DELTA_T - 1)) \
	>"$T/flood.log" 2>&1 &
FLOOD=$!
PIDS="$PIDS $FLOOD"
lost=0
while kill -0 $FLOOD 2>/dev/null; do
	follows pi1 hub || lost=$((lost + 1))
	sleep 0.2
done
grep -q "sent 6000" "$T/flood.log" || fail "the flood did not run: $(cat "$T/flood.log")"
sleep 3 # twice the timeout after the last of the flood
follows pi1 hub || lost=$((lost + 1))
[ $lost -eq 0 ] || fail "pi1 lost its controller $lost times during the flood"
grep -q "No buffer space" "$T/pi1/electd.log" && fail "pi1 refused a sender for want of room"
received=$(field pi1 electd received)
[ "$received" -ge 5000 ] || fail "pi1 took only $received messages: the flood did not reach it"
say "pi1 took $received messages and kept hub as its controller"
echo ok
