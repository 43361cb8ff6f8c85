#!/bin/sh
# A node insider broadcasts IS_THERE_CONTROLLER as fast as it can sign. Answering each with a
# signed broadcast would make the controller an amplifier: every device verifies every answer.
# The controller answers one query a sender per half try_ms, so what it sends stays bounded by
# time, not by what the insider sends; the home keeps its controller.
. "$(dirname "$0")/common.sh"
need_netns
make_home
device 1 hub controller
device 2 pi1 node
device 4 evil node
with_certd hub pi1
run hub electd
sleep 1
run pi1 electd
wait_until 5 follows pi1 hub || fail "pi1 does not follow hub"
sent0=$(field hub electd sent)
[ -n "$sent0" ] || fail "hub's electd does not count what it sends"
s0=$(date +%s)
on 4 $PY "$IT_DIR/rogue.py" queries "$T/evil/evil.crt" "$T/evil/evil.key" "$NET.255" 2000 \
	>"$T/evil.log" 2>&1 || fail "the attacker failed: $(cat "$T/evil.log")"
secs=$(($(date +%s) - s0 + 1))
sent=$(($(field hub electd sent) - sent0))
say "evil sent 2000 queries in about $secs s; hub sent $sent messages"
refused=$(field hub electd refused)
# Heartbeats every 300 ms and one answer to evil each 100 ms: under 14 a second.
[ "$sent" -le $((secs * 14 + 4)) ] || fail "hub sent $sent messages in $secs s of queries"
[ "$sent" -gt 0 ] || fail "hub sent nothing at all"
follows pi1 hub || fail "pi1 follows '$(field pi1 electd controller)', not hub"
[ "$(field hub electd state)" = controller ] || fail "hub no longer leads"
say "hub still leads ($refused refused)"
echo ok
